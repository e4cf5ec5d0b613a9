#!/usr/bin/env bash
# Installs what building and testing the firmware needs on Debian: the pinned
# nightly toolchain (rust-toolchain.toml) and the Debian packages the VM
# tests use. Idempotent and quick when everything is present.
set -euo pipefail
cd "$(dirname "$0")/../.."

# g++: libfuzzer-sys compiles libFuzzer for the fuzz targets. debootstrap: the
# installed-Debian test image (tests/scripts/mk-installed-debian.sh).
# openssl, sbsigntool: the Secure Boot test keys and signed images
# (tests/tests/secure_boot.rs, secure-boot/tests/data/make.sh).
# swtpm, swtpm-tools: the guests' TPM 2.0 (tcg/tests/data/capture, and the
# VM tests' tests/src/swtpm.rs); tpm2-tools: tpm2_eventlog, an independent
# reader of our event logs (tcg/tests/tpm2_tools.rs).
packages=(qemu-system-x86 ovmf mtools dosfstools gdisk fdisk xz-utils cpio binutils apt-utils g++ debootstrap openssl sbsigntool grub-common xorriso swtpm swtpm-tools tpm2-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v rustup >/dev/null; then
  echo "setup: rustup is required (https://rustup.rs); install it, then re-run" >&2
  exit 1
fi
# RUSTUP_AUTO_INSTALL may be off: install the pinned toolchain explicitly.
rustup toolchain install >/dev/null
