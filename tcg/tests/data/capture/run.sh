#!/bin/bash
# usage: run.sh NAME DEVICE(tpm-crb|tpm-tis) [swtpm_setup banks or "none"]
set -e
name=$1; dev=$2; banks=${3:-none}
d=/tmp/tcglog/$name; rm -rf $d; mkdir -p $d/state
if [ "$banks" != none ]; then
  swtpm_setup --tpm2 --tpmstate $d/state --pcr-banks $banks --create-ek-cert --create-platform-cert --overwrite --lock-nvram >$d/setup.log 2>&1 || swtpm_setup --tpm2 --tpmstate $d/state --pcr-banks $banks --overwrite >$d/setup.log 2>&1
fi
swtpm socket --tpm2 --ctrl type=unixio,path=$d/sock --tpmstate dir=$d/state --log file=$d/swtpm.log & echo $! > $d/x
sleep 0.5
K=/work/main/.cache/debs/bookworm/root/linux-image-6.1.0-57-amd64_6.1.192-3_amd64/boot/vmlinuz-6.1.0-57-amd64
timeout 400 nice -n 10 qemu-system-x86_64 -machine q35,accel=tcg -m 512 -display none -serial stdio -nodefaults -no-reboot \
  -chardev socket,id=c,path=$d/sock -tpmdev emulator,id=t,chardev=c -device $dev,tpmdev=t \
  -kernel $K -initrd /tmp/tcglog/initrd.gz -append "console=ttyS0 panic=-1" > $d/serial.log 2>&1 || true
kill $(cat $d/x) 2>/dev/null; true
