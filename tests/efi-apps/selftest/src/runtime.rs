//! Runtime services: time (UEFI 2.10 §8.3), variables (§8.2), monotonic counter (§8.5.2).

use core::ptr;

use r_efi::efi;

use crate::ctx::{Ctx, St, ucs2};

/// Vendor GUID for the test variables.
const VENDOR: efi::Guid = efi::Guid::from_fields(
    0x5e1f7e57,
    0x0ea1,
    0x4d1c,
    0x9a,
    0x61,
    &[0, 0, 0, 0, 0xe, 0xa],
);

const BS_RT: u32 = efi::VARIABLE_BOOTSERVICE_ACCESS | efi::VARIABLE_RUNTIME_ACCESS;
const NV_BS_RT: u32 = efi::VARIABLE_NON_VOLATILE | BS_RT;

static VOLATILE_NAME: [u16; 17] = ucs2("SelftestVolatile");
static NV_NAME: [u16; 11] = ucs2("SelftestNv");
static AUTH_NAME: [u16; 13] = ucs2("SelftestAuth");
static MISSING_NAME: [u16; 16] = ucs2("SelftestMissing");
static EMPTY_NAME: [u16; 1] = [0];

fn name_ptr(name: &'static [u16]) -> *mut u16 {
    name.as_ptr().cast_mut()
}

fn vendor() -> *mut efi::Guid {
    ptr::from_ref(&VENDOR).cast_mut()
}

fn set(ctx: &Ctx, name: &'static [u16], attrs: u32, data: &[u8]) -> efi::Status {
    (ctx.rt.set_variable)(
        name_ptr(name),
        vendor(),
        attrs,
        data.len(),
        data.as_ptr().cast_mut().cast(),
    )
}

/// GetVariable into `buf`: (status, attributes, size).
fn get(ctx: &Ctx, name: &'static [u16], buf: &mut [u8]) -> (efi::Status, u32, usize) {
    let mut attrs = 0u32;
    let mut size = buf.len();
    let status = (ctx.rt.get_variable)(
        name_ptr(name),
        vendor(),
        &mut attrs,
        &mut size,
        buf.as_mut_ptr().cast(),
    );
    (status, attrs, size)
}

/// Expects `name` to read back with `attrs` and `data`.
fn check_value(ctx: &mut Ctx, check: &str, name: &'static [u16], attrs: u32, data: &[u8]) {
    let mut buf = [0u8; 64];
    let (status, got_attrs, size) = get(ctx, name, &mut buf);
    ctx.check(
        check,
        status == efi::Status::SUCCESS && got_attrs == attrs && buf.get(..size) == Some(data),
        format_args!("{} attrs {got_attrs:#x} size {size}", St(status)),
    );
}

