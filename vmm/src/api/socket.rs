//! The control socket's file: bound with mode 0600; a socket left by a crashed run (nobody
//! accepts on it) is replaced, a live one (another process answers) is refused, and anything
//! that is not a socket is never removed. The file is removed when the [`ApiSocket`] drops,
//! if it is still the one this process bound.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Errors binding the control socket.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process serves the socket.
    #[error("{0}: another process is serving this API socket")]
    Live(PathBuf),
    /// The path exists and is not a socket.
    #[error("{0}: exists and is not a socket; not replacing it")]
    NotSocket(PathBuf),
    /// Binding or setting the mode failed.
    #[error("{path}: {error}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What failed.
        error: io::Error,
    },
}

/// A bound control socket.
#[derive(Debug)]
pub struct ApiSocket {
    listener: UnixListener,
    path: PathBuf,
    ino: u64,
}

impl ApiSocket {
    /// Binds `path` (mode 0600), replacing a stale socket and refusing a live one.
    pub fn bind(path: &Path) -> Result<ApiSocket, Error> {
        let io_err = |error| Error::Io {
            path: path.to_owned(),
            error,
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(Error::NotSocket(path.to_owned()));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(Error::Live(path.to_owned()));
            }
            log::info!("{}: replacing a stale API socket", path.display());
            std::fs::remove_file(path).map_err(io_err)?;
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        let ino = std::fs::metadata(path).map_err(io_err)?.ino();
        Ok(ApiSocket {
            listener,
            path: path.to_owned(),
            ino,
        })
    }

    /// The listening socket.
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ApiSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_is_replaced_live_is_refused_files_are_kept() {
        let dir = std::env::temp_dir().join(format!("kvmpager-sock-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("api.sock");
        let _ = std::fs::remove_file(&path);
        // A stale socket: bound, then the listener dropped without removing the file.
        drop(UnixListener::bind(&path).unwrap());
        let s = ApiSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(ApiSocket::bind(&path), Err(Error::Live(_))));
        drop(s);
        assert!(!path.exists());
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(matches!(ApiSocket::bind(&path), Err(Error::NotSocket(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
