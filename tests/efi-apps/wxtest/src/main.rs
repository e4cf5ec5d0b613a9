//! W^X check: finds EFI_MEMORY_ATTRIBUTE_PROTOCOL (UEFI 2.10 §37.7), checks
//! its argument validation, maps the page holding its own code read-only and
//! executable, then writes to that page. The firmware must stop the write
//! with a page fault whose report names this image; reaching the line after
//! the write means W^X is not enforced.
//!
//! Output on ConOut: `wxtest: ...` progress lines, `wxtest: FAIL <why>` on an
//! unexpected result, `wxtest: writing to own code` just before the write.

#![no_std]
#![no_main]

use r_efi::efi;
use r_efi::protocols::memory_attribute;

const PAGE_SIZE: u64 = 4096;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Prints one line on ConOut.
macro_rules! say {
    ($con:expr, $($arg:tt)*) => {
        efi_con::print($con, format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Lands in .rdata, whose page LoadImage maps read-only and no-execute.
static READ_ONLY_DATA: [u8; 16] = *b"wxtest read-only";

/// The function whose code page gets mapped read-only.
#[inline(never)]
fn code_marker() -> u64 {
    code_marker as *const () as u64
}

#[unsafe(export_name = "efi_main")]
extern "efiapi" fn efi_main(_image: efi::Handle, st: *mut efi::SystemTable) -> efi::Status {
    // SAFETY: the firmware passes a valid system table (UEFI 2.10 §4.1).
    let Some(st) = (unsafe { st.as_ref() }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    let con = st.con_out;
    say!(con, "wxtest: start");

    let mut guid = memory_attribute::PROTOCOL_GUID;
    let mut interface: *mut core::ffi::c_void = core::ptr::null_mut();
    // SAFETY: boot services are live; the out-pointer is valid.
    let status = unsafe {
        ((*st.boot_services).locate_protocol)(&mut guid, core::ptr::null_mut(), &mut interface)
    };
    if status != efi::Status::SUCCESS || interface.is_null() {
        say!(
            con,
            "wxtest: FAIL no memory attribute protocol ({:#x})",
            status.as_usize()
        );
        return efi::Status::NOT_FOUND;
    }
    let protocol = interface.cast::<memory_attribute::Protocol>();
    // SAFETY: LocateProtocol returned this interface.
    let p = unsafe { &*protocol };

    let page = code_marker() & !(PAGE_SIZE - 1);
    let mut attributes = 0u64;
    let checks: [(&str, efi::Status, efi::Status); 5] = [
        (
            "get with a null output",
            (p.get_memory_attributes)(protocol, page, PAGE_SIZE, core::ptr::null_mut()),
            efi::Status::INVALID_PARAMETER,
        ),
        (
            "set of zero length",
            (p.set_memory_attributes)(protocol, page, 0, efi::MEMORY_RO),
            efi::Status::INVALID_PARAMETER,
        ),
        (
            "set of a misaligned range",
            (p.set_memory_attributes)(protocol, page + 1, PAGE_SIZE, efi::MEMORY_RO),
            efi::Status::INVALID_PARAMETER,
        ),
        (
            "set of no attributes",
            (p.set_memory_attributes)(protocol, page, PAGE_SIZE, 0),
            efi::Status::INVALID_PARAMETER,
        ),
        (
            "clear on unallocated memory",
            (p.clear_memory_attributes)(protocol, 0xffff_0000_0000, PAGE_SIZE, efi::MEMORY_RO),
            efi::Status::INVALID_PARAMETER,
        ),
    ];
    for (what, got, want) in checks {
        if got != want {
            say!(
                con,
                "wxtest: FAIL {what}: {:#x}, want {:#x}",
                got.as_usize(),
                want.as_usize()
            );
            return efi::Status::ABORTED;
        }
    }
    say!(con, "wxtest: argument checks passed");

    // LoadImage maps an image that declares NX_COMPAT (lld's default for
    // UEFI targets, and this image's) W^X section by section: code
    // read-only, read-only data also no-execute.
    let rodata_page = core::ptr::addr_of!(READ_ONLY_DATA) as u64 & !(PAGE_SIZE - 1);
    let mut code_rights = 0u64;
    let mut rodata_rights = 0u64;
    let code_status = (p.get_memory_attributes)(protocol, page, PAGE_SIZE, &mut code_rights);
    let rodata_status =
        (p.get_memory_attributes)(protocol, rodata_page, PAGE_SIZE, &mut rodata_rights);
    if code_status != efi::Status::SUCCESS
        || rodata_status != efi::Status::SUCCESS
        || code_rights != efi::MEMORY_RO
        || rodata_rights != efi::MEMORY_RO | efi::MEMORY_XP
    {
        say!(
            con,
            "wxtest: FAIL own image not W^X: code {code_rights:#x} (want RO), .rdata {rodata_rights:#x} (want RO|XP)"
        );
        return efi::Status::ABORTED;
    }
    say!(con, "wxtest: own image mapped W^X by LoadImage");

    // The firmware itself is W^X and immutable: its code (a boot service's
    // entry) is read-only, its data (the system table) no-execute, and
    // neither may be changed by an application.
    // SAFETY: boot services are live; only the function's address is used.
    let firmware_code =
        unsafe { (*st.boot_services).allocate_pages } as usize as u64 & !(PAGE_SIZE - 1);
    let firmware_data = st as *const efi::SystemTable as u64 & !(PAGE_SIZE - 1);
    let mut code_attributes = 0u64;
    let mut data_attributes = 0u64;
    let firmware_checks: [(&str, efi::Status, efi::Status); 4] = [
        (
            "get on firmware code",
            (p.get_memory_attributes)(protocol, firmware_code, PAGE_SIZE, &mut code_attributes),
            efi::Status::SUCCESS,
        ),
        (
            "get on firmware data",
            (p.get_memory_attributes)(protocol, firmware_data, PAGE_SIZE, &mut data_attributes),
            efi::Status::SUCCESS,
        ),
        (
            "making firmware code writable",
            (p.clear_memory_attributes)(protocol, firmware_code, PAGE_SIZE, efi::MEMORY_RO),
            efi::Status::ACCESS_DENIED,
        ),
        (
            "making firmware data executable",
            (p.clear_memory_attributes)(protocol, firmware_data, PAGE_SIZE, efi::MEMORY_XP),
            efi::Status::ACCESS_DENIED,
        ),
    ];
    for (what, got, want) in firmware_checks {
        if got != want {
            say!(
                con,
                "wxtest: FAIL {what}: {:#x}, want {:#x}",
                got.as_usize(),
                want.as_usize()
            );
            return efi::Status::ABORTED;
        }
    }
    if code_attributes != efi::MEMORY_RO || data_attributes != efi::MEMORY_XP {
        say!(
            con,
            "wxtest: FAIL firmware rights: code {code_attributes:#x} (want RO), data {data_attributes:#x} (want XP)"
        );
        return efi::Status::ABORTED;
    }
    say!(
        con,
        "wxtest: firmware code is RX, data RW+NX, both immutable"
    );

    let status = (p.set_memory_attributes)(protocol, page, PAGE_SIZE, efi::MEMORY_RO);
    let cleared = (p.clear_memory_attributes)(protocol, page, PAGE_SIZE, efi::MEMORY_XP);
    let got = (p.get_memory_attributes)(protocol, page, PAGE_SIZE, &mut attributes);
    if status != efi::Status::SUCCESS
        || cleared != efi::Status::SUCCESS
        || got != efi::Status::SUCCESS
        || attributes & efi::MEMORY_ACCESS_MASK != efi::MEMORY_RO
    {
        say!(
            con,
            "wxtest: FAIL mapping code read-only: set {:#x} clear {:#x} get {:#x} attributes {attributes:#x}",
            status.as_usize(),
            cleared.as_usize(),
            got.as_usize()
        );
        return efi::Status::ABORTED;
    }
    say!(con, "wxtest: code page {page:#x} is read-only, executable");
    // Still executable: calling into the page works.
    if code_marker() & !(PAGE_SIZE - 1) != page {
        say!(con, "wxtest: FAIL code moved");
    }
    say!(con, "wxtest: writing to own code");
    // SAFETY: deliberately not: this write must fault. `page` is mapped
    // (read-only) memory of this image, so without W^X it would merely
    // corrupt a code byte that is written back unchanged.
    unsafe {
        let target = page as *mut u8;
        target.write_volatile(target.read_volatile());
    }
    say!(con, "wxtest: FAIL the write to read-only code succeeded");
    efi::Status::ABORTED
}
