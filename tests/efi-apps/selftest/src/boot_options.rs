//! Boot options as the boot manager leaves them for the image it starts (UEFI 2.10
//! §3.1.2, §3.3: BootCurrent names the Boot#### that started us, and that option is in
//! BootOrder and points at our device), and LoadImage of a path no firmware volume holds.
//! On vmfw only: its automatic option for the built-in BLS loader and the built-in images
//! (`Fv(2FBC36D0-...)/FvFile(...)`) loaded with LoadImage like any application. OVMF's
//! firmware volumes and files have other GUIDs (its UiApp is no BLS loader), so those
//! checks are vmfw's own and skipped on edk2.

use core::ffi::c_void;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::{device_path, loaded_image_device_path};

use crate::ctx::{Ctx, St};

const BS_RT: u32 = efi::VARIABLE_BOOTSERVICE_ACCESS | efi::VARIABLE_RUNTIME_ACCESS;
const LOAD_OPTION_ACTIVE: u32 = 0x1;
const LOAD_OPTION_HIDDEN: u32 = 0x8;
/// Longest device path or variable this module reads.
const MAX_BYTES: usize = 1024;

/// vmfw's firmware volume, its built-in files and its automatic-option tag
/// (README: boot manager).
const FIRMWARE_VOLUME: [u8; 16] = guid_bytes(
    0x2fbc36d0,
    0x1a63,
    0x4377,
    [0xaa, 0x16, 0x87, 0x2a, 0x5f, 0x25, 0x93, 0x4b],
);
const BLS_LOADER_FILE: [u8; 16] = guid_bytes(
    0xeb51ac8f,
    0xd5e6,
    0x467f,
    [0x84, 0x72, 0x52, 0x0b, 0xc7, 0x77, 0xf1, 0x44],
);
const BOOT_MENU_FILE: [u8; 16] = guid_bytes(
    0xa33a8786,
    0x5f3c,
    0x4b4d,
    [0x80, 0xf8, 0xc1, 0x55, 0x77, 0xdc, 0x42, 0xea],
);
const AUTO_OPTION_TAG: [u8; 16] = guid_bytes(
    0x5b5c7f9e,
    0x2a43,
    0x4c1d,
    [0x9a, 0x64, 0x0f, 0x3e, 0x8d, 0x21, 0xb7, 0xa6],
);
/// A file no firmware volume holds.
const UNKNOWN_FILE: [u8; 16] = guid_bytes(0x0badf11e, 0x0000, 0x4000, [0x80, 0, 0, 0, 0, 0, 0, 1]);

