//! The minimum of HII (UEFI 2.10 §34) that applications such as the edk2
//! UEFI Shell need to start and print: EFI_HII_DATABASE_PROTOCOL keeps the
//! package lists they register (NewPackageList, RemovePackageList,
//! ListPackageLists) and EFI_HII_STRING_PROTOCOL reads strings back from
//! their string packages (GetString, GetLanguages). Forms, fonts, images,
//! keyboard layouts and string editing are not provided: those functions
//! return EFI_UNSUPPORTED.
//!
//! Package parsing (§33.3.1 package lists, §33.3.6 string packages) is pure
//! and host-tested; the `extern "efiapi"` layer validates pointers.

use alloc::vec::Vec;
use core::ffi::c_void;
use core::fmt;

use efi::ids::PackageListHandle;
use platform::sync::Global;
use uefi_raw::protocol::hii::database::{
    HiiDatabaseNotifyFn, HiiDatabaseNotifyType, HiiDatabaseProtocol, HiiKeyboardLayout,
};
use uefi_raw::protocol::hii::font::FontInfo;
use uefi_raw::protocol::hii::string::HiiStringProtocol;
use uefi_raw::protocol::hii::{HiiHandle, HiiPackageListHeader, StringId};
use uefi_raw::{Char8, Char16, Guid, Handle, Status};

const PACKAGE_LIST_HEADER: usize = 20;
const PACKAGE_HEADER: usize = 4;
const PACKAGE_TYPE_GUID: u8 = 0x01;
const PACKAGE_TYPE_STRINGS: u8 = 0x04;
const PACKAGE_TYPE_END: u8 = 0xdf;
/// String package header fields after the package header (§33.3.6.1).
const STRING_INFO_OFFSET_AT: usize = 8;
const LANGUAGE_AT: usize = 46;

/// Why a package list or string package is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HiiError {
    /// The list or package is shorter than its header or stated length.
    Truncated { offset: usize },
    /// A string block type §33.3.6.2 does not define.
    UnknownBlock { offset: usize, block_type: u8 },
    /// A SIBT_DUPLICATE block (§33.3.6.2, EFI_HII_SIBT_DUPLICATE_BLOCK)
    /// naming no earlier string: it could name itself or start a cycle.
    BadDuplicate { offset: usize, original: u16 },
}

