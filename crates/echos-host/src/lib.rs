//! echo-os host services (std only): reading and writing files, datasets, model files and the
//! batch training tasks that the CLI and the Python package share.
#![forbid(unsafe_code)]
