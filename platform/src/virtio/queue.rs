//! Split virtqueues (virtio 1.2 §2.7), driven by polling.
//!
//! The descriptor table, available ring and used ring live in one zeroed,
//! page-aligned allocation shared with the device. Every access to it is
//! volatile (through `Mmio`), and the fences sit where §2.7.13 asks for
//! memory barriers.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};

use super::VirtioError;
use crate::mmio::Mmio;

/// Memory shared with a device: page aligned, zeroed, freed on drop.
///
/// Dropping it while a device may still access it is a bug; owners reset
/// the device first.
pub(crate) struct DmaRegion {
    ptr: NonNull<u8>,
    layout: Layout,
    view: Mmio,
}

impl DmaRegion {
    pub(crate) fn new(bytes: usize) -> Result<Self, VirtioError> {
        let layout = Layout::from_size_align(bytes.max(1), 4096)
            .map_err(|_| VirtioError::OutOfMemory { bytes })?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(VirtioError::OutOfMemory { bytes })?;
        // SAFETY: the allocation is RAM owned by this region until drop, and
        // RAM is identity mapped.
        let view = unsafe { Mmio::new(ptr.as_ptr() as u64, layout.size() as u64) };
        Ok(DmaRegion { ptr, layout, view })
    }

    /// The bus (= physical = virtual) address of the region.
    pub(crate) fn addr(&self) -> u64 {
        self.view.base()
    }

    pub(crate) fn read<T: Copy>(&self, offset: usize) -> T {
        self.view.read(offset as u64)
    }

    pub(crate) fn write<T: Copy>(&self, offset: usize, value: T) {
        self.view.write(offset as u64, value)
    }

    /// Whether `len` bytes at `offset` lie inside the region.
    fn holds(&self, offset: usize, len: usize) -> bool {
        offset
            .checked_add(len)
            .is_some_and(|end| end <= self.layout.size())
    }

    /// Copies `out.len()` bytes at `offset` out of the region, after a fence
    /// that orders the copy after the completion the caller saw. Panics on a
    /// range outside the region: callers compute ranges from their own slot
    /// layout, never from device input unchecked.
    pub(crate) fn read_slice(&self, offset: usize, out: &mut [u8]) {
        assert!(self.holds(offset, out.len()), "DMA read outside region");
        fence(Ordering::SeqCst);
        // SAFETY: the range lies inside this live allocation (checked
        // above), and `out` is a distinct Rust buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                out.as_mut_ptr(),
                out.len(),
            )
        }
    }

    /// Copies `data` into the region at `offset`, fenced so the bytes are
    /// visible before the descriptor that hands them to the device.
    pub(crate) fn write_slice(&self, offset: usize, data: &[u8]) {
        assert!(self.holds(offset, data.len()), "DMA write outside region");
        // SAFETY: as for `read_slice`.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len())
        }
        fence(Ordering::SeqCst);
    }
}

impl Drop for DmaRegion {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with exactly this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Descriptor flags (§2.7.5).
const VIRTQ_DESC_F_NEXT: u16 = 1;
const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Available ring flag asking the device not to interrupt (§2.7.7): we poll.
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used ring flag by which the device says it needs no notification (§2.7.7).
const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;

const DESCRIPTOR_BYTES: usize = 16;
const USED_ELEMENT_BYTES: usize = 8;
/// Largest queue size a split virtqueue may have (§2.7).
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// One buffer of a descriptor chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub addr: u64,
    pub len: u32,
    /// The device writes this buffer (it reads all others).
    pub device_writable: bool,
}

/// A chain the device has finished with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsedChain {
    /// The head descriptor returned by `push`.
    pub head: u16,
    /// Bytes the device wrote into the chain's writable buffers.
    pub written: u32,
}

