//! virtio-scsi (virtio 1.2 §5.6) over the modern PCI transport, polled: the
//! disks and CD-ROMs of a `virtio-scsi-pci` controller as block devices.
//!
//! One request queue (the first, queue 2) carries every command, one at a
//! time; a transfer is cut into commands of at most [`MAX_COMMAND_BYTES`]
//! (one data descriptor each: the firmware's buffers are identity mapped and
//! contiguous), so a large read is a few large commands. The control and
//! event queues are not set up: the firmware sends no task management and
//! takes no hot-plug events.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::sync::atomic::{Ordering, fence};

use super::pci::{Notifier, VirtioPciTransport};
use super::queue::{Buffer, DmaRegion, SplitQueue};
use super::{MODERN_DEVICE_ID_BASE, VIRTIO_VENDOR_ID, VirtioError};
use crate::block::{BlockDevice, BlockError};
use crate::pci::{Bdf, ConfigAccess, PciDevice};
use crate::scsi::{self, Capacity, Cdb, Inquiry, Sense};

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
/// Largest data transfer of one command.
pub const MAX_COMMAND_BYTES: usize = 1 << 20;
/// Small answers (INQUIRY, READ CAPACITY, REPORT LUNS) land here.
const SMALL_DATA: usize = 4096;
/// Targets probed: QEMU numbers them from 0 as devices are added.
const MAX_TARGETS: u16 = 64;
const MAX_LUNS_PER_TARGET: usize = 16;
/// Polls of the used ring without a completion before giving up.
const POLL_SPINS: u64 = 500_000_000;
/// TEST UNIT READY retries while a unit reports UNIT ATTENTION (a reset or a
/// media change it reports once).
const UNIT_ATTENTION_RETRIES: usize = 4;

/// What one command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Good,
    /// CHECK CONDITION with its sense, or another SCSI status.
    Failed {
        status: u8,
        sense: Option<Sense>,
    },
    /// The transport refused it (no such target, ...): the virtio response.
    Transport(u8),
}

struct Queue {
    queue: SplitQueue,
    notifier: Notifier,
    /// Request header + CDB, then the response, then the small data buffer.
    slots: DmaRegion,
}

/// A virtio-scsi controller; its logical units share it.
pub struct VirtioScsi {
    transport: VirtioPciTransport,
    state: RefCell<Queue>,
    stopped: Cell<bool>,
}

