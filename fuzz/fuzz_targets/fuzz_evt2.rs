//! Prophesee EVT 2.0 words (echos-core `Evt2Decoder`): the payload decoded whole and cut into
//! fuzzer-chosen chunks must give the same events, triggers, counters or error
//! (`echos_fuzz::check_decoder`). Config bits: 0 a small sensor (out-of-bounds events),
//! 1 discard triggers, 2 a time origin. EVT time is not checked for order: events between two
//! TIME_HIGH words carry their own low bits, in any order.
#![no_main]

use echos_core::events::Evt2Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let inp = echos_fuzz::event_input(data);
    let c = inp.config;
    let (w, h) = if c & 1 != 0 { (64, 32) } else { (2048, 2048) };
    let t0 = if c & 4 != 0 { 1_000_000 } else { 0 };
    let make = || {
        Evt2Decoder::new(w, h)
            .discard_triggers(c & 2 != 0)
            .with_time_offset(t0)
    };
    echos_fuzz::check_decoder(make, inp.payload, &inp, false);
}
