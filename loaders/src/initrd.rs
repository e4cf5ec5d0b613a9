//! The Linux initrd LoadFile2 protocol: the EFI stub of Linux 5.8+ locates a
//! handle whose device path is the vendor media node
//! `LINUX_EFI_INITRD_MEDIA_GUID` and reads the initrd through its
//! EFI_LOAD_FILE2_PROTOCOL (UEFI 2.10 §13.2), so the loader need not pass
//! `initrd=` on the command line (Linux drivers/firmware/efi/libstub,
//! Documentation/arch/x86/boot.rst "EFI Handover Protocol" notes).

use crate::pages::PageBuffer;
use crate::services;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering};
use efi::ids::HandleId;
use protocols::device_path::DevicePathBuf;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::media::LoadFile2Protocol;
use uefi_raw::{Boolean, Guid, Status, guid};

/// LINUX_EFI_INITRD_MEDIA_GUID (Linux include/linux/efi.h); Linux defines
/// it, neither UEFI nor the spec crates do.
pub const LINUX_EFI_INITRD_MEDIA_GUID: Guid = guid!("5568e427-68fc-4f3d-ac74-ca555231cc68");

/// The initrd handle's device path: a Vendor media node (UEFI 2.10
/// §10.3.5.3) with LINUX_EFI_INITRD_MEDIA_GUID and no data, then End.
fn initrd_device_path() -> Option<Vec<u8>> {
    let vendor = protocols::device_path::vendor_media(&LINUX_EFI_INITRD_MEDIA_GUID, &[]).ok()?;
    let path = DevicePathBuf::from_nodes(&[vendor]).ok()?;
    Some(path.as_bytes().to_vec())
}

/// Where the next initrd appended after `len` bytes must start: the 4-byte
/// boundary, the gap zero-filled: Linux unpacks concatenated cpio archives and
/// skips the zero padding between them
/// (Documentation/driver-api/early-userspace/buffer-format.rst).
pub fn padded_len(len: usize) -> Option<usize> {
    len.checked_next_multiple_of(4)
}

/// What LoadFile answers for a request (UEFI 2.10 §13.2.2).
#[derive(Debug, PartialEq, Eq)]
pub enum LoadOutcome {
    /// Copy the whole image into the caller's buffer.
    Copy,
    /// Report the status with `*size` set to the image size.
    TooSmall,
    Refuse(Status),
}

/// LoadFile2's decision, apart from the pointers: BootPolicy TRUE is not
/// allowed for LoadFile2; a missing or short buffer gets BUFFER_TOO_SMALL.
pub fn decide(image_len: usize, boot_policy: bool, has_buffer: bool, size: usize) -> LoadOutcome {
    if boot_policy {
        LoadOutcome::Refuse(Status::UNSUPPORTED)
    } else if !has_buffer || size < image_len {
        LoadOutcome::TooSmall
    } else {
        LoadOutcome::Copy
    }
}

/// The installed interface; `protocol` comes first so the `This` pointer
/// the caller passes back is the address of the whole record.
#[repr(C)]
struct InitrdLoader {
    protocol: LoadFile2Protocol,
    device_path: Vec<u8>,
    handle: HandleId,
    /// In EFI pages, not the firmware heap: distro initrds are tens of MiB.
    image: PageBuffer,
}

/// Address of the installed `InitrdLoader` (0: none). The firmware is
/// single-threaded; the atomic only makes the static shareable.
static INSTALLED: AtomicUsize = AtomicUsize::new(0);

/// LoadFile (§13.2.2) of the initrd.
///
/// # Safety
/// `size` and `buffer` as UEFI 2.10 §13.2.2 requires: null or the caller's
/// UINTN, and null or `*size` writable bytes. `this` is only compared.
unsafe extern "efiapi" fn load_file(
    this: *mut LoadFile2Protocol,
    _file_path: *const DevicePathProtocol,
    boot_policy: Boolean,
    size: *mut usize,
    buffer: *mut c_void,
) -> Status {
    let installed = INSTALLED.load(Ordering::Acquire);
    if this.is_null() || this as usize != installed || size.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: `this` is the live InitrdLoader we installed (checked above);
    // it stays allocated until uninstall, which no caller can reach from here.
    let loader = unsafe { &*(this as *const InitrdLoader) };
    let image = loader.image.as_slice();
    // SAFETY: `size` is non-null and points at the caller's UINTN (§13.2.2).
    let available = unsafe { size.read_unaligned() };
    match decide(
        image.len(),
        boot_policy.into(),
        !buffer.is_null(),
        available,
    ) {
        LoadOutcome::Refuse(status) => status,
        LoadOutcome::TooSmall => {
            // SAFETY: as above.
            unsafe { size.write_unaligned(image.len()) };
            Status::BUFFER_TOO_SMALL
        }
        LoadOutcome::Copy => {
            // SAFETY: the caller's buffer is non-null and holds `available
            // >= image.len()` bytes (§13.2.2).
            unsafe {
                core::ptr::copy_nonoverlapping(image.as_ptr(), buffer.cast::<u8>(), image.len())
            };
            // SAFETY: as above.
            unsafe { size.write_unaligned(image.len()) };
            Status::SUCCESS
        }
    }
}

