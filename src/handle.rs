//! Per-process handle tables.
//!
//! A handle names a kernel object together with the rights the holder has on it. Values are
//! hard to guess and not reused at once: a value encodes a slot index and the slot's
//! generation, XOR-ed with a per-table secret, and freed slots go to the back of a FIFO.
//! Closing a handle bumps its slot's generation, so the old value gives `ZX_ERR_BAD_HANDLE`.
//! Valid values always have their low two bits set, like Zircon's; 0 is never valid.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::abi::obj_type::{ZX_OBJ_TYPE_PAGER, ZX_OBJ_TYPE_PORT, ZX_OBJ_TYPE_VMO};
use crate::abi::status::{ZX_ERR_BAD_HANDLE, ZX_ERR_NO_RESOURCES};
use crate::abi::{Handle, Rights, Status};
use crate::account::MAX_HANDLES;
use crate::pager::Pager;
use crate::port::Port;
use crate::vmo::Vmo;

const GEN_BITS: u32 = 8;
const GEN_MASK: u32 = (1 << GEN_BITS) - 1;
const INDEX_SHIFT: u32 = GEN_BITS + 2;

/// A kernel object a handle can name.
#[derive(Clone)]
pub enum KernelObject {
    /// A virtual memory object.
    Vmo(Arc<Vmo>),
    /// A pager.
    Pager(Arc<Pager>),
    /// A port.
    Port(Arc<Port>),
}

impl KernelObject {
    /// The object's `ZX_OBJ_TYPE_*`.
    pub fn obj_type(&self) -> u32 {
        match self {
            KernelObject::Vmo(_) => ZX_OBJ_TYPE_VMO,
            KernelObject::Pager(_) => ZX_OBJ_TYPE_PAGER,
            KernelObject::Port(_) => ZX_OBJ_TYPE_PORT,
        }
    }

    fn handle_added(&self) {
        match self {
            KernelObject::Vmo(v) => v.handle_added(),
            KernelObject::Pager(p) => p.handle_added(),
            KernelObject::Port(p) => p.handle_added(),
        }
    }

    fn handle_removed(&self) {
        match self {
            KernelObject::Vmo(v) => v.handle_removed(),
            KernelObject::Pager(p) => p.handle_removed(),
            KernelObject::Port(p) => p.handle_removed(),
        }
    }
}

/// What a handle holds: an object and the rights on it.
#[derive(Clone)]
pub struct HandleEntry {
    /// The object.
    pub object: KernelObject,
    /// The rights this handle grants.
    pub rights: Rights,
}

struct Slot {
    generation: u32,
    entry: Option<HandleEntry>,
}

/// A process's handle table.
pub struct HandleTable {
    slots: Vec<Slot>,
    free: VecDeque<u32>,
    secret: u32,
    live: usize,
    max: usize,
}

impl Default for HandleTable {
    fn default() -> Self {
        Self::new()
    }
}

