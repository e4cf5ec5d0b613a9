//! Secure Boot (issue 19): keys from the VMM's key input (a PVH module,
//! QEMU `-initrd`), the variables Linux sees, and LoadImage's verdict on
//! every image it loads. Each boot passes on what the booted system prints:
//! the initramfs reads `SecureBoot` and the kernel's lockdown state, a test
//! application prints `HELLO: running`.
//!
//! The firmware before this had no Secure Boot: no key input, no
//! `SecureBoot` variable (the initramfs printed `secureboot=absent`), and
//! every image ran.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use secure_boot::signature_list::SignatureList;
use vm_tests::images::{SIGNED_GRUB, SIGNED_SHIM, bls_entry, grub_cfg};
use vm_tests::sb_keys::{TestKey, key_input, microsoft, microsoft_keys, test_key, x509};
use vm_tests::{
    EspBuilder, Program, TempDisk, Vm, cache_dir, deb, deb_trixie, debian_kernel, debian13_kernel,
    efi_app, firmware, initramfs_for, initramfs_with, publish, temp_sibling, workspace_root,
};
use vmfw_keys::{MICROSOFT_DB, MICROSOFT_KEK, VMFW_OWNER};

const TIMEOUT: Duration = Duration::from_secs(300);

/// What the initramfs reports: SecureBoot and SetupMode (the data byte
/// after the 4-byte attributes efivarfs puts first) and the lockdown LSM.
const REPORT_SCRIPT: &str = r#"
vars=/sys/firmware/efi/efivars
byte() { [ -e "$vars/$1" ] || { echo absent; return; }; set -- $(od -An -tu1 "$vars/$1"); echo "$5"; }
echo "INIT: secureboot=$(byte SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c) setupmode=$(byte SetupMode-8be4df61-93ca-11d2-aa0d-00e098032b8c)"
mkdir -p /sys/kernel/security
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
echo "INIT: lockdown=$(cat /sys/kernel/security/lockdown 2>/dev/null || echo absent)"
if command -v mokutil >/dev/null; then
  echo "INIT: mokutil sb-state: $(mokutil --sb-state 2>&1 | tr '\n' ' ')"
  echo "INIT: mokutil enrolled: $(mokutil --list-enrolled 2>&1 | grep -c '^\[key') keys, $(mokutil --list-enrolled 2>&1 | grep -m1 'Subject:' | tr -s ' ')"
fi
"#;

/// Debian 12's signed shim -> signed GRUB -> signed kernel as the
/// removable-media path, plus a BLS Type #1 entry for the same kernel;
/// `bootx64` replaces shim when given (an unsigned image). The initramfs
/// has shim's `mokutil`.
fn debian12_disk(bootx64: Option<&Path>) -> PathBuf {
    let kernel = debian_kernel();
    let initrd = initramfs_with(REPORT_SCRIPT, &[], &[Program::Mokutil]);
    let version = &kernel.version;
    let shim = deb("shim-signed").join(SIGNED_SHIM);
    let grub = deb("grub-efi-amd64-signed").join(SIGNED_GRUB);
    EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .bytes(
            "/loader/entries/debian.conf",
            bls_entry(
                "Debian (secure boot test)",
                version,
                "console=ttyS0 panic=-1 vmfw.entry=bls",
            ),
        )
        .file(
            "/EFI/BOOT/BOOTX64.EFI",
            bootx64.map_or(shim, Path::to_path_buf),
        )
        .file("/EFI/BOOT/grubx64.efi", grub)
        .bytes(
            "/EFI/debian/grub.cfg",
            grub_cfg(
                "Debian 12 (secure boot test)",
                version,
                "console=ttyS0 panic=-1 vmfw.entry=grub",
            ),
        )
        .build()
}

/// Debian 13's chain: signed shim 16.1 -> GRUB 2.12 -> kernel 6.12.
fn debian13_disk() -> PathBuf {
    let kernel = debian13_kernel();
    let initrd = initramfs_for(&kernel, REPORT_SCRIPT, &[]);
    let version = &kernel.version;
    EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .file(
            "/EFI/BOOT/BOOTX64.EFI",
            deb_trixie("shim-signed").join(SIGNED_SHIM),
        )
        .file(
            "/EFI/BOOT/grubx64.efi",
            deb_trixie("grub-efi-amd64-signed").join(SIGNED_GRUB),
        )
        .bytes(
            "/EFI/debian/grub.cfg",
            grub_cfg(
                "Debian 13 (secure boot test)",
                version,
                "console=ttyS0 panic=-1 vmfw.entry=grub",
            ),
        )
        .build()
}

fn debian_ca() -> SignatureList {
    x509(
        &workspace_root().join("secure-boot/tests/data/debian-secure-boot-ca.der"),
        VMFW_OWNER,
    )
}

