//! Readouts against references: ridge against its closed form and nalgebra's solve, RLS
//! against the regularised least-squares solution it tracks, LMS learning a linear map.

use echos_core::readout::{Linear, Lms, ReadoutError, Ridge, Rls};
use echos_core::rng::Rng;
use nalgebra::{DMatrix, DVector};

/// Random design: `t` samples of `d` features and targets y = A·x + b + noise.
fn problem(
    t: usize,
    d: usize,
    outputs: usize,
    noise: f64,
    seed: u64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let a: Vec<f64> = (0..outputs * (d + 1))
        .map(|_| rng.uniform(-2.0, 2.0))
        .collect();
    let mut xs = Vec::with_capacity(t * d);
    let mut ys = Vec::with_capacity(t * outputs);
    for _ in 0..t {
        let x: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        for o in 0..outputs {
            let row = &a[o * (d + 1)..(o + 1) * (d + 1)];
            let y = row[0] + row[1..].iter().zip(&x).map(|(w, v)| w * v).sum::<f64>();
            ys.push(y + noise * rng.normal());
        }
        xs.extend(x);
    }
    (xs, ys, a)
}

/// nalgebra reference for (ZᵀZ + diag(reg))·W = ZᵀY with Z = [1, X].
fn reference(xs: &[f64], ys: &[f64], d: usize, outputs: usize, reg: &[f64]) -> DMatrix<f64> {
    let t = xs.len() / d;
    let z = DMatrix::from_fn(
        t,
        d + 1,
        |r, c| if c == 0 { 1.0 } else { xs[r * d + c - 1] },
    );
    let y = DMatrix::from_row_slice(t, outputs, ys);
    let a = z.transpose() * &z + DMatrix::from_diagonal(&DVector::from_column_slice(reg));
    let b = z.transpose() * y;
    a.lu()
        .solve(&b)
        .expect("reference system is singular")
        .transpose()
}

#[test]
fn ridge_matches_closed_form_in_one_dimension() {
    // With an unregularised intercept: w = Sxy / (Sxx + λ), b = ȳ − w·x̄.
    let xs = [0.5, 1.0, 2.0, 3.5, 4.0];
    let ys = [1.0, 2.5, 2.0, 5.0, 4.5];
    let lambda = 0.7;
    let mut ridge = Ridge::new(1, 1, lambda).unwrap();
    for (x, y) in xs.iter().zip(&ys) {
        ridge.accumulate(&[*x], &[*y]).unwrap();
    }
    let fit = ridge.fit().unwrap();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    let w = sxy / (sxx + lambda);
    let b = my - w * mx;
    assert!(
        (fit.weights.get(0, 1) - w).abs() < 1e-12,
        "{} vs {w}",
        fit.weights.get(0, 1)
    );
    assert!((fit.weights.get(0, 0) - b).abs() < 1e-12);
}

#[test]
fn ridge_matches_nalgebra_and_leaves_the_bias_unregularised() {
    let (d, outputs) = (12, 3);
    let (xs, ys, _) = problem(400, d, outputs, 0.1, 1);
    let lambda = 2.5;
    let mut ridge = Ridge::new(d, outputs, lambda).unwrap();
    for t in 0..400 {
        ridge
            .accumulate(&xs[t * d..(t + 1) * d], &ys[t * outputs..(t + 1) * outputs])
            .unwrap();
    }
    let fit = ridge.fit().unwrap();
    let mut reg = vec![lambda; d + 1];
    reg[0] = 0.0;
    let want = reference(&xs, &ys, d, outputs, &reg);
    for o in 0..outputs {
        for c in 0..=d {
            assert!((fit.weights.get(o, c) - want[(o, c)]).abs() < 1e-10);
        }
    }
    // Shifting every target by 10 shifts only the bias, by exactly 10 (up to rounding).
    let mut shifted = Ridge::new(d, outputs, lambda).unwrap();
    for t in 0..400 {
        let y: Vec<f64> = ys[t * outputs..(t + 1) * outputs]
            .iter()
            .map(|v| v + 10.0)
            .collect();
        shifted.accumulate(&xs[t * d..(t + 1) * d], &y).unwrap();
    }
    let fit2 = shifted.fit().unwrap();
    for o in 0..outputs {
        assert!((fit2.weights.get(o, 0) - fit.weights.get(o, 0) - 10.0).abs() < 1e-9);
        for c in 1..=d {
            assert!((fit2.weights.get(o, c) - fit.weights.get(o, c)).abs() < 1e-9);
        }
    }
    // Predict applies bias + weights.
    let mut y = [0.0f32; 3];
    fit.predict(
        &xs[..d].iter().map(|&v| v as f32).collect::<Vec<_>>(),
        &mut y,
    )
    .unwrap();
    for o in 0..outputs {
        let direct = want[(o, 0)] + (0..d).map(|c| want[(o, c + 1)] * xs[c]).sum::<f64>();
        assert!((f64::from(y[o]) - direct).abs() < 1e-5);
    }
}

