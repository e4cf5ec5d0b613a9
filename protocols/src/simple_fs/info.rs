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
use crate::fat::{Attributes, DateTime, FatError, Metadata};
use crate::ucs2::nul_terminated_bytes;

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
    let b: &[u8; 7] = b.get(..7)?.try_into().ok()?;
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
    let name = nul_terminated_bytes(fields.name);
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
    let label = nul_terminated_bytes(&volume.volume_label()?);
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

/// What the node looks like now, as GetInfo reports it: the baseline an
/// EFI_FILE_INFO passed to SetInfo is compared with.
pub(super) struct Current<'a> {
    pub(super) name: &'a str,
    pub(super) is_root: bool,
    pub(super) meta: Metadata,
}

/// The changes an EFI_FILE_INFO asks for; `None` leaves a field as it is.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct FileInfoChange {
    pub(super) name: Option<String>,
    pub(super) size: Option<u64>,
    pub(super) created: Option<DateTime>,
    pub(super) modified: Option<DateTime>,
    pub(super) accessed: Option<DateTime>,
    pub(super) attributes: Option<Attributes>,
}

impl FileInfoChange {
    pub(super) fn is_empty(&self) -> bool {
        *self == FileInfoChange::default()
    }

    /// Whether nothing but the attribute bits change: all a read-only handle
    /// may do (§13.5.13).
    fn only_attributes(&self) -> bool {
        self.name.is_none()
            && self.size.is_none()
            && self.created.is_none()
            && self.modified.is_none()
            && self.accessed.is_none()
    }
}

/// The attribute bits SetInfo can change; DIRECTORY is fixed at creation.
const CHANGEABLE: Attributes = Attributes::READ_ONLY
    .union(Attributes::HIDDEN)
    .union(Attributes::SYSTEM)
    .union(Attributes::ARCHIVE);

/// A requested timestamp, if it differs from `current` at the resolution FAT
/// keeps (`date_only` for the access date). A zero time means "unchanged".
fn time_change(
    requested: Option<DateTime>,
    current: DateTime,
    date_only: bool,
) -> Option<DateTime> {
    let requested = requested?;
    let (new, old) = (requested.to_fat(), current.to_fat());
    let same = if date_only {
        new.0 == old.0
    } else {
        new == old
    };
    (!same).then_some(requested)
}

/// Decides what an EFI_FILE_INFO of `bytes` (its own Size long, at least a
/// header and one CHAR16) asks to change on the node `current` describes,
/// and whether that is allowed (UEFI 2.10 §13.5.13 SetInfo):
/// - the file name must end within the buffer, else EFI_BAD_BUFFER_SIZE;
/// - attribute bits outside EFI_FILE_VALID_ATTR: EFI_INVALID_PARAMETER;
/// - changing EFI_FILE_DIRECTORY, a directory's size, or anything of the
///   root directory (it has no directory entry): EFI_ACCESS_DENIED;
/// - on a handle opened read-only (`writable` false), changing any field
///   other than Attribute: EFI_ACCESS_DENIED.
///
/// Fields equal to the current ones are no change, so an info read by
/// GetInfo can be written back unchanged through any handle.
pub(super) fn plan_file_info(
    bytes: &[u8],
    current: &Current,
    writable: bool,
) -> Result<FileInfoChange, Status> {
    let name_at = offset_of!(FileInfo, file_name);
    let field = |off: usize| platform::le::u64_at(bytes, off).unwrap_or(0);
    let name_bytes = bytes.get(name_at..).unwrap_or(&[]);
    if !platform::le::u16_units(name_bytes).any(|u| u == 0) {
        return Err(Status::BAD_BUFFER_SIZE);
    }
    let attribute = field(offset_of!(FileInfo, attribute));
    if attribute & !VALID_ATTR != 0 {
        return Err(Status::INVALID_PARAMETER);
    }
    let wanted = Attributes::from_bits_truncate(attribute as u8);
    let meta = &current.meta;
    let is_dir = meta.attributes.contains(Attributes::DIRECTORY);
    if wanted.contains(Attributes::DIRECTORY) != is_dir {
        return Err(Status::ACCESS_DENIED);
    }
    let file_size = field(offset_of!(FileInfo, file_size));
    if is_dir && file_size != meta.size {
        return Err(Status::ACCESS_DENIED);
    }
    let time_at = |off: usize| bytes.get(off..off + 16).and_then(get_time);
    let name = char16_from_bytes(name_bytes);
    let name = name.trim_start_matches(['\\', '/']);
    let change = FileInfoChange {
        name: (name != current.name).then(|| name.into()),
        size: (file_size != meta.size).then_some(file_size),
        created: time_change(
            time_at(offset_of!(FileInfo, create_time)),
            meta.created,
            false,
        ),
        modified: time_change(
            time_at(offset_of!(FileInfo, modification_time)),
            meta.modified,
            false,
        ),
        accessed: time_change(
            time_at(offset_of!(FileInfo, last_access_time)),
            meta.accessed,
            true,
        ),
        attributes: (wanted & CHANGEABLE != meta.attributes & CHANGEABLE)
            .then_some(wanted & CHANGEABLE),
    };
    if change.is_empty() {
        return Ok(change);
    }
    if current.is_root || (!writable && !change.only_attributes()) {
        return Err(Status::ACCESS_DENIED);
    }
    if change
        .name
        .as_deref()
        .is_some_and(|n| n.contains(['\\', '/']))
    {
        // Moving between directories is not supported.
        return Err(Status::ACCESS_DENIED);
    }
    Ok(change)
}

/// Applies a planned change to the handle's node. The steps that can fail
/// for want of space or a name conflict come first and are undone if a
/// later one fails, so an error leaves the file as it was: rename, then
/// size, then timestamps, then attributes (a read-only bit is lifted while
/// the size changes and set again last).
pub(super) fn apply_file_info(handle: &mut FileHandle, change: FileInfoChange) -> Status {
    let FileHandle { volume, node, .. } = handle;
    let old_name: String = node.name().into();
    if let Some(name) = &change.name
        && let Err(e) = volume.rename(node, name)
    {
        return status_of(&e);
    }
    let undo_rename = |volume: &Volume, node: &mut crate::fat::Node| {
        if change.name.is_some() {
            let _ = volume.rename(node, &old_name);
        }
    };
    let final_attributes = change.attributes.unwrap_or(node.attributes());
    if let Some(size) = change.size {
        let current = node.attributes();
        let result = if current.contains(Attributes::READ_ONLY) {
            volume
                .set_attributes(node, current & !Attributes::READ_ONLY)
                .and_then(|()| volume.set_len(node, size))
        } else {
            volume.set_len(node, size)
        };
        if let Err(e) = result {
            let _ = volume.set_attributes(node, current);
            undo_rename(volume, node);
            return status_of(&e);
        }
    }
    let result = volume
        .set_times(node, change.created, change.modified, change.accessed)
        .and_then(|()| {
            if final_attributes != node.attributes() {
                volume.set_attributes(node, final_attributes)
            } else {
                Ok(())
            }
        });
    match result {
        Ok(()) => Status::SUCCESS,
        Err(e) => status_of(&e),
    }
}
