//! Identity-mapped 4-level page tables (Intel SDM vol. 3 §4.5). Built once at
//! boot over all RAM and the low 4 GiB; device windows elsewhere are added on
//! demand. Pages can be split down to 4 KiB to set permissions (firmware W^X,
//! stack guard pages, the Memory Attribute protocol).
//!
//! Why changing rights is a safe operation here (`set_access`,
//! `modify_access`, `map_device_memory`): every mapping is the identity, and
//! `Tables::map`/`modify_access` only ever point an address at itself, so no
//! change can alias memory or expose it at a second address. What a change
//! can do is forbid an access (not present, read-only) or allow one (write,
//! execute). A forbidden access raises #PF (SDM vol. 3 §4.7), and the fault
//! handler in `interrupts` reports it and halts the CPU for good: a defined
//! stop, never a write to the wrong place. Allowing an access enables nothing
//! that safe code could not already do through the identity map. The caching
//! bits (`uncached`) apply to the one mapping of each address, so there are
//! no aliases with conflicting memory types (SDM vol. 3 §11.12.4). Keeping
//! W^X is policy, enforced by the callers, not a memory-safety question.

use crate::memory::{MemoryType, PAGE_SIZE, Placement};
use crate::sync::Global;
use x86_64::PhysAddr;
use x86_64::registers::control::Cr3;
use x86_64::registers::model_specific::{Efer, EferFlags};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags, PhysFrame};

const GIB: u64 = 1 << 30;
const TWO_MIB: u64 = 2 << 20;

/// Access rights of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub present: bool,
    pub writable: bool,
    pub executable: bool,
    pub uncached: bool,
}

impl Access {
    pub const RWX: Access = Access {
        present: true,
        writable: true,
        executable: true,
        uncached: false,
    };
    pub const RW: Access = Access {
        present: true,
        writable: true,
        executable: false,
        uncached: false,
    };
    pub const RX: Access = Access {
        present: true,
        writable: false,
        executable: true,
        uncached: false,
    };
    pub const RO: Access = Access {
        present: true,
        writable: false,
        executable: false,
        uncached: false,
    };
    pub const DEVICE: Access = Access {
        present: true,
        writable: true,
        executable: false,
        uncached: true,
    };
    pub const NONE: Access = Access {
        present: false,
        writable: false,
        executable: false,
        uncached: false,
    };
}

/// The firmware's page tables. Only reachable through `TABLES`, whose
/// `with` hands out one `&mut` at a time, so edits never alias.
struct Tables {
    pml4: PhysAddr,
    nx: bool,
    gib_pages: bool,
}

static TABLES: Global<Option<Tables>> = Global::new(None);

/// The page-table page at `addr`.
///
/// # Safety
/// `addr` must be a page-table page `alloc_table` returned (identity mapped,
/// 4 KiB aligned, owned by `TABLES` for the firmware's life), and no other
/// reference to that page may be live while the result is.
unsafe fn table<'a>(addr: PhysAddr) -> &'a mut PageTable {
    // SAFETY: the caller's contract.
    unsafe { &mut *(addr.as_u64() as *mut PageTable) }
}

/// A zeroed page for a new page table, taken from the memory map.
fn alloc_table() -> PhysAddr {
    let page = crate::memory::with_map(|m| {
        m.allocate(Placement::Anywhere, MemoryType::BOOT_SERVICES_DATA, 1)
    })
    .expect("out of memory for page tables");
    // SAFETY: the memory map just handed us this identity-mapped page for
    // our own use; nothing else refers to it.
    unsafe { (page as *mut PageTable).write(PageTable::new()) };
    PhysAddr::new(page)
}

