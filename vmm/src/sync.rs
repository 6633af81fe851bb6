//! Locking that goes on through poisoning: the one `lock` and `wait_timeout` every VMM module
//! uses.
//!
//! A panicking vCPU or pager thread must not take the rest of the VMM down with it: the state
//! behind these mutexes stays consistent between statements (each critical section is a few
//! assignments), so a poisoned lock is taken over as it is instead of propagating the panic.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Locks `m`, recovering the guard if a thread panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `changed.wait_timeout(guard, timeout)`'s guard, going on through poisoning like [`lock`].
pub fn wait_timeout<'a, T>(
    changed: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    changed
        .wait_timeout(guard, timeout)
        .unwrap_or_else(|e| e.into_inner())
        .0
}

/// `changed.wait(guard)`'s guard, going on through poisoning like [`lock`].
pub fn wait<'a, T>(changed: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    changed.wait(guard).unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_is_taken_over_with_its_state() {
        let m = Arc::new(Mutex::new(7));
        let m2 = Arc::clone(&m);
        let _ = std::thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            *g = 8;
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), 8);
    }

    #[test]
    fn wait_timeout_returns_the_guard_after_the_timeout() {
        let m = Mutex::new(1);
        let c = Condvar::new();
        let g = wait_timeout(&c, lock(&m), Duration::from_millis(1));
        assert_eq!(*g, 1);
    }
}
