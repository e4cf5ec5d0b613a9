//! Package lists (UEFI 2.10 §33.3.1): walking the packages of a list,
//! matching them by type and GUID, and writing a list back out (header,
//! packages, End package) after NewPackageList or UpdatePackageList.
//! Also the keyboard layout package (§33.3.9) behind FindKeyboardLayouts
//! and GetKeyboardLayout. Pure code over byte slices: no panics on any input.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt;

/// EFI_HII_PACKAGE_LIST_HEADER: PackageListGuid then PackageLength.
pub const PACKAGE_LIST_HEADER: usize = 20;
/// EFI_HII_PACKAGE_HEADER: a 24-bit length and an 8-bit type.
pub const PACKAGE_HEADER: usize = 4;
/// EFI_HII_PACKAGE_TYPE_ALL: matches every package type (§34.8.1.4).
pub const PACKAGE_TYPE_ALL: u8 = 0x00;
pub const PACKAGE_TYPE_GUID: u8 = 0x01;
pub const PACKAGE_TYPE_STRINGS: u8 = 0x04;
pub const PACKAGE_TYPE_KEYBOARD_LAYOUT: u8 = 0x09;
pub const PACKAGE_TYPE_END: u8 = 0xdf;
/// The largest length a package header's 24-bit field can state.
pub const MAX_PACKAGE: usize = 0x00ff_ffff;

/// Why a package list or package is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HiiError {
    /// The list or package is shorter than its header or stated length.
    Truncated { offset: usize },
    /// A string block type §33.3.6.2 does not define.
    UnknownBlock { offset: usize, block_type: u8 },
    /// A SIBT_DUPLICATE block (§33.3.6.2, EFI_HII_SIBT_DUPLICATE_BLOCK)
    /// naming no earlier string: it could name itself or start a cycle.
    BadDuplicate { offset: usize, original: u16 },
    /// The result would not fit its length field (24-bit package length,
    /// 32-bit list length, 16-bit string ids).
    TooLarge,
    /// No heap for this many bytes (the list's size is the caller's):
    /// EFI_OUT_OF_RESOURCES at the boundary.
    OutOfMemory { bytes: usize },
}

impl From<platform::fallible::OutOfMemory> for HiiError {
    fn from(e: platform::fallible::OutOfMemory) -> Self {
        HiiError::OutOfMemory { bytes: e.bytes }
    }
}

impl fmt::Display for HiiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiiError::Truncated { offset } => write!(f, "HII data truncated at offset {offset}"),
            HiiError::UnknownBlock { offset, block_type } => {
                write!(
                    f,
                    "unknown string block type {block_type:#x} at offset {offset}"
                )
            }
            HiiError::BadDuplicate { offset, original } => write!(
                f,
                "duplicate string block at offset {offset} names string {original}, not an earlier one"
            ),
            HiiError::TooLarge => f.write_str("HII data too large for its length field"),
            HiiError::OutOfMemory { bytes } => write!(f, "no memory for {bytes} bytes of HII data"),
        }
    }
}

pub(super) fn u16_at(data: &[u8], at: usize) -> Result<u16, HiiError> {
    platform::le::u16_at(data, at).ok_or(HiiError::Truncated { offset: at })
}

pub(super) fn u32_at(data: &[u8], at: usize) -> Result<u32, HiiError> {
    platform::le::u32_at(data, at).ok_or(HiiError::Truncated { offset: at })
}

/// The packages of a package list (§33.3.1), End package excluded, as
/// (type, whole package bytes). A caller's list of up to 16 MiB may hold
/// millions of 4-byte packages, so the vector grows fallibly.
pub fn packages(list: &[u8]) -> Result<Vec<(u8, &[u8])>, HiiError> {
    let total = u32_at(list, 16)? as usize;
    let list = list
        .get(..total)
        .ok_or(HiiError::Truncated { offset: total })?;
    let mut out = Vec::new();
    let mut offset = PACKAGE_LIST_HEADER;
    while offset < list.len() {
        let header = u32_at(list, offset)?;
        let (length, package_type) = ((header & 0x00ff_ffff) as usize, (header >> 24) as u8);
        if package_type == PACKAGE_TYPE_END {
            break;
        }
        let package = offset
            .checked_add(length)
            .and_then(|end| list.get(offset..end))
            .filter(|_| length >= PACKAGE_HEADER)
            .ok_or(HiiError::Truncated { offset })?;
        platform::fallible::push(&mut out, (package_type, package))?;
        offset += length;
    }
    Ok(out)
}

/// The GUID of a GUID package (EFI_HII_GUID_PACKAGE_HDR), as bytes.
pub fn package_guid(package: &[u8]) -> Option<[u8; 16]> {
    package
        .get(PACKAGE_HEADER..PACKAGE_HEADER + 16)?
        .try_into()
        .ok()
}

/// Whether a package of `package_type` (and, for GUID packages, `guid`)
/// matches a filter: type 0 (EFI_HII_PACKAGE_TYPE_ALL) matches any package.
pub fn package_matches(
    filter_type: u8,
    filter_guid: Option<&[u8; 16]>,
    package_type: u8,
    package: &[u8],
) -> bool {
    if filter_type == PACKAGE_TYPE_ALL {
        return true;
    }
    filter_type == package_type
        && (package_type != PACKAGE_TYPE_GUID
            || filter_guid.is_some_and(|g| package_guid(package).as_ref() == Some(g)))
}

