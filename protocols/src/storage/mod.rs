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
    let pci_function = location.pci_function;
    let label = location.label;
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
    if pci_function.bus != 0 {
        // Behind a bridge the path would need the bridge's Pci node too.
        log::warn!("disk {label}: not on bus 0; its device path omits the bus");
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
mod tests {
    use super::*;
    use crate::storage::test_disk::*;
    use driver_model::{FAT_DRIVER, PARTITION_DRIVER, registered_driver};
    use uefi_raw::protocol::file_system::SimpleFileSystemProtocol;

    use std::process::Command;
    use std::vec;

    fn run(program: &str, args: &[&str]) {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
    }

    fn path_text(handle: HandleId) -> String {
        let path = efi::protocol_services::get_protocol::<DevicePathProtocol>(
            handle,
            &DevicePathProtocol::GUID,
        )
        .expect("device path");
        // SAFETY: installed device paths are well formed.
        crate::device_path::to_text(&unsafe { efi::device_path::read_path(path) }.unwrap())
    }

    fn has(handle: HandleId, guid: &Guid) -> bool {
        efi::protocol_services::get_protocol::<c_void>(handle, guid).is_some()
    }

    fn db<R>(f: impl FnOnce(&mut efi::handles::HandleDb) -> R) -> R {
        efi::protocol_services::DB.with(f)
    }

    fn controller_name(driver: HandleId, controller: HandleId, child: Option<HandleId>) -> String {
        let names = efi::protocol_services::get_protocol::<
            uefi_raw::protocol::driver::ComponentName2Protocol,
        >(
            driver,
            &uefi_raw::protocol::driver::ComponentName2Protocol::GUID,
        )
        .unwrap();
        let mut out: *const u16 = core::ptr::null();
        let child = child.map_or(core::ptr::null_mut(), HandleId::as_raw);
        // SAFETY: the driver's own ComponentName2, called as a caller would.
        let status = unsafe {
            ((*names).get_controller_name)(
                names,
                controller.as_raw(),
                child,
                c"en".as_ptr().cast(),
                &mut out,
            )
        };
        assert_eq!(status, uefi_raw::Status::SUCCESS);
        // SAFETY: the name GetControllerName returned is NUL-terminated.
        String::from_utf16(&unsafe { efi::boundary::ucs2(out, 100) }.unwrap()).unwrap()
    }

    /// Another driver's Block I/O: its own function table over a RAM image.
    #[repr(C)]
    struct RamDisk {
        protocol: BlockIoProtocol,
        media: uefi_raw::protocol::block::BlockIoMedia,
        data: *mut u8,
    }

    unsafe extern "efiapi" fn ram_reset(_: *mut BlockIoProtocol, _: uefi_raw::Boolean) -> Status {
        Status::SUCCESS
    }

    unsafe extern "efiapi" fn ram_read(
        this: *const BlockIoProtocol,
        media_id: u32,
        lba: u64,
        size: usize,
        buffer: *mut c_void,
    ) -> Status {
        // SAFETY: `this` is the RamDisk the test installed (repr(C), protocol first).
        let disk = unsafe { &*this.cast::<RamDisk>() };
        if media_id != disk.media.media_id {
            return Status::MEDIA_CHANGED;
        }
        let offset = lba as usize * 512;
        if offset + size > (disk.media.last_block as usize + 1) * 512 {
            return Status::INVALID_PARAMETER;
        }
        // SAFETY: inside the image (checked above); the caller's buffer holds `size`.
        unsafe { core::ptr::copy_nonoverlapping(disk.data.add(offset), buffer.cast(), size) };
        Status::SUCCESS
    }

    unsafe extern "efiapi" fn ram_write(
        _: *mut BlockIoProtocol,
        _: u32,
        _: u64,
        _: usize,
        _: *const c_void,
    ) -> Status {
        Status::WRITE_PROTECTED
    }

    unsafe extern "efiapi" fn ram_flush(_: *mut BlockIoProtocol) -> Status {
        Status::SUCCESS
    }

    /// A RAM disk a test "application" installs with a vendor device path
    /// and connects: the Disk I/O driver gives it Disk I/O, the FAT driver a
    /// SimpleFileSystem, and a file on it reads back.
    fn foreign_block_io_gets_disk_io_and_a_file_system() {
        use crate::partition::test_util::{image, require_tool};
        use uefi_raw::protocol::file_system::FileProtocolV1;
        for tool in ["mkfs.fat", "mcopy"] {
            require_tool(tool);
        }
        let fat = image("storage-ramdisk", 0);
        let _ = std::fs::remove_file(&fat);
        let hello = fat.with_file_name("hello.txt");
        std::fs::write(&hello, b"hello from a RAM disk").unwrap();
        run("mkfs.fat", &["-C", fat.to_str().unwrap(), "1024"]);
        run(
            "mcopy",
            &[
                "-i",
                fat.to_str().unwrap(),
                hello.to_str().unwrap(),
                "::/HELLO.TXT",
            ],
        );
        let data = Box::leak(std::fs::read(&fat).unwrap().into_boxed_slice());
        let disk = Box::leak(Box::new(RamDisk {
            protocol: BlockIoProtocol {
                revision: BlockIoProtocol::REVISION,
                media: core::ptr::null(),
                reset: ram_reset,
                read_blocks: ram_read,
                write_blocks: ram_write,
                flush_blocks: ram_flush,
            },
            media: uefi_raw::protocol::block::BlockIoMedia {
                media_id: 7,
                removable_media: uefi_raw::Boolean::FALSE,
                media_present: uefi_raw::Boolean::TRUE,
                logical_partition: uefi_raw::Boolean::FALSE,
                read_only: uefi_raw::Boolean::TRUE,
                write_caching: uefi_raw::Boolean::FALSE,
                block_size: 512,
                io_align: 0,
                last_block: (data.len() / 512 - 1) as u64,
                lowest_aligned_lba: 0,
                logical_blocks_per_physical_block: 0,
                optimal_transfer_length_granularity: 0,
            },
            data: data.as_mut_ptr(),
        }));
        disk.protocol.media = &disk.media;
        let vendor = crate::device_path::node(1, 4, &[0x42; 16]).unwrap();
        let path = DevicePathBuf::from_nodes(&[vendor]).unwrap();
        let handle = efi::protocol_services::install(
            None,
            &[
                (BlockIoProtocol::GUID, (&raw mut disk.protocol).cast()),
                (DevicePathProtocol::GUID, leak_path(&path)),
            ],
        )
        .unwrap();
        assert_eq!(
            efi::protocol_services::connect(handle, &[], true),
            Status::SUCCESS
        );
        assert!(has(handle, &DiskIoProtocol::GUID));
        let sfs = efi::protocol_services::get_protocol::<SimpleFileSystemProtocol>(
            handle,
            &SimpleFileSystemProtocol::GUID,
        )
        .expect("SimpleFileSystem on the RAM disk");
        let mut root: *mut FileProtocolV1 = core::ptr::null_mut();
        // SAFETY: our SimpleFileSystem and its files, called as a caller would,
        // with live locals.
        unsafe {
            assert_eq!(((*sfs).open_volume)(sfs, &mut root), Status::SUCCESS);
            let name: Vec<u16> = "HELLO.TXT\0".encode_utf16().collect();
            let mut file: *mut FileProtocolV1 = core::ptr::null_mut();
            let status = ((*root).open)(
                root,
                &mut file,
                name.as_ptr(),
                uefi_raw::protocol::file_system::FileMode::READ,
                uefi_raw::protocol::file_system::FileAttribute::empty(),
            );
            assert_eq!(status, Status::SUCCESS);
            let mut buf = [0u8; 64];
            let mut len = buf.len();
            assert_eq!(
                ((*file).read)(file, &mut len, buf.as_mut_ptr().cast()),
                Status::SUCCESS
            );
            assert_eq!(&buf[..len], b"hello from a RAM disk");
            assert_eq!(((*file).close)(file), Status::SUCCESS);
            assert_eq!(((*root).close)(root), Status::SUCCESS);
        }
        // Disconnecting takes the file system and the Disk I/O away again.
        assert_eq!(
            efi::protocol_services::disconnect(handle, None, None),
            Status::SUCCESS
        );
        assert!(!has(handle, &DiskIoProtocol::GUID));
        assert!(!has(handle, &SimpleFileSystemProtocol::GUID));
    }

    /// An ISO image (xorriso, an EFI El Torito entry holding a 512-byte FAT
    /// image) on a CD-ROM's 2048-byte blocks: its boot image becomes a
    /// `CDROM(...)` child, and the FAT driver mounts the image's 512-byte
    /// sectors through a `SectorView`.
    fn el_torito_image_on_a_cd_gets_a_file_system() {
        use crate::partition::test_util::{image, require_tool};
        for tool in ["mkfs.fat", "mcopy", "xorriso"] {
            require_tool(tool);
        }
        let efi_img = image("storage-cd-efi", 0);
        let tree = efi_img.parent().unwrap().join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        let efi_img = tree.join("efi.img");
        let _ = std::fs::remove_file(&efi_img);
        let hello = tree.join("hello.txt");
        std::fs::write(&hello, b"hello from the CD").unwrap();
        run("mkfs.fat", &["-C", efi_img.to_str().unwrap(), "1440"]);
        run(
            "mcopy",
            &[
                "-i",
                efi_img.to_str().unwrap(),
                hello.to_str().unwrap(),
                "::/HELLO.TXT",
            ],
        );
        let iso = tree.parent().unwrap().join("cd.iso");
        run(
            "xorriso",
            &[
                "-as",
                "mkisofs",
                "-quiet",
                "-o",
                iso.to_str().unwrap(),
                "-e",
                "efi.img",
                "-no-emul-boot",
                tree.to_str().unwrap(),
            ],
        );
        let cd = disk_from(std::fs::read(&iso).unwrap(), 2048, true);
        let handle = add_disk(cd, DiskLocation::pci(Bdf::new(0, 7, 0))).unwrap();
        let children = db(|db| db.children(handle, None));
        assert_eq!(children.len(), 1);
        let text = path_text(children[0]);
        assert!(
            text.starts_with("PciRoot(0x0)/Pci(0x7,0x0)/CDROM(0x0,"),
            "{text}"
        );
        assert!(has(children[0], &SimpleFileSystemProtocol::GUID), "{text}");
        let info = efi::protocol_services::get_protocol::<PartitionInfo>(
            children[0],
            &PARTITION_INFO_GUID,
        )
        .unwrap();
        // SAFETY: installed by `add_partition` from a leaked Box.
        let info = unsafe { *info };
        assert_eq!(
            (info.partition_type, info.system),
            (PARTITION_TYPE_OTHER, 1)
        );
        let io = efi::protocol_services::get_protocol::<BlockIoProtocol>(
            children[0],
            &BlockIoProtocol::GUID,
        )
        .unwrap();
        let (_, media) = block_io_table(io);
        assert_eq!(media.block_size, 2048);
        assert!(media.read_only.is_true() && media.logical_partition.is_true());
        // 1440 KiB of 2048-byte blocks.
        assert_eq!(media.last_block, 1440 * 1024 / 2048 - 1);
    }

    /// The driver model over the disks `add_disk` published: who manages
    /// what, the names, and Disconnect/ConnectController round trips.
    fn driver_relationships(disk: HandleId, esp: HandleId, linux: HandleId, floppy: HandleId) {
        let partition_driver = registered_driver(&PARTITION_DRIVER);
        let fat_driver = registered_driver(&FAT_DRIVER);
        assert_eq!(
            db(|db| db.managing_drivers(disk)),
            Ok(vec![partition_driver])
        );
        assert_eq!(db(|db| db.children(disk, None)), vec![esp, linux]);
        assert_eq!(db(|db| db.managing_drivers(esp)), Ok(vec![fat_driver]));
        assert_eq!(db(|db| db.managing_drivers(linux)), Ok(vec![]));
        assert_eq!(db(|db| db.managing_drivers(floppy)), Ok(vec![fat_driver]));
        assert_eq!(
            controller_name(partition_driver, disk, None),
            "Disk 00:04.0"
        );
        assert_eq!(
            controller_name(partition_driver, disk, Some(esp)),
            "Partition 1: ESP"
        );
        assert_eq!(controller_name(fat_driver, esp, None), "FAT12 file system");

        // An open file keeps the ESP's volume, and with it the partition.
        let sfs = efi::protocol_services::get_protocol::<SimpleFileSystemProtocol>(
            esp,
            &SimpleFileSystemProtocol::GUID,
        )
        .unwrap();
        let mut root: *mut uefi_raw::protocol::file_system::FileProtocolV1 = core::ptr::null_mut();
        // SAFETY: our SimpleFileSystem, called as a caller would.
        let status = unsafe { ((*sfs).open_volume)(sfs, &mut root) };
        assert_eq!(status, Status::SUCCESS);
        let connect = |h| efi::protocol_services::connect(h, &[], true);
        let disconnect = |h| efi::protocol_services::disconnect(h, None, None);
        assert_eq!(disconnect(disk), Status::DEVICE_ERROR);
        assert!(has(esp, &SimpleFileSystemProtocol::GUID));
        assert_eq!(
            db(|db| db.children(disk, None)),
            vec![esp],
            "the other one went"
        );
        // SAFETY: the root handle OpenVolume returned.
        assert_eq!(unsafe { ((*root).close)(root) }, Status::SUCCESS);

        // Nothing open: everything goes, and connecting brings it back.
        assert_eq!(disconnect(disk), Status::SUCCESS);
        assert!(!db(|db| db.is_handle(esp)));
        assert_eq!(db(|db| db.managing_drivers(disk)), Ok(vec![]));
        assert!(efi::protocol_services::handles_with(&PARTITION_INFO_GUID).is_empty());
        let mut stale: *mut uefi_raw::protocol::file_system::FileProtocolV1 = core::ptr::null_mut();
        // SAFETY: a stale pointer stays allocated and answers, retired.
        let status = unsafe { ((*sfs).open_volume)(sfs, &mut stale) };
        assert_eq!(status, Status::INVALID_PARAMETER);
        assert_eq!(connect(disk), Status::SUCCESS);
        let children = db(|db| db.children(disk, None));
        assert_eq!(children.len(), 2);
        let texts: Vec<String> = children.iter().map(|&h| path_text(h)).collect();
        assert!(texts[0].ends_with("HD(1,GPT,01234567-89AB-CDEF-0123-456789ABCDEF,0x800,0x2000)"));
        assert!(has(children[0], &SimpleFileSystemProtocol::GUID));
        assert_eq!(connect(disk), Status::SUCCESS, "already connected");
        assert_eq!(db(|db| db.children(disk, None)), children);

        // One child alone: the disk stays connected; connecting it again
        // brings the partition back (the partition driver scans again).
        let partition_driver_handle = Some(partition_driver);
        assert_eq!(
            efi::protocol_services::disconnect(disk, partition_driver_handle, Some(children[1])),
            Status::SUCCESS
        );
        assert_eq!(db(|db| db.children(disk, None)), [children[0]]);
        assert_eq!(
            db(|db| db.managing_drivers(disk)),
            Ok(vec![partition_driver])
        );
        assert_eq!(connect(disk), Status::SUCCESS);
        let again = db(|db| db.children(disk, None));
        assert_eq!(again.len(), 2);
        assert_eq!(again[0], children[0]);
        assert!(path_text(again[1]).contains("HD(2,GPT,"));

        // The FAT driver alone, from the whole-disk volume.
        assert_eq!(
            efi::protocol_services::disconnect(floppy, Some(fat_driver), None),
            Status::SUCCESS
        );
        assert!(!has(floppy, &SimpleFileSystemProtocol::GUID));
        assert_eq!(connect(floppy), Status::SUCCESS);
        assert!(has(floppy, &SimpleFileSystemProtocol::GUID));
        assert_eq!(db(|db| db.managing_drivers(floppy)), Ok(vec![fat_driver]));
    }

    /// The one test that uses the (global) handle database, so parallel
    /// tests never contend for it.
    #[test]
    fn add_disk_publishes_partitions_and_file_systems() {
        use crate::partition::test_util::{image, require_tool};
        require_tool("sgdisk");
        require_tool("mkfs.fat");
        let path = image("storage-gpt", 8 << 20);
        let path_text_arg = path.to_str().unwrap();
        run(
            "sgdisk",
            &[
                "-n",
                "1:2048:+4M",
                "-t",
                "1:ef00",
                "-u",
                "1:01234567-89AB-CDEF-0123-456789ABCDEF",
                "-n",
                "2:0:0",
                "-t",
                "2:8300",
                path_text_arg,
            ],
        );
        run(
            "mkfs.fat",
            &["-F", "12", "--offset", "2048", path_text_arg, "4096"],
        );
        let disk = disk_from(std::fs::read(&path).unwrap(), 512, false);
        let handle = add_disk(disk.clone(), DiskLocation::pci(Bdf::new(0, 4, 0))).unwrap();
        assert_eq!(path_text(handle), "PciRoot(0x0)/Pci(0x4,0x0)");
        assert!(has(handle, &BlockIoProtocol::GUID) && has(handle, &DiskIoProtocol::GUID));
        assert!(!has(handle, &SimpleFileSystemProtocol::GUID));

        let children: Vec<HandleId> = efi::protocol_services::handles_with(&PARTITION_INFO_GUID);
        let texts: Vec<String> = children.iter().map(|&h| path_text(h)).collect();
        assert_eq!(children.len(), 2, "{texts:?}");
        let esp = children[texts.iter().position(|t| t.contains("HD(1,")).unwrap()];
        let linux = children[texts.iter().position(|t| t.contains("HD(2,")).unwrap()];
        assert_eq!(
            path_text(esp),
            "PciRoot(0x0)/Pci(0x4,0x0)/HD(1,GPT,01234567-89AB-CDEF-0123-456789ABCDEF,0x800,0x2000)"
        );
        assert!(has(esp, &SimpleFileSystemProtocol::GUID));
        assert!(!has(linux, &SimpleFileSystemProtocol::GUID));
        let info = efi::protocol_services::get_protocol::<PartitionInfo>(esp, &PARTITION_INFO_GUID)
            .unwrap();
        // SAFETY: installed by `add_partition` from a leaked Box.
        let info = unsafe { *info };
        assert_eq!((info.partition_type, info.system), (PARTITION_TYPE_GPT, 1));
        let esp_io =
            efi::protocol_services::get_protocol::<BlockIoProtocol>(esp, &BlockIoProtocol::GUID)
                .unwrap();
        let (table, media) = block_io_table(esp_io);
        assert!(media.logical_partition.is_true());
        assert_eq!(media.last_block, 0x1FFF);
        // LBA 0 of the partition is the FAT boot sector at disk LBA 2048.
        let mut boot = vec![0u8; 512];
        assert_eq!(
            // SAFETY: our own instance, called with live locals of the sizes passed, as a caller
            // would.
            unsafe { (table.read_blocks)(esp_io, 0, 0, 512, boot.as_mut_ptr().cast()) },
            Status::SUCCESS
        );
        assert_eq!(boot[510..], [0x55, 0xAA]);
        assert_eq!(boot, contents(&disk)[2048 * 512..2049 * 512]);

        // A disk without a partition table carrying FAT from LBA 0.
        let floppy = image("storage-floppy", 2 << 20);
        run("mkfs.fat", &["-F", "12", floppy.to_str().unwrap()]);
        let floppy_disk = disk_from(std::fs::read(&floppy).unwrap(), 512, false);
        let floppy_handle =
            add_disk(floppy_disk.clone(), DiskLocation::pci(Bdf::new(0, 5, 0))).unwrap();
        assert!(has(floppy_handle, &SimpleFileSystemProtocol::GUID));
        assert_eq!(
            efi::protocol_services::handles_with(&PARTITION_INFO_GUID).len(),
            2
        );

        // An empty disk is refused without a panic.
        assert_eq!(
            add_disk(
                disk_from(Vec::new(), 512, false),
                DiskLocation::pci(Bdf::new(0, 6, 0))
            ),
            Err(Status::NO_MEDIA)
        );

        driver_relationships(handle, esp, linux, floppy_handle);
        el_torito_image_on_a_cd_gets_a_file_system();
        foreign_block_io_gets_disk_io_and_a_file_system();

        quiesce_all();
        assert!(disk.quiesced.get() && floppy_disk.quiesced.get());
    }

    #[test]
    fn nvme_namespaces_are_named_and_pathed() {
        let location = DiskLocation::nvme(Bdf::new(0, 3, 0), 1, [0x52, 0x54, 0, 1, 2, 3, 4, 5]);
        assert_eq!(location.label, "NVMe 00:03.0 ns1");
        let path = location.device_path().unwrap();
        assert_eq!(
            crate::device_path_text::path_to_text(path.as_bytes()).unwrap(),
            "PciRoot(0x0)/Pci(0x3,0x0)/NVMe(0x1,05-04-03-02-01-00-54-52)"
        );
    }
}
