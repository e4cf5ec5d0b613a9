//! Applying the variable journal (`efi::runtime::journal`): the
//! non-volatile variables the previous boot's OS changed after
//! ExitBootServices, left in reserved RAM across a warm reset, reach the
//! ESP store (`nv_store`) at this start, before anything boots, so the
//! firmware still never writes the disk while an OS owns it.
//!
//! The region's contents are an allegation: a journal is used only when
//! its header, length and CRC check out, its store image passes
//! `VariableStore::load`'s full check, and it continues the very store
//! slot that is on the disk now (its base generation). Anything else is
//! ignored with one log line and cleared.

use alloc::vec::Vec;

use efi::runtime::journal_format::{
    ApplyDecision, JournalError, apply_decision, clear_journal, parse_journal,
};
use log::{debug, info, warn};

/// What this start does with the region's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalAction {
    /// Nothing recorded.
    None,
    /// Unusable or stale: logged and cleared.
    Discard(&'static str),
    /// No writable ESP store to apply it to: left for a start that has one.
    Keep,
    /// Load this store image and write it to the ESP.
    Apply { sequence: u32, image: Vec<u8> },
}

/// Decides from the region's bytes, whether the ESP store is writable and
/// the generation of the slot loaded from it (None: no store loaded).
/// Logs why a journal is discarded.
pub fn plan(region: &[u8], writable: bool, disk_generation: Option<u32>) -> JournalAction {
    let journal = match parse_journal(region) {
        Err(JournalError::Empty) => return JournalAction::None,
        Err(err) => {
            warn!("variables: journal in reserved memory ignored: {err}");
            return JournalAction::Discard("invalid");
        }
        Ok(journal) => journal,
    };
    if !writable {
        warn!("variables: journal kept: no writable store on an EFI System Partition");
        return JournalAction::Keep;
    }
    match apply_decision(&journal, disk_generation) {
        ApplyDecision::Apply => JournalAction::Apply {
            sequence: journal.sequence,
            image: journal.payload.to_vec(),
        },
        ApplyDecision::Stale { journal_base, disk } => {
            warn!(
                "variables: journal ignored: it continues store generation {journal_base}, \
                 the disk holds {disk}"
            );
            JournalAction::Discard("stale")
        }
    }
}

/// Applies the journal left by the previous boot, if any. Call it right
/// after `nv_store::init` (whose result is `writable`), before the boot
/// manager runs.
pub fn apply(writable: bool) {
    let started = platform::tsc::now_ns();
    let disk_generation = crate::nv_store::disk_generation();
    let Some(action) =
        efi::runtime::journal::with_region(|region| plan(region, writable, disk_generation))
    else {
        return;
    };
    let clear = match action {
        JournalAction::None => {
            let micros = platform::tsc::now_ns().saturating_sub(started) / 1000;
            debug!("variables: no journal in reserved memory (checked in {micros} us)");
            false
        }
        JournalAction::Keep => false,
        JournalAction::Discard(_) => true,
        JournalAction::Apply { sequence, image } => apply_image(sequence, &image, started),
    };
    if clear {
        efi::runtime::journal::with_region(clear_journal);
    }
}

/// Loads `image` into the store and writes the store to the ESP. Returns
/// whether the journal is done with (applied, or its image was rejected);
/// a failed disk write keeps it for the next start.
fn apply_image(sequence: u32, image: &[u8], started_ns: u64) -> bool {
    let count = match efi::runtime::load_variables(image) {
        Ok(count) => count,
        Err(err) => {
            warn!("variables: journal ignored: its store image is unusable ({err})");
            return true;
        }
    };
    let Some(store_image) = efi::runtime::with_variables(|store| store.non_volatile_image()) else {
        return false;
    };
    match crate::nv_store::persist(store_image) {
        Ok(()) => {
            let micros = platform::tsc::now_ns().saturating_sub(started_ns) / 1000;
            info!(
                "variables: journal applied: {sequence} change(s) made by the OS after \
                 ExitBootServices, {count} variables written to {} in {micros} us",
                crate::nv_store::STORE_PATH
            );
            true
        }
        Err(status) => {
            warn!(
                "variables: journal loaded but not written to the disk (status {:#x}); kept",
                status.0
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use efi::runtime::journal_format::{JOURNAL_HEADER_SIZE, write_journal};

    fn region_with(image: &[u8], base: u32) -> Vec<u8> {
        let mut region = vec![0u8; 512];
        write_journal::<()>(&mut region, base, 2, |area| {
            area[..image.len()].copy_from_slice(image);
            Ok(image.len())
        })
        .unwrap();
        region
    }

    #[test]
    fn empty_region_does_nothing() {
        assert_eq!(plan(&[0u8; 512], true, Some(3)), JournalAction::None);
    }

    #[test]
    fn matching_generation_applies() {
        let region = region_with(b"image", 3);
        assert_eq!(
            plan(&region, true, Some(3)),
            JournalAction::Apply {
                sequence: 2,
                image: b"image".to_vec()
            }
        );
        // A first boot with no store file: base 0.
        let region = region_with(b"image", 0);
        assert!(matches!(
            plan(&region, true, None),
            JournalAction::Apply { .. }
        ));
    }

    #[test]
    fn stale_or_corrupt_is_discarded_and_read_only_kept() {
        let region = region_with(b"image", 3);
        assert_eq!(
            plan(&region, true, Some(4)),
            JournalAction::Discard("stale")
        );
        assert_eq!(plan(&region, false, Some(3)), JournalAction::Keep);
        let mut corrupt = region.clone();
        corrupt[JOURNAL_HEADER_SIZE] ^= 1;
        assert_eq!(
            plan(&corrupt, true, Some(3)),
            JournalAction::Discard("invalid")
        );
        assert_eq!(
            plan(&[0xffu8; 512], true, Some(3)),
            JournalAction::Discard("invalid")
        );
    }
}
