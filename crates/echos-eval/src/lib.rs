//! echo-os research and evaluation code, kept out of the libraries users link (`publish =
//! false`): the reduced-precision and block-topology accuracy studies behind
//! docs/performance.md and the report and tuning examples that print its tables.
#![forbid(unsafe_code)]

pub mod block_eval;
pub mod quant_eval;
