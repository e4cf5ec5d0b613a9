//! virtio-blk (virtio 1.2 §5.2) over the modern PCI transport, polled.
//!
//! A transfer is cut into requests of at most `RequestLimits::request_bytes`
//! (honouring the device's seg_max/size_max); as many requests as the queue
//! holds are in flight at once, so large reads run at device speed.

use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::mem::offset_of;
use core::sync::atomic::{Ordering, fence};

use super::pci::{Notifier, VirtioPciTransport};
use super::queue::{Buffer, DmaRegion, SplitQueue};
use super::{MODERN_DEVICE_ID_BASE, VIRTIO_VENDOR_ID, VirtioError};
use crate::block::{BlockDevice, BlockError};
use crate::pci::{Bdf, ConfigAccess, PciDevice};
use crate::read_ahead::{Geometry, ReadAhead};

/// Virtio device type 2 (§5): modern ID 0x1042, transitional ID 0x1001.
pub const BLK_MODERN_DEVICE_ID: u16 = MODERN_DEVICE_ID_BASE + 2;
pub const BLK_TRANSITIONAL_DEVICE_ID: u16 = 0x1001;

/// Feature bits (§5.2.3).
pub mod feature {
    pub const SIZE_MAX: u64 = 1 << 1;
    pub const SEG_MAX: u64 = 1 << 2;
    pub const RO: u64 = 1 << 5;
    pub const BLK_SIZE: u64 = 1 << 6;
    pub const FLUSH: u64 = 1 << 9;
}

/// struct virtio_blk_config up to `num_queues` (§5.2.4), geometry and
/// topology flattened. Only used for field offsets.
#[repr(C)]
pub struct BlkConfig {
    pub capacity: u64,
    pub size_max: u32,
    pub seg_max: u32,
    pub geometry_cylinders: u16,
    pub geometry_heads: u8,
    pub geometry_sectors: u8,
    pub blk_size: u32,
    pub physical_block_exp: u8,
    pub alignment_offset: u8,
    pub min_io_size: u16,
    pub opt_io_size: u32,
    pub writeback: u8,
    pub unused0: u8,
    pub num_queues: u16,
}

/// Request types and status values (§5.2.6).
const VIRTIO_BLK_T_IN: u32 = 0;
const VIRTIO_BLK_T_OUT: u32 = 1;
const VIRTIO_BLK_T_FLUSH: u32 = 4;
pub const VIRTIO_BLK_S_OK: u8 = 0;
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;
/// Written to the status byte before submission: a device that completes
/// a request without writing a status shows up as an error.
const STATUS_NOT_WRITTEN: u8 = 0xFF;

/// `sector` in a request header always counts 512-byte units (§5.2.6).
const SECTOR_BYTES: u32 = 512;
/// Queue entries we ask for; the device may offer fewer.
const PREFERRED_QUEUE_SIZE: u16 = 256;
/// Largest single request: big enough that per-request overhead vanishes,
/// small enough that many requests overlap.
const MAX_REQUEST_BYTES: u32 = 1 << 20;
/// Polls of the used ring without any completion before giving up. With a
/// `pause` per poll this is several seconds on any current CPU; there is no
/// calibrated clock to do better.
const POLL_SPINS_WITHOUT_PROGRESS: u64 = 500_000_000;
/// struct virtio_blk_req header: type, reserved, sector.
const HEADER_BYTES: usize = 16;

/// How the device lets us shape requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestLimits {
    /// Largest data descriptor (size_max).
    pub segment_bytes: u32,
    /// Most data descriptors per request (seg_max, and the queue size).
    pub segments: u32,
    /// Data bytes per request: whole blocks, at most segments x segment_bytes.
    pub request_bytes: u32,
}

impl RequestLimits {
    /// `size_max`/`seg_max` are `None` when the feature was not negotiated.
    /// Without SEG_MAX a request carries one data segment (§5.2.4 gives no
    /// default, and one is what every device accepts).
    pub(crate) fn new(
        size_max: Option<u32>,
        seg_max: Option<u32>,
        queue_size: u16,
        block_size: u32,
    ) -> Option<Self> {
        let segment_bytes = size_max
            .filter(|&size| size != 0)
            .unwrap_or(MAX_REQUEST_BYTES)
            .min(MAX_REQUEST_BYTES);
        // Header and status take two descriptors of the chain.
        let segments = seg_max
            .filter(|&count| count != 0)
            .unwrap_or(1)
            .min(u32::from(queue_size).saturating_sub(2));
        let most = (u64::from(segment_bytes) * u64::from(segments))
            .min(u64::from(MAX_REQUEST_BYTES)) as u32;
        let request_bytes = most - most % block_size.max(1);
        (segments != 0 && request_bytes != 0).then_some(RequestLimits {
            segment_bytes,
            segments,
            request_bytes,
        })
    }

