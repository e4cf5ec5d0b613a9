//! Image services (UEFI 2.10 §7.4): LoadImage of PE32+ files from a device
//! path or a buffer, StartImage with Exit unwinding back to it, UnloadImage,
//! and the LoadedImage / LoadedImageDevicePath protocols. Built-in images
//! (`crate::builtin_images`) get the same handles and bookkeeping; their code
//! is the firmware's own.

use crate::boundary::{self, write};
use crate::ids::HandleId;
use crate::pe;
use crate::protocol_services::{self as ps, DB};
use crate::spec_gaps;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::c_void;
use platform::forced_failure::Site;
use platform::memory::{self, MemoryType, PAGE_SIZE, Placement};
use platform::paging::{self, Access};
use platform::sync::Global;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::file_system::{
    FileAttribute, FileMode, FileProtocolV1, SimpleFileSystemProtocol,
};
use uefi_raw::protocol::loaded_image::LoadedImageProtocol;
use uefi_raw::protocol::media::{LoadFile2Protocol, LoadFileProtocol};
use uefi_raw::table::system::SystemTable;
use uefi_raw::{Boolean, Char16, Guid, Handle, Status};

mod driver_image;
mod source;
pub(crate) use driver_image::adopt_driver_image;

struct Image {
    name: String,
    /// Allocation holding the image (may start before `base` for alignment);
    /// no pages for a built-in image, whose code is the firmware's.
    alloc_base: u64,
    alloc_pages: u64,
    base: u64,
    size: u64,
    entry: u64,
    is_application: bool,
    /// The Rust entry of a built-in image (`entry` is then the trampoline).
    builtin: Option<crate::builtin_images::BuiltinEntry>,
    started: bool,
    /// Secure Boot refused it (§32.5): loaded, but StartImage refuses.
    refused_by_policy: bool,
    exit_data: (usize, *mut Char16),
    loaded_image: Box<LoadedImageProtocol>,
    /// Owned copies the LoadedImage protocols point into.
    _file_path: Vec<u8>,
    device_path: Option<Vec<u8>>,
}

// SAFETY: raw pointers here name firmware-owned or image-owned memory; the
// firmware is single-threaded.
unsafe impl Send for Image {}

static IMAGES: Global<BTreeMap<HandleId, Image>> = Global::new(BTreeMap::new());

/// Secure Boot's verdict on a whole image file before it is loaded
/// (§32.5; `crate::secure_boot::image_allowed`): the file, its path as
/// text for the log and its whole device path; false refuses it.
pub type ImageVerifier = fn(&[u8], &str, &[u8]) -> bool;

/// Set while Secure Boot is on: every image LoadImage reads from a disk or
/// a caller's buffer passes it; built-in images are the firmware's own.
static IMAGE_VERIFIER: Global<Option<ImageVerifier>> = Global::new(None);

/// Makes LoadImage check every image with `verifier` from now on.
pub fn set_image_verifier(verifier: ImageVerifier) {
    IMAGE_VERIFIER.with(|slot| *slot = Some(verifier));
}

/// Measured boot's record of an image LoadImage loaded (TCG PFP §3.3.4.4;
/// `tcg2::measure_image`): the whole file, its PE subsystem, where
/// it was loaded (base, size), the address it was linked for and its
/// device path.
pub type ImageMeasurer = fn(&[u8], u16, u64, u64, u64, &[u8]);

/// Set while a TPM measures the boot: every image LoadImage loads from a
/// disk or a buffer is read whole and measured.
static IMAGE_MEASURER: Global<Option<ImageMeasurer>> = Global::new(None);

/// Makes LoadImage measure every image with `measurer` from now on.
pub fn set_image_measurer(measurer: ImageMeasurer) {
    IMAGE_MEASURER.with(|slot| *slot = Some(measurer));
}

/// Images currently inside StartImage, innermost last.
static RUNNING: Global<Vec<(HandleId, usize)>> = Global::new(Vec::new());

unsafe extern "sysv64" {
    fn enter_image(
        entry: u64,
        handle: Handle,
        system_table: *mut SystemTable,
        resume_rsp: *mut u64,
    ) -> Status;
    fn exit_image(resume_rsp: u64, status: Status) -> !;
}

