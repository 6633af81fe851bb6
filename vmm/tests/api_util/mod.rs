//! Helpers of the control-socket tests: a `kvmpager run|restore --api-socket` child process
//! whose console lines are collected as they arrive, and two clients — curl over the Unix
//! socket and the crate's own Rust client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use kvmpager_vmm::api::client;
pub use kvmpager_vmm::skip_without_kvm;

/// A fresh directory under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("kvmpager-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `kvmpager` with its API socket; console lines in `lines` as they arrive.
pub struct Vmm {
    pub child: Child,
    pub socket: PathBuf,
    pub lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

/// Starts `kvmpager ARGS --api-socket SOCKET` and waits until the socket answers.
pub fn start(args: &[&str], socket: &Path) -> Vmm {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .args(args)
        .arg("--api-socket")
        .arg(socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvmpager starts");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let l = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            l.lock().unwrap().push(line);
        }
    });
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let vmm = Vmm {
        child,
        socket: socket.to_owned(),
        lines,
        reader: Some(reader),
        stderr: Some(stderr),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while client::request(socket, "GET", "/vm", None).is_err() {
        assert!(Instant::now() < deadline, "the API socket never answered");
        std::thread::sleep(Duration::from_millis(10));
    }
    vmm
}

impl Vmm {
    /// A copy of the console lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The ticker guest's tick numbers so far.
    pub fn ticks(&self) -> Vec<u64> {
        ticks(&self.lines())
    }

    /// The tick numbers once no new one has arrived for 300 ms (the console is echoed line by
    /// line, so after a pause only the reader thread can lag).
    pub fn settled_ticks(&self) -> Vec<u64> {
        let mut last = self.ticks();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.ticks();
            if now == last {
                return now;
            }
            last = now;
        }
        panic!("the ticks never settled: {last:?}")
    }

    /// Waits until `pred` holds of the console lines (panics after `secs`).
    pub fn wait_for(&self, secs: u64, pred: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !pred(&self.lines()) {
            assert!(
                Instant::now() < deadline,
                "timed out; console: {:?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the process to exit; its exit code, all console lines and its stderr.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        eprintln!("{err}");
        (status.code(), self.lines(), err)
    }
}

impl Drop for Vmm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tick numbers in `lines`.
pub fn ticks(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("tick ")?.trim().parse().ok())
        .collect()
}

/// Whether curl is installed (the tests that use it say so and skip without it).
pub fn have_curl() -> bool {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping the curl half: curl is not installed");
    }
    ok
}

/// `curl --unix-socket SOCKET -X METHOD [-d BODY] http://localhost URI`: (status, body).
pub fn curl(socket: &Path, method: &str, uri: &str, body: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-S", "--max-time", "60", "--unix-socket"])
        .arg(socket);
    c.args(["-X", method, "-w", "\n%{http_code}"]);
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    c.arg(format!("http://localhost{uri}"));
    let out = c.output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// A JSON answer through the Rust client (panics unless 200).
pub fn get(socket: &Path, uri: &str) -> serde_json::Value {
    client::call(socket, "GET", uri, None).unwrap()
}

/// `PUT uri` through the Rust client (panics unless 200).
pub fn put(socket: &Path, uri: &str, body: Option<&str>) -> serde_json::Value {
    client::call(socket, "PUT", uri, body).unwrap()
}
