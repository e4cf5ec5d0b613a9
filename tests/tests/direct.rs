//! Direct kernel boot named on the firmware command line (`kernel=`,
//! `initrd=`, `cmdline=`, `linux-boot=`; see README "Direct kernel boot"):
//! through the kernel's EFI stub, and through the Linux 64-bit boot protocol.
//! Each test passes only on lines printed by the booted kernel's `/init`.

use std::time::Duration;

use vm_tests::{
    EspBuilder, Vm, debian_kernel, default_image, expect_linux_environment, firmware, initramfs,
};

const TIMEOUT: Duration = Duration::from_secs(240);

/// Boots the default image's kernel and initrd with `kernel=` on the
/// firmware command line (which also has a shim/GRUB path and a BLS entry:
/// the direct boot must win over both) and checks what the guest saw.
fn direct_boot(entry: &str, method: &str) -> Vm {
    let image = default_image();
    let version = &image.kernel.version;
    let cmdline = format!("console=ttyS0 panic=-1 vmfw.entry={entry}");
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .append(format!(
            "kernel=\\vmlinuz-{version} initrd=/initrd.img-{version} cmdline=\"{cmdline}\"{method}"
        ))
        .spawn();
    let seen = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        seen.line.ends_with(&format!("INIT: cmdline={cmdline}")),
        "exactly the firmware's cmdline= reached /proc/cmdline: {}",
        seen.line
    );
    // The EFI system table reached the kernel on both paths.
    expect_linux_environment(&mut vm, TIMEOUT);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    vm
}

#[test]
fn firmware_cmdline_kernel_boots_through_efi_stub() {
    let vm = direct_boot("direct-stub", "");
    assert!(
        vm.find("Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path")
            .is_some(),
        "the EFI stub ran and read the initrd through LoadFile2"
    );
}

/// `linux-boot=protocol` forces the 64-bit boot protocol on Debian's kernel
/// (which has a stub): the stub's messages must be absent.
#[test]
fn firmware_cmdline_kernel_boots_through_boot_protocol() {
    let vm = direct_boot("direct-protocol", " linux-boot=protocol");
    assert!(
        vm.find("EFI stub:").is_none(),
        "the EFI stub did not run on the boot-protocol path"
    );
    assert!(
        vm.find("through the Linux boot protocol").is_some(),
        "the firmware took the boot-protocol path"
    );
}

