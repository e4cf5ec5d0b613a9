//! The Linux 64-bit boot protocol (Linux Documentation/arch/x86/boot.rst,
//! "64-bit Boot Protocol"), for kernels without an EFI stub or when asked
//! for it: the protected-mode kernel goes to `pref_address` (or any address
//! at its alignment when relocatable), the zero page (`crate::bzimage`)
//! gets the command line, initrd, ACPI RSDP, an e820 map built from the EFI
//! memory map and the EFI system table and memory map in `efi_info` (so the
//! kernel still uses EFI runtime services), then ExitBootServices and a jump
//! to `startup_64` (load address + 0x200) with `rsi` = the zero page.

use crate::bzimage::{BootParams, BzImageError, E820Type, ENTRY_64_OFFSET, EfiInfo, SetupHeader};
use crate::pages::PageBuffer;
use crate::services::{self, Services};
use core::fmt;
use log::info;
use platform::memory::{MemoryType, PAGE_SIZE};
use uefi_raw::Status;

/// Where initrds are read before the kernel's header is known: below
/// 2 GiB, the `initrd_addr_max` every 2.03+ kernel accepts (boot.rst).
pub const INITRD_MAX_ADDRESS: u64 = 0x7fff_ffff;
/// The kernel, zero page and command line stay below 4 GiB: the 32-bit
/// `code32_start`/`cmd_line_ptr` fields then hold them without `ext_` halves.
const BELOW_4G: u64 = 0xffff_ffff;
/// Descriptors of slack in the memory-map buffer: allocating the buffer
/// itself and the kernel's pages split regions.
const MAP_SLACK_DESCRIPTORS: usize = 16;

/// Why the kernel could not be started.
#[derive(Debug)]
pub enum LinuxBootError {
    /// The bzImage header or the zero page refused a value.
    Image(BzImageError),
    /// No pages for `what`.
    Memory { what: &'static str, status: Status },
    /// A non-relocatable kernel whose `pref_address` is taken.
    NotRelocatable { pref_address: u64 },
    /// GetMemoryMap failed.
    MemoryMap(Status),
    /// ExitBootServices failed even after refreshing the map.
    ExitBootServices(Status),
}

impl fmt::Display for LinuxBootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinuxBootError::Image(e) => write!(f, "{e}"),
            LinuxBootError::Memory { what, status } => {
                write!(f, "no memory for the {what}: {status:?}")
            }
            LinuxBootError::NotRelocatable { pref_address } => write!(
                f,
                "kernel is not relocatable and {pref_address:#x} is in use"
            ),
            LinuxBootError::MemoryMap(status) => write!(f, "GetMemoryMap: {status:?}"),
            LinuxBootError::ExitBootServices(status) => {
                write!(f, "ExitBootServices: {status:?}")
            }
        }
    }
}

impl From<BzImageError> for LinuxBootError {
    fn from(e: BzImageError) -> Self {
        LinuxBootError::Image(e)
    }
}

fn no_memory(what: &'static str) -> impl Fn(Status) -> LinuxBootError {
    move |status| LinuxBootError::Memory { what, status }
}

/// The e820 type the kernel must see for an EFI memory type (the mapping
/// the Linux EFI stub makes, drivers/firmware/efi/libstub/x86-stub.c
/// setup_e820): everything the OS may reuse after ExitBootServices is RAM.
pub fn e820_type(efi_type: MemoryType) -> E820Type {
    match efi_type {
        MemoryType::LOADER_CODE
        | MemoryType::LOADER_DATA
        | MemoryType::BOOT_SERVICES_CODE
        | MemoryType::BOOT_SERVICES_DATA
        | MemoryType::CONVENTIONAL => E820Type::RAM,
        MemoryType::ACPI_RECLAIM => E820Type::ACPI,
        MemoryType::ACPI_NON_VOLATILE => E820Type::NVS,
        MemoryType::UNUSABLE => E820Type::UNUSABLE,
        MemoryType::PERSISTENT_MEMORY => E820Type::PMEM,
        _ => E820Type::RESERVED,
    }
}

