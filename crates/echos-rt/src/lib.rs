//! echo-os's hosted runtime for Linux (see docs/rt.md).
#![deny(unsafe_code)]

pub mod clock;
pub mod hist;
pub mod ring;
pub mod seqlock;
pub mod shm;
mod sys;
