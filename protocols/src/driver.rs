//! Firmware drivers in the UEFI driver model (UEFI 2.10 §11.1). Each driver
//! gets a handle of its own carrying EFI_DRIVER_BINDING_PROTOCOL (§11.1) and
//! EFI_COMPONENT_NAME2_PROTOCOL (§11.5, English only). The drivers are part
//! of the firmware image; each is also an image of the firmware volume
//! (`efi::driver_images`): its handle carries LoadedImage with
//! `FvFile(<its file GUID>)`, so the binding's ImageHandle and
//! DriverBindingHandle are both the driver's handle, as for most edk2
//! drivers, and the Shell names the image from the volume. The handle is
//! also the agent of every protocol the driver opens.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_void;

use efi::ids::{HandleId, Interface};
use efi::protocol_services as ps;
use platform::sync::Global;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::driver::{ComponentName2Protocol, DriverBindingProtocol};
use uefi_raw::{Guid, Handle, Status};

/// EFI_DRIVER_BINDING_PROTOCOL.Supported and .Start (§11.1.1, §11.1.2).
pub type BindingFn = unsafe extern "efiapi" fn(
    this: *const DriverBindingProtocol,
    controller: Handle,
    remaining_device_path: *const DevicePathProtocol,
) -> Status;
/// EFI_DRIVER_BINDING_PROTOCOL.Stop (§11.1.3).
pub type StopFn = unsafe extern "efiapi" fn(
    this: *const DriverBindingProtocol,
    controller: Handle,
    number_of_children: usize,
    child_handle_buffer: *const Handle,
) -> Status;

/// RFC 4646 language codes, NUL-terminated (§11.5 SupportedLanguages).
static LANGUAGES: [u8; 3] = *b"en\0";
/// Longest language code read from a caller.
const MAX_LANGUAGE: usize = 64;

/// What a firmware driver provides.
pub struct DriverInfo {
    /// GetDriverName's answer.
    pub name: &'static str,
    /// Its file in the firmware volume: the FvFile() GUID of its
    /// LoadedImage.FilePath and the name its user-interface section holds
    /// (the Shell's IMAGE NAME).
    pub image_file: Guid,
    pub image_name: &'static str,
    /// Orders drivers for ConnectController, highest first (§11.1).
    pub version: u32,
    pub supported: BindingFn,
    pub start: BindingFn,
    pub stop: StopFn,
    pub controller_name: ControllerNameFn,
}

/// GetControllerName's answer for a controller (or `child` of it); None
/// when the driver does not manage them.
pub type ControllerNameFn = fn(controller: HandleId, child: Option<HandleId>) -> Option<String>;

struct Registered {
    /// The driver's EFI_COMPONENT_NAME2_PROTOCOL instance.
    component_name: Interface,
    driver_name: usize,
    controller_name: ControllerNameFn,
}

/// The registered drivers, looked up by the `This` value callers pass, so a
/// foreign pointer is never dereferenced.
static DRIVERS: Global<Vec<Registered>> = Global::new(Vec::new());

/// The ComponentName2 instance of each image name (`name_image`), by the
/// interned name's address.
static IMAGE_NAMES: Global<Vec<(usize, Interface)>> = Global::new(Vec::new());

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
    let binding = Box::leak(Box::new(DriverBindingProtocol {
        supported: info.supported,
        start: info.start,
        stop: info.stop,
        version: info.version,
        image_handle: handle.as_raw(),
        driver_binding_handle: handle.as_raw(),
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
            component_name: Interface::from_ptr(component_name),
            driver_name,
            controller_name: info.controller_name,
        })
    });
    let binding: *mut DriverBindingProtocol = binding;
    ps::install(
        Some(handle),
        &[
            (DriverBindingProtocol::GUID, binding.cast::<c_void>()),
            (
                ComponentName2Protocol::GUID,
                component_name.cast::<c_void>(),
            ),
        ],
    )?;
    efi::driver_images::register_driver_image(handle, info.image_file, info.image_name)?;
    Ok(handle)
}

/// Names an image handle that is no driver (a built-in application,
/// `efi::builtin_images`): installs on it EFI_COMPONENT_NAME2_PROTOCOL whose
/// GetDriverName answers `name` (§11.5; GetControllerName: UNSUPPORTED, it
/// manages no controller), which the Shell's `dh` shows for the handle.
/// Handles of the same name share one instance, so loading an image again
/// allocates nothing new.
pub fn name_image(image: HandleId, name: &'static str) {
    let driver_name = intern(name);
    let existing = IMAGE_NAMES.with(|names| {
        names
            .iter()
            .find(|(kept, _)| *kept == driver_name)
            .map(|&(_, component_name)| component_name)
    });
    let component_name = existing.unwrap_or_else(|| {
        let names: *mut ComponentName2Protocol = Box::leak(Box::new(ComponentName2Protocol {
            get_driver_name,
            get_controller_name,
            supported_languages: LANGUAGES.as_ptr(),
        }));
        let component_name = Interface::from_ptr(names);
        DRIVERS.with(|drivers| {
            drivers.push(Registered {
                component_name,
                driver_name,
                controller_name: no_controllers,
            })
        });
        IMAGE_NAMES.with(|names| names.push((driver_name, component_name)));
        component_name
    });
    let interface = component_name.as_exposed_ptr::<c_void>();
    if let Err(status) = ps::install(Some(image), &[(ComponentName2Protocol::GUID, interface)]) {
        log::warn!("cannot name image {name}: {status:?}");
    }
}

