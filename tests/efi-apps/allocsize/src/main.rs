//! Sizes an EFI caller controls (issue 18's allocation audit): calls services with sizes
//! the firmware cannot hold and prints each status, then shows the firmware still works.
//!
//! 1. HII NewPackageList (UEFI 2.10 §34.8.1.1) with a 16 MiB list (the most the firmware
//!    accepts) of 4,194,298 four-byte packages: the firmware's index of them alone is
//!    ~100 MB, more than a 128 MiB VM has. Expected `EFI_OUT_OF_RESOURCES`; a firmware
//!    that allocates infallibly panics instead.
//! 2. AllocatePool (§7.2.4) of 2^62 bytes: `EFI_OUT_OF_RESOURCES`.
//! 3. A small NewPackageList and its RemovePackageList: `EFI_SUCCESS` both.
//!
//! Prints `ALLOCSIZE: <call> = <status in hex>` lines, then `ALLOCSIZE: done`, and powers
//! off. Run by `tests/tests/hostile.rs`.

#![no_std]
#![no_main]

use core::ffi::c_void;
use core::fmt;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::hii_database;

/// The longest package list the firmware takes in (its MAX_PACKAGE_LIST).
const LIST_BYTES: usize = 16 << 20;
/// EFI_HII_PACKAGE_LIST_HEADER: GUID and length (§33.3.1).
const LIST_HEADER: usize = 20;
/// EFI_HII_PACKAGE_HEADER: 24-bit length, 8-bit type (§33.3.1).
const PACKAGE_HEADER: usize = 4;
/// A type from the system range (0xE0..=0xFF, §33.3.1), content-free.
const PACKAGE_TYPE_SYSTEM: u32 = 0xe0;
const PACKAGE_TYPE_END: u32 = 0xdf;
/// The list's GUID: this application's own.
const LIST_GUID: efi::Guid = efi::Guid::from_fields(
    0x5a1c_0c5e,
    0x7d2b,
    0x4f11,
    0x9a,
    0x3e,
    &[0x61, 0x6c, 0x6c, 0x6f, 0x63, 0x73],
);

struct App<'a> {
    image: efi::Handle,
    st: &'a efi::SystemTable,
    bs: &'a efi::BootServices,
}

