//! The UEFI SCT's across-reset rules of the runtime services (edk2-test
//! MiscBootServicesBBTestFunction.c, TimeServicesBBTestFunction.c):
//!
//! - the monotonic count's high 32 bits grow across a reset (UEFI 2.10 §7.5.3, §8.5.2);
//! - GetTime returns the TimeZone and Daylight SetTime gave before the reset (§8.3.1/§8.3.2);
//! - an armed wakeup alarm is still armed, not pending, at the same time (§8.3.3/§8.3.4).
//!
//! First boot (no `SctResetProbe` variable under [`VENDOR`]): records the count, sets a new
//! time zone and daylight and a wakeup alarm an hour ahead, saves what it did in the
//! non-volatile probe, prints `SCTRESET: resetting` and calls ResetSystem(EfiResetCold).
//! Next boot: prints `SCTRESET: PASS <name>` or `SCTRESET: FAIL <name>: <detail>` per rule,
//! restores the time zone, disarms the alarm, deletes the probe, prints
//! `SCTRESET: N passed, M failed` and powers off. The host test is tests/tests/sct_reset.rs.

#![no_std]
#![no_main]

use core::ffi::c_void;
use core::fmt;
use core::mem::size_of;
use core::ptr;

use r_efi::efi;

use efi_con::ucs2;

const VENDOR: efi::Guid = efi::Guid::from_fields(
    0x6d0e_7a41,
    0x5c3b,
    0x4e2a,
    0x9f,
    0x17,
    &[0x73, 0x63, 0x74, 0x72, 0x73, 0x74],
);
const PROBE_NAME: [u16; 14] = ucs2("SctResetProbe");
const NV_BS_RT: u32 =
    efi::VARIABLE_NON_VOLATILE | efi::VARIABLE_BOOTSERVICE_ACCESS | efi::VARIABLE_RUNTIME_ACCESS;
const DAYLIGHT_FLAGS: u8 = efi::TIME_ADJUST_DAYLIGHT | efi::TIME_IN_DAYLIGHT;

/// What the first boot did, saved across the reset.
#[repr(C)]
#[derive(Clone, Copy)]
struct Probe {
    count: u64,
    original_zone: i16,
    original_daylight: u8,
    zone: i16,
    daylight: u8,
    wakeup: efi::Time,
    wakeup_set: u8,
}

struct App<'a> {
    st: &'a efi::SystemTable,
    bs: &'a efi::BootServices,
    rt: &'a efi::RuntimeServices,
    passed: u32,
    failed: u32,
}

fn zero_time() -> efi::Time {
    // SAFETY: an all-zero EFI_TIME is a valid value of this plain C struct.
    unsafe { core::mem::zeroed() }
}

