//! Engine-level checks that need no files: shapes are validated, steps match prefill and batch.
