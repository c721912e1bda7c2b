//! init: not written yet.
fn main() {}
