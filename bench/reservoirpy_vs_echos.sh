#!/usr/bin/env bash
# ReservoirPy 0.4.2 against the echos engine on the same task, in one run: a sparse reservoir
# (connectivity 0.1, leak 0.3, spectral radius 0.9), 10,000 steps of one uniform input, for
# N = 100, 500, 1000, single sequence, plus a batch of 32 sequences at N = 1000 (random, and
# block 16 on one and two threads, f32 and the opt-in bf16-products format). Prints the
# median steps/s of each and their ratios. Rows marked "block" run our block-sparse topology
# (groups of 16 units share their k = 0.1·N in-neighbour columns; same number of non-zeros per
# row) against ReservoirPy's own random sparse reservoir: a different matrix structure, compared
# for speed only (accuracy: docs/performance.md, "Block-sparse reservoirs"). ReservoirPy lives in a throwaway virtual environment
# (never a project dependency): $RPY_VENV, default /tmp/echos-rpy-venv.
#
# Usage: bash bench/reservoirpy_vs_echos.sh [repeats]      (default 5 timed runs per point)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS="${1:-5}"
STEPS=10000
VENV="${RPY_VENV:-/tmp/echos-rpy-venv}"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import reservoirpy' 2>/dev/null; then
    echo "creating $VENV with reservoirpy==0.4.2 ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q reservoirpy==0.4.2
fi

# The engine's benchmark: the `echos esn bench` subcommand, or the stand-alone example of the
# same code when the subcommand is not wired into this build.
cargo build --release -q -p echos-cli
if ./target/release/echos esn bench --help 2>/dev/null | grep -q -- --connectivity; then
    ECHOS=(./target/release/echos esn bench)
else
    cargo build --release -q -p echos-cli --example esn_bench
    ECHOS=(./target/release/examples/esn_bench)
fi

rpy() { # units -> "wall cpu": median steps/s of ReservoirPy's Reservoir.run (wall, per CPU-s)
    "$VENV/bin/python" - "$1" "$STEPS" "$REPEATS" <<'PY'
import sys, time, statistics
import numpy as np
import reservoirpy as rpy
from reservoirpy.nodes import Reservoir
units, steps, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
x = np.random.default_rng(0).uniform(-1, 1, (steps, 1))
res = Reservoir(units=units, lr=0.3, sr=0.9, rc_connectivity=0.1, seed=42)
res.run(x[:100])  # initialise and warm up
rates, cpu_rates = [], []
for _ in range(repeats):
    t, c = time.perf_counter(), time.process_time()
    res.run(x)
    rates.append(steps / (time.perf_counter() - t))
    cpu_rates.append(steps / max(time.process_time() - c, 1e-9))
print(statistics.median(rates), statistics.median(cpu_rates))
PY
}

field() { # json key -> value
    python3 -c 'import json,sys; d=json.loads(sys.stdin.readline()); print(d[sys.argv[1]])' "$1"
}

