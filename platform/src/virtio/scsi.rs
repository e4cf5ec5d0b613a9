//! virtio-scsi (virtio 1.2 §5.6) over the modern PCI transport, polled: the
//! transport that carries `scsi::disk`'s commands to the disks and CD-ROMs
//! of a `virtio-scsi-pci` controller.
//!
//! One request queue (the first, queue 2) carries every command, one at a
//! time, with one data descriptor (the firmware's buffers, stack ones
//! included, are identity mapped and contiguous). The control and event
//! queues are not set up: the firmware sends no task management and takes
//! no hot-plug events.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::sync::atomic::{Ordering, fence};

use super::pci::{Notifier, VirtioPciTransport};
use super::queue::{Buffer, DmaRegion, SplitQueue};
use super::{MODERN_DEVICE_ID_BASE, VIRTIO_VENDOR_ID, VirtioError};
use crate::block::BlockError;
use crate::pci::{Bdf, ConfigAccess, PciDevice};
use crate::scsi::disk::{Data, Outcome, ScsiDisk, ScsiTransport, probe_units};
use crate::scsi::{self, Cdb, Sense};

/// Virtio device type 8 (§5.6): modern ID 0x1048, transitional ID 0x1004.
pub const SCSI_MODERN_DEVICE_ID: u16 = MODERN_DEVICE_ID_BASE + 8;
pub const SCSI_TRANSITIONAL_DEVICE_ID: u16 = 0x1004;

/// struct virtio_scsi_config offsets (§5.6.4).
mod config {
    pub const CDB_SIZE: usize = 24;
    pub const MAX_TARGET: usize = 30;
}

/// The first request queue (§5.6.2: 0 control, 1 event, 2.. requests).
const REQUEST_QUEUE: u16 = 2;
const QUEUE_SIZE: u16 = 16;
/// virtio_scsi_cmd_req: lun[8], id, task_attr, prio, crn, then the CDB
/// (`cdb_size` bytes, 32 by default; we write 16 and zero the rest).
const REQUEST_HEADER: usize = 19;
const CDB_BYTES: usize = 32;
/// virtio_scsi_cmd_resp: sense_len, resid, status_qualifier, status,
/// response, sense[96].
const RESPONSE_BYTES: usize = 108;
const RESPONSE_STATUS: usize = 10;
const RESPONSE_RESPONSE: usize = 11;
const RESPONSE_SENSE: usize = 12;
/// virtio-scsi response codes (§5.6.6.1).
const VIRTIO_SCSI_S_OK: u8 = 0;
const VIRTIO_SCSI_S_BAD_TARGET: u8 = 3;
/// Targets probed: QEMU numbers them from 0 as devices are added.
const MAX_TARGETS: u16 = 64;
/// Polls of the used ring without a completion before giving up.
const POLL_SPINS: u64 = 500_000_000;

struct Queue {
    queue: SplitQueue,
    notifier: Notifier,
    /// Request header + CDB, then the response.
    slots: DmaRegion,
}

/// A virtio-scsi controller; its logical units share it.
pub struct VirtioScsi {
    transport: VirtioPciTransport,
    state: RefCell<Queue>,
    stopped: Cell<bool>,
}