impl fmt::Display for HiiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiiError::Truncated { offset } => write!(f, "HII data truncated at offset {offset}"),
            HiiError::UnknownBlock { offset, block_type } => {
                write!(
                    f,
                    "unknown string block type {block_type:#x} at offset {offset}"
                )
            }
            HiiError::BadDuplicate { offset, original } => write!(
                f,
                "duplicate string block at offset {offset} names string {original}, not an earlier one"
            ),
        }
    }
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, HiiError> {
    platform::le::u16_at(data, at).ok_or(HiiError::Truncated { offset: at })
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, HiiError> {
    platform::le::u32_at(data, at).ok_or(HiiError::Truncated { offset: at })
}

/// The packages of a package list (§33.3.1), End package excluded, as
/// (type, whole package bytes).
pub fn packages(list: &[u8]) -> Result<Vec<(u8, &[u8])>, HiiError> {
    let total = u32_at(list, 16)? as usize;
    let list = list
        .get(..total)
        .ok_or(HiiError::Truncated { offset: total })?;
    let mut out = Vec::new();
    let mut offset = PACKAGE_LIST_HEADER;
    while offset < list.len() {
        let header = u32_at(list, offset)?;
        let (length, package_type) = ((header & 0x00ff_ffff) as usize, (header >> 24) as u8);
        if package_type == PACKAGE_TYPE_END {
            break;
        }
        let package = list
            .get(offset..offset + length)
            .filter(|_| length >= PACKAGE_HEADER)
            .ok_or(HiiError::Truncated { offset })?;
        out.push((package_type, package));
        offset += length;
    }
    Ok(out)
}

/// The RFC 4646 language of a string package.
pub fn package_language(package: &[u8]) -> Result<&[u8], HiiError> {
    let rest = package.get(LANGUAGE_AT..).ok_or(HiiError::Truncated {
        offset: LANGUAGE_AT,
    })?;
    let len = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(HiiError::Truncated {
            offset: package.len(),
        })?;
    Ok(&rest[..len])
}

/// GetLanguages: the list's string-package languages, `;`-separated.
pub fn languages(list: &[u8]) -> Result<Vec<u8>, HiiError> {
    let mut out: Vec<u8> = Vec::new();
    for (_, package) in packages(list)?
        .into_iter()
        .filter(|(t, _)| *t == PACKAGE_TYPE_STRINGS)
    {
        let language = package_language(package)?;
        if !out.split(|&b| b == b';').any(|l| l == language) {
            if !out.is_empty() {
                out.push(b';');
            }
            out.extend_from_slice(language);
        }
    }
    Ok(out)
}

/// Reads a NUL-terminated UCS-2 string at `at`; returns it and the offset after the NUL.
fn ucs2_at(data: &[u8], mut at: usize) -> Result<(Vec<u16>, usize), HiiError> {
    let mut text = Vec::new();
    loop {
        let unit = u16_at(data, at)?;
        at += 2;
        if unit == 0 {
            return Ok((text, at));
        }
        text.push(unit);
    }
}

/// Reads a NUL-terminated 8-bit (SCSU, ASCII-compatible) string at `at`.
fn scsu_at(data: &[u8], at: usize) -> Result<(Vec<u16>, usize), HiiError> {
    let rest = data.get(at..).ok_or(HiiError::Truncated { offset: at })?;
    let len = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(HiiError::Truncated { offset: data.len() })?;
    Ok((
        rest[..len].iter().map(|&b| u16::from(b)).collect(),
        at + len + 1,
    ))
}

/// The string `id` (1-based) of a string package, walking its string
/// blocks (§33.3.6.2). `Ok(None)` when the package has no such string.
///
/// A SIBT_DUPLICATE block stands for an earlier string: the walk restarts
/// for that id. Each restart looks for a smaller id, so a package whose
/// duplicates name themselves or each other ends with an error instead of
/// recursing until the stack overflows.
pub fn find_string(package: &[u8], id: u16) -> Result<Option<Vec<u16>>, HiiError> {
    let mut wanted = id;
    loop {
        match string_block(package, wanted)? {
            Lookup::Found(text) => return Ok(text),
            Lookup::Duplicate { offset, original } => {
                if original == 0 || original >= wanted {
                    return Err(HiiError::BadDuplicate { offset, original });
                }
                wanted = original;
            }
        }
    }
}

/// What the walk for one string id ends with.
enum Lookup {
    /// The string, or `None` when the package has no such id.
    Found(Option<Vec<u16>>),
    /// The id is a SIBT_DUPLICATE of string `original`.
    Duplicate { offset: usize, original: u16 },
}

/// Walks the string blocks up to the one holding string `id`.
fn string_block(package: &[u8], id: u16) -> Result<Lookup, HiiError> {
    let mut offset = u32_at(package, STRING_INFO_OFFSET_AT)? as usize;
    let mut current: u32 = 1;
    let wanted = u32::from(id);
    loop {
        let block_type = *package.get(offset).ok_or(HiiError::Truncated { offset })?;
        let body = offset + 1;
        // Each arm yields the strings of the block (read lazily: only the
        // wanted one is kept) and the offset of the next block.
        let (count, next, text): (u32, usize, Option<Vec<u16>>) = match block_type {
            0x00 => return Ok(Lookup::Found(None)),
            0x10 | 0x11 | 0x14 | 0x15 => {
                let at = if block_type & 1 == 1 { body + 1 } else { body };
                let (text, next) = if block_type >= 0x14 {
                    ucs2_at(package, at)?
                } else {
                    scsu_at(package, at)?
                };
                (1, next, Some(text))
            }
            0x12 | 0x13 | 0x16 | 0x17 => {
                let at = if block_type & 1 == 1 { body + 1 } else { body };
                let count = u32::from(u16_at(package, at)?);
                let mut next = at + 2;
                let mut found = None;
                for index in 0..count {
                    let (text, after) = if block_type >= 0x16 {
                        ucs2_at(package, next)?
                    } else {
                        scsu_at(package, next)?
                    };
                    if current + index == wanted {
                        found = Some(text);
                    }
                    next = after;
                }
                if found.is_some() {
                    return Ok(Lookup::Found(found));
                }
                (count, next, None)
            }
            // SIBT_DUPLICATE: this id repeats an earlier string.
            0x20 => {
                let original = u16_at(package, body)?;
                if current == wanted {
                    return Ok(Lookup::Duplicate { offset, original });
                }
                (1, body + 2, None)
            }
            0x21 => (u32::from(u16_at(package, body)?), body + 2, None),
            0x22 => (
                u32::from(
                    *package
                        .get(body)
                        .ok_or(HiiError::Truncated { offset: body })?,
                ),
                body + 1,
                None,
            ),
            // SIBT_EXT1/2/4: font and other non-string blocks with a length.
            0x30 => {
                let len = *package
                    .get(body + 1)
                    .ok_or(HiiError::Truncated { offset })?;
                (0, offset + usize::from(len), None)
            }
            0x31 => (0, offset + usize::from(u16_at(package, body + 1)?), None),
            0x32 => (0, offset + u32_at(package, body + 1)? as usize, None),
            _ => return Err(HiiError::UnknownBlock { offset, block_type }),
        };
        if count == 1 && current == wanted && text.is_some() {
            return Ok(Lookup::Found(text));
        }
        if next <= offset {
            return Err(HiiError::Truncated { offset });
        }
        current += count;
        if current > wanted && count > 0 && text.is_none() && block_type >= 0x21 {
            // The id falls in a skipped range.
            return Ok(Lookup::Found(None));
        }
        offset = next;
    }
}

/// GetString over a whole package list: the string package whose language
/// matches `language` (ignoring case) answers, else the first one.
pub fn list_string(
    list: &[u8],
    language: Option<&[u8]>,
    id: u16,
) -> Result<Option<Vec<u16>>, HiiError> {
    let strings: Vec<&[u8]> = packages(list)?
        .into_iter()
        .filter(|(t, _)| *t == PACKAGE_TYPE_STRINGS)
        .map(|(_, p)| p)
        .collect();
    let matching = match language {
        Some(language) => strings
            .iter()
            .find(|p| package_language(p).is_ok_and(|l| l.eq_ignore_ascii_case(language))),
        None => None,
    };
    match matching.or(strings.first()) {
        Some(package) => find_string(package, id),
        None => Ok(None),
    }
}

/// Whether the list holds a package of `package_type` (0: any); GUID
/// packages must also carry `guid`.
pub fn has_package(list: &[u8], package_type: u8, guid: Option<&Guid>) -> bool {
    if package_type == 0 {
        return true;
    }
    packages(list).is_ok_and(|packages| {
        packages.iter().any(|(t, p)| {
            *t == package_type
                && (package_type != PACKAGE_TYPE_GUID
                    || guid.is_some_and(|g| p.get(4..20) == Some(g.to_bytes().as_slice())))
        })
    })
}

// --- The database -------------------------------------------------------------

struct Registered {
    handle: PackageListHandle,
    list: Vec<u8>,
}

struct Database {
    lists: Vec<Registered>,
    next_handle: usize,
}

static DATABASE: Global<Database> = Global::new(Database {
    lists: Vec::new(),
    next_handle: 1,
});

/// Longest package list accepted (the Shell's are a few hundred KiB).
const MAX_PACKAGE_LIST: usize = 16 << 20;

fn with_list<R>(handle: HiiHandle, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let id = PackageListHandle::from_raw(handle);
    DATABASE.with(|db| db.lists.iter().find(|r| r.handle == id).map(|r| f(&r.list)))
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn new_package_list(
    _this: *const HiiDatabaseProtocol,
    list: *const HiiPackageListHeader,
    _driver: Handle,
    handle: *mut HiiHandle,
) -> Status {
    if handle.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(header) = (unsafe { efi::boundary::read(list) }) else {
        return Status::INVALID_PARAMETER;
    };
    let length = header.package_length as usize;
    if !(PACKAGE_LIST_HEADER..=MAX_PACKAGE_LIST).contains(&length) {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the list is as long as its header says (the contract).
    let Ok(bytes) = (unsafe { efi::boundary::bytes(list.cast::<u8>(), length) }) else {
        return Status::INVALID_PARAMETER;
    };
    if packages(bytes).is_err() {
        return Status::INVALID_PARAMETER;
    }
    let id = DATABASE.with(|db| {
        let id = PackageListHandle::from_value(db.next_handle);
        db.next_handle += 1;
        db.lists.push(Registered {
            handle: id,
            list: bytes.to_vec(),
        });
        id
    });
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    efi::boundary::status(unsafe { efi::boundary::write(handle, id.as_raw()) })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn remove_package_list(
    _this: *const HiiDatabaseProtocol,
    handle: HiiHandle,
) -> Status {
    let id = PackageListHandle::from_raw(handle);
    DATABASE.with(|db| match db.lists.iter().position(|r| r.handle == id) {
        Some(index) => {
            db.lists.remove(index);
            Status::SUCCESS
        }
        None => Status::NOT_FOUND,
    })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn update_package_list(
    _this: *const HiiDatabaseProtocol,
    _handle: HiiHandle,
    _list: *const HiiPackageListHeader,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn list_package_lists(
    _this: *const HiiDatabaseProtocol,
    package_type: u8,
    guid: *const Guid,
    size: *mut usize,
    handles: *mut HiiHandle,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(capacity) = (unsafe { efi::boundary::read(size) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let guid = unsafe { efi::boundary::guid(guid) }.ok();
    if package_type == PACKAGE_TYPE_GUID && guid.is_none() {
        return Status::INVALID_PARAMETER;
    }
    let found: Vec<PackageListHandle> = DATABASE.with(|db| {
        db.lists
            .iter()
            .filter(|r| has_package(&r.list, package_type, guid.as_ref()))
            .map(|r| r.handle)
            .collect()
    });
    if found.is_empty() {
        return Status::NOT_FOUND;
    }
    let needed = found.len() * size_of::<HiiHandle>();
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let _ = unsafe { efi::boundary::write(size, needed) };
    if capacity < needed {
        return Status::BUFFER_TOO_SMALL;
    }
    if handles.is_null() {
        return Status::INVALID_PARAMETER;
    }
    for (i, id) in found.into_iter().enumerate() {
        // SAFETY: the caller's buffer holds `capacity` >= `needed` bytes.
        unsafe { handles.add(i).write_unaligned(id.as_raw()) };
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn export_package_lists(
    _this: *const HiiDatabaseProtocol,
    _handle: HiiHandle,
    _size: *mut usize,
    _buffer: *mut HiiPackageListHeader,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn register_package_notify(
    _this: *const HiiDatabaseProtocol,
    _package_type: u8,
    _guid: *const Guid,
    _notify: HiiDatabaseNotifyFn,
    _notify_type: HiiDatabaseNotifyType,
    _handle: *mut Handle,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn unregister_package_notify(
    _this: *const HiiDatabaseProtocol,
    _handle: Handle,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn find_keyboard_layouts(
    _this: *const HiiDatabaseProtocol,
    _count: *mut u16,
    _guids: *mut Guid,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn get_keyboard_layout(
    _this: *const HiiDatabaseProtocol,
    _guid: *const Guid,
    _length: *mut u16,
    _layout: *mut HiiKeyboardLayout,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn set_keyboard_layout(
    _this: *const HiiDatabaseProtocol,
    _guid: *const Guid,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8 requires of the caller.
unsafe extern "efiapi" fn get_package_list_handle(
    _this: *const HiiDatabaseProtocol,
    _handle: HiiHandle,
    _driver: *mut Handle,
) -> Status {
    Status::UNSUPPORTED
}

// --- EFI_HII_STRING_PROTOCOL (§34.2) -----------------------------------------

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.2 requires of the caller.
unsafe extern "efiapi" fn new_string(
    _this: *const HiiStringProtocol,
    _handle: HiiHandle,
    _id: *mut StringId,
    _language: *const Char8,
    _language_name: *const Char16,
    _string: *const Char16,
    _info: *const FontInfo,
) -> Status {
    Status::UNSUPPORTED
}

/// An ASCII language tag from the caller, at most this long.
const MAX_LANGUAGE: usize = 256;

/// The caller's NUL-terminated ASCII tag (at most MAX_LANGUAGE bytes).
///
/// # Safety
/// `ptr` is a NUL-terminated ASCII string.
unsafe fn ascii(ptr: *const Char8) -> Option<Vec<u8>> {
    let bytes = (0..MAX_LANGUAGE)
        // SAFETY: this function's contract; reading stops at the NUL.
        .map_while(|i| unsafe { efi::boundary::read(ptr.wrapping_add(i)) }.ok())
        .take_while(|&b| b != 0)
        .collect();
    Some(bytes)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.2 requires of the caller.
unsafe extern "efiapi" fn get_string(
    _this: *const HiiStringProtocol,
    language: *const Char8,
    handle: HiiHandle,
    id: StringId,
    string: *mut Char16,
    size: *mut usize,
    _info: *mut *mut FontInfo,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(capacity) = (unsafe { efi::boundary::read(size) }) else {
        return Status::INVALID_PARAMETER;
    };
    if id == 0 {
        return Status::INVALID_PARAMETER;
    }
    let language = if language.is_null() {
        None
    } else {
        // SAFETY: the caller's tag, as this function's # Safety requires.
        unsafe { ascii(language) }
    };
    let Some(found) = with_list(handle, |list| list_string(list, language.as_deref(), id)) else {
        return Status::NOT_FOUND;
    };
    let Ok(Some(text)) = found else {
        return Status::NOT_FOUND;
    };
    let needed = (text.len() + 1) * 2;
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let _ = unsafe { efi::boundary::write(size, needed) };
    if capacity < needed {
        return Status::BUFFER_TOO_SMALL;
    }
    if string.is_null() {
        return Status::INVALID_PARAMETER;
    }
    for (i, unit) in text.into_iter().chain(core::iter::once(0)).enumerate() {
        // SAFETY: the caller's buffer holds `capacity` >= `needed` bytes.
        unsafe { string.add(i).write_unaligned(unit) };
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.2 requires of the caller.
unsafe extern "efiapi" fn set_string(
    _this: *const HiiStringProtocol,
    _handle: HiiHandle,
    _id: StringId,
    _language: *const Char8,
    _string: *const Char16,
    _info: *const FontInfo,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.2 requires of the caller.
unsafe extern "efiapi" fn get_languages(
    _this: *const HiiStringProtocol,
    handle: HiiHandle,
    languages_out: *mut Char8,
    size: *mut usize,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(capacity) = (unsafe { efi::boundary::read(size) }) else {
        return Status::INVALID_PARAMETER;
    };
    let Some(Ok(mut text)) = with_list(handle, languages) else {
        return Status::NOT_FOUND;
    };
    text.push(0);
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let _ = unsafe { efi::boundary::write(size, text.len()) };
    if capacity < text.len() {
        return Status::BUFFER_TOO_SMALL;
    }
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    match unsafe { efi::boundary::bytes_mut(languages_out.cast::<u8>(), text.len()) } {
        Ok(out) => {
            out.copy_from_slice(&text);
            Status::SUCCESS
        }
        Err(status) => status,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.2 requires of the caller.
unsafe extern "efiapi" fn get_secondary_languages(
    _this: *const HiiStringProtocol,
    _handle: HiiHandle,
    _primary: *const Char8,
    _secondary: *mut Char8,
    _size: *mut usize,
) -> Status {
    Status::UNSUPPORTED
}

struct Shared<T>(T);

// SAFETY: the instances hold only function pointers and are never written.
unsafe impl<T> Sync for Shared<T> {}

static DATABASE_PROTOCOL: Shared<HiiDatabaseProtocol> = Shared(HiiDatabaseProtocol {
    new_package_list,
    remove_package_list,
    update_package_list,
    list_package_lists,
    export_package_lists,
    register_package_notify,
    unregister_package_notify,
    find_keyboard_layouts,
    get_keyboard_layout,
    set_keyboard_layout,
    get_package_list_handle,
});

static STRING_PROTOCOL: Shared<HiiStringProtocol> = Shared(HiiStringProtocol {
    new_string,
    get_string,
    set_string,
    get_languages,
    get_secondary_languages,
});

/// Installs the HII database and string protocols on `handle` (a new
/// handle when `None`).
pub fn install(handle: Option<efi::handles::HandleId>) -> Result<efi::handles::HandleId, Status> {
    efi::protocol_services::install(
        handle,
        &[
            (
                HiiDatabaseProtocol::GUID,
                (&raw const DATABASE_PROTOCOL.0).cast_mut().cast::<c_void>(),
            ),
            (
                HiiStringProtocol::GUID,
                (&raw const STRING_PROTOCOL.0).cast_mut().cast::<c_void>(),
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ucs2(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain(core::iter::once(0))
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    /// A string package for `language` with `blocks` (SIBT_END appended).
    fn string_package(language: &str, blocks: &[u8]) -> Vec<u8> {
        let mut header = vec![0u8; LANGUAGE_AT];
        header.extend_from_slice(language.as_bytes());
        header.push(0);
        let info_offset = header.len() as u32;
        header[4..8].copy_from_slice(&info_offset.to_le_bytes());
        header[8..12].copy_from_slice(&info_offset.to_le_bytes());
        let mut package = header;
        package.extend_from_slice(blocks);
        package.push(0x00);
        let head = (package.len() as u32) | (u32::from(PACKAGE_TYPE_STRINGS) << 24);
        package[..4].copy_from_slice(&head.to_le_bytes());
        package
    }

    fn package_list(packages: &[Vec<u8>]) -> Vec<u8> {
        let mut list = vec![0u8; PACKAGE_LIST_HEADER];
        for p in packages {
            list.extend_from_slice(p);
        }
        list.extend_from_slice(&(4u32 | (u32::from(PACKAGE_TYPE_END) << 24)).to_le_bytes());
        let len = list.len() as u32;
        list[16..20].copy_from_slice(&len.to_le_bytes());
        list
    }

    fn text(s: &str) -> Option<Vec<u16>> {
        Some(s.encode_utf16().collect())
    }

    fn english() -> Vec<u8> {
        let mut blocks = vec![0x14];
        blocks.extend(ucs2("en-US")); // id 1: the language name, as edk2 emits
        blocks.push(0x16);
        blocks.extend(2u16.to_le_bytes());
        blocks.extend(ucs2("two"));
        blocks.extend(ucs2("three"));
        blocks.extend([0x22, 2]); // skip ids 4 and 5
        blocks.push(0x10);
        blocks.extend(b"six\0");
        blocks.extend([0x20, 2, 0]); // id 7 repeats id 2
        blocks.extend([0x30, 0x40, 3]); // an EXT1 block of 3 bytes
        blocks.push(0x14);
        blocks.extend(ucs2("eight"));
        string_package("en-US", &blocks)
    }

    #[test]
    fn strings_are_found_through_every_block_kind() {
        let package = english();
        assert_eq!(find_string(&package, 1).unwrap(), text("en-US"));
        assert_eq!(find_string(&package, 2).unwrap(), text("two"));
        assert_eq!(find_string(&package, 3).unwrap(), text("three"));
        assert_eq!(find_string(&package, 4).unwrap(), None);
        assert_eq!(find_string(&package, 6).unwrap(), text("six"));
        assert_eq!(find_string(&package, 7).unwrap(), text("two"));
        assert_eq!(find_string(&package, 8).unwrap(), text("eight"));
        assert_eq!(find_string(&package, 9).unwrap(), None);
    }

    /// Found by the `hii` fuzz target (a timeout): a duplicate naming itself
    /// made the lookup call itself forever, a loop once the tail call was
    /// optimised and a stack overflow otherwise.
    #[test]
    fn duplicates_naming_themselves_or_later_strings_are_errors() {
        let mut blocks = vec![0x14];
        blocks.extend(ucs2("one"));
        blocks.extend([0x20, 2, 0]); // id 2 repeats itself
        blocks.extend([0x20, 4, 0]); // id 3 repeats id 4 ...
        blocks.extend([0x20, 3, 0]); // ... which repeats id 3
        blocks.extend([0x20, 3, 0]); // id 5 repeats 3, so 4, so 3 again
        let package = string_package("en-US", &blocks);
        // The blocks start after the header and "en-US\0"; id 1 takes 9 bytes.
        let id_2_block = LANGUAGE_AT + 6 + 9;
        assert_eq!(find_string(&package, 1).unwrap(), text("one"));
        assert_eq!(
            find_string(&package, 2),
            Err(HiiError::BadDuplicate {
                offset: id_2_block,
                original: 2
            })
        );
        assert!(matches!(
            find_string(&package, 3),
            Err(HiiError::BadDuplicate { original: 4, .. })
        ));
        assert!(matches!(
            find_string(&package, 5),
            Err(HiiError::BadDuplicate { original: 4, .. })
        ));
    }

    #[test]
    fn languages_and_lookup_by_language() {
        let mut french_blocks = vec![0x14];
        french_blocks.extend(ucs2("un"));
        let list = package_list(&[english(), string_package("fr-FR", &french_blocks)]);
        assert_eq!(languages(&list).unwrap(), b"en-US;fr-FR");
        assert_eq!(list_string(&list, Some(b"fr-fr"), 1).unwrap(), text("un"));
        assert_eq!(list_string(&list, Some(b"en-US"), 2).unwrap(), text("two"));
        assert_eq!(list_string(&list, Some(b"de"), 2).unwrap(), text("two"));
        assert_eq!(list_string(&list, None, 8).unwrap(), text("eight"));
        assert!(has_package(&list, PACKAGE_TYPE_STRINGS, None));
        assert!(!has_package(&list, PACKAGE_TYPE_GUID, None));
    }

    #[test]
    fn malformed_data_is_an_error() {
        let mut package = english();
        let at = package.len() - 1;
        package[at] = 0x99;
        assert_eq!(
            find_string(&package, 99),
            Err(HiiError::UnknownBlock {
                offset: at,
                block_type: 0x99
            })
        );
        let mut list = package_list(&[english()]);
        list[16] = 0xff;
        assert!(packages(&list).is_err());
        let mut cut = english();
        cut.truncate(LANGUAGE_AT + 3);
        assert!(find_string(&cut, 1).is_err());
    }
}
