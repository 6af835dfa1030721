//! echo-os research and evaluation code, kept out of the libraries users link (`publish =
//! false`): the reduced-precision and block-topology accuracy studies behind
//! docs/performance.md, the report and tuning examples that print its tables, and the
//! micro-kernels that measure this CPU's ceilings for `echos esn bench`.
#![deny(unsafe_code)]

pub mod block_eval;
pub mod limits;
// The crate's only `unsafe`: SIMD micro-kernels, each block with its SAFETY argument.
#[allow(unsafe_code)]
pub mod probes;
pub mod quant_eval;
