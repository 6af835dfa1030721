//! Same configuration and seed give a bit-identical state trajectory: twice in one process,
//! and in a second process (this test binary re-run as a child), for every topology and both
//! scalar types.

use std::process::Command;

use echos_core::esn::{Activation, Esn, EsnConfig};
use echos_core::scalar::Scalar;
use echos_core::topology::{MatrixFormat, Topology, WeightDistribution};

const CHILD_ENV: &str = "ECHOS_DETERMINISM_CHILD";

/// FNV-1a over the bits of every state of every trajectory.
fn digest() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bits: u64| {
        for b in bits.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    let configs = [
        (
            Topology::Random,
            MatrixFormat::Csr,
            WeightDistribution::Normal,
        ),
        (
            Topology::Random,
            MatrixFormat::Dense,
            WeightDistribution::Uniform,
        ),
        (
            Topology::Random,
            MatrixFormat::Csr,
            WeightDistribution::Bernoulli,
        ),
        (
            Topology::Cycle,
            MatrixFormat::Auto,
            WeightDistribution::Normal,
        ),
        (
            Topology::DelayLine,
            MatrixFormat::Auto,
            WeightDistribution::Normal,
        ),
        (
            Topology::CycleJumps { jump: 5 },
            MatrixFormat::Auto,
            WeightDistribution::Normal,
        ),
    ];
    for (i, (topology, format, distribution)) in configs.into_iter().enumerate() {
        let config = EsnConfig {
            units: 300,
            inputs: 2,
            outputs: 1,
            topology,
            format,
            distribution,
            leak_rate: 0.3,
            activation: [Activation::Tanh, Activation::Sigmoid][i % 2],
            seed: 1000 + i as u64,
            ..EsnConfig::default()
        };
        run::<f64>(&config, &mut eat);
        run::<f32>(&config, &mut eat);
    }
    h
}

fn run<T: Scalar>(config: &EsnConfig, eat: &mut impl FnMut(u64)) {
    let mut esn = Esn::<T>::new(config).unwrap();
    for t in 0..500 {
        let tf = t as f64;
        let u = [
            T::from_f64(libm::sin(0.1 * tf)),
            T::from_f64(libm::cos(0.23 * tf)),
        ];
        let y = [T::from_f64(libm::sin(0.05 * tf))];
        for v in esn.step(&u, Some(&y)).unwrap() {
            eat(v.to_f64().to_bits());
        }
    }
}

/// Prints the digest when run as the child; does nothing in a normal test run.
#[test]
fn determinism_child() {
    if std::env::var_os(CHILD_ENV).is_some() {
        println!("DIGEST {:016x}", digest());
    }
}

#[test]
fn same_trajectory_twice_in_process_and_in_a_second_process() {
    let here = digest();
    assert_eq!(here, digest(), "two runs in one process differ");
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([
            "determinism_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("spawning the test binary as a child");
    assert!(out.status.success(), "child failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let child = stdout
        .lines()
        // The harness prints "test determinism_child ... " on the same line.
        .find_map(|l| l.split("DIGEST ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .unwrap_or_else(|| panic!("child printed no digest: {stdout}"));
    assert_eq!(
        child,
        format!("{here:016x}"),
        "a second process computed a different trajectory"
    );
}
