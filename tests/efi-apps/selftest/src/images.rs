//! Image services (UEFI 2.10 §7.4) and the LoadedImage protocol (§9.1).
//!
//! The child image is this very application, read back through SimpleFileSystem and
//! started with [`CHILD_OPTIONS`]: it then calls Exit() with [`CHILD_STATUS`] and
//! [`CHILD_EXIT_DATA`], which StartImage() must hand back.

use core::ffi::c_void;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::{device_path, file, loaded_image, simple_file_system};

use crate::ctx::{Ctx, St, ucs2};

/// Load options that turn the application into the child image.
pub static CHILD_OPTIONS: [u16; 15] = ucs2("selftest-child");
/// An OEM error code (top two bits set, UEFI 2.10 Appendix D) nobody else returns.
pub const CHILD_STATUS: efi::Status = efi::Status::from_usize((0b11 << (usize::BITS - 2)) | 0x5E1F);
/// Exit data: a NUL-terminated string (§7.4.5).
const CHILD_EXIT_DATA: [u16; 12] = ucs2("child-exit");

pub fn loaded_image(ctx: &Ctx, handle: efi::Handle) -> Option<*mut loaded_image::Protocol> {
    ctx.handle_protocol(handle, &loaded_image::PROTOCOL_GUID)
}

/// Whether this instance was started by [`run`] as the child image.
pub fn is_child(ctx: &Ctx) -> bool {
    let Some(image) = loaded_image(ctx, ctx.image) else {
        return false;
    };
    // SAFETY: HandleProtocol returned our live LoadedImage protocol.
    let (options, size) = unsafe { ((*image).load_options, (*image).load_options_size) };
    if options.is_null() || size as usize != size_of_val(&CHILD_OPTIONS) {
        return false;
    }
    // SAFETY: the firmware (here: our parent) reports `size` bytes of load options.
    let options =
        unsafe { core::slice::from_raw_parts(options.cast::<u16>(), CHILD_OPTIONS.len()) };
    options == CHILD_OPTIONS
}

/// The child's whole life: Exit() with a known status and pool-allocated exit data.
pub fn child_main(ctx: &Ctx) -> efi::Status {
    let size = size_of_val(&CHILD_EXIT_DATA);
    let Some(data) = ctx.alloc_pool(size) else {
        return efi::Status::OUT_OF_RESOURCES;
    };
    // SAFETY: `data` is a fresh pool buffer of `size` bytes.
    unsafe { ptr::copy_nonoverlapping(CHILD_EXIT_DATA.as_ptr().cast::<u8>(), data, size) };
    // Exit() does not return on success (§7.4.5).
    (ctx.bs.exit)(ctx.image, CHILD_STATUS, size, data.cast())
}

pub fn run(ctx: &mut Ctx) {
    let Some(image) = loaded_image(ctx, ctx.image) else {
        ctx.fail(
            "images.loaded_image",
            format_args!("no LoadedImage on the image handle"),
        );
        return;
    };
    ctx.pass("images.loaded_image");
    // SAFETY: HandleProtocol returned our live LoadedImage protocol.
    let li = unsafe { &*image };
    let base = li.image_base as u64;
    let entry = crate::efi_main as *const () as u64;
    ctx.check(
        "images.loaded_image.revision",
        li.revision >= loaded_image::REVISION,
        format_args!("{:#x}", li.revision),
    );
    ctx.check(
        "images.loaded_image.image_range",
        base != 0 && li.image_size > 0 && (base..base + li.image_size).contains(&entry),
        format_args!("base {base:#x} size {:#x} entry {entry:#x}", li.image_size),
    );
    ctx.check(
        "images.loaded_image.system_table",
        ptr::eq(li.system_table, ctx.st),
        format_args!("{:p}", li.system_table),
    );
    // ParentHandle may be NULL for an image the boot manager loaded (§9.1.1).
    ctx.check(
        "images.loaded_image.device_and_path",
        !li.device_handle.is_null() && !li.file_path.is_null(),
        format_args!("device {:p} path {:p}", li.device_handle, li.file_path),
    );
    ctx.check(
        "images.loaded_image.memory_types",
        li.image_code_type == efi::LOADER_CODE && li.image_data_type == efi::LOADER_DATA,
        format_args!("{} / {}", li.image_code_type, li.image_data_type),
    );

    match read_own_file(ctx, li) {
        Ok((buf, size)) => {
            ctx.pass("images.read_own_file");
            child_checks(ctx, buf, size);
            ctx.free_pool(buf);
        }
        Err(status) => ctx.fail("images.read_own_file", format_args!("{}", St(status))),
    }
    bad_image_checks(ctx);
}

pub fn load(ctx: &Ctx, buf: *mut u8, size: usize) -> (efi::Status, efi::Handle) {
    let mut child: efi::Handle = ptr::null_mut();
    let status = (ctx.bs.load_image)(
        efi::Boolean::FALSE,
        ctx.image,
        ptr::null_mut(),
        buf.cast(),
        size,
        &mut child,
    );
    (status, child)
}

