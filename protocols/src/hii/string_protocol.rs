//! EFI_HII_STRING_PROTOCOL (UEFI 2.10 §34.2): the `extern "efiapi"`
//! functions over the string packages of the registered package lists.
//! The string package work itself is pure, in [`super::strings`].

use alloc::vec::Vec;

use uefi_raw::protocol::hii::font::FontInfo;
use uefi_raw::protocol::hii::string::HiiStringProtocol;
use uefi_raw::protocol::hii::{HiiHandle, StringId};
use uefi_raw::{Char8, Char16, Status};

use super::database::{replace_list, with_list};
use super::strings::{EditError, StringAnswer, languages, list_string, secondary_languages};

/// The longest string NewString and SetString take, in characters.
const MAX_STRING: usize = 1 << 20;

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
    // §34.2.1.2: Language and PackageList are required.
    if id == 0 || language.is_null() || handle.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's tag, as this function's # Safety requires.
    let Some(language) = (unsafe { ascii(language) }) else {
        return Status::INVALID_PARAMETER;
    };
    let Some(found) = with_list(handle, |list| list_string(list, &language, id)) else {
        return Status::NOT_FOUND;
    };
    let text = match found {
        Ok(StringAnswer::Found(text)) => text,
        Ok(StringAnswer::OtherLanguageOnly) => return Status::INVALID_LANGUAGE,
        Ok(StringAnswer::Missing) | Err(_) => return Status::NOT_FOUND,
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

/// The caller's NUL-terminated UCS-2 string.
///
/// # Safety
/// `ptr` is null or a NUL-terminated UCS-2 string.
unsafe fn ucs2(ptr: *const Char16) -> Result<Vec<u16>, Status> {
    // SAFETY: this function's contract.
    unsafe { efi::boundary::ucs2(ptr, MAX_STRING) }
}

fn edit_status(error: EditError) -> Status {
    match error {
        EditError::NotFound => Status::NOT_FOUND,
        EditError::Malformed(_) => Status::OUT_OF_RESOURCES,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.2.1.1 requires of the caller.
unsafe extern "efiapi" fn new_string(
    _this: *const HiiStringProtocol,
    handle: HiiHandle,
    id: *mut StringId,
    language: *const Char8,
    language_name: *const Char16,
    string: *const Char16,
    _info: *const FontInfo,
) -> Status {
    if handle.is_null() || id.is_null() || language.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(text) = (unsafe { ucs2(string) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: the caller's tag, as this function's # Safety requires.
    let Some(language) = (unsafe { ascii(language) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let name = (!language_name.is_null())
        .then(|| unsafe { ucs2(language_name) })
        .transpose();
    let Ok(name) = name else {
        return Status::INVALID_PARAMETER;
    };
    // Fonts are not kept (no EFI_HII_FONT_PROTOCOL): the string is stored
    // without font information.
    let edited = with_list(handle, |list| {
        super::strings::new_string(list, &language, name.as_deref(), None, &text)
    });
    match edited {
        None => Status::NOT_FOUND,
        Some(Err(error)) => edit_status(error),
        Some(Ok((list, new_id))) => {
            if !replace_list(handle, list) {
                return Status::NOT_FOUND;
            }
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            efi::boundary::status(unsafe { efi::boundary::write(id, new_id) })
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.2.1.3 requires of the caller.
unsafe extern "efiapi" fn set_string(
    _this: *const HiiStringProtocol,
    handle: HiiHandle,
    id: StringId,
    language: *const Char8,
    string: *const Char16,
    _info: *const FontInfo,
) -> Status {
    if handle.is_null() || language.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(text) = (unsafe { ucs2(string) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: the caller's tag, as this function's # Safety requires.
    let Some(language) = (unsafe { ascii(language) }) else {
        return Status::INVALID_PARAMETER;
    };
    let edited = with_list(handle, |list| {
        super::strings::set_string(list, id, &language, None, &text)
    });
    match edited {
        None => Status::NOT_FOUND,
        Some(Err(error)) => edit_status(error),
        Some(Ok(list)) => {
            if replace_list(handle, list) {
                Status::SUCCESS
            } else {
                Status::NOT_FOUND
            }
        }
    }
}

/// Copies `text` and a NUL to the caller's `out`/`size` pair, reporting
/// the size needed when it does not fit.
///
/// # Safety
/// `size` and `out` as the ASCII-returning §34.2 functions require.
unsafe fn write_ascii(
    mut text: Vec<u8>,
    out: *mut Char8,
    size: *mut usize,
    capacity: usize,
) -> Status {
    text.push(0);
    // SAFETY: this function's contract.
    let _ = unsafe { efi::boundary::write(size, text.len()) };
    if capacity < text.len() {
        return Status::BUFFER_TOO_SMALL;
    }
    // SAFETY: this function's contract; the buffer holds `capacity` bytes.
    match unsafe { efi::boundary::bytes_mut(out.cast::<u8>(), text.len()) } {
        Ok(bytes) => {
            bytes.copy_from_slice(&text);
            Status::SUCCESS
        }
        Err(status) => status,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.2.1.4 requires of the caller.
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
    if handle.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let Some(Ok(text)) = with_list(handle, languages) else {
        return Status::NOT_FOUND;
    };
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    unsafe { write_ascii(text, languages_out, size, capacity) }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.2.1.5 requires of the caller.
unsafe extern "efiapi" fn get_secondary_languages(
    _this: *const HiiStringProtocol,
    handle: HiiHandle,
    primary: *const Char8,
    secondary: *mut Char8,
    size: *mut usize,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(capacity) = (unsafe { efi::boundary::read(size) }) else {
        return Status::INVALID_PARAMETER;
    };
    if handle.is_null() || primary.is_null() || (capacity != 0 && secondary.is_null()) {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's tag, as this function's # Safety requires.
    let Some(primary) = (unsafe { ascii(primary) }) else {
        return Status::INVALID_PARAMETER;
    };
    match with_list(handle, |list| secondary_languages(list, &primary)) {
        None => Status::NOT_FOUND,
        Some(Err(_)) | Some(Ok(None)) => Status::INVALID_LANGUAGE,
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        Some(Ok(Some(text))) => unsafe { write_ascii(text, secondary, size, capacity) },
    }
}

pub(super) static PROTOCOL: super::Shared<HiiStringProtocol> = super::Shared(HiiStringProtocol {
    new_string,
    get_string,
    set_string,
    get_languages,
    get_secondary_languages,
});
