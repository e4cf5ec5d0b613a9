//! UEFI variable persistence test application (UEFI 2.10 §8.2).
//!
//! Reads `VmfwPersist` (NON_VOLATILE|BS|RT) and `VmfwVolatile` (BS|RT) under [`VENDOR`]:
//! - neither present (first boot): prints `VARSET: first boot`, the QueryVariableInfo figures
//!   and the status of an authenticated SetVariable, sets both variables, prints
//!   `VARSET: set, resetting` and calls ResetSystem(EfiResetWarm);
//! - otherwise: prints `VARSET: nv attributes=<hex> data=<text>` (or `VARSET: nv=absent`) and
//!   `VARSET: volatile=absent` or `VARSET: volatile=present`, then `VARSET: done` and powers
//!   off with ResetSystem(EfiResetShutdown).
//!
//! The host test (tests/tests/nvram.rs) reboots the guest and checks what survived.

#![no_std]
#![no_main]

use core::ffi::c_void;
use core::fmt;

use r_efi::efi;

use efi_con::ucs2;

const VENDOR: efi::Guid = efi::Guid::from_fields(
    0x3c1d_9e57,
    0x2a4b,
    0x4f11,
    0x8e,
    0x42,
    &[0x76, 0x6d, 0x66, 0x77, 0x76, 0x61],
);
const PERSIST_NAME: [u16; 12] = ucs2("VmfwPersist");
const VOLATILE_NAME: [u16; 13] = ucs2("VmfwVolatile");
const AUTH_NAME: [u16; 9] = ucs2("VmfwAuth");
const PERSIST_DATA: &[u8] = b"survives-reset";
const VOLATILE_DATA: &[u8] = b"ram-only";
const NV_BS_RT: u32 =
    efi::VARIABLE_NON_VOLATILE | efi::VARIABLE_BOOTSERVICE_ACCESS | efi::VARIABLE_RUNTIME_ACCESS;
const BS_RT: u32 = efi::VARIABLE_BOOTSERVICE_ACCESS | efi::VARIABLE_RUNTIME_ACCESS;

struct App<'a> {
    st: &'a efi::SystemTable,
    rt: &'a efi::RuntimeServices,
}

impl App<'_> {
    fn print(&self, args: fmt::Arguments) {
        efi_con::print(self.st.con_out, args);
    }

    /// GetVariable into `buf`: the attributes and length, or the error status.
    fn get(&self, name: &[u16], buf: &mut [u8]) -> Result<(u32, usize), efi::Status> {
        let mut guid = VENDOR;
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
            Ok((attributes, size))
        }
    }

    fn set(&self, name: &[u16], attributes: u32, data: &[u8]) -> efi::Status {
        let mut guid = VENDOR;
        (self.rt.set_variable)(
            name.as_ptr().cast_mut(),
            &mut guid,
            attributes,
            data.len(),
            data.as_ptr().cast_mut().cast::<c_void>(),
        )
    }

    fn first_boot(&self) {
        self.print(format_args!("VARSET: first boot\n"));
        let (mut maximum, mut remaining, mut largest) = (0u64, 0u64, 0u64);
        let status =
            (self.rt.query_variable_info)(NV_BS_RT, &mut maximum, &mut remaining, &mut largest);
        self.print(format_args!(
            "VARSET: query status={:#x} maximum={maximum} remaining={remaining} largest={largest}\n",
            status.as_usize()
        ));
        let auth = self.set(
            &AUTH_NAME,
            NV_BS_RT | efi::VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
            &[0; 64],
        );
        self.print(format_args!(
            "VARSET: authenticated status={:#x}\n",
            auth.as_usize()
        ));
        let persist = self.set(&PERSIST_NAME, NV_BS_RT, PERSIST_DATA);
        let volatile = self.set(&VOLATILE_NAME, BS_RT, VOLATILE_DATA);
        if persist.is_error() || volatile.is_error() {
            self.print(format_args!(
                "VARSET: error SetVariable returned {:#x} / {:#x}\n",
                persist.as_usize(),
                volatile.as_usize()
            ));
            return;
        }
        self.print(format_args!("VARSET: set, resetting\n"));
        (self.rt.reset_system)(
            efi::RESET_WARM,
            efi::Status::SUCCESS,
            0,
            core::ptr::null_mut(),
        );
    }

    fn later_boot(&self, persisted: Result<(u32, usize), efi::Status>, buf: &[u8]) {
        match persisted {
            Ok((attributes, len)) => {
                let text = core::str::from_utf8(&buf[..len]).unwrap_or("<not utf-8>");
                self.print(format_args!(
                    "VARSET: nv attributes={attributes:#x} data={text}\n"
                ));
            }
            Err(_) => self.print(format_args!("VARSET: nv=absent\n")),
        }
        let mut other = [0u8; 64];
        let volatile = match self.get(&VOLATILE_NAME, &mut other) {
            Ok(_) => "present",
            Err(_) => "absent",
        };
        self.print(format_args!("VARSET: volatile={volatile}\n"));
        self.print(format_args!("VARSET: done\n"));
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
    let mut buf = [0u8; 64];
    let persisted = app.get(&PERSIST_NAME, &mut buf);
    let mut other = [0u8; 64];
    let volatile = app.get(&VOLATILE_NAME, &mut other);
    if persisted == Err(efi::Status::NOT_FOUND) && volatile == Err(efi::Status::NOT_FOUND) {
        app.first_boot();
    } else {
        app.later_boot(persisted, &buf);
    }
    efi::Status::ABORTED
}
