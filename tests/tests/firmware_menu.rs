//! The firmware's own boot menu, driven with keystrokes on the serial
//! console. A `timeout` in `/loader/loader.conf` turns the menu on; the test
//! moves the selection down once and presses Enter, and passes only when the
//! second entry's marker option reaches the booted kernel's `/proc/cmdline`
//! (printed by the initramfs's `/init`).

use std::time::Duration;

use vm_tests::{BLS_CMDLINE, EspBuilder, Vm, debian_kernel, firmware, initramfs};

const TIMEOUT: Duration = Duration::from_secs(240);

const DOWN: &[u8] = b"\x1b[B";
const ENTER: &[u8] = b"\r";

#[test]
fn menu_down_arrow_and_enter_boot_the_second_entry() {
    let kernel = debian_kernel();
    let version = &kernel.version;
    let entry = |title: &str, sort_key: &str, marker: &str| {
        format!(
            "title {title}\n\
             sort-key {sort_key}\n\
             linux /vmlinuz-{version}\n\
             initrd /initrd.img-{version}\n\
             options {BLS_CMDLINE} {marker}\n"
        )
    };
    // Entries sort by sort-key: `First` is listed (and selected) first.
    let disk = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), initramfs("", &[]))
        .bytes("/loader/loader.conf", "timeout 600\n")
        .bytes(
            "/loader/entries/a-first.conf",
            entry("First", "a", "vmfw.menu=first"),
        )
        .bytes(
            "/loader/entries/b-second.conf",
            entry("Second", "b", "vmfw.menu=second"),
        )
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(&disk).spawn();

    vm.expect("vmfw boot menu", TIMEOUT).unwrap();
    vm.expect(" > 1. First", TIMEOUT).unwrap();
    vm.expect("   2. Second", TIMEOUT).unwrap();
    vm.expect("Booting the selected option in", TIMEOUT)
        .unwrap();

    vm.send(DOWN).unwrap();
    // The redrawn menu highlights the second entry and the countdown stopped.
    vm.expect("   1. First", TIMEOUT).unwrap();
    vm.expect(" > 2. Second", TIMEOUT).unwrap();
    vm.send(ENTER).unwrap();

    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.menu=second"),
        "the entry picked in the menu booted: {}",
        cmdline.line
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(vm.find("boot menu: option 2 'Second'").is_some());
}