/// A newc cpio archive (Linux Documentation/driver-api/early-userspace/
/// buffer-format.rst) holding one regular file.
fn cpio_with_file(name: &str, body: &[u8]) -> Vec<u8> {
    fn pad(archive: &mut Vec<u8>) {
        archive.resize(archive.len().next_multiple_of(4), 0);
    }
    fn entry(archive: &mut Vec<u8>, ino: u32, mode: u32, name: &str, body: &[u8]) {
        let fields = [ino, mode, 0, 0, 1, 0, body.len() as u32, 0, 0, 0, 0];
        archive.extend_from_slice(b"070701");
        for field in fields {
            archive.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        archive.extend_from_slice(format!("{:08x}{:08x}", name.len() + 1, 0).as_bytes());
        archive.extend_from_slice(name.as_bytes());
        archive.push(0);
        pad(archive);
        archive.extend_from_slice(body);
        pad(archive);
    }
    let mut archive = Vec::new();
    entry(&mut archive, 1, 0o100644, name, body);
    entry(&mut archive, 0, 0, "TRAILER!!!", &[]);
    archive
}

/// 40 MiB of initrd (more than the firmware's 32 MiB heap) reaches the
/// kernel: initrds are read into EFI pages. Two `initrd=` words are
/// concatenated; the second archive adds `/pad` to the first's root.
#[test]
fn large_second_initrd_from_firmware_cmdline_reaches_the_kernel() {
    const PAD_SIZE: usize = 40 << 20;
    let kernel = debian_kernel();
    let report = "echo \"INIT: pad=$(wc -c < /pad)\"";
    let cmdline = "console=ttyS0 panic=-1 vmfw.entry=direct-large";
    let disk = EspBuilder::new()
        .esp_size_mib(128)
        .file("/vmlinuz", &kernel.vmlinuz)
        .file("/initrd.img", initramfs(report, &[]))
        .bytes("/pad.img", cpio_with_file("pad", &vec![0x5a; PAD_SIZE]))
        .build();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&disk)
        .append(format!(
            "kernel=/vmlinuz initrd=/initrd.img initrd=/pad.img cmdline=\"{cmdline}\""
        ))
        .spawn();
    let seen = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(seen.line.ends_with(cmdline), "{}", seen.line);
    let pad = vm.expect("INIT: pad=", TIMEOUT).unwrap();
    assert!(
        pad.line.ends_with(&format!("INIT: pad={PAD_SIZE}")),
        "the whole second initrd arrived: {}",
        pad.line
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// A BLS Type #1 entry whose `linux` kernel has no EFI stub (Debian's kernel
/// with its `MZ` signature cleared, so it is no PE image; the boot protocol
/// reads nothing before offset 0x1f1) is booted through the boot protocol.
#[test]
fn stubless_kernel_from_bls_entry_boots_through_boot_protocol() {
    let kernel = debian_kernel();
    let mut stubless = std::fs::read(&kernel.vmlinuz).unwrap();
    assert_eq!(&stubless[..2], b"MZ", "Debian's kernel has an EFI stub");
    stubless[..2].copy_from_slice(&[0, 0]);
    let cmdline = "console=ttyS0 panic=-1 vmfw.entry=bls-stubless";
    let entry = format!(
        "title Debian without stub\n\
         linux /vmlinuz-nostub\n\
         initrd /initrd.img\n\
         options {cmdline}\n"
    );
    let disk = EspBuilder::new()
        .bytes("/vmlinuz-nostub", stubless)
        .file("/initrd.img", initramfs("", &[]))
        .bytes("/loader/entries/nostub.conf", entry)
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(&disk).spawn();
    let seen = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(seen.line.ends_with(cmdline), "{}", seen.line);
    expect_linux_environment(&mut vm, TIMEOUT);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(vm.find("EFI stub:").is_none(), "the stub did not run");
    assert!(
        vm.find("BLS entry 'Debian without stub' through the Linux boot protocol")
            .is_some()
    );
}

/// The firmware command line is taken whole up to 2048 bytes (Linux's length): `kernel=`
/// after 1,900 bytes of other words still boots. A longer line is refused with one visible
/// line, never cut (a cut line loses its last words or splits a quoted value), and the
/// default boot goes on without it.
#[test]
fn long_firmware_cmdline_is_taken_whole_or_refused() {
    let image = default_image();
    let version = &image.kernel.version;
    let cmdline = "console=ttyS0 panic=-1 vmfw.entry=direct-long";
    let words =
        format!("kernel=\\vmlinuz-{version} initrd=/initrd.img-{version} cmdline=\"{cmdline}\"");
    let padded = |total: usize| {
        let pad = total - words.len() - " vmfw.pad=".len();
        format!("vmfw.pad={} {words}", "x".repeat(pad))
    };

    let line = padded(2000);
    assert_eq!(line.len(), 2000);
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .append(line)
        .spawn();
    let seen = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        seen.line.ends_with(&format!("INIT: cmdline={cmdline}")),
        "the kernel= at byte 1,900 booted: {}",
        seen.line
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();

    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .append(padded(2100))
        .spawn();
    vm.expect(
        "firmware command line longer than 2048 bytes: ignored",
        TIMEOUT,
    )
    .unwrap();
    let seen = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        !seen.line.contains("vmfw.entry=direct-long"),
        "nothing on the refused line took effect: {}",
        seen.line
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// The firmware command line has one grammar: the words inside the quoted
/// `cmdline="..."` are the kernel's, never firmware options. Here the kernel
/// is missing, so the firmware goes on to the disk's own boot chain; before
/// the one grammar, the quoted `log=debug`, `menu=3` and `path=` turned on
/// debug logging, showed the boot menu and tried `\EFI\nope.efi` first.
#[test]
fn words_inside_the_kernels_quotes_are_not_the_firmwares() {
    let image = default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .append(r#"kernel=\nope cmdline="quiet log=debug menu=3 path=\EFI\nope.efi""#)
        .spawn();
    vm.expect("direct boot: no file system holds \\nope", TIMEOUT)
        .unwrap();
    // The disk's shim -> GRUB -> kernel chain reached userspace.
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(
        vm.find("debug: ").is_none(),
        "the quoted log=debug did not reach the firmware's logger"
    );
    assert!(
        vm.find("vmfw boot menu").is_none(),
        "the quoted menu=3 did not show the boot menu"
    );
    assert!(
        vm.find("nope.efi").is_none(),
        "the quoted path= was not tried"
    );
}

/// A firmware command line with an unclosed quote is refused whole with one
/// visible line (where the kernel's command line ends cannot be known), and
/// the disk's own chain boots.
#[test]
fn an_unclosed_quote_refuses_the_whole_firmware_cmdline() {
    let image = default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .append(r#"kernel=\nope menu=3 cmdline="quiet"#)
        .spawn();
    vm.expect(
        "firmware command line refused: the quote at byte 28 is never closed",
        TIMEOUT,
    )
    .unwrap();
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(
        vm.find("\\nope").is_none() && vm.find("vmfw boot menu").is_none(),
        "no word of the refused line took effect"
    );
}
