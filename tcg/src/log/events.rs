//! Event data of the events this firmware logs (PFP chapter 10:
//! the event types of §10.4.1 and their data structures), each next to the PFP rule
//! for what its digest covers.
//!
//! Events whose digest covers (part of) their own data come back as an
//! [`Event`], which knows that part; events whose digest covers something
//! else (the image, the firmware blob, the tables) come back as bare data
//! and the caller digests the thing itself ([`digests`], [`BankHasher`]).

use alloc::vec::Vec;
use core::ops::Range;
use uefi_raw::Guid;
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

use super::LogError;
use super::wire::Put;
use crate::alg::{Digest, Hasher};

/// Event data and the bytes of it the digest covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event_type: EventType,
    pub data: Vec<u8>,
    measured: Range<usize>,
}

impl Event {
    fn whole(event_type: EventType, data: Vec<u8>) -> Self {
        let measured = 0..data.len();
        Self {
            event_type,
            data,
            measured,
        }
    }

    /// The bytes the PFP says this event's digest is computed over.
    pub fn measured(&self) -> &[u8] {
        &self.data[self.measured.clone()]
    }

    /// The digests of [`measured`](Self::measured) for every bank.
    pub fn digests(&self, banks: &[AlgorithmId]) -> Result<Vec<Digest>, LogError> {
        digests(banks, self.measured())
    }
}

/// The digest of `data` in each of `banks`, in their order.
pub fn digests(banks: &[AlgorithmId], data: &[u8]) -> Result<Vec<Digest>, LogError> {
    let mut h = BankHasher::new(banks)?;
    h.update(data);
    Ok(h.finish())
}

/// One hash per bank fed the same bytes: measures something given in
/// pieces (e.g. `secure_boot::authenticode::hash_with`) in one pass.
#[derive(Clone)]
pub struct BankHasher {
    hashers: Vec<Hasher>,
}

