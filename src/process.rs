//! (being written)

/// A guest's (or the host's) view of the kernel: its handle table. (being written)
pub struct Process;