impl HandleTable {
    /// An empty table with a fresh random secret.
    pub fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(std::process::id() as u64);
        let secret = (hasher.finish() as u32) & !0b11;
        HandleTable {
            slots: Vec::new(),
            free: VecDeque::new(),
            secret,
            live: 0,
            max: MAX_HANDLES,
        }
    }

    /// Caps the live handles at `max` (at most [`MAX_HANDLES`]): past it `insert` gives
    /// `ZX_ERR_NO_RESOURCES`, as Zircon does when a process's handle table is full.
    pub fn set_max(&mut self, max: usize) {
        self.max = max.min(MAX_HANDLES);
    }

    /// The objects of every live handle (once per handle).
    pub fn objects(&self) -> Vec<KernelObject> {
        self.slots
            .iter()
            .filter_map(|s| s.entry.as_ref().map(|e| e.object.clone()))
            .collect()
    }

    /// Number of live handles.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table holds no handle.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds a handle for `object` with `rights`.
    pub fn insert(&mut self, object: KernelObject, rights: Rights) -> Result<Handle, Status> {
        if self.live >= self.max {
            return Err(ZX_ERR_NO_RESOURCES);
        }
        // Reuse a freed slot only once enough others are free, so a just-closed value is not
        // handed out again at once.
        let index = match self.free.front() {
            Some(_) if self.free.len() > 16 || self.slots.len() >= self.max => {
                self.free.pop_front().unwrap_or(0)
            }
            _ => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        object.handle_added();
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(HandleEntry { object, rights });
        let generation = slot.generation;
        self.live += 1;
        Ok(self.encode(index, generation))
    }

    /// The entry `handle` names, or `ZX_ERR_BAD_HANDLE`.
    pub fn get(&self, handle: Handle) -> Result<&HandleEntry, Status> {
        let index = self.decode(handle)?;
        self.slots[index].entry.as_ref().ok_or(ZX_ERR_BAD_HANDLE)
    }

    /// Removes `handle` and returns what it held.
    pub fn remove(&mut self, handle: Handle) -> Result<HandleEntry, Status> {
        let index = self.decode(handle)?;
        let slot = &mut self.slots[index];
        let entry = slot.entry.take().ok_or(ZX_ERR_BAD_HANDLE)?;
        slot.generation = (slot.generation + 1) & GEN_MASK;
        self.free.push_back(index as u32);
        self.live -= 1;
        entry.object.handle_removed();
        Ok(entry)
    }

    /// Replaces `handle` by a new value for the same object with `rights`, in place: the old
    /// value stops working, nothing is added or removed, so it works in a full table and never
    /// looks like a last-handle close to the object.
    pub fn replace(&mut self, handle: Handle, rights: Rights) -> Result<Handle, Status> {
        let index = self.decode(handle)?;
        let slot = &mut self.slots[index];
        slot.generation = (slot.generation + 1) & GEN_MASK;
        if let Some(entry) = slot.entry.as_mut() {
            entry.rights = rights;
        }
        let generation = slot.generation;
        Ok(self.encode(index as u32, generation))
    }

    /// Removes every handle (process teardown).
    pub fn clear(&mut self) {
        for slot in &mut self.slots {
            if let Some(entry) = slot.entry.take() {
                entry.object.handle_removed();
            }
        }
        self.live = 0;
    }

    fn encode(&self, index: u32, generation: u32) -> Handle {
        ((index << INDEX_SHIFT) | (generation << 2) | 0b11) ^ self.secret
    }

    fn decode(&self, handle: Handle) -> Result<usize, Status> {
        let raw = handle ^ self.secret;
        if raw & 0b11 != 0b11 {
            return Err(ZX_ERR_BAD_HANDLE);
        }
        let index = (raw >> INDEX_SHIFT) as usize;
        let generation = (raw >> 2) & GEN_MASK;
        match self.slots.get(index) {
            Some(slot) if slot.generation == generation && slot.entry.is_some() => Ok(index),
            _ => Err(ZX_ERR_BAD_HANDLE),
        }
    }
}

impl Drop for HandleTable {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Port;

    fn port() -> KernelObject {
        KernelObject::Port(Port::new())
    }

    #[test]
    fn closed_and_made_up_handles_are_bad() {
        let mut t = HandleTable::new();
        let h = t.insert(port(), 1).unwrap();
        assert_eq!(h & 0b11, 0b11);
        assert!(t.get(h).is_ok());
        t.remove(h).unwrap();
        assert_eq!(t.get(h).err(), Some(ZX_ERR_BAD_HANDLE));
        assert_eq!(t.remove(h).err(), Some(ZX_ERR_BAD_HANDLE));
        assert_eq!(t.get(0).err(), Some(ZX_ERR_BAD_HANDLE));
        assert_eq!(t.get(h ^ 0x400).err(), Some(ZX_ERR_BAD_HANDLE));
        assert_eq!(t.get(u32::MAX).err(), Some(ZX_ERR_BAD_HANDLE));
    }

    #[test]
    fn values_are_not_reused_at_once() {
        let mut t = HandleTable::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let h = t.insert(port(), 1).unwrap();
            assert!(seen.insert(h), "handle value {h:#x} reused");
            t.remove(h).unwrap();
        }
        assert!(t.is_empty());
    }

    #[test]
    fn tables_have_different_secrets() {
        let mut a = HandleTable::new();
        let mut b = HandleTable::new();
        let ha = a.insert(port(), 1).unwrap();
        let hb = b.insert(port(), 1).unwrap();
        // Same slot, same generation: only the secret differs.
        assert_ne!(ha, hb);
        assert_eq!(b.get(ha).err(), Some(ZX_ERR_BAD_HANDLE));
    }
}
