//! Driver images and EFI_FIRMWARE_VOLUME2_PROTOCOL (PI 1.8 vol. 3 §3.4.1), the way the
//! edk2 Shell's `drivers` and `dh` name an image: DriverBinding.ImageHandle carries
//! LoadedImage (UEFI 2.10 §9.1); when its FilePath is `FvFile(<name>)` and its
//! DeviceHandle has FV2, ReadSection(name, EFI_SECTION_USER_INTERFACE, 0) gives the
//! image's name.
//!
//! On both firmwares: every driver's ImageHandle has LoadedImage; the user-interface
//! section of the drivers loaded from a volume is a NUL-terminated UCS-2 string in
//! pool memory; a caller's buffer too small for it is filled and answered
//! EFI_WARN_BUFFER_TOO_SMALL with the size needed (§3.4.1.5); a second user-interface
//! section and an unknown file are EFI_NOT_FOUND; GetNextFile's DRIVER filter walks
//! files of that type only, the drivers' files among them.
//!
//! On vmfw only (OVMF's volumes hold other files, and its DXE core's FV2 answers
//! WriteFile EFI_UNSUPPORTED where vmfw's read-only volume says EFI_WRITE_PROTECTED, as
//! §3.4.1.6 words it): the storage drivers' files and names, the built-in applications
//! listed as APPLICATION files, ReadFile's size of the user-interface section stream,
//! the volume's read-only attributes, and the driver images' LoadedImage fields.

use core::ffi::c_void;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::{driver_binding, loaded_image};

use crate::ctx::{Ctx, St};

/// EFI_FIRMWARE_VOLUME2_PROTOCOL; r-efi does not define it.
#[repr(C)]
struct Fv2 {
    get_volume_attributes: extern "efiapi" fn(*mut Fv2, *mut u64) -> efi::Status,
    set_volume_attributes: extern "efiapi" fn(*mut Fv2, *mut u64) -> efi::Status,
    read_file: extern "efiapi" fn(
        *mut Fv2,
        *const efi::Guid,
        *mut *mut c_void,
        *mut usize,
        *mut u8,
        *mut u32,
        *mut u32,
    ) -> efi::Status,
    read_section: extern "efiapi" fn(
        *mut Fv2,
        *const efi::Guid,
        u8,
        usize,
        *mut *mut c_void,
        *mut usize,
        *mut u32,
    ) -> efi::Status,
    write_file: extern "efiapi" fn(*mut Fv2, u32, u32, *mut c_void) -> efi::Status,
    get_next_file: extern "efiapi" fn(
        *mut Fv2,
        *mut c_void,
        *mut u8,
        *mut efi::Guid,
        *mut u32,
        *mut usize,
    ) -> efi::Status,
    key_size: u32,
    parent_handle: efi::Handle,
    get_info:
        extern "efiapi" fn(*mut Fv2, *const efi::Guid, *mut usize, *mut c_void) -> efi::Status,
    set_info: extern "efiapi" fn(*mut Fv2, *const efi::Guid, usize, *const c_void) -> efi::Status,
}

const FV2_GUID: efi::Guid = efi::Guid::from_fields(
    0x220e_73b6,
    0x6bdb,
    0x4413,
    0x84,
    0x05,
    &[0xb9, 0x74, 0xb1, 0x08, 0x61, 0x9a],
);

const SECTION_USER_INTERFACE: u8 = 0x15;
const SECTION_RAW: u8 = 0x19;
const FILETYPE_ALL: u8 = 0x00;
const FILETYPE_DRIVER: u8 = 0x07;
const FILETYPE_APPLICATION: u8 = 0x09;
const FV_READ_STATUS: u64 = 1 << 2;
const FV_WRITE_STATUS: u64 = 1 << 5;

