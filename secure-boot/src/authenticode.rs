//! The Authenticode digest of a PE/COFF image and its certificate table
//! ("Windows Authenticode Portable Executable Signature Format", "Calculating
//! the PE Image Hash"; UEFI 2.10 §32.5.3.3 uses it for db/dbx image hashes).
//!
//! Hashed, in order: the headers up to the CheckSum field; the headers from
//! after CheckSum up to the Certificate Table data-directory entry; the rest
//! of the headers (to SizeOfHeaders); each section's raw data in ascending
//! PointerToRawData order; then the bytes after the last section up to the
//! certificate table, which is excluded. edk2's DxeImageVerificationLib
//! (HashPeImage) hashes the same ranges and treats the trailing data the same
//! way (everything after SizeOfHeaders + the sections' raw sizes, less the
//! certificate table's size), which is what signers (signtool, sbsign, pesign)
//! produce: the table is the last thing in the file.
//!
//! Only the fields the hash needs are parsed here; the firmware's loader
//! (`efi::pe`) checks the rest when it loads the image. The header parse is
//! local because `efi` is a firmware layer (allocator, services) and this
//! crate must stay a pure leaf.

use alloc::vec::Vec;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// `WIN_CERTIFICATE.wRevision` of a current entry (Authenticode PE spec,
/// "The Attribute Certificate Table"; UEFI 2.10 §32.2.4).
pub const WIN_CERT_REVISION_2_0: u16 = 0x0200;
/// `wCertificateType`: a PKCS#7 SignedData (Authenticode).
pub const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;
/// `wCertificateType`: WIN_CERTIFICATE_UEFI_GUID (UEFI 2.10 §32.2.4), a GUID
/// after the header names the data's format.
pub const WIN_CERT_TYPE_EFI_GUID: u16 = 0x0EF1;
/// EFI_CERT_TYPE_PKCS7_GUID (UEFI 2.10 §32.2.4): the data is a SignedData.
pub const EFI_CERT_TYPE_PKCS7_GUID: [u8; 16] = guid_bytes(
    0x4aafd29d,
    0x68df,
    0x49ee,
    [0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7],
);

/// The on-disk (little-endian first three fields) bytes of an EFI_GUID.
pub const fn guid_bytes(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// Index of the Certificate Table in the optional header's data directories
/// (PE/COFF spec, "Optional Header Data Directories").
const SECURITY_DIRECTORY: u32 = 4;
/// Largest section count the COFF header can state (PE/COFF: 96 in practice,
/// the field is a u16); anything above is refused before allocating.
const MAX_SECTIONS: u16 = 96;

/// The layout facts the Authenticode hash needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    checksum: usize,
    /// Offset of the Certificate Table directory entry, if the image has one.
    cert_entry: Option<usize>,
    size_of_headers: usize,
    /// (PointerToRawData, SizeOfRawData) of each section with raw data,
    /// sorted by offset.
    sections: Vec<(usize, usize)>,
    /// The certificate table's file range (its directory entry's
    /// VirtualAddress is a file offset), empty when unsigned.
    cert_table: (usize, usize),
}

fn field<'a>(
    data: &'a [u8],
    offset: usize,
    len: usize,
    name: &'static str,
) -> Result<&'a [u8], Error> {
    offset
        .checked_add(len)
        .and_then(|end| data.get(offset..end))
        .ok_or(Error::Pe {
            field: name,
            value: offset as u64,
        })
}

fn u16_at(data: &[u8], offset: usize, name: &'static str) -> Result<u16, Error> {
    let b = field(data, offset, 2, name)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], offset: usize, name: &'static str) -> Result<u32, Error> {
    let b = field(data, offset, 4, name)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn pe_err(field: &'static str, value: impl Into<u64>) -> Error {
    Error::Pe {
        field,
        value: value.into(),
    }
}