fn child_checks(ctx: &mut Ctx, buf: *mut u8, size: usize) {
    let bs = ctx.bs;
    let (status, child) = load(ctx, buf, size);
    if !ctx.ok("images.load_image.buffer", status) {
        return;
    }
    let Some(child_image) = loaded_image(ctx, child) else {
        ctx.fail(
            "images.load_image.loaded_image",
            format_args!("child has no LoadedImage"),
        );
        return;
    };
    // SAFETY: the child's LoadedImage protocol is live until it is unloaded, and it has
    // not started yet, so nobody else reads it concurrently.
    unsafe {
        ctx.check(
            "images.load_image.parent",
            (*child_image).parent_handle == ctx.image,
            format_args!("{:p}", (*child_image).parent_handle),
        );
        (*child_image).load_options = CHILD_OPTIONS.as_ptr().cast_mut().cast();
        (*child_image).load_options_size = size_of_val(&CHILD_OPTIONS) as u32;
    }

    let mut exit_size = 0usize;
    let mut exit_data: *mut u16 = ptr::null_mut();
    let status = (bs.start_image)(child, &mut exit_size, &mut exit_data);
    // An application is unloaded when it exits (§7.4.5), so its handle is now invalid.
    let unload_status = (bs.unload_image)(child);
    ctx.expect("images.start_image.exit_status", status, &[CHILD_STATUS]);
    let data_ok = !exit_data.is_null()
        && exit_size == size_of_val(&CHILD_EXIT_DATA)
        // SAFETY: StartImage returned `exit_size` bytes of exit data at `exit_data`.
        && unsafe { core::slice::from_raw_parts(exit_data, CHILD_EXIT_DATA.len()) } == CHILD_EXIT_DATA;
    ctx.check(
        "images.start_image.exit_data",
        data_ok,
        format_args!("{exit_size} bytes at {exit_data:p}"),
    );
    ctx.free_pool(exit_data);
    ctx.expect(
        "images.unload_image.exited",
        unload_status,
        &[efi::Status::INVALID_PARAMETER],
    );

    // A loaded but never started image can be unloaded (§7.4.4).
    let (status, child) = load(ctx, buf, size);
    if ctx.ok("images.load_image.again", status) {
        ctx.ok("images.unload_image", (bs.unload_image)(child));
        let mut iface: *mut c_void = ptr::null_mut();
        let status = (bs.handle_protocol)(
            child,
            ptr::from_ref(&loaded_image::PROTOCOL_GUID).cast_mut(),
            &mut iface,
        );
        ctx.expect(
            "images.unload_image.handle_gone",
            status,
            &[efi::Status::INVALID_PARAMETER],
        );
    }

    // Exit() on a loaded, not started image unloads it and returns SUCCESS (§7.4.5).
    let (status, child) = load(ctx, buf, size);
    if ctx.ok("images.load_image.for_exit", status) {
        ctx.ok(
            "images.exit.not_started",
            (bs.exit)(child, efi::Status::SUCCESS, 0, ptr::null_mut()),
        );
    }
}