/// vmfw's storage drivers' files and their image names.
const PARTITION_DRIVER_FILE: efi::Guid = efi::Guid::from_fields(
    0x6b1e_0b5a,
    0x3c2d,
    0x4e8f,
    0x9a,
    0x7b,
    &[0x1d, 0x2c, 0x3e, 0x4f, 0x5a, 0x60],
);
const FAT_DRIVER_FILE: efi::Guid = efi::Guid::from_fields(
    0x7c2f_1c6b,
    0x4d3e,
    0x4f90,
    0x8b,
    0x8c,
    &[0x2e, 0x3d, 0x4f, 0x5a, 0x6b, 0x71],
);
const DISK_IO_DRIVER_FILE: efi::Guid = efi::Guid::from_fields(
    0x8d3a_2d7c,
    0x5e4f,
    0x4a01,
    0x9c,
    0x9d,
    &[0x3f, 0x4e, 0x5a, 0x6b, 0x7c, 0x82],
);
/// vmfw's built-in applications (BLS loader, boot menu, direct kernel boot).
const BLS_LOADER_FILE: efi::Guid = efi::Guid::from_fields(
    0xeb51_ac8f,
    0xd5e6,
    0x467f,
    0x84,
    0x72,
    &[0x52, 0x0b, 0xc7, 0x77, 0xf1, 0x44],
);
const BOOT_MENU_FILE: efi::Guid = efi::Guid::from_fields(
    0xa33a_8786,
    0x5f3c,
    0x4b4d,
    0x80,
    0xf8,
    &[0xc1, 0x55, 0x77, 0xdc, 0x42, 0xea],
);
const DIRECT_KERNEL_FILE: efi::Guid = efi::Guid::from_fields(
    0x0f7c_4c2e,
    0x8d4b,
    0x4e6b,
    0x9c,
    0x1a,
    &[0x3b, 0x5e, 0x2d, 0x7f, 0x6a, 0x10],
);
/// No firmware has a file of this name.
const UNKNOWN_FILE: efi::Guid = efi::Guid::from_fields(
    0x5d0f_3a27,
    0x91c4,
    0x4e6b,
    0xa8,
    0x1d,
    &[0x73, 0x02, 0xbe, 0x6c, 0x94, 0x11],
);

/// Longest name kept for comparison, in UCS-2 units.
const MAX_NAME: usize = 64;
/// GetNextFile calls before a walk is declared endless.
const MAX_FILES: usize = 4096;
/// Largest KeySize we give a buffer for.
const MAX_KEY: usize = 64;

/// A firmware driver whose image was loaded from a volume.
struct DriverImage {
    image: efi::Handle,
    volume: efi::Handle,
    fv: *mut Fv2,
    file: efi::Guid,
    loaded: *mut loaded_image::Protocol,
}

pub fn run(ctx: &mut Ctx) {
    let volumes = locate(ctx, &FV2_GUID);
    ctx.check(
        "firmware_volume.locate",
        volumes.1 > 0,
        format_args!("no handle with EFI_FIRMWARE_VOLUME2_PROTOCOL"),
    );
    ctx.free_pool(volumes.0);

    let mut images = [const { None::<DriverImage> }; 64];
    let count = driver_images(ctx, &mut images);
    let images: &[Option<DriverImage>] = &images[..count];
    let Some(first) = images.iter().flatten().next() else {
        ctx.fail(
            "firmware_volume.driver_from_volume",
            format_args!("no driver image has an FvFile() path on a volume"),
        );
        return;
    };
    ctx.pass("firmware_volume.driver_from_volume");

    ui_names(ctx, images);
    small_buffer(ctx, first);
    let mut name = [0u16; MAX_NAME];
    let status = read_ui(ctx, first, &first.file, 1, &mut name);
    ctx.expect(
        "firmware_volume.read_section.second_ui_instance",
        status,
        &[efi::Status::NOT_FOUND],
    );
    let status = read_ui(ctx, first, &UNKNOWN_FILE, 0, &mut name);
    ctx.expect(
        "firmware_volume.read_section.unknown_file",
        status,
        &[efi::Status::NOT_FOUND],
    );
    driver_walk(ctx, first);

    if is_edk2(ctx) {
        ctx.print(format_args!(
            "# firmware_volume: vmfw's files and names skipped on edk2\n"
        ));
        return;
    }
    vmfw_names(ctx, images);
    vmfw_volume(ctx, first);
    vmfw_driver_image(ctx, images);
}

