//! Spectral radius of reservoir matrices, and scaling a reservoir to a target radius.
//!
//! Method: restarted Arnoldi. Random reservoirs have a complex-conjugate pair (or several
//! near-equal moduli) at the top of the spectrum, where plain power iteration oscillates
//! instead of converging; a Krylov method sees the whole outer spectrum at once.
//! 1. From a fixed start vector (a seeded uniform vector, so the estimate is deterministic)
//!    build an m-step Arnoldi factorisation A·V = V·H + β·v·eₘᵀ with modified Gram–Schmidt and
//!    one reorthogonalisation pass.
//! 2. The Ritz values are the eigenvalues of the small upper-Hessenberg H, found by the
//!    Francis double-shift QR algorithm (EISPACK `hqr`). The estimate is the largest modulus.
//! 3. Convergence test: the Ritz residual ‖A·y − θ·y‖ = β·|eₘᵀ s| (s the eigenvector of H
//!    for θ, from complex inverse iteration) is at most `tolerance · |θ|`; or the Krylov space
//!    became invariant (β ≈ 0), when the Ritz values are exact.
//! 4. Otherwise restart with exact shifts: the new start vector is ψ(A)·v₁ where ψ has the
//!    unwanted (smaller-modulus) Ritz values as roots, complex pairs applied together as the
//!    real quadratic A² − 2Re(θ)A + |θ|²I. This spans the same space as Sorensen's implicit
//!    restart, computed explicitly with normalisation after each factor.

use alloc::vec;
use alloc::vec::Vec;

use crate::matrix::{Csr, Dense};
use crate::rng::Rng;
use crate::scalar::Scalar;
use crate::topology::ReservoirMatrix;

/// A real square operator the estimator can apply (y = A x) in f64.
pub trait LinearOperator {
    fn dim(&self) -> usize;
    fn apply(&self, x: &[f64], y: &mut [f64]);
}

impl LinearOperator for Csr<f64> {
    fn dim(&self) -> usize {
        self.rows
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        self.matvec(x, y)
    }
}

impl LinearOperator for Dense<f64> {
    fn dim(&self) -> usize {
        self.rows
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        self.matvec(x, y)
    }
}

impl<T: Scalar> LinearOperator for ReservoirMatrix<T> {
    fn dim(&self) -> usize {
        self.units()
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        self.matvec_f64(x, y)
    }
}

/// Result of a spectral radius estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralEstimate {
    /// Largest |λ| found.
    pub radius: f64,
    /// Matrix–vector products spent.
    pub iterations: usize,
    /// Whether the convergence test passed (false: `radius` is the last, unconverged estimate).
    pub converged: bool,
}

/// Tuning of the Arnoldi estimator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArnoldiOptions {
    /// Krylov subspace size m (capped at the matrix dimension).
    pub krylov_dim: usize,
    /// Restarts before giving up.
    pub max_restarts: usize,
    /// Relative Ritz residual accepted as converged.
    pub tolerance: f64,
    /// Seed of the fixed start vector.
    pub start_seed: u64,
}

impl Default for ArnoldiOptions {
    fn default() -> Self {
        Self {
            krylov_dim: 48,
            max_restarts: 300,
            tolerance: 1e-9,
            start_seed: 0x5EED_5EED,
        }
    }
}

/// Spectral radius with default options: exact for the cycle (|w|) and delay line (0),
/// restarted Arnoldi otherwise.
pub fn spectral_radius<A: LinearOperator + ?Sized>(a: &A) -> SpectralEstimate {
    spectral_radius_with(a, &ArnoldiOptions::default())
}

/// Spectral radius of a reservoir matrix, using the closed form where the structure gives one.
pub fn reservoir_spectral_radius<T: Scalar>(w: &ReservoirMatrix<T>) -> SpectralEstimate {
    match w {
        ReservoirMatrix::Cycle { weight, .. } => SpectralEstimate {
            radius: weight.to_f64().abs(),
            iterations: 0,
            converged: true,
        },
        ReservoirMatrix::DelayLine { .. } => SpectralEstimate {
            radius: 0.0,
            iterations: 0,
            converged: true,
        },
        other => spectral_radius(other),
    }
}

