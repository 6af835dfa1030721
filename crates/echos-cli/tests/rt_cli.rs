//! `echos rt` end to end: the runtime's outputs are byte-identical to `echos esn run`'s on the
//! same model and input; bad configs are refused before anything starts with the key named;
//! the demo, status, bench and a SIGINT stop behave as documented and leave no region behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;

fn echos() -> Command {
    Command::cargo_bin("echos").expect("the echos binary is built")
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("echos")
}

fn write_csv(path: &Path, rows: usize, cols: usize, phase: f64) {
    let mut s = String::new();
    for t in 0..rows {
        let row: Vec<String> = (0..cols)
            .map(|j| format!("{}", ((t as f64) * 0.17 + phase + j as f64).sin() * 0.5))
            .collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// Trains a 1-input model with output feedback off (exact kernel) and returns its path.
fn trained_model(dir: &Path) -> PathBuf {
    let (x, y) = (dir.join("x.csv"), dir.join("y.csv"));
    write_csv(&x, 400, 1, 0.0);
    write_csv(&y, 400, 1, 0.17);
    let model = dir.join("m.safetensors");
    echos()
        .args([
            "esn",
            "train",
            "--units",
            "60",
            "--washout",
            "20",
            "--seed",
            "9",
        ])
        .arg("--input")
        .arg(&x)
        .arg("--target")
        .arg(&y)
        .arg("--model")
        .arg(&model)
        .assert()
        .success();
    model
}

fn config(model: &Path, input: &Path, extra: &str) -> String {
    format!(
        "[model]\npath = {model:?}\n\n[loop]\nperiod_us = 50\n\n[sched]\npriority = 80\n\n\
         [source]\nkind = \"series\"\npath = {input:?}\n{extra}"
    )
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn rt_run_writes_the_bytes_esn_run_writes() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let input = dir.path().join("test.csv");
    write_csv(&input, 321, 1, 2.0);
    let esn_out = dir.path().join("esn.npy");
    echos()
        .args(["esn", "run", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&esn_out)
        .assert()
        .success();
    let rt_out = dir.path().join("rt.npy");
    let name = format!("clibits-{}", std::process::id());
    let cfg = dir.path().join("rt.toml");
    std::fs::write(
        &cfg,
        config(
            &model,
            &input,
            &format!("\n[sink]\nfile = {rt_out:?}\nring = true\n\n[shm]\nname = \"{name}\"\n"),
        ),
    )
    .unwrap();
    let out = echos()
        .args(["rt", "run", "--json"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stats"]["steps"], 321);
    assert_eq!(report["end"], "the source ended");
    assert_eq!(
        std::fs::read(&rt_out).unwrap(),
        std::fs::read(&esn_out).unwrap(),
        "echos rt run and echos esn run differ"
    );
    assert!(
        !Path::new(&format!("/dev/shm/echos.{name}")).exists(),
        "region left behind"
    );
}

#[test]
fn bad_configs_are_refused_with_the_key_named_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let input = dir.path().join("in.csv");
    write_csv(&input, 20, 1, 0.0);
    let two_cols = dir.path().join("two.csv");
    write_csv(&two_cols, 20, 2, 0.0);
    let name = format!("clibad-{}", std::process::id());
    let shm = format!("\n[shm]\nname = \"{name}\"\n");
    let good = config(&model, &input, &shm);
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace("period_us = 50", "period_us = 50\nperiod_ms = 1"),
            "unknown field `period_ms`",
        ),
        (
            good.replace("period_us = 50", "period_us = \"fast\""),
            "period_us",
        ),
        (
            good.replace("period_us = 50", "period_us = 50\nbudget_us = 60"),
            "loop.budget_us",
        ),
        (
            good.replace("priority = 80", "priority = 80\ncpu = 4095"),
            "sched.cpu: CPU 4095 does not exist",
        ),
        (config(&model, &two_cols, &shm), "source.path: series"),
        (
            config(&dir.path().join("none.safetensors"), &input, &shm),
            "model.path",
        ),
        (
            good.replace(&format!("name = \"{name}\""), "name = \"../x\""),
            "shm.name",
        ),
        ("not = [toml".into(), "TOML"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let cfg = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let out = echos().args(["rt", "run"]).arg(&cfg).output().unwrap();
        let err = stderr_of(&out);
        assert!(!out.status.success(), "case {i} ran");
        assert!(
            err.contains(needle),
            "case {i}: stderr lacks {needle:?}:\n{err}"
        );
        assert!(!err.contains("panicked"), "case {i}: {err}");
        assert!(
            out.stdout.is_empty(),
            "case {i}: something started: {:?}",
            out.stdout
        );
    }
    assert!(!Path::new(&format!("/dev/shm/echos.{name}")).exists());
    let out = echos()
        .args(["rt", "run"])
        .arg(dir.path().join("absent.toml"))
        .output()
        .unwrap();
    assert!(stderr_of(&out).contains("absent.toml"));
}

#[test]
fn demo_runs_and_cleans_up() {
    let out = echos()
        .args(["rt", "run", "--demo", "--seconds", "0.3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["stats"]["periods"], 300);
    assert!(r["notes"][0].as_str().unwrap().contains("NRMSE"));
    assert!(r["applied"]["degraded"].is_array());
    assert!(!Path::new("/dev/shm/echos.demo").exists() || r["region"].is_null());
}

#[test]
fn status_of_a_missing_region_says_so() {
    let out = echos()
        .args(["rt", "status", "no-such-region-xyz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("no region /dev/shm/echos.no-such-region-xyz"));
}

#[test]
fn sigint_stops_a_running_loop_with_final_stats_and_removes_its_region() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let input = dir.path().join("in.csv");
    write_csv(&input, 50, 1, 0.0);
    let name = format!("clisig-{}", std::process::id());
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        config(
            &model,
            &input,
            &format!("repeat = true\n\n[shm]\nname = \"{name}\"\n"),
        )
        .replace("period_us = 50", "period_us = 1000"),
    )
    .unwrap();
    let child = std::process::Command::new(bin())
        .args(["rt", "run"])
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Another process reads the live state while it runs.
    let t = Instant::now();
    let status = loop {
        let out = echos()
            .args(["rt", "status", &name, "--json"])
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if v["snapshot"]["head"]["step"].as_u64().unwrap_or(0) > 20 {
                break v;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the loop never published"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status["owner_running"], true);
    assert_eq!(status["header"]["units"], 60);
    assert_eq!(status["snapshot"]["state"].as_array().unwrap().len(), 60);
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ended: stopped by a signal"), "{text}");
    assert!(text.contains("wake-up"), "{text}");
    assert!(
        !Path::new(&format!("/dev/shm/echos.{name}")).exists(),
        "region left behind"
    );
}

#[test]
fn bench_prints_the_figures_by_name() {
    let out = echos()
        .args([
            "rt",
            "bench",
            "--period-us",
            "200",
            "--periods",
            "300",
            "--units",
            "50",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "wakeup_p50_ns",
        "wakeup_p99_ns",
        "wakeup_p999_ns",
        "wakeup_max_ns",
        "step_p99_ns",
        "deadline_misses",
        "overruns",
    ] {
        assert!(
            r.get(key).is_some_and(|v| !v.is_null()),
            "{key} missing: {r}"
        );
    }
    assert_eq!(r["periods"], 300);
    let out = echos()
        .args(["rt", "bench", "--units", "0"])
        .output()
        .unwrap();
    assert!(stderr_of(&out).contains("--units"));
}

#[test]
fn without_privileges_the_run_says_what_it_lacks_and_goes_on() {
    // Root without capabilities and with no real-time or lockable-memory allowance.
    let setpriv = Path::new("/usr/bin/setpriv");
    let prlimit = Path::new("/usr/bin/prlimit");
    if !setpriv.exists() || !prlimit.exists() || !rustix::process::getuid().is_root() {
        eprintln!("SKIPPED: needs root and util-linux's setpriv/prlimit");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root with util-linux"
        );
        return;
    }
    let out = std::process::Command::new(setpriv)
        .args(["--bounding-set=-all", "--inh-caps=-all", "--"])
        .arg(prlimit)
        .args(["--rtprio=0", "--memlock=65536"])
        .arg(bin())
        .args([
            "rt",
            "bench",
            "--period-us",
            "500",
            "--periods",
            "100",
            "--units",
            "20",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("degraded: SCHED_FIFO priority 80: EPERM"),
        "{err}"
    );
    assert!(err.contains("CAP_SYS_NICE or RLIMIT_RTPRIO"), "{err}");
    assert!(err.contains("degraded: mlockall"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["policy"], "SCHED_OTHER");
    assert_eq!(r["periods"], 100);
    assert_eq!(r["memory_locked"], false);
}

#[test]
fn stdin_rows_give_the_same_outputs_as_the_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let input = dir.path().join("in.csv");
    write_csv(&input, 120, 1, 0.5);
    let esn_out = dir.path().join("esn.csv");
    echos()
        .args(["esn", "run", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&esn_out)
        .assert()
        .success();
    let rt_out = dir.path().join("rt.csv");
    let cfg = dir.path().join("stdin.toml");
    let text = config(&model, &input, &format!("\n[sink]\nfile = {rt_out:?}\n")).replace(
        &format!("kind = \"series\"\npath = {input:?}"),
        "kind = \"stdin\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["rt", "run", "--json"])
        .arg(&cfg)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rows = std::fs::read_to_string(&input).unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rows.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["stats"]["steps"], 120);
    assert_eq!(
        std::fs::read(&rt_out).unwrap(),
        std::fs::read(&esn_out).unwrap()
    );
    // A bad line ends the run with its number named, and a non-zero exit.
    let mut child = std::process::Command::new(bin())
        .args(["rt", "run"])
        .arg(&cfg)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"0.1\n0.2\nabc\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("standard input, line 3"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn rt_dashboard_refuses_a_port_in_use_a_public_address_and_a_config_without_shm() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let t0 = Instant::now();
    let out = echos()
        .args(["rt", "run", "--demo", "--seconds", "30", "--region"])
        .arg(format!("dash-inuse-{}", std::process::id()))
        .args(["--dashboard", &addr])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("binding the dashboard on {addr}")),
        "{err}"
    );
    // Refused before the loop started: no report, and far sooner than the 30 s run.
    assert!(out.stdout.is_empty() && t0.elapsed() < Duration::from_secs(20));
    let out = echos()
        .args(["rt", "run", "--demo", "--dashboard", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("not a loopback address"),
        "{}",
        stderr_of(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let x = dir.path().join("x.csv");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config(&model, &x, "")).unwrap();
    let out = echos()
        .args(["rt", "run"])
        .arg(&cfg)
        .args(["--dashboard", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("needs a [shm] section"),
        "{}",
        stderr_of(&out)
    );
}