impl BankHasher {
    pub fn new(banks: &[AlgorithmId]) -> Result<Self, LogError> {
        let hashers = banks
            .iter()
            .map(|&alg| Hasher::new(alg).ok_or(LogError::UnsupportedAlgorithm(alg)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { hashers })
    }

    pub fn update(&mut self, data: &[u8]) {
        for h in &mut self.hashers {
            h.update(data);
        }
    }

    pub fn finish(self) -> Vec<Digest> {
        self.hashers.into_iter().map(Hasher::finish).collect()
    }
}

/// EV_SEPARATOR (PFP §10.4.1; §3.3.2): four zero bytes, the digest of
/// those four bytes; one in each of PCRs 0-7 marks the end of pre-boot.
pub fn separator() -> Event {
    Event::whole(EventType::SEPARATOR, alloc::vec![0; 4])
}

/// EV_SEPARATOR for an error (PFP §3.3.2 error conditions): data
/// 0x00000001, digest of those bytes; ends a PCR whose measurements failed.
pub fn separator_error() -> Event {
    Event::whole(EventType::SEPARATOR, 1u32.to_le_bytes().to_vec())
}

/// PCR 4: before the first boot option's application starts (PFP §3.3.4, PCR 4).
pub const CALLING_EFI_APPLICATION: &str = "Calling EFI Application from Boot Option";
/// PCR 4: the boot option's application returned (PFP §3.3.4, PCR 4).
pub const RETURNING_FROM_EFI_APPLICATION: &str = "Returning from EFI Application from Boot Option";
/// PCR 5: ExitBootServices was called (PFP §3.3.4, PCR 5).
pub const EXIT_BOOT_SERVICES_INVOCATION: &str = "Exit Boot Services Invocation";
/// PCR 5: ExitBootServices succeeded (PFP §3.3.4, PCR 5).
pub const EXIT_BOOT_SERVICES_SUCCEEDED: &str = "Exit Boot Services Returned with Success";

/// EV_EFI_ACTION (PFP §10.4.1): the action string in ASCII without a NUL;
/// the digest is of those bytes.
pub fn action(string: &str) -> Event {
    Event::whole(EventType::EFI_ACTION, string.as_bytes().to_vec())
}

/// EV_S_CRTM_VERSION (PFP §10.4.1, PCR 0): the firmware version as a
/// NUL-terminated UCS-2 string; the digest is of the whole event data.
pub fn s_crtm_version(version: &str) -> Event {
    let mut data = Vec::new();
    for unit in version.encode_utf16().chain([0]) {
        data.put_u16(unit);
    }
    Event::whole(EventType::CRTM_VERSION, data)
}

/// UEFI_VARIABLE_DATA (PFP chapter 10): VariableName (the vendor GUID),
/// UnicodeNameLength and VariableDataLength (UINT64, in CHAR16s and bytes),
/// UnicodeName without its NUL, VariableData. `name` may end in NULs; the
/// name stops at the first.
fn variable(event_type: EventType, vendor: &Guid, name: &[u16], value: &[u8]) -> Event {
    let name = name.split(|&c| c == 0).next().unwrap_or_default();
    let mut data = Vec::new();
    data.extend_from_slice(&vendor.to_bytes());
    data.put_u64(name.len() as u64);
    data.put_u64(value.len() as u64);
    for &unit in name {
        data.put_u16(unit);
    }
    let value_start = data.len();
    data.extend_from_slice(value);
    let measured = match event_type {
        // PFP (EV_EFI_VARIABLE_BOOT) and edk2 (both types), which
        // verifiers such as tpm2-tools and tcglog-parser follow: the
        // boot variables' digest covers VariableData alone.
        EventType::EFI_VARIABLE_BOOT | EventType::EFI_VARIABLE_BOOT2 => value_start..data.len(),
        _ => 0..data.len(),
    };
    Event {
        event_type,
        data,
        measured,
    }
}

/// EV_EFI_VARIABLE_DRIVER_CONFIG (PCR 1 configuration variables, PCR 7
/// SecureBoot/PK/KEK/db/dbx): the digest covers the whole
/// UEFI_VARIABLE_DATA.
pub fn variable_driver_config(vendor: &Guid, name: &[u16], value: &[u8]) -> Event {
    variable(EventType::EFI_VARIABLE_DRIVER_CONFIG, vendor, name, value)
}

/// EV_EFI_VARIABLE_BOOT (PCR 1, BootOrder and Boot####): the digest covers
/// VariableData only.
pub fn variable_boot(vendor: &Guid, name: &[u16], value: &[u8]) -> Event {
    variable(EventType::EFI_VARIABLE_BOOT, vendor, name, value)
}

/// EV_EFI_VARIABLE_BOOT2 (PFP 1.05's replacement for EV_EFI_VARIABLE_BOOT,
/// PCR 1): as EV_EFI_VARIABLE_BOOT, the digest covers VariableData only.
pub fn variable_boot2(vendor: &Guid, name: &[u16], value: &[u8]) -> Event {
    variable(EventType::EFI_VARIABLE_BOOT2, vendor, name, value)
}

/// EV_EFI_VARIABLE_AUTHORITY (PCR 7, the db entry that authorised an
/// image: VariableData is that EFI_SIGNATURE_DATA): the digest covers the
/// whole UEFI_VARIABLE_DATA.
pub fn variable_authority(vendor: &Guid, name: &[u16], value: &[u8]) -> Event {
    variable(EventType::EFI_VARIABLE_AUTHORITY, vendor, name, value)
}

/// UEFI_IMAGE_LOAD_EVENT (PFP chapter 10) for EV_EFI_BOOT_SERVICES_APPLICATION
/// (PCR 4) and the driver types: ImageLocationInMemory,
/// ImageLengthInMemory, ImageLinkTimeAddress, LengthOfDevicePath (UINT64s)
/// and the image's device path. The digest is NOT of this data but the
/// image's Authenticode (PE/COFF) hash, which the caller computes
/// ([`BankHasher`] fed by `secure_boot::authenticode::hash_with`); the
/// addresses here stay out of the PCR.
pub fn image_load(
    location: u64,
    length: u64,
    link_time_address: u64,
    device_path: &[u8],
) -> Vec<u8> {
    let mut data = Vec::with_capacity(32 + device_path.len());
    data.put_u64(location);
    data.put_u64(length);
    data.put_u64(link_time_address);
    data.put_u64(device_path.len() as u64);
    data.extend_from_slice(device_path);
    data
}

/// Bytes of EFI_PARTITION_TABLE_HEADER (UEFI 2.10 §5.3.2) that
/// UEFI_GPT_DATA carries.
const GPT_HEADER_SIZE: usize = 92;

/// EV_EFI_GPT_EVENT (PFP chapter 10 UEFI_GPT_DATA, PCR 5): the GPT header
/// (its 92 defined bytes), NumberOfPartitions (UINT64) and the partition
/// entries in use (a non-zero PartitionTypeGUID), in table order, each
/// SizeOfPartitionEntry bytes. The digest covers the whole event data.
///
/// `header` is the header block (LBA 1) and `entries` the partition entry
/// array as read from the disk (at least NumberOfPartitionEntries *
/// SizeOfPartitionEntry bytes); both are checked, not trusted.
pub fn gpt(header: &[u8], entries: &[u8]) -> Result<Event, LogError> {
    let bad = |what| LogError::Malformed { offset: 0, what };
    let header = header
        .get(..GPT_HEADER_SIZE)
        .ok_or(bad("GPT header too short"))?;
    if &header[..8] != b"EFI PART" {
        return Err(bad("GPT header signature"));
    }
    let field = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let count = usize::try_from(field(80)).map_err(|_| bad("partition entry count"))?;
    let entry_size = usize::try_from(field(84)).map_err(|_| bad("partition entry size"))?;
    // UEFI 2.10 §5.3.2: 128 × 2^n bytes.
    if entry_size < 128 || !entry_size.is_power_of_two() {
        return Err(bad("partition entry size"));
    }
    let table_len = count
        .checked_mul(entry_size)
        .ok_or(bad("partition entry array size"))?;
    let table = entries
        .get(..table_len)
        .ok_or(bad("partition entry array shorter than the header says"))?;
    let used: Vec<&[u8]> = table
        .chunks_exact(entry_size)
        .filter(|entry| entry[..16].iter().any(|&b| b != 0))
        .collect();
    let mut data = Vec::with_capacity(GPT_HEADER_SIZE + 8 + used.len() * entry_size);
    data.extend_from_slice(header);
    data.put_u64(used.len() as u64);
    for entry in used {
        data.extend_from_slice(entry);
    }
    Ok(Event::whole(EventType::EFI_GPT_EVENT, data))
}

/// UEFI_HANDOFF_TABLE_POINTERS2 (PFP chapter 10, EV_EFI_HANDOFF_TABLES2, PCR
/// 1): TableDescriptionSize (UINT8), TableDescription (ASCII, e.g.
/// "SMBIOS"), NumberOfTables (UINT64) and per table its
/// EFI_CONFIGURATION_TABLE (vendor GUID, address). The digest is NOT of
/// this data but of the tables' contents, which the caller hashes.
pub fn handoff_tables2(description: &[u8], tables: &[(Guid, u64)]) -> Result<Vec<u8>, LogError> {
    let description_size = u8::try_from(description.len()).map_err(|_| LogError::TooLarge)?;
    let mut data = Vec::with_capacity(1 + description.len() + 8 + tables.len() * 24);
    data.put_u8(description_size);
    data.extend_from_slice(description);
    data.put_u64(tables.len() as u64);
    for (guid, address) in tables {
        data.extend_from_slice(&guid.to_bytes());
        data.put_u64(*address);
    }
    Ok(data)
}

/// UEFI_PLATFORM_FIRMWARE_BLOB2 (PFP chapter 10, EV_EFI_PLATFORM_FIRMWARE_BLOB2,
/// PCR 0 for the firmware's own code): BlobDescriptionSize (UINT8),
/// BlobDescription (ASCII), BlobBase and BlobLength (UINT64). The digest is
/// NOT of this data but of the blob's bytes, which the caller hashes.
pub fn platform_firmware_blob2(
    description: &[u8],
    base: u64,
    length: u64,
) -> Result<Vec<u8>, LogError> {
    let description_size = u8::try_from(description.len()).map_err(|_| LogError::TooLarge)?;
    let mut data = Vec::with_capacity(1 + description.len() + 16);
    data.put_u8(description_size);
    data.extend_from_slice(description);
    data.put_u64(base);
    data.put_u64(length);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use uefi_raw::guid;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
    }

