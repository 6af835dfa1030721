//! N-MNIST 5-byte records (echos-core `NmnistDecoder`, with its overflow markers): whole and
//! chunked decoding must agree (`echos_fuzz::check_decoder`). Config bit 0: a sensor smaller
//! than 34 × 34. Time is 23 bits per record without jump detection, so order is not checked.
#![no_main]

use echos_core::events::NmnistDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let inp = echos_fuzz::event_input(data);
    let (w, h) = if inp.config & 1 != 0 {
        (16, 8)
    } else {
        (34, 34)
    };
    echos_fuzz::check_decoder(|| NmnistDecoder::new(w, h), inp.payload, &inp, false);
}