fn boot(disk: &Path, keys: Option<&Path>) -> Vm {
    let mut builder = Vm::builder().firmware(firmware()).disk(disk);
    if let Some(keys) = keys {
        builder = builder.arg("-initrd").arg(keys.to_str().unwrap());
    }
    builder.spawn()
}

fn expect(vm: &mut Vm, pattern: &str) -> String {
    match vm.expect(pattern, TIMEOUT) {
        Ok(found) => found.line,
        Err(e) => panic!("no '{pattern}': {e:?}\n{}", vm.transcript()),
    }
}

/// The guest's own report of Secure Boot on and the kernel locked down.
fn expect_secure_boot_on(vm: &mut Vm) {
    expect(vm, "INIT: secureboot=1 setupmode=0");
    let lockdown = expect(vm, "INIT: lockdown=");
    assert!(lockdown.contains("[integrity]"), "{lockdown}");
}

#[test]
fn debian12_shim_grub_boots_with_microsoft_keys() {
    let mut vm = boot(&debian12_disk(None), Some(&microsoft_keys()));
    let line = expect(&mut vm, "secure boot: \\EFI\\BOOT\\BOOTX64.EFI allowed");
    assert!(line.contains("db certificate"), "{line}");
    expect(&mut vm, "INIT: cmdline=");
    assert!(vm.transcript().contains("vmfw.entry=grub"));
    expect_secure_boot_on(&mut vm);
    // mokutil reads SecureBoot through libefivar, and the MOK list shim
    // mirrored for the OS (MokListRT, its built-in Debian CA) through the
    // kernel's MOK variable table or efivarfs.
    expect(&mut vm, "INIT: mokutil sb-state: SecureBoot enabled");
    let enrolled = expect(&mut vm, "INIT: mokutil enrolled:");
    assert!(
        enrolled.contains("1 keys") && enrolled.contains("Debian Secure Boot CA"),
        "{enrolled}"
    );
}

#[test]
fn debian13_shim_grub_boots_with_microsoft_keys() {
    let mut vm = boot(&debian13_disk(), Some(&microsoft_keys()));
    expect(&mut vm, "secure boot: \\EFI\\BOOT\\BOOTX64.EFI allowed");
    expect_secure_boot_on(&mut vm);
}

/// Without a key input the platform is in setup mode: SecureBoot 0, and
/// every image runs as before.
#[test]
fn without_a_key_input_the_platform_is_in_setup_mode() {
    let mut vm = boot(&debian12_disk(None), None);
    expect(&mut vm, "secure boot: off (setup mode");
    expect(&mut vm, "INIT: secureboot=0 setupmode=1");
    let lockdown = expect(&mut vm, "INIT: lockdown=");
    assert!(lockdown.contains("[none]"), "{lockdown}");
    let sb_state = expect(&mut vm, "INIT: mokutil sb-state:");
    assert!(
        sb_state.contains("SecureBoot disabled") && sb_state.contains("Setup Mode"),
        "{sb_state}"
    );
}

/// What the unsigned GRUB's embedded configuration prints before it halts.
const UNSIGNED_GRUB_RUNNING: &str = "UNSIGNED-GRUB: running";

/// GRUB as a user builds it, unsigned: `grub-mkimage` (grub-common) over
/// Debian's `grub-efi-amd64-bin` modules, with an embedded configuration
/// that prints [`UNSIGNED_GRUB_RUNNING`] and halts (EFI ResetSystem
/// shutdown, so QEMU exits).
fn unsigned_grub() -> PathBuf {
    let modules = deb("grub-efi-amd64-bin").join("usr/lib/grub/x86_64-efi");
    let dir = cache_dir("secure-boot-keys");
    let config = temp_sibling(&dir.join("grub-early.cfg"));
    std::fs::write(&config, format!("echo {UNSIGNED_GRUB_RUNNING}\nhalt\n")).unwrap();
    let out = dir.join("grubx64-mkimage.efi");
    let scratch = temp_sibling(&out);
    let status = Command::new("grub-mkimage")
        .args(["-O", "x86_64-efi", "-p", "/EFI/BOOT"])
        .arg("-d")
        .arg(&modules)
        .arg("-c")
        .arg(&config)
        .arg("-o")
        .arg(&scratch)
        .args(["echo", "halt"])
        .status()
        .expect("grub-mkimage (Debian package grub-common) must be installed");
    assert!(status.success(), "grub-mkimage");
    let _ = std::fs::remove_file(&config);
    publish(&scratch, &out);
    let image = std::fs::read(&out).unwrap();
    assert!(
        secure_boot::authenticode::certificates(&image)
            .unwrap()
            .is_empty(),
        "grub-mkimage's GRUB carries a signature"
    );
    out
}

