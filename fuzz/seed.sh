#!/usr/bin/env bash
# Generates the seed corpora in fuzz/corpus/<target>/ from real files: the
# Debian shim/GRUB/kernel/systemd-boot packages the VM tests cache in
# .cache/debs (fetched with `apt-get download` when missing), the EFI test
# applications when built, and small disks made with sgdisk, sfdisk, mkfs.fat
# and mtools, plus small synthetic inputs where no real file is at hand: ACPI
# and SMBIOS tables laid out as QEMU builds them, a vars.bin, a UKI-shaped PE,
# HII package lists and terminal input. Nothing here is committed; re-run it
# any time.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
corpus=$PWD/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in start_info gpt mbr eltorito fat pe bzimage bls load_option device_path device_path_text acpi smbios vars journal uki hii console_input cmdline secure_boot event_log tpm; do
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
# The test applications are there only once built; find fails on a missing
# directory, which would end the script under pipefail.
pe_dirs=("$work/root")
apps=$root/tests/efi-apps/target/x86_64-unknown-uefi/release
[ -d "$apps" ] && pe_dirs+=("$apps")
find "${pe_dirs[@]}" \
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

# An ISO image with a BIOS-less EFI El Torito entry, from CD sector 16 on
# (the eltorito target's input after its mode byte, here 0: 2048-byte blocks).
mkdir -p "$work/iso"
mkfs.fat -C "$work/iso/efi.img" 64 >/dev/null
xorriso -as mkisofs -quiet -o "$work/cd.iso" -e efi.img -no-emul-boot "$work/iso" 2>/dev/null
{ printf '\0'; dd if="$work/cd.iso" bs=2048 skip=16 count=31 status=none; } >"$corpus/eltorito/efi.iso"

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
# UKI: the systemd stub's PE headers when the package is there, and a small
# UKI-shaped PE with .osrel and .uname inside the first 4 KiB.
for stub in "$work"/root/usr/lib/systemd/boot/efi/linuxx64.efi.stub; do
    [ -f "$stub" ] && head -c 4096 "$stub" >"$corpus/uki/linuxx64.efi.stub-head"
done

# Synthetic firmware tables, laid out as QEMU does, with valid checksums;
# each target's first byte is its mode (see the target's header comment).
python3 - "$corpus" <<'PY'
import struct, sys, zlib
corpus = sys.argv[1]
def write(target, name, data):
    open(f'{corpus}/{target}/{name}', 'wb').write(data)
def sum_to_zero(b, at, start=0, end=None):
    end = len(b) if end is None else end
    b[at] = 0
    b[at] = (-sum(b[start:end])) & 0xff

# ACPI (input after the mode byte = memory from 0xe0000): RSDP, XSDT, FADT
# (rev 6, reset register, PM blocks), MCFG, APIC, DSDT with Name(_S5_, ...).
base = 0xe0000
def table(sig, body, rev=1):
    b = bytearray(sig + struct.pack('<IB', 36 + len(body), rev) + b'\0' + b'BOCHS ' + b'BXPC    '
                  + struct.pack('<I', 1) + b'BXPC' + struct.pack('<I', 1) + body)
    sum_to_zero(b, 9)
    return bytes(b)
def gas(space, width, address, access=0):
    return struct.pack('<BBBBQ', space, width, 0, access, address)
fadt = bytearray(276 - 36)
def put(at, data): fadt[at - 36:at - 36 + len(data)] = data
put(40, struct.pack('<I', base + 0x400))
put(64, struct.pack('<I', 0x604)); put(76, struct.pack('<I', 0x608))
put(89, bytes([2])); put(91, bytes([4])); put(108, bytes([0x32]))
put(112, struct.pack('<I', (1 << 8) | (1 << 10)))
put(116, gas(1, 8, 0xcf9)); put(128, bytes([6]))
put(140, struct.pack('<Q', base + 0x400))
put(172, gas(1, 16, 0x604)); put(208, gas(1, 32, 0x608))
aml = b'\x10\x05\\_SB_' + b'\x08_S5_\x12\x07\x04\x0a\x05\x00\x00\x00' + b'\x08_S4_\x12\x04\x01\x0a\x04'
tables = {0x100: table(b'FACP', bytes(fadt), 6),
          0x300: table(b'MCFG', bytes(8) + struct.pack('<QHBBI', 0xb0000000, 0, 0, 0xff, 0)),
          0x340: table(b'APIC', struct.pack('<II', 0xfee00000, 1) + bytes([0, 8, 0, 0, 1, 0, 0, 0])),
          0x400: table(b'DSDT', aml, 2)}