/// Data moved by a command.
enum Data<'a> {
    None,
    In(&'a mut [u8]),
    Out(&'a [u8]),
    /// Into the controller's small data buffer, `len` bytes.
    Small(usize),
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
            if transport.max_queue_size(REQUEST_QUEUE) < QUEUE_SIZE {
                return Err(VirtioError::QueueUnavailable {
                    bdf,
                    queue: REQUEST_QUEUE,
                });
            }
            let queue = SplitQueue::new(QUEUE_SIZE)?;
            let slots = DmaRegion::new(REQUEST_HEADER + CDB_BYTES + RESPONSE_BYTES + SMALL_DATA)?;
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
                // A CDB size other than ours would move the data after it.
                let cdb_size = transport.config_read::<u32>(config::CDB_SIZE);
                if cdb_size != Some(CDB_BYTES as u32) {
                    transport.fail();
                    return Err(VirtioError::UnusableConfig {
                        bdf,
                        what: "cdb_size",
                        value: cdb_size.unwrap_or(0).into(),
                    });
                }
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

    pub fn bdf(&self) -> Bdf {
        self.transport.bdf()
    }

    /// Stops all DMA (ExitBootServices); later commands fail.
    pub fn reset(&self) {
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
        let small = response + RESPONSE_BYTES;
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
            Data::Small(len) => {
                chain = [
                    request,
                    response_buffer,
                    data_buffer(slots.addr() + small as u64, (*len).min(SMALL_DATA), true),
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

    /// A small command's answer (at most [`SMALL_DATA`] bytes).
    fn query<const N: usize>(&self, target: u16, lun: u16, cdb: &Cdb) -> Option<[u8; N]> {
        match self.command(target, lun, cdb, Data::Small(N)) {
            Ok(Outcome::Good) => {
                let offset = REQUEST_HEADER + CDB_BYTES + RESPONSE_BYTES;
                Some(read_bytes(&self.state.borrow().slots, offset))
            }
            _ => None,
        }
    }

    /// Whether the unit has its medium, after letting a pending UNIT
    /// ATTENTION pass.
    fn media_present(&self, target: u16, lun: u16) -> bool {
        for _ in 0..UNIT_ATTENTION_RETRIES {
            match self.command(target, lun, &scsi::test_unit_ready(), Data::None) {
                Ok(Outcome::Good) => return true,
                Ok(Outcome::Failed {
                    sense: Some(sense), ..
                }) if sense.key == scsi::SENSE_UNIT_ATTENTION => continue,
                _ => return false,
            }
        }
        false
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

/// A disk or CD-ROM behind a virtio-scsi controller.
pub struct ScsiDisk {
    controller: Rc<VirtioScsi>,
    pub target: u16,
    pub lun: u16,
    pub cdrom: bool,
    capacity: Capacity,
}

impl ScsiDisk {
    pub fn bdf(&self) -> Bdf {
        self.controller.bdf()
    }

    /// Stops the controller (every unit on it).
    pub fn reset(&self) {
        self.controller.reset();
    }

    /// Commands of at most [`MAX_COMMAND_BYTES`], whole blocks each.
    fn chunk_bytes(&self) -> usize {
        let block = self.capacity.block_size as usize;
        MAX_COMMAND_BYTES - MAX_COMMAND_BYTES % block
    }

    /// One READ or WRITE of `data`'s blocks at `lba`.
    fn run(&self, write: bool, lba: u64, data: Data) -> Result<(), BlockError> {
        let len = match &data {
            Data::In(buf) => buf.len(),
            Data::Out(buf) => buf.len(),
            _ => 0,
        };
        let blocks = (len / self.capacity.block_size as usize) as u64;
        let cdb = scsi::read_write(write, lba, blocks).ok_or(BlockError::BadBufferSize(len))?;
        match self.controller.command(self.target, self.lun, &cdb, data)? {
            Outcome::Good => Ok(()),
            Outcome::Failed { status, sense } => {
                log::warn!(
                    "virtio-scsi {}:{}: {} of {blocks} blocks at LBA {lba}: status {status:#x}, sense {sense:?}",
                    self.target,
                    self.lun,
                    if write { "WRITE" } else { "READ" }
                );
                Err(BlockError::Device(status))
            }
            Outcome::Transport(response) => Err(BlockError::Device(response)),
        }
    }
}

impl BlockDevice for ScsiDisk {
    fn block_size(&self) -> u32 {
        self.capacity.block_size
    }

    fn num_blocks(&self) -> u64 {
        self.capacity.blocks
    }

    fn read_only(&self) -> bool {
        self.cdrom
    }

    /// A CD-ROM's medium can be taken out (UEFI 2.10 §13.9 RemovableMedia).
    fn removable(&self) -> bool {
        self.cdrom
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let step = self.chunk_bytes();
        let per_chunk = (step / self.capacity.block_size as usize) as u64;
        for (index, chunk) in buf.chunks_mut(step).enumerate() {
            self.run(false, lba + index as u64 * per_chunk, Data::In(chunk))?;
        }
        fence(Ordering::SeqCst);
        Ok(())
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.cdrom {
            return Err(BlockError::ReadOnly);
        }
        self.check_request(lba, buf.len())?;
        fence(Ordering::SeqCst);
        let step = self.chunk_bytes();
        let per_chunk = (step / self.capacity.block_size as usize) as u64;
        for (index, chunk) in buf.chunks(step).enumerate() {
            self.run(true, lba + index as u64 * per_chunk, Data::Out(chunk))?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), BlockError> {
        if self.cdrom {
            return Ok(());
        }
        match self.controller.command(
            self.target,
            self.lun,
            &scsi::synchronize_cache(),
            Data::None,
        )? {
            Outcome::Good => Ok(()),
            Outcome::Failed { status, .. } => Err(BlockError::Device(status)),
            Outcome::Transport(response) => Err(BlockError::Device(response)),
        }
    }
}

pub fn is_virtio_scsi(device: &PciDevice) -> bool {
    device.vendor == VIRTIO_VENDOR_ID
        && (device.device == SCSI_MODERN_DEVICE_ID || device.device == SCSI_TRANSITIONAL_DEVICE_ID)
}

/// Every disk and CD-ROM with media on every virtio-scsi controller in
/// `devices`: targets 0..=max_target (at most [`MAX_TARGETS`]), the LUNs
/// REPORT LUNS names (LUN 0 when it fails). Units that fail are logged and
/// skipped.
///
/// # Safety
/// As for [`VirtioScsi::new`], for every device in `devices`.
pub unsafe fn probe_all(access: &dyn ConfigAccess, devices: &[PciDevice]) -> Vec<ScsiDisk> {
    let mut disks = Vec::new();
    for device in devices.iter().filter(|d| is_virtio_scsi(d)) {
        // SAFETY: the caller vouches for every device in `devices`.
        let controller = match unsafe { VirtioScsi::new(access, device) } {
            Ok(controller) => Rc::new(controller),
            Err(error) => {
                log::error!("virtio-scsi: {error}");
                continue;
            }
        };
        for target in 0..=controller.max_target() {
            let luns = match controller.query::<256>(target, 0, &scsi::report_luns(31)) {
                Some(answer) => scsi::parse_report_luns(&answer, MAX_LUNS_PER_TARGET),
                None => match controller.command(target, 0, &scsi::test_unit_ready(), Data::None) {
                    Ok(Outcome::Transport(VIRTIO_SCSI_S_BAD_TARGET)) | Err(_) => continue,
                    _ => alloc::vec![0],
                },
            };
            for lun in luns {
                if let Some(disk) = unit(&controller, target, lun) {
                    disks.push(disk);
                }
            }
        }
    }
    disks
}

/// The unit at `target`/`lun` as a block device, if it is a disk or CD-ROM
/// with usable media.
fn unit(controller: &Rc<VirtioScsi>, target: u16, lun: u16) -> Option<ScsiDisk> {
    let bdf = controller.bdf();
    let inquiry = controller
        .query::<{ scsi::INQUIRY_LEN }>(target, lun, &scsi::inquiry())
        .and_then(|data| Inquiry::parse(&data))?;
    if !inquiry.connected || !matches!(inquiry.device_type, scsi::TYPE_DISK | scsi::TYPE_CDROM) {
        return None;
    }
    let cdrom = inquiry.device_type == scsi::TYPE_CDROM;
    let kind = if cdrom { "CD-ROM" } else { "disk" };
    if !controller.media_present(target, lun) {
        log::info!("virtio-scsi at {bdf}: {kind} {target}:{lun}: no media");
        return None;
    }
    let capacity = controller
        .query::<{ scsi::CAPACITY_16_LEN }>(target, lun, &scsi::read_capacity_16())
        .and_then(|data| Capacity::parse_16(&data))
        .or_else(|| {
            controller
                .query::<{ scsi::CAPACITY_10_LEN }>(target, lun, &scsi::read_capacity_10())
                .and_then(|data| Capacity::parse_10(&data))
        });
    match capacity {
        Some(capacity) if capacity.usable() => {
            log::info!(
                "virtio-scsi at {bdf}: {kind} {target}:{lun}: {} blocks of {} bytes",
                capacity.blocks,
                capacity.block_size
            );
            Some(ScsiDisk {
                controller: controller.clone(),
                target,
                lun,
                cdrom,
                capacity,
            })
        }
        other => {
            log::warn!("virtio-scsi at {bdf}: {kind} {target}:{lun}: unusable capacity {other:?}");
            None
        }
    }
}
