//! EFI_DEVICE_PATH_TO_TEXT_PROTOCOL (UEFI 2.10 §10.6.2): device paths and
//! nodes rendered by `crate::device_path::to_text`, returned as NUL-terminated
//! UCS-2 in a pool buffer the caller frees with FreePool. The rendering is
//! the same whether or not the caller asks for display-only text or
//! shortcuts: both forms are permitted by §10.6.2, and ours is already the
//! short one for the nodes this firmware produces.
//!
//! EFI_DEVICE_PATH_FROM_TEXT_PROTOCOL (§10.6.3) parses the same text back:
//! `PciRoot`, `PcieRoot`, `Acpi`, `Pci`, `HD`, `VenMedia`, the generic
//! `Path(type,subtype,hex)`, and file paths (any node that is not one of
//! those); instances are separated by `,` and nodes by `/`.

use alloc::vec::Vec;
use core::ffi::c_void;

use uefi_raw::protocol::device_path::{
    DevicePathFromTextProtocol, DevicePathProtocol as DevicePath, DevicePathToTextProtocol,
    DeviceSubType, DeviceType,
};
use uefi_raw::{Boolean, Char16, Guid, Status};

use crate::device_path::{
    ACPI_SUBTYPE_HID, EISA_PNP0A08, end_entire, file_path, node, pci, pci_root, to_text,
    vendor_media,
};
use crate::device_path_utilities::to_pool;
use crate::partition::{
    HardDriveInfo, PARTITION_FORMAT_GPT, PARTITION_FORMAT_MBR, SIGNATURE_TYPE_GUID,
    SIGNATURE_TYPE_MBR,
};