    const GLOBAL: Guid = guid!("8be4df61-93ca-11d2-aa0d-00e098032b8c");

    fn utf16(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn separator_digests_are_of_four_zero_bytes() {
        let d = separator()
            .digests(&[AlgorithmId::SHA1, AlgorithmId::SHA256])
            .unwrap();
        assert_eq!(
            hex(d[0].as_bytes()),
            "9069ca78e7450a285173431b3e52c5c25299e473"
        );
        assert_eq!(
            hex(d[1].as_bytes()),
            "df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119"
        );
        assert_eq!(separator_error().data, [1, 0, 0, 0]);
    }

    #[test]
    fn actions_are_their_ascii() {
        let e = action(CALLING_EFI_APPLICATION);
        assert_eq!(e.event_type, EventType::EFI_ACTION);
        assert_eq!(e.data, b"Calling EFI Application from Boot Option");
        assert_eq!(e.measured(), e.data);
        // The well-known SHA-256 of this string in PCR 4 logs.
        assert_eq!(
            hex(e.digests(&[AlgorithmId::SHA256]).unwrap()[0].as_bytes()),
            "3d6772b4f84ed47595d72a2c4c5ffd15f5bb72c7507fe26f2aaee2c69d5633ba"
        );
    }

    #[test]
    fn variables_measure_what_the_pfp_says() {
        let name = utf16("BootOrder\0");
        let boot = variable_boot(&GLOBAL, &name, &[1, 0]);
        // GUID, 9 CHAR16s, 2 bytes: 16 + 8 + 8 + 18 + 2.
        assert_eq!(boot.data.len(), 52);
        assert_eq!(&boot.data[16..24], &9u64.to_le_bytes());
        assert_eq!(&boot.data[24..32], &2u64.to_le_bytes());
        assert_eq!(&boot.data[32..34], &[b'B', 0]);
        assert_eq!(boot.measured(), [1, 0]);
        assert_eq!(variable_boot2(&GLOBAL, &name, &[1, 0]).measured(), [1, 0]);
        let config = variable_driver_config(&GLOBAL, &utf16("SecureBoot"), &[0]);
        assert_eq!(config.measured(), &config.data[..]);
        assert_eq!(config.event_type, EventType::EFI_VARIABLE_DRIVER_CONFIG);
        let authority = variable_authority(&GLOBAL, &utf16("db"), b"sig");
        assert_eq!(authority.measured(), &authority.data[..]);
        assert_eq!(authority.data[..16], GLOBAL.to_bytes());
    }

    #[test]
    fn crtm_version_is_nul_terminated_ucs2() {
        let e = s_crtm_version("1.0");
        assert_eq!(e.data, [b'1', 0, b'.', 0, b'0', 0, 0, 0]);
        assert_eq!(e.event_type, EventType::CRTM_VERSION);
    }

    fn gpt_header(count: u32, size: u32) -> Vec<u8> {
        let mut h = alloc::vec![0u8; 512];
        h[..8].copy_from_slice(b"EFI PART");
        h[80..84].copy_from_slice(&count.to_le_bytes());
        h[84..88].copy_from_slice(&size.to_le_bytes());
        h[100] = 0x55; // past the 92 defined bytes: not carried
        h
    }

    #[test]
    fn gpt_carries_the_entries_in_use() {
        let header = gpt_header(4, 128);
        let mut entries = alloc::vec![0u8; 4 * 128];
        entries[128] = 1; // entry 1 in use
        entries[3 * 128 + 15] = 2; // entry 3 in use
        entries[2 * 128 + 16] = 9; // entry 2: only a partition GUID, unused
        let e = gpt(&header, &entries).unwrap();
        assert_eq!(e.event_type, EventType::EFI_GPT_EVENT);
        assert_eq!(e.data.len(), 92 + 8 + 2 * 128);
        assert_eq!(&e.data[..92], &header[..92]);
        assert_eq!(&e.data[92..100], &2u64.to_le_bytes());
        assert_eq!(&e.data[100..228], &entries[128..256]);
        assert_eq!(&e.data[228..], &entries[384..]);
        assert_eq!(e.measured(), &e.data[..]);
    }

    #[test]
    fn gpt_refuses_bad_tables() {
        let entries = alloc::vec![1u8; 4 * 128];
        assert!(gpt(&gpt_header(4, 128)[..91], &entries).is_err());
        assert!(gpt(&gpt_header(5, 128), &entries).is_err());
        assert!(gpt(&gpt_header(4, 100), &entries).is_err());
        assert!(gpt(&gpt_header(4, 0), &entries).is_err());
        assert!(gpt(&gpt_header(u32::MAX, 1 << 31), &entries).is_err());
        let mut not_gpt = gpt_header(4, 128);
        not_gpt[0] = b'X';
        assert!(gpt(&not_gpt, &entries).is_err());
    }

    #[test]
    fn image_handoff_and_blob_layouts() {
        let image = image_load(0x1000, 0x2000, 0, &[0x7f, 0xff, 4, 0]);
        assert_eq!(image.len(), 36);
        assert_eq!(&image[..8], &0x1000u64.to_le_bytes());
        assert_eq!(&image[8..16], &0x2000u64.to_le_bytes());
        assert_eq!(&image[24..32], &4u64.to_le_bytes());
        assert_eq!(&image[32..], &[0x7f, 0xff, 4, 0]);

        let smbios3 = guid!("f2fd1544-9794-4a2c-992e-e5bbcf20e394");
        let tables = handoff_tables2(b"SMBIOS", &[(smbios3, 0xf0000)]).unwrap();
        assert_eq!(tables[0], 6);
        assert_eq!(&tables[1..7], b"SMBIOS");
        assert_eq!(&tables[7..15], &1u64.to_le_bytes());
        assert_eq!(&tables[15..31], &smbios3.to_bytes());
        assert_eq!(&tables[31..], &0xf0000u64.to_le_bytes());
        assert_eq!(handoff_tables2(&[b'x'; 256], &[]), Err(LogError::TooLarge));

        let blob = platform_firmware_blob2(b"vmfw", 0x10_0000, 0x8_0000).unwrap();
        assert_eq!(blob.len(), 1 + 4 + 16);
        assert_eq!(&blob[5..13], &0x10_0000u64.to_le_bytes());
        assert_eq!(
            platform_firmware_blob2(&[0; 256], 0, 0),
            Err(LogError::TooLarge)
        );
    }

    #[test]
    fn bank_hasher_matches_one_shot_hashes() {
        let banks = [AlgorithmId::SHA384, AlgorithmId::SHA1];
        let mut h = BankHasher::new(&banks).unwrap();
        h.update(b"ab");
        h.update(b"c");
        let d = h.finish();
        assert_eq!(d[0], crate::alg::hash(AlgorithmId::SHA384, b"abc").unwrap());
        assert_eq!(d[1], crate::alg::hash(AlgorithmId::SHA1, b"abc").unwrap());
        assert!(BankHasher::new(&[AlgorithmId::SM3_256]).is_err());
    }
}