/// Why a reservoir could not be scaled to a target spectral radius.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScaleError {
    /// The matrix's spectral radius is (numerically) zero, so no factor reaches the target.
    ZeroRadius,
    /// The estimator did not converge (radius of the last estimate given).
    NotConverged { radius: f64 },
    /// The target is negative or not finite.
    BadTarget,
}

/// Scales `w` so its spectral radius becomes `target`; returns the radius before scaling.
pub fn scale_to_spectral_radius<T: Scalar>(
    w: &mut ReservoirMatrix<T>,
    target: f64,
) -> Result<SpectralEstimate, ScaleError> {
    if !target.is_finite() || target < 0.0 {
        return Err(ScaleError::BadTarget);
    }
    let est = reservoir_spectral_radius(w);
    if !est.converged {
        return Err(ScaleError::NotConverged { radius: est.radius });
    }
    if est.radius.is_nan() || est.radius <= 1e-300 {
        return Err(ScaleError::ZeroRadius);
    }
    w.scale(target / est.radius);
    Ok(est)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    libm::sqrt(dot(a, a))
}

/// Restarted Arnoldi estimate of the spectral radius (see the module docs).
pub fn spectral_radius_with<A: LinearOperator + ?Sized>(
    a: &A,
    opts: &ArnoldiOptions,
) -> SpectralEstimate {
    let n = a.dim();
    if n == 0 {
        return SpectralEstimate {
            radius: 0.0,
            iterations: 0,
            converged: true,
        };
    }
    let m = opts.krylov_dim.clamp(2, n.max(2)).min(n);
    let mut rng = Rng::new(opts.start_seed);
    let mut v1: Vec<f64> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let nv = norm(&v1);
    v1.iter_mut().for_each(|x| *x /= nv);

    let mut basis = vec![0.0; (m + 1) * n];
    let mut h = vec![0.0; (m + 1) * m];
    let mut w = vec![0.0; n];
    let mut tmp = vec![0.0; n];
    let mut matvecs = 0usize;
    let mut radius = 0.0;

    for _restart in 0..=opts.max_restarts {
        basis[..n].copy_from_slice(&v1);
        h.iter_mut().for_each(|x| *x = 0.0);
        let mut k = m;
        let mut invariant = false;
        let mut scale = 0.0f64;
        for j in 0..m {
            a.apply(&basis[j * n..(j + 1) * n], &mut w);
            matvecs += 1;
            let wnorm0 = norm(&w);
            scale = scale.max(wnorm0);
            for _pass in 0..2 {
                for i in 0..=j {
                    let vi = &basis[i * n..(i + 1) * n];
                    let c = dot(&w, vi);
                    h[i * m + j] += c;
                    for (wk, vk) in w.iter_mut().zip(vi) {
                        *wk -= c * vk;
                    }
                }
            }
            let beta = norm(&w);
            // β tiny relative to ‖A‖: the Krylov space is invariant and H's eigenvalues exact.
            if beta <= 1e-12 * scale.max(f64::MIN_POSITIVE) || j + 1 == n && beta <= 1e-8 * scale {
                k = j + 1;
                invariant = true;
                break;
            }
            h[(j + 1) * m + j] = beta;
            for (dst, wk) in basis[(j + 1) * n..(j + 2) * n].iter_mut().zip(&w) {
                *dst = wk / beta;
            }
        }
        if scale == 0.0 {
            // A annihilates the start vector's Krylov space: the zero matrix (or nilpotent on it).
            return SpectralEstimate {
                radius: 0.0,
                iterations: matvecs,
                converged: true,
            };
        }
        let mut hk = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                hk[i * k + j] = h[i * m + j];
            }
        }
        let Some(ritz) = hessenberg_eigenvalues(&hk, k) else {
            return SpectralEstimate {
                radius,
                iterations: matvecs,
                converged: false,
            };
        };
        let (top, _) =
            ritz.iter()
                .enumerate()
                .map(|(i, z)| (i, z.abs()))
                .fold(
                    (0, -1.0),
                    |best, cur| if cur.1 > best.1 { cur } else { best },
                );
        radius = ritz[top].abs();
        if invariant || k == n {
            return SpectralEstimate {
                radius,
                iterations: matvecs,
                converged: true,
            };
        }
        let beta = h[k * m + (k - 1)];
        let s_last = ritz_vector_last_component(&hk, k, ritz[top]);
        if beta * s_last <= opts.tolerance * radius.max(f64::MIN_POSITIVE) {
            return SpectralEstimate {
                radius,
                iterations: matvecs,
                converged: true,
            };
        }
        // Exact-shift filter: keep the largest `keep` Ritz values, damp the rest.
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&i, &j| {
            ritz[j]
                .abs()
                .partial_cmp(&ritz[i].abs())
                .unwrap_or(core::cmp::Ordering::Equal)
        });
        let mut keep = (k / 3).max(2).min(k - 1);
        // Never split a complex-conjugate pair between kept and shifted.
        if keep < k && ritz[order[keep]].im != 0.0 && ritz[order[keep - 1]].im != 0.0 {
            let a0 = ritz[order[keep]];
            let b0 = ritz[order[keep - 1]];
            if (a0.re - b0.re).abs() <= 1e-12 * a0.abs()
                && (a0.im + b0.im).abs() <= 1e-12 * a0.abs()
            {
                keep += 1;
            }
        }
        let mut i = keep;
        while i < k {
            let z = ritz[order[i]];
            if z.im != 0.0 {
                // v ← (A² − 2Re z A + |z|² I) v, skipping the conjugate partner.
                a.apply(&v1, &mut w);
                a.apply(&w, &mut tmp);
                matvecs += 2;
                let (t, d) = (2.0 * z.re, z.re * z.re + z.im * z.im);
                for q in 0..n {
                    v1[q] = tmp[q] - t * w[q] + d * v1[q];
                }
                i += 2;
            } else {
                a.apply(&v1, &mut w);
                matvecs += 1;
                for q in 0..n {
                    v1[q] = w[q] - z.re * v1[q];
                }
                i += 1;
            }
            let nv = norm(&v1);
            if !nv.is_finite() || nv <= 0.0 {
                // The filter annihilated the vector: the kept Ritz space is invariant.
                return SpectralEstimate {
                    radius,
                    iterations: matvecs,
                    converged: true,
                };
            }
            v1.iter_mut().for_each(|x| *x /= nv);
        }
    }
    SpectralEstimate {
        radius,
        iterations: matvecs,
        converged: false,
    }
}

