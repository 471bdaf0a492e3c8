#!/usr/bin/env bash
# Installs the Debian packages named as arguments that are not installed yet
# (nothing, not even `apt-get update`, when all are there).
#
#     bash scripts/ensure-packages.sh gcc-arm-none-eabi qemu-system-arm
set -euo pipefail
missing=()
for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
