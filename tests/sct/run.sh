#!/usr/bin/env bash
# Runs the UEFI SCT (tianocore/edk2-test) under this firmware or under edk2 OVMF
# and summarizes the results. See tests/sct/README.md.
#
#   tests/sct/run.sh <vmfw|ovmf> <category|NameBBTest>...
#
# Categories: boot, runtime, devpath, storage, console, hii, misc,
# services (= boot runtime), protocols (= devpath storage console hii misc),
# all (= services protocols); or a test file name such as TimeServicesBBTest.
#
# Environment (all optional):
#   SCT_PACKAGE      the built SCT tree (the directory holding SCT.efi)
#                    [/work/sct/ws/Build/UefiSct/RELEASE_GCC/SctPackageX64/X64]
#   SCT_SHELL        the UEFI Shell booted as \EFI\BOOT\BOOTX64.EFI
#                    [the Debian efi-shell-x64 package the VM tests cache in .cache/]
#   VMFW_FIRMWARE    our firmware ELF [target/target/release/vmfw]
#   OVMF_CODE, OVMF_VARS  [/usr/share/OVMF/OVMF_{CODE,VARS}_4M.fd]
#   SCT_OUT          where the run goes [/work/sct/runs/<firmware>-<categories>-<time>]
#   SCT_TIMEOUT      seconds before the VM is killed [21600]
#   SCT_MEMORY_MIB   guest memory [2048]
#   SCT_STALL        seconds of serial silence after which the host resets the
#                    VM, as the SCT's own watchdog would: the SCT then records
#                    the hung case as failed and continues with the next [600]
#
# The run directory ends up holding disk.img (the ESP after the run), serial.log,
# qemu.log, the extracted Sct/Log and Sct/Report trees, and summary.txt. The
# exit status is 0 when the SCT ran to its end (whatever the test results).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
firmware="$1"; shift
case "$firmware" in vmfw|ovmf) ;; *) usage ;; esac

# Test files (the SCT's Test/<name>.efi) each category selects.
category_tests() {
  case "$1" in
    boot) echo EventTimerTaskPriorityServicesBBTest MemoryAllocationServicesBBTest \
               ProtocolHandlerServicesBBTest ImageServicesBBTest MiscBootServicesBBTest ;;
    runtime) echo VariableServicesBBTest TimeServicesBBTest MiscRuntimeServicesBBTest ;;
    devpath) echo DevicePathBBTest DevicePathUtilitiesBBTest DevicePathToTextBBTest \
                  DevicePathFromTextBBTest ;;
    storage) echo BlockIoBBTest BlockIo2BBTest DiskIoBBTest DiskIo2BBTest \
                  SimpleFileSystemBBTest PartitionInfoBBTest ;;
    console) echo SimpleTextInBBTest SimpleTextInputExBBTest SimpleTextOutBBTest SerialIoBBTest ;;
    hii) echo HIIDatabaseBBTest HIIStringBBTest ;;
    misc) echo LoadedImageBBTest UnicodeCollation2BBTest ComponentName2BBTest ;;
    services) category_tests boot; category_tests runtime ;;
    protocols) for c in devpath storage console hii misc; do category_tests "$c"; done ;;
    all) category_tests services; category_tests protocols ;;
    *BBTest|*Test) echo "$1" ;;
    *) echo "run.sh: unknown category '$1'" >&2; return 1 ;;
  esac
}

tests=()
for category in "$@"; do
  for t in $(category_tests "$category"); do tests+=("$t"); done
done

sct="${SCT_PACKAGE:-/work/sct/ws/Build/UefiSct/RELEASE_GCC/SctPackageX64/X64}"
[ -f "$sct/SCT.efi" ] || { echo "run.sh: no SCT.efi in $sct (build the SCT: tests/sct/README.md)" >&2; exit 1; }
shell="${SCT_SHELL:-}"
if [ -z "$shell" ]; then
  shell="$(find -L "$repo/.cache/debs/trixie/root" -path '*efi-shell-x64*' -name shellx64.efi 2>/dev/null | sort | tail -1)"
