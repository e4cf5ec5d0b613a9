//! Block storage published to EFI. `add_disk` puts a disk into the handle
//! database with EFI_BLOCK_IO_PROTOCOL (UEFI 2.10 §13.9, [`block_io`]) and
//! EFI_DISK_IO_PROTOCOL (§13.7, [`disk_io`]) and connects the storage drivers
//! of the UEFI driver model (§11.1) to it: the partition driver
//! ([`partition_driver`]) makes a child handle per partition, seen through a
//! [`PartitionDevice`] and described by EFI_PARTITION_INFO_PROTOCOL (§13.18,
//! [`partition_info`]); the FAT driver ([`fat_driver`]) puts
//! SimpleFileSystem on every FAT volume. [`driver_model`] holds what both
//! drivers share; this module holds the disk list that ExitBootServices
//! quiesces.
//!
//! Every protocol instance is a `#[repr(C)]` heap struct with the protocol
//! table first and a signature after it; the table pointer handed out is the
//! struct pointer. Instances are never freed, not even when a driver's Stop
//! uninstalls them (a caller may still hold the pointer), so an interface
//! pointer whose signature checks out stays valid.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::fmt;

use efi::ids::HandleId;
use efi::protocol_services::{self as ps, install};
use platform::block::{BlockDevice, BlockError, MemDisk};
use platform::nvme::{Namespace, Transport};
use platform::pci::Bdf;
use platform::sync::Global;
use platform::virtio::VirtioBlk;
use uefi_raw::protocol::block::BlockIoProtocol;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::disk::DiskIoProtocol;
use uefi_raw::{Guid, Status};

use crate::device_path::{DevicePathBuf, pci, pci_root};
use driver_model::{DiskRecord, STATE, register_drivers};
use labels::{fat_type_name, human_size};

mod block_io;
mod disk_io;
mod disk_io_driver;
mod driver_model;
mod fat_driver;
mod foreign_block_io;
mod labels;
mod partition_device;
mod partition_driver;
mod partition_info;
pub mod ram_disk;
mod sector_view;
#[cfg(test)]
mod test_disk;

pub use block_io::new_block_io;
pub use disk_io::{new_disk_io, read_disk, write_disk};
pub use partition_device::PartitionDevice;
pub use partition_info::{
    ESP_TYPE_GUID, MBR_TYPE_ESP, PARTITION_INFO_GUID, PARTITION_INFO_REVISION, PARTITION_TYPE_GPT,
    PARTITION_TYPE_MBR, PARTITION_TYPE_OTHER, PartitionInfo, is_esp, partition_info,
};

/// The media never changes (virtio-blk has no removable media), so the
/// MediaId stays 0 (§13.9: it changes only when the media does).
const MEDIA_ID: u32 = 0;

/// A disk the storage stack can publish and, at ExitBootServices, quiesce.
pub trait Disk: BlockDevice {
    /// Stops all device activity (DMA) before the OS owns the memory.
    /// Devices without DMA have nothing to stop.
    fn quiesce(&self) {}
}

impl Disk for VirtioBlk {
    fn quiesce(&self) {
        self.reset();
    }
}

impl<T: Transport> Disk for Namespace<T> {
    /// Shuts the whole controller down: its other namespaces are quiesced
    /// by the same call.
    fn quiesce(&self) {
        self.shutdown();
    }
}

impl Disk for MemDisk<'_> {}

impl Disk for platform::scsi::disk::ScsiDisk {
    fn quiesce(&self) {
        self.reset();
    }
}

impl Disk for platform::ahci::AhciDevice {
    fn quiesce(&self) {
        self.stop();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// A partition of `blocks` blocks at `start` does not fit its parent.
    PartitionOutOfRange {
        start: u64,
        blocks: u64,
        parent_blocks: u64,
    },
    /// The device reports a block size of 0 or no blocks at all.
    EmptyDevice { block_size: u32, blocks: u64 },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::PartitionOutOfRange {
                start,
                blocks,
                parent_blocks,
            } => write!(
                f,
                "partition of {blocks} blocks at LBA {start} exceeds its parent of {parent_blocks} blocks"
            ),
            StorageError::EmptyDevice { block_size, blocks } => {
                write!(f, "device has {blocks} blocks of {block_size} bytes")
            }
        }
    }
}

/// The one place block-device errors become EFI status codes (§13.9.3).
pub fn status_of(error: BlockError) -> Status {
    match error {
        BlockError::OutOfRange { .. } => Status::INVALID_PARAMETER,
        BlockError::BadBufferSize(_) => Status::BAD_BUFFER_SIZE,
        BlockError::ReadOnly => Status::WRITE_PROTECTED,
        BlockError::Device(_) | BlockError::DeviceStatus(_) | BlockError::Timeout => {
            Status::DEVICE_ERROR
        }
    }
}

// ---------------------------------------------------------------------------
// Disk discovery

/// The disks given to `add_disk`, with their device paths, for
/// `quiesce_all` and `gpt_of`.
struct DiskList(Vec<(Rc<dyn Disk>, DevicePathBuf)>);

