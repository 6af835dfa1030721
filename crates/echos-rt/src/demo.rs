//! The runtime's embedded default (`echos rt run --demo`): a pipeline that needs no files. A
//! 100-unit ESN is trained in-process (the host's one training path) to predict the
//! Mackey-Glass series one step ahead; the loop then feeds it the held-out stretch of the
//! series at 1 kHz, publishes its state and outputs in the shared region `demo`, and scores
//! each prediction against the true next value as it goes.

use echos_core::model::Generative;
use echos_host::datasets::MackeyGlass;
use echos_host::training::{train, EsnModel, Solver, TrainOptions};
use echos_host::Array2;

use crate::config::{ShmPlan, Timing};
use crate::realtime::SchedPlan;
use crate::runner::Plan;
use crate::sink::ScoreSink;
use crate::source::SeriesSource;
use crate::RtError;

/// Training and held-out lengths of the built-in series.
pub const TRAIN_STEPS: usize = 2000;
pub const TEST_STEPS: usize = 1000;
pub const REGION: &str = "demo";

/// The demo's training options (ReservoirPy-like defaults, leaky units).
pub fn demo_options() -> TrainOptions {
    TrainOptions {
        units: 100,
        spectral_radius: 0.95,
        leak_rate: 0.5,
        input_scaling: 0.5,
        bias_scaling: 0.2,
        connectivity: 0.1,
        topology: Default::default(),
        ridge: 1e-7,
        washout: 100,
        input_features: true,
        generative: Generative::Input,
        feedback_scaling: 0.0,
        noise: 0.0,
        solver: Solver::NormalEquations,
        seed: 42,
        kernel: Default::default(),
    }
}

/// The built-in series split into (train input, train target, test input, test target), each
/// a column, target = input one step ahead.
pub fn demo_series() -> Result<(Array2, Array2, Array2, Array2), RtError> {
    let bad = |e: &dyn std::fmt::Display| RtError::Mismatch {
        what: "the demo series".into(),
        reason: e.to_string(),
    };
    let x = MackeyGlass::default()
        .generate(TRAIN_STEPS + TEST_STEPS + 1)
        .map_err(|e| bad(&e))?;
    let col = |a: usize, b: usize| Array2::column(x[a..b].to_vec()).map_err(|e| bad(&e));
    Ok((
        col(0, TRAIN_STEPS)?,
        col(1, TRAIN_STEPS + 1)?,
        col(TRAIN_STEPS, TRAIN_STEPS + TEST_STEPS)?,
        col(TRAIN_STEPS + 1, TRAIN_STEPS + TEST_STEPS + 1)?,
    ))
}

/// Trains the demo model.
pub fn demo_model() -> Result<EsnModel, RtError> {
    let (u, y, _, _) = demo_series()?;
    Ok(train(&demo_options(), &u, &y)?)
}

/// The demo pipeline: `periods` periods of `period_us` over the held-out series (repeated),
/// region `region` (`REGION` by default) with the outputs in its ring, and the running score.
pub fn demo_plan(
    period_us: u64,
    periods: u64,
    sched: SchedPlan,
    region: &str,
) -> Result<Plan, RtError> {
    crate::shm::region_path(region)?;
    let model = demo_model()?;
    let (_, _, test_u, test_y) = demo_series()?;
    let timing = Timing::from_us(period_us, None, None, Some(periods))?;
    Ok(Plan {
        model: model.driver().clone(),
        source: Box::new(SeriesSource::new(
            test_u,
            true,
            "built-in Mackey-Glass, held-out stretch",
        )?),
        sinks: vec![Box::new(ScoreSink::new(test_y.into_data(), 1))],
        timing,
        sched,
        shm: Some(ShmPlan {
            name: region.into(),
            ring_capacity: 1024,
            reclaim_stale: true,
            ring_sink: true,
        }),
    })
}
