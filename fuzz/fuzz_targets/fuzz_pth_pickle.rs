//! The pickle inside a `.pth`: the input is a pickle plus storage lengths
//! (`echos_fuzz::pickle_input_to_pth`), wrapped in a valid zip so every mutation reaches the
//! pickle machine, the view checks and the converter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let pth = echos_fuzz::pickle_input_to_pth(data);
    echos_fuzz::load_and_step(&pth);
}
