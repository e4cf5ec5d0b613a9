//! The kept authenticated updates: every EFI_VARIABLE_AUTHENTICATION_2
//! write of a key variable the firmware accepted, with its payload as the
//! caller gave it, in one firmware-private non-volatile variable
//! ([`NAME`] under [`VENDOR`]). At each start the VMM's key input is the
//! baseline and these are replayed on it in order, each verified again,
//! so what `vars.bin` holds counts only as far as its signatures do.
//!
//! Format (all integers little-endian), repeated to the end:
//!
//! ```text
//! u8   key                        0 PK, 1 KEK, 2 db, 3 dbx, 4 dbt
//! u32  attributes                 as SetVariable got them
//! u32  payload length
//! payload                         EFI_VARIABLE_AUTHENTICATION_2 + data
//! ```

#![forbid(unsafe_code)]

use alloc::vec::Vec;
use uefi_raw::{Guid, guid};

use super::key_input::KeyName;
use crate::variables::Attributes;

/// The variable's name.
pub const NAME: &str = "VmfwSecureBootUpdates";
/// vmfw's vendor GUID for it (README "Secure Boot").
pub const VENDOR: Guid = guid!("9b5cb5da-67ed-4a4c-ba31-502b698d2ac7");

/// One kept update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update<'a> {
    pub key: KeyName,
    pub attributes: Attributes,
    pub payload: &'a [u8],
}

/// Appends `update` to `log`.
pub fn push(log: &mut Vec<u8>, update: &Update<'_>) -> Option<()> {
    let length = u32::try_from(update.payload.len()).ok()?;
    log.push(update.key as u8);
    log.extend_from_slice(&update.attributes.bits().to_le_bytes());
    log.extend_from_slice(&length.to_le_bytes());
    log.extend_from_slice(update.payload);
    Some(())
}

/// The updates in `log`, in order, and whether the log ended cleanly (a
/// truncated or unknown record ends the walk: what follows it cannot be
/// framed).
pub fn parse(log: &[u8]) -> (Vec<Update<'_>>, bool) {
    let mut updates = Vec::new();
    let mut rest = log;
    while !rest.is_empty() {
        let Some(update) = next(&mut rest) else {
            return (updates, false);
        };
        updates.push(update);
    }
    (updates, true)
}

fn next<'a>(rest: &mut &'a [u8]) -> Option<Update<'a>> {
    let (&key, after) = rest.split_first()?;
    let key = *KeyName::ALL.get(usize::from(key))?;
    let (attributes, after) = after.split_first_chunk::<4>()?;
    let (length, after) = after.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
    let (payload, after) = after.split_at_checked(length)?;
    *rest = after;
    Some(Update {
        key,
        attributes: Attributes::from_bits_retain(u32::from_le_bytes(*attributes)),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stops_at_a_bad_record() {
        let a = Update {
            key: KeyName::Db,
            attributes: Attributes::APPEND_WRITE,
            payload: b"first",
        };
        let b = Update {
            key: KeyName::Pk,
            attributes: Attributes::NON_VOLATILE,
            payload: b"",
        };
        let mut log = Vec::new();
        push(&mut log, &a).unwrap();
        push(&mut log, &b).unwrap();
        assert_eq!(parse(&log), (alloc::vec![a, b], true));
        for cut in 1..log.len() {
            let (updates, clean) = parse(&log[..cut]);
            assert!(updates.len() < 2 && (!clean || cut == 14), "cut {cut}");
        }
        let mut bad = log.clone();
        bad[0] = 9;
        assert_eq!(parse(&bad), (alloc::vec![], false));
    }
}
