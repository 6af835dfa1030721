//! Pinned output bits of every float step path: one FNV-1a digest per (topology, storage, step
//! kernel, scalar type) over 300 steps of a fixed configuration. Any change to the bits a path
//! produces — a reordered sum, another tanh, a different weight draw — fails here and must be
//! deliberate (update the pin and say why in the commit). The integer paths have their own
//! pinned digests (`integer/`); this covers the float ones.
//!
//! To print the current digests: `cargo test -p echos-core --test step_digests -- --nocapture`.

use echos_core::esn::{Esn, EsnConfig, StepKernel};
use echos_core::integer::Fnv1a;
use echos_core::kernels::Variant;
use echos_core::scalar::Scalar;
use echos_core::topology::{MatrixFormat, Topology};

/// The fixed configuration: 64 units, two inputs, one fed-back output, every weight in play.
fn config(topology: Topology, format: MatrixFormat, kernel: StepKernel) -> EsnConfig {
    EsnConfig {
        units: 64,
        inputs: 2,
        outputs: 1,
        spectral_radius: 0.9,
        leak_rate: 0.7,
        input_scaling: 0.8,
        bias_scaling: 0.3,
        connectivity: 0.2,
        feedback_scaling: 0.5,
        topology,
        format,
        seed: 2026,
        kernel,
        ..EsnConfig::default()
    }
}

/// FNV-1a over the f64 bits of every state of a 300-step run with a fixed input and feedback.
fn digest<T: Scalar>(c: &EsnConfig) -> u64 {
    let mut esn = Esn::<T>::new(c).expect("valid configuration");
    let mut h = Fnv1a::new();
    for t in 0..300 {
        let tf = t as f64;
        let u = [
            T::from_f64(libm::sin(tf * 0.13)),
            T::from_f64(libm::cos(tf * 0.07) * 0.5),
        ];
        let y = [T::from_f64(libm::sin(tf * 0.05) * 0.3)];
        let x = esn.step(&u, Some(&y)).expect("step");
        for v in x {
            h.write(&v.to_f64().to_bits().to_le_bytes());
        }
    }
    h.finish()
}

const TOPOLOGIES: [(&str, Topology, MatrixFormat); 6] = [
    ("random-csr", Topology::Random, MatrixFormat::Csr),
    ("random-dense", Topology::Random, MatrixFormat::Dense),
    ("cycle", Topology::Cycle, MatrixFormat::Auto),
    ("delay-line", Topology::DelayLine, MatrixFormat::Auto),
    (
        "cycle-jumps",
        Topology::CycleJumps { jump: 4 },
        MatrixFormat::Auto,
    ),
    ("block-8", Topology::Block { size: 8 }, MatrixFormat::Auto),
];

