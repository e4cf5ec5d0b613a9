//! BLS Type #2 entries: unified kernel images (UKIs) in `/EFI/Linux/*.efi`.
//! A UKI is a PE image (the systemd stub) carrying the kernel, initrd and
//! command line in sections; the menu entry comes from its `.osrel`
//! (os-release(5)) and `.uname` sections (UAPI Boot Loader Specification,
//! "Type #2 EFI Unified Kernel Images"; UAPI "Unified Kernel Image").
#![forbid(unsafe_code)]

use crate::bls::{BootEntry, type2_candidate};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use efi::pe::PeError;

/// Where Type #2 entries live on the ESP.
pub const TYPE2_DIR: &str = "\\EFI\\Linux";
/// PE headers and the section table of a UKI fit in this much (the stub
/// has about a dozen sections); it is what we read to find them.
pub const HEADER_READ_SIZE: usize = 4096;
/// `.osrel` and `.uname` are a few hundred bytes; larger is not metadata.
pub const MAX_METADATA_SIZE: u32 = 16 * 1024;

/// Whether `header` (the start of a file) is a PE image: a Linux bzImage
/// with an EFI stub is one, a bzImage without is not.
pub fn is_pe_image(header: &[u8]) -> bool {
    efi::pe::coff_header_offset(header).is_ok()
}

/// One section-table row: its name and where its contents are in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub file_offset: u32,
    /// Bytes of contents: the virtual size (the section's real length),
    /// capped at the raw data in the file.
    pub size: u32,
}

/// The section table of the PE image whose first bytes are `header`
/// (`efi::pe::section_headers`), as the BLS boot uses it.
pub fn sections(header: &[u8]) -> Result<Vec<Section>, PeError> {
    Ok(efi::pe::section_headers(header)?
        .into_iter()
        .map(|row| Section {
            name: String::from_utf8_lossy(row.name()).into_owned(),
            file_offset: row.raw_offset,
            size: if row.virtual_size == 0 {
                row.raw_size
            } else {
                row.virtual_size.min(row.raw_size)
            },
        })
        .collect())
}

/// The fields of os-release(5) a boot menu uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub pretty_name: Option<String>,
    pub name: Option<String>,
    pub id: Option<String>,
    pub version_id: Option<String>,
    pub image_id: Option<String>,
    pub image_version: Option<String>,
}

/// An os-release value: shell-style, optionally in single or double quotes,
/// with `\` escaping the next character inside double quotes.
fn unquote(value: &str) -> String {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_string();
    }
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Parses os-release text; lines that are not `KEY=VALUE` are skipped.
pub fn parse_os_release(text: &[u8]) -> OsRelease {
    let mut release = OsRelease::default();
    for line in String::from_utf8_lossy(text).lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let slot = match key.trim() {
            "PRETTY_NAME" => &mut release.pretty_name,
            "NAME" => &mut release.name,
            "ID" => &mut release.id,
            "VERSION_ID" => &mut release.version_id,
            "IMAGE_ID" => &mut release.image_id,
            "IMAGE_VERSION" => &mut release.image_version,
            _ => continue,
        };
        let value = unquote(value);
        if !value.is_empty() {
            *slot = Some(value);
        }
    }
    release
}

