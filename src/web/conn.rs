//! The connections opsdeck serves on. A request hyper cannot parse (a
//! `Content-Length: -1`, a header that is not one, a path of several
//! hundred kilobytes) never reaches the router: hyper answers it itself,
//! with an empty `400`/`414`/`431` and closes the connection. That empty
//! answer is the only response without a body opsdeck's errors can have, so
//! the stream recognizes it on the way out and sends the same JSON
//! `{"error": "<sentence>"}` every other refusal carries instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::serve::{ListenerExt, TapIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// What `opsdeck serve` (and the tests) listen with; serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub type Listening = TapIo<Listener, fn(&mut Stream)>;

/// Wraps `tcp` so that hyper's own refusals read like opsdeck's.
pub fn listen(tcp: TcpListener) -> Listening {
    // `tap_io` (a no-op here) is what lets axum hand handlers the client
    // address of a listener of our own.
    Listener(tcp).tap_io(|_| {})
}

pub struct Listener(TcpListener);

impl axum::serve::Listener for Listener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (
            Stream {
                tcp,
                replacement: Vec::new(),
                sent: 0,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A client connection; passes everything through but hyper's bare
/// refusal of a request it could not parse.
pub struct Stream {
    tcp: TcpStream,
    /// The answer sent instead of hyper's, and how much of it is out.
    replacement: Vec<u8>,
    sent: usize,
}

impl Stream {
    /// Writes out what is left of a replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.replacement.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.replacement[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        if let Some(answer) = unparsable_answer(buf) {
            this.replacement = answer;
            this.sent = 0;
            // Taken as written; the rest goes out on the next write, flush
            // or shutdown.
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

/// When `out` is hyper's answer to a request it could not parse — a 4xx
/// head with no body and no type (every answer of opsdeck's own has one) —
/// the JSON answer to send instead.
fn unparsable_answer(out: &[u8]) -> Option<Vec<u8>> {
    let head_end = memchr::memmem::find(out, b"\r\n\r\n")?;
    if head_end + 4 != out.len() {
        return None;
    }
    let head = std::str::from_utf8(&out[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let code = status_line.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let headers: Vec<String> = lines.map(str::to_ascii_lowercase).collect();
    let empty = headers.iter().any(|h| h == "content-length: 0");
    let typed = headers.iter().any(|h| h.starts_with("content-type:"));
    let sentence = match code {
        "400" => {
            "opsdeck could not read this request: its method, path, HTTP version or a header \
             is malformed (a Content-Length must be a number of bytes); nothing was done"
        }
        "414" => "the request's path is longer than opsdeck reads; nothing was done",
        "431" => "the request's headers are larger than opsdeck reads; nothing was done",
        _ => return None,
    };
    if !empty || typed {
        return None;
    }
    let body = serde_json::json!({ "error": sentence }).to_string();
    let mut answer = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for header in head.split("\r\n").skip(1) {
        let name = header.to_ascii_lowercase();
        if !name.starts_with("content-length:") && !name.starts_with("connection:") {
            answer.push_str(header);
            answer.push_str("\r\n");
        }
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(answer.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_refusal_is_replaced() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 02:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(unparsable_answer(bare).unwrap()).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.contains("content-type: application/json\r\n"));
        assert!(answer.contains("date: Sun, 06 Dec 2026"));
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        assert!(answer.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(body.contains("Content-Length must be a number"), "{body}");

        // opsdeck's own answers pass as they are.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(unparsable_answer(ours).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert!(unparsable_answer(with_body).is_none());
        let fine = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        assert!(unparsable_answer(fine).is_none());
    }
}
