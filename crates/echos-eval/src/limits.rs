//! The hardware ceilings `echos esn bench` sets its step rates against, measured on this CPU:
//! the read bandwidth of a working set, the gather rate of the sparse step's index pattern, the
//! lane multiply + add rate and the `vdpbf16ps` rate. Each is the median over timings of at
//! least 2 ms in this thread's CPU time, so other processes on the cores do not lower it.

use crate::probes;
use cpu_time::ThreadTime;
use echos_core::kernels::Kernel;
use echos_host::bench::{median, Ceilings};
use std::hint::black_box;

/// The ceilings measured by the micro-kernels in [`crate::probes`] (five samples each).
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured;

impl Ceilings for Measured {
    fn read_bandwidth(&self, kernel: Kernel, bytes: usize) -> f64 {
        read_bandwidth(kernel, bytes, 5)
    }
    fn gather_rate(&self, kernel: Kernel, x_len: usize, indices: &[u32]) -> f64 {
        gather_rate(kernel, x_len, indices)
    }
    fn muladd_rate(&self, kernel: Kernel) -> f64 {
        muladd_rate(kernel)
    }
    fn dpbf16_rate(&self) -> Option<f64> {
        dpbf16_rate()
    }
}

/// Times `f` (which does `work` units per call), doubling the calls per sample until one
/// sample takes ≥ 2 ms; the median of `repeats` samples in units per CPU-second.
fn rate(repeats: usize, work: f64, mut f: impl FnMut()) -> f64 {
    f();
    let mut calls = 1usize;
    loop {
        let t = ThreadTime::now();
        for _ in 0..calls {
            f();
        }
        if t.elapsed().as_secs_f64() > 2e-3 {
            break;
        }
        calls *= 2;
    }
    let samples: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t = ThreadTime::now();
            for _ in 0..calls {
                f();
            }
            work * calls as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    median(&samples)
}

/// Read bandwidth (bytes/s) for a working set of `bytes`, streamed repeatedly by `kernel`'s
/// loads: the ceiling for a kernel that reads that many bytes per step from the same cache
/// level.
pub fn read_bandwidth(kernel: Kernel, bytes: usize, repeats: usize) -> f64 {
    let n = (bytes / 4).max(16);
    let data: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    rate(repeats, (n * 4) as f64, || {
        black_box(probes::read_sum(kernel, black_box(&data)));
    })
}

/// Gathered elements per second for gathers of `x` at `indices` (the sparse step's pattern).
pub fn gather_rate(kernel: Kernel, x_len: usize, indices: &[u32]) -> f64 {
    let x: Vec<f32> = (0..x_len.max(1)).map(|i| (i % 5) as f32).collect();
    rate(5, indices.len() as f64, || {
        black_box(probes::gather_sum(
            kernel,
            black_box(&x),
            black_box(indices),
        ));
    })
}

/// Lane multiply-adds (separate mul and add, as the batched kernel does) per second.
pub fn muladd_rate(kernel: Kernel) -> f64 {
    let lanes = probes::muladd_spin(kernel, 1, 0.0).1;
    rate(5, (10_000 * lanes) as f64, || {
        black_box(probes::muladd_spin(kernel, 10_000, black_box(1e-9)));
    })
}

/// Lane products per second of `vdpbf16ps` (the bf16 batch format's arithmetic), or `None`
/// where the CPU lacks AVX-512 BF16.
pub fn dpbf16_rate() -> Option<f64> {
    let (_, products) = probes::dpbf16_spin(1, 0.5)?;
    Some(rate(5, (10_000 * products) as f64, || {
        black_box(probes::dpbf16_spin(10_000, black_box(0.5)));
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ceiling_is_a_positive_rate_on_every_variant() {
        let rate = |r: f64| r.is_finite() && r > 0.0;
        let idx: Vec<u32> = (0..4096u32).map(|k| (k * 37) % 1000).collect();
        for k in Kernel::available() {
            let name = k.variant().name();
            assert!(rate(read_bandwidth(k, 64 << 10, 1)), "{name}");
            assert!(rate(gather_rate(k, 1000, &idx)), "{name}");
            assert!(rate(muladd_rate(k)), "{name}");
        }
        let bf16 = dpbf16_rate();
        assert_eq!(bf16.is_some(), probes::has_native_bf16());
        assert!(bf16.is_none_or(rate));
    }
}