#[test]
fn ridge_path_equals_fresh_fits_and_no_bias_matches_nalgebra() {
    let (d, outputs) = (8, 2);
    let (xs, ys, _) = problem(300, d, outputs, 0.2, 7);
    let mut ridge = Ridge::new(d, outputs, 1.0).unwrap();
    let mut plain = Ridge::without_bias(d, outputs, 0.5).unwrap();
    for t in 0..300 {
        let (x, y) = (&xs[t * d..(t + 1) * d], &ys[t * outputs..(t + 1) * outputs]);
        ridge.accumulate(x, y).unwrap();
        plain.accumulate(x, y).unwrap();
    }
    // The path solves the same accumulated system: each λ equals a fresh fit at that λ.
    let lambdas = [1e-6, 0.1, 1.0, 30.0];
    let path = ridge.fit_path(&lambdas).unwrap();
    for (&l, fit) in lambdas.iter().zip(&path) {
        let mut fresh = Ridge::new(d, outputs, l).unwrap();
        for t in 0..300 {
            fresh
                .accumulate(&xs[t * d..(t + 1) * d], &ys[t * outputs..(t + 1) * outputs])
                .unwrap();
        }
        assert_eq!(fit, &fresh.fit().unwrap(), "lambda {l}");
    }
    assert_eq!(path[2], ridge.fit().unwrap());
    assert!(matches!(
        ridge.fit_with(-1.0),
        Err(ReadoutError::BadParameter { what: "ridge", .. })
    ));
    // Without the bias feature: (XᵀX + λI)·W = XᵀY, and the bias column is zero.
    let x = DMatrix::from_row_slice(300, d, &xs);
    let y = DMatrix::from_row_slice(300, outputs, &ys);
    let a = x.transpose() * &x + DMatrix::identity(d, d) * 0.5;
    let want = a.lu().solve(&(x.transpose() * y)).unwrap().transpose();
    let fit = plain.fit().unwrap();
    for o in 0..outputs {
        assert_eq!(fit.weights.get(o, 0), 0.0);
        for c in 0..d {
            assert!((fit.weights.get(o, c + 1) - want[(o, c)]).abs() < 1e-10);
        }
    }
}

#[test]
fn ridge_errors_are_typed() {
    let ridge = Ridge::new(3, 1, 1.0).unwrap();
    assert_eq!(ridge.fit().unwrap_err(), ReadoutError::NoSamples);
    assert!(matches!(
        Ridge::new(3, 1, -1.0),
        Err(ReadoutError::BadParameter { what: "ridge", .. })
    ));
    // λ = 0 with two identical state components: singular.
    let mut singular = Ridge::new(2, 1, 0.0).unwrap();
    for t in 0..10 {
        let v = t as f64;
        singular.accumulate(&[v, v], &[v]).unwrap();
    }
    assert_eq!(
        singular.fit().unwrap_err(),
        ReadoutError::NotPositiveDefinite
    );
    let mut r = Ridge::new(2, 1, 1.0).unwrap();
    assert!(matches!(
        r.accumulate(&[1.0], &[1.0]),
        Err(ReadoutError::DimensionMismatch { what: "state", .. })
    ));
    assert!(matches!(
        r.accumulate(&[1.0, f64::NAN], &[1.0]),
        Err(ReadoutError::NonFinite { .. })
    ));
    assert!(Linear::zeros(2, 1)
        .unwrap()
        .predict(&[1.0], &mut [0.0])
        .is_err());
}

