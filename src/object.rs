//! What every kernel object shares, below the objects themselves: koids and weak lists.
//!
//! Pagers and ports keep the pager VMOs bound to them in a `WeakList` (the VMOs die with
//! their last handle); a port names them only through `dyn` [`crate::port::PacketOwner`], so
//! this module knows no object type.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

static NEXT_KOID: AtomicU64 = AtomicU64::new(1);

/// A fresh kernel object id.
pub(crate) fn new_koid() -> u64 {
    NEXT_KOID.fetch_add(1, Ordering::Relaxed)
}

/// Objects held weakly, such as the pager VMOs bound to a pager or a port.
pub(crate) struct WeakList<T: ?Sized>(Mutex<Vec<Weak<T>>>);

impl<T: ?Sized> Default for WeakList<T> {
    fn default() -> Self {
        WeakList(Mutex::new(Vec::new()))
    }
}

impl<T: ?Sized> WeakList<T> {
    /// Adds `item`, forgetting the dead ones.
    pub(crate) fn add(&self, item: Weak<T>) {
        let mut items = self.0.lock().unwrap_or_else(|e| e.into_inner());
        items.retain(|v| v.strong_count() > 0);
        items.push(item);
    }

    /// Empties the list, returning the items still alive.
    pub(crate) fn take(&self) -> Vec<Arc<T>> {
        let items = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        items.iter().filter_map(Weak::upgrade).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_returns_the_live_items_once() {
        let list = WeakList::<u32>::default();
        let (a, b) = (Arc::new(1), Arc::new(2));
        list.add(Arc::downgrade(&a));
        list.add(Arc::downgrade(&b));
        drop(b);
        let live: Vec<u32> = list.take().iter().map(|x| **x).collect();
        assert_eq!(live, [1]);
        assert!(list.take().is_empty());
    }

    #[test]
    fn koids_are_unique_and_increasing() {
        let (a, b) = (new_koid(), new_koid());
        assert!(a > 0 && b > a);
    }
}
