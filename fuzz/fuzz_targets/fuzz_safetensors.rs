//! RWKV weights as safetensors, through the loader's format dispatch and the converter to an
//! engine model; a model that builds must run one token.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| echos_fuzz::load_and_step(data)));
