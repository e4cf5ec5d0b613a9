//! ACPI discovery (ACPI 6.5 §5.2): RSDP, XSDT/RSDT, FADT, MCFG and the
//! `_S5_` walk over DSDT AML, through `AcpiInfo::discover_in` on synthetic
//! physical memory, and each table parser on the raw bytes.
//!
//! The first input byte selects whether the harness repairs checksums before
//! discovery (bit 0 set): random bytes almost never sum to zero, and without
//! the repair the fuzzer could not get past the RSDP. The rest of the input
//! is physical memory from `BASE`, the RSDP at its start.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::acpi::parse::{self, SDT_HEADER_LEN, checksum};
use platform::acpi::{AcpiInfo, Fadt, PhysicalMemory, Rsdp, SdtHeader, find_table_in};

const BASE: u64 = 0x000e_0000;
/// Offset of the checksum byte in the RSDP (first 20 bytes), the extended
/// checksum (whole structure) and every table header (ACPI 6.5 §5.2.5.3,
/// §5.2.6).
const RSDP_CHECKSUM: usize = 8;
const RSDP_EXTENDED_CHECKSUM: usize = 32;
const TABLE_CHECKSUM: usize = 9;

struct Memory(Vec<u8>);

impl Memory {
    fn range(&self, address: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(address.checked_sub(BASE)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.0.len()).then_some(start..end)
    }

    /// Makes the bytes at `range` sum to zero by adjusting the one at
    /// `range.start + at`.
    fn fix_checksum(&mut self, range: std::ops::Range<usize>, at: usize) {
        let Some(slot) = range.start.checked_add(at).filter(|&s| s < range.end) else {
            return;
        };
        self.0[slot] = 0;
        self.0[slot] = 0u8.wrapping_sub(checksum(&self.0[range]));
    }

    /// Repairs the checksum of the table at `address` and returns its
    /// validated header, as `read_table` would see it.
    fn seal_table(&mut self, address: u64) -> Option<SdtHeader> {
        let header = SdtHeader::parse(&self.0[self.range(address, SDT_HEADER_LEN)?]).ok()?;
        let range = self.range(address, header.length as usize)?;
        self.fix_checksum(range, TABLE_CHECKSUM);
        Some(header)
    }

    /// Repairs the RSDP and every table discovery will read.
    fn seal(&mut self) {
        let v1 = 0..parse::RSDP_V1_LEN.min(self.0.len());
        self.fix_checksum(v1, RSDP_CHECKSUM);
        if let Some(length) = self.0.get(20..24) {
            let length = u32::from_le_bytes(length.try_into().unwrap_or_default()) as usize;
            self.fix_checksum(0..length.min(self.0.len()), RSDP_EXTENDED_CHECKSUM);
        }
        let Some((root_address, entry_size)) =
            Rsdp::parse(&self.0).ok().and_then(|rsdp| rsdp.root_table())
        else {
            return;
        };
        let Some(root) = self.seal_table(root_address) else {
            return;
        };
        let Some(range) = self.range(root_address, root.length as usize) else {
            return;
        };
        let entries: Vec<u64> = parse::root_entries(&self.0[range], entry_size).collect();
        for address in entries {
            let Some(header) = self.seal_table(address) else {
                continue;
            };
            if &header.signature != b"FACP" {
                continue;
            }
            let fadt = self
                .range(address, header.length as usize)
                .and_then(|range| Fadt::parse(&self.0[range]).ok());
            if let Some(fadt) = fadt {
                self.seal_table(fadt.dsdt);
            }
        }
    }
}

impl PhysicalMemory for Memory {
    fn bytes(&self, address: u64, len: usize) -> Option<&[u8]> {
        Some(&self.0[self.range(address, len)?])
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let mut memory = Memory(bytes.to_vec());
    if flags & 1 != 0 {
        memory.seal();
    }
    if let Ok(info) = AcpiInfo::discover_in(&memory, Some(BASE)) {
        if let Some(reset) = info.reset {
            let _ = reset.register.access_bytes(1);
        }
        if let Some(mcfg) = info.mcfg {
            let _ = mcfg.size();
        }
        let _ = find_table_in(&memory, &info.rsdp, b"APIC");
    }

    // Each parser on the raw bytes too, checksums or not.
    let _ = parse::scan_for_rsdp(bytes, BASE);
    let _ = parse::validate_table(bytes);
    let _ = parse::root_entries(bytes, 4).count();
    let _ = parse::root_entries(bytes, 8).count();
    let _ = Fadt::parse(bytes);
    for ecam in parse::mcfg_entries(bytes) {
        let _ = ecam.size();
    }
    let _ = parse::find_s5(bytes);
    let _ = parse::pkg_length(bytes);
});
