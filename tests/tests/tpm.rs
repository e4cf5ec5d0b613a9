//! The firmware's TPM 2.0 driver against QEMU's `tpm-crb` and `tpm-tis` devices backed by
//! Debian's swtpm: the firmware finds the TPM (through the ACPI TPM2 table QEMU publishes),
//! starts it and prints one line naming the interface and the PCR banks; then Debian 12's
//! kernel, booted from a BLS entry, sees a TPM 2.0 whose PCRs it can read, so the firmware
//! left the interface usable. Without a TPM the firmware says nothing about one.
//!
//! Under QEMU `-kernel`, SeaBIOS runs first and already sent TPM2_Startup when QEMU's ACPI
//! tables list the TPM, so the boots with the TPM2 table cover the "already started" path
//! (TPM_RC_INITIALIZE); the boots without it cover probing and the firmware's own Startup.

use std::time::Duration;

use vm_tests::{
    BLS_CMDLINE, EspBuilder, TpmInterface, Vm, VmBuilder, bls_entry, debian_kernel, firmware,
    initramfs,
};

const TIMEOUT: Duration = Duration::from_secs(240);

/// What the booted kernel's `/init` reports about the TPM (Debian 12 builds tpm_crb and
/// tpm_tis into the kernel): the major version, the interface driver it bound, PCR 0 of
/// the sha256 bank, and the event log Linux found (SeaBIOS's, through the TPM2 table).
const TPM_REPORT: &str = r#"
t=/sys/class/tpm/tpm0
echo "INIT: tpm_version_major=$(cat $t/tpm_version_major 2>/dev/null || echo none)"
echo "INIT: tpm_driver=$(basename $(readlink $t/device/driver) 2>/dev/null || echo none)"
echo "INIT: pcr-sha256-0=$(cat $t/pcr-sha256/0 2>/dev/null || echo none)"
mkdir -p /sys/kernel/security
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
log=/sys/kernel/security/tpm0/binary_bios_measurements
echo "INIT: event-log-bytes=$(cat $log 2>/dev/null | wc -c)"
"#;

/// The firmware's line about the TPM, then `/init`'s report, one line per key.
struct Report {
    firmware: String,
    version: String,
    driver: String,
    pcr0: String,
}

fn boot_with_tpm(builder: VmBuilder) -> Report {
    let kernel = debian_kernel();
    let version = &kernel.version;
    let disk = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(
            &format!("/initrd.img-{version}"),
            initramfs(TPM_REPORT, &[]),
        )
        .bytes(
            "/loader/entries/debian.conf",
            bls_entry("Debian TPM", version, BLS_CMDLINE),
        )
        .build();
    let mut vm = builder.disk(&disk).spawn();
    let firmware = vm.expect("tpm: ", TIMEOUT).unwrap().line;
    let mut value = |key: &str| {
        let line = vm.expect(&format!("INIT: {key}="), TIMEOUT).unwrap().line;
        line.split_once('=')
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let version = value("tpm_version_major");
    let driver = value("tpm_driver");
    let pcr0 = value("pcr-sha256-0");
    value("event-log-bytes");
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(
        vm.find("warning: tpm").is_none(),
        "the firmware warned about the TPM"
    );
    Report {
        firmware,
        version,
        driver,
        pcr0,
    }
}

fn assert_linux_sees_tpm2(report: &Report, driver: &str) {
    assert_eq!(report.version, "2", "Linux sees a TPM 2.0");
    assert_eq!(report.driver, driver, "bound by Linux's {driver} driver");
    assert!(
        report.pcr0.len() == 64 && report.pcr0.chars().all(|c| c.is_ascii_hexdigit()),
        "Linux reads PCR 0 of the sha256 bank: {:?}",
        report.pcr0
    );
}

#[test]
fn crb_tpm_is_started_and_handed_to_linux() {
    let report = boot_with_tpm(Vm::builder().firmware(firmware()).tpm(TpmInterface::Crb));
    assert!(
        report
            .firmware
            .starts_with("tpm: TPM 2.0 over CRB at 0xfed40000, PCR banks"),
        "{}",
        report.firmware
    );
    assert!(report.firmware.contains(" sha256"), "{}", report.firmware);
    assert_linux_sees_tpm2(&report, "tpm_crb");
}

#[test]
fn tis_tpm_is_started_and_handed_to_linux() {
    let report = boot_with_tpm(Vm::builder().firmware(firmware()).tpm(TpmInterface::Tis));
    assert!(
        report
            .firmware
            .starts_with("tpm: TPM 2.0 over FIFO at 0xfed40000, PCR banks"),
        "{}",
        report.firmware
    );
    assert!(report.firmware.contains(" sha256"), "{}", report.firmware);
    assert_linux_sees_tpm2(&report, "tpm_tis");
}

/// No TPM device: no `tpm:` line at all, and the boot goes on as before.
#[test]
fn no_tpm_no_line() {
    let mut vm = Vm::builder().firmware(firmware()).spawn();
    vm.expect("no bootable device found", TIMEOUT).unwrap();
    assert!(
        vm.find("tpm:").is_none(),
        "the firmware printed a TPM line without a TPM"
    );
}

/// Without the ACPI TPM2 table (`acpi=off`: SeaBIOS's own ACPI tables have none, and SeaBIOS
/// leaves the TPM unstarted), the firmware finds the TPM by probing the standard address,
/// identifies the interface from its registers and sends TPM2_Startup itself.
#[test]
fn tpm_without_acpi_table_is_found_by_probing() {
    for (interface, name) in [(TpmInterface::Crb, "CRB"), (TpmInterface::Tis, "FIFO")] {
        let mut vm = Vm::builder()
            .firmware(firmware())
            .arg("-machine")
            .arg("acpi=off")
            .append("log=debug")
            .tpm(interface)
            .spawn();
        let line = vm.expect("tpm: TPM 2.0", TIMEOUT).unwrap().line;
        assert!(
            line.starts_with(&format!(
                "tpm: TPM 2.0 over {name} at 0xfed40000, PCR banks"
            )),
            "{line}"
        );
        let started = vm.expect("debug: tpm: started", TIMEOUT).unwrap().line;
        assert!(started.contains("by the firmware"), "{started}");
        vm.expect("no bootable device found", TIMEOUT).unwrap();
    }
}
