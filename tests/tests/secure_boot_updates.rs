//! Secure Boot authenticated variable writes (issue 19; UEFI 2.10 §8.2.2,
//! §32.3): the `authvar` test application SetVariables PK/KEK/db with
//! EFI_VARIABLE_AUTHENTICATION_2 payloads this file builds (the signed
//! bytes in Rust, the PKCS#7 detached signature with `openssl smime
//! -noattr`, as efitools' sign-efi-sig-list makes it), prints each Status
//! and the key variables, and loads `hello.efi`, which runs only when db
//! allows it. The firmware before this answered every authenticated write
//! of a key variable with EFI_UNSUPPORTED.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use secure_boot::authenticode::EFI_CERT_TYPE_PKCS7_GUID;
use secure_boot::signature_list::{SignatureList, serialise};
use vm_tests::sb_keys::{TestKey, test_key, write_key_input};
use vm_tests::{EspBuilder, TempDisk, Vm, crc32, deb, efi_app, firmware};
use vmfw_keys::VMFW_OWNER;

const TIMEOUT: Duration = Duration::from_secs(120);
const GLOBAL: [u8; 16] = vmfw_keys::guid("8be4df61-93ca-11d2-aa0d-00e098032b8c");
const IMAGE_SECURITY_DATABASE: [u8; 16] = vmfw_keys::guid("d719b2cb-3d3a-4596-a3bc-dad00e67656f");
/// NV|BS|RT|TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
const AT: u32 = 0x27;
const APPEND: u32 = AT | 0x40;
const SUCCESS: &str = "status=0x0";
const SECURITY_VIOLATION: &str = "status=0x800000000000001a";

/// The test key `name` of these tests (`update-` keys, apart from
/// secure_boot.rs's).
fn key(name: &str) -> TestKey {
    test_key(&format!("update-{name}"))
}

fn x509(key: &TestKey) -> SignatureList {
    vm_tests::sb_keys::x509(&key.cert, VMFW_OWNER)
}

fn hash_of(image: &Path) -> SignatureList {
    let sha256 = secure_boot::authenticode::sha256(&std::fs::read(image).unwrap()).unwrap();
    vmfw_keys::sha256_list(&[sha256], VMFW_OWNER)
}

fn lists(lists: &[SignatureList]) -> Vec<u8> {
    serialise(lists).unwrap()
}

/// A key input with exactly `entries` (no PK unless given).
fn key_input(name: &str, entries: Vec<(&str, Vec<SignatureList>)>) -> PathBuf {
    write_key_input(&format!("update-{name}"), &entries)
}

/// EFI_TIME of midnight, 1 January `year`.
fn time(year: u16) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..2].copy_from_slice(&year.to_le_bytes());
    t[2] = 1;
    t[3] = 1;
    t
}

fn guid_of(name: &str) -> [u8; 16] {
    if name == "PK" || name == "KEK" {
        GLOBAL
    } else {
        IMAGE_SECURITY_DATABASE
    }
}

/// A detached PKCS#7 SignedData (in its ContentInfo) of `data` by `key`.
fn sign(key: &TestKey, data: &[u8]) -> Vec<u8> {
    let dir = tempdir();
    let input = dir.join("signed.bin");
    let output = dir.join("signature.der");
    std::fs::write(&input, data).unwrap();
    let status = Command::new("openssl")
        .args(["smime", "-sign", "-binary", "-noattr", "-md", "sha256"])
        .args(["-outform", "DER"])
        .arg("-signer")
        .arg(&key.cert)
        .arg("-inkey")
        .arg(&key.key)
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success(), "openssl smime -sign");
    let signature = std::fs::read(&output).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    signature
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vmfw-authvar-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How a payload is signed.
enum Signer<'a> {
    /// CertData is empty: no signature at all.
    Unsigned,
    /// A SignedData in its ContentInfo, as `openssl smime` writes it.
    By(&'a TestKey),
    /// The bare SignedData, as efitools' `sign-efi-sig-list` writes it.
    BareBy(&'a TestKey),
}

/// The length of the DER TLV header at the start of `der`, and of its contents.
fn der_header(der: &[u8]) -> (usize, usize) {
    match der[1] {
        n if n < 0x80 => (2, n as usize),
        n => {
            let bytes = (n & 0x7f) as usize;
            let len = der[2..2 + bytes]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | b as usize);
            (2 + bytes, len)
        }
    }
}

