//! with-contenv: not written yet.
fn main() {}