pub struct SplitQueue {
    memory: DmaRegion,
    size: u16,
    avail_offset: usize,
    used_offset: usize,
    /// Descriptors not in any chain.
    free: Vec<u16>,
    /// Driver-side copy of each descriptor's chain link, so freeing a chain
    /// never trusts memory the device can reach.
    next_in_chain: Vec<Option<u16>>,
    /// Which descriptors head a chain the device owns.
    in_flight: Vec<bool>,
    /// Next value of the available ring's `idx`.
    next_avail: u16,
    /// Used ring entries consumed so far (wrapping like the device's `idx`).
    last_used: u16,
}

impl SplitQueue {
    /// A queue of `size` entries; `size` must be a power of two no larger
    /// than 32768 (queue index arithmetic below relies on it dividing 2^16).
    pub fn new(size: u16) -> Result<Self, VirtioError> {
        if !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(VirtioError::InvalidQueueSize { size });
        }
        let entries = usize::from(size);
        // Table 2.4 of §2.7: descriptors 16-aligned, available ring 2-aligned,
        // used ring 4-aligned.
        let avail_offset = DESCRIPTOR_BYTES * entries;
        let avail_bytes = 6 + 2 * entries;
        let used_offset = (avail_offset + avail_bytes).next_multiple_of(4);
        let used_bytes = 6 + USED_ELEMENT_BYTES * entries;
        let memory = DmaRegion::new(used_offset + used_bytes)?;
        memory.write(avail_offset, VIRTQ_AVAIL_F_NO_INTERRUPT);
        Ok(SplitQueue {
            memory,
            size,
            avail_offset,
            used_offset,
            free: (0..size).rev().collect(),
            next_in_chain: alloc::vec![None; entries],
            in_flight: alloc::vec![false; entries],
            next_avail: 0,
            last_used: 0,
        })
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    /// Whether the device asks to be notified of new buffers: it sets
    /// VIRTQ_USED_F_NO_NOTIFY in the used ring while it is already working
    /// through the ring (§2.7.7.1), and a notification then only costs a
    /// VM exit. Read after the available index is published.
    pub fn device_wants_notification(&self) -> bool {
        // §2.7.13.4: the index write must be visible before the flags read,
        // or the device could stop polling in between and miss the buffers.
        fence(Ordering::SeqCst);
        let flags: u16 = self.memory.read(self.used_offset);
        flags & VIRTQ_USED_F_NO_NOTIFY == 0
    }

    pub fn descriptor_table_addr(&self) -> u64 {
        self.memory.addr()
    }

    pub fn available_ring_addr(&self) -> u64 {
        self.memory.addr() + self.avail_offset as u64
    }

    pub fn used_ring_addr(&self) -> u64 {
        self.memory.addr() + self.used_offset as u64
    }

    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    /// Chains submitted and not yet returned by `pop_used`.
    pub fn in_flight(&self) -> usize {
        usize::from(self.size) - self.free.len()
    }

    /// Makes `buffers` available to the device as one chain and returns its
    /// head, or `None` if there are not enough free descriptors (or no
    /// buffers). The device may start on it at once; call the notifier to
    /// make sure it does.
    ///
    /// # Safety
    /// Once this queue is enabled on a device, the device reads each buffer
    /// and writes the `device_writable` ones by DMA (virtio 1.2 §2.7.5): each
    /// must be memory the caller lets the device access that way until the
    /// chain comes back from `pop_used` or the device is reset.
    pub unsafe fn push(&mut self, buffers: &[Buffer]) -> Option<u16> {
        if buffers.is_empty() || buffers.len() > self.free.len() {
            return None;
        }
        let split = self.free.len() - buffers.len();
        let chain: Vec<u16> = self.free.drain(split..).rev().collect();
        for (position, (buffer, &index)) in buffers.iter().zip(&chain).enumerate() {
            let next = chain.get(position + 1).copied();
            let mut flags = if buffer.device_writable {
                VIRTQ_DESC_F_WRITE
            } else {
                0
            };
            if next.is_some() {
                flags |= VIRTQ_DESC_F_NEXT;
            }
            let at = DESCRIPTOR_BYTES * usize::from(index);
            self.memory.write(at, buffer.addr);
            self.memory.write(at + 8, buffer.len);
            self.memory.write(at + 12, flags);
            self.memory.write(at + 14, next.unwrap_or(0));
            self.next_in_chain[usize::from(index)] = next;
        }
        let head = chain[0];
        self.in_flight[usize::from(head)] = true;

        let slot = usize::from(self.next_avail % self.size);
        self.memory.write(self.avail_offset + 4 + 2 * slot, head);
        // §2.7.13.3: the ring entry (and the descriptors and buffer contents
        // before it) must be visible before the index that publishes it.
        fence(Ordering::Release);
        self.next_avail = self.next_avail.wrapping_add(1);
        self.memory.write(self.avail_offset + 2, self.next_avail);
        Some(head)
    }