/// The SignedData inside a ContentInfo { contentType, [0] EXPLICIT content }.
fn bare_signed_data(content_info: &[u8]) -> Vec<u8> {
    let (outer, _) = der_header(content_info);
    let rest = &content_info[outer..];
    const SIGNED_DATA_OID: [u8; 11] = [6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 7, 2];
    assert!(
        rest.starts_with(&SIGNED_DATA_OID),
        "not a ContentInfo of SignedData"
    );
    let (oid_header, oid_len) = der_header(rest);
    let rest = &rest[oid_header + oid_len..];
    let (explicit, _) = der_header(rest);
    let inner = &rest[explicit..];
    let (header, len) = der_header(inner);
    inner[..header + len].to_vec()
}

/// EFI_VARIABLE_AUTHENTICATION_2 for `name` with `attributes`, `year` and
/// `data` (§8.2.2): the signature covers name (UCS-2, no NUL), vendor
/// GUID, attributes, TimeStamp and data.
fn payload(name: &str, attributes: u32, year: u16, data: &[u8], signer: Signer<'_>) -> Vec<u8> {
    let timestamp = time(year);
    let mut signed: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    signed.extend_from_slice(&guid_of(name));
    signed.extend_from_slice(&attributes.to_le_bytes());
    signed.extend_from_slice(&timestamp);
    signed.extend_from_slice(data);
    let cert_data = match signer {
        Signer::Unsigned => Vec::new(),
        Signer::By(key) => sign(key, &signed),
        Signer::BareBy(key) => bare_signed_data(&sign(key, &signed)),
    };
    let mut out = timestamp.to_vec();
    out.extend_from_slice(&(24 + cert_data.len() as u32).to_le_bytes());
    out.extend_from_slice(&0x0200u16.to_le_bytes());
    out.extend_from_slice(&0x0EF1u16.to_le_bytes());
    out.extend_from_slice(&EFI_CERT_TYPE_PKCS7_GUID);
    out.extend_from_slice(&cert_data);
    out.extend_from_slice(data);
    out
}

/// One record of `\authvar.bin` (tests/efi-apps/authvar).
fn record(name: &str, attributes: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![name.len() as u8];
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&attributes.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Copies `data` to `esp_path` on the ESP of `disk` (mtools, the ESP at 1 MiB).
fn put_file(disk: &Path, esp_path: &str, data: &[u8]) {
    let dir = tempdir();
    let file = dir.join("file");
    std::fs::write(&file, data).unwrap();
    let status = Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-o")
        .arg("-i")
        .arg(format!("{}@@1M", disk.display()))
        .arg(&file)
        .arg(format!("::{esp_path}"))
        .status()
        .unwrap();
    assert!(status.success(), "mcopy to {esp_path}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn get_file(disk: &Path, esp_path: &str) -> Vec<u8> {
    let dir = tempdir();
    let file = dir.join("file");
    let status = Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(format!("{}@@1M", disk.display()))
        .arg(format!("::{esp_path}"))
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success(), "mcopy from {esp_path}");
    let data = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    data
}

/// Boots `disk` (writable) with `keys` and waits for `AUTHVAR: done` or
/// `HELLO: running`; returns the serial transcript.
fn boot(disk: &Path, keys: &Path) -> String {
    boot_with(disk, keys, &[])
}

/// [`boot`] with extra QEMU arguments.
fn boot_with(disk: &Path, keys: &Path, qemu_args: &[&str]) -> String {
    let mut builder = Vm::builder()
        .firmware(firmware())
        .disk_writable(disk)
        .append("log=debug")
        .arg("-initrd")
        .arg(keys.to_str().unwrap());
    for arg in qemu_args {
        builder = builder.arg(*arg);
    }
    let mut vm = builder.spawn();
    if let Err(e) = vm.expect_any(&["AUTHVAR: done", "HELLO: running"], TIMEOUT) {
        panic!("authvar did not finish: {e:?}\n{}", vm.transcript());
    }
    let _ = vm.wait_exit(Duration::from_secs(30));
    let transcript = vm.transcript();
    // The firmware's measurement of each write (`log=debug`), for the README.
    for line in transcript.lines().filter(|l| l.contains("call arena")) {
        eprintln!("{}", line.trim_end());
    }
    transcript
}

/// The line of `transcript` starting with `prefix`, or a panic showing it all.
fn line<'a>(transcript: &'a str, prefix: &str) -> &'a str {
    transcript
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find(|l| l.contains(prefix))
        .unwrap_or_else(|| panic!("no line with '{prefix}':\n{transcript}"))
}

