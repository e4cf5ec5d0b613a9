//! BAR placement for BARs the VMM left unassigned, and full reassignment.

use alloc::vec::Vec;
use core::fmt;

use super::enumerate::bar_offset;
use super::{Bar, BarKind, Bdf, Command, ConfigAccess, PciDevice, reg};

/// A half-open range of bus addresses BARs may be placed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressWindow {
    pub base: u64,
    pub end: u64,
}

/// Where unassigned BARs may go: `mem32` below 4 GiB (ACPI `_CRS` or the
/// e820 hole), `mem64` above it, `io` for I/O BARs. 64-bit BARs try `mem64`
/// first.
#[derive(Clone, Copy, Debug, Default)]
pub struct BarWindows {
    pub mem32: Option<AddressWindow>,
    pub mem64: Option<AddressWindow>,
    pub io: Option<AddressWindow>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciError {
    /// No window of the BAR's kind has room for it.
    BarDoesNotFit { bdf: Bdf, bar: u8, size: u64 },
    /// The device sits behind a bridge whose forwarding windows we do not
    /// program, so an address we chose would not reach it.
    BehindBridge { bdf: Bdf, bar: u8 },
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PciError::BarDoesNotFit { bdf, bar, size } => {
                write!(
                    f,
                    "{bdf} BAR{bar} ({size:#x} bytes) fits no free address window"
                )
            }
            PciError::BehindBridge { bdf, bar } => {
                write!(
                    f,
                    "{bdf} BAR{bar} is unassigned behind a bridge; not assigned"
                )
            }
        }
    }
}

/// Places BARs the VMM left at address 0 into `windows`, naturally aligned
/// and clear of every BAR already placed. BARs with an address are never
/// moved: Cloud Hypervisor and QEMU's own assignments are authoritative.
/// Returns the BARs that could not be placed (empty on full success).
///
/// # Safety
/// `windows` must be bus address space reserved for PCI BARs: neither RAM
/// nor any other device's registers (e.g. the MMIO hole below 4 GiB minus
/// ECAM, IOAPIC and LAPIC). Within that, this function's own bookkeeping
/// keeps the BARs it places clear of each other and of every BAR already
/// placed, and keeps decoding off while a BAR is half written.
pub unsafe fn assign_unassigned_bars(
    access: &dyn ConfigAccess,
    devices: &mut [PciDevice],
    windows: &BarWindows,
) -> Vec<PciError> {
    let mut failures = Vec::new();
    // Memory and I/O are separate address spaces, each with its own
    // list of ranges already claimed.
    let mut memory_used: Vec<(u64, u64)> = Vec::new();
    let mut io_used: Vec<(u64, u64)> = Vec::new();
    let mut unassigned: Vec<(usize, usize, Bar)> = Vec::new();
    for (device_index, device) in devices.iter().enumerate() {
        for (bar_index, bar) in device.bars.iter().enumerate() {
            let Some(bar) = *bar else { continue };
            let range = (bar.address, bar.address.saturating_add(bar.size));
            match (bar.is_assigned(), bar.is_memory()) {
                (true, true) => memory_used.push(range),
                (true, false) => io_used.push(range),
                (false, _) => unassigned.push((device_index, bar_index, bar)),
            }
        }
    }
    // Largest first wastes the least space to alignment.
    unassigned.sort_by_key(|entry| core::cmp::Reverse(entry.2.size));

    for (device_index, bar_index, bar) in unassigned {
        let bdf = devices[device_index].bdf;
        let bar_number = bar_index as u8;
        if bdf.bus != 0 {
            failures.push(PciError::BehindBridge {
                bdf,
                bar: bar_number,
            });
            continue;
        }
        let (candidates, used) = match bar.kind {
            BarKind::Io => ([windows.io, None], &mut io_used),
            BarKind::Memory32 => ([windows.mem32, None], &mut memory_used),
            BarKind::Memory64 => ([windows.mem64, windows.mem32], &mut memory_used),
        };
        let placed = candidates
            .into_iter()
            .flatten()
            .find_map(|window| allocate(window, bar.size, used));
        let Some(address) = placed else {
            failures.push(PciError::BarDoesNotFit {
                bdf,
                bar: bar_number,
                size: bar.size,
            });
            continue;
        };
        used.push((address, address + bar.size));
        // SAFETY: `address..address + size` lies in a window the caller
        // reserved for BARs and overlaps no BAR placed so far.
        unsafe { write_bar(access, bdf, bar_index, bar.kind, address) };
        if let Some(slot) = devices[device_index].bars[bar_index].as_mut() {
            slot.address = address;
        }
        log::info!(
            "pci: {bdf} BAR{bar_index} assigned {address:#x} ({:#x} bytes)",
            bar.size
        );
    }
    failures
}

