//! EFI runtime services (UEFI 2.10 §8): time, variables, virtual memory,
//! monotonic count and reset, plus the EFI_RUNTIME_SERVICES table.
//!
//! Everything here is used after ExitBootServices, when the heap is gone:
//! all state lives in statics of the firmware image (RuntimeServicesCode/
//! Data). The `extern "efiapi"` functions validate the caller's pointers
//! and hand safe values to the pure logic in [`crate::variables`] and the
//! helpers below.

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::fmt;
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};

use log::{error, info, warn};
use platform::acpi::AcpiInfo;
use platform::crc32::crc32;
use platform::reset::{self, ResetKind};
use platform::rtc::{DateTime, Rtc, RtcError};
use platform::sync::Global;
use uefi_raw::capsule::CapsuleHeader;
use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor};
use uefi_raw::table::runtime::{ResetType, RuntimeServices, TimeCapabilities};
use uefi_raw::table::{Header, Revision};
use uefi_raw::time::{Daylight, Time};
use uefi_raw::{Boolean, Char16, Guid, PhysicalAddress, Status};

use crate::spec_gaps::{self, RtPropertiesTable};

use crate::variables::{Attributes, MAX_NAME_SIZE, MAX_VARIABLE_SIZE_CAP, VarError, VariableStore};

// ---------------------------------------------------------------------------
// Time (UEFI 2.10 §8.3)

/// Why an EFI_TIME was rejected; carries the offending value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeError {
    Date(RtcError),
    Nanosecond(u32),
    TimeZone(i16),
    Daylight(u8),
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Date(e) => write!(f, "{e}"),
            TimeError::Nanosecond(v) => write!(f, "nanosecond {v} out of range"),
            TimeError::TimeZone(v) => write!(f, "time zone {v} out of range"),
            TimeError::Daylight(v) => write!(f, "daylight flags {v:#x} invalid"),
        }
    }
}

/// Checks every EFI_TIME field against its range (§8.3.1): year 1900-9999,
/// a day that exists in the month, nanosecond below 10^9, a time zone of
/// ±1440 minutes or EFI_UNSPECIFIED_TIMEZONE, and only the two defined
/// daylight flags.
pub fn validate_time(time: &Time) -> Result<DateTime, TimeError> {
    let date = DateTime {
        year: time.year,
        month: time.month,
        day: time.day,
        hour: time.hour,
        minute: time.minute,
        second: time.second,
    };
    date.validate().map_err(TimeError::Date)?;
    if time.nanosecond > 999_999_999 {
        return Err(TimeError::Nanosecond(time.nanosecond));
    }
    if !(-1440..=1440).contains(&time.time_zone) && time.time_zone != Time::UNSPECIFIED_TIMEZONE {
        return Err(TimeError::TimeZone(time.time_zone));
    }
    // On raw bits: the caller's byte may hold bits no flag names.
    let daylight = time.daylight.bits();
    if daylight & !(Daylight::ADJUST_DAYLIGHT | Daylight::IN_DAYLIGHT).bits() != 0 {
        return Err(TimeError::Daylight(daylight));
    }
    Ok(date)
}

/// An EFI_TIME for a clock reading. The CMOS clock keeps neither time zone
/// nor daylight state: they are what SetTime last stored (volatile).
pub fn time_from_rtc(date: DateTime, time_zone: i16, daylight: Daylight) -> Time {
    Time {
        year: date.year,
        month: date.month,
        day: date.day,
        hour: date.hour,
        minute: date.minute,
        second: date.second,
        pad1: 0,
        nanosecond: 0,
        time_zone,
        daylight,
        pad2: 0,
    }
}

/// The clock ticks once a second; a typical crystal is accurate to about
/// 50 ppm, expressed in units of 1e-6 ppm (§8.3.1 EFI_TIME_CAPABILITIES).
pub const TIME_CAPABILITIES: TimeCapabilities = TimeCapabilities {
    resolution: 1,
    accuracy: 50_000_000,
    sets_to_zero: Boolean::FALSE,
};

/// CMOS index of the century byte (0: the RTC default).
static CENTURY_REGISTER: AtomicU8 = AtomicU8::new(0);
/// Time zone (low 16 bits) and daylight flags (bits 16-23) from SetTime.
static TIME_ZONE: AtomicU32 = AtomicU32::new(Time::UNSPECIFIED_TIMEZONE as u16 as u32);