/// Whether the list holds a package of `package_type` (0: any); GUID
/// packages must also carry `guid`.
pub fn has_package(list: &[u8], package_type: u8, guid: Option<&[u8; 16]>) -> bool {
    if package_type == PACKAGE_TYPE_ALL {
        return true;
    }
    packages(list).is_ok_and(|packages| {
        packages
            .iter()
            .any(|(t, p)| package_matches(package_type, guid, *t, p))
    })
}

/// Writes a package list: `guid`, the total length, `packages` and the End
/// package (§33.3.1), as ExportPackageLists hands it out.
pub fn build_list(guid: &[u8; 16], packages: &[&[u8]]) -> Result<Vec<u8>, HiiError> {
    let body = packages
        .iter()
        .try_fold(0usize, |sum, p| sum.checked_add(p.len()))
        .ok_or(HiiError::TooLarge)?;
    let total = body
        .checked_add(PACKAGE_LIST_HEADER + PACKAGE_HEADER)
        .ok_or(HiiError::TooLarge)?;
    let total_field = u32::try_from(total).map_err(|_| HiiError::TooLarge)?;
    let mut list = platform::fallible::with_capacity(total)?;
    list.extend_from_slice(guid);
    list.extend_from_slice(&total_field.to_le_bytes());
    for package in packages {
        list.extend_from_slice(package);
    }
    let end = (PACKAGE_HEADER as u32) | (u32::from(PACKAGE_TYPE_END) << 24);
    list.extend_from_slice(&end.to_le_bytes());
    Ok(list)
}

/// The list's GUID (EFI_HII_PACKAGE_LIST_HEADER.PackageListGuid).
pub fn list_guid(list: &[u8]) -> Result<[u8; 16], HiiError> {
    list.get(..16)
        .and_then(|g| g.try_into().ok())
        .ok_or(HiiError::Truncated { offset: 0 })
}

/// A package list re-written in canonical form: what NewPackageList keeps.
pub fn normalize(list: &[u8]) -> Result<Vec<u8>, HiiError> {
    let found = packages(list)?;
    let found = platform::fallible::collect(found.len(), found.into_iter().map(|(_, p)| p))?;
    build_list(&list_guid(list)?, &found)
}

/// What UpdatePackageList (§34.8.1.3) does to a list: each package type in
/// `update` (types and GUIDs for GUID packages) replaces every package of
/// that kind in `current`; the others stay.
pub struct Update<'a> {
    /// The updated list, canonical form.
    pub list: Vec<u8>,
    /// The packages taken out (REMOVE_PACK notifications).
    pub removed: Vec<(u8, &'a [u8])>,
    /// The packages put in (ADD_PACK notifications).
    pub added: Vec<(u8, &'a [u8])>,
}

/// Computes [`Update`] for `current` (a registered list) and `update`.
pub fn update_list<'a>(current: &'a [u8], update: &'a [u8]) -> Result<Update<'a>, HiiError> {
    let old = packages(current)?;
    let added = packages(update)?;
    let replaced = |t: u8, p: &[u8]| {
        added.iter().any(|(nt, np)| {
            *nt == t && (t != PACKAGE_TYPE_GUID || package_guid(np) == package_guid(p))
        })
    };
    let mut removed = platform::fallible::with_capacity(old.len())?;
    let mut kept = platform::fallible::with_capacity(old.len())?;
    // Both pushes stay within the capacity reserved above.
    for (t, p) in old {
        if replaced(t, p) {
            removed.push((t, p));
        } else {
            kept.push((t, p));
        }
    }
    let all = platform::fallible::collect(
        kept.len() + added.len(),
        kept.iter().chain(added.iter()).map(|(_, p)| *p),
    )?;
    Ok(Update {
        list: build_list(&list_guid(current)?, &all)?,
        removed,
        added,
    })
}

/// A keyboard layout's GUID and its EFI_HII_KEYBOARD_LAYOUT bytes in a list.
pub type LayoutRef<'a> = ([u8; 16], &'a [u8]);

/// EFI_HII_KEYBOARD_LAYOUT: LayoutLength, Guid, descriptor string offset,
/// descriptor count (§33.3.9).
const KEYBOARD_LAYOUT_FIXED: usize = 2 + 16 + 4 + 1;

