//! Memory allocation services (UEFI 2.10 §7.2) and ExitBootServices' map-key check (§7.4.6).

use core::mem::size_of;
use core::ptr;

use r_efi::efi;

use crate::ctx::{Ctx, St};

const PAGE_SIZE: u64 = 4096;
/// A memory type in the OS-loader range 0x80000000..=0xFFFFFFFF (UEFI 2.10 §7.2.1):
/// distinct from anything the firmware allocates, so it cannot merge with neighbours.
const OS_MEMORY_TYPE: u32 = 0x8000_5E1F;
/// A value in the invalid range EfiMaxMemoryType..=0x6FFFFFFF (UEFI 2.10 §7.2.1).
const INVALID_MEMORY_TYPE: u32 = 0x0000_1000;

/// A snapshot of GetMemoryMap() in a pool buffer.
struct MemoryMap {
    buf: *mut u8,
    size: usize,
    key: usize,
    desc_size: usize,
    version: u32,
}

impl MemoryMap {
    fn get(ctx: &Ctx) -> Result<Self, efi::Status> {
        let mut size = 0usize;
        let mut key = 0usize;
        let mut desc_size = 0usize;
        let mut version = 0u32;
        let status = (ctx.bs.get_memory_map)(
            &mut size,
            ptr::null_mut(),
            &mut key,
            &mut desc_size,
            &mut version,
        );
        if status != efi::Status::BUFFER_TOO_SMALL {
            return Err(status);
        }
        // Allocating the buffer may split a free range: leave room for a few descriptors.
        let capacity = size + 8 * desc_size.max(size_of::<efi::MemoryDescriptor>());
        let buf = ctx
            .alloc_pool(capacity)
            .ok_or(efi::Status::OUT_OF_RESOURCES)?;
        size = capacity;
        let status = (ctx.bs.get_memory_map)(
            &mut size,
            buf.cast(),
            &mut key,
            &mut desc_size,
            &mut version,
        );
        if status != efi::Status::SUCCESS {
            ctx.free_pool(buf);
            return Err(status);
        }
        Ok(Self {
            buf,
            size,
            key,
            desc_size,
            version,
        })
    }

    fn len(&self) -> usize {
        self.size / self.desc_size
    }

    fn descriptor(&self, index: usize) -> efi::MemoryDescriptor {
        // SAFETY: `index < len()` keeps the read inside the `size` bytes GetMemoryMap filled;
        // descriptors are `desc_size` apart and need not be aligned for the struct.
        unsafe { ptr::read_unaligned(self.buf.add(index * self.desc_size).cast()) }
    }

    fn free(self, ctx: &Ctx) {
        ctx.free_pool(self.buf);
    }
}

pub fn run(ctx: &mut Ctx) {
    allocate_pages(ctx);
    free_pages_errors(ctx);
    pool(ctx);
    memory_map(ctx);
}

