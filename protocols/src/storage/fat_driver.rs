//! The FAT driver (UEFI 2.10 §11.1, a device driver): SimpleFileSystem on
//! every FAT volume among the firmware's Block I/O + Disk I/O handles.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;

use efi::ids::{HandleId, Interface};
use efi::protocol_services::{self as ps, install};
use efi::spec_gaps::OPEN_PROTOCOL_GET_PROTOCOL;
use platform::block::BlockDevice;
use platform::sync::Global;
use uefi_raw::protocol::block::BlockIoProtocol;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::driver::DriverBindingProtocol;
use uefi_raw::protocol::file_system::SimpleFileSystemProtocol;
use uefi_raw::{Handle, Status};

use super::driver_model::{
    FAT_DRIVER, STATE, controller_block_io, open_disk_io, our_disk_device, probe_disk_io,
    registered_driver, release,
};
use super::labels::fat_type_name;
use super::sector_view::SectorView;
use crate::fat::{DateTime, FatError, FileSystem};
use crate::simple_fs::{retire_simple_file_system, simple_file_system_for};

/// Timestamps for FAT writes from the firmware clock (GetTime, §8.3.1).
fn fat_clock() -> DateTime {
    #[cfg(target_os = "none")]
    {
        let mut time = uefi_raw::time::Time::default();
        // SAFETY: a live local; the capabilities are optional.
        if unsafe { efi::runtime::get_time(&mut time, core::ptr::null_mut()) } == Status::SUCCESS {
            return DateTime {
                year: time.year,
                month: time.month,
                day: time.day,
                hour: time.hour,
                minute: time.minute,
                second: time.second,
            };
        }
    }
    DateTime::EPOCH
}

/// A volume the FAT driver's Supported mounted, kept for its Start so the
/// volume is mounted once.
struct ProbedVolume(HandleId, FileSystem<Box<dyn BlockDevice>>);

// SAFETY: the firmware runs on one CPU (see `platform::sync`); the volume
// and the `Rc`s inside it are never touched from another thread.
unsafe impl Send for ProbedVolume {}

static PROBED: Global<Option<ProbedVolume>> = Global::new(None);

/// The FAT driver takes any of our Block I/O + Disk I/O handles holding a
/// FAT volume; the probe mount is kept for Start.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.1 requires of the caller.
pub(super) unsafe extern "efiapi" fn fat_supported(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = HandleId::from_raw(controller);
    let device = match probe_disk_io(controller, registered_driver(&FAT_DRIVER)) {
        Ok(device) => device,
        Err(status) => return status,
    };
    if controller_block_io(controller).is_none() {
        return Status::UNSUPPORTED;
    }
    match mount(device) {
        Ok(volume) => {
            STATE.with(|s| s.refused.remove(&controller));
            PROBED.with(|p| *p = Some(ProbedVolume(controller, volume)));
            Status::SUCCESS
        }
        Err(error @ FatError::OutOfMemory(_)) => {
            // Not a verdict on the volume: say so at the default level.
            log::warn!("storage: FAT volume not mounted: {error} (EFI_OUT_OF_RESOURCES)");
            STATE.with(|s| s.refused.insert(controller, format!("{error}")));
            Status::OUT_OF_RESOURCES
        }
        Err(error) => {
            log::debug!("storage: no FAT file system: {error}");
            STATE.with(|s| s.refused.insert(controller, format!("{error}")));
            Status::UNSUPPORTED
        }
    }
}

