//! EFI_RNG_PROTOCOL as the Linux EFI stub sees it (UEFI 2.10 §37.5): the stub
//! asks the protocol for a seed and hands it to the kernel in the
//! LINUX_EFI_RANDOM_SEED configuration table, which the kernel reports as
//! `RNG=0x...` on its `efi:` line. The kernel is started through its EFI stub
//! (a UKI, started with LoadImage/StartImage by the built-in BLS loader on our
//! firmware and from the removable path on OVMF), and the test passes only on
//! what the booted system's `/init` prints from `dmesg`.

use std::path::PathBuf;
use std::time::Duration;

use vm_tests::{
    EspBuilder, Vm, VmBuilder, debian_kernel, firmware, initramfs, unified_kernel_image,
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
