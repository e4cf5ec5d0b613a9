#!/usr/bin/env bash
# Sets up the machine, builds the firmware and the default disk image
# (Debian's signed shim + GRUB + kernel + busybox initramfs, and a BLS entry,
# on a GPT/FAT ESP), then boots it under QEMU with the serial console here.
# Quit QEMU with Ctrl-a x.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/scripts/setup.sh

cargo firmware
firmware="$PWD/target/target/release/vmfw"
image=$(cargo run -q -p vm-tests --bin mkimage -- default | tail -n 1)
echo "booting $image with $firmware"

accel=tcg
# KVM when it works here; TCG otherwise.
if [ -w /dev/kvm ] && [ "${VMFW_ACCEL:-}" = kvm ]; then accel=kvm; fi
# Boot a scratch copy so the cached image stays pristine.
scratch=$(mktemp --suffix=.img)
trap 'rm -f "$scratch"' EXIT
cp --reflink=auto "$image" "$scratch"
qemu-system-x86_64 -machine q35,accel=$accel -m 1024 -nodefaults -display none \
  -kernel "$firmware" \
  -drive if=none,id=disk0,file="$scratch",format=raw \
  -device virtio-blk-pci,drive=disk0,disable-legacy=on \
  -serial mon:stdio
