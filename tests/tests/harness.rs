//! Checks of the harness itself that need the network or QEMU: package fetching and serial
//! input.

use std::time::Duration;

use vm_tests::{Vm, deb_trixie, debian_kernel, debian13_kernel, initramfs, initramfs_for};

#[test]
fn trixie_packages_come_from_a_private_apt_state() {
    let root = deb_trixie("busybox-static");
    // Debian 13 has merged /usr: no top-level /bin in packages.
    assert!(root.join("usr/bin/busybox").is_file(), "{}", root.display());
    assert!(
        root.to_string_lossy().contains("/debs/trixie/"),
        "{}",
        root.display()
    );
    // Debian 13 ships busybox 1.37; Debian 12 ships 1.35.
    assert!(
        root.to_string_lossy().contains("1.37"),
        "{}",
        root.display()
    );
}

#[test]
fn serial_input_reaches_the_guest() {
    let kernel = debian_kernel();
    let initrd = initramfs("read -r typed\necho \"INIT: typed=$typed\"", &[]);
    let mut vm = Vm::builder()
        .direct(&kernel.vmlinuz, Some(initrd))
        .append("console=ttyS0 panic=-1")
        .spawn();
    let timeout = Duration::from_secs(120);
    vm.expect("INIT: disk=none", timeout).unwrap();
    vm.send(b"hello from the host\n").unwrap();
    vm.expect("INIT: typed=hello from the host", timeout)
        .unwrap();
    vm.expect("INIT: done", timeout).unwrap();
    let status = vm.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn trixie_kernel_boots_directly_with_decompressed_modules() {
    let kernel = debian13_kernel();
    let initrd = initramfs_for(&kernel, "", &[]);
    let disk = vm_tests::EspBuilder::new()
        .bytes("/hello.txt", "hi")
        .build();
    let mut vm = Vm::builder()
        .direct(&kernel.vmlinuz, Some(initrd))
        .append("console=ttyS0 panic=-1")
        .disk(disk)
        .spawn();
    let timeout = Duration::from_secs(180);
    let cmdline = vm.expect("INIT: cmdline=", timeout).unwrap();
    assert!(cmdline.line.contains("console=ttyS0"), "{}", cmdline.line);
    vm.expect("INIT: disk=/dev/vda ok", timeout).unwrap();
    vm.expect("INIT: done", timeout).unwrap();
    assert!(vm.find("insmod").is_none(), "a module failed to load");
}