/// An unsigned GRUB built with grub-mkimage as `BOOTX64.EFI`. With Secure
/// Boot off it runs. With Microsoft's keys and Debian's CA in db it is
/// refused with EFI_SECURITY_VIOLATION and the next option, the built-in
/// BLS loader, boots Debian's signed kernel, which db allows through
/// Debian's CA; the kernel is verified too.
#[test]
fn an_unsigned_grub_is_refused_and_the_next_option_boots() {
    let disk = debian12_disk(Some(&unsigned_grub()));
    let mut vm = boot(&disk, None);
    expect(&mut vm, UNSIGNED_GRUB_RUNNING);
    if let Err(e) = vm.wait_exit(TIMEOUT) {
        panic!("GRUB's halt did not power off: {e:?}\n{}", vm.transcript());
    }

    let mut db = microsoft(&MICROSOFT_DB);
    db.push(debian_ca());
    let keys = key_input(
        "microsoft-debian",
        vec![("KEK", microsoft(&MICROSOFT_KEK)), ("db", db)],
    );
    let mut vm = boot(&disk, Some(&keys));
    let refused = expect(&mut vm, "secure boot: \\EFI\\BOOT\\BOOTX64.EFI refused");
    assert!(
        refused.contains("EFI_SECURITY_VIOLATION") && refused.contains("not in db"),
        "{refused}"
    );
    expect(&mut vm, "allowed: signature 0 verified by db");
    expect(&mut vm, "INIT: cmdline=");
    assert!(!vm.transcript().contains(UNSIGNED_GRUB_RUNNING));
    assert!(vm.transcript().contains("vmfw.entry=bls"));
    expect_secure_boot_on(&mut vm);
}

/// `kernel=` direct boot obeys the same policy: Debian's kernel is signed
/// by Debian, whose CA the Microsoft-only db does not hold.
#[test]
fn a_kernel_db_does_not_allow_is_refused_for_direct_boot() {
    let disk = debian12_disk(None);
    let version = debian_kernel().version;
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&disk)
        .append(format!(
            "kernel=\\vmlinuz-{version} initrd=\\initrd.img-{version}"
        ))
        .arg("-initrd")
        .arg(microsoft_keys().to_str().unwrap())
        .spawn();
    let refused = expect(
        &mut vm,
        &format!("secure boot: \\vmlinuz-{version} refused"),
    );
    assert!(refused.contains("not in db"), "{refused}");
    // The next option, shim from the removable path, boots the same kernel
    // through GRUB, which shim verifies with Debian's key.
    expect(&mut vm, "INIT: cmdline=");
    assert!(vm.transcript().contains("vmfw.entry=grub"));
    expect_secure_boot_on(&mut vm);
}