    /// Data descriptors a request of `bytes` needs.
    pub(crate) fn segments_for(&self, bytes: u32) -> u32 {
        bytes.div_ceil(self.segment_bytes)
    }
}

/// Cuts `len` bytes into (offset, bytes) pieces of at most `request_bytes`.
pub(crate) fn split_transfer(len: usize, request_bytes: u32) -> impl Iterator<Item = (usize, u32)> {
    let step = request_bytes.max(1) as usize;
    (0..len)
        .step_by(step)
        .map(move |offset| (offset, (len - offset).min(step) as u32))
}

/// One request: `bytes` of data at bus address `data` (none for a flush).
#[derive(Clone, Copy, Debug)]
struct Request {
    kind: u32,
    sector: u64,
    data: u64,
    bytes: u32,
}

/// The queue and the per-request header/status slots shared with the device.
struct QueueState {
    queue: SplitQueue,
    notifier: Notifier,
    /// `slot_count` headers of 16 bytes, then `slot_count` status bytes.
    slots: DmaRegion,
    slot_count: usize,
    free_slots: Vec<u16>,
    /// The slot a chain uses, indexed by its head descriptor.
    slot_of_head: Vec<u16>,
    /// Descriptor chain being built, reused between requests.
    chain: Vec<Buffer>,
}

impl QueueState {
    fn header_offset(&self, slot: u16) -> usize {
        HEADER_BYTES * usize::from(slot)
    }

    fn status_offset(&self, slot: u16) -> usize {
        HEADER_BYTES * self.slot_count + usize::from(slot)
    }
}

/// A virtio-blk device. Methods take `&self` (the `BlockDevice` contract);
/// the queue lives in a `RefCell`.
pub struct VirtioBlk {
    transport: VirtioPciTransport,
    block_size: u32,
    num_blocks: u64,
    read_only: bool,
    can_flush: bool,
    limits: RequestLimits,
    /// Set once the device was reset (by `reset` or after a timeout):
    /// its queue is gone and every request fails.
    stopped: Cell<bool>,
    state: RefCell<QueueState>,
    /// Sequential small reads are served from 1 MiB windows.
    read_ahead: ReadAhead,
}

/// Finds and initialises every virtio-blk function in `devices` (PCI order
/// preserved). Devices that fail are logged and skipped.
///
/// # Safety
/// As for [`VirtioBlk::new`], for every device in `devices`.
pub unsafe fn probe_all(access: &dyn ConfigAccess, devices: &[PciDevice]) -> Vec<VirtioBlk> {
    devices
        .iter()
        .filter(|device| is_virtio_blk(device))
        // SAFETY: the caller vouches for every device in `devices`.
        .filter_map(|device| match unsafe { VirtioBlk::new(access, device) } {
            Ok(blk) => Some(blk),
            Err(error) => {
                log::error!("virtio-blk: {error}");
                None
            }
        })
        .collect()
}

pub fn is_virtio_blk(device: &PciDevice) -> bool {
    device.vendor == VIRTIO_VENDOR_ID
        && (device.device == BLK_MODERN_DEVICE_ID || device.device == BLK_TRANSITIONAL_DEVICE_ID)
}

impl VirtioBlk {
    /// Drives `device` through §3.1.1 initialisation with one request queue.
    ///
    /// # Safety
    /// As for [`VirtioPciTransport::new`]: `device` comes from
    /// `pci::enumerate` over `access`, its BARs placed in PCI address space.
    pub unsafe fn new(access: &dyn ConfigAccess, device: &PciDevice) -> Result<Self, VirtioError> {
        // SAFETY: this function's contract is the transport's.
        let transport = unsafe { VirtioPciTransport::new(access, device) }?;
        let wanted =
            feature::SIZE_MAX | feature::SEG_MAX | feature::RO | feature::BLK_SIZE | feature::FLUSH;
        let features = transport.negotiate(wanted)?;
        match Self::set_up(transport, features) {
            Ok(blk) => Ok(blk),
            Err((transport, error)) => {
                transport.fail();
                Err(error)
            }
        }
    }