/// Whether the firmware is edk2 (OVMF), by its FirmwareVendor string (§4.3).
fn is_edk2(ctx: &Ctx) -> bool {
    let vendor = ctx.st.firmware_vendor;
    // SAFETY: FirmwareVendor is a NUL-terminated UCS-2 string (§4.3); the walk stops
    // at the first mismatch, at the latest at its terminator.
    !vendor.is_null()
        && "EDK II"
            .encode_utf16()
            .enumerate()
            .all(|(i, c)| unsafe { *vendor.add(i) } == c)
}

/// LocateHandleBuffer(ByProtocol): the buffer (free it) and the count.
fn locate(ctx: &Ctx, guid: &efi::Guid) -> (*mut efi::Handle, usize) {
    let mut guid = *guid;
    let mut count = 0usize;
    let mut buffer: *mut efi::Handle = ptr::null_mut();
    let status = (ctx.bs.locate_handle_buffer)(
        efi::BY_PROTOCOL,
        &mut guid,
        ptr::null_mut(),
        &mut count,
        &mut buffer,
    );
    if status != efi::Status::SUCCESS || buffer.is_null() {
        return (ptr::null_mut(), 0);
    }
    (buffer, count)
}

/// Checks that every DriverBinding's ImageHandle has LoadedImage, and fills `out`
/// with the drivers whose image names an `FvFile()` on a volume with FV2.
fn driver_images(ctx: &mut Ctx, out: &mut [Option<DriverImage>]) -> usize {
    let (buffer, count) = locate(ctx, &driver_binding::PROTOCOL_GUID);
    // SAFETY: LocateHandleBuffer returned `count` handles at `buffer` (§7.3.15).
    let handles = unsafe { core::slice::from_raw_parts(buffer, count) };
    let mut without_image = 0usize;
    let mut kept = 0usize;
    for &handle in handles {
        let Some(binding) =
            ctx.handle_protocol::<driver_binding::Protocol>(handle, &driver_binding::PROTOCOL_GUID)
        else {
            continue;
        };
        // SAFETY: an installed DriverBinding interface (§11.1).
        let image = unsafe { (*binding).image_handle };
        let Some(loaded) =
            ctx.handle_protocol::<loaded_image::Protocol>(image, &loaded_image::PROTOCOL_GUID)
        else {
            without_image += 1;
            continue;
        };
        // SAFETY: an installed LoadedImage interface (§9.1).
        let (volume, path) = unsafe { ((*loaded).device_handle, (*loaded).file_path) };
        let (Some(file), Some(fv)) = (fv_file(path), ctx.handle_protocol::<Fv2>(volume, &FV2_GUID))
        else {
            continue;
        };
        if kept < out.len() {
            out[kept] = Some(DriverImage {
                image,
                volume,
                fv,
                file,
                loaded,
            });
            kept += 1;
        }
    }
    ctx.free_pool(buffer);
    ctx.check(
        "firmware_volume.driver_image_handles_have_loaded_image",
        count > 0 && without_image == 0,
        format_args!("{without_image} of {count} drivers' ImageHandles lack LoadedImage"),
    );
    kept
}

/// The file GUID of a FilePath whose first node is MEDIA_PIWG_FW_FILE_DP.
fn fv_file(path: *mut r_efi::protocols::device_path::Protocol) -> Option<efi::Guid> {
    if path.is_null() {
        return None;
    }
    let node = path.cast::<u8>();
    // SAFETY: a LoadedImage FilePath is a device path (§10.2): its first node's
    // 4-byte header is readable, and a node of type 4 subtype 6 is 20 bytes long.
    unsafe {
        if *node != 4 || *node.add(1) != 6 || ptr::read_unaligned(node.add(2).cast::<u16>()) != 20 {
            return None;
        }
        Some(ptr::read_unaligned(node.add(4).cast::<efi::Guid>()))
    }
}

