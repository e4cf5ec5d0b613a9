//! EFI_FILE_PROTOCOL (UEFI 2.10 §13.5): the file handle instances and the
//! protocol functions on them.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use core::ffi::c_void;
use core::mem::offset_of;

use uefi_raw::protocol::file_system::{
    FileAttribute, FileInfo, FileMode, FileProtocolRevision, FileProtocolV1, FileProtocolV2,
    FileSystemInfo, FileSystemVolumeLabel,
};
use uefi_raw::{Guid, Status};

use super::file_ex::{file_flush_ex, file_open_ex, file_read_ex, file_write_ex};
use super::info::{
    Current, InfoFields, apply_file_info, char16_from_bytes, file_info, plan_file_info, system_info,
};
use super::{
    DIRECTORY, FILE_SIGNATURE, MODE_CREATE, MODE_READ, MODE_WRITE, VALID_ATTR, Volume, instance,
    status_of,
};
use crate::fat::{Attributes, DirCursor, FatError, Node};
use crate::ucs2::nul_terminated_bytes;

/// Longest path accepted from a caller, in CHAR16 units.
const MAX_PATH: usize = 4096;

#[repr(C)]
pub(super) struct FileHandle {
    pub(super) protocol: FileProtocolV2,
    pub(super) signature: u64,
    pub(super) volume: Rc<Volume>,
    pub(super) node: Node,
    /// Byte position of a file.
    pub(super) position: u64,
    /// Read position of a directory.
    pub(super) cursor: DirCursor,
    pub(super) writable: bool,
}

pub(super) fn new_handle(volume: Rc<Volume>, node: Node, writable: bool) -> *mut FileProtocolV1 {
    let handle = Box::new(FileHandle {
        // Revision 2 (§13.5.1): the *Ex members take an EFI_FILE_IO_TOKEN.
        protocol: FileProtocolV2 {
            v1: FileProtocolV1 {
                revision: FileProtocolRevision::REVISION_2,
                open: file_open,
                close: file_close,
                delete: file_delete,
                read: file_read,
                write: file_write,
                get_position: file_get_position,
                set_position: file_set_position,
                get_info: file_get_info,
                set_info: file_set_info,
                flush: file_flush,
            },
            open_ex: file_open_ex,
            read_ex: file_read_ex,
            write_ex: file_write_ex,
            flush_ex: file_flush_ex,
        },
        signature: FILE_SIGNATURE,
        volume,
        node,
        position: 0,
        cursor: DirCursor::new(),
        writable,
    });
    Box::into_raw(handle).cast()
}

/// The file handle behind `This`, if it is one of ours.
///
/// # Safety
/// `this` is as [`instance`] requires: the EFI_FILE_PROTOCOL pointer a
/// caller passes as `This` (§13.5).
unsafe fn file_handle<'a>(this: *mut FileProtocolV1) -> Option<&'a mut FileHandle> {
    // SAFETY: this function's contract.
    let ptr = unsafe { instance::<FileHandle>(this.cast(), FILE_SIGNATURE) }?;
    // SAFETY: `instance` checked null, alignment and our signature, so this is
    // a live FileHandle allocated by `new_handle`; UEFI boot services run on
    // one CPU without re-entry into a handle, so the borrow is unique.
    Some(unsafe { &mut *ptr })
}

