//! The `kvmpager` command (being written).
fn main() {}
