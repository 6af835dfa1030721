//! Crash safety of model saves (issue 16): a child process saves two versions of a model file
//! over each other in a loop (`model_file::save`: temp file, fsync, rename, directory fsync);
//! the test SIGKILLs it at a random moment, 1,000 times, and after every kill the file must
//! load and be byte for byte one of the two versions: never missing, corrupt or half written.
//! Temp files a kill leaves behind are counted and must be cleaned by the next save.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use echos_core::esn::StepKernel;
use echos_core::topology::Topology;
use echos_host::training::{self, EsnModel, Generative, Solver, TrainOptions};
use echos_host::{model_file, Array2};

const KILLS: usize = 1000;
const CHILD_ENV: &str = "ECHOS_CRASH_CHILD_DIR";

fn model(seed: u64) -> EsnModel {
    let (u, y) = echos_host::datasets::narma10(300, 5).unwrap();
    let opts = TrainOptions {
        units: 120,
        spectral_radius: 0.9,
        leak_rate: 0.8,
        input_scaling: 1.0,
        bias_scaling: 0.5,
        connectivity: 0.3,
        topology: Topology::Random,
        ridge: 1e-6,
        washout: 20,
        input_features: true,
        generative: Generative::None,
        feedback_scaling: 0.0,
        noise: 0.0,
        solver: Solver::NormalEquations,
        seed,
        kernel: StepKernel::Exact,
    };
    let x = Array2::column(u[..250].to_vec()).unwrap();
    let t = Array2::column(y[..250].to_vec()).unwrap();
    training::train(&opts, &x, &t).unwrap()
}

fn target(dir: &Path) -> PathBuf {
    dir.join("model.safetensors")
}

/// The child's side: saves the two versions alternately until it is killed. A no-op unless the
/// test binary was started as a child.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = target(Path::new(&dir));
    let models = [model(1), model(2)];
    println!("ready");
    for i in 0.. {
        model_file::save(&path, &models[i % 2]).unwrap();
    }
}

/// Temp files beside the target (the writer's `.echos-tmp-` prefix).
fn leftovers(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(".echos-tmp-"))
        })
        .count()
}

#[test]
fn killed_saves_leave_the_old_or_the_new_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = target(dir.path());
    let versions = [
        model_file::to_bytes(&model(1)).unwrap(),
        model_file::to_bytes(&model(2)).unwrap(),
    ];
    model_file::save(&path, &model(1)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut x: u32 = 0x2545_F491;
    let mut seen = [0usize; 2];
    let mut max_left = 0;
    let started = Instant::now();
    for kill in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--test-threads=1", "--nocapture"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // wait until the child has built its models and starts saving, then kill it at a
        // random moment among its saves (each takes a few ms: write, fsync, rename)
        let out = BufReader::new(child.stdout.take().unwrap());
        let ready = out
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("ready"));
        assert!(ready, "kill {kill}: the child ended without saving");
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        std::thread::sleep(Duration::from_micros(u64::from(x % 8_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("kill {kill}: the model is gone: {e}"));
        let which = versions
            .iter()
            .position(|v| *v == bytes)
            .unwrap_or_else(|| {
                panic!(
                    "kill {kill}: the file ({} bytes) is neither version",
                    bytes.len()
                )
            });
        seen[which] += 1;
        model_file::load(&path).unwrap_or_else(|e| panic!("kill {kill}: {e}"));
        max_left = max_left.max(leftovers(dir.path()));
    }
    let left = leftovers(dir.path());
    println!(
        "{KILLS} kills in {:.1} s: version 1 found {} times, version 2 {} times; {left} temp files left behind (at most {max_left} at once)",
        started.elapsed().as_secs_f64(),
        seen[0],
        seen[1]
    );
    // both versions were seen, so kills did land between and during saves
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    // the next save removes what killed writers left
    model_file::save(&path, &model(1)).unwrap();
    assert_eq!(
        leftovers(dir.path()),
        0,
        "temp files of killed saves remain after a save"
    );
}
