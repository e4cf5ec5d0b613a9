//! Network boot (issue 22) with QEMU's user-mode network: its DHCP server
//! and its TFTP server (`-netdev user,tftp=DIR,bootfile=FILE`). Each test
//! passes only on lines the booted system's own userspace prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vm_tests::http_server::{HttpServer, Route};
use vm_tests::iso::installer_iso;
use vm_tests::{
    EspBuilder, Network, Vm, cache_dir, debian_kernel, default_image, expect_linux_environment,
    firmware, initramfs,
};

/// Where Debian's netboot tree sits in `debian-installer-12-netboot-amd64`.
const NETBOOT_TREE: &str = "usr/lib/debian-installer/images/12/amd64/text";
/// The boot file Debian's DHCP set-up names (its signed shim).
const DEBIAN_BOOT_FILE: &str = "debian-installer/amd64/bootnetx64.efi";
/// What the installer's userspace (debconf's newt frontend on the serial
/// console) shows first.
const INSTALLER_QUESTION: &str = "Select a language";

/// A TFTP root holding Debian's netboot tree (links into the cached
/// package) with a `grub.cfg` of the test's: one entry booting the
/// installer with its console on serial.
fn debian_tftp_root() -> PathBuf {
    let tree = vm_tests::deb("debian-installer-12-netboot-amd64").join(NETBOOT_TREE);
    let amd64 = tree.join("debian-installer/amd64");
    let root = cache_dir("tftp/debian12-netboot");
    let ours = root.join("debian-installer/amd64");
    std::fs::create_dir_all(ours.join("grub")).unwrap();
    for file in ["bootnetx64.efi", "grubx64.efi", "linux", "initrd.gz"] {
        link(&amd64.join(file), &ours.join(file));
    }
    for entry in ["x86_64-efi", "font.pf2"] {
        link(
            &amd64.join("grub").join(entry),
            &ours.join("grub").join(entry),
        );
    }
    // The netboot GRUB's prefix is (tftp,<server>)/debian-installer/amd64/grub.
    std::fs::write(
        ours.join("grub/grub.cfg"),
        "set timeout=0\n\
         menuentry 'Install (vmfw network test)' {\n\
         \x20   linux /debian-installer/amd64/linux console=ttyS0 vmfw.entry=pxe ---\n\
         \x20   initrd /debian-installer/amd64/initrd.gz\n\
         }\n",
    )
    .unwrap();
    root
}

fn link(target: &Path, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {} -> {}: {e}", link.display(), target.display()));
}

/// Debian's own netboot chain: the firmware's PXE client fetches the
/// signed shim (`bootnetx64.efi`) by TFTP; shim fetches `grubx64.efi`
/// through our PXE Base Code's Mtftp; GRUB configures its own network
/// stack from the DHCP ACK in our PXE Mode, reads its `grub.cfg` and the
/// installer's kernel and 40 MB initrd over TFTP through our SNP; the
/// installer's userspace asks its first question on serial.
#[test]
fn debian_netboot_chain_reaches_the_installer() {
    let root = debian_tftp_root();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .nic(Network::tftp(&root, DEBIAN_BOOT_FILE))
        .spawn();
    let dhcp = vm.expect("pxe: DHCP on", TIMEOUT).unwrap();
    assert!(dhcp.line.contains("address 10.0.2.15/24"), "{}", dhcp.line);
    vm.expect(
        "pxe: boot file tftp://10.0.2.2/debian-installer/amd64/bootnetx64.efi",
        TIMEOUT,
    )
    .unwrap();
    let command_line = vm.expect("Kernel command line:", TIMEOUT).unwrap();
    assert!(
        command_line.line.contains("vmfw.entry=pxe"),
        "{}",
        command_line.line
    );
    vm.expect(INSTALLER_QUESTION, Duration::from_secs(400))
        .unwrap();
}

/// A NIC whose network has no DHCP server, put first with `boot=net`: the
/// network option gives up within 10 s, says why, and the disk boots.
#[test]
fn without_a_dhcp_server_the_disk_boots() {
    let image = default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .nic(Network::Unplugged)
        .disk(&image.disk)
        .append("boot=net")
        .spawn();
    let failed = vm.expect("pxe: boot failed:", TIMEOUT).unwrap();
    assert!(
        failed.line.contains("no DHCP answer in 8"),
        "{}",
        failed.line
    );
    vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    expect_linux_environment(&mut vm, TIMEOUT);
}

/// HTTP boot of a disk image: `http=` names a URL that redirects to the
/// default test disk served in the chunked coding; the firmware downloads
/// it, registers it with EFI_RAM_DISK_PROTOCOL, and boots its ESP's
/// `\EFI\BOOT\BOOTX64.EFI` (shim, GRUB), which reads the kernel from the
/// RAM disk. The VM has no disk of its own.
#[test]
fn http_boot_of_a_disk_image_through_a_ram_disk() {
    let image = default_image();
    let server = HttpServer::start(&[
        ("/boot", Route::Redirect("/images/disk.img".into())),
        ("/images/disk.img", Route::Chunked(image.disk.clone())),
    ]);
    let mut vm = Vm::builder()
        .firmware(firmware())
        .nic(Network::user())
        .append(format!("http={}", server.guest_url("/boot")))
        .spawn();
    vm.expect("redirects to http://10.0.2.2:", TIMEOUT).unwrap();
    let fetched = vm
        .expect("bytes registered as a RAM disk", TIMEOUT)
        .unwrap();
    assert!(fetched.line.contains("69206016 bytes"), "{}", fetched.line);
    vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    for line in ["INIT: efi=yes", "INIT: efivar-rw=ok", "INIT: acpi=yes"] {
        vm.expect(line, TIMEOUT).unwrap();
    }
    vm.expect("INIT: done", TIMEOUT).unwrap();
}