// enter_image saves the callee-saved registers of both ABIs' intersection
// that our sysv64 caller needs plus xmm6-15 (callee-saved in the MS ABI the
// StartImage caller uses), records the stack pointer for Exit and calls the
// entry point with (ImageHandle, SystemTable) per the UEFI x64 convention.
core::arch::global_asm!(
    r#"
    .pushsection .text.enter_image, "ax"
    .globl enter_image
enter_image:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    sub rsp, 168
    movdqu [rsp + 0], xmm6
    movdqu [rsp + 16], xmm7
    movdqu [rsp + 32], xmm8
    movdqu [rsp + 48], xmm9
    movdqu [rsp + 64], xmm10
    movdqu [rsp + 80], xmm11
    movdqu [rsp + 96], xmm12
    movdqu [rsp + 112], xmm13
    movdqu [rsp + 128], xmm14
    movdqu [rsp + 144], xmm15
    mov [rcx], rsp
    mov rax, rdi
    mov rcx, rsi
    sub rsp, 32
    call rax
    add rsp, 32
image_resume:
    movdqu xmm6, [rsp + 0]
    movdqu xmm7, [rsp + 16]
    movdqu xmm8, [rsp + 32]
    movdqu xmm9, [rsp + 48]
    movdqu xmm10, [rsp + 64]
    movdqu xmm11, [rsp + 80]
    movdqu xmm12, [rsp + 96]
    movdqu xmm13, [rsp + 112]
    movdqu xmm14, [rsp + 128]
    movdqu xmm15, [rsp + 144]
    add rsp, 168
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    .globl exit_image
exit_image:
    mov rsp, rdi
    mov rax, rsi
    jmp image_resume
    .popsection
    "#
);

/// Names the image containing `address`, for fault reports.
pub fn describe_address(address: u64, out: &mut dyn core::fmt::Write) {
    let found = IMAGES.try_with(|images| {
        images
            .values()
            // Images of the firmware's own code (built-ins, drivers) span
            // the whole firmware and own no pages; the fault locator names
            // the firmware's own addresses itself.
            .filter(|i| i.alloc_pages != 0)
            .find(|i| i.base <= address && address < i.base + i.size)
            .map(|i| (i.name.clone(), i.base))
    });
    if let Some(Some((name, base))) = found {
        let _ = writeln!(
            out,
            "in image {name} loaded at {base:#x} (offset {:#x})",
            address - base
        );
    } else {
        let _ = writeln!(out, "not inside any loaded EFI image");
    }
}

/// Loads the image named by a device path: a file of the SimpleFileSystem
/// on the longest-matching handle, or the buffer LoadFile2/LoadFile gives.
fn load_from_path(
    parent: HandleId,
    path: &[u8],
    boot_policy: bool,
    device_path: Vec<u8>,
) -> Result<HandleId, Status> {
    let mut full = Vec::new();
    full.try_reserve_exact(path.len() + crate::device_path::END.len())
        .map_err(|_| Status::OUT_OF_RESOURCES)?;
    full.extend_from_slice(path);
    if !full.ends_with(&crate::device_path::END) {
        full.extend_from_slice(&crate::device_path::END);
    }
    for guid in [
        SimpleFileSystemProtocol::GUID,
        LoadFile2Protocol::GUID,
        LoadFileProtocol::GUID,
    ] {
        let mut remaining = full.as_ptr() as *const DevicePathProtocol;
        let mut device: Handle = core::ptr::null_mut();
        // SAFETY: the GUID, the path (ending in End-Entire) and the handle
        // slot are live locals.
        let located = unsafe { ps::locate_device_path(&guid, &mut remaining, &mut device) };
        if located != Status::SUCCESS {
            continue;
        }
        let offset = remaining as usize - full.as_ptr() as usize;
        let rest = full[offset..].to_vec();
        let device_id = HandleId::from_raw(device);
        if guid == SimpleFileSystemProtocol::GUID {
            let name = crate::device_path::file_path_text(&rest).ok_or(Status::NOT_FOUND)?;
            return load_from_file_system(parent, device_id, &name, rest, device_path);
        }
        // LoadFile and LoadFile2 share a signature; LoadFile2 requires
        // BootPolicy FALSE (§13.2).
        let lf = ps::get_protocol::<LoadFileProtocol>(device_id, &guid).ok_or(Status::NOT_FOUND)?;
        let policy = boot_policy && guid == LoadFileProtocol::GUID;
        let (pages, len) = read_through_load_file(lf, remaining, policy)?;
        let source = source::Source::Memory(pages.bytes(len));
        return load(parent, &source, device_id, rest, Some(device_path));
    }
    Err(Status::NOT_FOUND)
}

