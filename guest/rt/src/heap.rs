//! A bump allocator over a static 1 MiB arena (in `.bss`), so guests can use `alloc`
//! (`String`, `Vec`, `format!`). Freed memory is reused only when it is the most recent
//! allocation; programs that allocate in a loop should reuse buffers.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Size of the heap arena in bytes.
pub const HEAP_SIZE: usize = 1 << 20;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

// SAFETY: the arena is only handed out in disjoint pieces by `Bump`, which hands each byte to
// one owner at a time (its offset is updated atomically).
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; HEAP_SIZE]));

struct Bump {
    /// Offset of the first free byte in `ARENA`.
    next: AtomicUsize,
}

#[global_allocator]
static HEAP: Bump = Bump {
    next: AtomicUsize::new(0),
};

/// Bytes of the arena in use (including alignment padding).
pub fn used() -> usize {
    HEAP.next.load(Ordering::Relaxed)
}

fn base() -> usize {
    ARENA.0.get() as usize
}

// SAFETY: `alloc` returns disjoint, suitably aligned pieces of `ARENA` or null; `dealloc` only
// moves `next` back over the most recent allocation, which its owner is giving up.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = base();
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let Some(start) = (base + cur).checked_next_multiple_of(layout.align()) else {
                return core::ptr::null_mut();
            };
            let end = start - base + layout.size();
            if end > HEAP_SIZE {
                return core::ptr::null_mut();
            }
            match self
                .next
                .compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                // Pointer arithmetic from the arena's own pointer keeps provenance.
                Ok(_) => return ARENA.0.get().cast::<u8>().wrapping_add(start - base),
                Err(now) => cur = now,
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let start = ptr as usize - base();
        // Give the space back only if this was the last allocation; otherwise leak it.
        let _ = self.next.compare_exchange(
            start + layout.size(),
            start,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize - base();
        // Grow or shrink in place when this is the last allocation.
        if let Some(new_end) = start.checked_add(new_size)
            && new_end <= HEAP_SIZE
            && self
                .next
                .compare_exchange(
                    start + layout.size(),
                    new_end,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return ptr;
        }
        // SAFETY: `layout` with `new_size` is valid (GlobalAlloc::realloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh allocation from this allocator.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct and at least `min(old, new)` bytes long.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
