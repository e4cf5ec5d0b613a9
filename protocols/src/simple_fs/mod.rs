//! EFI_SIMPLE_FILE_SYSTEM_PROTOCOL and EFI_FILE_PROTOCOL (UEFI 2.10 §13.4,
//! §13.5) over the FAT driver in `crate::fat`. This module mounts, opens
//! (OpenVolume) and retires volumes; [`file`] holds the EFI_FILE_PROTOCOL
//! functions, [`file_ex`] its revision 2 token-based calls and [`info`] the
//! EFI_FILE_INFO / EFI_FILE_SYSTEM_INFO records.
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
use core::ffi::c_void;
use core::mem::offset_of;

use platform::block::{BlockDevice, BlockError};
use uefi_raw::Status;
use uefi_raw::protocol::file_system::{
    FileAttribute, FileMode, FileProtocolV1, SimpleFileSystemProtocol,
};

use crate::fat::{DateTime, FatError, FileSystem};
use file::{FileHandle, new_handle};

mod file;
mod file_ex;
mod info;
#[cfg(test)]
mod tests;

/// EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_REVISION (§13.4).
const SIMPLE_FILE_SYSTEM_REVISION: u64 = 0x0001_0000;
// EFI_FILE_MODE_* and EFI_FILE_* attribute bits (§13.5.2) as the integers
// the checks in `file` and `info` compare; callers may pass bits no flag
// names.
const MODE_READ: u64 = FileMode::READ.bits();
const MODE_WRITE: u64 = FileMode::WRITE.bits();
const MODE_CREATE: u64 = FileMode::CREATE.bits();
const VALID_ATTR: u64 = FileAttribute::VALID_ATTR.bits();
const DIRECTORY: u64 = FileAttribute::DIRECTORY.bits();

type Volume = FileSystem<Box<dyn BlockDevice>>;

const VOLUME_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwFATV");
const FILE_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwFATF");

#[repr(C)]
struct SimpleFileSystem {
    protocol: SimpleFileSystemProtocol,
    signature: u64,
    volume: Rc<Volume>,
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
        FatError::OutOfMemory(_) => Status::OUT_OF_RESOURCES,
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
///
/// # Safety
/// `protocol` is null or readable up to and including where a
/// `SimpleFileSystem` keeps its signature: every interface
/// `new_simple_file_system` or `simple_file_system_for` returned is (they
/// are never freed). The signature check tells ours from other memory.
pub unsafe fn open_file_count(protocol: *mut SimpleFileSystemProtocol) -> Option<usize> {
    // SAFETY: this function's contract is `instance`'s.
    let fs = unsafe { instance::<SimpleFileSystem>(protocol.cast(), VOLUME_SIGNATURE) }?;
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
///
/// # Safety
/// `protocol` is as [`open_file_count`] requires, and nothing else uses the
/// instance during the call (boot services run on one CPU, never re-entered
/// into a volume).
pub unsafe fn retire_simple_file_system(
    protocol: *mut SimpleFileSystemProtocol,
) -> Result<(), RetireError> {
    // SAFETY: this function's contract covers `instance`'s.
    let fs = unsafe { instance::<SimpleFileSystem>(protocol.cast(), VOLUME_SIGNATURE) }
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

/// The instance behind a protocol pointer, if it is one of ours.
///
/// # Safety
/// `this` is null or readable up to and including the signature word of the
/// instance type `signature` names: every interface this module handed out
/// is (volumes are never freed; a file handle until Close or Delete).
unsafe fn instance<T>(this: *mut c_void, signature: u64) -> Option<*mut T> {
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
    // SAFETY: non-null and aligned, and readable through the signature word
    // by this function's contract.
    let found = unsafe { this.cast::<u8>().add(offset).cast::<u64>().read() };
    (found == signature).then_some(ptr)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.4 requires of the caller.
unsafe extern "efiapi" fn open_volume(
    this: *mut SimpleFileSystemProtocol,
    root: *mut *mut FileProtocolV1,
) -> Status {
    // SAFETY: `this` is the interface the caller got from us (§13.4).
    let Some(fs) = (unsafe { instance::<SimpleFileSystem>(this.cast(), VOLUME_SIGNATURE) }) else {
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
