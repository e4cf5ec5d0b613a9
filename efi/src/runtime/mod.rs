//! EFI runtime services (UEFI 2.10 §8) and the EFI_RUNTIME_SERVICES table.
//! One submodule per service group: [`time`] (§8.3.1/§8.3.2), [`wakeup`]
//! (§8.3.3/§8.3.4), [`variable_services`] (§8.2), [`virtual_map`] (§8.4),
//! [`reset`] (§8.5.1), [`capsule`] (§8.5.3); the monotonic count (§8.5.2)
//! is here, [`persisted`] keeps what must survive a reset, and [`journal`]
//! carries the OS's variable changes across a warm reset.
//!
//! Everything here is used after ExitBootServices, when the heap is gone:
//! all state lives in statics of the firmware image (RuntimeServicesCode/
//! Data). The `extern "efiapi"` functions validate the caller's pointers
//! and hand safe values to the pure logic in [`crate::variables`] and the
//! helpers below.

mod capsule;
pub mod journal;
pub mod journal_format;
pub mod monotonic;
pub mod persisted;
mod reset;
mod time;
mod variable_services;
mod virtual_map;
mod wakeup;

pub use capsule::{
    CapsuleArgError, check_capsule_flags, check_capsule_header, query_capsule_capabilities,
    update_capsule,
};
pub use reset::{reset, reset_after_panic, reset_kind, reset_system, watchdog_reset};
pub use time::{TIME_CAPABILITIES, TimeError, get_time, set_time, time_from_rtc, validate_time};
pub use variable_services::{
    PersistHook, VariableChange, WriteGuard, flush_pending_variables, get_next_variable_name,
    get_variable, load_variables, persist_variables, query_variable_info, set_persist_hook,
    set_variable, set_variable_persisting, set_variables_persisting, set_write_guard,
    with_variables,
};
pub use virtual_map::{
    MAX_RUNTIME_REGIONS, MapError, RuntimeRegion, VirtualMap, convert_address, convert_pointer,
    set_virtual_address_change_hook, set_virtual_address_map,
};
pub use wakeup::{get_wakeup_time, reported_wakeup_time, set_wakeup_time};

/// Whether ExitBootServices has run: the boot-services heap is gone.
pub fn runtime_phase() -> bool {
    virtual_map::RUNTIME_PHASE.load(core::sync::atomic::Ordering::Relaxed)
}

use core::cell::UnsafeCell;
use core::mem::size_of;
use core::sync::atomic::Ordering;

use platform::acpi::AcpiInfo;
use platform::crc32::crc32;
use uefi_raw::table::runtime::RuntimeServices;
use uefi_raw::table::{Header, Revision};

use crate::spec_gaps::{self, RtPropertiesTable};
use crate::variables::{VarError, VariableStore};

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
    get_next_high_monotonic_count: monotonic::get_next_high_monotonic_count,
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
/// but capsules. SetVariable works at runtime on the
/// RAM copy of the store: the firmware cannot write the disk once the OS
/// owns it, so a NON_VOLATILE change made after ExitBootServices lasts
/// until the next reset or power-off (README, "UEFI variables").
pub const RUNTIME_SERVICES_SUPPORTED: u32 = spec_gaps::RT_SUPPORTED_GET_TIME
    | spec_gaps::RT_SUPPORTED_SET_TIME
    | spec_gaps::RT_SUPPORTED_GET_WAKEUP_TIME
    | spec_gaps::RT_SUPPORTED_SET_WAKEUP_TIME
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
///
/// # Safety
/// `acpi`, when given, describes this machine's real FADT registers:
/// ResetSystem (§8.5.1) later writes its reset register and the RTC code
/// uses its century index, so a made-up `AcpiInfo` would have the firmware
/// write arbitrary I/O ports or memory.
pub unsafe fn init(
    variable_buffer: &'static mut [u8],
    acpi: Option<&AcpiInfo>,
) -> Result<(), VarError> {
    let store = VariableStore::new(variable_buffer)?;
    variable_services::VARIABLES.with(|slot| *slot = Some(store));
    time::CENTURY_REGISTER.store(acpi.and_then(|a| a.century).unwrap_or(0), Ordering::Relaxed);
    reset::ACPI.with(|slot| *slot = acpi.cloned());
    update_table_crc();
    Ok(())
}

