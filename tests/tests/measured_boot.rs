//! Measured boot (issue 20; TCG EFI Protocol and PC Client Platform
//! Firmware Profile): with a software TPM (`swtpm`) as QEMU's `tpm-crb` or
//! `tpm-tis`, Debian 13's shim -> GRUB 2.12 -> kernel 6.12 boots, and the
//! booted system's initramfs prints the event log Linux got
//! (`/sys/kernel/security/tpm0/binary_bios_measurements`) and the PCRs it
//! reads from the TPM (`/sys/class/tpm/tpm0/pcr-<bank>/<n>`). The test
//! replays the log itself (`tcg::log::replay`) and needs exactly the TPM's
//! PCRs: every extend, SeaBIOS's before us included, is in the log.
//!
//! The firmware before this had no TPM support: Linux found no event log
//! (`tpm-log-size=absent`) and PCRs 0-7 held only SeaBIOS's measurements.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tcg::log::{ParsedLog, PcrValues};
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};
use vm_tests::images::{SIGNED_GRUB, SIGNED_SHIM, bls_entry, grub_cfg};
use vm_tests::swtpm::TpmInterface;
use vm_tests::{
    EspBuilder, SYSTEMD_STUB, Vm, deb_trixie, debian13_kernel, firmware, initramfs_for,
    unified_kernel_image_on,
};

const TIMEOUT: Duration = Duration::from_secs(300);

/// Linux IMA's PCR: extended by the kernel, logged in its IMA log, not in
/// the firmware's.
const IMA_PCR: u32 = 10;

/// What the initramfs prints: the event log as hex lines, then every PCR
/// of every bank Linux shows.
const REPORT_SCRIPT: &str = r#"
mkdir -p /sys/kernel/security
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
log=/sys/kernel/security/tpm0/binary_bios_measurements
if [ -e $log ]; then
  echo "INIT: tpm-log-size=$(cat $log | wc -c)"
  cat $log | xxd -p -c 64 | sed 's/^/INIT: tpm-log /'
else
  echo "INIT: tpm-log-size=absent"
fi
for bank in sha1 sha256 sha384 sha512; do
  dir=/sys/class/tpm/tpm0/pcr-$bank
  [ -d $dir ] || continue
  for pcr in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23; do
    echo "INIT: pcr $bank $pcr $(cat $dir/$pcr)"
  done
done
echo "INIT: tpm-report-done"
"#;

/// Debian 13's signed chain as the removable-media path, GRUB's config
/// booting the kernel with the report initramfs; a BLS Type #1 entry for
/// the same kernel for the firmware's own loader (`boot=bls`).
fn debian13_disk() -> PathBuf {
    let kernel = debian13_kernel();
    let initrd = initramfs_for(&kernel, REPORT_SCRIPT, &[]);
    let version = &kernel.version;
    EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .file("/EFI/BOOT/BOOTX64.EFI", shim())
        .file("/EFI/BOOT/grubx64.efi", grub())
        .bytes(
            "/loader/entries/debian.conf",
            bls_entry(
                "Debian 13 (measured boot test)",
                version,
                "console=ttyS0 panic=-1",
            ),
        )
        .bytes(
            "/EFI/debian/grub.cfg",
            grub_cfg(
                "Debian 13 (measured boot test)",
                version,
                "console=ttyS0 panic=-1",
            ),
        )
        .build()
}

fn shim() -> PathBuf {
    deb_trixie("shim-signed").join(SIGNED_SHIM)
}

fn grub() -> PathBuf {
    deb_trixie("grub-efi-amd64-signed").join(SIGNED_GRUB)
}

/// What the guest printed.
struct Report {
    log: Vec<u8>,
    /// (bank, PCR) -> value as Linux prints it (hex).
    pcrs: BTreeMap<(String, u32), String>,
}

impl Report {
    fn parse(transcript: &str) -> Report {
        let mut log = Vec::new();
        let mut pcrs = BTreeMap::new();
        for line in transcript.lines().map(|l| l.trim_end_matches('\r')) {
            if let Some(hex) = line.split("INIT: tpm-log ").nth(1) {
                log.extend(unhex(hex.trim()));
            } else if let Some(rest) = line.split("INIT: pcr ").nth(1) {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                if let [bank, pcr, value] = fields[..] {
                    pcrs.insert(
                        (bank.to_string(), pcr.parse().unwrap()),
                        value.to_ascii_lowercase(),
                    );
                }
            }
        }
        assert!(!pcrs.is_empty(), "the guest printed no PCRs:\n{transcript}");
        Report { log, pcrs }
    }

