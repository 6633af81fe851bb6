//! The HTTP/1.1 transport: one accept thread and a small fixed pool of workers over the Unix
//! socket; `httparse` parses each request head; every request is answered and the connection
//! closed (`Connection: close`), so a client never holds a worker between requests.
//!
//! Limits ([`Limits`]): the head (request line and headers) is at most 8 KiB and 32 headers
//! (else 431), a body at most 64 KiB (else 413; `Expect: 100-continue` is honoured, chunked
//! bodies get 411), the whole request must arrive within 5 s of the connection (else 408 and
//! the connection is closed — slow or stalled clients hold a worker at most that long), and at
//! most 64 connections are open or queued at once (past that: 503 and close). Routing:
//! unknown path 404, known path with another method 405 with `Allow`, a body that is not JSON
//! 400. Nothing here touches the VM but [`execute`], so no client can stall or kill it.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::action::{ActionError, Control, VmAction, VmResponse, execute};
use super::metrics;
use super::socket::ApiSocket;
use super::wire::{ErrorBody, SnapshotRequest};
use crate::sync::lock;

/// What the server accepts.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request head (request line and headers), bytes.
    pub max_head_bytes: usize,
    /// Most headers in a request.
    pub max_headers: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// The whole request must arrive within this long of the connection.
    pub request_timeout: Duration,
    /// Writing the answer may take at most this long.
    pub write_timeout: Duration,
    /// Worker threads (requests served at once).
    pub workers: usize,
    /// Most connections open or waiting for a worker at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 << 10,
            max_headers: 32,
            max_body_bytes: 64 << 10,
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            workers: 4,
            max_connections: 64,
        }
    }
}

/// Every path the API serves and its one method.
pub const ROUTES: [(&str, &str); 8] = [
    ("/vm", "GET"),
    ("/vm/pause", "PUT"),
    ("/vm/resume", "PUT"),
    ("/vm/stop", "PUT"),
    ("/snapshot", "PUT"),
    ("/stats", "GET"),
    ("/pagers", "GET"),
    ("/metrics", "GET"),
];

/// A running server; [`Server::shutdown`] (or drop) stops accepting and removes the socket.
pub struct Server {
    stop: Arc<AtomicBool>,
    path: std::path::PathBuf,
    accept: Option<JoinHandle<()>>,
}

/// An answer to send.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    allow: Option<&'static str>,
}

/// Why no request came out of a connection.
enum ReadError {
    /// The client went away; nobody to answer.
    Closed,
    /// Answer with this status and message, then close.
    Status(u16, String),
}

/// A request head, parsed.
struct Head {
    method: String,
    path: String,
    len: usize,
    content_length: usize,
    chunked: bool,
    expect_continue: bool,
}

impl Server {
    /// Serves `control` on `socket` until shut down.
    pub fn start(
        socket: ApiSocket,
        control: Arc<dyn Control>,
        limits: Limits,
    ) -> io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let path = socket.path().to_owned();
        let (tx, rx) = mpsc::sync_channel::<UnixStream>(limits.max_connections);
        let rx = Arc::new(Mutex::new(rx));
        let open = Arc::new(AtomicUsize::new(0));
        for i in 0..limits.workers {
            let (rx, control, open, limits) =
                (rx.clone(), control.clone(), open.clone(), limits.clone());
            std::thread::Builder::new()
                .name(format!("api-{i}"))
                .spawn(move || worker(&rx, control.as_ref(), &open, &limits))?;
        }
        let s = stop.clone();
        let accept = std::thread::Builder::new()
            .name("api-accept".into())
            .spawn(move || accept_loop(socket, &tx, &s, &open, &limits))?;
        Ok(Server {
            stop,
            path,
            accept: Some(accept),
        })
    }

    /// Stops accepting connections and removes the socket; requests being served finish on
    /// their own (within the request timeout).
    pub fn shutdown(mut self) {
        self.stop_accepting();
    }

    fn stop_accepting(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread; it sees the flag, drops the socket (removing the file).
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop_accepting();
        }
    }
}

