//! The globally defined variables a platform boot manager publishes (UEFI 2.10 §3.3):
//! each exists with the attributes the spec's table gives and a well-formed value —
//! PlatformLang one of PlatformLangCodes, the console variables multi-instance device
//! paths of which at least one instance leads to a handle with the console protocol
//! (LocateDevicePath, §7.3.7), OsIndicationsSupported offering BOOT_TO_FW_UI (§8.5.4),
//! and the read-only ones refusing SetVariable.

use core::ptr;

use r_efi::efi;
use r_efi::protocols::{device_path, simple_text_input, simple_text_output};

use crate::ctx::{Ctx, St, ucs2};

/// EFI_GLOBAL_VARIABLE (§3.3).
const GLOBAL_VARIABLE: efi::Guid = efi::Guid::from_fields(
    0x8be4df61,
    0x93ca,
    0x11d2,
    0xaa,
    0x0d,
    &[0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);

const BS_RT: u32 = efi::VARIABLE_BOOTSERVICE_ACCESS | efi::VARIABLE_RUNTIME_ACCESS;
const NV_BS_RT: u32 = efi::VARIABLE_NON_VOLATILE | BS_RT;
const OS_INDICATIONS_BOOT_TO_FW_UI: u64 = 1;

const END_TYPE: u8 = 0x7f;
const END_INSTANCE: u8 = 0x01;
const END_ENTIRE: u8 = 0xff;

static PLATFORM_LANG_CODES: [u16; 18] = ucs2("PlatformLangCodes");
static PLATFORM_LANG: [u16; 13] = ucs2("PlatformLang");
static LANG_CODES: [u16; 10] = ucs2("LangCodes");
static LANG: [u16; 5] = ucs2("Lang");
static CON_IN: [u16; 6] = ucs2("ConIn");
static CON_OUT: [u16; 7] = ucs2("ConOut");
static ERR_OUT: [u16; 7] = ucs2("ErrOut");
static CON_IN_DEV: [u16; 9] = ucs2("ConInDev");
static CON_OUT_DEV: [u16; 10] = ucs2("ConOutDev");
static ERR_OUT_DEV: [u16; 10] = ucs2("ErrOutDev");
static TIMEOUT: [u16; 8] = ucs2("Timeout");
static BOOT_OPTION_SUPPORT: [u16; 18] = ucs2("BootOptionSupport");
static OS_INDICATIONS_SUPPORTED: [u16; 23] = ucs2("OsIndicationsSupported");

/// A global variable read into pool memory (OVMF's ConOutDev, listing every serial
/// and video device path it ever saw, exceeds 4 KiB).
struct Variable {
    attributes: u32,
    len: usize,
    data: *mut u8,
    bs: &'static efi::BootServices,
}

impl Variable {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `data` is a live pool allocation of at least `len` bytes that
        // GetVariable filled; it is freed only on drop.
        unsafe { core::slice::from_raw_parts(self.data, self.len) }
    }
}

impl Drop for Variable {
    fn drop(&mut self) {
        let _ = (self.bs.free_pool)(self.data.cast());
    }
}

/// GetVariable into a pool buffer of the size the firmware asks for; on failure the
/// status and that size.
fn get(ctx: &Ctx, name: &'static [u16]) -> Result<Variable, (efi::Status, usize)> {
    let mut guid = GLOBAL_VARIABLE;
    let mut attributes = 0u32;
    let mut len = 0usize;
    let status = (ctx.rt.get_variable)(
        name.as_ptr().cast_mut(),
        &mut guid,
        &mut attributes,
        &mut len,
        ptr::null_mut(),
    );
    if status != efi::Status::BUFFER_TOO_SMALL {
        return Err((status, len));
    }
    let data = ctx
        .alloc_pool(len.max(1))
        .ok_or((efi::Status::OUT_OF_RESOURCES, len))?;
    let mut var = Variable {
        attributes: 0,
        len,
        data,
        bs: ctx.bs,
    };
    let status = (ctx.rt.get_variable)(
        name.as_ptr().cast_mut(),
        &mut guid,
        &mut var.attributes,
        &mut var.len,
        var.data.cast(),
    );
    if status.is_error() {
        return Err((status, var.len));
    }
    Ok(var)
}

/// Reads `name` and checks it exists with `attributes`; the variable on success.
fn read_checked(
    ctx: &mut Ctx,
    check: &str,
    name: &'static [u16],
    attributes: u32,
) -> Option<Variable> {
    let var = match get(ctx, name) {
        Ok(var) => var,
        Err((status, size)) => {
            ctx.fail(
                check,
                format_args!("GetVariable: {} (size {size})", St(status)),
            );
            return None;
        }
    };
    ctx.check(
        check,
        var.attributes == attributes,
        format_args!("attributes {:#x}, want {attributes:#x}", var.attributes),
    )
    .then_some(var)
}

