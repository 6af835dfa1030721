//! Structured reservoirs in O(N) time and O(1) weight storage per step: the simple cycle
//! reservoir, the delay line and the cycle reservoir with jumps (Rodan & Tiňo, "Minimum
//! complexity echo state network", 2011; "Simple deterministically constructed cycle reservoirs
//! with regular jumps", 2012). Unit i is fed by unit i − 1 along the cycle.

use super::{check_dim, check_len, KernelError};
use core::ops::{Add, Mul};

/// y = W·x for the cycle W[i][i−1 mod N] = weight.
pub fn cycle_matvec<T>(weight: T, x: &[T], y: &mut [T]) -> Result<(), KernelError>
where
    T: Copy + Mul<Output = T>,
{
    let n = x.len();
    check_dim("units", n)?;
    check_len("y", n, y.len())?;
    y[0] = weight * x[n - 1];
    for (yi, &xp) in y[1..].iter_mut().zip(&x[..n - 1]) {
        *yi = weight * xp;
    }
    Ok(())
}

/// y = W·x for the delay line W[i][i−1] = weight (i ≥ 1); unit 0 receives nothing.
pub fn delay_line_matvec<T>(weight: T, x: &[T], y: &mut [T]) -> Result<(), KernelError>
where
    T: Copy + Default + Mul<Output = T>,
{
    let n = x.len();
    check_dim("units", n)?;
    check_len("y", n, y.len())?;
    y[0] = T::default();
    for (yi, &xp) in y[1..].iter_mut().zip(&x[..n - 1]) {
        *yi = weight * xp;
    }
    Ok(())
}

/// y = W·x for the cycle with jumps: the cycle (`cycle_weight`) plus symmetric jumps
/// (`jump_weight`) joining units 0, ℓ, 2ℓ, … consecutively, ℓ = `jump`, with no wrap-around from
/// the last jump node to unit 0 — the same matrix as the model's `ReservoirMatrix::CycleJumps`.
/// Per unit the sum is cycle term, then the jump from the previous jump node, then from the next
/// one.
pub fn cycle_jumps_matvec<T>(
    cycle_weight: T,
    jump_weight: T,
    jump: usize,
    x: &[T],
    y: &mut [T],
) -> Result<(), KernelError>
where
    T: Copy + Mul<Output = T> + Add<Output = T>,
{
    let n = x.len();
    if jump < 2 || jump >= n {
        return Err(KernelError::Dimension {
            what: "jump (must be in 2..units)",
            value: jump,
        });
    }
    cycle_matvec(cycle_weight, x, y)?;
    let nodes = n.div_ceil(jump); // jump nodes 0, ℓ, …, (nodes − 1)·ℓ < n
    for k in 0..nodes {
        let m = k * jump;
        let mut acc = y[m];
        if k > 0 {
            acc = acc + jump_weight * x[m - jump];
        }
        if k + 1 < nodes {
            acc = acc + jump_weight * x[m + jump];
        }
        y[m] = acc;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The same matrices built densely, as the reference.
    fn dense_cycle_jumps(
        n: usize,
        rc: f64,
        rj: f64,
        jump: Option<usize>,
        closed_cycle: bool,
    ) -> Vec<f64> {
        let mut w = vec![0.0; n * n];
        for i in 1..n {
            w[i * n + i - 1] = rc;
        }
        if closed_cycle {
            w[n - 1] = rc;
        }
        if let Some(l) = jump {
            let nodes: Vec<usize> = (0..n).step_by(l).collect();
            for pair in nodes.windows(2) {
                w[pair[0] * n + pair[1]] += rj;
                w[pair[1] * n + pair[0]] += rj;
            }
        }
        w
    }

    fn dense_mv(w: &[f64], x: &[f64]) -> Vec<f64> {
        let n = x.len();
        (0..n)
            .map(|i| (0..n).map(|j| w[i * n + j] * x[j]).sum())
            .collect()
    }

    #[test]
    fn structured_matvecs_match_their_dense_matrices() {
        for n in [5usize, 12, 13, 40] {
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut y = vec![0.0; n];
            cycle_matvec(0.9, &x, &mut y).unwrap();
            let r = dense_mv(&dense_cycle_jumps(n, 0.9, 0.0, None, true), &x);
            assert!(y.iter().zip(&r).all(|(a, b)| (a - b).abs() < 1e-12));
            delay_line_matvec(0.8, &x, &mut y).unwrap();
            let r = dense_mv(&dense_cycle_jumps(n, 0.8, 0.0, None, false), &x);
            assert!(y.iter().zip(&r).all(|(a, b)| (a - b).abs() < 1e-12));
            for jump in [2usize, 3, 4] {
                cycle_jumps_matvec(0.7, 0.3, jump, &x, &mut y).unwrap();
                let r = dense_mv(&dense_cycle_jumps(n, 0.7, 0.3, Some(jump), true), &x);
                assert!(
                    y.iter().zip(&r).all(|(a, b)| (a - b).abs() < 1e-12),
                    "n {n} jump {jump}"
                );
            }
        }
    }

    /// The kernel and the model (`ReservoirMatrix::CycleJumps`, what `Esn` runs) are one matrix,
    /// including when the jump divides N (no wrap-around in either).
    #[test]
    fn cycle_jumps_kernel_equals_the_model_matrix() {
        use crate::topology::ReservoirMatrix;
        for n in [8usize, 12, 13, 30] {
            for jump in [2usize, 3, 4, 5] {
                let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.61).cos()).collect();
                let mut y = vec![0.0; n];
                cycle_jumps_matvec(0.7, 0.3, jump, &x, &mut y).unwrap();
                let model = ReservoirMatrix::<f64>::CycleJumps {
                    units: n,
                    cycle_weight: 0.7,
                    jump_weight: 0.3,
                    jump,
                };
                let mut r = vec![0.0; n];
                model.matvec(&x, &mut r);
                assert!(
                    y.iter().zip(&r).all(|(a, b)| (a - b).abs() < 1e-12),
                    "n {n} jump {jump}: kernel {y:?} model {r:?}"
                );
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let x = [1.0f32; 4];
        let mut y = [0.0f32; 3];
        assert!(cycle_matvec(1.0, &x, &mut y).is_err());
        assert!(cycle_matvec::<f32>(1.0, &[], &mut []).is_err());
        let mut y = [0.0f32; 4];
        assert!(cycle_jumps_matvec(1.0, 1.0, 4, &x, &mut y).is_err());
        assert!(cycle_jumps_matvec(1.0, 1.0, 1, &x, &mut y).is_err());
    }
}
