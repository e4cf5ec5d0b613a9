//! Boot-phase timing: each phase boundary writes a progress code to the
//! debug port 0x80 (Cloud Hypervisor timestamps those writes) and, at debug
//! log level, logs how long the phase took by the firmware's own TSC.
//!
//! Log lines have a fixed shape the benchmark parses:
//! `timing: <phase> <ms> ms (at <ms> ms)`, the second number counting from
//! firmware entry.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::sync::Global;
use crate::{serial, tsc};

/// A phase boundary: its port 0x80 code and its name in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase {
    pub code: u8,
    pub name: &'static str,
}

impl Phase {
    /// PVH entry reached (first instruction of Rust code).
    pub const ENTRY: Phase = Phase::new(0x01, "entry");
    /// Memory map, page tables and heap ready.
    pub const PLATFORM: Phase = Phase::new(0x02, "platform");
    /// ACPI tables parsed, TSC frequency known.
    pub const ACPI: Phase = Phase::new(0x03, "acpi");
    /// System table, runtime services, console installed.
    pub const EFI_CORE: Phase = Phase::new(0x10, "efi-core");
    /// PCI enumerated and BARs assigned.
    pub const PCI: Phase = Phase::new(0x11, "pci");
    /// virtio-blk devices initialised.
    pub const DISK_PROBE: Phase = Phase::new(0x12, "disk-probe");
    /// Partitions and FAT file systems published.
    pub const FILE_SYSTEM: Phase = Phase::new(0x20, "file-system");
    /// The first boot image (or BLS kernel and initrd) read and loaded.
    pub const LOADING: Phase = Phase::new(0x30, "loading");
    /// ExitBootServices: everything between loading and here is the OS
    /// loader's own work.
    pub const EXIT_BOOT_SERVICES: Phase = Phase::new(0x40, "exit-boot-services");

    pub const fn new(code: u8, name: &'static str) -> Self {
        Phase { code, name }
    }

    const ALL: [Phase; 9] = [
        Phase::ENTRY,
        Phase::PLATFORM,
        Phase::ACPI,
        Phase::EFI_CORE,
        Phase::PCI,
        Phase::DISK_PROBE,
        Phase::FILE_SYSTEM,
        Phase::LOADING,
        Phase::EXIT_BOOT_SERVICES,
    ];
}

/// The code of the last phase marked, for the panic handler.
static LAST_PHASE: AtomicU8 = AtomicU8::new(0);

/// The name of the last phase that ended (the panic handler's "where"):
/// "entry" means the platform was being set up, "loading" that a boot
/// option was running, and so on.
pub fn last_phase_name() -> &'static str {
    let code = LAST_PHASE.load(Ordering::Relaxed);
    Phase::ALL
        .iter()
        .find(|phase| phase.code == code)
        .map_or("none", |phase| phase.name)
}

/// TSC at [`Phase::ENTRY`] and at the previous mark; zero before `start`.
static ENTRY_TICKS: AtomicU64 = AtomicU64::new(0);
static LAST_TICKS: AtomicU64 = AtomicU64::new(0);

/// Marks firmware entry. Logs nothing: the logger and the TSC frequency are
/// not set up yet.
pub fn start() {
    let now = tsc::ticks();
    ENTRY_TICKS.store(now, Ordering::Relaxed);
    LAST_TICKS.store(now, Ordering::Relaxed);
    serial::progress(Phase::ENTRY.code);
    LAST_PHASE.store(Phase::ENTRY.code, Ordering::Relaxed);
}

/// Marks made before the TSC frequency was known, logged at the next mark
/// after it is: (phase, start ticks, end ticks).
static PENDING: Global<[Option<(Phase, u64, u64)>; 4]> = Global::new([None; 4]);

