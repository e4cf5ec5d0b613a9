//! The configuration access mechanisms: I/O ports 0xCF8/0xCFC and ECAM.

use super::{Bdf, ConfigAccess};
use crate::mmio::Mmio;
use x86_64::instructions::port::{Port, PortWriteOnly};

/// Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2): an address written to
/// 0xCF8 selects the dword that 0xCFC..0xCFF then reads or writes. Reaches
/// only the first 256 bytes of each function.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortConfigAccess;

impl PortConfigAccess {
    const ADDRESS: u16 = 0xCF8;
    const DATA: u16 = 0xCFC;

    /// Selects the dword holding `offset`; returns the data port for the
    /// byte lane of `offset`, or `None` if the access is misaligned or beyond
    /// the 256 bytes this mechanism reaches.
    fn select(bdf: Bdf, offset: u16, width: u16) -> Option<u16> {
        if offset >= 256 || !offset.is_multiple_of(width) {
            return None;
        }
        let address = 0x8000_0000
            | u32::from(bdf.bus) << 16
            | u32::from(bdf.device & 0x1F) << 11
            | u32::from(bdf.function & 0x7) << 8
            | u32::from(offset & 0xFC);
        // SAFETY: 0xCF8 is the configuration address port; writing it only
        // selects which register the data port reaches.
        unsafe { PortWriteOnly::<u32>::new(Self::ADDRESS).write(address) };
        Some(Self::DATA + (offset & 3))
    }
}

// SAFETY (for the port accesses below): the data port reaches the
// configuration register `select` chose. Configuration reads have no memory
// effects (PCI 3.0 §6.1); what a write does to the device is the caller's
// obligation under the `ConfigAccess::write*` contract.
impl ConfigAccess for PortConfigAccess {
    fn read8(&self, bdf: Bdf, offset: u16) -> u8 {
        // SAFETY: see the comment on this impl.
        Self::select(bdf, offset, 1).map_or(!0, |port| unsafe { Port::<u8>::new(port).read() })
    }

    fn read16(&self, bdf: Bdf, offset: u16) -> u16 {
        // SAFETY: see the comment on this impl.
        Self::select(bdf, offset, 2).map_or(!0, |port| unsafe { Port::<u16>::new(port).read() })
    }

    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        // SAFETY: see the comment on this impl.
        Self::select(bdf, offset, 4).map_or(!0, |port| unsafe { Port::<u32>::new(port).read() })
    }

    unsafe fn write8(&self, bdf: Bdf, offset: u16, value: u8) {
        if let Some(port) = Self::select(bdf, offset, 1) {
            // SAFETY: see the comment on this impl.
            unsafe { Port::<u8>::new(port).write(value) };
        }
    }

    unsafe fn write16(&self, bdf: Bdf, offset: u16, value: u16) {
        if let Some(port) = Self::select(bdf, offset, 2) {
            // SAFETY: see the comment on this impl.
            unsafe { Port::<u16>::new(port).write(value) };
        }
    }

    unsafe fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(port) = Self::select(bdf, offset, 4) {
            // SAFETY: see the comment on this impl.
            unsafe { Port::<u32>::new(port).write(value) };
        }
    }
}

/// Enhanced configuration access (PCIe 4.0 §7.2.2): each function's 4 KiB of
/// configuration space is memory mapped at `base + (bus << 20 | device << 15
/// | function << 12)`.
#[derive(Clone, Copy, Debug)]
pub struct EcamConfigAccess {
    window: Mmio,
    start_bus: u8,
    end_bus: u8,
}

impl EcamConfigAccess {
    /// `base` is the MCFG allocation's base address, which corresponds to bus
    /// 0 even when `start_bus` is not 0 (PCI Firmware 3.2 §4.1.2); only
    /// `start_bus..=end_bus` is mapped and reachable. Cloud Hypervisor places
    /// ECAM at 0xE800_0000.
    ///
    /// # Safety
    /// `base + (start_bus << 20) .. base + ((end_bus + 1) << 20)` must be the
    /// platform's ECAM region as described by the ACPI MCFG table.
    pub unsafe fn new(base: u64, start_bus: u8, end_bus: u8) -> Self {
        let (start_bus, end_bus) = (start_bus.min(end_bus), end_bus.max(start_bus));
        let window_base = base + (u64::from(start_bus) << 20);
        let window_len = (u64::from(end_bus - start_bus) + 1) << 20;
        crate::paging::map_device_memory(window_base, window_len);
        EcamConfigAccess {
            // SAFETY: the caller guarantees this is the ECAM region, and it
            // was just mapped as device memory.
            window: unsafe { Mmio::new(window_base, window_len) },
            start_bus,
            end_bus,
        }
    }

    /// Offset of the register inside the window, if the access is aligned
    /// and the bus is covered.
    fn locate(&self, bdf: Bdf, offset: u16, width: u16) -> Option<u64> {
        if offset >= 4096
            || !offset.is_multiple_of(width)
            || !(self.start_bus..=self.end_bus).contains(&bdf.bus)
        {
            return None;
        }
        Some(
            u64::from(bdf.bus - self.start_bus) << 20
                | u64::from(bdf.device & 0x1F) << 15
                | u64::from(bdf.function & 0x7) << 12
                | u64::from(offset),
        )
    }
}

// The ECAM window is mapped device memory (`new`'s contract) and `locate`
// keeps every access inside it; the effect of a write on the device is the
// caller's obligation under the `ConfigAccess::write*` contract.
impl ConfigAccess for EcamConfigAccess {
    fn read8(&self, bdf: Bdf, offset: u16) -> u8 {
        self.locate(bdf, offset, 1)
            .map_or(!0, |at| self.window.read(at))
    }

    fn read16(&self, bdf: Bdf, offset: u16) -> u16 {
        self.locate(bdf, offset, 2)
            .map_or(!0, |at| self.window.read(at))
    }

    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        self.locate(bdf, offset, 4)
            .map_or(!0, |at| self.window.read(at))
    }

    unsafe fn write8(&self, bdf: Bdf, offset: u16, value: u8) {
        if let Some(at) = self.locate(bdf, offset, 1) {
            self.window.write(at, value);
        }
    }

    unsafe fn write16(&self, bdf: Bdf, offset: u16, value: u16) {
        if let Some(at) = self.locate(bdf, offset, 2) {
            self.window.write(at, value);
        }
    }

    unsafe fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(at) = self.locate(bdf, offset, 4) {
            self.window.write(at, value);
        }
    }
}
