//! EFI_SIMPLE_FILE_SYSTEM_PROTOCOL and EFI_FILE_PROTOCOL (UEFI 2.10 §13.4,
//! §13.5) over the FAT driver in `crate::fat`.
//!
//! Each protocol instance is a `#[repr(C)]` struct with the protocol table
//! first, a signature, then private state; it is allocated with `Box` and the
//! table pointer handed out is the struct pointer. File handles share the
//! mounted volume through an `Rc`. Every pointer from the caller is checked
//! for null (and the instance pointers for alignment and signature) before use.
//!
//! Limitation: each handle keeps its own view of the file size; a second
//! handle to a file that another handle grows sees the new size only when
//! reopened.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::mem::offset_of;

use platform::block::{BlockDevice, BlockError};
use uefi_raw::protocol::file_system::{
    FileAttribute, FileInfo, FileIoToken, FileMode, FileProtocolRevision, FileProtocolV1,
    FileProtocolV2, FileSystemInfo, FileSystemVolumeLabel, SimpleFileSystemProtocol,
};
use uefi_raw::time::{Daylight, Time};
use uefi_raw::{Guid, Status};

/// EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_REVISION (§13.4).
const SIMPLE_FILE_SYSTEM_REVISION: u64 = 0x0001_0000;
// EFI_FILE_MODE_* and EFI_FILE_* attribute bits (§13.5.2) as the integers
// the checks below compare; callers may pass bits no flag names.
const MODE_READ: u64 = FileMode::READ.bits();
const MODE_WRITE: u64 = FileMode::WRITE.bits();
const MODE_CREATE: u64 = FileMode::CREATE.bits();
const VALID_ATTR: u64 = FileAttribute::VALID_ATTR.bits();
const DIRECTORY: u64 = FileAttribute::DIRECTORY.bits();

use crate::fat::{Attributes, DateTime, DirCursor, FatError, FileSystem, Node};

type Volume = FileSystem<Box<dyn BlockDevice>>;

const VOLUME_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwFATV");
const FILE_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwFATF");
/// Longest path accepted from a caller, in CHAR16 units.
const MAX_PATH: usize = 4096;

#[repr(C)]
struct SimpleFileSystem {
    protocol: SimpleFileSystemProtocol,
    signature: u64,
    volume: Rc<Volume>,
}

#[repr(C)]
struct FileHandle {
    protocol: FileProtocolV2,
    signature: u64,
    volume: Rc<Volume>,
    node: Node,
    /// Byte position of a file.
    position: u64,
    /// Read position of a directory.
    cursor: DirCursor,
    writable: bool,
}

/// The one place FAT errors become EFI status codes. Damage found on the
/// volume is also logged: the status alone would not say what is wrong.
pub fn status_of(error: &FatError) -> Status {
    let status = status_for(error);
    if status == Status::VOLUME_CORRUPTED {
        log::warn!("FAT: {error}");
    }
    status
}

fn status_for(error: &FatError) -> Status {
    match error {
        FatError::Device(BlockError::ReadOnly) | FatError::ReadOnly => Status::WRITE_PROTECTED,
        FatError::Device(_) => Status::DEVICE_ERROR,
        FatError::UnsupportedBlockSize { .. } => Status::UNSUPPORTED,
        FatError::BadBpb { .. }
        | FatError::ClusterOutOfRange(_)
        | FatError::FreeClusterInChain(_)
        | FatError::BadClusterInChain(_)
        | FatError::ChainLoop(_)
        | FatError::ChainTooLong { .. }
        | FatError::ChainTooShort { .. }
        | FatError::DirectoryTooLarge(_)
        | FatError::DirectoryLoop(_) => Status::VOLUME_CORRUPTED,
        FatError::DirectoryFull | FatError::NoSpace | FatError::FileTooLarge(_) => {
            Status::VOLUME_FULL
        }
        FatError::NotFound(_) | FatError::NotADirectory => Status::NOT_FOUND,
        FatError::IsADirectory => Status::UNSUPPORTED,
        FatError::AlreadyExists(_) | FatError::DirectoryNotEmpty | FatError::AccessDenied(_) => {
            Status::ACCESS_DENIED
        }
        FatError::InvalidName(_) | FatError::NameTooLong(_) => Status::INVALID_PARAMETER,
    }
}

