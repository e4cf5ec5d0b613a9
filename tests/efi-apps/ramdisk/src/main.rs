//! RAM-disk test application (issue 21: the storage drivers bind any Block I/O).
//!
//! 1. Reads `\ramdisk.img` (a FAT image) from the volume it was loaded from into pool
//!    memory.
//! 2. Installs, on a new handle, an EFI_BLOCK_IO_PROTOCOL of its own over that memory
//!    (UEFI 2.10 §13.9; read-only, 512-byte blocks, MediaId 7) and a device path
//!    `VenHw(<app GUID>)`, as a RAM disk or SAN driver would.
//! 3. ConnectController(handle, NULL, NULL, TRUE) (§7.3.12): the firmware's drivers must
//!    give the handle Disk I/O and a SimpleFileSystem.
//! 4. Reads `\HELLO.TXT` through that SimpleFileSystem and prints
//!    `RAMDISK: crc32=<hex> bytes=<n>`, then `RAMDISK: done`, and shuts the VM down.
//!
//! Firmware errors print `RAMDISK: error <step> returned <status>`.

#![no_std]
#![no_main]

#[path = "../../fileio/src/crc32.rs"]
mod crc32;
#[path = "../../fileio/src/file.rs"]
#[allow(dead_code)]
mod file;

use core::ffi::c_void;
use core::fmt;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::{block_io, device_path, file as efi_file};

use crc32::Crc32;
use efi_con::ucs2;
use file::{Failure, File, PoolBuffer};

const RAMDISK_IMG: [u16; 13] = ucs2("\\ramdisk.img");
const HELLO_TXT: [u16; 11] = ucs2("\\HELLO.TXT");
/// The image's largest size: the test writes a 4 MiB FAT.
const MAX_IMAGE: usize = 8 << 20;
const BLOCK: usize = 512;
const MEDIA_ID: u32 = 7;
/// The vendor GUID of the RAM disk's device path node.
const VENDOR: efi::Guid = efi::Guid::from_fields(
    0x5a2f_0c1e,
    0x7d3b,
    0x4c69,
    0x9e,
    0x1a,
    &[0x52, 0x41, 0x4d, 0x44, 0x49, 0x53],
);

/// The RAM disk: Block I/O first, so the interface pointer is the struct's.
#[repr(C)]
struct RamDisk {
    protocol: block_io::Protocol,
    media: block_io::Media,
    data: *mut u8,
}

/// `VenHw(VENDOR)` then the end node (§10.3.2.4), as bytes: the node is not aligned.
fn vendor_path() -> [u8; 24] {
    let mut path = [0u8; 24];
    path[..4].copy_from_slice(&[
        device_path::TYPE_HARDWARE,
        device_path::Hardware::SUBTYPE_VENDOR,
        20,
        0,
    ]);
    path[4..20].copy_from_slice(VENDOR.as_bytes());
    path[20..].copy_from_slice(&[
        device_path::TYPE_END,
        device_path::End::SUBTYPE_ENTIRE,
        4,
        0,
    ]);
    path
}

fn disk_of(this: *mut block_io::Protocol) -> &'static RamDisk {
    // SAFETY: the firmware calls these functions with the interface this app installed,
    // a `RamDisk` (repr(C), protocol first) that lives until the app exits.
    unsafe { &*this.cast::<RamDisk>() }
}

extern "efiapi" fn reset(_: *mut block_io::Protocol, _: efi::Boolean) -> efi::Status {
    efi::Status::SUCCESS
}

extern "efiapi" fn read_blocks(
    this: *mut block_io::Protocol,
    media_id: u32,
    lba: efi::Lba,
    size: usize,
    buffer: *mut c_void,
) -> efi::Status {
    let disk = disk_of(this);
    if media_id != disk.media.media_id {
        return efi::Status::MEDIA_CHANGED;
    }
    if !size.is_multiple_of(BLOCK) {
        return efi::Status::BAD_BUFFER_SIZE;
    }
    let blocks = (size / BLOCK) as u64;
    let end = lba.checked_add(blocks);
    if buffer.is_null() || end.is_none_or(|end| end > disk.media.last_block + 1) {
        return efi::Status::INVALID_PARAMETER;
    }
    // SAFETY: the range lies inside the image (checked above); the caller's buffer holds
    // `size` bytes (§13.9.3).
    unsafe { ptr::copy_nonoverlapping(disk.data.add(lba as usize * BLOCK), buffer.cast(), size) };
    efi::Status::SUCCESS
}

extern "efiapi" fn write_blocks(
    _: *mut block_io::Protocol,
    _: u32,
    _: efi::Lba,
    _: usize,
    _: *mut c_void,
) -> efi::Status {
    efi::Status::WRITE_PROTECTED
}

extern "efiapi" fn flush_blocks(_: *mut block_io::Protocol) -> efi::Status {
    efi::Status::SUCCESS
}

struct App<'a> {
    image: efi::Handle,
    st: &'a efi::SystemTable,
    bs: &'a efi::BootServices,
}

