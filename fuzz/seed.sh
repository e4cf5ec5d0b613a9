#!/usr/bin/env bash
# Generates the seed corpora in fuzz/corpus/<target>/ from real files: the
# Debian shim/GRUB/kernel/systemd-boot packages the VM tests cache in
# .cache/debs (fetched with `apt-get download` when missing), the EFI test
# applications when built, and small disks made with sgdisk, sfdisk, mkfs.fat
# and mtools. Nothing here is committed; re-run it any time.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
corpus=$PWD/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in start_info gpt mbr fat pe bzimage bls load_option device_path; do
    mkdir -p "$corpus/$target"
done

# Real binaries from the Debian packages.
debs=$root/.cache/debs/bookworm
mkdir -p "$debs"
for package in shim-signed grub-efi-amd64-signed systemd-boot-efi linux-image-6.1.0-57-amd64; do
    if ! ls "$debs/${package}"_*.deb >/dev/null 2>&1; then
        (cd "$debs" && apt-get download "$package" >/dev/null 2>&1) || echo "seed: $package unavailable"
    fi
done
for deb in "$debs"/*.deb; do
    case $deb in *shim-signed*|*grub-efi-amd64-signed*|*systemd-boot-efi*|*linux-image*) ;; *) continue ;; esac
    dpkg-deb -x "$deb" "$work/root"
done
find "$work/root" "$root/tests/efi-apps/target/x86_64-unknown-uefi/release" \
    -maxdepth 6 \( -name '*.efi' -o -name '*.efi.signed' \) -type f 2>/dev/null |
    while read -r pe; do
        cp "$pe" "$corpus/pe/$(basename "$pe")"
    done
for kernel in "$work"/root/boot/vmlinuz-*; do
    [ -f "$kernel" ] || continue
    # The setup header and PE headers live in the first pages.
    head -c 65536 "$kernel" >"$corpus/bzimage/$(basename "$kernel")"
    head -c 65536 "$kernel" >"$corpus/pe/$(basename "$kernel")-head"
done

# Disks: a GPT with three partitions, an MBR with an extended chain.
disk=$work/gpt.img
truncate -s 64K "$disk"
sgdisk -a 1 -n 1:34:63 -t 1:EF00 -c 1:ESP -n 2:64:80 -t 2:8300 -n 3:81:90 "$disk" >/dev/null
cp "$disk" "$corpus/gpt/gpt3.img"
cp "$disk" "$corpus/mbr/protective.img"
disk=$work/mbr.img
truncate -s 64K "$disk"
printf 'label: dos\n2048,16,ef\n,16,83\n,,5\n,8,83\n,8,83\n' | sed 's/^2048/1/' |
    sfdisk -q "$disk" >/dev/null 2>&1 || printf 'label: dos\n1,16,ef\n' | sfdisk -q "$disk"
cp "$disk" "$corpus/mbr/extended.img"

# FAT12 volume with the directory layout the boot manager walks, long names
# and a file spanning clusters.
fat=$work/fat.img
mkfs.fat -C "$fat" 128 >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$fat" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
printf 'MZ' | mcopy -i "$fat" - ::/EFI/BOOT/BOOTX64.EFI
printf 'timeout 0\ndefault debian*\n' | mcopy -i "$fat" - ::/loader/loader.conf
printf 'title Debian\nlinux /vmlinuz\noptions console=ttyS0\n' |
    mcopy -i "$fat" - "::/loader/entries/Debian GNU Linux.conf"
head -c 5000 /dev/zero | tr '\0' 'x' | mcopy -i "$fat" - ::/multi-cluster.txt
cp "$fat" "$corpus/fat/fat12.img"

# BLS entries (first byte 0 = entry, 1 = loader.conf; then the file name line).
printf '\0debian-6.1.0+3-1.conf\ntitle Debian GNU/Linux 12\nversion 6.1.0-57-amd64\nmachine-id 0123456789abcdef0123456789abcdef\nsort-key debian\nlinux /vmlinuz-6.1.0\ninitrd /initrd.img-6.1.0\ninitrd /extra.img\noptions root=/dev/vda2 console=ttyS0\narchitecture x64\n' \
    >"$corpus/bls/entry"
printf '\0uki.conf\ntitle UKI\nefi /EFI/Linux/uki.efi\ndevicetree /dtb\n' >"$corpus/bls/efi-entry"
printf '\1timeout 5\ndefault @saved\nconsole-mode max\neditor no\n' >"$corpus/bls/loader.conf"

# EFI_LOAD_OPTION, BootOrder and device paths.
python3 - "$corpus" <<'PY'
import struct, sys
corpus = sys.argv[1]
def node(t, s, data): return struct.pack('<BBH', t, s, 4 + len(data)) + data
end = node(0x7f, 0xff, b'')
pci = node(2, 1, struct.pack('<II', 0x0a0341d0, 0)) + node(1, 1, bytes([0, 4]))
hd = node(4, 1, struct.pack('<IQQ', 1, 2048, 131072) + bytes(range(16)) + bytes([2, 2]))
fp = node(4, 4, '\\EFI\\BOOT\\BOOTX64.EFI\0'.encode('utf-16-le'))
vendor = node(4, 3, bytes(range(16)) + b'abc')
paths = {'file': pci + hd + fp + end, 'vendor': vendor + end, 'two-instances': hd + node(0x7f, 1, b'') + pci + end}
for name, path in paths.items():
    open(f'{corpus}/device_path/{name}', 'wb').write(path)
desc = 'debian\0'.encode('utf-16-le')
path = hd + fp + end
option = struct.pack('<IH', 1, len(path)) + desc + path + b'opt'
open(f'{corpus}/load_option/boot0001', 'wb').write(option)
open(f'{corpus}/load_option/bootorder', 'wb').write(struct.pack('<3H', 1, 0, 0x80))
# hvm_start_info v1 at 0x1000: header, memory map, cmdline, one module.
base = 0x1000
memmap = struct.pack('<QQII', 0, 0x9fc00, 1, 0) + struct.pack('<QQII', 0x100000, 0x3ff00000, 1, 0) \
    + struct.pack('<QQII', 0xfeffc000, 0x4000, 2, 0)
cmdline = b'log=debug boot=bls\0'
module = struct.pack('<QQQQ', 0x200000, 0x1000, 0, 0)
header_len = 56
mm_addr = base + header_len
cl_addr = mm_addr + len(memmap)
mod_addr = cl_addr + len(cmdline)
header = struct.pack('<IIIIQQQQII', 0x336ec578, 1, 0, 1, mod_addr, cl_addr, 0xf5a90, mm_addr, 3, 0)
open(f'{corpus}/start_info/qemu-like', 'wb').write(header + memmap + cmdline + module)
PY
for target in "$corpus"/*; do
    echo "seed: $(basename "$target"): $(ls "$target" | wc -l) files"
done
