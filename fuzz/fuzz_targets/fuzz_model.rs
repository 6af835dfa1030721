//! ESN model files (echos-host `model_file::from_bytes`). Inputs whose first byte is odd get
//! their `tensors_crc32` recomputed first, so mutations reach the checks behind the checksum.
//! A model that loads must save, load again and run a step.
#![no_main]

use std::path::Path;

use echos_host::{model_file, Array2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let Some((&mode, file)) = data.split_first() else {
        return;
    };
    let mut file = file.to_vec();
    if mode & 1 == 1 {
        echos_fuzz::fix_model_crc(&mut file);
    }
    let Ok(mut model) = model_file::from_bytes(&file, Path::new("fuzz.safetensors")) else {
        return;
    };
    let bytes = model_file::to_bytes(&model).expect("a loaded model serialises");
    model_file::from_bytes(&bytes, Path::new("again.safetensors")).expect("a saved model loads");
    let inputs = model.esn().inputs();
    if let Ok(input) = Array2::new(2, inputs, vec![0.5; 2 * inputs]) {
        let _ = model.run(&input);
    }
}