fn bad_image_checks(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let mut garbage = [0x5Au8; 512];
    garbage[..2].copy_from_slice(b"MZ");
    let (status, child) = load(ctx, garbage.as_mut_ptr(), garbage.len());
    if status == efi::Status::SUCCESS {
        let _ = (bs.unload_image)(child);
    }
    ctx.expect(
        "images.load_image.garbage",
        status,
        &[efi::Status::LOAD_ERROR, efi::Status::UNSUPPORTED],
    );
    let (status, child) = load(ctx, ptr::null_mut(), 0);
    if status == efi::Status::SUCCESS {
        let _ = (bs.unload_image)(child);
    }
    // With neither a buffer nor a device path there is nothing to load (§7.4.1).
    ctx.expect(
        "images.load_image.nothing",
        status,
        &[efi::Status::NOT_FOUND, efi::Status::INVALID_PARAMETER],
    );
    let status = (bs.load_image)(
        efi::Boolean::FALSE,
        ctx.image,
        ptr::null_mut(),
        garbage.as_mut_ptr().cast(),
        garbage.len(),
        ptr::null_mut(),
    );
    ctx.expect(
        "images.load_image.null_handle",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let mut not_an_image = 0u64;
    let bogus: efi::Handle = ptr::from_mut(&mut not_an_image).cast();
    ctx.expect(
        "images.start_image.bad_handle",
        (bs.start_image)(bogus, ptr::null_mut(), ptr::null_mut()),
        &[efi::Status::INVALID_PARAMETER],
    );
    ctx.expect(
        "images.unload_image.bad_handle",
        (bs.unload_image)(bogus),
        &[efi::Status::INVALID_PARAMETER],
    );
}

/// Reads the file this image was loaded from: FilePath's media file-path nodes name it
/// on the SimpleFileSystem of DeviceHandle (§9.1, §10.3.5.4, §13.4).
pub fn read_own_file(
    ctx: &Ctx,
    li: &loaded_image::Protocol,
) -> Result<(*mut u8, usize), efi::Status> {
    let mut name = [0u16; 260];
    file_path_name(li.file_path, &mut name)?;
    let fs: *mut simple_file_system::Protocol = ctx
        .handle_protocol(li.device_handle, &simple_file_system::PROTOCOL_GUID)
        .ok_or(efi::Status::UNSUPPORTED)?;
    let mut root: *mut file::Protocol = ptr::null_mut();
    // SAFETY: `fs` is the device's live SimpleFileSystem protocol.
    let status = unsafe { ((*fs).open_volume)(fs, &mut root) };
    if status != efi::Status::SUCCESS {
        return Err(status);
    }
    let mut handle: *mut file::Protocol = ptr::null_mut();
    // SAFETY: `root` is the open root directory returned by OpenVolume.
    let status =
        unsafe { ((*root).open)(root, &mut handle, name.as_mut_ptr(), file::MODE_READ, 0) };
    // SAFETY: `root` stays valid until closed here.
    let _ = unsafe { ((*root).close)(root) };
    if status != efi::Status::SUCCESS {
        return Err(status);
    }
    let result = read_whole(ctx, handle);
    // SAFETY: `handle` is the file opened above.
    let _ = unsafe { ((*handle).close)(handle) };
    result
}

fn read_whole(ctx: &Ctx, handle: *mut file::Protocol) -> Result<(*mut u8, usize), efi::Status> {
    let mut info_guid = file::INFO_ID;
    let mut info_size = 0usize;
    // SAFETY: `handle` is an open file; a zero-size query only reports the needed size.
    let status =
        unsafe { ((*handle).get_info)(handle, &mut info_guid, &mut info_size, ptr::null_mut()) };
    if status != efi::Status::BUFFER_TOO_SMALL {
        return Err(status);
    }
    let info = ctx
        .alloc_pool(info_size)
        .ok_or(efi::Status::OUT_OF_RESOURCES)?;
    // SAFETY: `info` holds `info_size` bytes as the firmware asked for.
    let status =
        unsafe { ((*handle).get_info)(handle, &mut info_guid, &mut info_size, info.cast()) };
    // SAFETY: on success `info` holds an EFI_FILE_INFO, whose FileSize is at offset 8.
    let file_size = unsafe { ptr::read_unaligned(info.add(8).cast::<u64>()) } as usize;
    ctx.free_pool(info);
    if status != efi::Status::SUCCESS {
        return Err(status);
    }
    let buf = ctx
        .alloc_pool(file_size)
        .ok_or(efi::Status::OUT_OF_RESOURCES)?;
    let mut read = file_size;
    // SAFETY: `buf` holds `file_size` bytes.
    let status = unsafe { ((*handle).read)(handle, &mut read, buf.cast()) };
    if status != efi::Status::SUCCESS || read != file_size {
        ctx.free_pool(buf);
        return Err(if status == efi::Status::SUCCESS {
            efi::Status::END_OF_FILE
        } else {
            status
        });
    }
    Ok((buf, file_size))
}

/// Concatenates the file-path nodes of a device path into a NUL-terminated name.
fn file_path_name(
    mut node: *const device_path::Protocol,
    out: &mut [u16],
) -> Result<(), efi::Status> {
    let mut len = 0usize;
    loop {
        if node.is_null() {
            return Err(efi::Status::NOT_FOUND);
        }
        // SAFETY: `node` points at a device path node header inside the image's FilePath,
        // which ends with an End node (§10.2); every node's length covers its header.
        let (kind, sub, node_len) = unsafe {
            (
                (*node).r#type,
                (*node).sub_type,
                u16::from_le_bytes((*node).length),
            )
        };
        if kind == device_path::TYPE_END || node_len < 4 {
            break;
        }
        if kind == device_path::TYPE_MEDIA && sub == device_path::Media::SUBTYPE_FILE_PATH {
            let chars = (usize::from(node_len) - 4) / 2;
            for i in 0..chars {
                // SAFETY: the node's `node_len` bytes hold `chars` UCS-2 units after the header.
                let c =
                    unsafe { ptr::read_unaligned(node.cast::<u8>().add(4 + 2 * i).cast::<u16>()) };
                if c == 0 {
                    break;
                }
                if len > 0 && i == 0 && out[len - 1] != u16::from(b'\\') && c != u16::from(b'\\') {
                    *out.get_mut(len).ok_or(efi::Status::BUFFER_TOO_SMALL)? = u16::from(b'\\');
                    len += 1;
                }
                *out.get_mut(len).ok_or(efi::Status::BUFFER_TOO_SMALL)? = c;
                len += 1;
            }
        }
        // SAFETY: advancing by the node length stays inside the device path (see above).
        node = unsafe { node.cast::<u8>().add(usize::from(node_len)).cast() };
    }
    if len == 0 {
        return Err(efi::Status::NOT_FOUND);
    }
    *out.get_mut(len).ok_or(efi::Status::BUFFER_TOO_SMALL)? = 0;
    Ok(())
}
