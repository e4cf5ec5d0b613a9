#!/usr/bin/env bash
# Builds a Debian disk (12, or 13) the way the distribution installs itself,
# for the installed-system boot tests: debootstrap (systemd, the Debian kernel,
# initramfs-tools, dosfstools), then Debian's own grub-install (shim + signed
# GRUB, also at the removable path, as cloud images do) and update-grub; the
# root on ext4 named by UUID, the ESP mounted from fstab and so checked by
# fsck.fat at every boot. A unit reports the finished boot on the serial port,
# then powers the machine off.
#
#   mk-installed-debian.sh OUT.img [SUITE]
#
# SUITE is bookworm (default) or trixie; VMFW_DEBIAN_MIRROR overrides the
# mirror. Needs root: debootstrap, chroot and loop devices. The host kernel
# may lack vfat, so mtools fills the ESP; grub-install only probes the ESP
# device, which it finds through the (tmpfs) mount's source.
set -euo pipefail
# The tools live in sbin, which a non-root PATH lacks.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

out=$1
suite=${2:-bookworm}
mirror=${VMFW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=systemd-sysv,udev,linux-image-amd64,initramfs-tools,grub-efi-amd64,grub-efi-amd64-signed,shim-signed,efibootmgr,dosfstools
work=$(mktemp -d "${out}.XXXXXX.d")
disk=$work/disk.img
root=$work/root
loop=""

# Unmounts everything and detaches the loop device; safe to call twice.
release() {
  for m in boot/efi proc sys dev ""; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount "$root/$m"; fi
  done
  if [ -n "$loop" ]; then losetup -d "$loop"; loop=""; fi
}
trap 'release; rm -rf "$work"' EXIT

truncate -s 2G "$disk"
sgdisk --clear -n 1:2048:+128M -t 1:EF00 -c 1:"EFI System Partition" \
  -n 2:0:0 -t 2:8304 -c 2:root "$disk" >/dev/null
loop=$(losetup -P --find --show "$disk")
# Without udev the partition nodes may not appear by themselves.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  [ -b "${loop}p2" ] && break
  partx -a "$loop" 2>/dev/null || true
  sleep 0.2
done
esp_dev=${loop}p1
root_dev=${loop}p2
mkfs.vfat -F 32 -n EFI "$esp_dev" >/dev/null
mkfs.ext4 -q -L root "$root_dev"
esp_uuid=$(blkid -s UUID -o value "$esp_dev")
root_uuid=$(blkid -s UUID -o value "$root_dev")

mkdir -p "$root"
mount "$root_dev" "$root"
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log"; exit 1; }
rm -f "$root"/var/cache/apt/archives/*.deb

echo vmfw-debian >"$root/etc/hostname"
cat >"$root/etc/fstab" <<EOF
UUID=$root_uuid / ext4 errors=remount-ro 0 1
UUID=$esp_uuid /boot/efi vfat umask=0077 0 1
EOF
# A cloud image's choices: no menu delay, the kernel's console on the serial port.
sed -i 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=0/; s/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=ttyS0"/' \
  "$root/etc/default/grub"

cat >"$root/usr/local/sbin/vmfw-report" <<'EOF'
#!/bin/sh
# Once systemd has finished booting, reports what the firmware handed over.
# Opens the serial port only to write: serial-getty hangs up earlier openers.
state=$(timeout 180 systemctl is-system-running --wait)
efi=no; [ -d /sys/firmware/efi/efivars ] && efi=yes
esp=no; mountpoint -q /boot/efi && [ -f /boot/efi/EFI/debian/shimx64.efi ] && esp=yes
failed=$(systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')
# What the boot-time fsck.fat said of the ESP the firmware wrote to: beyond its
# version and summary lines, anything means it found something to fix.
fsck_log=$(journalctl -b -o cat -u 'systemd-fsck@*' | grep -v -e '^Starting ' -e '^Finished ')
esp_fsck=missing
if echo "$fsck_log" | grep -q '^/dev/.*: [0-9]* files, '; then
  esp_fsck=clean
  if echo "$fsck_log" | grep -v -e '^fsck.fat ' -e '^/dev/.*: [0-9]* files, ' | grep -q .; then
    esp_fsck=fixed
  fi
fi
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
# Secure Boot as the system sees it: the SecureBoot variable's data byte
# (after efivarfs' 4 attribute bytes), the kernel's lockdown mode and what
# shim's mokutil says.
sb=$(od -An -tu1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c 2>/dev/null | awk '{print $5}')
lockdown=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/security/lockdown 2>/dev/null)
sb_state=$(mokutil --sb-state 2>&1 | head -n 1)
# What systemd makes of the TPM: firmware (the event log), driver, system.
tpm2=$(systemd-analyze has-tpm2 2>/dev/null | tr '\n' ' ')
# One write, starting on a fresh line: getty's prompt has no newline.
printf '\n%s\n%s\n%s\n%s\n' \
  "VMFW-MACHINE: cpus=$(nproc) mem_mib=$((mem_kib / 1024))" \
  "VMFW-SECUREBOOT: secureboot=${sb:-absent} lockdown=${lockdown:-absent} mokutil=[$sb_state]" \
  "VMFW-TPM2: [${tpm2% }]" \
  "VMFW-INSTALLED: system=$state efi=$efi esp=$esp esp-fsck=$esp_fsck failed=[${failed% }]" \
  >/dev/ttyS0
# A clean power-off (ACPI S5), so the ESP is unmounted cleanly for a next boot.
systemctl poweroff --no-block
EOF
chmod 755 "$root/usr/local/sbin/vmfw-report"
cat >"$root/etc/systemd/system/vmfw-report.service" <<'EOF'
[Unit]
Description=Report the finished boot on the serial port
After=local-fs.target

[Service]
Type=simple
ExecStart=/usr/local/sbin/vmfw-report

[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/vmfw-report.service \
  "$root/etc/systemd/system/multi-user.target.wants/vmfw-report.service"

# A private /dev holding just what grub-install and update-grub look at,
# including the by-uuid links udev would make (update-grub names the root by
# UUID only when its link exists).
mount -t tmpfs none "$root/dev"
cp -a /dev/null /dev/zero /dev/random /dev/urandom "$loop" "$esp_dev" "$root_dev" "$root/dev/"
mkdir -p "$root/dev/disk/by-uuid"
ln -s "../../$(basename "$root_dev")" "$root/dev/disk/by-uuid/$root_uuid"
ln -s "../../$(basename "$esp_dev")" "$root/dev/disk/by-uuid/$esp_uuid"
mount --bind /proc "$root/proc"
mount --bind /sys "$root/sys"
mkdir -p "$root/boot/efi"
mount -t tmpfs "$esp_dev" "$root/boot/efi"

chroot "$root" grub-install --target=x86_64-efi --efi-directory=/boot/efi \
  --uefi-secure-boot --force-extra-removable --no-nvram
chroot "$root" update-grub 2>&1 | sed 's/^/update-grub: /'
(cd "$root/boot/efi" && MTOOLS_SKIP_CHECK=1 mcopy -s -i "$esp_dev" EFI ::/)

release
mv "$disk" "$out"
