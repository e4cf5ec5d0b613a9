//! The storage drivers (UEFI 2.10 §11.1). `add_disk` publishes a disk handle
//! and asks the core to connect it; the partition driver (a bus driver) then
//! makes a child handle per partition, and the FAT driver (a device driver)
//! puts SimpleFileSystem on every FAT volume: a partition, or a whole disk
//! without a partition table (the partition driver declines those).
//!
//! Both drivers bind the firmware's own Disk I/O instances and reach the
//! `BlockDevice` behind them directly instead of going back through the
//! protocol calls, which keeps the disk paths as fast as before. Another
//! driver's Block I/O (a RAM disk, a loaded driver's disk) gets one of those
//! Disk I/O instances from the Disk I/O driver (`disk_io_driver`), over a
//! `ForeignBlockIo`, so both drivers serve it too.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use alloc::collections::BTreeMap;

use efi::boundary;
use efi::ids::{HandleId, Interface};
use efi::protocol_services as ps;
use efi::spec_gaps::OPEN_PROTOCOL_BY_DRIVER;
use platform::block::BlockDevice;
use platform::sync::Global;
use uefi_raw::protocol::block::BlockIoProtocol;
use uefi_raw::protocol::disk::DiskIoProtocol;
use uefi_raw::{Guid, Handle, Status};

use super::block_io::{block_io_instance, block_io_read};
use super::disk_io::{disk_io_instance, disk_io_read};
use super::disk_io_driver::{
    disk_io_controller_name, disk_io_start, disk_io_stop, disk_io_supported,
};
use super::fat_driver::{fat_controller_name, fat_start, fat_stop, fat_supported};
use super::partition_driver::{
    partition_controller_name, partition_start, partition_stop, partition_supported,
};
use crate::device_path::DevicePathBuf;
use crate::driver::{self, DriverInfo};
use crate::fat::FatType;

/// ConnectController tries drivers by Version, highest first (§7.3.12): the
/// partition driver must see a disk before the FAT driver, so a partitioned
/// disk is never mounted whole; the Disk I/O driver, which gives another
/// driver's Block I/O the Disk I/O both bind, comes first.
const DISK_IO_DRIVER_VERSION: u32 = 0x30;
const PARTITION_DRIVER_VERSION: u32 = 0x20;
const FAT_DRIVER_VERSION: u32 = 0x10;

/// The drivers' files in the firmware volume (their images' FvFile()
/// GUIDs) and the names of those files. The image names are one word, as
/// edk2 names a module's file after its BASE_NAME, and differ from the
/// ComponentName2 driver names, so the Shell's IMAGE NAME column shows what
/// the volume says, not the driver name again.
pub const PARTITION_DRIVER_FILE: Guid = uefi_raw::guid!("6b1e0b5a-3c2d-4e8f-9a7b-1d2c3e4f5a60");
pub const FAT_DRIVER_FILE: Guid = uefi_raw::guid!("7c2f1c6b-4d3e-4f90-8b8c-2e3d4f5a6b71");
pub const DISK_IO_DRIVER_FILE: Guid = uefi_raw::guid!("8d3a2d7c-5e4f-4a01-9c9d-3f4e5a6b7c82");
pub const PARTITION_DRIVER_IMAGE: &str = "PartitionDriver";
pub const DISK_IO_DRIVER_IMAGE: &str = "DiskIoDriver";
pub const FAT_DRIVER_IMAGE: &str = "FatDriver";

/// The drivers' handles (NULL until `register_drivers`).
pub(super) static PARTITION_DRIVER: Global<HandleId> = Global::new(HandleId::NULL);
pub(super) static FAT_DRIVER: Global<HandleId> = Global::new(HandleId::NULL);
pub(super) static DISK_IO_DRIVER: Global<HandleId> = Global::new(HandleId::NULL);

/// A disk handle made by `add_disk`.
pub(super) struct DiskRecord {
    /// Its PCI function, "00:01.0", for log lines and the controller name.
    pub(super) label: String,
    pub(super) path: DevicePathBuf,
    /// Whether the partition driver logged the disk's layout already.
    pub(super) announced: bool,
}

/// A partition handle made by the partition driver.
pub(super) struct PartitionChild {
    pub(super) parent: HandleId,
    pub(super) number: u32,
    pub(super) description: String,
    pub(super) bytes: u64,
    /// The installed (GUID, interface) pairs, Disk I/O first: it is
    /// the one a driver holds, so removing it first changes nothing when
    /// that driver refuses to stop.
    pub(super) protocols: Vec<(Guid, Interface)>,
}

#[derive(Default)]
pub(super) struct StorageState {
    pub(super) disks: BTreeMap<HandleId, DiskRecord>,
    /// Disks the partition driver manages, with their children in order.
    pub(super) partitioned: BTreeMap<HandleId, Vec<HandleId>>,
    pub(super) children: BTreeMap<HandleId, PartitionChild>,
    /// Volumes the FAT driver manages: their SimpleFileSystem and FAT type.
    pub(super) volumes: BTreeMap<HandleId, (Interface, FatType)>,
    /// Why the FAT driver's Supported() refused a controller last, for the
    /// volume line at the default log level.
    pub(super) refused: BTreeMap<HandleId, String>,
    /// Other drivers' Block I/O handles the Disk I/O driver serves, with
    /// the Disk I/O it installed.
    pub(super) foreign: BTreeMap<HandleId, Interface>,
}

