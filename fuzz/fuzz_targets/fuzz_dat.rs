//! Prophesee DAT records (echos-core `DatDecoder`, v1 and v2 layouts): whole and chunked
//! decoding must agree, and every record carries its full 32-bit time, so a stream without a
//! counted jump back must come out in time order (`echos_fuzz::check_decoder`). Config bits:
//! 0 a small sensor, 1 discard triggers, 2 a time origin, 3 the v1 layout.
#![no_main]

use echos_core::events::{DatDecoder, DatVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let inp = echos_fuzz::event_input(data);
    let c = inp.config;
    let (w, h) = if c & 1 != 0 { (64, 32) } else { (1280, 720) };
    let t0 = if c & 4 != 0 { 1_000_000 } else { 0 };
    let v = if c & 8 != 0 {
        DatVersion::V1
    } else {
        DatVersion::V2
    };
    let make = || {
        DatDecoder::new(v, w, h)
            .discard_triggers(c & 2 != 0)
            .with_time_offset(t0)
    };
    echos_fuzz::check_decoder(make, inp.payload, &inp, true);
}
