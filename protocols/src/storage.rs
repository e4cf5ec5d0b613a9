//! Publishes block storage to EFI: EFI_BLOCK_IO_PROTOCOL (UEFI 2.10 §13.9)
//! and EFI_DISK_IO_PROTOCOL (§13.7) over any [`BlockDevice`], partition views
//! with EFI_PARTITION_INFO_PROTOCOL (§13.18), the partition and FAT drivers
//! of the UEFI driver model (§11.1), and [`add_disk`], which puts a disk into
//! the handle database and connects those drivers to it.
//!
//! Every protocol instance is a `#[repr(C)]` heap struct with the protocol
//! table first and a signature after it; the table pointer handed out is the
//! struct pointer. Instances are never freed, not even when a driver's Stop
//! uninstalls them (a caller may still hold the pointer), so an interface
//! pointer whose signature checks out stays valid.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::fmt;

use alloc::collections::BTreeMap;
use core::sync::atomic::{AtomicUsize, Ordering};

use efi::boundary;
use efi::handles::HandleId;
use efi::protocol_services::{self as ps, install};
use efi::spec_gaps::{
    OPEN_PROTOCOL_BY_CHILD_CONTROLLER, OPEN_PROTOCOL_BY_DRIVER, OPEN_PROTOCOL_GET_PROTOCOL,
};
use platform::block::{BlockDevice, BlockError, MemDisk};
use platform::pci::Bdf;
use platform::sync::Global;
use platform::virtio::VirtioBlk;
use uefi_raw::protocol::block::{BlockIoMedia, BlockIoProtocol, Lba};
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::disk::DiskIoProtocol;
use uefi_raw::protocol::driver::DriverBindingProtocol;
use uefi_raw::protocol::file_system::SimpleFileSystemProtocol;
use uefi_raw::{Boolean, Guid, Handle, Status, guid};

use crate::device_path::{DevicePathBuf, format_guid, hard_drive, pci, pci_root};
use crate::driver::{self, DriverInfo};
use crate::fat::{DateTime, FatType, FileSystem};
use crate::partition::{self, Partition, PartitionKind, Scheme};
use crate::simple_fs::{retire_simple_file_system, simple_file_system_for};

/// The media never changes (virtio-blk has no removable media), so the
/// MediaId stays 0 (§13.9: it changes only when the media does).
const MEDIA_ID: u32 = 0;

const BLOCK_IO_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwBLIO");
const DISK_IO_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwDKIO");

/// EFI_PARTITION_INFO_PROTOCOL_GUID (§13.18); neither uefi-raw nor r-efi
/// defines it.
pub const PARTITION_INFO_GUID: Guid = guid!("8cf2f62c-bc9b-4821-808d-ec9ec421a1a0");
/// EFI_PARTITION_INFO_PROTOCOL_REVISION, spelled 0x0001000 in §13.18.
pub const PARTITION_INFO_REVISION: u32 = 0x1000;
pub const PARTITION_TYPE_OTHER: u32 = 0;
pub const PARTITION_TYPE_MBR: u32 = 1;
pub const PARTITION_TYPE_GPT: u32 = 2;

/// EFI System Partition type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B (§5.3.3).
pub const ESP_TYPE_GUID: Guid = guid!("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
/// MBR OSType of an EFI System Partition (§5.2.2).
pub const MBR_TYPE_ESP: u8 = 0xEF;

/// A disk the storage stack can publish and, at ExitBootServices, quiesce.
pub trait Disk: BlockDevice {
    /// Stops all device activity (DMA) before the OS owns the memory.
    /// Devices without DMA have nothing to stop.
    fn quiesce(&self) {}
}

impl Disk for VirtioBlk {
    fn quiesce(&self) {
        self.reset();
    }
}

impl Disk for MemDisk<'_> {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// A partition of `blocks` blocks at `start` does not fit its parent.
    PartitionOutOfRange {
        start: u64,
        blocks: u64,
        parent_blocks: u64,
    },
    /// The device reports a block size of 0 or no blocks at all.
    EmptyDevice { block_size: u32, blocks: u64 },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::PartitionOutOfRange {
                start,
                blocks,
                parent_blocks,
            } => write!(
                f,
                "partition of {blocks} blocks at LBA {start} exceeds its parent of {parent_blocks} blocks"
            ),
            StorageError::EmptyDevice { block_size, blocks } => {
                write!(f, "device has {blocks} blocks of {block_size} bytes")
            }
        }
    }
}

/// The one place block-device errors become EFI status codes (§13.9.3).
pub fn status_of(error: BlockError) -> Status {
    match error {
        BlockError::OutOfRange { .. } => Status::INVALID_PARAMETER,
        BlockError::BadBufferSize(_) => Status::BAD_BUFFER_SIZE,
        BlockError::ReadOnly => Status::WRITE_PROTECTED,
        BlockError::Device(_) | BlockError::Timeout => Status::DEVICE_ERROR,
    }
}

/// A contiguous run of a parent device's blocks, seen as a device of its own.
pub struct PartitionDevice {
    parent: Rc<dyn BlockDevice>,
    start: u64,
    blocks: u64,
}

impl PartitionDevice {
    /// `blocks` blocks of `parent` from `start`; must be non-empty and inside the parent.
    pub fn new(parent: Rc<dyn BlockDevice>, start: u64, blocks: u64) -> Result<Self, StorageError> {
        let parent_blocks = parent.num_blocks();
        match start.checked_add(blocks) {
            Some(end) if blocks > 0 && end <= parent_blocks => Ok(PartitionDevice {
                parent,
                start,
                blocks,
            }),
            _ => Err(StorageError::PartitionOutOfRange {
                start,
                blocks,
                parent_blocks,
            }),
        }
    }

    pub fn start(&self) -> u64 {
        self.start
    }
}

impl BlockDevice for PartitionDevice {
    fn block_size(&self) -> u32 {
        self.parent.block_size()
    }

    fn num_blocks(&self) -> u64 {
        self.blocks
    }

    fn read_only(&self) -> bool {
        self.parent.read_only()
    }

    // `check_request` keeps `lba + count <= blocks`, and `new` checked
    // `start + blocks` fits the parent, so `start + lba` cannot overflow.
    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        self.parent.read_blocks(self.start + lba, buf)
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        self.parent.write_blocks(self.start + lba, buf)
    }

    fn flush(&self) -> Result<(), BlockError> {
        self.parent.flush()
    }
}

// ---------------------------------------------------------------------------
// EFI_BLOCK_IO_PROTOCOL (§13.9)

