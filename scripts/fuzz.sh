#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets, cargo-fuzz + libFuzzer) for a given time and prints
# one table: executions, crashes, peak RSS and the slowest input per target (docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      default 60 s, every target
#
# Builds every target once (release, debug assertions and overflow checks on, AddressSanitizer unless
# FUZZ_SANITIZER=none), then runs each target on its committed seeds (fuzz/seeds/<target>),
# its working corpus (fuzz/corpus/<target>, kept between runs) and, where ../shared/data exists,
# the matching shared files. Crashes land in fuzz/artifacts/<target>/. Exits non-zero if any
# target crashed or failed to run. Installs cargo-fuzz when it is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

secs="${1:-60}"
[ $# -gt 0 ] && shift
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
# cargo-fuzz from crates.io (libFuzzer itself is built from source by the libfuzzer-sys crate).
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked --quiet
fi

# cargo-fuzz passes -Z flags (sanitizer, coverage passes); the pinned stable toolchain accepts
# them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}/fuzz}"
all_targets=$(sed -n 's/^name = "\(fuzz_[a-z0-9_]*\)"$/\1/p' fuzz/Cargo.toml)
if [ $# -gt 0 ]; then
    targets="$*"
    for t in $targets; do
        grep -qx "$t" <<<"$all_targets" || { echo "fuzz.sh: no target $t (have: $(echo $all_targets))" >&2; exit 2; }
    done
else
    targets="$all_targets"
fi

build_start=$(date +%s)
cargo fuzz build --fuzz-dir fuzz --release --debug-assertions --sanitizer "$sanitizer" \
    --target-dir "$target_dir"
echo "fuzz.sh: built in $(( $(date +%s) - build_start )) s"
bin="$target_dir/x86_64-unknown-linux-gnu/release"

shared="${ECHOS_SHARED_DATA:-$root/../shared/data}"
# Shared files seed these targets (under 1 MiB: libFuzzer's longest default input).
shared_seeds() {
    case "$1" in
        fuzz_npy) echo "$shared/timeseries/santafe_laser.npy" ;;
        fuzz_pth) ls "$shared"/rwkv/random/*.pth 2>/dev/null ;;
        fuzz_ggml) ls "$shared"/rwkv/trained/*-Q5_1.bin 2>/dev/null | head -3 ;;
    esac
}

# The last value of one of libFuzzer's `-print_final_stats` lines.
final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=0
rows=()
for t in $targets; do
    corpus="fuzz/corpus/$t"
    artifacts="fuzz/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    for f in $(shared_seeds "$t"); do
        [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 1048576 ] && cp -n "$f" "$corpus/shared-$(basename "$f")"
    done
    before=$(find "$artifacts" -type f | wc -l)
    log="$logs/$t.log"
    echo "fuzz.sh: $t for $secs s"
    set +e
    "$bin/$t" "$corpus" "fuzz/seeds/$t" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1
    rc=$?
    set -e
    crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
    execs=$(final_stat number_of_executed_units "$log")
    rss=$(final_stat peak_rss_mb "$log")
    slowest=$(sed -n 's/^echos-fuzz: slowest input \([0-9.]*\) ms$/\1/p' "$log" | tail -1)
    if [ $rc -ne 0 ] || [ "$crashes" -gt 0 ] || [ -z "$execs" ]; then
        failed=1
        echo "fuzz.sh: $t FAILED (exit $rc, $crashes new artifacts in $artifacts/); its log ends:"
        tail -40 "$log"
        [ "$crashes" -eq 0 ] && crashes="? (exit $rc)"
    fi
    rows+=("$(printf '%-18s %14s %8s %14s %18s' "$t" "${execs:-?}" "$crashes" "${rss:-?}" "${slowest:-?}")")
    echo "test fuzz::$t ... $([ $rc -eq 0 ] && [ "${crashes}" = 0 ] && echo ok || echo FAILED)"
done

echo
printf '%-18s %14s %8s %14s %18s\n' target executions crashes "peak RSS (MB)" "slowest input (ms)"
printf '%s\n' "${rows[@]}"
exit $failed
