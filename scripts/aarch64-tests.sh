#!/usr/bin/env bash
# The q16 golden checksum and q16-with-every-kernel tests of
# core/tests/precision.rs, built for aarch64-unknown-linux-gnu and run under
# qemu-aarch64: the q16 output must be the same bits as on x86-64 (the whole
# file takes about 3 minutes under qemu, these two seconds). Uses Debian's second
# Rust toolchain (/usr/bin/cargo, -Z build-std) and installs it, the aarch64
# cross linker and qemu-user when missing. The linker and the runner are set
# for this command only; builds go to target/aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-packages.sh rustc-web cargo-web rust-web-src gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
cmd=(/usr/bin/cargo test -p n3net-core --release --target aarch64-unknown-linux-gnu
    -Z build-std=std,panic_abort --target-dir target/aarch64 --test precision
    -- --exact q16_golden_checksum q16_is_the_same_bits_with_every_kernel)
echo "running: RUSTC_BOOTSTRAP=1 ${cmd[*]} (runner: $CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER)"
RUSTC_BOOTSTRAP=1 PATH="/usr/bin:$PATH" "${cmd[@]}"