/// Flips the last byte of `needle` (an RSA signature's last byte) wherever
/// a slot of `vars.bin` holds it and reseals that slot's CRC, as an
/// attacker with the disk would.
fn tamper(vars: &mut [u8], needle: &[u8]) -> usize {
    let slot_size = vars.len() / 2;
    let mut patched = 0;
    for slot in vars.chunks_mut(slot_size) {
        let Some(at) = slot.windows(needle.len()).position(|w| w == needle) else {
            continue;
        };
        slot[at + needle.len() - 1] ^= 1;
        let used = u32::from_le_bytes(slot[12..16].try_into().unwrap()) as usize;
        slot[16..20].fill(0);
        let crc = crc32(&slot[..24 + used]);
        slot[16..20].copy_from_slice(&crc.to_le_bytes());
        patched += 1;
    }
    patched
}

/// User mode with the VMM's PK, KEK and a db holding only the test
/// application's hash. In one boot: an unsigned, a wrongly signed and a
/// KEK-signed db append, then an older-timestamp replace: only the
/// KEK-signed one is accepted (EFI_SECURITY_VIOLATION for the rest), and
/// `hello.efi`, whose hash it adds, then loads. After a reboot the kept
/// update is replayed: db still allows hello. Then the kept update's
/// signature is corrupted in `vars.bin` from the host: the firmware warns,
/// drops it and db is the VMM's again (hello refused).
#[test]
fn kek_signed_db_append_is_kept_and_bad_payloads_change_nothing() {
    let pk = key("pk");
    let kek = key("kek");
    let stranger = key("stranger");
    let authvar = efi_app("authvar");
    let hello = efi_app("hello");
    let keys = key_input(
        "user-mode",
        vec![
            ("PK", vec![x509(&pk)]),
            ("KEK", vec![x509(&kek)]),
            ("db", vec![hash_of(&authvar)]),
        ],
    );
    let hello_hash = lists(&[hash_of(&hello)]);
    let good = payload("db", APPEND, 2024, &hello_hash, Signer::By(&kek));
    let mut file = Vec::new();
    file.extend(record(
        "db",
        APPEND,
        &payload("db", APPEND, 2024, &hello_hash, Signer::Unsigned),
    ));
    file.extend(record(
        "db",
        APPEND,
        &payload("db", APPEND, 2024, &hello_hash, Signer::By(&stranger)),
    ));
    let mut flipped = good.clone();
    // The RSA signature ends CertData, just before the data.
    let at = flipped.len() - hello_hash.len() - 1;
    flipped[at] ^= 1;
    file.extend(record("db", APPEND, &flipped));
    file.extend(record("db", APPEND, &good));
    let authvar_only = lists(&[hash_of(&authvar)]);
    file.extend(record(
        "db",
        AT,
        &payload("db", AT, 2023, &authvar_only, Signer::By(&kek)),
    ));
    let disk = TempDisk::copy_of(
        &EspBuilder::new()
            .file("/EFI/BOOT/BOOTX64.EFI", &authvar)
            .file("/hello.efi", &hello)
            .bytes("/authvar.bin", file)
            .build(),
        "authvar-db-append",
    );

    let first = boot(&disk.0, &keys);
    for (index, expected) in [
        SECURITY_VIOLATION,
        SECURITY_VIOLATION,
        SECURITY_VIOLATION,
        SUCCESS,
        SECURITY_VIOLATION,
    ]
    .into_iter()
    .enumerate()
    {
        let set = line(&first, &format!("AUTHVAR: set db #{index} "));
        assert!(set.ends_with(expected), "#{index}: {set}\n{first}");
    }
    // Baseline 28 + 48; the appended hash joins the SHA-256 list.
    assert_eq!(line(&first, "AUTHVAR: db "), "AUTHVAR: db size=124");
    assert!(
        first.contains("AUTHVAR: LoadImage hello status=0x0"),
        "{first}"
    );
    assert!(first.contains("HELLO: running"), "{first}");

    let second = boot(&disk.0, &keys);
    assert!(!second.contains("AUTHVAR: set"), "{second}");
    assert!(
        second.contains("secure boot: on, keys from the VMM and 1 kept updates"),
        "{second}"
    );
    assert_eq!(line(&second, "AUTHVAR: db "), "AUTHVAR: db size=124");
    assert!(second.contains("HELLO: running"), "{second}");

    let mut vars = get_file(&disk.0, "/EFI/vmfw/vars.bin");
    let signature_end = &good[..good.len() - hello_hash.len()];
    let tail = &signature_end[signature_end.len() - 64..];
    assert!(
        tamper(&mut vars, tail) > 0,
        "kept update not found in vars.bin"
    );
    put_file(&disk.0, "/EFI/vmfw/vars.bin", &vars);
    let third = boot(&disk.0, &keys);
    let dropped = line(&third, "secure boot: kept update 0 (db) dropped");
    assert!(dropped.contains("signature"), "{dropped}");
    assert_eq!(line(&third, "AUTHVAR: db "), "AUTHVAR: db size=76");
    assert!(
        third.contains(&format!("AUTHVAR: LoadImage hello {SECURITY_VIOLATION}")),
        "{third}"
    );
    assert!(!third.contains("HELLO: running"), "{third}");
}

