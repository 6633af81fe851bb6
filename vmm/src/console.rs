//! What the guest tells the host: console bytes and test-case reports.

use std::io::Write;
use std::sync::Mutex;

/// Most bytes one `ConsoleWrite` may write; longer writes are truncated.
pub const MAX_WRITE: u64 = 64 << 10;
/// Most console bytes kept per VM; later output is still echoed but not captured.
pub const MAX_CAPTURE: usize = 16 << 20;

/// The VM console: captured in a buffer, optionally echoed to stdout.
#[derive(Debug, Default)]
pub struct Console {
    buf: Mutex<Vec<u8>>,
    echo: bool,
}

impl Console {
    /// A console that echoes to stdout when `echo` is set.
    pub fn new(echo: bool) -> Self {
        Console {
            buf: Mutex::new(Vec::new()),
            echo,
        }
    }

    /// Appends guest output.
    pub fn write(&self, bytes: &[u8]) {
        if self.echo {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes).and_then(|_| out.flush());
        }
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = MAX_CAPTURE.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Everything captured so far.
    pub fn contents(&self) -> Vec<u8> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One test case result reported by a guest (`TestReport`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestReport {
    /// Case name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Message (failure explanation).
    pub message: String,
}

/// Most bytes kept of a test report's name or message.
pub const MAX_REPORT_TEXT: u64 = 4096;

/// The test reports of one VM.
#[derive(Debug, Default)]
pub struct TestReports(Mutex<Vec<TestReport>>);

/// Most reports kept per VM.
pub const MAX_REPORTS: usize = 100_000;

impl TestReports {
    /// Records a report (dropped beyond [`MAX_REPORTS`]).
    pub fn push(&self, r: TestReport) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < MAX_REPORTS {
            v.push(r);
        }
    }

    /// All reports so far.
    pub fn all(&self) -> Vec<TestReport> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_captures_and_caps() {
        let c = Console::new(false);
        c.write(b"hi ");
        c.write(b"there");
        assert_eq!(c.contents(), b"hi there");
        c.write(&vec![b'x'; MAX_CAPTURE]);
        assert_eq!(c.contents().len(), MAX_CAPTURE);
    }
}
