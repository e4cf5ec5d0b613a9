//! Firmware drivers in the UEFI driver model (UEFI 2.10 §11.1). Each driver
//! gets a handle of its own carrying EFI_DRIVER_BINDING_PROTOCOL (§11.1) and
//! EFI_COMPONENT_NAME2_PROTOCOL (§11.5, English only). The drivers are part
//! of the firmware image, which has no image handle, so the binding's
//! ImageHandle and DriverBindingHandle are both the driver's handle; it is
//! also the agent of every protocol the driver opens.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_void;

use efi::handles::HandleId;
use efi::protocol_services as ps;
use platform::sync::Global;
use r_efi::efi::{Guid, Handle, Status};
use r_efi::protocols::driver_binding;
use uefi_raw::protocol::driver::ComponentName2Protocol;

/// EFI_COMPONENT_NAME2_PROTOCOL_GUID 6A7A5CFF-E8D9-4F70-BADA-75AB3025CE14 (§11.5).
pub const COMPONENT_NAME2_GUID: Guid = Guid::from_fields(
    0x6a7a_5cff,
    0xe8d9,
    0x4f70,
    0xba,
    0xda,
    &[0x75, 0xab, 0x30, 0x25, 0xce, 0x14],
);

/// RFC 4646 language codes, NUL-terminated (§11.5 SupportedLanguages).
static LANGUAGES: [u8; 3] = *b"en\0";
/// Longest language code read from a caller.
const MAX_LANGUAGE: usize = 64;

/// What a firmware driver provides.
pub struct DriverInfo {
    /// GetDriverName's answer.
    pub name: &'static str,
    /// Orders drivers for ConnectController, highest first (§11.1).
    pub version: u32,
    pub supported: driver_binding::ProtocolSupported,
    pub start: driver_binding::ProtocolStart,
    pub stop: driver_binding::ProtocolStop,
    pub controller_name: ControllerNameFn,
}

/// GetControllerName's answer for a controller (or `child` of it); None
/// when the driver does not manage them.
pub type ControllerNameFn = fn(controller: HandleId, child: Option<HandleId>) -> Option<String>;

struct Registered {
    /// Address of the driver's EFI_COMPONENT_NAME2_PROTOCOL instance.
    component_name: usize,
    driver_name: usize,
    controller_name: ControllerNameFn,
}

/// The registered drivers, looked up by the `This` value callers pass, so a
/// foreign pointer is never dereferenced.
static DRIVERS: Global<Vec<Registered>> = Global::new(Vec::new());

/// Every name handed out, NUL-terminated UCS-2. Callers keep the pointers
/// (§11.5 returns them without a way to free them), so names are kept for
/// good; a name repeats when asked again, so the list stays small.
static NAMES: Global<Vec<Box<[u16]>>> = Global::new(Vec::new());

/// The address of a kept copy of `name` as NUL-terminated UCS-2.
fn intern(name: &str) -> usize {
    let units: Vec<u16> = name.encode_utf16().chain([0]).collect();
    NAMES.with(|names| {
        if let Some(kept) = names.iter().find(|n| n[..] == units[..]) {
            return kept.as_ptr() as usize;
        }
        let kept = units.into_boxed_slice();
        let address = kept.as_ptr() as usize;
        names.push(kept);
        address
    })
}

/// Creates the driver's handle with its two protocols; returns the handle.
pub fn register(info: DriverInfo) -> Result<HandleId, Status> {
    let handle = ps::new_handle();
    let binding = Box::leak(Box::new(driver_binding::Protocol {
        supported: info.supported,
        start: info.start,
        stop: info.stop,
        version: info.version,
        image_handle: handle as Handle,
        driver_binding_handle: handle as Handle,
    }));
    let names = Box::leak(Box::new(ComponentName2Protocol {
        get_driver_name,
        get_controller_name,
        supported_languages: LANGUAGES.as_ptr(),
    }));
    let component_name = names as *mut ComponentName2Protocol;
    let driver_name = intern(info.name);
    DRIVERS.with(|drivers| {
        drivers.push(Registered {
            component_name: component_name as usize,
            driver_name,
            controller_name: info.controller_name,
        })
    });
    let binding: *mut driver_binding::Protocol = binding;
    ps::install(
        Some(handle),
        &[
            (driver_binding::PROTOCOL_GUID, binding.cast::<c_void>()),
            (COMPONENT_NAME2_GUID, component_name.cast::<c_void>()),
        ],
    )
}

/// Whether the caller's language is one we speak ("en", §11.5: it must be
/// one of SupportedLanguages).
fn language_supported(language: *const u8) -> Result<bool, Status> {
    let mut code = Vec::new();
    for i in 0..MAX_LANGUAGE {
        let byte = efi::boundary::read(language.wrapping_add(i))?;
        if byte == 0 {
            return Ok(code == b"en");
        }
        code.push(byte);
    }
    Ok(false)
}

