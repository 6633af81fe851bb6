//! Keeping vCPUs out of `KVM_RUN` while a memslot changes.
//!
//! A vCPU blocked in a userfaultfd fault inside KVM holds KVM's memslot SRCU read lock, and
//! `KVM_SET_USER_MEMORY_REGION` waits for every such reader. When the page that vCPU waits for
//! will be supplied by the very vCPU that is changing a memslot (a guest pager mapping its aux
//! VMO), that wait never ends. So a memslot change first closes the gate — no vCPU may enter
//! `KVM_RUN` — then kicks the vCPUs that are inside it (the kick signal interrupts a blocked
//! fault; KVM returns `EINTR` and re-runs the faulting instruction later), changes the slot
//! once none is inside, and reopens the gate. vCPUs busy in a hypercall are outside already.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sync;

/// How often a closed gate kicks the vCPUs still inside `KVM_RUN`.
const KICK_INTERVAL: Duration = Duration::from_millis(2);

#[derive(Default)]
struct GateState {
    /// Memslot changes waiting for or holding the gate.
    pending: u32,
    /// A memslot change is running.
    active: bool,
    /// vCPUs inside `KVM_RUN`.
    inside: u32,
}

/// The gate between vCPUs entering `KVM_RUN` and memslot changes.
#[derive(Default)]
pub struct SlotGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

/// The vCPUs did not all leave `KVM_RUN` in time (a fault the kick cannot interrupt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("vCPUs did not leave KVM_RUN within {0:?}")]
pub struct GateTimeout(pub Duration);

impl SlotGate {
    /// Called by a vCPU right before `KVM_RUN`: waits while a memslot change is pending.
    pub fn enter(&self) {
        let mut st = self.lock();
        while st.pending > 0 {
            st = self.wait(st, Duration::from_millis(50));
        }
        st.inside += 1;
    }

    /// Called by a vCPU right after `KVM_RUN` returns.
    pub fn leave(&self) {
        let mut st = self.lock();
        st.inside = st.inside.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Runs `change` with no vCPU inside `KVM_RUN`, calling `kick` until they have all left.
    /// The caller must not be inside `KVM_RUN` itself (a vCPU handling a hypercall is not).
    pub fn exclusive<T>(
        &self,
        timeout: Duration,
        kick: impl Fn(),
        change: impl FnOnce() -> T,
    ) -> Result<T, GateTimeout> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        st.pending += 1;
        while st.active {
            st = self.wait(st, KICK_INTERVAL);
        }
        st.active = true;
        while st.inside > 0 && Instant::now() < deadline {
            drop(st);
            kick();
            st = self.lock();
            if st.inside > 0 {
                st = self.wait(st, KICK_INTERVAL);
            }
        }
        let result = if st.inside == 0 {
            drop(st);
            let r = change();
            st = self.lock();
            Ok(r)
        } else {
            Err(GateTimeout(timeout))
        };
        st.active = false;
        st.pending -= 1;
        self.changed.notify_all();
        result
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        sync::lock(&self.state)
    }

    fn wait<'a>(&self, st: MutexGuard<'a, GateState>, d: Duration) -> MutexGuard<'a, GateState> {
        sync::wait_timeout(&self.changed, st, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn change_waits_for_vcpus_inside_and_keeps_others_out() {
        let gate = Arc::new(SlotGate::default());
        gate.enter();
        let kicked = AtomicBool::new(false);
        let g = gate.clone();
        // The "vCPU" leaves only once kicked.
        let r = gate.exclusive(
            Duration::from_secs(5),
            || {
                if !kicked.swap(true, Ordering::SeqCst) {
                    let g = g.clone();
                    std::thread::spawn(move || g.leave());
                }
            },
            || {
                assert_eq!(gate.lock().inside, 0, "no vCPU inside during the change");
                7
            },
        );
        assert_eq!(r, Ok(7));
        assert!(kicked.load(Ordering::SeqCst));
        gate.enter();
        gate.leave();
    }

    #[test]
    fn a_vcpu_that_never_leaves_times_out_and_reopens_the_gate() {
        let gate = SlotGate::default();
        gate.enter();
        let r = gate.exclusive(Duration::from_millis(30), || {}, || ());
        assert_eq!(r, Err(GateTimeout(Duration::from_millis(30))));
        gate.leave();
        gate.enter(); // not blocked: the gate is open again
        gate.leave();
    }
}
