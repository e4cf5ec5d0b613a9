//! The smallest application that shows it ran: prints
//! `HELLO: running, ImageSize=<bytes> LoadOptions=<text>` from its own
//! EFI_LOADED_IMAGE_PROTOCOL (UEFI 2.10 §9.1), then powers off with
//! ResetSystem(EfiResetShutdown). `tests/tests/big_files.rs` appends
//! 100 MiB of data to it: the image size it prints stays the PE's own.

#![no_std]
#![no_main]

use core::ffi::c_void;

use r_efi::efi;
use r_efi::protocols::loaded_image;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// The LoadOptions as text: UCS-2 up to the first NUL, '?' for what is not ASCII.
fn print_options(st: &efi::SystemTable, image: &loaded_image::Protocol) {
    let units = image.load_options_size as usize / 2;
    let options = image.load_options as *const u16;
    for i in 0..units.min(256) {
        if options.is_null() {
            break;
        }
        // SAFETY: LoadOptions holds LoadOptionsSize bytes (§9.1); i < size / 2.
        let unit = unsafe { options.add(i).read_unaligned() };
        if unit == 0 {
            break;
        }
        let c = char::from_u32(u32::from(unit))
            .filter(char::is_ascii)
            .unwrap_or('?');
        efi_con::print(st.con_out, format_args!("{c}"));
    }
}

#[unsafe(export_name = "efi_main")]
extern "efiapi" fn efi_main(handle: efi::Handle, st: *mut efi::SystemTable) -> efi::Status {
    // SAFETY: the firmware passes a valid system table that outlives boot services
    // (UEFI 2.10 §4.1); null is rejected.
    let Some(st) = (unsafe { st.as_ref() }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    // SAFETY: the boot and runtime services pointers of a valid system table are
    // valid (UEFI 2.10 §4.4, §4.5); null is rejected.
    let (Some(bs), Some(rt)) = (unsafe { st.boot_services.as_ref() }, unsafe {
        st.runtime_services.as_ref()
    }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    let mut guid = loaded_image::PROTOCOL_GUID;
    let mut interface: *mut c_void = core::ptr::null_mut();
    let status = (bs.handle_protocol)(handle, &mut guid, &mut interface);
    // SAFETY: HandleProtocol succeeded, so `interface` is this image's
    // LoadedImage protocol, valid while it runs.
    match unsafe { (interface as *const loaded_image::Protocol).as_ref() } {
        Some(image) if !status.is_error() => {
            efi_con::print(
                st.con_out,
                format_args!(
                    "HELLO: running, ImageSize={} LoadOptions=",
                    image.image_size
                ),
            );
            print_options(st, image);
            efi_con::print(st.con_out, format_args!("\n"));
        }
        _ => efi_con::print(
            st.con_out,
            format_args!(
                "HELLO: running, no LoadedImage ({:#x})\n",
                status.as_usize()
            ),
        ),
    }
    (rt.reset_system)(
        efi::RESET_SHUTDOWN,
        efi::Status::SUCCESS,
        0,
        core::ptr::null_mut(),
    );
    efi::Status::ABORTED
}
