//! `chatty.service`, a unit that logs what a test asks it to, for tests
//! and benches of the Logs page inside the systemd sandbox.

use super::sandbox::sh;
use std::io::Write;

/// Reads `<count> <priority> <text>` commands from a FIFO and prints
/// `<priority>text i` for i < count to stdout, which journald keeps;
/// `{ns}` in the text becomes the time of printing in ns since the epoch.
const CHATTY: &str = r#"import sys, time
while True:
    with open("/run/chatty.fifo") as f:
        for cmd in f:
            count, prio, text = cmd.rstrip("\n").split(" ", 2)
            for i in range(int(count)):
                line = text.replace("{ns}", str(time.time_ns()))
                sys.stdout.write("<%s>%s %d\n" % (prio, line, i))
            sys.stdout.flush()
"#;

/// Installs and starts `chatty.service` (inside the sandbox).
pub fn start() {
    std::fs::write("/run/chatty.py", CHATTY).unwrap();
    let _ = std::fs::remove_file("/run/chatty.fifo");
    sh(&["mkfifo", "/run/chatty.fifo"]);
    std::fs::write(
        "/run/systemd/system/chatty.service",
        "[Service]\nExecStart=/usr/bin/python3 -u /run/chatty.py\n",
    )
    .unwrap();
    sh(&["systemctl", "daemon-reload"]);
    sh(&["systemctl", "start", "chatty.service"]);
}

/// Makes the unit print `count` lines `text i` at `priority`.
pub fn say(count: usize, priority: u8, text: &str) {
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open("/run/chatty.fifo")
        .unwrap();
    writeln!(fifo, "{count} {priority} {text}").unwrap();
}
