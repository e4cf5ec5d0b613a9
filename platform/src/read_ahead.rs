//! Sequential read-ahead for a block device driver.
//!
//! Boot loaders read large files in small pieces: GRUB's FAT driver fetches
//! a kernel one 32 KiB disk-cache chunk per BlockIo call, each a separate
//! device round trip, and a round trip under an emulator or on a busy host
//! costs far more than moving the bytes. When a small read starts where the
//! previous one ended, the driver reads a whole window (1 MiB) instead and
//! serves the following reads from memory, as an OS page cache does.
//!
//! Only clean data is kept: the driver calls [`ReadAhead::invalidate`]
//! before every write, so a cached window never disagrees with the disk as
//! far as this firmware can tell.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::cell::RefCell;

use crate::block::BlockError;

/// Bytes read ahead per window: one virtio-blk request at most.
pub const WINDOW_BYTES: usize = 1 << 20;
/// Windows kept: sequential streams interleaved with metadata reads (a FAT
/// chain, a directory) each keep their own.
pub const WINDOWS: usize = 4;

struct Window {
    lba: u64,
    blocks: u64,
    data: Vec<u8>,
    last_used: u64,
}

impl Window {
    fn contains(&self, lba: u64, blocks: u64) -> bool {
        lba >= self.lba && lba.saturating_add(blocks) <= self.lba + self.blocks
    }

    fn overlaps(&self, lba: u64, blocks: u64) -> bool {
        lba < self.lba + self.blocks && self.lba < lba.saturating_add(blocks)
    }
}

#[derive(Default)]
struct State {
    windows: Vec<Window>,
    clock: u64,
    /// The block after the previous read, for spotting sequential access.
    next_sequential: Option<u64>,
}

/// Read-ahead state of one device. Methods take `&self` like
/// [`crate::block::BlockDevice`].
#[derive(Default)]
pub struct ReadAhead {
    state: RefCell<State>,
}

/// What the device looks like to the read-ahead: its geometry.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub block_size: u32,
    pub num_blocks: u64,
}

impl ReadAhead {
    pub const fn new() -> Self {
        ReadAhead {
            state: RefCell::new(State {
                windows: Vec::new(),
                clock: 0,
                next_sequential: None,
            }),
        }
    }

    /// Reads whole blocks at `lba` into `buf` (already checked against the
    /// geometry), from a cached window when one holds them, else through
    /// `fetch(lba, buf)`, the device's own read. A small read that continues
    /// the previous one fetches a whole window.
    pub fn read(
        &self,
        geometry: Geometry,
        lba: u64,
        buf: &mut [u8],
        mut fetch: impl FnMut(u64, &mut [u8]) -> Result<(), BlockError>,
    ) -> Result<(), BlockError> {
        let block_size = u64::from(geometry.block_size.max(1));
        let blocks = buf.len() as u64 / block_size;
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let sequential = state.next_sequential == Some(lba);
        state.next_sequential = lba.checked_add(blocks);
        state.clock += 1;
        let now = state.clock;

        if let Some(window) = state.windows.iter_mut().find(|w| w.contains(lba, blocks)) {
            let start = ((lba - window.lba) * block_size) as usize;
            buf.copy_from_slice(&window.data[start..start + buf.len()]);
            window.last_used = now;
            return Ok(());
        }
        let window_blocks =
            (WINDOW_BYTES as u64 / block_size).min(geometry.num_blocks.saturating_sub(lba));
        if !sequential || blocks >= window_blocks {
            return fetch(lba, buf);
        }

        let mut data = match state.windows.len() {
            n if n < WINDOWS => Vec::new(),
            _ => {
                let oldest = (0..state.windows.len())
                    .min_by_key(|&i| state.windows[i].last_used)
                    .unwrap_or(0);
                state.windows.swap_remove(oldest).data
            }
        };
        data.resize((window_blocks * block_size) as usize, 0);
        if fetch(lba, &mut data).is_err() {
            // An unreadable block elsewhere in the window must not fail a
            // read that does not touch it: the bad block costs the file
            // that holds it, not everything read ahead with it.
            return fetch(lba, buf);
        }
        buf.copy_from_slice(&data[..buf.len()]);
        state.windows.push(Window {
            lba,
            blocks: window_blocks,
            data,
            last_used: now,
        });
        Ok(())
    }

    /// Forgets cached data of the `blocks` blocks at `lba` (call before
    /// writing them).
    pub fn invalidate(&self, lba: u64, blocks: u64) {
        self.state
            .borrow_mut()
            .windows
            .retain(|w| !w.overlaps(lba, blocks));
    }

