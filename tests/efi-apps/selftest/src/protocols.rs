//! Protocol handler services (UEFI 2.10 §7.3).

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use r_efi::efi;
use r_efi::protocols::{
    device_path, driver_binding, loaded_image, loaded_image_device_path, simple_file_system,
};

use crate::ctx::{Ctx, St};

/// Test-only protocol GUIDs; no firmware installs these.
pub const GUID_A: efi::Guid = efi::Guid::from_fields(
    0x5e1f7e57,
    0x000a,
    0x4d1c,
    0x9a,
    0x61,
    &[0, 0, 0, 0, 0, 0xa],
);
pub const GUID_B: efi::Guid = efi::Guid::from_fields(
    0x5e1f7e57,
    0x000b,
    0x4d1c,
    0x9a,
    0x61,
    &[0, 0, 0, 0, 0, 0xb],
);
pub const GUID_C: efi::Guid = efi::Guid::from_fields(
    0x5e1f7e57,
    0x000c,
    0x4d1c,
    0x9a,
    0x61,
    &[0, 0, 0, 0, 0, 0xc],
);

/// Interface "structures" for the test protocols: only their addresses matter.
static IFACE_A: u64 = 0xA;
static IFACE_A2: u64 = 0xA2;
static IFACE_B: u64 = 0xB;
static IFACE_C: u64 = 0xC;

/// Something that is certainly not a handle the firmware handed out.
static BOGUS_HANDLE: u64 = 0xDEAD;

fn iface(value: &'static u64) -> *mut c_void {
    ptr::from_ref(value).cast_mut().cast()
}

fn bogus_handle() -> efi::Handle {
    iface(&BOGUS_HANDLE)
}

fn guid(g: &efi::Guid) -> *mut efi::Guid {
    ptr::from_ref(g).cast_mut()
}

/// InstallMultipleProtocolInterfaces and its inverse are variadic (UEFI 2.10 §7.3.16,
/// §7.3.17), which r-efi's fixed-arity function types cannot express.
type InstallMultiple = unsafe extern "efiapi" fn(*mut efi::Handle, ...) -> efi::Status;
type UninstallMultiple = unsafe extern "efiapi" fn(efi::Handle, ...) -> efi::Status;

pub fn install(ctx: &Ctx, handle: &mut efi::Handle, g: &efi::Guid, i: *mut c_void) -> efi::Status {
    (ctx.bs.install_protocol_interface)(handle, guid(g), efi::NATIVE_INTERFACE, i)
}

pub fn uninstall(ctx: &Ctx, handle: efi::Handle, g: &efi::Guid, i: *mut c_void) -> efi::Status {
    (ctx.bs.uninstall_protocol_interface)(handle, guid(g), i)
}

fn handle_protocol(ctx: &Ctx, handle: efi::Handle, g: &efi::Guid) -> (efi::Status, *mut c_void) {
    let mut out = ptr::null_mut();
    let status = (ctx.bs.handle_protocol)(handle, guid(g), &mut out);
    (status, out)
}

/// LocateHandle() into a pool buffer: returns (status, buffer, count).
fn locate_handle(
    ctx: &Ctx,
    search: efi::LocateSearchType,
    g: Option<&efi::Guid>,
    key: *mut c_void,
) -> (efi::Status, *mut efi::Handle, usize) {
    let g = g.map_or(ptr::null_mut(), guid);
    let mut size = 0usize;
    let status = (ctx.bs.locate_handle)(search, g, key, &mut size, ptr::null_mut());
    if status != efi::Status::BUFFER_TOO_SMALL {
        return (status, ptr::null_mut(), 0);
    }
    let Some(buf) = ctx.alloc_pool(size) else {
        return (efi::Status::OUT_OF_RESOURCES, ptr::null_mut(), 0);
    };
    let status = (ctx.bs.locate_handle)(search, g, key, &mut size, buf.cast());
    let count = size / size_of::<efi::Handle>();
    (status, buf.cast(), count)
}

fn contains(buf: *const efi::Handle, count: usize, handle: efi::Handle) -> bool {
    if buf.is_null() {
        return false;
    }
    // SAFETY: callers pass a buffer the firmware filled with `count` handles.
    unsafe { core::slice::from_raw_parts(buf, count) }.contains(&handle)
}

static NOTIFY_COUNT: AtomicU32 = AtomicU32::new(0);

extern "efiapi" fn count_notify(_event: efi::Event, _context: *mut c_void) {
    NOTIFY_COUNT.fetch_add(1, Ordering::SeqCst);
}