/// An ASCII string value without its optional terminating NUL.
fn ascii(data: &[u8]) -> Option<&str> {
    let text = data.strip_suffix(&[0]).unwrap_or(data);
    (!text.is_empty() && text.iter().all(u8::is_ascii_graphic))
        .then(|| core::str::from_utf8(text).ok())
        .flatten()
}

fn languages(ctx: &mut Ctx) {
    let codes = read_checked(
        ctx,
        "globals.platform_lang_codes",
        &PLATFORM_LANG_CODES,
        BS_RT,
    );
    let lang = read_checked(ctx, "globals.platform_lang", &PLATFORM_LANG, NV_BS_RT);
    if let (Some(codes), Some(lang)) = (codes, lang) {
        let (codes, lang) = (ascii(codes.bytes()), ascii(lang.bytes()));
        // RFC 4646 tags separated by ';', compared without regard to case.
        let listed = codes.zip(lang).is_some_and(|(codes, lang)| {
            codes.split(';').any(|code| code.eq_ignore_ascii_case(lang))
        });
        ctx.check(
            "globals.platform_lang.listed",
            listed,
            format_args!("PlatformLang {lang:?} not in PlatformLangCodes {codes:?}"),
        );
    }
    let codes = read_checked(ctx, "globals.lang_codes", &LANG_CODES, BS_RT);
    let lang = read_checked(ctx, "globals.lang", &LANG, NV_BS_RT);
    if let (Some(codes), Some(lang)) = (codes, lang) {
        let (codes, lang) = (ascii(codes.bytes()), ascii(lang.bytes()));
        // ISO 639-2 three-letter codes run together.
        let listed = codes.zip(lang).is_some_and(|(codes, lang)| {
            codes.len().is_multiple_of(3)
                && codes
                    .as_bytes()
                    .chunks(3)
                    .any(|code| code.eq_ignore_ascii_case(lang.as_bytes()))
        });
        ctx.check(
            "globals.lang.listed",
            listed,
            format_args!("Lang {lang:?} not in LangCodes {codes:?}"),
        );
    }
}

/// Walks a (multi-instance) device path; each instance with an End Entire node in
/// `copy` is handed to `each`. False when a node is malformed or the path does not
/// end exactly at the end of `data`.
fn for_each_instance(data: &[u8], mut each: impl FnMut(&[u8])) -> bool {
    let mut copy = [0u8; 1024];
    let mut len = 0;
    let mut at = 0;
    while let Some(header) = data.get(at..at + 4) {
        let node_len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let Some(node) = data.get(at..at + node_len).filter(|_| node_len >= 4) else {
            return false;
        };
        at += node_len;
        if node[0] == END_TYPE && (node[1] == END_INSTANCE || node[1] == END_ENTIRE) {
            if len == 0 || len + 4 > copy.len() {
                return false;
            }
            copy[len..len + 4].copy_from_slice(&[END_TYPE, END_ENTIRE, 4, 0]);
            each(&copy[..len + 4]);
            len = 0;
            if node[1] == END_ENTIRE {
                return at == data.len();
            }
            continue;
        }
        let Some(slot) = copy.get_mut(len..len + node_len) else {
            return false;
        };
        slot.copy_from_slice(node);
        len += node_len;
    }
    false
}

