#!/usr/bin/env bash
# Event-file read speed against faery, expelliarmus and aedat (bench/events_peers.py): makes a
# throwaway venv under /tmp with the peers from PyPI and echos built from this checkout
# (maturin develop --release), then runs the interleaved benchmark. Arguments go to the script
# (--reps N, --data DIR, --json FILE). VENV=/tmp/other reuses or places the venv elsewhere.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-/tmp/echos-events-peers}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
fi
"$VENV/bin/pip" install -q "faery==0.7.1" expelliarmus aedat numpy "maturin>=1.8,<2"
(cd "$ROOT" && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop --release -q)
exec "$VENV/bin/python" "$ROOT/bench/events_peers.py" "$@"
