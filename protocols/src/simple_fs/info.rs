//! EFI_FILE_INFO (UEFI 2.10 §13.5.16) and EFI_FILE_SYSTEM_INFO (§13.5.17):
//! encoding them for GetInfo and applying an EFI_FILE_INFO for SetInfo.

use alloc::string::String;
use alloc::vec::Vec;
use core::mem::offset_of;

use uefi_raw::Status;
use uefi_raw::protocol::file_system::{FileInfo, FileSystemInfo};
use uefi_raw::time::{Daylight, Time};

use super::file::FileHandle;
use super::{VALID_ATTR, Volume, status_of};
use crate::fat::{Attributes, DateTime, FatError};

fn to_efi_time(t: DateTime) -> Time {
    Time {
        year: t.year,
        month: t.month,
        day: t.day,
        hour: t.hour,
        minute: t.minute,
        second: t.second,
        pad1: 0,
        nanosecond: 0,
        time_zone: Time::UNSPECIFIED_TIMEZONE,
        daylight: Daylight::empty(),
        pad2: 0,
    }
}

fn put_time(out: &mut [u8], t: DateTime) {
    let time = to_efi_time(t);
    out[0..2].copy_from_slice(&time.year.to_le_bytes());
    out[2..9].copy_from_slice(&[
        time.month,
        time.day,
        time.hour,
        time.minute,
        time.second,
        0,
        0,
    ]);
    out[8..12].copy_from_slice(&time.nanosecond.to_le_bytes());
    out[12..14].copy_from_slice(&time.time_zone.to_le_bytes());
}

/// EFI_TIME bytes -> DateTime; None for an all-zero time ("leave unchanged").
fn get_time(b: &[u8]) -> Option<DateTime> {
    let year = u16::from_le_bytes([b[0], b[1]]);
    (year != 0).then_some(DateTime {
        year,
        month: b[2],
        day: b[3],
        hour: b[4],
        minute: b[5],
        second: b[6],
    })
}

pub(super) fn char16_bytes(text: &str) -> Vec<u8> {
    text.encode_utf16()
        .chain(core::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

pub(super) struct InfoFields<'a> {
    pub(super) name: &'a str,
    pub(super) size: u64,
    pub(super) physical: u64,
    pub(super) attributes: Attributes,
    pub(super) created: DateTime,
    pub(super) accessed: DateTime,
    pub(super) modified: DateTime,
}

/// Serialises an EFI_FILE_INFO (UEFI 2.10 §13.5.16).
pub(super) fn file_info(fields: &InfoFields) -> Vec<u8> {
    let name_at = offset_of!(FileInfo, file_name);
    let name = char16_bytes(fields.name);
    let mut out = alloc::vec![0u8; name_at + name.len()];
    let total = out.len() as u64;
    out[offset_of!(FileInfo, size)..][..8].copy_from_slice(&total.to_le_bytes());
    out[offset_of!(FileInfo, file_size)..][..8].copy_from_slice(&fields.size.to_le_bytes());
    out[offset_of!(FileInfo, physical_size)..][..8].copy_from_slice(&fields.physical.to_le_bytes());
    put_time(
        &mut out[offset_of!(FileInfo, create_time)..],
        fields.created,
    );
    put_time(
        &mut out[offset_of!(FileInfo, last_access_time)..],
        fields.accessed,
    );
    put_time(
        &mut out[offset_of!(FileInfo, modification_time)..],
        fields.modified,
    );
    let attribute = u64::from((fields.attributes & !Attributes::VOLUME_ID).bits());
    out[offset_of!(FileInfo, attribute)..][..8].copy_from_slice(&attribute.to_le_bytes());
    out[name_at..].copy_from_slice(&name);
    out
}

/// Serialises an EFI_FILE_SYSTEM_INFO (UEFI 2.10 §13.5.17).
pub(super) fn system_info(volume: &Volume) -> Result<Vec<u8>, FatError> {
    let label_at = offset_of!(FileSystemInfo, volume_label);
    let label = char16_bytes(&volume.volume_label()?);
    let mut out = alloc::vec![0u8; label_at + label.len()];
    let total = out.len() as u64;
    out[offset_of!(FileSystemInfo, size)..][..8].copy_from_slice(&total.to_le_bytes());
    out[offset_of!(FileSystemInfo, read_only)] = u8::from(volume.is_read_only());
    out[offset_of!(FileSystemInfo, volume_size)..][..8]
        .copy_from_slice(&volume.total_bytes().to_le_bytes());
    out[offset_of!(FileSystemInfo, free_space)..][..8]
        .copy_from_slice(&volume.free_bytes()?.to_le_bytes());
    out[offset_of!(FileSystemInfo, block_size)..][..4]
        .copy_from_slice(&volume.cluster_size().to_le_bytes());
    out[label_at..].copy_from_slice(&label);
    Ok(out)
}

/// A NUL-terminated CHAR16 string inside a byte buffer.
pub(super) fn char16_from_bytes(bytes: &[u8]) -> String {
    let units = platform::le::u16_units(bytes).take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Applies an EFI_FILE_INFO: name (rename within the directory), size,
/// timestamps (zero means unchanged) and attributes (§13.5.13).
pub(super) fn set_file_info(handle: &mut FileHandle, bytes: &[u8]) -> Status {
    let name_at = offset_of!(FileInfo, file_name);
    let field = |off: usize| platform::le::u64_at(bytes, off).unwrap_or(0);
    let declared = field(0);
    if bytes.len() < name_at + 2 || declared < (name_at + 2) as u64 || declared > bytes.len() as u64
    {
        return Status::BAD_BUFFER_SIZE;
    }
    let bytes = &bytes[..declared as usize];
    let attribute = field(offset_of!(FileInfo, attribute));
    let file_size = field(offset_of!(FileInfo, file_size));
    if attribute & !VALID_ATTR != 0 {
        return Status::INVALID_PARAMETER;
    }
    if handle.node.is_root() || !handle.writable {
        return Status::ACCESS_DENIED;
    }
    let wanted = Attributes::from_bits_truncate(attribute as u8);
    if wanted.contains(Attributes::DIRECTORY) != handle.node.is_dir() {
        return Status::ACCESS_DENIED;
    }
    let name = char16_from_bytes(&bytes[name_at..]);
    let name = name.trim_start_matches(['\\', '/']);
    if name.contains(['\\', '/']) {
        // Moving between directories is not supported.
        return Status::ACCESS_DENIED;
    }
    let FileHandle { volume, node, .. } = handle;
    let result = (|| {
        if name != node.name() {
            volume.rename(node, name)?;
        }
        if !node.is_dir() && file_size != node.size() {
            // Size first, while a read-only bit being set below cannot block it.
            let current = node.attributes();
            if current.contains(Attributes::READ_ONLY) {
                volume.set_attributes(node, current & !Attributes::READ_ONLY)?;
            }
            volume.set_len(node, file_size)?;
        }
        volume.set_times(
            node,
            get_time(&bytes[offset_of!(FileInfo, create_time)..]),
            get_time(&bytes[offset_of!(FileInfo, modification_time)..]),
            get_time(&bytes[offset_of!(FileInfo, last_access_time)..]),
        )?;
        volume.set_attributes(node, wanted)
    })();
    match result {
        Ok(()) => Status::SUCCESS,
        Err(e) => status_of(&e),
    }
}
