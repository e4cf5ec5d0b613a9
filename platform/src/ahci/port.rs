//! One AHCI port as the driver runs it (AHCI 1.3.1 §5, §10): its command
//! list, received-FIS area and one command table in a page of its own,
//! commands issued in slot 0 and polled to completion, error recovery
//! (§6.2.2) and stopping the port's DMA engines.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use super::ata::{self, H2D_FIS_BYTES, PRD_BYTES};
use super::regs::{HbaRegs, hba, poll, port};
use crate::virtio::queue::DmaRegion;

/// Layout of the port's page: the command list (32 headers of 32 bytes,
/// 1 KiB aligned, §4.2.2), the received-FIS area (256 bytes, 256-byte
/// aligned, §4.2.1), the command table of slot 0 (128-byte aligned,
/// §4.2.3) and a scratch buffer for IDENTIFY and sense data.
const COMMAND_LIST: usize = 0x000;
const RECEIVED_FIS: usize = 0x400;
const COMMAND_TABLE: usize = 0x500;
/// The ATAPI command block inside the command table (§4.2.3).
const ACMD: usize = COMMAND_TABLE + 0x40;
const PRDT: usize = COMMAND_TABLE + 0x80;
/// PRD entries in the table: 8 x 4 MiB covers the largest command we send.
pub const MAX_PRDS: usize = 8;
pub const SCRATCH: usize = 0x800;
pub const SCRATCH_BYTES: usize = 512;
const PORT_MEMORY: usize = 0x1000;

/// Header DW0 bits (§4.2.2): CFL in dwords, A (ATAPI), W (host to device).
const HEADER_ATAPI: u32 = 1 << 5;
const HEADER_WRITE: u32 = 1 << 6;

/// §10.1.2: a port must stop within 500 ms of ST or FRE being cleared.
const STOP_TIMEOUT_US: u64 = 500_000;

/// Why a command did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortError {
    /// The device ended the command with ERR set: its status and error
    /// registers (PxTFD).
    TaskFile { status: u8, error: u8 },
    /// The HBA reported a bus or interface error (PxIS bits).
    Host(u32),
    /// No completion in time; the port was stopped.
    Timeout,
    /// The buffer cannot be described by the PRD table.
    BadBuffer,
}

/// A command to issue: the FIS, the CDB for ATAPI, and the data buffer
/// (bus address and length; length 0 for none).
pub struct Command<'a> {
    pub fis: [u8; H2D_FIS_BYTES],
    pub cdb: Option<&'a [u8]>,
    pub data: u64,
    pub len: usize,
    pub write: bool,
    pub timeout_us: u64,
}

pub struct Port {
    regs: Rc<dyn HbaRegs>,
    base: u32,
    pub number: u8,
    memory: DmaRegion,
    sclo: bool,
}

impl Port {
    /// Stops the port, hands it our command list and FIS area, clears its
    /// errors and turns FIS reception on (§10.1.2 steps 3-5). The DMA
    /// engine is started later by [`Port::start`].
    pub fn new(regs: Rc<dyn HbaRegs>, number: u8, cap: u32) -> Option<Port> {
        let memory = DmaRegion::new(PORT_MEMORY).ok()?;
        let base = hba::PORTS + u32::from(number) * hba::PORT_BYTES;
        let addr = memory.addr();
        if cap & hba::CAP_S64A == 0 && addr.checked_add(PORT_MEMORY as u64)? > 1 << 32 {
            log::warn!("ahci port {number}: no 64-bit DMA and port memory above 4 GiB");
            return None;
        }
        let port = Port {
            regs,
            base,
            number,
            memory,
            sclo: cap & hba::CAP_SCLO != 0,
        };
        if !port.stop() {
            log::warn!("ahci port {number}: does not stop");
            return None;
        }
        let command_list = addr + COMMAND_LIST as u64;
        let received = addr + RECEIVED_FIS as u64;
        port.write(port::CLB, command_list as u32);
        port.write(port::CLBU, (command_list >> 32) as u32);
        port.write(port::FB, received as u32);
        port.write(port::FBU, (received >> 32) as u32);
        port.write(port::IE, 0);
        port.clear_errors();
        let mut cmd = port.read(port::CMD) | port::CMD_FRE;
        if cap & hba::CAP_SSS != 0 {
            // Staggered spin-up: spin the device up and power it on.
            cmd |= port::CMD_SUD | port::CMD_POD;
        }
        port.write(port::CMD, cmd);
        Some(port)
    }

    pub fn read(&self, offset: u32) -> u32 {
        self.regs.read(self.base + offset)
    }

    fn write(&self, offset: u32, value: u32) {
        self.regs.write(self.base + offset, value)
    }

    pub fn now_us(&self) -> u64 {
        self.regs.now_us()
    }

    fn clear_errors(&self) {
        // Both are write-one-to-clear (§3.3.5, §3.3.12).
        self.write(port::SERR, u32::MAX);
        self.write(port::IS, u32::MAX);
    }

    /// Clears ST then FRE and waits for CR and FR to follow (§10.1.2): the
    /// port then neither fetches commands nor writes received FISes.
    pub fn stop(&self) -> bool {
        let cmd = self.read(port::CMD);
        if cmd & port::CMD_ST != 0 {
            self.write(port::CMD, cmd & !port::CMD_ST);
        }
        let (_, stopped) = poll(&*self.regs, self.base + port::CMD, STOP_TIMEOUT_US, |cmd| {
            cmd & port::CMD_CR == 0
        });
        let cmd = self.read(port::CMD);
        if cmd & port::CMD_FRE != 0 {
            self.write(port::CMD, cmd & !port::CMD_FRE);
        }
        let (_, fis_stopped) = poll(&*self.regs, self.base + port::CMD, STOP_TIMEOUT_US, |cmd| {
            cmd & port::CMD_FR == 0
        });
        stopped && fis_stopped
    }