/// Setup mode (the VMM gives no PK): a PK enrolled with a payload it
/// signs itself leaves setup mode at once (SetupMode 0) and Secure Boot
/// is on at the next start; a PK-signed empty payload deletes it and
/// returns to setup mode, while a delete signed by another key is refused.
#[test]
fn pk_enrolled_in_setup_mode_leaves_it_and_a_signed_delete_returns() {
    let pk = key("pk");
    let stranger = key("stranger");
    let authvar = efi_app("authvar");
    let keys = key_input("setup-mode", vec![("db", vec![hash_of(&authvar)])]);
    let pk_list = lists(&[x509(&pk)]);
    let enroll = record(
        "PK",
        AT,
        &payload("PK", AT, 2024, &pk_list, Signer::BareBy(&pk)),
    );
    let disk = TempDisk::copy_of(
        &EspBuilder::new()
            .file("/EFI/BOOT/BOOTX64.EFI", &authvar)
            .bytes("/authvar.bin", enroll)
            .build(),
        "authvar-pk",
    );

    let first = boot(&disk.0, &keys);
    assert!(
        line(&first, "AUTHVAR: set PK #0 ").ends_with(SUCCESS),
        "{first}"
    );
    // SecureBoot follows at the next start (§32.3).
    assert!(
        first.contains("AUTHVAR: SetupMode=0 SecureBoot=0"),
        "{first}"
    );
    assert!(
        first.contains(&format!("AUTHVAR: PK size={}", pk_list.len())),
        "{first}"
    );

    let mut deletes = record(
        "PK",
        AT,
        &payload("PK", AT, 2025, &[], Signer::By(&stranger)),
    );
    deletes.extend(record(
        "PK",
        AT,
        &payload("PK", AT, 2025, &[], Signer::By(&pk)),
    ));
    put_file(&disk.0, "/authvar.bin", &deletes);
    let second = boot(&disk.0, &keys);
    assert!(
        second.contains("secure boot: on, keys from the VMM and 1 kept updates"),
        "{second}"
    );
    assert!(
        line(&second, "AUTHVAR: set PK #0 ").ends_with(SECURITY_VIOLATION),
        "{second}"
    );
    assert!(
        line(&second, "AUTHVAR: set PK #1 ").ends_with(SUCCESS),
        "{second}"
    );
    assert!(
        second.contains("AUTHVAR: SetupMode=1 SecureBoot=1"),
        "{second}"
    );
    assert!(second.contains("AUTHVAR: PK absent"), "{second}");

    let third = boot(&disk.0, &keys);
    assert!(
        third.contains("secure boot: off (setup mode, no PK; 2 kept updates)"),
        "{third}"
    );
    assert!(
        third.contains("AUTHVAR: SetupMode=1 SecureBoot=0"),
        "{third}"
    );
}