/// uefi-raw's spelling of a status (its protocol tables use it).
fn raw(status: Status) -> uefi_raw::Status {
    uefi_raw::Status(status.as_usize())
}

fn registered(this: *const ComponentName2Protocol) -> Option<(usize, ControllerNameFn)> {
    DRIVERS.with(|drivers| {
        drivers
            .iter()
            .find(|d| d.component_name == this as usize)
            .map(|d| (d.driver_name, d.controller_name))
    })
}

unsafe extern "efiapi" fn get_driver_name(
    this: *const ComponentName2Protocol,
    language: *const u8,
    driver_name: *mut *const u16,
) -> uefi_raw::Status {
    let result = (|| {
        let (name, _) = registered(this).ok_or(Status::INVALID_PARAMETER)?;
        if language.is_null() || driver_name.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        if !language_supported(language)? {
            return Err(Status::UNSUPPORTED);
        }
        efi::boundary::write(driver_name, name as *const u16)
    })();
    raw(efi::boundary::status(result))
}

unsafe extern "efiapi" fn get_controller_name(
    this: *const ComponentName2Protocol,
    controller: uefi_raw::Handle,
    child: uefi_raw::Handle,
    language: *const u8,
    controller_name: *mut *const u16,
) -> uefi_raw::Status {
    let result = (|| {
        let (_, name_of) = registered(this).ok_or(Status::INVALID_PARAMETER)?;
        if controller.is_null() || language.is_null() || controller_name.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        if !language_supported(language)? {
            return Err(Status::UNSUPPORTED);
        }
        let child = (!child.is_null()).then_some(child as HandleId);
        let name = name_of(controller as HandleId, child).ok_or(Status::UNSUPPORTED)?;
        efi::boundary::write(controller_name, intern(&name) as *const u16)
    })();
    raw(efi::boundary::status(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_name2_guid_matches_the_spec() {
        assert_eq!(
            *COMPONENT_NAME2_GUID.as_bytes(),
            ComponentName2Protocol::GUID.to_bytes()
        );
    }

    fn names(controller: HandleId, child: Option<HandleId>) -> Option<String> {
        match (controller, child) {
            (0x10, None) => Some(String::from("Disk")),
            (0x10, Some(0x20)) => Some(String::from("Partition 1")),
            _ => None,
        }
    }

    fn text(ptr: *const u16) -> String {
        let units = efi::boundary::ucs2(ptr, 100).unwrap();
        String::from_utf16(&units).unwrap()
    }

    #[test]
    fn component_name_answers_in_english_only() {
        let protocol = Box::leak(Box::new(ComponentName2Protocol {
            get_driver_name,
            get_controller_name,
            supported_languages: LANGUAGES.as_ptr(),
        }));
        let this: *const ComponentName2Protocol = protocol;
        DRIVERS.with(|d| {
            d.push(Registered {
                component_name: this as usize,
                driver_name: intern("Test driver"),
                controller_name: names,
            })
        });
        let en = c"en".as_ptr().cast();
        let mut out: *const u16 = core::ptr::null();
        // SAFETY: calls with valid arguments, as a caller would make them.
        unsafe {
            assert_eq!(get_driver_name(this, en, &mut out), raw(Status::SUCCESS));
            assert_eq!(text(out), "Test driver");
            assert_eq!(
                get_driver_name(this, c"fr".as_ptr().cast(), &mut out),
                raw(Status::UNSUPPORTED)
            );
            assert_eq!(
                get_driver_name(core::ptr::null(), en, &mut out),
                raw(Status::INVALID_PARAMETER)
            );
            let disk = 0x10 as uefi_raw::Handle;
            let none = core::ptr::null_mut();
            assert_eq!(
                get_controller_name(this, disk, none, en, &mut out),
                raw(Status::SUCCESS)
            );
            assert_eq!(text(out), "Disk");
            let first = out;
            assert_eq!(
                get_controller_name(this, disk, 0x20 as uefi_raw::Handle, en, &mut out),
                raw(Status::SUCCESS)
            );
            assert_eq!(text(out), "Partition 1");
            assert_eq!(
                get_controller_name(this, 0x30 as uefi_raw::Handle, none, en, &mut out),
                raw(Status::UNSUPPORTED)
            );
            assert_eq!(
                get_controller_name(this, none, none, en, &mut out),
                raw(Status::INVALID_PARAMETER)
            );
            // The same name comes back at the same address.
            assert_eq!(
                get_controller_name(this, disk, none, en, &mut out),
                raw(Status::SUCCESS)
            );
            assert_eq!(out, first);
        }
    }
}
