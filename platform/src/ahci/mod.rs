//! AHCI SATA controllers (Serial ATA AHCI 1.3.1; PCI class 01:06:01, e.g.
//! q35's ICH9 at 00:1f.2): ATA disks through READ/WRITE DMA EXT and FLUSH
//! CACHE EXT, ATAPI CD/DVD drives through PACKET (READ CAPACITY, READ(10)),
//! read-only. Polled, one command at a time per port, each command as
//! large as its PRD table allows; every wait is bounded.

pub mod ata;
pub mod port;
pub mod regs;
#[cfg(test)]
mod tests;

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use crate::block::{BlockDevice, BlockError};
use crate::mmio::Mmio;
use crate::pci::{self, Bdf, ConfigAccess, PciDevice};
use crate::read_ahead::{Geometry, ReadAhead};
use crate::virtio::queue::DmaRegion;
use ata::{AtapiIdentity, command, sense};
use port::{Command, Port, PortError};
use regs::{HbaRegs, MmioRegs, hba, poll};

/// PCI class, subclass and programming interface of an AHCI HBA.
pub const CLASS_AHCI: (u8, u8, u8) = (0x01, 0x06, 0x01);
/// The ABAR is BAR5 (AHCI 1.3.1 §2.1.11).
const ABAR: usize = 5;

/// Timeouts: data commands may move 32 MiB on a slow host; identification
/// and unit checks answer at once or never. §10.4.3: an HBA reset ends
/// within 1 s.
const DATA_TIMEOUT_US: u64 = 30_000_000;
const CONTROL_TIMEOUT_US: u64 = 3_000_000;
const RESET_TIMEOUT_US: u64 = 1_000_000;
/// How long a present device gets to leave BSY after the link came up.
const READY_TIMEOUT_US: u64 = 3_000_000;
/// How long a port showing a device without a link (DET 1) gets.
const LINK_TIMEOUT_US: u64 = 50_000;
/// Blocks per ATA command: the count field holds 16 bits and the PRD
/// table 8 x 4 MiB; 65535 blocks stays below both at 512 bytes.
const MAX_COMMAND_BLOCKS: u32 = 0xFFFF;
/// Caller buffers the HBA cannot address (odd, or above 4 GiB without
/// 64-bit DMA) go through a bounce buffer of this size.
const BOUNCE_BYTES: usize = 256 << 10;
/// TEST UNIT READY attempts: a fresh drive reports UNIT ATTENTION first,
/// a loading one NOT READY for a while.
const TUR_ATTEMPTS: u32 = 20;
const TUR_RETRY_US: u64 = 50_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ata {
        flush_ext: bool,
    },
    /// The command block area is 16 bytes, zero-padded: 12- and 16-byte
    /// CDB devices both take our 12-byte commands.
    Atapi,
}

/// One SATA disk or ATAPI drive behind an AHCI port.
pub struct AhciDevice {
    bdf: Bdf,
    port: Port,
    kind: Kind,
    block_size: u32,
    num_blocks: u64,
    media_present: bool,
    max_command_bytes: usize,
    /// Set at quiesce or when the port died: every request fails.
    stopped: Cell<bool>,
    /// One command at a time; a re-entered call fails instead of racing.
    busy: Cell<bool>,
    bounce: RefCell<Option<DmaRegion>>,
    s64a: bool,
    read_ahead: ReadAhead,
    pub model: String,
}

/// Every AHCI function in `devices`, brought up, with its devices.
///
/// # Safety
/// `devices` come from `pci::enumerate` over `access`, their BARs placed
/// in address space set aside for PCI.
pub unsafe fn probe_all(access: &dyn ConfigAccess, devices: &[PciDevice]) -> Vec<AhciDevice> {
    let mut found = Vec::new();
    for device in devices
        .iter()
        .filter(|d| (d.class, d.subclass, d.prog_if) == CLASS_AHCI)
    {
        // The generic registers fill the first 0x100 bytes (§3.1).
        let usable = |bar: &pci::Bar| {
            bar.is_memory() && bar.is_assigned() && bar.size >= u64::from(hba::PORTS)
        };
        let Some(bar) = device.bars[ABAR].filter(usable) else {
            log::warn!("ahci {}: no usable ABAR (BAR5)", device.bdf);
            continue;
        };
        // SAFETY: BAR5 of an AHCI function is its register block (AHCI
        // 1.3.1 §2.1.11), placed by the caller in PCI address space.
        let abar = unsafe { Mmio::new(bar.address, bar.size) };
        // SAFETY: the BAR is the device's own; the HBA DMAs only to the
        // command lists and FIS areas written into its port registers,
        // which `probe_hba` points at memory it owns before starting them.
        unsafe { pci::enable_memory_and_bus_master(access, device.bdf) };
        let ports = ((bar.size.saturating_sub(u64::from(hba::PORTS))) / u64::from(hba::PORT_BYTES))
            .min(32) as u8;
        found.extend(probe_hba(Rc::new(MmioRegs { abar }), device.bdf, ports));
    }
    found
}