/// ReadSection(UI, instance) of `file` on the image's volume, through a pool buffer
/// the firmware allocates: the status (PROTOCOL_ERROR for a malformed string) and
/// the name's first units in `name` (NUL-padded).
fn read_ui(
    ctx: &Ctx,
    image: &DriverImage,
    file: &efi::Guid,
    instance: usize,
    name: &mut [u16],
) -> efi::Status {
    let mut buffer: *mut c_void = ptr::null_mut();
    // The Shell leaves it uninitialized: ignored on input with a NULL *Buffer.
    let mut size = usize::MAX;
    let mut authentication = 0u32;
    // SAFETY: `fv` is an installed FV2 interface.
    let read_section = unsafe { (*image.fv).read_section };
    let status = read_section(
        image.fv,
        file,
        SECTION_USER_INTERFACE,
        instance,
        &mut buffer,
        &mut size,
        &mut authentication,
    );
    if status != efi::Status::SUCCESS {
        return status;
    }
    if buffer.is_null() || size % 2 != 0 || size < 4 {
        return efi::Status::PROTOCOL_ERROR;
    }
    let units = size / 2;
    // SAFETY: ReadSection allocated `size` bytes at `buffer` (§3.4.1.5); pool
    // memory is 8-byte aligned.
    let text = unsafe { core::slice::from_raw_parts(buffer.cast::<u16>(), units) };
    let well_formed = text[units - 1] == 0 && text[..units - 1].iter().all(|&c| c != 0);
    name.fill(0);
    let kept = (units - 1).min(name.len() - 1);
    name[..kept].copy_from_slice(&text[..kept]);
    // The buffer is boot services pool memory now ours (§3.4.1.5).
    ctx.free_pool(buffer);
    if well_formed {
        efi::Status::SUCCESS
    } else {
        efi::Status::PROTOCOL_ERROR
    }
}

/// Whether `name` (NUL-padded UCS-2) is `expected`.
fn is_name(name: &[u16], expected: &str) -> bool {
    let mut units = expected.encode_utf16();
    name.iter()
        .take_while(|&&c| c != 0)
        .all(|&c| units.next() == Some(c))
        && units.next().is_none()
        && name.contains(&0)
}

/// Every driver from a volume has a user-interface name.
fn ui_names(ctx: &mut Ctx, images: &[Option<DriverImage>]) {
    let mut failures = 0usize;
    let mut last = efi::Status::SUCCESS;
    for image in images.iter().flatten() {
        let mut name = [0u16; MAX_NAME];
        let status = read_ui(ctx, image, &image.file, 0, &mut name);
        if status != efi::Status::SUCCESS {
            failures += 1;
            last = status;
        }
    }
    ctx.check(
        "firmware_volume.read_section.driver_ui_names",
        failures == 0,
        format_args!(
            "{failures} drivers' user-interface sections unreadable or not NUL-terminated ({})",
            St(last)
        ),
    );
}

/// A caller buffer of one character: filled as far as it goes, WARN_BUFFER_TOO_SMALL
/// and the size needed (§3.4.1.5).
fn small_buffer(ctx: &mut Ctx, image: &DriverImage) {
    let mut full = [0u16; MAX_NAME];
    if read_ui(ctx, image, &image.file, 0, &mut full) != efi::Status::SUCCESS {
        return;
    }
    let needed = 2 * (full.iter().position(|&c| c == 0).unwrap_or(0) + 1);
    let mut one = [0xffffu16; 2];
    let mut buffer = one.as_mut_ptr().cast::<c_void>();
    let mut size = 2usize;
    let mut authentication = 0u32;
    // SAFETY: `fv` is an installed FV2 interface.
    let read_section = unsafe { (*image.fv).read_section };
    let status = read_section(
        image.fv,
        &image.file,
        SECTION_USER_INTERFACE,
        0,
        &mut buffer,
        &mut size,
        &mut authentication,
    );
    // A name longer than MAX_NAME - 1 units was cut above; its size is then unknown.
    let size_ok = size == needed || needed == 2 * MAX_NAME;
    ctx.check(
        "firmware_volume.read_section.small_buffer",
        status == efi::Status::WARN_BUFFER_TOO_SMALL
            && size_ok
            && one[0] == full[0]
            && one[1] == 0xffff,
        format_args!(
            "got {} size {size} (want {needed}), buffer {:#x} {:#x}",
            St(status),
            one[0],
            one[1]
        ),
    );
}