/// Ends the phase `phase` names: writes its code to port 0x80 and logs its
/// duration at debug level. Before `tsc::init` the log line is deferred, so
/// marking never triggers a calibration of its own.
pub fn mark(phase: Phase) {
    serial::progress(phase.code);
    LAST_PHASE.store(phase.code, Ordering::Relaxed);
    let now = tsc::ticks();
    let last = LAST_TICKS.swap(now, Ordering::Relaxed);
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    if !tsc::frequency_known() {
        PENDING.with(|pending| {
            if let Some(free) = pending.iter_mut().find(|p| p.is_none()) {
                *free = Some((phase, last, now));
            }
        });
        return;
    }
    let earlier = PENDING.with(core::mem::take);
    for (phase, last, now) in earlier.into_iter().flatten().chain([(phase, last, now)]) {
        log_phase(phase, last, now);
    }
}

fn log_phase(phase: Phase, last: u64, now: u64) {
    let entry = ENTRY_TICKS.load(Ordering::Relaxed);
    let (took, at) = calc::phase_us(entry, last, now, tsc::freq_hz());
    log::debug!(
        "timing: {} {}.{:03} ms (at {}.{:03} ms)",
        phase.name,
        took / 1000,
        took % 1000,
        at / 1000,
        at % 1000
    );
}

pub mod calc {
    //! Tick arithmetic, host-testable.
    #![forbid(unsafe_code)]

    /// (phase duration, time since entry) in microseconds for a phase that
    /// ran from `last` to `now` ticks at `hz`.
    pub fn phase_us(entry: u64, last: u64, now: u64, hz: u64) -> (u64, u64) {
        let us = |ticks: u64| super::tsc::calc::ticks_to_ns(ticks, hz) / 1000;
        (us(now.wrapping_sub(last)), us(now.wrapping_sub(entry)))
    }

    /// Bytes of memory of the runtime types in `regions`: what the firmware
    /// keeps from the OS after ExitBootServices (UEFI 2.10 §7.2.3).
    pub fn runtime_bytes<'a>(regions: impl IntoIterator<Item = &'a crate::memory::Region>) -> u64 {
        use crate::memory::{MemoryType, PAGE_SIZE};
        regions
            .into_iter()
            .filter(|r| {
                matches!(
                    r.ty,
                    MemoryType::RUNTIME_SERVICES_CODE | MemoryType::RUNTIME_SERVICES_DATA
                )
            })
            .map(|r| r.pages.saturating_mul(PAGE_SIZE))
            .fold(0u64, u64::saturating_add)
    }
}

/// Logs (debug level) the runtime services code and data the memory map
/// keeps, in the shape `runtime memory: <bytes> bytes (code <n>, data <n>)`.
pub fn log_runtime_memory() {
    use crate::memory::{self, MemoryType};
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let (code, data) = memory::with_map(|map| {
        let of = |ty: MemoryType| calc::runtime_bytes(map.regions().iter().filter(|r| r.ty == ty));
        (
            of(MemoryType::RUNTIME_SERVICES_CODE),
            of(MemoryType::RUNTIME_SERVICES_DATA),
        )
    });
    log::debug!(
        "runtime memory: {} bytes (code {code}, data {data})",
        code + data
    );
}

#[cfg(test)]
mod tests {
    use super::calc::*;
    use crate::memory::{MemoryAttribute, MemoryType, Region};

    #[test]
    fn phase_durations_in_microseconds() {
        // 1 GHz: 1000 ticks per microsecond.
        assert_eq!(
            phase_us(0, 1_000_000, 3_500_000, 1_000_000_000),
            (2500, 3500)
        );
        // A counter that wrapped between marks still gives the short span.
        assert_eq!(
            phase_us(u64::MAX - 999, u64::MAX - 999, 1000, 1_000_000_000),
            (2, 2)
        );
    }

    #[test]
    fn runtime_bytes_counts_only_runtime_types() {
        let region = |pages, ty| Region {
            start: 0,
            pages,
            ty,
            attribute: MemoryAttribute::empty(),
            freeable: false,
        };
        let regions = [
            region(10, MemoryType::RUNTIME_SERVICES_CODE),
            region(3, MemoryType::BOOT_SERVICES_DATA),
            region(5, MemoryType::RUNTIME_SERVICES_DATA),
            region(100, MemoryType::CONVENTIONAL),
        ];
        assert_eq!(runtime_bytes(&regions), 15 * 4096);
        assert_eq!(runtime_bytes(&regions[1..2]), 0);
    }
}
