//! The Disk I/O driver (UEFI 2.10 §13.7, a device driver in the sense of
//! §11.1): Disk I/O on every Block I/O handle another driver produced
//! without one, so the partition and FAT drivers (which bind Disk I/O) serve
//! those disks too: a RAM disk an application installs and connects, a
//! loaded driver's disk. The firmware's own disks get Disk I/O from
//! `add_disk` and are not touched here.

use alloc::rc::Rc;

use efi::ids::{HandleId, Interface};
use efi::protocol_services::{self as ps, install};
use efi::spec_gaps::OPEN_PROTOCOL_BY_DRIVER;
use uefi_raw::protocol::block::BlockIoProtocol;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::disk::DiskIoProtocol;
use uefi_raw::protocol::driver::DriverBindingProtocol;
use uefi_raw::{Handle, Status};

use super::disk_io::new_disk_io_for_media;
use super::driver_model::{DISK_IO_DRIVER, STATE, our_block_io_is_partition, registered_driver};
use super::foreign_block_io::ForeignBlockIo;

/// Opens `controller`'s Block I/O BY_DRIVER for the Disk I/O driver and
/// makes the device over it; closes it again on refusal.
fn open_foreign(controller: HandleId, driver: HandleId) -> Result<ForeignBlockIo, Status> {
    if ps::get_protocol::<DiskIoProtocol>(controller, &DiskIoProtocol::GUID).is_some() {
        return Err(Status::UNSUPPORTED);
    }
    let interface = ps::open(
        controller,
        &BlockIoProtocol::GUID,
        driver,
        controller,
        OPEN_PROTOCOL_BY_DRIVER,
    )?;
    let block_io = interface.as_exposed_ptr::<BlockIoProtocol>();
    let refuse = |status| {
        let _ = ps::close(controller, &BlockIoProtocol::GUID, driver, controller);
        Err(status)
    };
    // Ours always come with Disk I/O; one without is not ours to serve.
    if our_block_io_is_partition(block_io).is_some() {
        return refuse(Status::UNSUPPORTED);
    }
    // SAFETY: an interface installed on `controller`, which stays installed
    // while this driver holds it BY_DRIVER (its producer must disconnect us
    // before it uninstalls it, §11.1.3).
    match unsafe { ForeignBlockIo::new(block_io) } {
        Ok(device) => Ok(device),
        Err(error) => {
            log::debug!("Disk I/O driver: Block I/O on {controller:#x} refused: {error:?}");
            refuse(Status::UNSUPPORTED)
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.1 requires of the caller.
pub(super) unsafe extern "efiapi" fn disk_io_supported(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = HandleId::from_raw(controller);
    let driver = registered_driver(&DISK_IO_DRIVER);
    match open_foreign(controller, driver) {
        Ok(_) => {
            let _ = ps::close(controller, &BlockIoProtocol::GUID, driver, controller);
            Status::SUCCESS
        }
        Err(status) => status,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.2 requires of the caller.
pub(super) unsafe extern "efiapi" fn disk_io_start(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = HandleId::from_raw(controller);
    let driver = registered_driver(&DISK_IO_DRIVER);
    let device = match open_foreign(controller, driver) {
        Ok(device) => device,
        Err(status) => return status,
    };
    let (blocks, block_size) = (
        platform::block::BlockDevice::num_blocks(&device),
        platform::block::BlockDevice::block_size(&device),
    );
    let media_id = device.media_id();
    let disk_io = new_disk_io_for_media(Rc::new(device), media_id);
    if let Err(status) = install(Some(controller), &[(DiskIoProtocol::GUID, disk_io.cast())]) {
        let _ = ps::close(controller, &BlockIoProtocol::GUID, driver, controller);
        return status;
    }
    STATE.with(|s| {
        s.foreign.insert(
            controller,
            Interface::from_ptr(disk_io.cast::<core::ffi::c_void>()),
        )
    });
    log::info!(
        "storage: Disk I/O on another driver's Block I/O ({blocks} blocks of {block_size} bytes)"
    );
    Status::SUCCESS
}

/// Stop (§11.1.3): uninstalls the Disk I/O (refused while the partition or
/// FAT driver still holds it) and lets go of the Block I/O.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.3 requires of the caller.
pub(super) unsafe extern "efiapi" fn disk_io_stop(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _count: usize,
    _children: *const Handle,
) -> Status {
    let controller = HandleId::from_raw(controller);
    let driver = registered_driver(&DISK_IO_DRIVER);
    let Some(disk_io) = STATE.with(|s| s.foreign.get(&controller).copied()) else {
        return Status::DEVICE_ERROR;
    };
    if let Err(status) = ps::uninstall(
        controller,
        &[(DiskIoProtocol::GUID, disk_io.as_exposed_ptr())],
    ) {
        return status;
    }
    // The instance stays allocated: a caller may still hold its pointer
    // (see the storage module's comment).
    STATE.with(|s| s.foreign.remove(&controller));
    let _ = ps::close(controller, &BlockIoProtocol::GUID, driver, controller);
    Status::SUCCESS
}

pub(super) fn disk_io_controller_name(
    controller: HandleId,
    child: Option<HandleId>,
) -> Option<alloc::string::String> {
    (child.is_none() && STATE.with(|s| s.foreign.contains_key(&controller)))
        .then(|| alloc::string::String::from("Disk I/O over another driver's Block I/O"))
}