/// Fills the zero page's e820 table from EFI descriptors `(start, pages,
/// type)` in address order, merging contiguous ranges of the same e820 type.
pub fn add_e820_from_efi(
    params: &mut BootParams,
    descriptors: impl IntoIterator<Item = (u64, u64, MemoryType)>,
) -> Result<(), BzImageError> {
    let mut pending: Option<(u64, u64, E820Type)> = None;
    for (start, pages, efi_type) in descriptors {
        let kind = e820_type(efi_type);
        let size = pages.saturating_mul(PAGE_SIZE);
        match &mut pending {
            Some((p_start, p_size, p_kind))
                if *p_kind == kind && p_start.checked_add(*p_size) == Some(start) =>
            {
                *p_size = p_size.saturating_add(size);
            }
            _ => {
                if let Some((s, l, k)) = pending.replace((start, size, kind)) {
                    params.add_e820(s, l, k)?;
                }
            }
        }
    }
    if let Some((s, l, k)) = pending {
        params.add_e820(s, l, k)?;
    }
    Ok(())
}

/// Where the kernel goes: `pref_address` when free, else (relocatable
/// kernels) the first `kernel_alignment` boundary in fresh pages below 4 GiB.
/// `len` bytes (the protected-mode code) are cleared for copying in, the
/// rest of `size` (init_size) only reserved. Returns the pages and the load
/// address inside them.
fn place_kernel(
    header: &SetupHeader,
    len: usize,
    size: usize,
) -> Result<(PageBuffer, u64), LinuxBootError> {
    if header.pref_address.is_multiple_of(PAGE_SIZE)
        && let Ok(pages) =
            PageBuffer::allocate_at(header.pref_address, len, size, MemoryType::LOADER_CODE)
    {
        return Ok((pages, header.pref_address));
    }
    if !header.relocatable_kernel {
        return Err(LinuxBootError::NotRelocatable {
            pref_address: header.pref_address,
        });
    }
    let alignment = u64::from(header.kernel_alignment)
        .max(PAGE_SIZE)
        .next_power_of_two();
    let too_large = || no_memory("kernel")(Status::OUT_OF_RESOURCES);
    let padded = size.checked_add(alignment as usize).ok_or_else(too_large)?;
    let visible = len.checked_add(alignment as usize).ok_or_else(too_large)?;
    let pages = PageBuffer::allocate_with_room(visible, padded, MemoryType::LOADER_CODE, BELOW_4G)
        .map_err(no_memory("kernel"))?;
    let address = pages.address().next_multiple_of(alignment);
    Ok((pages, address))
}

/// The ACPI RSDP from the EFI configuration table (UEFI 2.10 §4.6), 2.0+ first.
fn acpi_rsdp(services: &Services) -> Option<u64> {
    [
        efi::spec_gaps::ACPI_20_TABLE_GUID,
        efi::spec_gaps::ACPI_10_TABLE_GUID,
    ]
    .iter()
    .find_map(|guid| services.configuration_table(guid))
    .map(|table| table as u64)
}

