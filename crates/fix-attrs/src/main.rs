//! fix-attrs: not written yet.
fn main() {}
