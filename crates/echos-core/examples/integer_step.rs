//! Bench command for the integer reservoirs: steps per second of the intESN and the Q1.15 sparse
//! ESN at 100, 500 and 1000 units (10 % connectivity), 10,000 steps each, median of 5 runs, so
//! the figures sit beside the ReservoirPy peer numbers in DESIGN.md.
//! `cargo run --release -p echos-core --example integer_step`

use std::time::Instant;

use echos_core::integer::{
    q16_ratio, FixedEsn, FixedEsnBuffers, FixedEsnConfig, FixedEsnLayout, IntEsn, IntEsnConfig,
    Q16_ONE,
};

const STEPS: usize = 10_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    for units in [100usize, 500, 1000] {
        let cfg = FixedEsnConfig {
            units,
            inputs: 1,
            connectivity_permille: 100,
            spectral_radius_q16: q16_ratio(9, 10),
            input_scaling_q16: Q16_ONE,
            bias_scaling_q16: q16_ratio(1, 10),
            leak_rate_q16: q16_ratio(3, 10),
            seed: 1,
        };
        let l = FixedEsnLayout::of(&cfg);
        let (mut ro, mut co, mut va) =
            (vec![0u32; units + 1], vec![0u16; l.nnz], vec![0i16; l.nnz]);
        let (mut wi, mut bi, mut st, mut sc) = (
            vec![0i16; units],
            vec![0i16; units],
            vec![0i16; units],
            vec![0i16; units],
        );
        let mut esn = FixedEsn::new(
            cfg,
            FixedEsnBuffers {
                row_offsets: &mut ro,
                columns: &mut co,
                values: &mut va,
                w_in: &mut wi,
                bias: &mut bi,
                state: &mut st,
                scratch: &mut sc,
            },
        )
        .expect("fixed-point ESN");
        let inputs: Vec<i32> = (0..STEPS)
            .map(|t| ((t * 7919) % 65536) as i32 * 2 - Q16_ONE)
            .collect();
        let rates: Vec<f64> = (0..5)
            .map(|_| {
                esn.reset();
                let t0 = Instant::now();
                for u in &inputs {
                    esn.step(std::slice::from_ref(u)).expect("step");
                }
                STEPS as f64 / t0.elapsed().as_secs_f64()
            })
            .collect();
        println!(
            "fixed-point sparse ESN N={units:<5} nnz={:<7} {:>10.0} steps/s",
            l.nnz,
            median(rates)
        );

        let icfg = IntEsnConfig {
            units,
            inputs: 1,
            kappa: 7,
            seed: 1,
        };
        let (mut state, mut w) = (vec![0i8; units], vec![0u64; icfg.w_in_words()]);
        let mut iesn = IntEsn::new(icfg, &mut state, &mut w).expect("intESN");
        let iinputs: Vec<i32> = (0..STEPS).map(|t| (t % 7) as i32 - 3).collect();
        let rates: Vec<f64> = (0..5)
            .map(|_| {
                iesn.reset();
                let t0 = Instant::now();
                for u in &iinputs {
                    iesn.step(std::slice::from_ref(u)).expect("step");
                }
                STEPS as f64 / t0.elapsed().as_secs_f64()
            })
            .collect();
        println!(
            "intESN (kappa 7)       N={units:<5}             {:>10.0} steps/s",
            median(rates)
        );
    }
}