impl VirtioScsi {
    /// Brings `device` up with its first request queue.
    ///
    /// # Safety
    /// As for [`VirtioPciTransport::new`].
    pub unsafe fn new(access: &dyn ConfigAccess, device: &PciDevice) -> Result<Self, VirtioError> {
        // SAFETY: this function's contract is the transport's.
        let transport = unsafe { VirtioPciTransport::new(access, device) }?;
        transport.negotiate(0)?;
        let bdf = transport.bdf();
        let set_up = || -> Result<Queue, VirtioError> {
            // A CDB size other than ours would move the data after it; it
            // is checked before the device gets any memory.
            let cdb_size = transport.config_read::<u32>(config::CDB_SIZE);
            if cdb_size != Some(CDB_BYTES as u32) {
                return Err(VirtioError::UnusableConfig {
                    bdf,
                    what: "cdb_size",
                    value: cdb_size.unwrap_or(0).into(),
                });
            }
            if transport.max_queue_size(REQUEST_QUEUE) < QUEUE_SIZE {
                return Err(VirtioError::QueueUnavailable {
                    bdf,
                    queue: REQUEST_QUEUE,
                });
            }
            let queue = SplitQueue::new(QUEUE_SIZE)?;
            let slots = DmaRegion::new(REQUEST_HEADER + CDB_BYTES + RESPONSE_BYTES)?;
            // SAFETY: the queue moves into the controller, which resets the
            // device before the queue is freed (`Drop`, `reset`).
            let notifier = unsafe { transport.setup_queue(REQUEST_QUEUE, &queue) }?;
            Ok(Queue {
                queue,
                notifier,
                slots,
            })
        };
        match set_up() {
            Ok(state) => {
                transport.driver_ok();
                Ok(VirtioScsi {
                    transport,
                    state: RefCell::new(state),
                    stopped: Cell::new(false),
                })
            }
            Err(error) => {
                transport.fail();
                Err(error)
            }
        }
    }
}

impl ScsiTransport for VirtioScsi {
    fn bdf(&self) -> Bdf {
        self.transport.bdf()
    }

    fn no_such_target(&self, outcome: Outcome) -> bool {
        outcome == Outcome::Transport(VIRTIO_SCSI_S_BAD_TARGET)
    }

    /// Stops all DMA (ExitBootServices); later commands fail.
    fn reset(&self) {
        if !self.stopped.replace(true)
            && let Err(error) = self.transport.reset()
        {
            log::error!("virtio-scsi: {error}");
        }
    }

    fn max_target(&self) -> u16 {
        self.transport
            .config_read::<u16>(config::MAX_TARGET)
            .unwrap_or(0)
            .min(MAX_TARGETS - 1)
    }

