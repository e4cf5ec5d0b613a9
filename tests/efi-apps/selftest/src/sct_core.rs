//! Core rules the UEFI SCT (edk2-test) checks and vmfw once broke: the OpenProtocol
//! attribute table and open list (UEFI 2.10 §7.3.9, §7.3.10), ReinstallProtocolInterface
//! under a child controller (§7.3.4), LocateDevicePath without a match (§7.3.14),
//! event groups signalled by InstallConfigurationTable and by memory map changes
//! (§7.1.2, §7.3.15), CloseEvent and RegisterProtocolNotify (§7.1.3), StartImage's exit
//! data (§7.4.2) and the HII package list of a loaded image (§7.4.1).

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use r_efi::efi;
use r_efi::protocols::{device_path, hii_package_list};

use crate::ctx::{Ctx, St};
use crate::images;

/// Test-only GUIDs nobody else installs: a protocol, one never installed, and an event
/// group / configuration table.
const PROTOCOL: efi::Guid = efi::Guid::from_fields(
    0x5c7c0e00,
    0x0001,
    0x4a5b,
    0x8c,
    0x9d,
    &[0, 0, 0, 0, 0x16, 1],
);
const NEVER_INSTALLED: efi::Guid = efi::Guid::from_fields(
    0x5c7c0e00,
    0x0002,
    0x4a5b,
    0x8c,
    0x9d,
    &[0, 0, 0, 0, 0x16, 2],
);
const TABLE_GROUP: efi::Guid = efi::Guid::from_fields(
    0x5c7c0e00,
    0x0003,
    0x4a5b,
    0x8c,
    0x9d,
    &[0, 0, 0, 0, 0x16, 3],
);
/// The package list GUID the synthetic image carries.
const PACKAGE_LIST: efi::Guid = efi::Guid::from_fields(
    0x5c7c0e00,
    0x0004,
    0x4a5b,
    0x8c,
    0x9d,
    &[0, 0, 0, 0, 0x16, 4],
);

static IFACE_OLD: u64 = 0x01d;
static IFACE_NEW: u64 = 0x0e3;
static TABLE: u64 = 0x7ab1e;

fn iface(value: &'static u64) -> *mut c_void {
    ptr::from_ref(value).cast_mut().cast()
}

fn guid(g: &efi::Guid) -> *mut efi::Guid {
    ptr::from_ref(g).cast_mut()
}

pub fn run(ctx: &mut Ctx) {
    open_list_checks(ctx);
    exclusive_checks(ctx);
    reinstall_checks(ctx);
    locate_device_path_checks(ctx);
    group_checks(ctx);
    close_event_checks(ctx);
    start_image_exit_data_checks(ctx);
    hii_checks(ctx);
}

/// A fresh handle carrying PROTOCOL (IFACE_OLD), or None (reported).
fn protocol_handle(ctx: &mut Ctx, name: &str) -> Option<efi::Handle> {
    let mut handle: efi::Handle = ptr::null_mut();
    let status = (ctx.bs.install_protocol_interface)(
        &mut handle,
        guid(&PROTOCOL),
        efi::NATIVE_INTERFACE,
        iface(&IFACE_OLD),
    );
    ctx.ok(name, status).then_some(handle)
}

fn remove(ctx: &Ctx, handle: efi::Handle, interface: *mut c_void) {
    let _ = (ctx.bs.uninstall_protocol_interface)(handle, guid(&PROTOCOL), interface);
}

fn open(
    ctx: &Ctx,
    handle: efi::Handle,
    agent: efi::Handle,
    controller: efi::Handle,
    attributes: u32,
) -> efi::Status {
    let mut interface: *mut c_void = ptr::null_mut();
    (ctx.bs.open_protocol)(
        handle,
        guid(&PROTOCOL),
        &mut interface,
        agent,
        controller,
        attributes,
    )
}

/// The open list of PROTOCOL on `handle` as (attributes, open count) pairs.
fn open_list(ctx: &Ctx, handle: efi::Handle) -> Result<([(u32, u32); 4], usize), efi::Status> {
    let mut entries: *mut efi::OpenProtocolInformationEntry = ptr::null_mut();
    let mut count = 0usize;
    let status =
        (ctx.bs.open_protocol_information)(handle, guid(&PROTOCOL), &mut entries, &mut count);
    if status != efi::Status::SUCCESS {
        return Err(status);
    }
    let mut list = [(0, 0); 4];
    if !entries.is_null() {
        // SAFETY: the firmware returned a pool array of `count` entries.
        let all = unsafe { core::slice::from_raw_parts(entries, count) };
        for (slot, entry) in list.iter_mut().zip(all) {
            *slot = (entry.attributes, entry.open_count);
        }
    }
    ctx.free_pool(entries);
    Ok((list, count))
}