/// BIOS/OS handoff (§10.6.3) when the HBA has it: request ownership and
/// wait for the BIOS to let go.
fn take_ownership(regs: &dyn HbaRegs) {
    if regs.read(hba::CAP2) & hba::CAP2_BOH == 0 {
        return;
    }
    regs.write(hba::BOHC, regs.read(hba::BOHC) | hba::BOHC_OOS);
    let (_, released) = poll(regs, hba::BOHC, 25_000, |b| b & hba::BOHC_BOS == 0);
    // A BIOS still busy gets 2 s to finish its command.
    let (_, idle) = poll(regs, hba::BOHC, 2_000_000, |b| {
        b & (hba::BOHC_BB | hba::BOHC_BOS) == 0
    });
    if !(released && idle) {
        log::warn!("ahci: the BIOS did not release the HBA; taking it anyway");
    }
}

/// Resets the HBA into AHCI mode (§10.4.3) and attaches the device on every
/// implemented port below `max_ports` (the ABAR's size limits them).
pub fn probe_hba(regs: Rc<dyn HbaRegs>, bdf: Bdf, max_ports: u8) -> Vec<AhciDevice> {
    take_ownership(&*regs);
    regs.write(hba::GHC, regs.read(hba::GHC) | hba::GHC_AE);
    regs.write(hba::GHC, regs.read(hba::GHC) | hba::GHC_HR);
    let (_, reset) = poll(&*regs, hba::GHC, RESET_TIMEOUT_US, |g| g & hba::GHC_HR == 0);
    if !reset {
        log::error!("ahci {bdf}: HBA reset did not complete");
        return Vec::new();
    }
    // The reset cleared AE (unless the HBA is AHCI-only); interrupts stay off.
    regs.write(hba::GHC, (regs.read(hba::GHC) | hba::GHC_AE) & !hba::GHC_IE);
    let cap = regs.read(hba::CAP);
    let implemented = regs.read(hba::PI);
    let ports: Vec<u8> = (0..max_ports.min(32))
        .filter(|&n| implemented & (1 << n) != 0)
        .collect();
    let version = regs.read(hba::VS);
    log::debug!(
        "ahci {bdf}: version {:x}.{:x}, cap {cap:#x}, ports {implemented:#x}",
        version >> 16,
        version & 0xFFFF
    );
    // Links come up after the reset's COMRESET; a port showing a device
    // without a link (DET 1) gets a moment.
    let start = regs.now_us();
    let det = |n: u8| {
        regs.read(hba::PORTS + u32::from(n) * hba::PORT_BYTES + regs::port::SSTS)
            & regs::port::SSTS_DET_MASK
    };
    while ports.iter().any(|&n| det(n) == regs::port::DET_NO_PHY)
        && regs.now_us().saturating_sub(start) < LINK_TIMEOUT_US
    {
        core::hint::spin_loop();
    }
    ports
        .into_iter()
        .filter(|&n| det(n) == regs::port::DET_PRESENT)
        .filter_map(|n| {
            let port = Port::new(regs.clone(), n, cap)?;
            match AhciDevice::attach(bdf, port, cap) {
                Ok(device) => Some(device),
                Err(why) => {
                    log::warn!("ahci {bdf} port {n}: {why}");
                    None
                }
            }
        })
        .collect()
}

fn port_error(error: PortError) -> BlockError {
    match error {
        PortError::TaskFile { status, .. } => BlockError::Device(status),
        PortError::Host(_) | PortError::BadBuffer => BlockError::Device(0xFF),
        PortError::Timeout => BlockError::Timeout,
    }
}

