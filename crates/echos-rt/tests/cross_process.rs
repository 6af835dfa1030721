//! The shared region between two processes: a child process owns the region and publishes as
//! fast as it can while this process consumes the ring and reads snapshots — every record
//! arrives once, in order and whole, or is counted dropped; every snapshot is consistent. A
//! child killed at random moments (creation included) leaves either no region or a complete,
//! stale one that the next start refuses or reclaims as asked, never a corrupt one.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use echos_rt::shm::{Attached, Region, Shape, ShmError, SnapshotHead};

const CHILD_ENV: &str = "ECHOS_RT_SHM_CHILD";
const MODE_ENV: &str = "ECHOS_RT_SHM_MODE";
const RECORDS: u64 = 200_000;
const UNITS: usize = 64;

fn shape() -> Shape {
    Shape {
        units: UNITS,
        inputs: 1,
        outputs: 3,
        ring_capacity: 64,
        period_ns: 1_000,
    }
}

#[test]
#[ignore = "helper: the tests below run it as their child process"]
fn child_writer() {
    let name = std::env::var(CHILD_ENV).expect("run by the parent tests only");
    let forever = std::env::var(MODE_ENV).is_ok_and(|m| m == "forever");
    let mut r = Region::create(&name, &shape(), true).unwrap();
    let mut state = vec![0.0; UNITS];
    let mut k = 0u64;
    loop {
        k += 1;
        for (i, s) in state.iter_mut().enumerate() {
            *s = (k + i as u64) as f64;
        }
        let y = [k as f64, (k + 1) as f64, (k + 2) as f64];
        let head = SnapshotHead {
            step: k,
            periods: k,
            ..Default::default()
        };
        r.publish_snapshot(&head, &state, &y);
        r.push_output(k, k, &y);
        if !forever && k == RECORDS {
            break;
        }
    }
    // Let the consumer drain before the region's name goes away (its mapping stays valid).
    let t = Instant::now();
    while Attached::open(&name).is_ok_and(|a| a.ring_len() > 0)
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn spawn_child(name: &str, forever: bool) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .env(MODE_ENV, if forever { "forever" } else { "finite" })
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for(name: &str, consumer: bool) -> Attached {
    let t = Instant::now();
    loop {
        let a = if consumer {
            Attached::open_consumer(name)
        } else {
            Attached::open(name)
        };
        match a {
            Ok(a) => return a,
            Err(ShmError::Missing { .. }) if t.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("attaching: {e}"),
        }
    }
}

fn check_snapshot(a: &Attached) -> Option<u64> {
    match a.snapshot() {
        Ok(s) if s.version == 0 => None,
        Ok(s) => {
            let k = s.head.step;
            for (i, &v) in s.state.iter().enumerate() {
                assert_eq!(
                    v,
                    (k + i as u64) as f64,
                    "torn snapshot at step {k}, unit {i}"
                );
            }
            assert_eq!(s.output, vec![k as f64, (k + 1) as f64, (k + 2) as f64]);
            Some(k)
        }
        // The writer rewrote it during every attempt: allowed, never a wrong value.
        Err(ShmError::Busy { .. }) => None,
        Err(e) => panic!("snapshot: {e}"),
    }
}

#[test]
fn ring_and_snapshot_between_two_processes() {
    let name = format!("xproc-{}", std::process::id());
    let mut child = spawn_child(&name, false);
    let mut a = wait_for(&name, true);
    let (mut popped, mut last, mut snapshots, mut last_snap) = (0u64, 0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        while let Some(rec) = a.pop() {
            assert!(rec.step > last, "record {} after {last}", rec.step);
            let k = rec.step;
            assert_eq!(rec.time_ns, k);
            assert_eq!(
                rec.output,
                vec![k as f64, (k + 1) as f64, (k + 2) as f64],
                "torn record"
            );
            last = k;
            popped += 1;
        }
        if let Some(k) = check_snapshot(&a) {
            assert!(k >= last_snap, "snapshot went back from {last_snap} to {k}");
            last_snap = k;
            snapshots += 1;
        }
        if child.try_wait().unwrap().is_some() && a.ring_len() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the child did not finish");
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(
        a.ring_pushed(),
        popped,
        "every pushed record was popped once"
    );
    assert_eq!(
        popped + a.ring_drops(),
        RECORDS,
        "popped {popped}, dropped {}",
        a.ring_drops()
    );
    assert!(popped > 0 && snapshots > 0);
    assert!(!a.owner_running(), "the owner stopped");
}

#[test]
fn a_killed_owner_leaves_no_corrupt_region() {
    let name = format!("xkill-{}", std::process::id());
    let (mut generation, mut stale_seen) = (0, 0);
    for (round, delay_ms) in [0u64, 1, 3, 7, 15, 40].into_iter().enumerate() {
        let mut child = spawn_child(&name, true);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL: no clean-up runs
        child.wait().unwrap();
        match Attached::open(&name) {
            // Killed before the region got its name: nothing is left.
            Err(ShmError::Missing { .. }) => continue,
            Err(e) => panic!("round {round}: a killed owner left a bad region: {e}"),
            Ok(a) => {
                assert!(!a.owner_running(), "round {round}");
                // The same stale region if this child died before reclaiming it, else newer.
                assert!(a.header().generation >= generation, "round {round}");
                generation = a.header().generation;
                check_snapshot(&a);
                stale_seen += 1;
                assert!(matches!(
                    Region::create(&name, &shape(), false),
                    Err(ShmError::Stale { .. })
                ));
            }
        }
    }
    assert!(stale_seen > 0, "no round killed a running owner");
    // The next start reclaims whatever the last kill left.
    let r = Region::create(&name, &shape(), true).unwrap();
    assert!(r.header().generation > generation);
}
