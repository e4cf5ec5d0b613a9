//! An independent reader of our logs: tpm2-tools' `tpm2_eventlog` (Debian's
//! tpm2-tools, installed by tests/scripts/setup.sh) parses a log written
//! with every event builder, decodes its variable and image events, and
//! computes the same PCRs as `replay`.

use std::process::Command;

use tcg::log::*;
use uefi_raw::guid;
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

const BANKS: [AlgorithmId; 3] = [AlgorithmId::SHA1, AlgorithmId::SHA256, AlgorithmId::SHA384];

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn put(log: &mut LogWriter<'_>, pcr: u32, event_type: EventType, measured: &[u8], data: &[u8]) {
    let d = digests(&BANKS, measured).unwrap();
    log.append(pcr, event_type, &d, data).unwrap();
}

fn put_event(log: &mut LogWriter<'_>, pcr: u32, e: Event) {
    put(log, pcr, e.event_type, e.measured(), &e.data);
}

/// A log with one of each event this crate builds, in the PCRs the PFP
/// puts them.
fn every_event() -> Vec<u8> {
    let global = guid!("8be4df61-93ca-11d2-aa0d-00e098032b8c");
    let image_security = guid!("d719b2cb-3d3a-4596-a3bc-dad00e67656f");
    let mut buf = vec![0; 0x10000];
    let log = &mut LogWriter::new(&mut buf, &BANKS).unwrap();
    put_event(log, 0, s_crtm_version("vmfw 0.1.0"));
    let blob = platform_firmware_blob2(b"vmfw", 0x10_0000, 0x8_0000).unwrap();
    put(
        log,
        0,
        EventType::EFI_PLATFORM_FIRMWARE_BLOB2,
        b"firmware",
        &blob,
    );
    let smbios3 = guid!("f2fd1544-9794-4a2c-992e-e5bbcf20e394");
    let tables = handoff_tables2(b"SMBIOS", &[(smbios3, 0xf_0000)]).unwrap();
    put(
        log,
        1,
        EventType::EFI_HANDOFF_TABLES2,
        b"smbios tables",
        &tables,
    );
    put_event(
        log,
        1,
        variable_boot2(&global, &utf16("BootOrder"), &[0, 0]),
    );
    put_event(
        log,
        7,
        variable_driver_config(&global, &utf16("SecureBoot"), &[1]),
    );
    for pcr in 0..8 {
        put_event(log, pcr, separator());
    }
    put_event(
        log,
        7,
        variable_authority(&image_security, &utf16("db"), &[7; 48]),
    );
    put_event(log, 4, action(CALLING_EFI_APPLICATION));
    let path = [4, 4, 8, 0, b'\\', 0, 0, 0, 0x7f, 0xff, 4, 0];
    let image = image_load(0x4000_0000, 0x1000, 0, &path);
    put(
        log,
        4,
        EventType::EFI_BOOT_SERVICES_APPLICATION,
        b"authenticode",
        &image,
    );
    let mut header = vec![0u8; 512];
    header[..8].copy_from_slice(b"EFI PART");
    header[80..84].copy_from_slice(&4u32.to_le_bytes());
    header[84..88].copy_from_slice(&128u32.to_le_bytes());
    let mut entries = vec![0u8; 512];
    entries[0] = 0x28;
    entries[256] = 0xaf;
    put_event(log, 5, gpt(&header, &entries).unwrap());
    put_event(log, 4, action(RETURNING_FROM_EFI_APPLICATION));
    put_event(log, 5, action(EXIT_BOOT_SERVICES_INVOCATION));
    put_event(log, 5, action(EXIT_BOOT_SERVICES_SUCCEEDED));
    let len = log.len();
    buf.truncate(len);
    buf
}

#[test]
fn tpm2_eventlog_reads_our_log_and_agrees_on_the_pcrs() {
    let log = every_event();
    let path = std::env::temp_dir().join(format!("tcg-log-{}.bin", std::process::id()));
    std::fs::write(&path, &log).unwrap();
    let output = Command::new("tpm2_eventlog")
        .arg(&path)
        .output()
        .expect("tpm2_eventlog (Debian tpm2-tools; tests/scripts/setup.sh installs it)");
    let _ = std::fs::remove_file(&path);
    let yaml = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "tpm2_eventlog failed: {yaml}");

    // The variable and image events were decoded, not just skipped.
    for line in [
        "UnicodeName: BootOrder",
        "UnicodeName: SecureBoot",
        "UnicodeName: db",
        "ImageLocationInMemory: 0x40000000",
        "BlobBase: 0x100000",
        "specErrata: 2",
    ] {
        assert!(yaml.contains(line), "{line} missing from\n{yaml}");
    }

    // Its "pcrs:" section: "  <bank>:" then "    <n>  : 0x<hex>".
    let replayed = replay(&parse(&log).unwrap()).unwrap();
    let pcrs = yaml.split("\npcrs:\n").nth(1).expect("pcrs section");
    let mut bank = None;
    let mut compared = 0;
    for line in pcrs.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_suffix(':') {
            bank = BANKS.into_iter().find(|&b| bank_name(b) == Some(name));
            continue;
        }
        let Some((index, value)) = trimmed.split_once(':') else {
            continue;
        };
        let index: u32 = index.trim().parse().unwrap();
        let value = value.trim().trim_start_matches("0x");
        let bank = bank.expect("a bank before its PCRs");
        assert_eq!(
            replayed.hex(bank, index).as_deref(),
            Some(value),
            "{bank:?} PCR {index}"
        );
        compared += 1;
    }
    // PCRs 0-7 of three banks.
    assert_eq!(compared, 24);
}
