//! The deaddrop command-line tool.
fn main() {}
