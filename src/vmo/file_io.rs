//! Moving VMO contents to and from files without extra copies (memory images, VM snapshots).
//!
//! `read_file` preads file bytes straight into an anonymous VMO's host memory (one copy, from
//! the page cache), so a host pager can then move them into a pager VMO; `write_file`
//! pwrites present pages straight from host memory. `read_view` is `read_file` from a
//! [`FileView`] of a shared file, with a `memcpy` instead of a `pread`.

use std::fs::File;
use std::ops::Range;
use std::os::fd::AsRawFd;

use super::Vmo;
use crate::abi::status::*;
use crate::abi::{PAGE_SIZE, Status};
use crate::hostmem::FileView;

impl Vmo {
    /// Reads `len` bytes of `file` at `file_offset` into this anonymous VMO at `offset`
    /// (page aligned), committing the pages. Bytes past the end of the file read as zero.
    pub fn read_file(
        &self,
        offset: u64,
        len: u64,
        file: &File,
        file_offset: u64,
    ) -> Result<(), Status> {
        if self.is_pager_backed() || !offset.is_multiple_of(PAGE_SIZE) {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let pages = self.page_range(offset, len)?;
        let mut st = self.lock();
        // Allocate the pages first, in one call: faulting them in one by one inside `pread`
        // costs an exception each (about 10 us apiece on a nested host: 5 ms per 2 MiB).
        if len > PAGE_SIZE {
            self.mem
                .populate(offset, len)
                .map_err(|_| ZX_ERR_NO_MEMORY)?;
        }
        let mut done = 0;
        while done < len {
            let n = self.file_io(file, offset + done, len - done, file_offset + done, false)?;
            if n == 0 {
                // Past the end of the file: the rest reads as zero.
                self.mem
                    .write(offset + done, &vec![0u8; (len - done) as usize])
                    .map_err(|_| ZX_ERR_OUT_OF_RANGE)?;
                break;
            }
            done += n;
        }
        st.committed
            .insert_range(pages.start as usize..pages.end as usize);
        Ok(())
    }

    /// Copies `view[view_offset, view_offset + len)` into this anonymous VMO at `offset` (page
    /// aligned), committing the pages first in one call: the same as [`Vmo::read_file`] from
    /// the file behind the view, with a `memcpy` instead of a `pread`.
    pub fn read_view(
        &self,
        offset: u64,
        len: u64,
        view: &FileView,
        view_offset: u64,
    ) -> Result<(), Status> {
        if self.is_pager_backed() || !offset.is_multiple_of(PAGE_SIZE) {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let pages = self.page_range(offset, len)?;
        let mut st = self.lock();
        // One `madvise` for the range (none if it is all committed): a user-mode fault per
        // page inside the `memcpy` costs an exception each (about 10 us apiece on a nested
        // host).
        if (pages.start..pages.end).any(|p| !st.committed.contains(p as usize)) {
            self.mem
                .populate(offset, len)
                .map_err(|_| ZX_ERR_NO_MEMORY)?;
        }
        self.mem
            .copy_from_view(offset, view, view_offset, len)
            .map_err(|_| ZX_ERR_OUT_OF_RANGE)?;
        st.committed
            .insert_range(pages.start as usize..pages.end as usize);
        Ok(())
    }

    /// Writes `[offset, offset + len)` of this VMO to `file` at `file_offset`. Every page in
    /// the range must be present (`ZX_ERR_BAD_STATE` otherwise); nothing is requested.
    pub fn write_file(
        &self,
        offset: u64,
        len: u64,
        file: &File,
        file_offset: u64,
    ) -> Result<(), Status> {
        let pages = self.page_range(offset, len)?;
        let st = self.lock();
        if (pages.start..pages.end).any(|p| !st.committed.contains(p as usize)) {
            return Err(ZX_ERR_BAD_STATE);
        }
        let mut done = 0;
        while done < len {
            match self.file_io(file, offset + done, len - done, file_offset + done, true)? {
                0 => return Err(ZX_ERR_IO),
                n => done += n,
            }
        }
        drop(st);
        Ok(())
    }

    /// Maximal runs of present (committed) pages, in page numbers.
    pub fn present_runs(&self) -> Vec<Range<u64>> {
        let st = self.lock();
        let mut runs = Vec::new();
        let mut page = 0;
        while page < self.pages() {
            if !st.committed.contains(page as usize) {
                page += 1;
                continue;
            }
            let start = page;
            while page < self.pages() && st.committed.contains(page as usize) {
                page += 1;
            }
            runs.push(start..page);
        }
        runs
    }

    /// One `pread` into (or `pwrite` from) host memory `[offset, offset + len)`; returns the
    /// byte count. The caller holds the VMO lock and has checked the range.
    fn file_io(
        &self,
        file: &File,
        offset: u64,
        len: u64,
        file_offset: u64,
        write: bool,
    ) -> Result<u64, Status> {
        self.page_range(offset, len)?;
        let file_offset = libc::off_t::try_from(file_offset).map_err(|_| ZX_ERR_OUT_OF_RANGE)?;
        // Never more than 1 GiB per call (Linux caps a transfer at just under 2 GiB anyway).
        let count = len.min(1 << 30) as usize;
        loop {
            // SAFETY: `[offset, offset + count)` lies inside this VMO's live host mapping
            // (checked by `page_range`); the kernel reads or writes those bytes directly and no
            // Rust reference to them exists.
            let n = unsafe {
                let ptr = self.mem.as_ptr().add(offset as usize).cast();
                if write {
                    libc::pwrite(file.as_raw_fd(), ptr, count, file_offset)
                } else {
                    libc::pread(file.as_raw_fd(), ptr, count, file_offset)
                }
            };
            if n >= 0 {
                return Ok(n as u64);
            }
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return Err(ZX_ERR_IO);
            }
        }
    }
}