pub fn run(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let mut h: efi::Handle = ptr::null_mut();
    let status = install(ctx, &mut h, &GUID_A, iface(&IFACE_A));
    if !ctx.ok("protocols.install.new_handle", status) || h.is_null() {
        return;
    }
    let status = install(ctx, &mut h, &GUID_A, iface(&IFACE_A));
    ctx.expect(
        "protocols.install.duplicate",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let mut fresh: efi::Handle = ptr::null_mut();
    let status = (bs.install_protocol_interface)(&mut fresh, guid(&GUID_B), 1, iface(&IFACE_B));
    ctx.expect(
        "protocols.install.bad_interface_type",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );

    let (status, found) = handle_protocol(ctx, h, &GUID_A);
    if ctx.ok("protocols.handle_protocol", status) {
        ctx.check(
            "protocols.handle_protocol.interface",
            found == iface(&IFACE_A),
            format_args!("{found:p}"),
        );
    }
    let (status, _) = handle_protocol(ctx, h, &GUID_B);
    ctx.expect(
        "protocols.handle_protocol.unsupported",
        status,
        &[efi::Status::UNSUPPORTED],
    );
    let (status, _) = handle_protocol(ctx, ptr::null_mut(), &GUID_A);
    ctx.expect(
        "protocols.handle_protocol.null_handle",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let (status, _) = handle_protocol(ctx, bogus_handle(), &GUID_A);
    ctx.expect(
        "protocols.handle_protocol.bad_handle",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = (bs.handle_protocol)(h, guid(&GUID_A), ptr::null_mut());
    ctx.expect(
        "protocols.handle_protocol.null_interface",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );

    locate_checks(ctx, h);
    register_notify_checks(ctx);

    // ReinstallProtocolInterface swaps the interface in place (§7.3.4).
    let status =
        (bs.reinstall_protocol_interface)(h, guid(&GUID_A), iface(&IFACE_A), iface(&IFACE_A2));
    if ctx.ok("protocols.reinstall", status) {
        let (_, found) = handle_protocol(ctx, h, &GUID_A);
        ctx.check(
            "protocols.reinstall.interface",
            found == iface(&IFACE_A2),
            format_args!("{found:p}"),
        );
    }
    let status =
        (bs.reinstall_protocol_interface)(h, guid(&GUID_A), iface(&IFACE_A), iface(&IFACE_A2));
    ctx.expect(
        "protocols.reinstall.wrong_old",
        status,
        &[efi::Status::NOT_FOUND],
    );

    let status = uninstall(ctx, h, &GUID_A, iface(&IFACE_A));
    ctx.expect(
        "protocols.uninstall.wrong_interface",
        status,
        &[efi::Status::NOT_FOUND],
    );
    let status = uninstall(ctx, h, &GUID_A, iface(&IFACE_A2));
    if ctx.ok("protocols.uninstall", status) {
        // Removing the last protocol frees the handle (§7.3.3).
        let (status, _) = handle_protocol(ctx, h, &GUID_A);
        ctx.expect(
            "protocols.uninstall.handle_freed",
            status,
            &[efi::Status::INVALID_PARAMETER],
        );
    }

    multiple_checks(ctx);
    locate_device_path_checks(ctx);
}

fn locate_checks(ctx: &mut Ctx, h: efi::Handle) {
    let bs = ctx.bs;
    let mut size = 0usize;
    let status = (bs.locate_handle)(
        efi::ALL_HANDLES,
        ptr::null_mut(),
        ptr::null_mut(),
        &mut size,
        ptr::null_mut(),
    );
    if ctx.expect(
        "protocols.locate_handle.too_small",
        status,
        &[efi::Status::BUFFER_TOO_SMALL],
    ) {
        ctx.check(
            "protocols.locate_handle.required_size",
            size >= 2 * size_of::<efi::Handle>() && size.is_multiple_of(size_of::<efi::Handle>()),
            format_args!("{size}"),
        );
    }
    let (status, buf, count) = locate_handle(ctx, efi::ALL_HANDLES, None, ptr::null_mut());
    if ctx.ok("protocols.locate_handle.all", status) {
        ctx.check(
            "protocols.locate_handle.all.contents",
            contains(buf, count, h) && contains(buf, count, ctx.image),
            format_args!("{count} handles, ours missing"),
        );
    }
    ctx.free_pool(buf);
    let (status, buf, count) = locate_handle(ctx, efi::BY_PROTOCOL, Some(&GUID_A), ptr::null_mut());
    if ctx.ok("protocols.locate_handle.by_protocol", status) {
        ctx.check(
            "protocols.locate_handle.by_protocol.contents",
            count == 1 && contains(buf, count, h),
            format_args!("{count} handles"),
        );
    }
    ctx.free_pool(buf);
    let (status, buf, _) = locate_handle(ctx, efi::BY_PROTOCOL, Some(&GUID_C), ptr::null_mut());
    ctx.free_pool(buf);
    ctx.expect(
        "protocols.locate_handle.not_found",
        status,
        &[efi::Status::NOT_FOUND],
    );
    let status = (bs.locate_handle)(
        efi::BY_PROTOCOL,
        ptr::null_mut(),
        ptr::null_mut(),
        &mut size,
        ptr::null_mut(),
    );
    ctx.expect(
        "protocols.locate_handle.by_protocol_null_guid",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );

    let mut count = 0usize;
    let mut buf: *mut efi::Handle = ptr::null_mut();
    let status = (bs.locate_handle_buffer)(
        efi::BY_PROTOCOL,
        guid(&GUID_A),
        ptr::null_mut(),
        &mut count,
        &mut buf,
    );
    if ctx.ok("protocols.locate_handle_buffer", status) {
        ctx.check(
            "protocols.locate_handle_buffer.contents",
            count == 1 && contains(buf, count, h),
            format_args!("{count} handles"),
        );
        ctx.free_pool(buf);
    }
    let status = (bs.locate_handle_buffer)(
        efi::BY_PROTOCOL,
        guid(&GUID_C),
        ptr::null_mut(),
        &mut count,
        &mut buf,
    );
    ctx.expect(
        "protocols.locate_handle_buffer.not_found",
        status,
        &[efi::Status::NOT_FOUND],
    );

    let mut found = ptr::null_mut();
    let status = (bs.locate_protocol)(guid(&GUID_A), ptr::null_mut(), &mut found);
    if ctx.ok("protocols.locate_protocol", status) {
        ctx.check(
            "protocols.locate_protocol.interface",
            found == iface(&IFACE_A),
            format_args!("{found:p}"),
        );
    }
    let status = (bs.locate_protocol)(guid(&GUID_C), ptr::null_mut(), &mut found);
    ctx.expect(
        "protocols.locate_protocol.not_found",
        status,
        &[efi::Status::NOT_FOUND],
    );

    let mut guids: *mut *mut efi::Guid = ptr::null_mut();
    let mut count = 0usize;
    let status = (bs.protocols_per_handle)(h, &mut guids, &mut count);
    if ctx.ok("protocols.protocols_per_handle", status) && !guids.is_null() {
        // SAFETY: the firmware returned an array of `count` GUID pointers into its database.
        let list = unsafe { core::slice::from_raw_parts(guids, count) };
        // SAFETY: each entry points at a GUID owned by the handle database.
        let has_a = list
            .iter()
            .any(|&g| !g.is_null() && unsafe { *g } == GUID_A);
        ctx.check(
            "protocols.protocols_per_handle.contents",
            count == 1 && has_a,
            format_args!("{count} protocols"),
        );
        ctx.free_pool(guids);
    }
    let status = (bs.protocols_per_handle)(bogus_handle(), &mut guids, &mut count);
    ctx.expect(
        "protocols.protocols_per_handle.bad_handle",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
}

/// RegisterProtocolNotify and LocateHandle(ByRegisterNotify) (§7.3.5, §7.3.6).
fn register_notify_checks(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let mut event: efi::Event = ptr::null_mut();
    let status = (bs.create_event)(
        efi::EVT_NOTIFY_SIGNAL,
        efi::TPL_CALLBACK,
        Some(count_notify),
        ptr::null_mut(),
        &mut event,
    );
    if !ctx.ok("protocols.register_notify.event", status) {
        return;
    }
    let mut registration: *mut c_void = ptr::null_mut();
    let status = (bs.register_protocol_notify)(guid(&GUID_B), event, &mut registration);
    if !ctx.ok("protocols.register_protocol_notify", status) {
        let _ = (bs.close_event)(event);
        return;
    }
    NOTIFY_COUNT.store(0, Ordering::SeqCst);
    let mut h2: efi::Handle = ptr::null_mut();
    let status = install(ctx, &mut h2, &GUID_B, iface(&IFACE_B));
    if ctx.ok("protocols.register_notify.install", status) {
        // The notification is queued at TPL_CALLBACK and runs once the install returns
        // to TPL_APPLICATION.
        ctx.check(
            "protocols.register_notify.signalled",
            NOTIFY_COUNT.load(Ordering::SeqCst) >= 1,
            format_args!("notify function not run"),
        );
        let mut found: efi::Handle = ptr::null_mut();
        let mut size = size_of::<efi::Handle>();
        let status = (bs.locate_handle)(
            efi::BY_REGISTER_NOTIFY,
            ptr::null_mut(),
            registration,
            &mut size,
            &mut found,
        );
        if ctx.ok("protocols.locate_handle.by_register_notify", status) {
            ctx.check(
                "protocols.locate_handle.by_register_notify.handle",
                found == h2,
                format_args!("{found:p} != {h2:p}"),
            );
        }
        // Each registration reports a new handle only once.
        let status = (bs.locate_handle)(
            efi::BY_REGISTER_NOTIFY,
            ptr::null_mut(),
            registration,
            &mut size,
            &mut found,
        );
        ctx.expect(
            "protocols.locate_handle.by_register_notify.drained",
            status,
            &[efi::Status::NOT_FOUND],
        );
        let _ = uninstall(ctx, h2, &GUID_B, iface(&IFACE_B));
    }
    ctx.ok(
        "protocols.register_notify.close_event",
        (bs.close_event)(event),
    );
}

/// Install/UninstallMultipleProtocolInterfaces, including their all-or-nothing behaviour.
fn multiple_checks(ctx: &mut Ctx) {
    // SAFETY: the firmware implements these services with the variadic signature of
    // UEFI 2.10 §7.3.16/§7.3.17; efiapi is the same calling convention with or without
    // varargs, so only the Rust type changes.
    let install_multiple = unsafe {
        core::mem::transmute::<efi::BootInstallMultipleProtocolInterfaces, InstallMultiple>(
            ctx.bs.install_multiple_protocol_interfaces,
        )
    };
    // SAFETY: as above.
    let uninstall_multiple = unsafe {
        core::mem::transmute::<efi::BootUninstallMultipleProtocolInterfaces, UninstallMultiple>(
            ctx.bs.uninstall_multiple_protocol_interfaces,
        )
    };
    let end: *mut c_void = ptr::null_mut();

    let mut m: efi::Handle = ptr::null_mut();
    // SAFETY: GUID/interface pairs terminated by NULL, as §7.3.16 requires.
    let status = unsafe {
        install_multiple(
            &mut m,
            guid(&GUID_A),
            iface(&IFACE_A),
            guid(&GUID_B),
            iface(&IFACE_B),
            end,
        )
    };
    if !ctx.ok("protocols.install_multiple", status) {
        return;
    }
    let (a, _) = handle_protocol(ctx, m, &GUID_A);
    let (b, _) = handle_protocol(ctx, m, &GUID_B);
    ctx.check(
        "protocols.install_multiple.installed",
        a == efi::Status::SUCCESS && b == efi::Status::SUCCESS,
        format_args!("A: {}, B: {}", St(a), St(b)),
    );

    // GUID_A already exists: nothing may be installed (§7.3.16).
    // SAFETY: NULL-terminated GUID/interface pairs.
    let status = unsafe {
        install_multiple(
            &mut m,
            guid(&GUID_C),
            iface(&IFACE_C),
            guid(&GUID_A),
            iface(&IFACE_A),
            end,
        )
    };
    ctx.expect(
        "protocols.install_multiple.duplicate",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let (c, _) = handle_protocol(ctx, m, &GUID_C);
    ctx.expect(
        "protocols.install_multiple.atomic",
        c,
        &[efi::Status::UNSUPPORTED],
    );

    // GUID_C is not installed: nothing may be removed (§7.3.17).
    // SAFETY: NULL-terminated GUID/interface pairs.
    let status = unsafe {
        uninstall_multiple(
            m,
            guid(&GUID_A),
            iface(&IFACE_A),
            guid(&GUID_C),
            iface(&IFACE_C),
            end,
        )
    };
    ctx.expect(
        "protocols.uninstall_multiple.missing",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let (a, _) = handle_protocol(ctx, m, &GUID_A);
    ctx.expect(
        "protocols.uninstall_multiple.atomic",
        a,
        &[efi::Status::SUCCESS],
    );

    // SAFETY: NULL-terminated GUID/interface pairs.
    let status = unsafe {
        uninstall_multiple(
            m,
            guid(&GUID_A),
            iface(&IFACE_A),
            guid(&GUID_B),
            iface(&IFACE_B),
            end,
        )
    };
    ctx.ok("protocols.uninstall_multiple", status);
}

/// LocateDevicePath() on the loaded image's full device path finds the file system
/// handle and leaves the file path node (§7.3.7).
fn locate_device_path_checks(ctx: &mut Ctx) {
    let Some(image) =
        ctx.handle_protocol::<loaded_image::Protocol>(ctx.image, &loaded_image::PROTOCOL_GUID)
    else {
        ctx.fail(
            "protocols.locate_device_path",
            format_args!("no LoadedImage"),
        );
        return;
    };
    // SAFETY: HandleProtocol returned the image's live LoadedImage protocol.
    let device = unsafe { (*image).device_handle };
    let Some(full) = ctx.handle_protocol::<device_path::Protocol>(
        ctx.image,
        &loaded_image_device_path::PROTOCOL_GUID,
    ) else {
        ctx.fail(
            "protocols.locate_device_path",
            format_args!("no LoadedImageDevicePath on the image handle"),
        );
        return;
    };
    let mut remaining = full;
    let mut found: efi::Handle = ptr::null_mut();
    let status = (ctx.bs.locate_device_path)(
        guid(&simple_file_system::PROTOCOL_GUID),
        &mut remaining,
        &mut found,
    );
    if ctx.ok("protocols.locate_device_path", status) {
        ctx.check(
            "protocols.locate_device_path.handle",
            found == device,
            format_args!("{found:p} != device {device:p}"),
        );
        // SAFETY: on success `remaining` points into the same device path at a node header.
        let (kind, sub) = unsafe { ((*remaining).r#type, (*remaining).sub_type) };
        ctx.check(
            "protocols.locate_device_path.remaining",
            kind == device_path::TYPE_MEDIA && sub == device_path::Media::SUBTYPE_FILE_PATH,
            format_args!("remaining node {kind:#x}/{sub:#x}"),
        );
    }
    let status = (ctx.bs.locate_device_path)(
        guid(&simple_file_system::PROTOCOL_GUID),
        ptr::null_mut(),
        &mut found,
    );
    ctx.expect(
        "protocols.locate_device_path.null_path",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
}

pub fn run_open_protocol(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let agent1 = ctx.image;
    let mut controller: efi::Handle = ptr::null_mut();
    let mut agent2: efi::Handle = ptr::null_mut();
    if !ctx.ok(
        "open_protocol.setup",
        install(ctx, &mut controller, &GUID_A, iface(&IFACE_A)),
    ) || !ctx.ok(
        "open_protocol.setup_agent",
        install(ctx, &mut agent2, &GUID_C, iface(&IFACE_C)),
    ) {
        return;
    }
    let open = |agent: efi::Handle, attrs: u32| -> (efi::Status, *mut c_void) {
        let mut out = ptr::null_mut();
        let status = (bs.open_protocol)(
            controller,
            guid(&GUID_A),
            &mut out,
            agent,
            controller,
            attrs,
        );
        (status, out)
    };
    let close =
        |agent: efi::Handle| (bs.close_protocol)(controller, guid(&GUID_A), agent, controller);

    for (name, iface_name, attrs) in [
        (
            "open_protocol.get_protocol",
            "open_protocol.get_protocol.interface",
            efi::OPEN_PROTOCOL_GET_PROTOCOL,
        ),
        (
            "open_protocol.by_handle_protocol",
            "open_protocol.by_handle_protocol.interface",
            efi::OPEN_PROTOCOL_BY_HANDLE_PROTOCOL,
        ),
    ] {
        let (status, out) = open(agent1, attrs);
        if ctx.ok(name, status) {
            ctx.check(iface_name, out == iface(&IFACE_A), format_args!("{out:p}"));
        }
    }
    let status = (bs.open_protocol)(
        controller,
        guid(&GUID_A),
        ptr::null_mut(),
        agent1,
        controller,
        efi::OPEN_PROTOCOL_TEST_PROTOCOL,
    );
    ctx.ok("open_protocol.test_protocol", status);
    let mut out = ptr::null_mut();
    let status = (bs.open_protocol)(
        controller,
        guid(&GUID_B),
        &mut out,
        agent1,
        controller,
        efi::OPEN_PROTOCOL_TEST_PROTOCOL,
    );
    ctx.expect(
        "open_protocol.test_protocol.unsupported",
        status,
        &[efi::Status::UNSUPPORTED],
    );
    let (status, _) = open(agent1, 0);
    ctx.expect(
        "open_protocol.bad_attributes",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = (bs.open_protocol)(
        controller,
        guid(&GUID_A),
        ptr::null_mut(),
        agent1,
        controller,
        efi::OPEN_PROTOCOL_GET_PROTOCOL,
    );
    ctx.expect(
        "open_protocol.null_interface",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    for (name, handle) in [
        ("open_protocol.null_handle", ptr::null_mut()),
        ("open_protocol.bad_handle", bogus_handle()),
    ] {
        let status = (bs.open_protocol)(
            handle,
            guid(&GUID_A),
            &mut out,
            agent1,
            controller,
            efi::OPEN_PROTOCOL_GET_PROTOCOL,
        );
        ctx.expect(name, status, &[efi::Status::INVALID_PARAMETER]);
    }

    // BY_DRIVER: one driver at a time; the same driver again gets ALREADY_STARTED (§7.3.9).
    let (status, _) = open(agent1, efi::OPEN_PROTOCOL_BY_DRIVER);
    ctx.ok("open_protocol.by_driver", status);
    let (status, out) = open(agent1, efi::OPEN_PROTOCOL_BY_DRIVER);
    if ctx.expect(
        "open_protocol.by_driver.again",
        status,
        &[efi::Status::ALREADY_STARTED],
    ) {
        ctx.check(
            "open_protocol.by_driver.again.interface",
            out == iface(&IFACE_A),
            format_args!("{out:p}"),
        );
    }
    let (status, _) = open(agent2, efi::OPEN_PROTOCOL_BY_DRIVER);
    ctx.expect(
        "open_protocol.by_driver.other_agent",
        status,
        &[efi::Status::ACCESS_DENIED],
    );
    open_information_checks(ctx, controller, agent1);

    // A driver still holds the protocol: it cannot be uninstalled (§7.3.3).
    let status = uninstall(ctx, controller, &GUID_A, iface(&IFACE_A));
    ctx.expect(
        "open_protocol.uninstall_while_open",
        status,
        &[efi::Status::ACCESS_DENIED],
    );

    ctx.ok("open_protocol.close", close(agent1));
    ctx.expect(
        "open_protocol.close.again",
        close(agent1),
        &[efi::Status::NOT_FOUND],
    );

    // EXCLUSIVE excludes every other BY_DRIVER/EXCLUSIVE opener, not plain getters.
    let (status, _) = open(agent1, efi::OPEN_PROTOCOL_EXCLUSIVE);
    ctx.ok("open_protocol.exclusive", status);
    let (status, _) = open(agent2, efi::OPEN_PROTOCOL_EXCLUSIVE);
    ctx.expect(
        "open_protocol.exclusive.other_exclusive",
        status,
        &[efi::Status::ACCESS_DENIED],
    );
    let (status, _) = open(agent2, efi::OPEN_PROTOCOL_BY_DRIVER);
    ctx.expect(
        "open_protocol.exclusive.other_by_driver",
        status,
        &[efi::Status::ACCESS_DENIED],
    );
    let (status, _) = open(agent2, efi::OPEN_PROTOCOL_GET_PROTOCOL);
    ctx.ok("open_protocol.exclusive.other_get", status);
    ctx.ok("open_protocol.exclusive.close", close(agent1));
    ctx.ok("open_protocol.close.get", close(agent2));

    ctx.ok(
        "open_protocol.cleanup",
        uninstall(ctx, controller, &GUID_A, iface(&IFACE_A)),
    );
    let _ = uninstall(ctx, agent2, &GUID_C, iface(&IFACE_C));
}

fn open_information_checks(ctx: &mut Ctx, controller: efi::Handle, driver: efi::Handle) {
    let mut entries: *mut efi::OpenProtocolInformationEntry = ptr::null_mut();
    let mut count = 0usize;
    let status =
        (ctx.bs.open_protocol_information)(controller, guid(&GUID_A), &mut entries, &mut count);
    if !ctx.ok("open_protocol.information", status) || entries.is_null() {
        return;
    }
    // SAFETY: the firmware returned a pool array of `count` entries.
    let list = unsafe { core::slice::from_raw_parts(entries, count) };
    let by_driver = list
        .iter()
        .find(|e| e.agent_handle == driver && e.attributes & efi::OPEN_PROTOCOL_BY_DRIVER != 0);
    ctx.check(
        "open_protocol.information.by_driver",
        by_driver.is_some_and(|e| e.controller_handle == controller && e.open_count == 1),
        format_args!("{count} entries, no BY_DRIVER entry with open count 1"),
    );
    ctx.free_pool(entries);
}

/// ConnectController/DisconnectController on a handle no driver manages (§7.3.12, §7.3.13).
pub fn run_connect(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let mut h: efi::Handle = ptr::null_mut();
    if !ctx.ok(
        "connect.setup",
        install(ctx, &mut h, &GUID_A, iface(&IFACE_A)),
    ) {
        return;
    }
    let status = (bs.connect_controller)(h, ptr::null_mut(), ptr::null_mut(), efi::Boolean::FALSE);
    ctx.expect("connect.no_driver", status, &[efi::Status::NOT_FOUND]);
    let status = (bs.connect_controller)(
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
        efi::Boolean::FALSE,
    );
    ctx.expect(
        "connect.null_handle",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = (bs.disconnect_controller)(h, ptr::null_mut(), ptr::null_mut());
    ctx.ok("disconnect.unmanaged", status);
    let status = (bs.disconnect_controller)(ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    ctx.expect(
        "disconnect.null_handle",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = (bs.disconnect_controller)(h, bogus_handle(), ptr::null_mut());
    ctx.expect(
        "disconnect.bad_driver",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let _ = uninstall(ctx, h, &GUID_A, iface(&IFACE_A));
}

/// The boot services and binding handle of the test driver below, for its
/// entry points (the firmware calls them with nothing but their arguments).
static DRIVER_BS: AtomicPtr<efi::BootServices> = AtomicPtr::new(ptr::null_mut());
static DRIVER_HANDLE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
/// How many times the test driver's Start and Stop ran.
static DRIVER_STARTS: AtomicU32 = AtomicU32::new(0);
static DRIVER_STOPS: AtomicU32 = AtomicU32::new(0);

fn driver_bs() -> &'static efi::BootServices {
    // SAFETY: set from the firmware's boot services table before the driver
    // is installed; the table stays valid until ExitBootServices.
    unsafe { &*DRIVER_BS.load(Ordering::SeqCst) }
}

/// A device driver (UEFI 2.10 §11.1): it takes controllers carrying
/// GUID_A (opened BY_DRIVER) and installs GUID_B on them.
extern "efiapi" fn test_driver_supported(
    _this: *mut driver_binding::Protocol,
    controller: efi::Handle,
    _remaining: *mut device_path::Protocol,
) -> efi::Status {
    let bs = driver_bs();
    let me = DRIVER_HANDLE.load(Ordering::SeqCst);
    let mut out = ptr::null_mut();
    let status = (bs.open_protocol)(
        controller,
        guid(&GUID_A),
        &mut out,
        me,
        controller,
        efi::OPEN_PROTOCOL_BY_DRIVER,
    );
    if status.is_error() {
        return status;
    }
    (bs.close_protocol)(controller, guid(&GUID_A), me, controller)
}

extern "efiapi" fn test_driver_start(
    _this: *mut driver_binding::Protocol,
    controller: efi::Handle,
    _remaining: *mut device_path::Protocol,
) -> efi::Status {
    let bs = driver_bs();
    let me = DRIVER_HANDLE.load(Ordering::SeqCst);
    let mut out = ptr::null_mut();
    let status = (bs.open_protocol)(
        controller,
        guid(&GUID_A),
        &mut out,
        me,
        controller,
        efi::OPEN_PROTOCOL_BY_DRIVER,
    );
    if status.is_error() {
        return status;
    }
    let mut handle = controller;
    let status = (bs.install_protocol_interface)(
        &mut handle,
        guid(&GUID_B),
        efi::NATIVE_INTERFACE,
        iface(&IFACE_B),
    );
    if status.is_error() {
        (bs.close_protocol)(controller, guid(&GUID_A), me, controller);
        return status;
    }
    DRIVER_STARTS.fetch_add(1, Ordering::SeqCst);
    efi::Status::SUCCESS
}

extern "efiapi" fn test_driver_stop(
    _this: *mut driver_binding::Protocol,
    controller: efi::Handle,
    children: usize,
    _child_buffer: *mut efi::Handle,
) -> efi::Status {
    if children != 0 {
        // A device driver has no children.
        return efi::Status::DEVICE_ERROR;
    }
    let bs = driver_bs();
    let me = DRIVER_HANDLE.load(Ordering::SeqCst);
    let status = (bs.uninstall_protocol_interface)(controller, guid(&GUID_B), iface(&IFACE_B));
    if status.is_error() {
        return status;
    }
    DRIVER_STOPS.fetch_add(1, Ordering::SeqCst);
    (bs.close_protocol)(controller, guid(&GUID_A), me, controller)
}

/// ConnectController/DisconnectController with a driver of our own
/// (§7.3.12, §7.3.13), and UninstallProtocolInterface stopping the driver
/// that holds the interface (§7.3.3).
pub fn run_driver_model(ctx: &mut Ctx) {
    let bs = ctx.bs;
    DRIVER_BS.store(ptr::from_ref(bs).cast_mut(), Ordering::SeqCst);
    // The driver's handle exists before its binding, which names it.
    let mut driver: efi::Handle = ptr::null_mut();
    if !ctx.ok(
        "driver_model.setup.handle",
        install(ctx, &mut driver, &GUID_C, iface(&IFACE_C)),
    ) {
        return;
    }
    // The binding lives on this stack frame: it is uninstalled before return.
    let mut binding = driver_binding::Protocol {
        supported: test_driver_supported,
        start: test_driver_start,
        stop: test_driver_stop,
        version: 0x10,
        image_handle: ctx.image,
        driver_binding_handle: driver,
    };
    let binding_ptr: *mut c_void = ptr::from_mut(&mut binding).cast();
    let status = (bs.install_protocol_interface)(
        &mut driver,
        guid(&driver_binding::PROTOCOL_GUID),
        efi::NATIVE_INTERFACE,
        binding_ptr,
    );
    if !ctx.ok("driver_model.setup.driver", status) {
        return;
    }
    DRIVER_HANDLE.store(driver, Ordering::SeqCst);
    let mut controller: efi::Handle = ptr::null_mut();
    if !ctx.ok(
        "driver_model.setup.controller",
        install(ctx, &mut controller, &GUID_A, iface(&IFACE_A)),
    ) {
        return;
    }
    let has_b = |ctx: &Ctx| handle_protocol(ctx, controller, &GUID_B).0 == efi::Status::SUCCESS;

    let status = (bs.connect_controller)(
        controller,
        ptr::null_mut(),
        ptr::null_mut(),
        efi::Boolean::FALSE,
    );
    ctx.ok("driver_model.connect", status);
    ctx.check(
        "driver_model.connect.started",
        has_b(ctx) && DRIVER_STARTS.load(Ordering::SeqCst) == 1,
        format_args!("{} starts", DRIVER_STARTS.load(Ordering::SeqCst)),
    );
    // Connected already: nothing more starts (edk2 reports NOT_FOUND here,
    // the firmware SUCCESS: the controller is connected).
    let status = (bs.connect_controller)(
        controller,
        ptr::null_mut(),
        ptr::null_mut(),
        efi::Boolean::TRUE,
    );
    ctx.expect(
        "driver_model.connect.again",
        status,
        &[efi::Status::SUCCESS, efi::Status::NOT_FOUND],
    );
    ctx.check(
        "driver_model.connect.again.no_start",
        DRIVER_STARTS.load(Ordering::SeqCst) == 1,
        format_args!("{} starts", DRIVER_STARTS.load(Ordering::SeqCst)),
    );

    let status = (bs.disconnect_controller)(controller, ptr::null_mut(), ptr::null_mut());
    ctx.ok("driver_model.disconnect", status);
    ctx.check(
        "driver_model.disconnect.stopped",
        !has_b(ctx) && DRIVER_STOPS.load(Ordering::SeqCst) == 1,
        format_args!("{} stops", DRIVER_STOPS.load(Ordering::SeqCst)),
    );

    // The driver named: connect it first, then disconnect just it.
    let mut list = [driver, ptr::null_mut()];
    let status = (bs.connect_controller)(
        controller,
        list.as_mut_ptr(),
        ptr::null_mut(),
        efi::Boolean::FALSE,
    );
    ctx.ok("driver_model.connect.named", status);
    let status = (bs.disconnect_controller)(controller, driver, ptr::null_mut());
    ctx.ok("driver_model.disconnect.named", status);
    ctx.check(
        "driver_model.disconnect.named.stopped",
        !has_b(ctx) && DRIVER_STOPS.load(Ordering::SeqCst) == 2,
        format_args!("{} stops", DRIVER_STOPS.load(Ordering::SeqCst)),
    );

    // Uninstalling the interface the driver holds BY_DRIVER stops it first.
    let status = (bs.connect_controller)(
        controller,
        ptr::null_mut(),
        ptr::null_mut(),
        efi::Boolean::FALSE,
    );
    ctx.ok("driver_model.connect.third", status);
    let status = uninstall(ctx, controller, &GUID_A, iface(&IFACE_A));
    ctx.ok("driver_model.uninstall_disconnects", status);
    ctx.check(
        "driver_model.uninstall_disconnects.stopped",
        DRIVER_STOPS.load(Ordering::SeqCst) == 3,
        format_args!("{} stops", DRIVER_STOPS.load(Ordering::SeqCst)),
    );
    if has_b(ctx) {
        let _ = uninstall(ctx, controller, &GUID_B, iface(&IFACE_B));
    }
    let status = uninstall(ctx, driver, &driver_binding::PROTOCOL_GUID, binding_ptr);
    ctx.ok("driver_model.cleanup", status);
    let _ = uninstall(ctx, driver, &GUID_C, iface(&IFACE_C));
}
