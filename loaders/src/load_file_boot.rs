//! Boot options that end at a LoadFile handing over a whole file rather
//! than an image LoadImage could take on its own: HTTP boot (UEFI 2.10
//! §24.7.3: the boot file is an EFI image, or an ISO or disk image the
//! boot manager registers as a RAM disk and boots from its removable-media
//! path), as edk2's boot manager expands such options.

use platform::memory::MemoryType;
use protocols::storage::ram_disk::{RAM_DISK_PROTOCOL_GUID, RamDiskProtocol};
use uefi_raw::Status;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::device_path::media::RamDiskType;
use uefi_raw::protocol::media::LoadFileProtocol;

use crate::pages::PageBuffer;
use crate::services::{self, Services};

/// What the file turned out to be.
pub enum Fetched {
    /// An EFI image, loaded (not started).
    Image(efi::ids::HandleId),
    /// A disk or ISO image, now a RAM disk at this device path (End
    /// included): boot its removable-media path.
    RamDisk(alloc::vec::Vec<u8>),
}

/// Whether `path` (End-terminated) ends with a Uri node (§10.3.4.23), the
/// mark of an HTTP boot option.
pub fn is_uri_path(path: &[u8]) -> bool {
    efi::device_path::nodes(path)
        .last()
        .is_some_and(|node| node[0] == 3 && node[1] == 24)
}

/// The MZ signature that starts every PE image.
const PE_SIGNATURE: &[u8] = b"MZ";
/// ISO 9660's volume descriptor identifier, at byte 1 of sector 16.
const ISO_IDENTIFIER: (usize, &[u8]) = (16 * 2048 + 1, b"CD001");

/// Fetches the file of the LoadFile at `path` and loads it as an image or
/// registers it as a RAM disk.
pub fn fetch(path: &[u8]) -> Result<Fetched, Status> {
    let services = services::current()?;
    let device = services::load_file_devices()
        .into_iter()
        .find(|&handle| {
            crate::image_boot::handle_device_path(&services, handle).as_deref() == Some(path)
        })
        .ok_or(Status::NOT_FOUND)?;
    let load_file = services
        .protocol::<LoadFileProtocol>(device, &LoadFileProtocol::GUID)
        .ok_or(Status::NOT_FOUND)?
        .as_ptr();
    let end = [0x7Fu8, 0xFF, 4, 0];
    let call = |size: &mut usize, buffer: *mut u8| {
        // SAFETY: an installed LoadFile interface; `end` is a whole (empty)
        // path, `size` a live local and `buffer` NULL or `size` bytes.
        unsafe {
            ((*load_file).load_file)(
                load_file,
                end.as_ptr().cast::<DevicePathProtocol>(),
                true.into(),
                size,
                buffer.cast(),
            )
        }
    };
    let mut size = 0usize;
    match call(&mut size, core::ptr::null_mut()) {
        Status::BUFFER_TOO_SMALL => {}
        Status::SUCCESS => return Err(Status::LOAD_ERROR),
        status => return Err(status),
    }
    let mut buffer = PageBuffer::allocate(size, MemoryType::LOADER_DATA, u64::MAX)?;
    let mut filled = size;
    let status = call(&mut filled, buffer.as_mut_slice().as_mut_ptr());
    if status.is_error() {
        return Err(status);
    }
    buffer.truncate(filled.min(size));
    if buffer.as_slice().starts_with(PE_SIGNATURE) {
        return services
            .load_image_from_buffer(path, buffer.as_slice())
            .map(Fetched::Image);
    }
    register_ram_disk(&services, path, buffer).map(Fetched::RamDisk)
}

/// Hands `buffer` to EFI_RAM_DISK_PROTOCOL as a virtual CD (an ISO 9660
/// image) or disk, under `parent`; returns the disk's device path.
fn register_ram_disk(
    services: &Services,
    parent: &[u8],
    buffer: PageBuffer,
) -> Result<alloc::vec::Vec<u8>, Status> {
    let (at, identifier) = ISO_IDENTIFIER;
    let disk_type = if buffer.as_slice().get(at..at + identifier.len()) == Some(identifier) {
        RamDiskType::VIRTUAL_CD
    } else {
        RamDiskType::VIRTUAL_DISK
    };
    let handle = *services
        .locate_handles(&RAM_DISK_PROTOCOL_GUID)
        .first()
        .ok_or(Status::UNSUPPORTED)?;
    let ram_disk = services
        .protocol::<RamDiskProtocol>(handle, &RAM_DISK_PROTOCOL_GUID)
        .ok_or(Status::UNSUPPORTED)?
        .as_ptr();
    let mut disk_path: *const DevicePathProtocol = core::ptr::null();
    let (base, len) = (buffer.address(), buffer.len());
    // SAFETY: the RAM disk interface is installed; `parent` is a whole
    // path; the pages are handed over below (leaked), so they live as long
    // as the disk.
    let status = unsafe {
        ((*ram_disk).register)(
            base,
            len as u64,
            &disk_type.0,
            parent.as_ptr().cast(),
            &mut disk_path,
        )
    };
    if status.is_error() {
        return Err(status);
    }
    let _ = buffer.leak();
    log::info!(
        "http: {} bytes registered as a RAM {}",
        len,
        if disk_type == RamDiskType::VIRTUAL_CD {
            "CD"
        } else {
            "disk"
        }
    );
    // SAFETY: Register returned the path installed on the disk's handle.
    unsafe { efi::device_path::read_path(disk_path) }
}
