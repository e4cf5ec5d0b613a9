//! The partition driver (UEFI 2.10 §11.1, a bus driver): a child handle
//! with Block I/O, Disk I/O, PartitionInfo and an `HD(...)` device path per
//! GPT or MBR partition of a disk `add_disk` published.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_void;

use efi::boundary;
use efi::ids::{HandleId, Interface};
use efi::protocol_services as ps;
use efi::spec_gaps::{OPEN_PROTOCOL_BY_CHILD_CONTROLLER, OPEN_PROTOCOL_BY_DRIVER};
use platform::block::BlockDevice;
use uefi_raw::protocol::block::BlockIoProtocol;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::disk::DiskIoProtocol;
use uefi_raw::protocol::driver::DriverBindingProtocol;
use uefi_raw::{Guid, Handle, Status};

use super::driver_model::{
    DiskRecord, PARTITION_DRIVER, PartitionChild, STATE, controller_block_io, open_disk_io,
    our_block_io_is_partition, our_disk_device, probe_disk_io, registered_driver, release,
    stop_children,
};
use super::labels::describe;
use super::partition_device::PartitionDevice;
use super::partition_info::{PARTITION_INFO_GUID, partition_info};
use super::publish;
use crate::device_path::{DevicePathBuf, media};
use crate::partition::{self, Partition, Scheme};

/// The partition driver takes whole disks `add_disk` published. A disk it
/// already manages is accepted again, so that Start brings back partitions
/// whose children were stopped on their own (DisconnectController with a
/// ChildHandle) when the disk is connected again.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.1 requires of the caller.
pub(super) unsafe extern "efiapi" fn partition_supported(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = HandleId::from_raw(controller);
    match partition_candidate(controller) {
        Err(Status::ALREADY_STARTED) if is_partitioned(controller) => Status::SUCCESS,
        other => boundary::status(other.map(|_| ())),
    }
}

fn is_partitioned(controller: HandleId) -> bool {
    STATE.with(|s| s.partitioned.contains_key(&controller))
}

/// A disk the partition driver takes: one `add_disk` published, or another
/// driver's Block I/O the Disk I/O driver serves (never a partition: the
/// Disk I/O driver refuses logical partitions).
fn partition_candidate(controller: HandleId) -> Result<Rc<dyn BlockDevice>, Status> {
    let driver = registered_driver(&PARTITION_DRIVER);
    let device = probe_disk_io(controller, driver)?;
    let block_io = controller_block_io(controller).ok_or(Status::UNSUPPORTED)?;
    let (ours, foreign) = STATE.with(|s| {
        (
            s.disks.contains_key(&controller),
            s.foreign.contains_key(&controller),
        )
    });
    let is_partition = match our_block_io_is_partition(block_io) {
        Some(is_partition) => is_partition,
        None => !foreign,
    };
    if is_partition || !(ours || foreign) {
        return Err(Status::UNSUPPORTED);
    }
    Ok(device)
}

/// Another driver's disk is recorded only while the partition driver holds
/// it: its handle may go, and a later handle reuse the number.
fn forget_foreign_disk(controller: HandleId) {
    STATE.with(|s| {
        if s.foreign.contains_key(&controller) {
            s.disks.remove(&controller);
        }
    });
}

/// The record of another driver's disk, made when the partition driver
/// first starts on it: named and pathed by its own device path (children
/// need one to extend, §10.1; a handle without one is not partitioned).
fn foreign_disk_record(controller: HandleId) -> Option<DiskRecord> {
    let path = ps::get_protocol::<DevicePathProtocol>(controller, &DevicePathProtocol::GUID)?;
    // SAFETY: an installed device path; `read_path` bounds its walk.
    let bytes = unsafe { efi::device_path::read_path(path) }.ok()?;
    let path = DevicePathBuf::from_bytes(&bytes).ok()?;
    Some(DiskRecord {
        label: path.to_text(),
        path,
        announced: false,
    })
}

/// Opens the disk for the partition driver: Disk I/O and Block I/O
/// BY_DRIVER, held for as long as its partitions exist (§11.1.2).
fn take_disk(controller: HandleId) -> Result<Rc<dyn BlockDevice>, Status> {
    let driver = registered_driver(&PARTITION_DRIVER);
    partition_candidate(controller)?;
    let interface = open_disk_io(controller, driver)?;
    let opened = ps::open(
        controller,
        &BlockIoProtocol::GUID,
        driver,
        controller,
        OPEN_PROTOCOL_BY_DRIVER,
    );
    match (opened, our_disk_device(interface)) {
        (Ok(_), Some(device)) => Ok(device),
        (opened, _) => {
            release(controller, driver);
            Err(opened.err().unwrap_or(Status::UNSUPPORTED))
        }
    }
}

