//! Where the contents of guest RAM pages come from: the [`PageSource`] trait and its
//! implementations ([`ZeroFill`], [`PatternSource`], [`ImageSource`]), which fill the host
//! pager's aux VMOs.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use kvmpager::abi::PAGE_SIZE;

use super::{Aux, Error, Result};

/// Where the contents of guest RAM pages come from.
///
/// `fill` is called from the pager thread (and the prefetcher before the guest starts);
/// `data_runs` and `copy_to` from the snapshot writer while the guest is paused.
pub trait PageSource: Send + Sync + 'static {
    /// Fills `aux[aux_offset, +len)` (page aligned; every page committed afterwards) with the
    /// contents of RAM at byte offset `ram_offset`.
    fn fill(&self, aux: &Aux<'_>, aux_offset: u64, ram_offset: u64, len: u64) -> Result<()>;

    /// Byte ranges of RAM whose source contents may be non-zero (page aligned, sorted).
    fn data_runs(&self) -> Result<Vec<Range<u64>>> {
        Ok(Vec::new())
    }

    /// Writes the source's bytes of RAM range `range` to `out` at the same offsets.
    fn copy_to(&self, _out: &File, _range: Range<u64>) -> Result<()> {
        Ok(())
    }

    /// [`PageSource::copy_to`] for a page request (a shared root's fill, on the pager
    /// thread): a remote source's waits end when the VM shuts down.
    fn fill_file(&self, out: &File, range: Range<u64>) -> Result<()> {
        self.copy_to(out, range)
    }

    /// A short description for messages.
    fn describe(&self) -> String;

    /// The VM is going away: stop waiting for anything (remote sources).
    fn shut_down(&self) {}

    /// Whether `fill` never waits on anything slow (memory, a local file): the host pager
    /// then serves faults on the fault service's own thread, without a handoff.
    fn is_quick(&self) -> bool {
        false
    }

    /// The BLAKE3 of RAM `range`'s source bytes, when the source knows it without reading
    /// them (a chunked snapshot's whole chunk): a snapshot writer need not fetch them.
    fn known_hash(&self, _range: Range<u64>) -> Option<[u8; 32]> {
        None
    }
}

/// RAM that starts as zeros.
#[derive(Debug, Default)]
pub struct ZeroFill;

impl PageSource for ZeroFill {
    fn is_quick(&self) -> bool {
        true
    }

    fn fill(&self, aux: &Aux<'_>, aux_offset: u64, _ram_offset: u64, len: u64) -> Result<()> {
        aux.zero(aux_offset, len)
    }

    fn describe(&self) -> String {
        "zero-filled RAM".into()
    }
}

/// The built-in pattern pager: RAM holds the demo image ([`crate::tools::demo::DemoPattern`]),
/// computed page by page on first touch — no file; all-zero runs are committed as zero pages.
#[derive(Debug)]
pub struct PatternSource {
    pattern: crate::tools::demo::DemoPattern,
}

impl PatternSource {
    /// RAM holding the demo image with `data_len` bytes of data.
    pub fn new(data_len: u64) -> Result<PatternSource> {
        let pattern =
            crate::tools::demo::DemoPattern::new(data_len).map_err(|error| Error::Io {
                what: "the demo pattern".into(),
                error,
            })?;
        Ok(PatternSource { pattern })
    }
}

impl PageSource for PatternSource {
    fn is_quick(&self) -> bool {
        true
    }

    fn fill(&self, aux: &Aux<'_>, aux_offset: u64, ram_offset: u64, len: u64) -> Result<()> {
        let mut buf = vec![0u8; len as usize];
        self.pattern.fill(ram_offset, &mut buf);
        if buf.iter().all(|&b| b == 0) {
            aux.zero(aux_offset, len)
        } else {
            aux.write(aux_offset, &buf)
        }
    }

    fn data_runs(&self) -> Result<Vec<Range<u64>>> {
        Ok(self.pattern.data_runs())
    }

    fn copy_to(&self, out: &File, range: Range<u64>) -> Result<()> {
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        self.pattern.fill(range.start, &mut buf);
        out.write_all_at(&buf, range.start)
            .map_err(|error| Error::Io {
                what: "a snapshot's RAM file".into(),
                error,
            })
    }

    fn describe(&self) -> String {
        "the built-in demo pattern".into()
    }
}

/// A raw memory image: byte `i` of the file is byte `i` of RAM; RAM past the end of the file
/// and the file's holes read as zero. Holes are found with `lseek(SEEK_DATA / SEEK_HOLE)` and
/// committed as zero pages without reading the file.
#[derive(Debug)]
pub struct ImageSource {
    file: File,
    path: PathBuf,
    len: u64,
}

/// `lseek(fd, offset, whence)`; `None` for `ENXIO` (no data / hole at or after `offset`).
fn seek(file: &File, offset: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: lseek on a file descriptor we own; no memory is passed.
    let r = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENXIO) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Largest piece [`ImageSource::copy_to`] reads and writes at once.
const COPY_BUF: usize = 2 << 20;

fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