fn layout(image: &[u8]) -> Result<Layout, Error> {
    if field(image, 0, 2, "MZ signature")? != b"MZ" {
        return Err(pe_err("MZ signature", u16_at(image, 0, "MZ signature")?));
    }
    let pe = u32_at(image, 0x3c, "e_lfanew")? as usize;
    if field(image, pe, 4, "e_lfanew")? != b"PE\0\0" {
        return Err(pe_err("PE signature", pe as u64));
    }
    let coff = pe.checked_add(4).ok_or(pe_err("e_lfanew", pe as u64))?;
    let sections = u16_at(image, coff + 2, "NumberOfSections")?;
    if sections > MAX_SECTIONS {
        return Err(pe_err("NumberOfSections", sections));
    }
    let opt_size = u16_at(image, coff + 16, "SizeOfOptionalHeader")?;
    let opt = coff + 20;
    // CheckSum is at the same offset in PE32 and PE32+; the data directories
    // follow NumberOfRvaAndSizes, whose place depends on the magic.
    let magic = u16_at(image, opt, "optional header magic")?;
    let rva_count_at = match magic {
        0x10b => opt + 92,
        0x20b => opt + 108,
        other => return Err(pe_err("optional header magic", other)),
    };
    let dirs = rva_count_at + 4;
    let checksum = opt + 64;
    let size_of_headers = u32_at(image, opt + 60, "SizeOfHeaders")? as usize;
    let rva_count = u32_at(image, rva_count_at, "NumberOfRvaAndSizes")?;
    let opt_end = opt + usize::from(opt_size);
    if dirs > opt_end
        || (u64::from(rva_count) * 8).saturating_add((dirs - opt) as u64) > u64::from(opt_size)
    {
        return Err(pe_err("NumberOfRvaAndSizes", rva_count));
    }
    let section_table = opt_end;
    let table_len = usize::from(sections) * 40;
    if section_table + table_len > size_of_headers || size_of_headers > image.len() {
        return Err(pe_err("SizeOfHeaders", size_of_headers as u64));
    }
    let (cert_entry, cert_table) = if rva_count > SECURITY_DIRECTORY {
        let entry = dirs + 8 * SECURITY_DIRECTORY as usize;
        let offset = u32_at(image, entry, "Certificate Table")? as usize;
        let size = u32_at(image, entry + 4, "Certificate Table size")? as usize;
        (Some(entry), (offset, size))
    } else {
        (None, (0, 0))
    };
    let mut raw = Vec::with_capacity(usize::from(sections));
    for i in 0..usize::from(sections) {
        let header = section_table + 40 * i;
        let size = u32_at(image, header + 16, "SizeOfRawData")? as usize;
        let offset = u32_at(image, header + 20, "PointerToRawData")? as usize;
        if size == 0 {
            continue;
        }
        if offset.checked_add(size).is_none_or(|end| end > image.len()) {
            return Err(pe_err("PointerToRawData", offset as u64));
        }
        raw.push((offset, size));
    }
    raw.sort_unstable();
    Ok(Layout {
        checksum,
        cert_entry,
        size_of_headers,
        sections: raw,
        cert_table,
    })
}

/// The SHA-256 Authenticode digest of `image`.
pub fn sha256(image: &[u8]) -> Result<[u8; 32], Error> {
    let mut h = Sha256::new();
    hash_with(image, |bytes| h.update(bytes))?;
    Ok(h.finalize().into())
}

/// Feeds the bytes the Authenticode digest of `image` covers to `update`,
/// in order, for any hash algorithm (a TPM measures an image into each of
/// its PCR banks: SHA-1, SHA-384... as well as SHA-256).
pub fn hash_with(image: &[u8], mut update: impl FnMut(&[u8])) -> Result<(), Error> {
    let l = layout(image)?;
    let h = &mut update;
    h(&image[..l.checksum]);
    let after_checksum = l.checksum + 4;
    match l.cert_entry {
        Some(entry) => {
            h(&image[after_checksum..entry]);
            h(&image[entry + 8..l.size_of_headers]);
        }
        None => h(&image[after_checksum..l.size_of_headers]),
    }
    let mut hashed = l.size_of_headers;
    for &(offset, size) in &l.sections {
        h(&image[offset..offset + size]);
        hashed = hashed
            .checked_add(size)
            .ok_or(pe_err("SizeOfRawData", size as u64))?;
    }
    // Trailing data: what lies past the headers and sections, less the
    // certificate table at the end (edk2 HashPeImage; Authenticode PE spec
    // step 14). A table that is not at the end, or that overlaps the
    // hashed bytes, is refused rather than guessed around.
    if image.len() > hashed {
        let (cert_offset, cert_size) = l.cert_table;
        let end = image
            .len()
            .checked_sub(cert_size)
            .filter(|&end| end >= hashed)
            .ok_or(pe_err("Certificate Table size", cert_size as u64))?;
        if cert_size != 0 && cert_offset != end {
            return Err(pe_err("Certificate Table", cert_offset as u64));
        }
        h(&image[hashed..end]);
    }
    Ok(())
}

