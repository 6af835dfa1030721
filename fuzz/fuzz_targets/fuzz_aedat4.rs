//! AEDAT 4.0 files (echos-host `Aedat4Header` and `Aedat4Decoder`: the IOHeader FlatBuffer and
//! its XML description, then packets of size-prefixed FlatBuffers, LZ4 or Zstd compressed).
//! The payload is a whole file: its header is parsed and, when valid, the packets after it are
//! decoded whole and in fuzzer-chosen chunks, which must agree; AEDAT 4 events carry absolute
//! times, so without a counted jump back they are in order (`echos_fuzz::check_decoder`).
//! Config bit 0 set: the packets are taken as uncompressed and re-framed with their bodies
//! compressed by config bits 1–3 (`echos_fuzz::aedat4_recompress`, a fresh header naming the
//! compression), so mutations of the FlatBuffers inside reach the decompressed path.
#![no_main]

use echos_host::events::Aedat4Decoder;
use echos_host::events::Aedat4Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let inp = echos_fuzz::event_input(data);
    let Ok(h) = Aedat4Header::parse(inp.payload) else {
        return;
    };
    assert!(h.len <= inp.payload.len());
    let (h, file) = if inp.config & 1 != 0 {
        let c = ((inp.config >> 1) % 5) as i32;
        let mut file = echos_fuzz::aedat4_header(c, &h.description);
        file.extend_from_slice(&echos_fuzz::aedat4_recompress(&inp.payload[h.len..], c));
        let Ok(h) = Aedat4Header::parse(&file) else {
            panic!("a header we wrote does not parse");
        };
        (h, file)
    } else {
        (h, inp.payload.to_vec())
    };
    let packets = &file[h.len..];
    let make = || Aedat4Decoder::new(&h, None).with_input_len(packets.len() as u64);
    echos_fuzz::check_decoder(make, packets, &inp, true);
}
