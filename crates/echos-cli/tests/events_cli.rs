//! `echos events …` end to end on the shared recordings: `info` reports what the reference
//! decoders count (goldens from bench/events_golden.py and bench/events_aedat4_golden.py),
//! `convert` copies every event through every writer, `encode` writes a matrix that
//! `echos esn train` trains on, and bad input is an error message, never a panic.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct FileGolden {
    pub count: usize,
    pub first: &'static [(u64, u16, u16, u8)],
    pub last: &'static [(u64, u16, u16, u8)],
    pub digest: u64,
    pub xyp_digest: u64,
}

#[path = "../../echos-core/tests/events_data/golden.rs"]
mod golden;

fn echos() -> Command {
    Command::cargo_bin("echos").expect("the echos binary is built")
}

fn shared(test: &str) -> Option<PathBuf> {
    echos_host::shared_data_dir(test).map(|d| d.join("events"))
}

fn info_json(path: &Path) -> serde_json::Value {
    let out = echos()
        .args(["events", "info", "--json"])
        .arg(path)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).expect("info --json prints one JSON object")
}

fn fails_with(args: &[&std::ffi::OsStr], needle: &str) {
    let out = echos().args(args).assert().failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn info_reports_what_the_reference_decoders_count() {
    let Some(dir) = shared("info_reports_what_the_reference_decoders_count") else {
        return;
    };
    for (name, format, g, size) in [
        ("evt3.raw", "evt3", &golden::EVT3_FAERY, (1280, 720)),
        ("evt2.raw", "evt2", &golden::EVT2_FAERY, (640, 480)),
        (
            "davis346.aedat4",
            "aedat4",
            &golden::AEDAT4_FAERY,
            (346, 260),
        ),
        (
            "sample_nmnist.bin",
            "nmnist",
            &golden::NMNIST_TONIC,
            (34, 34),
        ),
    ] {
        let j = info_json(&dir.join(name));
        assert_eq!(j["format"], format, "{name}");
        assert_eq!(
            (j["width"].as_u64(), j["height"].as_u64()),
            (Some(size.0), Some(size.1))
        );
        assert_eq!(j["events"].as_u64(), Some(g.count as u64), "{name}");
        assert_eq!(j["t_first_us"].as_u64(), Some(g.first[0].0), "{name}");
        assert_eq!(j["t_last_us"].as_u64(), Some(g.last[4].0), "{name}");
        let on = j["events_on"].as_u64().unwrap();
        assert_eq!(on + j["events_off"].as_u64().unwrap(), g.count as u64);
        let d = (g.last[4].0 - g.first[0].0) as f64;
        assert_eq!(j["duration_us"].as_f64(), Some(d));
        let mean = j["mean_rate_hz"].as_f64().unwrap();
        assert!(
            (mean - g.count as f64 / (d * 1e-6)).abs() < 1e-6 * mean,
            "{name}"
        );
        // the busiest millisecond holds at least the mean's share and at most everything
        let peak = j["peak_rate_hz"].as_f64().unwrap();
        assert!(
            peak >= mean && peak <= g.count as f64 * 1e3,
            "{name}: {peak}"
        );
    }
    let j = info_json(&dir.join("davis346.aedat4"));
    assert_eq!(j["frames"].as_u64(), Some(59));
    assert_eq!(j["imu_samples"].as_u64(), Some(2363));
    assert_eq!(j["header"]["stream.0.source"], "DAVIS346_00000002");
    // the readable form names the format and the count
    let out = echos()
        .args(["events", "info"])
        .arg(dir.join("evt2.raw"))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("evt2 (version 2.0), sensor 640 x 480"),
        "{text}"
    );
    assert!(text.contains("521252 (185861 ON, 335391 OFF)"), "{text}");
}

