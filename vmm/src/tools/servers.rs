//! Real object servers for the snapshot-URL tests and bench case 6: nginx with WebDAV (the
//! distribution's `nginx` package plus `libnginx-mod-http-dav-ext` for PROPFIND), started on
//! a free loopback port from a config in a scratch directory and stopped on drop. A missing
//! binary is an error saying what to install (`.ci/run` installs it).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The WebDAV extension module nginx loads for PROPFIND (listing).
pub const DAV_EXT: &str = "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so";

const INSTALL: &str = "apt-get install nginx libnginx-mod-http-dav-ext";

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `binary` on `PATH` or at one of `also`.
pub fn find_binary(binary: &str, also: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(binary))
        .chain(also.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Waits until something listens on `port` (20 s at most, or until `child` exits).
pub fn wait_listening(port: u16, what: &str, child: &mut Child) -> Result<(), String> {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("{what} exited at start ({st})"));
        }
        if t0.elapsed() > Duration::from_secs(20) {
            return Err(format!("{what} did not start listening on port {port}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Stops a server this process started: SIGTERM, then SIGKILL if it lingers.
pub fn stop_child(child: &mut Child) {
    // SAFETY: kill(2) on the pid of a child this process spawned; no memory is passed.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// nginx serving `DIR/root` with WebDAV (GET with ranges, PUT, DELETE, MKCOL, PROPFIND).
pub struct Nginx {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The scratch directory (config, root, logs).
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Nginx {
    /// Starts nginx in `dir` (created).
    pub fn start(dir: &Path) -> Result<Nginx, String> {
        let bin = find_binary("nginx", &["/usr/sbin/nginx"])
            .ok_or_else(|| format!("nginx is not installed: {INSTALL}"))?;
        if !Path::new(DAV_EXT).is_file() {
            return Err(format!("{DAV_EXT} is missing: {INSTALL}"));
        }
        let port = free_port().map_err(|e| e.to_string())?;
        for d in ["root", "tmp", "logs"] {
            std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
        }
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(dir, port)).map_err(|e| e.to_string())?;
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nginx: {e}"))?;
        if let Err(e) = wait_listening(port, "nginx", &mut child) {
            stop_child(&mut child);
            return Err(e);
        }
        Ok(Nginx {
            port,
            dir: dir.to_path_buf(),
            child: Some(child),
        })
    }

    /// The served directory.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// `http://127.0.0.1:PORT/rel`.
    pub fn url(&self, rel: &str) -> String {
        format!("http://127.0.0.1:{}/{rel}", self.port)
    }

    /// Stops the server now.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The config: one server on 127.0.0.1:`port`, WebDAV on everything; workers run as root
/// when we are root (so they can write the scratch directory).
fn config(dir: &Path, port: u16) -> String {
    // SAFETY: geteuid has no arguments and cannot fail.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root root;"
    } else {
        ""
    };
    let d = dir.display();
    format!(
        "load_module {DAV_EXT};\n{user}\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/logs/error.log;\nevents {{ worker_connections 512; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  client_body_temp_path {d}/tmp;\n  \
         client_max_body_size 64m;\n  server {{\n    listen 127.0.0.1:{port};\n    \
         root {d}/root;\n    location / {{\n      dav_methods PUT DELETE MKCOL COPY MOVE;\n      \
         dav_ext_methods PROPFIND OPTIONS;\n      create_full_put_path on;\n      \
         dav_access user:rw group:r all:r;\n    }}\n  }}\n}}\n"
    )
}
