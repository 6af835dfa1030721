//! Recognising an event file from its first bytes and reading its header (echos-core
//! `Format::detect`, `Header::parse`; echos-host `Aedat4Header::parse`): never a panic, a
//! header never longer than its bytes, detection agreeing with the header's own format, and the
//! decoder the header sets up (`decoder_for`) decoding the rest of the bytes without a panic.
#![no_main]

use echos_core::events::{decoder_for, Format, Header};
use echos_host::events::Aedat4Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let detected = Format::detect(data);
    if let Ok(h) = Aedat4Header::parse(data) {
        assert!(h.len <= data.len());
        assert_eq!(detected, Some(Format::Aedat4));
    }
    let Ok(h) = Header::parse(data) else {
        return;
    };
    assert!(
        h.len <= data.len(),
        "header of {} bytes in {}",
        h.len,
        data.len()
    );
    if data.first() == Some(&b'%') {
        assert_eq!(detected, h.format);
    }
    if let Some(f) = h.format {
        if let Some(mut d) = decoder_for(f, &h) {
            let _ = echos_fuzz::decode_whole(d.as_mut(), &data[h.len..]);
        }
    }
}
