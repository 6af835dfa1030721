//! The host's one event-file reader (echos-host `events::open`): format detection by content
//! then extension, every header (EVT/DAT `%`, AEDAT 2.0/3.1 text, AEDAT 4, `.npy` tables, CSV)
//! and the decoder behind it, fed from a real file. The first byte picks the file's extension;
//! the rest is the file. Reading it in small chunks (`next_chunk`) and whole (`read_all`) must
//! give the same events or both fail.
#![no_main]

use std::io::Write;

use echos_host::events::open;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

const EXTENSIONS: [&str; 8] = ["raw", "dat", "bin", "aedat", "aedat4", "npy", "csv", "evt"];

fn run(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let ext = EXTENSIONS[(pick % 8) as usize];
    let mut file = tempfile::Builder::new()
        .suffix(&format!(".{ext}"))
        .tempfile()
        .expect("temp file");
    file.write_all(body).expect("write temp file");
    let path = file.path();
    let whole = open(path).and_then(|r| r.read_all());
    let chunk = 1 + (pick >> 3) as usize;
    let chunked = open(path).and_then(|r| {
        let mut r = r.with_chunk_events(chunk);
        let mut events = Vec::new();
        let mut buf = Vec::new();
        while r.next_chunk(&mut buf)? > 0 {
            assert!(buf.len() <= chunk);
            events.extend_from_slice(&buf);
        }
        Ok((events, r.stats()))
    });
    match (&whole, &chunked) {
        (Ok(w), Ok((events, stats))) => {
            assert_eq!(&w.events, events, "chunk size changed the events");
            assert_eq!(&w.stats, stats, "chunk size changed the counters");
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!(
            "whole and chunked reads disagree: {:?} vs {:?}",
            a.as_ref().map(|r| r.events.len()),
            b.as_ref().map(|r| r.0.len())
        ),
    }
}
