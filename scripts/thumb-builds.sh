#!/usr/bin/env bash
# The Cortex-M7 builds (thumbv7em-none-eabihf, no std, no alloc): the
# embedded-hal example crate, and the core with its defmt feature (defmt's
# advice: check the derives by building for a thumb target). Uses Debian's
# second Rust toolchain (/usr/bin/cargo with -Z build-std=core, packages
# rustc-web cargo-web rust-web-src), which this script expects installed;
# builds go to target/thumb.
set -euo pipefail
cd "$(dirname "$0")/.."
thumb=(--release --target thumbv7em-none-eabihf -Z build-std=core --target-dir target/thumb)
build() {
    echo "building: RUSTC_BOOTSTRAP=1 /usr/bin/cargo build $* ${thumb[*]}"
    RUSTC_BOOTSTRAP=1 PATH="/usr/bin:$PATH" /usr/bin/cargo build "$@" "${thumb[@]}"
}
build -p n3net-embedded-hal-example
build -p n3net-core --features defmt
