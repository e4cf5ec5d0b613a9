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
/// (drivers/firmware/efi/efi.c: `efi: ... RNG=0x...`).
const SEED_REPORT: &str = r#"
if dmesg | grep -q 'efi:.* RNG=0x'; then
  echo "INIT: efi-random-seed=yes"
else
  echo "INIT: efi-random-seed=no"
fi
"#;

/// An ESP with the UKI both where our BLS loader looks (`/EFI/Linux/`) and on
/// the removable path OVMF boots.
fn uki_disk() -> PathBuf {
    let kernel = debian_kernel();
    let initrd = initramfs(SEED_REPORT, &[]);
    let os_release = "PRETTY_NAME=\"Debian RNG (vmfw test)\"\nID=debian\nVERSION_ID=\"12\"\n";
    let uki = unified_kernel_image(&kernel, &initrd, CMDLINE, os_release);
    EspBuilder::new()
        .file("/EFI/Linux/debian-rng.efi", &uki)
        .file("/EFI/BOOT/BOOTX64.EFI", &uki)
        .build()
}

/// Boots and returns what `/init` said about the seed table.
fn seed_report(builder: VmBuilder) -> String {
    let mut vm = builder.disk(uki_disk()).spawn();
    let line = vm.expect("INIT: efi-random-seed=", TIMEOUT).unwrap().line;
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    line.trim_end().to_owned()
}

fn with_virtio_rng(builder: VmBuilder) -> VmBuilder {
    builder.arg("-device").arg("virtio-rng-pci")
}

#[test]
fn virtio_rng_seeds_the_linux_stub() {
    let line = seed_report(with_virtio_rng(Vm::builder().firmware(firmware())));
    assert!(line.ends_with("=yes"), "{line}");
}

/// `-cpu max` offers RDRAND under TCG (QEMU emulates it from the host's RNG).
#[test]
fn rdrand_seeds_the_linux_stub() {
    let line = seed_report(Vm::builder().firmware(firmware()).arg("-cpu").arg("max"));
    assert!(line.ends_with("=yes"), "{line}");
}

/// The default CPU (qemu64) has neither RDRAND nor RDSEED and there is no
/// device: the firmware has no entropy source, offers no protocol, and the
/// kernel gets no seed table from it.
#[test]
fn no_source_means_no_seed() {
    let line = seed_report(Vm::builder().firmware(firmware()));
    assert!(line.ends_with("=no"), "{line}");
}

/// The reference: OVMF's VirtioRngDxe gives the stub its seed the same way.
#[test]
fn virtio_rng_seeds_the_linux_stub_on_ovmf() {
    let line = seed_report(with_virtio_rng(Vm::builder().ovmf()));
    assert!(line.ends_with("=yes"), "{line}");
}
