//! rwkv.cpp `.bin` (ggml) files, FP32/FP16 and every quantization, through the loader and the
//! converter; a model that builds must run one token.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| echos_fuzz::load_and_step(data)));
