//! Physical page allocator over the VMM's memory map, typed with EFI memory
//! types from the start so it *is* the map GetMemoryMap reports (UEFI 2.10
//! §7.2). Fixed capacity: it runs before the heap exists.
#![forbid(unsafe_code)]

use core::fmt;
pub use uefi_raw::table::boot::{MemoryAttribute, MemoryType};

pub const PAGE_SIZE: u64 = 4096;
pub const MAX_REGIONS: usize = 512;
const FOUR_GIB: u64 = 1 << 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub pages: u64,
    pub ty: MemoryType,
    pub attribute: MemoryAttribute,
    /// Allocated through `allocate` (and so FreePages may release it), as
    /// opposed to firmware-owned or VMM-reserved ranges.
    pub freeable: bool,
}

impl Region {
    pub fn end(&self) -> u64 {
        self.start + self.pages * PAGE_SIZE
    }
}

/// How to place an allocation (EFI_ALLOCATE_TYPE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere; prefers the highest range below 4 GiB, as loaders that
    /// keep 32-bit pointers expect.
    Anywhere,
    /// Ending at or below this address.
    MaxAddress(u64),
    /// At exactly this address.
    Address(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryError {
    /// No free range fits the request.
    OutOfMemory {
        pages: u64,
    },
    /// The requested fixed range is not free memory.
    NotFree {
        addr: u64,
        pages: u64,
    },
    /// FreePages of memory that was not allocated by AllocatePages.
    NotAllocated {
        addr: u64,
        pages: u64,
    },
    Misaligned(u64),
    /// The map has no room for another region.
    MapFull,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfMemory { pages } => write!(f, "no free range of {pages} pages"),
            Self::NotFree { addr, pages } => write!(f, "{pages} pages at {addr:#x} are not free"),
            Self::NotAllocated { addr, pages } => {
                write!(f, "{pages} pages at {addr:#x} were not allocated")
            }
            Self::Misaligned(addr) => write!(f, "address {addr:#x} is not page aligned"),
            Self::MapFull => write!(f, "memory map is full"),
        }
    }
}

pub struct MemoryMap {
    regions: [Region; MAX_REGIONS],
    len: usize,
    key: u64,
}

const EMPTY: Region = Region {
    start: 0,
    pages: 0,
    ty: MemoryType::RESERVED,
    attribute: MemoryAttribute::empty(),
    freeable: false,
};

fn ram_attributes() -> MemoryAttribute {
    MemoryAttribute::UNCACHEABLE
        | MemoryAttribute::WRITE_COMBINE
        | MemoryAttribute::WRITE_THROUGH
        | MemoryAttribute::WRITE_BACK
}

