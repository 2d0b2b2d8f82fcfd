//! A minimal SSE reader for tests: events as a browser's EventSource sees them.

use std::str::FromStr;

/// One SSE event: (event name, id, data).
pub type SseEvent = (String, Option<u64>, String);

/// Reads events whose ids are numbers (job output lines) until `stop` says so.
pub async fn read_events(
    response: &mut reqwest::Response,
    buf: &mut String,
    stop: impl Fn(&SseEvent) -> bool,
) -> Vec<SseEvent> {
    read_events_as(response, buf, stop).await
}

/// Reads events whose ids parse as `I` (journal cursors: `String`) until
/// `stop` says so.
pub async fn read_events_as<I: FromStr>(
    response: &mut reqwest::Response,
    buf: &mut String,
    stop: impl Fn(&(String, Option<I>, String)) -> bool,
) -> Vec<(String, Option<I>, String)>
where
    I::Err: std::fmt::Debug,
{
    let mut events = Vec::new();
    loop {
        // Drained once per chunk: a chunk may hold thousands of events.
        let mut start = 0;
        while let Some(end) = buf[start..].find("\n\n") {
            let block = &buf[start..start + end + 2];
            start += end + 2;
            if block.starts_with(':') || block.starts_with("retry: ") {
                continue;
            }
            let (mut name, mut id, mut data) = ("message".to_string(), None, Vec::new());
            for field in block.lines().filter(|l| !l.is_empty()) {
                match field.split_once(": ") {
                    Some(("event", v)) => name = v.to_string(),
                    Some(("id", v)) => id = Some(v.parse().unwrap()),
                    Some(("data", v)) => data.push(v.to_string()),
                    _ => panic!("unexpected SSE field {field:?}"),
                }
            }
            let event = (name, id, data.join("\n"));
            let done = stop(&event);
            events.push(event);
            if done {
                buf.drain(..start);
                return events;
            }
        }
        buf.drain(..start);
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("the stream ended early");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}