    /// Sends `cdb` to `target`/`lun` and waits for it.
    fn command(&self, target: u16, lun: u16, cdb: &Cdb, data: Data) -> Result<Outcome, BlockError> {
        if self.stopped.get() {
            return Err(BlockError::Timeout);
        }
        let mut state = self.state.borrow_mut();
        let Queue {
            queue,
            notifier,
            slots,
        } = &mut *state;
        // §5.6.6.1: LUN addressing byte 0 = 1, byte 1 = target, bytes 2-3
        // the LUN in flat space addressing.
        let mut lun_bytes = [0u8; 8];
        lun_bytes[0] = 1;
        lun_bytes[1] = target as u8;
        lun_bytes[2..4].copy_from_slice(&(0x4000 | (lun & 0x3FFF)).to_be_bytes());
        let mut header = [0u8; REQUEST_HEADER + CDB_BYTES];
        header[..8].copy_from_slice(&lun_bytes);
        // id 0, task_attr SIMPLE (0), prio 0, crn 0.
        header[REQUEST_HEADER..REQUEST_HEADER + 16].copy_from_slice(cdb);
        write_bytes(slots, 0, &header);
        let response = REQUEST_HEADER + CDB_BYTES;
        slots.write(response + RESPONSE_RESPONSE, 0xFFu8);
        let request = Buffer {
            addr: slots.addr(),
            len: (REQUEST_HEADER + CDB_BYTES) as u32,
            device_writable: false,
        };
        let response_buffer = Buffer {
            addr: slots.addr() + response as u64,
            len: RESPONSE_BYTES as u32,
            device_writable: true,
        };
        // §5.6.6: device-readable data, then the response, then device-
        // writable data. Identity mapping: a buffer's address is its bus
        // address.
        let data_buffer = |addr: u64, len: usize, device_writable| Buffer {
            addr,
            len: len as u32,
            device_writable,
        };
        let chain: [Buffer; 3];
        let chain: &[Buffer] = match &data {
            Data::None => {
                chain = [request, response_buffer, response_buffer];
                &chain[..2]
            }
            Data::Out(buf) => {
                chain = [
                    request,
                    data_buffer(buf.as_ptr() as u64, buf.len(), false),
                    response_buffer,
                ];
                &chain
            }
            Data::In(buf) => {
                chain = [
                    request,
                    response_buffer,
                    data_buffer(buf.as_ptr() as u64, buf.len(), true),
                ];
                &chain
            }
        };
        fence(Ordering::SeqCst);
        // SAFETY: the request and response live in `slots`, and the data
        // buffer is borrowed by `data` until this function returns, which
        // is after the chain is back or the device was reset.
        if unsafe { queue.push(chain) }.is_none() {
            return Err(BlockError::Device(0xFF));
        }
        notifier.notify();
        let mut spins = 0u64;
        while queue.pop_used().is_none() {
            spins += 1;
            if spins > POLL_SPINS {
                drop(state);
                log::error!(
                    "virtio-scsi at {}: command timed out; resetting",
                    self.bdf()
                );
                // The reset ends the device's DMA into the caller's buffer.
                self.reset();
                return Err(BlockError::Timeout);
            }
            core::hint::spin_loop();
        }
        fence(Ordering::SeqCst);
        let transport_response: u8 = slots.read(response + RESPONSE_RESPONSE);
        if transport_response != VIRTIO_SCSI_S_OK {
            return Ok(Outcome::Transport(transport_response));
        }
        let status: u8 = slots.read(response + RESPONSE_STATUS);
        if status == scsi::STATUS_GOOD {
            return Ok(Outcome::Good);
        }
        let sense: [u8; 18] = read_bytes(slots, response + RESPONSE_SENSE);
        Ok(Outcome::Failed {
            status,
            sense: (status == scsi::STATUS_CHECK_CONDITION)
                .then(|| Sense::parse(&sense))
                .flatten(),
        })
    }
}

/// Byte-wise copies into and out of DMA memory (its accessors want
/// naturally aligned fields; these buffers are bytes).
fn write_bytes(region: &DmaRegion, offset: usize, bytes: &[u8]) {
    for (i, &byte) in bytes.iter().enumerate() {
        region.write(offset + i, byte);
    }
}

fn read_bytes<const N: usize>(region: &DmaRegion, offset: usize) -> [u8; N] {
    core::array::from_fn(|i| region.read(offset + i))
}

impl Drop for VirtioScsi {
    fn drop(&mut self) {
        self.reset();
    }
}

pub fn is_virtio_scsi(device: &PciDevice) -> bool {
    device.vendor == VIRTIO_VENDOR_ID
        && (device.device == SCSI_MODERN_DEVICE_ID || device.device == SCSI_TRANSITIONAL_DEVICE_ID)
}

/// Every disk and CD-ROM with media on every virtio-scsi controller in
/// `devices` (`scsi::disk::probe_units`: targets 0..=max_target, at most
/// [`MAX_TARGETS`]). Controllers that fail are logged and skipped.
///
/// # Safety
/// As for [`VirtioScsi::new`], for every device in `devices`.
pub unsafe fn probe_all(access: &dyn ConfigAccess, devices: &[PciDevice]) -> Vec<ScsiDisk> {
    let mut disks = Vec::new();
    for device in devices.iter().filter(|d| is_virtio_scsi(d)) {
        // SAFETY: the caller vouches for every device in `devices`.
        match unsafe { VirtioScsi::new(access, device) } {
            Ok(controller) => {
                let controller: Rc<dyn ScsiTransport> = Rc::new(controller);
                disks.extend(probe_units(&controller));
            }
            Err(error) => log::error!("virtio-scsi: {error}"),
        }
    }
    disks
}
