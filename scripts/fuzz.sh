#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (cargo fuzz, nightly toolchain,
# AddressSanitizer and LeakSanitizer on) from the committed seeds, and
# prints one line per target: executions, seconds, corpus size.
#
#   scripts/fuzz.sh [--time SECONDS | --runs N] [--jobs J] [TARGET...]
#
# Default: 20 seconds for every target (the CI smoke run). The acceptance
# runs were `--time 600` per target. Each target fuzzes its own working
# corpus under target/fuzz-corpus/, seeded from fuzz/corpus/<target>/ (and,
# for onnx, the committed fixture models). Any crash, hang (a unit over 60 s),
# leak or out-of-memory (4 GiB) fails the run: libFuzzer writes the input
# to fuzz/artifacts/<target>/ and the script exits non-zero. A found input
# becomes a regression case: add it to fuzz/corpus/<target>/ (CI replays
# every seed) and a test of its own where the bug was.
#
# Targets run --jobs at a time (default 1). Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`) and a nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-max_total_time=20)
jobs=1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --time) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
toolchain="${N3NET_FUZZ_TOOLCHAIN:-+nightly}"
mapfile -t all < <(cargo "$toolchain" fuzz list)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

cargo "$toolchain" fuzz build

log=target/fuzz-logs
mkdir -p "$log"
run_one() {
    local t=$1 corpus=target/fuzz-corpus/$1
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
    if [ "$t" = onnx ]; then
        for f in tests/fixtures/*/model.onnx; do
            cp -n "$f" "$corpus/fixture-$(basename "$(dirname "$f")").onnx"
        done
    fi
    local max_len=()
    case "$t" in capi | stream) max_len=(-max_len=16384) ;; esac
    local start=$SECONDS rc=0
    cargo "$toolchain" fuzz run "$t" "$corpus" -- "${limit[@]}" "${max_len[@]}" \
        -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 \
        >"$log/$t.log" 2>&1 || rc=$?
    local execs
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log/$t.log" | tail -n 1)
    printf 'fuzz %-7s %s: %s executions in %d s, corpus %d inputs\n' "$t" \
        "$([ $rc = 0 ] && echo ok || echo FAILED)" "${execs:-?}" $((SECONDS - start)) \
        "$(find "$corpus" -type f | wc -l)"
    if [ $rc != 0 ]; then
        tail -n 40 "$log/$t.log" >&2
        return 1
    fi
}

failed=0
running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
[ $failed = 0 ] || { echo "fuzzing found a failure (inputs in fuzz/artifacts/)" >&2; exit 1; }
