//! Generic Address Structure (ACPI 6.5 §5.2.3.2): where a register lives.

use crate::le::u64_at;

/// GAS address space ID (ACPI 6.5 §5.2.3.2, Table 5.2); an open set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace(pub u8);

impl AddressSpace {
    pub const SYSTEM_MEMORY: AddressSpace = AddressSpace(0);
    pub const SYSTEM_IO: AddressSpace = AddressSpace(1);
    pub const PCI_CONFIG: AddressSpace = AddressSpace(2);
}

/// Generic Address Structure (ACPI 6.5 §5.2.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenericAddress {
    pub space: AddressSpace,
    pub bit_width: u8,
    pub bit_offset: u8,
    /// 0 undefined, 1 byte, 2 word, 3 dword, 4 qword.
    pub access_size: u8,
    pub address: u64,
}

impl GenericAddress {
    pub const LEN: usize = 12;

    /// Decodes a GAS at `at`; `None` if it is absent (outside a short
    /// table, or address zero, which ACPI uses for "not supported").
    pub fn parse(bytes: &[u8], at: usize) -> Option<GenericAddress> {
        let raw = bytes.get(at..at.checked_add(Self::LEN)?)?;
        let address = u64_at(raw, 4)?;
        (address != 0).then_some(GenericAddress {
            space: AddressSpace(raw[0]),
            bit_width: raw[1],
            bit_offset: raw[2],
            access_size: raw[3],
            address,
        })
    }

    /// A legacy FADT block: an I/O port of `len` bytes.
    pub fn io_port(port: u32, len: u8) -> Option<GenericAddress> {
        (port != 0).then_some(GenericAddress {
            space: AddressSpace::SYSTEM_IO,
            bit_width: len.saturating_mul(8),
            bit_offset: 0,
            access_size: 0,
            address: u64::from(port),
        })
    }

    /// Access width in bytes: from the access size when given, else from
    /// the register width, else `default`.
    pub fn access_bytes(&self, default: u8) -> u8 {
        match self.access_size {
            1..=4 => 1 << (self.access_size - 1),
            _ => match self.bit_width {
                8 => 1,
                16 => 2,
                32 => 4,
                64 => 8,
                _ => default,
            },
        }
    }
}