/// Runtime types must be mapped by the OS for runtime services (§7.2.3).
fn is_runtime(ty: MemoryType) -> bool {
    matches!(
        ty,
        MemoryType::RUNTIME_SERVICES_CODE | MemoryType::RUNTIME_SERVICES_DATA
    )
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMap {
    pub const fn new() -> Self {
        MemoryMap {
            regions: [EMPTY; MAX_REGIONS],
            len: 0,
            key: 1,
        }
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    /// Changes on every modification; ExitBootServices compares it.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// Adds a range from the VMM's map. RAM is shrunk to whole pages,
    /// anything else grown to whole pages; overlaps resolve to the later call.
    pub fn add(&mut self, addr: u64, size: u64, ty: MemoryType) -> Result<(), MemoryError> {
        let end = addr.saturating_add(size);
        let (start, end) = if ty == MemoryType::CONVENTIONAL {
            (align_up(addr), end & !(PAGE_SIZE - 1))
        } else {
            (addr & !(PAGE_SIZE - 1), align_up(end))
        };
        if end <= start {
            return Ok(());
        }
        let attribute = if ty == MemoryType::CONVENTIONAL || ty == MemoryType::ACPI_RECLAIM {
            ram_attributes()
        } else {
            MemoryAttribute::empty()
        };
        self.set(start, end, ty, attribute, false)
    }

    /// Retypes `start..start+pages` (firmware image, stacks, page tables...).
    pub fn reserve(&mut self, start: u64, pages: u64, ty: MemoryType) -> Result<(), MemoryError> {
        if !start.is_multiple_of(PAGE_SIZE) {
            return Err(MemoryError::Misaligned(start));
        }
        let end = start.saturating_add(pages.saturating_mul(PAGE_SIZE));
        let mut attribute = self.attribute_at(start).unwrap_or_else(ram_attributes);
        if is_runtime(ty) {
            attribute |= MemoryAttribute::RUNTIME;
        }
        self.set(start, end, ty, attribute, false)
    }

    fn attribute_at(&self, addr: u64) -> Option<MemoryAttribute> {
        self.regions()
            .iter()
            .find(|r| r.start <= addr && addr < r.end())
            .map(|r| r.attribute - MemoryAttribute::RUNTIME)
    }

    pub fn allocate(
        &mut self,
        placement: Placement,
        ty: MemoryType,
        pages: u64,
    ) -> Result<u64, MemoryError> {
        if pages == 0 {
            return Err(MemoryError::OutOfMemory { pages });
        }
        let bytes = pages
            .checked_mul(PAGE_SIZE)
            .ok_or(MemoryError::OutOfMemory { pages })?;
        let start = match placement {
            Placement::Address(addr) => {
                if !addr.is_multiple_of(PAGE_SIZE) {
                    return Err(MemoryError::Misaligned(addr));
                }
                let free = addr.checked_add(bytes).is_some_and(|end| {
                    self.regions().iter().any(|r| {
                        r.ty == MemoryType::CONVENTIONAL && r.start <= addr && end <= r.end()
                    })
                });
                if !free {
                    return Err(MemoryError::NotFree { addr, pages });
                }
                addr
            }
            Placement::MaxAddress(max) => self
                .highest_fit(bytes, max.saturating_add(1))
                .ok_or(MemoryError::OutOfMemory { pages })?,
            Placement::Anywhere => self
                .highest_fit(bytes, FOUR_GIB)
                .or_else(|| self.highest_fit(bytes, u64::MAX))
                .ok_or(MemoryError::OutOfMemory { pages })?,
        };
        let mut attribute = self.attribute_at(start).unwrap_or_else(ram_attributes);
        if is_runtime(ty) {
            attribute |= MemoryAttribute::RUNTIME;
        }
        self.set(start, start + bytes, ty, attribute, true)?;
        Ok(start)
    }

    /// Highest page-aligned free range of `bytes` ending at or below `limit`.
    fn highest_fit(&self, bytes: u64, limit: u64) -> Option<u64> {
        self.regions()
            .iter()
            .rev()
            .filter(|r| r.ty == MemoryType::CONVENTIONAL)
            .find_map(|r| {
                let end = r.end().min(limit & !(PAGE_SIZE - 1));
                let start = end.checked_sub(bytes)?;
                (start >= r.start).then_some(start)
            })
    }

    pub fn free(&mut self, addr: u64, pages: u64) -> Result<(), MemoryError> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(MemoryError::Misaligned(addr));
        }
        let not_allocated = MemoryError::NotAllocated { addr, pages };
        let end = pages
            .checked_mul(PAGE_SIZE)
            .and_then(|b| addr.checked_add(b))
            .filter(|_| pages > 0)
            .ok_or(not_allocated)?;
        // Every byte of the range must lie in an allocated region.
        let mut cursor = addr;
        for r in self.regions() {
            if r.end() <= cursor || r.start >= end {
                continue;
            }
            if r.start > cursor || !r.freeable {
                return Err(not_allocated);
            }
            cursor = r.end();
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            return Err(not_allocated);
        }
        self.set(addr, end, MemoryType::CONVENTIONAL, ram_attributes(), false)
    }

    /// Sets `start..end` to one type, splitting and merging neighbours.
    fn set(
        &mut self,
        start: u64,
        end: u64,
        ty: MemoryType,
        attribute: MemoryAttribute,
        freeable: bool,
    ) -> Result<(), MemoryError> {
        // Worst case one region splits in two and the new one is inserted.
        if self.len + 2 > MAX_REGIONS {
            return Err(MemoryError::MapFull);
        }
        let mut i = 0;
        while i < self.len {
            let r = self.regions[i];
            if r.end() <= start || r.start >= end {
                i += 1;
                continue;
            }
            if r.start < start && r.end() > end {
                // The new range sits inside r: split r around it.
                self.regions[i].pages = (start - r.start) / PAGE_SIZE;
                let tail = Region {
                    start: end,
                    pages: (r.end() - end) / PAGE_SIZE,
                    ..r
                };
                self.insert(i + 1, tail);
                i += 2;
            } else if r.start < start {
                self.regions[i].pages = (start - r.start) / PAGE_SIZE;
                i += 1;
            } else if r.end() > end {
                self.regions[i] = Region {
                    start: end,
                    pages: (r.end() - end) / PAGE_SIZE,
                    ..r
                };
                i += 1;
            } else {
                self.remove(i);
            }
        }
        let at = self
            .regions()
            .iter()
            .position(|r| r.start >= end)
            .unwrap_or(self.len);
        self.insert(
            at,
            Region {
                start,
                pages: (end - start) / PAGE_SIZE,
                ty,
                attribute,
                freeable,
            },
        );
        self.merge();
        self.key = self.key.wrapping_add(1);
        Ok(())
    }

    fn insert(&mut self, at: usize, region: Region) {
        self.regions.copy_within(at..self.len, at + 1);
        self.regions[at] = region;
        self.len += 1;
    }

    fn remove(&mut self, at: usize) {
        self.regions.copy_within(at + 1..self.len, at);
        self.len -= 1;
    }

    fn merge(&mut self) {
        let mut i = 1;
        while i < self.len {
            let (prev, cur) = (self.regions[i - 1], self.regions[i]);
            let same = prev.ty == cur.ty
                && prev.attribute == cur.attribute
                && prev.freeable == cur.freeable;
            if same && prev.end() == cur.start {
                self.regions[i - 1].pages += cur.pages;
                self.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Bytes of conventional memory left.
    pub fn free_bytes(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.ty == MemoryType::CONVENTIONAL)
            .map(|r| r.pages * PAGE_SIZE)
            .sum()
    }
}

fn align_up(addr: u64) -> u64 {
    addr.saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

static MAP: crate::sync::Global<MemoryMap> = crate::sync::Global::new(MemoryMap::new());

/// Runs `f` on the firmware's one memory map.
pub fn with_map<R>(f: impl FnOnce(&mut MemoryMap) -> R) -> R {
    MAP.with(f)
}

/// Runs `f` on the memory map unless it is in use: the heap grows from
/// inside allocations, which can happen inside a `with_map` closure.
pub fn try_with_map<R>(f: impl FnOnce(&mut MemoryMap) -> R) -> Option<R> {
    MAP.try_with(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_like() -> MemoryMap {
        let mut m = MemoryMap::new();
        m.add(0, 0x9fc00, MemoryType::CONVENTIONAL).unwrap();
        m.add(0x9fc00, 0x400, MemoryType::RESERVED).unwrap();
        m.add(0xf0000, 0x10000, MemoryType::RESERVED).unwrap();
        m.add(0x10_0000, 0x3ff0_0000, MemoryType::CONVENTIONAL)
            .unwrap();
        m.add(0x1_0000_0000, 0x4000_0000, MemoryType::CONVENTIONAL)
            .unwrap();
        m
    }

    fn check_invariants(m: &MemoryMap) {
        for w in m.regions().windows(2) {
            assert!(w[0].end() <= w[1].start, "overlap or unsorted: {w:x?}");
        }
        assert!(m.regions().iter().all(|r| r.pages > 0));
    }

    #[test]
    fn builds_sorted_map_with_page_rounding() {
        let m = qemu_like();
        check_invariants(&m);
        assert_eq!(
            m.regions()[0],
            Region {
                start: 0,
                pages: 0x9f,
                ty: MemoryType::CONVENTIONAL,
                attribute: ram_attributes(),
                freeable: false
            }
        );
        assert_eq!(m.regions()[1].start, 0x9f000);
        assert_eq!(m.regions()[1].ty, MemoryType::RESERVED);
    }

    #[test]
    fn anywhere_prefers_below_4g_top_down() {
        let mut m = qemu_like();
        let a = m
            .allocate(Placement::Anywhere, MemoryType::LOADER_DATA, 4)
            .unwrap();
        assert_eq!(a, 0x4000_0000 - 4 * PAGE_SIZE);
        check_invariants(&m);
    }

    #[test]
    fn max_address_and_fixed_address() {
        let mut m = qemu_like();
        let a = m
            .allocate(Placement::MaxAddress(0xff_ffff), MemoryType::LOADER_CODE, 1)
            .unwrap();
        assert_eq!(a, 0xff_f000);
        let low = m
            .allocate(Placement::MaxAddress(0x9_ffff), MemoryType::LOADER_CODE, 1)
            .unwrap();
        assert_eq!(low, 0x9e000);
        let b = m
            .allocate(Placement::Address(0x20_0000), MemoryType::LOADER_CODE, 16)
            .unwrap();
        assert_eq!(b, 0x20_0000);
        assert_eq!(
            m.allocate(Placement::Address(0x20_0000), MemoryType::LOADER_CODE, 1),
            Err(MemoryError::NotFree {
                addr: 0x20_0000,
                pages: 1
            })
        );
        assert_eq!(
            m.allocate(Placement::Address(0x20_0001), MemoryType::LOADER_CODE, 1),
            Err(MemoryError::Misaligned(0x20_0001))
        );
        // Straddles the reserved hole at 0x9f000.
        assert!(
            m.allocate(Placement::Address(0x9d000), MemoryType::LOADER_CODE, 3)
                .is_err()
        );
        check_invariants(&m);
    }

    #[test]
    fn free_restores_and_merges() {
        let mut m = qemu_like();
        let before = m.regions().len();
        let free_before = m.free_bytes();
        let a = m
            .allocate(
                Placement::Address(0x50_0000),
                MemoryType::BOOT_SERVICES_DATA,
                8,
            )
            .unwrap();
        assert_eq!(m.regions().len(), before + 2);
        let key = m.key();
        m.free(a, 8).unwrap();
        assert_ne!(m.key(), key);
        assert_eq!(m.regions().len(), before);
        assert_eq!(m.free_bytes(), free_before);
    }

    #[test]
    fn free_rejects_foreign_memory() {
        let mut m = qemu_like();
        m.reserve(0x10_0000, 64, MemoryType::RUNTIME_SERVICES_CODE)
            .unwrap();
        assert_eq!(
            m.free(0x10_0000, 1),
            Err(MemoryError::NotAllocated {
                addr: 0x10_0000,
                pages: 1
            })
        );
        assert_eq!(
            m.free(0x80_0000, 1),
            Err(MemoryError::NotAllocated {
                addr: 0x80_0000,
                pages: 1
            })
        );
        let a = m
            .allocate(Placement::Address(0x80_0000), MemoryType::LOADER_DATA, 2)
            .unwrap();
        assert!(m.free(a, 3).is_err(), "range runs past the allocation");
        assert!(m.free(a, 0).is_err());
        assert!(m.free(!0xfff, 2).is_err());
        m.free(a, 1).unwrap();
        m.free(a + PAGE_SIZE, 1).unwrap();
        check_invariants(&m);
    }

    #[test]
    fn runtime_regions_carry_the_runtime_attribute() {
        let mut m = qemu_like();
        let a = m
            .allocate(Placement::Anywhere, MemoryType::RUNTIME_SERVICES_DATA, 1)
            .unwrap();
        let r = m.regions().iter().find(|r| r.start == a).unwrap();
        assert!(r.attribute.contains(MemoryAttribute::RUNTIME));
    }

    #[test]
    fn out_of_memory_and_map_full() {
        let mut m = qemu_like();
        assert!(matches!(
            m.allocate(Placement::Anywhere, MemoryType::LOADER_DATA, 1 << 40),
            Err(MemoryError::OutOfMemory { .. })
        ));
        let mut n = 0;
        loop {
            // Alternate types so neighbours never merge.
            let ty = if n % 2 == 0 {
                MemoryType::LOADER_DATA
            } else {
                MemoryType::LOADER_CODE
            };
            match m.allocate(Placement::Anywhere, ty, 1) {
                Ok(_) => n += 1,
                Err(e) => {
                    assert_eq!(e, MemoryError::MapFull);
                    break;
                }
            }
        }
        assert!(n > 400);
        check_invariants(&m);
    }
}
