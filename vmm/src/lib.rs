//! The kvmpager micro-VMM (being written).