fn load_from_file_system(
    parent: HandleId,
    device: HandleId,
    name: &str,
    file_path: Vec<u8>,
    device_path: Vec<u8>,
) -> Result<HandleId, Status> {
    let sfs = ps::get_protocol::<SimpleFileSystemProtocol>(device, &SimpleFileSystemProtocol::GUID)
        .ok_or(Status::NOT_FOUND)?;
    let mut root: *mut FileProtocolV1 = core::ptr::null_mut();
    // SAFETY: `sfs` is an installed SimpleFileSystem interface; calling its
    // functions with valid out-pointers is how the protocol is used.
    let status = unsafe { ((*sfs).open_volume)(sfs, &mut root) };
    if status != Status::SUCCESS || root.is_null() {
        return Err(Status::NOT_FOUND);
    }
    let mut name16: Vec<u16> = name.encode_utf16().collect();
    name16.push(0);
    let mut handle: *mut FileProtocolV1 = core::ptr::null_mut();
    // SAFETY: `root` was returned by OpenVolume; arguments are valid.
    let status = unsafe {
        ((*root).open)(
            root,
            &mut handle,
            name16.as_ptr(),
            FileMode::READ,
            FileAttribute::empty(),
        )
    };
    // SAFETY: closing the root handle we opened.
    let _ = unsafe { ((*root).close)(root) };
    if status == Status::VOLUME_CORRUPTED || status == Status::DEVICE_ERROR {
        // A damaged file is a failed boot option, not a missing one.
        return Err(status);
    }
    if status != Status::SUCCESS || handle.is_null() {
        return Err(Status::NOT_FOUND);
    }
    let result = source::file_size(handle).and_then(|size| {
        let len = usize::try_from(size).map_err(|_| Status::LOAD_ERROR)?;
        let source = source::Source::File { handle, len };
        load(parent, &source, device, file_path, Some(device_path))
    });
    // SAFETY: closing the file handle we opened.
    let _ = unsafe { ((*handle).close)(handle) };
    result
}

/// The image LoadFile(2) gives for `remaining`, in temporary pages, and its
/// length (§13.1: a first call with no buffer asks for the size).
fn read_through_load_file(
    lf: *mut LoadFileProtocol,
    remaining: *const DevicePathProtocol,
    boot_policy: bool,
) -> Result<(source::TempPages, usize), Status> {
    let mut size = 0usize;
    // SAFETY: `lf` is an installed LoadFile(2) interface; a NULL buffer asks
    // for the size (§13.1).
    let status = unsafe {
        ((*lf).load_file)(
            lf,
            remaining,
            boot_policy.into(),
            &mut size,
            core::ptr::null_mut(),
        )
    };
    if status != Status::BUFFER_TOO_SMALL {
        return Err(if status.is_error() {
            status
        } else {
            Status::LOAD_ERROR
        });
    }
    let mut pages = source::TempPages::allocate(size).inspect_err(|_| {
        log::warn!("LoadImage: no memory for a {size}-byte image from LoadFile");
    })?;
    let mut filled = size;
    // SAFETY: the pages hold `size` bytes.
    let status = unsafe {
        ((*lf).load_file)(
            lf,
            remaining,
            boot_policy.into(),
            &mut filled,
            pages.as_mut_ptr() as *mut c_void,
        )
    };
    if status.is_error() {
        return Err(status);
    }
    Ok((pages, filled.min(size)))
}

/// Why an image's bytes did not load: its PE structure, or reading them.
enum LoadFailure {
    Pe(pe::PeError),
    Read(Status),
}

impl From<pe::PeError> for LoadFailure {
    fn from(e: pe::PeError) -> Self {
        LoadFailure::Pe(e)
    }
}

