//! Access to the registers a Generic Address Structure names: the reset,
//! PM1, PM timer and sleep registers the FADT points at.

use super::{AddressSpace, GenericAddress};

/// Register access through a GAS, for the reset, PM1 and sleep registers.
impl GenericAddress {
    /// Writes `value` at the register's access width. Returns false for an
    /// address space the firmware cannot drive.
    ///
    /// # Safety
    /// The GAS must name a register of this platform (the FADT's reset, PM1
    /// or sleep registers) whose write has the effect the caller wants; an
    /// arbitrary GAS would write arbitrary memory or ports.
    pub unsafe fn write(&self, value: u64) -> bool {
        use crate::mmio::Mmio;
        use x86_64::instructions::port::Port;
        let width = self.access_bytes(1);
        match self.space {
            AddressSpace::SYSTEM_IO => {
                let Ok(port) = u16::try_from(self.address) else {
                    return false;
                };
                // SAFETY: the caller's contract: `port` is a platform register.
                unsafe {
                    match width {
                        1 => Port::<u8>::new(port).write(value as u8),
                        2 => Port::<u16>::new(port).write(value as u16),
                        _ => Port::<u32>::new(port).write(value as u32),
                    }
                }
                true
            }
            AddressSpace::SYSTEM_MEMORY => {
                // SAFETY: the caller's contract: a register of the platform;
                // the window covers exactly one access of the given width.
                let mmio = unsafe { Mmio::new(self.address, u64::from(width)) };
                match width {
                    1 => mmio.write::<u8>(0, value as u8),
                    2 => mmio.write::<u16>(0, value as u16),
                    4 => mmio.write::<u32>(0, value as u32),
                    _ => mmio.write::<u64>(0, value),
                }
                true
            }
            AddressSpace::PCI_CONFIG => {
                // ACPI 6.5 §5.2.3.2: bus 0, device in bits 32-47, function
                // in 16-31, register offset in 0-15. Type 1 config access
                // through 0xCF8/0xCFC (PCI Local Bus 3.0 §3.2.2.3.2).
                let device = (self.address >> 32) & 0x1f;
                let function = (self.address >> 16) & 0x7;
                let offset = self.address & 0xfc;
                let select = 0x8000_0000 | (device << 11) | (function << 8) | offset;
                let data = 0xcfc + (self.address & 3) as u16;
                // SAFETY: the caller's contract: a configuration register of
                // a platform device; 0xCF8/0xCFC are the type 1 access ports.
                unsafe {
                    Port::<u32>::new(0xcf8).write(select as u32);
                    match width {
                        1 => Port::<u8>::new(data).write(value as u8),
                        2 => Port::<u16>::new(data).write(value as u16),
                        _ => Port::<u32>::new(data).write(value as u32),
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Reads the register at its access width; `None` for an unsupported
    /// address space.
    ///
    /// # Safety
    /// As for [`GenericAddress::write`]: the GAS must name a register of this
    /// platform (reads of device registers can have side effects, and an
    /// arbitrary memory address need not be mapped).
    pub unsafe fn read(&self) -> Option<u64> {
        use crate::mmio::Mmio;
        use x86_64::instructions::port::Port;
        let width = self.access_bytes(1);
        match self.space {
            AddressSpace::SYSTEM_IO => {
                let port = u16::try_from(self.address).ok()?;
                // SAFETY: the caller's contract: `port` is a platform register.
                Some(unsafe {
                    match width {
                        1 => u64::from(Port::<u8>::new(port).read()),
                        2 => u64::from(Port::<u16>::new(port).read()),
                        _ => u64::from(Port::<u32>::new(port).read()),
                    }
                })
            }
            AddressSpace::SYSTEM_MEMORY => {
                // SAFETY: the caller's contract, as for `write`.
                let mmio = unsafe { Mmio::new(self.address, u64::from(width)) };
                Some(match width {
                    1 => u64::from(mmio.read::<u8>(0)),
                    2 => u64::from(mmio.read::<u16>(0)),
                    4 => u64::from(mmio.read::<u32>(0)),
                    _ => mmio.read::<u64>(0),
                })
            }
            _ => None,
        }
    }
}
