//! virtio-rng, the entropy device (virtio 1.2 §5.4), over the modern PCI
//! transport, polled.
//!
//! The device has one queue (requestq) and no feature bits or
//! configuration: the driver offers device-writable buffers and the device
//! fills them with random bytes, reporting how many in the used ring (it
//! may write fewer than offered). One request is in flight at a time, into
//! a page-sized bounce buffer owned by the driver, so the caller's memory
//! is never handed to the device.

use core::cell::{Cell, RefCell};
use core::sync::atomic::{Ordering, fence};

use super::pci::{Notifier, VirtioPciTransport};
use super::queue::{Buffer, DmaRegion, SplitQueue};
use super::{MODERN_DEVICE_ID_BASE, VIRTIO_VENDOR_ID, VirtioError};
use crate::pci::{Bdf, ConfigAccess, PciDevice};

/// Virtio device type 4 (§5): modern ID 0x1044, transitional ID 0x1005.
pub const RNG_MODERN_DEVICE_ID: u16 = MODERN_DEVICE_ID_BASE + 4;
pub const RNG_TRANSITIONAL_DEVICE_ID: u16 = 0x1005;

/// Bytes asked of the device per request (and the bounce buffer's size).
pub const REQUEST_BYTES: usize = 4096;
/// Queue entries: one request at a time needs one descriptor; a few spare.
const PREFERRED_QUEUE_SIZE: u16 = 4;
/// Polls of the used ring without a completion before giving up. A device
/// that answers at all does so within microseconds (QEMU's reads the host
/// RNG); this bound, with a `pause` per poll, ends a dead device's wait
/// within about a second (a few under emulation), never a hang.
const POLL_SPINS_WITHOUT_PROGRESS: u64 = 50_000_000;
/// Requests in a row that return no bytes before giving up, so a device
/// that keeps completing empty requests cannot keep us looping.
const EMPTY_COMPLETIONS_ALLOWED: u32 = 16;

/// Why a read of the device failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RngError {
    /// The device was reset (at ExitBootServices or after a timeout).
    Stopped,
    /// The device did not complete a request in time; it was reset.
    Timeout,
    /// The device kept completing requests without writing any bytes.
    NoProgress,
}

/// The queue and the bounce buffer shared with the device.
struct QueueState {
    queue: SplitQueue,
    notifier: Notifier,
    bounce: DmaRegion,
}

/// A virtio-rng device.
pub struct VirtioRng {
    transport: VirtioPciTransport,
    /// Polls of the used ring before a request times out.
    poll_spins: u64,
    stopped: Cell<bool>,
    state: RefCell<QueueState>,
}

pub fn is_virtio_rng(device: &PciDevice) -> bool {
    device.vendor == VIRTIO_VENDOR_ID
        && (device.device == RNG_MODERN_DEVICE_ID || device.device == RNG_TRANSITIONAL_DEVICE_ID)
}

/// Initialises the first virtio-rng function in `devices`, if any (one
/// entropy source is all the firmware needs). A device that fails is
/// logged and the next one tried. Costs nothing when there is none: the
/// PCI list is already in memory.
///
/// # Safety
/// As for [`VirtioRng::new`], for every device in `devices`.
pub unsafe fn probe_first(access: &dyn ConfigAccess, devices: &[PciDevice]) -> Option<VirtioRng> {
    devices
        .iter()
        .filter(|device| is_virtio_rng(device))
        // SAFETY: the caller vouches for every device in `devices`.
        .find_map(|device| match unsafe { VirtioRng::new(access, device) } {
            Ok(rng) => Some(rng),
            Err(error) => {
                log::error!("virtio-rng: {error}");
                None
            }
        })
}

impl VirtioRng {
    /// Drives `device` through §3.1.1 initialisation with its one queue.
    ///
    /// # Safety
    /// As for [`VirtioPciTransport::new`]: `device` comes from
    /// `pci::enumerate` over `access`, its BARs placed in PCI address space.
    pub unsafe fn new(access: &dyn ConfigAccess, device: &PciDevice) -> Result<Self, VirtioError> {
        // SAFETY: this function's contract is the transport's.
        let transport = unsafe { VirtioPciTransport::new(access, device) }?;
        // §5.4.3: the device has no feature bits of its own.
        transport.negotiate(0)?;
        match Self::set_up(transport) {
            Ok(rng) => Ok(rng),
            Err((transport, error)) => {
                transport.fail();
                Err(error)
            }
        }
    }

