#!/usr/bin/env bash
# Runs every test: host unit tests of all crates, the EFI test applications'
# build, and the VM tests that boot the firmware under QEMU.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/scripts/setup.sh

cargo firmware
export VMFW_FIRMWARE="$PWD/target/target/release/vmfw"
cargo test --workspace --exclude vmfw --no-fail-fast
