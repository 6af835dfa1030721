# Another process reading a running loop's shared region at 1 kHz (echos.rt.attach + snapshot()),
# for the reader-cost figures in docs/rt.md: python scripts/rt_reader.py bench- (a name prefix).
import glob, os, sys, time
import echos
want = sys.argv[1]  # the region name prefix, e.g. bench-
deadline = time.monotonic() + 60
r = None
while r is None and time.monotonic() < deadline:
    for p in glob.glob(f"/dev/shm/echos.{want}*"):
        try:
            r = echos.rt.attach(os.path.basename(p)[len("echos."):])
            break
        except ValueError:
            pass
    time.sleep(0.01)
if r is None:
    sys.exit("no region")
n, nxt, gap = 0, time.monotonic(), 0.001
while r.owner_running():
    r.snapshot(); n += 1
    nxt += gap
    d = nxt - time.monotonic()
    if d > 0:
        time.sleep(d)
print(f"external reader: {n} snapshots", file=sys.stderr)