impl App<'_> {
    fn print(&self, args: fmt::Arguments) {
        efi_con::print(self.st.con_out, args);
    }

    fn hii(&self) -> Option<&hii_database::Protocol> {
        let mut guid = hii_database::PROTOCOL_GUID;
        let mut interface: *mut c_void = ptr::null_mut();
        let status = (self.bs.locate_protocol)(&mut guid, ptr::null_mut(), &mut interface);
        if status.is_error() {
            self.print(format_args!(
                "ALLOCSIZE: LocateProtocol(HII database) = {:#x}\n",
                status.as_usize()
            ));
            return None;
        }
        // SAFETY: LocateProtocol returned the HII database interface (§7.3.16), which
        // stays valid while boot services run.
        unsafe { interface.cast::<hii_database::Protocol>().as_ref() }
    }

    /// Writes a package list of `packages` system packages and the End package at `list`.
    ///
    /// # Safety
    /// `list` points at `LIST_HEADER + (packages + 1) * PACKAGE_HEADER` writable bytes.
    unsafe fn write_list(list: *mut u8, packages: usize) -> usize {
        let total = LIST_HEADER + (packages + 1) * PACKAGE_HEADER;
        let package = (PACKAGE_HEADER as u32 | (PACKAGE_TYPE_SYSTEM << 24)).to_le_bytes();
        let end = (PACKAGE_HEADER as u32 | (PACKAGE_TYPE_END << 24)).to_le_bytes();
        // SAFETY: every write is inside the `total` bytes the contract provides.
        unsafe {
            ptr::copy_nonoverlapping(ptr::from_ref(&LIST_GUID).cast::<u8>(), list, 16);
            ptr::copy_nonoverlapping((total as u32).to_le_bytes().as_ptr(), list.add(16), 4);
            for i in 0..packages {
                let at = list.add(LIST_HEADER + i * PACKAGE_HEADER);
                ptr::copy_nonoverlapping(package.as_ptr(), at, PACKAGE_HEADER);
            }
            ptr::copy_nonoverlapping(end.as_ptr(), list.add(total - PACKAGE_HEADER), 4);
        }
        total
    }

    fn huge_package_list(&self, hii: &hii_database::Protocol) {
        let pages = LIST_BYTES / 4096;
        let mut address: efi::PhysicalAddress = 0;
        let status = (self.bs.allocate_pages)(
            efi::ALLOCATE_ANY_PAGES,
            efi::LOADER_DATA,
            pages,
            &mut address,
        );
        if status.is_error() {
            self.print(format_args!(
                "ALLOCSIZE: AllocatePages(16 MiB) = {:#x}\n",
                status.as_usize()
            ));
            return;
        }
        let list = address as usize as *mut u8;
        let packages = (LIST_BYTES - LIST_HEADER) / PACKAGE_HEADER - 1;
        // SAFETY: the pages just allocated hold LIST_BYTES bytes, exactly what a list of
        // `packages` packages and the End package takes.
        unsafe { Self::write_list(list, packages) };
        let mut handle: r_efi::hii::Handle = ptr::null_mut();
        let status = (hii.new_package_list)(hii, list.cast(), self.image, &mut handle);
        self.print(format_args!(
            "ALLOCSIZE: NewPackageList(16 MiB, {packages} packages) = {:#x}\n",
            status.as_usize()
        ));
        if !status.is_error() {
            let _ = (hii.remove_package_list)(hii, handle);
        }
        let _ = (self.bs.free_pages)(address, pages);
    }

    fn huge_pool(&self) {
        let mut buffer: *mut c_void = ptr::null_mut();
        let status = (self.bs.allocate_pool)(efi::LOADER_DATA, 1 << 62, &mut buffer);
        self.print(format_args!(
            "ALLOCSIZE: AllocatePool(2^62 bytes) = {:#x}\n",
            status.as_usize()
        ));
        if !status.is_error() {
            let _ = (self.bs.free_pool)(buffer);
        }
    }

    fn small_package_list(&self, hii: &hii_database::Protocol) {
        let mut bytes = [0u64; 4];
        // SAFETY: `bytes` holds 32 bytes; a list of one package takes 28.
        unsafe { Self::write_list(bytes.as_mut_ptr().cast(), 1) };
        let mut handle: r_efi::hii::Handle = ptr::null_mut();
        let status = (hii.new_package_list)(hii, bytes.as_ptr().cast(), self.image, &mut handle);
        let removed = if status.is_error() {
            efi::Status::NOT_FOUND
        } else {
            (hii.remove_package_list)(hii, handle)
        };
        self.print(format_args!(
            "ALLOCSIZE: NewPackageList(small) = {:#x}, RemovePackageList = {:#x}\n",
            status.as_usize(),
            removed.as_usize()
        ));
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[unsafe(export_name = "efi_main")]
extern "efiapi" fn efi_main(image: efi::Handle, st: *mut efi::SystemTable) -> efi::Status {
    // SAFETY: the firmware passes a valid system table that outlives boot services
    // (UEFI 2.10 §4.1); null is rejected.
    let Some(st) = (unsafe { st.as_ref() }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    // SAFETY: the boot and runtime services pointers of a valid system table are
    // valid while boot services run (§4.3, §4.5); null is rejected.
    let (Some(bs), Some(rt)) = (unsafe { st.boot_services.as_ref() }, unsafe {
        st.runtime_services.as_ref()
    }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    let app = App { image, st, bs };
    if let Some(hii) = app.hii() {
        app.huge_package_list(hii);
        app.huge_pool();
        app.small_package_list(hii);
    }
    app.print(format_args!("ALLOCSIZE: done\n"));
    (rt.reset_system)(
        efi::RESET_SHUTDOWN,
        efi::Status::SUCCESS,
        0,
        ptr::null_mut(),
    );
    efi::Status::SUCCESS
}