fn rtc() -> Rtc {
    Rtc::new(Some(CENTURY_REGISTER.load(Ordering::Relaxed)))
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn get_time(
    time: *mut Time,
    capabilities: *mut TimeCapabilities,
) -> Status {
    if time.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let date = match rtc().read() {
        Ok(date) => date,
        Err(err) => {
            error!("GetTime: {err}");
            return Status::DEVICE_ERROR;
        }
    };
    let zone = TIME_ZONE.load(Ordering::Relaxed);
    let daylight = Daylight::from_bits_retain((zone >> 16) as u8);
    let value = time_from_rtc(date, zone as u16 as i16, daylight);
    // SAFETY: `time` is non-null and the caller provides an EFI_TIME there
    // (§8.3.1); the write tolerates any alignment.
    unsafe { time.write_unaligned(value) };
    if !capabilities.is_null() {
        // SAFETY: non-null optional EFI_TIME_CAPABILITIES output (§8.3.1).
        unsafe { capabilities.write_unaligned(TIME_CAPABILITIES) };
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn set_time(time: *const Time) -> Status {
    if time.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: `time` is non-null and points to the caller's EFI_TIME.
    let value = unsafe { time.read_unaligned() };
    let date = match validate_time(&value) {
        Ok(date) => date,
        Err(_) => return Status::INVALID_PARAMETER,
    };
    if let Err(err) = rtc().write(&date) {
        error!("SetTime: {err}");
        return Status::DEVICE_ERROR;
    }
    let zone = u32::from(value.time_zone as u16) | (u32::from(value.daylight.bits()) << 16);
    TIME_ZONE.store(zone, Ordering::Relaxed);
    Status::SUCCESS
}

/// There is no wakeup alarm hardware wired up; §8.3.3/§8.3.4 allow
/// EFI_UNSUPPORTED ("A wakeup timer is not supported on this platform"),
/// and the RT properties table says so.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §8.3.3 requires of the caller.
pub unsafe extern "efiapi" fn get_wakeup_time(
    _enabled: *mut Boolean,
    _pending: *mut Boolean,
    _time: *mut Time,
) -> Status {
    Status::UNSUPPORTED
}

/// See [`get_wakeup_time`].
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn set_wakeup_time(_enable: Boolean, _time: *const Time) -> Status {
    Status::UNSUPPORTED
}

// ---------------------------------------------------------------------------
// Variables (UEFI 2.10 §8.2)

static VARIABLES: Global<Option<VariableStore<'static>>> = Global::new(None);

/// Runs `f` on the variable store; None before [`init`] or on re-entry.
/// Boot-time Rust code (boot manager) uses this rather than the EFI calls.
pub fn with_variables<R>(f: impl FnOnce(&mut VariableStore<'static>) -> R) -> Option<R> {
    VARIABLES.try_with(|store| store.as_mut().map(f)).flatten()
}

/// Replaces the (empty) store with a persisted image; on error the store
/// is unchanged and the caller logs a warning and starts empty.
pub fn load_variables(image: &[u8]) -> Result<usize, VarError> {
    with_variables(|store| store.load(image)).unwrap_or(Err(VarError::Unavailable))
}

/// Runs a variable operation, mapping "no store" (not initialised, or a
/// re-entrant call, which §8.1 forbids for these services) to a status.
fn variables<R>(f: impl FnOnce(&mut VariableStore<'static>) -> R) -> Result<R, Status> {
    VARIABLES
        .try_with(|store| store.as_mut().map(f).ok_or(Status::UNSUPPORTED))
        .unwrap_or(Err(Status::DEVICE_ERROR))
}

/// Copies a caller's NUL-terminated UCS-2 name into `buffer`, reading at
/// most `max_units` units (never past the NUL). None when no NUL is found
/// within the limit.
///
/// # Safety
/// `name` must be non-null and readable up to its NUL or `max_units` units.
unsafe fn read_name(name: *const Char16, max_units: usize, buffer: &mut [u16]) -> Option<&[u16]> {
    let limit = max_units.min(buffer.len());
    for index in 0..limit {
        // SAFETY: the caller guarantees readability up to the NUL or the
        // limit, and we stop at the first NUL.
        let unit = unsafe { name.add(index).read_unaligned() };
        if unit == 0 {
            return Some(&buffer[..index]);
        }
        buffer[index] = unit;
    }
    None
}

/// Room for the longest accepted name plus its NUL.
const NAME_UNITS: usize = MAX_NAME_SIZE / 2;

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn get_variable(
    name: *const Char16,
    guid: *const Guid,
    attributes: *mut Attributes,
    data_size: *mut usize,
    data: *mut u8,
) -> Status {
    if name.is_null() || guid.is_null() || data_size.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let mut name_buffer = [0u16; NAME_UNITS];
    // SAFETY: `name` is non-null and NUL-terminated per §8.2.1.
    let Some(name) = (unsafe { read_name(name, NAME_UNITS, &mut name_buffer) }) else {
        // Longer than any name the store accepts, so not a variable.
        return Status::NOT_FOUND;
    };
    // SAFETY: `guid` and `data_size` are non-null caller pointers to an
    // EFI_GUID and a UINTN (§8.2.1).
    let (guid, capacity) = unsafe { (guid.read_unaligned(), data_size.read_unaligned()) };
    variables(|store| {
        let Some(variable) = store.find(name, &guid) else {
            return Status::NOT_FOUND;
        };
        let size = variable.data.len();
        if !attributes.is_null() {
            // SAFETY: optional UINT32 output, non-null. §8.2.1 returns the
            // attributes with EFI_BUFFER_TOO_SMALL as well.
            unsafe { attributes.write_unaligned(variable.attributes) };
        }
        // SAFETY: `data_size` is non-null (checked above).
        unsafe { data_size.write_unaligned(size) };
        if capacity < size {
            return Status::BUFFER_TOO_SMALL;
        }
        if data.is_null() || (data as usize).checked_add(size).is_none() {
            return Status::INVALID_PARAMETER;
        }
        // SAFETY: the caller's buffer holds `capacity` >= `size` bytes, and
        // it cannot overlap the store: the store is firmware data the caller
        // does not own.
        unsafe { core::ptr::copy_nonoverlapping(variable.data.as_ptr(), data, size) };
        Status::SUCCESS
    })
    .unwrap_or_else(|status| status)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn get_next_variable_name(
    name_size: *mut usize,
    name: *mut Char16,
    guid: *mut Guid,
) -> Status {
    if name_size.is_null() || name.is_null() || guid.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: non-null UINTN in/out parameter (§8.2.2).
    let capacity = unsafe { name_size.read_unaligned() };
    let mut name_buffer = [0u16; NAME_UNITS];
    // §8.2.2: no NUL within the first VariableNameSize bytes is
    // EFI_INVALID_PARAMETER; nor can a longer name be a variable.
    // SAFETY: the caller's buffer holds `capacity` bytes, and read_name
    // stops at the first NUL.
    let Some(previous) = (unsafe { read_name(name, capacity / 2, &mut name_buffer) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: non-null EFI_GUID in/out parameter.
    let previous_guid = unsafe { guid.read_unaligned() };
    let previous = (!previous.is_empty()).then_some((previous, &previous_guid));
    variables(|store| match store.next_variable(previous) {
        Err(err) => err.status(),
        Ok(variable) => {
            let needed = variable.name_size();
            // SAFETY: `name_size` is non-null.
            unsafe { name_size.write_unaligned(needed) };
            if capacity < needed {
                return Status::BUFFER_TOO_SMALL;
            }
            for (index, unit) in variable.name().chain([0]).enumerate() {
                // SAFETY: the buffer holds `capacity` >= `needed` bytes,
                // i.e. every unit of the name and its NUL.
                unsafe { name.add(index).write_unaligned(unit) };
            }
            // SAFETY: non-null EFI_GUID output.
            unsafe { guid.write_unaligned(variable.guid) };
            Status::SUCCESS
        }
    })
    .unwrap_or_else(|status| status)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn set_variable(
    name: *const Char16,
    guid: *const Guid,
    attributes: Attributes,
    data_size: usize,
    data: *const u8,
) -> Status {
    if name.is_null() || guid.is_null() || (data.is_null() && data_size != 0) {
        return Status::INVALID_PARAMETER;
    }
    // Bound the size before forming a slice over the caller's memory.
    if data_size > MAX_VARIABLE_SIZE_CAP || (data as usize).checked_add(data_size).is_none() {
        return Status::INVALID_PARAMETER;
    }
    let mut name_buffer = [0u16; NAME_UNITS];
    // SAFETY: `name` is non-null and NUL-terminated per §8.2.3.
    let Some(name) = (unsafe { read_name(name, NAME_UNITS, &mut name_buffer) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: non-null EFI_GUID.
    let guid = unsafe { guid.read_unaligned() };
    let data: &[u8] = if data_size == 0 {
        &[]
    } else {
        // SAFETY: `data` is non-null and the caller provides `data_size`
        // (at most 64 KiB) readable bytes, which are not the store's own
        // firmware data.
        unsafe { core::slice::from_raw_parts(data, data_size) }
    };
    set_variable_persisting(name, &guid, attributes, data)
}

/// Writes the non-volatile variables to persistent storage. It gets an
/// image from [`VariableStore::non_volatile_image`] (generation 0) and
/// returns once the image is durable, or the status that prevented it.
pub type PersistHook = fn(Vec<u8>) -> Result<(), Status>;

static PERSIST_HOOK: Global<Option<PersistHook>> = Global::new(None);
/// A persist attempt failed: the RAM copy holds changes the disk lacks.
static PERSIST_PENDING: AtomicBool = AtomicBool::new(false);

/// Registers the hook that makes NON_VOLATILE variables survive a reset.
/// Without one they live in RAM only.
pub fn set_persist_hook(hook: PersistHook) {
    PERSIST_HOOK.with(|slot| *slot = Some(hook));
}

/// SetVariable for both EFI callers and the firmware's own Rust code (boot
/// manager): changes the store, then, when a NON_VOLATILE variable was
/// created, changed or deleted during boot services, persists the store
/// before returning (UEFI 2.10 §8.2.3: a non-volatile variable survives a
/// reset). After ExitBootServices the OS owns the disk, so changes stay in
/// RAM. A failed write keeps the RAM copy, reports EFI_DEVICE_ERROR and is
/// retried by the next change or by ResetSystem.
pub fn set_variable_persisting(
    name: &[u16],
    guid: &Guid,
    attributes: Attributes,
    data: &[u8],
) -> Status {
    let changed = variables(|store| {
        let was_non_volatile = store
            .find(name, guid)
            .is_some_and(|v| v.attributes.contains(Attributes::NON_VOLATILE));
        store
            .set(name, guid, attributes, data)
            .map(|()| was_non_volatile || attributes.contains(Attributes::NON_VOLATILE))
    });
    match changed {
        Err(status) => status,
        Ok(Err(err)) => err.status(),
        Ok(Ok(false)) => Status::SUCCESS,
        Ok(Ok(true)) => match persist() {
            Ok(()) => Status::SUCCESS,
            Err(status) => status,
        },
    }
}

/// Hands the non-volatile variables to the persist hook (boot services
/// only). No hook means RAM-only variables, which is not an error.
fn persist() -> Result<(), Status> {
    if RUNTIME_PHASE.load(Ordering::Relaxed) {
        return Ok(());
    }
    let Some(hook) = PERSIST_HOOK.try_with(|slot| *slot).flatten() else {
        return Ok(());
    };
    // The store borrow ends before the hook runs: the hook does disk I/O,
    // which may poll timers and so run other code that reads variables.
    let Some(image) = with_variables(|store| store.non_volatile_image()) else {
        PERSIST_PENDING.store(true, Ordering::Relaxed);
        return Err(Status::DEVICE_ERROR);
    };
    match hook(image) {
        Ok(()) => {
            PERSIST_PENDING.store(false, Ordering::Relaxed);
            Ok(())
        }
        Err(status) => {
            PERSIST_PENDING.store(true, Ordering::Relaxed);
            warn!("non-volatile variables not saved: status {:#x}", status.0);
            Err(Status::DEVICE_ERROR)
        }
    }
}

/// Retries a failed persist; ResetSystem calls it during boot services so
/// nothing a caller set is lost to the reset.
pub fn flush_pending_variables() {
    if PERSIST_PENDING.load(Ordering::Relaxed) {
        let _ = persist();
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn query_variable_info(
    attributes: Attributes,
    maximum_storage: *mut u64,
    remaining_storage: *mut u64,
    maximum_variable_size: *mut u64,
) -> Status {
    if maximum_storage.is_null() || remaining_storage.is_null() || maximum_variable_size.is_null() {
        return Status::INVALID_PARAMETER;
    }
    variables(|store| match store.query_info(attributes) {
        Err(err) => err.status(),
        Ok(info) => {
            // SAFETY: the three outputs are non-null UINT64 pointers
            // (§8.2.4).
            unsafe {
                maximum_storage.write_unaligned(info.maximum_storage);
                remaining_storage.write_unaligned(info.remaining_storage);
                maximum_variable_size.write_unaligned(info.maximum_variable_size);
            }
            Status::SUCCESS
        }
    })
    .unwrap_or_else(|status| status)
}

// ---------------------------------------------------------------------------
// Monotonic count (UEFI 2.10 §8.4.1, §7.5.2)

/// GetNextHighMonotonicCount (§8.4.1) advances the high half of the one
/// counter GetNextMonotonicCount reads (a static, so it works at runtime).
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §8.4.1 requires of the caller.
pub unsafe extern "efiapi" fn get_next_high_mono_count(high_count: *mut u32) -> Status {
    // SAFETY: the same contract, passed on.
    unsafe { crate::misc_services::get_next_high_monotonic_count(high_count) }
}

// ---------------------------------------------------------------------------
// Reset (UEFI 2.10 §8.5.1)

static ACPI: Global<Option<AcpiInfo>> = Global::new(None);

/// Which platform reset an EFI_RESET_TYPE asks for; None is power-off.
/// Platform-specific and unknown types get a cold reset.
pub fn reset_kind(reset_type: ResetType) -> Option<ResetKind> {
    match reset_type {
        ResetType::SHUTDOWN => None,
        ResetType::WARM => Some(ResetKind::Warm),
        _ => Some(ResetKind::Cold),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn reset_system(
    reset_type: ResetType,
    status: Status,
    _data_size: usize,
    _data: *const u8,
) -> ! {
    if status.is_error() {
        info!("ResetSystem: reset after error status {:#x}", status.0);
    }
    flush_pending_variables();
    // Copied out so no borrow is held while resetting; a re-entrant call
    // (ResetSystem may interrupt other services, §8.1) goes without ACPI.
    let acpi = ACPI.try_with(|acpi| acpi.clone()).flatten();
    match reset_kind(reset_type) {
        // SAFETY: `ACPI` holds what `init` was given, the platform's ACPI
        // information as discovered at boot.
        None => unsafe { reset::shutdown(acpi.as_ref()) },
        // SAFETY: as above.
        Some(kind) => unsafe { reset::reset(kind, acpi.as_ref()) },
    }
}

// ---------------------------------------------------------------------------
// Virtual addressing (UEFI 2.10 §8.4.2)

/// Runtime regions SetVirtualAddressMap can record.
pub const MAX_RUNTIME_REGIONS: usize = 64;
const PAGE_SIZE: u64 = 4096;
const DESCRIPTOR_SIZE: usize = size_of::<MemoryDescriptor>();

/// Why a virtual address map was rejected (all EFI_INVALID_PARAMETER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    DescriptorVersion(u32),
    DescriptorSize(usize),
    MapSize(usize),
    TooManyRegions(usize),
    /// The region at this physical address wraps the address space.
    RegionOverflow(u64),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::DescriptorVersion(v) => write!(f, "descriptor version {v} unsupported"),
            MapError::DescriptorSize(s) => write!(f, "descriptor size {s} invalid"),
            MapError::MapSize(s) => write!(f, "map size {s} not a multiple of the descriptor"),
            MapError::TooManyRegions(n) => write!(f, "more than {n} runtime regions"),
            MapError::RegionOverflow(a) => write!(f, "region at {a:#x} wraps around"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeRegion {
    pub physical_start: u64,
    pub virtual_start: u64,
    pub size: u64,
}

/// The runtime regions' virtual addresses, from SetVirtualAddressMap.
#[derive(Clone, Copy, Debug)]
pub struct VirtualMap {
    regions: [RuntimeRegion; MAX_RUNTIME_REGIONS],
    count: usize,
}

impl VirtualMap {
    pub const fn new() -> Self {
        VirtualMap {
            regions: [RuntimeRegion {
                physical_start: 0,
                virtual_start: 0,
                size: 0,
            }; MAX_RUNTIME_REGIONS],
            count: 0,
        }
    }

    /// Decodes a memory map as SetVirtualAddressMap receives it, keeping
    /// the EFI_MEMORY_RUNTIME descriptors (§8.4.2, §7.2.3).
    pub fn parse(map: &[u8], descriptor_size: usize, version: u32) -> Result<Self, MapError> {
        if version != MemoryDescriptor::VERSION {
            return Err(MapError::DescriptorVersion(version));
        }
        // Later descriptor versions may grow, but stay 8-byte multiples.
        if descriptor_size < DESCRIPTOR_SIZE || !descriptor_size.is_multiple_of(8) {
            return Err(MapError::DescriptorSize(descriptor_size));
        }
        if !map.len().is_multiple_of(descriptor_size) {
            return Err(MapError::MapSize(map.len()));
        }
        // Every offset read is below DESCRIPTOR_SIZE, checked above, so
        // the zero for a short read never happens.
        let field = |descriptor: &[u8], offset: usize| {
            platform::le::u64_at(descriptor, offset).unwrap_or(0)
        };
        let mut result = VirtualMap::new();
        for descriptor in map.chunks_exact(descriptor_size) {
            // MemoryDescriptor (repr C): type u32, padding, then
            // physical_start, virtual_start, number_of_pages, attribute.
            let attribute = field(descriptor, 32);
            if attribute & MemoryAttribute::RUNTIME.bits() == 0 {
                continue;
            }
            let physical_start = field(descriptor, 8);
            let size = field(descriptor, 24)
                .checked_mul(PAGE_SIZE)
                .filter(|size| physical_start.checked_add(*size).is_some())
                .ok_or(MapError::RegionOverflow(physical_start))?;
            let slot = result
                .regions
                .get_mut(result.count)
                .ok_or(MapError::TooManyRegions(MAX_RUNTIME_REGIONS))?;
            *slot = RuntimeRegion {
                physical_start,
                virtual_start: field(descriptor, 16),
                size,
            };
            result.count += 1;
        }
        Ok(result)
    }

    pub fn regions(&self) -> &[RuntimeRegion] {
        &self.regions[..self.count]
    }

    /// The virtual address of a physical address inside a runtime region.
    pub fn translate(&self, physical: u64) -> Option<u64> {
        self.regions()
            .iter()
            .find(|r| physical >= r.physical_start && physical - r.physical_start < r.size)
            .map(|r| r.virtual_start.wrapping_add(physical - r.physical_start))
    }
}

impl Default for VirtualMap {
    fn default() -> Self {
        Self::new()
    }
}

static VIRTUAL_MAP: Global<Option<VirtualMap>> = Global::new(None);
static RUNTIME_PHASE: AtomicBool = AtomicBool::new(false);
static VIRTUAL_MODE: AtomicBool = AtomicBool::new(false);
/// Signals EVT_SIGNAL_VIRTUAL_ADDRESS_CHANGE / the virtual-address-change
/// event group; set by the core (events module).
static VIRTUAL_ADDRESS_CHANGE_HOOK: Global<Option<fn()>> = Global::new(None);

/// The core registers how to signal the virtual-address-change event group
/// (§7.1.1); it is called from SetVirtualAddressMap once the map is
/// recorded, so notify functions can call ConvertPointer. The core should
/// also convert its system table pointers then (see [`convert_address`]).
pub fn set_virtual_address_change_hook(hook: fn()) {
    VIRTUAL_ADDRESS_CHANGE_HOOK.with(|slot| *slot = Some(hook));
}

/// The virtual address of `physical` once SetVirtualAddressMap recorded a
/// map; None outside runtime regions or before.
pub fn convert_address(physical: u64) -> Option<u64> {
    VIRTUAL_MAP
        .try_with(|map| map.as_ref().and_then(|m| m.translate(physical)))
        .flatten()
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn set_virtual_address_map(
    map_size: usize,
    descriptor_size: usize,
    descriptor_version: u32,
    virtual_map: *const MemoryDescriptor,
) -> Status {
    // §8.4.2: EFI_UNSUPPORTED when not yet at runtime or already virtual.
    if !RUNTIME_PHASE.load(Ordering::Relaxed) || VIRTUAL_MODE.swap(true, Ordering::Relaxed) {
        return Status::UNSUPPORTED;
    }
    if virtual_map.is_null() && map_size != 0 {
        VIRTUAL_MODE.store(false, Ordering::Relaxed);
        return Status::INVALID_PARAMETER;
    }
    let bytes: &[u8] = if map_size == 0 {
        &[]
    } else {
        // SAFETY: the caller passes `map_size` readable bytes of memory map
        // at a non-null `virtual_map` (§8.4.2).
        unsafe { core::slice::from_raw_parts(virtual_map.cast::<u8>(), map_size) }
    };
    let map = match VirtualMap::parse(bytes, descriptor_size, descriptor_version) {
        Ok(map) => map,
        Err(err) => {
            error!("SetVirtualAddressMap: {err}");
            VIRTUAL_MODE.store(false, Ordering::Relaxed);
            return Status::INVALID_PARAMETER;
        }
    };
    VIRTUAL_MAP.with(|slot| *slot = Some(map));
    // Copied out: notify functions run without any of our borrows held.
    let hook = VIRTUAL_ADDRESS_CHANGE_HOOK.with(|hook| *hook);
    if let Some(hook) = hook {
        hook();
    }
    convert_table_pointers(&map);
    Status::SUCCESS
}

/// Points the runtime services table's functions at their virtual
/// addresses. The firmware is linked at a fixed address and keeps running
/// there: Linux maps runtime regions 1:1 besides the virtual mapping, so
/// absolute references inside the implementations remain valid.
fn convert_table_pointers(map: &VirtualMap) {
    let table = TABLE.0.get();
    let slots = (size_of::<RuntimeServices>() - size_of::<Header>()) / size_of::<usize>();
    for index in 0..slots {
        // SAFETY: RuntimeServices is repr(C): the header is followed by
        // `slots` function pointers, each one usize wide, and nothing else
        // accesses the table while the OS is inside SetVirtualAddressMap
        // (runtime services are not reentrant, §8.1). A non-zero address is
        // a valid function pointer bit pattern.
        unsafe {
            let slot = table
                .cast::<u8>()
                .add(size_of::<Header>())
                .cast::<usize>()
                .add(index);
            if let Some(virt) = map.translate(slot.read() as u64)
                && virt != 0
            {
                slot.write(virt as usize);
            }
        }
    }
    update_table_crc();
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn convert_pointer(
    debug_disposition: usize,
    address: *mut *mut c_void,
) -> Status {
    if address.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: non-null pointer to the caller's pointer (§8.4.3).
    let pointer = unsafe { address.read_unaligned() } as u64;
    let Some(map) = VIRTUAL_MAP.try_with(|map| *map).flatten() else {
        // No map yet: not supported at this time (§8.4.3).
        return Status::UNSUPPORTED;
    };
    if pointer == 0 {
        return if debug_disposition & spec_gaps::OPTIONAL_POINTER as usize != 0 {
            Status::SUCCESS
        } else {
            Status::INVALID_PARAMETER
        };
    }
    match map.translate(pointer) {
        Some(virt) => {
            // SAFETY: as for the read above.
            unsafe { address.write_unaligned(virt as usize as *mut c_void) };
            Status::SUCCESS
        }
        None => Status::NOT_FOUND,
    }
}

// ---------------------------------------------------------------------------
// Capsules (UEFI 2.10 §8.5.3): not supported, as the RT properties say.

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn update_capsule(
    _capsules: *const *const CapsuleHeader,
    _count: usize,
    _scatter_gather_list: PhysicalAddress,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn query_capsule_capabilities(
    _capsules: *const *const CapsuleHeader,
    _count: usize,
    _maximum_size: *mut u64,
    _reset_type: *mut ResetType,
) -> Status {
    Status::UNSUPPORTED
}

// ---------------------------------------------------------------------------
// The table

/// The EFI_RUNTIME_SERVICES table, in the firmware image so it survives
/// ExitBootServices.
struct RuntimeTable(UnsafeCell<RuntimeServices>);

// SAFETY: the table is written only by `init` (boot time) and by
// SetVirtualAddressMap, which the single-threaded caller invokes once;
// everyone else only reads it.
unsafe impl Sync for RuntimeTable {}

static TABLE: RuntimeTable = RuntimeTable(UnsafeCell::new(RuntimeServices {
    header: Header {
        signature: spec_gaps::RUNTIME_SERVICES_SIGNATURE,
        revision: Revision::EFI_2_70,
        size: size_of::<RuntimeServices>() as u32,
        crc: 0,
        reserved: 0,
    },
    get_time,
    set_time,
    get_wakeup_time,
    set_wakeup_time,
    set_virtual_address_map,
    convert_pointer,
    get_variable,
    get_next_variable_name,
    set_variable,
    get_next_high_monotonic_count: get_next_high_mono_count,
    reset_system,
    update_capsule,
    query_capsule_capabilities,
    query_variable_info,
}));

/// The table for EFI_SYSTEM_TABLE.RuntimeServices; its CRC is valid once
/// [`init`] ran.
pub fn runtime_services_table() -> *mut RuntimeServices {
    TABLE.0.get()
}

/// Recomputes the header CRC (§4.2.1: over HeaderSize bytes with the CRC
/// field zero).
fn update_table_crc() {
    let table = TABLE.0.get();
    // SAFETY: the table is only modified at boot (init) and in
    // SetVirtualAddressMap, both single-threaded and not reentrant; the
    // struct is repr(C) without padding (a 24-byte header and 14 pointers),
    // so viewing it as bytes reads initialised memory only.
    unsafe {
        (*table).header.crc = 0;
        let bytes = core::slice::from_raw_parts(table.cast::<u8>(), size_of::<RuntimeServices>());
        let crc = crc32(bytes);
        (*table).header.crc = crc;
    }
}

/// What works at runtime, for EFI_RT_PROPERTIES_TABLE (§4.6.2): everything
/// but the wakeup timer and capsules. SetVariable works at runtime on the
/// RAM copy of the store: the firmware cannot write the disk once the OS
/// owns it, so a NON_VOLATILE change made after ExitBootServices lasts
/// until the next reset or power-off (README, "UEFI variables").
pub const RUNTIME_SERVICES_SUPPORTED: u32 = spec_gaps::RT_SUPPORTED_GET_TIME
    | spec_gaps::RT_SUPPORTED_SET_TIME
    | spec_gaps::RT_SUPPORTED_GET_VARIABLE
    | spec_gaps::RT_SUPPORTED_GET_NEXT_VARIABLE_NAME
    | spec_gaps::RT_SUPPORTED_SET_VARIABLE
    | spec_gaps::RT_SUPPORTED_SET_VIRTUAL_ADDRESS_MAP
    | spec_gaps::RT_SUPPORTED_CONVERT_POINTER
    | spec_gaps::RT_SUPPORTED_GET_NEXT_HIGH_MONOTONIC_COUNT
    | spec_gaps::RT_SUPPORTED_RESET_SYSTEM
    | spec_gaps::RT_SUPPORTED_QUERY_VARIABLE_INFO;

/// EFI_RT_PROPERTIES_TABLE contents, for the core to install under
/// `spec_gaps::RT_PROPERTIES_TABLE_GUID` (in runtime memory, e.g. a static).
pub fn rt_properties() -> RtPropertiesTable {
    RtPropertiesTable {
        version: spec_gaps::RT_PROPERTIES_TABLE_VERSION,
        length: size_of::<RtPropertiesTable>() as u16,
        runtime_services_supported: RUNTIME_SERVICES_SUPPORTED,
    }
}

/// Sets up the runtime services: formats the variable store in
/// `variable_buffer` (a static of the firmware image, e.g. 128 KiB), keeps
/// the ACPI facts reset and the RTC need, and seals the table's CRC.
pub fn init(variable_buffer: &'static mut [u8], acpi: Option<&AcpiInfo>) -> Result<(), VarError> {
    let store = VariableStore::new(variable_buffer)?;
    VARIABLES.with(|slot| *slot = Some(store));
    CENTURY_REGISTER.store(acpi.and_then(|a| a.century).unwrap_or(0), Ordering::Relaxed);
    ACPI.with(|slot| *slot = acpi.cloned());
    update_table_crc();
    Ok(())
}

/// For the core's ExitBootServices: variables switch to their runtime view
/// and SetVirtualAddressMap becomes callable.
pub fn exit_boot_services() {
    with_variables(|store| store.enter_runtime_phase());
    RUNTIME_PHASE.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec;
    use uefi_raw::table::boot::MemoryType;
    use uefi_raw::table::runtime::VariableVendor;

    use core::sync::atomic::AtomicU64;

    fn time(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Time {
        Time {
            year,
            month,
            day,
            hour,
            minute,
            second,
            time_zone: Time::UNSPECIFIED_TIMEZONE,
            ..Time::default()
        }
    }

    #[test]
    fn time_validation() {
        let ok = time(2024, 2, 29, 23, 59, 59);
        assert_eq!(
            validate_time(&ok),
            Ok(DateTime {
                year: 2024,
                month: 2,
                day: 29,
                hour: 23,
                minute: 59,
                second: 59
            })
        );
        let date = |e| Err(TimeError::Date(e));
        assert_eq!(
            validate_time(&time(2023, 2, 29, 0, 0, 0)),
            date(RtcError::Day(29))
        );
        assert_eq!(
            validate_time(&time(1899, 12, 31, 0, 0, 0)),
            date(RtcError::Year(1899))
        );
        assert_eq!(
            validate_time(&time(10000, 1, 1, 0, 0, 0)),
            date(RtcError::Year(10000))
        );
        assert_eq!(
            validate_time(&time(2024, 0, 1, 0, 0, 0)),
            date(RtcError::Month(0))
        );
        assert_eq!(
            validate_time(&time(2024, 4, 31, 0, 0, 0)),
            date(RtcError::Day(31))
        );
        assert_eq!(
            validate_time(&time(2024, 1, 0, 0, 0, 0)),
            date(RtcError::Day(0))
        );
        assert_eq!(
            validate_time(&time(2024, 1, 1, 24, 0, 0)),
            date(RtcError::Hour(24))
        );
        assert_eq!(
            validate_time(&time(2024, 1, 1, 0, 60, 0)),
            date(RtcError::Minute(60))
        );
        assert_eq!(
            validate_time(&time(2024, 1, 1, 0, 0, 60)),
            date(RtcError::Second(60))
        );

        let mut t = ok;
        t.nanosecond = 999_999_999;
        assert!(validate_time(&t).is_ok());
        t.nanosecond = 1_000_000_000;
        assert_eq!(validate_time(&t), Err(TimeError::Nanosecond(1_000_000_000)));

        let mut t = ok;
        for zone in [-1440, 0, 60, 1440, Time::UNSPECIFIED_TIMEZONE] {
            t.time_zone = zone;
            assert!(validate_time(&t).is_ok(), "zone {zone}");
        }
        for zone in [-1441, 1441, 2046, i16::MIN] {
            t.time_zone = zone;
            assert_eq!(validate_time(&t), Err(TimeError::TimeZone(zone)));
        }

        let mut t = ok;
        t.daylight = Daylight::ADJUST_DAYLIGHT | Daylight::IN_DAYLIGHT;
        assert!(validate_time(&t).is_ok());
        t.daylight = Daylight::from_bits_retain(0x04);
        assert_eq!(validate_time(&t), Err(TimeError::Daylight(0x04)));
    }

    #[test]
    fn rtc_reading_becomes_efi_time() {
        let date = DateTime {
            year: 2026,
            month: 5,
            day: 17,
            hour: 8,
            minute: 30,
            second: 5,
        };
        let t = time_from_rtc(date, 60, Daylight::IN_DAYLIGHT);
        assert_eq!((t.year, t.month, t.day), (2026, 5, 17));
        assert_eq!((t.hour, t.minute, t.second, t.nanosecond), (8, 30, 5, 0));
        assert_eq!((t.time_zone, t.daylight), (60, Daylight::IN_DAYLIGHT));
        assert_eq!(validate_time(&t), Ok(date));
        assert_eq!(TIME_CAPABILITIES.resolution, 1);
        assert_eq!(TIME_CAPABILITIES.accuracy, 50_000_000);
        assert_eq!(TIME_CAPABILITIES.sets_to_zero, Boolean::FALSE);
    }

    #[test]
    fn reset_types() {
        assert_eq!(reset_kind(ResetType::COLD), Some(ResetKind::Cold));
        assert_eq!(reset_kind(ResetType::WARM), Some(ResetKind::Warm));
        assert_eq!(reset_kind(ResetType::SHUTDOWN), None);
        assert_eq!(
            reset_kind(ResetType::PLATFORM_SPECIFIC),
            Some(ResetKind::Cold)
        );
        assert_eq!(reset_kind(ResetType(77)), Some(ResetKind::Cold));
    }

    #[test]
    fn rt_properties_list_what_works() {
        let p = rt_properties();
        assert_eq!(p.version, 1);
        assert_eq!(p.length, 8);
        let missing = spec_gaps::RT_SUPPORTED_GET_WAKEUP_TIME
            | spec_gaps::RT_SUPPORTED_SET_WAKEUP_TIME
            | spec_gaps::RT_SUPPORTED_UPDATE_CAPSULE
            | spec_gaps::RT_SUPPORTED_QUERY_CAPSULE_CAPABILITIES;
        assert_eq!(p.runtime_services_supported, 0x3fff & !missing);
    }

    fn descriptor(
        kind: u32,
        physical: u64,
        virt: u64,
        pages: u64,
        attribute: u64,
        size: usize,
    ) -> Vec<u8> {
        let mut d = vec![0u8; size];
        d[0..4].copy_from_slice(&kind.to_le_bytes());
        d[8..16].copy_from_slice(&physical.to_le_bytes());
        d[16..24].copy_from_slice(&virt.to_le_bytes());
        d[24..32].copy_from_slice(&pages.to_le_bytes());
        d[32..40].copy_from_slice(&attribute.to_le_bytes());
        d
    }

    #[test]
    fn virtual_map_parsing_and_translation() {
        let size = 48; // larger than MemoryDescriptor, as firmware often uses
        let mut map = descriptor(
            MemoryType::RUNTIME_SERVICES_CODE.0,
            0x10_0000,
            0xffff_8000_0000_0000,
            16,
            (MemoryAttribute::RUNTIME | MemoryAttribute::WRITE_BACK).bits(),
            size,
        );
        map.extend(descriptor(
            MemoryType::CONVENTIONAL.0,
            0x20_0000,
            0,
            256,
            MemoryAttribute::WRITE_BACK.bits(),
            size,
        ));
        map.extend(descriptor(
            MemoryType::RUNTIME_SERVICES_DATA.0,
            0x40_0000,
            0xffff_8000_0010_0000,
            1,
            MemoryAttribute::RUNTIME.bits(),
            size,
        ));
        let m = VirtualMap::parse(&map, size, 1).unwrap();
        assert_eq!(m.regions().len(), 2);
        assert_eq!(m.translate(0x10_0000), Some(0xffff_8000_0000_0000));
        assert_eq!(m.translate(0x10_ffff), Some(0xffff_8000_0000_ffff));
        assert_eq!(m.translate(0x11_0000), None);
        assert_eq!(m.translate(0x0f_ffff), None);
        assert_eq!(m.translate(0x20_0000), None); // not a runtime region
        assert_eq!(m.translate(0x40_0010), Some(0xffff_8000_0010_0010));

        assert_eq!(
            VirtualMap::parse(&map, size, 2).unwrap_err(),
            MapError::DescriptorVersion(2)
        );
        assert_eq!(
            VirtualMap::parse(&map, 32, 1).unwrap_err(),
            MapError::DescriptorSize(32)
        );
        assert_eq!(
            VirtualMap::parse(&map, 44, 1).unwrap_err(),
            MapError::DescriptorSize(44)
        );
        assert_eq!(
            VirtualMap::parse(&map[..100], size, 1).unwrap_err(),
            MapError::MapSize(100)
        );
        let wrap = descriptor(
            0,
            u64::MAX - 4095,
            0,
            2,
            MemoryAttribute::RUNTIME.bits(),
            40,
        );
        assert_eq!(
            VirtualMap::parse(&wrap, 40, 1).unwrap_err(),
            MapError::RegionOverflow(u64::MAX - 4095)
        );
        let many: Vec<u8> = (0..=MAX_RUNTIME_REGIONS as u64)
            .flat_map(|i| descriptor(0, i << 20, 0, 1, MemoryAttribute::RUNTIME.bits(), 40))
            .collect();
        assert_eq!(
            VirtualMap::parse(&many, 40, 1).unwrap_err(),
            MapError::TooManyRegions(MAX_RUNTIME_REGIONS)
        );
        assert_eq!(VirtualMap::parse(&[], 40, 1).unwrap().regions().len(), 0);
    }

    #[test]
    fn high_monotonic_count_advances_the_shared_counter() {
        let mut before = 0u64;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { crate::misc_services::get_next_monotonic_count(&mut before) },
            Status::SUCCESS
        );
        let mut high = 0u32;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_high_mono_count(&mut high) },
            Status::SUCCESS
        );
        let mut after = 0u64;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { crate::misc_services::get_next_monotonic_count(&mut after) },
            Status::SUCCESS
        );
        assert!(after >> 32 >= u64::from(high) && after > before);
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_high_mono_count(core::ptr::null_mut()) },
            Status::INVALID_PARAMETER
        );
    }

    #[test]
    fn wakeup_and_capsules_unsupported() {
        let mut t = Time::default();
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_wakeup_time(Boolean::TRUE, &t) },
            Status::UNSUPPORTED
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_wakeup_time(core::ptr::null_mut(), core::ptr::null_mut(), &mut t) },
            Status::UNSUPPORTED
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { update_capsule(core::ptr::null_mut(), 0, 0) },
            Status::UNSUPPORTED
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                query_capsule_capabilities(
                    core::ptr::null_mut(),
                    0,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                )
            },
            Status::UNSUPPORTED
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_time(core::ptr::null_mut(), core::ptr::null_mut()) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_time(core::ptr::null_mut()) },
            Status::INVALID_PARAMETER
        );
        // Invalid times are refused before the clock is touched.
        let bad = time(2023, 2, 29, 0, 0, 0);
        // SAFETY: pointers are null or live locals of the sizes passed.
        assert_eq!(unsafe { set_time(&bad) }, Status::INVALID_PARAMETER);
    }

    fn name(s: &str) -> Vec<u16> {
        s.encode_utf16().chain([0]).collect()
    }

    /// A name as the store takes it: without the NUL.
    fn plain_name(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn table_crc_is_valid() -> bool {
        // SAFETY: test-only read of the static table, nothing writes it
        // concurrently (only `services_end_to_end` does).
        let mut copy: [u8; size_of::<RuntimeServices>()] =
            unsafe { core::mem::transmute_copy(&*TABLE.0.get()) };
        let stored = u32::from_le_bytes(copy[16..20].try_into().unwrap());
        copy[16..20].fill(0);
        crc32(&copy) == stored
    }

    static HOOK_SAW: AtomicU64 = AtomicU64::new(0);

    fn hook() {
        // Notify functions convert their pointers during the call.
        let mut pointer = (get_time as *const () as usize + 4) as *mut c_void;
        // SAFETY: pointers are null or live locals of the sizes passed.
        assert_eq!(unsafe { convert_pointer(0, &mut pointer) }, Status::SUCCESS);
        HOOK_SAW.store(pointer as u64, Ordering::Relaxed);
    }

    static PERSISTED: Global<Vec<Vec<u8>>> = Global::new(Vec::new());

    fn record_image(image: Vec<u8>) -> Result<(), Status> {
        PERSISTED.with(|images| images.push(image));
        Ok(())
    }

    fn failing_hook(_image: Vec<u8>) -> Result<(), Status> {
        Err(Status::VOLUME_FULL)
    }

    /// The one test that touches the global store, phase and map, in
    /// order (tests run in parallel threads).
    #[test]
    fn services_end_to_end() {
        let guid_value = VariableVendor::GLOBAL_VARIABLE.0;
        let guid = guid_value;
        let mut n = name("Lang");
        let mut data = *b"en-US\0";
        let null = core::ptr::null_mut::<c_void>();
        let bs_rt = Attributes::BOOTSERVICE_ACCESS | Attributes::RUNTIME_ACCESS;

        // Before init: no store.
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_variable(n.as_mut_ptr(), &guid, bs_rt, 6, data.as_mut_ptr().cast()) },
            Status::UNSUPPORTED
        );

        assert_eq!(load_variables(&[]), Err(VarError::Unavailable));
        let buffer: &'static mut [u8] = Box::leak(vec![0u8; 8192].into_boxed_slice());
        init(buffer, None).unwrap();
        // A bad persisted image leaves the empty store usable.
        assert!(matches!(
            load_variables(&[0; 64]),
            Err(VarError::Corrupt(_))
        ));
        assert_eq!(
            with_variables(|s| s.next_variable(None).err()),
            Some(Some(VarError::NotFound))
        );
        // SAFETY: reading the static table in the only test that writes it.
        let hdr = unsafe { (*runtime_services_table()).header };
        assert_eq!(hdr.signature, spec_gaps::RUNTIME_SERVICES_SIGNATURE);
        assert_eq!(hdr.size as usize, size_of::<RuntimeServices>());
        assert!(table_crc_is_valid());

        // SetVariable pointer checks.
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_variable(null.cast(), &guid, bs_rt, 6, data.as_mut_ptr().cast()) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    n.as_mut_ptr(),
                    null.cast(),
                    bs_rt,
                    6,
                    data.as_mut_ptr().cast(),
                )
            },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_variable(n.as_mut_ptr(), &guid, bs_rt, 6, null.cast()) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    n.as_mut_ptr(),
                    &guid,
                    bs_rt,
                    usize::MAX,
                    data.as_mut_ptr().cast(),
                )
            },
            Status::INVALID_PARAMETER
        );
        let mut empty = [0u16];
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    empty.as_mut_ptr(),
                    &guid,
                    bs_rt,
                    6,
                    data.as_mut_ptr().cast(),
                )
            },
            Status::INVALID_PARAMETER
        );
        let mut unterminated = vec![0x41u16; NAME_UNITS + 10];
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    unterminated.as_mut_ptr(),
                    &guid,
                    bs_rt,
                    6,
                    data.as_mut_ptr().cast(),
                )
            },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_variable(n.as_mut_ptr(), &guid, bs_rt, 6, data.as_mut_ptr().cast()) },
            Status::SUCCESS
        );
        let mut boot = name("BootOnly");
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    boot.as_mut_ptr(),
                    &guid,
                    Attributes::BOOTSERVICE_ACCESS,
                    1,
                    data.as_mut_ptr().cast(),
                )
            },
            Status::SUCCESS
        );

        // GetVariable: sizes and pointer checks.
        let mut attributes = Attributes::empty();
        let mut size = 0usize;
        let mut out = [0u8; 16];
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                get_variable(
                    null.cast(),
                    &guid,
                    &mut attributes,
                    &mut size,
                    out.as_mut_ptr().cast(),
                )
            },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                get_variable(
                    n.as_mut_ptr(),
                    null.cast(),
                    &mut attributes,
                    &mut size,
                    out.as_mut_ptr().cast(),
                )
            },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                get_variable(
                    n.as_mut_ptr(),
                    &guid,
                    &mut attributes,
                    null.cast(),
                    out.as_mut_ptr().cast(),
                )
            },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                get_variable(
                    n.as_mut_ptr(),
                    &guid,
                    &mut attributes,
                    &mut size,
                    null.cast(),
                )
            },
            Status::BUFFER_TOO_SMALL
        );
        assert_eq!((size, attributes), (6, bs_rt));
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_variable(n.as_mut_ptr(), &guid, null.cast(), &mut size, null.cast()) },
            Status::INVALID_PARAMETER
        );
        size = 16;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                get_variable(
                    n.as_mut_ptr(),
                    &guid,
                    null.cast(),
                    &mut size,
                    out.as_mut_ptr().cast(),
                )
            },
            Status::SUCCESS
        );
        assert_eq!((size, &out[..6]), (6, &b"en-US\0"[..]));
        let mut missing = name("Nope");
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                get_variable(
                    missing.as_mut_ptr(),
                    &guid,
                    null.cast(),
                    &mut size,
                    out.as_mut_ptr().cast(),
                )
            },
            Status::NOT_FOUND
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                get_variable(
                    unterminated.as_mut_ptr(),
                    &guid,
                    null.cast(),
                    &mut size,
                    out.as_mut_ptr().cast(),
                )
            },
            Status::NOT_FOUND
        );

        // GetNextVariableName.
        let mut buf = [0u16; 64];
        let mut next_guid = Guid::ZERO;
        let mut buf_size = 2usize; // an empty name in a too-small buffer
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_variable_name(&mut buf_size, buf.as_mut_ptr(), &mut next_guid) },
            Status::BUFFER_TOO_SMALL
        );
        assert_eq!(buf_size, 10);
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_variable_name(null.cast(), buf.as_mut_ptr(), &mut next_guid) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_variable_name(&mut buf_size, null.cast(), &mut next_guid) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_variable_name(&mut buf_size, buf.as_mut_ptr(), null.cast()) },
            Status::INVALID_PARAMETER
        );
        buf_size = 128;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_variable_name(&mut buf_size, buf.as_mut_ptr(), &mut next_guid) },
            Status::SUCCESS
        );
        assert_eq!(
            (buf_size, &buf[..5], next_guid),
            (10, &name("Lang")[..], guid_value)
        );
        buf_size = 128;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_variable_name(&mut buf_size, buf.as_mut_ptr(), &mut next_guid) },
            Status::SUCCESS
        );
        assert_eq!(&buf[..9], &name("BootOnly")[..]);
        buf_size = 128;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_variable_name(&mut buf_size, buf.as_mut_ptr(), &mut next_guid) },
            Status::NOT_FOUND
        );
        // No NUL within VariableNameSize bytes.
        let mut unterminated_prev = [0x41u16; 4];
        buf_size = 8;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                get_next_variable_name(
                    &mut buf_size,
                    unterminated_prev.as_mut_ptr(),
                    &mut next_guid,
                )
            },
            Status::INVALID_PARAMETER
        );
        // A name/GUID that is not a variable.
        let mut unknown = name("Zz");
        buf_size = 6;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_next_variable_name(&mut buf_size, unknown.as_mut_ptr(), &mut next_guid) },
            Status::INVALID_PARAMETER
        );

        // QueryVariableInfo.
        let (mut max, mut remaining, mut max_var) = (0u64, 0u64, 0u64);
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { query_variable_info(bs_rt, null.cast(), &mut remaining, &mut max_var) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { query_variable_info(bs_rt, &mut max, &mut remaining, &mut max_var) },
            Status::SUCCESS
        );
        assert_eq!(max, 8192 - 24);
        assert!(remaining < max);
        assert_eq!(max_var, 8192 - 24 - 28);

        // SetVirtualAddressMap and ConvertPointer are runtime-only.
        let offset = 0xffff_9000_0000_0000u64;
        let code = get_time as *const () as usize as u64 & !0xfff;
        let mut map = descriptor(
            MemoryType::RUNTIME_SERVICES_CODE.0,
            code - 0x10_0000,
            code - 0x10_0000 + offset,
            0x400,
            MemoryAttribute::RUNTIME.bits(),
            40,
        );
        let map_ptr: *mut MemoryDescriptor = map.as_mut_ptr().cast();
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_virtual_address_map(40, 40, 1, map_ptr) },
            Status::UNSUPPORTED
        );
        let mut p = code as *mut c_void;
        // SAFETY: pointers are null or live locals of the sizes passed.
        assert_eq!(unsafe { convert_pointer(0, &mut p) }, Status::UNSUPPORTED);

        // Persistence: a NON_VOLATILE change reaches the hook before
        // SetVariable returns; a volatile one does not.
        set_persist_hook(record_image);
        let nv_bs_rt = Attributes::NON_VOLATILE | bs_rt;
        let mut nv = name("Persisted");
        let persist_count = || PERSISTED.with(|images| images.len());
        let before = persist_count();
        let mut byte = [0x5au8];
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    nv.as_mut_ptr(),
                    &guid,
                    nv_bs_rt,
                    1,
                    byte.as_mut_ptr().cast(),
                )
            },
            Status::SUCCESS
        );
        assert_eq!(persist_count(), before + 1);
        let last = PERSISTED.with(|images| images.last().cloned()).unwrap();
        let mut check = vec![0u8; 1024];
        let mut loaded = VariableStore::new(&mut check).unwrap();
        assert_eq!(loaded.load(&last), Ok(1));
        assert_eq!(
            loaded
                .find(&plain_name("Persisted"), &guid_value)
                .unwrap()
                .data,
            [0x5a]
        );
        let mut volatile = name("Fleeting");
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    volatile.as_mut_ptr(),
                    &guid,
                    bs_rt,
                    1,
                    byte.as_mut_ptr().cast(),
                )
            },
            Status::SUCCESS
        );
        assert_eq!(persist_count(), before + 1);
        // A failed write is a device error, keeps the RAM copy, and is
        // retried by the flush ResetSystem does.
        set_persist_hook(failing_hook);
        byte[0] = 0x6b;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    nv.as_mut_ptr(),
                    &guid,
                    nv_bs_rt,
                    1,
                    byte.as_mut_ptr().cast(),
                )
            },
            Status::DEVICE_ERROR
        );
        assert_eq!(
            with_variables(|s| s
                .find(&plain_name("Persisted"), &guid_value)
                .unwrap()
                .data
                .to_vec()),
            Some(vec![0x6b])
        );
        set_persist_hook(record_image);
        flush_pending_variables();
        assert_eq!(persist_count(), before + 2);
        flush_pending_variables();
        assert_eq!(persist_count(), before + 2);
        // Deleting a non-volatile variable persists too.
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_variable(nv.as_mut_ptr(), &guid, Attributes::empty(), 0, null.cast()) },
            Status::SUCCESS
        );
        assert_eq!(persist_count(), before + 3);

        set_virtual_address_change_hook(hook);
        exit_boot_services();
        // At runtime the disk belongs to the OS: changes stay in RAM.
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    nv.as_mut_ptr(),
                    &guid,
                    nv_bs_rt,
                    1,
                    byte.as_mut_ptr().cast(),
                )
            },
            Status::SUCCESS
        );
        assert_eq!(persist_count(), before + 3);
        // Runtime view: the boot-services-only variable is gone.
        size = 16;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                get_variable(
                    boot.as_mut_ptr(),
                    &guid,
                    null.cast(),
                    &mut size,
                    out.as_mut_ptr().cast(),
                )
            },
            Status::NOT_FOUND
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                set_variable(
                    boot.as_mut_ptr(),
                    &guid,
                    Attributes::BOOTSERVICE_ACCESS,
                    1,
                    data.as_mut_ptr().cast(),
                )
            },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe {
                query_variable_info(
                    Attributes::BOOTSERVICE_ACCESS,
                    &mut max,
                    &mut remaining,
                    &mut max_var,
                )
            },
            Status::INVALID_PARAMETER
        );

        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_virtual_address_map(40, 40, 2, map_ptr) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_virtual_address_map(40, 16, 1, map_ptr) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_virtual_address_map(40, 40, 1, null.cast()) },
            Status::INVALID_PARAMETER
        );
        let get_time_address = get_time as *const () as usize as u64;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_virtual_address_map(40, 40, 1, map_ptr) },
            Status::SUCCESS
        );
        assert_eq!(
            HOOK_SAW.load(Ordering::Relaxed),
            get_time_address + 4 + offset
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_virtual_address_map(40, 40, 1, map_ptr) },
            Status::UNSUPPORTED
        );
        // The table now holds virtual addresses, under a fresh CRC.
        // SAFETY: reading the static table in the only test that writes it.
        let converted =
            unsafe { (*runtime_services_table()).get_time } as *const () as usize as u64;
        assert_eq!(converted, get_time_address + offset);
        assert!(table_crc_is_valid());
        assert_eq!(convert_address(code), Some(code + offset));

        // ConvertPointer.
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { convert_pointer(0, null.cast()) },
            Status::INVALID_PARAMETER
        );
        let mut p = code as *mut c_void;
        // SAFETY: pointers are null or live locals of the sizes passed.
        assert_eq!(unsafe { convert_pointer(0, &mut p) }, Status::SUCCESS);
        assert_eq!(p as u64, code + offset);
        let mut outside = (code - 0x20_0000) as *mut c_void;
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { convert_pointer(0, &mut outside) },
            Status::NOT_FOUND
        );
        let mut nothing = core::ptr::null_mut::<c_void>();
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { convert_pointer(0, &mut nothing) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { convert_pointer(spec_gaps::OPTIONAL_POINTER as usize, &mut nothing) },
            Status::SUCCESS
        );
        assert!(nothing.is_null());
    }
}