/// Mounts the FAT volume on `dev` and returns its
/// EFI_SIMPLE_FILE_SYSTEM_PROTOCOL instance, to be installed on the device's
/// handle. `clock` supplies timestamps for writes (local time, as FAT keeps).
pub fn new_simple_file_system(
    dev: Box<dyn BlockDevice>,
    clock: fn() -> DateTime,
) -> Result<*mut SimpleFileSystemProtocol, FatError> {
    Ok(simple_file_system_for(FileSystem::mount(dev)?, clock))
}

/// The EFI_SIMPLE_FILE_SYSTEM_PROTOCOL instance of an already mounted
/// volume (the FAT driver mounts once, in its Supported probe).
pub fn simple_file_system_for(
    volume: FileSystem<Box<dyn BlockDevice>>,
    clock: fn() -> DateTime,
) -> *mut SimpleFileSystemProtocol {
    volume.set_clock(clock);
    let instance = Box::new(SimpleFileSystem {
        protocol: SimpleFileSystemProtocol {
            revision: SIMPLE_FILE_SYSTEM_REVISION,
            open_volume,
        },
        signature: VOLUME_SIGNATURE,
        volume: Rc::new(volume),
    });
    // The protocol is the first field of a #[repr(C)] struct, so the struct
    // pointer is the protocol pointer.
    Box::into_raw(instance).cast()
}

/// Why a volume cannot be retired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetireError {
    /// Not an instance made by this module (or already retired).
    NotOurs,
    /// This many file handles are still open on the volume.
    FilesOpen(usize),
    /// Writing the cached FAT sectors back failed.
    Flush(FatError),
}

impl core::fmt::Display for RetireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RetireError::NotOurs => write!(f, "not a firmware FAT volume"),
            RetireError::FilesOpen(count) => write!(f, "{count} file(s) still open"),
            RetireError::Flush(error) => write!(f, "flush failed: {error}"),
        }
    }
}

/// How many file handles are open on the volume of one of our
/// SimpleFileSystem instances (None: not ours, or retired).
pub fn open_file_count(protocol: *mut SimpleFileSystemProtocol) -> Option<usize> {
    let fs = instance::<SimpleFileSystem>(protocol.cast(), VOLUME_SIGNATURE)?;
    // SAFETY: `instance` checked null, alignment and signature: a live
    // SimpleFileSystem made by `simple_file_system_for`.
    let volume = unsafe { &(*fs).volume };
    // The instance holds one reference; every open file handle holds another.
    Some(Rc::strong_count(volume) - 1)
}

/// Takes a volume out of service once its protocol is uninstalled (the FAT
/// driver's Stop, UEFI 2.10 §11.1.3): refused while file handles are open
/// (each holds the volume), otherwise the cached FAT sectors are flushed and
/// the instance's signature cleared, so later calls through a stale pointer
/// get EFI_INVALID_PARAMETER. The instance itself is never freed: a caller
/// that looked the protocol up earlier may still hold the pointer.
pub fn retire_simple_file_system(
    protocol: *mut SimpleFileSystemProtocol,
) -> Result<(), RetireError> {
    let fs = instance::<SimpleFileSystem>(protocol.cast(), VOLUME_SIGNATURE)
        .ok_or(RetireError::NotOurs)?;
    // SAFETY: `instance` checked null, alignment and signature: this is a
    // SimpleFileSystem made by `simple_file_system_for`, never freed, and
    // boot services do not run concurrently.
    let fs = unsafe { &mut *fs };
    // The instance holds one reference; every open file handle holds another.
    let open_files = Rc::strong_count(&fs.volume) - 1;
    if open_files > 0 {
        return Err(RetireError::FilesOpen(open_files));
    }
    fs.volume.flush().map_err(RetireError::Flush)?;
    fs.signature = 0;
    Ok(())
}

