//! The globally defined variables of UEFI 2.10 §3.3 that the firmware
//! publishes (`loaders::global_variables`), seen from the booted systems:
//!
//! - `linux_sees_the_global_variables`: Debian's kernel booted through the
//!   built-in BLS loader finds PlatformLang, ConOut, OsIndicationsSupported
//!   and Timeout in efivarfs, with the spec's attributes and our values, as
//!   printed by the test initramfs's `/init`;
//! - `firmware_ui_request_and_timeout_drive_the_boot_menu`: the `menuvars`
//!   application sets OsIndications = BOOT_TO_FW_UI and resets (what
//!   `systemctl reboot --firmware-setup` does), with an unlisted
//!   PlatformLang; the firmware acknowledges the request by clearing the bit
//!   (§8.5.4), replaces the language with its own (§3.3, saying so on
//!   serial), and its boot menu waits for the user with no countdown. Picked there, the application sets `Timeout` to
//!   3 (what `efibootmgr -t 3` does) and resets: the menu now counts down
//!   from 3 s and boots it on its own.
use std::time::Duration;

use vm_tests::{
    BLS_CMDLINE, EspBuilder, TempDisk, Vm, bls_entry, debian_kernel, efi_app, firmware, initramfs,
};

const TIMEOUT: Duration = Duration::from_secs(240);

/// Lists the global variables and prints each of four as
/// `INIT: global <name>=<hex>`: efivarfs files are the 4-byte attributes
/// followed by the data.
const PRINT_GLOBALS: &str = r#"
g=8be4df61-93ca-11d2-aa0d-00e098032b8c
echo "INIT: global variables: $(ls /sys/firmware/efi/efivars | grep -- "-$g" | sed "s/-$g//" | tr '\n' ' ')"
for name in PlatformLang ConOut OsIndicationsSupported Timeout; do
  f=/sys/firmware/efi/efivars/$name-$g
  if [ -f "$f" ]; then
    echo "INIT: global $name=$(od -An -v -tx1 "$f" | tr -d ' \n')"
  else
    echo "INIT: global $name=absent"
  fi
done
"#;

/// Hex of an efivarfs file: attributes (u32 LE) then data.
fn efivarfs_hex(attributes: u32, data: &[u8]) -> String {
    attributes
        .to_le_bytes()
        .iter()
        .chain(data)
        .map(|b| format!("{b:02x}"))
        .collect()
}

const NV_BS_RT: u32 = 7;
const BS_RT: u32 = 6;

/// `VenHw(eb9f7613-...)/Uart(115200,8,N,1)/VenUtf8()`, the serial console's
/// device path (protocols/src/console/device_path.rs).
fn console_device_path() -> Vec<u8> {
    let mut path = vec![0x01, 0x04, 20, 0];
    path.extend_from_slice(&[
        0x13, 0x76, 0x9f, 0xeb, 0xe3, 0x5d, 0x36, 0x43, 0xbd, 0xe5, 0x3c, 0xe6, 0x4a, 0xa3, 0x24,
        0x2c,
    ]);
    path.extend_from_slice(&[0x03, 0x0e, 19, 0, 0, 0, 0, 0]);
    path.extend_from_slice(&115_200u64.to_le_bytes());
    path.extend_from_slice(&[8, 1, 1]);
    path.extend_from_slice(&[0x03, 0x0a, 20, 0]);
    path.extend_from_slice(&[
        0xd6, 0xa0, 0x15, 0xad, 0xec, 0x8b, 0xcf, 0x4a, 0xa0, 0x73, 0xd0, 0x1d, 0xe7, 0x7e, 0x2d,
        0x88,
    ]);
    path.extend_from_slice(&[0x7f, 0xff, 4, 0]);
    path
}

fn expect_global(vm: &mut Vm, name: &str, want: &str) {
    let line = vm
        .expect(&format!("INIT: global {name}="), TIMEOUT)
        .unwrap()
        .line;
    let got = line.split_once('=').map_or("", |(_, v)| v.trim());
    assert_eq!(got, want, "{name} as the booted Linux reads it");
}

