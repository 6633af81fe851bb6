//! A small blocking client of the control API (one request per connection), used by
//! `kvmpager snapshot --api-socket`, `kvmpager stat`, `kvmpager top` and the tests.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::wire::ErrorBody;

/// How long a request may take by default (a snapshot of a large VM takes a while).
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// Largest answer the client reads.
const MAX_ANSWER: u64 = 64 << 20;

/// An answer.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its body, as text.
    pub body: String,
}

/// Sends `method uri` (with a JSON `body`, if any) to the API socket at `socket`.
pub fn request(socket: &Path, method: &str, uri: &str, body: Option<&str>) -> io::Result<Response> {
    let mut conn = UnixStream::connect(socket)?;
    conn.set_read_timeout(Some(TIMEOUT))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {uri} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    conn.take(MAX_ANSWER).read_to_end(&mut raw)?;
    parse(&raw)
}

/// Parses a whole HTTP answer.
fn parse(raw: &[u8]) -> io::Result<Response> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("truncated answer".into())),
        Err(e) => return Err(bad(format!("malformed answer: {e}"))),
    };
    let content_type = r
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .unwrap_or_default();
    Ok(Response {
        status: r.code.unwrap_or(0),
        content_type,
        body: String::from_utf8_lossy(&raw[len..]).into_owned(),
    })
}

/// Sends a request and decodes a 200 answer's JSON; any other answer is an error naming the
/// status and the server's message.
pub fn call<T: DeserializeOwned>(
    socket: &Path,
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> Result<T, String> {
    let r = request(socket, method, uri, body).map_err(|e| format!("{}: {e}", socket.display()))?;
    if r.status != 200 {
        let msg = serde_json::from_str::<ErrorBody>(&r.body).map_or(r.body.clone(), |e| e.error);
        return Err(format!("{method} {uri}: HTTP {}: {msg}", r.status));
    }
    serde_json::from_str(&r.body).map_err(|e| format!("{method} {uri}: bad answer: {e}"))
}

/// `GET uri` as text (e.g. `/metrics`); an error unless the answer is 200.
pub fn get_text(socket: &Path, uri: &str) -> Result<String, String> {
    let r = request(socket, "GET", uri, None).map_err(|e| format!("{}: {e}", socket.display()))?;
    if r.status != 200 {
        return Err(format!("GET {uri}: HTTP {}: {}", r.status, r.body));
    }
    Ok(r.body)
}
