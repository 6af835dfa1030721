//! Hostile `.npy` headers: deep nesting is refused in linear time, a huge shape in a tiny file
//! allocates nothing big (a counting allocator tracks this thread's peak of live bytes).

use std::time::{Duration, Instant};

use echos_npy::{Npy, NpyError, MAGIC};

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

use echos_testalloc::peak_of;

fn npy_v2(header: &str, body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[2, 0]);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn ten_thousand_nested_braces_are_refused_quickly() {
    let header = "{".repeat(10_000) + &"}".repeat(10_000);
    let bytes = npy_v2(&header, &[]);
    let t0 = Instant::now();
    let (r, peak) = peak_of(|| Npy::parse(&bytes).map(|_| ()));
    let took = t0.elapsed();
    assert!(
        matches!(&r, Err(NpyError::Header(m)) if m.contains("expected a quoted string")),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(peak < 4096, "peak {peak} bytes");
    // The same depth inside a tuple (NumPy never nests there either).
    let header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': {}}}",
        "(".repeat(10_000)
    );
    let bytes = npy_v2(&header, &[]);
    let r = Npy::parse(&bytes).map(|_| ());
    assert!(matches!(r, Err(NpyError::Header(_))), "{r:?}");
}

#[test]
fn a_huge_shape_in_a_tiny_file_allocates_nothing_big() {
    for shape in [
        "(1099511627776,)",
        "(4294967296, 4294967296)",
        "(65536, 65536, 65536)",
        "(18446744073709551615,)",
    ] {
        let header = format!("{{'descr': '<f8', 'fortran_order': True, 'shape': {shape}, }}");
        let bytes = npy_v2(&header, &[0; 16]);
        let (r, peak) = peak_of(|| Npy::parse(&bytes).map(|a| a.to_f64().len()));
        println!(
            "{shape}: {} bytes of file, peak {peak} bytes allocated",
            bytes.len()
        );
        assert!(
            matches!(
                r,
                Err(NpyError::Overflow { .. }) | Err(NpyError::Truncated { .. })
            ),
            "{shape}: {r:?}"
        );
        assert!(peak < 1024, "{shape}: peak {peak} bytes");
    }
    // A zero-length dimension is a valid empty array, not an overflow.
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 0), }";
    let bytes = npy_v2(header, &[]);
    let (r, peak) = peak_of(|| Npy::parse(&bytes).map(|a| a.to_f64().len()));
    assert_eq!(r, Ok(0));
    assert!(peak < 1024, "peak {peak}");
}

/// The instrument itself: without it every allocation bound above would hold vacuously.
#[test]
fn the_counting_allocator_sees_allocations() {
    echos_testalloc::assert_counter_works();
}