/// Publishes `image` as the initrd on a new handle, replacing any earlier one.
pub fn install(image: PageBuffer) -> Result<HandleId, Status> {
    uninstall();
    let loader = Box::into_raw(Box::new(InitrdLoader {
        protocol: LoadFile2Protocol { load_file },
        device_path: initrd_device_path().ok_or(Status::OUT_OF_RESOURCES)?,
        handle: HandleId::NULL,
        image,
    }));
    // SAFETY: `loader` was just leaked from a Box and nothing else refers to it yet.
    let record = unsafe { &mut *loader };
    let device_path = record.device_path.as_mut_ptr() as *mut c_void;
    // InstallProtocolInterface twice (§7.3.2): the device path makes the
    // handle, LoadFile2 joins it; undone when the second fails.
    let installed = services::current().and_then(|services| {
        // SAFETY: the record's device path and the record itself (its
        // first field the LoadFile2 interface) live until `uninstall`
        // has removed both.
        let handle = unsafe {
            services.install_protocol(HandleId::NULL, &DevicePathProtocol::GUID, device_path)
        }?;
        // SAFETY: as above.
        let joined = unsafe {
            services.install_protocol(handle, &LoadFile2Protocol::GUID, loader as *mut c_void)
        };
        if let Err(status) = joined {
            // SAFETY: the device path installed just above.
            let _ = unsafe {
                services.uninstall_protocol(handle, &DevicePathProtocol::GUID, device_path)
            };
            return Err(status);
        }
        Ok(handle)
    });
    match installed {
        Ok(handle) => {
            record.handle = handle;
            INSTALLED.store(loader as usize, Ordering::Release);
            Ok(handle)
        }
        Err(status) => {
            // SAFETY: `loader` came from Box::into_raw and was not published.
            drop(unsafe { Box::from_raw(loader) });
            Err(status)
        }
    }
}

/// Removes the initrd handle (if any) so another boot entry can install its own.
pub fn uninstall() {
    let address = INSTALLED.swap(0, Ordering::AcqRel);
    if address == 0 {
        return;
    }
    let loader = address as *mut InitrdLoader;
    // SAFETY: INSTALLED held the address of a leaked InitrdLoader; only
    // this function frees it.
    let record = unsafe { &mut *loader };
    let handle = record.handle;
    let device_path = record.device_path.as_mut_ptr() as *mut c_void;
    // UninstallProtocolInterface of both (§7.3.3; the handle goes with its
    // last protocol). Should one refuse, the record stays allocated: its
    // interfaces may still be reachable.
    let removed = services::current().is_ok_and(|services| {
        // SAFETY: the interfaces `install` put on `handle`.
        let load_file =
            unsafe { services.uninstall_protocol(handle, &LoadFile2Protocol::GUID, loader.cast()) };
        // SAFETY: as above.
        let path =
            unsafe { services.uninstall_protocol(handle, &DevicePathProtocol::GUID, device_path) };
        !load_file.is_error() && !path.is_error()
    });
    if !removed {
        log::warn!("initrd: its handle could not be removed; its memory stays allocated");
        return;
    }
    // SAFETY: from Box::into_raw in `install`, now unpublished and no
    // longer installed, so this is the only reference.
    drop(unsafe { Box::from_raw(loader) });
}

