//! EFI_RAM_DISK_PROTOCOL (UEFI 2.10 §13.20): memory a caller registers
//! becomes a disk with BlockIo, DiskIo and the path `<parent>/RamDisk(...)`
//! (§10.3.5.9), connected like the firmware's own disks, so its partitions
//! and FAT volumes appear. HTTP boot downloads a disk or ISO image and
//! registers it here. Register only: Unregister is `EFI_UNSUPPORTED` (a
//! registered disk stays for the boot).

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use core::ffi::c_void;

use efi::boundary;
use platform::block::{BlockDevice, BlockError};
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::device_path::media::RamDiskType;
use uefi_raw::{Guid, Status, guid};

use super::Disk;
use crate::device_path::{DevicePathBuf, node};

/// EFI_RAM_DISK_PROTOCOL_GUID (§13.20); uefi-raw and r-efi lack the
/// protocol.
pub const RAM_DISK_PROTOCOL_GUID: Guid = guid!("ab38a0df-6873-44a9-87e6-d4eb56148449");

/// EFI_RAM_DISK_PROTOCOL.
#[repr(C)]
pub struct RamDiskProtocol {
    pub register: unsafe extern "efiapi" fn(
        base: u64,
        size: u64,
        disk_type: *const Guid,
        parent: *const DevicePathProtocol,
        device_path: *mut *const DevicePathProtocol,
    ) -> Status,
    pub unregister: unsafe extern "efiapi" fn(device_path: *const DevicePathProtocol) -> Status,
}

/// Blocks of every RAM disk, as in edk2 (an ISO's El Torito image is found
/// on 512-byte blocks too).
const BLOCK_SIZE: u32 = 512;

/// A registered range of memory as a block device.
struct RamDisk {
    base: u64,
    blocks: u64,
}

impl RamDisk {
    fn range(&self, lba: u64, len: usize) -> Result<usize, BlockError> {
        self.check_request(lba, len)?;
        // In bounds of the registered range, which fits the address space.
        Ok((self.base + lba * u64::from(BLOCK_SIZE)) as usize)
    }
}

impl BlockDevice for RamDisk {
    fn block_size(&self) -> u32 {
        BLOCK_SIZE
    }

    fn num_blocks(&self) -> u64 {
        self.blocks
    }

    fn read_only(&self) -> bool {
        false
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let at = self.range(lba, buf.len())?;
        // SAFETY: Register's caller gave us the memory for as long as the
        // disk exists (§13.20), identity-mapped; the range is inside it.
        unsafe { core::ptr::copy_nonoverlapping(at as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let at = self.range(lba, buf.len())?;
        // SAFETY: as for `read_blocks`.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), at as *mut u8, buf.len()) };
        Ok(())
    }

    fn flush(&self) -> Result<(), BlockError> {
        Ok(())
    }
}

impl Disk for RamDisk {}

/// Installs EFI_RAM_DISK_PROTOCOL on a handle of its own.
pub fn install() -> Result<(), Status> {
    let protocol = Box::leak(Box::new(RamDiskProtocol {
        register,
        unregister,
    }));
    efi::protocol_services::install(
        None,
        &[(
            RAM_DISK_PROTOCOL_GUID,
            (protocol as *mut RamDiskProtocol).cast::<c_void>(),
        )],
    )
    .map(|_| ())
}

/// The RamDisk node (§10.3.5.9): first and last byte, type, instance 0.
fn ram_disk_node(base: u64, size: u64, disk_type: &Guid) -> alloc::vec::Vec<u8> {
    let mut data = [0u8; 34];
    data[..8].copy_from_slice(&base.to_le_bytes());
    data[8..16].copy_from_slice(&(base + size - 1).to_le_bytes());
    data[16..32].copy_from_slice(&disk_type.to_bytes());
    node(4, 9, &data).unwrap_or_default()
}

/// Register: checks the arguments, publishes the disk, connects it.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §13.20 requires of the caller; the
/// memory `base..base+size` is the caller's to give for the disk's life.
unsafe extern "efiapi" fn register(
    base: u64,
    size: u64,
    disk_type: *const Guid,
    parent: *const DevicePathProtocol,
    device_path: *mut *const DevicePathProtocol,
) -> Status {
    // SAFETY: the caller passes a readable GUID or NULL.
    let Ok(disk_type) = (unsafe { boundary::guid(disk_type) }) else {
        return Status::INVALID_PARAMETER;
    };
    if device_path.is_null() || size < u64::from(BLOCK_SIZE) || base.checked_add(size).is_none() {
        return Status::INVALID_PARAMETER;
    }
    if ![RamDiskType::VIRTUAL_DISK.0, RamDiskType::VIRTUAL_CD.0].contains(&disk_type) {
        // The persistent types need an NVDIMM namespace (NFIT) we do not publish.
        return Status::UNSUPPORTED;
    }
    let mut path = if parent.is_null() {
        DevicePathBuf::new()
    } else {
        // SAFETY: a non-NULL parent is a whole device path (§13.20).
        let bytes = match unsafe { efi::device_path::read_path(parent) } {
            Ok(bytes) => bytes,
            Err(status) => return status,
        };
        match DevicePathBuf::from_bytes(&bytes) {
            Ok(path) => path,
            Err(_) => return Status::INVALID_PARAMETER,
        }
    };
    if path.push(&ram_disk_node(base, size, &disk_type)).is_err() {
        return Status::INVALID_PARAMETER;
    }
    let disk = Rc::new(RamDisk {
        base,
        blocks: size / u64::from(BLOCK_SIZE),
    });
    let label = format!("RAM disk at {base:#x}, {} KiB", size / 1024);
    let published = super::add_disk_at(disk, path.clone(), label);
    let Ok(handle) = published else {
        return published.err().unwrap_or(Status::OUT_OF_RESOURCES);
    };
    match efi::protocol_services::get_protocol::<DevicePathProtocol>(
        handle,
        &DevicePathProtocol::GUID,
    ) {
        // SAFETY: checked non-NULL above; the caller's output pointer.
        Some(installed) => unsafe { device_path.write_unaligned(installed) },
        None => return Status::OUT_OF_RESOURCES,
    }
    Status::SUCCESS
}

/// # Safety
/// Nothing is read: Unregister is not implemented.
unsafe extern "efiapi" fn unregister(_: *const DevicePathProtocol) -> Status {
    Status::UNSUPPORTED
}
