"""Make the golden values the event-camera tests pin (crates/echos-core/tests/events_data/).

Run once, in a throwaway venv outside the repository, with the peers at these versions:

    python3 -m venv /tmp/evpeers
    /tmp/evpeers/bin/pip install faery==0.7.1 expelliarmus==1.1.12 tonic==1.7.0 numpy numba
    /tmp/evpeers/bin/python bench/events_golden.py [--data ../shared/data]

It writes two things, both committed:
- tests/events_data/golden.rs: per shared recording, as each peer decodes it (faery and
  expelliarmus for EVT 2/3, faery for AEDAT 4, tonic's read_mnist_file for N-MNIST): event
  count, first and last 5 events, and an FNV-1a 64 digest over every event's t (u64), x, y
  (u16) little-endian and p (u8), in order (echos_core::events::events_digest computes the
  same), and one over x, y, p only (expelliarmus 1.1.12 gets EVT 3 times wrong: from its
  first TIME_HIGH step on it adds 4096 µs per step, while its coordinates agree); and tonic 1.7.0's ToFrame / ToTimesurface / ToVoxelGrid / Denoise outputs on the first
  20,000 events of evt3.raw (frames and denoised events exactly, as digests; float surfaces
  and voxel grids as per-frame sums and sampled values for a tolerance check).
- tests/events_data/synthetic.*: a deterministic synthetic recording (made here, so no third
  party's data) written by faery as DAT v1, DAT v2, EVT 2.0 and EVT 3.0, so the tests check our
  readers on files another implementation wrote; its events are pinned in golden.rs too.
Nothing in the tests runs Python: they read the recordings and these files only.
"""

from __future__ import annotations

import argparse
import pathlib

import numba
import numpy as np

import expelliarmus
import faery
import tonic
import tonic.io
import tonic.transforms as T

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "echos-core" / "tests" / "events_data"


@numba.njit(cache=False)
def _fnv(t, x, y, p):
    h = np.uint64(0xCBF29CE484222325)
    prime = np.uint64(0x100000001B3)
    for i in range(t.shape[0]):
        tv = np.uint64(t[i])
        for k in range(8):
            h = (h ^ ((tv >> np.uint64(8 * k)) & np.uint64(0xFF))) * prime
        xv = np.uint64(x[i])
        h = (h ^ (xv & np.uint64(0xFF))) * prime
        h = (h ^ (xv >> np.uint64(8))) * prime
        yv = np.uint64(y[i])
        h = (h ^ (yv & np.uint64(0xFF))) * prime
        h = (h ^ (yv >> np.uint64(8))) * prime
        h = (h ^ np.uint64(p[i])) * prime
    return h


@numba.njit(cache=False)
def _fnv_xyp(x, y, p):
    h = np.uint64(0xCBF29CE484222325)
    prime = np.uint64(0x100000001B3)
    for i in range(x.shape[0]):
        xv = np.uint64(x[i])
        h = (h ^ (xv & np.uint64(0xFF))) * prime
        h = (h ^ (xv >> np.uint64(8))) * prime
        yv = np.uint64(y[i])
        h = (h ^ (yv & np.uint64(0xFF))) * prime
        h = (h ^ (yv >> np.uint64(8))) * prime
        h = (h ^ np.uint64(p[i])) * prime
    return h


def fnv_bytes(b: bytes) -> int:
    h = 0xCBF29CE484222325
    for c in b:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def columns(arr):
    """t, x, y, p as uint64/uint16/uint16/uint8 from any peer's structured array."""
    names = arr.dtype.names
    pname = "p" if "p" in names else "on"
    return (
        arr["t"].astype(np.uint64),
        arr["x"].astype(np.uint16),
        arr["y"].astype(np.uint16),
        arr[pname].astype(np.uint8),
    )


def summary(arr):
    t, x, y, p = columns(arr)
    ev = lambda i: f"({int(t[i])}, {int(x[i])}, {int(y[i])}, {int(p[i])})"
    n = len(t)
    return {
        "count": n,
        "first": "[" + ", ".join(ev(i) for i in range(min(5, n))) + "]",
        "last": "[" + ", ".join(ev(i) for i in range(max(0, n - 5), n)) + "]",
        "digest": int(_fnv(t, x, y, p)),
        "xyp_digest": int(_fnv_xyp(x, y, p)),
        "monotonic": bool(np.all(np.diff(t.astype(np.int64)) >= 0)),
    }


