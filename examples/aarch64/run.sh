#!/usr/bin/env bash
# The C host example (examples/c-host/n3net_denoise.c) built for aarch64 Linux
# against the library's static archive and run under qemu-aarch64, and built
# for x86-64 and run natively, on the same 96x96 crop of the project's sample:
#   (a) the q16 model: the denoised PGMs must be byte-identical (fixed point
#       gives the same bits on every target);
#   (b) the f32 model: the --float-out float32 outputs must agree within 1e-4
#       (x86-64 runs the AVX2/FMA kernels, aarch64 the reference ones: their
#       float sums round differently).
# Prints the figures and exits non-zero on any mismatch. Uses Debian's second
# Rust toolchain (/usr/bin/cargo, -Z build-std) for aarch64 and installs it,
# the aarch64 cross toolchain and qemu-user when missing, like
# scripts/aarch64-tests.sh. Outputs go to target/aarch64 (Rust) and
# target/aarch64-c (programs, images).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/ensure-packages.sh rustc-web cargo-web rust-web-src gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user

q16_model=models/n3net-gray-blind-q16.n3b
out=target/aarch64-c
sysroot=/usr/aarch64-linux-gnu
mkdir -p "$out"
step() { printf '\n=== %s\n' "$1"; }

step "libn3net.a for aarch64-unknown-linux-gnu (Debian's toolchain, build-std)"
RUSTC_BOOTSTRAP=1 PATH="/usr/bin:$PATH" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    /usr/bin/cargo rustc -p n3net-ffi --release --target aarch64-unknown-linux-gnu \
    -Z build-std=std,panic_abort --crate-type staticlib --target-dir target/aarch64

step "libn3net.a for x86-64, and the n3net tool for the f32 blob"
cargo rustc -p n3net-ffi --release --crate-type staticlib
cargo build --release -p n3net-runtime

step "n3net_denoise for both targets"
cflags=(-std=c99 -O2 -Wall -Wextra -pedantic -Werror -I ffi/include)
aarch64-linux-gnu-gcc "${cflags[@]}" examples/c-host/n3net_denoise.c \
    target/aarch64/aarch64-unknown-linux-gnu/release/libn3net.a -lpthread -ldl -lm \
    -o "$out/n3net_denoise-aarch64"
gcc "${cflags[@]}" examples/c-host/n3net_denoise.c target/release/libn3net.a -lpthread -ldl -lm \
    -o "$out/n3net_denoise-x86_64"
file "$out/n3net_denoise-aarch64"

step "inputs: the 96x96 crop and the f32 blob of the default model"
python3 examples/c-host/pgm.py crop samples/astronaut-noisy-s25.png "$out/noisy.pgm"
./target/release/n3net convert -o "$out/n3net-gray-blind-f32.n3b"

# Runs both programs with the same arguments; the native output names end in
# .x86_64, the emulated ones in .aarch64. Sets qemu_seconds.
run_both() {
    local name=$1
    shift
    local args=("$@")
    "$out/n3net_denoise-x86_64" "${args[@]//@/x86_64}"
    local start ms
    start=$(date +%s%N)
    qemu-aarch64 -L "$sysroot" "$out/n3net_denoise-aarch64" "${args[@]//@/aarch64}"
    ms=$((($(date +%s%N) - start) / 1000000))
    qemu_seconds=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
    echo "$name: qemu-aarch64 wall time ${qemu_seconds} s"
}

step "(a) q16: the denoised PGMs must be the same bytes"
run_both q16 "$q16_model" "$out/noisy.pgm" "$out/q16.@.pgm" --sigma 25
q16_qemu=$qemu_seconds
if cmp -s "$out/q16.x86_64.pgm" "$out/q16.aarch64.pgm"; then q16_same=yes; else q16_same=no; fi

step "(b) f32: the float32 outputs must agree within 1e-4"
run_both f32 "$out/n3net-gray-blind-f32.n3b" "$out/noisy.pgm" "$out/f32.@.pgm" --sigma 25 \
    --float-out "$out/f32.@.f32"
f32_qemu=$qemu_seconds
f32_ok=yes
f32_report=$(python3 examples/c-host/pgm.py f32diff "$out/f32.x86_64.f32" "$out/f32.aarch64.f32" \
    --tol 1e-4) || f32_ok=no
echo "$f32_report"

step "summary (96x96 crop, sigma 25)"
printf 'q16 model: denoised PGM x86-64 vs aarch64 byte-identical: %s (qemu %s s)\n' "$q16_same" "$q16_qemu"
printf 'f32 model: --float-out x86-64 vs aarch64: %s (qemu %s s)\n' "$f32_report" "$f32_qemu"
if [ "$q16_same" != yes ] || [ "$f32_ok" != yes ]; then
    echo "MISMATCH between x86-64 and aarch64" >&2
    exit 1
fi
