//! Baselines: the default image under OVMF (shim -> GRUB -> Linux -> test initramfs) and the
//! same kernel booted directly by QEMU. These validate the images and the initramfs independently
//! of our firmware, and give the timings our firmware is compared with.

use std::time::Duration;

use vm_tests::{
    GRUB_CMDLINE, INSTALLED_DEBIAN_BOOTED, Vm, boot_ovmf, default_image, installed_debian,
};

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

fn expect_line(vm: &mut Vm, pattern: &str) -> String {
    let found = vm.expect(pattern, BOOT_TIMEOUT).unwrap();
    eprintln!("[{:8.3}] {}", found.elapsed.as_secs_f64(), found.line);
    found.line
}

#[test]
fn ovmf_boots_default_image_through_shim_and_grub() {
    let image = default_image();
    let mut vm = boot_ovmf(&image.disk);
    expect_line(&mut vm, "GRUB: loading Linux");
    let cmdline = expect_line(&mut vm, "INIT: cmdline=");
    assert!(cmdline.contains(GRUB_CMDLINE), "{cmdline}");
    expect_line(&mut vm, "INIT: efi=yes");
    let efivars = expect_line(&mut vm, "INIT: efivars=");
    let count: u32 = efivars.rsplit('=').next().unwrap().trim().parse().unwrap();
    assert!(count > 0, "{efivars}");
    expect_line(&mut vm, "INIT: efivar-rw=ok");
    expect_line(&mut vm, "INIT: acpi=yes");
    expect_line(&mut vm, "INIT: dmi=yes");
    expect_line(&mut vm, "INIT: disk=/dev/vda ok");
    expect_line(&mut vm, "INIT: done");
    vm.wait_exit(Duration::from_secs(30)).unwrap();
}

/// The installed Debian system (see `installed_debian.rs`) under OVMF: the same report line.
#[test]
fn ovmf_boots_installed_debian() {
    let mut vm = boot_ovmf(&installed_debian());
    let report = expect_line(&mut vm, "VMFW-INSTALLED:");
    assert_eq!(report.trim(), INSTALLED_DEBIAN_BOOTED);
    vm.wait_exit(Duration::from_secs(120)).unwrap();
}

#[test]
fn direct_kernel_boot_has_no_efi() {
    let image = default_image();
    let mut vm = Vm::builder()
        .direct(&image.kernel.vmlinuz, Some(image.initrd.clone()))
        .append("console=ttyS0 panic=-1 vmfw.entry=direct")
        .disk(&image.disk)
        .spawn();
    let cmdline = expect_line(&mut vm, "INIT: cmdline=");
    assert!(cmdline.contains("vmfw.entry=direct"), "{cmdline}");
    expect_line(&mut vm, "INIT: efi=no");
    expect_line(&mut vm, "INIT: acpi=yes");
    expect_line(&mut vm, "INIT: disk=/dev/vda ok");
    expect_line(&mut vm, "INIT: done");
    vm.wait_exit(Duration::from_secs(30)).unwrap();
}
