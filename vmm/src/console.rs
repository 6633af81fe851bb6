//! What the guest tells the host: console bytes and test-case reports.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sync::lock;

/// Most bytes one `ConsoleWrite` may write; longer writes are truncated.
pub const MAX_WRITE: u64 = 64 << 10;
/// Most console bytes kept per VM; later output is still echoed but not captured.
pub const MAX_CAPTURE: usize = 16 << 20;

/// The VM console: captured in a buffer, optionally echoed to stdout.
#[derive(Debug, Default)]
pub struct Console {
    buf: Mutex<Vec<u8>>,
    echo: bool,
    /// Bytes written past [`MAX_CAPTURE`] (echoed, not kept).
    dropped: AtomicU64,
}

impl Console {
    /// A console that echoes to stdout when `echo` is set.
    pub fn new(echo: bool) -> Self {
        Console {
            buf: Mutex::new(Vec::new()),
            echo,
            dropped: AtomicU64::new(0),
        }
    }

    /// Appends guest output.
    pub fn write(&self, bytes: &[u8]) {
        if self.echo {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes).and_then(|_| out.flush());
        }
        let mut buf = lock(&self.buf);
        let room = MAX_CAPTURE.saturating_sub(buf.len());
        let kept = bytes.len().min(room);
        buf.extend_from_slice(&bytes[..kept]);
        let dropped = (bytes.len() - kept) as u64;
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// Bytes the guest wrote past the capture limit (echoed when echoing, but not kept).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Everything captured so far.
    pub fn contents(&self) -> Vec<u8> {
        lock(&self.buf).clone()
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

/// The test reports of one VM, and the bytes of text they hold.
#[derive(Debug, Default)]
pub struct TestReports(Mutex<(Vec<TestReport>, usize)>);

/// Most reports kept per VM.
pub const MAX_REPORTS: usize = 100_000;
/// Most bytes of report text (names and messages) kept per VM, like [`MAX_CAPTURE`]: a report
/// may carry up to 24 KiB (lossy decoding turns each invalid byte into 3), so the count limit
/// alone would let a guest make the VMM hold gigabytes.
pub const MAX_REPORT_BYTES: usize = MAX_CAPTURE;

impl TestReports {
    /// Records a report (dropped beyond [`MAX_REPORTS`] or [`MAX_REPORT_BYTES`]).
    pub fn push(&self, r: TestReport) {
        let mut g = lock(&self.0);
        let (reports, bytes) = &mut *g;
        let size = r.name.len() + r.message.len();
        if reports.len() < MAX_REPORTS && *bytes + size <= MAX_REPORT_BYTES {
            *bytes += size;
            reports.push(r);
        }
    }

    /// All reports so far.
    pub fn all(&self) -> Vec<TestReport> {
        lock(&self.0).0.clone()
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
        assert_eq!(c.dropped(), 8, "what did not fit is counted");
    }

    #[test]
    fn reports_keep_a_bounded_number_of_bytes() {
        // The longest text a report can carry: MAX_REPORT_TEXT invalid bytes, each lossily
        // decoded to U+FFFD (3 bytes).
        let text = "\u{fffd}".repeat(MAX_REPORT_TEXT as usize);
        let r = TestReports::default();
        for i in 0..4000 {
            r.push(TestReport {
                name: text.clone(),
                passed: i % 2 == 0,
                message: text.clone(),
            });
        }
        let kept: usize = r.all().iter().map(|t| t.name.len() + t.message.len()).sum();
        assert!(kept <= MAX_CAPTURE, "{kept} bytes of report text kept");
        assert!(!r.all().is_empty());
    }
}
