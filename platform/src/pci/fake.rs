//! A configuration space in memory, for host tests of code above the
//! access mechanism.

use super::enumerate::bar_offset;
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
        let status =
            u16::from_le_bytes([self.space[6], self.space[7]]) | Status::CAPABILITIES_LIST.bits();
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

// The writes only change the fake's byte arrays: no device, no memory
// effects, so the `ConfigAccess::write*` contract holds trivially.
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
    unsafe fn write8(&self, bdf: Bdf, offset: u16, value: u8) {
        self.write(bdf, offset, 1, value.into())
    }
    unsafe fn write16(&self, bdf: Bdf, offset: u16, value: u16) {
        self.write(bdf, offset, 2, value.into())
    }
    unsafe fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        self.write(bdf, offset, 4, value)
    }
}

/// Test fixture shared by the enumeration and BAR assignment tests.
pub mod machine {
    use super::*;

    pub const HOST_BRIDGE: Bdf = Bdf::new(0, 0, 0);
    pub const NIC: Bdf = Bdf::new(0, 2, 0);
    pub const MULTI_A: Bdf = Bdf::new(0, 3, 0);
    pub const MULTI_B: Bdf = Bdf::new(0, 3, 5);
    pub const BRIDGE: Bdf = Bdf::new(0, 4, 0);
    pub const BEHIND: Bdf = Bdf::new(1, 0, 0);
    pub const UNASSIGNED: Bdf = Bdf::new(0, 5, 0);

    /// A small machine: host bridge, a device with I/O + 32-bit + 64-bit
    /// BARs, a multi-function device (functions 0 and 5), a bridge to bus 1
    /// with one device, and a device whose BARs the VMM left at 0.
    pub fn machine() -> FakeConfig {
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

    pub fn find(devices: &[PciDevice], bdf: Bdf) -> &PciDevice {
        devices
            .iter()
            .find(|device| device.bdf == bdf)
            .expect("device enumerated")
    }
}