    fn parsed(&self) -> ParsedLog<'_> {
        tcg::log::parse(&self.log).unwrap_or_else(|e| panic!("the event log does not parse: {e:?}"))
    }

    /// Replays the log and checks it against every PCR the guest read but
    /// PCR 10, Linux IMA's, whose events are in the kernel's own IMA log.
    fn replay_matches_the_tpm(&self) -> PcrValues {
        let replayed = tcg::log::replay(&self.parsed()).expect("replay");
        let mut wrong = Vec::new();
        for ((bank, pcr), value) in &self.pcrs {
            if *pcr == IMA_PCR {
                continue;
            }
            let alg = bank_id(bank);
            let ours = replayed
                .hex(alg, *pcr)
                .unwrap_or_else(|| "0".repeat(value.len()));
            if &ours != value {
                wrong.push(format!(
                    "PCR {pcr} ({bank}): the log replays to {ours}, the TPM has {value}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        replayed
    }

    /// The SHA-256 digests of the PCR 4 application events, in order.
    fn pcr4_images(&self) -> Vec<String> {
        self.parsed()
            .events
            .iter()
            .filter(|e| e.pcr == 4 && e.event_type == EventType::EFI_BOOT_SERVICES_APPLICATION)
            .filter_map(|e| e.digest(AlgorithmId::SHA256))
            .map(|d| hex(d.as_bytes()))
            .collect()
    }

    fn has_events_in(&self, pcr: u32) -> bool {
        self.parsed().events.iter().any(|e| e.pcr == pcr)
    }

    /// The SHA-256 digests of the events in `pcr`.
    fn digests_in(&self, pcr: u32) -> Vec<String> {
        self.parsed()
            .events
            .iter()
            .filter(|e| e.pcr == pcr)
            .filter_map(|e| e.digest(AlgorithmId::SHA256))
            .map(|d| hex(d.as_bytes()))
            .collect()
    }
}

fn bank_id(bank: &str) -> AlgorithmId {
    match bank {
        "sha1" => AlgorithmId::SHA1,
        "sha256" => AlgorithmId::SHA256,
        "sha384" => AlgorithmId::SHA384,
        "sha512" => AlgorithmId::SHA512,
        other => panic!("unknown bank {other}"),
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    tcg::alg::hash(AlgorithmId::SHA256, data)
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn authenticode_sha256(path: &Path) -> String {
    hex(&secure_boot::authenticode::sha256(&std::fs::read(path).unwrap()).unwrap())
}

/// Boots `disk` on `firmware` (ours, or OVMF) with a fresh TPM and returns
/// the guest's report.
fn boot(vm: vm_tests::VmBuilder, disk: &Path, interface: TpmInterface) -> Report {
    let mut vm = vm.disk(disk).tpm(interface).spawn();
    if let Err(e) = vm.expect("INIT: tpm-report-done", TIMEOUT) {
        panic!("no report: {e:?}\n{}", vm.transcript());
    }
    let _ = vm.wait_exit(Duration::from_secs(60));
    let transcript = vm.transcript();
    assert!(
        !transcript.contains("INIT: tpm-log-size=absent"),
        "Linux found no event log:\n{transcript}"
    );
    Report::parse(&transcript)
}

fn ours() -> vm_tests::VmBuilder {
    Vm::builder().firmware(firmware())
}

/// Checks one boot through `interface`: the log replays to the PCRs; PCR 4
/// holds shim's and GRUB's Authenticode digests in that order (the
/// firmware measured shim in LoadImage, shim measured GRUB through the
/// protocol); GRUB measured its commands into PCR 8 and the kernel file
/// into PCR 9 (it starts the kernel itself, not through LoadImage, under
/// OVMF too).
fn measured_chain(interface: TpmInterface) -> Report {
    let report = boot(ours(), &debian13_disk(), interface);
    report.replay_matches_the_tpm();
    let images = report.pcr4_images();
    let expected = [authenticode_sha256(&shim()), authenticode_sha256(&grub())];
    assert_eq!(images, expected, "PCR 4 images (shim, GRUB)");
    assert!(report.has_events_in(8), "no GRUB command events (PCR 8)");
    let kernel = hex(&sha256(&std::fs::read(&debian13_kernel().vmlinuz).unwrap()));
    assert!(
        report.digests_in(9).contains(&kernel),
        "GRUB did not measure the kernel file into PCR 9"
    );
    report
}

#[test]
fn debian13_chain_log_replays_to_the_pcrs_over_crb() {
    let first = measured_chain(TpmInterface::Crb);
    // A second boot of the same disk, with a new TPM: the same PCRs 0-7.
    let second = boot(ours(), &debian13_disk(), TpmInterface::Crb);
    for pcr in 0..8 {
        for bank in ["sha1", "sha256"] {
            let key = (bank.to_string(), pcr);
            assert_eq!(
                first.pcrs.get(&key),
                second.pcrs.get(&key),
                "PCR {pcr} ({bank}) differs between two boots"
            );
        }
    }
}

#[test]
fn debian13_chain_log_replays_to_the_pcrs_over_tis() {
    measured_chain(TpmInterface::Tis);
}

/// The firmware's BLS loader starts the kernel through LoadImage, which
/// measures it into PCR 4 (Authenticode digest); Linux's EFI stub then
/// measures the initrd it loads into PCR 9.
#[test]
fn bls_kernel_is_measured_by_load_image() {
    let report = boot(
        ours().append("boot=bls"),
        &debian13_disk(),
        TpmInterface::Crb,
    );
    report.replay_matches_the_tpm();
    let kernel = authenticode_sha256(&debian13_kernel().vmlinuz);
    assert_eq!(report.pcr4_images(), [kernel], "PCR 4 images (the kernel)");
    assert!(
        report.has_events_in(9),
        "no initrd event from the stub (PCR 9)"
    );
}

/// `kernel=` through the Linux boot protocol (no LoadImage, no EFI stub):
/// the built-in loader measures the kernel and initrd into PCR 9 and the
/// command line into PCR 8 (EV_IPL, through EFI_TCG2_PROTOCOL as any EFI
/// application would), and the log replays.
#[test]
fn boot_protocol_kernel_is_measured_into_pcr_9() {
    let kernel = debian13_kernel();
    let version = &kernel.version;
    let cmdline = "console=ttyS0 panic=-1";
    let firmware_cmdline = format!(
        "kernel=\\vmlinuz-{version} initrd=\\initrd.img-{version} cmdline=\"{cmdline}\" \
         linux-boot=protocol"
    );
    let report = boot(
        ours().append(firmware_cmdline),
        &debian13_disk(),
        TpmInterface::Crb,
    );
    report.replay_matches_the_tpm();
    let vmlinuz = hex(&sha256(&std::fs::read(&kernel.vmlinuz).unwrap()));
    assert!(
        report.digests_in(9).contains(&vmlinuz),
        "kernel not in PCR 9"
    );
    assert!(
        report
            .digests_in(8)
            .contains(&hex(&sha256(cmdline.as_bytes()))),
        "command line not in PCR 8"
    );
}

/// Debian 13's systemd-stub (257) as a unified kernel image, a BLS Type #2
/// entry: LoadImage measures the UKI and then its kernel into PCR 4, the
/// stub measures its
/// sections (kernel, initrd, command line, os-release...) into PCR 11
/// through the protocol, and the log still replays to the PCRs.
#[test]
fn uki_stub_measures_its_sections_into_pcr_11() {
    let kernel = debian13_kernel();
    let initrd = initramfs_for(&kernel, REPORT_SCRIPT, &[]);
    let stub = deb_trixie("systemd-boot-efi").join(SYSTEMD_STUB);
    let os_release = "PRETTY_NAME=\"Debian 13 UKI (measured)\"\nID=debian\nVERSION_ID=\"13\"\n";
    let uki = unified_kernel_image_on(
        &stub,
        &kernel,
        &initrd,
        "console=ttyS0 panic=-1",
        os_release,
    );
    let disk = EspBuilder::new()
        .file("/EFI/Linux/measured.efi", &uki)
        .build();
    let report = boot(ours(), &disk, TpmInterface::Crb);
    report.replay_matches_the_tpm();
    // The UKI, then the kernel the stub starts from its .linux section
    // through LoadImage (a buffer), each measured by LoadImage.
    let kernel = authenticode_sha256(&kernel.vmlinuz);
    assert_eq!(report.pcr4_images(), [authenticode_sha256(&uki), kernel]);
    let sections = report.digests_in(11);
    assert!(sections.len() >= 3, "PCR 11 events: {sections:?}");
}

/// OVMF (edk2) measures the same images: the PCR 4 application digests do
/// not depend on the firmware.
#[test]
fn pcr4_image_digests_match_ovmf() {
    let disk = debian13_disk();
    let ovmf = boot(Vm::builder().ovmf(), &disk, TpmInterface::Crb);
    let ours = boot(ours(), &disk, TpmInterface::Crb);
    assert_eq!(ovmf.pcr4_images(), ours.pcr4_images());
}

/// Without a TPM the firmware says nothing about one and Linux finds none.
#[test]
fn without_a_tpm_there_is_no_protocol_and_no_log() {
    let mut vm = ours().disk(debian13_disk()).spawn();
    if let Err(e) = vm.expect("INIT: tpm-report-done", TIMEOUT) {
        panic!("no report: {e:?}\n{}", vm.transcript());
    }
    let transcript = vm.transcript();
    assert!(
        transcript.contains("INIT: tpm-log-size=absent"),
        "{transcript}"
    );
    assert!(!transcript.contains("tpm:"), "{transcript}");
}