pub fn run_time(ctx: &mut Ctx) {
    let rt = ctx.rt;
    let mut time: efi::Time = zero_time();
    let mut caps = efi::TimeCapabilities {
        resolution: 0,
        accuracy: 0,
        sets_to_zero: efi::Boolean::FALSE,
    };
    let status = (rt.get_time)(&mut time, &mut caps);
    let get_ok = ctx.ok("time.get_time", status);
    if get_ok {
        ctx.check(
            "time.get_time.ranges",
            time_valid(&time),
            format_args!(
                "{}-{}-{} {}:{}:{}.{} tz {} dl {}",
                time.year,
                time.month,
                time.day,
                time.hour,
                time.minute,
                time.second,
                time.nanosecond,
                time.timezone,
                time.daylight
            ),
        );
        ctx.check(
            "time.get_time.capabilities",
            caps.resolution > 0,
            format_args!("resolution {}", caps.resolution),
        );
    }
    ctx.expect(
        "time.get_time.null",
        (rt.get_time)(ptr::null_mut(), ptr::null_mut()),
        &[efi::Status::INVALID_PARAMETER],
    );

    // SetTime may only be unsupported if the RT properties table says so (§8.3.2, §4.6.2).
    let set_unsupported = ctx.rt_unsupported(efi::RT_SUPPORTED_SET_TIME);
    if get_ok {
        let allowed: &[efi::Status] = if set_unsupported {
            &[efi::Status::SUCCESS, efi::Status::UNSUPPORTED]
        } else {
            &[efi::Status::SUCCESS]
        };
        ctx.expect("time.set_time.same", (rt.set_time)(&mut time), allowed);
        let mut bad = time;
        bad.month = 13;
        let allowed: &[efi::Status] = if set_unsupported {
            &[efi::Status::INVALID_PARAMETER, efi::Status::UNSUPPORTED]
        } else {
            &[efi::Status::INVALID_PARAMETER]
        };
        ctx.expect("time.set_time.invalid", (rt.set_time)(&mut bad), allowed);
    }

    // Wakeup timers are optional hardware: SUCCESS and UNSUPPORTED are both conformant.
    let mut enabled = efi::Boolean::FALSE;
    let mut pending = efi::Boolean::FALSE;
    let mut wake = zero_time();
    let status = (rt.get_wakeup_time)(&mut enabled, &mut pending, &mut wake);
    if ctx.expect(
        "time.get_wakeup_time",
        status,
        &[efi::Status::SUCCESS, efi::Status::UNSUPPORTED],
    ) && status == efi::Status::SUCCESS
        && bool::from(enabled)
    {
        ctx.check(
            "time.get_wakeup_time.ranges",
            time_valid(&wake),
            format_args!("{}-{}-{}", wake.year, wake.month, wake.day),
        );
    }
    let status = (rt.set_wakeup_time)(efi::Boolean::FALSE, ptr::null_mut());
    ctx.expect(
        "time.set_wakeup_time.disable",
        status,
        &[efi::Status::SUCCESS, efi::Status::UNSUPPORTED],
    );

    // The high 32 bits of the monotonic counter advance (§8.5.2).
    let mut high = 0u32;
    let mut before = 0u64;
    let mut after = 0u64;
    let _ = (ctx.bs.get_next_monotonic_count)(&mut before);
    let status = (rt.get_next_high_mono_count)(&mut high);
    let _ = (ctx.bs.get_next_monotonic_count)(&mut after);
    let allowed: &[efi::Status] =
        if ctx.rt_unsupported(efi::RT_SUPPORTED_GET_NEXT_HIGH_MONOTONIC_COUNT) {
            &[efi::Status::SUCCESS, efi::Status::UNSUPPORTED]
        } else {
            &[efi::Status::SUCCESS]
        };
    if ctx.expect("time.get_next_high_monotonic_count", status, allowed)
        && status == efi::Status::SUCCESS
    {
        ctx.check(
            "time.get_next_high_monotonic_count.advances",
            (after >> 32) > (before >> 32) && after > before,
            format_args!("high {high:#x}, count {before:#x} -> {after:#x}"),
        );
    }
    ctx.expect(
        "time.get_next_high_monotonic_count.null",
        (rt.get_next_high_mono_count)(ptr::null_mut()),
        &[efi::Status::INVALID_PARAMETER],
    );
}

fn zero_time() -> efi::Time {
    efi::Time {
        year: 0,
        month: 0,
        day: 0,
        hour: 0,
        minute: 0,
        second: 0,
        pad1: 0,
        nanosecond: 0,
        timezone: 0,
        daylight: 0,
        pad2: 0,
    }
}

/// Field ranges of EFI_TIME (UEFI 2.10 §8.3.1).
fn time_valid(t: &efi::Time) -> bool {
    (1900..=9999).contains(&t.year)
        && (1..=12).contains(&t.month)
        && (1..=31).contains(&t.day)
        && t.hour <= 23
        && t.minute <= 59
        && t.second <= 59
        && t.nanosecond <= 999_999_999
        && ((-1440..=1440).contains(&t.timezone) || t.timezone == efi::UNSPECIFIED_TIMEZONE)
        && t.daylight & !(efi::TIME_ADJUST_DAYLIGHT | efi::TIME_IN_DAYLIGHT) == 0
}