// SAFETY: the firmware runs on one CPU (see `platform::sync`); the `Rc`s in
// the list are never touched from another thread.
unsafe impl Send for DiskList {}

static DISKS: Global<DiskList> = Global::new(DiskList(Vec::new()));

/// Stops every disk given to `add_disk` (virtio-blk: device reset, so no DMA
/// lands in memory the OS owns). The core runs this at ExitBootServices.
pub fn quiesce_all() {
    let Some(disks) = DISKS.try_with(|list| list.0.clone()) else {
        log::error!("storage: disk list busy at quiesce");
        return;
    };
    for (disk, _) in disks {
        disk.quiesce();
    }
}

/// A protocol as installed: its GUID and interface.
type Interface = (Guid, *mut c_void);

/// Copies a device path into a never-freed buffer for the handle database.
fn leak_path(path: &DevicePathBuf) -> *mut c_void {
    Box::leak(path.as_bytes().to_vec().into_boxed_slice())
        .as_mut_ptr()
        .cast()
}

/// Creates a handle with Block I/O, Disk I/O and the device path for
/// `device`, plus `extra` protocols; returns it with the installed pairs.
fn publish(
    device: Rc<dyn BlockDevice>,
    path: &DevicePathBuf,
    logical_partition: bool,
    extra: &[(Guid, *mut c_void)],
) -> Result<(HandleId, Vec<Interface>), Status> {
    let mut protocols = Vec::with_capacity(3 + extra.len());
    protocols.push((
        BlockIoProtocol::GUID,
        new_block_io(device.clone(), logical_partition).cast(),
    ));
    protocols.push((DiskIoProtocol::GUID, new_disk_io(device).cast()));
    protocols.push((DevicePathProtocol::GUID, leak_path(path)));
    protocols.extend_from_slice(extra);
    let handle = install(None, &protocols)?;
    Ok((handle, protocols))
}

// --- Discovery --------------------------------------------------------------

/// Where a disk sits: the PCI function of its controller on the root bus
/// and, for controllers with several devices behind them, the messaging
/// node naming the device there (UEFI 2.10 §10.3.4: NVMe namespace, SATA,
/// SCSI); `label` names the disk in the log and the boot menu.
#[derive(Clone, Debug)]
pub struct DiskLocation {
    pub pci_function: Bdf,
    pub messaging: Option<Vec<u8>>,
    pub label: String,
}

impl DiskLocation {
    /// A logical unit of a SCSI controller: `SCSI(target,lun)` (UEFI 2.10
    /// §10.3.4.2), named `SCSI disk 00:03.0 0:0` or `SCSI CD-ROM ...`.
    pub fn scsi(pci_function: Bdf, target: u16, lun: u16, cdrom: bool) -> Self {
        let mut data = [0u8; 4];
        data[..2].copy_from_slice(&target.to_le_bytes());
        data[2..].copy_from_slice(&lun.to_le_bytes());
        DiskLocation {
            pci_function,
            messaging: crate::device_path::node(3, 2, &data).ok(),
            label: format!(
                "SCSI {} {pci_function} {target}:{lun}",
                if cdrom { "CD-ROM" } else { "disk" }
            ),
        }
    }

    /// A device on an AHCI port: `Sata(port,0xFFFF,0)` (UEFI 2.10
    /// §10.3.4.6: HBA port, no port multiplier, LUN 0), named `SATA disk 0`
    /// or `SATA CD-ROM 1` by its port.
    pub fn sata(pci_function: Bdf, port: u16, cdrom: bool) -> Self {
        let mut data = [0u8; 6];
        data[..2].copy_from_slice(&port.to_le_bytes());
        data[2..4].copy_from_slice(&0xFFFFu16.to_le_bytes());
        DiskLocation {
            pci_function,
            messaging: crate::device_path::node(3, 0x12, &data).ok(),
            label: format!("SATA {} {port}", if cdrom { "CD-ROM" } else { "disk" }),
        }
    }

    /// A disk that is a PCI function of its own (virtio-blk).
    pub fn pci(pci_function: Bdf) -> Self {
        DiskLocation {
            pci_function,
            messaging: None,
            label: format!("{pci_function}"),
        }
    }

    /// Namespace `nsid` of the NVMe controller at `pci_function`: the
    /// NVMe Namespace node (UEFI 2.10 §10.3.4.18: NamespaceId, then the
    /// IEEE EUI-64 as Identify Namespace stores it, zero when it has none).
    pub fn nvme(pci_function: Bdf, nsid: u32, eui64: [u8; 8]) -> Self {
        let mut data = [0u8; 12];
        data[..4].copy_from_slice(&nsid.to_le_bytes());
        data[4..].copy_from_slice(&eui64);
        DiskLocation {
            pci_function,
            messaging: crate::device_path::node(3, 0x17, &data).ok(),
            label: format!("NVMe {pci_function} ns{nsid}"),
        }
    }