#[repr(C)]
struct BlockIo {
    protocol: BlockIoProtocol,
    media: BlockIoMedia,
    signature: u64,
    device: Rc<dyn BlockDevice>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// The parameter checks of ReadBlocks/WriteBlocks (§13.9.3, §13.9.4);
/// returns the number of blocks to transfer (0: nothing to do).
fn check_block_request(
    media: &BlockIoMedia,
    media_id: u32,
    lba: Lba,
    len: usize,
    buffer_is_null: bool,
    access: Access,
) -> Result<u64, Status> {
    if media_id != media.media_id {
        return Err(Status::MEDIA_CHANGED);
    }
    if access == Access::Write && media.read_only.into() {
        return Err(Status::WRITE_PROTECTED);
    }
    if len == 0 {
        return Ok(0);
    }
    if buffer_is_null {
        return Err(Status::INVALID_PARAMETER);
    }
    let block_size = media.block_size as usize;
    if block_size == 0 || !len.is_multiple_of(block_size) {
        return Err(Status::BAD_BUFFER_SIZE);
    }
    let blocks = (len / block_size) as u64;
    if lba > media.last_block || blocks - 1 > media.last_block - lba {
        return Err(Status::INVALID_PARAMETER);
    }
    Ok(blocks)
}

/// Builds an EFI_BLOCK_IO_PROTOCOL instance over `device` (which must have
/// blocks). Revision 3: all revision-2 media fields plus
/// OptimalTransferLengthGranularity are filled in.
pub fn new_block_io(device: Rc<dyn BlockDevice>, logical_partition: bool) -> *mut BlockIoProtocol {
    let mut instance = Box::new(BlockIo {
        protocol: BlockIoProtocol {
            revision: BlockIoProtocol::REVISION_3,
            media: core::ptr::null(),
            reset: block_io_reset,
            read_blocks: block_io_read,
            write_blocks: block_io_write,
            flush_blocks: block_io_flush,
        },
        media: BlockIoMedia {
            media_id: MEDIA_ID,
            removable_media: Boolean::FALSE,
            media_present: Boolean::TRUE,
            logical_partition: logical_partition.into(),
            read_only: device.read_only().into(),
            write_caching: Boolean::FALSE,
            block_size: device.block_size(),
            // Virtio descriptors take any byte address (§2.7.5).
            io_align: 0,
            last_block: device.num_blocks().saturating_sub(1),
            // §13.9: the three alignment hints are zero for logical partitions.
            lowest_aligned_lba: 0,
            logical_blocks_per_physical_block: u32::from(!logical_partition),
            optimal_transfer_length_granularity: 0,
        },
        signature: BLOCK_IO_SIGNATURE,
        device,
    });
    instance.protocol.media = &instance.media;
    Box::into_raw(instance).cast()
}

/// Validates `This` of a Block I/O call.
fn block_io_instance<'a>(this: *const BlockIoProtocol) -> Result<&'a BlockIo, Status> {
    let instance = this.cast::<BlockIo>();
    if instance.is_null() || !instance.is_aligned() {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: non-null and aligned; by the spec's contract `This` is the
    // interface the caller got from our handle, so its leading bytes are
    // readable. The signature decides whether the rest is ours.
    let signature = unsafe { (&raw const (*instance).signature).read() };
    if signature != BLOCK_IO_SIGNATURE {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: the signature marks a `BlockIo` made by `new_block_io`, which
    // is never freed; we only take shared references to it.
    Ok(unsafe { &*instance })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.9 requires of the caller.
unsafe extern "efiapi" fn block_io_reset(this: *mut BlockIoProtocol, _extended: Boolean) -> Status {
    // The device was brought up at discovery and has no error state to
    // clear; resetting virtio would discard its queue.
    boundary::status(block_io_instance(this).map(|_| ()))
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.9 requires of the caller.
unsafe extern "efiapi" fn block_io_read(
    this: *const BlockIoProtocol,
    media_id: u32,
    lba: Lba,
    buffer_size: usize,
    buffer: *mut c_void,
) -> Status {
    let result = (|| {
        let io = block_io_instance(this)?;
        let blocks = check_block_request(
            &io.media,
            media_id,
            lba,
            buffer_size,
            buffer.is_null(),
            Access::Read,
        )?;
        if blocks == 0 {
            return Ok(());
        }
        // SAFETY: the caller's buffer, as this function's # Safety requires.
        let buf = unsafe { boundary::bytes_mut(buffer.cast(), buffer_size) }?;
        io.device.read_blocks(lba, buf).map_err(status_of)
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.9 requires of the caller.
unsafe extern "efiapi" fn block_io_write(
    this: *mut BlockIoProtocol,
    media_id: u32,
    lba: Lba,
    buffer_size: usize,
    buffer: *const c_void,
) -> Status {
    let result = (|| {
        let io = block_io_instance(this)?;
        let blocks = check_block_request(
            &io.media,
            media_id,
            lba,
            buffer_size,
            buffer.is_null(),
            Access::Write,
        )?;
        if blocks == 0 {
            return Ok(());
        }
        // SAFETY: the caller's buffer, as this function's # Safety requires.
        let buf = unsafe { boundary::bytes(buffer.cast(), buffer_size) }?;
        io.device.write_blocks(lba, buf).map_err(status_of)
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.9 requires of the caller.
unsafe extern "efiapi" fn block_io_flush(this: *mut BlockIoProtocol) -> Status {
    let result = block_io_instance(this).and_then(|io| io.device.flush().map_err(status_of));
    boundary::status(result)
}

// ---------------------------------------------------------------------------
// EFI_DISK_IO_PROTOCOL (§13.7)

#[repr(C)]
struct DiskIo {
    protocol: DiskIoProtocol,
    signature: u64,
    device: Rc<dyn BlockDevice>,
}

/// Checks `len` bytes at byte `offset` lie on the device; returns the block size.
fn check_byte_range(device: &dyn BlockDevice, offset: u64, len: usize) -> Result<u64, BlockError> {
    let block_size = u64::from(device.block_size());
    if block_size == 0 {
        return Err(BlockError::BadBufferSize(len));
    }
    let len = len as u64;
    let device_bytes = device.num_blocks().saturating_mul(block_size);
    match offset.checked_add(len) {
        Some(end) if end <= device_bytes => Ok(block_size),
        _ => Err(BlockError::OutOfRange {
            lba: offset / block_size,
            blocks: len.div_ceil(block_size),
        }),
    }
}

/// Reads `buf.len()` bytes from byte `offset`: partial edge blocks go
/// through a bounce buffer, the whole blocks between them straight into `buf`.
pub fn read_disk(device: &dyn BlockDevice, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
    let block_size = check_byte_range(device, offset, buf.len())?;
    if buf.is_empty() {
        return Ok(());
    }
    let bs = block_size as usize;
    let mut lba = offset / block_size;
    let mut done = 0;
    let head = (offset % block_size) as usize;
    let mut bounce = Vec::new();
    if head != 0 {
        bounce.resize(bs, 0);
        device.read_blocks(lba, &mut bounce)?;
        let take = (bs - head).min(buf.len());
        buf[..take].copy_from_slice(&bounce[head..head + take]);
        done = take;
        lba += 1;
    }
    let whole = (buf.len() - done) / bs * bs;
    if whole > 0 {
        device.read_blocks(lba, &mut buf[done..done + whole])?;
        done += whole;
        lba += (whole / bs) as u64;
    }
    if done < buf.len() {
        bounce.resize(bs, 0);
        device.read_blocks(lba, &mut bounce)?;
        let rest = buf.len() - done;
        buf[done..].copy_from_slice(&bounce[..rest]);
    }
    Ok(())
}

/// Writes `data` at byte `offset`, reading, patching and rewriting the
/// partial edge blocks; whole blocks between them go straight to the device.
pub fn write_disk(device: &dyn BlockDevice, offset: u64, data: &[u8]) -> Result<(), BlockError> {
    if device.read_only() {
        return Err(BlockError::ReadOnly);
    }
    let block_size = check_byte_range(device, offset, data.len())?;
    if data.is_empty() {
        return Ok(());
    }
    let bs = block_size as usize;
    let mut lba = offset / block_size;
    let mut done = 0;
    let head = (offset % block_size) as usize;
    let mut bounce = Vec::new();
    if head != 0 {
        bounce.resize(bs, 0);
        device.read_blocks(lba, &mut bounce)?;
        let take = (bs - head).min(data.len());
        bounce[head..head + take].copy_from_slice(&data[..take]);
        device.write_blocks(lba, &bounce)?;
        done = take;
        lba += 1;
    }
    let whole = (data.len() - done) / bs * bs;
    if whole > 0 {
        device.write_blocks(lba, &data[done..done + whole])?;
        done += whole;
        lba += (whole / bs) as u64;
    }
    if done < data.len() {
        bounce.resize(bs, 0);
        device.read_blocks(lba, &mut bounce)?;
        let rest = data.len() - done;
        bounce[..rest].copy_from_slice(&data[done..]);
        device.write_blocks(lba, &bounce)?;
    }
    Ok(())
}

/// Builds an EFI_DISK_IO_PROTOCOL instance over `device`.
pub fn new_disk_io(device: Rc<dyn BlockDevice>) -> *mut DiskIoProtocol {
    let instance = Box::new(DiskIo {
        protocol: DiskIoProtocol {
            revision: DiskIoProtocol::REVISION,
            read_disk: disk_io_read,
            write_disk: disk_io_write,
        },
        signature: DISK_IO_SIGNATURE,
        device,
    });
    Box::into_raw(instance).cast()
}

/// Validates `This` and `MediaId` of a Disk I/O call.
fn disk_io_instance<'a>(this: *const DiskIoProtocol, media_id: u32) -> Result<&'a DiskIo, Status> {
    let instance = this.cast::<DiskIo>();
    if instance.is_null() || !instance.is_aligned() {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: as in `block_io_instance`: a non-null, aligned interface
    // pointer from our handle; the signature decides whether it is ours.
    let signature = unsafe { (&raw const (*instance).signature).read() };
    if signature != DISK_IO_SIGNATURE {
        return Err(Status::INVALID_PARAMETER);
    }
    if media_id != MEDIA_ID {
        return Err(Status::MEDIA_CHANGED);
    }
    // SAFETY: the signature marks a `DiskIo` made by `new_disk_io`, never freed.
    Ok(unsafe { &*instance })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.7 requires of the caller.
unsafe extern "efiapi" fn disk_io_read(
    this: *const DiskIoProtocol,
    media_id: u32,
    offset: u64,
    buffer_size: usize,
    buffer: *mut c_void,
) -> Status {
    let result = (|| {
        let io = disk_io_instance(this, media_id)?;
        // SAFETY: the caller's buffer, as this function's # Safety requires.
        let buf = unsafe { boundary::bytes_mut(buffer.cast(), buffer_size) }?;
        read_disk(&*io.device, offset, buf).map_err(status_of)
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.7 requires of the caller.
unsafe extern "efiapi" fn disk_io_write(
    this: *mut DiskIoProtocol,
    media_id: u32,
    offset: u64,
    buffer_size: usize,
    buffer: *const c_void,
) -> Status {
    let result = (|| {
        let io = disk_io_instance(this, media_id)?;
        // SAFETY: the caller's buffer, as this function's # Safety requires.
        let data = unsafe { boundary::bytes(buffer.cast(), buffer_size) }?;
        write_disk(&*io.device, offset, data).map_err(status_of)
    })();
    boundary::status(result)
}

// ---------------------------------------------------------------------------
// EFI_PARTITION_INFO_PROTOCOL (§13.18)

/// The protocol is a plain structure; `record` holds the MBR_PARTITION_RECORD
/// (16 bytes) or EFI_PARTITION_ENTRY (128 bytes) of the partition.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub revision: u32,
    pub partition_type: u32,
    /// 1 for the EFI System Partition.
    pub system: u8,
    pub reserved: [u8; 7],
    pub record: [u8; 128],
}

const _: () = assert!(core::mem::size_of::<PartitionInfo>() == 144);
const _: () = assert!(core::mem::offset_of!(PartitionInfo, record) == 16);

/// Offset of the four primary records in the MBR (§5.2.1, Table 5-1).
const MBR_RECORDS_OFFSET: usize = 446;
const MBR_RECORD_SIZE: usize = 16;

pub fn is_esp(partition: &Partition) -> bool {
    match &partition.kind {
        PartitionKind::Gpt(gpt) => gpt.type_guid == ESP_TYPE_GUID,
        PartitionKind::Mbr(mbr) => mbr.os_type == MBR_TYPE_ESP,
    }
}

/// The PartitionInfo of `partition`. A primary MBR partition gets its record
/// verbatim from `mbr_sector` (LBA 0) when given; logical partitions get a
/// record rebuilt with their absolute start and LBA-only CHS values, and a
/// GPT entry is rebuilt from the parsed fields (§5.3.3, Table 5-6).
pub fn partition_info(partition: &Partition, mbr_sector: Option<&[u8]>) -> PartitionInfo {
    let mut record = [0u8; 128];
    let partition_type = match &partition.kind {
        PartitionKind::Gpt(gpt) => {
            record[0..16].copy_from_slice(&gpt.type_guid.to_bytes());
            record[16..32].copy_from_slice(&gpt.unique_guid.to_bytes());
            record[32..40].copy_from_slice(&partition.start_lba.to_le_bytes());
            record[40..48].copy_from_slice(&partition.end_lba.to_le_bytes());
            record[48..56].copy_from_slice(&gpt.attributes.to_le_bytes());
            for (slot, unit) in record[56..128]
                .chunks_exact_mut(2)
                .zip(gpt.name.encode_utf16())
            {
                slot.copy_from_slice(&unit.to_le_bytes());
            }
            PARTITION_TYPE_GPT
        }
        PartitionKind::Mbr(mbr) => {
            let slot = partition.number as usize;
            let raw = (!mbr.logical && (1..=4).contains(&slot))
                .then(|| {
                    let at = MBR_RECORDS_OFFSET + (slot - 1) * MBR_RECORD_SIZE;
                    mbr_sector?.get(at..at + MBR_RECORD_SIZE)
                })
                .flatten();
            match raw {
                Some(raw) => record[..MBR_RECORD_SIZE].copy_from_slice(raw),
                None => {
                    // CHS FE FF FF: "use the LBA fields" (cylinder 1023, head 254, sector 63).
                    let lba_only_chs = [0xFE, 0xFF, 0xFF];
                    record[0] = if mbr.bootable { 0x80 } else { 0 };
                    record[1..4].copy_from_slice(&lba_only_chs);
                    record[4] = mbr.os_type;
                    record[5..8].copy_from_slice(&lba_only_chs);
                    let start = u32::try_from(partition.start_lba).unwrap_or(u32::MAX);
                    let size = u32::try_from(partition.size_in_blocks()).unwrap_or(u32::MAX);
                    record[8..12].copy_from_slice(&start.to_le_bytes());
                    record[12..16].copy_from_slice(&size.to_le_bytes());
                }
            }
            PARTITION_TYPE_MBR
        }
    };
    PartitionInfo {
        revision: PARTITION_INFO_REVISION,
        partition_type,
        system: u8::from(is_esp(partition)),
        reserved: [0; 7],
        record,
    }
}

// ---------------------------------------------------------------------------
// Disk discovery

/// The disks given to `add_disk`, for `quiesce_all`.
struct DiskList(Vec<Rc<dyn Disk>>);

// SAFETY: the firmware runs on one CPU (see `platform::sync`); the `Rc`s in
// the list are never touched from another thread.
unsafe impl Send for DiskList {}

static DISKS: Global<DiskList> = Global::new(DiskList(Vec::new()));

/// Stops every disk given to `add_disk` (virtio-blk: device reset, so no DMA
/// lands in memory the OS owns). The core runs this at ExitBootServices.
pub fn quiesce_all() {
    let Some(disks) = DISKS.try_with(|list| list.0.clone()) else {
        log::error!("storage: disk list busy at quiesce");
        return;
    };
    for disk in disks {
        disk.quiesce();
    }
}

/// Timestamps for FAT writes from the firmware clock (GetTime, §8.3.1).
fn fat_clock() -> DateTime {
    #[cfg(target_os = "none")]
    {
        let mut time = uefi_raw::time::Time::default();
        // SAFETY: a live local; the capabilities are optional.
        if unsafe { efi::runtime::get_time(&mut time, core::ptr::null_mut()) } == Status::SUCCESS {
            return DateTime {
                year: time.year,
                month: time.month,
                day: time.day,
                hour: time.hour,
                minute: time.minute,
                second: time.second,
            };
        }
    }
    DateTime::EPOCH
}

/// A protocol as installed: its GUID and interface.
type Interface = (Guid, *mut c_void);

/// Copies a device path into a never-freed buffer for the handle database.
fn leak_path(path: &DevicePathBuf) -> *mut c_void {
    Box::leak(path.as_bytes().to_vec().into_boxed_slice())
        .as_mut_ptr()
        .cast()
}

/// Creates a handle with Block I/O, Disk I/O and the device path for
/// `device`, plus `extra` protocols; returns it with the installed pairs.
fn publish(
    device: Rc<dyn BlockDevice>,
    path: &DevicePathBuf,
    logical_partition: bool,
    extra: &[(Guid, *mut c_void)],
) -> Result<(HandleId, Vec<Interface>), Status> {
    let mut protocols = Vec::with_capacity(3 + extra.len());
    protocols.push((
        BlockIoProtocol::GUID,
        new_block_io(device.clone(), logical_partition).cast(),
    ));
    protocols.push((DiskIoProtocol::GUID, new_disk_io(device).cast()));
    protocols.push((DevicePathProtocol::GUID, leak_path(path)));
    protocols.extend_from_slice(extra);
    let handle = install(None, &protocols)?;
    Ok((handle, protocols))
}

/// `1536` -> "1.5 KiB": binary units, one decimal when not whole.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let exponent = UNITS
        .iter()
        .enumerate()
        .rev()
        .find(|(i, _)| bytes >> (10 * i) != 0)
        .map_or(0, |(i, _)| i);
    if exponent == 0 {
        return format!("{bytes} bytes");
    }
    let tenths = u128::from(bytes) * 10 / (1u128 << (10 * exponent));
    let unit = UNITS[exponent];
    match tenths % 10 {
        0 => format!("{} {unit}", tenths / 10),
        tenth => format!("{}.{tenth} {unit}", tenths / 10),
    }
}

fn describe(partition: &Partition) -> String {
    if is_esp(partition) {
        return String::from("ESP");
    }
    match &partition.kind {
        PartitionKind::Gpt(gpt) if gpt.name.is_empty() => {
            format!("type {}", format_guid(&gpt.type_guid))
        }
        PartitionKind::Gpt(gpt) => format!("\"{}\"", gpt.name),
        PartitionKind::Mbr(mbr) => format!("type {:#04x}", mbr.os_type),
    }
}

// ---------------------------------------------------------------------------
// The storage drivers (UEFI 2.10 §11.1). `add_disk` publishes a disk handle
// and asks the core to connect it; the partition driver (a bus driver) then
// makes a child handle per partition, and the FAT driver (a device driver)
// puts SimpleFileSystem on every FAT volume: a partition, or a whole disk
// without a partition table (the partition driver declines those).
//
// Both drivers serve only the firmware's own Block I/O and Disk I/O
// instances: they reach the `BlockDevice` behind them directly instead of
// going back through the protocol calls, which keeps the disk paths as fast
// as before.

/// ConnectController tries drivers by Version, highest first (§7.3.12): the
/// partition driver must see a disk before the FAT driver, so a partitioned
/// disk is never mounted whole.
const PARTITION_DRIVER_VERSION: u32 = 0x20;
const FAT_DRIVER_VERSION: u32 = 0x10;

/// The drivers' handles (0 until `register_drivers`).
static PARTITION_DRIVER: AtomicUsize = AtomicUsize::new(0);
static FAT_DRIVER: AtomicUsize = AtomicUsize::new(0);

/// A disk handle made by `add_disk`.
struct DiskRecord {
    /// Its PCI function, "00:01.0", for log lines and the controller name.
    label: String,
    path: DevicePathBuf,
    /// Whether the partition driver logged the disk's layout already.
    announced: bool,
}

/// A partition handle made by the partition driver.
struct PartitionChild {
    parent: HandleId,
    number: u32,
    description: String,
    bytes: u64,
    /// The installed (GUID, interface address) pairs, Disk I/O first: it is
    /// the one a driver holds, so removing it first changes nothing when
    /// that driver refuses to stop.
    protocols: Vec<(Guid, usize)>,
}

#[derive(Default)]
struct StorageState {
    disks: BTreeMap<HandleId, DiskRecord>,
    /// Disks the partition driver manages, with their children in order.
    partitioned: BTreeMap<HandleId, Vec<HandleId>>,
    children: BTreeMap<HandleId, PartitionChild>,
    /// Volumes the FAT driver manages: their SimpleFileSystem and FAT type.
    volumes: BTreeMap<HandleId, (usize, FatType)>,
}

static STATE: Global<StorageState> = Global::new(StorageState {
    disks: BTreeMap::new(),
    partitioned: BTreeMap::new(),
    children: BTreeMap::new(),
    volumes: BTreeMap::new(),
});

/// A volume the FAT driver's Supported mounted, kept for its Start so the
/// volume is mounted once.
struct ProbedVolume(HandleId, FileSystem<Box<dyn BlockDevice>>);

// SAFETY: the firmware runs on one CPU (see `platform::sync`); the volume
// and the `Rc`s inside it are never touched from another thread.
unsafe impl Send for ProbedVolume {}

static PROBED: Global<Option<ProbedVolume>> = Global::new(None);

fn registered_driver(slot: &AtomicUsize) -> HandleId {
    slot.load(Ordering::Relaxed)
}

/// Creates the two driver handles, once.
fn register_drivers() -> Result<(), Status> {
    if registered_driver(&PARTITION_DRIVER) != 0 {
        return Ok(());
    }
    let partition = driver::register(DriverInfo {
        name: "Partition driver (GPT, MBR)",
        version: PARTITION_DRIVER_VERSION,
        supported: partition_supported,
        start: partition_start,
        stop: partition_stop,
        controller_name: partition_controller_name,
    })?;
    PARTITION_DRIVER.store(partition, Ordering::Relaxed);
    let fat = driver::register(DriverInfo {
        name: "FAT file system driver",
        version: FAT_DRIVER_VERSION,
        supported: fat_supported,
        start: fat_start,
        stop: fat_stop,
        controller_name: fat_controller_name,
    })?;
    FAT_DRIVER.store(fat, Ordering::Relaxed);
    Ok(())
}

/// The device behind a Disk I/O interface, when it is one of ours. The
/// function pointer (inside the protocol table every caller must provide)
/// tells ours from a foreign one before anything past the table is read.
fn our_disk_device(interface: usize) -> Option<Rc<dyn BlockDevice>> {
    let protocol = interface as *mut DiskIoProtocol;
    if protocol.is_null() || !protocol.is_aligned() {
        return None;
    }
    // SAFETY: an installed Disk I/O interface: its table is readable.
    let read = unsafe { (*protocol).read_disk };
    if read as *const () != disk_io_read as *const () {
        return None;
    }
    disk_io_instance(protocol, MEDIA_ID)
        .ok()
        .map(|io| io.device.clone())
}

/// Whether a Block I/O interface is one of ours over a logical partition
/// (None: not ours).
fn our_block_io_is_partition(interface: *mut BlockIoProtocol) -> Option<bool> {
    if interface.is_null() || !interface.is_aligned() {
        return None;
    }
    // SAFETY: an installed Block I/O interface: its table is readable.
    let read = unsafe { (*interface).read_blocks };
    if read as *const () != block_io_read as *const () {
        return None;
    }
    block_io_instance(interface)
        .ok()
        .map(|io| io.media.logical_partition.into())
}

/// The Disk I/O of `controller`, opened BY_DRIVER by `driver`.
fn open_disk_io(controller: HandleId, driver: HandleId) -> Result<usize, Status> {
    ps::open(
        controller,
        &DiskIoProtocol::GUID,
        driver,
        controller,
        OPEN_PROTOCOL_BY_DRIVER,
    )
}

/// Drops every open `driver` made of `controller`'s Block I/O and Disk I/O.
fn release(controller: HandleId, driver: HandleId) {
    for guid in [DiskIoProtocol::GUID, BlockIoProtocol::GUID] {
        // Already closed (or the protocol gone with its handle): fine.
        let _ = ps::close(controller, &guid, driver, controller);
    }
}

/// Supported's probe as §11.1.1 describes it: the BY_DRIVER open the
/// driver's Start would make (refused while another driver, or this one,
/// holds the Disk I/O), closed again; then the device behind it.
fn probe_disk_io(controller: HandleId, driver: HandleId) -> Result<Rc<dyn BlockDevice>, Status> {
    let interface = open_disk_io(controller, driver)?;
    let _ = ps::close(controller, &DiskIoProtocol::GUID, driver, controller);
    our_disk_device(interface).ok_or(Status::UNSUPPORTED)
}

fn controller_block_io(controller: HandleId) -> Option<*mut BlockIoProtocol> {
    ps::get_protocol::<BlockIoProtocol>(controller, &BlockIoProtocol::GUID)
}

/// Reads the children the core passes to Stop.
///
/// # Safety
/// `children` is null or holds `count` handles (§11.1.3).
unsafe fn stop_children(count: usize, children: *const Handle) -> Result<Vec<HandleId>, Status> {
    (0..count)
        // SAFETY: this function's contract.
        .map(|i| unsafe { boundary::read(children.wrapping_add(i)) }.map(|h| h as HandleId))
        .collect()
}

// --- The partition driver -------------------------------------------------

/// The partition driver takes whole disks `add_disk` published. A disk it
/// already manages is accepted again, so that Start brings back partitions
/// whose children were stopped on their own (DisconnectController with a
/// ChildHandle) when the disk is connected again.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.1 requires of the caller.
unsafe extern "efiapi" fn partition_supported(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = controller as HandleId;
    match partition_candidate(controller) {
        Err(Status::ALREADY_STARTED) if is_partitioned(controller) => Status::SUCCESS,
        other => boundary::status(other.map(|_| ())),
    }
}

fn is_partitioned(controller: HandleId) -> bool {
    STATE.with(|s| s.partitioned.contains_key(&controller))
}

fn partition_candidate(controller: HandleId) -> Result<Rc<dyn BlockDevice>, Status> {
    let driver = registered_driver(&PARTITION_DRIVER);
    let device = probe_disk_io(controller, driver)?;
    let is_partition = controller_block_io(controller)
        .and_then(our_block_io_is_partition)
        .ok_or(Status::UNSUPPORTED)?;
    if is_partition || !STATE.with(|s| s.disks.contains_key(&controller)) {
        return Err(Status::UNSUPPORTED);
    }
    Ok(device)
}

/// Opens the disk for the partition driver: Disk I/O and Block I/O
/// BY_DRIVER, held for as long as its partitions exist (§11.1.2).
fn take_disk(controller: HandleId) -> Result<Rc<dyn BlockDevice>, Status> {
    let driver = registered_driver(&PARTITION_DRIVER);
    partition_candidate(controller)?;
    let interface = open_disk_io(controller, driver)?;
    let opened = ps::open(
        controller,
        &BlockIoProtocol::GUID,
        driver,
        controller,
        OPEN_PROTOCOL_BY_DRIVER,
    );
    match (opened, our_disk_device(interface)) {
        (Ok(_), Some(device)) => Ok(device),
        (opened, _) => {
            release(controller, driver);
            Err(opened.err().unwrap_or(Status::UNSUPPORTED))
        }
    }
}

/// Reads the partition table and makes a child per partition that has
/// none yet; declines (EFI_NOT_FOUND) a disk without partitions, which
/// leaves it to the FAT driver.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.2 requires of the caller.
unsafe extern "efiapi" fn partition_start(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = controller as HandleId;
    let driver = registered_driver(&PARTITION_DRIVER);
    let rescan = is_partitioned(controller);
    let disk = if rescan {
        let interface = ps::get_protocol::<c_void>(controller, &DiskIoProtocol::GUID);
        match interface.and_then(|i| our_disk_device(i as usize)) {
            Some(disk) => disk,
            None => return Status::DEVICE_ERROR,
        }
    } else {
        match take_disk(controller) {
            Ok(disk) => disk,
            Err(status) => return status,
        }
    };
    // A disk being scanned again keeps what it holds.
    let fail = |status: Status| {
        if !rescan {
            release(controller, driver);
        }
        status
    };
    let Some((label, disk_path, announced)) = STATE.with(|s| {
        s.disks.get_mut(&controller).map(|d| {
            let announced = core::mem::replace(&mut d.announced, true);
            (d.label.clone(), d.path.clone(), announced)
        })
    }) else {
        return fail(Status::UNSUPPORTED);
    };
    // The first scan is news; later ones (a reconnect) are not.
    let level = if announced {
        log::Level::Debug
    } else {
        log::Level::Info
    };

    let (block_size, blocks) = (disk.block_size(), disk.num_blocks());
    let read_only = if disk.read_only() { ", read-only" } else { "" };
    let geometry = format!("{blocks} blocks of {block_size} bytes{read_only}");
    let table = match partition::read_partitions(&*disk) {
        Ok(table) => table,
        Err(error) => {
            log::log!(
                level,
                "disk {label}: {geometry}, no partition table ({error})"
            );
            return fail(Status::NOT_FOUND);
        }
    };
    let scheme = match table.scheme {
        Scheme::Gpt {
            used_backup: true, ..
        } => "GPT (from the backup header)",
        Scheme::Gpt { .. } => "GPT",
        Scheme::Mbr { .. } => "MBR",
    };
    log::log!(
        level,
        "disk {label}: {geometry}, {scheme}, {} partitions",
        table.partitions.len()
    );
    if table.partitions.is_empty() {
        // A "superfloppy" may carry a file system from LBA 0.
        return fail(Status::NOT_FOUND);
    }
    let mbr_sector = match table.scheme {
        Scheme::Mbr { .. } => {
            let mut sector = alloc::vec![0u8; block_size as usize];
            disk.read_blocks(0, &mut sector).ok().map(|()| sector)
        }
        Scheme::Gpt { .. } => None,
    };
    let published: Vec<u32> = STATE.with(|s| {
        s.children
            .values()
            .filter(|c| c.parent == controller)
            .map(|c| c.number)
            .collect()
    });
    let mut children = Vec::with_capacity(table.partitions.len());
    for partition in &table.partitions {
        if published.contains(&partition.number) {
            continue;
        }
        match add_partition(
            controller,
            &disk,
            &disk_path,
            partition,
            mbr_sector.as_deref(),
        ) {
            Ok(child) => children.push(child),
            Err(status) => log::warn!(
                "  partition {}: not published: {status:?}",
                partition.number
            ),
        }
    }
    STATE.with(|s| {
        s.partitioned
            .entry(controller)
            .or_default()
            .extend(children)
    });
    Status::SUCCESS
}

/// Publishes one partition of the disk `parent` as a child handle: Block
/// I/O, Disk I/O, the device path extended by `HD(...)` and PartitionInfo;
/// the child holds the parent's Disk I/O BY_CHILD_CONTROLLER (§11.1.2).
fn add_partition(
    parent: HandleId,
    disk: &Rc<dyn BlockDevice>,
    disk_path: &DevicePathBuf,
    partition: &Partition,
    mbr_sector: Option<&[u8]>,
) -> Result<HandleId, Status> {
    let blocks = partition.size_in_blocks();
    let view =
        PartitionDevice::new(disk.clone(), partition.start_lba, blocks).map_err(|error| {
            log::warn!("  partition {}: {error}", partition.number);
            Status::INVALID_PARAMETER
        })?;
    let view: Rc<dyn BlockDevice> = Rc::new(view);
    let mut path = disk_path.clone();
    path.push(&hard_drive(&partition.hard_drive_info()))
        .map_err(|_| Status::INVALID_PARAMETER)?;
    let info = Box::into_raw(Box::new(partition_info(partition, mbr_sector)));
    let (child, mut protocols) = publish(view, &path, true, &[(PARTITION_INFO_GUID, info.cast())])?;
    // Disk I/O first (see `PartitionChild::protocols`).
    protocols.swap(0, 1);
    let driver = registered_driver(&PARTITION_DRIVER);
    if let Err(status) = ps::open(
        parent,
        &DiskIoProtocol::GUID,
        driver,
        child,
        OPEN_PROTOCOL_BY_CHILD_CONTROLLER,
    ) {
        let _ = ps::uninstall(child, &protocols);
        return Err(status);
    }
    let record = PartitionChild {
        parent,
        number: partition.number,
        description: describe(partition),
        bytes: blocks.saturating_mul(u64::from(disk.block_size())),
        protocols: protocols.iter().map(|&(g, i)| (g, i as usize)).collect(),
    };
    STATE.with(|s| s.children.insert(child, record));
    Ok(child)
}

/// Stop (§11.1.3): with children, uninstalls them (a FAT driver bound to
/// one is disconnected first, by the core's UninstallProtocolInterface);
/// without, releases the disk once it has no children left.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.3 requires of the caller.
unsafe extern "efiapi" fn partition_stop(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    count: usize,
    children: *const Handle,
) -> Status {
    let controller = controller as HandleId;
    let driver = registered_driver(&PARTITION_DRIVER);
    if count == 0 {
        let left = STATE.with(|s| {
            let left = s.partitioned.get(&controller).map(Vec::len);
            if left == Some(0) {
                s.partitioned.remove(&controller);
            }
            left
        });
        return match left {
            Some(0) => {
                release(controller, driver);
                Status::SUCCESS
            }
            _ => Status::DEVICE_ERROR,
        };
    }
    // SAFETY: the core's list, as this function's # Safety requires.
    let children = match unsafe { stop_children(count, children) } {
        Ok(children) => children,
        Err(status) => return status,
    };
    let mut status = Status::SUCCESS;
    for child in children {
        if let Err(error) = remove_partition(controller, child) {
            log::debug!("partition driver: child {child:#x} stays: {error:?}");
            status = Status::DEVICE_ERROR;
        }
    }
    status
}

fn remove_partition(parent: HandleId, child: HandleId) -> Result<(), Status> {
    let driver = registered_driver(&PARTITION_DRIVER);
    let protocols: Vec<(Guid, *mut c_void)> = STATE
        .with(|s| {
            s.children
                .get(&child)
                .filter(|c| c.parent == parent)
                .map(|c| c.protocols.clone())
        })
        .ok_or(Status::INVALID_PARAMETER)?
        .into_iter()
        .map(|(g, i)| (g, i as *mut c_void))
        .collect();
    ps::close(parent, &DiskIoProtocol::GUID, driver, child)?;
    if let Err(status) = ps::uninstall(child, &protocols) {
        let _ = ps::open(
            parent,
            &DiskIoProtocol::GUID,
            driver,
            child,
            OPEN_PROTOCOL_BY_CHILD_CONTROLLER,
        );
        return Err(status);
    }
    // The interfaces stay allocated: a caller that looked them up earlier
    // may still call them (see the module comment).
    STATE.with(|s| {
        s.children.remove(&child);
        if let Some(list) = s.partitioned.get_mut(&parent) {
            list.retain(|&c| c != child);
        }
    });
    Ok(())
}

fn partition_controller_name(controller: HandleId, child: Option<HandleId>) -> Option<String> {
    STATE.with(|s| {
        let siblings = s.partitioned.get(&controller)?;
        match child {
            None => s
                .disks
                .get(&controller)
                .map(|d| format!("Disk {}", d.label)),
            Some(child) if siblings.contains(&child) => s
                .children
                .get(&child)
                .map(|c| format!("Partition {}: {}", c.number, c.description)),
            Some(_) => None,
        }
    })
}

// --- The FAT driver -------------------------------------------------------

/// The FAT driver takes any of our Block I/O + Disk I/O handles holding a
/// FAT volume; the probe mount is kept for Start.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.1 requires of the caller.
unsafe extern "efiapi" fn fat_supported(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = controller as HandleId;
    let device = match probe_disk_io(controller, registered_driver(&FAT_DRIVER)) {
        Ok(device) => device,
        Err(status) => return status,
    };
    if controller_block_io(controller).is_none() {
        return Status::UNSUPPORTED;
    }
    match FileSystem::mount(Box::new(device) as Box<dyn BlockDevice>) {
        Ok(volume) => {
            PROBED.with(|p| *p = Some(ProbedVolume(controller, volume)));
            Status::SUCCESS
        }
        Err(error) => {
            log::debug!("storage: no FAT file system: {error}");
            Status::UNSUPPORTED
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.2 requires of the caller.
unsafe extern "efiapi" fn fat_start(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = controller as HandleId;
    let driver = registered_driver(&FAT_DRIVER);
    let disk_io = match open_disk_io(controller, driver) {
        Ok(interface) => interface,
        Err(status) => return status,
    };
    let fail = |status: Status| {
        release(controller, driver);
        status
    };
    let Some(device) = our_disk_device(disk_io) else {
        return fail(Status::UNSUPPORTED);
    };
    // Recorded for `dh -d` and OpenProtocolInformation; Block I/O is only read.
    if ps::open(
        controller,
        &BlockIoProtocol::GUID,
        driver,
        controller,
        OPEN_PROTOCOL_GET_PROTOCOL,
    )
    .is_err()
    {
        return fail(Status::UNSUPPORTED);
    }
    let probed = PROBED
        .with(|p| p.take_if(|probe| probe.0 == controller))
        .map(|probe| probe.1);
    let volume = match probed {
        Some(volume) => volume,
        None => match FileSystem::mount(Box::new(device) as Box<dyn BlockDevice>) {
            Ok(volume) => volume,
            Err(error) => {
                log::warn!("storage: FAT mount failed: {error}");
                return fail(Status::UNSUPPORTED);
            }
        },
    };
    let fat_type = volume.fat_type();
    let protocol = simple_file_system_for(volume, fat_clock);
    if let Err(status) = install(
        Some(controller),
        &[(SimpleFileSystemProtocol::GUID, protocol.cast())],
    ) {
        log::warn!("storage: installing SimpleFileSystem failed: {status:?}");
        return fail(status);
    }
    STATE.with(|s| s.volumes.insert(controller, (protocol as usize, fat_type)));
    Status::SUCCESS
}

/// Stop (§11.1.3): refused with EFI_ACCESS_DENIED while files are open on
/// the volume; otherwise SimpleFileSystem is uninstalled and the volume
/// flushed and retired.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.3 requires of the caller.
unsafe extern "efiapi" fn fat_stop(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    count: usize,
    _children: *const Handle,
) -> Status {
    let controller = controller as HandleId;
    let driver = registered_driver(&FAT_DRIVER);
    let Some((protocol, _)) = STATE.with(|s| s.volumes.get(&controller).copied()) else {
        return Status::DEVICE_ERROR;
    };
    if count != 0 {
        // A device driver has no children to stop.
        return Status::INVALID_PARAMETER;
    }
    let protocol = protocol as *mut SimpleFileSystemProtocol;
    if let Some(open) = open_files(protocol) {
        log::debug!("FAT driver: {open} file(s) open, volume stays");
        return Status::ACCESS_DENIED;
    }
    if let Err(status) = ps::uninstall(
        controller,
        &[(SimpleFileSystemProtocol::GUID, protocol.cast())],
    ) {
        return status;
    }
    if let Err(error) = retire_simple_file_system(protocol) {
        log::warn!("storage: retiring a FAT volume: {error}");
    }
    STATE.with(|s| s.volumes.remove(&controller));
    release(controller, driver);
    Status::SUCCESS
}

fn fat_controller_name(controller: HandleId, child: Option<HandleId>) -> Option<String> {
    if child.is_some() {
        return None;
    }
    let (_, fat_type) = STATE.with(|s| s.volumes.get(&controller).copied())?;
    Some(format!("{} file system", fat_type_name(fat_type)))
}

fn fat_type_name(fat_type: FatType) -> &'static str {
    match fat_type {
        FatType::Fat12 => "FAT12",
        FatType::Fat16 => "FAT16",
        FatType::Fat32 => "FAT32",
    }
}

/// The number of open files when there are any (None: none).
fn open_files(protocol: *mut SimpleFileSystemProtocol) -> Option<usize> {
    match crate::simple_fs::open_file_count(protocol) {
        Some(0) | None => None,
        Some(count) => Some(count),
    }
}

// --- Discovery --------------------------------------------------------------

/// Publishes `device`, found at PCI function `pci_function` on the root bus,
/// as a disk handle with Block I/O, Disk I/O and `PciRoot(0x0)/Pci(dev,fn)`,
/// then connects the storage drivers to it (ConnectController, recursive):
/// a child handle per partition with Block I/O, Disk I/O, PartitionInfo
/// and the path extended by `HD(...)`, and SimpleFileSystem on every FAT
/// volume (the partitions, or the whole disk when it has no partitions). A
/// bad partition table or volume is logged and skipped. The disk is also
/// kept for `quiesce_all`.
pub fn add_disk(device: Rc<dyn Disk>, pci_function: Bdf) -> Result<HandleId, Status> {
    DISKS.with(|list| list.0.push(device.clone()));
    let disk: Rc<dyn BlockDevice> = device;
    let (block_size, blocks) = (disk.block_size(), disk.num_blocks());
    if block_size == 0 || blocks == 0 {
        log::warn!(
            "disk {pci_function}: {}",
            StorageError::EmptyDevice { block_size, blocks }
        );
        return Err(Status::NO_MEDIA);
    }
    if pci_function.bus != 0 {
        // Behind a bridge the path would need the bridge's Pci node too.
        log::warn!("disk {pci_function}: not on bus 0; its device path omits the bus");
    }
    register_drivers()?;
    let disk_path =
        DevicePathBuf::from_nodes(&[pci_root(0), pci(pci_function.device, pci_function.function)])
            .map_err(|_| Status::INVALID_PARAMETER)?;
    let (handle, _) = publish(disk, &disk_path, false, &[])?;
    STATE.with(|s| {
        s.disks.insert(
            handle,
            DiskRecord {
                label: format!("{pci_function}"),
                path: disk_path,
                announced: false,
            },
        )
    });
    let status = ps::connect(handle, &[], true);
    log::debug!("disk {pci_function}: ConnectController: {status:?}");
    log_volumes(handle);
    Ok(handle)
}

/// The log lines of what the drivers made of a disk: one per partition, or
/// one for the whole disk when the partition driver declined it.
fn log_volumes(disk: HandleId) {
    let lines: Vec<String> = STATE.with(|s| {
        let file_system = |handle: &HandleId| {
            s.volumes
                .get(handle)
                .map_or("no FAT file system", |&(_, fat_type)| {
                    fat_type_name(fat_type)
                })
        };
        match s.partitioned.get(&disk) {
            None => alloc::vec![format!("  whole disk: {}", file_system(&disk))],
            Some(children) => children
                .iter()
                .filter_map(|child| {
                    let c = s.children.get(child)?;
                    Some(format!(
                        "  partition {}: {}, {}, {}",
                        c.number,
                        c.description,
                        file_system(child),
                        human_size(c.bytes)
                    ))
                })
                .collect(),
        }
    });
    for line in lines {
        log::info!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::{Cell, RefCell};
    use std::process::Command;
    use std::vec;

    use crate::partition::{GptPartition, MbrPartition};

    /// A MemDisk that records its transfers and can be made read-only or failing.
    struct TestDisk {
        inner: MemDisk<'static>,
        read_only: bool,
        failing: Cell<bool>,
        reads: RefCell<Vec<(u64, usize)>>,
        quiesced: Cell<bool>,
    }

    impl BlockDevice for TestDisk {
        fn block_size(&self) -> u32 {
            self.inner.block_size()
        }
        fn num_blocks(&self) -> u64 {
            self.inner.num_blocks()
        }
        fn read_only(&self) -> bool {
            self.read_only
        }
        fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
            if self.failing.get() {
                return Err(BlockError::Device(1));
            }
            self.reads.borrow_mut().push((lba, buf.len()));
            self.inner.read_blocks(lba, buf)
        }
        fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
            if self.read_only {
                return Err(BlockError::ReadOnly);
            }
            self.inner.write_blocks(lba, buf)
        }
        fn flush(&self) -> Result<(), BlockError> {
            Ok(())
        }
    }

    impl Disk for TestDisk {
        fn quiesce(&self) {
            self.quiesced.set(true);
        }
    }

    /// Deterministic contents that differ from block to block.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 509) as u8).collect()
    }

    fn disk_from(image: Vec<u8>, block_size: u32, read_only: bool) -> Rc<TestDisk> {
        Rc::new(TestDisk {
            inner: MemDisk::new(image.leak(), block_size),
            read_only,
            failing: Cell::new(false),
            reads: RefCell::new(Vec::new()),
            quiesced: Cell::new(false),
        })
    }

    fn test_disk(blocks: usize) -> Rc<TestDisk> {
        disk_from(pattern(blocks * 512), 512, false)
    }

    fn contents(disk: &TestDisk) -> Vec<u8> {
        let mut all = vec![0u8; disk.num_blocks() as usize * 512];
        disk.inner.read_blocks(0, &mut all).unwrap();
        all
    }

    fn block_io_table<'a>(
        protocol: *mut BlockIoProtocol,
    ) -> (&'a BlockIoProtocol, &'a BlockIoMedia) {
        // SAFETY: `protocol` comes from `new_block_io`, is never freed, and
        // its media pointer points into the same allocation.
        unsafe { (&*protocol, &*(*protocol).media) }
    }

    fn disk_io_table<'a>(protocol: *mut DiskIoProtocol) -> &'a DiskIoProtocol {
        // SAFETY: `protocol` comes from `new_disk_io` and is never freed.
        unsafe { &*protocol }
    }

    #[test]
    fn block_io_reports_media_and_transfers_blocks() {
        let disk = test_disk(64);
        let protocol = new_block_io(disk.clone(), false);
        let (table, media) = block_io_table(protocol);
        assert_eq!(table.revision, BlockIoProtocol::REVISION_3);
        assert_eq!(media.media_id, MEDIA_ID);
        assert!(media.media_present.is_true() && media.removable_media.is_false());
        assert!(media.logical_partition.is_false() && media.read_only.is_false());
        assert_eq!((media.block_size, media.last_block), (512, 63));
        assert_eq!(media.logical_blocks_per_physical_block, 1);

        let mut buf = vec![0u8; 1024];
        // SAFETY: our own instance, called with live locals of the sizes passed, as a caller would.
        let status = unsafe { (table.read_blocks)(protocol, 0, 2, 1024, buf.as_mut_ptr().cast()) };
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(buf, pattern(64 * 512)[1024..2048]);

        let data = vec![0x5Au8; 512];
        // SAFETY: our own instance, called with live locals of the sizes passed, as a caller would.
        let status = unsafe { (table.write_blocks)(protocol, 0, 63, 512, data.as_ptr().cast()) };
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(contents(&disk)[63 * 512..], data[..]);
        // SAFETY: our own instance, called with live locals of the sizes passed, as a caller would.
        assert_eq!(unsafe { (table.flush_blocks)(protocol) }, Status::SUCCESS);
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.reset)(protocol, Boolean::TRUE) },
            Status::SUCCESS
        );
    }

    #[test]
    fn block_io_rejects_bad_requests() {
        let disk = test_disk(64);
        let protocol = new_block_io(disk.clone(), false);
        let (table, _) = block_io_table(protocol);
        let mut buf = vec![0u8; 2048];
        let ptr: *mut c_void = buf.as_mut_ptr().cast();
        let read = |media_id, lba, size, buffer| {
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_blocks)(protocol, media_id, lba, size, buffer) }
        };
        assert_eq!(read(1, 0, 512, ptr), Status::MEDIA_CHANGED);
        assert_eq!(read(0, 0, 100, ptr), Status::BAD_BUFFER_SIZE);
        assert_eq!(read(0, 0, 513, ptr), Status::BAD_BUFFER_SIZE);
        assert_eq!(read(0, 64, 512, ptr), Status::INVALID_PARAMETER);
        assert_eq!(read(0, 63, 1024, ptr), Status::INVALID_PARAMETER);
        assert_eq!(read(0, u64::MAX, 512, ptr), Status::INVALID_PARAMETER);
        assert_eq!(
            read(0, 0, 512, core::ptr::null_mut()),
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            read(0, 999, 0, core::ptr::null_mut()),
            Status::SUCCESS,
            "empty request"
        );
        assert_eq!(read(0, 63, 512, ptr), Status::SUCCESS);
        // Nothing but the one valid read reached the device.
        assert_eq!(*disk.reads.borrow(), [(63, 512)]);

        let null: *mut BlockIoProtocol = core::ptr::null_mut();
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_blocks)(null, 0, 0, 512, ptr) },
            Status::INVALID_PARAMETER
        );
        let mut impostor = [0u64; 16];
        let impostor: *mut BlockIoProtocol = impostor.as_mut_ptr().cast();
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_blocks)(impostor, 0, 0, 512, ptr) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.flush_blocks)(impostor) },
            Status::INVALID_PARAMETER
        );

        disk.failing.set(true);
        assert_eq!(read(0, 0, 512, ptr), Status::DEVICE_ERROR);
    }

    #[test]
    fn block_io_honours_read_only_media() {
        let disk = disk_from(pattern(8 * 512), 512, true);
        let protocol = new_block_io(disk.clone(), false);
        let (table, media) = block_io_table(protocol);
        assert!(media.read_only.is_true());
        let data = vec![0u8; 512];
        // SAFETY: our own instance, called with live locals of the sizes passed, as a caller would.
        let status = unsafe { (table.write_blocks)(protocol, 0, 0, 512, data.as_ptr().cast()) };
        assert_eq!(status, Status::WRITE_PROTECTED);
        assert_eq!(contents(&disk), pattern(8 * 512));
    }

    #[test]
    fn partition_block_io_is_a_logical_partition() {
        let parent: Rc<dyn BlockDevice> = test_disk(64);
        let view = PartitionDevice::new(parent, 10, 20).unwrap();
        let protocol = new_block_io(Rc::new(view), true);
        let (table, media) = block_io_table(protocol);
        assert!(media.logical_partition.is_true());
        assert_eq!(media.last_block, 19);
        assert_eq!(media.logical_blocks_per_physical_block, 0);
        let mut buf = vec![0u8; 512];
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_blocks)(protocol, 0, 19, 512, buf.as_mut_ptr().cast()) },
            Status::SUCCESS
        );
        assert_eq!(buf, pattern(64 * 512)[29 * 512..30 * 512]);
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_blocks)(protocol, 0, 20, 512, buf.as_mut_ptr().cast()) },
            Status::INVALID_PARAMETER
        );
    }

    #[test]
    fn partition_device_maps_and_bounds_requests() {
        let disk = test_disk(64);
        let parent: Rc<dyn BlockDevice> = disk.clone();
        let out_of_range =
            |start, blocks| PartitionDevice::new(parent.clone(), start, blocks).err();
        assert_eq!(
            out_of_range(60, 5),
            Some(StorageError::PartitionOutOfRange {
                start: 60,
                blocks: 5,
                parent_blocks: 64
            })
        );
        assert!(out_of_range(10, 0).is_some(), "empty partition");
        assert!(out_of_range(u64::MAX, 2).is_some(), "overflowing end");
        assert!(out_of_range(60, 4).is_none());

        let view = PartitionDevice::new(parent.clone(), 10, 20).unwrap();
        assert_eq!(
            (view.num_blocks(), view.block_size(), view.start()),
            (20, 512, 10)
        );
        let mut buf = vec![0u8; 1024];
        view.read_blocks(0, &mut buf).unwrap();
        assert_eq!(buf, pattern(64 * 512)[10 * 512..12 * 512]);
        assert_eq!(
            view.read_blocks(19, &mut buf),
            Err(BlockError::OutOfRange { lba: 19, blocks: 2 })
        );
        assert_eq!(
            view.write_blocks(20, &buf[..512]),
            Err(BlockError::OutOfRange { lba: 20, blocks: 1 })
        );
        view.write_blocks(5, &[0xEE; 512]).unwrap();
        let all = contents(&disk);
        assert!(all[15 * 512..16 * 512].iter().all(|&b| b == 0xEE));
        assert_eq!(
            all[14 * 512..15 * 512],
            pattern(64 * 512)[14 * 512..15 * 512]
        );
    }

    #[test]
    fn disk_io_reads_unaligned_ranges() {
        let disk = test_disk(32);
        let expected = pattern(32 * 512);
        let mut buf = vec![0u8; 5220];
        read_disk(&*disk, 700, &mut buf).unwrap();
        assert_eq!(buf, expected[700..700 + 5220]);
        // Head and tail through the bounce buffer, the middle in one request.
        assert_eq!(*disk.reads.borrow(), [(1, 512), (2, 9 * 512), (11, 512)]);

        disk.reads.borrow_mut().clear();
        let mut small = [0u8; 20];
        read_disk(&*disk, 10, &mut small).unwrap();
        assert_eq!(small, expected[10..30]);
        let mut aligned = vec![0u8; 1024];
        read_disk(&*disk, 1024, &mut aligned).unwrap();
        assert_eq!(aligned, expected[1024..2048]);
        let mut last = [0u8; 3];
        read_disk(&*disk, 32 * 512 - 3, &mut last).unwrap();
        assert_eq!(last, expected[32 * 512 - 3..]);
        assert_eq!(*disk.reads.borrow(), [(0, 512), (2, 1024), (31, 512)]);

        let mut one = [0u8; 1];
        assert_eq!(
            read_disk(&*disk, 32 * 512, &mut one),
            Err(BlockError::OutOfRange { lba: 32, blocks: 1 })
        );
        assert!(read_disk(&*disk, u64::MAX, &mut one).is_err());
        assert_eq!(read_disk(&*disk, 32 * 512, &mut []), Ok(()));
    }

    #[test]
    fn disk_io_writes_unaligned_ranges() {
        let disk = test_disk(32);
        let mut expected = pattern(32 * 512);
        let data: Vec<u8> = (0..2000).map(|i| (i % 251) as u8 ^ 0xFF).collect();
        write_disk(&*disk, 1000, &data).unwrap();
        expected[1000..3000].copy_from_slice(&data);
        assert_eq!(contents(&disk), expected);

        write_disk(&*disk, 5, &[1, 2, 3]).unwrap();
        expected[5..8].copy_from_slice(&[1, 2, 3]);
        write_disk(&*disk, 4096, &[9; 1024]).unwrap();
        expected[4096..5120].fill(9);
        assert_eq!(contents(&disk), expected);

        assert_eq!(
            write_disk(&*disk, 32 * 512 - 1, &[0, 0]),
            Err(BlockError::OutOfRange { lba: 31, blocks: 1 })
        );
        assert_eq!(contents(&disk), expected, "a refused write changes nothing");
    }

    #[test]
    fn disk_io_protocol_checks_parameters() {
        let disk = test_disk(8);
        let protocol = new_disk_io(disk.clone());
        let table = disk_io_table(protocol);
        let mut buf = vec![0u8; 100];
        let ptr: *mut c_void = buf.as_mut_ptr().cast();
        assert_eq!(table.revision, DiskIoProtocol::REVISION);
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_disk)(protocol, 0, 3, 100, ptr) },
            Status::SUCCESS
        );
        assert_eq!(buf, pattern(8 * 512)[3..103]);
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_disk)(protocol, 7, 3, 100, ptr) },
            Status::MEDIA_CHANGED
        );
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_disk)(protocol, 0, 4000, 100, ptr) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_disk)(protocol, 0, 0, 100, core::ptr::null_mut()) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.write_disk)(protocol, 0, 510, 100, ptr) },
            Status::SUCCESS
        );
        assert_eq!(contents(&disk)[510..610], pattern(8 * 512)[3..103]);

        let read_only = new_disk_io(disk_from(pattern(8 * 512), 512, true));
        let table = disk_io_table(read_only);
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.write_disk)(read_only, 0, 0, 100, ptr) },
            Status::WRITE_PROTECTED
        );
    }

    fn guid(text: &str) -> Guid {
        Guid::try_parse(text).unwrap()
    }

    #[test]
    fn partition_info_carries_the_table_entry() {
        let unique = guid("01234567-89AB-CDEF-0123-456789ABCDEF");
        let esp = Partition {
            number: 1,
            start_lba: 2048,
            end_lba: 4095,
            kind: PartitionKind::Gpt(GptPartition {
                type_guid: ESP_TYPE_GUID,
                unique_guid: unique,
                attributes: 1,
                name: String::from("EFI"),
            }),
        };
        assert_eq!(ESP_TYPE_GUID, guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"));
        let info = partition_info(&esp, None);
        assert_eq!(
            (info.revision, info.partition_type, info.system),
            (0x1000, 2, 1)
        );
        assert_eq!(info.record[0..16], ESP_TYPE_GUID.to_bytes());
        assert_eq!(info.record[16..32], unique.to_bytes());
        assert_eq!(info.record[32..40], 2048u64.to_le_bytes());
        assert_eq!(info.record[40..48], 4095u64.to_le_bytes());
        assert_eq!(info.record[48..56], 1u64.to_le_bytes());
        assert_eq!(info.record[56..64], [b'E', 0, b'F', 0, b'I', 0, 0, 0]);

        let mut sector = vec![0u8; 512];
        let raw = [0x80, 1, 2, 3, 0x83, 4, 5, 6, 0, 8, 0, 0, 0, 0x10, 0, 0];
        sector[446 + 16..446 + 32].copy_from_slice(&raw);
        let mbr = |number, logical| Partition {
            number,
            start_lba: 0x800,
            end_lba: 0x17FF,
            kind: PartitionKind::Mbr(MbrPartition {
                os_type: 0x83,
                disk_signature: 0x1234_5678,
                bootable: true,
                logical,
            }),
        };
        let primary = partition_info(&mbr(2, false), Some(&sector));
        assert_eq!((primary.partition_type, primary.system), (1, 0));
        assert_eq!(primary.record[..16], raw);
        assert!(primary.record[16..].iter().all(|&b| b == 0));
        let logical = partition_info(&mbr(5, true), Some(&sector));
        assert_eq!(
            logical.record[..16],
            [
                0x80, 0xFE, 0xFF, 0xFF, 0x83, 0xFE, 0xFF, 0xFF, 0, 8, 0, 0, 0, 0x10, 0, 0
            ]
        );
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(100), "100 bytes");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(512 << 20), "512 MiB");
        assert_eq!(human_size(7 << 29), "3.5 GiB");
    }

    fn run(program: &str, args: &[&str]) {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
    }

    fn path_text(handle: HandleId) -> String {
        let path = efi::protocol_services::get_protocol::<DevicePathProtocol>(
            handle,
            &DevicePathProtocol::GUID,
        )
        .expect("device path");
        // SAFETY: installed device paths are well formed.
        crate::device_path::to_text(&unsafe { efi::device_path::read_path(path) }.unwrap())
    }

    fn has(handle: HandleId, guid: &Guid) -> bool {
        efi::protocol_services::get_protocol::<c_void>(handle, guid).is_some()
    }

    fn db<R>(f: impl FnOnce(&mut efi::handles::HandleDb) -> R) -> R {
        efi::protocol_services::DB.with(f)
    }

    fn controller_name(driver: HandleId, controller: HandleId, child: Option<HandleId>) -> String {
        let names = efi::protocol_services::get_protocol::<
            uefi_raw::protocol::driver::ComponentName2Protocol,
        >(
            driver,
            &uefi_raw::protocol::driver::ComponentName2Protocol::GUID,
        )
        .unwrap();
        let mut out: *const u16 = core::ptr::null();
        let child = child.map_or(core::ptr::null_mut(), |c| c as uefi_raw::Handle);
        // SAFETY: the driver's own ComponentName2, called as a caller would.
        let status = unsafe {
            ((*names).get_controller_name)(
                names,
                controller as uefi_raw::Handle,
                child,
                c"en".as_ptr().cast(),
                &mut out,
            )
        };
        assert_eq!(status, uefi_raw::Status::SUCCESS);
        // SAFETY: the name GetControllerName returned is NUL-terminated.
        String::from_utf16(&unsafe { efi::boundary::ucs2(out, 100) }.unwrap()).unwrap()
    }

    /// The driver model over the disks `add_disk` published: who manages
    /// what, the names, and Disconnect/ConnectController round trips.
    fn driver_relationships(disk: HandleId, esp: HandleId, linux: HandleId, floppy: HandleId) {
        let partition_driver = registered_driver(&PARTITION_DRIVER);
        let fat_driver = registered_driver(&FAT_DRIVER);
        assert_eq!(
            db(|db| db.managing_drivers(disk)),
            Ok(vec![partition_driver])
        );
        assert_eq!(db(|db| db.children(disk, None)), vec![esp, linux]);
        assert_eq!(db(|db| db.managing_drivers(esp)), Ok(vec![fat_driver]));
        assert_eq!(db(|db| db.managing_drivers(linux)), Ok(vec![]));
        assert_eq!(db(|db| db.managing_drivers(floppy)), Ok(vec![fat_driver]));
        assert_eq!(
            controller_name(partition_driver, disk, None),
            "Disk 00:04.0"
        );
        assert_eq!(
            controller_name(partition_driver, disk, Some(esp)),
            "Partition 1: ESP"
        );
        assert_eq!(controller_name(fat_driver, esp, None), "FAT12 file system");

        // An open file keeps the ESP's volume, and with it the partition.
        let sfs = efi::protocol_services::get_protocol::<SimpleFileSystemProtocol>(
            esp,
            &SimpleFileSystemProtocol::GUID,
        )
        .unwrap();
        let mut root: *mut uefi_raw::protocol::file_system::FileProtocolV1 = core::ptr::null_mut();
        // SAFETY: our SimpleFileSystem, called as a caller would.
        let status = unsafe { ((*sfs).open_volume)(sfs, &mut root) };
        assert_eq!(status, Status::SUCCESS);
        let connect = |h| efi::protocol_services::connect(h, &[], true);
        let disconnect = |h| efi::protocol_services::disconnect(h, None, None);
        assert_eq!(disconnect(disk), Status::DEVICE_ERROR);
        assert!(has(esp, &SimpleFileSystemProtocol::GUID));
        assert_eq!(
            db(|db| db.children(disk, None)),
            vec![esp],
            "the other one went"
        );
        // SAFETY: the root handle OpenVolume returned.
        assert_eq!(unsafe { ((*root).close)(root) }, Status::SUCCESS);

        // Nothing open: everything goes, and connecting brings it back.
        assert_eq!(disconnect(disk), Status::SUCCESS);
        assert!(!db(|db| db.is_handle(esp)));
        assert_eq!(db(|db| db.managing_drivers(disk)), Ok(vec![]));
        assert!(efi::protocol_services::handles_with(&PARTITION_INFO_GUID).is_empty());
        let mut stale: *mut uefi_raw::protocol::file_system::FileProtocolV1 = core::ptr::null_mut();
        // SAFETY: a stale pointer stays allocated and answers, retired.
        let status = unsafe { ((*sfs).open_volume)(sfs, &mut stale) };
        assert_eq!(status, Status::INVALID_PARAMETER);
        assert_eq!(connect(disk), Status::SUCCESS);
        let children = db(|db| db.children(disk, None));
        assert_eq!(children.len(), 2);
        let texts: Vec<String> = children.iter().map(|&h| path_text(h)).collect();
        assert!(texts[0].ends_with("HD(1,GPT,01234567-89AB-CDEF-0123-456789ABCDEF,0x800,0x2000)"));
        assert!(has(children[0], &SimpleFileSystemProtocol::GUID));
        assert_eq!(connect(disk), Status::SUCCESS, "already connected");
        assert_eq!(db(|db| db.children(disk, None)), children);

        // One child alone: the disk stays connected; connecting it again
        // brings the partition back (the partition driver scans again).
        let partition_driver_handle = Some(partition_driver);
        assert_eq!(
            efi::protocol_services::disconnect(disk, partition_driver_handle, Some(children[1])),
            Status::SUCCESS
        );
        assert_eq!(db(|db| db.children(disk, None)), [children[0]]);
        assert_eq!(
            db(|db| db.managing_drivers(disk)),
            Ok(vec![partition_driver])
        );
        assert_eq!(connect(disk), Status::SUCCESS);
        let again = db(|db| db.children(disk, None));
        assert_eq!(again.len(), 2);
        assert_eq!(again[0], children[0]);
        assert!(path_text(again[1]).contains("HD(2,GPT,"));

        // The FAT driver alone, from the whole-disk volume.
        assert_eq!(
            efi::protocol_services::disconnect(floppy, Some(fat_driver), None),
            Status::SUCCESS
        );
        assert!(!has(floppy, &SimpleFileSystemProtocol::GUID));
        assert_eq!(connect(floppy), Status::SUCCESS);
        assert!(has(floppy, &SimpleFileSystemProtocol::GUID));
        assert_eq!(db(|db| db.managing_drivers(floppy)), Ok(vec![fat_driver]));
    }

    /// The one test that uses the (global) handle database, so parallel
    /// tests never contend for it.
    #[test]
    fn add_disk_publishes_partitions_and_file_systems() {
        use crate::partition::test_util::{image, require_tool};
        require_tool("sgdisk");
        require_tool("mkfs.fat");
        let path = image("storage-gpt", 8 << 20);
        let path_text_arg = path.to_str().unwrap();
        run(
            "sgdisk",
            &[
                "-n",
                "1:2048:+4M",
                "-t",
                "1:ef00",
                "-u",
                "1:01234567-89AB-CDEF-0123-456789ABCDEF",
                "-n",
                "2:0:0",
                "-t",
                "2:8300",
                path_text_arg,
            ],
        );
        run(
            "mkfs.fat",
            &["-F", "12", "--offset", "2048", path_text_arg, "4096"],
        );
        let disk = disk_from(std::fs::read(&path).unwrap(), 512, false);
        let handle = add_disk(disk.clone(), Bdf::new(0, 4, 0)).unwrap();
        assert_eq!(path_text(handle), "PciRoot(0x0)/Pci(0x4,0x0)");
        assert!(has(handle, &BlockIoProtocol::GUID) && has(handle, &DiskIoProtocol::GUID));
        assert!(!has(handle, &SimpleFileSystemProtocol::GUID));

        let children: Vec<HandleId> = efi::protocol_services::handles_with(&PARTITION_INFO_GUID);
        let texts: Vec<String> = children.iter().map(|&h| path_text(h)).collect();
        assert_eq!(children.len(), 2, "{texts:?}");
        let esp = children[texts.iter().position(|t| t.contains("HD(1,")).unwrap()];
        let linux = children[texts.iter().position(|t| t.contains("HD(2,")).unwrap()];
        assert_eq!(
            path_text(esp),
            "PciRoot(0x0)/Pci(0x4,0x0)/HD(1,GPT,01234567-89AB-CDEF-0123-456789ABCDEF,0x800,0x2000)"
        );
        assert!(has(esp, &SimpleFileSystemProtocol::GUID));
        assert!(!has(linux, &SimpleFileSystemProtocol::GUID));
        let info = efi::protocol_services::get_protocol::<PartitionInfo>(esp, &PARTITION_INFO_GUID)
            .unwrap();
        // SAFETY: installed by `add_partition` from a leaked Box.
        let info = unsafe { *info };
        assert_eq!((info.partition_type, info.system), (PARTITION_TYPE_GPT, 1));
        let esp_io =
            efi::protocol_services::get_protocol::<BlockIoProtocol>(esp, &BlockIoProtocol::GUID)
                .unwrap();
        let (table, media) = block_io_table(esp_io);
        assert!(media.logical_partition.is_true());
        assert_eq!(media.last_block, 0x1FFF);
        // LBA 0 of the partition is the FAT boot sector at disk LBA 2048.
        let mut boot = vec![0u8; 512];
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_blocks)(esp_io, 0, 0, 512, boot.as_mut_ptr().cast()) },
            Status::SUCCESS
        );
        assert_eq!(boot[510..], [0x55, 0xAA]);
        assert_eq!(boot, contents(&disk)[2048 * 512..2049 * 512]);

        // A disk without a partition table carrying FAT from LBA 0.
        let floppy = image("storage-floppy", 2 << 20);
        run("mkfs.fat", &["-F", "12", floppy.to_str().unwrap()]);
        let floppy_disk = disk_from(std::fs::read(&floppy).unwrap(), 512, false);
        let floppy_handle = add_disk(floppy_disk.clone(), Bdf::new(0, 5, 0)).unwrap();
        assert!(has(floppy_handle, &SimpleFileSystemProtocol::GUID));
        assert_eq!(
            efi::protocol_services::handles_with(&PARTITION_INFO_GUID).len(),
            2
        );

        // An empty disk is refused without a panic.
        assert_eq!(
            add_disk(disk_from(Vec::new(), 512, false), Bdf::new(0, 6, 0)),
            Err(Status::NO_MEDIA)
        );

        driver_relationships(handle, esp, linux, floppy_handle);

        quiesce_all();
        assert!(disk.quiesced.get() && floppy_disk.quiesced.get());
    }
}
