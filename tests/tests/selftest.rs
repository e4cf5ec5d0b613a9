//! The EFI self-test application (tests/efi-apps/selftest) exercises every
//! boot and runtime service, including error paths, and prints
//! `N passed, M failed`. It must pass with zero failures on the firmware
//! and on edk2 OVMF alike: the checks encode the spec, not our code.

use std::time::Duration;

use vm_tests::{EspBuilder, Network, Vm, efi_app, firmware};

const TIMEOUT: Duration = Duration::from_secs(180);

fn selftest_disk() -> std::path::PathBuf {
    EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("selftest"))
        .build()
}

fn assert_all_passed(vm: &mut Vm) {
    let summary = vm.expect(" passed, ", TIMEOUT).unwrap();
    let failures: Vec<String> = vm
        .transcript()
        .lines()
        .filter(|l| l.contains("FAIL "))
        .map(str::to_owned)
        .collect();
    assert!(
        summary.line.trim_end().ends_with(" passed, 0 failed"),
        "{}\n{}",
        summary.line,
        failures.join("\n")
    );
    // The VM has a virtio-rng device, so the firmware must offer EFI_RNG_PROTOCOL and the
    // `rng` group must have run rather than skipped.
    assert!(
        vm.find("PASS rng.get_rng.default").is_some(),
        "the rng checks did not run (no EFI_RNG_PROTOCOL?)"
    );
    // Both firmwares load drivers from a firmware volume, so the
    // `firmware_volume` group must have named them rather than given up.
    assert!(
        vm.find("PASS firmware_volume.read_section.driver_ui_names")
            .is_some(),
        "the firmware_volume checks did not run (no driver image on a volume?)"
    );
    // The VM has a virtio-net NIC on QEMU's user-mode network, so the `snp`
    // group must have run and exchanged ARP with the gateway.
    assert!(
        vm.find("PASS snp.receive.arp_reply").is_some(),
        "the snp checks did not run (no EFI_SIMPLE_NETWORK_PROTOCOL?)"
    );
    // The app ends with ResetSystem(EfiResetShutdown), which must power off.
    vm.wait_exit(Duration::from_secs(30)).unwrap();
}

/// Every VM of this test has a virtio-rng device (an entropy source for
/// EFI_RNG_PROTOCOL on either firmware) and a virtio-net NIC on QEMU's
/// user-mode network (EFI_SIMPLE_NETWORK_PROTOCOL, an ARP peer).
fn with_rng(builder: vm_tests::VmBuilder) -> vm_tests::VmBuilder {
    builder
        .arg("-device")
        .arg("virtio-rng-pci")
        .nic(Network::user())
}

#[test]
fn selftest_passes_on_firmware() {
    let mut vm = with_rng(Vm::builder().firmware(firmware()))
        .disk(selftest_disk())
        .spawn();
    assert_all_passed(&mut vm);
}

#[test]
fn selftest_passes_on_ovmf() {
    let mut vm = with_rng(Vm::builder().ovmf()).disk(selftest_disk()).spawn();
    assert_all_passed(&mut vm);
}