/// The handle currently carrying the initrd, if any.
pub fn installed_handle() -> Option<HandleId> {
    let address = INSTALLED.load(Ordering::Acquire);
    // SAFETY: a non-zero INSTALLED is a live InitrdLoader.
    (address != 0).then(|| unsafe { (*(address as *const InitrdLoader)).handle })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use efi::protocol_services as ps;

    #[test]
    fn initrds_start_on_four_byte_boundaries() {
        assert_eq!(padded_len(0), Some(0));
        assert_eq!(padded_len(5), Some(8));
        assert_eq!(padded_len(8), Some(8));
        assert_eq!(padded_len(usize::MAX), None);
    }

    fn page_image(bytes: &[u8]) -> PageBuffer {
        crate::pages::test_arena();
        let mut image = PageBuffer::allocate(
            bytes.len(),
            platform::memory::MemoryType::LOADER_DATA,
            u64::MAX,
        )
        .unwrap();
        image.as_mut_slice().copy_from_slice(bytes);
        image
    }

    #[test]
    fn device_path_is_vendor_media_then_end() {
        let path = initrd_device_path().unwrap();
        assert_eq!(&path[..4], &[4, 3, 20, 0]);
        assert_eq!(
            &path[4..20],
            &[
                0x27, 0xe4, 0x68, 0x55, 0xfc, 0x68, 0x3d, 0x4f, 0xac, 0x74, 0xca, 0x55, 0x52, 0x31,
                0xcc, 0x68
            ]
        );
        assert_eq!(&path[20..], &efi::device_path::END);
    }

    #[test]
    fn decision_follows_load_file2_rules() {
        assert_eq!(
            decide(10, true, true, 100),
            LoadOutcome::Refuse(Status::UNSUPPORTED)
        );
        assert_eq!(decide(10, false, false, 100), LoadOutcome::TooSmall);
        assert_eq!(decide(10, false, true, 9), LoadOutcome::TooSmall);
        assert_eq!(decide(10, false, true, 10), LoadOutcome::Copy);
        assert_eq!(decide(0, false, false, 0), LoadOutcome::TooSmall);
    }

    /// One test drives the installed protocol end to end, since the
    /// installation is process-wide state.
    #[test]
    fn installed_protocol_serves_the_image_through_locate_device_path() {
        let handle = install(page_image(&[0xaa; 6])).unwrap();
        assert_eq!(installed_handle(), Some(handle));

        // Find it as the Linux stub does: LocateDevicePath on the vendor path.
        let wanted = initrd_device_path().unwrap();
        let mut remaining = wanted.as_ptr() as *const DevicePathProtocol;
        let mut found: uefi_raw::Handle = core::ptr::null_mut();
        // SAFETY: a whole device path and live locals.
        let status =
            unsafe { ps::locate_device_path(&LoadFile2Protocol::GUID, &mut remaining, &mut found) };
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(HandleId::from_raw(found), handle);
        // SAFETY: `remaining` points into `wanted`, at its End node.
        assert!(unsafe { efi::device_path::is_end(remaining) });

        let lf = ps::get_protocol::<LoadFile2Protocol>(handle, &LoadFile2Protocol::GUID).unwrap();
        let call = |policy: bool, size: &mut usize, buffer: *mut c_void| {
            // SAFETY: `size` is a live local and `buffer` null or `*size`
            // bytes long, as the callers below pass them.
            unsafe { load_file(lf, remaining, policy.into(), size, buffer) }
        };
        let mut size = 0;
        assert_eq!(
            call(false, &mut size, core::ptr::null_mut()),
            Status::BUFFER_TOO_SMALL
        );
        assert_eq!(size, 6);
        let mut buffer = vec![0u8; 8];
        let mut short = 5;
        assert_eq!(
            call(false, &mut short, buffer.as_mut_ptr().cast()),
            Status::BUFFER_TOO_SMALL
        );
        let mut size = buffer.len();
        assert_eq!(
            call(true, &mut size, buffer.as_mut_ptr().cast()),
            Status::UNSUPPORTED
        );
        assert_eq!(
            call(false, &mut size, buffer.as_mut_ptr().cast()),
            Status::SUCCESS
        );
        assert_eq!(&buffer[..size], &[0xaa; 6]);

        // A second install replaces the first; uninstall removes the handle.
        let second = install(page_image(&[1, 2, 3, 4])).unwrap();
        assert_ne!(second, handle);
        assert!(ps::handles_with(&LoadFile2Protocol::GUID) == [second]);
        uninstall();
        assert_eq!(installed_handle(), None);
        assert!(ps::handles_with(&LoadFile2Protocol::GUID).is_empty());
        let mut size = 0;
        assert_eq!(
            // SAFETY: a live local and no buffer.
            unsafe {
                load_file(
                    lf,
                    remaining,
                    false.into(),
                    &mut size,
                    core::ptr::null_mut(),
                )
            },
            Status::INVALID_PARAMETER,
            "a stale This is refused"
        );
    }
}
