//! Developer workflows as code. Placeholder main replaced below.
fn main() {}