/// Loads a PE32+ image from `source` into fresh pages and creates its
/// handle. Only the headers and the sections are read, the sections
/// straight into the image's pages; an image larger than free memory is
/// refused, with one line naming it and its size, before they are read.
fn load(
    parent: HandleId,
    source: &source::Source,
    device: HandleId,
    file_path: Vec<u8>,
    device_path: Option<Vec<u8>>,
) -> Result<HandleId, Status> {
    let name =
        crate::device_path::file_path_text(&file_path).unwrap_or_else(|| String::from("<buffer>"));
    // §32.5: with Secure Boot on, the whole file is checked against db and
    // dbx first and then loaded from the bytes that were checked. A refused
    // image is still loaded (§7.4.1 EFI_SECURITY_VIOLATION: a handle the
    // caller unloads) but StartImage will not run it.
    // With a TPM the whole file is read too: its Authenticode digest is
    // measured (TCG PFP §3.3.4.4), and the image loaded from the bytes that
    // were measured.
    let verifier = IMAGE_VERIFIER.with(|v| *v);
    let measurer = IMAGE_MEASURER.with(|m| *m);
    let whole;
    let checked;
    let (source, refused_by_policy) = if verifier.is_some() || measurer.is_some() {
        whole = source.whole()?;
        let path = device_path.as_deref().unwrap_or_default();
        let allowed = verifier.is_none_or(|verify| verify(whole.bytes(), &name, path));
        checked = source::Source::Memory(whole.bytes());
        (&checked, !allowed)
    } else {
        (source, false)
    };
    let headers = source.headers()?;
    let info = pe::parse_headers(&headers, source.len()).map_err(|e| {
        log::warn!("LoadImage: {name}: {e}");
        Status::LOAD_ERROR
    })?;
    drop(headers);
    if info.machine != 0x8664 {
        return Err(Status::UNSUPPORTED);
    }
    let (code_type, data_type, is_application) = match info.subsystem.0 {
        10 => (MemoryType::LOADER_CODE, MemoryType::LOADER_DATA, true),
        11 => (
            MemoryType::BOOT_SERVICES_CODE,
            MemoryType::BOOT_SERVICES_DATA,
            false,
        ),
        12 => (
            MemoryType::RUNTIME_SERVICES_CODE,
            MemoryType::RUNTIME_SERVICES_DATA,
            false,
        ),
        _ => return Err(Status::UNSUPPORTED),
    };
    let size = info.size_of_image as u64;
    let align = (info.section_alignment as u64).max(PAGE_SIZE);
    let alloc_pages = (size + align - PAGE_SIZE).div_ceil(PAGE_SIZE);
    let allocated = if platform::forced_failure::forced(Site::LoadImage) {
        Err(memory::MemoryError::OutOfMemory { pages: alloc_pages })
    } else {
        memory::with_map(|m| m.allocate(Placement::Anywhere, code_type, alloc_pages))
    };
    let alloc_base = allocated.map_err(|_| {
        let free = if platform::forced_failure::forced(Site::LoadImage) {
            alloc::format!("test-alloc-fail={}", Site::LoadImage.name())
        } else {
            alloc::format!("{} bytes free", memory::with_map(|m| m.free_bytes()))
        };
        log::warn!(
            "LoadImage: {name} ({} bytes) needs {} bytes of memory ({free}): refused (EFI_OUT_OF_RESOURCES)",
            source.len(),
            alloc_pages * PAGE_SIZE
        );
        Status::OUT_OF_RESOURCES
    })?;
    let base = alloc_base.next_multiple_of(align);
    // SAFETY: `base..base+size` lies inside the pages just allocated.
    let dest = unsafe { core::slice::from_raw_parts_mut(base as *mut u8, size as usize) };
    let read =
        |offset: usize, out: &mut [u8]| source.read_at(offset, out).map_err(LoadFailure::Read);
    if let Err(failure) = pe::load_from(read, &info, dest, base) {
        let _ = memory::with_map(|m| m.free(alloc_base, alloc_pages));
        return Err(match failure {
            LoadFailure::Pe(e) => {
                log::warn!("LoadImage: {name}: {e}");
                Status::LOAD_ERROR
            }
            LoadFailure::Read(status) => {
                log::warn!("LoadImage: reading {name}: {status:?}");
                status
            }
        });
    }
    // §7.4.1: an image carrying an HII package list in its resources gets
    // EFI_HII_PACKAGE_LIST_PROTOCOL, whose interface is that list in place.
    let hii = info
        .data_directory(pe::DIRECTORY_RESOURCE)
        .and_then(|directory| pe::hii_package_list(dest, directory))
        .map(|rva| (base + u64::from(rva)) as *mut c_void);
    // A refused image never runs, so it is not measured.
    if let Some(measure) = measurer
        && !refused_by_policy
        && let source::Source::Memory(file) = *source
    {
        measure(
            file,
            info.subsystem.0,
            base,
            size,
            info.image_base,
            device_path.as_deref().unwrap_or_default(),
        );
    }
    let wx = map_wx(&info, base);
    log::debug!(
        "loaded {name} at {base:#x} ({size:#x} bytes, entry {:#x}, {})",
        info.entry_point,
        if wx { "W^X" } else { "RWX" }
    );

    let handle = ps::new_handle();
    let image = Image {
        name,
        alloc_base,
        alloc_pages,
        base,
        size,
        entry: base + info.entry_point as u64,
        is_application,
        builtin: None,
        started: false,
        refused_by_policy,
        exit_data: (0, core::ptr::null_mut()),
        loaded_image: Box::new(LoadedImageProtocol {
            revision: spec_gaps::LOADED_IMAGE_PROTOCOL_REVISION,
            parent_handle: parent.as_raw(),
            system_table: crate::table_storage::system_table(),
            device_handle: device.as_raw(),
            file_path: core::ptr::null_mut(),
            reserved: core::ptr::null_mut(),
            load_options_size: 0,
            load_options: core::ptr::null_mut(),
            image_base: base as *const c_void,
            image_size: size,
            image_code_type: code_type,
            image_data_type: data_type,
            unload: None,
        }),
        _file_path: file_path,
        device_path,
    };
    install_image(handle, image, hii)?;
    Ok(handle)
}