fn check(step: &'static str, status: efi::Status) -> Result<(), Failure> {
    if status == efi::Status::SUCCESS {
        Ok(())
    } else {
        Err(Failure { step, status })
    }
}

impl App<'_> {
    fn print(&self, args: fmt::Arguments) {
        efi_con::print(self.st.con_out, args);
    }

    /// Reads `\ramdisk.img` into `buf`; its length.
    fn read_image(&self, buf: &mut [u8]) -> Result<usize, Failure> {
        let root = File::image_volume(self.bs, self.image)?;
        let file = root.open(&RAMDISK_IMG, efi_file::MODE_READ, 0, "Open(\\ramdisk.img)")?;
        let mut len = 0;
        while let Some(space) = buf.get_mut(len..).filter(|s| !s.is_empty()) {
            let n = file.read(space, "Read(\\ramdisk.img)")?;
            if n == 0 {
                break;
            }
            len += n;
        }
        Ok(len)
    }

    fn run(&self) -> Result<(), Failure> {
        let mut image = PoolBuffer::new(self.bs, MAX_IMAGE)?;
        let len = self.read_image(image.as_mut_slice())?;
        self.print(format_args!("RAMDISK: image of {len} bytes\n"));
        let mut disk = RamDisk {
            protocol: block_io::Protocol {
                revision: block_io::REVISION3,
                media: ptr::null(),
                reset,
                read_blocks,
                write_blocks,
                flush_blocks,
            },
            media: block_io::Media {
                media_id: MEDIA_ID,
                removable_media: false,
                media_present: true,
                logical_partition: false,
                read_only: true,
                write_caching: false,
                block_size: BLOCK as u32,
                io_align: 0,
                last_block: (len / BLOCK) as u64 - 1,
                lowest_aligned_lba: 0,
                logical_blocks_per_physical_block: 1,
                optimal_transfer_length_granularity: 0,
            },
            data: image.as_mut_slice().as_mut_ptr(),
        };
        // `disk` stays where it is until the drivers are disconnected below.
        disk.protocol.media = &raw const disk.media;
        let mut path = vendor_path();

        let mut handle: efi::Handle = ptr::null_mut();
        let mut block_io_guid = block_io::PROTOCOL_GUID;
        let mut path_guid = device_path::PROTOCOL_GUID;
        check(
            "InstallProtocolInterface(BlockIo)",
            (self.bs.install_protocol_interface)(
                &mut handle,
                &mut block_io_guid,
                efi::NATIVE_INTERFACE,
                (&raw mut disk.protocol).cast(),
            ),
        )?;
        check(
            "InstallProtocolInterface(DevicePath)",
            (self.bs.install_protocol_interface)(
                &mut handle,
                &mut path_guid,
                efi::NATIVE_INTERFACE,
                path.as_mut_ptr().cast(),
            ),
        )?;
        check(
            "ConnectController",
            (self.bs.connect_controller)(
                handle,
                ptr::null_mut(),
                ptr::null_mut(),
                efi::Boolean::TRUE,
            ),
        )?;

        let root = File::volume(self.bs, handle)?;
        let hello = root.open(&HELLO_TXT, efi_file::MODE_READ, 0, "Open(\\HELLO.TXT)")?;
        let mut buf = [0u8; 4096];
        let mut crc = Crc32::new();
        let mut bytes = 0;
        loop {
            let n = hello.read(&mut buf, "Read(\\HELLO.TXT)")?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            bytes += n;
        }
        hello.close("Close(\\HELLO.TXT)")?;
        root.close("Close(root)")?;
        self.print(format_args!(
            "RAMDISK: crc32={:08x} bytes={bytes}\n",
            crc.finish()
        ));
        // Take the drivers off the RAM disk before its memory goes.
        check(
            "DisconnectController",
            (self.bs.disconnect_controller)(handle, ptr::null_mut(), ptr::null_mut()),
        )?;
        Ok(())
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[unsafe(export_name = "efi_main")]
extern "efiapi" fn efi_main(image: efi::Handle, st: *mut efi::SystemTable) -> efi::Status {
    // SAFETY: the firmware passes a valid system table that outlives boot services
    // (UEFI 2.10 §4.1); null is rejected.
    let Some(st) = (unsafe { st.as_ref() }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    // SAFETY: the boot services table pointer in a valid system table stays valid until
    // ExitBootServices (UEFI 2.10 §4.3); null is rejected.
    let Some(bs) = (unsafe { st.boot_services.as_ref() }) else {
        return efi::Status::LOAD_ERROR;
    };
    // SAFETY: as above, the runtime services table lives for the whole boot.
    let Some(rt) = (unsafe { st.runtime_services.as_ref() }) else {
        return efi::Status::LOAD_ERROR;
    };
    let app = App { image, st, bs };
    if let Err(failure) = app.run() {
        app.print(format_args!("RAMDISK: error {failure}\n"));
    }
    app.print(format_args!("RAMDISK: done\n"));
    (rt.reset_system)(
        efi::RESET_SHUTDOWN,
        efi::Status::SUCCESS,
        0,
        ptr::null_mut(),
    );
    efi::Status::SUCCESS
}
