//! setuidgid: not written yet.
fn main() {}