def faery_array(path):
    return np.concatenate(list(faery.events_stream_from_file(path)))


def expelliarmus_array(path, encoding):
    w = expelliarmus.Wizard(encoding=encoding)
    w.set_file(str(path))
    return w.read()


def rust_file_golden(name, s):
    return (
        f"pub const {name}: FileGolden = FileGolden {{\n"
        f"    count: {s['count']},\n"
        f"    first: &{s['first']},\n"
        f"    last: &{s['last']},\n"
        f"    digest: {s['digest']:#018x},\n"
        f"    xyp_digest: {s['xyp_digest']:#018x},\n"
        f"}};\n"
    )


def tonic_events(t, x, y, p):
    dtype = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    a = np.zeros(len(t), dtype=dtype)
    a["x"], a["y"], a["t"], a["p"] = x, y, t, p
    return a


def rust_f64s(name, values):
    body = ", ".join(repr(float(v)) for v in values)
    return f"pub const {name}: &[f64] = &[{body}];\n"


def rust_usizes(name, values):
    body = ", ".join(str(int(v)) for v in values)
    return f"pub const {name}: &[usize] = &[{body}];\n"


def synthetic_events():
    """A deterministic recording with what decoders must get right: rows of neighbouring
    pixels at one time (EVT 3 vector words), both polarities, a 3 s gap, then an EVT 3 time wrap
    (2^24 µs) among dense events. Sized for DAT v1 (x < 512, y < 256). (faery 0.7.1 carries an EVT 3 wrap only on
    TIME_HIGH 0xFFF -> 0x000, so its files cannot have the wrap inside a gap.)"""
    rng = np.random.default_rng(20261202)
    ts, xs, ys, ps = [], [], [], []
    t = 13_700_000
    for i in range(2400):
        t += int(rng.integers(0, 40))
        if i == 1200:
            t += 3_040_000
        if rng.random() < 0.2:
            x0, y0, p0 = int(rng.integers(0, 300)), int(rng.integers(0, 240)), int(rng.integers(0, 2))
            for k in range(int(rng.integers(2, 15))):
                ts.append(t), xs.append(x0 + k), ys.append(y0), ps.append(p0)
        else:
            ts.append(t), xs.append(int(rng.integers(0, 320))), ys.append(int(rng.integers(0, 240)))
            ps.append(int(rng.integers(0, 2)))
    a = np.zeros(len(ts), dtype=faery.EVENTS_DTYPE)
    a["t"], a["x"], a["y"], a["on"] = ts, xs, ys, np.array(ps, dtype=bool)
    return a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    ev_dir = pathlib.Path(args.data) / "events"
    OUT.mkdir(parents=True, exist_ok=True)
    out = [
        "// Generated by bench/events_golden.py — do not edit by hand. Peers: faery "
        f"{faery.__version__ if hasattr(faery, '__version__') else '0.7.1'}, expelliarmus "
        f"{getattr(expelliarmus, '__version__', '1.1.12')}, tonic {tonic.__version__}.\n",
        "#![allow(dead_code)]\n",
        "use super::FileGolden;\n\n",
    ]

    # --- the shared recordings, as each peer decodes them
    evt3 = faery_array(ev_dir / "evt3.raw")
    decoded = {
        "EVT3_FAERY": evt3,
        "EVT3_EXPELLIARMUS": expelliarmus_array(ev_dir / "evt3.raw", "evt3"),
        "EVT2_FAERY": faery_array(ev_dir / "evt2.raw"),
        "EVT2_EXPELLIARMUS": expelliarmus_array(ev_dir / "evt2.raw", "evt2"),
        "AEDAT4_FAERY": faery_array(ev_dir / "davis346.aedat4"),
        "NMNIST_TONIC": tonic.io.read_mnist_file(
            str(ev_dir / "sample_nmnist.bin"), dtype=np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
        ),
    }
    for name, arr in decoded.items():
        s = summary(arr)
        print(f"{name}: {s['count']} events, monotonic {s['monotonic']}, digest {s['digest']:#018x}")
        out.append(rust_file_golden(name, s))

    # --- synthetic recording, written by faery in every format it writes
    syn = synthetic_events()
    out.append(rust_file_golden("SYNTHETIC", summary(syn)))
    for version, fname in [("dat1", "synthetic_v1.dat"), ("dat2", "synthetic_v2.dat"), ("evt2", "synthetic_evt2.raw"), ("evt3", "synthetic_evt3.raw")]:
        faery.events_stream_from_array(syn, dimensions=(320, 240)).to_file(
            str(OUT / fname), version=version, zero_t0=False
        )
        back = faery_array(OUT / fname)
        assert np.array_equal(back["t"], syn["t"]) and np.array_equal(back["x"], syn["x"]), fname

    # --- tonic 1.7.0 representations on the first 20,000 events of evt3.raw
    t, x, y, p = columns(evt3[:20000])
    full = tonic_events(t, x, y, p)
    small = T.Downsample(spatial_factor=0.125)(full)
    sensor = (160, 90, 2)
    frames = T.ToFrame(sensor_size=sensor, time_window=1000)(small.copy())
    out.append(f"pub const TONIC_FRAME_SHAPE: [usize; 4] = {list(frames.shape)};\n")
    out.append(f"pub const TONIC_FRAME_DIGEST: u64 = {fnv_bytes(frames.astype('<i2').tobytes()):#018x};\n")

    surf = T.ToTimesurface(sensor_size=sensor, dt=1000, tau=5000)(small.copy())
    out.append(f"pub const TONIC_SURFACE_SHAPE: [usize; 4] = {list(surf.shape)};\n")
    out.append(rust_f64s("TONIC_SURFACE_FRAME_SUMS", surf.reshape(surf.shape[0], -1).sum(axis=1)))
    rng = np.random.default_rng(7)
    idx = rng.choice(surf.size, size=64, replace=False)
    # sample where the surface is non-zero as well, so the check sees actual decay values
    nz = np.flatnonzero(surf.ravel())
    idx = np.concatenate([idx, nz[rng.choice(len(nz), size=64, replace=False)]])
    out.append(rust_usizes("TONIC_SURFACE_SAMPLE_INDEX", idx))
    out.append(rust_f64s("TONIC_SURFACE_SAMPLE", surf.ravel()[idx]))

    vox = T.ToVoxelGrid(sensor_size=sensor, n_time_bins=10)(small.copy())
    out.append(f"pub const TONIC_VOXEL_SHAPE: [usize; 4] = {list(vox.shape)};\n")
    out.append(rust_f64s("TONIC_VOXEL_BIN_SUMS", vox.reshape(vox.shape[0], -1).sum(axis=1)))
    out.append(rust_f64s("TONIC_VOXEL_BIN_ABS_SUMS", np.abs(vox).reshape(vox.shape[0], -1).sum(axis=1)))
    nz = np.flatnonzero(vox.ravel())
    idx = nz[rng.choice(len(nz), size=96, replace=False)]
    out.append(rust_usizes("TONIC_VOXEL_SAMPLE_INDEX", idx))
    out.append(rust_f64s("TONIC_VOXEL_SAMPLE", vox.ravel()[idx]))

    for ft in (1000, 10000):
        den = T.Denoise(filter_time=ft)(full.copy())
        s = summary(den)
        out.append(rust_file_golden(f"TONIC_DENOISE_{ft}", s))

    nm = decoded["NMNIST_TONIC"]
    nm_frames = T.ToFrame(sensor_size=(34, 34, 2), time_window=10000)(nm.copy())
    out.append(f"pub const TONIC_NMNIST_FRAME_SHAPE: [usize; 4] = {list(nm_frames.shape)};\n")
    out.append(f"pub const TONIC_NMNIST_FRAME_DIGEST: u64 = {fnv_bytes(nm_frames.astype('<i2').tobytes()):#018x};\n")

    (OUT / "golden.rs").write_text("".join(out))
    print("wrote", OUT / "golden.rs")


if __name__ == "__main__":
    main()