/// Points the image's LoadedImage at its file path, records it and installs
/// LoadedImage, LoadedImageDevicePath (when it has a device path) and the
/// HII package list (when it carries one) on `handle`.
fn install_image(
    handle: HandleId,
    mut image: Image,
    hii: Option<*mut c_void>,
) -> Result<(), Status> {
    image.loaded_image.file_path = image._file_path.as_ptr() as *const DevicePathProtocol;
    let loaded = &mut *image.loaded_image as *mut LoadedImageProtocol as *mut c_void;
    let mut protocols: Vec<(Guid, *mut c_void)> = vec![(LoadedImageProtocol::GUID, loaded)];
    if let Some(dp) = image.device_path.as_mut() {
        protocols.push((
            spec_gaps::LOADED_IMAGE_DEVICE_PATH_PROTOCOL_GUID,
            dp.as_mut_ptr() as *mut c_void,
        ));
    }
    if let Some(list) = hii {
        protocols.push((spec_gaps::HII_PACKAGE_LIST_PROTOCOL_GUID, list));
    }
    IMAGES.with(|images| images.insert(handle, image));
    ps::install(Some(handle), &protocols)?;
    Ok(())
}

/// LoadImage of a built-in application (`crate::builtin_images`): a handle
/// whose LoadedImage describes the firmware image its code lives in —
/// ImageBase/ImageSize are the firmware's whole range, not a slice of it,
/// because the built-in's code, constants and data are spread over the
/// firmware's sections like any other Rust code of it — with the firmware
/// volume as DeviceHandle and `FvFile(<file>)` as FilePath (§9.1).
fn load_builtin(
    parent: HandleId,
    builtin: crate::builtin_images::BuiltinImage,
    device_path: Vec<u8>,
) -> Result<HandleId, Status> {
    let (base, size) = FIRMWARE_RANGE.with(|r| *r);
    let handle = ps::new_handle();
    let image = Image {
        name: String::from(builtin.name),
        alloc_base: 0,
        alloc_pages: 0,
        base,
        size,
        entry: builtin_trampoline as *const () as usize as u64,
        is_application: true,
        builtin: Some(builtin.entry),
        started: false,
        refused_by_policy: false,
        exit_data: (0, core::ptr::null_mut()),
        loaded_image: Box::new(LoadedImageProtocol {
            revision: spec_gaps::LOADED_IMAGE_PROTOCOL_REVISION,
            parent_handle: parent.as_raw(),
            system_table: crate::table_storage::system_table(),
            device_handle: crate::builtin_images::volume_handle().as_raw(),
            file_path: core::ptr::null_mut(),
            reserved: core::ptr::null_mut(),
            load_options_size: 0,
            load_options: core::ptr::null_mut(),
            image_base: base as *const c_void,
            image_size: size,
            image_code_type: MemoryType::RUNTIME_SERVICES_CODE,
            image_data_type: MemoryType::RUNTIME_SERVICES_DATA,
            unload: None,
        }),
        _file_path: crate::builtin_images::file_node_path(&builtin.file),
        device_path: Some(device_path),
    };
    install_image(handle, image, None)?;
    crate::builtin_images::name_new_handle(handle, &builtin);
    log::debug!("loaded built-in image {}", builtin.name);
    Ok(handle)
}

