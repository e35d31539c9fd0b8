#!/usr/bin/env bash
# CI's image step (after the test suite): installs the build tools when run as root on a fresh
# Debian 12 machine, builds the image from scratch and boots it under BIOS, UEFI and UEFI with
# Secure Boot enforced, sending one message through each boot.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(packer mmdebstrap qemu-system-x86 qemu-utils ovmf dosfstools mtools fdisk e2fsprogs)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "packer/ci.sh: missing Debian packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
  echo "packer/ci.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

started=$(date +%s)
npm run -s image
built=$(date +%s)
npm run -s image:test
echo "image: build $((built - started)) s, three boot tests $(($(date +%s) - built)) s"
