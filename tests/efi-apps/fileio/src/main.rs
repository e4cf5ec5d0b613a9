//! EFI file I/O test application.
//!
//! On the volume it was loaded from:
//! 1. reads `\big.bin` with EFI_FILE_PROTOCOL.Read in 1 MiB chunks, computing its CRC-32 and
//!    timing the Read calls with the TSC (calibrated against Stall), and prints
//!    `FILEIO: crc32=<hex> bytes=<n> ms=<n>`;
//! 2. creates `\out` and `\out\written.txt` with [`written_byte`] content, Flushes, Closes,
//!    re-opens it, reads it back and prints `FILEIO: write=ok` or `FILEIO: write=fail`;
//! 3. prints `FILEIO: done` and calls ResetSystem(EfiResetShutdown) so QEMU exits.
//!
//! Firmware errors print `FILEIO: error <step> returned <status>`.

#![no_std]
#![no_main]

mod crc32;
mod file;

use core::fmt;

use r_efi::efi;
use r_efi::protocols::file as efi_file;

use crc32::Crc32;
use efi_con::ucs2;
use file::{Failure, File, PoolBuffer};

/// Read chunk size and scratch buffer size.
const CHUNK: usize = 1 << 20;
/// Size of the repeating pattern part of `\out\written.txt`.
const PATTERN_LEN: usize = 100 * 1024;
/// The text line that ends `\out\written.txt`; the host test repeats both constants.
const TRAILER: &[u8] = b"vmfw fileio: written through EFI_FILE_PROTOCOL\n";
const WRITTEN_LEN: usize = PATTERN_LEN + TRAILER.len();
/// Stall time used to calibrate the TSC.
const CALIBRATION_US: usize = 100_000;

const BIG_BIN: [u16; 9] = ucs2("\\big.bin");
const OUT_DIR: [u16; 5] = ucs2("\\out");
const WRITTEN_TXT: [u16; 17] = ucs2("\\out\\written.txt");

/// Byte `i` of `\out\written.txt`: lowercase letters cycling, then [`TRAILER`].
fn written_byte(i: usize) -> u8 {
    match i.checked_sub(PATTERN_LEN) {
        None => b'a' + (i % 26) as u8,
        Some(j) => TRAILER[j],
    }
}

struct App<'a> {
    image: efi::Handle,
    st: &'a efi::SystemTable,
    bs: &'a efi::BootServices,
}

impl App<'_> {
    fn print(&self, args: fmt::Arguments) {
        efi_con::print(self.st.con_out, args);
    }

    /// TSC ticks per millisecond, measured across a Stall (UEFI 2.10 §7.5.2).
    fn tsc_per_ms(&self) -> u64 {
        let start = tsc();
        let _ = (self.bs.stall)(CALIBRATION_US);
        let ticks = tsc().wrapping_sub(start);
        (ticks / (CALIBRATION_US as u64 / 1000)).max(1)
    }

    fn read_big(&self, root: &File, buf: &mut [u8]) -> Result<(), Failure> {
        let tsc_per_ms = self.tsc_per_ms();
        let file = root.open(&BIG_BIN, efi_file::MODE_READ, 0, "Open(\\big.bin)")?;
        self.print(format_args!("FILEIO: reading\n"));
        let mut crc = Crc32::new();
        let mut bytes: u64 = 0;
        let mut read_ticks: u64 = 0;
        let start = tsc();
        loop {
            let before = tsc();
            let n = file.read(buf, "Read(\\big.bin)")?;
            read_ticks += tsc().wrapping_sub(before);
            let Some(data) = buf.get(..n).filter(|d| !d.is_empty()) else {
                break;
            };
            crc.update(data);
            bytes += n as u64;
        }
        let total_ticks = tsc().wrapping_sub(start);
        file.close("Close(\\big.bin)")?;
        self.print(format_args!(
            "FILEIO: crc32={:08x} bytes={bytes} ms={}\n",
            crc.finish(),
            read_ticks / tsc_per_ms
        ));
        self.print(format_args!(
            "FILEIO: total_ms={} tsc_per_ms={tsc_per_ms}\n",
            total_ticks / tsc_per_ms
        ));
        Ok(())
    }

    /// Writes `\out\written.txt`, reads it back; `Ok(false)` when the content differs.
    fn write_and_verify(&self, root: &File, buf: &mut [u8]) -> Result<bool, Failure> {
        let rw_create = efi_file::MODE_READ | efi_file::MODE_WRITE | efi_file::MODE_CREATE;
        root.open(
            &OUT_DIR,
            rw_create,
            efi_file::DIRECTORY,
            "Open(\\out, create)",
        )?
        .close("Close(\\out)")?;

        let (content, readback) = buf.split_at_mut(WRITTEN_LEN);
        for (i, byte) in content.iter_mut().enumerate() {
            *byte = written_byte(i);
        }
        let file = root.open(&WRITTEN_TXT, rw_create, 0, "Open(written.txt, create)")?;
        // Uneven pieces so writes start and end inside clusters and extend the chain.
        let (first, rest) = content.split_at(1000);
        let (second, third) = rest.split_at(60_000);
        for piece in [first, second, third] {
            file.write(piece, "Write(written.txt)")?;
        }
        file.flush("Flush(written.txt)")?;
        file.close("Close(written.txt)")?;

        let file = root.open(&WRITTEN_TXT, efi_file::MODE_READ, 0, "Open(written.txt)")?;
        let mut len = 0;
        while let Some(space) = readback.get_mut(len..).filter(|s| !s.is_empty()) {
            let n = file.read(space, "Read(written.txt)")?;
            if n == 0 {
                break;
            }
            len += n;
        }
        file.close("Close(written.txt, read)")?;
        let matches = readback.get(..len) == Some(&*content);
        if !matches {
            self.print(format_args!(
                "FILEIO: read back {len} bytes, wrote {WRITTEN_LEN}\n"
            ));
        }
        Ok(matches)
    }

    fn run(&self) {
        // The boot manager arms a 5-minute watchdog (UEFI 2.10 §3.1.2); TCG reads are slow.
        let _ = (self.bs.set_watchdog_timer)(0, 0, 0, core::ptr::null_mut());
        let result = File::image_volume(self.bs, self.image).and_then(|root| {
            let mut buffer = PoolBuffer::new(self.bs, CHUNK)?;
            let buf = buffer.as_mut_slice();
            if let Err(failure) = self.read_big(&root, buf) {
                self.print(format_args!("FILEIO: error {failure}\n"));
            }
            let verdict = match self.write_and_verify(&root, buf) {
                Ok(true) => "ok",
                Ok(false) => "fail",
                Err(failure) => {
                    self.print(format_args!("FILEIO: error {failure}\n"));
                    "fail"
                }
            };
            self.print(format_args!("FILEIO: write={verdict}\n"));
            root.close("Close(root)")
        });
        if let Err(failure) = result {
            self.print(format_args!("FILEIO: error {failure}\n"));
        }
        self.print(format_args!("FILEIO: done\n"));
    }
}

fn tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
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
    App { image, st, bs }.run();
    (rt.reset_system)(
        efi::RESET_SHUTDOWN,
        efi::Status::SUCCESS,
        0,
        core::ptr::null_mut(),
    );
    efi::Status::SUCCESS
}
