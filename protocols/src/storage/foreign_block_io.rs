//! Another driver's EFI_BLOCK_IO_PROTOCOL (UEFI 2.10 §13.9) seen as a
//! [`BlockDevice`], so the storage drivers bind any Block I/O in the handle
//! database: a RAM disk an application installs, a SAN driver's LUN, a
//! loaded driver's disk. The firmware's own disks never come through here;
//! the drivers reach their devices directly.
//!
//! The media is read once, when the Disk I/O driver binds: MediaId, block
//! size, last block, read-only. A media change after that makes the device's
//! calls fail with EFI_MEDIA_CHANGED, which is what the callers above see.

use efi::ids::Interface;
use platform::block::{BlockDevice, BlockError};
use uefi_raw::Status;
use uefi_raw::protocol::block::{BlockIoMedia, BlockIoProtocol};

pub struct ForeignBlockIo {
    interface: Interface,
    media_id: u32,
    block_size: u32,
    blocks: u64,
    read_only: bool,
}

/// Why another driver's Block I/O cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForeignError {
    /// A null or misaligned interface or Media pointer.
    BadPointer,
    NoMedia,
    /// Not a power of two of at least 512 bytes, or 64 KiB at most.
    BadBlockSize(u32),
    /// A logical partition: the partition driver's children are not disks.
    LogicalPartition,
}

impl ForeignBlockIo {
    /// Reads the media of `interface`.
    ///
    /// # Safety
    /// `interface` is an EFI_BLOCK_IO_PROTOCOL installed in the handle
    /// database, and stays installed (its driver holds it, and the caller
    /// keeps it open BY_DRIVER) for as long as the returned device is used.
    pub unsafe fn new(interface: *mut BlockIoProtocol) -> Result<Self, ForeignError> {
        // SAFETY: this function's contract.
        let media = unsafe { media(interface) }?;
        if !bool::from(media.media_present) {
            return Err(ForeignError::NoMedia);
        }
        if bool::from(media.logical_partition) {
            return Err(ForeignError::LogicalPartition);
        }
        let block_size = media.block_size;
        if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
            return Err(ForeignError::BadBlockSize(block_size));
        }
        Ok(ForeignBlockIo {
            interface: Interface::from_ptr(interface.cast::<core::ffi::c_void>()),
            media_id: media.media_id,
            block_size,
            blocks: media.last_block.saturating_add(1),
            read_only: media.read_only.into(),
        })
    }

    /// The MediaId Disk I/O callers pass (§13.7).
    pub fn media_id(&self) -> u32 {
        self.media_id
    }

    fn protocol(&self) -> *mut BlockIoProtocol {
        self.interface.as_exposed_ptr()
    }

    fn check(status: Status) -> Result<(), BlockError> {
        match status {
            Status::SUCCESS => Ok(()),
            Status::WRITE_PROTECTED => Err(BlockError::ReadOnly),
            // The low bits of the status name it in the log (§Appendix D).
            status => Err(BlockError::Device(status.0 as u8)),
        }
    }
}

/// A copy of the Media of `interface`.
///
/// # Safety
/// `interface` is null or an installed EFI_BLOCK_IO_PROTOCOL.
pub unsafe fn media(interface: *mut BlockIoProtocol) -> Result<BlockIoMedia, ForeignError> {
    if interface.is_null() || !interface.is_aligned() {
        return Err(ForeignError::BadPointer);
    }
    // SAFETY: an installed interface, as this function's contract says: its
    // table is readable.
    let media = unsafe { (*interface).media };
    if media.is_null() || !media.is_aligned() {
        return Err(ForeignError::BadPointer);
    }
    // SAFETY: the Media its producer points to (§13.9.1), read once by value.
    Ok(unsafe { media.read() })
}

impl BlockDevice for ForeignBlockIo {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn num_blocks(&self) -> u64 {
        self.blocks
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let protocol = self.protocol();
        // SAFETY: `new`'s contract keeps the interface installed; the buffer
        // is ours, `buf.len()` bytes, whole blocks inside the media.
        let status = unsafe {
            ((*protocol).read_blocks)(
                protocol,
                self.media_id,
                lba,
                buf.len(),
                buf.as_mut_ptr().cast(),
            )
        };
        Self::check(status)
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        if buf.is_empty() {
            return Ok(());
        }
        let protocol = self.protocol();
        // SAFETY: as in `read_blocks`; WriteBlocks only reads the buffer.
        let status = unsafe {
            ((*protocol).write_blocks)(
                protocol,
                self.media_id,
                lba,
                buf.len(),
                buf.as_ptr().cast_mut().cast(),
            )
        };
        Self::check(status)
    }

    fn flush(&self) -> Result<(), BlockError> {
        let protocol = self.protocol();
        // SAFETY: as in `read_blocks`.
        Self::check(unsafe { ((*protocol).flush_blocks)(protocol) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_disk::*;

    use std::vec;

    /// One of our own Block I/O instances stands in for another driver's:
    /// the adapter only calls the protocol table.
    #[test]
    fn reads_writes_and_refusals_go_through_the_protocol() {
        let disk = test_disk(64);
        let io = crate::storage::new_block_io(disk.clone(), false);
        // SAFETY: a live instance, never freed.
        let device = unsafe { ForeignBlockIo::new(io) }.unwrap();
        assert_eq!((device.block_size(), device.num_blocks()), (512, 64));
        let mut buf = vec![0u8; 1024];
        device.read_blocks(3, &mut buf).unwrap();
        assert_eq!(buf, pattern(64 * 512)[3 * 512..5 * 512]);
        device.write_blocks(10, &[0xAB; 512]).unwrap();
        assert!(
            contents(&disk)[10 * 512..11 * 512]
                .iter()
                .all(|&b| b == 0xAB)
        );
        assert_eq!(
            device.read_blocks(63, &mut buf),
            Err(BlockError::OutOfRange { lba: 63, blocks: 2 })
        );
        device.flush().unwrap();

        let partition = crate::storage::new_block_io(disk.clone(), true);
        // SAFETY: as above.
        let refused = unsafe { ForeignBlockIo::new(partition) }.err();
        assert_eq!(refused, Some(ForeignError::LogicalPartition));
        // SAFETY: a null pointer is refused before it is read.
        let refused = unsafe { ForeignBlockIo::new(core::ptr::null_mut()) }.err();
        assert_eq!(refused, Some(ForeignError::BadPointer));
    }
}
