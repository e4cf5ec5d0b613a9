//! The storage stack end to end over test disks: `add_disk`, the three
//! drivers, El Torito CDs and another driver's Block I/O.

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
    let names =
        efi::protocol_services::get_protocol::<uefi_raw::protocol::driver::ComponentName2Protocol>(
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
    let info =
        efi::protocol_services::get_protocol::<PartitionInfo>(children[0], &PARTITION_INFO_GUID)
            .unwrap();
    // SAFETY: installed by `add_partition` from a leaked Box.
    let info = unsafe { *info };
    assert_eq!(
        (info.partition_type, info.system),
        (PARTITION_TYPE_OTHER, 0)
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
    let info =
        efi::protocol_services::get_protocol::<PartitionInfo>(esp, &PARTITION_INFO_GUID).unwrap();
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
