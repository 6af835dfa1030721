"""Side-by-side timing of a reservoir run from Python: echos.ESN.update vs ReservoirPy's run.

Same task for both: drive a sparse random reservoir (connectivity 0.1, spectral radius 0.9, leak
rate 0.3) with 10,000 steps of Mackey-Glass and collect all states. Each measurement is the median
of --repeats timed calls after one untimed warm-up call (ReservoirPy initialises its weights on the
first call; echos builds its reservoir on the first call too). echos runs four ways: the exact
model path in float64 and float32 (kernel="exact", libm tanh), the fused float32 kernel
(kernel="fast": SELL-16 + rational tanh, the CPU's best variant, printed) on the same kind of
random sparse reservoir, and the fused kernel on a block-sparse reservoir (topology="block",
groups of 16 units sharing in-neighbours: same connectivity, gather-free step). ReservoirPy
always runs its own random sparse reservoir. Each line gives steps/s of wall time and of process
CPU time, with the ratio to ReservoirPy in the same run. Needs a venv with both packages:

    python3 -m venv /tmp/bench-venv
    /tmp/bench-venv/bin/pip install reservoirpy==0.4.2 maturin
    /tmp/bench-venv/bin/pip install .          # from the repository root
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /tmp/bench-venv/bin/python bench/python_vs_reservoirpy.py

(The OPENBLAS_* variables this machine sets slow a current NumPy down; unset both for this
command only, as docs/python.md explains.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


# (label, dtype, kernel, topology): the exact model path in both dtypes on the random sparse
# reservoir ReservoirPy also runs, then the fused kernel on it and on the block-sparse reservoir
# (same connectivity and weight distribution, rows grouped by 16 sharing their in-neighbours).
CONFIGS = (
    ("exact_f64_random", "float64", "exact", "random"),
    ("exact_f32_random", "float32", "exact", "random"),
    ("fast_random", "float32", "fast", "random"),
    ("fast_block", "float32", "fast", "block"),
)

CPU = {}  # id(fn) -> median process CPU seconds of its last median_seconds() measurement


def median_seconds(fn, repeats: int) -> float:
    """Median wall seconds of `repeats` calls; the median CPU seconds (process time, all
    threads) go to CPU[id(fn)]: on a shared machine the CPU-time ratio is the steadier one."""
    fn()  # warm-up: weight initialisation happens here for both libraries
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU[id(fn)] = statistics.median(cpu)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--units", type=int, nargs="+", default=[100, 500, 1000])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    import echos
    import reservoirpy
    from reservoirpy.datasets import mackey_glass
    from reservoirpy.nodes import Reservoir

    x = mackey_glass(args.steps)  # the same series for both libraries
    rows = []
    for n in args.units:
        rpy = Reservoir(units=n, sr=0.9, lr=0.3, input_scaling=1.0, rc_connectivity=0.1, seed=1)

        def run_rpy(rpy=rpy):
            rpy.run(x)
            rpy.reset()  # after, not before: ReservoirPy cannot reset an uninitialised node

        t_rpy = median_seconds(run_rpy, args.repeats)
        c_rpy = CPU[id(run_rpy)]
        row = {"units": n, "steps": args.steps, "reservoirpy_s": t_rpy, "reservoirpy_cpu_s": c_rpy}
        if not args.json:
            print(f"N={n:5d}  {'ReservoirPy run (its random sparse W)':44s} "
                  f"{args.steps / t_rpy:10.0f} steps/s {'':8s} "
                  f"{args.steps / c_rpy:10.0f} steps/CPU-s", flush=True)
        for label, dtype, kernel, topology in CONFIGS:
            esn = echos.ESN(
                neurons=n,
                spectral_radius=0.9,
                leak_rate=0.3,
                input_scaling=1.0,
                connectivity=0.1,
                seed=1,
                dtype=dtype,
                kernel=kernel,
                topology=topology,
            )
            xs = x.astype(dtype)  # the ESN's dtype, so update() reads it in place

            def run_echos(esn=esn, xs=xs):
                esn.update(xs)
                esn.reset()

            t = median_seconds(run_echos, args.repeats)
            cpu = CPU[id(run_echos)]
            row[label] = {
                "kernel": esn.kernel,
                "dtype": esn.dtype,
                "topology": esn.topology,
                "block_size": esn.block_size if esn.topology == "block" else None,
                "s": t,
                "cpu_s": cpu,
                "speedup": t_rpy / t,
                "cpu_speedup": c_rpy / cpu,
            }
            if not args.json:
                desc = f"echos {esn.kernel} {esn.dtype} ({topology}" + (
                    f" {esn.block_size})" if topology == "block" else ")")
                print(f"N={n:5d}  {desc:44s} {args.steps / t:10.0f} steps/s ({t_rpy / t:5.1f}x) "
                      f"{args.steps / cpu:10.0f} steps/CPU-s ({c_rpy / cpu:5.1f}x)", flush=True)
        rows.append(row)
    # Two independent ESNs, one after the other and then in two Python threads: with the GIL
    # released during update() the threaded wall time approaches half the serial one.
    import threading

    n = max(args.units)
    pair = [echos.ESN(neurons=n, spectral_radius=0.9, leak_rate=0.3, connectivity=0.1, seed=s,
                      kernel="fast", topology="block")
            for s in (1, 2)]
    x = x.astype(np.float32)

    def serial():
        for e in pair:
            e.update(x)
            e.reset()

    def threaded():
        ths = [threading.Thread(target=lambda e=e: (e.update(x), e.reset())) for e in pair]
        for th in ths:
            th.start()
        for th in ths:
            th.join()

    t_serial = median_seconds(serial, args.repeats)
    t_threads = median_seconds(threaded, args.repeats)
    threads = {"units": n, "serial_s": t_serial, "two_threads_s": t_threads,
               "speedup": t_serial / t_threads}
    if not args.json:
        print(f"two fast block ESNs of N={n}: serial {t_serial:.3f} s, two threads {t_threads:.3f} s "
              f"({t_serial / t_threads:.2f}x)")
    if args.json:
        print(json.dumps({"reservoirpy": reservoirpy.__version__, "echos": echos.__version__,
                          "numpy": np.__version__, "results": rows, "threads": threads}))


if __name__ == "__main__":
    main()