/// At runtime, as Linux's efivarfs would: the application calls
/// ExitBootServices and then SetVariable (the firmware's boot heap is the
/// OS's now; the write runs in the static call arena). An unsigned append
/// is refused, a KEK-signed one accepted; after the warm reset (the
/// variable journal carries the change to the disk) the kept update is
/// replayed and db allows `hello.efi`.
#[test]
fn kek_signed_db_append_at_runtime_survives_the_reset() {
    let pk = key("pk");
    let kek = key("kek");
    let authvar = efi_app("authvar");
    let hello = efi_app("hello");
    let keys = key_input(
        "user-mode",
        vec![
            ("PK", vec![x509(&pk)]),
            ("KEK", vec![x509(&kek)]),
            ("db", vec![hash_of(&authvar)]),
        ],
    );
    let hello_hash = lists(&[hash_of(&hello)]);
    let mut file = record(
        "db",
        APPEND,
        &payload("db", APPEND, 2024, &hello_hash, Signer::Unsigned),
    );
    file.extend(record(
        "db",
        APPEND,
        &payload("db", APPEND, 2024, &hello_hash, Signer::By(&kek)),
    ));
    let disk = TempDisk::copy_of(
        &EspBuilder::new()
            .file("/EFI/BOOT/BOOTX64.EFI", &authvar)
            .file("/hello.efi", &hello)
            .bytes("/runtime.bin", file)
            .build(),
        "authvar-runtime",
    );
    // A warm reset restarts the firmware in the same QEMU, RAM (and so the
    // variable journal) kept.
    let transcript = boot_with(&disk.0, &keys, &["-action", "reboot=reset"]);
    let refused = line(&transcript, "AUTHVAR: runtime set db #0 ");
    assert!(refused.ends_with(SECURITY_VIOLATION), "{transcript}");
    let accepted = line(&transcript, "AUTHVAR: runtime set db #1 ");
    assert!(accepted.ends_with(SUCCESS), "{transcript}");
    assert!(
        transcript.contains("secure boot: on, keys from the VMM and 1 kept updates"),
        "{transcript}"
    );
    assert_eq!(line(&transcript, "AUTHVAR: db "), "AUTHVAR: db size=124");
    assert!(transcript.contains("HELLO: running"), "{transcript}");
}

/// Bytes as a busybox `printf` format of octal escapes.
fn printf_octal(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:03o}")).collect()
}

/// efitools' `sign-efi-sig-list -a` (run on the host, as a key owner
/// would): an EFI_VARIABLE_AUTHENTICATION_2 append of `list` to `var`,
/// signed by `key`, timestamped `2024-01-01 00:00:00`.
fn efitools_append(var: &str, list: &[u8], key: &TestKey) -> Vec<u8> {
    let dir = tempdir();
    let esl = dir.join("list.esl");
    let auth = dir.join("update.auth");
    std::fs::write(&esl, list).unwrap();
    let status = Command::new(deb("efitools").join("usr/bin/sign-efi-sig-list"))
        .args(["-a", "-t", "2024-01-01 00:00:00"])
        .arg("-k")
        .arg(&key.key)
        .arg("-c")
        .arg(&key.cert)
        .arg(var)
        .arg(&esl)
        .arg(&auth)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run efitools' sign-efi-sig-list");
    assert!(status.success(), "sign-efi-sig-list -a {var}");
    let update = std::fs::read(&auth).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    update
}

