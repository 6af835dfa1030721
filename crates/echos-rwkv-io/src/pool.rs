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
    /// Last generation whose caller stopped accepting helpers.
    closed: AtomicUsize,
    /// Workers between "joined a generation" and "finished its job".
    active: AtomicUsize,
    stop: AtomicBool,
    busy: AtomicBool,
    job: UnsafeCell<Option<Job>>,
}

// SAFETY: `job` is written only by the thread that won `busy`, before the SeqCst increment of
// `generation`. A worker reads it only after registering in `active` and then seeing that the
// generation it observed is not yet `closed`; the writer closes the generation and waits for
// `active` to drop to zero before returning or writing the next job (all SeqCst), so every read
// of a job happens while its closure is alive and before the next write.
unsafe impl Sync for Shared {}
// SAFETY: every field is an atomic except `job`, whose pointer is only dereferenced under the
// protocol above, whichever thread owns the `Arc`.
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
            closed: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
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
        shared.active.fetch_add(1, Ordering::SeqCst);
        if shared.closed.load(Ordering::SeqCst) >= seen {
            // Too late: the caller finished this job without us.
            shared.active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        // SAFETY: see `Shared`: generation `seen` is open and we are registered in `active`,
        // so the job is the one published for it and stays alive until we deregister.
        let job = unsafe { (*shared.job.get()).expect("a job is published with each generation") };
        // SAFETY: as above.
        let f = unsafe { &*job };
        // A panicking job must still deregister, or the caller would wait forever.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(index)));
        shared.active.fetch_sub(1, Ordering::SeqCst);
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
        // SAFETY: erasing the lifetime is sound because this function does not return before
        // every worker that took the job has finished calling `f` (the wait below).
        let job: Job = unsafe {
            std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f)
        };
        // SAFETY: we hold `busy`, so no other writer; workers read only while registered in an
        // open generation, and the previous generation was closed and drained.
        unsafe { *self.shared.job.get() = Some(job) };
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        f(0);
        self.shared.closed.store(generation, Ordering::SeqCst);
        let mut spins = 0u32;
        while self.shared.active.load(Ordering::SeqCst) != 0 {
            spins = spins.saturating_add(1);
            // A descheduled worker that joined needs the core back: stop burning it.
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
    fn shared_counter_work_is_done_exactly_once() {
        let pool = SpinPool::new(3);
        for round in 0..200 {
            let next = AtomicUsize::new(0);
            let done: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
            let seen = [
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ];
            pool.run(&|i| {
                seen[i].fetch_add(1, Ordering::Relaxed);
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= done.len() {
                        return;
                    }
                    done[k].fetch_add(1, Ordering::Relaxed);
                }
            });
            assert!(
                done.iter().all(|d| d.load(Ordering::Relaxed) == 1),
                "round {round}"
            );
            assert_eq!(
                seen[0].load(Ordering::Relaxed),
                1,
                "the caller always takes part"
            );
            assert!(seen.iter().all(|s| s.load(Ordering::Relaxed) <= 1));
        }
    }
}
