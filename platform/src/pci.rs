//! PCI configuration space: access through port I/O or ECAM, bus enumeration,
//! BAR sizing and assignment, and capability-list walking.
//!
//! References: PCI Local Bus Specification 3.0 §6 (configuration space),
//! PCI-to-PCI Bridge Architecture 1.2 §3.2 (type 1 header), PCI Express Base
//! 4.0 §7.2.2 (ECAM) and the PCI Firmware Specification 3.2 §4.1.2 (MCFG).

use alloc::vec::Vec;
use bitflags::bitflags;
use core::fmt;

use crate::mmio::Mmio;
use x86_64::instructions::port::{Port, PortWriteOnly};

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
pub trait ConfigAccess {
    fn read8(&self, bdf: Bdf, offset: u16) -> u8;
    fn read16(&self, bdf: Bdf, offset: u16) -> u16;
    fn read32(&self, bdf: Bdf, offset: u16) -> u32;
    fn write8(&self, bdf: Bdf, offset: u16, value: u8);
    fn write16(&self, bdf: Bdf, offset: u16, value: u16);
    fn write32(&self, bdf: Bdf, offset: u16, value: u32);
}

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
// effects; writes reprogram a device, which callers of `ConfigAccess` do on
// purpose (BAR placement, command register) — PCI 3.0 §6.
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

    fn write8(&self, bdf: Bdf, offset: u16, value: u8) {
        if let Some(port) = Self::select(bdf, offset, 1) {
            // SAFETY: see the comment on this impl.
            unsafe { Port::<u8>::new(port).write(value) };
        }
    }

    fn write16(&self, bdf: Bdf, offset: u16, value: u16) {
        if let Some(port) = Self::select(bdf, offset, 2) {
            // SAFETY: see the comment on this impl.
            unsafe { Port::<u16>::new(port).write(value) };
        }
    }

    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
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

    fn write8(&self, bdf: Bdf, offset: u16, value: u8) {
        if let Some(at) = self.locate(bdf, offset, 1) {
            self.window.write(at, value);
        }
    }

    fn write16(&self, bdf: Bdf, offset: u16, value: u16) {
        if let Some(at) = self.locate(bdf, offset, 2) {
            self.window.write(at, value);
        }
    }

    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(at) = self.locate(bdf, offset, 4) {
            self.window.write(at, value);
        }
    }
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

const fn bar_offset(index: usize) -> u16 {
    reg::BAR0 + 4 * index as u16
}

/// Writes all ones to a BAR and returns what sticks, restoring the original.
fn probe_bar_mask(access: &dyn ConfigAccess, bdf: Bdf, offset: u16) -> (u32, u32) {
    let original = access.read32(bdf, offset);
    access.write32(bdf, offset, !0);
    let mask = access.read32(bdf, offset);
    access.write32(bdf, offset, original);
    (original, mask)
}