#[test]
fn rls_equals_regularised_least_squares_and_converges_to_ridge() {
    let (d, outputs) = (8, 2);
    let (xs, ys, _) = problem(600, d, outputs, 0.05, 2);
    let delta = 1e-3;
    let mut rls = Rls::new(d, outputs, 1.0, delta).unwrap();
    let mut ridge = Ridge::new(d, outputs, delta).unwrap();
    for t in 0..600 {
        let (x, y) = (&xs[t * d..(t + 1) * d], &ys[t * outputs..(t + 1) * outputs]);
        rls.update(x, y).unwrap();
        ridge.accumulate(x, y).unwrap();
    }
    // With λ = 1, RLS from P(0) = I/δ is exactly least squares with δ·‖W‖² (bias included).
    let exact = reference(&xs, &ys, d, outputs, &vec![delta; d + 1]);
    let fit = ridge.fit().unwrap();
    for o in 0..outputs {
        for c in 0..=d {
            let w = rls.readout().weights.get(o, c);
            assert!(
                (w - exact[(o, c)]).abs() < 1e-8,
                "RLS vs exact: {w} {}",
                exact[(o, c)]
            );
            // Ridge differs only by not regularising the bias: negligible at δ = 1e-3.
            assert!((w - fit.weights.get(o, c)).abs() < 1e-5, "RLS vs ridge");
        }
    }
    // P is kept exactly symmetric.
    let p = rls.inverse_correlation();
    for i in 0..=d {
        for j in 0..=d {
            assert_eq!(p[i * (d + 1) + j].to_bits(), p[j * (d + 1) + i].to_bits());
        }
    }
    assert!(Rls::new(d, 1, 0.0, 1.0).is_err());
    assert!(Rls::new(d, 1, 1.2, 1.0).is_err());
    assert!(Rls::new(d, 1, 0.99, 0.0).is_err());
}

#[test]
fn rls_with_forgetting_tracks_a_changed_map() {
    // After the map changes, old samples weigh λ^300: 0.0023 for λ = 0.98, so the estimate
    // sits within about 1% of the new map; without forgetting it stays halfway.
    let run = |forgetting: f64| {
        let mut rng = Rng::new(3);
        let mut rls = Rls::new(2, 1, forgetting, 1.0).unwrap();
        for w in [[1.0, 2.0, -1.0], [-1.0, 0.5, 3.0]] {
            for _ in 0..300 {
                let x = [rng.normal(), rng.normal()];
                rls.update(&x, &[w[0] + w[1] * x[0] + w[2] * x[1]]).unwrap();
            }
        }
        let w = rls.readout().weights.clone();
        [-1.0, 0.5, 3.0]
            .iter()
            .enumerate()
            .map(|(c, want)| (w.get(0, c) - want).abs())
            .fold(0.0, f64::max)
    };
    let tracking = run(0.98);
    let stuck = run(1.0);
    assert!(tracking < 0.02, "with forgetting: error {tracking}");
    assert!(stuck > 0.5, "without forgetting: error {stuck}");
}

#[test]
fn lms_learns_a_linear_map() {
    let (d, outputs) = (5, 2);
    let (xs, ys, a) = problem(20_000, d, outputs, 0.0, 4);
    let mut lms = Lms::new(d, outputs, 0.02).unwrap();
    for t in 0..20_000 {
        lms.update(&xs[t * d..(t + 1) * d], &ys[t * outputs..(t + 1) * outputs])
            .unwrap();
    }
    for o in 0..outputs {
        for c in 0..=d {
            let got = lms.readout().weights.get(o, c);
            assert!((got - a[o * (d + 1) + c]).abs() < 1e-6, "{o},{c}: {got}");
        }
    }
    let mut diverging = Lms::new(1, 1, 50.0).unwrap();
    let result = (0..200).try_for_each(|t| diverging.update(&[t as f64], &[1.0]));
    assert!(matches!(result, Err(ReadoutError::NonFinite { .. })));
}
