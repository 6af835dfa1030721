//! `echos`: the command line front end of echo-os. Thin: numerics live in the engine.
#![forbid(unsafe_code)]

fn main() {
    println!("echos {}", env!("CARGO_PKG_VERSION"));
}