/// The entry point StartImage calls for every built-in image: runs the
/// image's Rust entry with its handle and the system table, as an EFI
/// application's entry gets them (§4.1).
///
/// # Safety
/// Called by `enter_image` only, with a handle from `load_builtin`.
unsafe extern "efiapi" fn builtin_trampoline(handle: Handle, system: *mut SystemTable) -> Status {
    let id = HandleId::from_raw(handle);
    match IMAGES.with(|images| images.get(&id).and_then(|i| i.builtin)) {
        Some(entry) => entry(id, system),
        None => Status::LOAD_ERROR,
    }
}

/// Maps an image that declared NX_COMPAT W^X, section by section, as edk2
/// does with its image protection policy: code read-execute, data
/// non-executable, headers and read-only data read-only. Returns whether it
/// did; other images keep read-write-execute pages (`pe::wx_layout`).
fn map_wx(info: &pe::PeInfo, base: u64) -> bool {
    if !paging::nx_supported() {
        return false;
    }
    let Some(layout) = pe::wx_layout(info, PAGE_SIZE as u32) else {
        return false;
    };
    for (rva, rights) in layout {
        let access = match rights {
            pe::PageRights::ReadOnly => Access::RO,
            pe::PageRights::ReadWrite => Access::RW,
            pe::PageRights::ReadExecute => Access::RX,
        };
        let range = base + u64::from(rva.start)..base + u64::from(rva.end);
        crate::memory_attribute::restrict(range, access);
    }
    true
}