/// The PE/COFF file offset of the first section's raw data.
fn first_section_offset(image: &[u8]) -> usize {
    let u16_at = |at: usize| u16::from_le_bytes([image[at], image[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(image[at..at + 4].try_into().unwrap()) as usize;
    let pe = u32_at(0x3c);
    let optional_size = u16_at(pe + 4 + 16);
    let first_section = pe + 4 + 20 + optional_size;
    u32_at(first_section + 20)
}

/// `hello` signed with sbsign by `key` (a copy in the cache).
fn signed_hello(key: &TestKey, name: &str) -> PathBuf {
    let out = cache_dir("secure-boot-keys").join(format!("{name}.efi"));
    let status = Command::new("sbsign")
        .arg("--key")
        .arg(&key.key)
        .arg("--cert")
        .arg(&key.cert)
        .arg("--output")
        .arg(&out)
        .arg(efi_app("hello"))
        .status()
        .expect("sbsign (Debian package sbsigntool) must be installed");
    assert!(status.success(), "sbsign");
    out
}

/// Boots `image` as `BOOTX64.EFI` with `keys`; true when it ran.
fn hello_runs(image: &Path, keys: &Path) -> (bool, String) {
    let disk = TempDisk::copy_of(
        &EspBuilder::new()
            .file("/EFI/BOOT/BOOTX64.EFI", image)
            .build(),
        "secure-boot-hello",
    );
    let mut vm = boot(&disk.0, Some(keys));
    let verdict = expect(&mut vm, "secure boot: \\EFI\\BOOT\\BOOTX64.EFI ");
    let ran = verdict.contains(" allowed: ");
    if ran {
        expect(&mut vm, "HELLO: running");
    } else {
        assert!(
            verdict.contains("refused (EFI_SECURITY_VIOLATION)"),
            "{verdict}"
        );
        assert!(!vm.transcript().contains("HELLO: running"));
    }
    (ran, verdict)
}

/// Own keys made with openssl, an application signed with sbsign: it runs;
/// one flipped byte of its code, its certificate in dbx, or its hash in dbx
/// refuse it; its hash alone in db lets the unsigned application run.
#[test]
fn own_keys_sign_revoke_and_hash() {
    let db_key = test_key("db");
    let signed = signed_hello(&db_key, "hello-signed");
    let unsigned = efi_app("hello");
    let sha256 =
        |path: &Path| secure_boot::authenticode::sha256(&std::fs::read(path).unwrap()).unwrap();
    let db = || vec![x509(&db_key.cert, VMFW_OWNER)];

    let keys = key_input("own", vec![("db", db())]);
    let (ran, verdict) = hello_runs(&signed, &keys);
    assert!(ran && verdict.contains("db certificate"), "{verdict}");

    let mut flipped_bytes = std::fs::read(&signed).unwrap();
    let code = first_section_offset(&flipped_bytes) + 16;
    flipped_bytes[code] ^= 0x01;
    let flipped = cache_dir("secure-boot-keys").join("hello-flipped.efi");
    std::fs::write(&flipped, flipped_bytes).unwrap();
    let (ran, verdict) = hello_runs(&flipped, &keys);
    assert!(!ran && verdict.contains("not in db"), "{verdict}");

    let revoked_cert = key_input("own-dbx-cert", vec![("db", db()), ("dbx", db())]);
    let (ran, verdict) = hello_runs(&signed, &revoked_cert);
    assert!(!ran && verdict.contains("certificate in dbx"), "{verdict}");

    let revoked_hash = key_input(
        "own-dbx-hash",
        vec![
            ("db", db()),
            (
                "dbx",
                vec![vmfw_keys::sha256_list(&[sha256(&signed)], VMFW_OWNER)],
            ),
        ],
    );
    let (ran, verdict) = hello_runs(&signed, &revoked_hash);
    assert!(!ran && verdict.contains("SHA-256 in dbx"), "{verdict}");

    let (ran, verdict) = hello_runs(&unsigned, &keys);
    assert!(!ran, "{verdict}");
    let hash_in_db = key_input(
        "own-db-hash",
        vec![(
            "db",
            vec![vmfw_keys::sha256_list(&[sha256(&unsigned)], VMFW_OWNER)],
        )],
    );
    let (ran, verdict) = hello_runs(&unsigned, &hash_in_db);
    assert!(ran && verdict.contains("SHA-256"), "{verdict}");
}

/// A key input that does not parse does not leave the machine unverified:
/// Secure Boot is on with no key, and shim does not run.
#[test]
fn a_malformed_key_input_verifies_everything_and_allows_nothing() {
    let mut bytes = std::fs::read(microsoft_keys()).unwrap();
    bytes.truncate(bytes.len() - 100);
    let keys = cache_dir("secure-boot-keys").join("truncated.keys");
    std::fs::write(&keys, bytes).unwrap();
    let mut vm = boot(&debian12_disk(None), Some(&keys));
    expect(&mut vm, "key input in PVH module 0 refused");
    expect(&mut vm, "secure boot: \\EFI\\BOOT\\BOOTX64.EFI refused");
    assert!(!vm.transcript().contains("Welcome to GRUB"));
}

/// The key variables on the ESP are not the policy: a `vars.bin` whose db
/// allows an unsigned application (written by a boot whose key input said
/// so, as an attacker with the disk could) is reported and replaced by the
/// VMM's db at the next start, which refuses the application.
#[test]
fn a_db_on_the_esp_does_not_widen_the_vmms_policy() {
    let unsigned = efi_app("hello");
    let disk = TempDisk::copy_of(
        &EspBuilder::new()
            .file("/EFI/BOOT/BOOTX64.EFI", &unsigned)
            .build(),
        "secure-boot-tamper",
    );
    let sha256 = secure_boot::authenticode::sha256(&std::fs::read(&unsigned).unwrap()).unwrap();
    let wide = key_input(
        "tamper-wide",
        vec![("db", vec![vmfw_keys::sha256_list(&[sha256], VMFW_OWNER)])],
    );
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .arg("-initrd")
        .arg(wide.to_str().unwrap())
        .spawn();
    expect(&mut vm, "HELLO: running");
    drop(vm);
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .arg("-initrd")
        .arg(microsoft_keys().to_str().unwrap())
        .spawn();
    let warning = expect(&mut vm, "secure boot: db in vars.bin is not the VMM's");
    assert!(warning.contains("the VMM's keys are kept"), "{warning}");
    expect(&mut vm, "secure boot: \\EFI\\BOOT\\BOOTX64.EFI refused");
    assert!(!vm.transcript().contains("HELLO: running"));
}
