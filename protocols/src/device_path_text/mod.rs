//! Device paths as text (UEFI 2.10 §10.6): EFI_DEVICE_PATH_TO_TEXT_PROTOCOL
//! (§10.6.2) and EFI_DEVICE_PATH_FROM_TEXT_PROTOCOL (§10.6.3) over the node
//! forms of §10.6.1.
//!
//! - [`syntax`]: numbers, GUIDs, hex strings, EISA ids, IP addresses;
//! - [`layouts`]: the fixed-size nodes, described as data and used by both
//!   directions;
//! - [`nodes`], [`messaging`]: the nodes with variable or enumerated fields;
//! - [`to_text`], [`from_text`]: the two conversions. A node is written in
//!   its specific form only when that text reads back as the same bytes,
//!   else in the generic `Path(type,subtype,data)` form;
//! - this file: the protocol entry points, which return NUL-terminated
//!   UCS-2 text or device paths in pool memory the caller frees with
//!   FreePool, and NULL for NULL or malformed input.

use alloc::string::String;
use core::ffi::c_void;

use uefi_raw::protocol::device_path::{
    DevicePathFromTextProtocol, DevicePathProtocol as DevicePath, DevicePathToTextProtocol,
    DeviceType,
};
use uefi_raw::{Boolean, Char16, Status};

use crate::device_path::Node;
use crate::device_path_utilities::to_pool;
use crate::ucs2::nul_terminated_bytes;

mod from_text;
mod layouts;
mod messaging;
mod nodes;
mod syntax;
mod to_text;

pub use from_text::{text_to_node, text_to_path};
pub use syntax::parse_guid;

const TYPE_HARDWARE: u8 = DeviceType::HARDWARE.0;
const TYPE_ACPI: u8 = DeviceType::ACPI.0;
const TYPE_MESSAGING: u8 = DeviceType::MESSAGING.0;
const TYPE_MEDIA: u8 = DeviceType::MEDIA.0;
const TYPE_BBS: u8 = DeviceType::BIOS_BOOT_SPEC.0;

/// The two flags of the to-text functions (§10.6.2).
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Shorter text that need not read back (e.g. `IPv4(remote)`).
    pub display_only: bool,
    /// Shortcut forms, "which use information other than the type or
    /// subtype" (§10.6.2): the vendor messaging nodes named after their
    /// GUID (`VenPcAnsi()`, `UartFlowCtrl(...)`, `SAS(...)`...) instead of
    /// `VenMsg(GUID,data)`. The spec does not list the shortcuts; its
    /// tables give `PciRoot(UID)`, `UsbHID(...)`, `VirtualDisk(...)` as the
    /// text of those nodes, EDK2 writes them whatever the flag and shells
    /// that pass FALSE expect them, so they are not treated as shortcuts.
    pub allow_shortcuts: bool,
}

/// The text of a path: the full, shortcut form.
pub fn path_to_text(path: &[u8]) -> Option<String> {
    to_text::path_text(
        path,
        Options {
            display_only: false,
            allow_shortcuts: true,
        },
    )
}

/// The text of one node given as bytes (header included); None when the
/// header is short or its length runs past `bytes`.
pub fn node_text(bytes: &[u8], options: Options) -> Option<String> {
    let length = usize::from(platform::le::u16_at(bytes, 2)?);
    let data = bytes.get(4..length)?;
    let node = Node {
        node_type: bytes[0],
        sub_type: bytes[1],
        data,
    };
    Some(to_text::node_text(&node, options))
}

fn options(display_only: Boolean, allow_shortcuts: Boolean) -> Options {
    Options {
        display_only: display_only.into(),
        allow_shortcuts: allow_shortcuts.into(),
    }
}

/// Longest text accepted from a caller.
const MAX_TEXT: usize = 1 << 16;

