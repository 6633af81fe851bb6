//! Hostile clients of the control socket against a running `ticker` VM: malformed JSON,
//! wrong methods, unknown paths, garbage, oversized heads and bodies, chunked bodies, clients
//! that send slowly or never finish, and 100 connections at once. Each gets a clear HTTP
//! error or is dropped; meanwhile the API keeps answering and the guest keeps ticking, and it
//! exits with its own code at the end.

mod api_util;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use api_util::*;

/// Sends `raw` on a fresh connection and reads the whole answer: (status, text).
fn raw(socket: &Path, raw: &[u8]) -> (u16, String) {
    let mut c = UnixStream::connect(socket).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = c.write_all(raw);
    read_answer(&mut c)
}

fn read_answer(c: &mut UnixStream) -> (u16, String) {
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The error body of an answer names something.
fn error_body(text: &str) -> serde_json::Value {
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{text}");
    v
}

/// The API answers `GET /vm` promptly and the VM is running.
fn still_fine(socket: &Path) {
    let t = Instant::now();
    let v = get(socket, "/vm");
    assert_eq!(v["state"], "running");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "GET /vm took {:?}",
        t.elapsed()
    );
}

#[test]
fn hostile_clients_get_errors_and_the_vm_goes_on() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("hostile");
    let socket = dir.join("vm.sock");
    // 4 vCPUs: 900 ticks, 18 s.
    let vm = start(
        &[
            "run",
            "--guest",
            "embedded:ticker",
            "--vcpus",
            "4",
            "--timeout",
            "60",
        ],
        &socket,
    );
    let s = &socket;

    // Slow clients first (they take the request timeout): one that never sends anything and
    // one that sends a byte every 300 ms. Both hold a worker at most 5 s, then get 408.
    let slow = [s.clone(), s.clone()].map(|p| {
        std::thread::spawn(move || {
            let mut c = UnixStream::connect(&p).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let t = Instant::now();
            for b in b"GET /vm HTTP/1.1\r\nHost: x\r\n" {
                if c.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
                if t.elapsed() > Duration::from_secs(7) {
                    break;
                }
            }
            (read_answer(&mut c).0, t.elapsed())
        })
    });
    let silent = {
        let p = s.clone();
        std::thread::spawn(move || {
            let mut c = UnixStream::connect(&p).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let t = Instant::now();
            (read_answer(&mut c).0, t.elapsed())
        })
    };

    // Meanwhile the other workers answer everything else.
    if have_curl() {
        let (st, body) = curl(s, "PUT", "/snapshot", Some("{\"path\": "));
        assert_eq!(st, 400, "{body}");
        assert!(body.contains("malformed JSON"), "{body}");
        assert_eq!(curl(s, "DELETE", "/vm", None).0, 405);
        assert_eq!(curl(s, "GET", "/vm/pause", None).0, 405);
        assert_eq!(curl(s, "GET", "/no/such/path", None).0, 404);
        let big = format!("{{\"path\": \"{}\"}}", "x".repeat(100 << 10));
        let (st, body) = curl(s, "PUT", "/snapshot", Some(&big));
        assert_eq!(st, 413, "{body}");
    }
    let (st, text) = raw(
        s,
        b"PUT /snapshot HTTP/1.1\r\nContent-Length: 4\r\n\r\n{\"pa",
    );
    assert_eq!(st, 400, "{text}");
    error_body(&text);
    let (st, text) = raw(s, b"PUT /vm/pause HTTP/1.1\r\nContent-Length: 3\r\n\r\n[1]");
    assert_eq!(st, 400, "{text}");
    let (st, text) = raw(s, b"POST /vm HTTP/1.1\r\n\r\n");
    assert_eq!(st, 405);
    assert!(text.contains("Allow: GET"), "{text}");
    assert_eq!(raw(s, b"GET / HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(raw(s, b"GET /vm/ HTTP/1.1\r\n\r\n").0, 404);
    let (st, text) = raw(s, b"\x00\x01\x02 garbage\r\n\r\n");
    assert_eq!(st, 400, "{text}");
    error_body(&text);
    // An oversized body is refused from its Content-Length alone.
    let (st, text) = raw(
        s,
        b"PUT /snapshot HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n",
    );
    assert_eq!(st, 413, "{text}");
    error_body(&text);
    let head = format!(
        "GET /vm HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10 << 10)
    );
    assert_eq!(raw(s, head.as_bytes()).0, 431);
    let many = format!("GET /vm HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(40));
    assert_eq!(raw(s, many.as_bytes()).0, 431);
    let chunked =
        b"PUT /snapshot HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    assert_eq!(raw(s, chunked).0, 411);
    let (st, _) = raw(s, b"PUT /snapshot HTTP/1.1\r\nContent-Length: x\r\n\r\n");
    assert_eq!(st, 400);
    // A client that goes away mid-request costs nothing.
    drop(UnixStream::connect(s).unwrap().write_all(b"GET /v"));
    still_fine(s);

    for t in slow {
        let (st, took) = t.join().unwrap();
        assert_eq!(st, 408, "a slow client was not cut off");
        assert!(took < Duration::from_secs(7), "{took:?}");
    }
    let (st, took) = silent.join().unwrap();
    assert_eq!(st, 408);
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(7),
        "{took:?}"
    );
    still_fine(s);

    // 100 connections at once, each then asking for /vm: every one gets 200 or 503.
    let conns: Vec<UnixStream> = (0..100).map(|_| UnixStream::connect(s).unwrap()).collect();
    let answers: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let _ = c.write_all(b"GET /vm HTTP/1.1\r\n\r\n");
                read_answer(&mut c).0
            })
        })
        .collect();
    let codes: Vec<u16> = answers.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = codes.iter().filter(|c| **c == 200).count();
    let busy = codes.iter().filter(|c| **c == 503).count();
    eprintln!("100 connections at once: {ok} answered, {busy} told 503");
    assert_eq!(ok + busy, 100, "{codes:?}");
    assert!(ok >= 50, "{codes:?}");
    still_fine(s);
    let seen = vm.ticks().len();
    vm.wait_for(10, |l| ticks(l).len() > seen + 10);

    let (code, lines, _) = vm.finish();
    assert_eq!(code, Some(7));
    assert_eq!(ticks(&lines), (1..=900).collect::<Vec<_>>());
}