#[test]
fn linux_sees_the_global_variables() {
    let kernel = debian_kernel();
    let version = &kernel.version;
    let disk = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(
            &format!("/initrd.img-{version}"),
            initramfs(PRINT_GLOBALS, &[]),
        )
        .bytes(
            "/loader/entries/debian.conf",
            bls_entry("Debian globals", version, BLS_CMDLINE),
        )
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(&disk).spawn();

    vm.expect("INIT: efi=yes", TIMEOUT).unwrap();
    let listed = vm.expect("INIT: global variables:", TIMEOUT).unwrap().line;
    for name in [
        "PlatformLangCodes",
        "PlatformLang",
        "LangCodes",
        "Lang",
        "ConIn",
        "ConOut",
        "ErrOut",
        "ConInDev",
        "ConOutDev",
        "ErrOutDev",
        "Timeout",
        "BootOptionSupport",
        "OsIndicationsSupported",
    ] {
        assert!(
            listed.split_whitespace().any(|n| n == name),
            "{name} in efivarfs: {listed}"
        );
    }
    expect_global(&mut vm, "PlatformLang", &efivarfs_hex(NV_BS_RT, b"en-US\0"));
    expect_global(
        &mut vm,
        "ConOut",
        &efivarfs_hex(NV_BS_RT, &console_device_path()),
    );
    expect_global(
        &mut vm,
        "OsIndicationsSupported",
        &efivarfs_hex(BS_RT, &1u64.to_le_bytes()),
    );
    expect_global(
        &mut vm,
        "Timeout",
        &efivarfs_hex(NV_BS_RT, &0u16.to_le_bytes()),
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// The text after the last boot menu drawn so far.
fn since_last_menu(vm: &Vm) -> String {
    let transcript = vm.transcript();
    let start = transcript.rfind("vmfw boot menu").unwrap_or(0);
    transcript[start..].to_owned()
}

#[test]
fn firmware_ui_request_and_timeout_drive_the_boot_menu() {
    let image = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("menuvars"))
        .build();
    let disk = TempDisk::copy_of(&image, "menuvars");
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .arg("-action")
        .arg("reboot=reset")
        .spawn();
    vm.expect("MENUVARS: firmware UI requested, resetting", TIMEOUT)
        .unwrap();
    vm.expect("vmfw boot menu", TIMEOUT).unwrap();
    vm.expect("Up/Down to select, Enter to boot.", TIMEOUT)
        .unwrap();
    // The firmware UI waits for the user: no countdown, and nothing boots
    // on its own meanwhile.
    std::thread::sleep(Duration::from_secs(5));
    let waiting = since_last_menu(&vm);
    assert!(
        !waiting.contains("Booting the selected option in"),
        "the firmware UI counts down: {waiting}"
    );
    assert!(
        !waiting.contains("MENUVARS:"),
        "something booted without the user: {waiting}"
    );
    vm.send(b"\r").unwrap();
    let report = vm.expect("MENUVARS: OsIndications", TIMEOUT).unwrap().line;
    assert!(
        report.contains("MENUVARS: OsIndications=0x0"),
        "the firmware cleared BOOT_TO_FW_UI: {report}"
    );
    let lang = vm.expect("MENUVARS: PlatformLang", TIMEOUT).unwrap().line;
    assert!(
        lang.contains("MENUVARS: PlatformLang=en-US"),
        "the firmware replaced the unlisted language: {lang}"
    );
    assert!(
        vm.find("PlatformLang \"x-vmfw\" is not one of").is_some(),
        "the firmware said it replaced PlatformLang"
    );

    // Timeout = 3: the menu counts down from 3 s and boots by itself.
    vm.expect("MENUVARS: Timeout set, resetting", TIMEOUT)
        .unwrap();
    vm.expect("Booting the selected option in 3 s.", TIMEOUT)
        .unwrap();
    vm.expect("MENUVARS: booted after the countdown", TIMEOUT)
        .unwrap();
    vm.expect("MENUVARS: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}