    /// Steps 7-8 of §3.1.1; on failure hands the transport back so the
    /// caller can mark the device FAILED.
    fn set_up(
        transport: VirtioPciTransport,
        features: u64,
    ) -> Result<Self, (VirtioPciTransport, VirtioError)> {
        let bdf = transport.bdf();
        macro_rules! check {
            ($result:expr) => {
                match $result {
                    Ok(value) => value,
                    Err(error) => return Err((transport, error)),
                }
            };
        }
        let config_field = |name: &'static str, value: Option<u64>| {
            value.ok_or(VirtioError::UnusableConfig {
                bdf,
                what: name,
                value: 0,
            })
        };
        if !transport.has_device_config() {
            return Err((
                transport,
                VirtioError::MissingCapability { bdf, cfg_type: 4 },
            ));
        }
        let capacity = check!(config_field(
            "capacity",
            transport.config_read_u64(offset_of!(BlkConfig, capacity))
        ));
        let offered = |bit: u64| features & bit != 0;
        let read_u32 = |bit: u64, offset: usize| {
            if offered(bit) {
                transport.config_read::<u32>(offset)
            } else {
                None
            }
        };
        let block_size = match read_u32(feature::BLK_SIZE, offset_of!(BlkConfig, blk_size)) {
            Some(size) if size.is_power_of_two() && (SECTOR_BYTES..=65536).contains(&size) => size,
            Some(size) => {
                log::warn!("virtio-blk at {bdf}: ignoring odd blk_size {size}");
                SECTOR_BYTES
            }
            None => SECTOR_BYTES,
        };
        let size_max = read_u32(feature::SIZE_MAX, offset_of!(BlkConfig, size_max));
        let seg_max = read_u32(feature::SEG_MAX, offset_of!(BlkConfig, seg_max));

        let max_queue = transport.max_queue_size(0);
        if max_queue == 0 {
            return Err((transport, VirtioError::QueueUnavailable { bdf, queue: 0 }));
        }
        // Largest power of two the device accepts, capped at our preference.
        let queue_size = 1u16 << (15 - max_queue.min(PREFERRED_QUEUE_SIZE).leading_zeros());
        let limits = check!(
            RequestLimits::new(size_max, seg_max, queue_size, block_size).ok_or(
                VirtioError::UnusableConfig {
                    bdf,
                    what: "size_max",
                    value: size_max.unwrap_or(0).into(),
                }
            )
        );
        let queue = check!(SplitQueue::new(queue_size));
        let slot_count = usize::from(queue_size);
        let slots = check!(DmaRegion::new((HEADER_BYTES + 1) * slot_count));
        // SAFETY: `queue` moves into the `VirtioBlk` built below, which
        // resets the device before the queue is freed (`Drop`, `reset`), and
        // the transport is dropped with it on every error path.
        let notifier = check!(unsafe { transport.setup_queue(0, &queue) });
        transport.driver_ok();