/// EFI_GLOBAL_VARIABLE (§3.3), which r-efi 5 lacks.
const GLOBAL_VARIABLE: efi::Guid = efi::Guid::from_fields(
    0x8be4df61,
    0x93ca,
    0x11d2,
    0xaa,
    0x0d,
    &[0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);
/// EFI_COMPONENT_NAME2_PROTOCOL (§11.5), which r-efi 5 lacks.
const COMPONENT_NAME2_GUID: efi::Guid = efi::Guid::from_fields(
    0x6a7a5cff,
    0xe8d9,
    0x4f70,
    0xba,
    0xda,
    &[0x75, 0xab, 0x30, 0x25, 0xce, 0x14],
);
#[repr(C)]
struct ComponentName2 {
    get_driver_name: extern "efiapi" fn(*mut ComponentName2, *mut u8, *mut *mut u16) -> efi::Status,
    get_controller_name: *const c_void,
    supported_languages: *const u8,
}

/// The spec's byte layout of a GUID (§Appendix A).
const fn guid_bytes(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// `Fv(FIRMWARE_VOLUME)/FvFile(file)/End` (§10.3.5.6, §10.3.5.7).
fn builtin_path(file: &[u8; 16]) -> [u8; 44] {
    let mut path = [0u8; 44];
    path[..4].copy_from_slice(&[4, 7, 20, 0]);
    path[4..20].copy_from_slice(&FIRMWARE_VOLUME);
    path[20..24].copy_from_slice(&[4, 6, 20, 0]);
    path[24..40].copy_from_slice(file);
    path[40..].copy_from_slice(&[0x7f, 0xff, 4, 0]);
    path
}

pub fn run(ctx: &mut Ctx) {
    boot_current(ctx);
    unknown_firmware_file(ctx);
    if is_edk2(ctx) {
        // OVMF's volumes hold other files; the built-in checks are about vmfw's.
        return;
    }
    builtin_bls_option(ctx);
    builtin_menu_option(ctx);
    builtin_load_image(ctx);
}

/// Whether the firmware is edk2 (OVMF), by its FirmwareVendor string (§4.3).
fn is_edk2(ctx: &Ctx) -> bool {
    let vendor = ctx.st.firmware_vendor;
    // SAFETY: FirmwareVendor is a NUL-terminated UCS-2 string (§4.3); we stop at the
    // first mismatch, at the latest at its terminator.
    !vendor.is_null()
        && "EDK II"
            .encode_utf16()
            .enumerate()
            .all(|(i, c)| unsafe { *vendor.add(i) } == c)
}

/// GetVariable of the global variable `name` into `buf`: (status, attributes, size).
fn global(ctx: &Ctx, name: &str, buf: &mut [u8]) -> (efi::Status, u32, usize) {
    let mut name16 = [0u16; 16];
    for (slot, unit) in name16.iter_mut().zip(name.encode_utf16()) {
        *slot = unit;
    }
    let mut guid = GLOBAL_VARIABLE;
    let mut attrs = 0u32;
    let mut size = buf.len();
    let status = (ctx.rt.get_variable)(
        name16.as_mut_ptr(),
        &mut guid,
        &mut attrs,
        &mut size,
        buf.as_mut_ptr().cast(),
    );
    (status, attrs, size)
}

/// `Boot####` with four upper-case hex digits (§3.3).
fn boot_name(number: u16, out: &mut [u8; 8]) -> &str {
    out[..4].copy_from_slice(b"Boot");
    for (i, shift) in [12, 8, 4, 0].into_iter().enumerate() {
        out[4 + i] = b"0123456789ABCDEF"[usize::from((number >> shift) & 0xf)];
    }
    core::str::from_utf8(out).unwrap_or("Boot")
}

/// A parsed EFI_LOAD_OPTION (§3.1.3): attributes, first device path (with End),
/// OptionalData.
struct LoadOption<'a> {
    attributes: u32,
    path: &'a [u8],
    optional_data: &'a [u8],
}

fn parse_option(bytes: &[u8]) -> Option<LoadOption<'_>> {
    let attributes = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let list_len = usize::from(u16::from_le_bytes(bytes.get(4..6)?.try_into().ok()?));
    let mut at = 6;
    while bytes.get(at..at + 2)? != [0, 0] {
        at += 2;
    }
    let list = bytes.get(at + 2..at + 2 + list_len)?;
    let path = &list[..path_len(list)?];
    Some(LoadOption {
        attributes,
        path,
        optional_data: &bytes[at + 2 + list_len..],
    })
}

/// Length of the first device path in `bytes`, End node included.
fn path_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let node = bytes.get(at..at + 4)?;
        let len = usize::from(u16::from_le_bytes([node[2], node[3]]));
        if len < 4 {
            return None;
        }
        at += len;
        if node[0] == 0x7f && node[1] == 0xff {
            return Some(at);
        }
    }
}

/// Copies the device path at `dp` (End included) into `buf`; its length.
fn read_path(dp: *const device_path::Protocol, buf: &mut [u8; MAX_BYTES]) -> Option<usize> {
    if dp.is_null() {
        return None;
    }
    let mut at = 0;
    loop {
        // SAFETY: `dp` is a device path a protocol handed us; we read node headers and
        // nodes one at a time up to its End node, never more than MAX_BYTES.
        let header = unsafe { ptr::read_unaligned(dp.cast::<u8>().add(at).cast::<[u8; 4]>()) };
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        if len < 4 || at + len > MAX_BYTES {
            return None;
        }
        // SAFETY: as above; the node is `len` bytes long.
        let node = unsafe { core::slice::from_raw_parts(dp.cast::<u8>().add(at), len) };
        buf[at..at + len].copy_from_slice(node);
        at += len;
        if header[0] == 0x7f && header[1] == 0xff {
            return Some(at);
        }
    }
}

/// BootOrder as numbers in `out`; the count.
fn boot_order(ctx: &Ctx, out: &mut [u16; 64]) -> Option<usize> {
    let mut buf = [0u8; 128];
    let (status, _, size) = global(ctx, "BootOrder", &mut buf);
    if status != efi::Status::SUCCESS || size % 2 != 0 {
        return None;
    }
    for (slot, pair) in out.iter_mut().zip(buf[..size].chunks_exact(2)) {
        *slot = u16::from_le_bytes([pair[0], pair[1]]);
    }
    Some(size / 2)
}

