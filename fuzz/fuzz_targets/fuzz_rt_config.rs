//! The hosted runtime's TOML config (echos-rt `config::parse` and `ConfigFile::check`): any text
//! is refused with an error or parsed and checked without a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut file) = echos_rt::config::parse(text, Path::new("fuzz.toml")) {
        let _ = file.check();
        file.resolve_relative_to(Path::new("/nonexistent/dir"));
        let _ = file.check();
    }
}
