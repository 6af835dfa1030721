//! File plumbing shared by the host crates (`echos-host`, `echos-rwkv-io`), so each concept
//! has one home: atomic writes (a reader sees the old file or the whole new one) and the
//! canonical safetensors header (one content, one byte sequence).
#![forbid(unsafe_code)]

pub mod atomic;
pub mod safetensors_header;