/// From Linux after ExitBootServices, through efivarfs, with efitools as a
/// key owner uses them: `sign-efi-sig-list -a` signs an append of one hash
/// list with the KEK on the host and, after `chattr -i` of the efivarfs
/// file, `efi-updatevar -a -f` writes it in the guest (the kernel's efivarfs asks QueryVariableInfo with the append's
/// attributes first; the firmware refused APPEND_WRITE there, which failed
/// every append from Linux with EINVAL). Secure Boot is on with the test PK
/// and KEK and Debian's CA in db (the BLS loader's signed kernel boots).
/// An unsigned append is refused (efivarfs reports EFI_SECURITY_VIOLATION as
/// EACCES) and db stays; the KEK-signed one is accepted; after `reboot -f`
/// (a warm reset: the journal carries it) the firmware replays the kept
/// update and Linux sees the longer db again.
#[test]
fn efi_updatevar_appends_to_db_from_linux_and_it_survives_a_reboot() {
    use vm_tests::images::bls_entry;
    use vm_tests::{Program, debian_kernel, initramfs_with, workspace_root};
    let pk = key("pk");
    let kek = key("kek");
    let debian_ca = vmfw_keys::x509_list(
        &std::fs::read(workspace_root().join("secure-boot/tests/data/debian-secure-boot-ca.der"))
            .unwrap(),
        VMFW_OWNER,
    );
    let keys = key_input(
        "linux",
        vec![
            ("PK", vec![x509(&pk)]),
            ("KEK", vec![x509(&kek)]),
            ("db", vec![debian_ca.clone()]),
        ],
    );
    let baseline = lists(std::slice::from_ref(&debian_ca)).len();
    // One more list (a hash) appended to Debian's CA.
    let extra = lists(&[hash_of(&efi_app("hello"))]);
    let grown = baseline + extra.len();
    let unsigned = payload("db", APPEND, 2024, &extra, Signer::Unsigned);
    let signed = efitools_append("db", &extra, &kek);
    let script = format!(
        r#"
db=/sys/firmware/efi/efivars/db-d719b2cb-3d3a-4596-a3bc-dad00e67656f
size() {{ echo $(($(wc -c < $db) - 4)); }}
echo "INIT: db size=$(size)"
if [ "$(size)" -gt {baseline} ]; then
  poweroff -f
fi
printf '{unsigned}' > /unsigned.auth
printf '{signed}' > /signed.auth
chattr -i $db
efi-updatevar -a -f /unsigned.auth db; echo "INIT: unsigned append exit=$? db size=$(size)"
efi-updatevar -a -f /signed.auth db; echo "INIT: signed append exit=$? db size=$(size)"
[ "$(size)" -gt {baseline} ] || poweroff -f
sync
reboot -f
"#,
        unsigned = printf_octal(&unsigned),
        signed = printf_octal(&signed),
    );
    let kernel = debian_kernel();
    let version = &kernel.version;
    let initrd = initramfs_with(&script, &[], &[Program::EfiUpdatevar]);
    let disk = TempDisk::copy_of(
        &EspBuilder::new()
            .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
            .file(&format!("/initrd.img-{version}"), &initrd)
            .bytes(
                "/loader/entries/debian.conf",
                bls_entry("Debian", version, "console=ttyS0 panic=-1"),
            )
            .build(),
        "authvar-linux",
    );
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .arg("-initrd")
        .arg(keys.to_str().unwrap())
        .arg("-action")
        .arg("reboot=reset")
        .spawn();
    let second_boot = format!("INIT: db size={grown}");
    if let Err(e) = vm.expect(&second_boot, Duration::from_secs(300)) {
        panic!("no '{second_boot}': {e:?}\n{}", vm.transcript());
    }
    let _ = vm.wait_exit(Duration::from_secs(60));
    let transcript = vm.transcript();
    assert!(
        transcript.contains(&format!("INIT: db size={baseline}")),
        "{transcript}"
    );
    // efivarfs turns EFI_SECURITY_VIOLATION into EACCES.
    let unsigned = line(&transcript, "INIT: unsigned append exit=");
    assert!(
        unsigned.ends_with(&format!(" db size={baseline}")) && !unsigned.contains("exit=0 "),
        "{transcript}"
    );
    // efi-updatevar's words for EACCES.
    assert!(
        transcript.contains("Cannot write to db, wrong filesystem permissions"),
        "{transcript}"
    );
    let signed = line(&transcript, "INIT: signed append exit=");
    assert!(
        signed.ends_with(&format!("exit=0 db size={grown}")),
        "{transcript}"
    );
    assert!(
        transcript.contains("secure boot: on, keys from the VMM and 1 kept updates"),
        "{transcript}"
    );
}

