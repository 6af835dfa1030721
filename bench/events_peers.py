"""Event-file read speed: echos.events.read against the peers, in one run (docs/performance.md).

Whole file -> arrays holding t, x, y, p for every event, on the shared recordings
(../shared/data/events): EVT 3.0 and EVT 2.0 against faery and expelliarmus, AEDAT 4.0 against
aedat and faery. Every (file, reader) pair is timed once per round, the pairs shuffled anew each
round with a fixed seed, for --reps rounds (>= 5): load from other processes falls on every
side alike. Each call is timed by the wall clock and by the process's CPU time (all threads,
so a multi-threaded peer pays for every core it uses; on a machine shared with other jobs the
CPU time is the steadier figure). Reports the median events/s per pair and the ratio of echos
to each peer, as two tables and as JSON (--json FILE also writes it).

Equivalent work: every side opens the file, decodes it completely and returns NumPy
structured array(s) with t, x, y and polarity for every event: echos one 16-byte-record array
(echos.events.read), faery `events_stream_from_file(path).to_array()`, expelliarmus
`Wizard(encoding).read(path)`, aedat the `events` arrays of the decoder's packets,
concatenated (the package has no whole-file call). Before timing, each side's event count is
checked against echos' (and its columns, where the peer decodes the same times: not
expelliarmus on EVT 3.0, whose times drift, see bench/events_golden.py).

Run it with bench/events_peers.sh, which makes a throwaway venv under /tmp with the peers
(faery 0.7.1, expelliarmus, aedat) and echos built from this checkout.
"""

from __future__ import annotations

import argparse
import gc
import json
import pathlib
import platform
import random
import statistics
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent


def read_echos(path):
    import echos.events

    return echos.events.read(path)


def read_faery(path):
    import faery

    return faery.events_stream_from_file(path).to_array()


def read_expelliarmus(encoding):
    def read(path):
        import expelliarmus

        return expelliarmus.Wizard(encoding=encoding).read(path)

    return read


def read_aedat(path):
    import aedat

    parts = [p["events"] for p in aedat.Decoder(path) if "events" in p]
    return np.concatenate(parts)


FILES = {
    "EVT 3.0": ("evt3.raw", {"faery": read_faery, "expelliarmus": read_expelliarmus("evt3")}),
    "EVT 2.0": ("evt2.raw", {"faery": read_faery, "expelliarmus": read_expelliarmus("evt2")}),
    "AEDAT 4.0": ("davis346.aedat4", {"aedat": read_aedat, "faery": read_faery}),
}
# Peers whose decoded times differ from echos' on a file (the tests pin why).
TIMES_DIFFER = {("EVT 3.0", "expelliarmus")}


def columns(arr):
    names = arr.dtype.names
    pol = "p" if "p" in names else ("on" if "on" in names else "polarity")
    return (
        arr["t"].astype(np.int64),
        arr["x"].astype(np.int64),
        arr["y"].astype(np.int64),
        arr[pol].astype(np.int64),
    )


def check(fmt, name, ours, theirs):
    if len(theirs) != len(ours):
        sys.exit(f"{fmt}: {name} decodes {len(theirs)} events, echos {len(ours)}")
    a, b = columns(ours), columns(theirs)
    first = 0 if (fmt, name) not in TIMES_DIFFER else 1
    for col, u, v in list(zip("txyp", a, b))[first:]:
        if not np.array_equal(u, v):
            sys.exit(f"{fmt}: {name} and echos disagree on column {col}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--json", help="also write the JSON result here")
    args = ap.parse_args()
    if args.reps < 5:
        sys.exit("--reps must be at least 5")
    data = pathlib.Path(args.data) / "events"
    if not data.is_dir():
        sys.exit(f"no shared data at {data} (pass --data)")

    import echos

    pairs = []
    counts = {}
    for fmt, (fname, peers) in FILES.items():
        path = str(data / fname)
        ours = read_echos(path)
        counts[fmt] = len(ours)
        pairs.append((fmt, "echos", read_echos, path))
        for name, fn in peers.items():
            check(fmt, name, ours, fn(path))
            pairs.append((fmt, name, fn, path))

    times = {(f, n): [] for f, n, _, _ in pairs}
    cpu = {(f, n): [] for f, n, _, _ in pairs}
    rng = random.Random(12)
    for _ in range(args.reps):
        order = pairs[:]
        rng.shuffle(order)
        for fmt, name, fn, path in order:
            gc.collect()
            c0, t0 = time.process_time(), time.perf_counter()
            out = fn(path)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            del out
            times[(fmt, name)].append(dt)
            cpu[(fmt, name)].append(dc)

    result = {
        "reps": args.reps,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "versions": versions(),
        "wall": table(times, counts, lines := []),
        "cpu": table(cpu, counts, lines_cpu := []),
    }
    lines = ["wall-clock time (perf_counter):", *lines, "", "process CPU time, all threads (process_time):", *lines_cpu]
    print("\n".join(lines))
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        pathlib.Path(args.json).write_text(text)
    del echos


def table(times, counts, lines):
    """Medians, rates and echos' ratios per format from `times`; appends the table's rows."""
    out = {}
    lines.append(
        f"{'format':<10} {'reader':<13} {'events':>10} {'median s':>10} {'M ev/s':>9} {'echos ×':>8}"
    )
    for fmt, (_fname, peers) in FILES.items():
        n = counts[fmt]
        med = {name: statistics.median(times[(fmt, name)]) for name in ["echos", *peers]}
        rate = {k: n / v for k, v in med.items()}
        out[fmt] = {
            "events": n,
            "median_seconds": med,
            "events_per_second": rate,
            "echos_ratio": {k: rate["echos"] / rate[k] for k in peers},
            "all_seconds": {k: times[(fmt, k)] for k in med},
        }
        for k in med:
            ratio = "" if k == "echos" else f"{rate['echos'] / rate[k]:8.2f}"
            lines.append(
                f"{fmt:<10} {k:<13} {n:>10} {med[k]:>10.5f} {rate[k] / 1e6:>9.1f} {ratio:>8}"
            )
    return out


def versions():
    from importlib import metadata

    out = {}
    for pkg in ["echos", "faery", "expelliarmus", "aedat", "numpy"]:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


if __name__ == "__main__":
    main()