/// The caller's text, None when null, unterminated or not valid UCS-2.
///
/// # Safety
/// `text` is null or a NUL-terminated UCS-2 string.
unsafe fn caller_text(text: *const Char16) -> Option<alloc::string::String> {
    // SAFETY: this function's contract.
    let units = unsafe { efi::boundary::ucs2(text, MAX_TEXT) }.ok()?;
    char::decode_utf16(units).collect::<Result<_, _>>().ok()
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.6 requires of the caller.
unsafe extern "efiapi" fn convert_text_to_device_node(text: *const Char16) -> *mut DevicePath {
    // SAFETY: the caller's text, as this function's # Safety requires.
    match unsafe { caller_text(text) }
        .as_deref()
        .and_then(text_to_node)
    {
        Some(node) => to_pool(&node).cast(),
        None => core::ptr::null_mut(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.6 requires of the caller.
unsafe extern "efiapi" fn convert_text_to_device_path(text: *const Char16) -> *mut DevicePath {
    // SAFETY: the caller's text, as this function's # Safety requires.
    match unsafe { caller_text(text) }
        .as_deref()
        .and_then(text_to_path)
    {
        Some(path) => to_pool(&path).cast(),
        None => core::ptr::null_mut(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.6 requires of the caller.
unsafe extern "efiapi" fn convert_device_node_to_text(
    node: *const DevicePath,
    display_only: Boolean,
    allow_shortcuts: Boolean,
) -> *mut Char16 {
    // SAFETY: the caller's node, as this function's # Safety requires.
    let Ok(header) = (unsafe { efi::boundary::bytes(node.cast::<u8>(), 4) }) else {
        return core::ptr::null_mut();
    };
    let length = usize::from(u16::from_le_bytes([header[2], header[3]]));
    if length < 4 {
        return core::ptr::null_mut();
    }
    // SAFETY: the node is as long as its header says, by the caller's
    // contract.
    let Ok(bytes) = (unsafe { efi::boundary::bytes(node.cast::<u8>(), length) }) else {
        return core::ptr::null_mut();
    };
    match node_text(bytes, options(display_only, allow_shortcuts)) {
        Some(text) => to_pool(&nul_terminated_bytes(&text)).cast(),
        None => core::ptr::null_mut(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.6 requires of the caller.
unsafe extern "efiapi" fn convert_device_path_to_text(
    path: *const DevicePath,
    display_only: Boolean,
    allow_shortcuts: Boolean,
) -> *mut Char16 {
    // SAFETY: the caller's path, as this function's # Safety requires.
    let Ok(path) = (unsafe { efi::device_path::read_path(path) }) else {
        return core::ptr::null_mut();
    };
    match to_text::path_text(&path, options(display_only, allow_shortcuts)) {
        Some(text) => to_pool(&nul_terminated_bytes(&text)).cast(),
        None => core::ptr::null_mut(),
    }
}

struct Shared<T>(T);

// SAFETY: the instances hold only function pointers and are never written.
unsafe impl<T> Sync for Shared<T> {}

static PROTOCOL: Shared<DevicePathToTextProtocol> = Shared(DevicePathToTextProtocol {
    convert_device_node_to_text,
    convert_device_path_to_text,
});

static FROM_TEXT: Shared<DevicePathFromTextProtocol> = Shared(DevicePathFromTextProtocol {
    convert_text_to_device_node,
    convert_text_to_device_path,
});

/// Installs the to-text and from-text protocols on `handle` (a new handle
/// when `None`).
pub fn install(handle: Option<efi::handles::HandleId>) -> Result<efi::handles::HandleId, Status> {
    efi::protocol_services::install(
        handle,
        &[
            (
                DevicePathToTextProtocol::GUID,
                (&raw const PROTOCOL.0).cast_mut().cast::<c_void>(),
            ),
            (
                DevicePathFromTextProtocol::GUID,
                (&raw const FROM_TEXT.0).cast_mut().cast::<c_void>(),
            ),
        ],
    )
}

#[cfg(test)]
mod tests;
