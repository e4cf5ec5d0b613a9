//! EFI_RNG_PROTOCOL as the Linux EFI stub sees it (UEFI 2.10 §37.5): the stub
//! asks the protocol for a seed and hands it to the kernel in the
//! LINUX_EFI_RANDOM_SEED configuration table, which the kernel reports as
//! `RNG=0x...` on its `efi:` line. The kernel is started through its EFI stub
//! (a UKI, started with LoadImage/StartImage by the built-in BLS loader on our
//! firmware and from the removable path on OVMF), and the test passes only on
//! what the booted system's `/init` prints from `dmesg`. systemd-boot's
//! random seed file is checked the same way, from the booted system.

use std::path::PathBuf;
use std::time::Duration;

use vm_tests::{
    EspBuilder, SYSTEMD_BOOT_EFI, Vm, VmBuilder, bls_entry, deb_trixie, debian_kernel,
    debian13_kernel, firmware, initramfs, initramfs_for, unified_kernel_image,
};

const TIMEOUT: Duration = Duration::from_secs(300);
const CMDLINE: &str = "console=ttyS0 panic=-1";

/// The kernel logs the random seed table among the EFI configuration tables
/// (drivers/firmware/efi/efi.c: `efi: ... RNG=0x...`). Then Linux's own
/// virtio-rng driver reads the device the firmware used (and reset at
/// ExitBootServices), when there is one.
const SEED_REPORT: &str = r#"
if dmesg | grep -q 'efi:.* RNG=0x'; then
  echo "INIT: efi-random-seed=yes"
else
  echo "INIT: efi-random-seed=no"
fi
rng=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null || echo none)
bytes=0
if [ "$rng" != none ]; then bytes=$(head -c 64 /dev/hwrng | wc -c); fi
echo "INIT: hwrng=$rng bytes=$bytes"
"#;

/// An ESP with the UKI both where our BLS loader looks (`/EFI/Linux/`) and on
/// the removable path OVMF boots.
fn uki_disk() -> PathBuf {
    let kernel = debian_kernel();
    let initrd = initramfs(SEED_REPORT, &["virtio_rng"]);
    let os_release = "PRETTY_NAME=\"Debian RNG (vmfw test)\"\nID=debian\nVERSION_ID=\"12\"\n";
    let uki = unified_kernel_image(&kernel, &initrd, CMDLINE, os_release);
    EspBuilder::new()
        .file("/EFI/Linux/debian-rng.efi", &uki)
        .file("/EFI/BOOT/BOOTX64.EFI", &uki)
        .build()
}

/// What `/init` reported: the seed table line and the hwrng line.
struct Report {
    seed: String,
    hwrng: String,
}

/// Boots and returns what `/init` said about the seed table and the hwrng.
fn seed_report(builder: VmBuilder) -> Report {
    let mut vm = builder.disk(uki_disk()).spawn();
    let seed = vm.expect("INIT: efi-random-seed=", TIMEOUT).unwrap().line;
    let hwrng = vm.expect("INIT: hwrng=", TIMEOUT).unwrap().line;
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    Report {
        seed: seed.trim_end().to_owned(),
        hwrng: hwrng.trim_end().to_owned(),
    }
}

/// Linux's virtio-rng driver took over the device and read from it.
const HWRNG_WORKS: &str = "INIT: hwrng=virtio_rng.0 bytes=64";

fn with_virtio_rng(builder: VmBuilder) -> VmBuilder {
    builder.arg("-device").arg("virtio-rng-pci")
}

#[test]
fn virtio_rng_seeds_the_linux_stub() {
    let report = seed_report(with_virtio_rng(Vm::builder().firmware(firmware())));
    assert!(report.seed.ends_with("=yes"), "{}", report.seed);
    assert!(report.hwrng.ends_with(HWRNG_WORKS), "{}", report.hwrng);
}

/// `-cpu max` offers RDRAND under TCG (QEMU emulates it from the host's RNG).
#[test]
fn rdrand_seeds_the_linux_stub() {
    let report = seed_report(Vm::builder().firmware(firmware()).arg("-cpu").arg("max"));
    assert!(report.seed.ends_with("=yes"), "{}", report.seed);
}

