//! Boot to the firmware UI (UEFI 2.10 §8.5.4), as `systemctl reboot --firmware-setup` asks
//! for it: the first run sets a marker variable of its own and OsIndications =
//! EFI_OS_INDICATIONS_BOOT_TO_FW_UI (NV|BS|RT), prints `OSIND: set, resetting` and calls
//! ResetSystem(EfiResetCold). The firmware must then stop in its UI; when the user starts
//! this application again from there, it prints `OSIND: OsIndications=<hex>` (or
//! `absent`) — the firmware acknowledges the request by clearing the bit — removes what it
//! set, prints `OSIND: done` and powers off. Run by `tests/tests/global_variables.rs`.

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
    0x0d5e_7a11,
    0x4f0e,
    0x4b6a,
    0x9c,
    0x21,
    &[0x6f, 0x73, 0x69, 0x6e, 0x64, 0x31],
);
const OS_INDICATIONS: [u16; 14] = ucs2("OsIndications");
const MARKER: [u16; 15] = ucs2("OsIndTestArmed");
const BOOT_TO_FW_UI: u64 = 1;
const NV_BS_RT: u32 =
    efi::VARIABLE_NON_VOLATILE | efi::VARIABLE_BOOTSERVICE_ACCESS | efi::VARIABLE_RUNTIME_ACCESS;

struct App<'a> {
    st: &'a efi::SystemTable,
    rt: &'a efi::RuntimeServices,
}

impl App<'_> {
    fn print(&self, args: fmt::Arguments) {
        efi_con::print(self.st.con_out, args);
    }

    /// GetVariable into `buf`: the data's length, or the error status.
    fn get(&self, name: &[u16], vendor: efi::Guid, buf: &mut [u8]) -> Result<usize, efi::Status> {
        let mut guid = vendor;
        let mut attributes = 0u32;
        let mut size = buf.len();
        let status = (self.rt.get_variable)(
            name.as_ptr().cast_mut(),
            &mut guid,
            &mut attributes,
            &mut size,
            buf.as_mut_ptr().cast(),
        );
        if status.is_error() {
            Err(status)
        } else {
            Ok(size)
        }
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

    fn arm_and_reset(&self) {
        let marker = self.set(&MARKER, VENDOR, NV_BS_RT, b"armed");
        let request = self.set(
            &OS_INDICATIONS,
            GLOBAL_VARIABLE,
            NV_BS_RT,
            &BOOT_TO_FW_UI.to_le_bytes(),
        );
        if marker.is_error() || request.is_error() {
            self.print(format_args!(
                "OSIND: error SetVariable returned {:#x} / {:#x}\n",
                marker.as_usize(),
                request.as_usize()
            ));
            return;
        }
        self.print(format_args!("OSIND: set, resetting\n"));
        (self.rt.reset_system)(
            efi::RESET_COLD,
            efi::Status::SUCCESS,
            0,
            core::ptr::null_mut(),
        );
    }

    fn report_and_clean_up(&self) {
        let mut buf = [0u8; 8];
        match self.get(&OS_INDICATIONS, GLOBAL_VARIABLE, &mut buf) {
            Ok(8) => self.print(format_args!(
                "OSIND: OsIndications={:#x}\n",
                u64::from_le_bytes(buf)
            )),
            Ok(len) => self.print(format_args!("OSIND: OsIndications of {len} bytes\n")),
            Err(efi::Status::NOT_FOUND) => {
                self.print(format_args!("OSIND: OsIndications=absent\n"))
            }
            Err(status) => self.print(format_args!(
                "OSIND: GetVariable(OsIndications) failed: {:#x}\n",
                status.as_usize()
            )),
        }
        let _ = self.set(&OS_INDICATIONS, GLOBAL_VARIABLE, 0, &[]);
        let _ = self.set(&MARKER, VENDOR, 0, &[]);
        self.print(format_args!("OSIND: done\n"));
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
    let mut marker = [0u8; 16];
    match app.get(&MARKER, VENDOR, &mut marker) {
        Err(efi::Status::NOT_FOUND) => app.arm_and_reset(),
        _ => app.report_and_clean_up(),
    }
    efi::Status::ABORTED
}
