//! The variable journal left in reserved RAM across a warm reset, and the
//! firmware panic note beside it (its first 16 bytes, round trip asserted)
//! (`efi::runtime::journal_format`, applied by `loaders::nv_journal`):
//! header, length and CRC checks, the apply decision, and the store image
//! it carries loaded into a store as the next start does. A journal that
//! passes is written again and must parse to the same thing.
//!
//! The first input byte chooses whether the harness repairs the CRC first
//! (bit 0), so mutations reach the store image behind it, and the disk
//! generation the journal is compared with (bits 1-7); the rest is the
//! region.
#![no_main]

use efi::runtime::journal_format::{
    JOURNAL_HEADER_SIZE, Journal, apply_decision, parse_journal, write_journal,
};
use efi::variables::VariableStore;
use libfuzzer_sys::fuzz_target;
use loaders::nv_journal::{JournalAction, plan};

/// Size of the store the payload is loaded into.
const STORE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    // The panic note, the other record a warm reset carries
    // (`platform::panic_note`): what decodes must encode to the same bytes.
    if let Some(note) = bytes.first_chunk::<{ platform::panic_note::NOTE_SIZE }>() {
        if let Some(decoded) = platform::panic_note::PanicNote::decode(note) {
            assert_eq!(&decoded.encode(), note);
        }
    }
    let mut region = bytes.to_vec();
    if flags & 1 != 0 && region.len() >= JOURNAL_HEADER_SIZE {
        // Reseal: rewrite the record with its own fields and payload.
        if let Some(length) = region.get(12..16) {
            let length = u32::from_le_bytes(length.try_into().unwrap()) as usize;
            let end = JOURNAL_HEADER_SIZE.saturating_add(length).min(region.len());
            let payload = region[JOURNAL_HEADER_SIZE..end].to_vec();
            let base = u32::from_le_bytes(region[20..24].try_into().unwrap());
            let sequence = u32::from_le_bytes(region[24..28].try_into().unwrap());
            let _ = write_journal::<()>(&mut region, base, sequence, |area| {
                area[..payload.len()].copy_from_slice(&payload);
                Ok(payload.len())
            });
        }
    }
    let disk_generation = Some(u32::from(flags >> 1)).filter(|&g| g != 0);

    let action = plan(&region, true, disk_generation);
    let Ok(journal) = parse_journal(&region) else {
        assert!(matches!(
            action,
            JournalAction::None | JournalAction::Discard(_)
        ));
        return;
    };
    assert!(JOURNAL_HEADER_SIZE + journal.payload.len() <= region.len());
    let _ = apply_decision(&journal, disk_generation);

    // Written again into a fresh region, it parses to the same journal.
    let mut copy = vec![0u8; region.len()];
    write_journal::<()>(
        &mut copy,
        journal.base_generation,
        journal.sequence,
        |area| {
            area[..journal.payload.len()].copy_from_slice(journal.payload);
            Ok(journal.payload.len())
        },
    )
    .expect("a parsed journal fits a region of the same size");
    assert_eq!(
        parse_journal(&copy),
        Ok(Journal {
            base_generation: journal.base_generation,
            sequence: journal.sequence,
            payload: journal.payload,
        })
    );

    // The payload is loaded as the next start does: fully checked first.
    let mut buffer = vec![0u8; STORE];
    let mut store = VariableStore::new(&mut buffer).expect("store");
    if let Ok(count) = store.load(journal.payload) {
        assert_eq!(store.iter_non_volatile().count(), count);
    }
});
