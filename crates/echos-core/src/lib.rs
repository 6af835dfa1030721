//! The echo-os engine: everything that runs per time step (reservoirs, readouts, RWKV, event
//! encoders, metrics), `no_std` + `alloc` so the kernel and ring-3 tasks can link it.
//!
//! Contracts (see docs/architecture.md): step functions take preallocated buffers, allocate
//! nothing, take no lock, run in time that depends only on dimensions, and are deterministic.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
// `unsafe` lives only where SIMD needs it: the kernels' CPU check, dispatch and SIMD bodies
// (`kernels`) and the RWKV matrix kernels (`rwkv`), each allowed on its own module.
#![deny(unsafe_code)]

extern crate alloc;
pub mod esn;
pub mod events;
pub mod history;
pub mod integer;
pub mod kernels;
pub mod matrix;
pub mod metrics;
pub mod model;
pub mod readout;
pub mod rng;
pub mod rwkv;
pub mod scalar;
pub mod spectral;
pub mod topology;