impl App<'_> {
    fn print(&self, args: fmt::Arguments) {
        efi_con::print(self.st.con_out, args);
    }

    fn check(&mut self, name: &str, ok: bool, detail: fmt::Arguments) {
        if ok {
            self.passed += 1;
            self.print(format_args!("SCTRESET: PASS {name}\n"));
        } else {
            self.failed += 1;
            self.print(format_args!("SCTRESET: FAIL {name}: {detail}\n"));
        }
    }

    /// Whether the firmware vendor is edk2 ("EDK II", OVMF's FirmwareVendor).
    fn is_edk2(&self) -> bool {
        let vendor = self.st.firmware_vendor;
        if vendor.is_null() {
            return false;
        }
        let expected = "EDK II".encode_utf16();
        // SAFETY: FirmwareVendor is a NUL-terminated UCS-2 string (UEFI 2.10 §4.3); the
        // comparison stops at the first mismatch, so it never reads past the NUL.
        expected
            .enumerate()
            .all(|(index, unit)| unsafe { *vendor.add(index) } == unit)
    }

    fn count(&self) -> u64 {
        let mut count = 0u64;
        let _ = (self.bs.get_next_monotonic_count)(&mut count);
        count
    }

    fn now(&self) -> Option<efi::Time> {
        let mut time = zero_time();
        let status = (self.rt.get_time)(&mut time, ptr::null_mut());
        (status == efi::Status::SUCCESS).then_some(time)
    }

    fn set_probe(&self, data: &[u8]) -> efi::Status {
        let mut guid = VENDOR;
        (self.rt.set_variable)(
            PROBE_NAME.as_ptr().cast_mut(),
            &mut guid,
            NV_BS_RT,
            data.len(),
            data.as_ptr().cast_mut().cast::<c_void>(),
        )
    }

    fn probe(&self) -> Option<Probe> {
        let mut guid = VENDOR;
        let mut buf = [0u8; size_of::<Probe>()];
        let mut size = buf.len();
        let status = (self.rt.get_variable)(
            PROBE_NAME.as_ptr().cast_mut(),
            &mut guid,
            ptr::null_mut(),
            &mut size,
            buf.as_mut_ptr().cast(),
        );
        // SAFETY: `buf` holds size_of::<Probe>() bytes this app wrote from a Probe, whose
        // fields accept any bit pattern.
        (status == efi::Status::SUCCESS && size == buf.len())
            .then(|| unsafe { ptr::read_unaligned(buf.as_ptr().cast::<Probe>()) })
    }

    fn first_boot(&self) {
        let count = self.count();
        let Some(mut time) = self.now() else {
            self.print(format_args!("SCTRESET: error GetTime failed\n"));
            return;
        };
        let (original_zone, original_daylight) = (time.timezone, time.daylight);
        // Changed as the SCT changes them: another zone, both daylight flags flipped.
        time.timezone = if original_zone == 60 { -120 } else { 60 };
        time.daylight = original_daylight ^ DAYLIGHT_FLAGS;
        let status = (self.rt.set_time)(&mut time);
        if status != efi::Status::SUCCESS {
            self.print(format_args!(
                "SCTRESET: error SetTime returned {:#x}\n",
                status.as_usize()
            ));
            return;
        }
        let mut wakeup = self.now().unwrap_or(time);
        // An hour ahead, across midnight onto the next date: edk2 refuses an
        // alarm that is not within the next day.
        efi_con::time::one_hour_later(&mut wakeup);
        wakeup.nanosecond = 0;
        let status = (self.rt.set_wakeup_time)(efi::Boolean::TRUE, &mut wakeup);
        self.print(format_args!(
            "SCTRESET: SetWakeupTime status={:#x}\n",
            status.as_usize()
        ));
        let probe = Probe {
            count,
            original_zone,
            original_daylight,
            zone: time.timezone,
            daylight: time.daylight,
            wakeup,
            wakeup_set: u8::from(status == efi::Status::SUCCESS),
        };
        // SAFETY: `probe` is a live repr(C) value; its bytes are read as plain data
        // (padding included, which GetVariable hands back unchanged).
        let bytes = unsafe {
            core::slice::from_raw_parts(ptr::from_ref(&probe).cast::<u8>(), size_of::<Probe>())
        };
        let status = self.set_probe(bytes);
        if status != efi::Status::SUCCESS {
            self.print(format_args!(
                "SCTRESET: error SetVariable returned {:#x}\n",
                status.as_usize()
            ));
            return;
        }
        self.print(format_args!("SCTRESET: resetting\n"));
        (self.rt.reset_system)(efi::RESET_COLD, efi::Status::SUCCESS, 0, ptr::null_mut());
    }

    fn after_reset(&mut self, probe: Probe) {
        let count = self.count();
        self.check(
            "monotonic_high_grows",
            count >> 32 > probe.count >> 32,
            format_args!("{:#x} before the reset, {count:#x} after", probe.count),
        );
        match self.now() {
            Some(time) => {
                self.check(
                    "time_zone_kept",
                    time.timezone == probe.zone,
                    format_args!("set {}, read {}", probe.zone, time.timezone),
                );
                self.check(
                    "daylight_kept",
                    time.daylight == probe.daylight,
                    format_args!("set {:#x}, read {:#x}", probe.daylight, time.daylight),
                );
            }
            None => self.check("get_time", false, format_args!("GetTime failed")),
        }
        // OVMF (edk2's PcatRealTimeClockRuntimeDxe) leaves the alarm interrupt disarmed
        // after QEMU's reset clears the RTC's AIE bit, though §8.3.4 has the alarm wake
        // the system until it is disabled; the SCT reports that as a failure on OVMF too.
        // Skipped there, so the reference run checks the other rules.
        if probe.wakeup_set == 1 && self.is_edk2() {
            self.print(format_args!(
                "SCTRESET: SKIP wakeup_kept: edk2 does not re-arm the alarm after a reset\n"
            ));
        } else if probe.wakeup_set == 1 {
            let mut enabled = efi::Boolean::FALSE;
            let mut pending = efi::Boolean::TRUE;
            let mut wakeup = zero_time();
            let status = (self.rt.get_wakeup_time)(&mut enabled, &mut pending, &mut wakeup);
            let w = probe.wakeup;
            self.check(
                "wakeup_kept",
                status == efi::Status::SUCCESS
                    && bool::from(enabled)
                    && !bool::from(pending)
                    && (
                        wakeup.year,
                        wakeup.month,
                        wakeup.day,
                        wakeup.hour,
                        wakeup.minute,
                        wakeup.second,
                        wakeup.timezone,
                        wakeup.daylight,
                    ) == (
                        w.year, w.month, w.day, w.hour, w.minute, w.second, w.timezone, w.daylight,
                    ),
                format_args!(
                    "status {:#x} enabled {} pending {} set {}-{}-{} {}:{}:{} tz {} dl {}, \
                     read {}-{}-{} {}:{}:{} tz {} dl {}",
                    status.as_usize(),
                    bool::from(enabled),
                    bool::from(pending),
                    w.year,
                    w.month,
                    w.day,
                    w.hour,
                    w.minute,
                    w.second,
                    w.timezone,
                    w.daylight,
                    wakeup.year,
                    wakeup.month,
                    wakeup.day,
                    wakeup.hour,
                    wakeup.minute,
                    wakeup.second,
                    wakeup.timezone,
                    wakeup.daylight
                ),
            );
        }

        // Leave the machine as found.
        if let Some(mut time) = self.now() {
            time.timezone = probe.original_zone;
            time.daylight = probe.original_daylight;
            let _ = (self.rt.set_time)(&mut time);
        }
        let _ = (self.rt.set_wakeup_time)(efi::Boolean::FALSE, ptr::null_mut());
        let _ = self.set_probe(&[]);
        self.print(format_args!(
            "SCTRESET: {} passed, {} failed\n",
            self.passed, self.failed
        ));
        (self.rt.reset_system)(
            efi::RESET_SHUTDOWN,
            efi::Status::SUCCESS,
            0,
            ptr::null_mut(),
        );
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
    // SAFETY: the service table pointers of a valid system table are valid (UEFI 2.10
    // §4.3); null is rejected.
    let (Some(bs), Some(rt)) = (unsafe { st.boot_services.as_ref() }, unsafe {
        st.runtime_services.as_ref()
    }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    // The boot manager's watchdog (UEFI 2.10 §3.1.2) must not fire during slow TCG runs.
    let _ = (bs.set_watchdog_timer)(0, 0, 0, ptr::null_mut());
    let mut app = App {
        st,
        bs,
        rt,
        passed: 0,
        failed: 0,
    };
    match app.probe() {
        None => app.first_boot(),
        Some(probe) => app.after_reset(probe),
    }
    efi::Status::ABORTED
}