/// Boots `image` (a bzImage) with `initrd` and `cmdline`. Returns only on
/// failure; after ExitBootServices succeeds it does not return at all.
pub fn boot(image: &[u8], initrd: Option<PageBuffer>, cmdline: &str) -> LinuxBootError {
    match prepare_and_jump(image, initrd, cmdline) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn prepare_and_jump(
    image: &[u8],
    initrd: Option<PageBuffer>,
    cmdline: &str,
) -> Result<core::convert::Infallible, LinuxBootError> {
    let services = services::current().map_err(LinuxBootError::MemoryMap)?;
    let header = SetupHeader::parse(image)?;
    // Started without LoadImage or an EFI stub, this kernel is measured
    // here, as GRUB measures what it loads (TCG PFP has no event of its
    // own for it): the kernel and initrd into PCR 9, the command line into
    // PCR 8, EV_IPL.
    crate::measure::measure_ipl(9, image, "Linux kernel (boot protocol)");
    if let Some(initrd) = &initrd {
        crate::measure::measure_ipl(9, initrd.as_slice(), "Linux initrd (boot protocol)");
    }
    crate::measure::measure_ipl(8, cmdline.as_bytes(), cmdline);
    let protected_mode = header.kernel(image);
    let kernel_size = protected_mode.len().max(header.init_size as usize);
    let (mut kernel_pages, kernel_address) =
        place_kernel(&header, protected_mode.len(), kernel_size)?;
    let offset = (kernel_address - kernel_pages.address()) as usize;
    kernel_pages.as_mut_slice()[offset..offset + protected_mode.len()]
        .copy_from_slice(protected_mode);

    let mut params = BootParams::new(image, &header)?;
    params.set_code32_start(kernel_address as u32);

    let mut cmdline_page =
        PageBuffer::allocate(cmdline.len() + 1, MemoryType::LOADER_DATA, BELOW_4G)
            .map_err(no_memory("command line"))?;
    cmdline_page.as_mut_slice()[..cmdline.len()].copy_from_slice(cmdline.as_bytes());
    params.set_cmdline(cmdline_page.address(), cmdline.len())?;

    let initrd = match initrd {
        Some(initrd) => Some(initrd_within_limit(&header, initrd)?),
        None => None,
    };
    if let Some(initrd) = &initrd {
        params.set_ramdisk(initrd.address(), initrd.len() as u64)?;
    }
    if let Some(rsdp) = acpi_rsdp(&services) {
        params.set_acpi_rsdp(rsdp);
    }
    let mut zero_page = PageBuffer::allocate(PAGE_SIZE as usize, MemoryType::LOADER_DATA, BELOW_4G)
        .map_err(no_memory("zero page"))?;

    // The map buffer is allocated before the map is read, so it is in it.
    let (status, first) = services.memory_map(&mut []);
    if status != Status::BUFFER_TOO_SMALL && status.is_error() {
        return Err(LinuxBootError::MemoryMap(status));
    }
    let capacity = MAP_SLACK_DESCRIPTORS
        .checked_mul(first.descriptor_size)
        .and_then(|slack| slack.checked_add(first.size))
        .ok_or(LinuxBootError::MemoryMap(Status::BUFFER_TOO_SMALL))?;
    let mut map = PageBuffer::allocate(capacity, MemoryType::LOADER_DATA, BELOW_4G)
        .map_err(no_memory("memory map"))?;

    info!(
        "linux: kernel at {kernel_address:#x}, entry {:#x}, command line {cmdline:?}",
        kernel_address + ENTRY_64_OFFSET
    );
    let mut last = Status::SUCCESS;
    // ExitBootServices fails when the map changed since it was read (an
    // event notification allocated): read it again and retry (§7.4.6).
    for _ in 0..3 {
        let (status, info) = services.memory_map(map.as_mut_slice());
        if status.is_error() {
            return Err(LinuxBootError::MemoryMap(status));
        }
        // The service reports at most the buffer's size on success and a
        // descriptor size of at least one EFI_MEMORY_DESCRIPTOR (§7.2.3);
        // anything else is refused rather than read.
        let (size, descriptor_size, version) = (info.size, info.descriptor_size, info.version);
        if size > capacity || descriptor_size < DESCRIPTOR_FIELDS_END {
            return Err(LinuxBootError::MemoryMap(Status::DEVICE_ERROR));
        }
        let mut final_params = params.clone();
        let descriptors = map.as_slice()[..size]
            .chunks_exact(descriptor_size)
            .map(descriptor_fields);
        add_e820_from_efi(&mut final_params, descriptors)?;
        final_params.set_efi_info(&EfiInfo {
            system_table: services.system_table() as u64,
            memory_map: map.address(),
            memory_map_size: size as u32,
            descriptor_size: descriptor_size as u32,
            descriptor_version: version,
        });
        zero_page
            .as_mut_slice()
            .copy_from_slice(final_params.as_bytes());
        last = services.exit_boot_services(info.key);
        if !last.is_error() {
            // Everything placed now belongs to the kernel.
            let (zero_page_address, _) = zero_page.leak();
            let _ = (kernel_pages.leak(), cmdline_page.leak(), map.leak());
            let _ = initrd.map(PageBuffer::leak);
            // SAFETY: boot services are gone; the kernel is at
            // `kernel_address` with `init_size` bytes of room, the zero page
            // is filled in, and all of it is identity-mapped RAM we no
            // longer use (boot.rst "64-bit Boot Protocol").
            unsafe { jump_to_kernel(kernel_address + ENTRY_64_OFFSET, zero_page_address) }
        }
    }
    Err(LinuxBootError::ExitBootServices(last))
}

/// The end of the fields [`descriptor_fields`] reads (NumberOfPages).
const DESCRIPTOR_FIELDS_END: usize = 32;

/// `(start, pages, type)` of one EFI_MEMORY_DESCRIPTOR (§7.2.3) as bytes.
fn descriptor_fields(bytes: &[u8]) -> (u64, u64, MemoryType) {
    let word = |at: usize| platform::le::u64_at(bytes, at).unwrap_or(0);
    (word(8), word(24), MemoryType(word(0) as u32))
}

/// The initrd, moved below `initrd_addr_max` when it was read higher and
/// the kernel cannot take it there.
fn initrd_within_limit(
    header: &SetupHeader,
    initrd: PageBuffer,
) -> Result<PageBuffer, LinuxBootError> {
    let last = initrd.address() + initrd.len().max(1) as u64 - 1;
    let above_4g = header
        .xloadflags
        .contains(crate::bzimage::XLoadFlags::CAN_BE_LOADED_ABOVE_4G);
    if above_4g || last <= u64::from(header.initrd_addr_max) {
        return Ok(initrd);
    }
    let mut moved = PageBuffer::allocate(
        initrd.len(),
        MemoryType::LOADER_DATA,
        u64::from(header.initrd_addr_max),
    )
    .map_err(no_memory("initrd"))?;
    moved.as_mut_slice().copy_from_slice(initrd.as_slice());
    Ok(moved)
}

/// The GDT boot.rst requires: flat 64-bit code at `__BOOT_CS` (0x10) and
/// flat data at `__BOOT_DS` (0x18). 0x08 repeats the code descriptor so the
/// firmware's IDT (which names selector 0x08) stays valid until the kernel
/// loads its own.
///
/// A plain array rather than `x86_64`'s `GlobalDescriptorTable`: the layout
/// is fixed by boot.rst, the table must be `static` (the kernel runs on it
/// until it loads its own), and `lgdt` has to sit in the same `asm!` as the
/// jump.
static LINUX_GDT: [u64; 4] = [
    0,
    x86_64::structures::gdt::DescriptorFlags::KERNEL_CODE64.bits(),
    x86_64::structures::gdt::DescriptorFlags::KERNEL_CODE64.bits(),
    x86_64::structures::gdt::DescriptorFlags::KERNEL_DATA.bits(),
];

/// Loads the boot GDT, reloads CS/DS/ES/SS and jumps to `entry` with `rsi` =
/// `zero_page`, interrupts off.
///
/// # Safety
/// Boot services must have exited and `entry` be a kernel's `startup_64`
/// with `zero_page` its filled-in boot_params.
unsafe fn jump_to_kernel(entry: u64, zero_page: u64) -> ! {
    let gdt = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of_val(&LINUX_GDT) - 1) as u16,
        base: x86_64::VirtAddr::from_ptr(LINUX_GDT.as_ptr()),
    };
    // SAFETY: the caller's contract; the GDT is a static that outlives the
    // jump, and the far return switches to its code selector 0x10.
    unsafe {
        core::arch::asm!(
            "cli",
            "lgdt [rcx]",
            "push 0x10",
            "lea rdx, [rip + 2f]",
            "push rdx",
            "retfq",
            "2:",
            "mov edx, 0x18",
            "mov ds, edx",
            "mov es, edx",
            "mov ss, edx",
            "xor ebp, ebp",
            "jmp rax",
            in("rcx") &gdt,
            in("rax") entry,
            in("rsi") zero_page,
            options(noreturn),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// boot.rst's flat 4 GiB descriptors, as the kernel expects them.
    #[test]
    fn boot_gdt_has_flat_code_and_data() {
        assert_eq!(
            LINUX_GDT,
            [
                0,
                0x00af_9b00_0000_ffff,
                0x00af_9b00_0000_ffff,
                0x00cf_9300_0000_ffff
            ]
        );
    }

    #[test]
    fn efi_types_become_e820_types() {
        assert_eq!(e820_type(MemoryType::CONVENTIONAL), E820Type::RAM);
        assert_eq!(e820_type(MemoryType::BOOT_SERVICES_DATA), E820Type::RAM);
        assert_eq!(e820_type(MemoryType::LOADER_CODE), E820Type::RAM);
        assert_eq!(e820_type(MemoryType::ACPI_RECLAIM), E820Type::ACPI);
        assert_eq!(e820_type(MemoryType::ACPI_NON_VOLATILE), E820Type::NVS);
        assert_eq!(
            e820_type(MemoryType::RUNTIME_SERVICES_DATA),
            E820Type::RESERVED
        );
        assert_eq!(e820_type(MemoryType::MMIO), E820Type::RESERVED);
        assert_eq!(e820_type(MemoryType::PERSISTENT_MEMORY), E820Type::PMEM);
    }

    /// A zero page to fill (the synthetic header of `crate::bzimage`'s tests
    /// is private; this builds the few bytes `SetupHeader::parse` needs).
    fn params() -> BootParams {
        let mut image = vec![0u8; 5 * 512];
        image[0x1f1] = 4;
        image[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        image[0x201] = 0x6a;
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        image[0x236..0x238].copy_from_slice(&1u16.to_le_bytes());
        let header = SetupHeader::parse(&image).unwrap();
        BootParams::new(&image, &header).unwrap()
    }

    fn e820(params: &BootParams) -> Vec<(u64, u64, u32)> {
        let page = params.as_bytes();
        (0..params.e820_entries())
            .map(|i| {
                let at = 0x2d0 + i * 20;
                let word =
                    |o: usize| u64::from_le_bytes(page[at + o..at + o + 8].try_into().unwrap());
                let kind = u32::from_le_bytes(page[at + 16..at + 20].try_into().unwrap());
                (word(0), word(8), kind)
            })
            .collect()
    }

    #[test]
    fn contiguous_ranges_of_one_kind_merge() {
        let mut params = params();
        add_e820_from_efi(
            &mut params,
            [
                (0, 0x9f, MemoryType::CONVENTIONAL),
                (0x100000, 0x10, MemoryType::LOADER_DATA),
                (0x110000, 0x10, MemoryType::BOOT_SERVICES_CODE),
                (0x120000, 0x2, MemoryType::RUNTIME_SERVICES_DATA),
                (0x122000, 0x1, MemoryType::ACPI_RECLAIM),
                (0x123000, 0x5d, MemoryType::CONVENTIONAL),
                // A hole before this one: not merged across it.
                (0x200000, 0x10, MemoryType::CONVENTIONAL),
            ],
        )
        .unwrap();
        assert_eq!(
            e820(&params),
            [
                (0, 0x9f000, 1),
                (0x100000, 0x20000, 1),
                (0x120000, 0x2000, 2),
                (0x122000, 0x1000, 3),
                (0x123000, 0x5d000, 1),
                (0x200000, 0x10000, 1),
            ]
        );
    }

    #[test]
    fn memory_descriptors_are_read_by_field_offset() {
        let mut bytes = [0u8; 48];
        bytes[0..4].copy_from_slice(&7u32.to_le_bytes());
        bytes[8..16].copy_from_slice(&0x1000u64.to_le_bytes());
        bytes[24..32].copy_from_slice(&3u64.to_le_bytes());
        assert_eq!(
            descriptor_fields(&bytes),
            (0x1000, 3, MemoryType::CONVENTIONAL)
        );
    }
}
