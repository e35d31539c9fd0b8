#!/usr/bin/env bash
# npm run image: builds the appliance image end to end on a Debian 12 machine, offline but for
# Debian's mirror and the npm registry: base disk (mmdebstrap; cached while its script is
# unchanged), staged release, Packer's QEMU build, then VMDK and OVA (VMware, VirtualBox) and
# VHDX (Hyper-V) converted from the qcow2 (KVM/Proxmox), with SHA256SUMS. BIOS and UEFI boot alike.
#
# usage: packer/build.sh [OUTPUT_DIR]   (default packer/output)
# MOAT_IMAGE_ACCEL=kvm uses KVM; the default is software emulation (TCG), because a /dev/kvm
# can be there and still not boot Linux: on a build machine of ours it ran a boot sector but
# hung every kernel after GRUB, which would hang the build until its timeout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$here/output}")
cache="$here/cache"
mkdir -p "$cache"
started=$(date +%s)

need=(packer mmdebstrap qemu-system-x86_64 qemu-img mkfs.fat mcopy sfdisk mkfs.ext4)
for c in "${need[@]}"; do command -v "$c" >/dev/null || { echo "image: $c is missing (apt-get install packer mmdebstrap qemu-system-x86 qemu-utils dosfstools mtools fdisk e2fsprogs)" >&2; exit 1; }; done

# The base disk carries the build's SSH public key; both are cached together.
key="$cache/build-key"
[ -f "$key" ] || ssh-keygen -q -t ed25519 -N '' -C moat-image-build -f "$key"
base_id=$(cat "$here/scripts/build-base.sh" "$key.pub" | sha256sum | cut -c1-16)
base="$cache/base-$base_id.qcow2"
if [ ! -f "$base" ]; then
  echo "image: building the base disk (minutes)"
  bash "$here/scripts/build-base.sh" "$base.tmp" "$key.pub"
  mv "$base.tmp" "$base"
fi
base_done=$(date +%s)

# The release signing key: MOAT_RELEASE_KEY_DIR (release.key, release.pub.pem) for real
# releases; otherwise one made here, once, and kept in the cache (never committed).
keys=${MOAT_RELEASE_KEY_DIR:-$cache/release-key}
if [ ! -f "$keys/release.key" ]; then
  echo "image: making a release signing key in $keys (set MOAT_RELEASE_KEY_DIR to use yours)"
  mkdir -p "$keys"
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$keys/release.key")
  openssl pkey -in "$keys/release.key" -pubout -out "$keys/release.pub.pem"
fi
release="$cache/moat-release.tar.gz"
bash "$here/scripts/stage.sh" "$release" "$keys" "$cache/releases"

accel=${MOAT_IMAGE_ACCEL:-tcg}
case "$accel" in tcg|kvm) ;; *) echo "image: MOAT_IMAGE_ACCEL is tcg or kvm, not $accel" >&2; exit 1 ;; esac
rm -rf "$out"
echo "image: packer build ($accel)"
(cd "$here" && packer build -var "base_image=$base" -var "release=$release" -var "update_test=$cache/releases/moat-imagetest.moat" -var "ssh_key=$key" \
  -var "output_dir=$out" -var "accelerator=$accel" -var "serial_log=$cache/build-serial.log" moat.pkr.hcl)
packer_done=$(date +%s)

echo "image: converting"
qemu-img convert -O vmdk -o subformat=streamOptimized "$out/moat.qcow2" "$out/moat.vmdk"
qemu-img convert -O vhdx -o subformat=dynamic "$out/moat.qcow2" "$out/moat.vhdx"
bash "$here/scripts/make-ova.sh" "$out/moat.qcow2" "$out/moat.ova"
cp "$cache"/releases/moat-[0-9]*.moat "$out/"
(cd "$out" && sha256sum moat.qcow2 moat.vmdk moat.ova moat.vhdx moat-*.moat > SHA256SUMS)
done_at=$(date +%s)
echo "image: done in $((done_at - started)) s (base $((base_done - started)) s, packer $((packer_done - base_done)) s, convert $((done_at - packer_done)) s)"
ls -l "$out"
