//! RWKV state files (echos-rwkv-io `state_io`) decoded against a small fixed v7 model; a state
//! that loads must fit the model and step it.
#![no_main]

use std::path::Path;

use echos_rwkv_io::{state_io, Scratch, Serial};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        echos_fuzz::state_model();
    },
    |data: &[u8]| echos_fuzz::timed(|| run(data))
);

fn run(data: &[u8]) {
    let model = echos_fuzz::state_model();
    if let Ok(mut state) = state_io::state_from_bytes(data, Path::new("fuzz.state"), model) {
        assert!(state.fits(model));
        let mut scratch = Scratch::new(model, 1);
        model
            .step(&mut state, 1, &mut scratch, &Serial)
            .expect("a loaded state steps its model");
    }
}
