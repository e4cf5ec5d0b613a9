//! A real UEFI firmware's log (Debian 12's OVMF, edk2 2022.11, with swtpm;
//! provenance in data/README.md): replaying it gives the PCRs the guest
//! read, and our event builders produce byte-for-byte the event data and
//! digests edk2 logged for the same variables, actions and separators.

use tcg::log::{
    CALLING_EFI_APPLICATION, EXIT_BOOT_SERVICES_INVOCATION, EXIT_BOOT_SERVICES_SUCCEEDED, Event,
    LogEvent, action, image_load, parse, replay, s_crtm_version, separator, variable_boot,
    variable_driver_config,
};
use uefi_raw::Guid;
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

const LOG: &[u8] = include_bytes!("data/ovmf-4banks.log");
const PCRS: &str = include_str!("data/ovmf-4banks.pcrs");
const BANKS: [AlgorithmId; 4] = [
    AlgorithmId::SHA1,
    AlgorithmId::SHA256,
    AlgorithmId::SHA384,
    AlgorithmId::SHA512,
];

#[test]
fn replaying_ovmfs_log_gives_the_guests_pcrs() {
    let replayed = replay(&parse(LOG).unwrap()).unwrap();
    let mut compared = 0;
    for line in PCRS.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let pcr: u32 = f[1].parse().unwrap();
        // PCR 10 is Linux IMA's, in no firmware log.
        if pcr == 10 {
            continue;
        }
        let bank = *BANKS
            .iter()
            .find(|&&b| tcg::log::bank_name(b) == Some(f[0]))
            .unwrap();
        assert_eq!(
            replayed.hex(bank, pcr).unwrap(),
            f[2].to_ascii_lowercase(),
            "{} PCR {pcr}",
            f[0]
        );
        compared += 1;
    }
    assert_eq!(compared, 4 * 23);
}

/// `ours` has the event's type and data, and its digests in every bank are
/// the ones edk2 logged.
fn assert_same(theirs: &LogEvent<'_>, ours: &Event) {
    assert_eq!(theirs.event_type, ours.event_type);
    assert_eq!(theirs.data, &ours.data[..]);
    for (bank, digest) in BANKS.iter().zip(ours.digests(&BANKS).unwrap()) {
        assert_eq!(theirs.digest(*bank), Some(digest), "{bank:?}");
    }
}

/// UEFI_VARIABLE_DATA's vendor GUID, name and value.
fn variable_fields(data: &[u8]) -> (Guid, Vec<u16>, &[u8]) {
    let guid = Guid::from_bytes(data[..16].try_into().unwrap());
    let name_len = u64::from_le_bytes(data[16..24].try_into().unwrap()) as usize;
    let name = data[32..32 + 2 * name_len]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    (guid, name, &data[32 + 2 * name_len..])
}

#[test]
fn our_builders_match_edk2s_events() {
    let log = parse(LOG).unwrap();
    let of_type = |t: EventType| log.events.iter().filter(move |e| e.event_type == t);

    // The empty firmware version string: its NUL alone.
    let crtm = of_type(EventType::CRTM_VERSION).next().unwrap();
    assert_same(crtm, &s_crtm_version(""));

    // SecureBoot, PK, KEK, db, dbx: the whole structure is measured.
    let mut names = Vec::new();
    for e in of_type(EventType::EFI_VARIABLE_DRIVER_CONFIG) {
        let (guid, name, value) = variable_fields(e.data);
        assert_same(e, &variable_driver_config(&guid, &name, value));
        names.push(String::from_utf16(&name).unwrap());
    }
    assert_eq!(names, ["SecureBoot", "PK", "KEK", "db", "dbx"]);

    // BootOrder and Boot0000: VariableData alone is measured.
    let mut names = Vec::new();
    for e in of_type(EventType::EFI_VARIABLE_BOOT) {
        let (guid, name, value) = variable_fields(e.data);
        assert_same(e, &variable_boot(&guid, &name, value));
        names.push(String::from_utf16(&name).unwrap());
    }
    assert_eq!(names, ["BootOrder", "Boot0000"]);

    let actions: Vec<&LogEvent<'_>> = of_type(EventType::EFI_ACTION).collect();
    for (e, string) in actions.iter().zip([
        CALLING_EFI_APPLICATION,
        EXIT_BOOT_SERVICES_INVOCATION,
        EXIT_BOOT_SERVICES_SUCCEEDED,
    ]) {
        assert_same(e, &action(string));
    }
    assert_eq!(actions.len(), 3);

    let separators: Vec<&LogEvent<'_>> = of_type(EventType::SEPARATOR).collect();
    assert_eq!(separators.len(), 8);
    for e in separators {
        assert_same(e, &separator());
    }

    // The kernel's UEFI_IMAGE_LOAD_EVENT: our layout of its fields gives
    // its bytes back.
    let image = of_type(EventType::EFI_BOOT_SERVICES_APPLICATION)
        .next()
        .unwrap();
    let field = |i: usize| u64::from_le_bytes(image.data[8 * i..8 * i + 8].try_into().unwrap());
    let rebuilt = image_load(field(0), field(1), field(2), &image.data[32..]);
    assert_eq!(field(3) as usize, image.data.len() - 32);
    assert_eq!(rebuilt, image.data);
}