/// Reads a NUL-terminated CHAR16 string from the caller (at most MAX_PATH
/// units before the NUL); unpaired surrogates become U+FFFD.
///
/// # Safety
/// `ptr` is null or a NUL-terminated UCS-2 string.
unsafe fn read_char16(ptr: *const u16) -> Option<String> {
    // SAFETY: this function's contract is `ucs2`'s.
    let units = unsafe { efi::boundary::ucs2(ptr, MAX_PATH) }.ok()?;
    Some(
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

/// Copies `data` to the caller's buffer of `*size` bytes, or reports the size
/// needed (UEFI 2.10 §13.5.12 GetInfo, §13.5.5 Read on directories).
///
/// # Safety
/// `size` is non-null and points to the caller's UINTN; `buffer` is null or
/// holds that many writable bytes.
unsafe fn copy_out(data: &[u8], size: *mut usize, buffer: *mut c_void) -> Status {
    // SAFETY: `size` was checked non-null by the caller of copy_out and points
    // at the caller's UINTN.
    let available = unsafe { size.read_unaligned() };
    // SAFETY: as above.
    unsafe { size.write_unaligned(data.len()) };
    if available < data.len() {
        return Status::BUFFER_TOO_SMALL;
    }
    if buffer.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's buffer holds `available >= data.len()` bytes.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), buffer.cast::<u8>(), data.len()) };
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
pub(super) unsafe extern "efiapi" fn file_open(
    this: *mut FileProtocolV1,
    new_handle_out: *mut *mut FileProtocolV1,
    file_name: *const u16,
    open_mode: FileMode,
    attributes: FileAttribute,
) -> Status {
    let (open_mode, attributes) = (open_mode.bits(), attributes.bits());
    // SAFETY: `this` is the caller's `This` (§13.5), as `file_handle` requires.
    let Some(handle) = (unsafe { file_handle(this) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: as this function's # Safety requires.
    let Some(name) = (unsafe { read_char16(file_name) }) else {
        return Status::INVALID_PARAMETER;
    };
    if new_handle_out.is_null() {
        return Status::INVALID_PARAMETER;
    }
    const READ_WRITE: u64 = MODE_READ | MODE_WRITE;
    let write = match open_mode {
        MODE_READ => false,
        READ_WRITE => true,
        m if m == READ_WRITE | MODE_CREATE => true,
        _ => return Status::INVALID_PARAMETER,
    };
    let create = open_mode & MODE_CREATE != 0;
    if create && (attributes & !VALID_ATTR != 0 || !names_a_file(&name)) {
        return Status::INVALID_PARAMETER;
    }
    let volume = &handle.volume;
    if write && volume.is_read_only() {
        return Status::WRITE_PROTECTED;
    }
    let node = match volume.open(&handle.node, &name) {
        Ok(node) => {
            if write && node.attributes().contains(Attributes::READ_ONLY) {
                return Status::ACCESS_DENIED;
            }
            node
        }
        Err(FatError::NotFound(_)) if create => {
            let directory = attributes & DIRECTORY != 0;
            let created = volume
                .create(&handle.node, &name, directory)
                .and_then(|mut node| {
                    let wanted =
                        Attributes::from_bits_truncate(attributes as u8) | Attributes::ARCHIVE;
                    let extra =
                        wanted & (Attributes::HIDDEN | Attributes::SYSTEM | Attributes::READ_ONLY);
                    if !extra.is_empty() {
                        volume.set_attributes(&mut node, wanted)?;
                    }
                    Ok(node)
                });
            match created {
                Ok(node) => node,
                Err(e) => return status_of(&e),
            }
        }
        Err(e) => return status_of(&e),
    };
    let opened = new_handle(volume.clone(), node, write);
    // SAFETY: checked non-null above; points at the caller's EFI_FILE_PROTOCOL*.
    unsafe { new_handle_out.write_unaligned(opened) };
    Status::SUCCESS
}

/// Whether a path given to Open with EFI_FILE_MODE_CREATE ends in a name a
/// file can get: not empty (the name "" or a trailing `\` names the
/// directory itself), and without `/`, which is no path separator in UEFI
/// (§13.5.2 lists `\`, `.` and `..` as the only modifiers) and not allowed
/// in a FAT long name. The SCT's Open conformance checkpoint 4 creates such
/// names and requires a failure; Open without CREATE keeps accepting `/`.
fn names_a_file(path: &str) -> bool {
    let last = path.rsplit('\\').next().unwrap_or("");
    !last.is_empty() && !path.contains('/')
}

/// EFI_DEVICE_ERROR when the handle's file was deleted (or renamed) through
/// another handle since this one was opened: "an attempt was made to read
/// from / write to a deleted file" (UEFI 2.10 §13.5.5, §13.5.6). Working on
/// through the stale entry would resurrect it or change another file's.
fn check_not_deleted(handle: &FileHandle) -> Result<(), Status> {
    match handle.volume.is_deleted(&handle.node) {
        Ok(false) => Ok(()),
        Ok(true) => Err(Status::DEVICE_ERROR),
        Err(e) => Err(status_of(&e)),
    }
}

/// Takes back ownership of a handle for Close and Delete.
///
/// # Safety
/// As for [`file_handle`].
unsafe fn take_handle(this: *mut FileProtocolV1) -> Option<Box<FileHandle>> {
    // SAFETY: this function's contract.
    let ptr = unsafe { instance::<FileHandle>(this.cast(), FILE_SIGNATURE) }?;
    // SAFETY: a live FileHandle from `new_handle` (Box::into_raw); clearing
    // the signature first makes a second Close of the same pointer fail the
    // check instead of freeing twice (while the allocator has not reused it).
    unsafe {
        (*ptr).signature = 0;
        Some(Box::from_raw(ptr))
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_close(this: *mut FileProtocolV1) -> Status {
    // SAFETY: `this` is the caller's `This` (§13.5), as `take_handle` requires.
    match unsafe { take_handle(this) } {
        Some(_) => Status::SUCCESS,
        None => Status::INVALID_PARAMETER,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_delete(this: *mut FileProtocolV1) -> Status {
    // SAFETY: `this` is the caller's `This` (§13.5), as `take_handle` requires.
    let Some(handle) = (unsafe { take_handle(this) }) else {
        return Status::INVALID_PARAMETER;
    };
    // UEFI 2.10 §13.5.4: the handle is closed either way; failure is a warning.
    if !handle.writable || check_not_deleted(&handle).is_err() {
        return Status::WARN_DELETE_FAILURE;
    }
    let FileHandle { volume, node, .. } = *handle;
    match volume.delete(node) {
        Ok(()) => Status::SUCCESS,
        Err(_) => Status::WARN_DELETE_FAILURE,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
pub(super) unsafe extern "efiapi" fn file_read(
    this: *mut FileProtocolV1,
    size: *mut usize,
    buffer: *mut c_void,
) -> Status {
    // SAFETY: `this` is the caller's `This` (§13.5), as `file_handle` requires.
    let Some(handle) = (unsafe { file_handle(this) }) else {
        return Status::INVALID_PARAMETER;
    };
    if size.is_null() {
        return Status::INVALID_PARAMETER;
    }
    if let Err(status) = check_not_deleted(handle) {
        return status;
    }
    if handle.node.is_dir() {
        // Each read returns one EFI_FILE_INFO; 0 bytes at the end (§13.5.5).
        let mut cursor = handle.cursor.clone();
        let entry = match handle.volume.read_dir(&handle.node, &mut cursor) {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                // SAFETY: checked non-null above.
                unsafe { size.write_unaligned(0) };
                return Status::SUCCESS;
            }
            Err(e) => return status_of(&e),
        };
        let cluster = u64::from(handle.volume.cluster_size());
        let info = file_info(&InfoFields {
            name: &entry.name,
            size: u64::from(entry.size),
            physical: u64::from(entry.size).div_ceil(cluster) * cluster,
            attributes: entry.attributes,
            created: entry.created,
            accessed: entry.accessed,
            modified: entry.modified,
        });
        // SAFETY: `size` checked non-null; the buffer as this function's
        // # Safety requires.
        let status = unsafe { copy_out(&info, size, buffer) };
        if status == Status::SUCCESS {
            handle.cursor = cursor;
        }
        return status;
    }
    if handle.position > handle.node.size() {
        return Status::DEVICE_ERROR;
    }
    // SAFETY: checked non-null above.
    let len = unsafe { size.read_unaligned() };
    if len == 0 {
        return Status::SUCCESS;
    }
    // The caller provides a writable buffer of `len` bytes (§13.5.5).
    // SAFETY: as this function's # Safety requires.
    let Ok(buf) = (unsafe { efi::boundary::bytes_mut(buffer.cast::<u8>(), len) }) else {
        return Status::INVALID_PARAMETER;
    };
    match handle.volume.read(&handle.node, handle.position, buf) {
        Ok(n) => {
            handle.position += n as u64;
            // SAFETY: checked non-null above.
            unsafe { size.write_unaligned(n) };
            Status::SUCCESS
        }
        Err(e) => status_of(&e),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
pub(super) unsafe extern "efiapi" fn file_write(
    this: *mut FileProtocolV1,
    size: *mut usize,
    buffer: *const c_void,
) -> Status {
    // SAFETY: `this` is the caller's `This` (§13.5), as `file_handle` requires.
    let Some(handle) = (unsafe { file_handle(this) }) else {
        return Status::INVALID_PARAMETER;
    };
    if size.is_null() {
        return Status::INVALID_PARAMETER;
    }
    if handle.node.is_dir() {
        return Status::UNSUPPORTED;
    }
    if handle.volume.is_read_only() {
        return Status::WRITE_PROTECTED;
    }
    if !handle.writable {
        return Status::ACCESS_DENIED;
    }
    // A handle opened for writing whose file has since been made read-only
    // (SetInfo): "the file is write-protected" (§13.5.6).
    if handle.node.attributes().contains(Attributes::READ_ONLY) {
        return Status::WRITE_PROTECTED;
    }
    if let Err(status) = check_not_deleted(handle) {
        return status;
    }
    // SAFETY: checked non-null above.
    let len = unsafe { size.read_unaligned() };
    if len == 0 {
        return Status::SUCCESS;
    }
    // The caller provides a readable buffer of `len` bytes (§13.5.6).
    // SAFETY: as this function's # Safety requires.
    let Ok(data) = (unsafe { efi::boundary::bytes(buffer.cast::<u8>(), len) }) else {
        return Status::INVALID_PARAMETER;
    };
    let FileHandle {
        volume,
        node,
        position,
        ..
    } = handle;
    match volume.write(node, *position, data) {
        Ok(n) => {
            *position += n as u64;
            // SAFETY: checked non-null above.
            unsafe { size.write_unaligned(n) };
            Status::SUCCESS
        }
        Err(e) => {
            // SAFETY: checked non-null above; nothing was written.
            unsafe { size.write_unaligned(0) };
            status_of(&e)
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_get_position(
    this: *const FileProtocolV1,
    position: *mut u64,
) -> Status {
    let this = this.cast_mut();
    // SAFETY: `this` is the caller's `This` (§13.5), as `file_handle` requires.
    let Some(handle) = (unsafe { file_handle(this) }) else {
        return Status::INVALID_PARAMETER;
    };
    if position.is_null() {
        return Status::INVALID_PARAMETER;
    }
    if handle.node.is_dir() {
        return Status::UNSUPPORTED;
    }
    // SAFETY: checked non-null above.
    unsafe { position.write_unaligned(handle.position) };
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_set_position(this: *mut FileProtocolV1, position: u64) -> Status {
    // SAFETY: `this` is the caller's `This` (§13.5), as `file_handle` requires.
    let Some(handle) = (unsafe { file_handle(this) }) else {
        return Status::INVALID_PARAMETER;
    };
    if handle.node.is_dir() {
        // Only a rewind is defined for directories (§13.5.8).
        if position != 0 {
            return Status::UNSUPPORTED;
        }
        handle.cursor = DirCursor::new();
        return Status::SUCCESS;
    }
    handle.position = if position == u64::MAX {
        handle.node.size()
    } else {
        position
    };
    Status::SUCCESS
}

/// The caller's information type GUID; None when null.
///
/// # Safety
/// `ptr` is null or points to an EFI_GUID.
unsafe fn read_guid(ptr: *const Guid) -> Option<Guid> {
    // SAFETY: this function's contract.
    unsafe { efi::boundary::guid(ptr) }.ok()
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_get_info(
    this: *mut FileProtocolV1,
    information_type: *const Guid,
    size: *mut usize,
    buffer: *mut c_void,
) -> Status {
    // SAFETY: `this` is the caller's `This` (§13.5), as `file_handle` requires.
    let Some(handle) = (unsafe { file_handle(this) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: as this function's # Safety requires.
    let Some(kind) = (unsafe { read_guid(information_type) }) else {
        return Status::INVALID_PARAMETER;
    };
    if size.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let volume = &handle.volume;
    let data = if kind == FileInfo::ID {
        if let Err(status) = check_not_deleted(handle) {
            return status;
        }
        volume.metadata(&handle.node).map(|meta| {
            file_info(&InfoFields {
                name: handle.node.name(),
                size: meta.size,
                physical: meta.allocated,
                attributes: meta.attributes,
                created: meta.created,
                accessed: meta.accessed,
                modified: meta.modified,
            })
        })
    } else if kind == FileSystemInfo::ID {
        system_info(volume)
    } else if kind == FileSystemVolumeLabel::ID {
        volume
            .volume_label()
            .map(|label| nul_terminated_bytes(&label))
    } else {
        return Status::UNSUPPORTED;
    };
    match data {
        // SAFETY: `size` checked non-null; the buffer as this function's
        // # Safety requires.
        Ok(data) => unsafe { copy_out(&data, size, buffer) },
        Err(e) => status_of(&e),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_set_info(
    this: *mut FileProtocolV1,
    information_type: *const Guid,
    size: usize,
    buffer: *const c_void,
) -> Status {
    // SAFETY: `this` is the caller's `This` (§13.5), as `file_handle` requires.
    let Some(handle) = (unsafe { file_handle(this) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: as this function's # Safety requires.
    let Some(kind) = (unsafe { read_guid(information_type) }) else {
        return Status::INVALID_PARAMETER;
    };
    if buffer.is_null() {
        return Status::INVALID_PARAMETER;
    }
    if kind == FileInfo::ID {
        // SAFETY: `buffer` is non-null and, as this function's # Safety
        // requires, holds `size` readable bytes.
        let bytes = match unsafe { sized_record(buffer, size, offset_of!(FileInfo, file_name)) } {
            Ok(bytes) => bytes,
            Err(status) => return status,
        };
        if let Err(status) = check_not_deleted(handle) {
            return status;
        }
        let current = match handle.volume.metadata(&handle.node) {
            Ok(meta) => Current {
                name: handle.node.name(),
                is_root: handle.node.is_root(),
                meta,
            },
            Err(e) => return status_of(&e),
        };
        let change = match plan_file_info(bytes, &current, handle.writable) {
            Ok(change) => change,
            Err(status) => return status,
        };
        if change.is_empty() {
            // Nothing to write: succeeds on any handle and medium.
            return Status::SUCCESS;
        }
        if handle.volume.is_read_only() {
            return Status::WRITE_PROTECTED;
        }
        return apply_file_info(handle, change);
    }
    let label = if kind == FileSystemInfo::ID {
        // A write-protected medium refuses these types whatever the buffer
        // holds (§13.5.13 EFI_WRITE_PROTECTED): the SCT's read-only-media
        // check passes a label without its NUL and expects this status.
        if handle.volume.is_read_only() {
            return Status::WRITE_PROTECTED;
        }
        let label_at = offset_of!(FileSystemInfo, volume_label);
        // SAFETY: as above.
        match unsafe { sized_record(buffer, size, label_at) } {
            Ok(bytes) => terminated_char16(&bytes[label_at..]),
            Err(status) => return status,
        }
    } else if kind == FileSystemVolumeLabel::ID {
        if handle.volume.is_read_only() {
            return Status::WRITE_PROTECTED;
        }
        // The caller provides `size` readable bytes at `buffer` (§13.5.13).
        // SAFETY: as this function's # Safety requires.
        match unsafe { efi::boundary::bytes(buffer.cast::<u8>(), size) } {
            Ok(bytes) => terminated_char16(bytes),
            Err(_) => return Status::INVALID_PARAMETER,
        }
    } else {
        return Status::UNSUPPORTED;
    };
    // A label whose terminating NUL lies beyond BufferSize: the buffer is
    // smaller than the record (EFI_BAD_BUFFER_SIZE), and nothing changes.
    let Some(label) = label else {
        return Status::BAD_BUFFER_SIZE;
    };
    match handle.volume.set_volume_label(&label) {
        Ok(()) => Status::SUCCESS,
        Err(e) => status_of(&e),
    }
}

/// The bytes of a record that starts with its own UINT64 Size
/// (EFI_FILE_INFO, EFI_FILE_SYSTEM_INFO): `min_len` fixed bytes plus a
/// CHAR16 at least. Only the record's own Size is read, never more than the
/// caller's BufferSize; a BufferSize or Size too small for the record, or a
/// Size beyond the BufferSize, is EFI_BAD_BUFFER_SIZE (§13.5.13).
///
/// # Safety
/// `buffer` is non-null and holds `size` readable bytes.
unsafe fn sized_record<'a>(
    buffer: *const c_void,
    size: usize,
    min_len: usize,
) -> Result<&'a [u8], Status> {
    let min_len = min_len + 2;
    if size < min_len {
        return Err(Status::BAD_BUFFER_SIZE);
    }
    // SAFETY: `size >= min_len > 8` readable bytes by this function's contract.
    let header = unsafe { efi::boundary::bytes(buffer.cast::<u8>(), 8) }
        .map_err(|_| Status::INVALID_PARAMETER)?;
    let declared = platform::le::u64_at(header, 0).unwrap_or(0);
    let len = match usize::try_from(declared) {
        Ok(len) if (min_len..=size).contains(&len) => len,
        _ => return Err(Status::BAD_BUFFER_SIZE),
    };
    // SAFETY: `len <= size` readable bytes by this function's contract.
    unsafe { efi::boundary::bytes(buffer.cast::<u8>(), len) }.map_err(|_| Status::INVALID_PARAMETER)
}

/// A CHAR16 string that ends with a NUL inside `bytes`; None when it does
/// not (the record is cut short).
fn terminated_char16(bytes: &[u8]) -> Option<String> {
    platform::le::u16_units(bytes)
        .any(|u| u == 0)
        .then(|| char16_from_bytes(bytes))
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
pub(super) unsafe extern "efiapi" fn file_flush(this: *mut FileProtocolV1) -> Status {
    // SAFETY: `this` is the caller's `This` (§13.5), as `file_handle` requires.
    let Some(handle) = (unsafe { file_handle(this) }) else {
        return Status::INVALID_PARAMETER;
    };
    // §13.5.11: a handle opened read-only is EFI_ACCESS_DENIED; a medium or
    // a file (its read-only attribute) that is write-protected is
    // EFI_WRITE_PROTECTED.
    if !handle.writable {
        return Status::ACCESS_DENIED;
    }
    if handle.volume.is_read_only() || handle.node.attributes().contains(Attributes::READ_ONLY) {
        return Status::WRITE_PROTECTED;
    }
    match handle.volume.flush() {
        Ok(()) => Status::SUCCESS,
        Err(e) => status_of(&e),
    }
}
