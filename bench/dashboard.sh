#!/usr/bin/env bash
# The dashboard's cost to the loop: `echos rt bench` without and with the dashboard serving its
# region to N stream clients, interleaved (order alternating) and repeated, in one run, so the
# load of a shared machine falls on both sides alike. Prints each run, then the medians and
# the with/without ratios, the clients' frames per second and the server's CPU use.
# Usage: bench/dashboard.sh [REPS=5] [PERIODS=5000] [CLIENTS=4] [UNITS=1000] [CPU=1]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5} periods=${2:-5000} clients=${3:-4} units=${4:-1000} cpu=${5:-1}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p echos-cli
echos="$target/release/echos"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(rt bench --period-us 1000 --periods "$periods" --units "$units" --cpu "$cpu" --json)
for ((i = 0; i < reps; i++)); do
    for side in $( ((i % 2 == 0)) && echo "off on" || echo "on off"); do
        if [ "$side" = on ]; then
            "$echos" "${common[@]}" --dashboard 127.0.0.1:0 --dashboard-clients "$clients" \
                >"$out/$side.$i.json" 2>"$out/$side.$i.err"
        else
            "$echos" "${common[@]}" >"$out/$side.$i.json" 2>"$out/$side.$i.err"
        fi
    done
done
python3 - "$out" "$reps" "$clients" <<'PY'
import json, re, statistics, sys, pathlib
out, reps, clients = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
keys = ["wakeup_p50_ns", "wakeup_p99_ns", "step_p50_ns", "step_p99_ns", "deadline_misses", "overruns"]
runs = {s: [json.loads((out / f"{s}.{i}.json").read_text()) for i in range(reps)] for s in ("off", "on")}
for i in range(reps):
    print(f"rep {i}: " + "  ".join(f"{s}: wake p99 {runs[s][i]['wakeup_p99_ns']/1e3:.1f} µs, step p50 {runs[s][i]['step_p50_ns']/1e3:.1f} µs, misses {runs[s][i]['deadline_misses']}" for s in ("off", "on")))
print(f"medians over {reps} interleaved repetitions ({runs['off'][0]['periods']} periods of {runs['off'][0]['period_us']} µs, {runs['off'][0]['units']} units, {runs['off'][0]['policy']}, CPU {runs['off'][0]['cpu']}):")
print(f"{'':18}{'without':>12}{'with dashboard':>16}{'ratio':>8}")
for k in keys:
    a, b = statistics.median(r[k] for r in runs["off"]), statistics.median(r[k] for r in runs["on"])
    ratio = f"{b / a:.3f}" if a else "-"
    print(f"{k:18}{a:>12.0f}{b:>16.0f}{ratio:>8}")
rates, cpu = [], []
for i in range(reps):
    err = (out / f"on.{i}.err").read_text()
    m = re.search(r"received \[([^\]]*)\] frames/s over ([\d.]+) s; server CPU ([\d.]+) s \(([\d.]+) %", err)
    if not m:
        sys.exit(f"no dashboard figures in run {i}: {err}")
    rates += [float(x) for x in m.group(1).split(", ") if x]
    cpu.append(float(m.group(4)))
print(f"dashboard: {clients} stream clients; frames/s per client median {statistics.median(rates):.1f} (min {min(rates):.1f}); server CPU median {statistics.median(cpu):.2f} % of one CPU")
PY