fn accept_loop(
    socket: ApiSocket,
    tx: &SyncSender<UnixStream>,
    stop: &AtomicBool,
    open: &AtomicUsize,
    limits: &Limits,
) {
    for conn in socket.listener().incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut conn) = conn else {
            // Out of file descriptors or similar: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if open.fetch_add(1, Ordering::SeqCst) >= limits.max_connections {
            refuse(&mut conn, "too many connections");
            open.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        if let Err(e) = tx.try_send(conn) {
            let (mpsc::TrySendError::Full(mut c) | mpsc::TrySendError::Disconnected(mut c)) = e;
            refuse(&mut c, "server busy");
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Answers 503 without reading the request (the write may not block the accept thread).
fn refuse(conn: &mut UnixStream, why: &str) {
    let _ = conn.set_nonblocking(true);
    let _ = error(503, why).write_to(conn);
}

fn worker(
    rx: &Mutex<Receiver<UnixStream>>,
    control: &dyn Control,
    open: &AtomicUsize,
    limits: &Limits,
) {
    loop {
        let conn = lock(rx).recv();
        let Ok(mut conn) = conn else { return };
        serve(&mut conn, control, limits);
        open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads one request from `conn`, answers it and closes the connection.
fn serve(conn: &mut UnixStream, control: &dyn Control, limits: &Limits) {
    let deadline = Instant::now() + limits.request_timeout;
    let _ = conn.set_write_timeout(Some(limits.write_timeout));
    let reply = match read_request(conn, deadline, limits) {
        Ok((head, body)) => answer(control, &head, &body),
        Err(ReadError::Closed) => return,
        Err(ReadError::Status(code, msg)) => error(code, &msg),
    };
    let _ = reply.write_to(conn);
    linger(conn);
}

/// Half-closes and discards what the client still sends for a moment, so that closing with
/// unread data does not reset the connection before the client has read the answer.
fn linger(conn: &mut UnixStream) {
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut sink = [0u8; 4096];
    let mut left = 1usize << 20;
    while left > 0 {
        match conn.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Reads more bytes into `buf` before `deadline` (at most `max` in all).
fn read_more(
    conn: &mut UnixStream,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Result<(), ReadError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timeout());
    }
    let _ = conn.set_read_timeout(Some(left));
    let mut chunk = [0u8; 4096];
    let want = chunk.len().min(max.saturating_sub(buf.len())).max(1);
    loop {
        match conn.read(&mut chunk[..want]) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timeout());
            }
            Err(_) => return Err(ReadError::Closed),
        }
    }
}

fn timeout() -> ReadError {
    ReadError::Status(408, "the request did not arrive in time".into())
}

fn read_request(
    conn: &mut UnixStream,
    deadline: Instant,
    limits: &Limits,
) -> Result<(Head, Vec<u8>), ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let head = loop {
        if let Some(head) = parse_head(&buf, limits)? {
            break head;
        }
        if buf.len() >= limits.max_head_bytes {
            return Err(ReadError::Status(
                431,
                format!("request head over {} bytes", limits.max_head_bytes),
            ));
        }
        read_more(conn, &mut buf, limits.max_head_bytes, deadline)?;
    };
    if head.chunked {
        return Err(ReadError::Status(
            411,
            "chunked bodies are not accepted; send Content-Length".into(),
        ));
    }
    if head.content_length > limits.max_body_bytes {
        let msg = format!(
            "body of {} bytes is over the {} byte limit",
            head.content_length, limits.max_body_bytes
        );
        return Err(ReadError::Status(413, msg));
    }
    let mut body = buf.split_off(head.len);
    if head.expect_continue && body.len() < head.content_length {
        let _ = conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    while body.len() < head.content_length {
        read_more(conn, &mut body, head.content_length, deadline)?;
    }
    body.truncate(head.content_length);
    Ok((head, body))
}

/// Parses the request head in `buf`: `None` while incomplete.
fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, ReadError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ReadError::Status(
                431,
                format!("more than {} headers", limits.max_headers),
            ));
        }
        Err(e) => return Err(ReadError::Status(400, format!("malformed request: {e}"))),
    };
    let mut head = Head {
        method: req.method.unwrap_or_default().to_owned(),
        path: req.path.unwrap_or_default().to_owned(),
        len,
        content_length: 0,
        chunked: false,
        expect_continue: false,
    };
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            head.content_length = value
                .trim()
                .parse()
                .map_err(|_| ReadError::Status(400, format!("bad Content-Length {value:?}")))?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = true;
        } else if h.name.eq_ignore_ascii_case("expect") {
            head.expect_continue = value.trim().eq_ignore_ascii_case("100-continue");
        }
    }
    Ok(Some(head))
}

