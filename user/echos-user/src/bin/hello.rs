//! The smallest user program: one log line from ring 3, then exit with the argument it was given.
#![no_std]
#![no_main]

echos_user::entry!(main);

fn main(arg: u64) -> i64 {
    match echos_user::log("hello from ring 3") {
        Ok(_) => arg as i64,
        Err(e) => e.code(),
    }
}
