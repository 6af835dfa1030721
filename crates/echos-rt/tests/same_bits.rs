//! Same reservoir, same bits: a model trained with the host's `train`, saved and loaded as a
//! model file, gives bit-identical outputs through `EsnModel::run` (what `echos esn run`
//! does) and through the runtime's periodic loop on the same input — exact and fused kernels,
//! with and without output feedback. Compared value by value and by the loop's CRC-32 digest;
//! the full runner (its own thread, file sink) must write the same `.npy` bytes as
//! `write_array` of `EsnModel::run`'s result.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use echos_core::esn::StepKernel;
use echos_core::model::Generative;
use echos_host::training::{train, Solver, TrainOptions};
use echos_host::{model_file, Array2};
use echos_rt::config::{ShmPlan, Timing};
use echos_rt::{End, FileSink, MemorySink, Pipeline, Plan, SchedPlan, SeriesSource, Sink};

fn series(rows: usize, phase: f64) -> Array2 {
    let data = (0..rows)
        .map(|t| libm::sin(t as f64 * 0.21 + phase) * 0.5 + 0.1 * libm::cos(t as f64 * 0.05))
        .collect();
    Array2::new(rows, 1, data).unwrap()
}

fn options(generative: Generative, kernel: StepKernel) -> TrainOptions {
    TrainOptions {
        units: 80,
        spectral_radius: 0.9,
        leak_rate: 0.6,
        input_scaling: 0.8,
        bias_scaling: 0.2,
        connectivity: 0.15,
        topology: Default::default(),
        ridge: 1e-6,
        washout: 30,
        input_features: true,
        generative,
        feedback_scaling: 0.4,
        noise: 0.0,
        solver: Solver::NormalEquations,
        seed: 11,
        kernel,
    }
}

fn crc_of(values: &[f64]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for v in values {
        h.update(&v.to_le_bytes());
    }
    h.finalize()
}

fn timing(periods: Option<u64>) -> Timing {
    Timing::from_us(20, None, None, periods).unwrap()
}

#[test]
fn the_runtime_loop_reproduces_esn_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (u, y) = (series(700, 0.0), series(700, 0.21));
    let test_in = series(500, 3.7);
    for (i, (generative, kernel)) in [
        (Generative::Input, StepKernel::Exact),
        (Generative::Feedback, StepKernel::Exact),
        (Generative::Input, StepKernel::fast()),
        (Generative::Feedback, StepKernel::fast()),
    ]
    .into_iter()
    .enumerate()
    {
        let label = format!("{generative:?}/{}", kernel.name());
        let trained = train(&options(generative, kernel), &u, &y).unwrap();
        let path = dir.path().join(format!("m{i}.safetensors"));
        model_file::save(&path, &trained).unwrap();

        // What `echos esn run` computes.
        let mut reference = model_file::load(&path).unwrap();
        let want = reference.run(&test_in).unwrap();

        // The runtime loop over the same input, from a fresh load of the same file.
        let loaded = model_file::load(&path).unwrap();
        let sink = Box::new(MemorySink::new(1, test_in.rows()));
        let source = Box::new(SeriesSource::new(test_in.clone(), false, "test").unwrap());
        let mut p = Pipeline::new(
            loaded.driver().clone(),
            source,
            vec![sink as Box<dyn Sink>],
            None,
            false,
            timing(None),
        )
        .unwrap();
        let out = p.run(&AtomicBool::new(false));
        assert_eq!(out.end, End::SourceEnded, "{label}");
        assert_eq!(out.stats.steps, test_in.rows() as u64, "{label}");
        assert_eq!(
            out.stats.outputs_crc32,
            crc_of(want.data()),
            "{label}: digest"
        );
        // And value by value.
        let mut parts = p.into_parts();
        let mem: Box<dyn std::any::Any> = parts.sinks.pop().unwrap();
        let mem = mem.downcast::<MemorySink>().unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(mem.values()), bits(want.data()), "{label}: values");
        assert_eq!(out.stats.sink_drops, 0, "{label}");

        // The full runner: loop thread, real-time set-up, region, file sink.
        let npy = dir.path().join(format!("rt{i}.npy"));
        let plan = Plan {
            model: model_file::load(&path).unwrap().driver().clone(),
            source: Box::new(SeriesSource::new(test_in.clone(), false, "test").unwrap()),
            sinks: vec![Box::new(FileSink::create(&npy, 1).unwrap())],
            timing: timing(None),
            sched: SchedPlan {
                prefault_stack_bytes: 64 * 1024,
                ..SchedPlan::default()
            },
            shm: Some(ShmPlan {
                name: format!("samebits-{i}-{}", std::process::id()),
                ring_capacity: 1024,
                reclaim_stale: true,
                ring_sink: true,
            }),
        };
        let report = echos_rt::run(plan, Arc::new(AtomicBool::new(false))).unwrap();
        assert!(report.errors.is_empty(), "{label}: {:?}", report.errors);
        assert_eq!(
            report.stats.outputs_crc32,
            crc_of(want.data()),
            "{label}: runner digest"
        );
        let theirs = dir.path().join(format!("ref{i}.npy"));
        echos_host::write_array(&theirs, &want).unwrap();
        assert_eq!(
            std::fs::read(&npy).unwrap(),
            std::fs::read(&theirs).unwrap(),
            "{label}: file bytes"
        );
        assert!(!report.region.unwrap().exists(), "{label}: region removed");
    }
}

#[test]
fn memory_sink_values_equal_esn_run_values() {
    let (u, y) = (series(400, 0.0), series(400, 0.21));
    let test_in = series(300, 1.3);
    let trained = train(&options(Generative::Feedback, StepKernel::Exact), &u, &y).unwrap();
    let want = trained.clone().run(&test_in).unwrap();
    let source = Box::new(SeriesSource::new(test_in.clone(), false, "test").unwrap());
    let mut p = Pipeline::new(
        trained.driver().clone(),
        source,
        Vec::new(),
        None,
        false,
        timing(None),
    )
    .unwrap();
    // A direct look at the values: step the pipeline's own sink-free run, then compare the
    // model's last output and state with the reference model's.
    let out = p.run(&AtomicBool::new(false));
    assert_eq!(out.end, End::SourceEnded);
    let mut reference = trained.clone();
    reference.run(&test_in).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(p.model().esn().state()), bits(reference.esn().state()));
    assert_eq!(
        bits(p.model().last_output()),
        bits(&want.data()[want.data().len() - 1..])
    );
}
