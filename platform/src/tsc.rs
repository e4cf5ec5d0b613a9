//! Time base: the TSC, with its frequency taken from CPUID when the CPU or
//! VMM reports it and otherwise calibrated against the ACPI PM timer or the
//! PIT. Backs `now_ns` for logging/timeouts and `stall_us` for EFI Stall
//! (UEFI 2.10 §7.5).

use core::sync::atomic::{AtomicU64, Ordering};

use log::{info, warn};

use crate::acpi::PmTimer;
use x86_64::instructions::port::{Port, PortWriteOnly};

pub mod calc {
    //! Frequency arithmetic, host-testable.
    #![forbid(unsafe_code)]

    /// Frequencies outside this range are a misreport or a failed
    /// calibration, not a CPU: every x86-64 CPU with an invariant TSC runs
    /// it at hundreds of MHz or more, and a missing reference clock
    /// (QEMU microvm has no port 0x61, which reads 0xFF) gives tens of MHz.
    pub const PLAUSIBLE_HZ: core::ops::RangeInclusive<u64> = 200_000_000..=100_000_000_000;

    pub fn plausible(hz: u64) -> Option<u64> {
        PLAUSIBLE_HZ.contains(&hz).then_some(hz)
    }

    /// CPUID leaf 0x15 (Intel SDM Vol. 2A, CPUID "Time Stamp Counter and
    /// Nominal Core Crystal Clock"): TSC = crystal * EBX / EAX. When ECX (the
    /// crystal) is zero, leaf 0x16 EAX (processor base MHz) stands in for the
    /// TSC's nominal rate, from which the crystal is derived.
    pub fn from_leaf_15(
        denominator: u32,
        numerator: u32,
        crystal_hz: u32,
        base_mhz: u32,
    ) -> Option<u64> {
        if denominator == 0 || numerator == 0 {
            return None;
        }
        let crystal = if crystal_hz != 0 {
            u64::from(crystal_hz)
        } else {
            let base_hz = u64::from(base_mhz) * 1_000_000;
            base_hz * u64::from(denominator) / u64::from(numerator)
        };
        plausible(crystal * u64::from(numerator) / u64::from(denominator))
    }

    /// Leaf 0x40000010 EAX: TSC frequency in kHz (the VMware-defined timing
    /// leaf that KVM/QEMU and Cloud Hypervisor also fill).
    pub fn from_hypervisor_khz(khz: u32) -> Option<u64> {
        plausible(u64::from(khz) * 1000)
    }

    /// TSC ticks counted while a reference clock at `reference_hz` advanced
    /// `reference_ticks`.
    pub fn from_calibration(
        tsc_ticks: u64,
        reference_ticks: u64,
        reference_hz: u64,
    ) -> Option<u64> {
        if reference_ticks == 0 {
            return None;
        }
        let hz = u128::from(tsc_ticks) * u128::from(reference_hz) / u128::from(reference_ticks);
        plausible(u64::try_from(hz).ok()?)
    }

    pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
        if hz == 0 {
            return 0;
        }
        let ns = u128::from(ticks) * 1_000_000_000 / u128::from(hz);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Ticks in `us` microseconds, rounded up so a stall is never short.
    pub fn us_to_ticks(us: u64, hz: u64) -> u64 {
        let ticks = (u128::from(us) * u128::from(hz)).div_ceil(1_000_000);
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    /// PM timer ticks between two reads of a 24- or 32-bit counter that may
    /// have wrapped once (ACPI 6.5 §4.8.3.3).
    pub fn pm_timer_elapsed(start: u32, now: u32, bits32: bool) -> u32 {
        let mask = if bits32 { u32::MAX } else { 0x00ff_ffff };
        now.wrapping_sub(start) & mask
    }
}

/// TSC frequency; zero until `init` ran.
static FREQ_HZ: AtomicU64 = AtomicU64::new(0);
/// TSC value at `init`, the origin of `now_ns`.
static BASE_TICKS: AtomicU64 = AtomicU64::new(0);

/// Used when neither CPUID nor calibration gave a rate, so stalls still
/// terminate (a modern host's TSC is 1-5 GHz).
const FALLBACK_HZ: u64 = 2_000_000_000;
/// Calibration window: 2 ms of the 3.58 MHz PM timer is ~7,200 ticks, so the
/// rate is good to ~0.05% even with a microsecond of port-read jitter at
/// each end, ample for Stall and timeouts; a longer window only delays boot.
const CALIBRATION_US: u64 = 2_000;
/// Bound on reference-clock polls; a port read is at least ~100 ns, so this
/// is well beyond the window yet finite when the device is missing.
const MAX_POLLS: u32 = 5_000_000;

const PIT_HZ: u64 = 1_193_182;
const PIT_CHANNEL2: u16 = 0x42;
const PIT_COMMAND: u16 = 0x43;
/// Port 0x61 (NMI status and control): bit 0 gates PIT channel 2, bit 1
/// feeds the speaker, bit 5 mirrors channel 2's output.
const SYSTEM_CONTROL: u16 = 0x61;

/// The raw time-stamp counter.
pub fn ticks() -> u64 {
    // SAFETY: RDTSC only reads the counter; every x86-64 CPU has it and the
    // firmware runs at CPL0, so CR4.TSD cannot make it fault.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Determines the TSC frequency once; later calls return the stored value.
pub fn init() -> u64 {
    init_with_pm_timer(None)
}

/// As [`init`], with the FADT's PM timer (`AcpiInfo::pm_timer`) as the
/// preferred calibration reference.
pub fn init_with_pm_timer(pm_timer: Option<PmTimer>) -> u64 {
    let known = FREQ_HZ.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    BASE_TICKS.store(ticks(), Ordering::Relaxed);
    let hz = cpuid_frequency()
        .or_else(|| {
            let hz = pm_timer.and_then(calibrate_with_pm_timer);
            if let Some(hz) = hz {
                info!("tsc: {hz} Hz, calibrated against the ACPI PM timer");
            }
            hz
        })
        .or_else(|| {
            let hz = calibrate_with_pit();
            if let Some(hz) = hz {
                info!("tsc: {hz} Hz, calibrated against PIT channel 2");
            }
            hz
        })
        .unwrap_or_else(|| {
            warn!("tsc: frequency unknown, assuming {FALLBACK_HZ} Hz");
            FALLBACK_HZ
        });
    FREQ_HZ.store(hz, Ordering::Relaxed);
    hz
}

/// Whether `init` has run (so `freq_hz` will not calibrate).
pub fn frequency_known() -> bool {
    FREQ_HZ.load(Ordering::Relaxed) != 0
}

/// TSC frequency in Hz (runs `init` on first use).
pub fn freq_hz() -> u64 {
    match FREQ_HZ.load(Ordering::Relaxed) {
        0 => init(),
        hz => hz,
    }
}

/// Nanoseconds since `init`.
pub fn now_ns() -> u64 {
    let hz = freq_hz();
    calc::ticks_to_ns(ticks().wrapping_sub(BASE_TICKS.load(Ordering::Relaxed)), hz)
}

/// Busy-waits at least `us` microseconds.
pub fn stall_us(us: u64) {
    let wait = calc::us_to_ticks(us, freq_hz());
    let start = ticks();
    while ticks().wrapping_sub(start) < wait {
        core::hint::spin_loop();
    }
}

/// The VMM's timing leaf first: it states the guest-visible rate even when
/// the TSC is scaled; then the CPU's own leaf 0x15.
fn cpuid_frequency() -> Option<u64> {
    use core::arch::x86_64::__cpuid;
    const HYPERVISOR_PRESENT: u32 = 1 << 31;
    const TIMING_LEAF: u32 = 0x4000_0010;

    if __cpuid(1).ecx & HYPERVISOR_PRESENT != 0 && __cpuid(0x4000_0000).eax >= TIMING_LEAF {
        let khz = __cpuid(TIMING_LEAF).eax;
        if let Some(hz) = calc::from_hypervisor_khz(khz) {
            info!("tsc: {hz} Hz from hypervisor CPUID leaf {TIMING_LEAF:#x}");
            return Some(hz);
        }
    }
    let max_leaf = __cpuid(0).eax;
    if max_leaf >= 0x15 {
        let leaf = __cpuid(0x15);
        let base_mhz = if max_leaf >= 0x16 {
            __cpuid(0x16).eax & 0xffff
        } else {
            0
        };
        if let Some(hz) = calc::from_leaf_15(leaf.eax, leaf.ebx, leaf.ecx, base_mhz) {
            info!("tsc: {hz} Hz from CPUID leaf 0x15");
            return Some(hz);
        }
    }
    None
}

fn calibrate_with_pm_timer(timer: PmTimer) -> Option<u64> {
    // SAFETY: the register is the FADT's PM timer (ACPI 6.5 §4.8.3.3);
    // reading it has no side effects.
    let read = || unsafe { timer.register.read() }.map(|v| v as u32);
    let target = calc::us_to_ticks(CALIBRATION_US, PmTimer::FREQUENCY_HZ) as u32;
    let start = read()?;
    let tsc_start = ticks();
    for _ in 0..MAX_POLLS {
        let elapsed = calc::pm_timer_elapsed(start, read()?, timer.bits32);
        if elapsed >= target {
            let tsc = ticks().wrapping_sub(tsc_start);
            return calc::from_calibration(tsc, u64::from(elapsed), PmTimer::FREQUENCY_HZ);
        }
    }
    None
}

/// Counts TSC ticks while PIT channel 2 counts down the window in mode 0
/// (interrupt on terminal count), watching its output on port 0x61 bit 5
/// (Intel 8254 datasheet; IBM PC/AT port 0x61 layout).
fn calibrate_with_pit() -> Option<u64> {
    const OUT2: u8 = 1 << 5;
    let count = calc::us_to_ticks(CALIBRATION_US, PIT_HZ) as u16;
    let mut system_control = Port::<u8>::new(SYSTEM_CONTROL);
    let mut command = PortWriteOnly::<u8>::new(PIT_COMMAND);
    let mut channel2 = PortWriteOnly::<u8>::new(PIT_CHANNEL2);
    // SAFETY: port 0x61 and the PIT's channel 2 and command ports drive the
    // speaker gate and timer channel 2 only; nothing else uses channel 2
    // (it is not wired to an interrupt) and no memory is touched.
    let control = unsafe { system_control.read() };
    // SAFETY: as above.
    unsafe {
        // Gate on, speaker off.
        system_control.write((control & !0x02) | 0x01);
        // Channel 2, low then high byte, mode 0, binary.
        command.write(0b1011_0000);
        channel2.write(count as u8);
        channel2.write((count >> 8) as u8);
    }
    let tsc_start = ticks();
    let mut result = None;
    // Mode 0 drives OUT2 low when the count is written: an output already
    // high is no PIT channel 2 behind port 0x61 (QEMU microvm has neither),
    // and waiting on it would "calibrate" against nothing.
    // SAFETY: as above; reading port 0x61 has no side effects.
    if unsafe { system_control.read() } & OUT2 != 0 {
        // SAFETY: as above; restores what was found on entry.
        unsafe { system_control.write(control) };
        return None;
    }
    for _ in 0..MAX_POLLS {
        // SAFETY: as above; reading port 0x61 has no side effects.
        if unsafe { system_control.read() } & OUT2 != 0 {
            let tsc = ticks().wrapping_sub(tsc_start);
            result = calc::from_calibration(tsc, u64::from(count), PIT_HZ);
            break;
        }
    }
    // SAFETY: as above; restores the gate and speaker bits found on entry.
    unsafe { system_control.write(control) };
    result
}

#[cfg(test)]
mod tests {
    use super::calc::*;

    #[test]
    fn leaf_15_with_crystal() {
        // 24 MHz crystal, ratio 188/2 -> 2.256 GHz.
        assert_eq!(from_leaf_15(2, 188, 24_000_000, 0), Some(2_256_000_000));
        assert_eq!(from_leaf_15(0, 188, 24_000_000, 0), None);
        assert_eq!(from_leaf_15(2, 0, 24_000_000, 0), None);
    }

    #[test]
    fn leaf_15_without_crystal_uses_leaf_16() {
        assert_eq!(from_leaf_15(2, 176, 0, 2200), Some(2_200_000_000));
        // No crystal and no base frequency: unknown.
        assert_eq!(from_leaf_15(2, 176, 0, 0), None);
    }

    #[test]
    fn hypervisor_leaf() {
        assert_eq!(from_hypervisor_khz(2_994_374), Some(2_994_374_000));
        assert_eq!(from_hypervisor_khz(0), None);
    }

    #[test]
    fn calibration() {
        // 30,000,000 TSC ticks across 11932 PIT ticks (10.0 ms) -> ~3 GHz.
        let hz = from_calibration(30_000_000, 11932, 1_193_182).unwrap();
        assert!((2_999_000_000..3_001_000_000).contains(&hz), "{hz}");
        let hz = from_calibration(10_000_000, 35796, 3_579_545).unwrap();
        assert!((999_000_000..1_001_000_000).contains(&hz), "{hz}");
        assert_eq!(from_calibration(5, 11932, 1_193_182), None);
        assert_eq!(from_calibration(5, 0, 1_193_182), None);
        // What microvm's absent PIT gave: 20 MHz is no CPU's TSC.
        assert_eq!(from_calibration(40_000, 2387, 1_193_182), None);
    }

    #[test]
    fn conversions() {
        assert_eq!(ticks_to_ns(3_000_000_000, 3_000_000_000), 1_000_000_000);
        assert_eq!(ticks_to_ns(3, 3_000_000_000), 1);
        assert_eq!(ticks_to_ns(u64::MAX, 1_000_000_000), u64::MAX);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ticks_to_ns(5, 0), 0);
        assert_eq!(us_to_ticks(1, 3_000_000_000), 3000);
        // Rounded up: 1 us at 1.5 MHz is 1.5 ticks -> 2.
        assert_eq!(us_to_ticks(1, 1_500_000), 2);
        assert_eq!(us_to_ticks(10_000, 1_193_182), 11932);
    }

    #[test]
    fn pm_timer_wraps() {
        assert_eq!(pm_timer_elapsed(0x00ff_fff0, 0x10, false), 0x20);
        assert_eq!(pm_timer_elapsed(0xffff_fff0, 0x10, true), 0x20);
        assert_eq!(pm_timer_elapsed(100, 200, false), 100);
    }
}
