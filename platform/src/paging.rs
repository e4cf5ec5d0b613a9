//! Identity-mapped 4-level page tables (Intel SDM vol. 3 §4.5). Built once at
//! boot over all RAM and the low 4 GiB; device windows elsewhere are added on
//! demand. Pages can be split down to 4 KiB to set permissions (firmware W^X,
//! stack guard pages, the Memory Attribute protocol).

use crate::memory::{MemoryType, PAGE_SIZE, Placement};
use crate::sync::Global;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const WRITE_THROUGH: u64 = 1 << 3;
const CACHE_DISABLE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const NO_EXECUTE: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

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

struct Tables {
    pml4: u64,
    nx: bool,
    gib_pages: bool,
}

static TABLES: Global<Option<Tables>> = Global::new(None);

fn table(addr: u64) -> &'static mut [u64; 512] {
    // SAFETY: `addr` is a page-table page this module allocated from the
    // memory map (identity mapped, 4 KiB aligned, owned by us for life).
    unsafe { &mut *(addr as *mut [u64; 512]) }
}

fn alloc_table() -> u64 {
    let page = crate::memory::with_map(|m| {
        m.allocate(Placement::Anywhere, MemoryType::BOOT_SERVICES_DATA, 1)
    })
    .expect("out of memory for page tables");
    table(page).fill(0);
    page
}

impl Tables {
    fn flags(&self, access: Access) -> u64 {
        let mut flags = 0;
        if access.present {
            flags |= PRESENT;
        }
        if access.writable {
            flags |= WRITABLE;
        }
        if !access.executable && self.nx {
            flags |= NO_EXECUTE;
        }
        if access.uncached {
            flags |= CACHE_DISABLE | WRITE_THROUGH;
        }
        flags
    }

    /// The entry mapping `addr` at `level` (3 = 1 GiB, 2 = 2 MiB, 1 = 4 KiB),
    /// creating tables and splitting larger pages on the way down.
    fn entry(&mut self, addr: u64, level: u32) -> &'static mut u64 {
        let mut table_addr = self.pml4;
        for current in (level..=4).rev() {
            let index = ((addr >> (12 + 9 * (current - 1))) & 0x1ff) as usize;
            let entry = &mut table(table_addr)[index];
            if current == level {
                return entry;
            }
            if *entry & PRESENT == 0 && *entry == 0 {
                *entry = alloc_table() | PRESENT | WRITABLE;
            } else if *entry & HUGE != 0 {
                *entry = split(*entry, current);
            }
            table_addr = *entry & ADDR_MASK;
        }
        unreachable!("level {level} out of range")
    }

    /// Walks the tables without changing them: the rights of the page that
    /// maps `addr` (combining the levels' bits) and that page's size.
    fn lookup(&self, addr: u64) -> Option<(Access, u64)> {
        let mut table_addr = self.pml4;
        let mut writable = true;
        let mut executable = true;
        for level in (1..=4u32).rev() {
            let index = ((addr >> (12 + 9 * (level - 1))) & 0x1ff) as usize;
            let entry = table(table_addr)[index];
            if entry & PRESENT == 0 {
                return Some((Access::NONE, 1 << (12 + 9 * (level - 1))));
            }
            writable &= entry & WRITABLE != 0;
            executable &= entry & NO_EXECUTE == 0;
            if level == 1 || entry & HUGE != 0 {
                let access = Access {
                    present: true,
                    writable,
                    executable,
                    uncached: entry & CACHE_DISABLE != 0,
                };
                return Some((access, 1 << (12 + 9 * (level - 1))));
            }
            table_addr = entry & ADDR_MASK;
        }
        None
    }

    fn map(&mut self, start: u64, end: u64, access: Access) {
        let flags = self.flags(access);
        let mut addr = start & !(PAGE_SIZE - 1);
        while addr < end {
            let left = end - addr;
            if self.gib_pages && addr.is_multiple_of(GIB) && left >= GIB {
                *self.entry(addr, 3) = addr | flags | HUGE;
                addr += GIB;
            } else if addr.is_multiple_of(TWO_MIB) && left >= TWO_MIB {
                *self.entry(addr, 2) = addr | flags | HUGE;
                addr += TWO_MIB;
            } else {
                *self.entry(addr, 1) = addr | flags;
                addr += PAGE_SIZE;
            }
        }
    }
}

/// Replaces a huge-page entry at `level` by a table of 512 smaller entries
/// with the same flags.
fn split(entry: u64, level: u32) -> u64 {
    let new = alloc_table();
    let base = entry & ADDR_MASK & !((1u64 << (12 + 9 * (level - 1))) - 1);
    let step = 1u64 << (12 + 9 * (level - 2));
    let mut flags = entry & !ADDR_MASK;
    if level == 2 {
        flags &= !HUGE; // bit 7 is PAT in a 4 KiB entry
    }
    for (i, e) in table(new).iter_mut().enumerate() {
        *e = (base + i as u64 * step) | flags;
    }
    new | PRESENT | WRITABLE
}

fn cpuid(leaf: u32) -> core::arch::x86_64::CpuidResult {
    core::arch::x86_64::__cpuid(leaf)
}

fn flush() {
    // SAFETY: reloading CR3 with its own value only flushes the TLB.
    unsafe {
        let cr3: u64;
        core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack));
        core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack));
    }
}

/// Builds the firmware's page tables: identity map of the low 4 GiB and of
/// `ram_end` bytes, and switches to them. Enables NX when the CPU has it.
pub fn init(ram_end: u64) {
    let ext = cpuid(0x8000_0001);
    let nx = ext.edx & (1 << 20) != 0;
    let gib_pages = ext.edx & (1 << 26) != 0;
    if nx {
        // SAFETY: setting EFER.NXE (bit 11) only enables the NX bit meaning;
        // no existing entry sets bit 63 yet.
        unsafe {
            let efer = x86_64::registers::model_specific::Msr::new(0xC000_0080);
            let mut efer = efer;
            let value = efer.read();
            efer.write(value | (1 << 11));
        }
    }
    let mut tables = Tables {
        pml4: alloc_table(),
        nx,
        gib_pages,
    };
    tables.map(0, (1u64 << 32).max(ram_end), Access::RWX);
    let pml4 = tables.pml4;
    TABLES.with(|t| *t = Some(tables));
    // SAFETY: the new tables identity-map everything the old ones did (the
    // low 4 GiB) plus all RAM, so execution continues at the same addresses.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) pml4, options(nostack)) };
    log::debug!("paging: 1 GiB pages {gib_pages}, NX {nx}");
}

/// Sets the access rights of `base..base+len` (rounded out to pages).
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
/// ranges need not have uniform rights.
pub fn modify_access(base: u64, len: u64, change: impl Fn(Access) -> Access) {
    let start = base & !(PAGE_SIZE - 1);
    let end = base.saturating_add(len).saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    let done = TABLES.with(|t| {
        t.as_mut().map(|t| {
            let mut addr = start;
            while addr < end {
                let current = t.lookup(addr).map_or(Access::NONE, |(a, _)| a);
                let flags = t.flags(change(current));
                *t.entry(addr, 1) = addr | flags;
                addr += PAGE_SIZE;
            }
        })
    });
    if done.is_some() {
        flush();
    }
}

/// Makes `base..base+len` identity-mapped, uncached device memory.
/// Idempotent; RAM and the low 4 GiB are mapped from boot.
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
