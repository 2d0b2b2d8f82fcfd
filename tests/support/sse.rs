//! A minimal SSE reader for tests: events as a browser's EventSource sees them.

/// One SSE event: (event name, id, data).
pub type SseEvent = (String, Option<u64>, String);

/// Reads events from an SSE response until `stop` says so.
pub async fn read_events(
    response: &mut reqwest::Response,
    buf: &mut String,
    stop: impl Fn(&SseEvent) -> bool,
) -> Vec<SseEvent> {
    let mut events = Vec::new();
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if block.starts_with(':') {
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
                return events;
            }
        }
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("the stream ended early");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}