/// A URL the server answers with 404: HTTP boot says so and the disk boots.
#[test]
fn an_http_404_falls_through_to_the_disk() {
    let image = default_image();
    let server = HttpServer::start(&[]);
    let mut vm = Vm::builder()
        .firmware(firmware())
        .nic(Network::user())
        .disk(&image.disk)
        .append(format!("http={}", server.guest_url("/missing.efi")))
        .spawn();
    let failed = vm.expect("http: boot failed:", TIMEOUT).unwrap();
    assert!(
        failed.line.contains("server answered 404"),
        "{}",
        failed.line
    );
    vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    expect_linux_environment(&mut vm, TIMEOUT);
}

/// HTTP boot of an installer ISO: the firmware sees ISO 9660, registers a
/// virtual CD, finds its El Torito image on the RAM disk's 512-byte blocks
/// and boots the shim and GRUB in it, which load the kernel and initrd from
/// the ISO's file system.
#[test]
fn http_boot_of_an_installer_iso() {
    let kernel = debian_kernel();
    let iso = installer_iso(
        "vmfw HTTP boot test",
        &kernel.vmlinuz,
        &initramfs("", &[]),
        "console=ttyS0 panic=-1 vmfw.entry=http-iso",
    );
    let server = HttpServer::start(&[("/installer.iso", Route::File(iso))]);
    let mut vm = Vm::builder()
        .firmware(firmware())
        .nic(Network::user())
        .append(format!("http={}", server.guest_url("/installer.iso")))
        .spawn();
    vm.expect("bytes registered as a RAM CD", TIMEOUT).unwrap();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=http-iso"),
        "{}",
        cmdline.line
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
}

/// A PXE boot file the TFTP server does not have: the server's error is
/// reported and the disk boots.
#[test]
fn a_tftp_error_falls_through_to_the_disk() {
    let image = default_image();
    let root = cache_dir("tftp/empty");
    let mut vm = Vm::builder()
        .firmware(firmware())
        .nic(Network::tftp(&root, "missing.efi"))
        .disk(&image.disk)
        .append("boot=net")
        .spawn();
    let failed = vm.expect("pxe: boot failed:", TIMEOUT).unwrap();
    assert!(
        failed.line.contains("TFTP server error 1"),
        "{}",
        failed.line
    );
    vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    expect_linux_environment(&mut vm, TIMEOUT);
}

/// iPXE from an ESP: Debian 12's `ipxe.efi` is the disk's
/// `\EFI\BOOT\BOOTX64.EFI`, so it boots before the firmware's own PXE
/// option. It binds our SNP, runs its own DHCP, fetches the DHCP boot file
/// (`boot.ipxe`) by TFTP and runs it as a script, which loads the test
/// kernel and initramfs over HTTP and boots them through the kernel's EFI
/// stub. iPXE idles in a bare `hlt` (`cpu_nap`) and so depends on the
/// firmware's timer tick with interrupts enabled below TPL_HIGH_LEVEL.
#[test]
fn ipxe_from_the_esp_boots_linux_over_http() {
    // usr/lib/ipxe/ipxe.efi is an absolute symlink to /boot/ipxe.efi,
    // which only resolves on an installed system.
    let ipxe = vm_tests::deb("ipxe").join("boot/ipxe.efi");
    let kernel = vm_tests::debian_kernel();
    let server = HttpServer::start(&[
        ("/vmlinuz", Route::File(kernel.vmlinuz.clone())),
        ("/initrd.img", Route::File(vm_tests::initramfs("", &[]))),
    ]);
    // This iPXE (2019) hands the initrd to the kernel's EFI stub only as a
    // file of the virtual file system it boots the kernel from, which the
    // stub reads when the command line names it (`initrd=`).
    let root = cache_dir("tftp/ipxe");
    std::fs::write(
        root.join("boot.ipxe"),
        format!(
            "#!ipxe\n\
             kernel {} initrd=initrd.img console=ttyS0 vmfw.entry=ipxe\n\
             initrd {}\n\
             boot\n",
            server.guest_url("/vmlinuz"),
            server.guest_url("/initrd.img"),
        ),
    )
    .unwrap();
    let disk = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", &ipxe)
        .build();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .nic(Network::tftp(&root, "boot.ipxe"))
        .disk(&disk)
        .spawn();
    let command_line = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        command_line.line.contains("vmfw.entry=ipxe"),
        "{}",
        command_line.line
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
}

const TIMEOUT: Duration = Duration::from_secs(240);
