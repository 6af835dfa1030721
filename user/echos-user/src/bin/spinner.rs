//! Computes a float series `arg` times without ever yielding, checking every result against the
//! first bit for bit: run under a periodic task, it is preempted in ring 3 by the timer, and any
//! change the switches made to its registers (general or SSE) shows as a mismatch. Exits with
//! the number of mismatches.
#![no_std]
#![no_main]

echos_user::entry!(main);

fn series(seed: f64) -> f64 {
    let mut acc = seed;
    let mut x = 1.5f64;
    for k in 1..200u32 {
        x = x * 0.999 + 1.0 / f64::from(k);
        acc += core::hint::black_box(x) / (1.0 + acc.abs());
    }
    acc
}

fn main(reps: u64) -> i64 {
    let first = series(core::hint::black_box(0.25)).to_bits();
    let mut wrong = 0;
    for _ in 0..reps {
        if series(core::hint::black_box(0.25)).to_bits() != first {
            wrong += 1;
        }
    }
    wrong
}