/// The default CPU (qemu64) has neither RDRAND nor RDSEED and there is no
/// device: the firmware has no entropy source, offers no protocol, and the
/// kernel gets no seed table from it.
#[test]
fn no_source_means_no_seed() {
    let report = seed_report(Vm::builder().firmware(firmware()));
    assert!(report.seed.ends_with("=no"), "{}", report.seed);
}

/// The reference: OVMF's VirtioRngDxe gives the stub its seed the same way.
#[test]
fn virtio_rng_seeds_the_linux_stub_on_ovmf() {
    let report = seed_report(with_virtio_rng(Vm::builder().ovmf()));
    assert!(report.seed.ends_with("=yes"), "{}", report.seed);
    assert!(report.hwrng.ends_with(HWRNG_WORKS), "{}", report.hwrng);
}

/// systemd-boot (257) refreshes `\loader\random-seed` on the ESP only when it
/// is "seeded by EFI": EFI_RNG_PROTOCOL answered (or a seed table was already
/// there); without either, and without a LoaderSystemToken, it leaves the
/// file alone (systemd `src/boot/random-seed.c`, `process_random_seed`). The
/// ESP starts with 32 zero bytes there; `/init` mounts the ESP and reports
/// the file's MD5.
const SD_SEED_REPORT: &str = r#"
mkdir -p /esp
if mount -t vfat -o ro /dev/vda1 /esp; then
  echo "INIT: sd-random-seed=$(md5sum < /esp/loader/random-seed | cut -d' ' -f1)"
  umount /esp
else
  echo "INIT: sd-random-seed=mount-failed"
fi
"#;

/// MD5 of the 32 zero bytes the ESP's seed file starts with.
const UNTOUCHED_SEED_MD5: &str = "70bc8f4b72a86921468bf8e8441dce51";

/// Boots Debian 13's systemd-boot on an ESP whose seed file holds 32 zero
/// bytes and returns `/init`'s report on that file.
fn systemd_boot_seed_report(builder: VmBuilder) -> String {
    let kernel = debian13_kernel();
    let initrd = initramfs_for(
        &kernel,
        SD_SEED_REPORT,
        &["vfat", "nls_cp437", "nls_ascii", "nls_utf8"],
    );
    let version = &kernel.version;
    let entry = bls_entry("Debian (rng test)", version, CMDLINE);
    let disk = EspBuilder::new()
        .file(
            "/EFI/BOOT/BOOTX64.EFI",
            deb_trixie("systemd-boot-efi").join(SYSTEMD_BOOT_EFI),
        )
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), initrd)
        .bytes("/loader/loader.conf", "timeout 0\ndefault debian.conf\n")
        .bytes("/loader/entries/debian.conf", entry)
        .bytes("/loader/random-seed", vec![0u8; 32])
        .build();
    let mut vm = builder.disk(disk).spawn();
    let line = vm.expect("INIT: sd-random-seed=", TIMEOUT).unwrap().line;
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    line.trim_end().to_owned()
}

/// With virtio-rng, systemd-boot gets randomness from the firmware and writes
/// a fresh seed over the old one.
#[test]
fn systemd_boot_refreshes_its_random_seed() {
    let line = systemd_boot_seed_report(with_virtio_rng(Vm::builder().firmware(firmware())));
    let md5 = line.rsplit('=').next().unwrap_or_default();
    assert!(
        md5.len() == 32 && md5 != UNTOUCHED_SEED_MD5,
        "the seed file was not rewritten: {line}"
    );
}

/// The reference: OVMF with virtio-rng, the same chain.
#[test]
fn systemd_boot_refreshes_its_random_seed_on_ovmf() {
    let line = systemd_boot_seed_report(with_virtio_rng(Vm::builder().ovmf()));
    let md5 = line.rsplit('=').next().unwrap_or_default();
    assert!(
        md5.len() == 32 && md5 != UNTOUCHED_SEED_MD5,
        "the seed file was not rewritten: {line}"
    );
}

/// The control: no entropy source, so no EFI_RNG_PROTOCOL, and systemd-boot
/// does not trust the ESP's seed alone: the file stays as it was.
#[test]
fn systemd_boot_without_rng_leaves_the_seed() {
    let line = systemd_boot_seed_report(Vm::builder().firmware(firmware()));
    assert!(line.ends_with(UNTOUCHED_SEED_MD5), "{line}");
}
