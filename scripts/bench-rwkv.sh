#!/usr/bin/env bash
# RWKV speed on a synthetic v7 model with the 0.1B shapes (12 layers, n_embd 768, head size 64,
# vocab 65536): prefill of 64 tokens and single-token decode, f32 and int8, one and two threads.
# Prints one JSON object per configuration (see docs/rwkv.md for how to read them).
# Usage: scripts/bench-rwkv.sh [extra `echos rwkv bench` arguments, e.g. --repeat 5]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p echos-cli
for precision in "" "--int8"; do
    for threads in 1 2; do
        ./target/release/echos rwkv bench --json --threads "$threads" $precision "$@"
    done
done
