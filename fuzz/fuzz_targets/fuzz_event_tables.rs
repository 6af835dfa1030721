//! Event tables (echos-host `NpyEventDecoder`, `CsvEventDecoder`): a structured `.npy` (its
//! header parsed by echos-npy `RecordsHeader`, then the records) or `t,x,y,p` CSV rows. Whole
//! and chunked decoding must agree, and rows carry full times, so without a counted jump back
//! events are in order (`echos_fuzz::check_decoder`). Config bit 0: CSV.
#![no_main]

use echos_host::events::tables::{CsvEventDecoder, NpyEventDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let inp = echos_fuzz::event_input(data);
    let p = inp.payload;
    if inp.config & 1 != 0 {
        echos_fuzz::check_decoder(CsvEventDecoder::new, p, &inp, true);
        return;
    }
    let Ok(h) = echos_npy::RecordsHeader::parse(p) else {
        return;
    };
    assert!(h.data_start <= p.len());
    let _ = h.data_len();
    if NpyEventDecoder::new(&h.layout).is_ok() {
        let make = || NpyEventDecoder::new(&h.layout).expect("made once already");
        echos_fuzz::check_decoder(make, &p[h.data_start..], &inp, true);
    }
}