/// §3.3: BootCurrent (BS|RT, 2 bytes) names the option that started us; it is in
/// BootOrder and its device path leads to our device (a prefix of our device's path:
/// OVMF's option names the disk, vmfw's the partition).
fn boot_current(ctx: &mut Ctx) {
    let mut buf = [0u8; 8];
    let (status, attrs, size) = global(ctx, "BootCurrent", &mut buf);
    if !ctx.check(
        "boot_options.boot_current",
        status == efi::Status::SUCCESS && attrs == BS_RT && size == 2,
        format_args!("{} attrs {attrs:#x} size {size}", St(status)),
    ) {
        return;
    }
    let current = u16::from_le_bytes([buf[0], buf[1]]);
    let mut order = [0u16; 64];
    let count = boot_order(ctx, &mut order).unwrap_or(0);
    ctx.check(
        "boot_options.boot_order_lists_current",
        order[..count].contains(&current),
        format_args!(
            "Boot{current:04X} not in BootOrder {:04X?}",
            &order[..count]
        ),
    );
    let mut name = [0u8; 8];
    let mut option = [0u8; MAX_BYTES];
    let (status, _, size) = global(ctx, boot_name(current, &mut name), &mut option);
    let Some(parsed) = (status == efi::Status::SUCCESS)
        .then(|| parse_option(&option[..size]))
        .flatten()
    else {
        ctx.fail(
            "boot_options.current_option_is_our_device",
            format_args!("Boot{current:04X}: {} size {size}", St(status)),
        );
        return;
    };
    let mut device = [0u8; MAX_BYTES];
    let device_len = crate::images::loaded_image(ctx, ctx.image)
        // SAFETY: HandleProtocol returned our live LoadedImage protocol.
        .map(|li| unsafe { (*li).device_handle })
        .and_then(|dev| {
            ctx.handle_protocol::<device_path::Protocol>(dev, &device_path::PROTOCOL_GUID)
        })
        .and_then(|dp| read_path(dp, &mut device));
    let option_nodes = &parsed.path[..parsed.path.len() - 4];
    ctx.check(
        "boot_options.current_option_is_our_device",
        device_len.is_some_and(|len| device[..len - 4].starts_with(option_nodes)),
        format_args!(
            "Boot{current:04X} path {:02x?} vs device {:02x?}",
            option_nodes,
            &device[..device_len.unwrap_or(0)]
        ),
    );
}

/// LoadImage of a file no firmware volume holds: NOT_FOUND (§7.4.1), on every firmware.
fn unknown_firmware_file(ctx: &mut Ctx) {
    let path = builtin_path(&UNKNOWN_FILE);
    let mut child: efi::Handle = ptr::null_mut();
    let status = (ctx.bs.load_image)(
        efi::Boolean::FALSE,
        ctx.image,
        path.as_ptr().cast_mut().cast(),
        ptr::null_mut(),
        0,
        &mut child,
    );
    ctx.expect(
        "boot_options.load_image.unknown_fv_file",
        status,
        &[efi::Status::NOT_FOUND],
    );
}

/// The first Boot#### among 0000..=00FF whose path is `path`: (number, option bytes).
fn find_option(ctx: &Ctx, path: &[u8], buf: &mut [u8; MAX_BYTES]) -> Option<(u16, usize)> {
    (0..=0xffu16).find_map(|number| {
        let mut name = [0u8; 8];
        let (status, attrs, size) = global(ctx, boot_name(number, &mut name), buf);
        let matches = status == efi::Status::SUCCESS
            && attrs == BS_RT | efi::VARIABLE_NON_VOLATILE
            && parse_option(&buf[..size]).is_some_and(|o| o.path == path);
        matches.then_some((number, size))
    })
}

/// vmfw: an automatic, active option for the built-in BLS loader, tagged, in BootOrder.
fn builtin_bls_option(ctx: &mut Ctx) {
    let mut buf = [0u8; MAX_BYTES];
    let Some((number, size)) = find_option(ctx, &builtin_path(&BLS_LOADER_FILE), &mut buf) else {
        ctx.fail(
            "boot_options.bls_loader_option",
            format_args!("no Boot#### names Fv()/FvFile(EB51AC8F-...)"),
        );
        return;
    };
    let option = parse_option(&buf[..size]);
    let mut order = [0u16; 64];
    let count = boot_order(ctx, &mut order).unwrap_or(0);
    ctx.check(
        "boot_options.bls_loader_option",
        option.as_ref().is_some_and(|o| {
            o.attributes & LOAD_OPTION_ACTIVE != 0 && o.optional_data == AUTO_OPTION_TAG
        }) && order[..count].contains(&number),
        format_args!(
            "Boot{number:04X} attributes/tag/BootOrder {:04X?}",
            &order[..count]
        ),
    );
}