/// Mounts the FAT volume on `device`; a volume whose sectors are smaller
/// than the device's blocks (an El Torito image on a CD-ROM) through a
/// [`SectorView`] of its sector size.
fn mount(device: Rc<dyn BlockDevice>) -> Result<FileSystem<Box<dyn BlockDevice>>, FatError> {
    match FileSystem::mount(Box::new(device.clone()) as Box<dyn BlockDevice>) {
        Err(FatError::UnsupportedBlockSize { sector, block }) if sector != 0 && sector < block => {
            let view = SectorView::new(device, sector)
                .ok_or(FatError::UnsupportedBlockSize { sector, block })?;
            FileSystem::mount(Box::new(view) as Box<dyn BlockDevice>)
        }
        result => result,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.2 requires of the caller.
pub(super) unsafe extern "efiapi" fn fat_start(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = HandleId::from_raw(controller);
    let driver = registered_driver(&FAT_DRIVER);
    let disk_io = match open_disk_io(controller, driver) {
        Ok(interface) => interface,
        Err(status) => return status,
    };
    let fail = |status: Status| {
        release(controller, driver);
        status
    };
    let Some(device) = our_disk_device(disk_io) else {
        return fail(Status::UNSUPPORTED);
    };
    // Recorded for `dh -d` and OpenProtocolInformation; Block I/O is only read.
    if ps::open(
        controller,
        &BlockIoProtocol::GUID,
        driver,
        controller,
        OPEN_PROTOCOL_GET_PROTOCOL,
    )
    .is_err()
    {
        return fail(Status::UNSUPPORTED);
    }
    let probed = PROBED
        .with(|p| p.take_if(|probe| probe.0 == controller))
        .map(|probe| probe.1);
    let volume = match probed {
        Some(volume) => volume,
        None => match mount(device) {
            Ok(volume) => volume,
            Err(error) => {
                log::warn!("storage: FAT mount failed: {error}");
                return fail(Status::UNSUPPORTED);
            }
        },
    };
    let fat_type = volume.fat_type();
    let protocol = simple_file_system_for(volume, fat_clock);
    if let Err(status) = install(
        Some(controller),
        &[(SimpleFileSystemProtocol::GUID, protocol.cast())],
    ) {
        log::warn!("storage: installing SimpleFileSystem failed: {status:?}");
        return fail(status);
    }
    STATE.with(|s| {
        s.volumes
            .insert(controller, (Interface::from_ptr(protocol), fat_type))
    });
    Status::SUCCESS
}

/// Stop (§11.1.3): refused with EFI_ACCESS_DENIED while files are open on
/// the volume; otherwise SimpleFileSystem is uninstalled and the volume
/// flushed and retired.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.3 requires of the caller.
pub(super) unsafe extern "efiapi" fn fat_stop(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    count: usize,
    _children: *const Handle,
) -> Status {
    let controller = HandleId::from_raw(controller);
    let driver = registered_driver(&FAT_DRIVER);
    let Some((protocol, _)) = STATE.with(|s| s.volumes.get(&controller).copied()) else {
        return Status::DEVICE_ERROR;
    };
    if count != 0 {
        // A device driver has no children to stop.
        return Status::INVALID_PARAMETER;
    }
    let protocol = protocol.as_exposed_ptr::<SimpleFileSystemProtocol>();
    // SAFETY: `protocol` is the SimpleFileSystem fat_start made with
    // `simple_file_system_for` and recorded in `volumes`; it is never freed.
    if let Some(open) = unsafe { open_files(protocol) } {
        log::debug!("FAT driver: {open} file(s) open, volume stays");
        return Status::ACCESS_DENIED;
    }
    if let Err(status) = ps::uninstall(
        controller,
        &[(SimpleFileSystemProtocol::GUID, protocol.cast())],
    ) {
        return status;
    }
    // SAFETY: as for `open_files` above; Stop runs with boot services'
    // single CPU, so nothing else uses the instance meanwhile.
    if let Err(error) = unsafe { retire_simple_file_system(protocol) } {
        log::warn!("storage: retiring a FAT volume: {error}");
    }
    STATE.with(|s| s.volumes.remove(&controller));
    release(controller, driver);
    Status::SUCCESS
}

pub(super) fn fat_controller_name(controller: HandleId, child: Option<HandleId>) -> Option<String> {
    if child.is_some() {
        return None;
    }
    let (_, fat_type) = STATE.with(|s| s.volumes.get(&controller).copied())?;
    Some(format!("{} file system", fat_type_name(fat_type)))
}

/// The number of open files when there are any (None: none).
///
/// # Safety
/// `protocol` is as [`crate::simple_fs::open_file_count`] requires.
unsafe fn open_files(protocol: *mut SimpleFileSystemProtocol) -> Option<usize> {
    // SAFETY: this function's contract.
    match unsafe { crate::simple_fs::open_file_count(protocol) } {
        Some(0) | None => None,
        Some(count) => Some(count),
    }
}
