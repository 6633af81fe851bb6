//! `ZX_PAGER_SUPPLY_PAGES`: moving pages from an aux VMO into a pager VMO.
//!
//! Runs of absent destination pages move in with one `UFFDIO_MOVE` each (whole 2 MiB huge
//! pages where source and destination allow); destination pages already present are kept and
//! the matching aux pages freed. A page that cannot move (or a process set to copy) goes
//! through `UFFDIO_COPY` instead, and the counters say which path ran. Afterwards the aux
//! range is fully decommitted — also on every failure that gets past the aux checks.

use std::ops::Range;
use std::sync::Arc;

use super::{Vmo, VmoState, overlaps_any};
use crate::abi::packet::ZX_PAGER_VMO_READ;
use crate::abi::status::*;
use crate::abi::{HUGE_PAGE_SIZE, PAGE_SIZE, Status};
use crate::counters::Counters;
use crate::uffd::Userfault;

/// How SUPPLY gets pages into the pager VMO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SupplyStrategy {
    /// The default: whole 2 MiB chunks from an aux VMO of small pages are remapped (as in
    /// `Remap`); everything else — small runs, and huge-page aux VMOs, whose 2 MiB pages
    /// `UFFDIO_MOVE` moves whole — is moved (as in `Move`). The fastest zero-copy path for
    /// each piece.
    #[default]
    Auto,
    /// Move the host pages (`UFFDIO_MOVE`), copying only pages that cannot move.
    Move,
    /// Always copy (`UFFDIO_COPY`) and free the aux pages: the baseline, and the fallback
    /// on kernels without `UFFDIO_MOVE`.
    Copy,
    /// Remap: 2 MiB-aligned runs of whole 2 MiB chunks are moved by remapping the aux
    /// range's host mapping over the pager VMO's (`mremap` with `MREMAP_DONTUNMAP`, so the
    /// aux VMO keeps a fresh empty range) and re-registering it with userfaultfd; the KVM
    /// memslot over the pager VMO then sees the aux pages. Other pieces move as in `Move`.
    /// Each remapped chunk is a host VMA of its own, so this suits large runs only.
    Remap,
}

impl SupplyStrategy {
    /// All strategies, in a fixed order (`index` is the position).
    pub const ALL: [SupplyStrategy; 4] = [
        SupplyStrategy::Auto,
        SupplyStrategy::Move,
        SupplyStrategy::Copy,
        SupplyStrategy::Remap,
    ];

    /// Position in [`Self::ALL`].
    pub fn index(self) -> u8 {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) as u8
    }
}

/// A run of destination pages that was filled, and how many bytes moved vs copied.
#[derive(Default)]
struct Filled {
    moved: u64,
    copied: u64,
    remapped: u64,
}

impl Vmo {
    /// Supplies `aux[aux_offset, +len)` into this pager VMO at `offset`; returns how many
    /// pages were newly inserted (pages already present are skipped). The handle, rights,
    /// alignment and ownership checks are the caller's; everything from the aux kind on
    /// (Zircon's check order) is here.
    pub(crate) fn supply(
        self: &Arc<Self>,
        offset: u64,
        len: u64,
        aux: &Arc<Vmo>,
        aux_offset: u64,
        strategy: SupplyStrategy,
    ) -> Result<u64, Status> {
        if !aux.is_created() {
            return Err(ZX_ERR_BAD_STATE);
        }
        let aux_pages = aux.page_range(aux_offset, len)?;
        let (mut dst, mut src) = lock_pair(self, aux);
        check_aux(&src, &aux_pages)?;
        // From here on the aux range is taken: it ends up decommitted whatever happens.
        let result = self.fill(&mut dst, offset, len, aux, &mut src, aux_offset, strategy);
        // Moved pages left the aux VMO already; free what is still there (pages kept because
        // the destination had them, or left by a failure) and nothing else.
        aux.discard_committed(&mut src, aux_pages, |_| false);
        drop((dst, src));
        self.wake_after_fill(offset, len, &result);
        result
    }