fi
[ -f "$shell" ] || { echo "run.sh: no UEFI Shell; set SCT_SHELL (or run the uefi_shell VM test once to cache it)" >&2; exit 1; }
vmfw="${VMFW_FIRMWARE:-$repo/target/target/release/vmfw}"
ovmf_code="${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}"
ovmf_vars="${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}"
if [ "$firmware" = vmfw ]; then
  [ -f "$vmfw" ] || { echo "run.sh: no firmware at $vmfw (cargo firmware)" >&2; exit 1; }
fi
for t in "${tests[@]}"; do
  [ -f "$sct/Test/$t.efi" ] || { echo "run.sh: $sct/Test/$t.efi does not exist" >&2; exit 1; }
done

label="$(IFS=+; echo "$*")"
out="${SCT_OUT:-/work/sct/runs/$firmware-$label-$(date -u +%Y%m%dT%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
echo "run.sh: $firmware, ${#tests[@]} test files, output in $out"

# --- The ESP: the Shell, startup.nsh and \Sct with only the selected tests.
stage="$out/stage"
rm -rf "$stage"
mkdir -p "$stage/EFI/BOOT" "$stage/Sct/Test"
cp "$shell" "$stage/EFI/BOOT/BOOTX64.EFI"
for entry in "$sct"/*; do
  [ "$(basename "$entry")" = Test ] && continue
  cp -r "$entry" "$stage/Sct/"
done
for t in "${tests[@]}"; do cp "$sct/Test/$t.efi" "$stage/Sct/Test/"; done

# startup.nsh runs after every reset (the SCT resets the machine itself for some
# tests, e.g. ResetSystem): the first start runs the selected tests (-a: all
# test files present), every later start continues where the SCT left off (-c,
# from its Data\Recovery.dat). When the SCT returns, the report is generated
# and the machine powered off, which ends QEMU.
printf '%s\r\n' \
  '@echo -off' \
  'for %i in 0 1 2 3 4 5 6 7 8 9 A B C D E F' \
  '  if exist FS%i:\Sct\SCT.efi then' \
  '    FS%i:' \
  '    goto FOUND' \
  '  endif' \
  'endfor' \
  'echo SCT-RUNNER: no \Sct found' \
  'reset -s' \
  ':FOUND' \
  'cd \Sct' \
  'if exist \sct-runner.started then' \
  '  echo SCT-RUNNER: continuing after a reset' \
  '  Sct -c -f' \
  'else' \
  '  echo started > \sct-runner.started' \
  '  echo SCT-RUNNER: first start' \
  '  Sct -a -f' \
  'endif' \
  'echo SCT-RUNNER: generating the report' \
  'Sct -g report.csv' \
  'echo SCT-RUNNER-DONE' \
  'reset -s' > "$stage/startup.nsh"

stage_mib=$(( $(du -sm "$stage" | cut -f1) ))
esp_mib=$(( stage_mib + 256 ))          # room for the logs (and vmfw's variable file)
disk="$out/disk.img"
rm -f "$disk" "$out/esp.img"
truncate -s $(( (esp_mib + 2) * 1024 * 1024 )) "$disk"
sgdisk --clear --new=1:2048:$(( (esp_mib + 1) * 2048 - 1 )) --typecode=1:ef00 \
  --change-name=1:ESP "$disk" >/dev/null
truncate -s $(( esp_mib * 1024 * 1024 )) "$out/esp.img"
mkfs.vfat -F 32 -n SCT "$out/esp.img" >/dev/null
export MTOOLS_SKIP_CHECK=1
mcopy -s -Q -i "$out/esp.img" "$stage"/* ::/
dd if="$out/esp.img" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$out/esp.img"

# --- Boot it. No -no-reboot: the SCT's resets must restart the machine.
qemu=(qemu-system-x86_64 -machine q35,accel=tcg -m "${SCT_MEMORY_MIB:-2048}" -smp 1
      -display none -nodefaults -serial "file:$out/serial.log"
      -monitor "unix:$out/monitor.sock,server=on,wait=off"
      -drive "if=none,id=esp,file=$disk,format=raw"
      -device virtio-blk-pci,drive=esp,disable-legacy=on)
if [ "$firmware" = vmfw ]; then
  qemu+=(-kernel "$vmfw")
else
  cp "$ovmf_vars" "$out/ovmf-vars.fd"
  qemu+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$ovmf_code"
         -drive "if=pflash,format=raw,unit=1,file=$out/ovmf-vars.fd")
fi
echo "${qemu[*]}" > "$out/qemu.log"
started=$(date +%s)
status=0
: > "$out/serial.log"
rm -f "$out/monitor.sock" "$out/watchdog.log"
timeout -k 10 "${SCT_TIMEOUT:-21600}" "${qemu[@]}" >>"$out/qemu.log" 2>&1 &
qemu_pid=$!

# Host-side watchdog: a test that hangs the machine prints nothing more; after
# SCT_STALL seconds of silence, reset the VM through the QEMU monitor (the SCT
# then continues with -c and logs the hung case as "System hangs or stops
# abnormally"). Independent of the firmware's own watchdog timer.
# A firmware that reports its own crash and halts (vmfw: "*** system halted";
# edk2: "!!!! X64 Exception Type") is reset after 15 quiet seconds already.
(
  stall="${SCT_STALL:-600}"
  last_size=-1; quiet=0; halts_seen=0
  while kill -0 "$qemu_pid" 2>/dev/null; do
    sleep 15
    size=$(stat -c %s "$out/serial.log" 2>/dev/null || echo 0)
    if [ "$size" = "$last_size" ]; then quiet=$((quiet + 15)); else quiet=0; last_size=$size; fi
    halts=$(grep -a -c -e '\*\*\* system halted' -e '!!!! X64 Exception Type' "$out/serial.log" || true)
    if [ "$quiet" -ge "$stall" ] || { [ "$quiet" -ge 15 ] && [ "$halts" -gt "$halts_seen" ]; }; then
      reason="no output for ${quiet}s"
      [ "$halts" -gt "$halts_seen" ] && reason="the firmware halted after a crash"
      halts_seen=$halts
      echo "$(date -u +%H:%M:%S) $reason: system_reset" >> "$out/watchdog.log"
      python3 -c 'import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(0.5)
s.sendall(b"system_reset\n"); time.sleep(0.5); s.close()' "$out/monitor.sock" || true
      quiet=0
    fi
  done
) &
watchdog_pid=$!
wait "$qemu_pid" || status=$?
kill "$watchdog_pid" 2>/dev/null || true
wait "$watchdog_pid" 2>/dev/null || true
elapsed=$(( $(date +%s) - started ))
hangs=0; [ -f "$out/watchdog.log" ] && hangs=$(wc -l < "$out/watchdog.log")
resets=$(grep -a -c 'SCT-RUNNER: continuing' "$out/serial.log" || true)
echo "run.sh: QEMU ended with status $status after ${elapsed}s, $resets reset(s) continued, $hangs host watchdog reset(s)"

# --- Results: copy the SCT's logs off the ESP and summarize them.
rm -rf "$out/Sct"
mkdir -p "$out/Sct"
for dir in Log Report; do
  mcopy -s -n -Q -i "$disk@@1M" "::/Sct/$dir" "$out/Sct/" 2>/dev/null || true
done
complete=no
grep -q '^SCT-RUNNER-DONE' "$out/serial.log" && complete=yes
python3 "$repo/tests/sct/summarize.py" --firmware "$firmware" \
  --categories "$*" --elapsed "$elapsed" --complete "$complete" --resets "$resets" --hangs "$hangs" \
  "$out/Sct/Log" > "$out/summary.txt"
head -n 40 "$out/summary.txt"
echo "run.sh: summary in $out/summary.txt"
[ "$complete" = yes ]
