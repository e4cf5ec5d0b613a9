//! Synthetic ACPI tables and physical memory for the host tests.

use super::parse::*;
use super::*;
use alloc::vec;
use alloc::vec::Vec;

/// Sparse synthetic physical memory.
#[derive(Default)]
pub(crate) struct FakeMemory {
    regions: Vec<(u64, Vec<u8>)>,
}

impl FakeMemory {
    pub(crate) fn put(&mut self, address: u64, bytes: Vec<u8>) {
        self.regions.push((address, bytes));
    }
}

impl PhysicalMemory for FakeMemory {
    fn bytes(&self, address: u64, len: usize) -> Option<&[u8]> {
        self.regions.iter().find_map(|(base, data)| {
            let start = usize::try_from(address.checked_sub(*base)?).ok()?;
            data.get(start..start.checked_add(len)?)
        })
    }
}

pub(crate) fn fix_checksum(bytes: &mut [u8], at: usize, over: usize) {
    bytes[at] = 0;
    bytes[at] = 0u8.wrapping_sub(checksum(&bytes[..over]));
}

pub(crate) fn rsdp_v2(xsdt: u64, rsdt: u32) -> Vec<u8> {
    let mut b = vec![0u8; 36];
    b[..8].copy_from_slice(b"RSD PTR ");
    b[9..15].copy_from_slice(b"VMFWOE");
    b[15] = 2;
    b[16..20].copy_from_slice(&rsdt.to_le_bytes());
    b[20..24].copy_from_slice(&36u32.to_le_bytes());
    b[24..32].copy_from_slice(&xsdt.to_le_bytes());
    fix_checksum(&mut b, 8, 20);
    fix_checksum(&mut b, 32, 36);
    b
}

pub(crate) fn rsdp_v1(rsdt: u32) -> Vec<u8> {
    let mut b = vec![0u8; 20];
    b[..8].copy_from_slice(b"RSD PTR ");
    b[16..20].copy_from_slice(&rsdt.to_le_bytes());
    fix_checksum(&mut b, 8, 20);
    b
}

pub(crate) fn table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 36];
    b[..4].copy_from_slice(signature);
    b[4..8].copy_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    b[8] = 1;
    b[10..16].copy_from_slice(b"VMFWOE");
    b.extend_from_slice(body);
    let len = b.len();
    fix_checksum(&mut b, 9, len);
    b
}

pub(crate) fn xsdt(entries: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    table(b"XSDT", &body)
}

pub(crate) fn rsdt(entries: &[u32]) -> Vec<u8> {
    let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    table(b"RSDT", &body)
}

pub(crate) fn gas(space: u8, width: u8, access: u8, address: u64) -> [u8; 12] {
    let mut g = [0u8; 12];
    g[0] = space;
    g[1] = width;
    g[3] = access;
    g[4..].copy_from_slice(&address.to_le_bytes());
    g
}

/// A QEMU q35-like FADT (revision 3, 244 bytes): legacy PM blocks, a
/// reset register at 0xCF9 and century 0x32.
pub(crate) fn q35_fadt(dsdt: u32) -> Vec<u8> {
    let mut body = vec![0u8; 244 - 36];
    let at = |offset: usize| offset - 36;
    body[at(40)..at(44)].copy_from_slice(&dsdt.to_le_bytes());
    body[at(64)..at(68)].copy_from_slice(&0x604u32.to_le_bytes());
    body[at(76)..at(80)].copy_from_slice(&0x608u32.to_le_bytes());
    body[at(89)] = 2;
    body[at(91)] = 4;
    body[at(108)] = 0x32;
    let flags: u32 = (1 << 8) | (1 << 10);
    body[at(112)..at(116)].copy_from_slice(&flags.to_le_bytes());
    body[at(116)..at(128)].copy_from_slice(&gas(1, 8, 1, 0xcf9));
    body[at(128)] = 0x06;
    table(b"FACP", &body)
}

/// A Cloud Hypervisor-like FADT (276 bytes): HW-reduced, reset and sleep
/// through port 0x3C0, X_DSDT only.
pub(crate) fn hw_reduced_fadt(x_dsdt: u64) -> Vec<u8> {
    let mut body = vec![0u8; 276 - 36];
    let at = |offset: usize| offset - 36;
    let flags: u32 = (1 << 10) | (1 << 20);
    body[at(112)..at(116)].copy_from_slice(&flags.to_le_bytes());
    body[at(116)..at(128)].copy_from_slice(&gas(1, 8, 1, 0x3c0));
    body[at(128)] = 1;
    body[at(140)..at(148)].copy_from_slice(&x_dsdt.to_le_bytes());
    // Stale PM1a block that HW-reduced mode must ignore.
    body[at(64)..at(68)].copy_from_slice(&0x1234u32.to_le_bytes());
    body[at(244)..at(256)].copy_from_slice(&gas(1, 8, 1, 0x3c0));
    body[at(256)..at(268)].copy_from_slice(&gas(1, 8, 1, 0x3c0));
    table(b"FACP", &body)
}

pub(crate) fn mcfg(base: u64, segment: u16, start: u8, end: u8) -> Vec<u8> {
    let mut body = vec![0u8; 8];
    body.extend_from_slice(&base.to_le_bytes());
    body.extend_from_slice(&segment.to_le_bytes());
    body.extend_from_slice(&[start, end, 0, 0, 0, 0]);
    table(b"MCFG", &body)
}

/// Some unrelated AML, then `Name(_S5_, Package(4){...})`, the way QEMU
/// emits it.
pub(crate) fn dsdt_with(aml: &[u8]) -> Vec<u8> {
    let mut body = vec![0x10, 0x05, b'\\', b'_', b'S', b'B', b'_'];
    body.extend_from_slice(aml);
    table(b"DSDT", &body)
}

pub(crate) const QEMU_S5: &[u8] = &[
    0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
];