/// The menu entry for the UKI `file_name` in [`TYPE2_DIR`], from its
/// sections: title from PRETTY_NAME (else NAME, else ID), sort-key from
/// IMAGE_ID (else ID), version from `.uname` (else IMAGE_VERSION, else
/// VERSION_ID). Entries without `.osrel` sort by file name, as the spec
/// orders entries without sort-key. `None` when the name is no candidate.
pub fn type2_entry(
    file_name: &str,
    osrel: Option<&[u8]>,
    uname: Option<&[u8]>,
) -> Option<BootEntry> {
    let (stem, counter) = type2_candidate(file_name)?;
    let release = osrel.map(parse_os_release).unwrap_or_default();
    let uname = uname
        .map(|u| {
            String::from_utf8_lossy(u)
                .trim_matches(['\0', ' ', '\n'])
                .to_string()
        })
        .filter(|u| !u.is_empty());
    Some(BootEntry {
        id: alloc::format!("{stem}.efi"),
        file_name: file_name.to_string(),
        title: release.pretty_name.or(release.name).or(release.id.clone()),
        version: uname.or(release.image_version).or(release.version_id),
        sort_key: release.image_id.or(release.id),
        efi: Some(alloc::format!("/EFI/Linux/{file_name}")),
        counter,
        ..BootEntry::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bls;

    /// A minimal PE: DOS header, signature at 0x80, COFF header with an
    /// optional header of 0xf0 bytes, then `names.len()` sections.
    fn pe(names: &[(&str, u32, u32, u32)]) -> Vec<u8> {
        let mut image = vec![0u8; 0x400];
        image[..2].copy_from_slice(b"MZ");
        image[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        image[0x80..0x84].copy_from_slice(b"PE\0\0");
        image[0x86..0x88].copy_from_slice(&(names.len() as u16).to_le_bytes());
        image[0x94..0x96].copy_from_slice(&0xf0u16.to_le_bytes());
        let table = 0x84 + 20 + 0xf0;
        for (i, (name, virtual_size, raw_size, offset)) in names.iter().enumerate() {
            let row = &mut image[table + i * 40..][..40];
            row[..name.len()].copy_from_slice(name.as_bytes());
            row[8..12].copy_from_slice(&virtual_size.to_le_bytes());
            row[16..20].copy_from_slice(&raw_size.to_le_bytes());
            row[20..24].copy_from_slice(&offset.to_le_bytes());
        }
        image
    }

    #[test]
    fn reads_the_section_table() {
        let image = pe(&[(".osrel", 0x30, 0x200, 0x400), (".linux", 0, 0x1000, 0x600)]);
        assert!(is_pe_image(&image));
        assert_eq!(
            sections(&image).unwrap(),
            [
                Section {
                    name: ".osrel".into(),
                    file_offset: 0x400,
                    size: 0x30
                },
                Section {
                    name: ".linux".into(),
                    file_offset: 0x600,
                    size: 0x1000
                },
            ]
        );
    }

    #[test]
    fn rejects_what_is_not_pe() {
        let mut bzimage_without_stub = vec![0u8; 0x400];
        bzimage_without_stub[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
        assert!(!is_pe_image(&bzimage_without_stub));
        assert_eq!(
            sections(&bzimage_without_stub),
            Err(PeError::BadDosSignature(0))
        );
        let mut bad_pointer = pe(&[]);
        bad_pointer[0x3c..0x40].copy_from_slice(&0xfff0u32.to_le_bytes());
        assert_eq!(
            sections(&bad_pointer),
            Err(PeError::Truncated {
                needed: 0xfff4,
                len: 0x400
            })
        );
        // A section table running past what was read is reported, not read.
        let mut many = pe(&[]);
        many[0x86..0x88].copy_from_slice(&100u16.to_le_bytes());
        assert!(matches!(sections(&many), Err(PeError::Truncated { .. })));
        assert!(!is_pe_image(b"M"));
    }

    #[test]
    fn parses_os_release_quoting() {
        let release = parse_os_release(
            b"# comment\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME='Debian'\n\
              ID=debian\nVERSION_ID=\"12\"\nIMAGE_ID=\"say \\\"hi\\\"\"\nbogus line\nIMAGE_VERSION=\n",
        );
        assert_eq!(
            release,
            OsRelease {
                pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
                name: Some("Debian".into()),
                id: Some("debian".into()),
                version_id: Some("12".into()),
                image_id: Some("say \"hi\"".into()),
                image_version: None,
            }
        );
    }

    #[test]
    fn type2_entries_take_their_menu_fields_from_sections() {
        let osrel = b"PRETTY_NAME=\"Debian 12\"\nID=debian\nVERSION_ID=12\n";
        let entry = type2_entry("debian-6.1.efi", Some(osrel), Some(b"6.1.0-57-amd64\n")).unwrap();
        assert_eq!(entry.id, "debian-6.1.efi");
        assert_eq!(entry.title.as_deref(), Some("Debian 12"));
        assert_eq!(entry.version.as_deref(), Some("6.1.0-57-amd64"));
        assert_eq!(entry.sort_key.as_deref(), Some("debian"));
        assert_eq!(entry.efi.as_deref(), Some("/EFI/Linux/debian-6.1.efi"));
        assert!(entry.options.is_empty(), "the UKI carries its own cmdline");

        let bare = type2_entry("rescue+2-1.EFI", None, None).unwrap();
        assert_eq!(bare.id, "rescue.efi");
        assert_eq!(bare.counter.map(|c| c.tries_left), Some(2));
        assert_eq!(bare.title, None);
        assert!(type2_entry("notes.txt", None, None).is_none());
    }

    #[test]
    fn type2_and_type1_entries_sort_together_by_version() {
        let type1 = bls::parse_entry(
            "debian-old.conf",
            b"sort-key debian\nversion 6.1.0-10-amd64\nlinux /vmlinuz\n",
        )
        .unwrap()
        .unwrap();
        let newer = type2_entry(
            "debian-new.efi",
            Some(b"ID=debian\n"),
            Some(b"6.1.0-57-amd64"),
        )
        .unwrap();
        let unsorted = type2_entry("zz-no-osrel.efi", None, None).unwrap();
        let mut entries = vec![unsorted, type1, newer];
        bls::sort_entries(&mut entries);
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["debian-new.efi", "debian-old", "zz-no-osrel.efi"]);
    }
}
