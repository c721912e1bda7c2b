//! svctl: not written yet.
fn main() {}
