//! The recording test disk the storage tests share.

use alloc::rc::Rc;
use alloc::vec::Vec;

use platform::block::{BlockDevice, BlockError, MemDisk};
use uefi_raw::protocol::block::{BlockIoMedia, BlockIoProtocol};
use uefi_raw::protocol::disk::DiskIoProtocol;

use core::cell::{Cell, RefCell};

use super::Disk;
use std::vec;

/// A MemDisk that records its transfers and can be made read-only or failing.
pub(super) struct TestDisk {
    pub(super) inner: MemDisk<'static>,
    pub(super) read_only: bool,
    pub(super) failing: Cell<bool>,
    pub(super) reads: RefCell<Vec<(u64, usize)>>,
    pub(super) quiesced: Cell<bool>,
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
pub(super) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 509) as u8).collect()
}

pub(super) fn disk_from(image: Vec<u8>, block_size: u32, read_only: bool) -> Rc<TestDisk> {
    Rc::new(TestDisk {
        inner: MemDisk::new(image.leak(), block_size),
        read_only,
        failing: Cell::new(false),
        reads: RefCell::new(Vec::new()),
        quiesced: Cell::new(false),
    })
}

pub(super) fn test_disk(blocks: usize) -> Rc<TestDisk> {
    disk_from(pattern(blocks * 512), 512, false)
}

pub(super) fn contents(disk: &TestDisk) -> Vec<u8> {
    let mut all = vec![0u8; disk.num_blocks() as usize * 512];
    disk.inner.read_blocks(0, &mut all).unwrap();
    all
}

pub(super) fn block_io_table<'a>(
    protocol: *mut BlockIoProtocol,
) -> (&'a BlockIoProtocol, &'a BlockIoMedia) {
    // SAFETY: `protocol` comes from `new_block_io`, is never freed, and
    // its media pointer points into the same allocation.
    unsafe { (&*protocol, &*(*protocol).media) }
}

pub(super) fn disk_io_table<'a>(protocol: *mut DiskIoProtocol) -> &'a DiskIoProtocol {
    // SAFETY: `protocol` comes from `new_disk_io` and is never freed.
    unsafe { &*protocol }
}
