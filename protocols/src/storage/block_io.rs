//! EFI_BLOCK_IO_PROTOCOL (UEFI 2.10 §13.9) over any [`BlockDevice`].

use alloc::boxed::Box;
use alloc::rc::Rc;
use core::ffi::c_void;

use efi::boundary;
use platform::block::BlockDevice;
use uefi_raw::protocol::block::{BlockIoMedia, BlockIoProtocol, Lba};
use uefi_raw::{Boolean, Status};

use super::{MEDIA_ID, status_of};

const BLOCK_IO_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwBLIO");

#[repr(C)]
pub(super) struct BlockIo {
    protocol: BlockIoProtocol,
    pub(super) media: BlockIoMedia,
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
    // §13.9.3: an empty drive answers NO_MEDIA before anything else.
    if media.media_present.is_false() {
        return Err(Status::NO_MEDIA);
    }
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
/// blocks, unless it is removable and empty). Revision 3: all revision-2
/// media fields plus OptimalTransferLengthGranularity are filled in.
/// RemovableMedia, MediaPresent and ReadOnly are the device's (§13.9: a
/// CD-ROM is removable and read-only, with 2048-byte blocks).
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
            removable_media: device.removable().into(),
            media_present: device.media_present().into(),
            logical_partition: logical_partition.into(),
            read_only: device.read_only().into(),
            write_caching: Boolean::FALSE,
            block_size: device.block_size(),
            // Virtio descriptors take any byte address (§2.7.5); the AHCI
            // driver bounces what its PRD table cannot address.
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
///
/// # Safety
/// `this` is null or readable up to and including where a `BlockIo` keeps
/// its signature: every interface `new_block_io` returned is (never freed).
pub(super) unsafe fn block_io_instance<'a>(
    this: *const BlockIoProtocol,
) -> Result<&'a BlockIo, Status> {
    let instance = this.cast::<BlockIo>();
    if instance.is_null() || !instance.is_aligned() {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: non-null and aligned, and readable through the signature by
    // this function's contract. The signature decides whether it is ours.
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
    // SAFETY: `This` is the interface the caller got from our handle
    // (§13.9), as `block_io_instance` requires.
    boundary::status(unsafe { block_io_instance(this) }.map(|_| ()))
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.9 requires of the caller.
pub(super) unsafe extern "efiapi" fn block_io_read(
    this: *const BlockIoProtocol,
    media_id: u32,
    lba: Lba,
    buffer_size: usize,
    buffer: *mut c_void,
) -> Status {
    let result = (|| {
        // SAFETY: `This` is the interface the caller got from our handle
        // (§13.9), as `block_io_instance` requires.
        let io = unsafe { block_io_instance(this) }?;
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
        // SAFETY: `This` is the interface the caller got from our handle
        // (§13.9), as `block_io_instance` requires.
        let io = unsafe { block_io_instance(this) }?;
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
    // SAFETY: `This` is the interface the caller got from our handle
    // (§13.9), as `block_io_instance` requires.
    let result =
        unsafe { block_io_instance(this) }.and_then(|io| io.device.flush().map_err(status_of));
    boundary::status(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::PartitionDevice;
    use crate::storage::test_disk::*;

    use std::vec;

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

    /// A CD-ROM drive: removable, read-only, 2048-byte blocks, with or
    /// without a medium.
    struct Cdrom {
        inner: platform::block::MemDisk<'static>,
        present: bool,
    }

    impl BlockDevice for Cdrom {
        fn block_size(&self) -> u32 {
            2048
        }
        fn num_blocks(&self) -> u64 {
            if self.present {
                self.inner.num_blocks()
            } else {
                0
            }
        }
        fn read_only(&self) -> bool {
            true
        }
        fn removable(&self) -> bool {
            true
        }
        fn media_present(&self) -> bool {
            self.present
        }
        fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), platform::block::BlockError> {
            self.inner.read_blocks(lba, buf)
        }
        fn write_blocks(&self, _: u64, _: &[u8]) -> Result<(), platform::block::BlockError> {
            Err(platform::block::BlockError::ReadOnly)
        }
        fn flush(&self) -> Result<(), platform::block::BlockError> {
            Ok(())
        }
    }

    #[test]
    fn block_io_of_a_cdrom_is_removable_read_only_media() {
        let cd = |present| {
            let data = pattern(16 * 2048).leak();
            let inner = platform::block::MemDisk::new(data, 2048);
            new_block_io(Rc::new(Cdrom { inner, present }), false)
        };
        let protocol = cd(true);
        let (table, media) = block_io_table(protocol);
        assert!(media.removable_media.is_true() && media.media_present.is_true());
        assert!(media.read_only.is_true());
        assert_eq!((media.block_size, media.last_block), (2048, 15));
        let mut buf = vec![0u8; 2048];
        // SAFETY: our own instance, called with live locals of the sizes passed, as a caller would.
        let status = unsafe { (table.read_blocks)(protocol, 0, 3, 2048, buf.as_mut_ptr().cast()) };
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(buf, pattern(16 * 2048)[3 * 2048..4 * 2048]);
        // SAFETY: as above.
        let status = unsafe { (table.read_blocks)(protocol, 0, 0, 512, buf.as_mut_ptr().cast()) };
        assert_eq!(status, Status::BAD_BUFFER_SIZE);
        // SAFETY: as above.
        let status = unsafe { (table.write_blocks)(protocol, 0, 0, 2048, buf.as_ptr().cast()) };
        assert_eq!(status, Status::WRITE_PROTECTED);

        let empty = cd(false);
        let (table, media) = block_io_table(empty);
        assert!(media.removable_media.is_true() && media.media_present.is_false());
        // SAFETY: as above.
        let status = unsafe { (table.read_blocks)(empty, 0, 0, 2048, buf.as_mut_ptr().cast()) };
        assert_eq!(status, Status::NO_MEDIA);
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
}
