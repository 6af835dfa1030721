//! Prophesee EVT 2.1 words (echos-core `Evt21Decoder`), both word orders: whole and chunked
//! decoding must agree (`echos_fuzz::check_decoder`). Config bits: 0 a small sensor, 1 discard
//! triggers, 2 a time origin, 3 the legacy (32-bit halves swapped) layout.
#![no_main]

use echos_core::events::{Evt21Decoder, Evt21Layout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let inp = echos_fuzz::event_input(data);
    let c = inp.config;
    let (w, h) = if c & 1 != 0 { (64, 32) } else { (2048, 2048) };
    let t0 = if c & 4 != 0 { 1_000_000 } else { 0 };
    let layout = if c & 8 != 0 {
        Evt21Layout::Legacy32
    } else {
        Evt21Layout::Little64
    };
    let make = || {
        Evt21Decoder::new(w, h)
            .with_layout(layout)
            .discard_triggers(c & 2 != 0)
            .with_time_offset(t0)
    };
    echos_fuzz::check_decoder(make, inp.payload, &inp, false);
}