    /// Waits for the device to be ready (BSY and DRQ clear), clearing a
    /// stuck BSY with command list override when the HBA has it (§3.3.7),
    /// then sets ST (§10.3.1).
    pub fn start(&self, ready_timeout_us: u64) -> bool {
        let idle = |tfd: u32| tfd & (port::TFD_BSY | port::TFD_DRQ) == 0;
        let (_, mut ready) = poll(&*self.regs, self.base + port::TFD, ready_timeout_us, idle);
        if !ready && self.sclo {
            self.write(port::CMD, self.read(port::CMD) | port::CMD_CLO);
            let (_, done) = poll(&*self.regs, self.base + port::CMD, STOP_TIMEOUT_US, |cmd| {
                cmd & port::CMD_CLO == 0
            });
            ready = done;
        }
        if !ready {
            return false;
        }
        let cmd = self.read(port::CMD) | port::CMD_FRE;
        self.write(port::CMD, cmd);
        self.write(port::CMD, cmd | port::CMD_ST);
        true
    }

    /// After a failed command (§6.2.2.1): stop the engine, clear the
    /// errors, start again. False when the port will not run again.
    fn recover(&self) -> bool {
        let cmd = self.read(port::CMD);
        self.write(port::CMD, cmd & !port::CMD_ST);
        let (_, stopped) = poll(&*self.regs, self.base + port::CMD, STOP_TIMEOUT_US, |cmd| {
            cmd & port::CMD_CR == 0
        });
        self.clear_errors();
        stopped && self.start(STOP_TIMEOUT_US)
    }

    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        for (index, &byte) in bytes.iter().enumerate() {
            self.memory.write(offset + index, byte);
        }
    }

    /// The scratch buffer's bus address, for IDENTIFY and sense data.
    pub fn scratch_addr(&self) -> u64 {
        self.memory.addr() + SCRATCH as u64
    }

    pub fn scratch(&self, len: usize) -> Vec<u8> {
        (0..len.min(SCRATCH_BYTES))
            .map(|index| self.memory.read::<u8>(SCRATCH + index))
            .collect()
    }

    /// Issues `command` in slot 0 and polls until it completes, fails or
    /// times out. On every error path the port is stopped or recovered
    /// before returning, so the device no longer touches the buffer.
    ///
    /// # Safety
    /// `command.len` bytes at `command.data` must be memory the device may
    /// write (reads) or read (writes) until this returns.
    pub unsafe fn issue(&self, command: &Command) -> Result<(), PortError> {
        let prds = if command.len == 0 {
            Vec::new()
        } else {
            ata::prd_split(command.data, command.len, MAX_PRDS).ok_or(PortError::BadBuffer)?
        };
        self.write_bytes(COMMAND_TABLE, &command.fis);
        let mut acmd = [0u8; 16];
        if let Some(cdb) = command.cdb {
            let len = cdb.len().min(16);
            acmd[..len].copy_from_slice(&cdb[..len]);
        }
        self.write_bytes(ACMD, &acmd);
        for (index, &(addr, bytes)) in prds.iter().enumerate() {
            self.write_bytes(PRDT + index * PRD_BYTES, &ata::prd_entry(addr, bytes));
        }
        let mut flags = (H2D_FIS_BYTES / 4) as u32 | ((prds.len() as u32) << 16);
        if command.cdb.is_some() {
            flags |= HEADER_ATAPI;
        }
        if command.write {
            flags |= HEADER_WRITE;
        }
        let table = self.memory.addr() + COMMAND_TABLE as u64;
        self.memory.write(COMMAND_LIST, flags);
        self.memory.write(COMMAND_LIST + 4, 0u32);
        self.memory.write(COMMAND_LIST + 8, table as u32);
        self.memory.write(COMMAND_LIST + 12, (table >> 32) as u32);
        self.write(port::IS, u32::MAX);
        // The command list and table must be in memory before the HBA is
        // told to fetch them.
        fence(Ordering::SeqCst);
        self.write(port::CI, 1);

        let start = self.now_us();
        let outcome = loop {
            let is = self.read(port::IS);
            if is & port::IS_ERRORS != 0 {
                break Err(is);
            }
            if self.read(port::CI) & 1 == 0 {
                break Ok(());
            }
            if self.now_us().saturating_sub(start) > command.timeout_us {
                // Stopping the engine aborts the command (§10.4.1 context:
                // clearing ST clears PxCI); then it may run again.
                if !self.recover() {
                    self.stop();
                }
                return Err(PortError::Timeout);
            }
            core::hint::spin_loop();
        };
        // The device's writes to the buffer are visible once the command
        // completed; order our reads of it after that.
        fence(Ordering::SeqCst);
        let tfd = self.read(port::TFD);
        let error = match outcome {
            Ok(()) if tfd & port::TFD_ERR == 0 => return Ok(()),
            Err(is) if is & port::IS_TFES == 0 => PortError::Host(is),
            _ => PortError::TaskFile {
                status: tfd as u8,
                error: (tfd >> 8) as u8,
            },
        };
        if !self.recover() {
            log::warn!("ahci port {}: not running after an error", self.number);
            self.stop();
        }
        Err(error)
    }
}

impl Drop for Port {
    /// The port's memory goes with it: the HBA must not use it any more.
    fn drop(&mut self) {
        self.stop();
    }
}