    /// Forgets everything and frees the windows (device reset).
    pub fn clear(&self) {
        *self.state.borrow_mut() = State::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const GEOMETRY: Geometry = Geometry {
        block_size: 512,
        num_blocks: 16384,
    };

    fn disk_byte(offset: u64) -> u8 {
        (offset * 7 % 251) as u8
    }

    /// A fake device read over a pattern, counting requests and bytes.
    struct Device {
        requests: Cell<u32>,
        bytes: Cell<usize>,
        content: Cell<u8>,
        /// A block every read covering it fails on.
        bad_block: Cell<Option<u64>>,
    }

    impl Device {
        fn new() -> Self {
            Device {
                requests: Cell::new(0),
                bytes: Cell::new(0),
                content: Cell::new(0),
                bad_block: Cell::new(None),
            }
        }

        fn fetch(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
            self.requests.set(self.requests.get() + 1);
            let blocks = buf.len() as u64 / 512;
            if let Some(bad) = self.bad_block.get()
                && (lba..lba + blocks).contains(&bad)
            {
                return Err(BlockError::Device(1));
            }
            self.bytes.set(self.bytes.get() + buf.len());
            for (i, b) in buf.iter_mut().enumerate() {
                *b = disk_byte(lba * 512 + i as u64).wrapping_add(self.content.get());
            }
            Ok(())
        }
    }

    fn read(cache: &ReadAhead, device: &Device, lba: u64, blocks: usize) -> Vec<u8> {
        let mut buf = vec![0u8; blocks * 512];
        cache
            .read(GEOMETRY, lba, &mut buf, |l, b| device.fetch(l, b))
            .unwrap();
        buf
    }

    fn expected(device: &Device, lba: u64, blocks: usize) -> Vec<u8> {
        (0..blocks * 512)
            .map(|i| disk_byte(lba * 512 + i as u64).wrapping_add(device.content.get()))
            .collect()
    }

    #[test]
    fn sequential_small_reads_become_window_reads() {
        let cache = ReadAhead::new();
        let device = Device::new();
        // 4 MiB in 32 KiB pieces, as GRUB reads a kernel: 128 calls.
        for chunk in 0..128u64 {
            let lba = 100 + chunk * 64;
            assert_eq!(read(&cache, &device, lba, 64), expected(&device, lba, 64));
        }
        // The first read is not known to be sequential; then one 1 MiB
        // window per 32 pieces.
        assert_eq!(device.requests.get(), 1 + 4);
    }

    #[test]
    fn random_and_large_reads_go_straight_to_the_device() {
        let cache = ReadAhead::new();
        let device = Device::new();
        for lba in [4000u64, 10, 3000, 7, 6000] {
            assert_eq!(read(&cache, &device, lba, 1), expected(&device, lba, 1));
        }
        assert_eq!((device.requests.get(), device.bytes.get()), (5, 5 * 512));
        // Reading backwards one block at a time never triggers read-ahead.
        for lba in (0..64u64).rev() {
            read(&cache, &device, lba, 1);
        }
        assert_eq!(device.bytes.get(), (5 + 64) * 512);
        // A read as large as a window is never copied through one.
        read(&cache, &device, 0, 2048);
        read(&cache, &device, 2048, 2048);
        assert_eq!(device.bytes.get(), (5 + 64 + 4096) * 512);
    }

    #[test]
    fn windows_stop_at_the_end_of_the_disk() {
        let cache = ReadAhead::new();
        let device = Device::new();
        read(&cache, &device, 16192, 1);
        assert_eq!(read(&cache, &device, 16193, 1), expected(&device, 16193, 1));
        assert_eq!(device.bytes.get(), 512 + 191 * 512);
        assert_eq!(read(&cache, &device, 16383, 1), expected(&device, 16383, 1));
        assert_eq!(device.requests.get(), 2);
    }

    #[test]
    fn invalidated_and_cleared_windows_are_read_again() {
        let cache = ReadAhead::new();
        let device = Device::new();
        read(&cache, &device, 0, 1);
        read(&cache, &device, 1, 1);
        assert_eq!(device.requests.get(), 2);
        // The disk changes under blocks 500..502 (a write).
        device.content.set(1);
        cache.invalidate(500, 2);
        assert_eq!(read(&cache, &device, 2, 1), expected(&device, 2, 1));
        assert_eq!(device.requests.get(), 3);
        // A write elsewhere keeps the window.
        read(&cache, &device, 3, 1);
        cache.invalidate(5000, 8);
        read(&cache, &device, 4, 1);
        assert_eq!(device.requests.get(), 3);
        // After a reset nothing is cached and nothing counts as sequential.
        cache.clear();
        read(&cache, &device, 5, 1);
        assert_eq!(device.requests.get(), 4);
    }

    #[test]
    fn a_bad_block_in_a_window_fails_only_the_reads_that_touch_it() {
        let cache = ReadAhead::new();
        let device = Device::new();
        device.bad_block.set(Some(1000));
        let mut buf = vec![0u8; 8 * 512];
        for lba in [0u64, 8, 16] {
            // The second and third reads are sequential: their window would
            // span the bad block and fails, so each falls back to its own.
            cache
                .read(GEOMETRY, lba, &mut buf, |l, b| device.fetch(l, b))
                .unwrap();
            assert_eq!(buf, expected(&device, lba, 8));
        }
        let failed = cache.read(GEOMETRY, 996, &mut buf, |l, b| device.fetch(l, b));
        assert!(failed.is_err(), "a read of the bad block itself fails");
    }

    #[test]
    fn interleaved_streams_keep_their_own_windows() {
        let cache = ReadAhead::new();
        let device = Device::new();
        // Two files read alternately, each piece continuing its own stream
        // only every other call: the first two pieces of each open windows.
        let (mut a, mut b) = (0u64, 4096u64);
        for _ in 0..2 {
            read(&cache, &device, a, 8);
            read(&cache, &device, a + 8, 8);
            read(&cache, &device, b, 8);
            read(&cache, &device, b + 8, 8);
            a += 16;
            b += 16;
        }
        // Two reads open each window; the rest hit.
        assert_eq!(device.requests.get(), 4);
        assert_eq!(read(&cache, &device, 24, 8), expected(&device, 24, 8));
        assert_eq!(device.requests.get(), 4);
    }
}
