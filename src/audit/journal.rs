//! `[audit] journal = true`: every audit row is also sent to journald with
//! structured fields, so a central log keeps a copy opsdeck cannot rewrite.
//!
//! This speaks journald's native protocol (one datagram of `NAME=value`
//! lines to its socket) rather than going through the tracing subscriber:
//! the fields must be exactly `OPSDECK_AUDIT_ID`, `OPSDECK_ACTOR`, … so a
//! collector can match them, whatever opsdeck's own log format is.

use tokio::net::UnixDatagram;

use super::chain::Record;

const SOCKET: &str = "/run/systemd/journal/socket";

/// A detail larger than this is cut (with a marker): a datagram must fit the
/// socket's buffer, and the full row stays in SQLite and in exports.
const MAX_DETAIL: usize = 16 * 1024;

/// Sends one row; the caller logs a failure (the row is already stored).
pub(super) async fn forward(record: &Record) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.send_to(&datagram(record), SOCKET).await?;
    Ok(())
}

fn datagram(r: &Record) -> Vec<u8> {
    let mut d = Vec::with_capacity(512 + r.detail.len().min(MAX_DETAIL));
    let message = format!(
        "audit #{}: {} {} {} {}",
        r.id, r.actor, r.action, r.app, r.outcome
    );
    field(&mut d, "MESSAGE", &message);
    field(&mut d, "PRIORITY", priority(&r.outcome));
    field(&mut d, "SYSLOG_IDENTIFIER", "opsdeck");
    field(&mut d, "OPSDECK_AUDIT_ID", &r.id.to_string());
    field(&mut d, "OPSDECK_AT", &r.at.to_string());
    field(&mut d, "OPSDECK_ACTOR", &r.actor);
    field(&mut d, "OPSDECK_ROLE", &r.role);
    field(&mut d, "OPSDECK_ACTION", &r.action);
    field(&mut d, "OPSDECK_APP", &r.app);
    field(&mut d, "OPSDECK_OUTCOME", &r.outcome);
    if let Some(job) = r.job_id {
        field(&mut d, "OPSDECK_JOB", &job.to_string());
    }
    field(&mut d, "OPSDECK_REMOTE", &r.remote);
    field(&mut d, "OPSDECK_DETAIL", &cut(&r.detail));
    field(&mut d, "OPSDECK_HASH", &r.hash);
    field(&mut d, "OPSDECK_PREV_HASH", &r.prev_hash);
    d
}

/// syslog priorities: refusals and failures stand out in `journalctl -p`.
fn priority(outcome: &str) -> &'static str {
    match outcome {
        "ok" => "6",
        "cancelled" => "5",
        "denied" | "failed" => "4",
        _ => "3",
    }
}

/// `NAME=value\n`, or, for a value holding a newline, the protocol's
/// binary form: `NAME\n`, the length as a little-endian u64, the bytes, `\n`.
fn field(d: &mut Vec<u8>, name: &str, value: &str) {
    d.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        d.push(b'\n');
        d.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        d.push(b'=');
    }
    d.extend_from_slice(value.as_bytes());
    d.push(b'\n');
}

fn cut(detail: &str) -> String {
    if detail.len() <= MAX_DETAIL {
        return detail.to_string();
    }
    let mut end = MAX_DETAIL;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut at {MAX_DETAIL} bytes]", &detail[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_lines_and_multiline_values_are_length_prefixed() {
        let mut d = Vec::new();
        field(&mut d, "A", "one");
        field(&mut d, "B", "two\nlines");
        let mut want = b"A=one\nB\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert_eq!(d, want);
    }

    #[test]
    fn a_huge_detail_is_cut_on_a_character_boundary() {
        let detail = "é".repeat(MAX_DETAIL);
        let cut = cut(&detail);
        assert!(cut.ends_with(&format!("[cut at {MAX_DETAIL} bytes]")));
        assert!(cut.len() < MAX_DETAIL + 40);
    }
}