/// Reads the partition table and makes a child per partition that has
/// none yet; declines (EFI_NOT_FOUND) a disk without partitions, which
/// leaves it to the FAT driver.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.2 requires of the caller.
pub(super) unsafe extern "efiapi" fn partition_start(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    _remaining: *const DevicePathProtocol,
) -> Status {
    let controller = HandleId::from_raw(controller);
    let driver = registered_driver(&PARTITION_DRIVER);
    let rescan = is_partitioned(controller);
    let disk = if rescan {
        let interface = ps::get_protocol::<c_void>(controller, &DiskIoProtocol::GUID);
        match interface.and_then(|i| our_disk_device(Interface::from_ptr(i))) {
            Some(disk) => disk,
            None => return Status::DEVICE_ERROR,
        }
    } else {
        match take_disk(controller) {
            Ok(disk) => disk,
            Err(status) => return status,
        }
    };
    // A disk being scanned again keeps what it holds.
    let fail = |status: Status| {
        if !rescan {
            release(controller, driver);
            forget_foreign_disk(controller);
        }
        status
    };
    if !STATE.with(|s| s.disks.contains_key(&controller)) {
        match foreign_disk_record(controller) {
            Some(record) => STATE.with(|s| s.disks.insert(controller, record)),
            None => return fail(Status::UNSUPPORTED),
        };
    }
    let Some((label, disk_path, announced)) = STATE.with(|s| {
        s.disks.get_mut(&controller).map(|d| {
            let announced = core::mem::replace(&mut d.announced, true);
            (d.label.clone(), d.path.clone(), announced)
        })
    }) else {
        return fail(Status::UNSUPPORTED);
    };
    // The first scan is news; later ones (a reconnect) are not.
    let level = if announced {
        log::Level::Debug
    } else {
        log::Level::Info
    };

    let (block_size, blocks) = (disk.block_size(), disk.num_blocks());
    let read_only = if disk.read_only() { ", read-only" } else { "" };
    let geometry = format!("{blocks} blocks of {block_size} bytes{read_only}");
    let table = match partition::read_partitions(&*disk) {
        Ok(table) => table,
        Err(error) => {
            log::log!(
                level,
                "disk {label}: {geometry}, no partition table ({error})"
            );
            return fail(match error {
                partition::PartitionError::OutOfMemory(_) => Status::OUT_OF_RESOURCES,
                _ => Status::NOT_FOUND,
            });
        }
    };
    let scheme = match table.scheme {
        Scheme::Gpt {
            used_backup: true, ..
        } => "GPT (from the backup header)",
        Scheme::Gpt { .. } => "GPT",
        Scheme::Mbr { .. } => "MBR",
        Scheme::ElTorito { .. } => "El Torito",
    };
    log::log!(
        level,
        "disk {label}: {geometry}, {scheme}, {} partitions",
        table.partitions.len()
    );
    if table.partitions.is_empty() {
        // A "superfloppy" may carry a file system from LBA 0.
        return fail(Status::NOT_FOUND);
    }
    let mbr_sector = match table.scheme {
        Scheme::Mbr { .. } => partition::buffer(block_size as usize)
            .ok()
            .and_then(|mut sector| disk.read_blocks(0, &mut sector).ok().map(|()| sector)),
        Scheme::Gpt { .. } | Scheme::ElTorito { .. } => None,
    };
    let published: Vec<u32> = STATE.with(|s| {
        s.children
            .values()
            .filter(|c| c.parent == controller)
            .map(|c| c.number)
            .collect()
    });
    let mut children = Vec::with_capacity(table.partitions.len());
    for partition in &table.partitions {
        if published.contains(&partition.number) {
            continue;
        }
        if !partition.wants_block_io() {
            log::log!(
                level,
                "  partition {}: GPT attribute bit 1 (no Block I/O) set, not published",
                partition.number
            );
            continue;
        }
        match add_partition(
            controller,
            &disk,
            &disk_path,
            partition,
            mbr_sector.as_deref(),
        ) {
            Ok(child) => children.push(child),
            Err(status) => log::warn!(
                "  partition {}: not published: {status:?}",
                partition.number
            ),
        }
    }
    STATE.with(|s| {
        s.partitioned
            .entry(controller)
            .or_default()
            .extend(children)
    });
    Status::SUCCESS
}

