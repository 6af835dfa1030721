//! Prophesee EVT 3.0 words (echos-core `Evt3Decoder`: stateful TIME_HIGH/LOW, ADDR_X, VECT_12/8
//! and triggers): whole and chunked decoding must agree (`echos_fuzz::check_decoder`). Config
//! bits: 0 a small sensor, 1 discard triggers, 2 a time origin.
#![no_main]

use echos_core::events::Evt3Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let inp = echos_fuzz::event_input(data);
    let c = inp.config;
    let (w, h) = if c & 1 != 0 { (64, 32) } else { (2048, 2048) };
    let t0 = if c & 4 != 0 { 1_000_000 } else { 0 };
    let make = || {
        Evt3Decoder::new(w, h)
            .discard_triggers(c & 2 != 0)
            .with_time_offset(t0)
    };
    echos_fuzz::check_decoder(make, inp.payload, &inp, false);
}