impl AhciDevice {
    /// Starts the port and identifies its device by signature (§3.3.9).
    fn attach(bdf: Bdf, port: Port, cap: u32) -> Result<AhciDevice, &'static str> {
        if !port.start(READY_TIMEOUT_US) {
            return Err("device never became ready");
        }
        let signature = port.read(regs::port::SIG);
        let mut device = AhciDevice {
            bdf,
            port,
            kind: Kind::Ata { flush_ext: false },
            block_size: 512,
            num_blocks: 0,
            media_present: true,
            max_command_bytes: 0,
            stopped: Cell::new(false),
            busy: Cell::new(false),
            bounce: RefCell::new(None),
            s64a: cap & hba::CAP_S64A != 0,
            read_ahead: ReadAhead::new(),
            model: String::new(),
        };
        match signature {
            regs::port::SIG_ATA => device.identify_ata()?,
            regs::port::SIG_ATAPI => device.identify_atapi()?,
            _ => return Err("neither an ATA nor an ATAPI device (port multiplier?)"),
        }
        // Whole blocks per command, within the PRD table and count field.
        let prd_bytes = port::MAX_PRDS as u64 * u64::from(ata::PRD_MAX_BYTES);
        let blocks = (prd_bytes / u64::from(device.block_size)).min(u64::from(MAX_COMMAND_BLOCKS));
        device.max_command_bytes = (blocks * u64::from(device.block_size)) as usize;
        let kind = if device.is_cdrom() {
            "ATAPI CD-ROM"
        } else {
            "SATA disk"
        };
        let (number, model) = (device.port.number, &device.model);
        if device.media_present {
            log::info!(
                "ahci {bdf} port {number}: {kind} \"{model}\", {} blocks of {} bytes{}",
                device.num_blocks,
                device.block_size,
                if device.is_cdrom() {
                    ", media present, read-only"
                } else {
                    ""
                }
            );
        } else {
            log::info!("ahci {bdf} port {number}: {kind} \"{model}\", no media");
        }
        Ok(device)
    }

    /// A command moving at most [`port::SCRATCH_BYTES`] into the scratch
    /// buffer; returns what arrived.
    fn scratch_command(
        &self,
        fis: [u8; ata::H2D_FIS_BYTES],
        cdb: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>, PortError> {
        let command = Command {
            fis,
            cdb,
            data: self.port.scratch_addr(),
            len: len.min(port::SCRATCH_BYTES),
            write: false,
            timeout_us: CONTROL_TIMEOUT_US,
        };
        // SAFETY: the scratch buffer belongs to the port, which lives as
        // long as `self`.
        unsafe { self.port.issue(&command) }?;
        Ok(self.port.scratch(len))
    }

    fn identify_page(&self, command: u8) -> Result<[u8; 512], &'static str> {
        let data = self
            .scratch_command(ata::h2d_fis(command, 0, 0, 0), None, 512)
            .map_err(|_| "IDENTIFY failed")?;
        data.try_into().map_err(|_| "IDENTIFY failed")
    }

    fn identify_ata(&mut self) -> Result<(), &'static str> {
        let page = self.identify_page(command::IDENTIFY_DEVICE)?;
        let identity = ata::parse_identify(&page).map_err(|e| match e {
            ata::IdentifyError::NoLba48 => "no 48-bit addressing",
            ata::IdentifyError::BadSectorSize(_) => "unusable logical sector size",
            ata::IdentifyError::NotAta => "IDENTIFY DEVICE answer is not ATA",
        })?;
        self.kind = Kind::Ata {
            flush_ext: identity.flush_ext,
        };
        self.block_size = identity.sector_bytes;
        self.num_blocks = identity.sectors;
        self.model = identity.model;
        Ok(())
    }

    fn identify_atapi(&mut self) -> Result<(), &'static str> {
        let page = self.identify_page(command::IDENTIFY_PACKET_DEVICE)?;
        let AtapiIdentity {
            device_type, model, ..
        } = ata::parse_identify_packet(&page).map_err(|_| "not an ATAPI device")?;
        // Peripheral device type 5: CD/DVD (SPC-4 Table 49).
        if device_type != 5 {
            return Err("ATAPI device is not a CD/DVD drive");
        }
        self.kind = Kind::Atapi;
        self.model = model;
        self.block_size = 2048;
        self.media_present = self.test_unit_ready();
        if self.media_present {
            let data = self
                .scratch_command(ata::packet_fis(), Some(&ata::cdb_read_capacity()), 8)
                .map_err(|_| "READ CAPACITY failed")?;
            let (blocks, block_len) =
                ata::parse_read_capacity(&data).ok_or("READ CAPACITY answer unusable")?;
            self.num_blocks = blocks;
            self.block_size = block_len;
        }
        Ok(())
    }

    /// TEST UNIT READY until the drive is ready (media present) or says
    /// the medium is absent; UNIT ATTENTION (a fresh medium) and NOT READY
    /// (becoming ready) are retried (MMC-6 §4.1.6).
    fn test_unit_ready(&self) -> bool {
        for _ in 0..TUR_ATTEMPTS {
            match self.scratch_command(ata::packet_fis(), Some(&ata::cdb_test_unit_ready()), 0) {
                Ok(_) => return true,
                Err(PortError::TaskFile { .. }) => {}
                Err(_) => return false,
            }
            let sense = self
                .scratch_command(ata::packet_fis(), Some(&ata::cdb_request_sense(18)), 18)
                .ok()
                .and_then(|data| ata::parse_sense(&data));
            match sense {
                Some((sense::UNIT_ATTENTION, _)) => {}
                Some((sense::NOT_READY, asc)) if asc != sense::ASC_MEDIUM_NOT_PRESENT => {
                    let start = self.port.now_us();
                    while self.port.now_us().saturating_sub(start) < TUR_RETRY_US {
                        core::hint::spin_loop();
                    }
                }
                _ => return false,
            }
        }
        false
    }

    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// The HBA port number, for the SATA device path node.
    pub fn port_number(&self) -> u8 {
        self.port.number
    }

    pub fn is_cdrom(&self) -> bool {
        matches!(self.kind, Kind::Atapi)
    }

    /// Stops the port's DMA engines (before the OS owns the memory, at
    /// ExitBootServices); later requests fail.
    pub fn stop(&self) {
        self.stopped.set(true);
        self.read_ahead.clear();
        if !self.port.stop() {
            log::error!("ahci {} port {}: does not stop", self.bdf, self.port.number);
        }
    }

    /// One command moving `len` bytes (at most `max_command_bytes`) at bus
    /// address `data` from or to block `lba`.
    ///
    /// # Safety
    /// As for [`Port::issue`].
    unsafe fn command(
        &self,
        lba: u64,
        data: u64,
        len: usize,
        write: bool,
    ) -> Result<(), BlockError> {
        let blocks = (len / self.block_size as usize) as u32;
        let cdb;
        let (fis, cdb) = match self.kind {
            Kind::Ata { .. } => {
                let op = if write {
                    command::WRITE_DMA_EXT
                } else {
                    command::READ_DMA_EXT
                };
                (ata::h2d_fis(op, 0, lba, blocks as u16), None)
            }
            Kind::Atapi => {
                let lba = u32::try_from(lba).map_err(|_| BlockError::OutOfRange {
                    lba,
                    blocks: blocks.into(),
                })?;
                cdb = ata::cdb_read(lba, blocks);
                (ata::packet_fis(), Some(&cdb[..]))
            }
        };
        let command = Command {
            fis,
            cdb,
            data,
            len,
            write,
            timeout_us: DATA_TIMEOUT_US,
        };
        // SAFETY: this function's contract.
        match unsafe { self.port.issue(&command) } {
            Ok(()) => Ok(()),
            Err(error) => {
                if let PortError::TaskFile { status, error } = error {
                    log::warn!(
                        "ahci {} port {}: LBA {lba}: status {status:#x} error {error:#x}",
                        self.bdf,
                        self.port.number
                    );
                }
                if error == PortError::Timeout {
                    log::error!(
                        "ahci {} port {}: command timed out",
                        self.bdf,
                        self.port.number
                    );
                }
                Err(port_error(error))
            }
        }
    }

    /// Whether the HBA can DMA to `len` bytes at `addr` directly.
    fn reachable(&self, addr: u64, len: usize) -> bool {
        addr.is_multiple_of(2) && (self.s64a || addr.saturating_add(len as u64) <= 1 << 32)
    }

    /// Moves `len` bytes at `addr` from (`write`) or to the device from
    /// block `lba`, in commands of at most `max_command_bytes`, through the
    /// bounce buffer when the HBA cannot reach `addr`.
    fn transfer(&self, lba: u64, buf: *mut u8, len: usize, write: bool) -> Result<(), BlockError> {
        if self.stopped.get() {
            return Err(BlockError::Timeout);
        }
        if self.busy.replace(true) {
            return Err(BlockError::Device(0xFF));
        }
        let result = self.transfer_pieces(lba, buf, len, write);
        self.busy.set(false);
        result
    }

    fn transfer_pieces(
        &self,
        lba: u64,
        buf: *mut u8,
        len: usize,
        write: bool,
    ) -> Result<(), BlockError> {
        let block = self.block_size as usize;
        let direct = self.reachable(buf as u64, len);
        let step = if direct {
            self.max_command_bytes
        } else {
            BOUNCE_BYTES.max(block) / block * block
        };
        let mut bounce = self.bounce.borrow_mut();
        if !direct && bounce.is_none() {
            let region =
                DmaRegion::new(BOUNCE_BYTES.max(block)).map_err(|_| BlockError::Device(0xFF))?;
            if !self.reachable(region.addr(), BOUNCE_BYTES) {
                return Err(BlockError::Device(0xFF));
            }
            *bounce = Some(region);
        }
        let mut offset = 0;
        while offset < len {
            let piece = (len - offset).min(step);
            let piece_lba = lba + (offset / block) as u64;
            // SAFETY: `offset + piece <= len`, inside the caller's buffer.
            let at = unsafe { buf.add(offset) };
            match &*bounce {
                Some(region) if !direct => {
                    // SAFETY: `region` and the caller's buffer are distinct
                    // allocations of at least `piece` bytes.
                    unsafe {
                        if write {
                            core::ptr::copy_nonoverlapping(at, region.addr() as *mut u8, piece);
                        }
                        self.command(piece_lba, region.addr(), piece, write)?;
                        if !write {
                            core::ptr::copy_nonoverlapping(region.addr() as *const u8, at, piece);
                        }
                    }
                }
                // SAFETY: the caller's buffer, which `read_blocks` or
                // `write_blocks` borrows until this returns.
                _ => unsafe { self.command(piece_lba, at as u64, piece, write) }?,
            }
            offset += piece;
        }
        Ok(())
    }
}

