//! Thin safe wrappers over EFI_FILE_PROTOCOL (UEFI 2.10 §13.5) and pool buffers.

use core::ffi::c_void;
use core::fmt;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::{file, loaded_image, simple_file_system};

/// A failed firmware call: which step, and the status it returned.
#[derive(Clone, Copy)]
pub struct Failure {
    pub step: &'static str,
    pub status: efi::Status,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} returned {:#x}", self.step, self.status.as_usize())
    }
}

fn check(step: &'static str, status: efi::Status) -> Result<(), Failure> {
    if status == efi::Status::SUCCESS {
        Ok(())
    } else {
        Err(Failure { step, status })
    }
}

fn handle_protocol<T>(
    bs: &efi::BootServices,
    handle: efi::Handle,
    guid: &efi::Guid,
    step: &'static str,
) -> Result<*mut T, Failure> {
    let mut guid = *guid;
    let mut iface: *mut c_void = ptr::null_mut();
    check(step, (bs.handle_protocol)(handle, &mut guid, &mut iface))?;
    if iface.is_null() {
        return Err(Failure {
            step,
            status: efi::Status::NOT_FOUND,
        });
    }
    Ok(iface.cast())
}

/// An open EFI_FILE_PROTOCOL handle, closed on drop (errors ignored there; call
/// [`File::close`] to see them).
pub struct File(*mut file::Protocol);

impl File {
    /// Opens the root directory of the volume this image was loaded from:
    /// LoadedImage.DeviceHandle (§9.1) -> SimpleFileSystem.OpenVolume (§13.4.2).
    pub fn image_volume(bs: &efi::BootServices, image: efi::Handle) -> Result<Self, Failure> {
        let loaded: *mut loaded_image::Protocol = handle_protocol(
            bs,
            image,
            &loaded_image::PROTOCOL_GUID,
            "HandleProtocol(LoadedImage)",
        )?;
        // SAFETY: HandleProtocol returned a non-null LoadedImage interface, which stays
        // installed while the image runs.
        let device = unsafe { (*loaded).device_handle };
        Self::volume(bs, device)
    }

    /// Opens the root directory of the SimpleFileSystem on `device` (§13.4.2).
    pub fn volume(bs: &efi::BootServices, device: efi::Handle) -> Result<Self, Failure> {
        let fs: *mut simple_file_system::Protocol = handle_protocol(
            bs,
            device,
            &simple_file_system::PROTOCOL_GUID,
            "HandleProtocol(SimpleFileSystem)",
        )?;
        let mut root: *mut file::Protocol = ptr::null_mut();
        // SAFETY: `fs` is a non-null SimpleFileSystem interface installed on the device.
        let open_volume = unsafe { (*fs).open_volume };
        check("OpenVolume", open_volume(fs, &mut root))?;
        Self::from_raw(root, "OpenVolume")
    }

    fn from_raw(raw: *mut file::Protocol, step: &'static str) -> Result<Self, Failure> {
        if raw.is_null() {
            Err(Failure {
                step,
                status: efi::Status::DEVICE_ERROR,
            })
        } else {
            Ok(Self(raw))
        }
    }

    fn table(&self) -> &file::Protocol {
        // SAFETY: `self.0` is a non-null handle the firmware returned from Open/OpenVolume;
        // it stays valid until Close, which only `close`/`drop` call.
        unsafe { &*self.0 }
    }

    /// Open (§13.5.2) `name` (NUL-terminated UCS-2) relative to this directory.
    pub fn open(
        &self,
        name: &[u16],
        mode: u64,
        attributes: u64,
        step: &'static str,
    ) -> Result<Self, Failure> {
        let mut name_buf = [0u16; 64];
        let Some(dst) = name_buf.get_mut(..name.len()) else {
            return Err(Failure {
                step,
                status: efi::Status::BUFFER_TOO_SMALL,
            });
        };
        dst.copy_from_slice(name);
        let mut opened: *mut file::Protocol = ptr::null_mut();
        let status =
            (self.table().open)(self.0, &mut opened, name_buf.as_mut_ptr(), mode, attributes);
        check(step, status)?;
        Self::from_raw(opened, step)
    }

    /// Read (§13.5.5) into `buf`; returns the byte count, 0 at end of file.
    pub fn read(&self, buf: &mut [u8], step: &'static str) -> Result<usize, Failure> {
        let mut size = buf.len();
        check(
            step,
            (self.table().read)(self.0, &mut size, buf.as_mut_ptr().cast()),
        )?;
        if size > buf.len() {
            return Err(Failure {
                step,
                status: efi::Status::BAD_BUFFER_SIZE,
            });
        }
        Ok(size)
    }

    /// Write (§13.5.6) all of `data`; a short write is an error.
    pub fn write(&self, data: &[u8], step: &'static str) -> Result<(), Failure> {
        let mut size = data.len();
        // The protocol takes a mutable pointer but only reads the buffer (§13.5.6).
        let status = (self.table().write)(self.0, &mut size, data.as_ptr().cast_mut().cast());
        check(step, status)?;
        if size != data.len() {
            return Err(Failure {
                step,
                status: efi::Status::VOLUME_FULL,
            });
        }
        Ok(())
    }

    /// Flush (§13.5.11).
    pub fn flush(&self, step: &'static str) -> Result<(), Failure> {
        check(step, (self.table().flush)(self.0))
    }

    /// Close (§13.5.3), reporting its status.
    pub fn close(self, step: &'static str) -> Result<(), Failure> {
        let raw = self.0;
        core::mem::forget(self);
        // SAFETY: `raw` is still open: `forget` keeps `drop` from closing it a second time.
        let close = unsafe { (*raw).close };
        check(step, close(raw))
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = (self.table().close)(self.0);
    }
}

/// A zero-filled EfiLoaderData pool allocation, freed on drop.
pub struct PoolBuffer<'a> {
    bs: &'a efi::BootServices,
    ptr: *mut u8,
    len: usize,
}

impl<'a> PoolBuffer<'a> {
    pub fn new(bs: &'a efi::BootServices, len: usize) -> Result<Self, Failure> {
        let mut raw: *mut c_void = ptr::null_mut();
        check(
            "AllocatePool",
            (bs.allocate_pool)(efi::LOADER_DATA, len, &mut raw),
        )?;
        if raw.is_null() {
            return Err(Failure {
                step: "AllocatePool",
                status: efi::Status::OUT_OF_RESOURCES,
            });
        }
        let ptr = raw.cast::<u8>();
        // SAFETY: AllocatePool returned `len` writable bytes at `ptr` (§7.2.4); zeroing them
        // makes the later `&mut [u8]` view point at initialized memory.
        unsafe { ptr::write_bytes(ptr, 0, len) };
        Ok(Self { bs, ptr, len })
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` owns `len` initialized bytes until drop, and `&mut self` makes this
        // the only view.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for PoolBuffer<'_> {
    fn drop(&mut self) {
        let _ = (self.bs.free_pool)(self.ptr.cast());
    }
}