#[test]
fn convert_copies_every_event_into_every_format() {
    let Some(dir) = shared("convert_copies_every_event_into_every_format") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (src, outs) in [
        ("evt3.raw", &["a.npy", "a.dat", "a.raw"][..]),
        ("davis346.aedat4", &["b.raw", "b.npy", "b.dat"][..]),
        ("sample_nmnist.bin", &["c.csv", "c.npy", "c.raw"][..]),
    ] {
        let want = info_json(&dir.join(src));
        for out in outs {
            let p = tmp.path().join(out);
            echos()
                .args(["events", "convert"])
                .arg(dir.join(src))
                .arg(&p)
                .assert()
                .success();
            let got = info_json(&p);
            for key in [
                "events",
                "events_on",
                "t_first_us",
                "t_last_us",
                "peak_rate_hz",
            ] {
                assert_eq!(got[key], want[key], "{src} -> {out}: {key}");
            }
        }
    }
    // --evt2, and a second hop from our own .npy (no geometry: taken from the events)
    let raw2 = tmp.path().join("e2.raw");
    echos()
        .args(["events", "convert", "--evt2"])
        .arg(tmp.path().join("a.npy"))
        .arg(&raw2)
        .assert()
        .success();
    let j = info_json(&raw2);
    assert_eq!(j["format"], "evt2");
    assert_eq!(j["events"].as_u64(), Some(golden::EVT3_FAERY.count as u64));
    assert!(j["width"].as_u64().unwrap() <= 1280);
}

#[test]
fn encode_writes_what_esn_train_takes() {
    let Some(dir) = shared("encode_writes_what_esn_train_takes") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (repr, extra, cols) in [
        ("counts", &[][..], 2 * 16 * 9),
        ("timesurface", &["--tau-us", "20000"][..], 2 * 16 * 9),
        ("voxel", &["--bins", "3"][..], 3 * 16 * 9),
    ] {
        let x = tmp.path().join(format!("{repr}.npy"));
        let out = echos()
            .args(["events", "encode"])
            .arg(dir.join("evt3.raw"))
            .args([
                "--repr", repr, "--bin-us", "20000", "--grid", "16x9", "--json",
            ])
            .args(extra)
            .arg("--out")
            .arg(&x)
            .assert()
            .success();
        let j: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        let a = echos_host::npy::read(&x).unwrap();
        // 10.77 s of events in 20 ms bins
        assert_eq!(a.rows(), 539, "{repr}");
        assert_eq!(a.cols(), cols, "{repr}");
        assert_eq!(j["rows"].as_u64(), Some(539));
        if repr == "counts" {
            let total: f64 = a.data().iter().sum();
            assert_eq!(
                total,
                golden::EVT3_FAERY.count as f64,
                "every event counted once"
            );
        }
        // the next bin's total activity as the target
        let n = a.rows() - 1;
        let x1 = echos_host::Array2::new(n, a.cols(), a.data()[..n * a.cols()].to_vec()).unwrap();
        let y: Vec<f64> = (1..=n).map(|r| a.row(r).iter().sum()).collect();
        let (xp, yp) = (tmp.path().join("x1.npy"), tmp.path().join("y1.npy"));
        echos_host::write_array(&xp, &x1).unwrap();
        echos_host::write_array(&yp, &echos_host::Array2::column(y).unwrap()).unwrap();
        echos()
            .args(["esn", "train", "--units", "40", "--washout", "10"])
            .arg("--input")
            .arg(&xp)
            .arg("--target")
            .arg(&yp)
            .arg("--model")
            .arg(tmp.path().join("m.safetensors"))
            .assert()
            .success();
    }
}