    /// Takes the next chain the device has returned, if any, and frees its
    /// descriptors. Entries naming a head we never submitted are skipped.
    pub fn pop_used(&mut self) -> Option<UsedChain> {
        loop {
            let device_idx: u16 = self.memory.read(self.used_offset + 2);
            if device_idx == self.last_used {
                return None;
            }
            // §2.7.13: read the used element only after seeing the index
            // that covers it.
            fence(Ordering::Acquire);
            let slot = usize::from(self.last_used % self.size);
            let at = self.used_offset + 4 + USED_ELEMENT_BYTES * slot;
            let id: u32 = self.memory.read(at);
            let written: u32 = self.memory.read(at + 4);
            self.last_used = self.last_used.wrapping_add(1);

            let head = match u16::try_from(id) {
                Ok(head) if head < self.size && self.in_flight[usize::from(head)] => head,
                _ => {
                    log::warn!("virtio: device returned unknown descriptor {id}; ignored");
                    continue;
                }
            };
            self.in_flight[usize::from(head)] = false;
            let mut index = Some(head);
            while let Some(current) = index {
                self.free.push(current);
                index = self.next_in_chain[usize::from(current)].take();
            }
            return Some(UsedChain { head, written });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The device side of a split queue, working on the shared memory as a
    /// device would: it consumes the available ring and fills the used ring.
    struct FakeDevice {
        last_avail: u16,
        used_idx: u16,
    }

    impl FakeDevice {
        fn new() -> Self {
            FakeDevice {
                last_avail: 0,
                used_idx: 0,
            }
        }

        /// Completes every available chain, reporting as written the sum of
        /// its writable buffers' lengths. Returns the chains' buffers.
        fn complete_all(&mut self, queue: &SplitQueue) -> Vec<Vec<Buffer>> {
            let memory = &queue.memory;
            let size = queue.size;
            let mut chains = Vec::new();
            let avail_idx: u16 = memory.read(queue.avail_offset + 2);
            while self.last_avail != avail_idx {
                let slot = usize::from(self.last_avail % size);
                let head: u16 = memory.read(queue.avail_offset + 4 + 2 * slot);
                let mut buffers = Vec::new();
                let mut index = head;
                loop {
                    let at = DESCRIPTOR_BYTES * usize::from(index);
                    let flags: u16 = memory.read(at + 12);
                    buffers.push(Buffer {
                        addr: memory.read(at),
                        len: memory.read(at + 8),
                        device_writable: flags & VIRTQ_DESC_F_WRITE != 0,
                    });
                    if flags & VIRTQ_DESC_F_NEXT == 0 {
                        break;
                    }
                    index = memory.read(at + 14);
                }
                let written: u32 = buffers
                    .iter()
                    .filter(|b| b.device_writable)
                    .map(|b| b.len)
                    .sum();
                let used_slot = usize::from(self.used_idx % size);
                let at = queue.used_offset + 4 + USED_ELEMENT_BYTES * used_slot;
                memory.write(at, u32::from(head));
                memory.write(at + 4, written);
                self.used_idx = self.used_idx.wrapping_add(1);
                memory.write(queue.used_offset + 2, self.used_idx);
                self.last_avail = self.last_avail.wrapping_add(1);
                chains.push(buffers);
            }
            chains
        }
    }

    fn request(tag: u64) -> [Buffer; 3] {
        [
            Buffer {
                addr: tag,
                len: 16,
                device_writable: false,
            },
            Buffer {
                addr: tag + 0x1000,
                len: 512,
                device_writable: true,
            },
            Buffer {
                addr: tag + 0x2000,
                len: 1,
                device_writable: true,
            },
        ]
    }

    #[test]
    fn layout_is_aligned_and_polling_is_requested() {
        let queue = SplitQueue::new(256).unwrap();
        assert_eq!(queue.descriptor_table_addr() % 4096, 0);
        assert_eq!(
            queue.available_ring_addr() - queue.descriptor_table_addr(),
            4096
        );
        assert_eq!(queue.used_ring_addr() % 4, 0);
        assert!(queue.used_ring_addr() >= queue.available_ring_addr() + 6 + 512);
        let flags: u16 = queue.memory.read(queue.avail_offset);
        assert_eq!(flags, VIRTQ_AVAIL_F_NO_INTERRUPT);
        assert!(SplitQueue::new(100).is_err());
    }

    #[test]
    fn chains_reach_the_device_intact_and_come_back() {
        let mut queue = SplitQueue::new(8).unwrap();
        let mut device = FakeDevice::new();
        // SAFETY: no device is attached (here and in the other tests);
        // `FakeDevice` only reads the descriptors, never the buffers.
        let first = unsafe { queue.push(&request(0x10_0000)) }.unwrap();
        // SAFETY: as above.
        let second = unsafe { queue.push(&request(0x20_0000)) }.unwrap();
        assert_eq!(queue.free_descriptors(), 2);
        // SAFETY: as above.
        let third = unsafe { queue.push(&request(0x30_0000)) };
        assert_eq!(third, None, "only two descriptors left");
        assert_eq!(queue.pop_used(), None, "nothing completed yet");

        let seen = device.complete_all(&queue);
        assert_eq!(
            seen,
            [request(0x10_0000).to_vec(), request(0x20_0000).to_vec()]
        );
        assert_eq!(
            queue.pop_used(),
            Some(UsedChain {
                head: first,
                written: 513
            })
        );
        assert_eq!(queue.pop_used().map(|used| used.head), Some(second));
        assert_eq!(queue.pop_used(), None);
        assert_eq!(queue.free_descriptors(), 8);
        assert_eq!(queue.in_flight(), 0);
    }

    #[test]
    fn indices_wrap_past_u16_max() {
        let mut queue = SplitQueue::new(4).unwrap();
        let mut device = FakeDevice::new();
        for round in 0..70_000u64 {
            // SAFETY: as in `chains_reach_the_device_intact_and_come_back`.
            let head = unsafe { queue.push(&request(round << 16)[..2]) }.unwrap();
            let seen = device.complete_all(&queue);
            assert_eq!(seen, [request(round << 16)[..2].to_vec()]);
            assert_eq!(queue.pop_used().map(|used| used.head), Some(head));
            assert_eq!(queue.free_descriptors(), 4);
        }
        assert_eq!(queue.next_avail, (70_000u32 % 65_536) as u16);
    }

    #[test]
    fn unknown_used_ids_are_skipped() {
        let mut queue = SplitQueue::new(4).unwrap();
        // SAFETY: as in `chains_reach_the_device_intact_and_come_back`.
        let head = unsafe { queue.push(&request(0)[..1]) }.unwrap();
        // A misbehaving device returns id 3 (never submitted), then the real one.
        let used = queue.used_offset;
        queue.memory.write(used + 4, 3u32);
        queue.memory.write(used + 12, u32::from(head));
        queue.memory.write(used + 2, 2u16);
        assert_eq!(queue.pop_used().map(|used| used.head), Some(head));
        assert_eq!(queue.pop_used(), None);
        assert_eq!(queue.free_descriptors(), 4);
    }
}