    fn set_up(transport: VirtioPciTransport) -> Result<Self, (VirtioPciTransport, VirtioError)> {
        let bdf = transport.bdf();
        let max_queue = transport.max_queue_size(0);
        if max_queue == 0 {
            return Err((transport, VirtioError::QueueUnavailable { bdf, queue: 0 }));
        }
        // Largest power of two the device accepts, capped at our preference.
        let queue_size = 1u16 << (15 - max_queue.min(PREFERRED_QUEUE_SIZE).leading_zeros());
        let queue = match SplitQueue::new(queue_size) {
            Ok(queue) => queue,
            Err(error) => return Err((transport, error)),
        };
        let bounce = match DmaRegion::new(REQUEST_BYTES) {
            Ok(bounce) => bounce,
            Err(error) => return Err((transport, error)),
        };
        // SAFETY: `queue` moves into the `VirtioRng` built below, which
        // resets the device before the queue is freed (`Drop`, `reset`), and
        // the transport is dropped with it on the error path.
        let notifier = match unsafe { transport.setup_queue(0, &queue) } {
            Ok(notifier) => notifier,
            Err(error) => return Err((transport, error)),
        };
        transport.driver_ok();
        log::info!("virtio-rng at {bdf}: queue {queue_size}");
        Ok(VirtioRng {
            transport,
            poll_spins: POLL_SPINS_WITHOUT_PROGRESS,
            stopped: Cell::new(false),
            state: RefCell::new(QueueState {
                queue,
                notifier,
                bounce,
            }),
        })
    }

    /// The PCI function, for the device path.
    pub fn bdf(&self) -> Bdf {
        self.transport.bdf()
    }

    /// Resets the device so it stops all DMA, e.g. before the OS takes over
    /// at ExitBootServices (the OS's driver then finds it in its reset
    /// state). Later reads fail with `RngError::Stopped`.
    pub fn reset(&self) {
        self.stopped.set(true);
        if let Err(error) = self.transport.reset() {
            log::error!("virtio-rng: {error}");
        }
    }

    /// Fills `buf` with bytes from the device, one bounce-buffer request at
    /// a time. On a timeout the device is reset (its DMA ends) first.
    pub fn fill(&self, buf: &mut [u8]) -> Result<(), RngError> {
        if self.stopped.get() {
            return Err(RngError::Stopped);
        }
        let mut state = self.state.borrow_mut();
        let mut filled = 0;
        let mut empty_completions = 0;
        while filled < buf.len() {
            let want = (buf.len() - filled).min(REQUEST_BYTES);
            let got = self.request(&mut state, want)?;
            if got == 0 {
                empty_completions += 1;
                if empty_completions > EMPTY_COMPLETIONS_ALLOWED {
                    return Err(RngError::NoProgress);
                }
                continue;
            }
            empty_completions = 0;
            let got = got.min(want);
            for (offset, byte) in buf[filled..filled + got].iter_mut().enumerate() {
                *byte = state.bounce.read(offset);
            }
            filled += got;
        }
        Ok(())
    }

    /// One request for `want` bytes into the bounce buffer; returns the
    /// bytes the device says it wrote.
    fn request(&self, state: &mut QueueState, want: usize) -> Result<usize, RngError> {
        let buffer = Buffer {
            addr: state.bounce.addr(),
            len: want as u32,
            device_writable: true,
        };
        // SAFETY: the bounce buffer belongs to `state`, which outlives the
        // device's use of it: this function waits for the chain to come back
        // or resets the device, and `Drop` resets it before freeing.
        if unsafe { state.queue.push(&[buffer]) }.is_none() {
            // Every chain we push is popped before the next: the queue is
            // never full unless the device returned garbage.
            self.reset();
            return Err(RngError::Stopped);
        }
        state.notifier.notify();
        for _ in 0..self.poll_spins {
            if let Some(used) = state.queue.pop_used() {
                // The device wrote the bounce buffer behind the compiler's
                // back; order our reads of it after the completion.
                fence(Ordering::SeqCst);
                return Ok(used.written as usize);
            }
            core::hint::spin_loop();
        }
        log::error!(
            "virtio-rng at {}: request timed out; resetting device",
            self.bdf()
        );
        self.reset();
        Err(RngError::Timeout)
    }
}

impl Drop for VirtioRng {
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
    use core::mem::offset_of;
    use std::sync::atomic::AtomicBool;

    fn read<T: Copy>(addr: u64) -> T {
        // SAFETY: tests only pass addresses of queue memory, alive while the
        // device runs.
        unsafe { core::ptr::read_volatile(addr as *const T) }
    }

    fn write<T: Copy>(addr: u64, value: T) {
        // SAFETY: as for `read`.
        unsafe { core::ptr::write_volatile(addr as *mut T, value) }
    }

    /// A virtio-rng model on another thread: fills each offered buffer with
    /// a counter pattern, at most `chunk` bytes per request (a device may
    /// write fewer bytes than offered, §5.4.6).
    struct SimulatedDevice {
        descriptors: u64,
        avail: u64,
        used: u64,
        size: u16,
        chunk: u32,
    }