/// A complex number, only what the small eigenproblems here need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Complex {
    pub re: f64,
    pub im: f64,
}

impl Complex {
    pub fn abs(self) -> f64 {
        libm::hypot(self.re, self.im)
    }
    fn sub(self, o: Self) -> Self {
        Self {
            re: self.re - o.re,
            im: self.im - o.im,
        }
    }
    fn mul(self, o: Self) -> Self {
        Self {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    fn div(self, o: Self) -> Self {
        let d = o.re * o.re + o.im * o.im;
        Self {
            re: (self.re * o.re + self.im * o.im) / d,
            im: (self.im * o.re - self.re * o.im) / d,
        }
    }
}

/// |last component| of the unit eigenvector of the k×k matrix `hk` for eigenvalue `theta`,
/// by two steps of complex inverse iteration with a slightly perturbed shift.
fn ritz_vector_last_component(hk: &[f64], k: usize, theta: Complex) -> f64 {
    let eps = 1e-10 * theta.abs().max(1e-300);
    let shift = Complex {
        re: theta.re + eps,
        im: theta.im,
    };
    let mut x = vec![Complex { re: 1.0, im: 0.0 }; k];
    let mut m = vec![Complex { re: 0.0, im: 0.0 }; k * k];
    for _ in 0..2 {
        for i in 0..k {
            for j in 0..k {
                m[i * k + j] = Complex {
                    re: hk[i * k + j],
                    im: 0.0,
                };
            }
            m[i * k + i] = m[i * k + i].sub(shift);
        }
        // Gaussian elimination with partial pivoting.
        for c in 0..k {
            let p = (c..k)
                .max_by(|&a, &b| {
                    m[a * k + c]
                        .abs()
                        .partial_cmp(&m[b * k + c].abs())
                        .unwrap_or(core::cmp::Ordering::Equal)
                })
                .unwrap_or(c);
            if p != c {
                for j in 0..k {
                    m.swap(c * k + j, p * k + j);
                }
                x.swap(c, p);
            }
            let mut piv = m[c * k + c];
            if piv.abs() == 0.0 {
                piv = Complex { re: eps, im: 0.0 };
                m[c * k + c] = piv;
            }
            for r in c + 1..k {
                let f = m[r * k + c].div(piv);
                if f.re == 0.0 && f.im == 0.0 {
                    continue;
                }
                for j in c..k {
                    m[r * k + j] = m[r * k + j].sub(f.mul(m[c * k + j]));
                }
                x[r] = x[r].sub(f.mul(x[c]));
            }
        }
        for c in (0..k).rev() {
            let mut acc = x[c];
            for j in c + 1..k {
                acc = acc.sub(m[c * k + j].mul(x[j]));
            }
            x[c] = acc.div(m[c * k + c]);
        }
        let nrm = libm::sqrt(x.iter().map(|z| z.re * z.re + z.im * z.im).sum::<f64>());
        if !nrm.is_finite() || nrm <= 0.0 {
            return 1.0;
        }
        for z in x.iter_mut() {
            z.re /= nrm;
            z.im /= nrm;
        }
    }
    x[k - 1].abs()
}

/// Eigenvalues of a real upper-Hessenberg `n × n` matrix (row-major) by the Francis
/// double-shift QR algorithm (EISPACK `hqr`, with dlahqr's alternating exceptional shifts and
/// iteration budget). `None` if an eigenvalue needs more than 30·max(10, n) iterations.
pub fn hessenberg_eigenvalues(h: &[f64], n: usize) -> Option<Vec<Complex>> {
    // 1-based indexing mirrors the published algorithm and keeps the translation checkable.
    let mut a = vec![0.0; (n + 1) * (n + 1)];
    let ix = |i: usize, j: usize| i * (n + 1) + j;
    for i in 1..=n {
        for j in 1..=n {
            a[ix(i, j)] = h[(i - 1) * n + (j - 1)];
        }
    }
    let mut wr = vec![0.0; n + 1];
    let mut wi = vec![0.0; n + 1];
    let mut anorm = 0.0;
    for i in 1..=n {
        for j in i.saturating_sub(1).max(1)..=n {
            anorm += a[ix(i, j)].abs();
        }
    }
    // LAPACK's iteration budget per active block.
    let max_its = 30 * n.max(10);
    let mut nn = n;
    let mut t = 0.0;
    let (mut p, mut q, mut r): (f64, f64, f64);
    while nn >= 1 {
        let mut its = 0;
        loop {
            let mut l = nn;
            while l >= 2 {
                let mut s = a[ix(l - 1, l - 1)].abs() + a[ix(l, l)].abs();
                if s == 0.0 {
                    s = anorm;
                }
                if a[ix(l, l - 1)].abs() + s == s {
                    a[ix(l, l - 1)] = 0.0;
                    break;
                }
                l -= 1;
            }
            let mut x = a[ix(nn, nn)];
            if l == nn {
                wr[nn] = x + t;
                wi[nn] = 0.0;
                nn -= 1;
            } else {
                let mut y = a[ix(nn - 1, nn - 1)];
                let mut w = a[ix(nn, nn - 1)] * a[ix(nn - 1, nn)];
                if l == nn - 1 {
                    let p = 0.5 * (y - x);
                    let q = p * p + w;
                    let mut z = libm::sqrt(q.abs());
                    x += t;
                    if q >= 0.0 {
                        z = p + if p >= 0.0 { z.abs() } else { -z.abs() };
                        wr[nn - 1] = x + z;
                        wr[nn] = x + z;
                        if z != 0.0 {
                            wr[nn] = x - w / z;
                        }
                        wi[nn - 1] = 0.0;
                        wi[nn] = 0.0;
                    } else {
                        wr[nn - 1] = x + p;
                        wr[nn] = x + p;
                        wi[nn - 1] = -z;
                        wi[nn] = z;
                    }
                    nn = nn.saturating_sub(2);
                } else {
                    if its == max_its {
                        return None;
                    }
                    if its > 0 && its % 10 == 0 {
                        // Exceptional shift to break a cycle (permutation-like and defective
                        // blocks stall the standard shift), alternating, as LAPACK's dlahqr does,
                        // between the bottom and the top of the active block.
                        t += x;
                        for i in 1..=nn {
                            a[ix(i, i)] -= x;
                        }
                        let s = if (its / 10) % 2 == 1 {
                            a[ix(nn, nn - 1)].abs() + a[ix(nn - 1, nn - 2)].abs()
                        } else {
                            a[ix(l + 1, l)].abs() + a[ix(l + 2, l + 1)].abs()
                        };
                        x = 0.75 * s;
                        y = x;
                        w = -0.4375 * s * s;
                    }
                    its += 1;
                    let mut m = nn - 2;
                    let mut z;
                    loop {
                        z = a[ix(m, m)];
                        r = x - z;
                        let s0 = y - z;
                        p = (r * s0 - w) / a[ix(m + 1, m)] + a[ix(m, m + 1)];
                        q = a[ix(m + 1, m + 1)] - z - r - s0;
                        r = a[ix(m + 2, m + 1)];
                        let s = p.abs() + q.abs() + r.abs();
                        p /= s;
                        q /= s;
                        r /= s;
                        if m == l {
                            break;
                        }
                        let u = a[ix(m, m - 1)].abs() * (q.abs() + r.abs());
                        let v = p.abs()
                            * (a[ix(m - 1, m - 1)].abs() + z.abs() + a[ix(m + 1, m + 1)].abs());
                        if u + v == v {
                            break;
                        }
                        m -= 1;
                    }
                    for i in m + 2..=nn {
                        a[ix(i, i - 2)] = 0.0;
                        if i != m + 2 {
                            a[ix(i, i - 3)] = 0.0;
                        }
                    }
                    let mut k = m;
                    while k < nn {
                        if k != m {
                            p = a[ix(k, k - 1)];
                            q = a[ix(k + 1, k - 1)];
                            r = 0.0;
                            if k != nn - 1 {
                                r = a[ix(k + 2, k - 1)];
                            }
                            x = p.abs() + q.abs() + r.abs();
                            if x != 0.0 {
                                p /= x;
                                q /= x;
                                r /= x;
                            }
                        }
                        let sq = libm::sqrt(p * p + q * q + r * r);
                        let s = if p >= 0.0 { sq } else { -sq };
                        if s != 0.0 {
                            if k == m {
                                if l != m {
                                    a[ix(k, k - 1)] = -a[ix(k, k - 1)];
                                }
                            } else {
                                a[ix(k, k - 1)] = -s * x;
                            }
                            p += s;
                            x = p / s;
                            y = q / s;
                            z = r / s;
                            q /= p;
                            r /= p;
                            for j in k..=nn {
                                p = a[ix(k, j)] + q * a[ix(k + 1, j)];
                                if k != nn - 1 {
                                    p += r * a[ix(k + 2, j)];
                                    a[ix(k + 2, j)] -= p * z;
                                }
                                a[ix(k + 1, j)] -= p * y;
                                a[ix(k, j)] -= p * x;
                            }
                            let mmin = if nn < k + 3 { nn } else { k + 3 };
                            for i in l..=mmin {
                                p = x * a[ix(i, k)] + y * a[ix(i, k + 1)];
                                if k != nn - 1 {
                                    p += z * a[ix(i, k + 2)];
                                    a[ix(i, k + 2)] -= p * r;
                                }
                                a[ix(i, k + 1)] -= p * q;
                                a[ix(i, k)] -= p;
                            }
                        }
                        k += 1;
                    }
                }
            }
            if nn < 2 || l + 1 >= nn {
                break;
            }
        }
    }
    Some(
        (1..=n)
            .map(|i| Complex {
                re: wr[i],
                im: wi[i],
            })
            .collect(),
    )
}