/// §7.3.9/§7.3.10: a TEST_PROTOCOL open goes on the open list like any other, and
/// CloseProtocol removes it (SCT ProtocolHandlerBBTestFunction_3.c, CloseProtocol and
/// OpenProtocolInformation checkpoints).
fn open_list_checks(ctx: &mut Ctx) {
    let Some(handle) = protocol_handle(ctx, "sct_core.open_list.install") else {
        return;
    };
    let image = ctx.image;
    let status = open(
        ctx,
        handle,
        image,
        ptr::null_mut(),
        efi::OPEN_PROTOCOL_TEST_PROTOCOL,
    );
    ctx.ok("sct_core.open_list.test_protocol.open", status);
    let list = open_list(ctx, handle);
    ctx.check(
        "sct_core.open_list.test_protocol.recorded",
        list.is_ok_and(|(l, n)| n == 1 && l[0] == (efi::OPEN_PROTOCOL_TEST_PROTOCOL, 1)),
        format_args!("{list:?}, want one TEST_PROTOCOL entry"),
    );
    let status = (ctx.bs.close_protocol)(handle, guid(&PROTOCOL), image, ptr::null_mut());
    ctx.ok("sct_core.open_list.test_protocol.close", status);
    let list = open_list(ctx, handle);
    ctx.check(
        "sct_core.open_list.test_protocol.closed",
        list.is_ok_and(|(_, n)| n == 0),
        format_args!("{list:?}, want an empty list"),
    );
    remove(ctx, handle, iface(&IFACE_OLD));
}

/// §7.3.9's attribute table: EFI_ALREADY_STARTED only answers a BY_DRIVER request the
/// agent already holds; a second EXCLUSIVE open is EFI_ACCESS_DENIED even for the same
/// agent (SCT ProtocolHandlerBBTestFunction_3.c, OpenProtocolInterfaceTest111/333).
fn exclusive_checks(ctx: &mut Ctx) {
    let Some(handle) = protocol_handle(ctx, "sct_core.exclusive.install") else {
        return;
    };
    let Some(controller) = protocol_handle(ctx, "sct_core.exclusive.controller") else {
        remove(ctx, handle, iface(&IFACE_OLD));
        return;
    };
    let image = ctx.image;
    let exclusive = efi::OPEN_PROTOCOL_EXCLUSIVE;
    if ctx.ok(
        "sct_core.exclusive.first",
        open(ctx, handle, image, controller, exclusive),
    ) {
        ctx.expect(
            "sct_core.exclusive.again_same_agent",
            open(ctx, handle, image, controller, exclusive),
            &[efi::Status::ACCESS_DENIED],
        );
        let _ = (ctx.bs.close_protocol)(handle, guid(&PROTOCOL), image, controller);
    }
    let both = efi::OPEN_PROTOCOL_BY_DRIVER | efi::OPEN_PROTOCOL_EXCLUSIVE;
    if ctx.ok(
        "sct_core.exclusive.by_driver_first",
        open(ctx, handle, image, controller, both),
    ) {
        ctx.expect(
            "sct_core.exclusive.by_driver_again",
            open(ctx, handle, image, controller, both),
            &[efi::Status::ALREADY_STARTED],
        );
        ctx.expect(
            "sct_core.exclusive.exclusive_over_by_driver_exclusive",
            open(ctx, handle, image, controller, exclusive),
            &[efi::Status::ACCESS_DENIED],
        );
        let _ = (ctx.bs.close_protocol)(handle, guid(&PROTOCOL), image, controller);
    }
    remove(ctx, handle, iface(&IFACE_OLD));
    remove(ctx, controller, iface(&IFACE_OLD));
}

