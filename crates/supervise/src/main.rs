//! supervise: not written yet.
fn main() {}