/// Decodes and sizes the first `count` BARs (PCI 3.0 §6.2.5.1). Decoding is
/// off while sizing so the all-ones probe value never claims bus addresses.
fn size_bars(access: &dyn ConfigAccess, bdf: Bdf, count: usize) -> [Option<Bar>; 6] {
    let mut bars = [None; 6];
    if count == 0 {
        return bars;
    }
    let command = access.read16(bdf, reg::COMMAND);
    let decode = (Command::IO_SPACE | Command::MEMORY_SPACE).bits();
    access.write16(bdf, reg::COMMAND, command & !decode);

    let mut index = 0;
    while index < count {
        let offset = bar_offset(index);
        let (original, mask) = probe_bar_mask(access, bdf, offset);
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
            let (original_high, mask_high) = probe_bar_mask(access, bdf, bar_offset(index + 1));
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
    access.write16(bdf, reg::COMMAND, command);
    bars
}

/// Sets memory-space decoding and bus mastering (DMA) for a device we drive.
pub fn enable_memory_and_bus_master(access: &dyn ConfigAccess, bdf: Bdf) {
    let command = Command::from_bits_retain(access.read16(bdf, reg::COMMAND));
    access.write16(
        bdf,
        reg::COMMAND,
        (command | Command::MEMORY_SPACE | Command::BUS_MASTER).bits(),
    );
}

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
pub fn assign_unassigned_bars(
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
        write_bar(access, bdf, bar_index, bar.kind, address);
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
pub fn reassign_bars(
    access: &dyn ConfigAccess,
    devices: &mut [PciDevice],
    windows: &BarWindows,
) -> Vec<PciError> {
    let decode = (Command::IO_SPACE | Command::MEMORY_SPACE).bits();
    let mut commands = Vec::new();
    for device in devices.iter_mut().filter(|d| d.bdf.bus == 0) {
        let command = access.read16(device.bdf, reg::COMMAND);
        access.write16(device.bdf, reg::COMMAND, command & !decode);
        commands.push((device.bdf, command));
        for (index, slot) in device.bars.iter_mut().enumerate() {
            if let Some(bar) = slot {
                write_bar(access, device.bdf, index, bar.kind, 0);
                bar.address = 0;
            }
        }
    }
    let failures = assign_unassigned_bars(access, devices, windows);
    for (bdf, command) in commands {
        let failed = failures.iter().any(|f| match f {
            PciError::BarDoesNotFit { bdf: b, .. } | PciError::BehindBridge { bdf: b, .. } => {
                *b == bdf
            }
        });
        if !failed {
            access.write16(bdf, reg::COMMAND, command);
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

fn write_bar(access: &dyn ConfigAccess, bdf: Bdf, index: usize, kind: BarKind, address: u64) {
    // Decoding stays off until both halves of a 64-bit BAR hold the new value.
    let command = access.read16(bdf, reg::COMMAND);
    let decode = (Command::IO_SPACE | Command::MEMORY_SPACE).bits();
    access.write16(bdf, reg::COMMAND, command & !decode);
    let offset = bar_offset(index);
    let flags = access.read32(bdf, offset) & if kind == BarKind::Io { 0x3 } else { 0xF };
    access.write32(bdf, offset, address as u32 | flags);
    if kind == BarKind::Memory64 {
        access.write32(bdf, offset + 4, (address >> 32) as u32);
    }
    access.write16(bdf, reg::COMMAND, command);
}

/// One entry of a function's capability list (PCI 3.0 §6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    pub id: CapabilityId,
    /// Offset of the capability in configuration space.
    pub offset: u8,
}

/// Iterates a function's capability list. Pointers into the predefined
/// header and pointers to an entry already visited end the walk, so a
/// malformed (looping) list cannot hang the firmware.
pub struct Capabilities<'a> {
    access: &'a dyn ConfigAccess,
    bdf: Bdf,
    next: u8,
    /// One bit per dword of the 256-byte space.
    visited: u64,
}

pub fn capabilities(access: &dyn ConfigAccess, bdf: Bdf) -> Capabilities<'_> {
    let status = Status::from_bits_retain(access.read16(bdf, reg::STATUS));
    let next = if status.contains(Status::CAPABILITIES_LIST) {
        let pointer = match access.read8(bdf, reg::HEADER_TYPE) & !HEADER_MULTI_FUNCTION {
            HEADER_TYPE_CARDBUS => reg::CARDBUS_CAPABILITIES_POINTER,
            _ => reg::CAPABILITIES_POINTER,
        };
        access.read8(bdf, pointer)
    } else {
        0
    };
    Capabilities {
        access,
        bdf,
        next,
        visited: 0,
    }
}

impl Iterator for Capabilities<'_> {
    type Item = Capability;

    fn next(&mut self) -> Option<Capability> {
        // The bottom two bits are reserved (PCI 3.0 §6.7).
        let offset = self.next & 0xFC;
        let bit = 1u64 << (offset / 4);
        if offset < 0x40 || self.visited & bit != 0 {
            self.next = 0;
            return None;
        }
        self.visited |= bit;
        let id = self.access.read8(self.bdf, u16::from(offset));
        self.next = self.access.read8(self.bdf, u16::from(offset) + 1);
        Some(Capability {
            id: CapabilityId(id),
            offset,
        })
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A configuration space in memory, for host tests of code above the
    //! access mechanism.

    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    pub struct FakeFunction {
        pub space: [u8; 256],
        /// Per BAR dword: the bits software can change (the rest keep their
        /// value), modelling how BAR sizing reads back.
        pub bar_writable: [u32; 6],
    }

    impl FakeFunction {
        pub fn new(vendor: u16, device: u16, class: u8, subclass: u8, header_type: u8) -> Self {
            let mut function = FakeFunction {
                space: [0; 256],
                bar_writable: [0; 6],
            };
            function.set16(reg::VENDOR_ID, vendor);
            function.set16(reg::DEVICE_ID, device);
            function.space[usize::from(reg::CLASS)] = class;
            function.space[usize::from(reg::SUBCLASS)] = subclass;
            function.space[usize::from(reg::HEADER_TYPE)] = header_type;
            function
        }

        pub fn set16(&mut self, offset: u16, value: u16) {
            let at = usize::from(offset);
            self.space[at..at + 2].copy_from_slice(&value.to_le_bytes());
        }

        pub fn set32(&mut self, offset: u16, value: u32) {
            let at = usize::from(offset);
            self.space[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }

        pub fn get32(&self, offset: u16) -> u32 {
            let at = usize::from(offset);
            u32::from_le_bytes(self.space[at..at + 4].try_into().unwrap())
        }

        /// A 32-bit memory (or, with `io`, I/O) BAR of `size` bytes.
        pub fn bar32(mut self, index: usize, address: u32, size: u32, io: bool) -> Self {
            let flags = if io { 0x1 } else { 0x0 };
            let low_bits = if io { 0x3 } else { 0xF };
            self.bar_writable[index] = !(size - 1) & !low_bits;
            self.set32(bar_offset(index), address | flags);
            self
        }

        /// A 64-bit prefetchable memory BAR of `size` bytes in `index` and `index + 1`.
        pub fn bar64(mut self, index: usize, address: u64, size: u64) -> Self {
            let mask = !(size - 1);
            self.bar_writable[index] = mask as u32 & !0xF;
            self.bar_writable[index + 1] = (mask >> 32) as u32;
            self.set32(bar_offset(index), address as u32 | 0x4 | 0x8);
            self.set32(bar_offset(index + 1), (address >> 32) as u32);
            self
        }

        /// Sets up a capability list: (offset, id, next, body bytes).
        pub fn capability(mut self, offset: u8, id: u8, next: u8, body: &[u8]) -> Self {
            let at = usize::from(offset);
            self.space[at] = id;
            self.space[at + 1] = next;
            self.space[at + 2..at + 2 + body.len()].copy_from_slice(body);
            let status = u16::from_le_bytes([self.space[6], self.space[7]])
                | Status::CAPABILITIES_LIST.bits();
            self.set16(reg::STATUS, status);
            if self.space[usize::from(reg::CAPABILITIES_POINTER)] == 0 {
                self.space[usize::from(reg::CAPABILITIES_POINTER)] = offset;
            }
            self
        }
    }

    #[derive(Default)]
    pub struct FakeConfig {
        pub functions: RefCell<BTreeMap<Bdf, FakeFunction>>,
        /// Every (bdf, command) written while a BAR was being written.
        pub bar_writes_with_decode_on: RefCell<Vec<Bdf>>,
    }

    impl FakeConfig {
        pub fn add(&self, bdf: Bdf, function: FakeFunction) {
            self.functions.borrow_mut().insert(bdf, function);
        }

        pub fn read32_of(&self, bdf: Bdf, offset: u16) -> u32 {
            self.functions.borrow()[&bdf].get32(offset)
        }

        /// Presets a function's command register, as the VMM left it.
        pub fn set_command(&self, bdf: Bdf, command: u16) {
            self.functions
                .borrow_mut()
                .get_mut(&bdf)
                .unwrap()
                .set16(reg::COMMAND, command);
        }

        fn read(&self, bdf: Bdf, offset: u16, width: usize) -> u32 {
            let functions = self.functions.borrow();
            let Some(function) = functions.get(&bdf) else {
                return !0;
            };
            let at = usize::from(offset);
            let mut bytes = [0u8; 4];
            bytes[..width].copy_from_slice(&function.space[at..at + width]);
            u32::from_le_bytes(bytes)
        }

        fn write(&self, bdf: Bdf, offset: u16, width: usize, value: u32) {
            let mut functions = self.functions.borrow_mut();
            let Some(function) = functions.get_mut(&bdf) else {
                return;
            };
            let is_bar = (reg::BAR0..reg::BAR0 + 24).contains(&offset)
                && function.space[14] & 0x7F == 0
                || (reg::BAR0..reg::BAR0 + 8).contains(&offset);
            if is_bar {
                assert_eq!(width, 4, "BARs are written as dwords");
                let command = u16::from_le_bytes([function.space[4], function.space[5]]);
                if command & 0x3 != 0 {
                    self.bar_writes_with_decode_on.borrow_mut().push(bdf);
                }
                let index = usize::from((offset - reg::BAR0) / 4);
                let writable = function.bar_writable[index];
                let old = function.get32(offset);
                function.set32(offset, (value & writable) | (old & !writable));
                return;
            }
            let at = usize::from(offset);
            function.space[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        }
    }

    impl ConfigAccess for FakeConfig {
        fn read8(&self, bdf: Bdf, offset: u16) -> u8 {
            self.read(bdf, offset, 1) as u8
        }
        fn read16(&self, bdf: Bdf, offset: u16) -> u16 {
            self.read(bdf, offset, 2) as u16
        }
        fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
            self.read(bdf, offset, 4)
        }
        fn write8(&self, bdf: Bdf, offset: u16, value: u8) {
            self.write(bdf, offset, 1, value.into())
        }
        fn write16(&self, bdf: Bdf, offset: u16, value: u16) {
            self.write(bdf, offset, 2, value.into())
        }
        fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
            self.write(bdf, offset, 4, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeConfig, FakeFunction};
    use super::*;

    const HOST_BRIDGE: Bdf = Bdf::new(0, 0, 0);
    const NIC: Bdf = Bdf::new(0, 2, 0);
    const MULTI_A: Bdf = Bdf::new(0, 3, 0);
    const MULTI_B: Bdf = Bdf::new(0, 3, 5);
    const BRIDGE: Bdf = Bdf::new(0, 4, 0);
    const BEHIND: Bdf = Bdf::new(1, 0, 0);
    const UNASSIGNED: Bdf = Bdf::new(0, 5, 0);

    /// A small machine: host bridge, a device with I/O + 32-bit + 64-bit
    /// BARs, a multi-function device (functions 0 and 5), a bridge to bus 1
    /// with one device, and a device whose BARs the VMM left at 0.
    fn machine() -> FakeConfig {
        let config = FakeConfig::default();
        config.add(
            HOST_BRIDGE,
            FakeFunction::new(0x8086, 0x29C0, 0x06, 0x00, 0),
        );
        config.add(
            NIC,
            FakeFunction::new(0x1AF4, 0x1041, 0x02, 0x00, 0)
                .bar32(0, 0xC000, 0x40, true)
                .bar32(1, 0xFEB0_0000, 0x1000, false)
                .bar64(4, 0x8_0000_0000, 0x4000),
        );
        config.add(MULTI_A, FakeFunction::new(0x8086, 0x2922, 0x01, 0x06, 0x80));
        // A function beyond 0 with no multi-function bit of its own still counts.
        config.add(MULTI_B, FakeFunction::new(0x8086, 0x2930, 0x0C, 0x05, 0));
        let mut bridge = FakeFunction::new(0x1B36, 0x000C, 0x06, 0x04, HEADER_TYPE_BRIDGE);
        bridge.space[usize::from(reg::SECONDARY_BUS)] = 1;
        config.add(BRIDGE, bridge);
        config.add(
            BEHIND,
            FakeFunction::new(0x1AF4, 0x1042, 0x01, 0x00, 0).bar32(0, 0, 0x1000, false),
        );
        config.add(
            UNASSIGNED,
            FakeFunction::new(0x1AF4, 0x1042, 0x01, 0x00, 0)
                .bar32(1, 0, 0x1000, false)
                .bar64(2, 0, 0x10_0000)
                .bar32(5, 0, 0x2000, false),
        );
        // A function on a device whose function 0 is absent must not be found.
        config.add(
            Bdf::new(0, 6, 1),
            FakeFunction::new(0x1234, 0x5678, 0xFF, 0, 0),
        );
        config
    }

    fn find(devices: &[PciDevice], bdf: Bdf) -> &PciDevice {
        devices
            .iter()
            .find(|device| device.bdf == bdf)
            .expect("device enumerated")
    }

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
        let failures = assign_unassigned_bars(&config, &mut devices, &windows);
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
        let failures = reassign_bars(&config, &mut devices, &windows);
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
        let failures = assign_unassigned_bars(&config, &mut devices, &windows);
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

    #[test]
    fn walks_capabilities_and_stops_on_a_loop() {
        let config = FakeConfig::default();
        let bdf = Bdf::new(0, 1, 0);
        config.add(
            bdf,
            FakeFunction::new(0x1AF4, 0x1042, 0x01, 0x00, 0)
                .capability(0x40, 0x11, 0x50, &[])
                .capability(0x50, 0x09, 0x60, &[])
                .capability(0x60, 0x05, 0x41, &[]),
        );
        let found: Vec<(u8, u8)> = capabilities(&config, bdf)
            .map(|cap| (cap.id.0, cap.offset))
            .collect();
        // 0x41 masks to 0x40, already visited.
        assert_eq!(found, [(0x11, 0x40), (0x09, 0x50), (0x05, 0x60)]);
    }

    #[test]
    fn no_capabilities_without_the_status_bit_or_with_a_header_pointer() {
        let config = FakeConfig::default();
        let bdf = Bdf::new(0, 1, 0);
        let mut function = FakeFunction::new(0x1AF4, 0x1042, 0x01, 0x00, 0);
        function.space[usize::from(reg::CAPABILITIES_POINTER)] = 0x40;
        config.add(bdf, function);
        assert_eq!(capabilities(&config, bdf).count(), 0);
        config.add(
            bdf,
            FakeFunction::new(0x1AF4, 0x1042, 0x01, 0x00, 0).capability(0x40, 0x09, 0x10, &[]),
        );
        assert_eq!(capabilities(&config, bdf).count(), 1);
    }

    #[test]
    fn enabling_sets_memory_and_bus_master_only() {
        let config = machine();
        config.set_command(NIC, 0x400);
        enable_memory_and_bus_master(&config, NIC);
        assert_eq!(config.read16(NIC, reg::COMMAND), 0x406);
    }
}