        let sectors_per_block = u64::from(block_size / SECTOR_BYTES);
        let blk = VirtioBlk {
            block_size,
            num_blocks: capacity / sectors_per_block,
            read_only: offered(feature::RO),
            can_flush: offered(feature::FLUSH),
            limits,
            stopped: Cell::new(false),
            state: RefCell::new(QueueState {
                queue,
                notifier,
                slots,
                slot_count,
                free_slots: (0..queue_size).collect(),
                slot_of_head: alloc::vec![0; slot_count],
                chain: Vec::new(),
            }),
            read_ahead: ReadAhead::new(),
            transport,
        };
        log::info!(
            "virtio-blk at {bdf}: {} blocks of {block_size} bytes{}, queue {queue_size}, requests up to {} bytes",
            blk.num_blocks,
            if blk.read_only { ", read-only" } else { "" },
            limits.request_bytes
        );
        Ok(blk)
    }

    /// The PCI function, for the device path (PCI device and function).
    pub fn bdf(&self) -> Bdf {
        self.transport.bdf()
    }

    /// Resets the device so it stops all DMA, e.g. before the OS takes over
    /// at ExitBootServices. Later requests fail with `BlockError::Timeout`.
    pub fn reset(&self) {
        self.stopped.set(true);
        self.read_ahead.clear();
        if let Err(error) = self.transport.reset() {
            log::error!("virtio-blk: {error}");
        }
    }

    /// Submits `requests`, keeping the queue as full as it goes, and polls
    /// until all are done. The first failing status is returned, but only
    /// after every request has completed: their buffers belong to the caller.
    /// On a timeout the device is reset, which ends its DMA, before returning.
    ///
    /// # Safety
    /// Each request's `bytes` at `data` must be memory the device may read
    /// (writes) or write (reads) until this function returns.
    unsafe fn run(&self, requests: impl Iterator<Item = Request>) -> Result<(), BlockError> {
        if self.stopped.get() {
            return Err(BlockError::Timeout);
        }
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let mut requests = requests.peekable();
        let mut failure = None;
        let mut idle_spins = 0u64;
        loop {
            let mut submitted = false;
            while failure.is_none() {
                let Some(&request) = requests.peek() else {
                    break;
                };
                // SAFETY: `run` returns only once every submitted chain is
                // back or the device was reset; the caller vouches for the
                // data buffers until then.
                if !unsafe { self.submit(state, request) } {
                    break;
                }
                requests.next();
                submitted = true;
            }
            if submitted {
                state.notifier.notify();
            }

            let mut completed = false;
            while let Some(used) = state.queue.pop_used() {
                completed = true;
                let slot = state.slot_of_head[usize::from(used.head)];
                let status: u8 = state.slots.read(state.status_offset(slot));
                state.free_slots.push(slot);
                if status != VIRTIO_BLK_S_OK && failure.is_none() {
                    failure = Some(BlockError::Device(status));
                }
            }

            let nothing_left = failure.is_some() || requests.peek().is_none();
            if state.queue.in_flight() == 0 && nothing_left {
                return failure.map_or(Ok(()), Err);
            }
            if submitted || completed {
                idle_spins = 0;
            } else {
                idle_spins += 1;
                if idle_spins > POLL_SPINS_WITHOUT_PROGRESS {
                    log::error!(
                        "virtio-blk at {}: request timed out; resetting device",
                        self.bdf()
                    );
                    // The reset stops DMA into buffers we are about to
                    // hand back to the caller.
                    self.reset();
                    return Err(BlockError::Timeout);
                }
                core::hint::spin_loop();
            }
        }
    }

    /// Queues one request as header / data segments / status descriptors.
    /// Returns false if the queue has no room for it now.
    ///
    /// # Safety
    /// `request.bytes` at `request.data` must stay accessible to the device
    /// (as for [`SplitQueue::push`]) until the chain completes or the device
    /// is reset.
    unsafe fn submit(&self, state: &mut QueueState, request: Request) -> bool {
        let segments = self.limits.segments_for(request.bytes) as usize;
        if state.queue.free_descriptors() < segments + 2 {
            return false;
        }
        let Some(slot) = state.free_slots.pop() else {
            return false;
        };
        let header = state.header_offset(slot);
        state.slots.write(header, request.kind);
        state.slots.write(header + 4, 0u32);
        state.slots.write(header + 8, request.sector);
        state
            .slots
            .write(state.status_offset(slot), STATUS_NOT_WRITTEN);

        let device_writes = request.kind == VIRTIO_BLK_T_IN;
        state.chain.clear();
        state.chain.push(Buffer {
            addr: state.slots.addr() + header as u64,
            len: HEADER_BYTES as u32,
            device_writable: false,
        });
        let mut offset = 0u32;
        while offset < request.bytes {
            let len = (request.bytes - offset).min(self.limits.segment_bytes);
            state.chain.push(Buffer {
                addr: request.data + u64::from(offset),
                len,
                device_writable: device_writes,
            });
            offset += len;
        }
        state.chain.push(Buffer {
            addr: state.slots.addr() + state.status_offset(slot) as u64,
            len: 1,
            device_writable: true,
        });
        // SAFETY: header and status live in `state.slots`, which the device
        // owns until the chain is popped (the slot is only freed then); the
        // data buffer is this function's caller's obligation.
        match unsafe { state.queue.push(&state.chain) } {
            Some(head) => {
                state.slot_of_head[usize::from(head)] = slot;
                true
            }
            None => {
                state.free_slots.push(slot);
                false
            }
        }
    }

    /// Read or write requests covering `len` bytes at bus address `data`,
    /// starting at block `lba`.
    fn transfer(
        &self,
        kind: u32,
        lba: u64,
        data: u64,
        len: usize,
    ) -> impl Iterator<Item = Request> {
        let sectors_per_block = u64::from(self.block_size / SECTOR_BYTES);
        let first_sector = lba.saturating_mul(sectors_per_block);
        split_transfer(len, self.limits.request_bytes).map(move |(offset, bytes)| Request {
            kind,
            sector: first_sector + (offset / SECTOR_BYTES as usize) as u64,
            data: data + offset as u64,
            bytes,
        })
    }
}