/// Publishes one partition of the disk `parent` as a child handle: Block
/// I/O, Disk I/O, the device path extended by `HD(...)` and PartitionInfo;
/// the child holds the parent's Disk I/O BY_CHILD_CONTROLLER (§11.1.2).
fn add_partition(
    parent: HandleId,
    disk: &Rc<dyn BlockDevice>,
    disk_path: &DevicePathBuf,
    partition: &Partition,
    mbr_sector: Option<&[u8]>,
) -> Result<HandleId, Status> {
    let blocks = partition.size_in_blocks();
    let view =
        PartitionDevice::new(disk.clone(), partition.start_lba, blocks).map_err(|error| {
            log::warn!("  partition {}: {error}", partition.number);
            Status::INVALID_PARAMETER
        })?;
    let view: Rc<dyn BlockDevice> = Rc::new(view);
    let mut path = disk_path.clone();
    path.push(&media(&partition.media_node()))
        .map_err(|_| Status::INVALID_PARAMETER)?;
    let info = Box::into_raw(Box::new(partition_info(partition, mbr_sector)));
    let (child, mut protocols) = publish(view, &path, true, &[(PARTITION_INFO_GUID, info.cast())])?;
    // Disk I/O first (see `PartitionChild::protocols`).
    protocols.swap(0, 1);
    let driver = registered_driver(&PARTITION_DRIVER);
    if let Err(status) = ps::open(
        parent,
        &DiskIoProtocol::GUID,
        driver,
        child,
        OPEN_PROTOCOL_BY_CHILD_CONTROLLER,
    ) {
        let _ = ps::uninstall(child, &protocols);
        return Err(status);
    }
    let record = PartitionChild {
        parent,
        number: partition.number,
        description: describe(partition),
        bytes: blocks.saturating_mul(u64::from(disk.block_size())),
        protocols: protocols
            .iter()
            .map(|&(g, i)| (g, Interface::from_ptr(i)))
            .collect(),
    };
    STATE.with(|s| s.children.insert(child, record));
    Ok(child)
}

/// Stop (§11.1.3): with children, uninstalls them (a FAT driver bound to
/// one is disconnected first, by the core's UninstallProtocolInterface);
/// without, releases the disk once it has no children left.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §11.1.3 requires of the caller.
pub(super) unsafe extern "efiapi" fn partition_stop(
    _this: *const DriverBindingProtocol,
    controller: Handle,
    count: usize,
    children: *const Handle,
) -> Status {
    let controller = HandleId::from_raw(controller);
    let driver = registered_driver(&PARTITION_DRIVER);
    if count == 0 {
        let left = STATE.with(|s| {
            let left = s.partitioned.get(&controller).map(Vec::len);
            if left == Some(0) {
                s.partitioned.remove(&controller);
            }
            left
        });
        return match left {
            Some(0) => {
                release(controller, driver);
                forget_foreign_disk(controller);
                Status::SUCCESS
            }
            _ => Status::DEVICE_ERROR,
        };
    }
    // SAFETY: the core's list, as this function's # Safety requires.
    let children = match unsafe { stop_children(count, children) } {
        Ok(children) => children,
        Err(status) => return status,
    };
    let mut status = Status::SUCCESS;
    for child in children {
        if let Err(error) = remove_partition(controller, child) {
            log::debug!("partition driver: child {child:#x} stays: {error:?}");
            status = Status::DEVICE_ERROR;
        }
    }
    status
}

fn remove_partition(parent: HandleId, child: HandleId) -> Result<(), Status> {
    let driver = registered_driver(&PARTITION_DRIVER);
    let protocols: Vec<(Guid, *mut c_void)> = STATE
        .with(|s| {
            s.children
                .get(&child)
                .filter(|c| c.parent == parent)
                .map(|c| c.protocols.clone())
        })
        .ok_or(Status::INVALID_PARAMETER)?
        .into_iter()
        .map(|(g, i)| (g, i.as_exposed_ptr::<c_void>()))
        .collect();
    ps::close(parent, &DiskIoProtocol::GUID, driver, child)?;
    if let Err(status) = ps::uninstall(child, &protocols) {
        let _ = ps::open(
            parent,
            &DiskIoProtocol::GUID,
            driver,
            child,
            OPEN_PROTOCOL_BY_CHILD_CONTROLLER,
        );
        return Err(status);
    }
    // The interfaces stay allocated: a caller that looked them up earlier
    // may still call them (see the module comment).
    STATE.with(|s| {
        s.children.remove(&child);
        if let Some(list) = s.partitioned.get_mut(&parent) {
            list.retain(|&c| c != child);
        }
    });
    Ok(())
}

pub(super) fn partition_controller_name(
    controller: HandleId,
    child: Option<HandleId>,
) -> Option<String> {
    STATE.with(|s| {
        let siblings = s.partitioned.get(&controller)?;
        match child {
            None => s
                .disks
                .get(&controller)
                .map(|d| format!("Disk {}", d.label)),
            Some(child) if siblings.contains(&child) => s
                .children
                .get(&child)
                .map(|c| format!("Partition {}: {}", c.number, c.description)),
            Some(_) => None,
        }
    })
}