/// The owner GUID of the test's dbx entry, so its bytes in `vars.bin`
/// differ from db's entry for the same hash.
const REVOKER: [u8; 16] = vmfw_keys::guid("5e1f0a3c-7b2d-4c8e-9f60-1a2b3c4d5e6f");

/// Editing `vars.bin` from the host, as an attacker with the disk would
/// (a byte of the stored value flipped and the slot's CRC resealed): a PK
/// that is no longer the VMM's and a dbx whose entry no longer revokes
/// `hello`. The next start warns for each and keeps the VMM's keys, so
/// `hello`, whose hash db allows and dbx revokes, stays refused.
#[test]
fn host_edits_of_pk_and_dbx_in_vars_bin_do_not_weaken_the_policy() {
    let pk = key("pk");
    let kek = key("kek");
    let hello = efi_app("hello");
    let sha256 = secure_boot::authenticode::sha256(&std::fs::read(&hello).unwrap()).unwrap();
    let pk_list = x509(&pk);
    let keys = key_input(
        "tamper-pk-dbx",
        vec![
            ("PK", vec![pk_list.clone()]),
            ("KEK", vec![x509(&kek)]),
            ("db", vec![hash_of(&hello)]),
            ("dbx", vec![vmfw_keys::sha256_list(&[sha256], REVOKER)]),
        ],
    );
    let disk = TempDisk::copy_of(
        &EspBuilder::new()
            .file("/EFI/BOOT/BOOTX64.EFI", &hello)
            .build(),
        "authvar-tamper-keys",
    );
    let refused_boot = || {
        let mut vm = Vm::builder()
            .firmware(firmware())
            .disk_writable(&disk.0)
            .arg("-initrd")
            .arg(keys.to_str().unwrap())
            .spawn();
        let refused = "secure boot: \\EFI\\BOOT\\BOOTX64.EFI refused";
        if let Err(e) = vm.expect(refused, TIMEOUT) {
            panic!("no '{refused}': {e:?}\n{}", vm.transcript());
        }
        let transcript = vm.transcript();
        assert!(!transcript.contains("HELLO: running"), "{transcript}");
        transcript
    };
    refused_boot();

    let mut vars = get_file(&disk.0, "/EFI/vmfw/vars.bin");
    let pk_der = &pk_list.signatures[0].data;
    assert!(
        tamper(&mut vars, &pk_der[pk_der.len() - 32..]) > 0,
        "PK in vars.bin"
    );
    let dbx_entry = [&REVOKER[..], &sha256[..]].concat();
    assert!(tamper(&mut vars, &dbx_entry) > 0, "dbx in vars.bin");
    put_file(&disk.0, "/EFI/vmfw/vars.bin", &vars);

    let transcript = refused_boot();
    for name in ["PK", "dbx"] {
        let warning = format!("secure boot: {name} in vars.bin is not the VMM's");
        assert!(
            line(&transcript, &warning).contains("the VMM's keys are kept"),
            "{transcript}"
        );
    }
}