/// Brings back the state the runtime services keep across resets
/// ([`persisted`]): counts this reset in the monotonic count's high half
/// (UEFI 2.10 §7.5.3, §8.5.2: "incremented at every system reset" and
/// non-volatile), restores SetTime's time zone and daylight flags, and
/// re-arms a wakeup alarm the reset disarmed. Call it once per boot, after
/// the persisted variables are loaded and the persist hook is set, so the
/// new count can reach the disk. The new high half is saved when the first
/// count is handed out ([`monotonic`]), not here: most boots never ask,
/// and a boot that hands out no count may reuse the high half unseen.
pub fn restore_persisted_state() {
    let high = persisted::load_monotonic_high()
        .unwrap_or(0)
        .wrapping_add(1);
    monotonic::set_high(high);
    time::restore_time_zone();
    wakeup::restore_alarm();
}

/// For the core's ExitBootServices: variables switch to their runtime view
/// and SetVirtualAddressMap becomes callable.
pub fn exit_boot_services() {
    with_variables(|store| store.enter_runtime_phase());
    virtual_map::RUNTIME_PHASE.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::variable_services::NAME_UNITS;
    use super::virtual_map::tests::descriptor;
    use super::*;
    use crate::variables::Attributes;
    use alloc::boxed::Box;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::ffi::c_void;
    use platform::sync::Global;
    use uefi_raw::Guid;
    use uefi_raw::Status;
    use uefi_raw::table::boot::MemoryType;
    use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor};
    use uefi_raw::table::runtime::VariableVendor;

    use core::sync::atomic::AtomicU64;

    #[test]
    fn rt_properties_list_what_works() {
        let p = rt_properties();
        assert_eq!(p.version, 1);
        assert_eq!(p.length, 8);
        let missing = spec_gaps::RT_SUPPORTED_UPDATE_CAPSULE
            | spec_gaps::RT_SUPPORTED_QUERY_CAPSULE_CAPABILITIES;
        assert_eq!(p.runtime_services_supported, 0x3fff & !missing);
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

    /// At runtime, once armed, a non-volatile change is recorded in the
    /// journal region as the whole non-volatile image (journal.rs); a
    /// region smaller than the 8 KiB store is refused.
    fn journal_records_runtime_changes(nv: &mut [u16], guid: &Guid) {
        let nv_bs_rt =
            Attributes::NON_VOLATILE | Attributes::BOOTSERVICE_ACCESS | Attributes::RUNTIME_ACCESS;
        let small: &'static mut [u8] = Box::leak(vec![0u8; 4096].into_boxed_slice());
        // SAFETY: a leaked buffer nothing else uses.
        unsafe { journal::set_region(small.as_mut_ptr() as u64, small.len()) };
        assert!(!journal::arm(5));
        let region: &'static mut [u8] = Box::leak(vec![0u8; 8192 + 32].into_boxed_slice());
        let region_address = region.as_mut_ptr() as u64;
        // SAFETY: as above.
        unsafe { journal::set_region(region_address, 8192 + 32) };
        assert!(journal::arm(5));
        let mut byte = [0x7cu8];
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_variable(nv.as_mut_ptr(), guid, nv_bs_rt, 1, byte.as_mut_ptr().cast()) },
            Status::SUCCESS
        );
        let (base, sequence, payload) = journal::with_region(|region| {
            let journal = journal_format::parse_journal(region).unwrap();
            (
                journal.base_generation,
                journal.sequence,
                journal.payload.to_vec(),
            )
        })
        .unwrap();
        assert_eq!((base, sequence), (5, 1));
        let mut check = vec![0u8; 8192];
        let mut loaded = VariableStore::new(&mut check).unwrap();
        loaded.load(&payload).unwrap();
        assert_eq!(
            loaded.find(&plain_name("Persisted"), guid).unwrap().data,
            [0x7c]
        );
        assert!(
            loaded
                .iter_non_volatile()
                .all(|v| v.attributes.contains(Attributes::NON_VOLATILE))
        );
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
        // SAFETY: no ACPI information, so no registers are taken on trust.
        unsafe { init(buffer, None) }.unwrap();
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
        journal_records_runtime_changes(&mut nv, &guid);
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
