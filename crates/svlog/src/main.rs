//! svlog: not written yet.
fn main() {}