    /// `PciRoot(0x0)/Pci(dev,fn)`, then the messaging node if any.
    fn device_path(&self) -> Result<DevicePathBuf, Status> {
        let f = self.pci_function;
        let mut path = DevicePathBuf::from_nodes(&[pci_root(0), pci(f.device, f.function)])
            .map_err(|_| Status::INVALID_PARAMETER)?;
        if let Some(node) = &self.messaging {
            path.push(node).map_err(|_| Status::INVALID_PARAMETER)?;
        }
        Ok(path)
    }
}

/// Publishes `device`, found at `location`, as a disk handle with Block
/// I/O, Disk I/O and `PciRoot(0x0)/Pci(dev,fn)[/messaging node]`,
/// then connects the storage drivers to it (ConnectController, recursive):
/// a child handle per partition with Block I/O, Disk I/O, PartitionInfo
/// and the path extended by `HD(...)`, and SimpleFileSystem on every FAT
/// volume (the partitions, or the whole disk when it has no partitions). A
/// bad partition table or volume is logged and skipped. The disk is also
/// kept for `quiesce_all`.
pub fn add_disk(device: Rc<dyn Disk>, location: DiskLocation) -> Result<HandleId, Status> {
    let disk_path = location.device_path()?;
    if location.pci_function.bus != 0 {
        // Behind a bridge the path would need the bridge's Pci node too.
        log::warn!(
            "disk {}: not on bus 0; its device path omits the bus",
            location.label
        );
    }
    add_disk_at(device, disk_path, location.label)
}

/// As [`add_disk`], for a disk whose device path is `disk_path` (a RAM disk
/// under its parent's path).
pub fn add_disk_at(
    device: Rc<dyn Disk>,
    disk_path: DevicePathBuf,
    label: String,
) -> Result<HandleId, Status> {
    DISKS.with(|list| list.0.push((device.clone(), disk_path.clone())));
    let disk: Rc<dyn BlockDevice> = device;
    let (block_size, blocks) = (disk.block_size(), disk.num_blocks());
    // An empty CD-ROM drive is still a device (MediaPresent FALSE, §13.9).
    let empty_drive = disk.removable() && !disk.media_present() && block_size != 0;
    if (block_size == 0 || blocks == 0) && !empty_drive {
        log::warn!(
            "disk {label}: {}",
            StorageError::EmptyDevice { block_size, blocks }
        );
        return Err(Status::NO_MEDIA);
    }
    register_drivers()?;
    let (handle, _) = publish(disk, &disk_path, false, &[])?;
    STATE.with(|s| {
        s.disks.insert(
            handle,
            DiskRecord {
                label: label.clone(),
                path: disk_path,
                announced: false,
            },
        )
    });
    if empty_drive {
        log::info!("disk {label}: no media");
        return Ok(handle);
    }
    let status = ps::connect(handle, &[], true);
    log::debug!("disk {label}: ConnectController: {status:?}");
    log_volumes(handle);
    Ok(handle)
}

/// The primary GPT (header block, partition entry array) of the disk that
/// `device_path` (a partition's or a file's) lies on; None off our disks,
/// or on a disk without a valid primary GPT. Measured boot's source for
/// EV_EFI_GPT_EVENT (`efi::tcg2::set_gpt_source`).
pub fn gpt_of(device_path: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let disk = DISKS
        .try_with(|list| {
            list.0
                .iter()
                .find(|(_, path)| {
                    // The disk's nodes without its End node (4 bytes).
                    let nodes = path.as_bytes();
                    device_path.starts_with(&nodes[..nodes.len().saturating_sub(4)])
                })
                .map(|(disk, _)| disk.clone())
        })
        .flatten()?;
    let disk: Rc<dyn BlockDevice> = disk;
    crate::partition::gpt::primary_table(&*disk).ok()
}

/// The log lines of what the drivers made of a disk: one per partition, or
/// one for the whole disk when the partition driver declined it.
fn log_volumes(disk: HandleId) {
    let lines: Vec<String> = STATE.with(|s| {
        // A refused volume says why: a damaged ESP must be diagnosable
        // without log=debug.
        let file_system = |handle: &HandleId| match (s.volumes.get(handle), s.refused.get(handle)) {
            (Some(&(_, fat_type)), _) => String::from(fat_type_name(fat_type)),
            (None, Some(reason)) => format!("no FAT file system ({reason})"),
            (None, None) => String::from("no FAT file system"),
        };
        match s.partitioned.get(&disk) {
            None => alloc::vec![format!("  whole disk: {}", file_system(&disk))],
            Some(children) => children
                .iter()
                .filter_map(|child| {
                    let c = s.children.get(child)?;
                    Some(format!(
                        "  partition {}: {}, {}, {}",
                        c.number,
                        c.description,
                        file_system(child),
                        human_size(c.bytes)
                    ))
                })
                .collect(),
        }
    });
    for line in lines {
        log::info!("{line}");
    }
}

#[cfg(test)]
mod tests;