fn allocate_pages(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let mut addr: u64 = 0;
    let status = (bs.allocate_pages)(efi::ALLOCATE_ANY_PAGES, efi::LOADER_DATA, 3, &mut addr);
    if ctx.ok("memory.allocate_pages.any", status) {
        ctx.check(
            "memory.allocate_pages.any.aligned",
            addr != 0 && addr.is_multiple_of(PAGE_SIZE),
            format_args!("{addr:#x}"),
        );
        // SAFETY: the three pages at `addr` were just allocated to us and are identity mapped.
        unsafe { ptr::write_bytes(addr as *mut u8, 0xA5, 3 * PAGE_SIZE as usize) };
        let status = (bs.free_pages)(addr, 3);
        ctx.ok("memory.free_pages", status);

        // Re-allocating the range just freed at its exact address must work.
        let mut again = addr;
        let status = (bs.allocate_pages)(efi::ALLOCATE_ADDRESS, efi::LOADER_DATA, 3, &mut again);
        if ctx.ok("memory.allocate_pages.address", status) {
            ctx.check(
                "memory.allocate_pages.address.same",
                again == addr,
                format_args!("{again:#x} != {addr:#x}"),
            );
            ctx.ok("memory.free_pages.address", (bs.free_pages)(again, 3));
        }
    }

    let max: u64 = 0x7FFF_FFFF;
    let mut below = max;
    let status = (bs.allocate_pages)(efi::ALLOCATE_MAX_ADDRESS, efi::LOADER_DATA, 2, &mut below);
    if ctx.ok("memory.allocate_pages.max_address", status) {
        ctx.check(
            "memory.allocate_pages.max_address.bound",
            below.is_multiple_of(PAGE_SIZE) && below + 2 * PAGE_SIZE - 1 <= max,
            format_args!("{below:#x} above {max:#x}"),
        );
        let _ = (bs.free_pages)(below, 2);
    }

    // Memory below 1 MiB is free RAM a loader can ask for (real-mode
    // trampolines, GRUB's relocator), as on OVMF, whose map has it as a
    // second EfiConventionalMemory region; the SCT's AllocatePages tests
    // depend on one.
    let low_max: u64 = 0x9_FFFF;
    let mut low = low_max;
    let status = (bs.allocate_pages)(efi::ALLOCATE_MAX_ADDRESS, efi::LOADER_DATA, 1, &mut low);
    if ctx.ok("memory.allocate_pages.below_1m", status) {
        ctx.check(
            "memory.allocate_pages.below_1m.bound",
            low != 0 && low.is_multiple_of(PAGE_SIZE) && low + PAGE_SIZE - 1 <= low_max,
            format_args!("{low:#x}"),
        );
        let _ = (bs.free_pages)(low, 1);
    }

    let mut addr = 0;
    let status = (bs.allocate_pages)(efi::ALLOCATE_ANY_PAGES, INVALID_MEMORY_TYPE, 1, &mut addr);
    ctx.expect(
        "memory.allocate_pages.invalid_type",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = (bs.allocate_pages)(7, efi::LOADER_DATA, 1, &mut addr);
    ctx.expect(
        "memory.allocate_pages.invalid_allocate_type",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = (bs.allocate_pages)(
        efi::ALLOCATE_ANY_PAGES,
        efi::LOADER_DATA,
        1,
        ptr::null_mut(),
    );
    ctx.expect(
        "memory.allocate_pages.null_memory",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
}

fn free_pages_errors(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let mut addr = 0;
    let status = (bs.allocate_pages)(efi::ALLOCATE_ANY_PAGES, efi::LOADER_DATA, 1, &mut addr);
    if !ctx.ok("memory.free_pages.setup", status) {
        return;
    }
    let status = (bs.free_pages)(addr + 1, 1);
    ctx.expect(
        "memory.free_pages.misaligned",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    ctx.ok("memory.free_pages.once", (bs.free_pages)(addr, 1));
    // The page is now free: it was "not allocated by AllocatePages()" (§7.2.2).
    let status = (bs.free_pages)(addr, 1);
    ctx.expect(
        "memory.free_pages.not_allocated",
        status,
        &[efi::Status::NOT_FOUND],
    );
}

fn pool(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let mut aligned = true;
    let mut all_ok = true;
    for size in 1..=40usize {
        let mut buf: *mut core::ffi::c_void = ptr::null_mut();
        let status = (bs.allocate_pool)(efi::BOOT_SERVICES_DATA, size, &mut buf);
        if status != efi::Status::SUCCESS || buf.is_null() {
            all_ok = false;
            continue;
        }
        // AllocatePool returns 8-byte aligned buffers (UEFI 2.10 §7.2.4).
        aligned &= (buf as usize).is_multiple_of(8);
        // SAFETY: `buf` is a fresh pool allocation of `size` bytes.
        unsafe { ptr::write_bytes(buf.cast::<u8>(), 0x5A, size) };
        all_ok &= (bs.free_pool)(buf) == efi::Status::SUCCESS;
    }
    ctx.check(
        "memory.pool.allocate_free",
        all_ok,
        format_args!("an AllocatePool/FreePool pair failed"),
    );
    ctx.check(
        "memory.pool.alignment8",
        aligned,
        format_args!("buffer not 8-byte aligned"),
    );

    let mut buf: *mut core::ffi::c_void = ptr::null_mut();
    let status = (bs.allocate_pool)(INVALID_MEMORY_TYPE, 16, &mut buf);
    ctx.expect(
        "memory.pool.invalid_type",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = (bs.allocate_pool)(efi::LOADER_DATA, 16, ptr::null_mut());
    ctx.expect(
        "memory.pool.null_buffer",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = (bs.free_pool)(ptr::null_mut());
    ctx.expect(
        "memory.pool.free_null",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
}

fn memory_map(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let mut size = 0usize;
    let mut key = 0usize;
    let mut desc_size = 0usize;
    let mut version = 0u32;
    let status = (bs.get_memory_map)(
        &mut size,
        ptr::null_mut(),
        &mut key,
        &mut desc_size,
        &mut version,
    );
    if ctx.expect(
        "memory.get_memory_map.too_small",
        status,
        &[efi::Status::BUFFER_TOO_SMALL],
    ) {
        ctx.check(
            "memory.get_memory_map.required_size",
            size >= size_of::<efi::MemoryDescriptor>()
                && desc_size > 0
                && size.is_multiple_of(desc_size),
            format_args!("size {size}, descriptor size {desc_size}"),
        );
    }
    let status = (bs.get_memory_map)(
        ptr::null_mut(),
        ptr::null_mut(),
        &mut key,
        &mut desc_size,
        &mut version,
    );
    ctx.expect(
        "memory.get_memory_map.null_size",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );

    // Allocate pages of an OS-loader type, then look for them in the map.
    let mut pages_addr = 0;
    let status = (bs.allocate_pages)(efi::ALLOCATE_ANY_PAGES, OS_MEMORY_TYPE, 5, &mut pages_addr);
    let have_pages = ctx.ok("memory.allocate_pages.os_type", status);

    let map = match MemoryMap::get(ctx) {
        Ok(map) => map,
        Err(status) => {
            ctx.fail("memory.get_memory_map", format_args!("{}", St(status)));
            if have_pages {
                let _ = (bs.free_pages)(pages_addr, 5);
            }
            return;
        }
    };
    ctx.pass("memory.get_memory_map");
    ctx.check(
        "memory.get_memory_map.descriptor",
        map.desc_size >= size_of::<efi::MemoryDescriptor>()
            && map.version == efi::MEMORY_DESCRIPTOR_VERSION,
        format_args!("size {} version {}", map.desc_size, map.version),
    );

    let mut sorted = true;
    let mut well_formed = true;
    let mut overlap = None;
    let mut found_type = None;
    for i in 0..map.len() {
        let d = map.descriptor(i);
        let end = d.physical_start + d.number_of_pages * PAGE_SIZE;
        well_formed &= d.physical_start.is_multiple_of(PAGE_SIZE) && d.number_of_pages > 0;
        if i > 0 && map.descriptor(i - 1).physical_start > d.physical_start {
            sorted = false;
        }
        for j in i + 1..map.len() {
            let e = map.descriptor(j);
            let e_end = e.physical_start + e.number_of_pages * PAGE_SIZE;
            if d.physical_start < e_end && e.physical_start < end {
                overlap = Some((d.physical_start, e.physical_start));
            }
        }
        let pages_end = pages_addr + 5 * PAGE_SIZE;
        if have_pages && d.physical_start <= pages_addr && pages_end <= end {
            found_type = Some(d.r#type);
        }
    }
    ctx.check(
        "memory.get_memory_map.well_formed",
        well_formed,
        format_args!("unaligned or empty descriptor"),
    );
    ctx.check(
        "memory.get_memory_map.sorted",
        sorted,
        format_args!("descriptors not in ascending address order"),
    );
    ctx.check(
        "memory.get_memory_map.non_overlapping",
        overlap.is_none(),
        format_args!("{overlap:x?}"),
    );
    if have_pages {
        ctx.check(
            "memory.get_memory_map.allocation_type",
            found_type == Some(OS_MEMORY_TYPE),
            format_args!("pages {pages_addr:#x} mapped as {found_type:#x?}"),
        );
    }

    // Any allocation changes the map, so the key must change (UEFI 2.10 §7.2.3).
    let old_key = map.key;
    map.free(ctx);
    if have_pages {
        let _ = (bs.free_pages)(pages_addr, 5);
    }
    match MemoryMap::get(ctx) {
        Ok(map) => {
            ctx.check(
                "memory.get_memory_map.key_changes",
                map.key != old_key,
                format_args!("key {old_key:#x} unchanged"),
            );
            map.free(ctx);
        }
        Err(status) => ctx.fail(
            "memory.get_memory_map.key_changes",
            format_args!("{}", St(status)),
        ),
    }
}

/// ExitBootServices() with a stale map key must fail with EFI_INVALID_PARAMETER
/// (UEFI 2.10 §7.4.6). Boot services are never actually exited.
pub fn run_exit_boot_services(ctx: &mut Ctx) {
    let map = match MemoryMap::get(ctx) {
        Ok(map) => map,
        Err(status) => {
            ctx.fail(
                "exit_boot_services.stale_key",
                format_args!("GetMemoryMap: {}", St(status)),
            );
            return;
        }
    };
    let stale_key = map.key;
    // Freeing the map buffer changes the memory map, making `stale_key` stale.
    map.free(ctx);
    let mut page = 0;
    let status = (ctx.bs.allocate_pages)(efi::ALLOCATE_ANY_PAGES, efi::LOADER_DATA, 1, &mut page);
    let status_ebs = (ctx.bs.exit_boot_services)(ctx.image, stale_key);
    if status == efi::Status::SUCCESS {
        let _ = (ctx.bs.free_pages)(page, 1);
    }
    ctx.expect(
        "exit_boot_services.stale_key",
        status_ebs,
        &[efi::Status::INVALID_PARAMETER],
    );
}
