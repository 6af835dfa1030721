#!/usr/bin/env bash
# Installs what echo-os needs on a fresh Debian 12 machine (run as root). Idempotent and quiet
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
# libFuzzer (the fuzz suite) is C++, built from source by the libfuzzer-sys crate.
command -v c++ >/dev/null || need_apt+=(g++)
command -v curl >/dev/null || need_apt+=(curl ca-certificates)
# The kernel: QEMU boots it (cargo xtask run/test); GRUB + xorriso + mtools build its boot ISO.
command -v qemu-system-x86_64 >/dev/null || need_apt+=(qemu-system-x86)
{ command -v grub-mkrescue >/dev/null && [ -d /usr/lib/grub/i386-pc ]; } || need_apt+=(grub-pc-bin grub-common)
command -v xorriso >/dev/null || need_apt+=(xorriso)
command -v mformat >/dev/null || need_apt+=(mtools)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3 python3-venv python3-pip)
# The dashboard's browser test (cargo xtask test dashboard): headless chromium driven by
# playwright-core from npm (installed below).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v rustup >/dev/null; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
# rust-toolchain.toml pins the toolchain; make sure it and its kernel target are installed.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install "$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)" --profile minimal
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add x86_64-unknown-none >/dev/null
# playwright-core for the dashboard's browser test (pinned by its package-lock.json).
[ -d crates/echos-dash/browser/node_modules/playwright-core ] || npm ci --no-audit --no-fund --prefix crates/echos-dash/browser >/dev/null
# The fuzz suite's driver (scripts/fuzz.sh installs it too when missing); its -Z flags are
# accepted by the pinned stable toolchain through RUSTC_BOOTSTRAP, which fuzz.sh sets.
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