/// Places every BAR on bus 0 anew, ignoring the addresses the VMM gave them
/// (`pci=reassign` on the firmware command line): what the firmware does on
/// a VMM that leaves BAR assignment to it, exercised on one that does not.
/// Each function's decoding is off while its BARs are cleared and placed,
/// and is switched back on only when all of them found a place. BARs behind
/// bridges keep their addresses (we do not program bridge windows).
///
/// # Safety
/// As for [`assign_unassigned_bars`]; in addition no driver may be using
/// the bus 0 devices' BARs, since every one of them moves.
pub unsafe fn reassign_bars(
    access: &dyn ConfigAccess,
    devices: &mut [PciDevice],
    windows: &BarWindows,
) -> Vec<PciError> {
    let decode = (Command::IO_SPACE | Command::MEMORY_SPACE).bits();
    let mut commands = Vec::new();
    for device in devices.iter_mut().filter(|d| d.bdf.bus == 0) {
        let command = access.read16(device.bdf, reg::COMMAND);
        // SAFETY: clearing the decode bits only stops the device claiming
        // addresses; bus mastering keeps the value it had.
        unsafe { access.write16(device.bdf, reg::COMMAND, command & !decode) };
        commands.push((device.bdf, command));
        for (index, slot) in device.bars.iter_mut().enumerate() {
            if let Some(bar) = slot {
                // SAFETY: address 0 marks the BAR unassigned; the device's
                // decoding is off and stays off until the BAR is placed.
                unsafe { write_bar(access, device.bdf, index, bar.kind, 0) };
                bar.address = 0;
            }
        }
    }
    // SAFETY: the caller's contract for `windows` is this function's.
    let failures = unsafe { assign_unassigned_bars(access, devices, windows) };
    for (bdf, command) in commands {
        let failed = failures.iter().any(|f| match f {
            PciError::BarDoesNotFit { bdf: b, .. } | PciError::BehindBridge { bdf: b, .. } => {
                *b == bdf
            }
        });
        if !failed {
            // SAFETY: every BAR of this function was placed in a reserved
            // window clear of the others, so its decoding may return.
            unsafe { access.write16(bdf, reg::COMMAND, command) };
        }
    }
    failures
}

/// Lowest naturally aligned address in `window` that overlaps nothing in
/// `used`.
fn allocate(window: AddressWindow, size: u64, used: &[(u64, u64)]) -> Option<u64> {
    if size == 0 || !size.is_power_of_two() {
        return None;
    }
    let align_up = |address: u64| address.checked_next_multiple_of(size);
    let mut candidate = align_up(window.base)?;
    loop {
        let end = candidate.checked_add(size)?;
        if end > window.end {
            return None;
        }
        match used
            .iter()
            .find(|&&(start, stop)| candidate < stop && start < end)
        {
            // Each step moves strictly upwards, so this terminates.
            Some(&(_, stop)) => candidate = align_up(stop)?,
            None => return Some(candidate),
        }
    }
}

