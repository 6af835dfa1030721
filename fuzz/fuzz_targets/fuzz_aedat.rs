//! AEDAT 2.0 and 3.1 records (echos-host `Aedat2Decoder`, `Aedat31Decoder`: the bytes after
//! the text header): whole and chunked decoding must agree, and both formats carry full
//! timestamps per record, so a stream without a counted jump back is in time order
//! (`echos_fuzz::check_decoder`). Config bits 0–1: AEDAT 2.0 DVS128, 2.0 DAVIS346, 3.1
//! DAVIS346, 3.1 with a small sensor.
#![no_main]

use echos_host::events::aedat2::{Aedat2Decoder, Aedat2Layout};
use echos_host::events::aedat31::Aedat31Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let inp = echos_fuzz::event_input(data);
    let p = inp.payload;
    match inp.config & 3 {
        0 => echos_fuzz::check_decoder(|| Aedat2Decoder::new(Aedat2Layout::Dvs128), p, &inp, true),
        1 => {
            let l = Aedat2Layout::Davis {
                width: 346,
                height: 260,
            };
            echos_fuzz::check_decoder(|| Aedat2Decoder::new(l), p, &inp, true)
        }
        2 => echos_fuzz::check_decoder(|| Aedat31Decoder::new(346, 260), p, &inp, true),
        _ => echos_fuzz::check_decoder(|| Aedat31Decoder::new(16, 8), p, &inp, true),
    }
}