pub(super) static STATE: Global<StorageState> = Global::new(StorageState {
    disks: BTreeMap::new(),
    partitioned: BTreeMap::new(),
    children: BTreeMap::new(),
    volumes: BTreeMap::new(),
    refused: BTreeMap::new(),
    foreign: BTreeMap::new(),
});

pub(super) fn registered_driver(slot: &Global<HandleId>) -> HandleId {
    slot.with(|handle| *handle)
}

/// Creates the three driver handles, once.
pub(super) fn register_drivers() -> Result<(), Status> {
    if !registered_driver(&PARTITION_DRIVER).is_null() {
        return Ok(());
    }
    let disk_io = driver::register(DriverInfo {
        name: "Disk I/O driver",
        image_file: DISK_IO_DRIVER_FILE,
        image_name: DISK_IO_DRIVER_IMAGE,
        version: DISK_IO_DRIVER_VERSION,
        supported: disk_io_supported,
        start: disk_io_start,
        stop: disk_io_stop,
        controller_name: disk_io_controller_name,
    })?;
    DISK_IO_DRIVER.with(|slot| *slot = disk_io);
    let partition = driver::register(DriverInfo {
        name: "Partition driver (GPT, MBR)",
        image_file: PARTITION_DRIVER_FILE,
        image_name: PARTITION_DRIVER_IMAGE,
        version: PARTITION_DRIVER_VERSION,
        supported: partition_supported,
        start: partition_start,
        stop: partition_stop,
        controller_name: partition_controller_name,
    })?;
    PARTITION_DRIVER.with(|slot| *slot = partition);
    let fat = driver::register(DriverInfo {
        name: "FAT file system driver",
        image_file: FAT_DRIVER_FILE,
        image_name: FAT_DRIVER_IMAGE,
        version: FAT_DRIVER_VERSION,
        supported: fat_supported,
        start: fat_start,
        stop: fat_stop,
        controller_name: fat_controller_name,
    })?;
    FAT_DRIVER.with(|slot| *slot = fat);
    Ok(())
}

/// The device behind a Disk I/O interface, when it is one of ours. The
/// function pointer (inside the protocol table every caller must provide)
/// tells ours from a foreign one before anything past the table is read.
pub(super) fn our_disk_device(interface: Interface) -> Option<Rc<dyn BlockDevice>> {
    let protocol = interface.as_exposed_ptr::<DiskIoProtocol>();
    if protocol.is_null() || !protocol.is_aligned() {
        return None;
    }
    // SAFETY: an installed Disk I/O interface: its table is readable.
    let read = unsafe { (*protocol).read_disk };
    if read as *const () != disk_io_read as *const () {
        return None;
    }
    // SAFETY: its ReadDisk is ours, so the interface is a `DiskIo` made by
    // `new_disk_io` (never freed): readable through its signature.
    unsafe { disk_io_instance(protocol, None) }
        .ok()
        .map(|io| io.device.clone())
}

/// Whether a Block I/O interface is one of ours over a logical partition
/// (None: not ours).
pub(super) fn our_block_io_is_partition(interface: *mut BlockIoProtocol) -> Option<bool> {
    if interface.is_null() || !interface.is_aligned() {
        return None;
    }
    // SAFETY: an installed Block I/O interface: its table is readable.
    let read = unsafe { (*interface).read_blocks };
    if read as *const () != block_io_read as *const () {
        return None;
    }
    // SAFETY: its ReadBlocks is ours, so the interface is a `BlockIo` made
    // by `new_block_io` (never freed): readable through its signature.
    unsafe { block_io_instance(interface) }
        .ok()
        .map(|io| io.media.logical_partition.into())
}

/// The Disk I/O of `controller`, opened BY_DRIVER by `driver`.
pub(super) fn open_disk_io(controller: HandleId, driver: HandleId) -> Result<Interface, Status> {
    ps::open(
        controller,
        &DiskIoProtocol::GUID,
        driver,
        controller,
        OPEN_PROTOCOL_BY_DRIVER,
    )
}

/// Drops every open `driver` made of `controller`'s Block I/O and Disk I/O.
pub(super) fn release(controller: HandleId, driver: HandleId) {
    for guid in [DiskIoProtocol::GUID, BlockIoProtocol::GUID] {
        // Already closed (or the protocol gone with its handle): fine.
        let _ = ps::close(controller, &guid, driver, controller);
    }
}

/// Supported's probe as §11.1.1 describes it: the BY_DRIVER open the
/// driver's Start would make (refused while another driver, or this one,
/// holds the Disk I/O), closed again; then the device behind it.
pub(super) fn probe_disk_io(
    controller: HandleId,
    driver: HandleId,
) -> Result<Rc<dyn BlockDevice>, Status> {
    let interface = open_disk_io(controller, driver)?;
    let _ = ps::close(controller, &DiskIoProtocol::GUID, driver, controller);
    our_disk_device(interface).ok_or(Status::UNSUPPORTED)
}

pub(super) fn controller_block_io(controller: HandleId) -> Option<*mut BlockIoProtocol> {
    ps::get_protocol::<BlockIoProtocol>(controller, &BlockIoProtocol::GUID)
}

/// Reads the children the core passes to Stop.
///
/// # Safety
/// `children` is null or holds `count` handles (§11.1.3).
pub(super) unsafe fn stop_children(
    count: usize,
    children: *const Handle,
) -> Result<Vec<HandleId>, Status> {
    (0..count)
        // SAFETY: this function's contract.
        .map(|i| unsafe { boundary::read(children.wrapping_add(i)) }.map(HandleId::from_raw))
        .collect()
}