pub fn run_variables(ctx: &mut Ctx) {
    let rt = ctx.rt;
    // Leftovers of an interrupted earlier run would skew the checks.
    let _ = set(ctx, &NV_NAME, 0, &[]);

    ctx.ok(
        "variables.set.volatile",
        set(ctx, &VOLATILE_NAME, BS_RT, b"volatile-data"),
    );
    check_value(
        ctx,
        "variables.get.volatile",
        &VOLATILE_NAME,
        BS_RT,
        b"volatile-data",
    );
    let mut small = [0u8; 1];
    let (status, _, size) = get(ctx, &VOLATILE_NAME, &mut small);
    if ctx.expect(
        "variables.get.too_small",
        status,
        &[efi::Status::BUFFER_TOO_SMALL],
    ) {
        ctx.check(
            "variables.get.too_small.size",
            size == b"volatile-data".len(),
            format_args!("{size}"),
        );
    }
    let mut attrs = 0u32;
    let mut size = 0usize;
    let status = (rt.get_variable)(
        name_ptr(&VOLATILE_NAME),
        ptr::null_mut(),
        &mut attrs,
        &mut size,
        ptr::null_mut(),
    );
    ctx.expect(
        "variables.get.null_vendor",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let mut buf = [0u8; 16];
    let (status, _, _) = get(ctx, &MISSING_NAME, &mut buf);
    ctx.expect("variables.get.missing", status, &[efi::Status::NOT_FOUND]);

    ctx.ok(
        "variables.set.non_volatile",
        set(ctx, &NV_NAME, NV_BS_RT, b"nv"),
    );
    check_value(ctx, "variables.get.non_volatile", &NV_NAME, NV_BS_RT, b"nv");
    let status = set(
        ctx,
        &NV_NAME,
        NV_BS_RT | efi::VARIABLE_APPEND_WRITE,
        b"-more",
    );
    if ctx.ok("variables.set.append", status) {
        check_value(
            ctx,
            "variables.get.appended",
            &NV_NAME,
            NV_BS_RT,
            b"nv-more",
        );
    }

    // Rewriting with different attributes is refused and leaves the value alone (§8.2.3).
    let status = set(ctx, &VOLATILE_NAME, NV_BS_RT, b"other");
    ctx.expect(
        "variables.set.attribute_change",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    check_value(
        ctx,
        "variables.set.attribute_change.kept",
        &VOLATILE_NAME,
        BS_RT,
        b"volatile-data",
    );
    let status = set(ctx, &MISSING_NAME, efi::VARIABLE_RUNTIME_ACCESS, b"x");
    ctx.expect(
        "variables.set.runtime_without_boot",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = set(ctx, &EMPTY_NAME, BS_RT, b"x");
    ctx.expect(
        "variables.set.empty_name",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    // The deprecated count-based authenticated attribute (§8.2.3): a firmware without
    // it says UNSUPPORTED, one that parses it rejects our unauthenticated payload.
    let status = set(
        ctx,
        &AUTH_NAME,
        NV_BS_RT | efi::VARIABLE_AUTHENTICATED_WRITE_ACCESS,
        b"x",
    );
    ctx.expect(
        "variables.set.authenticated",
        status,
        &[efi::Status::INVALID_PARAMETER, efi::Status::UNSUPPORTED],
    );

    walk_variable_names(ctx);
    query_variable_info(ctx);

    // Deleting: DataSize 0 (§8.2.3).
    ctx.ok(
        "variables.delete.volatile",
        set(ctx, &VOLATILE_NAME, BS_RT, &[]),
    );
    let (status, _, _) = get(ctx, &VOLATILE_NAME, &mut buf);
    ctx.expect(
        "variables.delete.volatile.gone",
        status,
        &[efi::Status::NOT_FOUND],
    );
    ctx.ok("variables.delete.non_volatile", set(ctx, &NV_NAME, 0, &[]));
    let (status, _, _) = get(ctx, &NV_NAME, &mut buf);
    ctx.expect(
        "variables.delete.non_volatile.gone",
        status,
        &[efi::Status::NOT_FOUND],
    );
    ctx.expect(
        "variables.delete.missing",
        set(ctx, &MISSING_NAME, BS_RT, &[]),
        &[efi::Status::NOT_FOUND],
    );
}

fn walk_variable_names(ctx: &mut Ctx) {
    let next = ctx.rt.get_next_variable_name;
    let mut name = [0u16; 512];
    let mut guid = efi::Guid::from_fields(0, 0, 0, 0, 0, &[0; 6]);
    let mut size = 2usize;
    let status = next(&mut size, name.as_mut_ptr(), &mut guid);
    if ctx.expect(
        "variables.next_name.too_small",
        status,
        &[efi::Status::BUFFER_TOO_SMALL],
    ) {
        ctx.check(
            "variables.next_name.too_small.size",
            size > 2,
            format_args!("{size}"),
        );
    }

    name[0] = 0;
    let mut found_volatile = false;
    let mut found_nv = false;
    let mut status = efi::Status::SUCCESS;
    for _ in 0..10_000 {
        size = size_of_val(&name);
        status = next(&mut size, name.as_mut_ptr(), &mut guid);
        if status != efi::Status::SUCCESS {
            break;
        }
        if guid == VENDOR {
            let len = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            found_volatile |= name[..=len.min(name.len() - 1)] == VOLATILE_NAME[..];
            found_nv |= name[..=len.min(name.len() - 1)] == NV_NAME[..];
        }
    }
    ctx.expect("variables.next_name.end", status, &[efi::Status::NOT_FOUND]);
    ctx.check(
        "variables.next_name.finds_ours",
        found_volatile && found_nv,
        format_args!("volatile {found_volatile}, non-volatile {found_nv}"),
    );

    // A name/GUID pair that is not an existing variable (§8.2.2).
    let missing = MISSING_NAME;
    name[..missing.len()].copy_from_slice(&missing);
    guid = VENDOR;
    size = size_of_val(&name);
    let status = next(&mut size, name.as_mut_ptr(), &mut guid);
    ctx.expect(
        "variables.next_name.unknown_start",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
}

fn query_variable_info(ctx: &mut Ctx) {
    let mut max_storage = 0u64;
    let mut remaining = 0u64;
    let mut max_size = 0u64;
    let status =
        (ctx.rt.query_variable_info)(NV_BS_RT, &mut max_storage, &mut remaining, &mut max_size);
    let allowed: &[efi::Status] = if ctx.rt_unsupported(efi::RT_SUPPORTED_QUERY_VARIABLE_INFO) {
        &[efi::Status::SUCCESS, efi::Status::UNSUPPORTED]
    } else {
        &[efi::Status::SUCCESS]
    };
    if ctx.expect("variables.query_info", status, allowed) && status == efi::Status::SUCCESS {
        ctx.check(
            "variables.query_info.sane",
            max_storage > 0 && remaining <= max_storage && max_size > 0 && max_size <= max_storage,
            format_args!("storage {max_storage} remaining {remaining} max {max_size}"),
        );
        let status =
            (ctx.rt.query_variable_info)(0, &mut max_storage, &mut remaining, &mut max_size);
        ctx.expect(
            "variables.query_info.no_attributes",
            status,
            &[efi::Status::INVALID_PARAMETER],
        );
    }
}

/// Test-only capsule GUID no firmware knows.
const CAPSULE_GUID: efi::Guid = efi::Guid::from_fields(
    0x5e1f7e57,
    0x0cab,
    0x4d1c,
    0x9a,
    0x61,
    &[0, 0, 0, 0, 0xc, 0xa],
);

/// The services that only make sense at runtime or with real capsules: probe their
/// boot-time and error behaviour without side effects.
pub fn run_misc_runtime(ctx: &mut Ctx) {
    let rt = ctx.rt;
    // Before ExitBootServices the firmware is not at runtime (§8.4.1).
    let status =
        (rt.set_virtual_address_map)(0, size_of::<efi::MemoryDescriptor>(), 1, ptr::null_mut());
    ctx.expect(
        "runtime.set_virtual_address_map.boot_time",
        status,
        &[efi::Status::UNSUPPORTED],
    );

    // ConvertPointer (§8.4.2): a NULL Address is invalid; a NULL pointer marked optional is
    // left alone. Outside SetVirtualAddressMap the service may also be unsupported.
    let status = (rt.convert_pointer)(0, ptr::null_mut());
    ctx.expect(
        "runtime.convert_pointer.null_address",
        status,
        &[efi::Status::INVALID_PARAMETER, efi::Status::UNSUPPORTED],
    );
    let mut null: *mut core::ffi::c_void = ptr::null_mut();
    let status = (rt.convert_pointer)(efi::OPTIONAL_POINTER as usize, &mut null);
    ctx.check(
        "runtime.convert_pointer.optional_null",
        (status == efi::Status::SUCCESS && null.is_null()) || status == efi::Status::UNSUPPORTED,
        format_args!("{} -> {null:p}", St(status)),
    );

    // Capsules (§8.5.3): an unknown capsule GUID is unsupported; an empty list is invalid.
    let capsule_unsupported = ctx.rt_unsupported(efi::RT_SUPPORTED_UPDATE_CAPSULE);
    let mut header = efi::CapsuleHeader {
        capsule_guid: CAPSULE_GUID,
        header_size: size_of::<efi::CapsuleHeader>() as u32,
        flags: 0,
        capsule_image_size: size_of::<efi::CapsuleHeader>() as u32,
    };
    let mut list = [ptr::from_mut(&mut header)];
    let mut max_size = 0u64;
    let mut reset = 0;
    let status = (rt.query_capsule_capabilities)(list.as_mut_ptr(), 1, &mut max_size, &mut reset);
    ctx.expect(
        "runtime.query_capsule_capabilities.unknown",
        status,
        &[efi::Status::UNSUPPORTED],
    );
    let status = (rt.query_capsule_capabilities)(list.as_mut_ptr(), 0, &mut max_size, &mut reset);
    let allowed: &[efi::Status] = if capsule_unsupported {
        &[efi::Status::INVALID_PARAMETER, efi::Status::UNSUPPORTED]
    } else {
        &[efi::Status::INVALID_PARAMETER]
    };
    ctx.expect("runtime.query_capsule_capabilities.empty", status, allowed);
    let status = (rt.update_capsule)(list.as_mut_ptr(), 0, 0);
    ctx.expect("runtime.update_capsule.empty", status, allowed);
    let status = (rt.update_capsule)(list.as_mut_ptr(), 1, 0);
    ctx.expect(
        "runtime.update_capsule.unknown",
        status,
        &[efi::Status::UNSUPPORTED],
    );
}
