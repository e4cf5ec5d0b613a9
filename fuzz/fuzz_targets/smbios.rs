//! SMBIOS (DMTF DSP0134 3.7): entry point scan and decoding (`_SM3_`,
//! `_SM_`, `_DMI_`), then the structure-table walk and string lookup the
//! boot log uses.
//!
//! The first input byte selects whether the harness repairs the entry
//! point's checksums (bit 0 set), so the fuzzer reaches the table walk; the
//! rest is the F segment from `F_SEGMENT`, an entry point at its start, and
//! the structure table wherever the entry point says (inside the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::acpi::PhysicalMemory;
use platform::acpi::parse::checksum;
use platform::smbios::parse::{Structures, scan};
use platform::smbios::{EntryPoint, SystemInfo, structure_table};

const F_SEGMENT: u64 = 0xf0000;

struct Memory(Vec<u8>);

impl Memory {
    /// Makes `len` bytes at `start` sum to zero through the byte at `at`.
    fn fix_checksum(&mut self, start: usize, len: usize, at: usize) {
        let Some(area) = start
            .checked_add(len)
            .and_then(|end| self.0.get_mut(start..end))
        else {
            return;
        };
        if at >= area.len() {
            return;
        }
        area[at] = 0;
        area[at] = 0u8.wrapping_sub(checksum(area));
    }

    /// Repairs the entry point at the start: checksum and length offsets
    /// from DSP0134 §5.2.1 (`_SM_`, with its `_DMI_` intermediate part at
    /// 0x10) and §5.2.2 (`_SM3_`).
    fn seal(&mut self) {
        let length = |at: usize, memory: &Memory| usize::from(*memory.0.get(at).unwrap_or(&0));
        if self.0.starts_with(b"_SM3_") {
            self.fix_checksum(0, length(6, self), 5);
        } else if self.0.starts_with(b"_SM_") {
            self.fix_checksum(0x10, 0x0f, 5);
            self.fix_checksum(0, length(5, self), 4);
        } else if self.0.starts_with(b"_DMI_") {
            self.fix_checksum(0, 0x0f, 5);
        }
    }
}

impl PhysicalMemory for Memory {
    fn bytes(&self, address: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(address.checked_sub(F_SEGMENT)?).ok()?;
        self.0.get(start..start.checked_add(len)?)
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
    if let Some((_, entry)) = scan(&memory.0, F_SEGMENT)
        && let Some((table, count)) = structure_table(&memory, &entry)
    {
        let _ = SystemInfo::from_table(table, count);
    }

    // The decoders on the raw bytes: an entry point, and a structure table.
    let _ = EntryPoint::parse(bytes);
    let _ = SystemInfo::from_table(bytes, 4096);
    for structure in Structures::new(bytes, 4096).flatten() {
        for index in 0..=u8::MAX {
            if structure.string(index).is_none() && index > 0 {
                break;
            }
        }
        let _ = structure.string_at(4);
    }
});