/// The controller names of an image that manages none.
fn no_controllers(_: HandleId, _: Option<HandleId>) -> Option<String> {
    None
}

/// Whether the caller's language is one we speak ("en", §11.5: it must be
/// one of SupportedLanguages).
///
/// # Safety
/// `language` is null or a NUL-terminated ASCII string (§11.5).
unsafe fn language_supported(language: *const u8) -> Result<bool, Status> {
    let mut code = Vec::new();
    for i in 0..MAX_LANGUAGE {
        // SAFETY: we stop at the string's NUL, as the contract allows.
        let byte = unsafe { efi::boundary::read(language.wrapping_add(i)) }?;
        if byte == 0 {
            return Ok(code == b"en");
        }
        code.push(byte);
    }
    Ok(false)
}

fn registered(this: *const ComponentName2Protocol) -> Option<(usize, ControllerNameFn)> {
    DRIVERS.with(|drivers| {
        drivers
            .iter()
            .find(|d| d.component_name == Interface::from_ptr(this))
            .map(|d| (d.driver_name, d.controller_name))
    })
}

/// GetDriverName (§11.5.1).
///
/// # Safety
/// `language` and `driver_name` as UEFI 2.10 §11.5.1 requires: null or a
/// NUL-terminated language code and a writable pointer slot. `this` is only
/// compared, never dereferenced.
unsafe extern "efiapi" fn get_driver_name(
    this: *const ComponentName2Protocol,
    language: *const u8,
    driver_name: *mut *const u16,
) -> Status {
    let result = (|| {
        let (name, _) = registered(this).ok_or(Status::INVALID_PARAMETER)?;
        if language.is_null() || driver_name.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        // SAFETY: the caller's string, as this function's # Safety requires.
        if !unsafe { language_supported(language) }? {
            return Err(Status::UNSUPPORTED);
        }
        // SAFETY: the caller's slot, as this function's # Safety requires.
        unsafe { efi::boundary::write(driver_name, name as *const u16) }
    })();
    efi::boundary::status(result)
}

/// GetControllerName (§11.5.2).
///
/// # Safety
/// `language` and `controller_name` as UEFI 2.10 §11.5.2 requires (see
/// [`get_driver_name`]); handles are only compared.
unsafe extern "efiapi" fn get_controller_name(
    this: *const ComponentName2Protocol,
    controller: Handle,
    child: Handle,
    language: *const u8,
    controller_name: *mut *const u16,
) -> Status {
    let result = (|| {
        let (_, name_of) = registered(this).ok_or(Status::INVALID_PARAMETER)?;
        if controller.is_null() || language.is_null() || controller_name.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        // SAFETY: the caller's string, as this function's # Safety requires.
        if !unsafe { language_supported(language) }? {
            return Err(Status::UNSUPPORTED);
        }
        let child = (!child.is_null()).then_some(HandleId::from_raw(child));
        let name = name_of(HandleId::from_raw(controller), child).ok_or(Status::UNSUPPORTED)?;
        // SAFETY: the caller's slot, as this function's # Safety requires.
        unsafe { efi::boundary::write(controller_name, intern(&name) as *const u16) }
    })();
    efi::boundary::status(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(controller: HandleId, child: Option<HandleId>) -> Option<String> {
        match (controller.value(), child.map(HandleId::value)) {
            (0x10, None) => Some(String::from("Disk")),
            (0x10, Some(0x20)) => Some(String::from("Partition 1")),
            _ => None,
        }
    }

    fn text(ptr: *const u16) -> String {
        // SAFETY: names the protocol returned are NUL-terminated.
        let units = unsafe { efi::boundary::ucs2(ptr, 100) }.unwrap();
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
                component_name: Interface::from_ptr(this),
                driver_name: intern("Test driver"),
                controller_name: names,
            })
        });
        let en = c"en".as_ptr().cast();
        let mut out: *const u16 = core::ptr::null();
        // SAFETY: calls with valid arguments, as a caller would make them.
        unsafe {
            assert_eq!(get_driver_name(this, en, &mut out), Status::SUCCESS);
            assert_eq!(text(out), "Test driver");
            assert_eq!(
                get_driver_name(this, c"fr".as_ptr().cast(), &mut out),
                Status::UNSUPPORTED
            );
            assert_eq!(
                get_driver_name(core::ptr::null(), en, &mut out),
                Status::INVALID_PARAMETER
            );
            let disk = 0x10 as Handle;
            let none = core::ptr::null_mut();
            assert_eq!(
                get_controller_name(this, disk, none, en, &mut out),
                Status::SUCCESS
            );
            assert_eq!(text(out), "Disk");
            let first = out;
            assert_eq!(
                get_controller_name(this, disk, 0x20 as Handle, en, &mut out),
                Status::SUCCESS
            );
            assert_eq!(text(out), "Partition 1");
            assert_eq!(
                get_controller_name(this, 0x30 as Handle, none, en, &mut out),
                Status::UNSUPPORTED
            );
            assert_eq!(
                get_controller_name(this, none, none, en, &mut out),
                Status::INVALID_PARAMETER
            );
            // The same name comes back at the same address.
            assert_eq!(
                get_controller_name(this, disk, none, en, &mut out),
                Status::SUCCESS
            );
            assert_eq!(out, first);
        }
    }
}