/// The keyboard layouts of a list's keyboard layout packages, as (GUID,
/// whole EFI_HII_KEYBOARD_LAYOUT bytes). Malformed packages yield none;
/// the only error is no memory for the list of them.
pub fn keyboard_layouts(list: &[u8]) -> Result<Vec<LayoutRef<'_>>, HiiError> {
    let found = match packages(list) {
        Ok(found) => found,
        Err(error @ HiiError::OutOfMemory { .. }) => return Err(error),
        Err(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for (_, package) in found
        .into_iter()
        .filter(|(t, _)| *t == PACKAGE_TYPE_KEYBOARD_LAYOUT)
    {
        let Ok(count) = u16_at(package, PACKAGE_HEADER) else {
            continue;
        };
        let mut offset = PACKAGE_HEADER + 2;
        for _ in 0..count {
            let Ok(length) = u16_at(package, offset) else {
                break;
            };
            let length = usize::from(length);
            let layout = offset
                .checked_add(length)
                .and_then(|end| package.get(offset..end))
                .filter(|_| length >= KEYBOARD_LAYOUT_FIXED);
            let Some(layout) = layout else {
                break;
            };
            if let Some(guid) = layout.get(2..18).and_then(|g| g.try_into().ok()) {
                // A 16 MiB list may hold ~700,000 layouts: fallible.
                platform::fallible::push(&mut out, (guid, layout))?;
            }
            offset += length;
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub const LIST_GUID: [u8; 16] = [7; 16];

    pub fn package_list(packages: &[Vec<u8>]) -> Vec<u8> {
        let refs: Vec<&[u8]> = packages.iter().map(Vec::as_slice).collect();
        build_list(&LIST_GUID, &refs).unwrap()
    }

    pub fn guid_package(guid: u8, data: &[u8]) -> Vec<u8> {
        let mut p = ((20 + data.len() as u32) | (u32::from(PACKAGE_TYPE_GUID) << 24))
            .to_le_bytes()
            .to_vec();
        p.extend_from_slice(&[guid; 16]);
        p.extend_from_slice(data);
        p
    }

    pub fn keyboard_package(guids: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 4];
        p.extend((guids.len() as u16).to_le_bytes());
        for &g in guids {
            p.extend((KEYBOARD_LAYOUT_FIXED as u16).to_le_bytes());
            p.extend([g; 16]);
            p.extend([0u8; 5]);
        }
        let head = (p.len() as u32) | (u32::from(PACKAGE_TYPE_KEYBOARD_LAYOUT) << 24);
        p[..4].copy_from_slice(&head.to_le_bytes());
        p
    }

    #[test]
    fn built_lists_walk_back_to_their_packages_and_end_with_an_end_package() {
        let a = guid_package(1, b"abc");
        let list = package_list(core::slice::from_ref(&a));
        assert_eq!(list.len(), 20 + a.len() + 4);
        assert_eq!(&list[list.len() - 4..], &[4, 0, 0, PACKAGE_TYPE_END]);
        assert_eq!(
            packages(&list).unwrap(),
            vec![(PACKAGE_TYPE_GUID, a.as_slice())]
        );
        assert_eq!(list_guid(&list).unwrap(), LIST_GUID);
        // A list without its End package comes back with one.
        let mut cut = list.clone();
        cut.truncate(cut.len() - 4);
        let len = cut.len() as u32;
        cut[16..20].copy_from_slice(&len.to_le_bytes());
        assert_eq!(normalize(&cut).unwrap(), list);
    }

    #[test]
    fn guid_packages_match_only_their_guid() {
        let list = package_list(&[guid_package(1, b"")]);
        assert!(has_package(&list, PACKAGE_TYPE_GUID, Some(&[1; 16])));
        assert!(!has_package(&list, PACKAGE_TYPE_GUID, Some(&[2; 16])));
        assert!(!has_package(&list, PACKAGE_TYPE_GUID, None));
        assert!(has_package(&list, PACKAGE_TYPE_ALL, None));
        assert!(!has_package(&list, PACKAGE_TYPE_STRINGS, None));
    }

    #[test]
    fn updates_replace_packages_of_the_same_kind_and_keep_the_rest() {
        let (one, two, keyboard) = (
            guid_package(1, b"x"),
            guid_package(2, b"y"),
            keyboard_package(&[5]),
        );
        let current = package_list(&[one.clone(), two.clone()]);
        let new_one = guid_package(1, b"zz");
        let update = package_list(&[new_one.clone(), keyboard.clone()]);
        let done = update_list(&current, &update).unwrap();
        assert_eq!(
            done.list,
            package_list(&[two, new_one.clone(), keyboard.clone()])
        );
        assert_eq!(done.removed, vec![(PACKAGE_TYPE_GUID, one.as_slice())]);
        assert_eq!(done.added.len(), 2);
    }

    #[test]
    fn keyboard_layouts_are_listed_by_guid_and_malformed_ones_skipped() {
        let list = package_list(&[keyboard_package(&[1, 2])]);
        let found = keyboard_layouts(&list).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].0, [2; 16]);
        assert_eq!(found[1].1.len(), KEYBOARD_LAYOUT_FIXED);
        let mut short = keyboard_package(&[1]);
        short[6] = 3; // LayoutLength below the fixed fields
        assert!(
            keyboard_layouts(&package_list(&[short]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn malformed_lists_are_errors() {
        let mut list = package_list(&[guid_package(1, b"")]);
        list[16] = 0xff;
        assert!(packages(&list).is_err());
        let mut huge = package_list(&[guid_package(1, b"")]);
        huge[20..24].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
        assert!(packages(&huge).is_err());
        assert!(list_guid(&[1, 2]).is_err());
    }
}
