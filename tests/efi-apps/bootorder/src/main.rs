//! A hostile BootOrder across a reset (issue 18), in two runs told apart by a marker
//! variable of this application's own:
//! 1. (no marker) sets BootOrder (UEFI 2.10 §3.3) to [`REPEATS`] copies of an option that
//!    does not exist, `Boot7A7A`, prints `BOOTORDER: hostile BootOrder set, resetting` and calls
//!    ResetSystem(EfiResetCold). The firmware's boot manager must walk it once per option
//!    (one warning, not one per entry), then boot this application again from the
//!    removable-media path.
//! 2. prints `BOOTORDER: booted again`, deletes BootOrder (the firmware makes a new one at
//!    its next start) and the marker, prints `BOOTORDER: done` and powers off.
//!
//! Run by `tests/tests/hostile.rs`.

#![no_std]
#![no_main]

use core::ffi::c_void;
use core::fmt;

use r_efi::efi;

use efi_con::ucs2;

/// EFI_GLOBAL_VARIABLE (§3.3).
const GLOBAL_VARIABLE: efi::Guid = efi::Guid::from_fields(
    0x8be4df61,
    0x93ca,
    0x11d2,
    0xaa,
    0x0d,
    &[0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);
/// The marker's vendor: this application's own.
const VENDOR: efi::Guid = efi::Guid::from_fields(
    0x4b7e_0a9d,
    0x51c2,
    0x4e07,
    0x93,
    0x1f,
    &[0x62, 0x6f, 0x6f, 0x74, 0x6f, 0x72],
);
const BOOT_ORDER: [u16; 10] = ucs2("BootOrder");
const MARKER: [u16; 15] = ucs2("BootOrderSteps");
/// Entries of the hostile BootOrder: 60,000 bytes, under the 64 KiB a variable may hold.
const REPEATS: usize = 30_000;
const MISSING_OPTION: u16 = 0x7a7a;
const NV_BS_RT: u32 =
    efi::VARIABLE_NON_VOLATILE | efi::VARIABLE_BOOTSERVICE_ACCESS | efi::VARIABLE_RUNTIME_ACCESS;

/// The hostile BootOrder's bytes; static, the app's stack being small.
static HOSTILE: [u8; REPEATS * 2] = {
    let mut bytes = [0u8; REPEATS * 2];
    let le = MISSING_OPTION.to_le_bytes();
    let mut i = 0;
    while i < REPEATS {
        bytes[2 * i] = le[0];
        bytes[2 * i + 1] = le[1];
        i += 1;
    }
    bytes
};

struct App<'a> {
    st: &'a efi::SystemTable,
    rt: &'a efi::RuntimeServices,
}

impl App<'_> {
    fn print(&self, args: fmt::Arguments) {
        efi_con::print(self.st.con_out, args);
    }

    /// SetVariable; empty `data` with no attributes deletes.
    fn set(&self, name: &[u16], vendor: efi::Guid, attributes: u32, data: &[u8]) -> efi::Status {
        let mut guid = vendor;
        (self.rt.set_variable)(
            name.as_ptr().cast_mut(),
            &mut guid,
            attributes,
            data.len(),
            data.as_ptr().cast_mut().cast::<c_void>(),
        )
    }

    fn marker_present(&self) -> bool {
        let mut guid = VENDOR;
        let mut attributes = 0u32;
        let mut buf = [0u8; 8];
        let mut size = buf.len();
        let status = (self.rt.get_variable)(
            MARKER.as_ptr().cast_mut(),
            &mut guid,
            &mut attributes,
            &mut size,
            buf.as_mut_ptr().cast(),
        );
        !status.is_error()
    }

    fn set_hostile_boot_order(&self) {
        let marker = self.set(&MARKER, VENDOR, NV_BS_RT, b"1");
        let order = self.set(&BOOT_ORDER, GLOBAL_VARIABLE, NV_BS_RT, &HOSTILE);
        if marker.is_error() || order.is_error() {
            self.print(format_args!(
                "BOOTORDER: error SetVariable returned {:#x} / {:#x}\n",
                marker.as_usize(),
                order.as_usize()
            ));
            return;
        }
        self.print(format_args!(
            "BOOTORDER: hostile BootOrder set, resetting\n"
        ));
        (self.rt.reset_system)(
            efi::RESET_COLD,
            efi::Status::SUCCESS,
            0,
            core::ptr::null_mut(),
        );
    }

    fn clean_up(&self) {
        self.print(format_args!("BOOTORDER: booted again\n"));
        let _ = self.set(&BOOT_ORDER, GLOBAL_VARIABLE, 0, &[]);
        let _ = self.set(&MARKER, VENDOR, 0, &[]);
        self.print(format_args!("BOOTORDER: done\n"));
        (self.rt.reset_system)(
            efi::RESET_SHUTDOWN,
            efi::Status::SUCCESS,
            0,
            core::ptr::null_mut(),
        );
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[unsafe(export_name = "efi_main")]
extern "efiapi" fn efi_main(_image: efi::Handle, st: *mut efi::SystemTable) -> efi::Status {
    // SAFETY: the firmware passes a valid system table that outlives boot services
    // (UEFI 2.10 §4.1); null is rejected.
    let Some(st) = (unsafe { st.as_ref() }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    // SAFETY: the runtime services table pointer of a valid system table is valid
    // (UEFI 2.10 §4.5); null is rejected.
    let Some(rt) = (unsafe { st.runtime_services.as_ref() }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    let app = App { st, rt };
    if app.marker_present() {
        app.clean_up();
    } else {
        app.set_hostile_boot_order();
    }
    efi::Status::ABORTED
}
