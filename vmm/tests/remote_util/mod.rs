//! Real object servers for the snapshot-URL tests, each started on a free loopback port and
//! stopped on drop: nginx with WebDAV (`kvmpager_vmm::tools::servers`) and moto's S3 server
//! (PyPI `moto[server]`). A missing binary fails the test saying what to install (`.ci/run`
//! installs both). Also a fault-injecting HTTP proxy that sits in front of the real nginx, and
//! running `kvmpager` itself (`kvmpager`, `json`, `stderr`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use kvmpager_vmm::tools::servers::free_port;
use kvmpager_vmm::tools::servers::{find_binary, stop_child, wait_listening};

/// Runs `kvmpager ARGS` with `env` added (and `RUST_LOG=error`), echoing its stderr.
pub fn kvmpager(args: &[&str], env: &[(String, String)]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "error")
        .output()
        .expect("kvmpager runs");
    eprintln!(
        "$ kvmpager {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A command's stdout as JSON (`--json`).
pub fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A command's stderr as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// MiB of pattern the snapshot tests' `pattern` guest writes (at 32 MiB of 128 MiB RAM).
pub const MIB: u64 = 24;

/// Runs the pattern guest (1 vCPU, 128 MiB, `rounds` rounds; parameters in `dir`) until its
/// first snapshot, to `target` (directory or URL); returns the run's JSON.
pub fn snapshot_pattern(
    dir: &Path,
    target: &str,
    rounds: u64,
    env: &[(String, String)],
) -> serde_json::Value {
    let params = dir.join("params.img");
    kvmpager_vmm::tools::demo::write_pattern_params(&params, MIB, 0x5eed, rounds).unwrap();
    let p = params.to_str().unwrap();
    let args = [
        "run",
        "--guest",
        "embedded:pattern",
        "--image",
        p,
        "--memory",
        "128M",
        "--vcpus",
        "1",
        "--snapshot-dir",
        target,
        "--timeout",
        "60",
        "--json",
    ];
    let out = kvmpager(&args, env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)
}

/// `kvmpager restore SRC --cache-dir CACHE --timeout 60 --json EXTRA...` in a new process.
pub fn restore_unhashed(
    src: &str,
    cache: &Path,
    extra: &[&str],
    env: &[(String, String)],
) -> std::process::Output {
    let cache = cache.to_str().unwrap();
    let mut args = vec![
        "restore",
        src,
        "--cache-dir",
        cache,
        "--timeout",
        "60",
        "--json",
    ];
    args.extend_from_slice(extra);
    kvmpager(&args, env)
}

/// [`restore_unhashed`] with `--ram-hash`.
pub fn restore(
    src: &str,
    cache: &Path,
    extra: &[&str],
    env: &[(String, String)],
) -> std::process::Output {
    let mut args = vec!["--ram-hash"];
    args.extend_from_slice(extra);
    restore_unhashed(src, cache, &args, env)
}

/// One guest that verified every byte and exited 0.
pub fn guest_ok(v: &serde_json::Value) {
    assert_eq!(v["exit_code"], 0, "{v}");
    let console = v["console"].as_str().unwrap();
    assert!(console.contains("verified every byte"), "{console}");
}

/// A [`restore`] that must succeed: the guest verifies every byte and exits 0.
pub fn restore_ok(
    src: &str,
    cache: &Path,
    extra: &[&str],
    env: &[(String, String)],
) -> serde_json::Value {
    let out = restore(src, cache, extra, env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    guest_ok(&v);
    v
}

/// The pattern guest snapshotted into the directory `local` (under `dir`), copied to nginx as
/// `store/s1`; the local restore (which records the working set into the snapshot) gives the
/// reference RAM hash.
pub struct Fixture {
    pub dir: crate::microvm_util::TempDir,
    pub nginx: Nginx,
    pub local: String,
    pub reference: String,
}

impl Fixture {
    /// The manifest's chunk names in RAM order (`None`: an all-zero chunk).
    pub fn chunks(&self) -> Vec<Option<String>> {
        let path = self.nginx.root().join("store/snapshots/s1/manifest.json");
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        m["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().map(String::from))
            .collect()
    }
}

/// A [`Fixture`] in a new temporary directory named after `name`.
pub fn fixture(name: &str) -> Fixture {
    let dir = crate::microvm_util::TempDir::new(name);
    let nginx = Nginx::start(&dir.join("nginx"));
    let local = dir.join("snap").display().to_string();
    snapshot_pattern(dir.path(), &local, 1, &[]);
    let base = restore_ok(&local, &dir.join("unused-cache"), &["--record"], &[]);
    let reference = base["ram_blake3"].as_str().unwrap().to_string();
    let out = kvmpager(&["snapshot", "copy", &local, &nginx.url("store/s1")], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    Fixture {
        dir,
        nginx,
        local,
        reference,
    }
}

/// nginx with WebDAV on a free loopback port (panics saying what to install if missing).
pub struct Nginx(pub kvmpager_vmm::tools::servers::Nginx);

impl Nginx {
    pub fn start(dir: &Path) -> Nginx {
        Nginx(kvmpager_vmm::tools::servers::Nginx::start(dir).unwrap_or_else(|e| panic!("{e}")))
    }
}

impl std::ops::Deref for Nginx {
    type Target = kvmpager_vmm::tools::servers::Nginx;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// moto's S3 server on 127.0.0.1 with one bucket.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    pub fn start(bucket: &str) -> Moto {
        let bin = find_binary("moto_server", &[]).unwrap_or_else(|| {
            panic!("moto_server is not installed: pip install 'moto[server]' (.ci/run does this)")
        });
        let port = free_port().unwrap();
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        wait_listening(port, "moto_server", &mut child).unwrap();
        let m = Moto { port, child };
        let (status, _) = http(
            port,
            &format!(
                "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        );
        assert!(status.contains("200"), "creating bucket {bucket}: {status}");
        m
    }

    /// The environment a kvmpager needs to reach this server (SigV4 with test credentials).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// One raw HTTP exchange: (status line, body).
fn http(port: u16, request: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut b = Vec::new();
    s.read_to_end(&mut b).unwrap();
    let text = String::from_utf8_lossy(&b).into_owned();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map_or(Vec::new(), |(_, b)| b.as_bytes().to_vec());
    (status, body)
}

/// What the proxy does to chunk GETs (other requests pass through untouched).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// The first N chunk GETs get `500 Internal Server Error`.
    Errors(u64),
    /// The first N chunk GETs get their connection closed without an answer.
    Drops(u64),
    /// The first N chunk GETs get one byte of the body flipped.
    Corrupt(u64),
    /// Every chunk GET gets half the body (with a matching Content-Length).
    Truncate,
    /// After N chunk GETs the proxy stops: the port refuses connections.
    StopAfter(u64),
    /// Chunk GETs are never answered (the connection stays open).
    Stall,
}

/// A one-request-per-connection HTTP proxy in front of `upstream` that injects a [`Fault`].
pub struct FaultProxy {
    pub port: u16,
    pub chunk_gets: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

struct ProxyState {
    upstream: u16,
    fault: Fault,
    chunk_gets: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    listener: Mutex<Option<TcpListener>>,
}

impl FaultProxy {
    pub fn start(upstream: u16, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let st = Arc::new(ProxyState {
            upstream,
            fault,
            chunk_gets: Arc::default(),
            stop: Arc::default(),
            listener: Mutex::new(Some(listener)),
        });
        let p = FaultProxy {
            port,
            chunk_gets: st.chunk_gets.clone(),
            stop: st.stop.clone(),
        };
        std::thread::spawn(move || accept_loop(st));
        p
    }

    pub fn url(&self, rel: &str) -> String {
        format!("http://127.0.0.1:{}/{rel}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(st: Arc<ProxyState>) {
    while !st.stop.load(Ordering::SeqCst) {
        let accepted = {
            let l = st.listener.lock().unwrap();
            match l.as_ref() {
                Some(l) => l.accept(),
                None => return,
            }
        };
        match accepted {
            Ok((conn, _)) => {
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(&st, conn);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Reads one request head (and body, by Content-Length).
fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<(String, Vec<u8>)> {
    let mut head = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        let lower = line.to_ascii_lowercase();
        if !lower.starts_with("connection:") && !lower.starts_with("keep-alive:") {
            head.push_str(&line);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok((head, body))
}

fn serve(st: &ProxyState, conn: TcpStream) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    let mut r = BufReader::new(conn.try_clone()?);
    let (head, body) = read_request(&mut r)?;
    let mut out = conn;
    let is_chunk =
        head.starts_with("GET ") && head.lines().next().unwrap_or("").contains("/chunks/");
    let n = if is_chunk {
        st.chunk_gets.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        0
    };
    if is_chunk {
        match st.fault {
            Fault::Errors(k) if n <= k => {
                return out.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
            Fault::Drops(k) if n <= k => return out.shutdown(Shutdown::Both),
            Fault::StopAfter(k) if n > k => {
                st.listener.lock().unwrap().take();
                return out.shutdown(Shutdown::Both);
            }
            Fault::Stall => {
                std::thread::sleep(Duration::from_secs(120));
                return Ok(());
            }
            _ => {}
        }
    }
    // Forward with Connection: close; read the whole answer.
    let mut up = TcpStream::connect(("127.0.0.1", st.upstream))?;
    let head = head.trim_end_matches("\r\n").to_string() + "\r\nConnection: close\r\n\r\n";
    up.write_all(head.as_bytes())?;
    up.write_all(&body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    if is_chunk {
        resp = mangle(resp, st.fault, n);
    }
    out.write_all(&resp)?;
    out.shutdown(Shutdown::Both)
}

/// Applies a body fault to a whole response.
fn mangle(resp: Vec<u8>, fault: Fault, n: u64) -> Vec<u8> {
    let Some(at) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return resp;
    };
    let (head, body) = (&resp[..at + 4], &resp[at + 4..]);
    match fault {
        Fault::Corrupt(k) if n <= k && !body.is_empty() => {
            let mut r = resp.clone();
            let i = at + 4 + body.len() / 2;
            r[i] ^= 0x40;
            r
        }
        Fault::Truncate if body.len() > 1 => {
            let half = body.len() / 2;
            let head = String::from_utf8_lossy(head);
            let mut out = String::new();
            for line in head.split("\r\n") {
                let l = line.to_ascii_lowercase();
                if l.starts_with("content-length:") {
                    out.push_str(&format!("Content-Length: {half}\r\n"));
                } else if l.starts_with("content-range:") {
                    out.push_str(&format!("Content-Range: bytes 0-{}/{}\r\n", half - 1, half));
                } else if !line.is_empty() {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
            }
            out.push_str("\r\n");
            let mut r = out.into_bytes();
            r.extend_from_slice(&body[..half]);
            r
        }
        _ => resp,
    }
}
