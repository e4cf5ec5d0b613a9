//! NVMe (NVM Express Base Specification 2.0 and NVM Command Set
//! Specification 1.0) over PCI, polled: one admin and one I/O queue pair per
//! controller, each active namespace a block device.
//!
//! The controller is reached through [`Transport`] so command building and
//! completion handling run in host tests against a simulated controller.
//! The firmware identity-maps RAM, so buffer addresses are bus addresses.

mod command;
mod controller;
mod identify;
mod namespace;
mod prp;
mod queue;
mod regs;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::fmt;

pub use command::Status;
pub use controller::{Controller, MAX_NAMESPACES, NamespaceInfo};
pub use namespace::Namespace;

use crate::mmio::Mmio;
use crate::pci::{self, ConfigAccess, PciDevice};

/// Mass storage / Non-Volatile Memory controller / NVM Express (PCI Code
/// and ID Assignment 1.11 §1.2).
pub const CLASS: (u8, u8, u8) = (0x01, 0x08, 0x02);

/// Register access and a clock: MMIO and the TSC in the firmware, a model
/// in host tests.
pub trait Transport {
    /// Reads the dword register at `offset` in BAR0.
    fn read32(&self, offset: u32) -> u32;
    fn write32(&self, offset: u32, value: u32);
    /// Monotonic nanoseconds, for timeouts.
    fn now_ns(&self) -> u64;
    /// Bytes of register space (BAR0's size): the doorbells CAP.DSTRD
    /// places must lie inside it.
    fn register_bytes(&self) -> u64;
}

/// BAR0 of a real controller.
pub struct MmioTransport(Mmio);

impl Transport for MmioTransport {
    fn read32(&self, offset: u32) -> u32 {
        self.0.read(u64::from(offset))
    }

    fn write32(&self, offset: u32, value: u32) {
        self.0.write(u64::from(offset), value)
    }

    fn now_ns(&self) -> u64 {
        crate::tsc::now_ns()
    }

    fn register_bytes(&self) -> u64 {
        self.0.len()
    }
}

/// A namespace of a controller in the firmware.
pub type NvmeNamespace = Namespace<MmioTransport>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NvmeError {
    /// BAR0 is missing, not memory, unassigned, or too small for the
    /// registers and doorbells.
    BadBar,
    /// Registers read all ones: the device is not there.
    Gone,
    /// A capability the driver needs is missing (CAP value).
    Unsupported(&'static str, u64),
    /// CSTS.CFS: the controller hit a fatal error (CSTS value).
    Fatal(u32),
    /// A step did not finish within its time.
    Timeout(&'static str),
    /// An admin command failed.
    Command {
        opcode: u8,
        status: Status,
    },
    OutOfMemory(usize),
}

impl fmt::Display for NvmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadBar => write!(f, "BAR0 is not a usable register window"),
            Self::Gone => write!(f, "registers read all ones"),
            Self::Unsupported(what, cap) => write!(f, "unsupported: {what} (CAP {cap:#x})"),
            Self::Fatal(csts) => write!(f, "controller fatal status (CSTS {csts:#x})"),
            Self::Timeout(what) => write!(f, "{what} timed out"),
            Self::Command { opcode, status } => {
                write!(f, "admin command {opcode:#04x} failed: {status}")
            }
            Self::OutOfMemory(bytes) => write!(f, "cannot allocate {bytes} bytes"),
        }
    }
}

pub fn is_nvme(device: &PciDevice) -> bool {
    (device.class, device.subclass, device.prog_if) == CLASS
}

/// Starts every NVMe controller in `devices` and returns their usable
/// namespaces (PCI order, then namespace ID). Failing controllers are
/// logged and skipped.
///
/// # Safety
/// `devices` come from `pci::enumerate` over `access`, their BARs placed in
/// address space reserved for PCI: BAR0 becomes an MMIO window and the
/// controller gets bus mastering.
pub unsafe fn probe_all(access: &dyn ConfigAccess, devices: &[PciDevice]) -> Vec<NvmeNamespace> {
    let mut namespaces = Vec::new();
    for device in devices.iter().filter(|device| is_nvme(device)) {
        let bdf = device.bdf;
        // SAFETY: this function's contract.
        match unsafe { start(access, device) } {
            Ok((controller, found)) => {
                let id = controller.identity();
                log::info!(
                    "nvme at {bdf}: {} (serial {}), {} usable namespace(s), transfers up to {} KiB",
                    id.model,
                    id.serial,
                    found.len(),
                    controller.max_transfer() / 1024
                );
                namespaces.extend(
                    found
                        .into_iter()
                        .map(|info| Namespace::new(controller.clone(), info)),
                );
            }
            Err(error) => log::error!("nvme at {bdf}: {error}; skipped"),
        }
    }
    namespaces
}

/// # Safety
/// As for [`probe_all`], for `device`.
unsafe fn start(
    access: &dyn ConfigAccess,
    device: &PciDevice,
) -> Result<(alloc::rc::Rc<Controller<MmioTransport>>, Vec<NamespaceInfo>), NvmeError> {
    let bar = device.bars[0]
        .filter(|bar| bar.is_memory() && bar.is_assigned() && bar.size >= 0x2000)
        .ok_or(NvmeError::BadBar)?;
    crate::paging::map_device_memory(bar.address, bar.size);
    // SAFETY: BAR0 is the controller's register window (the caller vouches
    // that `device` is real and its BARs placed), just mapped as device
    // memory; it is at least large enough for the registers and the first
    // doorbells, and `Mmio` bounds-checks every access.
    let registers = unsafe { Mmio::new(bar.address, bar.size) };
    // SAFETY: the controller DMAs only to queues and buffers the driver
    // programs, all memory it owns; nothing is programmed yet.
    unsafe { pci::enable_memory_and_bus_master(access, device.bdf) };
    Controller::start(MmioTransport(registers), device.bdf)
}
