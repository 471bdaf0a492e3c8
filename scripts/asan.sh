#!/usr/bin/env bash
# Runs the Rust tests of the core and the C ABI (unit, integration and doc
# tests) under AddressSanitizer, with LeakSanitizer on (nightly toolchain,
# -Zsanitizer=address), optimised, with debug assertions and overflow checks
# on. Any report fails the run.
#
#   scripts/asan.sh [-p PACKAGE ...] [extra cargo test arguments]
#   scripts/asan.sh --ci
#
# Without -p: both crates. --ci (what CI runs): the core's tests only,
# without its four largest-image tests (the same code at smaller sizes
# runs). The C ABI's tests also build the runtime and tract under the sanitizer
# (about 15 minutes more); in CI the capi fuzz target runs the C ABI under
# AddressSanitizer instead.
#
# The build uses the compiler flags, profile and target folder of
# `cargo fuzz build` (fuzz/target), so that every dependency whose features
# agree with the fuzz crate's is built once for both.
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain="${N3NET_ASAN_TOOLCHAIN:-+nightly}"
host=$(rustc "$toolchain" -vV | sed -n 's/^host: //p')
# cargo-fuzz 0.13's flags for `cargo fuzz build` (ASan, coverage counters).
export RUSTFLAGS=" -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Zsanitizer=address \
-Cllvm-args=-sanitizer-coverage-stack-depth -Cdebug-assertions -Ccodegen-units=1"
export RUSTDOCFLAGS="-Zsanitizer=address"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1:detect_odr_violation=0"
if [ "${1:-}" = --ci ]; then
    shift
    set -- -p n3net-core "$@" -- --skip paper_model_matches --skip large_image_matches \
        --skip paper_geometry_stripes --skip noise_conditioned_model
elif [ "${1:-}" != -p ]; then
    set -- -p n3net-core -p n3net-ffi "$@"
fi
# --target keeps build scripts and proc macros uninstrumented.
cargo "$toolchain" test --release --target "$host" --target-dir fuzz/target \
    --config 'profile.release.debug="line-tables-only"' "$@"
