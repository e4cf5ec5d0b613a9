//! Capability-list walking (PCI 3.0 §6.7).

use super::{
    Bdf, CapabilityId, ConfigAccess, HEADER_MULTI_FUNCTION, HEADER_TYPE_CARDBUS, Status, reg,
};

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
mod tests {
    use super::*;
    use crate::pci::fake::{FakeConfig, FakeFunction};

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
}