/// §7.3.4: an interface opened BY_CHILD_CONTROLLER cannot be reinstalled; it stays as it
/// was, and can be once the open is closed (SCT ProtocolHandlerBBTestFunction_2.c,
/// ReinstallProtocolInterface InterfaceTestCheckpoint6).
fn reinstall_checks(ctx: &mut Ctx) {
    let Some(handle) = protocol_handle(ctx, "sct_core.reinstall.install") else {
        return;
    };
    let Some(child) = protocol_handle(ctx, "sct_core.reinstall.child") else {
        remove(ctx, handle, iface(&IFACE_OLD));
        return;
    };
    let image = ctx.image;
    let reinstall = |ctx: &Ctx| {
        (ctx.bs.reinstall_protocol_interface)(
            handle,
            guid(&PROTOCOL),
            iface(&IFACE_OLD),
            iface(&IFACE_NEW),
        )
    };
    let mut current = iface(&IFACE_OLD);
    let by_child = efi::OPEN_PROTOCOL_BY_CHILD_CONTROLLER;
    if ctx.ok(
        "sct_core.reinstall.open_by_child",
        open(ctx, handle, image, child, by_child),
    ) {
        let status = reinstall(ctx);
        if status == efi::Status::SUCCESS {
            current = iface(&IFACE_NEW);
        }
        ctx.expect(
            "sct_core.reinstall.by_child_denied",
            status,
            &[efi::Status::ACCESS_DENIED],
        );
        let kept = ctx.handle_protocol::<c_void>(handle, &PROTOCOL);
        ctx.check(
            "sct_core.reinstall.by_child_kept",
            kept == Some(iface(&IFACE_OLD)),
            format_args!("{kept:?}"),
        );
        let _ = (ctx.bs.close_protocol)(handle, guid(&PROTOCOL), image, child);
        if current == iface(&IFACE_OLD) {
            let status = reinstall(ctx);
            if ctx.ok("sct_core.reinstall.after_close", status) {
                current = iface(&IFACE_NEW);
            }
        }
    }
    remove(ctx, handle, current);
    remove(ctx, child, iface(&IFACE_OLD));
}

/// §7.3.14: with no handle to match, LocateDevicePath is EFI_NOT_FOUND, whether or not
/// Device is NULL (SCT ProtocolHandlerBBTestConformance.c, LocateDevicePath checkpoint 5).
fn locate_device_path_checks(ctx: &mut Ctx) {
    // A vendor hardware node (GUID PROTOCOL) and the end node.
    let mut path = [0u8; 24];
    path[..4].copy_from_slice(&[device_path::TYPE_HARDWARE, 4, 20, 0]);
    path[4..20].copy_from_slice(PROTOCOL.as_bytes());
    path[20..].copy_from_slice(&[device_path::TYPE_END, 0xff, 4, 0]);
    let start = path.as_mut_ptr().cast::<device_path::Protocol>();
    let mut cursor = start;
    let mut device: efi::Handle = ptr::null_mut();
    let status = (ctx.bs.locate_device_path)(guid(&NEVER_INSTALLED), &mut cursor, &mut device);
    ctx.expect(
        "sct_core.locate_device_path.no_match",
        status,
        &[efi::Status::NOT_FOUND],
    );
    let mut cursor = start;
    let status = (ctx.bs.locate_device_path)(guid(&NEVER_INSTALLED), &mut cursor, ptr::null_mut());
    ctx.expect(
        "sct_core.locate_device_path.no_match_null_device",
        status,
        &[efi::Status::NOT_FOUND],
    );
}

/// Notification log of the group checks: (context, TPL seen) in call order.
static LOG: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];
static LOGGED: AtomicUsize = AtomicUsize::new(0);
static NOTIFY_BS: AtomicUsize = AtomicUsize::new(0);

/// Records its context and the TPL it runs at (found by raising to HIGH_LEVEL and
/// reading back the previous level, §7.1.8).
extern "efiapi" fn logging_notify(_event: efi::Event, context: *mut c_void) {
    let bs = NOTIFY_BS.load(Ordering::SeqCst) as *const efi::BootServices;
    // SAFETY: `run` stored the live boot services table before creating the events.
    let bs = unsafe { &*bs };
    let tpl = (bs.raise_tpl)(efi::TPL_HIGH_LEVEL);
    (bs.restore_tpl)(tpl);
    let at = LOGGED.fetch_add(2, Ordering::SeqCst);
    if at + 1 < LOG.len() {
        LOG[at].store(context as usize, Ordering::SeqCst);
        LOG[at + 1].store(tpl, Ordering::SeqCst);
    }
}

fn logged() -> [usize; 8] {
    let mut out = [0; 8];
    let n = LOGGED.load(Ordering::SeqCst).min(LOG.len());
    for (slot, entry) in out.iter_mut().zip(&LOG[..n]) {
        *slot = entry.load(Ordering::SeqCst);
    }
    out
}

