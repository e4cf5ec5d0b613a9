//! Bus enumeration and BAR decoding and sizing.

use alloc::vec::Vec;

use super::{
    Bdf, Command, ConfigAccess, HEADER_MULTI_FUNCTION, HEADER_TYPE_BRIDGE, HEADER_TYPE_GENERAL,
    VENDOR_ABSENT, reg,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    Io,
    Memory32,
    /// Occupies this BAR slot and the next one.
    Memory64,
}

/// A decoded, sized base address register (PCI 3.0 §6.2.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    pub kind: BarKind,
    pub prefetchable: bool,
    /// Bus address; 0 means the VMM left the BAR unassigned.
    pub address: u64,
    /// Bytes decoded; always a power of two.
    pub size: u64,
}

impl Bar {
    pub fn is_assigned(&self) -> bool {
        self.address != 0
    }

    pub fn is_memory(&self) -> bool {
        self.kind != BarKind::Io
    }
}

/// One present PCI function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    pub bdf: Bdf,
    pub vendor: u16,
    pub device: u16,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    /// Header layout without the multi-function bit.
    pub header_type: u8,
    /// Indexed by BAR number; the upper half of a 64-bit BAR is `None`.
    pub bars: [Option<Bar>; 6],
}

/// Walks the bus tree from bus 0: every device slot of a bus is probed, and
/// bridges lead to their (VMM-assigned) secondary buses. Returns the present
/// functions sorted by bus/device/function, with BARs decoded and sized.
pub fn enumerate(access: &dyn ConfigAccess) -> Vec<PciDevice> {
    let mut devices = Vec::new();
    let mut scanned = [false; 256];
    let mut pending: Vec<u8> = alloc::vec![0];
    while let Some(bus) = pending.pop() {
        if core::mem::replace(&mut scanned[usize::from(bus)], true) {
            continue;
        }
        for device in 0..32 {
            let first = Bdf::new(bus, device, 0);
            if access.read16(first, reg::VENDOR_ID) == VENDOR_ABSENT {
                continue;
            }
            let multi_function = access.read8(first, reg::HEADER_TYPE) & HEADER_MULTI_FUNCTION != 0;
            let functions = if multi_function { 8 } else { 1 };
            for function in 0..functions {
                let bdf = Bdf::new(bus, device, function);
                let Some(found) = probe_function(access, bdf) else {
                    continue;
                };
                if found.header_type == HEADER_TYPE_BRIDGE {
                    // Buses behind a bridge are numbered above it; anything
                    // else is unprogrammed (0) or bogus and would loop.
                    let secondary = access.read8(bdf, reg::SECONDARY_BUS);
                    if secondary > bus {
                        pending.push(secondary);
                    } else {
                        log::warn!(
                            "pci: bridge {bdf} has no usable secondary bus ({secondary}); not scanned"
                        );
                    }
                }
                devices.push(found);
            }
        }
    }
    devices.sort_by_key(|device| device.bdf);
    devices
}

/// Reads one function's identity and BARs, or `None` if it is absent.
pub fn probe_function(access: &dyn ConfigAccess, bdf: Bdf) -> Option<PciDevice> {
    let vendor = access.read16(bdf, reg::VENDOR_ID);
    if vendor == VENDOR_ABSENT {
        return None;
    }
    let header_type = access.read8(bdf, reg::HEADER_TYPE) & !HEADER_MULTI_FUNCTION;
    let bar_count = match header_type {
        HEADER_TYPE_GENERAL => 6,
        HEADER_TYPE_BRIDGE => 2,
        _ => 0,
    };
    Some(PciDevice {
        bdf,
        vendor,
        device: access.read16(bdf, reg::DEVICE_ID),
        class: access.read8(bdf, reg::CLASS),
        subclass: access.read8(bdf, reg::SUBCLASS),
        prog_if: access.read8(bdf, reg::PROG_IF),
        header_type,
        bars: size_bars(access, bdf, bar_count),
    })
}

pub(super) const fn bar_offset(index: usize) -> u16 {
    reg::BAR0 + 4 * index as u16
}

/// Writes all ones to a BAR and returns what sticks, restoring the original.
///
/// # Safety
/// The function's I/O and memory decoding must be off, so the all-ones
/// address never claims bus addresses (PCI 3.0 §6.2.5.1).
unsafe fn probe_bar_mask(access: &dyn ConfigAccess, bdf: Bdf, offset: u16) -> (u32, u32) {
    let original = access.read32(bdf, offset);
    // SAFETY: decoding is off (this function's contract), so the BAR's value
    // decodes nothing; the original is written back below.
    unsafe { access.write32(bdf, offset, !0) };
    let mask = access.read32(bdf, offset);
    // SAFETY: restores the value the BAR held, with decoding still off.
    unsafe { access.write32(bdf, offset, original) };
    (original, mask)
}

