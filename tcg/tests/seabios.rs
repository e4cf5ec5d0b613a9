//! The event log SeaBIOS 1.16.2 (Debian 12's, QEMU 7.2) left under QEMU
//! `-kernel` with swtpm, as Linux exported it in
//! `binary_bios_measurements`, and the PCRs the same guest read from
//! `/sys/class/tpm/tpm0/pcr-<bank>/<n>` (provenance: data/README.md).

use tcg::log::{LogWriter, bank_name, import_previous, parse, replay};
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

const FOUR_BANKS: &[u8] = include_bytes!("data/seabios-4banks.log");
const FOUR_BANKS_PCRS: &str = include_str!("data/seabios-4banks.pcrs");
const SHA256_ONLY: &[u8] = include_bytes!("data/seabios-sha256.log");
const SHA256_ONLY_PCRS: &str = include_str!("data/seabios-sha256.pcrs");

/// QEMU's log area: LAML bytes, zero past the log (SeaBIOS clears it).
fn area(log: &[u8]) -> Vec<u8> {
    let mut area = log.to_vec();
    area.resize(0x10000, 0);
    area
}

fn bank(name: &str) -> AlgorithmId {
    [
        AlgorithmId::SHA1,
        AlgorithmId::SHA256,
        AlgorithmId::SHA384,
        AlgorithmId::SHA512,
    ]
    .into_iter()
    .find(|&b| bank_name(b) == Some(name))
    .unwrap()
}

/// Every "bank index HEX" line equals the replayed value, but PCR 10:
/// Linux's IMA extends its boot aggregate there, which no firmware log
/// records.
fn assert_replay_matches(log: &[u8], pcrs: &str) -> usize {
    let replayed = replay(&parse(log).unwrap()).unwrap();
    let mut checked = 0;
    for line in pcrs.lines() {
        let mut fields = line.split_whitespace();
        let (name, index, value) = (
            fields.next().unwrap(),
            fields.next().unwrap().parse::<u32>().unwrap(),
            fields.next().unwrap().to_ascii_lowercase(),
        );
        if index == 10 {
            continue;
        }
        assert_eq!(
            replayed.hex(bank(name), index).as_deref(),
            Some(value.as_str()),
            "{name} PCR {index}"
        );
        checked += 1;
    }
    checked
}

#[test]
fn replaying_seabios_log_gives_the_guests_pcrs() {
    // sha1, sha256, sha384 and sha512 PCRs 0-23 but 10: SeaBIOS's PCRs
    // 0-7, the untouched rest zero, 17-22 all ones.
    assert_eq!(assert_replay_matches(FOUR_BANKS, FOUR_BANKS_PCRS), 92);
    assert_eq!(assert_replay_matches(SHA256_ONLY, SHA256_ONLY_PCRS), 23);
}

#[test]
fn seabios_log_contents() {
    let log = parse(FOUR_BANKS).unwrap();
    assert_eq!(log.len, FOUR_BANKS.len());
    assert_eq!(
        log.spec_id.banks(),
        [
            AlgorithmId::SHA1,
            AlgorithmId::SHA256,
            AlgorithmId::SHA384,
            AlgorithmId::SHA512
        ]
    );
    assert_eq!(log.spec_id.spec_version, (2, 0));
    assert_eq!(log.spec_id.spec_errata, 2);
    assert_eq!(log.spec_id.uintn_size, 2);
    let summary: Vec<(u32, EventType)> = log.events.iter().map(|e| (e.pcr, e.event_type)).collect();
    let mut expected = vec![
        (1, EventType::EVENT_TAG),
        (2, EventType::ACTION),
        (2, EventType::EVENT_TAG),
        (2, EventType::EVENT_TAG),
        (4, EventType::ACTION),
    ];
    expected.extend((0..8).map(|pcr| (pcr, EventType::SEPARATOR)));
    assert_eq!(summary, expected);
    assert_eq!(log.events[1].data, b"Start Option ROM Scan");
    assert_eq!(log.events[4].data, b"Calling INT 19h");
    // SeaBIOS's separators carry 0xFFFFFFFF, and each digest is the
    // bank's hash of it.
    for e in &log.events[5..] {
        assert_eq!(e.data, [0xff; 4]);
        assert_eq!(
            e.digest(AlgorithmId::SHA256),
            tcg::alg::hash(AlgorithmId::SHA256, &[0xff; 4])
        );
    }
    // Every digest is that bank's hash of the data for the actions.
    for e in log
        .events
        .iter()
        .filter(|e| e.event_type == EventType::ACTION)
    {
        for d in &e.digests {
            assert_eq!(d.digest(), tcg::alg::hash(d.alg, e.data));
        }
    }
}

#[test]
fn importing_seabios_area_keeps_every_entry() {
    for log in [FOUR_BANKS, SHA256_ONLY] {
        let area = area(log);
        let previous = import_previous(&area).unwrap().unwrap();
        let parsed = parse(log).unwrap();
        assert_eq!(previous.len, log.len());
        assert_eq!(previous.banks, parsed.spec_id.banks());
        assert_eq!(previous.events.len(), 13);
        let raws: Vec<&[u8]> = parsed.events.iter().map(|e| e.raw).collect();
        assert_eq!(previous.events, raws);

        // Our own log, carrying SeaBIOS's entries, replays to the same
        // PCRs (our Spec ID event differs; it is not extended).
        let mut buf = vec![0xaa; 0x4000];
        let mut ours = LogWriter::new(&mut buf, &previous.banks).unwrap();
        for raw in &previous.events {
            ours.append_raw(raw).unwrap();
        }
        let ours_parsed = parse(ours.as_bytes()).unwrap();
        assert_eq!(
            replay(&ours_parsed).unwrap(),
            replay(&parsed).unwrap(),
            "replay of the carried entries"
        );
        // The buffer past the log is zero, so parse of the whole buffer
        // stops at the same place.
        let len = ours.len();
        assert_eq!(parse(&buf).unwrap().len, len);
    }
}

#[test]
fn seabios_entries_do_not_fit_other_banks() {
    let area = area(SHA256_ONLY);
    let previous = import_previous(&area).unwrap().unwrap();
    let mut buf = vec![0; 0x4000];
    let mut ours = LogWriter::new(&mut buf, &[AlgorithmId::SHA1, AlgorithmId::SHA256]).unwrap();
    assert!(ours.append_raw(previous.events[0]).is_err());
    let before = ours.len();
    assert_eq!(ours.len(), before);
}
