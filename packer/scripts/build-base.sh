#!/usr/bin/env bash
# Builds the appliance's base disk without loop devices or an ISO: a Debian 12 root filesystem
# from Debian's mirror (mmdebstrap), packed into a GPT disk (BIOS boot, EFI system, root),
# bootable under BIOS (GRUB's core image written by hand) and UEFI (Debian's signed shim and
# GRUB, so Secure Boot works). Packer then boots it and provisions Moat over SSH.
#
# usage: build-base.sh OUTPUT.qcow2 SSH_PUBLIC_KEY_FILE
set -euo pipefail

out=${1:?output qcow2}
pubkey=${2:?ssh public key for the build}
mirror=${MOAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${MOAT_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
size_mb=${MOAT_DISK_MB:-6144}

work=$(mktemp -d "${TMPDIR:-/tmp}/moat-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

packages=(
  linux-image-amd64 systemd systemd-sysv systemd-timesyncd udev dbus openssh-server ca-certificates
  grub-pc-bin grub-efi-amd64-bin shim-signed grub-efi-amd64-signed
  qemu-guest-agent open-vm-tools hyperv-daemons
  ifupdown isc-dhcp-client iproute2 nftables openssl e2fsprogs dosfstools fdisk
  clamav-daemon clamav-freshclam
  less vim-tiny curl
)

echo "build-base: mmdebstrap bookworm into $root"
mmdebstrap --variant=important --include="$(IFS=,; echo "${packages[*]}")" \
  bookworm "$root" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main"

# Identity, network, build access (removed again by the last provisioning step).
echo moat > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 moat\n' > "$root/etc/hosts"
# net.ifnames=0 (below) names the first NIC eth0 on every hypervisor; its stanza is the one
# the setup wizard rewrites (moat system apply), DHCP until then.
cat > "$root/etc/network/interfaces" <<'NET'
auto lo
iface lo inet loopback

source /etc/network/interfaces.d/*
NET
install -d "$root/etc/network/interfaces.d"
printf 'allow-hotplug eth0\niface eth0 inet dhcp\n' > "$root/etc/network/interfaces.d/moat-eth0"
install -d -m 700 "$root/root/.ssh"
install -m 600 "$pubkey" "$root/root/.ssh/authorized_keys"
# The serial console is where the boot test (and a hypervisor's console log) reads.
ln -sf /lib/systemd/system/serial-getty@.service "$root/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"

root_uuid=$(cat /proc/sys/kernel/random/uuid)
esp_id=$(printf '%04X-%04X' $((RANDOM)) $((RANDOM)))
cat > "$root/etc/fstab" <<FSTAB
UUID=$root_uuid / ext4 errors=remount-ro 0 1
UUID=$esp_id /boot/efi vfat umask=0077 0 2
FSTAB
install -d "$root/boot/efi"

kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -1)
version=${kernel#vmlinuz-}
cmdline="root=UUID=$root_uuid ro console=tty0 console=ttyS0,115200n8 net.ifnames=0"
install -d "$root/boot/grub"
cat > "$root/boot/grub/grub.cfg" <<GRUB
set timeout=1
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
search --no-floppy --fs-uuid --set=root $root_uuid
menuentry 'Moat' {
  linux /boot/vmlinuz-$version $cmdline
  initrd /boot/initrd.img-$version
}
GRUB

# Layout (1 MiB sectors of 2048): BIOS boot 1-3 MiB, ESP 3-131 MiB, root the rest.
disk="$work/disk.raw"
truncate -s "${size_mb}M" "$disk"
sfdisk --quiet "$disk" <<PARTS
label: gpt
start=2048, size=4096, type=21686148-6449-6E6F-744E-656564454649, name=bios
start=6144, size=262144, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
start=268288, type=0FC63DAF-8483-4772-8E3C-3D69D8477DE4, name=root
PARTS
# sfdisk aligns the last partition's end: take its size from the table, not from arithmetic.
root_sectors=$(sfdisk -d "$disk" | sed -n 's/.*start= *268288, size= *\([0-9]*\).*/\1/p')
[ -n "$root_sectors" ] || { echo "build-base: cannot read the root partition's size" >&2; exit 1; }

echo "build-base: EFI system partition"
esp="$work/esp.img"
mkfs.fat -C -F 32 -i "${esp_id/-/}" "$esp" $((262144 / 2)) >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -i "$esp" "$root/usr/lib/shim/shimx64.efi.signed" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$root/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" ::/EFI/BOOT/grubx64.efi
mcopy -i "$esp" "$root/usr/lib/shim/mmx64.efi.signed" ::/EFI/BOOT/mmx64.efi
# Debian's signed GRUB reads its config from /EFI/debian on the ESP.
cat > "$work/efi-grub.cfg" <<EFICFG
search --no-floppy --fs-uuid --set=root $root_uuid
set prefix=(\$root)/boot/grub
configfile (\$root)/boot/grub/grub.cfg
EFICFG
mcopy -i "$esp" "$work/efi-grub.cfg" ::/EFI/debian/grub.cfg
mcopy -i "$esp" "$work/efi-grub.cfg" ::/EFI/BOOT/grub.cfg

echo "build-base: BIOS GRUB core image"
cat > "$root/tmp/core.cfg" <<CORE
search --no-floppy --fs-uuid --set=root $root_uuid
set prefix=(\$root)/boot/grub
configfile (\$root)/boot/grub/grub.cfg
CORE
chroot "$root" grub-mkimage -O i386-pc -o /tmp/core.img -c /tmp/core.cfg -p /boot/grub \
  biosdisk part_gpt ext2 search search_fs_uuid configfile linux normal serial terminal echo
cp "$root/usr/lib/grub/i386-pc/boot.img" "$work/boot.img"
cp "$root/tmp/core.img" "$work/core.img"
rm -f "$root/tmp/core.img" "$root/tmp/core.cfg"
core_sectors=$(( ($(stat -c %s "$work/core.img") + 511) / 512 ))
[ "$core_sectors" -le 4096 ] || { echo "core.img too large" >&2; exit 1; }
# boot.img keeps the protective MBR's partition table (bytes 440-511) and is told where
# core.img starts (its kernel-sector field at 0x5c); core.img's first sector, diskboot.img,
# gets the blocklist of the rest (at 0x1f4 of that sector), as grub-bios-setup would write.
dd if="$work/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$disk" bs=512 seek=2048 conv=notrunc status=none
python3 - "$disk" "$core_sectors" <<'PY'
import struct, sys
disk, n = sys.argv[1], int(sys.argv[2])
with open(disk, 'r+b') as f:
    f.seek(0x5c)
    f.write(struct.pack('<Q', 2048))
    f.seek(2048 * 512 + 0x1f4)
    f.write(struct.pack('<QH', 2049, n - 1))
PY

echo "build-base: root filesystem"
mkfs.ext4 -q -F -U "$root_uuid" -L moat-root -d "$root" "$work/root.img" "$((root_sectors / 2))k"
dd if="$esp" of="$disk" bs=512 seek=6144 conv=notrunc status=none
dd if="$work/root.img" of="$disk" bs=512 seek=268288 conv=notrunc status=none

qemu-img convert -O qcow2 "$disk" "$out"
echo "build-base: wrote $out ($(du -h "$out" | cut -f1))"