/// GetNextFile from a zeroed key: the next file of type `wanted` after the key,
/// its (type, name, size), or the status that ended the walk.
fn next_file(
    image: &DriverImage,
    key: &mut [u8; MAX_KEY],
    wanted: u8,
) -> Result<(u8, efi::Guid), efi::Status> {
    let mut file_type = wanted;
    let mut name = UNKNOWN_FILE;
    let mut attributes = 0u32;
    let mut size = 0usize;
    // SAFETY: `fv` is an installed FV2 interface.
    let get_next_file = unsafe { (*image.fv).get_next_file };
    let status = get_next_file(
        image.fv,
        key.as_mut_ptr().cast(),
        &mut file_type,
        &mut name,
        &mut attributes,
        &mut size,
    );
    if status == efi::Status::SUCCESS {
        Ok((file_type, name))
    } else {
        Err(status)
    }
}

/// Walks the volume of `image` with the DRIVER filter: only drivers, the image's
/// own file among them, ending in NOT_FOUND (§3.4.1.7).
fn driver_walk(ctx: &mut Ctx, image: &DriverImage) {
    // SAFETY: `fv` is an installed FV2 interface.
    let key_size = unsafe { (*image.fv).key_size } as usize;
    if !ctx.check(
        "firmware_volume.get_next_file.key_size",
        (1..=MAX_KEY).contains(&key_size),
        format_args!("KeySize {key_size}"),
    ) {
        return;
    }
    let mut key = [0u8; MAX_KEY];
    let (mut seen, mut others, mut found_own) = (0usize, 0usize, false);
    let end = loop {
        match next_file(image, &mut key, FILETYPE_DRIVER) {
            Ok((file_type, name)) => {
                seen += 1;
                others += usize::from(file_type != FILETYPE_DRIVER);
                found_own |= name == image.file;
                if seen == MAX_FILES {
                    break efi::Status::ABORTED;
                }
            }
            Err(status) => break status,
        }
    };
    ctx.check(
        "firmware_volume.get_next_file.drivers",
        end == efi::Status::NOT_FOUND && others == 0 && found_own,
        format_args!(
            "ended {} after {seen} files, {others} not drivers, own file found: {found_own}",
            St(end)
        ),
    );
}

/// The storage drivers' files are named PartitionDriver, FatDriver and
/// DiskIoDriver.
fn vmfw_names(ctx: &mut Ctx, images: &[Option<DriverImage>]) {
    for (file, expected, check) in [
        (
            PARTITION_DRIVER_FILE,
            "PartitionDriver",
            "firmware_volume.vmfw.partition_driver_name",
        ),
        (
            FAT_DRIVER_FILE,
            "FatDriver",
            "firmware_volume.vmfw.fat_driver_name",
        ),
        (
            DISK_IO_DRIVER_FILE,
            "DiskIoDriver",
            "firmware_volume.vmfw.disk_io_driver_name",
        ),
    ] {
        let Some(image) = images.iter().flatten().find(|i| i.file == file) else {
            ctx.fail(check, format_args!("no driver image of that file"));
            continue;
        };
        let mut name = [0u16; MAX_NAME];
        let status = read_ui(ctx, image, &file, 0, &mut name);
        ctx.check(
            check,
            status == efi::Status::SUCCESS && is_name(&name, expected),
            format_args!("got {} (want {expected})", St(status)),
        );
    }
}

