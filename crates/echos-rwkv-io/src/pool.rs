//! A fixed set of spinning worker threads for the engine's [`Parallel`] hook: a matrix product
//! hands each thread its rows without allocating, locking or waking threads through the OS.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use echos_core::rwkv::Parallel;

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    generation: AtomicUsize,
    done: AtomicUsize,
    stop: AtomicBool,
    busy: AtomicBool,
    job: UnsafeCell<Option<Job>>,
}

// SAFETY: `job` is written only by the thread that won `busy`, before the Release increment of
// `generation`, and read by workers only after they observe that increment (Acquire); the
// writer does not touch it again until every worker has reported `done`.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// `threads` threads in all: the caller of `run` is thread 0, the pool owns the others.
pub struct SpinPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    threads: usize,
}

impl SpinPool {
    pub fn new(threads: usize) -> SpinPool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            job: UnsafeCell::new(None),
        });
        let workers = (1..threads)
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || worker(&shared, index))
            })
            .collect();
        SpinPool {
            shared,
            workers,
            threads,
        }
    }
}

fn worker(shared: &Shared, index: usize) {
    let mut seen = 0;
    loop {
        let mut spins = 0u32;
        loop {
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            let g = shared.generation.load(Ordering::Acquire);
            if g != seen {
                seen = g;
                break;
            }
            spins = spins.saturating_add(1);
            // Spin while work is likely to follow soon (inside a token); give the core away
            // when idle so other processes are not starved.
            if spins > 20_000 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: see `Shared`: the job was published before the generation we observed and
        // stays alive until we increment `done`.
        let job = unsafe { (*shared.job.get()).expect("a job is published with each generation") };
        // SAFETY: `run` keeps the closure borrowed until all workers are done.
        let f = unsafe { &*job };
        // A panicking job must still count as done, or the caller would wait forever.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(index)));
        shared.done.fetch_add(1, Ordering::AcqRel);
    }
}

impl Parallel for SpinPool {
    fn threads(&self) -> usize {
        self.threads
    }

    fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.threads == 1 || self.shared.busy.swap(true, Ordering::AcqRel) {
            // Single thread, or another caller holds the workers: do all parts here.
            for i in 0..self.threads {
                f(i);
            }
            return;
        }
        self.shared.done.store(0, Ordering::Release);
        // SAFETY: erasing the lifetime is sound because this function does not return before
        // every worker finished calling `f` (the wait below).
        let job: Job = unsafe {
            std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f)
        };
        // SAFETY: we hold `busy`, so no other writer; workers read only after the increment.
        unsafe { *self.shared.job.get() = Some(job) };
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        f(0);
        let mut spins = 0u32;
        while self.shared.done.load(Ordering::Acquire) != self.threads - 1 {
            spins = spins.saturating_add(1);
            // A worker that the OS descheduled needs the core back: stop burning it.
            if spins > 2_000 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        self.shared.busy.store(false, Ordering::Release);
    }
}

impl Drop for SpinPool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_per_call() {
        let pool = SpinPool::new(3);
        let hits = [
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        ];
        for _ in 0..200 {
            pool.run(&|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
        }
        for h in &hits {
            assert_eq!(h.load(Ordering::Relaxed), 200);
        }
    }
}