    impl SimulatedDevice {
        fn serve(&self, stop: &AtomicBool) {
            let (mut last_avail, mut used_idx, mut next_byte) = (0u16, 0u16, 0u8);
            while !stop.load(Ordering::SeqCst) {
                let avail_idx: u16 = read(self.avail + 2);
                fence(Ordering::SeqCst);
                while last_avail != avail_idx {
                    let head: u16 = read(self.avail + 4 + 2 * u64::from(last_avail % self.size));
                    let at = self.descriptors + 16 * u64::from(head);
                    let (addr, len, flags): (u64, u32, u16) =
                        (read(at), read(at + 8), read(at + 12));
                    assert_eq!(flags, 2, "one device-writable descriptor");
                    let written = len.min(self.chunk);
                    for offset in 0..u64::from(written) {
                        write(addr + offset, next_byte);
                        next_byte = next_byte.wrapping_add(1);
                    }
                    let slot = self.used + 4 + 8 * u64::from(used_idx % self.size);
                    write(slot, u32::from(head));
                    write(slot + 4, written);
                    fence(Ordering::SeqCst);
                    used_idx = used_idx.wrapping_add(1);
                    write(self.used + 2, used_idx);
                    last_avail = last_avail.wrapping_add(1);
                }
                std::thread::yield_now();
            }
        }
    }

    /// Runs `body` while the simulated device serves on another thread. The
    /// device stops even when `body` panics, so a failed assertion is
    /// reported instead of the scope waiting forever for the device thread.
    fn with_device<R>(device: &SimulatedDevice, body: impl FnOnce() -> R) -> R {
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| device.serve(&stop));
            let _stop = StopOnDrop(&stop);
            body()
        })
    }

    /// Polls before a request times out with a device thread serving: enough
    /// for the thread to be scheduled on a loaded machine.
    const SERVED_SPINS: u64 = 1_000_000_000;
    /// Polls before a request to a device that never answers times out.
    const SILENT_SPINS: u64 = 100_000;

    fn rig(chunk: u32, poll_spins: u64) -> (VirtioRng, SimulatedDevice) {
        // Leaked so they outlive the driver, whose drop resets the device.
        let registers: &'static mut [u64; 9] = Box::leak(Box::new([0; 9]));
        // SAFETY: leaked memory lives forever and nothing else uses it.
        let common = unsafe { Mmio::new(registers.as_ptr() as u64, 64) };
        // SAFETY: as above; the last word is the doorbell.
        let notify = unsafe { Mmio::new(registers[8..].as_ptr() as u64, 8) };
        common.write(
            offset_of!(super::super::pci::CommonCfg, queue_size) as u64,
            4u16,
        );
        let transport = VirtioPciTransport::over_memory(common, notify);
        let queue = SplitQueue::new(4).unwrap();
        // SAFETY: `queue` moves into the returned `VirtioRng`; the tests run
        // the simulated device in a thread scope that ends before it drops.
        let notifier = unsafe { transport.setup_queue(0, &queue) }.unwrap();
        let device = SimulatedDevice {
            descriptors: queue.descriptor_table_addr(),
            avail: queue.available_ring_addr(),
            used: queue.used_ring_addr(),
            size: 4,
            chunk,
        };
        let rng = VirtioRng {
            transport,
            poll_spins,
            stopped: Cell::new(false),
            state: RefCell::new(QueueState {
                queue,
                notifier,
                bounce: DmaRegion::new(REQUEST_BYTES).unwrap(),
            }),
        };
        (rng, device)
    }

    #[test]
    fn short_completions_are_stitched_together() {
        let (rng, device) = rig(100, SERVED_SPINS);
        with_device(&device, || {
            // Larger than the bounce buffer, and not a multiple of the chunk.
            let mut buf = vec![0u8; REQUEST_BYTES + 1234];
            rng.fill(&mut buf).unwrap();
            let expected: Vec<u8> = (0..buf.len()).map(|i| i as u8).collect();
            assert_eq!(buf, expected);
        });
        assert_eq!(rng.state.borrow().queue.free_descriptors(), 4);
    }

    #[test]
    fn a_device_writing_nothing_is_an_error_not_a_hang() {
        let (rng, device) = rig(0, SERVED_SPINS);
        let result = with_device(&device, || rng.fill(&mut [0u8; 16]));
        assert_eq!(result, Err(RngError::NoProgress));
    }

    #[test]
    fn a_silent_device_times_out_and_is_reset() {
        // No device thread: nothing ever completes.
        let (rng, _device) = rig(100, SILENT_SPINS);
        assert_eq!(rng.fill(&mut [0u8; 16]), Err(RngError::Timeout));
        assert_eq!(rng.fill(&mut [0u8; 16]), Err(RngError::Stopped));
    }

    #[test]
    fn reads_fail_once_the_device_is_reset() {
        let (rng, _device) = rig(100, SILENT_SPINS);
        rng.reset();
        assert_eq!(rng.fill(&mut [0u8; 16]), Err(RngError::Stopped));
    }
}