/// Three members of `group` (two at TPL_CALLBACK, one at TPL_NOTIFY), `trigger` run at
/// TPL_NOTIFY: nothing may run before RestoreTPL, then the NOTIFY member first and the
/// CALLBACK members after (SCT EventTimerTaskPriorityServicesBBTestCreateEventEx.c,
/// Func_Sub2 and Func_Sub3).
fn group_order_check(ctx: &mut Ctx, name: &str, group: &efi::Guid, trigger: impl FnOnce(&Ctx)) {
    NOTIFY_BS.store(ptr::from_ref(ctx.bs) as usize, Ordering::SeqCst);
    let mut events = [ptr::null_mut(); 3];
    let tpls = [efi::TPL_CALLBACK, efi::TPL_CALLBACK, efi::TPL_NOTIFY];
    for (index, (event, tpl)) in events.iter_mut().zip(tpls).enumerate() {
        let status = (ctx.bs.create_event_ex)(
            efi::EVT_NOTIFY_SIGNAL,
            tpl,
            Some(logging_notify),
            (index + 1) as *const c_void,
            guid(group),
            event,
        );
        if status != efi::Status::SUCCESS {
            ctx.fail(name, format_args!("CreateEventEx: {}", St(status)));
            for &event in &events {
                if !event.is_null() {
                    let _ = (ctx.bs.close_event)(event);
                }
            }
            return;
        }
    }
    // CreateEventEx itself may change the memory map (the SCT starts its log here too).
    LOGGED.store(0, Ordering::SeqCst);
    let old = (ctx.bs.raise_tpl)(efi::TPL_NOTIFY);
    trigger(ctx);
    let early = LOGGED.load(Ordering::SeqCst);
    (ctx.bs.restore_tpl)(old);
    let log = logged();
    for event in events {
        let _ = (ctx.bs.close_event)(event);
    }
    let notify = efi::TPL_NOTIFY;
    let callback = efi::TPL_CALLBACK;
    // The two CALLBACK members may run in either order.
    let ordered = log[..2] == [3, notify]
        && log[3] == callback
        && log[5] == callback
        && ((log[2] == 1 && log[4] == 2) || (log[2] == 2 && log[4] == 1));
    ctx.check(
        name,
        early == 0 && ordered,
        format_args!("{early} ran at TPL_NOTIFY; log (context, tpl) {log:?}"),
    );
}

/// §7.3.15: InstallConfigurationTable signals the group named by the table's GUID;
/// §7.1.2: memory allocation that changes the map signals EFI_EVENT_GROUP_MEMORY_MAP_CHANGE.
fn group_checks(ctx: &mut Ctx) {
    group_order_check(ctx, "sct_core.config_table_group", &TABLE_GROUP, |ctx| {
        let _ = (ctx.bs.install_configuration_table)(guid(&TABLE_GROUP), iface(&TABLE));
    });
    let _ = (ctx.bs.install_configuration_table)(guid(&TABLE_GROUP), ptr::null_mut());

    let mut pages: efi::PhysicalAddress = 0;
    let group = efi::EVENT_GROUP_MEMORY_MAP_CHANGE;
    group_order_check(ctx, "sct_core.memory_map_change_group", &group, |ctx| {
        let _ = (ctx.bs.allocate_pages)(
            efi::ALLOCATE_ANY_PAGES,
            efi::BOOT_SERVICES_DATA,
            2,
            &mut pages,
        );
    });
    if pages != 0 {
        let _ = (ctx.bs.free_pages)(pages, 2);
    }
}

/// §7.1.3: closing an event removes its RegisterProtocolNotify registration, so the key
/// no longer yields handles.
fn close_event_checks(ctx: &mut Ctx) {
    if is_edk2(ctx) {
        // edk2 frees the registration on CloseEvent, so handing it the stale key (the
        // only way to observe the rule from outside) would read freed memory there.
        return;
    }
    let mut event: efi::Event = ptr::null_mut();
    let status = (ctx.bs.create_event)(0, 0, None, ptr::null_mut(), &mut event);
    if !ctx.ok("sct_core.close_event.create", status) {
        return;
    }
    let mut key: *mut c_void = ptr::null_mut();
    let status = (ctx.bs.register_protocol_notify)(guid(&PROTOCOL), event, &mut key);
    if !ctx.ok("sct_core.close_event.register", status) {
        let _ = (ctx.bs.close_event)(event);
        return;
    }
    ctx.ok("sct_core.close_event.close", (ctx.bs.close_event)(event));
    let Some(handle) = protocol_handle(ctx, "sct_core.close_event.install") else {
        return;
    };
    let mut found: efi::Handle = ptr::null_mut();
    let mut size = size_of::<efi::Handle>();
    let status = (ctx.bs.locate_handle)(
        efi::BY_REGISTER_NOTIFY,
        ptr::null_mut(),
        key,
        &mut size,
        &mut found,
    );
    ctx.check(
        "sct_core.close_event.registration_gone",
        status != efi::Status::SUCCESS,
        format_args!("LocateHandle(ByRegisterNotify) of the closed event's key found {found:p}"),
    );
    remove(ctx, handle, iface(&IFACE_OLD));
}

