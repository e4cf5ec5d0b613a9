//! PCI configuration space: access through port I/O or ECAM, bus enumeration,
//! BAR sizing and assignment, and capability-list walking.
//!
//! References: PCI Local Bus Specification 3.0 §6 (configuration space),
//! PCI-to-PCI Bridge Architecture 1.2 §3.2 (type 1 header), PCI Express Base
//! 4.0 §7.2.2 (ECAM) and the PCI Firmware Specification 3.2 §4.1.2 (MCFG).

mod access;
mod assign;
mod capability;
mod enumerate;
#[cfg(test)]
pub(crate) mod fake;

pub use access::{EcamConfigAccess, PortConfigAccess};
pub use assign::{AddressWindow, BarWindows, PciError, assign_unassigned_bars, reassign_bars};
pub use capability::{Capabilities, Capability, capabilities};
pub use enumerate::{
    Bar, BarKind, PciDevice, enable_memory_and_bus_master, enumerate, probe_function,
};

use bitflags::bitflags;
use core::fmt;

/// A PCI function address. `device` is below 32 and `function` below 8; the
/// access mechanisms mask them so a bad value cannot reach another register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl Bdf {
    pub const fn new(bus: u8, device: u8, function: u8) -> Self {
        Bdf {
            bus,
            device,
            function,
        }
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Reads and writes configuration registers. Offsets must be naturally
/// aligned for the access width; misaligned or out-of-range reads return all
/// ones (what an absent device returns) and such writes are dropped.
///
/// Reads are safe: configuration reads have no side effects on memory (PCI
/// 3.0 §6.1). Writes are `unsafe`: a BAR write moves the addresses a device
/// decodes (§6.2.5.1), possibly over RAM or another device's registers, and
/// the command register turns decoding and bus mastering (DMA) on (§6.2.2).
///
/// # Safety (for every `write*` method)
/// The write must not make the device decode an address range that holds
/// RAM or other devices' registers while decoding is enabled, and must not
/// let it master the bus unless every address it has been programmed to
/// DMA to is memory set aside for it. Writes without such effects (e.g.
/// restoring a value just read, with decoding off) are always fine.
pub trait ConfigAccess {
    fn read8(&self, bdf: Bdf, offset: u16) -> u8;
    fn read16(&self, bdf: Bdf, offset: u16) -> u16;
    fn read32(&self, bdf: Bdf, offset: u16) -> u32;
    /// # Safety
    /// See the trait documentation.
    unsafe fn write8(&self, bdf: Bdf, offset: u16, value: u8);
    /// # Safety
    /// See the trait documentation.
    unsafe fn write16(&self, bdf: Bdf, offset: u16, value: u16);
    /// # Safety
    /// See the trait documentation.
    unsafe fn write32(&self, bdf: Bdf, offset: u16, value: u32);
}

/// Configuration register offsets (PCI 3.0 §6.1, bridge 1.2 §3.2).
pub mod reg {
    pub const VENDOR_ID: u16 = 0x00;
    pub const DEVICE_ID: u16 = 0x02;
    pub const COMMAND: u16 = 0x04;
    pub const STATUS: u16 = 0x06;
    pub const REVISION_ID: u16 = 0x08;
    pub const PROG_IF: u16 = 0x09;
    pub const SUBCLASS: u16 = 0x0A;
    pub const CLASS: u16 = 0x0B;
    pub const HEADER_TYPE: u16 = 0x0E;
    pub const BAR0: u16 = 0x10;
    /// Type 0 and type 1 headers.
    pub const CAPABILITIES_POINTER: u16 = 0x34;
    /// Type 2 (CardBus) headers keep it elsewhere.
    pub const CARDBUS_CAPABILITIES_POINTER: u16 = 0x14;
    /// Type 1 (PCI-to-PCI bridge) bus numbers.
    pub const PRIMARY_BUS: u16 = 0x18;
    pub const SECONDARY_BUS: u16 = 0x19;
    pub const SUBORDINATE_BUS: u16 = 0x1A;
}

/// Vendor ID read from an absent function (master abort).
pub const VENDOR_ABSENT: u16 = 0xFFFF;

/// Header type field (PCI 3.0 §6.2.1): bit 7 flags a multi-function device.
pub const HEADER_MULTI_FUNCTION: u8 = 0x80;
pub const HEADER_TYPE_GENERAL: u8 = 0x00;
pub const HEADER_TYPE_BRIDGE: u8 = 0x01;
pub const HEADER_TYPE_CARDBUS: u8 = 0x02;

bitflags! {
    /// Command register (PCI 3.0 §6.2.2).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Command: u16 {
        const IO_SPACE = 1 << 0;
        const MEMORY_SPACE = 1 << 1;
        const BUS_MASTER = 1 << 2;
        const SPECIAL_CYCLES = 1 << 3;
        const MEMORY_WRITE_AND_INVALIDATE = 1 << 4;
        const VGA_PALETTE_SNOOP = 1 << 5;
        const PARITY_ERROR_RESPONSE = 1 << 6;
        const SERR_ENABLE = 1 << 8;
        const FAST_BACK_TO_BACK = 1 << 9;
        const INTERRUPT_DISABLE = 1 << 10;
        const _ = !0;
    }
}

bitflags! {
    /// Status register (PCI 3.0 §6.2.3). Error bits are write-one-to-clear,
    /// so never write back a value read from it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Status: u16 {
        const INTERRUPT = 1 << 3;
        const CAPABILITIES_LIST = 1 << 4;
        const CAPABLE_66MHZ = 1 << 5;
        const FAST_BACK_TO_BACK = 1 << 7;
        const MASTER_DATA_PARITY_ERROR = 1 << 8;
        const SIGNALED_TARGET_ABORT = 1 << 11;
        const RECEIVED_TARGET_ABORT = 1 << 12;
        const RECEIVED_MASTER_ABORT = 1 << 13;
        const SIGNALED_SYSTEM_ERROR = 1 << 14;
        const DETECTED_PARITY_ERROR = 1 << 15;
        const _ = !0;
    }
}

/// Capability IDs (PCI Code and ID Assignment 1.11 §2); an open set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityId(pub u8);

impl CapabilityId {
    pub const POWER_MANAGEMENT: Self = Self(0x01);
    pub const MSI: Self = Self(0x05);
    pub const VENDOR_SPECIFIC: Self = Self(0x09);
    pub const PCI_EXPRESS: Self = Self(0x10);
    pub const MSIX: Self = Self(0x11);
}