/// (topology, kernel, scalar type) → digest, as measured on 2026-12-02.
const PINNED: &[(&str, &str, &str, u64)] = &[
    ("random-csr", "exact", "f64", 0x2c9886ab43313a0c),
    ("random-csr", "exact", "f32", 0xe73de3f85071f001),
    ("random-csr", "scalar", "f64", 0x6c2d36d2435976b2),
    ("random-csr", "scalar", "f32", 0x6c2d36d2435976b2),
    ("random-csr", "avx2", "f64", 0x6c2d36d2435976b2),
    ("random-csr", "avx2", "f32", 0x6c2d36d2435976b2),
    ("random-csr", "avx512", "f64", 0x6c2d36d2435976b2),
    ("random-csr", "avx512", "f32", 0x6c2d36d2435976b2),
    ("random-dense", "exact", "f64", 0x630104504519a54f),
    ("random-dense", "exact", "f32", 0x42f00c101b075e6e),
    ("random-dense", "scalar", "f64", 0x6c2d36d2435976b2),
    ("random-dense", "scalar", "f32", 0x6c2d36d2435976b2),
    ("random-dense", "avx2", "f64", 0xf1fa2ede9ece0051),
    ("random-dense", "avx2", "f32", 0xf1fa2ede9ece0051),
    ("random-dense", "avx512", "f64", 0x20a506065167ee6d),
    ("random-dense", "avx512", "f32", 0x20a506065167ee6d),
    ("cycle", "exact", "f64", 0xaeb11add07c20848),
    ("cycle", "exact", "f32", 0xb8366fca0ac98d0f),
    ("cycle", "scalar", "f64", 0x29fc966a486db13d),
    ("cycle", "scalar", "f32", 0x29fc966a486db13d),
    ("cycle", "avx2", "f64", 0x29fc966a486db13d),
    ("cycle", "avx2", "f32", 0x29fc966a486db13d),
    ("cycle", "avx512", "f64", 0x29fc966a486db13d),
    ("cycle", "avx512", "f32", 0x29fc966a486db13d),
    ("delay-line", "exact", "f64", 0xcd61564c6dd255a7),
    ("delay-line", "exact", "f32", 0x828cf8f872a1d004),
    ("delay-line", "scalar", "f64", 0xabec86df07dc09d8),
    ("delay-line", "scalar", "f32", 0xabec86df07dc09d8),
    ("delay-line", "avx2", "f64", 0xabec86df07dc09d8),
    ("delay-line", "avx2", "f32", 0xabec86df07dc09d8),
    ("delay-line", "avx512", "f64", 0xabec86df07dc09d8),
    ("delay-line", "avx512", "f32", 0xabec86df07dc09d8),
    ("cycle-jumps", "exact", "f64", 0x4a32bc5ce19aa9b2),
    ("cycle-jumps", "exact", "f32", 0x9e7b857cdfe049b1),
    ("cycle-jumps", "scalar", "f64", 0x07a64e3f0768a1b0),
    ("cycle-jumps", "scalar", "f32", 0x07a64e3f0768a1b0),
    ("cycle-jumps", "avx2", "f64", 0x07a64e3f0768a1b0),
    ("cycle-jumps", "avx2", "f32", 0x07a64e3f0768a1b0),
    ("cycle-jumps", "avx512", "f64", 0x07a64e3f0768a1b0),
    ("cycle-jumps", "avx512", "f32", 0x07a64e3f0768a1b0),
    ("block-8", "exact", "f64", 0xf708917c5b75e628),
    ("block-8", "exact", "f32", 0x509f7d1ec59354fd),
    ("block-8", "scalar", "f64", 0x57b53661baa4c8f4),
    ("block-8", "scalar", "f32", 0x57b53661baa4c8f4),
    ("block-8", "avx2", "f64", 0x57b53661baa4c8f4),
    ("block-8", "avx2", "f32", 0x57b53661baa4c8f4),
    ("block-8", "avx512", "f64", 0x57b53661baa4c8f4),
    ("block-8", "avx512", "f32", 0x57b53661baa4c8f4),
];

#[test]
fn float_step_paths_give_their_pinned_bits() {
    let mut kernels = vec![StepKernel::Exact];
    for v in Variant::ALL {
        if v.is_supported() {
            kernels.push(StepKernel::Fused(v));
        } else {
            eprintln!("SKIPPED (CPU lacks it): fused {} digests", v.name());
        }
    }
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for (name, topology, format) in TOPOLOGIES {
        for &kernel in &kernels {
            let c = config(topology, format, kernel);
            let runs: [(&str, u64); 2] = [("f64", digest::<f64>(&c)), ("f32", digest::<f32>(&c))];
            for (ty, got) in runs {
                println!(
                    "    (\"{name}\", \"{}\", \"{ty}\", {got:#018x}),",
                    kernel.name()
                );
                match PINNED
                    .iter()
                    .find(|p| p.0 == name && p.1 == kernel.name() && p.2 == ty)
                {
                    Some(&(_, _, _, want)) => {
                        checked += 1;
                        if got != want {
                            mismatches.push(format!(
                                "{name} {} {ty}: {got:#018x}, pinned {want:#018x}",
                                kernel.name()
                            ));
                        }
                    }
                    None => mismatches.push(format!("{name} {} {ty}: no pin", kernel.name())),
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(
        checked >= TOPOLOGIES.len() * 2,
        "only {checked} digests checked"
    );
}

/// The fused variants of the SELL-16, block and structured paths are bit-identical to each
/// other (the contract `ESN(kernel=...)` documents), and every fused f64 reservoir holds the
/// f32 results widened exactly; dense is per variant (its reduction order is the variant's).
#[test]
fn fused_variants_agree_where_the_contract_says_so() {
    let fused: Vec<StepKernel> = Variant::ALL
        .into_iter()
        .filter(|v| v.is_supported())
        .map(StepKernel::Fused)
        .collect();
    for (name, topology, format) in TOPOLOGIES {
        let digests: Vec<(u64, u64)> = fused
            .iter()
            .map(|&k| {
                let c = config(topology, format, k);
                (digest::<f32>(&c), digest::<f64>(&c))
            })
            .collect();
        for (k, &(f32_bits, f64_bits)) in fused.iter().zip(&digests) {
            assert_eq!(f32_bits, f64_bits, "{name} {k}: f64 must widen the f32 run");
        }
        if name != "random-dense" {
            assert!(
                digests.windows(2).all(|w| w[0] == w[1]),
                "{name}: fused variants differ: {digests:x?}"
            );
        }
    }
}