/// Whether the firmware is edk2 (OVMF), by its FirmwareVendor string.
fn is_edk2(ctx: &Ctx) -> bool {
    let vendor = ctx.st.firmware_vendor;
    if vendor.is_null() {
        return false;
    }
    let want = "EDK II";
    // SAFETY: FirmwareVendor is a NUL-terminated UCS-2 string (§4.3); we stop at its
    // terminator or after as many characters as we compare.
    want.encode_utf16()
        .enumerate()
        .all(|(i, c)| unsafe { *vendor.add(i) } == c)
}

/// This application loaded again as the child image (see [`images`]), not started.
fn load_child(ctx: &Ctx) -> Option<efi::Handle> {
    let li = images::loaded_image(ctx, ctx.image)?;
    // SAFETY: HandleProtocol returned our live LoadedImage protocol.
    let (buf, size) = images::read_own_file(ctx, unsafe { &*li }).ok()?;
    let (status, child) = images::load(ctx, buf, size);
    ctx.free_pool(buf);
    if status != efi::Status::SUCCESS {
        return None;
    }
    let Some(child_image) = images::loaded_image(ctx, child) else {
        let _ = (ctx.bs.unload_image)(child);
        return None;
    };
    // SAFETY: the child's LoadedImage protocol is live and the child has not started.
    unsafe {
        (*child_image).load_options = images::CHILD_OPTIONS.as_ptr().cast_mut().cast();
        (*child_image).load_options_size = size_of_val(&images::CHILD_OPTIONS) as u32;
    }
    Some(child)
}

/// §7.4.2: with ExitData NULL, StartImage leaves *ExitDataSize alone (SCT
/// ImageBBTestFunction.c, StartImage InterfaceTestCheckpoint3).
fn start_image_exit_data_checks(ctx: &mut Ctx) {
    let Some(child) = load_child(ctx) else {
        ctx.fail(
            "sct_core.start_image.load_child",
            format_args!("no child image"),
        );
        return;
    };
    let mut exit_size = 0x5c7usize;
    let status = (ctx.bs.start_image)(child, &mut exit_size, ptr::null_mut());
    ctx.expect(
        "sct_core.start_image.null_exit_data.status",
        status,
        &[images::CHILD_STATUS],
    );
    ctx.check(
        "sct_core.start_image.null_exit_data.size_untouched",
        exit_size == 0x5c7,
        format_args!("ExitDataSize became {exit_size}"),
    );
}

