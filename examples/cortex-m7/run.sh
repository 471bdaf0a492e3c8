#!/usr/bin/env bash
# Builds the n3net C library for the Cortex-M7 and for this machine, builds the
# firmware, runs it under qemu (mps2-an500) and checks that it prints the same
# output checksum as the same calls on this machine. Exits non-zero if any
# step fails or the checksums differ.
#
#     examples/cortex-m7/run.sh
#
# Environment: MODEL (the .n3b blob; default models/n3net-gray-blind-q16.n3b),
# QEMU_TIMEOUT (seconds, default 300), CARGO_BUILD_JOBS (cargo's -j).
# Installs what it needs from Debian when missing: the bare-metal GNU
# toolchain, qemu-system-arm, and the second Rust toolchain with the standard
# library's sources (/usr/bin/cargo, which builds core for the target; rustup's
# cargo builds the host library). Build outputs go to target/.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODEL=${MODEL:-$ROOT/models/n3net-gray-blind-q16.n3b}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-300}
BUILD=$ROOT/target/cortex-m7
TILE=$HERE/tile64.pgm

if [ ! -f "$MODEL" ]; then
    echo "no model blob at $MODEL (make one with: n3net convert --precision q16 -o FILE)" >&2
    exit 1
fi
bash "$ROOT/scripts/ensure-packages.sh" rustc-web cargo-web rust-web-src gcc-arm-none-eabi qemu-system-arm

mkdir -p "$BUILD"
cd "$ROOT"

echo "== libn3net.a for thumbv7em-none-eabihf (no_std)"
# Debian's toolchain (first in PATH for this command only) has the standard
# library's sources, so it can build core for the target.
RUSTC_BOOTSTRAP=1 PATH=/usr/bin:$PATH /usr/bin/cargo rustc -p n3net-ffi --release \
    --no-default-features --target thumbv7em-none-eabihf -Z build-std=core \
    --crate-type staticlib --target-dir target/thumb

echo "== libn3net.a for this machine and host_checksum"
cargo build -p n3net-ffi --release
cc -std=c11 -O2 -Wall -Wextra -Werror -I ffi/include "$HERE/host_checksum.c" "$HERE/common.c" \
    target/release/libn3net.a -lpthread -ldl -lm -o "$BUILD/host_checksum"
HOST=$("$BUILD/host_checksum" "$MODEL" "$TILE")
echo "$HOST"

echo "== firmware"
make -C "$HERE" --no-print-directory MODEL="$MODEL" all size

echo "== qemu-system-arm (timeout ${QEMU_TIMEOUT} s)"
LOG=$BUILD/qemu.log
start=$(date +%s%N)
status=0
# qemu writes semihosting output to stderr when no chardev is named.
make -C "$HERE" --no-print-directory -s QEMU_TIMEOUT="$QEMU_TIMEOUT" run 2>&1 | tee "$LOG" || status=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
qemu_seconds=$(printf '%d.%03d' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)))
if [ "$status" -ne 0 ]; then
    echo "FAIL: the firmware exited with status $status after ${qemu_seconds} s (124: timeout)" >&2
    exit 1
fi

# Flash holds everything loaded (code, constants, the blob, the tile and the
# initial image of .data); RAM holds .data, .bss (the workspace in it) and
# the stack region.
section() {
    arm-none-eabi-size -A -d "$BUILD/fw.elf" | awk -v s="$1" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'
}
symbol() {
    arm-none-eabi-nm -S -t d "$BUILD/fw.elf" | awk -v s="$1" '$4 == s { print $2 + 0 }'
}
text=$(($(section .vectors) + $(section .text)))
rodata=$(($(section .rodata) + $(section .ARM.extab) + $(section .ARM.exidx)))
data=$(section .data)
bss=$(section .bss)
stack=$(section .stack)
fw_line() { sed -n "s/^$1//p" "$LOG"; }

echo "== figures"
echo "qemu wall time:   ${qemu_seconds} s"
echo "flash:            $((text + rodata + data)) B (text $text, rodata $rodata of which blob $(symbol model_blob) and tile $(symbol tile_pgm), data image $data)"
echo "RAM:              $((data + bss + stack)) B (data $data, bss $bss, stack region $stack)"
echo "workspace:        $(fw_line 'workspace: ') (static buffer $(symbol workspace) B in bss)"
echo "stack high-water: $(fw_line 'stack high-water: ')"

QEMU_SUM=$(grep '^checksum ' "$LOG" || true)
echo "host: $HOST"
echo "qemu: $QEMU_SUM"
if [ -z "$QEMU_SUM" ] || [ "$QEMU_SUM" != "$HOST" ]; then
    echo "FAIL: the checksums differ" >&2
    exit 1
fi
echo "OK: the Cortex-M7 output is bit-identical to the host's"