/// One WIN_CERTIFICATE entry of the certificate table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinCertificate<'a> {
    pub revision: u16,
    pub certificate_type: u16,
    /// The bytes after the 8-byte header, `dwLength - 8` of them.
    pub data: &'a [u8],
}

impl<'a> WinCertificate<'a> {
    /// The PKCS#7 SignedData of an Authenticode entry: a revision 2.0
    /// WIN_CERT_TYPE_PKCS_SIGNED_DATA, or a WIN_CERTIFICATE_UEFI_GUID with
    /// EFI_CERT_TYPE_PKCS7_GUID (UEFI 2.10 §32.2.4, as edk2 accepts both).
    pub fn signed_data(&self) -> Option<&'a [u8]> {
        if self.revision != WIN_CERT_REVISION_2_0 {
            return None;
        }
        match self.certificate_type {
            WIN_CERT_TYPE_PKCS_SIGNED_DATA => Some(self.data),
            WIN_CERT_TYPE_EFI_GUID => match self.data.split_at_checked(16) {
                Some((guid, rest)) if guid == EFI_CERT_TYPE_PKCS7_GUID => Some(rest),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The entries of the image's certificate table, in order. Each entry is
/// `dwLength` bytes, the next starts at the next 8-byte boundary (PE/COFF
/// spec, "The Attribute Certificate Table"); an entry running past the table
/// or the file, or shorter than its header, is refused.
pub fn certificates(image: &[u8]) -> Result<Vec<WinCertificate<'_>>, Error> {
    let (offset, size) = layout(image)?.cert_table;
    if size == 0 {
        return Ok(Vec::new());
    }
    let table = offset
        .checked_add(size)
        .and_then(|end| image.get(offset..end))
        .ok_or(Error::CertTable {
            field: "directory entry",
            value: offset as u64,
        })?;
    walk(table)
}

/// Walks a certificate table's bytes (see [`certificates`]).
pub fn walk(table: &[u8]) -> Result<Vec<WinCertificate<'_>>, Error> {
    let mut entries = Vec::new();
    let mut pos = 0usize;
    while pos < table.len() {
        let bad = |field, value: usize| Error::CertTable {
            field,
            value: value as u64,
        };
        let header = table
            .get(pos..pos.saturating_add(8))
            .ok_or(bad("header at", pos))?;
        let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let end = pos
            .checked_add(length)
            .filter(|&end| length >= 8 && end <= table.len())
            .ok_or(bad("dwLength", length))?;
        entries.push(WinCertificate {
            revision: u16::from_le_bytes([header[4], header[5]]),
            certificate_type: u16::from_le_bytes([header[6], header[7]]),
            data: &table[pos + 8..end],
        });
        // The next entry is 8-byte aligned; padding may end the table.
        pos = end
            .checked_next_multiple_of(8)
            .ok_or(bad("dwLength", length))?;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A minimal PE32+ image: headers (0x200), one section of 0x200 bytes
    /// at 0x200, and `trailer` appended; `cert` is the directory entry.
    fn image(sections: &[(u32, u32)], cert: (u32, u32), trailer: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 0x400];
        f[0..2].copy_from_slice(b"MZ");
        f[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        f[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        f[coff + 2..coff + 4].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        f[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
        let opt = coff + 20;
        f[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        f[opt + 60..opt + 64].copy_from_slice(&0x200u32.to_le_bytes());
        f[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
        let entry = opt + 112 + 32;
        f[entry..entry + 4].copy_from_slice(&cert.0.to_le_bytes());
        f[entry + 4..entry + 8].copy_from_slice(&cert.1.to_le_bytes());
        for (i, &(ptr, size)) in sections.iter().enumerate() {
            let s = opt + 240 + 40 * i;
            f[s + 16..s + 20].copy_from_slice(&size.to_le_bytes());
            f[s + 20..s + 24].copy_from_slice(&ptr.to_le_bytes());
        }
        for (i, b) in f[0x200..0x400].iter_mut().enumerate() {
            *b = i as u8;
        }
        f.extend_from_slice(trailer);
        f
    }

    fn cert_entry(len: u32, revision: u16, kind: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&revision.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn checksum_and_certificate_table_are_not_hashed() {
        let table = cert_entry(16, 0x200, 2, &[7; 8]);
        let signed = image(&[(0x200, 0x200)], (0x400, 16), &table);
        let unsigned = image(&[(0x200, 0x200)], (0, 0), &[]);
        let mut with_checksum = signed.clone();
        with_checksum[0x84 + 20 + 64] ^= 0xff;
        assert_eq!(sha256(&signed), sha256(&unsigned));
        assert_eq!(sha256(&signed), sha256(&with_checksum));
        let mut code = signed.clone();
        code[0x300] ^= 1;
        assert_ne!(sha256(&signed), sha256(&code));
    }

    #[test]
    fn trailing_data_is_hashed() {
        let plain = image(&[(0x200, 0x200)], (0, 0), &[]);
        let trailer = image(&[(0x200, 0x200)], (0, 0), &[1, 2, 3]);
        assert_ne!(sha256(&plain), sha256(&trailer));
    }

    #[test]
    fn sections_hash_in_file_order_whatever_the_table_order() {
        // The table lists the later section first; the digest still takes
        // 0x200.. before 0x300.. (the headers differ, so compare with the
        // ranges hashed by hand).
        let b = image(&[(0x300, 0x100), (0x200, 0x100)], (0, 0), &[]);
        let checksum = 0x84 + 20 + 64;
        let entry = 0x84 + 20 + 112 + 32;
        let mut h = Sha256::new();
        h.update(&b[..checksum]);
        h.update(&b[checksum + 4..entry]);
        h.update(&b[entry + 8..0x200]);
        h.update(&b[0x200..0x300]);
        h.update(&b[0x300..0x400]);
        assert_eq!(sha256(&b), Ok(h.finalize().into()));
    }

    #[test]
    fn hostile_headers_are_refused() {
        let good = image(&[(0x200, 0x200)], (0, 0), &[]);
        let mut lfanew = good.clone();
        lfanew[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            sha256(&lfanew),
            Err(Error::Pe {
                field: "e_lfanew",
                ..
            })
        ));
        let section = image(&[(0x200, u32::MAX)], (0, 0), &[]);
        assert!(matches!(sha256(&section), Err(Error::Pe { .. })));
        // A certificate table larger than the file.
        let cert = image(&[(0x200, 0x200)], (0x400, 0x10000), &[0; 16]);
        assert!(matches!(
            sha256(&cert),
            Err(Error::Pe {
                field: "Certificate Table size",
                ..
            })
        ));
        // A table that is not at the end of the file.
        let mid = image(&[(0x200, 0x200)], (0x200, 16), &[0; 16]);
        assert!(sha256(&mid).is_err());
        for len in 0..good.len() {
            let _ = sha256(&good[..len]);
            let _ = certificates(&good[..len]);
        }
    }

    #[test]
    fn certificate_table_walk() {
        let mut table = cert_entry(13, 0x200, 2, &[1, 2, 3, 4, 5]);
        table.extend_from_slice(&[0; 3]); // padding to 16
        table.extend(cert_entry(12, 0x200, 2, &[9; 4]));
        let entries = walk(&table).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].data, &[1, 2, 3, 4, 5]);
        assert_eq!(entries[1].signed_data(), Some(&[9u8; 4][..]));
        let file = image(&[(0x200, 0x200)], (0x400, table.len() as u32), &table);
        assert_eq!(certificates(&file).unwrap(), entries);
    }

    #[test]
    fn hostile_certificate_tables_are_refused() {
        for (length, why) in [
            (0, "shorter than its header"),
            (7, "shorter"),
            (u32::MAX, "past"),
        ] {
            let table = cert_entry(length, 0x200, 2, &[0; 8]);
            assert!(
                matches!(
                    walk(&table),
                    Err(Error::CertTable {
                        field: "dwLength",
                        ..
                    })
                ),
                "{why}"
            );
        }
        assert!(matches!(walk(&[0; 4]), Err(Error::CertTable { .. })));
        // Directory entry pointing past the file.
        let file = image(&[(0x200, 0x200)], (0xffff_fff0, 0x20), &[]);
        assert!(certificates(&file).is_err());
        // Other revisions and types are walked but carry no SignedData.
        let old = cert_entry(12, 0x100, 2, &[0; 4]);
        assert_eq!(walk(&old).unwrap()[0].signed_data(), None);
        let mut guid = Vec::from(EFI_CERT_TYPE_PKCS7_GUID);
        guid.push(0x30);
        let uefi = cert_entry(8 + 17, 0x200, 0x0ef1, &guid);
        assert_eq!(walk(&uefi).unwrap()[0].signed_data(), Some(&[0x30u8][..]));
    }
}
