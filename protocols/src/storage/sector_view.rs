//! A device seen in sectors smaller than its blocks, for a FAT volume whose
//! sectors are: the 512-byte FAT image an El Torito catalog names on a
//! CD-ROM's 2048-byte blocks (UEFI 2.10 §13.3.2), or a 512-byte FAT copied to
//! a 4Kn disk. edk2's FAT driver reads through Disk I/O, which hides block
//! sizes; the firmware's FAT code reads whole blocks, so this view turns
//! its sector requests into byte ranges for Disk I/O's own splitting
//! (`read_disk`/`write_disk`: whole blocks straight into the caller's
//! buffer, partial edge blocks through one block of scratch).

use platform::block::{BlockDevice, BlockError};

use super::disk_io::{read_disk, write_disk};

pub struct SectorView<D> {
    inner: D,
    sector: u32,
}

impl<D: BlockDevice> SectorView<D> {
    /// `inner` in `sector`-byte sectors; None unless `sector` is a power of
    /// two of at least 512 that divides the device's block size.
    pub fn new(inner: D, sector: u32) -> Option<Self> {
        let block = inner.block_size();
        (sector >= 512
            && sector.is_power_of_two()
            && sector < block
            && block.is_multiple_of(sector))
        .then_some(SectorView { inner, sector })
    }
}

impl<D: BlockDevice> BlockDevice for SectorView<D> {
    fn block_size(&self) -> u32 {
        self.sector
    }

    fn num_blocks(&self) -> u64 {
        self.inner
            .num_blocks()
            .saturating_mul(u64::from(self.inner.block_size() / self.sector))
    }

    fn read_only(&self) -> bool {
        self.inner.read_only()
    }

    // `check_request` bounds `lba + sectors` by `num_blocks`, so the byte
    // offset fits u64.
    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        read_disk(&self.inner, lba * u64::from(self.sector), buf)
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        write_disk(&self.inner, lba * u64::from(self.sector), buf)
    }

    fn flush(&self) -> Result<(), BlockError> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::rc::Rc;
    use alloc::vec::Vec;
    use platform::block::MemDisk;
    use std::vec;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 13 + i / 2039) as u8).collect()
    }

    #[test]
    fn only_smaller_power_of_two_sectors_make_a_view() {
        let mut data = vec![0u8; 8 * 2048];
        let disk = Rc::new(MemDisk::new(&mut data, 2048));
        let view = |sector| SectorView::new(disk.clone(), sector).is_some();
        assert!(view(512) && view(1024));
        assert!(!view(2048) && !view(4096) && !view(768) && !view(256));
    }

    #[test]
    fn every_sector_range_reads_and_writes_like_the_bytes_beneath() {
        let blocks = 6usize;
        let sectors = blocks * 4;
        for start in 0..sectors {
            for count in 1..=sectors - start {
                let mut data = pattern(blocks * 2048);
                let expected = data[start * 512..(start + count) * 512].to_vec();
                let new: Vec<u8> = (0..count * 512).map(|i| (i % 251) as u8 ^ 0x5a).collect();
                {
                    let view = SectorView::new(MemDisk::new(&mut data, 2048), 512).unwrap();
                    assert_eq!(view.num_blocks(), sectors as u64);
                    let mut buf = vec![0u8; count * 512];
                    view.read_blocks(start as u64, &mut buf).unwrap();
                    assert_eq!(buf, expected, "read of {count} at {start}");
                    view.write_blocks(start as u64, &new).unwrap();
                }
                let mut want = pattern(blocks * 2048);
                want[start * 512..(start + count) * 512].copy_from_slice(&new);
                assert!(data == want, "write of {count} at {start}");
            }
        }
    }

    #[test]
    fn requests_past_the_end_or_of_partial_sectors_are_refused() {
        let mut data = vec![0u8; 2 * 2048];
        let view = SectorView::new(MemDisk::new(&mut data, 2048), 512).unwrap();
        let mut buf = vec![0u8; 1024];
        assert_eq!(
            view.read_blocks(7, &mut buf),
            Err(BlockError::OutOfRange { lba: 7, blocks: 2 })
        );
        assert_eq!(
            view.read_blocks(0, &mut buf[..100]),
            Err(BlockError::BadBufferSize(100))
        );
        assert_eq!(
            view.read_blocks(u64::MAX, &mut buf),
            Err(BlockError::OutOfRange {
                lba: u64::MAX,
                blocks: 2
            })
        );
    }
}
