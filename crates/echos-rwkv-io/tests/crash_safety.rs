//! Crash safety of RWKV state saves (issue 16): a child process saves two states of a small
//! model over each other in a loop (`state_io::save_state`: temp file, fsync, rename,
//! directory fsync); the test SIGKILLs it at a random moment, 1,000 times, and after every kill
//! the file must load and hold one of the two versions. Temp files a kill leaves
//! behind are counted and must be cleaned by the next save. (The ESN model-file twin of this
//! test is crates/echos-host/tests/crash_safety.rs.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use echos_core::rwkv::{Model, State};
use echos_rwkv_io::state_io;
use echos_rwkv_io::synthetic::{synthetic_v7, SyntheticShape};

const KILLS: usize = 1000;
const CHILD_ENV: &str = "ECHOS_CRASH_CHILD_DIR";

fn model() -> Model {
    synthetic_v7(
        &SyntheticShape {
            n_layer: 4,
            n_embd: 128,
            head_size: 32,
            vocab: 16,
        },
        1,
    )
    .unwrap()
}

fn state(model: &Model, fill: f32) -> State {
    let mut s = State::new(model);
    for (i, v) in s.wkv.iter_mut().enumerate() {
        *v = fill + i as f32 * 1e-3;
    }
    s.att_x.fill(fill);
    s.ffn_x.fill(-fill);
    s
}

fn target(dir: &Path) -> PathBuf {
    dir.join("rwkv.state")
}

/// The child's side: saves the two states alternately until it is killed. A no-op unless the
/// test binary was started as a child.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = target(Path::new(&dir));
    let m = model();
    let states = [state(&m, 1.0), state(&m, 2.0)];
    println!("ready");
    for i in 0.. {
        state_io::save_state(&path, &m, &states[i % 2]).unwrap();
    }
}

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
fn killed_saves_leave_the_old_or_the_new_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = target(dir.path());
    let m = model();
    let versions = [state(&m, 1.0), state(&m, 2.0)];
    state_io::save_state(&path, &m, &state(&m, 1.0)).unwrap();
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
        // the metadata is a hash map, so each process may order its JSON keys differently:
        // versions are compared by what loads, not byte for byte
        let loaded = state_io::load_state(&path, &m).unwrap_or_else(|e| panic!("kill {kill}: {e}"));
        let which = versions
            .iter()
            .position(|v| v.att_x == loaded.att_x && v.ffn_x == loaded.ffn_x && v.wkv == loaded.wkv)
            .unwrap_or_else(|| panic!("kill {kill}: the loaded state is neither version"));
        seen[which] += 1;
        max_left = max_left.max(leftovers(dir.path()));
    }
    println!(
        "{KILLS} kills in {:.1} s: state 1 found {} times, state 2 {} times; {} temp files left behind (at most {max_left} at once)",
        started.elapsed().as_secs_f64(),
        seen[0],
        seen[1],
        leftovers(dir.path())
    );
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    state_io::save_state(&path, &m, &state(&m, 1.0)).unwrap();
    assert_eq!(
        leftovers(dir.path()),
        0,
        "temp files of killed saves remain after a save"
    );
}