#[test]
fn bad_input_is_an_error_message() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let os = |s: &str| std::ffi::OsString::from(s);
    let junk = t.join("junk.xyz");
    std::fs::write(&junk, b"hello world, no events here").unwrap();
    fails_with(
        &[&os("events"), &os("info"), junk.as_os_str()],
        "not a recognised event file",
    );
    let missing = t.join("missing.raw");
    fails_with(
        &[&os("events"), &os("info"), missing.as_os_str()],
        "cannot read",
    );
    let csv = t.join("e.csv");
    std::fs::write(&csv, "t,x,y,p\n1,2,3,1\n2,3,4,0\n").unwrap();
    let bad_out = t.join("e.txt");
    fails_with(
        &[
            &os("events"),
            &os("convert"),
            csv.as_os_str(),
            bad_out.as_os_str(),
        ],
        "unknown output type",
    );
    let x = t.join("x.npy");
    for (args, needle) in [
        (&["--grid", "0x4"][..], "--grid"),
        (&["--grid", "9x9"][..], "finer than the 4x5 sensor"),
        (&["--bin-us", "0"][..], "--bin-us"),
    ] {
        let mut a = vec![
            os("events"),
            os("encode"),
            csv.clone().into_os_string(),
            os("--repr"),
            os("counts"),
        ];
        a.extend(args.iter().map(|s| os(s)));
        a.extend([os("--out"), x.clone().into_os_string()]);
        let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
        fails_with(&refs, needle);
    }
    // a truncated EVT 3 record and a cut AEDAT 4 packet name their byte offsets
    let raw = t.join("cut.raw");
    std::fs::write(&raw, b"% evt 3.0\n% geometry 64x64\n% end\n\x00\x80\x01").unwrap();
    fails_with(
        &[&os("events"), &os("info"), raw.as_os_str()],
        "ends inside a record at byte 35",
    );
    // output into a directory that does not exist: named, nothing half written
    let nodir = t.join("no/such/dir/out.npy");
    fails_with(
        &[
            &os("events"),
            &os("convert"),
            csv.as_os_str(),
            nodir.as_os_str(),
        ],
        "no/such/dir",
    );
}

#[test]
fn event_tasks_report_beside_their_baselines() {
    // Digits on a subset (the full run is a benchmark: docs/events.md has its figures).
    let out = echos()
        .args([
            "events",
            "task",
            "digits",
            "--limit",
            "200",
            "--units",
            "60",
            "--no-full-baseline",
            "--json",
        ])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    for key in ["accuracy", "baseline_accuracy", "seconds"] {
        assert!(v[key].as_f64().is_some(), "{key} in {v}");
    }
    assert_eq!(
        v["train_samples"].as_u64().unwrap() + v["test_samples"].as_u64().unwrap(),
        200
    );
    assert!(v["baseline_full_accuracy"].is_null());
    assert!(v["accuracy"].as_f64().unwrap() > 0.5, "{v}");
    fails_with(
        &["events", "task", "digits", "--units", "0"].map(std::ffi::OsStr::new),
        "--units must be between 1 and 20000",
    );
    fails_with(
        &["events", "task", "digits", "--limit", "5"].map(std::ffi::OsStr::new),
        "limit must be at least 30 digits",
    );
    fails_with(
        &["events", "task", "forecast", "/nonexistent.raw"].map(std::ffi::OsStr::new),
        "/nonexistent.raw",
    );
    let Some(dir) = shared("event_tasks_report_beside_their_baselines") else {
        return;
    };
    let evt3 = dir.join("evt3.raw");
    fails_with(
        &[
            std::ffi::OsStr::new("events"),
            "task".as_ref(),
            "forecast".as_ref(),
            evt3.as_os_str(),
            "--grid".as_ref(),
            "4by4".as_ref(),
        ],
        "--grid `4by4`",
    );
    let out = echos()
        .args(["events", "task", "forecast", "--json"])
        .arg(&evt3)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    // The real recording: the reservoir beats persistence and the training mean (measured
    // 0.300 vs 0.380 and 0.339; docs/events.md).
    let (e, p, m) = (
        v["nrmse"].as_f64().unwrap(),
        v["persistence_nrmse"].as_f64().unwrap(),
        v["mean_nrmse"].as_f64().unwrap(),
    );
    assert!(e < p && e < m, "{v}");
}
