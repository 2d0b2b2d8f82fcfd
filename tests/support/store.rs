//! A store command for `store = { run = [...] }` secrets that records
//! what it was given, so a test sees where a value went and where not.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A store command: records each run's stdin, argv, environment and uid
/// as `<n>.stdin`, `<n>.argv`, `<n>.environ`, `<n>.uid` in its first
/// argument's directory; exits 1 (saying why on stderr) while `fail` exists there.
const STORE: &str = r#"import json, os, pathlib, sys
d = pathlib.Path(sys.argv[1])
data = sys.stdin.buffer.read()
n = len(list(d.glob("*.stdin")))
(d / f"{n}.argv").write_text(json.dumps(sys.argv))
(d / f"{n}.environ").write_bytes(open("/proc/self/environ", "rb").read())
(d / f"{n}.uid").write_text(str(os.getuid()))
(d / f"{n}.stdin").write_bytes(data)
if (d / "fail").exists():
    print("cloudron: the app is busy updating, try again later", file=sys.stderr)
    sys.exit(1)
print("SESSION_SECRET set; restarting the app")
"#;

/// The store script's records.
pub struct Records(pub PathBuf);

impl Records {
    pub fn runs(&self) -> usize {
        std::fs::read_dir(&self.0)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("stdin".as_ref()))
            .count()
    }

    pub fn read(&self, n: usize, what: &str) -> Vec<u8> {
        std::fs::read(self.0.join(format!("{n}.{what}"))).unwrap()
    }

    pub fn stdin(&self, n: usize) -> String {
        String::from_utf8(self.read(n, "stdin")).unwrap()
    }
}

/// The store script (readable by every account) in `dir`, and its empty
/// records directory `dir/records`: run it as `python3 SCRIPT RECORDS …`.
pub fn recorder(dir: &Path) -> (PathBuf, Records) {
    let script = dir.join("store.py");
    std::fs::write(&script, STORE).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let records = dir.join("records");
    std::fs::create_dir(&records).unwrap();
    (script, Records(records))
}