/// Index of `addr` in the table at `level` (4 = PML4 ... 1 = page table).
fn index(addr: u64, level: u32) -> usize {
    ((addr >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// Bytes one entry at `level` maps.
fn entry_span(level: u32) -> u64 {
    1 << (12 + 9 * (level - 1))
}

impl Tables {
    fn flags(&self, access: Access) -> Flags {
        let mut flags = Flags::empty();
        if access.present {
            flags |= Flags::PRESENT;
        }
        if access.writable {
            flags |= Flags::WRITABLE;
        }
        if !access.executable && self.nx {
            flags |= Flags::NO_EXECUTE;
        }
        if access.uncached {
            flags |= Flags::NO_CACHE | Flags::WRITE_THROUGH;
        }
        flags
    }

    /// The entry mapping `addr` at `level` (3 = 1 GiB, 2 = 2 MiB, 1 = 4 KiB),
    /// creating tables and splitting larger pages on the way down.
    fn entry(&mut self, addr: u64, level: u32) -> &mut PageTableEntry {
        let mut table_addr = self.pml4;
        for current in (level + 1..=4).rev() {
            // SAFETY: `table_addr` is the PML4 or a table an entry above
            // points to, all allocated by `alloc_table`; `&mut self` (from
            // `TABLES`) makes this the only reference into them.
            let entry = unsafe { &mut table(table_addr)[index(addr, current)] };
            if entry.is_unused() {
                entry.set_addr(alloc_table(), Flags::PRESENT | Flags::WRITABLE);
            } else if entry.flags().contains(Flags::HUGE_PAGE) {
                let smaller = split(entry, current);
                entry.set_addr(smaller, Flags::PRESENT | Flags::WRITABLE);
            }
            table_addr = entry.addr();
        }
        // SAFETY: as above; the returned borrow is tied to `&mut self`.
        unsafe { &mut table(table_addr)[index(addr, level)] }
    }

    /// Walks the tables without changing them: the rights of the page that
    /// maps `addr` (combining the levels' bits) and that page's size.
    fn lookup(&self, addr: u64) -> Option<(Access, u64)> {
        let mut table_addr = self.pml4;
        let mut writable = true;
        let mut executable = true;
        for level in (1..=4u32).rev() {
            // SAFETY: as in `entry`; only read, and `TABLES` holds no other
            // reference while `&self` is borrowed from it.
            let entry = unsafe { &table(table_addr)[index(addr, level)] };
            let flags = entry.flags();
            if !flags.contains(Flags::PRESENT) {
                return Some((Access::NONE, entry_span(level)));
            }
            writable &= flags.contains(Flags::WRITABLE);
            executable &= !flags.contains(Flags::NO_EXECUTE);
            if level == 1 || flags.contains(Flags::HUGE_PAGE) {
                let access = Access {
                    present: true,
                    writable,
                    executable,
                    uncached: flags.contains(Flags::NO_CACHE),
                };
                return Some((access, entry_span(level)));
            }
            table_addr = entry.addr();
        }
        None
    }

    fn map(&mut self, start: u64, end: u64, access: Access) {
        let flags = self.flags(access);
        let mut addr = start & !(PAGE_SIZE - 1);
        while addr < end {
            let left = end - addr;
            if self.gib_pages && addr.is_multiple_of(GIB) && left >= GIB {
                self.entry(addr, 3)
                    .set_addr(PhysAddr::new(addr), flags | Flags::HUGE_PAGE);
                addr += GIB;
            } else if addr.is_multiple_of(TWO_MIB) && left >= TWO_MIB {
                self.entry(addr, 2)
                    .set_addr(PhysAddr::new(addr), flags | Flags::HUGE_PAGE);
                addr += TWO_MIB;
            } else {
                self.entry(addr, 1).set_addr(PhysAddr::new(addr), flags);
                addr += PAGE_SIZE;
            }
        }
    }
}

/// A new table of 512 entries that together map what the huge-page `entry`
/// at `level` maps, with the same flags.
fn split(entry: &PageTableEntry, level: u32) -> PhysAddr {
    let new = alloc_table();
    let base = entry.addr().as_u64() & !(entry_span(level) - 1);
    let step = entry_span(level - 1);
    let mut flags = entry.flags();
    if level == 2 {
        flags.remove(Flags::HUGE_PAGE); // bit 7 is PAT in a 4 KiB entry
    }
    // SAFETY: `new` was just allocated and nothing else refers to it.
    let new_table = unsafe { table(new) };
    for (i, e) in new_table.iter_mut().enumerate() {
        e.set_addr(PhysAddr::new(base + i as u64 * step), flags);
    }
    new
}

fn cpuid(leaf: u32) -> core::arch::x86_64::CpuidResult {
    core::arch::x86_64::__cpuid(leaf)
}

/// Drops stale translations after the tables changed (Intel SDM vol. 3
/// §4.10.4.1: a CR3 write flushes non-global TLB entries).
fn flush() {
    x86_64::instructions::tlb::flush_all();
}

/// Builds the firmware's page tables: identity map of the low 4 GiB and of
/// `ram_end` bytes, and switches to them. Enables NX when the CPU has it.
/// Safe: the new tables identity-map at least what the PVH boot tables did
/// (see the CR3 write below), so every address keeps its meaning.
pub fn init(ram_end: u64) {
    let ext = cpuid(0x8000_0001);
    let nx = ext.edx & (1 << 20) != 0;
    let gib_pages = ext.edx & (1 << 26) != 0;
    if nx {
        // SAFETY: setting EFER.NXE only gives bit 63 of entries its NX
        // meaning (SDM vol. 3 §4.1.1); no existing entry sets bit 63 yet.
        unsafe { Efer::update(|flags| flags.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }
    let mut tables = Tables {
        pml4: alloc_table(),
        nx,
        gib_pages,
    };
    tables.map(0, (1u64 << 32).max(ram_end), Access::RWX);
    let pml4 = tables.pml4;
    TABLES.with(|t| *t = Some(tables));
    let (_, cr3_flags) = Cr3::read();
    // SAFETY: the new tables identity-map everything the old ones did (the
    // low 4 GiB) plus all RAM, so execution continues at the same addresses.
    unsafe { Cr3::write(PhysFrame::containing_address(pml4), cr3_flags) };
    log::debug!("paging: 1 GiB pages {gib_pages}, NX {nx}");
}

/// Sets the access rights of `base..base+len` (rounded out to pages).
/// Safe: see the module documentation.
pub fn set_access(base: u64, len: u64, access: Access) {
    let end = base.saturating_add(len).saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    let done = TABLES.with(|t| t.as_mut().map(|t| t.map(base, end, access)));
    if done.is_some() {
        flush();
    }
}

/// The access rights of the page holding `addr` and the size of the
/// mapping that holds it (4 KiB, 2 MiB or 1 GiB), or None before paging is
/// up or beyond the mapped address space.
pub fn access(addr: u64) -> Option<(Access, u64)> {
    TABLES.with(|t| t.as_ref().and_then(|t| t.lookup(addr)))
}

/// Changes the rights of every 4 KiB page of `base..base+len` (rounded out
/// to pages) from its current ones by `change`, splitting larger mappings,
/// then flushes the TLB once. Used by the Memory Attribute protocol, whose
/// ranges need not have uniform rights. Safe: see the module documentation.
pub fn modify_access(base: u64, len: u64, change: impl Fn(Access) -> Access) {
    let start = base & !(PAGE_SIZE - 1);
    let end = base.saturating_add(len).saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    let done = TABLES.with(|t| {
        t.as_mut().map(|t| {
            let mut addr = start;
            while addr < end {
                let current = t.lookup(addr).map_or(Access::NONE, |(a, _)| a);
                let flags = t.flags(change(current));
                t.entry(addr, 1).set_addr(PhysAddr::new(addr), flags);
                addr += PAGE_SIZE;
            }
        })
    });
    if done.is_some() {
        flush();
    }
}

/// Makes `base..base+len` identity-mapped, uncached device memory.
/// Idempotent; RAM and the low 4 GiB are mapped from boot. Safe: it only
/// adds identity mappings (see the module documentation); touching the
/// device behind them still takes an `unsafe` `Mmio::new`.
pub fn map_device_memory(base: u64, len: u64) {
    if base.saturating_add(len) <= 1 << 32 {
        return;
    }
    set_access(base, len, Access::DEVICE);
}

/// Whether the CPU enforces no-execute pages.
pub fn nx_supported() -> bool {
    TABLES.with(|t| t.as_ref().is_some_and(|t| t.nx))
}