    /// Wakes the threads that faulted on `[offset, offset + len)` once the pages are in and
    /// the locks are released: a vCPU woken inside the move would run at once on a shared CPU
    /// and fault again while the supplier still held this VMO's lock. (A VMO that traps
    /// mapped writes wakes each piece itself, after write-protecting it.)
    fn wake_after_fill(&self, offset: u64, len: u64, result: &Result<u64, Status>) {
        if self.traps_mapped_writes() || matches!(result, Ok(0)) {
            return;
        }
        let Some(link) = self.link() else { return };
        if let Err(e) = link.faults.wake_faulters(self.host_addr() + offset, len) {
            log::error!("waking faulters on VMO {} at {offset:#x}: {e}", self.koid());
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        dst: &mut VmoState,
        offset: u64,
        len: u64,
        aux: &Vmo,
        src: &mut VmoState,
        aux_offset: u64,
        strategy: SupplyStrategy,
    ) -> Result<u64, Status> {
        let pages = self.page_range(offset, len)?;
        if pages.is_empty() {
            return Ok(0);
        }
        if dst.detached {
            return Err(ZX_ERR_BAD_STATE);
        }
        let Some(link) = self.link() else {
            return Err(ZX_ERR_BAD_STATE);
        };
        let uffd = link.faults.uffd();
        let delta = aux_offset / PAGE_SIZE;
        let mut result = Ok(0);
        for (run, present) in runs(dst, pages.clone()) {
            if present {
                Counters::add(&self.counters().pages_skipped, run.end - run.start);
                continue;
            }
            let run_pages = run.end - run.start;
            let src_run = run.start - pages.start + delta..run.end - pages.start + delta;
            match self.fill_run(dst, run.clone(), aux, src, src_run, uffd, strategy) {
                Ok(f) => {
                    Counters::add(&self.counters().bytes_moved, f.moved);
                    Counters::add(&self.counters().bytes_copied, f.copied);
                    Counters::add(&self.counters().bytes_remapped, f.remapped);
                    result = result.map(|n| n + run_pages);
                }
                Err(status) => {
                    result = Err(status);
                    break;
                }
            }
        }
        let finished = dst.requests.resolve(ZX_PAGER_VMO_READ, pages, |r| {
            (r.start..r.end).all(|p| dst.committed.contains(p as usize))
        });
        self.settle(dst, finished, ZX_OK);
        if result.is_ok() {
            Counters::add(&self.counters().supplies, 1);
        }
        result
    }

    /// Fills absent destination pages `run` from aux pages `src_run`.
    #[allow(clippy::too_many_arguments)]
    fn fill_run(
        &self,
        dst: &mut VmoState,
        run: Range<u64>,
        aux: &Vmo,
        src: &mut VmoState,
        src_run: Range<u64>,
        uffd: &Userfault,
        strategy: SupplyStrategy,
    ) -> Result<Filled, Status> {
        let mut filled = Filled::default();
        let total = run.end - run.start;
        // A VMO that traps mapped writes gets its new (clean) pages write-protected before
        // any faulting thread is woken, so no write slips past the DIRTY request.
        let trap = self.traps_mapped_writes();
        // Woken afterwards, with the locks released (`wake_after_fill`), or per piece below.
        let wake = false;
        let mut done = 0;
        while done < total {
            let dst_addr = self.host_addr() + (run.start + done) * PAGE_SIZE;
            let src_addr = aux.host_addr() + (src_run.start + done) * PAGE_SIZE;
            let bytes = (total - done) * PAGE_SIZE;
            let remap = remap_len(dst_addr, src_addr, bytes);
            let gone_before = filled.moved + filled.remapped;
            let remap_here = !trap
                && match strategy {
                    SupplyStrategy::Remap => remap > 0,
                    SupplyStrategy::Auto => remap > 0 && !aux.is_huge(),
                    _ => false,
                };
            let n = match strategy {
                _ if remap_here => {
                    match remap_chunks(uffd, dst_addr, src_addr, remap, &mut filled) {
                        Some(n) => n,
                        None => {
                            self.move_some(uffd, dst_addr, src_addr, bytes, wake, &mut filled)?
                        }
                    }
                }
                SupplyStrategy::Copy => {
                    copy_pages(uffd, dst_addr, src_addr, bytes, wake, &mut filled)?
                }
                _ if uffd.supports_move() => {
                    self.move_some(uffd, dst_addr, src_addr, bytes, wake, &mut filled)?
                }
                _ => copy_pages(uffd, dst_addr, src_addr, bytes, wake, &mut filled)?,
            };
            let pages = n.div_ceil(PAGE_SIZE).max(1);
            dst.committed
                .insert_range((run.start + done) as usize..(run.start + done + pages) as usize);
            if filled.moved + filled.remapped - gone_before == n {
                // The host pages left the aux VMO; copied (or kept) ones are still there and
                // are freed with the rest of the aux range afterwards.
                src.committed.remove_range(
                    (src_run.start + done) as usize..(src_run.start + done + pages) as usize,
                );
            }
            if trap {
                self.protect(run.start + done..run.start + done + pages, true);
                let _ = uffd.wake(dst_addr, pages * PAGE_SIZE);
            }
            Counters::add(&self.counters().pages_supplied, pages);
            done += pages;
        }
        Ok(filled)
    }

    /// Moves as much as one `UFFDIO_MOVE` will; where it stops, deals with that one page.
    /// Returns the bytes now filled at `dst_addr`.
    fn move_some(
        &self,
        uffd: &Userfault,
        dst_addr: u64,
        src_addr: u64,
        bytes: u64,
        wake: bool,
        filled: &mut Filled,
    ) -> Result<u64, Status> {
        Counters::add(&self.counters().move_ioctls, 1);
        let err = match uffd.move_pages_mode(dst_addr, src_addr, bytes, wake) {
            Ok(n) => {
                filled.moved += n;
                return Ok(n);
            }
            Err(err) => err,
        };
        let moved = err.moved();
        filled.moved += moved;
        if moved > 0 {
            return Ok(moved);
        }
        match err.errno() {
            Some(libc::ENOMEM) => Err(ZX_ERR_NO_MEMORY),
            Some(libc::EEXIST) => Ok(PAGE_SIZE), // already present: keep it
            errno => {
                log::debug!("UFFDIO_MOVE at {dst_addr:#x} failed ({errno:?}); copying the page");
                Counters::add(&self.counters().copy_fallbacks, 1);
                copy_pages(uffd, dst_addr, src_addr, PAGE_SIZE, wake, filled)
            }
        }
    }
}

/// Bytes of whole 2 MiB chunks at the start of a run that the remap strategy can take.
fn remap_len(dst_addr: u64, src_addr: u64, bytes: u64) -> u64 {
    if !dst_addr.is_multiple_of(HUGE_PAGE_SIZE) || !src_addr.is_multiple_of(HUGE_PAGE_SIZE) {
        return 0;
    }
    bytes / HUGE_PAGE_SIZE * HUGE_PAGE_SIZE
}

/// Remaps `bytes` of aux host memory over the pager VMO's (see [`SupplyStrategy::Remap`]).
/// Returns `None`, having changed nothing, when the host refuses the remap.
fn remap_chunks(
    uffd: &Userfault,
    dst_addr: u64,
    src_addr: u64,
    bytes: u64,
    filled: &mut Filled,
) -> Option<u64> {
    let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | libc::MREMAP_DONTUNMAP;
    // SAFETY: both ranges are whole 2 MiB chunks inside live host mappings owned by VMOs
    // (the caller holds both VMO locks); the destination's old pages are absent and the new
    // mapping replaces them in place, so every address stays mapped; no Rust reference into
    // either range exists.
    let r = unsafe {
        libc::mremap(
            src_addr as *mut libc::c_void,
            bytes as usize,
            bytes as usize,
            flags,
            dst_addr as *mut libc::c_void,
        )
    };
    if r == libc::MAP_FAILED {
        log::debug!(
            "remap at {dst_addr:#x}: {}",
            std::io::Error::last_os_error()
        );
        return None;
    }
    // The new mapping is not registered yet: register it so an eviction makes pages fault to
    // the pager again, then wake any thread that faulted on the old one.
    if let Err(e) = uffd.register_missing(dst_addr, bytes) {
        log::error!("re-registering remapped pages at {dst_addr:#x}: {e}");
    }
    if let Err(e) = uffd.wake(dst_addr, bytes) {
        log::error!("waking faulters at {dst_addr:#x}: {e}");
    }
    filled.remapped += bytes;
    Some(bytes)
}

/// Copies `bytes` into registered memory; a present destination page counts as filled.
fn copy_pages(
    uffd: &Userfault,
    dst_addr: u64,
    src_addr: u64,
    bytes: u64,
    wake: bool,
    filled: &mut Filled,
) -> Result<u64, Status> {
    match uffd.copy_mode(dst_addr, src_addr, bytes, wake) {
        Ok(n) => {
            filled.copied += n;
            Ok(n)
        }
        Err(err) if err.copied() > 0 => {
            filled.copied += err.copied();
            Ok(err.copied())
        }
        Err(err) => match err.errno() {
            Some(libc::EEXIST) => Ok(PAGE_SIZE),
            Some(libc::ENOMEM) => Err(ZX_ERR_NO_MEMORY),
            errno => {
                log::error!("UFFDIO_COPY at {dst_addr:#x} failed ({errno:?})");
                Err(ZX_ERR_NO_MEMORY)
            }
        },
    }
}

/// The aux rules of the seed: no clones, no mappings, no pinned pages in the range, and the
/// range fully committed — else `ZX_ERR_BAD_STATE`.
fn check_aux(src: &VmoState, pages: &Range<u64>) -> Result<(), Status> {
    let range = pages.start as usize..pages.end as usize;
    if src.children > 0
        || src.mappings > 0
        || overlaps_any(&src.pins, pages)
        || range.clone().any(|p| !src.committed.contains(p))
    {
        return Err(ZX_ERR_BAD_STATE);
    }
    Ok(())
}

/// Splits `pages` into maximal runs of present / absent destination pages.
pub(super) fn runs(st: &VmoState, pages: Range<u64>) -> Vec<(Range<u64>, bool)> {
    let mut out = Vec::new();
    let mut start = pages.start;
    while start < pages.end {
        let present = st.committed.contains(start as usize);
        let mut end = start + 1;
        while end < pages.end && st.committed.contains(end as usize) == present {
            end += 1;
        }
        out.push((start..end, present));
        start = end;
    }
    out
}

/// Locks two distinct VMOs in koid order (no deadlock between concurrent supplies).
fn lock_pair<'a>(
    dst: &'a Vmo,
    aux: &'a Vmo,
) -> (
    std::sync::MutexGuard<'a, VmoState>,
    std::sync::MutexGuard<'a, VmoState>,
) {
    if dst.koid() < aux.koid() {
        let d = dst.lock();
        (d, aux.lock())
    } else {
        let a = aux.lock();
        (dst.lock(), a)
    }
}