ratio() { python3 -c "print(f'{$1/$2:.1f}x')"; }
printf '%-38s %12s %12s %8s | %12s %12s %8s  %s\n' "case" "rpy wall" "echos wall" "ratio" "rpy CPU" "echos CPU" "ratio" "kernel"
row() { # name rpy_wall rpy_cpu echos_wall echos_cpu kernel
    printf '%-38s %12.0f %12.0f %8s | %12.0f %12.0f %8s  %s\n' "$1" "$2" "$4" "$(ratio "$4" "$2")" "$3" "$5" "$(ratio "$5" "$3")" "$6"
}
for n in 100 500 1000; do
    read -r rw rc <<<"$(rpy "$n")"
    line=$("${ECHOS[@]}" --units "$n" --connectivity 0.1 --steps "$STEPS" --batch 1 --repeats "$REPEATS" --json)
    row "single N=$n random" "$rw" "$rc" "$(echo "$line" | field steps_per_s)" "$(echo "$line" | field steps_per_cpu_s)" "$(echo "$line" | field step_kernel)"
    if [ "$n" -ge 160 ]; then
        # Block size 16 only from N = 160 up, where 16 <= k = 0.1·N (see docs/performance.md).
        line=$("${ECHOS[@]}" --units "$n" --connectivity 0.1 --steps "$STEPS" --batch 1 --topology block --block-size 16 --repeats "$REPEATS" --json)
        row "single N=$n block 16" "$rw" "$rc" "$(echo "$line" | field steps_per_s)" "$(echo "$line" | field steps_per_cpu_s)" "$(echo "$line" | field step_kernel)"
    fi
    if [ "$n" = 1000 ]; then
        # One sequence, each step shared by two threads (CPU column: steps per CPU-second of
        # both threads together, so it measures work, not speed).
        line=$("${ECHOS[@]}" --units 1000 --connectivity 0.1 --steps "$STEPS" --batch 1 --split-step --threads 2 --repeats "$REPEATS" --json)
        row "single N=1000 random, 2 thr" "$rw" "$rc" "$(echo "$line" | field steps_per_s)" "$(echo "$line" | field steps_per_cpu_s)" "$(echo "$line" | field step_kernel)"
        line=$("${ECHOS[@]}" --units 1000 --connectivity 0.1 --steps "$STEPS" --batch 32 --repeats "$REPEATS" --json)
        e=$(echo "$line" | field steps_per_s)
        ec=$(echo "$line" | field steps_per_cpu_s)
        k=$(echo "$line" | field step_kernel)
        row "batch 32 N=1000 (per seq)" "$rw" "$rc" "$e" "$ec" "$k"
        row "batch 32 N=1000 (all seqs)" "$rw" "$rc" "$(python3 -c "print($e*32)")" "$(python3 -c "print($ec*32)")" "$k"
        line=$("${ECHOS[@]}" --units 1000 --connectivity 0.1 --steps "$STEPS" --batch 32 --row-split --repeats "$REPEATS" --json)
        e=$(echo "$line" | field steps_per_s)
        ec=$(echo "$line" | field steps_per_cpu_s)
        row "batch 32, rows split (all)" "$rw" "$rc" "$(python3 -c "print($e*32)")" "$(python3 -c "print($ec*32)")" "$k"
        # The batched block kernel (each thread a group of sequences), one and two threads, in
        # f32 and in the opt-in bf16-products format (reduced precision: docs/performance.md).
        for fmt in f32 bf16; do
            for thr in 1 2; do
                line=$("${ECHOS[@]}" --units 1000 --connectivity 0.1 --steps "$STEPS" --batch 32 --topology block --block-size 16 --format "$fmt" --threads "$thr" --repeats "$REPEATS" --json)
                e=$(echo "$line" | field steps_per_s)
                ec=$(echo "$line" | field steps_per_cpu_s)
                k=$(echo "$line" | field step_kernel)
                fr=$(echo "$line" | field fraction_of_limit)
                lk=$(echo "$line" | field compute_limit_kind)
                row "batch 32 block 16 $fmt, $thr thr (all)" "$rw" "$rc" "$(python3 -c "print($e*32)")" "$(python3 -c "print($ec*32)")" "$k $(python3 -c "print(f'{100*$fr:.0f}%')") of the $lk limit"
            done
        done
    fi
done
echo "topologies: 'random' rows run a random sparse reservoir like ReservoirPy's; 'block 16' rows run" \
     "echos' block-sparse topology (same non-zeros per row, rows in groups of 16 sharing columns)" \
     "against ReservoirPy's random reservoir.";
echo "ratios: echos steps/s divided by ReservoirPy's, medians of $REPEATS runs each, measured in this run;" \
     "CPU columns count steps per CPU-second of the working threads (robust to other processes);" \
     "'all seqs' counts the 32 sequences' steps together (ReservoirPy runs one sequence at a time)."
