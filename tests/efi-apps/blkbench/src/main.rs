//! BlockIo read throughput, one 512-byte block per request against large requests.
//!
//! Finds the first whole-disk EFI_BLOCK_IO_PROTOCOL (UEFI 2.10 §13.9) with 512-byte
//! blocks, reads [`SPAN`] bytes from block 0 once to warm the host's page cache, then
//! times the same span read
//! - with one ReadBlocks call per block, last block first, so every call is its own
//!   device request (a firmware's read-ahead only helps forward sequential reads);
//! - with one ReadBlocks call per block, first block first (read-ahead may merge them);
//! - with [`LARGE_REQUEST`]-byte calls;
//!
//! and prints
//!
//! ```text
//! BLKBENCH: bytes=<n> sector_us=<n>
//! BLKBENCH: sequential_sector_us=<n>
//! BLKBENCH: large_us=<n> ratio=<x1000>
//! ```
//!
//! where `ratio` is sector_us / large_us (how many times faster large requests are).
//!
//! then `BLKBENCH: done`, and calls ResetSystem(EfiResetShutdown) so QEMU exits. Times come
//! from the TSC, calibrated against Stall. Failures print `BLKBENCH: error <what> <status>`.

#![no_std]
#![no_main]

use core::ptr;

use r_efi::efi;
use r_efi::protocols::{block_io, simple_text_output};

/// Bytes read by each method: large enough that per-call setup vanishes from the large
/// reads, small enough that 8192 single-block calls finish quickly under TCG.
const SPAN: usize = 4 << 20;
const LARGE_REQUEST: usize = 1 << 20;
const BLOCK: usize = 512;
const CALIBRATION_US: usize = 100_000;

fn tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

struct App<'a> {
    bs: &'a efi::BootServices,
    out: *mut simple_text_output::Protocol,
}

/// A failed step and the status it returned.
struct Failure(&'static str, efi::Status);

fn check(what: &'static str, status: efi::Status) -> Result<(), Failure> {
    if status.is_error() {
        Err(Failure(what, status))
    } else {
        Ok(())
    }
}

impl App<'_> {
    /// The first BlockIo on a whole disk (not a partition) with media and 512-byte blocks.
    fn find_disk(&self) -> Result<*mut block_io::Protocol, Failure> {
        let mut count = 0usize;
        let mut handles: *mut efi::Handle = ptr::null_mut();
        let mut guid = block_io::PROTOCOL_GUID;
        check(
            "LocateHandleBuffer(BlockIo)",
            (self.bs.locate_handle_buffer)(
                efi::BY_PROTOCOL,
                &mut guid,
                ptr::null_mut(),
                &mut count,
                &mut handles,
            ),
        )?;
        let mut found = None;
        for index in 0..count {
            // SAFETY: LocateHandleBuffer returned `count` handles at `handles`.
            let handle = unsafe { *handles.add(index) };
            let mut interface: *mut core::ffi::c_void = ptr::null_mut();
            let status = (self.bs.handle_protocol)(handle, &mut guid, &mut interface);
            let protocol = interface as *mut block_io::Protocol;
            if status.is_error() || protocol.is_null() {
                continue;
            }
            // SAFETY: a BlockIo interface's media pointer is valid while the protocol is
            // installed (§13.9).
            let media = unsafe { &*(*protocol).media };
            let blocks = (media.last_block as usize).saturating_add(1);
            if media.media_present
                && !media.logical_partition
                && media.block_size as usize == BLOCK
                && blocks >= SPAN / BLOCK
            {
                found = Some(protocol);
                break;
            }
        }
        let _ = (self.bs.free_pool)(handles.cast());
        found.ok_or(Failure("no whole-disk BlockIo", efi::Status::NOT_FOUND))
    }

    /// Reads `SPAN` bytes from block 0 in `request`-byte calls, last call first when
    /// `backwards`; returns the TSC ticks taken.
    fn read_span(
        &self,
        disk: *mut block_io::Protocol,
        buf: &mut [u8],
        request: usize,
        backwards: bool,
    ) -> Result<u64, Failure> {
        // SAFETY: `disk` is a BlockIo interface found by `find_disk`.
        let (read_blocks, media_id) = unsafe { ((*disk).read_blocks, (*(*disk).media).media_id) };
        let calls = SPAN / request;
        let start = tsc();
        for call in 0..calls {
            let offset = request * if backwards { calls - 1 - call } else { call };
            let status = read_blocks(
                disk,
                media_id,
                (offset / BLOCK) as u64,
                request,
                buf.as_mut_ptr().cast(),
            );
            check("ReadBlocks", status)?;
        }
        Ok(tsc().wrapping_sub(start))
    }

    fn run(&mut self) -> Result<(), Failure> {
        let disk = self.find_disk()?;
        let mut pool: *mut core::ffi::c_void = ptr::null_mut();
        check(
            "AllocatePool",
            (self.bs.allocate_pool)(efi::LOADER_DATA, LARGE_REQUEST, &mut pool),
        )?;
        // SAFETY: AllocatePool returned LARGE_REQUEST writable bytes, ours until FreePool.
        let buf = unsafe { core::slice::from_raw_parts_mut(pool.cast::<u8>(), LARGE_REQUEST) };

        let calibration_start = tsc();
        let _ = (self.bs.stall)(CALIBRATION_US);
        let ticks_per_us = (tsc().wrapping_sub(calibration_start) / CALIBRATION_US as u64).max(1);

        let result = self
            .read_span(disk, buf, LARGE_REQUEST, false)
            .and_then(|_warm_up| {
                let sector = self.read_span(disk, buf, BLOCK, true)?;
                let sequential = self.read_span(disk, buf, BLOCK, false)?;
                let large = self.read_span(disk, buf, LARGE_REQUEST, false)?;
                Ok((sector, sequential, large))
            });
        let _ = (self.bs.free_pool)(pool);
        let (sector, sequential, large) = result?;
        // Short lines: the console may cut lines at its 80 columns.
        efi_con::print(
            self.out,
            format_args!(
                "BLKBENCH: bytes={SPAN} sector_us={}\n",
                sector / ticks_per_us
            ),
        );
        efi_con::print(
            self.out,
            format_args!(
                "BLKBENCH: sequential_sector_us={}\n",
                sequential / ticks_per_us
            ),
        );
        efi_con::print(
            self.out,
            format_args!(
                "BLKBENCH: large_us={} ratio={}\n",
                large / ticks_per_us,
                u128::from(sector) * 1000 / u128::from(large.max(1))
            ),
        );
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
    // The boot manager's 5-minute watchdog (§3.1.2) must not cut a slow TCG run short.
    let _ = (bs.set_watchdog_timer)(0, 0, 0, ptr::null_mut());
    let mut app = App {
        bs,
        out: st.con_out,
    };
    if let Err(Failure(what, status)) = app.run() {
        efi_con::print(
            app.out,
            format_args!("BLKBENCH: error {what} {:#x}\n", status.as_usize()),
        );
    }
    efi_con::print(app.out, format_args!("BLKBENCH: done\n"));
    (rt.reset_system)(
        efi::RESET_SHUTDOWN,
        efi::Status::SUCCESS,
        0,
        ptr::null_mut(),
    );
    efi::Status::SUCCESS
}