impl BlockDevice for VirtioBlk {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn num_blocks(&self) -> u64 {
        self.num_blocks
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let geometry = Geometry {
            block_size: self.block_size,
            num_blocks: self.num_blocks,
        };
        self.read_ahead.read(geometry, lba, buf, |lba, buf| {
            // Identity mapping: the buffer's address is its bus address.
            let data = buf.as_mut_ptr() as u64;
            // SAFETY: `buf` is borrowed mutably until `run` returns, and
            // `run` returns only after the device is done with it.
            let result = unsafe { self.run(self.transfer(VIRTIO_BLK_T_IN, lba, data, buf.len())) };
            // The device wrote `buf` behind the compiler's back; order our
            // later reads of it after the completions we observed.
            fence(Ordering::SeqCst);
            result
        })
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        let blocks = self.check_request(lba, buf.len())?;
        self.read_ahead.invalidate(lba, blocks);
        fence(Ordering::SeqCst);
        let data = buf.as_ptr() as u64;
        // SAFETY: `buf` is borrowed until `run` returns, and the device only
        // reads it (VIRTIO_BLK_T_OUT).
        unsafe { self.run(self.transfer(VIRTIO_BLK_T_OUT, lba, data, buf.len())) }
    }

    /// Without VIRTIO_BLK_F_FLUSH the device has no volatile cache to flush
    /// (§5.2.6.2), so there is nothing to do.
    fn flush(&self) -> Result<(), BlockError> {
        if !self.can_flush {
            return Ok(());
        }
        // SAFETY: a flush carries no data buffer.
        unsafe {
            self.run(core::iter::once(Request {
                kind: VIRTIO_BLK_T_FLUSH,
                sector: 0,
                data: 0,
                bytes: 0,
            }))
        }
    }
}