/// A minimal PE32+ application (never started) whose .rsrc section carries an HII
/// package list under the resource name "HII": the header (GUID PACKAGE_LIST, length
/// 24) and an end package. Layout: headers at 0, .text at RVA 0x1000, .rsrc at 0x2000
/// with the tree at its start and the package list at RVA 0x2100.
fn hii_image() -> [u8; 0x600] {
    let mut image = [0u8; 0x600];
    let mut put = |at: usize, bytes: &[u8]| image[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"MZ");
    put(0x3c, &0x40u32.to_le_bytes());
    put(0x40, b"PE\0\0");
    // COFF header: x86-64, 2 sections, 240-byte optional header, executable.
    put(0x44, &0x8664u16.to_le_bytes());
    put(0x46, &2u16.to_le_bytes());
    put(0x54, &240u16.to_le_bytes());
    put(0x56, &0x0022u16.to_le_bytes());
    // PE32+ optional header.
    let opt = 0x58;
    put(opt, &0x20bu16.to_le_bytes());
    put(opt + 4, &0x200u32.to_le_bytes()); // SizeOfCode
    put(opt + 8, &0x200u32.to_le_bytes()); // SizeOfInitializedData
    put(opt + 16, &0x1000u32.to_le_bytes()); // AddressOfEntryPoint
    put(opt + 20, &0x1000u32.to_le_bytes()); // BaseOfCode
    put(opt + 32, &0x1000u32.to_le_bytes()); // SectionAlignment
    put(opt + 36, &0x200u32.to_le_bytes()); // FileAlignment
    put(opt + 56, &0x3000u32.to_le_bytes()); // SizeOfImage
    put(opt + 60, &0x200u32.to_le_bytes()); // SizeOfHeaders
    put(opt + 68, &10u16.to_le_bytes()); // EFI application
    put(opt + 108, &16u32.to_le_bytes()); // NumberOfRvaAndSizes
    put(opt + 112 + 2 * 8, &0x2000u32.to_le_bytes()); // resource directory
    put(opt + 112 + 2 * 8 + 4, &0x100u32.to_le_bytes());
    // Section table.
    let sections = opt + 240;
    for (index, (name, rva, raw, flags)) in [
        (*b".text\0\0\0", 0x1000u32, 0x200u32, 0x6000_0020u32),
        (*b".rsrc\0\0\0", 0x2000, 0x400, 0x4000_0040),
    ]
    .into_iter()
    .enumerate()
    {
        let at = sections + 40 * index;
        put(at, &name);
        put(at + 8, &0x200u32.to_le_bytes());
        put(at + 12, &rva.to_le_bytes());
        put(at + 16, &0x200u32.to_le_bytes());
        put(at + 20, &raw.to_le_bytes());
        put(at + 36, &flags.to_le_bytes());
    }
    put(0x200, &[0x31, 0xc0, 0xc3]); // xor eax, eax; ret
    // Resource tree: root -> "HII" -> ID 1 -> language 0x409 -> data entry.
    let rsrc = 0x400;
    put(rsrc + 12, &1u16.to_le_bytes());
    put(rsrc + 16, &0x8000_0070u32.to_le_bytes());
    put(rsrc + 20, &0x8000_0018u32.to_le_bytes());
    put(rsrc + 0x18 + 14, &1u16.to_le_bytes());
    put(rsrc + 0x28, &1u32.to_le_bytes());
    put(rsrc + 0x2c, &0x8000_0030u32.to_le_bytes());
    put(rsrc + 0x30 + 14, &1u16.to_le_bytes());
    put(rsrc + 0x40, &0x409u32.to_le_bytes());
    put(rsrc + 0x44, &0x48u32.to_le_bytes());
    put(rsrc + 0x48, &0x2100u32.to_le_bytes());
    put(rsrc + 0x4c, &24u32.to_le_bytes());
    put(rsrc + 0x70, &3u16.to_le_bytes());
    for (i, c) in "HII".encode_utf16().enumerate() {
        put(rsrc + 0x72 + 2 * i, &c.to_le_bytes());
    }
    // EFI_HII_PACKAGE_LIST_HEADER, then an end package (length 4, type 0xDF).
    put(rsrc + 0x100, PACKAGE_LIST.as_bytes());
    put(rsrc + 0x110, &24u32.to_le_bytes());
    put(rsrc + 0x114, &[4, 0, 0, 0xdf]);
    image
}

/// §7.4.1: LoadImage installs EFI_HII_PACKAGE_LIST_PROTOCOL, the package list from the
/// image's resources, on an image that has one (SCT ImageBBTestFunction.c, LoadImage
/// InterfaceTestCheckpoint8).
fn hii_checks(ctx: &mut Ctx) {
    let mut image = hii_image();
    let mut child: efi::Handle = ptr::null_mut();
    let status = (ctx.bs.load_image)(
        efi::Boolean::FALSE,
        ctx.image,
        ptr::null_mut(),
        image.as_mut_ptr().cast(),
        image.len(),
        &mut child,
    );
    if !ctx.ok("sct_core.hii.load_image", status) {
        return;
    }
    let list = ctx.handle_protocol::<u8>(child, &hii_package_list::PROTOCOL_GUID);
    // SAFETY: the interface is the package list header inside the loaded image (24
    // bytes, as the image says), live until UnloadImage below.
    let header = list.map(|p| unsafe { core::slice::from_raw_parts(p, 24) });
    ctx.check(
        "sct_core.hii.package_list_protocol",
        header.is_some_and(|h| {
            h[..16] == *PACKAGE_LIST.as_bytes() && h[16..20] == 24u32.to_le_bytes()
        }),
        format_args!("interface {list:?}"),
    );
    ctx.ok("sct_core.hii.unload", (ctx.bs.unload_image)(child));
}