/// Whether LocateDevicePath finds a handle with `protocol` whose device path is the
/// whole of `instance` (the remaining path is the End node).
fn resolves(ctx: &Ctx, instance: &[u8], protocol: &efi::Guid) -> bool {
    let mut guid = *protocol;
    let mut remaining = instance.as_ptr().cast::<device_path::Protocol>().cast_mut();
    let mut handle: efi::Handle = ptr::null_mut();
    let status = (ctx.bs.locate_device_path)(&mut guid, &mut remaining, &mut handle);
    // SAFETY: on success `remaining` points at a node header inside `instance`.
    status == efi::Status::SUCCESS && unsafe { (*remaining).r#type } == END_TYPE
}

fn consoles(ctx: &mut Ctx) {
    let input = &simple_text_input::PROTOCOL_GUID;
    let output = &simple_text_output::PROTOCOL_GUID;
    let all: [(&str, &'static [u16], u32, &efi::Guid); 6] = [
        ("globals.con_in", &CON_IN, NV_BS_RT, input),
        ("globals.con_out", &CON_OUT, NV_BS_RT, output),
        ("globals.err_out", &ERR_OUT, NV_BS_RT, output),
        ("globals.con_in_dev", &CON_IN_DEV, BS_RT, input),
        ("globals.con_out_dev", &CON_OUT_DEV, BS_RT, output),
        ("globals.err_out_dev", &ERR_OUT_DEV, BS_RT, output),
    ];
    for (check, name, attributes, protocol) in all {
        let Some(var) = read_checked(ctx, check, name, attributes) else {
            continue;
        };
        let (mut instances, mut resolved) = (0, 0);
        let well_formed = for_each_instance(var.bytes(), |instance| {
            instances += 1;
            resolved += usize::from(resolves(ctx, instance, protocol));
        });
        let mut name_buf = [0u8; 40];
        let path_check = suffixed(&mut name_buf, check, ".device_path");
        ctx.check(
            path_check,
            well_formed,
            format_args!("malformed device path of {} bytes", var.len),
        );
        // Devices may be listed that are absent this boot (edk2 keeps them), but the
        // console in use must be among them.
        let resolve_check = suffixed(&mut name_buf, check, ".resolves");
        ctx.check(
            resolve_check,
            resolved > 0,
            format_args!("none of {instances} instances leads to a console handle"),
        );
    }
}

/// `base` + `suffix` in `buf` (check names are short ASCII).
fn suffixed<'b>(buf: &'b mut [u8; 40], base: &str, suffix: &str) -> &'b str {
    let len = (base.len() + suffix.len()).min(buf.len());
    let split = base.len().min(len);
    buf[..split].copy_from_slice(&base.as_bytes()[..split]);
    buf[split..len].copy_from_slice(&suffix.as_bytes()[..len - split]);
    core::str::from_utf8(&buf[..len]).unwrap_or("globals.?")
}

fn boot_manager_settings(ctx: &mut Ctx) {
    if let Some(var) = read_checked(ctx, "globals.timeout", &TIMEOUT, NV_BS_RT) {
        ctx.check(
            "globals.timeout.size",
            var.len == 2,
            format_args!("{} bytes, want a UINT16", var.len),
        );
    }
    if let Some(var) = read_checked(
        ctx,
        "globals.boot_option_support",
        &BOOT_OPTION_SUPPORT,
        BS_RT,
    ) {
        ctx.check(
            "globals.boot_option_support.size",
            var.len == 4,
            format_args!("{} bytes, want a UINT32", var.len),
        );
    }
    if let Some(var) = read_checked(
        ctx,
        "globals.os_indications_supported",
        &OS_INDICATIONS_SUPPORTED,
        BS_RT,
    ) {
        let bits = <[u8; 8]>::try_from(var.bytes()).map(u64::from_le_bytes);
        ctx.check(
            "globals.os_indications_supported.boot_to_fw_ui",
            bits.is_ok_and(|bits| bits & OS_INDICATIONS_BOOT_TO_FW_UI != 0),
            format_args!("{bits:?} ({} bytes)", var.len),
        );
    }
}

/// The variables §3.3 says are to be treated as read-only answer SetVariable with
/// EFI_WRITE_PROTECTED (edk2's boot manager locks them too). The write offers the value
/// they already hold, so a firmware that takes it changes nothing.
fn read_only(ctx: &mut Ctx) {
    let read_only: [(&str, &'static [u16]); 4] = [
        (
            "globals.read_only.platform_lang_codes",
            &PLATFORM_LANG_CODES,
        ),
        ("globals.read_only.lang_codes", &LANG_CODES),
        (
            "globals.read_only.boot_option_support",
            &BOOT_OPTION_SUPPORT,
        ),
        (
            "globals.read_only.os_indications_supported",
            &OS_INDICATIONS_SUPPORTED,
        ),
    ];
    for (check, name) in read_only {
        let Ok(var) = get(ctx, name) else {
            ctx.fail(check, format_args!("the variable cannot be read"));
            continue;
        };
        let mut guid = GLOBAL_VARIABLE;
        let status = (ctx.rt.set_variable)(
            name.as_ptr().cast_mut(),
            &mut guid,
            var.attributes,
            var.len,
            var.data.cast(),
        );
        ctx.expect(check, status, &[efi::Status::WRITE_PROTECTED]);
    }
}

pub fn run(ctx: &mut Ctx) {
    languages(ctx);
    consoles(ctx);
    boot_manager_settings(ctx);
    read_only(ctx);
}