fn page_up(x: u64) -> u64 {
    x.saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

impl ImageSource {
    /// Opens `path` as the image of a RAM of `ram_size` bytes; the file must be a regular file
    /// no larger than RAM.
    pub fn open(path: &Path, ram_size: u64) -> Result<Self> {
        let bad = |reason: String| Error::Image {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| bad(format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        let len = meta.len();
        if len > ram_size {
            return Err(bad(format!(
                "the image is {len} bytes, larger than guest RAM ({ram_size} bytes)"
            )));
        }
        Ok(ImageSource {
            file,
            path: path.to_path_buf(),
            len,
        })
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn io(&self, error: io::Error) -> Error {
        Error::Io {
            what: self.path.display().to_string(),
            error,
        }
    }

    /// Reads `buf.len()` bytes of the image at `offset` (bytes past its end read as zero).
    pub fn read_into(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .file
                .read_at(&mut buf[done..], offset + done as u64)
                .map_err(|e| self.io(e))?;
            if n == 0 {
                buf[done..].fill(0);
                break;
            }
            done += n;
        }
        Ok(())
    }

    /// The next data extent at or after `at` (page-widened), if any before the end of file.
    fn next_data(&self, at: u64) -> Result<Option<Range<u64>>> {
        if at >= self.len {
            return Ok(None);
        }
        let Some(data) = seek(&self.file, at, libc::SEEK_DATA).map_err(|e| self.io(e))? else {
            return Ok(None);
        };
        let hole = seek(&self.file, data, libc::SEEK_HOLE)
            .map_err(|e| self.io(e))?
            .unwrap_or(self.len);
        Ok(Some(page_down(data).max(page_down(at))..page_up(hole)))
    }
}

impl PageSource for ImageSource {
    fn is_quick(&self) -> bool {
        true
    }

    fn fill(&self, aux: &Aux<'_>, aux_offset: u64, ram_offset: u64, len: u64) -> Result<()> {
        let end = ram_offset + len;
        let mut at = ram_offset;
        let to_aux = |ram: u64| aux_offset + (ram - ram_offset);
        while at < end {
            let Some(data) = self.next_data(at)? else {
                return aux.zero(to_aux(at), end - at);
            };
            let data_start = data.start.min(end);
            aux.zero(to_aux(at), data_start - at)?;
            let data_end = data.end.min(end);
            if data_start < data_end {
                aux.read_file(
                    to_aux(data_start),
                    data_end - data_start,
                    &self.file,
                    data_start,
                )?;
            }
            at = data_end.max(data_start);
        }
        Ok(())
    }

    fn data_runs(&self) -> Result<Vec<Range<u64>>> {
        let mut runs = Vec::new();
        let mut at = 0;
        while let Some(r) = self.next_data(at)? {
            at = r.end;
            runs.push(r);
        }
        Ok(runs)
    }

    fn copy_to(&self, out: &File, range: Range<u64>) -> Result<()> {
        // One buffer per thread, kept: a fresh one would fault in every page of it again
        // (shared roots are filled through here on every first touch).
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            buf.resize(COPY_BUF, 0);
            let mut at = range.start;
            while at < range.end {
                let n = ((range.end - at) as usize).min(buf.len());
                let got = self
                    .file
                    .read_at(&mut buf[..n], at)
                    .map_err(|e| self.io(e))?;
                if got == 0 {
                    break; // past the end of the file: zeros, i.e. a hole in `out`
                }
                out.write_all_at(&buf[..got], at).map_err(|e| Error::Io {
                    what: "a copy of a snapshot's RAM".into(),
                    error: e,
                })?;
                at += got as u64;
            }
            Ok(())
        })
    }

    fn describe(&self) -> String {
        format!("image {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use crate::host_pager::PagerCounters;
    use crate::kernel::Process;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("kvmpager-hp-{}-{name}", std::process::id()))
    }

    #[test]
    fn image_source_fills_data_and_holes() {
        let path = tmp("img");
        let mut f = File::create(&path).unwrap();
        f.set_len(8 * PAGE_SIZE + 100).unwrap();
        f.write_all_at(&[7u8; 4096], 2 * PAGE_SIZE).unwrap();
        f.write_all_at(b"tail", 8 * PAGE_SIZE + 10).unwrap();
        f.flush().unwrap();
        let src = ImageSource::open(&path, 16 * PAGE_SIZE).unwrap();
        let runs = src.data_runs().unwrap();
        assert!(
            runs.iter().any(|r| r.contains(&(2 * PAGE_SIZE))),
            "{runs:?}"
        );
        let p = Process::new();
        let h = p.vmo_create(16 * PAGE_SIZE, 0).unwrap();
        let counters = PagerCounters::default();
        let aux = Aux {
            process: &p,
            handle: h,
            vmo: p.vmo_object(h).unwrap(),
            counters: &counters,
        };
        src.fill(&aux, 0, 0, 16 * PAGE_SIZE).unwrap();
        let mut buf = vec![0u8; (16 * PAGE_SIZE) as usize];
        p.vmo_read(h, &mut buf, 0).unwrap();
        assert!(buf[..2 * 4096].iter().all(|&b| b == 0));
        assert!(buf[2 * 4096..3 * 4096].iter().all(|&b| b == 7));
        assert_eq!(&buf[8 * 4096 + 10..8 * 4096 + 14], b"tail");
        assert!(buf[9 * 4096..].iter().all(|&b| b == 0));
        assert!(PagerCounters::get(&counters.zero_bytes) >= 7 * PAGE_SIZE);
        assert_eq!(p.vmo_get_info(h).unwrap().committed_bytes, 16 * PAGE_SIZE);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn images_larger_than_ram_or_missing_are_refused() {
        let path = tmp("big");
        File::create(&path).unwrap().set_len(3 * PAGE_SIZE).unwrap();
        let e = ImageSource::open(&path, 2 * PAGE_SIZE).unwrap_err();
        assert!(e.to_string().contains("larger than guest RAM"), "{e}");
        std::fs::remove_file(&path).unwrap();
        let e = ImageSource::open(&path, 2 * PAGE_SIZE).unwrap_err();
        assert!(e.to_string().contains("cannot open"), "{e}");
    }
}
