//! EFI_DISK_IO_PROTOCOL (UEFI 2.10 §13.7): byte-addressed reads and writes
//! over any [`BlockDevice`].

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::ffi::c_void;

use efi::boundary;
use platform::block::{BlockDevice, BlockError};
use uefi_raw::Status;
use uefi_raw::protocol::disk::DiskIoProtocol;

use super::{MEDIA_ID, status_of};

const DISK_IO_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwDKIO");

#[repr(C)]
pub(super) struct DiskIo {
    protocol: DiskIoProtocol,
    signature: u64,
    pub(super) device: Rc<dyn BlockDevice>,
    /// The MediaId of the Block I/O beneath (§13.7: callers pass it).
    media_id: u32,
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

/// One block of scratch for a partial edge block, allocated fallibly (the
/// block size is the device's, up to 64 KiB): a heap that cannot give it
/// fails the request, reported as a device error, instead of panicking.
fn bounce_block(block_size: usize) -> Result<Vec<u8>, BlockError> {
    platform::fallible::vec_zeroed(block_size).map_err(|_| BlockError::Device(0))
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
        bounce = bounce_block(bs)?;
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
        if bounce.is_empty() {
            bounce = bounce_block(bs)?;
        }
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
        bounce = bounce_block(bs)?;
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
        if bounce.is_empty() {
            bounce = bounce_block(bs)?;
        }
        device.read_blocks(lba, &mut bounce)?;
        let rest = data.len() - done;
        bounce[..rest].copy_from_slice(&data[done..]);
        device.write_blocks(lba, &bounce)?;
    }
    Ok(())
}

/// Builds an EFI_DISK_IO_PROTOCOL instance over `device`.
pub fn new_disk_io(device: Rc<dyn BlockDevice>) -> *mut DiskIoProtocol {
    new_disk_io_for_media(device, MEDIA_ID)
}

/// As [`new_disk_io`], over a Block I/O whose media is `media_id` (another
/// driver's, `foreign_block_io`).
pub(super) fn new_disk_io_for_media(
    device: Rc<dyn BlockDevice>,
    media_id: u32,
) -> *mut DiskIoProtocol {
    let instance = Box::new(DiskIo {
        protocol: DiskIoProtocol {
            revision: DiskIoProtocol::REVISION,
            read_disk: disk_io_read,
            write_disk: disk_io_write,
        },
        signature: DISK_IO_SIGNATURE,
        device,
        media_id,
    });
    Box::into_raw(instance).cast()
}

/// Validates `This` and, when given, `MediaId` of a Disk I/O call.
///
/// # Safety
/// `this` is null or readable up to and including where a `DiskIo` keeps
/// its signature: every interface `new_disk_io` returned is (never freed).
pub(super) unsafe fn disk_io_instance<'a>(
    this: *const DiskIoProtocol,
    media_id: Option<u32>,
) -> Result<&'a DiskIo, Status> {
    let instance = this.cast::<DiskIo>();
    if instance.is_null() || !instance.is_aligned() {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: non-null and aligned, and readable through the signature by
    // this function's contract. The signature decides whether it is ours.
    let signature = unsafe { (&raw const (*instance).signature).read() };
    if signature != DISK_IO_SIGNATURE {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: the signature marks a `DiskIo` made by `new_disk_io`, never freed.
    let io = unsafe { &*instance };
    if media_id.is_some_and(|id| id != io.media_id) {
        return Err(Status::MEDIA_CHANGED);
    }
    Ok(io)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.7 requires of the caller.
pub(super) unsafe extern "efiapi" fn disk_io_read(
    this: *const DiskIoProtocol,
    media_id: u32,
    offset: u64,
    buffer_size: usize,
    buffer: *mut c_void,
) -> Status {
    let result = (|| {
        // SAFETY: `This` is the interface the caller got from our handle
        // (§13.7), as `disk_io_instance` requires.
        let io = unsafe { disk_io_instance(this, Some(media_id)) }?;
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
        // SAFETY: `This` is the interface the caller got from our handle
        // (§13.7), as `disk_io_instance` requires.
        let io = unsafe { disk_io_instance(this, Some(media_id)) }?;
        // SAFETY: the caller's buffer, as this function's # Safety requires.
        let data = unsafe { boundary::bytes(buffer.cast(), buffer_size) }?;
        write_disk(&*io.device, offset, data).map_err(status_of)
    })();
    boundary::status(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_disk::*;

    use std::vec;

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
}
