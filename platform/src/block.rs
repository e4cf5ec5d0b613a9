//! The block-device abstraction every storage layer talks through: virtio-blk
//! implements it, the partition and FAT code consume it, and host tests back
//! it with an image file.
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::rc::Rc;
use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The request reaches past the end of the device.
    OutOfRange { lba: u64, blocks: u64 },
    /// The buffer is not a whole number of blocks.
    BadBufferSize(usize),
    /// Write to a read-only device.
    ReadOnly,
    /// The device reported an error (virtio-blk status byte or similar).
    Device(u8),
    /// The device reported a wider status (NVMe: status code type << 8 |
    /// status code).
    DeviceStatus(u16),
    /// The device stopped answering.
    Timeout,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::OutOfRange { lba, blocks } => {
                write!(
                    f,
                    "{blocks} blocks at LBA {lba} lie past the end of the device"
                )
            }
            BlockError::BadBufferSize(len) => {
                write!(f, "buffer of {len} bytes is not whole blocks")
            }
            BlockError::ReadOnly => write!(f, "device is read-only"),
            BlockError::Device(status) => write!(f, "device error status {status}"),
            BlockError::DeviceStatus(status) => write!(f, "device error status {status:#06x}"),
            BlockError::Timeout => write!(f, "device timed out"),
        }
    }
}

/// A random-access block device. Methods take `&self`: drivers keep their
/// mutable state behind interior mutability so partitions and file systems can
/// share one device.
pub trait BlockDevice {
    /// Bytes per logical block (512 or 4096).
    fn block_size(&self) -> u32;
    /// Number of logical blocks.
    fn num_blocks(&self) -> u64;
    fn read_only(&self) -> bool;
    /// Reads `buf.len() / block_size()` whole blocks starting at `lba`.
    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError>;
    /// Writes `buf.len() / block_size()` whole blocks starting at `lba`.
    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError>;
    fn flush(&self) -> Result<(), BlockError>;
    /// Whether the medium can be taken out (CD-ROMs; UEFI 2.10 §13.9
    /// RemovableMedia).
    fn removable(&self) -> bool {
        false
    }
    /// Whether a medium is in the drive (§13.9 MediaPresent); only
    /// removable devices can lack one.
    fn media_present(&self) -> bool {
        true
    }

    /// Checks a request against the device geometry; returns the block count.
    fn check_request(&self, lba: u64, len: usize) -> Result<u64, BlockError> {
        let block_size = self.block_size() as usize;
        if block_size == 0 || !len.is_multiple_of(block_size) {
            return Err(BlockError::BadBufferSize(len));
        }
        let blocks = (len / block_size) as u64;
        match lba.checked_add(blocks) {
            Some(end) if end <= self.num_blocks() => Ok(blocks),
            _ => Err(BlockError::OutOfRange { lba, blocks }),
        }
    }
}

/// Shared and boxed devices are devices too, so owners (the FAT driver) can
/// take one by value while partitions share the disk underneath.
macro_rules! forward_block_device {
    ($($wrapper:ident),*) => {$(
        impl<T: BlockDevice + ?Sized> BlockDevice for $wrapper<T> {
            fn block_size(&self) -> u32 {
                (**self).block_size()
            }
            fn num_blocks(&self) -> u64 {
                (**self).num_blocks()
            }
            fn read_only(&self) -> bool {
                (**self).read_only()
            }
            fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
                (**self).read_blocks(lba, buf)
            }
            fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
                (**self).write_blocks(lba, buf)
            }
            fn flush(&self) -> Result<(), BlockError> {
                (**self).flush()
            }
            fn removable(&self) -> bool {
                (**self).removable()
            }
            fn media_present(&self) -> bool {
                (**self).media_present()
            }
        }
    )*};
}

forward_block_device!(Box, Rc);

/// A byte-slice-backed device, for tests and for in-memory images.
pub struct MemDisk<'a> {
    data: core::cell::RefCell<&'a mut [u8]>,
    block_size: u32,
}

impl<'a> MemDisk<'a> {
    pub fn new(data: &'a mut [u8], block_size: u32) -> Self {
        MemDisk {
            data: core::cell::RefCell::new(data),
            block_size,
        }
    }
}

impl BlockDevice for MemDisk<'_> {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn num_blocks(&self) -> u64 {
        (self.data.borrow().len() / self.block_size as usize) as u64
    }

    fn read_only(&self) -> bool {
        false
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let start = lba as usize * self.block_size as usize;
        buf.copy_from_slice(&self.data.borrow()[start..start + buf.len()]);
        Ok(())
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let start = lba as usize * self.block_size as usize;
        self.data.borrow_mut()[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&self) -> Result<(), BlockError> {
        Ok(())
    }
}
