//! SCSI logical units as block devices, over any transport that carries a
//! CDB to a target and LUN and brings back the status (virtio-scsi;
//! [`ScsiTransport`]). Discovery (REPORT LUNS, INQUIRY, TEST UNIT READY,
//! READ CAPACITY) and transfers are here, so they run against a fake
//! transport in host tests; nothing a device answers can make them panic.
#![forbid(unsafe_code)]

use alloc::rc::Rc;
use alloc::vec::Vec;

use super::{Capacity, Cdb, Inquiry, Sense};
use crate::block::{BlockDevice, BlockError};
use crate::pci::Bdf;
use crate::read_ahead::{Geometry, ReadAhead};

/// What one command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Good,
    /// CHECK CONDITION with its sense, or another SCSI status.
    Failed {
        status: u8,
        sense: Option<Sense>,
    },
    /// The transport refused it (no such target, ...): its own code.
    Transport(u8),
}

/// The data a command moves.
pub enum Data<'a> {
    None,
    /// Device to memory.
    In(&'a mut [u8]),
    /// Memory to device.
    Out(&'a [u8]),
}

/// A SCSI controller: sends one command and waits for it.
pub trait ScsiTransport {
    fn command(&self, target: u16, lun: u16, cdb: &Cdb, data: Data) -> Result<Outcome, BlockError>;
    /// Whether `outcome` says there is no such target (discovery stops
    /// asking it).
    fn no_such_target(&self, outcome: Outcome) -> bool;
    /// The highest target number to probe.
    fn max_target(&self) -> u16;
    /// Stops all DMA (ExitBootServices); later commands fail.
    fn reset(&self);
    fn bdf(&self) -> Bdf;
}

/// Largest data transfer of one command.
pub const MAX_COMMAND_BYTES: usize = 1 << 20;
const MAX_LUNS_PER_TARGET: usize = 16;
/// TEST UNIT READY retries while a unit reports UNIT ATTENTION (a reset or a
/// media change it reports once).
const UNIT_ATTENTION_RETRIES: usize = 4;

/// A disk or CD-ROM behind a SCSI controller.
pub struct ScsiDisk {
    controller: Rc<dyn ScsiTransport>,
    pub target: u16,
    pub lun: u16,
    pub cdrom: bool,
    capacity: Capacity,
    /// Sequential small reads (a boot loader's sector-by-sector walk) are
    /// served from 1 MiB windows, as on the other disk drivers.
    read_ahead: ReadAhead,
}

/// Every disk and CD-ROM with media on `controller`: targets
/// 0..=max_target, the LUNs REPORT LUNS names (LUN 0 when it fails). Units
/// that fail are logged and skipped.
pub fn probe_units(controller: &Rc<dyn ScsiTransport>) -> Vec<ScsiDisk> {
    let mut disks = Vec::new();
    for target in 0..=controller.max_target() {
        let mut answer = [0u8; 8 + 8 * 31];
        let luns =
            match controller.command(target, 0, &super::report_luns(31), Data::In(&mut answer)) {
                Ok(Outcome::Good) => super::parse_report_luns(&answer, MAX_LUNS_PER_TARGET),
                Ok(outcome) if controller.no_such_target(outcome) => continue,
                Err(_) => continue,
                Ok(_) => alloc::vec![0],
            };
        for lun in luns {
            if let Some(disk) = unit(controller, target, lun) {
                disks.push(disk);
            }
        }
    }
    disks
}

/// A small answer, if the command succeeded.
fn query<const N: usize>(
    controller: &Rc<dyn ScsiTransport>,
    target: u16,
    lun: u16,
    cdb: &Cdb,
) -> Option<[u8; N]> {
    let mut answer = [0u8; N];
    match controller.command(target, lun, cdb, Data::In(&mut answer)) {
        Ok(Outcome::Good) => Some(answer),
        _ => None,
    }
}

/// Whether the unit has its medium, after letting a pending UNIT ATTENTION
/// pass.
fn media_present(controller: &Rc<dyn ScsiTransport>, target: u16, lun: u16) -> bool {
    for _ in 0..UNIT_ATTENTION_RETRIES {
        match controller.command(target, lun, &super::test_unit_ready(), Data::None) {
            Ok(Outcome::Good) => return true,
            Ok(Outcome::Failed {
                sense: Some(sense), ..
            }) if sense.key == super::SENSE_UNIT_ATTENTION => continue,
            _ => return false,
        }
    }
    false
}

/// The unit at `target`/`lun` as a block device, if it is a disk or CD-ROM
/// with usable media.
fn unit(controller: &Rc<dyn ScsiTransport>, target: u16, lun: u16) -> Option<ScsiDisk> {
    let bdf = controller.bdf();
    let inquiry = query::<{ super::INQUIRY_LEN }>(controller, target, lun, &super::inquiry())
        .and_then(|data| Inquiry::parse(&data))?;
    if !inquiry.connected || !matches!(inquiry.device_type, super::TYPE_DISK | super::TYPE_CDROM) {
        return None;
    }
    let cdrom = inquiry.device_type == super::TYPE_CDROM;
    let kind = if cdrom { "CD-ROM" } else { "disk" };
    if !media_present(controller, target, lun) {
        log::info!("SCSI at {bdf}: {kind} {target}:{lun}: no media");
        return None;
    }
    let capacity =
        query::<{ super::CAPACITY_16_LEN }>(controller, target, lun, &super::read_capacity_16())
            .and_then(|data| Capacity::parse_16(&data))
            .or_else(|| {
                query::<{ super::CAPACITY_10_LEN }>(
                    controller,
                    target,
                    lun,
                    &super::read_capacity_10(),
                )
                .and_then(|data| Capacity::parse_10(&data))
            });
    match capacity {
        Some(capacity) if capacity.usable() => {
            log::info!(
                "SCSI at {bdf}: {kind} {target}:{lun}: {} blocks of {} bytes",
                capacity.blocks,
                capacity.block_size
            );
            Some(ScsiDisk {
                controller: controller.clone(),
                target,
                lun,
                cdrom,
                capacity,
                read_ahead: ReadAhead::new(),
            })
        }
        other => {
            log::warn!("SCSI at {bdf}: {kind} {target}:{lun}: unusable capacity {other:?}");
            None
        }
    }
}

impl ScsiDisk {
    pub fn bdf(&self) -> Bdf {
        self.controller.bdf()
    }

    /// Stops the controller (every unit on it).
    pub fn reset(&self) {
        self.read_ahead.clear();
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
            Data::None => 0,
        };
        let blocks = (len / self.capacity.block_size as usize) as u64;
        let cdb = super::read_write(write, lba, blocks).ok_or(BlockError::BadBufferSize(len))?;
        match self.controller.command(self.target, self.lun, &cdb, data)? {
            Outcome::Good => Ok(()),
            Outcome::Failed { status, sense } => {
                log::warn!(
                    "SCSI {}:{}: {} of {blocks} blocks at LBA {lba}: status {status:#x}, sense {sense:?}",
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

    fn removable(&self) -> bool {
        self.cdrom
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let geometry = Geometry {
            block_size: self.capacity.block_size,
            num_blocks: self.capacity.blocks,
        };
        let step = self.chunk_bytes();
        let per_chunk = (step / self.capacity.block_size as usize) as u64;
        self.read_ahead.read(geometry, lba, buf, |lba, buf| {
            for (index, chunk) in buf.chunks_mut(step).enumerate() {
                self.run(false, lba + index as u64 * per_chunk, Data::In(chunk))?;
            }
            Ok(())
        })
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.cdrom {
            return Err(BlockError::ReadOnly);
        }
        let blocks = self.check_request(lba, buf.len())?;
        self.read_ahead.invalidate(lba, blocks);
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
            &super::synchronize_cache(),
            Data::None,
        )? {
            Outcome::Good => Ok(()),
            Outcome::Failed { status, .. } => Err(BlockError::Device(status)),
            Outcome::Transport(response) => Err(BlockError::Device(response)),
        }
    }
}

#[cfg(test)]
mod tests;
