//! The TCG event-log readers (`tcg::log`) over guest- or VMM-supplied
//! bytes; the first byte picks what the rest is.
//! - 0: a crypto-agile log (`binary_bios_measurements`, GetEventLog's
//!   bytes): parse, replay, and every entry of hashable algorithms
//!   re-encoded by `event2` to its own bytes (asserted);
//! - 1: an earlier stage's log area (SeaBIOS's, at the TPM2 table's LASA):
//!   `import_previous`, its entries copied into a new log with
//!   `LogWriter::append_raw`; when all fit, that log replays to the same
//!   PCRs as the area (asserted);
//! - 2: GPT event data from a header block and entry array (the rest split
//!   after 512 bytes). (The TPM2 table's log area fields are the `tpm`
//!   target's, `platform::acpi::parse::Tpm2Table`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcg::alg::Digest;
use tcg::log::{LogWriter, event2, gpt, import_previous, parse, replay};

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let Ok(log) = parse(data) else {
                return;
            };
            let _ = replay(&log);
            for e in &log.events {
                let digests: Option<Vec<Digest>> = e.digests.iter().map(|d| d.digest()).collect();
                if let Some(digests) = digests {
                    let again = event2(e.pcr, e.event_type, &digests, e.data).unwrap();
                    assert_eq!(again, e.raw);
                }
            }
        }
        1 => {
            let Ok(Some(previous)) = import_previous(data) else {
                return;
            };
            let mut buf = vec![0; data.len() + 4096];
            let Ok(mut ours) = LogWriter::new(&mut buf, &previous.banks) else {
                return;
            };
            let all = previous
                .events
                .iter()
                .all(|raw| ours.append_raw(raw).is_ok());
            let ours = parse(ours.as_bytes()).expect("a written log parses");
            if all {
                let area = parse(&data[..previous.len]).expect("an imported area parses");
                assert_eq!(replay(&ours).ok(), replay(&area).ok());
            }
        }
        _ => {
            let (header, entries) = data.split_at(data.len().min(512));
            let _ = gpt(header, entries);
        }
    }
});
