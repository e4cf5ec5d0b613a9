//! A partition seen as a block device of its own: the device behind a
//! partition handle's Block I/O and Disk I/O (UEFI 2.10 §13.9, §13.7).

use alloc::rc::Rc;

use platform::block::{BlockDevice, BlockError};

use super::StorageError;

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

    /// A partition of a removable medium is removable too (UEFI 2.10
    /// §13.9: the child reports its parent's media).
    fn removable(&self) -> bool {
        self.parent.removable()
    }

    fn media_present(&self) -> bool {
        self.parent.media_present()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_disk::*;

    use std::vec;

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
}
