//! Book-keeping for the VMO aperture: which guest-physical ranges are mapped and which KVM
//! memslot each uses. Pure (no KVM), so the rules are unit-tested; `vm.rs` does the ioctls.

use std::collections::BTreeMap;

use kvmpager::abi::status::*;
use kvmpager::abi::{PAGE_SIZE, Status, layout};

/// One reserved range of the aperture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// Guest-physical start.
    pub gpa: u64,
    /// Length in bytes.
    pub len: u64,
    /// KVM memslot number.
    pub slot: u32,
}

/// The aperture's mapped ranges and free memslots.
#[derive(Debug)]
pub struct Aperture {
    ranges: BTreeMap<u64, Range>,
    free_slots: Vec<u32>,
}

impl Aperture {
    /// An empty aperture that may use memslots `first_slot..slot_limit`.
    pub fn new(first_slot: u32, slot_limit: u32) -> Self {
        Aperture {
            ranges: BTreeMap::new(),
            free_slots: (first_slot..slot_limit).rev().collect(),
        }
    }

    /// Checks `gpa`/`len` and reserves the range and a memslot for it.
    pub fn reserve(&mut self, gpa: u64, len: u64) -> Result<Range, Status> {
        if len == 0 || !gpa.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let end = gpa.checked_add(len).ok_or(ZX_ERR_OUT_OF_RANGE)?;
        let ap_end = layout::APERTURE_START + layout::APERTURE_SIZE;
        if gpa < layout::APERTURE_START || end > ap_end {
            return Err(ZX_ERR_OUT_OF_RANGE);
        }
        if self.overlaps(gpa, end) {
            return Err(ZX_ERR_ALREADY_EXISTS);
        }
        let slot = self.free_slots.pop().ok_or(ZX_ERR_NO_RESOURCES)?;
        let r = Range { gpa, len, slot };
        self.ranges.insert(gpa, r);
        Ok(r)
    }

    fn overlaps(&self, gpa: u64, end: u64) -> bool {
        let before = self.ranges.range(..end).next_back();
        before.is_some_and(|(_, r)| r.gpa + r.len > gpa)
    }

    /// The range that starts at `gpa`; `len` must match it.
    pub fn find(&self, gpa: u64, len: u64) -> Result<Range, Status> {
        let r = *self.ranges.get(&gpa).ok_or(ZX_ERR_NOT_FOUND)?;
        if r.len != len {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        Ok(r)
    }

    /// Releases the range that starts at `gpa`; `len` must match it.
    pub fn release(&mut self, gpa: u64, len: u64) -> Result<Range, Status> {
        let r = self.find(gpa, len)?;
        self.ranges.remove(&gpa);
        self.free_slots.push(r.slot);
        Ok(r)
    }

    /// All mapped ranges.
    pub fn ranges(&self) -> impl Iterator<Item = &Range> {
        self.ranges.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = layout::APERTURE_START;

    #[test]
    fn reserve_checks_alignment_bounds_and_overlap() {
        let mut ap = Aperture::new(1, 3);
        assert_eq!(ap.reserve(A, 0), Err(ZX_ERR_INVALID_ARGS));
        assert_eq!(ap.reserve(A + 1, 4096), Err(ZX_ERR_INVALID_ARGS));
        assert_eq!(ap.reserve(A - 4096, 4096), Err(ZX_ERR_OUT_OF_RANGE));
        assert_eq!(ap.reserve(!4095, 4096), Err(ZX_ERR_OUT_OF_RANGE));
        let r = ap.reserve(A + 0x2000, 0x2000).unwrap();
        assert_eq!(r.slot, 1);
        assert_eq!(ap.reserve(A + 0x3000, 0x1000), Err(ZX_ERR_ALREADY_EXISTS));
        assert_eq!(ap.reserve(A + 0x1000, 0x2000), Err(ZX_ERR_ALREADY_EXISTS));
        assert_eq!(ap.reserve(A, 0x2000).unwrap().slot, 2);
        assert_eq!(ap.reserve(A + 0x4000, 0x1000), Err(ZX_ERR_NO_RESOURCES));
    }

    #[test]
    fn release_needs_the_exact_range_and_frees_the_slot() {
        let mut ap = Aperture::new(1, 2);
        ap.reserve(A, 0x2000).unwrap();
        assert_eq!(ap.release(A + 0x1000, 0x1000), Err(ZX_ERR_NOT_FOUND));
        assert_eq!(ap.release(A, 0x1000), Err(ZX_ERR_INVALID_ARGS));
        assert_eq!(ap.release(A, 0x2000).unwrap().slot, 1);
        assert_eq!(ap.reserve(A + 0x8000, 0x1000).unwrap().slot, 1);
    }
}
