//! Builds the guest programs in `guest/` (being written).
fn main() {}