impl Drop for VirtioBlk {
    /// The queue memory is freed with `self`: stop the device using it first.
    fn drop(&mut self) {
        if !self.stopped.get() {
            self.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mmio::Mmio;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU32};

    fn read<T: Copy>(addr: u64) -> T {
        // SAFETY: tests only pass addresses of queue memory or of buffers
        // the driver handed to the device, alive while the device runs.
        unsafe { core::ptr::read_volatile(addr as *const T) }
    }

    fn write<T: Copy>(addr: u64, value: T) {
        // SAFETY: as for `read`.
        unsafe { core::ptr::write_volatile(addr as *mut T, value) }
    }

    /// A virtio-blk device model running on another thread, as a real
    /// device runs beside the driver: it serves the split queue against an
    /// in-memory disk.
    struct SimulatedDevice {
        descriptors: u64,
        avail: u64,
        used: u64,
        size: u16,
        disk: Mutex<Vec<u8>>,
        failing_sector: Option<u64>,
        most_segments: AtomicU32,
        largest_segment: AtomicU32,
    }

    impl SimulatedDevice {
        fn serve(&self, stop: &AtomicBool) {
            let (mut last_avail, mut used_idx) = (0u16, 0u16);
            while !stop.load(Ordering::SeqCst) {
                let avail_idx: u16 = read(self.avail + 2);
                fence(Ordering::SeqCst);
                while last_avail != avail_idx {
                    let head: u16 = read(self.avail + 4 + 2 * u64::from(last_avail % self.size));
                    let mut chain = Vec::new();
                    let mut index = head;
                    loop {
                        let at = self.descriptors + 16 * u64::from(index);
                        let flags: u16 = read(at + 12);
                        chain.push((read::<u64>(at), read::<u32>(at + 8), flags & 2 != 0));
                        if flags & 1 == 0 {
                            break;
                        }
                        index = read(at + 14);
                    }
                    let (header, _, _) = chain[0];
                    let (status_addr, status_len, status_writable) = *chain.last().unwrap();
                    assert!(status_len == 1 && status_writable);
                    let kind: u32 = read(header);
                    let sector: u64 = read(header + 8);
                    let data = &chain[1..chain.len() - 1];
                    self.most_segments
                        .fetch_max(data.len() as u32, Ordering::SeqCst);
                    let mut position = sector as usize * 512;
                    let mut disk = self.disk.lock().unwrap();
                    for &(addr, len, writable) in data {
                        self.largest_segment.fetch_max(len, Ordering::SeqCst);
                        let len = len as usize;
                        assert_eq!(writable, kind == VIRTIO_BLK_T_IN);
                        let on_disk = &mut disk[position..position + len];
                        // SAFETY: the driver handed over `len` bytes at `addr`.
                        let buffer =
                            unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len) };
                        match kind {
                            VIRTIO_BLK_T_IN => buffer.copy_from_slice(on_disk),
                            _ => on_disk.copy_from_slice(buffer),
                        }
                        position += len;
                    }
                    let failed = self.failing_sector.is_some_and(|bad| {
                        let end = position as u64 / 512;
                        kind != VIRTIO_BLK_T_FLUSH && (sector..end).contains(&bad)
                    });
                    write(
                        status_addr,
                        if failed {
                            VIRTIO_BLK_S_IOERR
                        } else {
                            VIRTIO_BLK_S_OK
                        },
                    );
                    let slot = self.used + 4 + 8 * u64::from(used_idx % self.size);
                    write(slot, u32::from(head));
                    write(slot + 4, 1u32);
                    fence(Ordering::SeqCst);
                    used_idx = used_idx.wrapping_add(1);
                    write(self.used + 2, used_idx);
                    last_avail = last_avail.wrapping_add(1);
                }
                std::thread::yield_now();
            }
        }
    }

    /// Builds a driver over plain memory registers and a device model with
    /// `blocks` 512-byte blocks whose bytes are a pattern.
    fn rig(blocks: usize, failing_sector: Option<u64>) -> (VirtioBlk, SimulatedDevice) {
        // Leaked so they outlive the driver, whose drop resets the device.
        let registers: &'static mut [u64; 9] = Box::leak(Box::new([0; 9]));
        // SAFETY: leaked memory lives forever and nothing else uses it.
        let common = unsafe { Mmio::new(registers.as_ptr() as u64, 64) };
        // SAFETY: as above; the last word is the doorbell.
        let notify = unsafe { Mmio::new(registers[8..].as_ptr() as u64, 8) };
        common.write(
            offset_of!(super::super::pci::CommonCfg, queue_size) as u64,
            16u16,
        );
        let transport = VirtioPciTransport::over_memory(common, notify);
        let queue = SplitQueue::new(16).unwrap();
        // SAFETY: `queue` moves into the returned `VirtioBlk`; the tests run
        // the simulated device in a thread scope that ends before it drops.
        let notifier = unsafe { transport.setup_queue(0, &queue) }.unwrap();
        let device = SimulatedDevice {
            descriptors: queue.descriptor_table_addr(),
            avail: queue.available_ring_addr(),
            used: queue.used_ring_addr(),
            size: 16,
            disk: Mutex::new((0..blocks * 512).map(|i| (i * 7 % 251) as u8).collect()),
            failing_sector,
            most_segments: AtomicU32::new(0),
            largest_segment: AtomicU32::new(0),
        };
        let blk = VirtioBlk {
            transport,
            block_size: 512,
            num_blocks: blocks as u64,
            read_only: false,
            can_flush: true,
            limits: RequestLimits::new(Some(4096), Some(4), 16, 512).unwrap(),
            stopped: Cell::new(false),
            state: RefCell::new(QueueState {
                queue,
                notifier,
                slots: DmaRegion::new(17 * 16).unwrap(),
                slot_count: 16,
                free_slots: (0..16).collect(),
                slot_of_head: vec![0; 16],
                chain: Vec::new(),
            }),
            read_ahead: ReadAhead::new(),
        };
        (blk, device)
    }

    #[test]
    fn reads_and_writes_through_a_simulated_device() {
        let (blk, device) = rig(1024, None);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| device.serve(&stop));
            // 200 KiB from block 3: 13 requests of up to 4 x 4 KiB segments.
            let mut buffer = vec![0u8; 400 * 512];
            blk.read_blocks(3, &mut buffer).unwrap();
            assert_eq!(buffer[..], device.disk.lock().unwrap()[3 * 512..403 * 512]);

            let pattern: Vec<u8> = (0..40 * 512).map(|i| (i % 13) as u8).collect();
            blk.write_blocks(600, &pattern).unwrap();
            blk.flush().unwrap();
            let mut back = vec![0u8; pattern.len()];
            blk.read_blocks(600, &mut back).unwrap();
            assert_eq!(back, pattern);
            assert_eq!(
                blk.read_blocks(1020, &mut [0u8; 8 * 512]),
                Err(BlockError::OutOfRange {
                    lba: 1020,
                    blocks: 8
                })
            );
            stop.store(true, Ordering::SeqCst);
        });
        assert_eq!(device.most_segments.load(Ordering::SeqCst), 4);
        assert_eq!(device.largest_segment.load(Ordering::SeqCst), 4096);
        assert_eq!(blk.state.borrow().queue.free_descriptors(), 16);
    }

    #[test]
    fn device_errors_surface_after_all_requests_finish() {
        let (blk, device) = rig(256, Some(100));
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| device.serve(&stop));
            let mut buffer = vec![0u8; 200 * 512];
            assert_eq!(
                blk.read_blocks(0, &mut buffer),
                Err(BlockError::Device(VIRTIO_BLK_S_IOERR))
            );
            // Nothing is left in flight, and the device keeps working.
            assert_eq!(blk.state.borrow().queue.free_descriptors(), 16);
            blk.read_blocks(0, &mut buffer[..64 * 512]).unwrap();
            stop.store(true, Ordering::SeqCst);
        });
        blk.reset();
        assert_eq!(
            blk.read_blocks(0, &mut [0u8; 512]),
            Err(BlockError::Timeout)
        );
    }

    #[test]
    fn limits_without_seg_or_size_max_use_one_large_segment() {
        let limits = RequestLimits::new(None, None, 256, 512).unwrap();
        assert_eq!(
            limits,
            RequestLimits {
                segment_bytes: MAX_REQUEST_BYTES,
                segments: 1,
                request_bytes: MAX_REQUEST_BYTES
            }
        );
    }

    #[test]
    fn limits_honour_size_max_seg_max_and_queue_size() {
        // QEMU-like: seg_max 126, no size_max.
        let limits = RequestLimits::new(None, Some(126), 128, 512).unwrap();
        assert_eq!(limits.request_bytes, MAX_REQUEST_BYTES);
        // Small segments: 4 x 4 KiB.
        let limits = RequestLimits::new(Some(4096), Some(4), 256, 512).unwrap();
        assert_eq!(
            (limits.segment_bytes, limits.segments, limits.request_bytes),
            (4096, 4, 16384)
        );
        assert_eq!(limits.segments_for(16384), 4);
        assert_eq!(limits.segments_for(16383), 4);
        assert_eq!(limits.segments_for(4097), 2);
        // seg_max larger than the queue can chain.
        let limits = RequestLimits::new(Some(4096), Some(1000), 8, 512).unwrap();
        assert_eq!(limits.segments, 6);
        // Requests stay whole blocks even when segments are not.
        let limits = RequestLimits::new(Some(3000), Some(3), 256, 4096).unwrap();
        assert_eq!(limits.request_bytes, 8192);
        // A device whose limits cannot carry one block is unusable.
        assert_eq!(RequestLimits::new(Some(1000), Some(2), 256, 4096), None);
        assert_eq!(RequestLimits::new(None, None, 2, 512), None);
    }

    #[test]
    fn transfers_split_into_bounded_requests() {
        let pieces: Vec<_> = split_transfer(5000, 2048).collect();
        assert_eq!(pieces, [(0, 2048), (2048, 2048), (4096, 904)]);
        assert_eq!(split_transfer(0, 2048).count(), 0);
        let sixty_four_mib = 64 << 20;
        let pieces: Vec<_> = split_transfer(sixty_four_mib, MAX_REQUEST_BYTES).collect();
        assert_eq!(pieces.len(), 64);
        assert!(pieces.iter().all(|&(_, bytes)| bytes == MAX_REQUEST_BYTES));
        assert_eq!(pieces.last().unwrap().0, sixty_four_mib - (1 << 20));
    }

    #[test]
    fn blk_config_matches_the_spec_layout() {
        assert_eq!(offset_of!(BlkConfig, size_max), 8);
        assert_eq!(offset_of!(BlkConfig, seg_max), 12);
        assert_eq!(offset_of!(BlkConfig, blk_size), 20);
        assert_eq!(offset_of!(BlkConfig, writeback), 32);
        assert_eq!(offset_of!(BlkConfig, num_queues), 34);
    }
}
