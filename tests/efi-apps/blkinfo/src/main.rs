//! What every whole-device EFI_BLOCK_IO_PROTOCOL (UEFI 2.10 §13.9) says about its media.
//!
//! For each BlockIo that is not a logical partition, in handle order, prints
//!
//! ```text
//! BLKINFO <n>: bs=<BlockSize> last=<LastBlock> rm=<RemovableMedia> mp=<MediaPresent> ro=<ReadOnly>
//! ```
//!
//! then, with media of 2048-byte blocks, `BLKINFO <n>: pvd=CD001 vol=<volume id>` when block 16
//! is an ISO 9660 primary volume descriptor (ECMA-119 §8.4) or `pvd=none`; on read-only media
//! `BLKINFO <n>: write=<status>` (WriteBlocks of what block 0 holds); without media
//! `BLKINFO <n>: read=<status>` (ReadBlocks of block 0). Statuses are hex. Writable media are
//! never written. Then `BLKINFO: done` and ResetSystem(EfiResetShutdown) so QEMU exits.

#![no_std]
#![no_main]

use core::ptr;

use r_efi::efi;
use r_efi::protocols::{block_io, simple_text_output};

/// Room for one block of any size a device may report up to 64 KiB.
const BUFFER: usize = 64 << 10;

struct App<'a> {
    bs: &'a efi::BootServices,
    out: *mut simple_text_output::Protocol,
    buf: &'a mut [u8],
}

impl App<'_> {
    fn print(&self, args: core::fmt::Arguments) {
        efi_con::print(self.out, args);
    }

    fn report(&mut self, index: usize, io: *mut block_io::Protocol) {
        // SAFETY: a BlockIo interface's media pointer is valid while the protocol is
        // installed (§13.9).
        let media = unsafe { &*(*io).media };
        self.print(format_args!(
            "BLKINFO {index}: bs={} last={} rm={} mp={} ro={}\n",
            media.block_size,
            media.last_block,
            u8::from(media.removable_media),
            u8::from(media.media_present),
            u8::from(media.read_only)
        ));
        let block = media.block_size as usize;
        // SAFETY: `io` is a live BlockIo interface.
        let (read_blocks, write_blocks) = unsafe { ((*io).read_blocks, (*io).write_blocks) };
        if !media.media_present {
            let status = read_blocks(io, media.media_id, 0, 2048, self.buf.as_mut_ptr().cast());
            self.print(format_args!(
                "BLKINFO {index}: read={:#x}\n",
                status.as_usize()
            ));
            return;
        }
        if block == 0 || block > BUFFER {
            return;
        }
        if block == 2048 {
            let status = read_blocks(io, media.media_id, 16, block, self.buf.as_mut_ptr().cast());
            if !status.is_error() && &self.buf[1..6] == b"CD001" {
                let volume = core::str::from_utf8(&self.buf[40..72]).unwrap_or("?");
                self.print(format_args!(
                    "BLKINFO {index}: pvd=CD001 vol={}\n",
                    volume.trim_end()
                ));
            } else {
                self.print(format_args!(
                    "BLKINFO {index}: pvd=none ({:#x})\n",
                    status.as_usize()
                ));
            }
        }
        if media.read_only {
            let status = read_blocks(io, media.media_id, 0, block, self.buf.as_mut_ptr().cast());
            let status = if status.is_error() {
                status
            } else {
                write_blocks(io, media.media_id, 0, block, self.buf.as_mut_ptr().cast())
            };
            self.print(format_args!(
                "BLKINFO {index}: write={:#x}\n",
                status.as_usize()
            ));
        }
    }

    fn run(&mut self) -> efi::Status {
        let mut count = 0usize;
        let mut handles: *mut efi::Handle = ptr::null_mut();
        let mut guid = block_io::PROTOCOL_GUID;
        let status = (self.bs.locate_handle_buffer)(
            efi::BY_PROTOCOL,
            &mut guid,
            ptr::null_mut(),
            &mut count,
            &mut handles,
        );
        if status.is_error() {
            return status;
        }
        let mut index = 0;
        for n in 0..count {
            // SAFETY: LocateHandleBuffer returned `count` handles at `handles`.
            let handle = unsafe { *handles.add(n) };
            let mut interface: *mut core::ffi::c_void = ptr::null_mut();
            let status = (self.bs.handle_protocol)(handle, &mut guid, &mut interface);
            let io = interface as *mut block_io::Protocol;
            if status.is_error() || io.is_null() {
                continue;
            }
            // SAFETY: as in `report`.
            if unsafe { (*(*io).media).logical_partition } {
                continue;
            }
            self.report(index, io);
            index += 1;
        }
        let _ = (self.bs.free_pool)(handles.cast());
        efi::Status::SUCCESS
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[unsafe(export_name = "efi_main")]
extern "efiapi" fn efi_main(_image: efi::Handle, st: *mut efi::SystemTable) -> efi::Status {
    // SAFETY: the firmware passes a valid system table that outlives boot services
    // (UEFI 2.10 §4.1); null is rejected.
    let Some(st) = (unsafe { st.as_ref() }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    // SAFETY: the boot services table stays valid until ExitBootServices (§4.3).
    let Some(bs) = (unsafe { st.boot_services.as_ref() }) else {
        return efi::Status::LOAD_ERROR;
    };
    // SAFETY: the runtime services table lives for the whole boot.
    let Some(rt) = (unsafe { st.runtime_services.as_ref() }) else {
        return efi::Status::LOAD_ERROR;
    };
    let mut pool: *mut core::ffi::c_void = ptr::null_mut();
    let status = (bs.allocate_pool)(efi::LOADER_DATA, BUFFER, &mut pool);
    if status.is_error() {
        efi_con::print(
            st.con_out,
            format_args!("BLKINFO: error AllocatePool {:#x}\n", status.as_usize()),
        );
    } else {
        // SAFETY: AllocatePool returned BUFFER writable bytes, ours from here on.
        let buf = unsafe { core::slice::from_raw_parts_mut(pool.cast::<u8>(), BUFFER) };
        let mut app = App {
            bs,
            out: st.con_out,
            buf,
        };
        let status = app.run();
        if status.is_error() {
            app.print(format_args!(
                "BLKINFO: error LocateHandleBuffer {:#x}\n",
                status.as_usize()
            ));
        }
    }
    efi_con::print(st.con_out, format_args!("BLKINFO: done\n"));
    (rt.reset_system)(
        efi::RESET_SHUTDOWN,
        efi::Status::SUCCESS,
        0,
        ptr::null_mut(),
    );
    efi::Status::SUCCESS
}