/// Decodes and sizes the first `count` BARs (PCI 3.0 §6.2.5.1). Decoding is
/// off while sizing so the all-ones probe value never claims bus addresses.
///
/// Safe although it writes configuration space: it turns decoding off
/// first, puts back every BAR value it probed, and only then restores the
/// command register it read, so the device ends up decoding exactly what it
/// decoded before and bus mastering is never changed.
fn size_bars(access: &dyn ConfigAccess, bdf: Bdf, count: usize) -> [Option<Bar>; 6] {
    let mut bars = [None; 6];
    if count == 0 {
        return bars;
    }
    let command = access.read16(bdf, reg::COMMAND);
    let decode = (Command::IO_SPACE | Command::MEMORY_SPACE).bits();
    // SAFETY: clearing the decode bits only stops the device claiming
    // addresses; bus mastering keeps the value it had.
    unsafe { access.write16(bdf, reg::COMMAND, command & !decode) };

    let mut index = 0;
    while index < count {
        let offset = bar_offset(index);
        // SAFETY: decoding was turned off above.
        let (original, mask) = unsafe { probe_bar_mask(access, bdf, offset) };
        if original & 1 == 1 {
            // I/O BAR: bits 1:0 are flags. Devices may implement only 16
            // address bits; the lowest writable bit gives the size either way.
            let writable = mask & !0x3;
            if writable != 0 {
                bars[index] = Some(Bar {
                    kind: BarKind::Io,
                    prefetchable: false,
                    address: u64::from(original & !0x3),
                    size: 1 << writable.trailing_zeros(),
                });
            }
            index += 1;
            continue;
        }
        let prefetchable = original & 0x8 != 0;
        let is_64bit = (original >> 1) & 0x3 == 0x2;
        if is_64bit {
            if index + 1 >= count {
                log::warn!("pci: {bdf} BAR{index} claims 64 bits but is the last BAR; ignored");
                break;
            }
            // SAFETY: decoding was turned off above.
            let (original_high, mask_high) =
                unsafe { probe_bar_mask(access, bdf, bar_offset(index + 1)) };
            let writable = u64::from(mask_high) << 32 | u64::from(mask & !0xF);
            if writable != 0 {
                bars[index] = Some(Bar {
                    kind: BarKind::Memory64,
                    prefetchable,
                    address: u64::from(original_high) << 32 | u64::from(original & !0xF),
                    size: 1 << writable.trailing_zeros(),
                });
            }
            index += 2;
        } else {
            let writable = mask & !0xF;
            if writable != 0 {
                bars[index] = Some(Bar {
                    kind: BarKind::Memory32,
                    prefetchable,
                    address: u64::from(original & !0xF),
                    size: 1 << writable.trailing_zeros(),
                });
            }
            index += 1;
        }
    }
    // SAFETY: every BAR holds its original value again, so restoring the
    // original command register re-enables exactly the decoding there was.
    unsafe { access.write16(bdf, reg::COMMAND, command) };
    bars
}

/// Sets memory-space decoding and bus mastering (DMA) for a device we drive.
///
/// # Safety
/// The device's memory BARs must lie in address space set aside for it (not
/// over RAM or other devices), and the device must DMA only into memory
/// handed to it: once bus mastering is on it can write anywhere it has been
/// told to (PCI 3.0 §6.2.2).
pub unsafe fn enable_memory_and_bus_master(access: &dyn ConfigAccess, bdf: Bdf) {
    let command = Command::from_bits_retain(access.read16(bdf, reg::COMMAND));
    // SAFETY: the caller vouches for the BARs and the device's DMA targets.
    unsafe {
        access.write16(
            bdf,
            reg::COMMAND,
            (command | Command::MEMORY_SPACE | Command::BUS_MASTER).bits(),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::fake::machine::*;

    #[test]
    fn enumerates_functions_and_bridged_buses_in_order() {
        let devices = enumerate(&machine());
        let found: Vec<Bdf> = devices.iter().map(|device| device.bdf).collect();
        assert_eq!(
            found,
            [
                HOST_BRIDGE,
                NIC,
                MULTI_A,
                MULTI_B,
                BRIDGE,
                UNASSIGNED,
                BEHIND
            ]
        );
        let storage = find(&devices, MULTI_A);
        assert_eq!((storage.vendor, storage.device), (0x8086, 0x2922));
        assert_eq!(
            (storage.class, storage.subclass, storage.header_type),
            (0x01, 0x06, 0)
        );
        assert_eq!(find(&devices, BRIDGE).header_type, HEADER_TYPE_BRIDGE);
    }

    #[test]
    fn bridge_pointing_back_at_its_own_bus_does_not_loop() {
        let config = machine();
        config
            .functions
            .borrow_mut()
            .get_mut(&BRIDGE)
            .unwrap()
            .space[usize::from(reg::SECONDARY_BUS)] = 0;
        let devices = enumerate(&config);
        assert!(devices.iter().all(|device| device.bdf.bus == 0));
        assert_eq!(devices.len(), 6);
    }

    #[test]
    fn decodes_and_sizes_bars_with_decoding_off() {
        let config = machine();
        config.set_command(NIC, 0x7);
        let devices = enumerate(&config);
        let nic = find(&devices, NIC);
        assert_eq!(
            nic.bars[0],
            Some(Bar {
                kind: BarKind::Io,
                prefetchable: false,
                address: 0xC000,
                size: 0x40
            })
        );
        assert_eq!(
            nic.bars[1],
            Some(Bar {
                kind: BarKind::Memory32,
                prefetchable: false,
                address: 0xFEB0_0000,
                size: 0x1000
            })
        );
        assert_eq!(nic.bars[2], None);
        assert_eq!(
            nic.bars[4],
            Some(Bar {
                kind: BarKind::Memory64,
                prefetchable: true,
                address: 0x8_0000_0000,
                size: 0x4000
            })
        );
        assert_eq!(nic.bars[5], None, "upper half of a 64-bit BAR");
        // Sizing restored the BARs and the command register.
        assert_eq!(config.read32_of(NIC, bar_offset(1)), 0xFEB0_0000);
        assert_eq!(config.read32_of(NIC, bar_offset(5)), 0x8);
        assert_eq!(config.read16(NIC, reg::COMMAND), 0x7);
        assert!(config.bar_writes_with_decode_on.borrow().is_empty());
    }

    #[test]
    fn enabling_sets_memory_and_bus_master_only() {
        let config = machine();
        config.set_command(NIC, 0x400);
        // SAFETY: the fake config space has no devices and no memory effects.
        unsafe { enable_memory_and_bus_master(&config, NIC) };
        assert_eq!(config.read16(NIC, reg::COMMAND), 0x406);
    }
}
