//! The hosted runtime's shared-memory region as a reader finds it (echos-rt `shm::Attached`):
//! a region file of fuzzed bytes under `/dev/shm/echos.NAME` must be refused with an error or
//! mapped and read (header, snapshot, statistics, ring records) without a panic or an access
//! outside the mapping. Config byte bit 0 set: a real region of a fuzzer-chosen small shape is
//! made first and the rest of the input is written over it at a fuzzer-chosen offset (random
//! bytes alone rarely pass the header check); else the input is the whole file.
#![no_main]

use echos_rt::shm::{region_path, Attached, Region, Shape};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

fn run(data: &[u8]) {
    let name = format!("fuzz-{}", std::process::id());
    let path = region_path(&name).expect("a valid name");
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let bytes = if cfg & 1 != 0 && rest.len() >= 4 {
        let shape = Shape {
            units: 1 + (rest[0] % 16) as usize,
            inputs: 1 + (rest[1] % 4) as usize,
            outputs: 1 + (rest[2] % 4) as usize,
            ring_capacity: 1 << (rest[3] % 4),
            period_ns: 1_000_000,
        };
        let _ = std::fs::remove_file(&path);
        let region = Region::create(&name, &shape, true).expect("create a region");
        let mut bytes = std::fs::read(region.path()).expect("read the region");
        drop(region);
        let patch = rest.get(6..).unwrap_or(&[]);
        let at = u16::from_le_bytes([
            rest.get(4).copied().unwrap_or(0),
            rest.get(5).copied().unwrap_or(0),
        ]) as usize
            % (bytes.len() + 1);
        for (i, &b) in patch.iter().enumerate() {
            match bytes.get_mut(at + i) {
                Some(x) => *x = b,
                None => bytes.push(b),
            }
        }
        bytes
    } else {
        rest.to_vec()
    };
    std::fs::write(&path, &bytes).expect("write the region file");
    if let Ok(a) = Attached::open(&name) {
        let _ = a.header();
        let _ = a.owner_running();
        let _ = (a.ring_len(), a.ring_drops(), a.ring_pushed());
        let _ = a.snapshot();
        let _ = a.stats();
    }
    if let Ok(mut a) = Attached::open_consumer(&name) {
        for _ in 0..16 {
            if a.pop().is_none() {
                break;
            }
        }
        let _ = a.snapshot();
    }
    let _ = std::fs::remove_file(&path);
}