fn unload(handle: HandleId) {
    if let Some(image) = IMAGES.with(|images| images.remove(&handle)) {
        DB.with(|db| db.remove_handle(handle));
        if image.alloc_pages != 0
            && memory::with_map(|m| m.free(image.alloc_base, image.alloc_pages)).is_ok()
        {
            let end = image.alloc_base + image.alloc_pages * PAGE_SIZE;
            crate::memory_attribute::release(image.alloc_base..end);
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.4 requires of the caller.
pub unsafe extern "efiapi" fn load_image(
    boot_policy: Boolean,
    parent: Handle,
    device_path: *const DevicePathProtocol,
    source: *const u8,
    source_size: usize,
    image_handle: *mut Handle,
) -> Status {
    let result = (|| {
        if image_handle.is_null()
            || !IMAGES.with(|i| i.contains_key(&HandleId::from_raw(parent)))
                && !is_firmware_image(parent)
        {
            return Err(Status::INVALID_PARAMETER);
        }
        let path = if device_path.is_null() {
            None
        } else {
            // SAFETY: the caller's path, as this function's # Safety requires.
            Some(unsafe { crate::device_path::read_path(device_path) }?)
        };
        if source.is_null()
            && let Some(builtin) = path.as_deref().and_then(crate::builtin_images::find)
        {
            let path = path.clone().unwrap_or_default();
            let handle = load_builtin(HandleId::from_raw(parent), builtin, path)?;
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            return unsafe { write(image_handle, handle.as_raw()) };
        }
        let parent = HandleId::from_raw(parent);
        let handle = if !source.is_null() {
            // SAFETY: the caller's pointers, as this function's # Safety
            // requires; the buffer is read in place during this call only.
            let data = unsafe { boundary::bytes(source, source_size) }?;
            // The device is whatever handle owns the path's device part.
            let (device, rest) = match &path {
                Some(p) => {
                    let mut remaining = p.as_ptr() as *const DevicePathProtocol;
                    let mut device: Handle = core::ptr::null_mut();
                    // SAFETY: the path was copied into `p` (End-terminated);
                    // the GUID and handle slot are live.
                    let located = unsafe {
                        ps::locate_device_path(
                            &DevicePathProtocol::GUID,
                            &mut remaining,
                            &mut device,
                        )
                    };
                    if located == Status::SUCCESS {
                        (
                            HandleId::from_raw(device),
                            p[remaining as usize - p.as_ptr() as usize..].to_vec(),
                        )
                    } else {
                        (HandleId::NULL, p.clone())
                    }
                }
                None => (HandleId::NULL, crate::device_path::END.to_vec()),
            };
            load(parent, &source::Source::Memory(data), device, rest, path)?
        } else {
            let p = path.ok_or(Status::NOT_FOUND)?;
            load_from_path(parent, &p.clone(), boot_policy.into(), p)?
        };
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(image_handle, handle.as_raw()) }?;
        // §7.4.1: refused by Secure Boot, the image is loaded and its
        // handle returned with EFI_SECURITY_VIOLATION; the caller unloads it.
        if refused_by_policy(handle) {
            return Err(Status::SECURITY_VIOLATION);
        }
        Ok(())
    })();
    boundary::status(result)
}

/// Whether Secure Boot refused the image on `handle`.
fn refused_by_policy(handle: HandleId) -> bool {
    IMAGES.with(|images| images.get(&handle).is_some_and(|i| i.refused_by_policy))
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.4 requires of the caller.
pub unsafe extern "efiapi" fn start_image(
    handle: Handle,
    exit_data_size: *mut usize,
    exit_data: *mut *mut Char16,
) -> Status {
    let id = HandleId::from_raw(handle);
    if refused_by_policy(id) {
        return Status::SECURITY_VIOLATION;
    }
    let entry = IMAGES.with(|images| match images.get_mut(&id) {
        Some(image) if !image.started => {
            image.started = true;
            Some(image.entry)
        }
        _ => None,
    });
    let Some(entry) = entry else {
        return Status::INVALID_PARAMETER;
    };
    // The loading phase ends when the firmware (or one of its built-in
    // images) starts an OS loader, whichever way it calls StartImage; not
    // when it starts a built-in, nor when a loader starts the next stage.
    let is_builtin =
        |h: &HandleId| IMAGES.with(|images| images.get(h).is_some_and(|i| i.builtin.is_some()));
    let caller_is_firmware = RUNNING
        .with(|r| r.last().map(|&(h, _)| h))
        .is_none_or(|h| is_builtin(&h));
    if caller_is_firmware && !is_builtin(&id) {
        platform::boot_timing::mark(platform::boot_timing::Phase::LOADING);
    }
    // enter_image stores the resume stack pointer here; Exit finds it through
    // RUNNING while this frame is live.
    let mut resume_rsp = 0u64;
    RUNNING.with(|r| r.push((id, &mut resume_rsp as *mut u64 as usize)));
    // Applications run with interrupts on below TPL_HIGH_LEVEL (§7.1):
    // iPXE's idle `hlt` waits for the tick.
    crate::events::allow_interrupts();
    // SAFETY: `entry` is the relocated entry point of an image we loaded and
    // have not started; `resume_rsp` outlives the call.
    let status = unsafe {
        enter_image(
            entry,
            handle,
            crate::table_storage::system_table(),
            &mut resume_rsp,
        )
    };
    RUNNING.with(|r| r.retain(|&(h, _)| h != id));
    let (data, is_application) = IMAGES
        .with(|images| images.get(&id).map(|i| (i.exit_data, i.is_application)))
        .unwrap_or(((0, core::ptr::null_mut()), true));
    // §7.4.2: ExitData and its size are returned together; a caller that
    // passes no ExitData pointer gets neither, its *ExitDataSize stays as it
    // was, and the image's buffer (pool memory it gave Exit) is freed here
    // since nobody else can.
    if exit_data.is_null() {
        if !data.1.is_null() {
            let _ = crate::pool::free(data.1.cast());
        }
    } else {
        if !exit_data_size.is_null() {
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            let _ = unsafe { write(exit_data_size, data.0) };
        }
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let _ = unsafe { write(exit_data, data.1) };
    }
    // Applications are unloaded when they return or exit (§7.4.2); drivers
    // that succeeded stay resident.
    if is_application || status.is_error() {
        unload(id);
    }
    status
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.4 requires of the caller.
pub unsafe extern "efiapi" fn exit(
    handle: Handle,
    status: Status,
    data_size: usize,
    data: *mut Char16,
) -> Status {
    let id = HandleId::from_raw(handle);
    let running_top = RUNNING.with(|r| r.last().copied());
    let state = IMAGES.with(|images| images.get(&id).map(|i| i.started));
    match (state, running_top) {
        (None, _) => Status::INVALID_PARAMETER,
        (Some(false), _) => {
            unload(id);
            Status::SUCCESS
        }
        (Some(true), Some((top, resume))) if top == id => {
            IMAGES.with(|images| {
                if let Some(i) = images.get_mut(&id) {
                    i.exit_data = (if data.is_null() { 0 } else { data_size }, data);
                }
            });
            // SAFETY: `resume` is the address of StartImage's local for this
            // image, whose frame is live because the image is running.
            let rsp = unsafe { (resume as *const u64).read() };
            // SAFETY: `rsp` is the stack pointer enter_image saved for this
            // image; the image's own frames are abandoned, as Exit intends.
            unsafe { exit_image(rsp, status) }
        }
        (Some(true), _) => Status::INVALID_PARAMETER,
    }
}

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.4): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn unload_image(handle: Handle) -> Status {
    let id = HandleId::from_raw(handle);
    let state = IMAGES.with(|images| images.get(&id).map(|i| (i.started, i.loaded_image.unload)));
    match state {
        None => Status::INVALID_PARAMETER,
        Some((false, _)) => {
            unload(id);
            Status::SUCCESS
        }
        Some((true, Some(unload_fn))) => {
            // The image registered this function in its LoadedImage protocol.
            // SAFETY: the image's own Unload function, called with its
            // handle as §9.1 defines it.
            let status = unsafe { unload_fn(handle) };
            if status == Status::SUCCESS {
                unload(id);
            }
            status
        }
        Some((true, None)) => Status::UNSUPPORTED,
    }
}

static FIRMWARE_IMAGE: Global<HandleId> = Global::new(HandleId::NULL);
/// The firmware image's base and size, which built-in images report.
static FIRMWARE_RANGE: Global<(u64, u64)> = Global::new((0, 0));

fn is_firmware_image(handle: Handle) -> bool {
    FIRMWARE_IMAGE.with(|h| !h.is_null() && *h == HandleId::from_raw(handle))
}

/// The handle standing for the firmware itself, parent of the images the
/// boot manager loads.
pub fn firmware_image_handle() -> HandleId {
    FIRMWARE_IMAGE.with(|h| *h)
}

pub fn init_firmware_image(base: u64, size: u64) {
    FIRMWARE_RANGE.with(|r| *r = (base, size));
    let handle = ps::new_handle();
    let loaded = Box::leak(Box::new(LoadedImageProtocol {
        revision: spec_gaps::LOADED_IMAGE_PROTOCOL_REVISION,
        parent_handle: core::ptr::null_mut(),
        system_table: crate::table_storage::system_table(),
        device_handle: core::ptr::null_mut(),
        file_path: core::ptr::null_mut(),
        reserved: core::ptr::null_mut(),
        load_options_size: 0,
        load_options: core::ptr::null_mut(),
        image_base: base as *const c_void,
        image_size: size,
        image_code_type: MemoryType::RUNTIME_SERVICES_CODE,
        image_data_type: MemoryType::RUNTIME_SERVICES_DATA,
        unload: None,
    }));
    let _ = ps::install(
        Some(handle),
        &[(LoadedImageProtocol::GUID, loaded as *mut _ as *mut c_void)],
    );
    FIRMWARE_IMAGE.with(|h| *h = handle);
}

/// The innermost image inside StartImage (None outside any image): the
/// parent a built-in image gives the images it loads.
pub fn running_image() -> Option<HandleId> {
    RUNNING.with(|r| r.last().map(|&(handle, _)| handle))
}

/// Runs an image loaded with `load`.
pub fn start(handle: HandleId) -> Status {
    // SAFETY: null ExitData pointers are allowed (§7.4.2).
    unsafe {
        start_image(
            handle.as_raw(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    }
}
