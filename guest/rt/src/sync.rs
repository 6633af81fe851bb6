//! Synchronisation for multi-vCPU guests. The atomics of `core::sync::atomic` work natively at
//! CPL 3; these are a spin lock and a barrier on top of them.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A test-and-test-and-set spin lock.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one holder at a time, so sharing the lock across
// vCPUs is sound when `T` may be sent between them.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A new, unlocked lock.
    pub const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Spins until the lock is free and takes it.
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            while self.locked.load(Ordering::Relaxed) {
                core::hint::spin_loop();
            }
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| SpinLockGuard { lock: self })
    }
}

/// Holds a [`SpinLock`]; unlocks on drop.
pub struct SpinLockGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves this vCPU holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves this vCPU holds the lock, and `&mut self` that no other
        // reference from this guard is live.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// A reusable barrier for `n` vCPUs (sense-reversing). `Barrier::new(0)` is a barrier for all
/// vCPUs of the VM (the count is read at [`Barrier::wait`]), so it can be a `static`.
pub struct Barrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl Barrier {
    /// A barrier that opens each time `n` vCPUs (all of them if `n` is 0) have called
    /// [`Barrier::wait`].
    pub const fn new(n: usize) -> Self {
        Barrier {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Waits until `n` vCPUs have arrived; returns `true` on exactly one of them (the last).
    pub fn wait(&self) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        let n = if self.n == 0 { crate::ncpus() } else { self.n };
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == n {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            true
        } else {
            spin_until(|| self.generation.load(Ordering::Acquire) != generation);
            false
        }
    }
}

/// Spins (with `pause`) until `cond` returns true.
pub fn spin_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        core::hint::spin_loop();
    }
}