/// Routes a request to its action: 404 for unknown paths, 405 for other methods, 400 for a
/// body that is not the JSON the action takes.
fn route(method: &str, path: &str, body: &[u8]) -> Result<VmAction, Reply> {
    let path = path.split('?').next().unwrap_or_default();
    let Some(&(known, allowed)) = ROUTES.iter().find(|(p, _)| *p == path) else {
        return Err(error(404, &format!("no such path {path:?}")));
    };
    if method != allowed {
        let mut r = error(405, &format!("{known} takes {allowed}, not {method}"));
        r.allow = Some(allowed);
        return Err(r);
    }
    let body_json = || -> Result<Option<serde_json::Value>, Reply> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| error(400, &format!("malformed JSON: {e}")))
    };
    let action = match known {
        "/vm" => VmAction::GetVm,
        "/vm/pause" => VmAction::Pause,
        "/vm/resume" => VmAction::Resume,
        "/vm/stop" => VmAction::Stop,
        "/stats" => VmAction::GetStats,
        "/pagers" => VmAction::GetPagers,
        "/metrics" => VmAction::GetMetrics,
        _ => {
            let req = match body_json()? {
                None => SnapshotRequest::default(),
                Some(v) => serde_json::from_value(v)
                    .map_err(|e| error(400, &format!("bad snapshot request: {e}")))?,
            };
            return Ok(VmAction::Snapshot(req));
        }
    };
    if method == "PUT" && body_json()?.is_some_and(|v| !v.is_object()) {
        return Err(error(400, "the body must be a JSON object (or empty)"));
    }
    Ok(action)
}

fn answer(control: &dyn Control, head: &Head, body: &[u8]) -> Reply {
    let action = match route(&head.method, &head.path, body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match execute(control, action) {
        Ok(VmResponse::Vm(v)) => json(200, &v),
        Ok(VmResponse::Snapshot(s)) => json(200, &s),
        Ok(VmResponse::Stats(s)) => json(200, &s),
        Ok(VmResponse::Pagers(p)) => json(200, &p),
        Ok(VmResponse::Metrics(text)) => Reply {
            status: 200,
            content_type: metrics::CONTENT_TYPE,
            body: text.into_bytes(),
            allow: None,
        },
        Err(e @ ActionError::BadRequest(_)) => error(400, &e.to_string()),
        Err(e @ ActionError::Conflict(_)) => error(409, &e.to_string()),
        Err(e @ ActionError::Failed(_)) => error(500, &e.to_string()),
    }
}

fn json(status: u16, v: &impl serde::Serialize) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: serde_json::to_vec(v).unwrap_or_default(),
        allow: None,
    }
}

fn error(status: u16, message: &str) -> Reply {
    json(
        status,
        &ErrorBody {
            error: message.to_owned(),
        },
    )
}

/// The reason phrase of each status the server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

impl Reply {
    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            head.push_str(&format!("Allow: {allow}\r\n"));
        }
        head.push_str("\r\n");
        let mut all = head.into_bytes();
        all.extend_from_slice(&self.body);
        w.write_all(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_answer_404_405_and_400() {
        assert_eq!(route("GET", "/vm", b"").ok(), Some(VmAction::GetVm));
        assert_eq!(
            route("GET", "/metrics?x=1", b"").ok(),
            Some(VmAction::GetMetrics)
        );
        assert_eq!(
            route("GET", "/nope", b"").err().map(|r| r.status),
            Some(404)
        );
        let r = route("POST", "/vm/pause", b"").err().unwrap();
        assert_eq!((r.status, r.allow), (405, Some("PUT")));
        assert_eq!(
            route("PUT", "/snapshot", b"{").err().map(|r| r.status),
            Some(400)
        );
        assert_eq!(
            route("PUT", "/snapshot", br#"{"pth":1}"#)
                .err()
                .map(|r| r.status),
            Some(400)
        );
        assert_eq!(
            route("PUT", "/vm/pause", b"[1]").err().map(|r| r.status),
            Some(400)
        );
        assert_eq!(
            route("PUT", "/vm/pause", b" {} ").ok(),
            Some(VmAction::Pause)
        );
        let ok = route("PUT", "/snapshot", br#"{"path":"/x","then":"stop"}"#).ok();
        assert!(matches!(
            ok,
            Some(VmAction::Snapshot(SnapshotRequest { path: Some(_), .. }))
        ));
    }

    #[test]
    fn heads_parse_with_limits() {
        let l = Limits::default();
        assert!(
            parse_head(b"GET /vm HTTP/1.1\r\nHost: x\r\n", &l)
                .ok()
                .unwrap()
                .is_none()
        );
        let h = parse_head(b"PUT /snapshot HTTP/1.1\r\nContent-Length: 12\r\n\r\n", &l);
        assert_eq!(h.ok().unwrap().unwrap().content_length, 12);
        let bad = parse_head(b"GET /vm HTTP/1.1\r\nContent-Length: x\r\n\r\n", &l);
        assert!(matches!(bad, Err(ReadError::Status(400, _))));
        let many = "GET / HTTP/1.1\r\n".to_owned() + &"A: b\r\n".repeat(40) + "\r\n";
        assert!(matches!(
            parse_head(many.as_bytes(), &l),
            Err(ReadError::Status(431, _))
        ));
    }
}
