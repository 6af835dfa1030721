//! BlinkDL `.pth` checkpoints as raw bytes (zip, then pickle, then storages), through the
//! loader and the converter; a model that builds must run one token. Most mutations stop at
//! the zip's CRCs: `fuzz_pth_pickle` gets past them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| echos_fuzz::load_and_step(data)));