/// `text` as NUL-terminated UCS-2 bytes.
pub fn ucs2_bytes(text: &str) -> Vec<u8> {
    text.encode_utf16()
        .chain(core::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// The text of one node: the node alone as a path.
pub fn node_text(node: &[u8]) -> Option<alloc::string::String> {
    let length = usize::from(platform::le::u16_at(node, 2)?);
    let mut path = node.get(..length)?.to_vec();
    path.extend_from_slice(&end_entire());
    Some(to_text(&path))
}

/// Splits `text` at `separator` outside parentheses.
fn split_top_level(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if c == separator && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A number in the text syntax: `0x` hex or decimal.
fn number(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A registry-format GUID (`XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`).
pub fn parse_guid(text: &str) -> Option<Guid> {
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [a, b, c, d, e] = parts.as_slice() else {
        return None;
    };
    if (a.len(), b.len(), c.len(), d.len(), e.len()) != (8, 4, 4, 4, 12) {
        return None;
    }
    let d = hex_bytes(d)?;
    let e = hex_bytes(e)?;
    // The first three fields are stored little-endian (UEFI 2.10 Appendix A).
    Some(Guid::new(
        u32::from_str_radix(a, 16).ok()?.to_le_bytes(),
        u16::from_str_radix(b, 16).ok()?.to_le_bytes(),
        u16::from_str_radix(c, 16).ok()?.to_le_bytes(),
        d[0],
        d[1],
        e.as_slice().try_into().ok()?,
    ))
}

fn acpi_hid(hid: u32, uid: u32) -> Vec<u8> {
    let mut data = [0u8; 8];
    data[..4].copy_from_slice(&hid.to_le_bytes());
    data[4..].copy_from_slice(&uid.to_le_bytes());
    node(DeviceType::ACPI.0, ACPI_SUBTYPE_HID, &data).unwrap_or_default()
}

/// `PNP0A03` as a compressed EISA id, or a `0x` number.
fn acpi_id(text: &str) -> Option<u32> {
    match text.trim().strip_prefix("PNP") {
        Some(product) => Some((u32::from_str_radix(product, 16).ok()? << 16) | 0x41D0),
        None => u32::try_from(number(text)?).ok(),
    }
}

fn hard_drive_node(args: &[&str]) -> Option<Vec<u8>> {
    let [number_text, kind, id, start, size] = args else {
        return None;
    };
    let mut signature = [0u8; 16];
    let (partition_format, signature_type) = match kind.trim() {
        "GPT" => {
            signature = parse_guid(id)?.to_bytes();
            (PARTITION_FORMAT_GPT, SIGNATURE_TYPE_GUID)
        }
        "MBR" => {
            let id = u32::try_from(number(id)?).ok()?;
            signature[..4].copy_from_slice(&id.to_le_bytes());
            (PARTITION_FORMAT_MBR, SIGNATURE_TYPE_MBR)
        }
        _ => return None,
    };
    Some(crate::device_path::hard_drive(&HardDriveInfo {
        partition_number: u32::try_from(number(number_text)?).ok()?,
        partition_start: number(start)?,
        partition_size: number(size)?,
        signature,
        partition_format,
        signature_type,
    }))
}

/// ConvertTextToDeviceNode: one node from its text.
pub fn text_to_node(text: &str) -> Option<Vec<u8>> {
    let known = text
        .strip_suffix(')')
        .and_then(|t| t.split_once('('))
        .filter(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()));
    let Some((name, inner)) = known else {
        return if text.is_empty() {
            None
        } else {
            file_path(text).ok()
        };
    };
    let args: Vec<&str> = inner.split(',').collect();
    let arg = |i: usize| args.get(i).copied().and_then(number);
    let u32_arg = |i: usize| arg(i).and_then(|n| u32::try_from(n).ok());
    let u8_arg = |i: usize| arg(i).and_then(|n| u8::try_from(n).ok());
    match name {
        "PciRoot" => Some(pci_root(u32_arg(0)?)),
        "PcieRoot" => Some(acpi_hid(EISA_PNP0A08, u32_arg(0)?)),
        "Acpi" => Some(acpi_hid(acpi_id(args.first()?)?, u32_arg(1).unwrap_or(0))),
        "Pci" => Some(pci(u8_arg(0)?, u8_arg(1)?)),
        "HD" => hard_drive_node(&args),
        "VenMedia" => {
            let data = match args.get(1) {
                Some(extra) => hex_bytes(extra)?,
                None => Vec::new(),
            };
            vendor_media(&parse_guid(args.first()?)?, &data).ok()
        }
        "Path" => node(
            u8_arg(0)?,
            u8_arg(1)?,
            &hex_bytes(args.get(2).unwrap_or(&""))?,
        )
        .ok(),
        _ => file_path(text).ok(),
    }
}

/// ConvertTextToDevicePath: a whole (possibly multi-instance) path.
pub fn text_to_path(text: &str) -> Option<Vec<u8>> {
    let mut path = Vec::new();
    for (i, instance) in split_top_level(text, ',').into_iter().enumerate() {
        if i > 0 {
            path.extend_from_slice(&[DeviceType::END.0, DeviceSubType::END_INSTANCE.0, 4, 0]);
        }
        for node_text in split_top_level(instance, '/')
            .into_iter()
            .filter(|t| !t.is_empty())
        {
            path.extend_from_slice(&text_to_node(node_text)?);
        }
    }
    path.extend_from_slice(&end_entire());
    Some(path)
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
    _display_only: Boolean,
    _allow_shortcuts: Boolean,
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
    match node_text(bytes) {
        Some(text) => to_pool(&ucs2_bytes(&text)).cast(),
        None => core::ptr::null_mut(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.6 requires of the caller.
unsafe extern "efiapi" fn convert_device_path_to_text(
    path: *const DevicePath,
    _display_only: Boolean,
    _allow_shortcuts: Boolean,
) -> *mut Char16 {
    // SAFETY: the caller's path, as this function's # Safety requires.
    match unsafe { efi::device_path::read_path(path) } {
        Ok(path) => to_pool(&ucs2_bytes(&to_text(&path))).cast(),
        Err(_) => core::ptr::null_mut(),
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
mod tests {
    use super::*;
    use crate::device_path::{pci, pci_root};

    #[test]
    fn nodes_render_alone() {
        assert_eq!(node_text(&pci(3, 1)).as_deref(), Some("Pci(0x3,0x1)"));
        assert_eq!(node_text(&pci_root(0)).as_deref(), Some("PciRoot(0x0)"));
        assert_eq!(node_text(&[1, 1]), None);
        assert_eq!(node_text(&[1, 1, 9, 0]), None, "length past the buffer");
    }

    #[test]
    fn text_round_trips_through_nodes() {
        for text in [
            "PciRoot(0x0)/Pci(0x1,0x0)/HD(1,GPT,ED8F9A47-193B-4941-AAF6-5839B39BFBE1,0x800,0x20000)/\\EFI\\BOOT\\BOOTX64.EFI",
            "PcieRoot(0x2)/Pci(0x1f,0x7)/HD(2,MBR,0x1234abcd,0x3f,0x100)",
            "Acpi(PNP0501,0x0)",
            "VenMedia(1428F772-B64A-441E-B8C3-9EBDD7F893C7,0102)",
            "Path(3,24,ABCD)",
            "PciRoot(0x0)/Pci(0x2,0x0),PciRoot(0x0)/Pci(0x3,0x0)",
        ] {
            let path = text_to_path(text).unwrap_or_else(|| panic!("{text} parses"));
            assert_eq!(to_text(&path), text);
        }
        assert_eq!(text_to_node("Pci(0x3,0x1)").unwrap(), pci(3, 1));
        assert_eq!(
            text_to_node("\\a.efi").unwrap(),
            file_path("\\a.efi").unwrap()
        );
    }

    #[test]
    fn malformed_text_is_rejected() {
        assert_eq!(text_to_node("Pci(0x300,0x0)"), None);
        assert_eq!(text_to_node("HD(1,XYZ,0,0,0)"), None);
        assert_eq!(text_to_node("VenMedia(not-a-guid)"), None);
        assert_eq!(text_to_node(""), None);
        assert_eq!(text_to_path("PciRoot(0x0)/Pci(x,y)"), None);
        assert_eq!(text_to_path("").unwrap(), end_entire());
    }

    #[test]
    fn text_is_nul_terminated_ucs2() {
        assert_eq!(ucs2_bytes("A\\"), [0x41, 0, 0x5c, 0, 0, 0]);
    }
}