def memory(rsdp, root_at, root):
    mem = bytearray(0x400 + len(tables[0x400]))
    mem[0:len(rsdp)] = rsdp
    mem[root_at:root_at + len(root)] = root
    for at, t in tables.items():
        mem[at:at + len(t)] = t
    return bytes(mem)
xsdt = table(b'XSDT', b''.join(struct.pack('<Q', base + a) for a in (0x100, 0x300, 0x340)))
rsdp = bytearray(b'RSD PTR \0BOCHS \x02' + struct.pack('<I', 0) + struct.pack('<IQ', 36, base + 0x40) + bytes(4))
sum_to_zero(rsdp, 8, 0, 20)
sum_to_zero(rsdp, 32)
write('acpi', 'qemu-xsdt', b'\1' + memory(bytes(rsdp), 0x40, xsdt))
write('acpi', 'qemu-xsdt-checked', b'\0' + memory(bytes(rsdp), 0x40, xsdt))
rsdt = table(b'RSDT', b''.join(struct.pack('<I', base + a) for a in (0x100, 0x300, 0x340)))
rsdp1 = bytearray(b'RSD PTR \0BOCHS \x00' + struct.pack('<I', base + 0x40))
sum_to_zero(rsdp1, 8)
write('acpi', 'qemu-rsdt', b'\1' + memory(bytes(rsdp1), 0x40, rsdt))

# SMBIOS (input after the mode byte = the F segment from 0xf0000): a 3.0
# entry point and a 2.8 one, each followed by BIOS, System and end structures.
def structure(kind, handle, formatted, strings):
    s = bytes([kind, 4 + len(formatted)]) + struct.pack('<H', handle) + formatted
    return s + (b''.join(x + b'\0' for x in strings) or b'\0') + b'\0'