/// vmfw's volume: read-only attributes, WriteFile refused, other section types
/// absent, ReadFile's size, and every file listed with its type.
fn vmfw_volume(ctx: &mut Ctx, image: &DriverImage) {
    // SAFETY: `fv` is an installed FV2 interface.
    let fv = unsafe { &*image.fv };
    let mut attributes = 0u64;
    let status = (fv.get_volume_attributes)(image.fv, &mut attributes);
    ctx.check(
        "firmware_volume.vmfw.read_only",
        status == efi::Status::SUCCESS
            && attributes & FV_READ_STATUS != 0
            && attributes & FV_WRITE_STATUS == 0,
        format_args!("got {} attributes {attributes:#x}", St(status)),
    );
    let status = (fv.write_file)(image.fv, 0, 0, ptr::null_mut());
    ctx.expect(
        "firmware_volume.vmfw.write_file",
        status,
        &[efi::Status::WRITE_PROTECTED],
    );
    let mut buffer: *mut c_void = ptr::null_mut();
    let mut size = 0usize;
    let mut authentication = 0u32;
    let status = (fv.read_section)(
        image.fv,
        &image.file,
        SECTION_RAW,
        0,
        &mut buffer,
        &mut size,
        &mut authentication,
    );
    ctx.expect(
        "firmware_volume.vmfw.read_section.other_type",
        status,
        &[efi::Status::NOT_FOUND],
    );

    // ReadFile with no buffer: the type and the size of the file's one section, a
    // 4-byte header and "PartitionDriver", "FatDriver" or "DiskIoDriver" with its NUL.
    let mut size = 0usize;
    let mut found_type = 0u8;
    let mut file_attributes = u32::MAX;
    let status = (fv.read_file)(
        image.fv,
        &image.file,
        ptr::null_mut(),
        &mut size,
        &mut found_type,
        &mut file_attributes,
        &mut authentication,
    );
    ctx.check(
        "firmware_volume.vmfw.read_file.size",
        status == efi::Status::SUCCESS
            && found_type == FILETYPE_DRIVER
            && [4 + 2 * 16, 4 + 2 * 10, 4 + 2 * 13].contains(&size),
        format_args!("got {} type {found_type:#x} size {size}", St(status)),
    );

    let mut key = [0u8; MAX_KEY];
    let mut listed = [(0u8, UNKNOWN_FILE); 8];
    let mut count = 0usize;
    while let Ok(file) = next_file(image, &mut key, FILETYPE_ALL) {
        if count == listed.len() {
            break;
        }
        listed[count] = file;
        count += 1;
    }
    let has = |file_type: u8, name: efi::Guid| listed[..count].contains(&(file_type, name));
    ctx.check(
        "firmware_volume.vmfw.get_next_file.all",
        count == 6
            && has(FILETYPE_APPLICATION, BLS_LOADER_FILE)
            && has(FILETYPE_APPLICATION, BOOT_MENU_FILE)
            && has(FILETYPE_APPLICATION, DIRECT_KERNEL_FILE)
            && has(FILETYPE_DRIVER, PARTITION_DRIVER_FILE)
            && has(FILETYPE_DRIVER, FAT_DRIVER_FILE)
            && has(FILETYPE_DRIVER, DISK_IO_DRIVER_FILE),
        format_args!("{count} files listed"),
    );
}

/// vmfw's driver images: resident boot services drivers of the firmware, on the
/// volume, that UnloadImage refuses without an Unload function (§7.4.4).
fn vmfw_driver_image(ctx: &mut Ctx, images: &[Option<DriverImage>]) {
    let Some(image) = images
        .iter()
        .flatten()
        .find(|i| i.file == PARTITION_DRIVER_FILE)
    else {
        return;
    };
    // SAFETY: an installed LoadedImage interface (§9.1).
    let loaded = unsafe { &*image.loaded };
    ctx.check(
        "firmware_volume.vmfw.driver_loaded_image",
        !loaded.parent_handle.is_null()
            && loaded.device_handle == image.volume
            && loaded.image_code_type == efi::BOOT_SERVICES_CODE
            && loaded.image_size != 0
            && loaded.unload.is_none(),
        format_args!(
            "parent {:p} code type {} size {:#x}",
            loaded.parent_handle, loaded.image_code_type, loaded.image_size
        ),
    );
    let status = (ctx.bs.unload_image)(image.image);
    ctx.expect(
        "firmware_volume.vmfw.unload_driver_image",
        status,
        &[efi::Status::UNSUPPORTED],
    );
}
