//! The variables that drive the firmware's boot menu, each across a reset, in three runs
//! told apart by a marker variable of this application's own:
//! 1. (no marker) sets OsIndications = EFI_OS_INDICATIONS_BOOT_TO_FW_UI (NV|BS|RT), as
//!    `systemctl reboot --firmware-setup` does (UEFI 2.10 §8.5.4), and PlatformLang to
//!    [`UNLISTED_LANGUAGE`], not one of the firmware's PlatformLangCodes (§3.3), prints
//!    `MENUVARS: firmware UI requested, resetting` and calls ResetSystem(EfiResetCold). The
//!    firmware must stop in its UI (the boot menu), clear the bit and replace the language.
//! 2. (started by the user from that menu) prints `MENUVARS: OsIndications=<hex>` (or
//!    `absent`) and `MENUVARS: PlatformLang=<text>`, sets `Timeout` (§3.3) to [`TIMEOUT_SECONDS`], as `efibootmgr -t` does,
//!    prints `MENUVARS: Timeout set, resetting` and resets. The boot menu must count down
//!    from that many seconds and boot this application on its own.
//! 3. prints `MENUVARS: booted after the countdown`, puts `Timeout` back to 0, removes what
//!    it set, prints `MENUVARS: done` and powers off.
//!
//! Run by `tests/tests/global_variables.rs`.

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
const TIMEOUT: [u16; 8] = ucs2("Timeout");
const PLATFORM_LANG: [u16; 13] = ucs2("PlatformLang");
/// A well-formed RFC 4646 tag no firmware lists ("x-" is the private-use prefix).
const UNLISTED_LANGUAGE: &[u8] = b"x-vmfw\0";
const MARKER: [u16; 13] = ucs2("MenuVarsStep");
/// The boot menu's countdown the second run asks for.
const TIMEOUT_SECONDS: u16 = 3;
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

    fn reset(&self, what: &str) {
        self.print(format_args!("MENUVARS: {what}, resetting\n"));
        (self.rt.reset_system)(
            efi::RESET_COLD,
            efi::Status::SUCCESS,
            0,
            core::ptr::null_mut(),
        );
    }

    /// Sets the marker to `step` and `name` to `data`; false (after a message) on failure.
    fn set_step(&self, step: &[u8], name: &[u16], data: &[u8]) -> bool {
        let marker = self.set(&MARKER, VENDOR, NV_BS_RT, step);
        let variable = self.set(name, GLOBAL_VARIABLE, NV_BS_RT, data);
        if marker.is_error() || variable.is_error() {
            self.print(format_args!(
                "MENUVARS: error SetVariable returned {:#x} / {:#x}\n",
                marker.as_usize(),
                variable.as_usize()
            ));
            return false;
        }
        true
    }

    fn request_firmware_ui(&self) {
        let lang = self.set(&PLATFORM_LANG, GLOBAL_VARIABLE, NV_BS_RT, UNLISTED_LANGUAGE);
        if lang.is_error() {
            self.print(format_args!(
                "MENUVARS: error SetVariable(PlatformLang) returned {:#x}\n",
                lang.as_usize()
            ));
            return;
        }
        if self.set_step(b"fwui", &OS_INDICATIONS, &BOOT_TO_FW_UI.to_le_bytes()) {
            self.reset("firmware UI requested");
        }
    }

    fn report_and_set_timeout(&self) {
        let mut buf = [0u8; 8];
        match self.get(&OS_INDICATIONS, GLOBAL_VARIABLE, &mut buf) {
            Ok(8) => self.print(format_args!(
                "MENUVARS: OsIndications={:#x}\n",
                u64::from_le_bytes(buf)
            )),
            Ok(len) => self.print(format_args!("MENUVARS: OsIndications of {len} bytes\n")),
            Err(efi::Status::NOT_FOUND) => {
                self.print(format_args!("MENUVARS: OsIndications=absent\n"))
            }
            Err(status) => self.print(format_args!(
                "MENUVARS: GetVariable(OsIndications) failed: {:#x}\n",
                status.as_usize()
            )),
        }
        let mut lang = [0u8; 32];
        match self.get(&PLATFORM_LANG, GLOBAL_VARIABLE, &mut lang) {
            Ok(len) => {
                let text = lang[..len].strip_suffix(&[0]).unwrap_or(&lang[..len]);
                let text = core::str::from_utf8(text).unwrap_or("<not UTF-8>");
                self.print(format_args!("MENUVARS: PlatformLang={text}\n"));
            }
            Err(status) => self.print(format_args!(
                "MENUVARS: GetVariable(PlatformLang) failed: {:#x}\n",
                status.as_usize()
            )),
        }
        let _ = self.set(&OS_INDICATIONS, GLOBAL_VARIABLE, 0, &[]);
        if self.set_step(b"timeout", &TIMEOUT, &TIMEOUT_SECONDS.to_le_bytes()) {
            self.reset("Timeout set");
        }
    }

    fn clean_up(&self) {
        self.print(format_args!("MENUVARS: booted after the countdown\n"));
        let _ = self.set(&TIMEOUT, GLOBAL_VARIABLE, NV_BS_RT, &0u16.to_le_bytes());
        let _ = self.set(&MARKER, VENDOR, 0, &[]);
        self.print(format_args!("MENUVARS: done\n"));
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
        Err(efi::Status::NOT_FOUND) => app.request_firmware_ui(),
        Ok(4) if &marker[..4] == b"fwui" => app.report_and_set_timeout(),
        _ => app.clean_up(),
    }
    efi::Status::ABORTED
}
