#!/usr/bin/env bash
# Re-captures the SeaBIOS event-log fixtures (see ../README.md): boots Debian
# 12's kernel directly under QEMU (so SeaBIOS is the firmware) with a swtpm
# TPM 2.0, and splits what ./init prints on the serial console into
# OUT/NAME.log (binary_bios_measurements), OUT/NAME.pcrs and OUT/NAME.TPM2.
#
#   run.sh OUT NAME tpm-crb|tpm-tis [BANKS]   # BANKS for swtpm_setup, e.g. sha256
#
# With FIRMWARE=ovmf, Debian's OVMF (/usr/share/OVMF/OVMF_CODE_4M.fd, a copy
# of its empty variable store) runs instead of SeaBIOS and loads the kernel
# itself (QEMU's -kernel through OVMF's loader).
#
# Needs qemu-system-x86, swtpm, swtpm-tools, cpio and the busybox and kernel
# packages the VM tests cache in .cache/debs/bookworm/root (unpacked there by
# the tests; `cargo test -p vm-tests --test direct` does it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
out=$1 name=$2 device=$3 banks=${4:-}
debs=$root/.cache/debs/bookworm/root
kernel=$(ls "$debs"/linux-image-*/boot/vmlinuz-* | head -1)
busybox=$(ls "$debs"/busybox-static*/bin/busybox | head -1)
work=$(mktemp -d)
swtpm_pid=
cleanup() {
    [ -z "$swtpm_pid" ] || kill "$swtpm_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/initrd/bin" "$work/state" "$out"
cp "$busybox" "$work/initrd/bin/busybox"
cp "$here/init" "$work/initrd/init"
(cd "$work/initrd" && find . | cpio -o -H newc --quiet | gzip) > "$work/initrd.gz"

if [ -n "$banks" ]; then
    swtpm_setup --tpm2 --tpmstate "$work/state" --pcr-banks "$banks" >/dev/null
fi
swtpm socket --tpm2 --ctrl type=unixio,path="$work/sock" --tpmstate dir="$work/state" &
swtpm_pid=$!
for _ in $(seq 50); do [ -S "$work/sock" ] && break; sleep 0.1; done

firmware=()
if [ "${FIRMWARE:-seabios}" = ovmf ]; then
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"
    firmware=(-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
        -drive if=pflash,format=raw,unit=1,file="$work/vars.fd")
fi
timeout 400 qemu-system-x86_64 -machine q35,accel=tcg -m 512 -display none \
    -serial stdio -nodefaults -no-reboot "${firmware[@]}" \
    -chardev socket,id=c,path="$work/sock" -tpmdev emulator,id=t,chardev=c \
    -device "$device",tpmdev=t \
    -kernel "$kernel" -initrd "$work/initrd.gz" -append "console=ttyS0 panic=-1" |
    tr -d '\r' > "$work/serial.txt"

section() { sed -n "/^BEGIN-$1\$/,/^END-$1\$/p" "$work/serial.txt" | sed '1d;$d'; }
section LOG | base64 -d > "$out/$name.log"
section TPM2-TABLE | base64 -d > "$out/$name.TPM2"
section PCRS > "$out/$name.pcrs"
echo "capture: $out/$name.{log,pcrs,TPM2}: $(stat -c %s "$out/$name.log") bytes of log"