fn new_handle(volume: Rc<Volume>, node: Node, writable: bool) -> *mut FileProtocolV1 {
    let handle = Box::new(FileHandle {
        // Revision 1 (§13.5.1): the *Ex members are present but unsupported.
        protocol: FileProtocolV2 {
            v1: FileProtocolV1 {
                revision: FileProtocolRevision::REVISION_1,
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
            read_ex: file_io_ex,
            write_ex: file_io_ex,
            flush_ex: file_io_ex,
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

/// The instance behind a protocol pointer, if it is one of ours.
fn instance<T>(this: *mut c_void, signature: u64) -> Option<*mut T> {
    let ptr = this.cast::<T>();
    if ptr.is_null() || !ptr.is_aligned() {
        return None;
    }
    // The signature sits right after the protocol table in both structs.
    let offset = if signature == FILE_SIGNATURE {
        offset_of!(FileHandle, signature)
    } else {
        offset_of!(SimpleFileSystem, signature)
    };
    // SAFETY: the caller passed this pointer as a protocol instance we handed
    // out; it is non-null and aligned, and every instance of ours is at least
    // `offset + 8` bytes long. A foreign pointer is still required by the
    // UEFI calling contract to point at a readable protocol table.
    let found = unsafe { this.cast::<u8>().add(offset).cast::<u64>().read() };
    (found == signature).then_some(ptr)
}

fn file_handle<'a>(this: *mut FileProtocolV1) -> Option<&'a mut FileHandle> {
    let ptr = instance::<FileHandle>(this.cast(), FILE_SIGNATURE)?;
    // SAFETY: `instance` checked null, alignment and our signature, so this is
    // a live FileHandle allocated by `new_handle`; UEFI boot services run on
    // one CPU without re-entry into a handle, so the borrow is unique.
    Some(unsafe { &mut *ptr })
}

/// Reads a NUL-terminated CHAR16 string from the caller.
///
/// # Safety
/// `ptr` is null or a NUL-terminated UCS-2 string.
unsafe fn read_char16(ptr: *const u16) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    let mut units = Vec::new();
    for i in 0..MAX_PATH {
        // SAFETY: the caller passes a NUL-terminated string; we stop at the
        // NUL and never read more than MAX_PATH units.
        let unit = unsafe { ptr.add(i).read_unaligned() };
        if unit == 0 {
            return Some(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            );
        }
        units.push(unit);
    }
    None
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

fn char16_bytes(text: &str) -> Vec<u8> {
    text.encode_utf16()
        .chain(core::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

struct InfoFields<'a> {
    name: &'a str,
    size: u64,
    physical: u64,
    attributes: Attributes,
    created: DateTime,
    accessed: DateTime,
    modified: DateTime,
}

/// Serialises an EFI_FILE_INFO (UEFI 2.10 §13.5.16).
fn file_info(fields: &InfoFields) -> Vec<u8> {
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
fn system_info(volume: &Volume) -> Result<Vec<u8>, FatError> {
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
fn char16_from_bytes(bytes: &[u8]) -> String {
    let units = platform::le::u16_units(bytes).take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.4 requires of the caller.
unsafe extern "efiapi" fn open_volume(
    this: *mut SimpleFileSystemProtocol,
    root: *mut *mut FileProtocolV1,
) -> Status {
    let Some(fs) = instance::<SimpleFileSystem>(this.cast(), VOLUME_SIGNATURE) else {
        return Status::INVALID_PARAMETER;
    };
    if root.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: `instance` checked null, alignment and signature: this is a
    // SimpleFileSystem made by `simple_file_system_for`, never freed.
    let volume = unsafe { &(*fs).volume };
    let handle = new_handle(volume.clone(), volume.root(), !volume.is_read_only());
    // SAFETY: `root` is non-null and points at the caller's EFI_FILE_PROTOCOL*.
    unsafe { root.write_unaligned(handle) };
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_open(
    this: *mut FileProtocolV1,
    new_handle_out: *mut *mut FileProtocolV1,
    file_name: *const u16,
    open_mode: FileMode,
    attributes: FileAttribute,
) -> Status {
    let (open_mode, attributes) = (open_mode.bits(), attributes.bits());
    let Some(handle) = file_handle(this) else {
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
    if create && attributes & !VALID_ATTR != 0 {
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

/// Takes back ownership of a handle for Close and Delete.
fn take_handle(this: *mut FileProtocolV1) -> Option<Box<FileHandle>> {
    let ptr = instance::<FileHandle>(this.cast(), FILE_SIGNATURE)?;
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
    match take_handle(this) {
        Some(_) => Status::SUCCESS,
        None => Status::INVALID_PARAMETER,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_delete(this: *mut FileProtocolV1) -> Status {
    let Some(handle) = take_handle(this) else {
        return Status::INVALID_PARAMETER;
    };
    // UEFI 2.10 §13.5.4: the handle is closed either way; failure is a warning.
    if !handle.writable {
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
unsafe extern "efiapi" fn file_read(
    this: *mut FileProtocolV1,
    size: *mut usize,
    buffer: *mut c_void,
) -> Status {
    let Some(handle) = file_handle(this) else {
        return Status::INVALID_PARAMETER;
    };
    if size.is_null() {
        return Status::INVALID_PARAMETER;
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
unsafe extern "efiapi" fn file_write(
    this: *mut FileProtocolV1,
    size: *mut usize,
    buffer: *const c_void,
) -> Status {
    let Some(handle) = file_handle(this) else {
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
    let Some(handle) = file_handle(this) else {
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
    let Some(handle) = file_handle(this) else {
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
    let Some(handle) = file_handle(this) else {
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
        volume.volume_label().map(|label| char16_bytes(&label))
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
    let Some(handle) = file_handle(this) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: as this function's # Safety requires.
    let Some(kind) = (unsafe { read_guid(information_type) }) else {
        return Status::INVALID_PARAMETER;
    };
    // The caller provides `size` readable bytes at `buffer` (§13.5.13); a
    // null buffer is invalid even for size 0.
    // SAFETY: as this function's # Safety requires.
    let bytes = match unsafe { efi::boundary::bytes(buffer.cast::<u8>(), size) } {
        Ok(bytes) if !buffer.is_null() => bytes,
        _ => return Status::INVALID_PARAMETER,
    };
    if handle.volume.is_read_only() {
        return Status::WRITE_PROTECTED;
    }
    let result = if kind == FileInfo::ID {
        return set_file_info(handle, bytes);
    } else if kind == FileSystemInfo::ID {
        let label_at = offset_of!(FileSystemInfo, volume_label);
        if bytes.len() < label_at + 2 {
            return Status::BAD_BUFFER_SIZE;
        }
        handle
            .volume
            .set_volume_label(&char16_from_bytes(&bytes[label_at..]))
    } else if kind == FileSystemVolumeLabel::ID {
        handle.volume.set_volume_label(&char16_from_bytes(bytes))
    } else {
        return Status::UNSUPPORTED;
    };
    match result {
        Ok(()) => Status::SUCCESS,
        Err(e) => status_of(&e),
    }
}

/// Applies an EFI_FILE_INFO: name (rename within the directory), size,
/// timestamps (zero means unchanged) and attributes (§13.5.13).
fn set_file_info(handle: &mut FileHandle, bytes: &[u8]) -> Status {
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

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_flush(this: *mut FileProtocolV1) -> Status {
    let Some(handle) = file_handle(this) else {
        return Status::INVALID_PARAMETER;
    };
    if !handle.writable {
        return Status::ACCESS_DENIED;
    }
    match handle.volume.flush() {
        Ok(()) => Status::SUCCESS,
        Err(e) => status_of(&e),
    }
}

/// The asynchronous *Ex calls are revision 2 only; this is revision 1.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_open_ex(
    _this: *mut FileProtocolV2,
    _new_handle: *mut *mut FileProtocolV2,
    _file_name: *const u16,
    _open_mode: FileMode,
    _attributes: FileAttribute,
    _token: *mut FileIoToken,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5 requires of the caller.
unsafe extern "efiapi" fn file_io_ex(
    _this: *mut FileProtocolV2,
    _token: *mut FileIoToken,
) -> Status {
    Status::UNSUPPORTED
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use core::ptr::null_mut;
    use std::process::Command;
    use std::vec;

    /// A RAM disk the test can still look at after handing it to the volume.
    struct SharedDisk(Rc<RefCell<Vec<u8>>>);

    impl BlockDevice for SharedDisk {
        fn block_size(&self) -> u32 {
            512
        }
        fn num_blocks(&self) -> u64 {
            (self.0.borrow().len() / 512) as u64
        }
        fn read_only(&self) -> bool {
            false
        }
        fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
            self.check_request(lba, buf.len())?;
            let start = lba as usize * 512;
            buf.copy_from_slice(&self.0.borrow()[start..start + buf.len()]);
            Ok(())
        }
        fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
            self.check_request(lba, buf.len())?;
            let start = lba as usize * 512;
            self.0.borrow_mut()[start..start + buf.len()].copy_from_slice(buf);
            Ok(())
        }
        fn flush(&self) -> Result<(), BlockError> {
            Ok(())
        }
    }

    fn ucs2(s: &str) -> Vec<u16> {
        s.encode_utf16().chain(core::iter::once(0)).collect()
    }

    fn clock() -> DateTime {
        DateTime {
            year: 2025,
            month: 6,
            day: 15,
            hour: 10,
            minute: 20,
            second: 30,
        }
    }

    /// Calls through the protocol table the way an EFI application does.
    struct Handle(*mut FileProtocolV1);

    impl Handle {
        fn table(&self) -> &FileProtocolV1 {
            // SAFETY: handles in these tests come from Open/OpenVolume and are
            // used only until Close or Delete.
            unsafe { &*self.0 }
        }
        fn open(&self, path: &str, mode: u64, attributes: u64) -> Result<Handle, Status> {
            let name = ucs2(path);
            let mut out = null_mut();
            let (mode, attributes) = (
                FileMode::from_bits_retain(mode),
                FileAttribute::from_bits_retain(attributes),
            );
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            match unsafe { (self.table().open)(self.0, &mut out, name.as_ptr(), mode, attributes) }
            {
                Status::SUCCESS => Ok(Handle(out)),
                status => Err(status),
            }
        }
        fn write(&self, data: &[u8]) -> Status {
            let mut size = data.len();
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            unsafe { (self.table().write)(self.0, &mut size, data.as_ptr().cast()) }
        }
        fn read(&self, buf: &mut [u8]) -> (Status, usize) {
            let mut size = buf.len();
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            let status = unsafe { (self.table().read)(self.0, &mut size, buf.as_mut_ptr().cast()) };
            (status, size)
        }
        fn info(&self, kind: Guid) -> (Status, Vec<u8>) {
            let mut size = 0usize;
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            let status = unsafe { (self.table().get_info)(self.0, &kind, &mut size, null_mut()) };
            if status != Status::BUFFER_TOO_SMALL {
                return (status, Vec::new());
            }
            let mut buf = vec![0u8; size];
            let status =
                // SAFETY: the handle came from Open or OpenVolume and is still open; the other
                // arguments are live locals.
                unsafe { (self.table().get_info)(self.0, &kind, &mut size, buf.as_mut_ptr().cast()) };
            (status, buf)
        }
        fn close(self) -> Status {
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            unsafe { (self.table().close)(self.0) }
        }
    }

    fn info_name(info: &[u8]) -> String {
        char16_from_bytes(&info[offset_of!(FileInfo, file_name)..])
    }

    fn info_u64(info: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(info[off..off + 8].try_into().expect("8 bytes"))
    }

    #[test]
    fn efi_file_protocol_round_trip() {
        let dir = std::env::temp_dir().join(format!("vmfw-simplefs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let image = dir.join("esp.img");
        let status = Command::new("mkfs.vfat")
            .args(["-C", "-F", "16", "-s", "1", "-n", "ESP"])
            .arg(&image)
            .arg("8192")
            .output()
            .expect("mkfs.vfat (apt-get install -y dosfstools)");
        assert!(status.status.success());
        let bytes = Rc::new(RefCell::new(std::fs::read(&image).expect("image")));

        let fs = new_simple_file_system(Box::new(SharedDisk(bytes.clone())), clock).expect("mount");
        let mut root_ptr = null_mut();
        // SAFETY: `fs` is the live instance returned above.
        let open_volume = unsafe { (*fs).open_volume };
        // SAFETY: a live instance and locals of the sizes passed.
        assert_eq!(unsafe { open_volume(fs, &mut root_ptr) }, Status::SUCCESS);
        assert_eq!(
            // SAFETY: a live instance and locals of the sizes passed.
            unsafe { open_volume(fs, null_mut()) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: a live instance and locals of the sizes passed.
            unsafe { open_volume(null_mut(), &mut root_ptr) },
            Status::INVALID_PARAMETER
        );
        let root = Handle(root_ptr);

        const RW: u64 = MODE_READ | MODE_WRITE;
        const CREATE: u64 = RW | MODE_CREATE;
        assert_eq!(
            root.open("missing.txt", MODE_READ, 0).err(),
            Some(Status::NOT_FOUND)
        );
        assert_eq!(
            root.open("x", MODE_WRITE, 0).err(),
            Some(Status::INVALID_PARAMETER)
        );
        let _ = root
            .open("EFI", CREATE, DIRECTORY)
            .expect("mkdir EFI")
            .close();
        let boot = root
            .open("\\EFI\\Boot", CREATE, DIRECTORY)
            .expect("mkdir Boot");
        let file = boot.open("grub.cfg", CREATE, 0).expect("create");
        assert_eq!(file.write(b"set timeout=5\n"), Status::SUCCESS);
        assert_eq!(
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            unsafe { (file.table().set_position)(file.0, 4) },
            Status::SUCCESS
        );
        let mut buf = [0u8; 64];
        assert_eq!(file.read(&mut buf), (Status::SUCCESS, 10));
        assert_eq!(&buf[..10], b"timeout=5\n");
        let mut position = 0u64;
        assert_eq!(
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            unsafe { (file.table().get_position)(file.0, &mut position) },
            Status::SUCCESS
        );
        assert_eq!(position, 14);
        assert_eq!(
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            unsafe { (file.table().set_position)(file.0, u64::MAX) },
            Status::SUCCESS
        );
        assert_eq!(file.write(b"menuentry\n"), Status::SUCCESS);

        let (status, info) = file.info(FileInfo::ID);
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(info_name(&info), "grub.cfg");
        assert_eq!(info_u64(&info, offset_of!(FileInfo, file_size)), 24);
        assert_eq!(
            info_u64(&info, offset_of!(FileInfo, attribute)),
            FileAttribute::ARCHIVE.bits()
        );
        assert_eq!(u16::from_le_bytes([info[24], info[25]]), 2025);

        // SetInfo: rename and truncate.
        let mut new_info = info[..offset_of!(FileInfo, file_name)].to_vec();
        new_info.extend(ucs2("GRUB.CONF").iter().flat_map(|u| u.to_le_bytes()));
        let len = new_info.len() as u64;
        new_info[..8].copy_from_slice(&len.to_le_bytes());
        new_info[8..16].copy_from_slice(&14u64.to_le_bytes());
        let kind = FileInfo::ID;
        let set_info = file.table().set_info;
        assert_eq!(
            // SAFETY: a live instance and locals of the sizes passed.
            unsafe { set_info(file.0, &kind, new_info.len(), new_info.as_mut_ptr().cast()) },
            Status::SUCCESS
        );
        assert_eq!(
            // SAFETY: a live instance and locals of the sizes passed.
            unsafe { set_info(file.0, &kind, 10, new_info.as_mut_ptr().cast()) },
            Status::BAD_BUFFER_SIZE
        );
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other arguments
        // are live locals.
        assert_eq!(unsafe { (file.table().flush)(file.0) }, Status::SUCCESS);
        assert_eq!(file.close(), Status::SUCCESS);

        // Directory reads: one EFI_FILE_INFO per call, size reported first.
        let mut empty = [0u8; 0];
        let (status, needed) = boot.read(&mut empty);
        assert_eq!(status, Status::BUFFER_TOO_SMALL);
        assert!(needed > offset_of!(FileInfo, file_name));
        let mut names = Vec::new();
        loop {
            let mut entry = [0u8; 512];
            let (status, n) = boot.read(&mut entry);
            assert_eq!(status, Status::SUCCESS);
            if n == 0 {
                break;
            }
            names.push(info_name(&entry[..n]));
        }
        assert_eq!(names, [".", "..", "GRUB.CONF"]);
        assert_eq!(boot.write(b"x"), Status::UNSUPPORTED);

        let reopened = root
            .open("efi\\boot\\grub.conf", MODE_READ, 0)
            .expect("reopen");
        let mut buf = [0u8; 64];
        assert_eq!(reopened.read(&mut buf), (Status::SUCCESS, 14));
        assert_eq!(reopened.write(b"no"), Status::ACCESS_DENIED);
        assert_eq!(
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            unsafe { (reopened.table().delete)(reopened.0) },
            Status::WARN_DELETE_FAILURE
        );

        let (status, sys) = root.info(FileSystemInfo::ID);
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(
            char16_from_bytes(&sys[offset_of!(FileSystemInfo, volume_label)..]),
            "ESP"
        );
        let mut label = ucs2("BOOTVOL");
        let kind = FileSystemVolumeLabel::ID;
        let set_info = root.table().set_info;
        assert_eq!(
            // SAFETY: a live instance and locals of the sizes passed.
            unsafe { set_info(root.0, &kind, label.len() * 2, label.as_mut_ptr().cast()) },
            Status::SUCCESS
        );
        let (_, label) = root.info(FileSystemVolumeLabel::ID);
        assert_eq!(char16_from_bytes(&label), "BOOTVOL");

        let scratch = root
            .open("scratch file.tmp", CREATE, 0)
            .expect("create scratch");
        assert_eq!(
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            unsafe { (scratch.table().delete)(scratch.0) },
            Status::SUCCESS
        );
        assert_eq!(
            root.open("scratch file.tmp", MODE_READ, 0).err(),
            Some(Status::NOT_FOUND)
        );
        assert_eq!(boot.close(), Status::SUCCESS);
        assert_eq!(root.close(), Status::SUCCESS);

        std::fs::write(&image, &*bytes.borrow()).expect("write back");
        let fsck = Command::new("fsck.vfat")
            .arg("-n")
            .arg(&image)
            .output()
            .expect("fsck");
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        let mtype = Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&image)
            .arg("::/EFI/Boot/GRUB.CONF")
            .output()
            .expect("mtype");
        assert_eq!(mtype.stdout, b"set timeout=5\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