impl BlockDevice for AhciDevice {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn num_blocks(&self) -> u64 {
        self.num_blocks
    }

    fn read_only(&self) -> bool {
        self.is_cdrom()
    }

    fn removable(&self) -> bool {
        self.is_cdrom()
    }

    fn media_present(&self) -> bool {
        self.media_present
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let geometry = Geometry {
            block_size: self.block_size,
            num_blocks: self.num_blocks,
        };
        self.read_ahead.read(geometry, lba, buf, |lba, buf| {
            self.transfer(lba, buf.as_mut_ptr(), buf.len(), false)
        })
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.read_only() {
            return Err(BlockError::ReadOnly);
        }
        let blocks = self.check_request(lba, buf.len())?;
        self.read_ahead.invalidate(lba, blocks);
        // The device only reads the buffer (WRITE DMA EXT).
        self.transfer(lba, buf.as_ptr().cast_mut(), buf.len(), true)
    }

    fn flush(&self) -> Result<(), BlockError> {
        let Kind::Ata { flush_ext: true } = self.kind else {
            // CD-ROMs are read-only; a disk without FLUSH CACHE EXT has no
            // volatile cache to flush through it.
            return Ok(());
        };
        if self.stopped.get() {
            return Err(BlockError::Timeout);
        }
        let command = Command {
            fis: ata::h2d_fis(command::FLUSH_CACHE_EXT, 0, 0, 0),
            cdb: None,
            data: 0,
            len: 0,
            write: false,
            timeout_us: DATA_TIMEOUT_US,
        };
        // SAFETY: no data buffer.
        unsafe { self.port.issue(&command) }.map_err(port_error)
    }
}