/// Programs BAR `index` of `bdf` with `address`, keeping its type bits.
///
/// # Safety
/// `address..address + size` of the BAR must be free, PCI-reserved bus
/// address space (or 0 with decoding off), since the device's decoding is
/// restored to its previous state afterwards.
unsafe fn write_bar(
    access: &dyn ConfigAccess,
    bdf: Bdf,
    index: usize,
    kind: BarKind,
    address: u64,
) {
    // Decoding stays off until both halves of a 64-bit BAR hold the new value.
    let command = access.read16(bdf, reg::COMMAND);
    let decode = (Command::IO_SPACE | Command::MEMORY_SPACE).bits();
    // SAFETY: clearing the decode bits only stops the device claiming
    // addresses.
    unsafe { access.write16(bdf, reg::COMMAND, command & !decode) };
    let offset = bar_offset(index);
    let flags = access.read32(bdf, offset) & if kind == BarKind::Io { 0x3 } else { 0xF };
    // SAFETY: decoding is off; the caller vouches for `address`.
    unsafe {
        access.write32(bdf, offset, address as u32 | flags);
        if kind == BarKind::Memory64 {
            access.write32(bdf, offset + 4, (address >> 32) as u32);
        }
    }
    // SAFETY: the BAR now holds an address the caller vouched for.
    unsafe { access.write16(bdf, reg::COMMAND, command) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::enumerate;
    use crate::pci::fake::machine::*;

    #[test]
    fn assigns_only_unassigned_bars_aligned_and_clear_of_placed_ones() {
        let config = machine();
        let mut devices = enumerate(&config);
        let before_nic = find(&devices, NIC).clone();
        let windows = BarWindows {
            // The window starts inside the NIC's BAR1, which must be skipped.
            mem32: Some(AddressWindow {
                base: 0xFEB0_0800,
                end: 0xFF00_0000,
            }),
            mem64: None,
            io: None,
        };
        // SAFETY: the fake config space has no devices and no memory effects.
        let failures = unsafe { assign_unassigned_bars(&config, &mut devices, &windows) };
        assert_eq!(
            failures,
            [PciError::BehindBridge {
                bdf: BEHIND,
                bar: 0
            }]
        );
        assert_eq!(find(&devices, NIC), &before_nic, "placed BARs never move");

        let device = find(&devices, UNASSIGNED);
        let bar1 = device.bars[1].unwrap();
        let bar2 = device.bars[2].unwrap();
        let bar5 = device.bars[5].unwrap();
        // Largest first, naturally aligned, clear of the NIC's BAR1 at
        // 0xFEB0_0000..0xFEB0_1000.
        assert_eq!(bar2.address, 0xFEC0_0000);
        assert_eq!(bar5.address, 0xFEB0_2000);
        assert_eq!(bar1.address, 0xFEB0_1000);
        // The registers hold the new addresses with their type bits intact.
        assert_eq!(
            config.read32_of(UNASSIGNED, bar_offset(1)),
            bar1.address as u32
        );
        assert_eq!(
            config.read32_of(UNASSIGNED, bar_offset(2)),
            bar2.address as u32 | 0xC
        );
        assert_eq!(config.read32_of(UNASSIGNED, bar_offset(3)), 0);
        assert!(config.bar_writes_with_decode_on.borrow().is_empty());
    }

    #[test]
    fn reassign_moves_every_bus_0_bar_into_the_windows() {
        let config = machine();
        config.set_command(NIC, 0x7);
        let mut devices = enumerate(&config);
        let windows = BarWindows {
            mem32: Some(AddressWindow {
                base: 0xC000_0000,
                end: 0xC100_0000,
            }),
            mem64: None,
            io: Some(AddressWindow {
                base: 0xD000,
                end: 0x1_0000,
            }),
        };
        // SAFETY: the fake config space has no devices and no memory effects.
        let failures = unsafe { reassign_bars(&config, &mut devices, &windows) };
        assert_eq!(
            failures,
            [PciError::BehindBridge {
                bdf: BEHIND,
                bar: 0
            }]
        );
        let nic = find(&devices, NIC);
        assert_eq!(nic.bars[0].unwrap().address, 0xD000);
        for bar in [1, 4] {
            let address = nic.bars[bar].unwrap().address;
            assert!(
                (0xC000_0000..0xC100_0000).contains(&address),
                "{address:#x}"
            );
        }
        assert_eq!(config.read32_of(NIC, bar_offset(0)), 0xD001);
        assert_eq!(config.read32_of(NIC, bar_offset(5)), 0, "below 4 GiB now");
        // Every BAR placed: the NIC decodes again; nothing was written while
        // it did.
        assert_eq!(config.read16(NIC, reg::COMMAND), 0x7);
        assert!(config.bar_writes_with_decode_on.borrow().is_empty());
    }

    #[test]
    fn sixty_four_bit_bars_prefer_the_high_window_and_report_misfits() {
        let config = machine();
        let mut devices = enumerate(&config);
        let windows = BarWindows {
            mem32: Some(AddressWindow {
                base: 0xC000_0000,
                end: 0xC000_2000,
            }),
            mem64: Some(AddressWindow {
                base: 0x10_0000_0000,
                end: 0x20_0000_0000,
            }),
            io: None,
        };
        // SAFETY: the fake config space has no devices and no memory effects.
        let failures = unsafe { assign_unassigned_bars(&config, &mut devices, &windows) };
        let device = find(&devices, UNASSIGNED);
        assert_eq!(device.bars[2].unwrap().address, 0x10_0000_0000);
        assert_eq!(config.read32_of(UNASSIGNED, bar_offset(3)), 0x10);
        // Only 8 KiB below 4 GiB: the 8 KiB BAR fits, the 4 KiB one does not.
        assert_eq!(device.bars[5].unwrap().address, 0xC000_0000);
        assert!(failures.contains(&PciError::BarDoesNotFit {
            bdf: UNASSIGNED,
            bar: 1,
            size: 0x1000
        }));
    }

    #[test]
    fn allocator_skips_used_ranges_and_respects_the_window_end() {
        let window = AddressWindow {
            base: 0x1000,
            end: 0x10000,
        };
        assert_eq!(allocate(window, 0x1000, &[]), Some(0x1000));
        assert_eq!(allocate(window, 0x4000, &[(0x4000, 0x4100)]), Some(0x8000));
        assert_eq!(allocate(window, 0x8000, &[(0x8000, 0x8001)]), None);
        assert_eq!(
            allocate(window, 0x3000, &[]),
            None,
            "sizes are powers of two"
        );
    }
}