structures = (structure(0, 0, bytes([1, 2, 0, 0xe8, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                        [b'vmfw', b'1.0'])
              + structure(1, 0x100, bytes([1, 2, 3, 4]) + bytes(16) + bytes([6, 0, 0]),
                          [b'QEMU', b'Standard PC (Q35 + ICH9, 2009)', b'pc-q35-9.0'])
              + structure(127, 0x7f00, b'', []))
sm3 = bytearray(b'_SM3_\0\x18\x03\x00\x00\x01\x00' + struct.pack('<IQ', len(structures), 0xf0020))
sum_to_zero(sm3, 5)
write('smbios', 'sm3', b'\1' + bytes(sm3) + bytes(8) + structures)
dmi = bytearray(b'_DMI_\0' + struct.pack('<HIH', len(structures), 0xf0020, 3) + b'\x28')
sum_to_zero(dmi, 5)
sm2 = bytearray(b'_SM_\0\x1f\x02\x08' + struct.pack('<H', 0x100) + bytes(6) + bytes(dmi) + b'\0')
sum_to_zero(sm2, 4, 0, 0x1f)
write('smbios', 'sm2', b'\1' + bytes(sm2) + structures)

# vars.bin: two slots of 1024 bytes (mode byte 60 << 1 | seal), store images
# of generations 3 and 4 with Boot0001, BootOrder and a vendor variable.
def record(attributes, guid, name, data):
    name = (name + '\0').encode('utf-16-le')
    return struct.pack('<I', attributes) + guid + struct.pack('<II', len(name), len(data)) + name + data
global_guid = bytes.fromhex('61dfe48bca93d211aa0d00e098032b8c')
vendor_guid = bytes(range(16))
def image(generation, records):
    body = b''.join(records)
    head = bytearray(b'VMFWVAR\0' + struct.pack('<IIII', 1, len(body), 0, generation))
    crc = zlib.crc32(bytes(head) + body)
    head[16:20] = struct.pack('<I', crc)
    return (bytes(head) + body).ljust(1024, b'\0')
nv = 0x7
option = struct.pack('<IH', 1, 4) + 'debian\0'.encode('utf-16-le') + bytes([0x7f, 0xff, 4, 0])
older = image(3, [record(nv, global_guid, 'Boot0001', option), record(nv, global_guid, 'BootOrder', b'\1\0')])
newer = image(4, [record(nv, global_guid, 'Boot0001', option),
                  record(nv, global_guid, 'BootOrder', b'\1\0\0\0'),
                  record(0x3, vendor_guid, 'Setting', b'on')])
write('vars', 'two-slots', bytes([60 << 1]) + older + newer)
write('vars', 'two-slots-sealed', bytes([60 << 1 | 1]) + older + newer)
write('vars', 'one-slot', bytes([60 << 1]) + newer[:200])

# Variable journal (reserved RAM): header with base generation 4, sequence
# 2, the newer store image as payload; mode byte: disk generation 4 << 1.
def journal(base, payload):
    head = bytearray(b'VMFWJRN\0' + struct.pack('<IIIIII', 1, len(payload), 0, base, 2, 0))
    head[16:20] = struct.pack('<I', zlib.crc32(bytes(head) + payload))
    return bytes(head) + payload
write('journal', 'applies', bytes([4 << 1]) + journal(4, newer).ljust(2048, b'\0'))
write('journal', 'stale-sealed', bytes([5 << 1 | 1]) + journal(4, newer))
write('journal', 'empty', bytes([0]) + bytes(64))

# UKI: DOS header, PE header, four sections; .osrel and .uname at 0x400.
osrel = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
uname = b'6.1.0-57-amd64\0'
pe = bytearray(0x400)
pe[0:2] = b'MZ'; pe[0x3c:0x40] = struct.pack('<I', 0x80); pe[0x80:0x84] = b'PE\0\0'
sections = [(b'.osrel', len(osrel), 0x200, 0x400), (b'.uname', len(uname), 0x200, 0x600),
            (b'.cmdline', 0, 0x10, 0x800), (b'.linux', 0x100000, 0x200, 0x800)]
pe[0x84:0x88] = struct.pack('<HH', 0x8664, len(sections)); pe[0x94:0x96] = struct.pack('<H', 0xf0)
for i, (name, vsize, rsize, offset) in enumerate(sections):
    at = 0x84 + 20 + 0xf0 + 40 * i
    pe[at:at + 8] = name.ljust(8, b'\0')
    pe[at + 8:at + 12] = struct.pack('<I', vsize)
    pe[at + 16:at + 24] = struct.pack('<II', rsize, offset)
uki = bytes(pe) + osrel.ljust(0x200, b'\0') + uname.ljust(0x200, b'\0') + b'quiet\0'
write('uki', 'uki', uki)

# HII (first two bytes: the string id asked for): a package list with two
# string packages using every block kind, and a GUID package.
def ucs2(s): return (s + '\0').encode('utf-16-le')
def string_package(language, blocks):
    header = struct.pack('<II', 0, 0) + bytes(32) + struct.pack('<H', 1) + language.encode() + b'\0'
    package = bytearray(4) + header + blocks + b'\0'
    package[8:12] = struct.pack('<I', 4 + len(header))
    package[4:8] = struct.pack('<I', 4 + len(header))
    package[0:4] = struct.pack('<I', len(package) | (0x04 << 24))
    return bytes(package)
blocks = (b'\x14' + ucs2('en-US') + b'\x16' + struct.pack('<H', 2) + ucs2('two') + ucs2('three')
          + b'\x22\x02' + b'\x10six\0' + b'\x20\x02\x00' + b'\x30\x40\x03' + b'\x15\x00' + ucs2('eight')
          + b'\x21\x03\x00' + b'\x31\x41\x05\x00\x00' + b'\x17\x00' + struct.pack('<H', 1) + ucs2('twelve'))
guid_package = struct.pack('<I', 20 | (0x01 << 24)) + bytes(range(16))
body = string_package('en-US', blocks) + string_package('fr-FR', b'\x14' + ucs2('un')) + guid_package
end = struct.pack('<I', 4 | (0xdf << 24))
package_list = bytes(range(16)) + struct.pack('<I', 20 + len(body) + 4) + body + end
for sid in (1, 2, 7, 8, 12):
    write('hii', f'list-id{sid}', struct.pack('<H', sid) + package_list)

# Serial console input: byte, delay pairs (delay 60 passes the ESC timeout).
def keys(data, delay=0): return b''.join(bytes([b, delay]) for b in data)
write('console_input', 'arrows', keys(b'\x1b[A\x1b[B\x1b[C\x1b[D\x1bOH\x1bOF'))
write('console_input', 'function-keys', keys(b'\x1bOP\x1b[15~\x1b[24~\x1b[[A\x1b[2~\x1b[3~\x1b[5~\x1b[6~'))
write('console_input', 'modifiers', keys(b'\x1b[1;5C\x1b[1;2A\x1b[3;3~'))
write('console_input', 'text-esc', keys(b'linux\r') + bytes([0x1b, 60]) + keys(b'q\x7f\x08\t'))

# Firmware command lines: quotes, escapes, every option the firmware reads.
for i, line in enumerate([
        b'kernel=\\vmlinuz initrd=/initrd.img cmdline="console=ttyS0 root=/dev/vda2" linux-boot=protocol',
        b'log=debug pci=reassign boot=bls menu=5 bootnext=0003 path=/EFI/debian/grubx64.efi',
        b'kernel="\\my kernels\\vmlinuz" cmdline="a=\\"b c\\" \\\\d path=\\X.EFI"',
        b'kernel=\\nope cmdline="quiet']):
    write('cmdline', f'line{i}', line)

# Device-path text: mode byte 0 and the UEFI SCT's spellings of §10.6.1
# forms; mode byte 1 and node payloads.
for i, text in enumerate([
        'PciRoot(0x0)/Pci(0x1,0x0)/HD(1,GPT,ED8F9A47-193B-4941-AAF6-5839B39BFBE1,0x800,0x20000)/\\EFI\\BOOT\\BOOTX64.EFI',
        'AcpiEx(PNPABCD,PNP0000,0,,1234,5678)', 'AcpiExp(PNPABCD,PNP0001,5678)',
        'SAS(1234567890,0xABCDEF,2000,SAS,External,Direct,0x6A,0)', 'Uart(115200,8,D,1.5)',
        'iSCSI(MyTargetName,0x12AB,0x0000005678000000,CRC32C,None,CHAP_BI,TCP)',
        'IPv6(1234:5678:ABCD:1234:5678:ABCD:1234:5678,UDP,Static,::1,8,fe80::2)',
        'Dns(192.168.22.100,192.168.22.101)', 'Wi-Fi(It\'s a SSID)', 'BBS(Floppy,MyId,0x12AB)',
        'NVMe(0xAB124BEF,AB-CD-EF-01-23-45-67-89),UsbWwid(0x1,0x2,0x3,"SN")/Uri(http://a/b)',
        'RamDisk(0xABCD1234C0000000,0xABCD1234CFFFFFFF,1,E8AAED38-1815-4E4F-BCB5-2E3DBD160C9C)']):
    write('device_path_text', f'text{i}', b'\0' + text.encode())
for i, node in enumerate([bytes([3, 12]) + bytes(23), bytes([3, 10]) + bytes.fromhex('b4dd87d48b00d911afdc001083ffca4d') + bytes(24),
                          bytes([2, 2]) + bytes(12) + b'a\0b\0c\0', bytes([4, 1]) + bytes(36) + b'\2\2']):
    write('device_path_text', f'node{i}', b'\1' + node)

# Secure Boot (mode byte first): the small signed test images (0: digest and
# certificate table, 3: the whole policy; Debian's 1 MB shim would make every
# execution hash a megabyte), signature lists built from
# the test certificates and hashes (1), the SignedData blobs (2).
import os, struct
sb = os.path.join(os.path.dirname(corpus), '..', 'secure-boot', 'tests', 'data')
def sb_read(name):
    return open(os.path.join(sb, name), 'rb').read()
def siglist(guid, items):
    size = 16 + len(items[0])
    body = b''.join(bytes([0x11] * 16) + d for d in items)
    return guid + struct.pack('<III', 28 + len(body), 0, size) + body
x509 = bytes.fromhex('a159c0a5e494a74a87b5ab155c2bf072')
sha256 = bytes.fromhex('2616c4c14c509240aca941f936934328')
for name in ['signed.efi', 'chain.efi', 'unsigned.efi']:
    write('secure_boot', f'image-{name}', b'\0' + sb_read(name))
    write('secure_boot', f'policy-{name}', b'\3' + sb_read(name))
for name in ['payload.p7', 'payload-noattr.p7']:
    write('secure_boot', f'p7-{name}', b'\2' + sb_read(name))
certs = siglist(x509, [sb_read('db-ca.der')]) + siglist(x509, [sb_read('signer.der')])
hashes = siglist(sha256, [bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32])
write('secure_boot', 'lists-certs', b'\1' + certs + hashes)
write('secure_boot', 'lists-hashes', b'\1' + hashes + hashes)
PY

# Event logs (mode byte first): the SeaBIOS logs of tcg/tests/data as
# logs (0) and as a log area with a zeroed tail (1), QEMU's TPM2 tables (2).
tcg_data=$root/tcg/tests/data
for log in "$tcg_data"/*.log; do
    name=$(basename "$log" .log)
    { printf '\0'; cat "$log"; } > "$corpus/event_log/log-$name"
    { printf '\1'; cat "$log"; head -c 1024 /dev/zero; } > "$corpus/event_log/area-$name"
done
for table in "$tcg_data"/*.TPM2; do
    { printf '\2'; cat "$table"; } > "$corpus/event_log/table-$(basename "$table")"
done

# TPM: responses as swtpm sends them (mode 0), and the register reads of a
# CRB at rest then running one command, as QEMU's tpm-crb answers (mode 1).
python3 - "$corpus/tpm" <<'PY'
import os, struct, sys
out = sys.argv[1]
def resp(tag, rc, body):
    return struct.pack('>HII', tag, 10 + len(body), rc) + body
banks = b''.join(struct.pack('>HB', alg, 3) + b'\xff\xff\xff' for alg in (4, 11, 12, 13))
caps = resp(0x8001, 0, b'\0' + struct.pack('>II', 5, 4) + banks)
read = resp(0x8001, 0, struct.pack('>IIHB', 9, 1, 11, 3) + b'\0\0\x02' + struct.pack('>IH', 1, 32) + bytes(32))
extend = resp(0x8002, 0, bytes([0, 0, 0, 0, 0, 0, 1, 0, 0]))
for name, data in [('caps', caps), ('pcr-read', read), ('extend', extend),
                   ('initialize', resp(0x8001, 0x100, b''))]:
    open(os.path.join(out, name), 'wb').write(b'\0' + data)
crb = struct.pack('<IIIIII', 0xfed40080, 0, 0xf80, 0xfed40080, 0, 0xf80)
crb += struct.pack('<IIIIII', 0x82, 1, 0, 0, 0, 0) + extend
open(os.path.join(out, 'crb'), 'wb').write(b'\1' + crb)
open(os.path.join(out, 'fifo'), 'wb').write(b'\2' + bytes([0xa0]) + struct.pack('<I', 0x40 | 0x80 | 64 << 8) * 4)
PY
for target in "$corpus"/*; do
    echo "seed: $(basename "$target"): $(ls "$target" | wc -l) files"
done
