#!/usr/bin/env bash
# One command for a new user on a fresh Debian 12 machine (root): install what is missing, build
# echo-os and run the main job on its embedded default.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install-deps.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo xtask run