/// vmfw: the boot menu's automatic option is hidden and stays out of BootOrder (it is
/// reached through BootNext or the menu timeout, never by falling through BootOrder).
fn builtin_menu_option(ctx: &mut Ctx) {
    let mut buf = [0u8; MAX_BYTES];
    let found = find_option(ctx, &builtin_path(&BOOT_MENU_FILE), &mut buf);
    let mut order = [0u16; 64];
    let count = boot_order(ctx, &mut order).unwrap_or(0);
    ctx.check(
        "boot_options.boot_menu_option_hidden",
        found.is_some_and(|(number, size)| {
            parse_option(&buf[..size]).is_some_and(|o| o.attributes & LOAD_OPTION_HIDDEN != 0)
                && !order[..count].contains(&number)
        }),
        format_args!("{found:?}"),
    );
}

/// vmfw: LoadImage of the boot menu's path gives an image handle whose LoadedImage has
/// FilePath FvFile(), DeviceHandle the volume Fv(), us as parent and the firmware's range,
/// whose LoadedImageDevicePath is the full path and whose ComponentName2 names it; an
/// image not started unloads (§7.4.1, §7.4.5, §9.1, §9.2, §11.5).
fn builtin_load_image(ctx: &mut Ctx) {
    let path = builtin_path(&BOOT_MENU_FILE);
    let mut child: efi::Handle = ptr::null_mut();
    let status = (ctx.bs.load_image)(
        efi::Boolean::FALSE,
        ctx.image,
        path.as_ptr().cast_mut().cast(),
        ptr::null_mut(),
        0,
        &mut child,
    );
    if !ctx.ok("boot_options.builtin.load_image", status) {
        return;
    }
    let mut buf = [0u8; MAX_BYTES];
    let loaded = crate::images::loaded_image(ctx, child);
    // SAFETY: HandleProtocol returned the child's live LoadedImage protocol.
    let li = loaded.map(|li| unsafe { &*li });
    let file_ok = li.is_some_and(|li| {
        read_path(li.file_path, &mut buf).is_some_and(|len| buf[..len] == path[20..])
    });
    let device_ok = li.is_some_and(|li| {
        ctx.handle_protocol::<device_path::Protocol>(li.device_handle, &device_path::PROTOCOL_GUID)
            .and_then(|dp| read_path(dp, &mut buf))
            .is_some_and(|len| buf[..len - 4] == path[..20])
    });
    ctx.check(
        "boot_options.builtin.loaded_image",
        file_ok
            && device_ok
            && li.is_some_and(|li| {
                li.parent_handle == ctx.image && !li.image_base.is_null() && li.image_size > 0
            }),
        format_args!("FilePath ok {file_ok}, DeviceHandle path ok {device_ok}"),
    );
    let full = ctx
        .handle_protocol::<device_path::Protocol>(child, &loaded_image_device_path::PROTOCOL_GUID)
        .and_then(|dp| read_path(dp, &mut buf));
    ctx.check(
        "boot_options.builtin.loaded_image_device_path",
        full.is_some_and(|len| buf[..len] == path),
        format_args!("{full:?}"),
    );
    let named = ctx
        .handle_protocol::<ComponentName2>(child, &COMPONENT_NAME2_GUID)
        .and_then(|cn| {
            let mut name: *mut u16 = ptr::null_mut();
            let mut language = *b"en\0";
            // SAFETY: `cn` is the ComponentName2 protocol on the child's handle; the
            // language and the out-pointer are live locals (§11.5.1).
            let status = unsafe { ((*cn).get_driver_name)(cn, language.as_mut_ptr(), &mut name) };
            (status == efi::Status::SUCCESS && !name.is_null()).then_some(name)
        })
        .is_some_and(|name| {
            // SAFETY: GetDriverName returned a NUL-terminated string; we compare at most
            // as many units as "Boot menu" has, plus its NUL.
            "Boot menu\0"
                .encode_utf16()
                .enumerate()
                .all(|(i, c)| unsafe { *name.add(i) } == c)
        });
    ctx.check(
        "boot_options.builtin.component_name",
        named,
        format_args!("GetDriverName is not 'Boot menu'"),
    );
    ctx.ok(
        "boot_options.builtin.unload_image",
        (ctx.bs.unload_image)(child),
    );
}
