//! ConnectController's driver order (UEFI 2.10 §7.3.12): drivers named by the caller first,
//! then those EFI_PLATFORM_DRIVER_OVERRIDE_PROTOCOL (§11.3) lists for the controller, then
//! those its EFI_BUS_SPECIFIC_DRIVER_OVERRIDE_PROTOCOL (§11.4) lists, then the rest by
//! Driver Binding version. The SCT checks this in ProtocolHandlerBBTestFunction_3.c
//! (ConnectController with override protocols); vmfw once ignored both override protocols.
//!
//! Two test drivers, LOW (version 0x10) and HIGH (version 0x20), both support a controller
//! carrying CONTROLLER_PROTOCOL and open it BY_DRIVER in Start, so only the first driver in
//! the firmware's order starts; which one did shows the order.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use r_efi::efi;
use r_efi::protocols::{
    bus_specific_driver_override, device_path, driver_binding, platform_driver_override,
};

use crate::ctx::{Ctx, St};

/// Test-only GUIDs: the controller's protocol and a tag for the drivers' handles.
const CONTROLLER_PROTOCOL: efi::Guid = efi::Guid::from_fields(
    0x5c7c0e00,
    0x0101,
    0x4a5b,
    0x8c,
    0x9d,
    &[0, 0, 0, 0, 0x16, 0x11],
);
const DRIVER_TAG: efi::Guid = efi::Guid::from_fields(
    0x5c7c0e00,
    0x0102,
    0x4a5b,
    0x8c,
    0x9d,
    &[0, 0, 0, 0, 0x16, 0x12],
);

static CONTROLLER_IFACE: u64 = 0xc0de;
static TAG_IFACE: u64 = 0x7a9;

const LOW: usize = 0;
const HIGH: usize = 1;
const NONE: usize = usize::MAX;

static BS: AtomicPtr<efi::BootServices> = AtomicPtr::new(ptr::null_mut());
/// The drivers' handles (their binding handle, also used as their image handle).
static DRIVERS: [AtomicPtr<c_void>; 2] = [
    AtomicPtr::new(ptr::null_mut()),
    AtomicPtr::new(ptr::null_mut()),
];
static CONTROLLER: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
/// Which driver Start ran for (LOW, HIGH or NONE).
static STARTED: AtomicUsize = AtomicUsize::new(NONE);
/// The driver each override protocol names (LOW, HIGH or NONE for an empty list).
static PLATFORM_PICK: AtomicUsize = AtomicUsize::new(NONE);
static BUS_PICK: AtomicUsize = AtomicUsize::new(NONE);

fn bs() -> &'static efi::BootServices {
    // SAFETY: set from the firmware's boot services table before any driver or override
    // protocol is installed; the table stays valid until ExitBootServices.
    unsafe { &*BS.load(Ordering::SeqCst) }
}

fn guid(g: &efi::Guid) -> *mut efi::Guid {
    ptr::from_ref(g).cast_mut()
}

fn driver(index: usize) -> efi::Handle {
    DRIVERS[index].load(Ordering::SeqCst)
}

/// Which of our drivers `this` belongs to.
fn driver_index(this: *mut driver_binding::Protocol) -> Option<usize> {
    // SAFETY: the firmware calls the binding with the interface we installed, which lives
    // in `run`'s frame until it is uninstalled.
    let handle = unsafe { (*this).driver_binding_handle };
    (0..2).find(|&i| driver(i) == handle)
}

fn open_by_driver(agent: efi::Handle, controller: efi::Handle) -> efi::Status {
    let mut out = ptr::null_mut();
    (bs().open_protocol)(
        controller,
        guid(&CONTROLLER_PROTOCOL),
        &mut out,
        agent,
        controller,
        efi::OPEN_PROTOCOL_BY_DRIVER,
    )
}

extern "efiapi" fn supported(
    this: *mut driver_binding::Protocol,
    controller: efi::Handle,
    _remaining: *mut device_path::Protocol,
) -> efi::Status {
    let Some(index) = driver_index(this) else {
        return efi::Status::UNSUPPORTED;
    };
    if controller != CONTROLLER.load(Ordering::SeqCst) {
        return efi::Status::UNSUPPORTED;
    }
    let status = open_by_driver(driver(index), controller);
    if status.is_error() {
        return status;
    }
    (bs().close_protocol)(
        controller,
        guid(&CONTROLLER_PROTOCOL),
        driver(index),
        controller,
    )
}

extern "efiapi" fn start(
    this: *mut driver_binding::Protocol,
    controller: efi::Handle,
    _remaining: *mut device_path::Protocol,
) -> efi::Status {
    let Some(index) = driver_index(this) else {
        return efi::Status::UNSUPPORTED;
    };
    let status = open_by_driver(driver(index), controller);
    if status.is_error() {
        return status;
    }
    STARTED.store(index, Ordering::SeqCst);
    efi::Status::SUCCESS
}

extern "efiapi" fn stop(
    this: *mut driver_binding::Protocol,
    controller: efi::Handle,
    _children: usize,
    _child_buffer: *mut efi::Handle,
) -> efi::Status {
    let Some(index) = driver_index(this) else {
        return efi::Status::UNSUPPORTED;
    };
    (bs().close_protocol)(
        controller,
        guid(&CONTROLLER_PROTOCOL),
        driver(index),
        controller,
    )
}

/// A one-entry GetDriver list: `pick` after NULL, then EFI_NOT_FOUND (§11.3.1, §11.4.1).
fn next_in_list(pick: usize, image: *mut efi::Handle) -> efi::Status {
    if image.is_null() || pick == NONE {
        return efi::Status::NOT_FOUND;
    }
    // SAFETY: the firmware passes a handle slot of its own, checked non-null.
    let previous = unsafe { image.read() };
    if !previous.is_null() {
        return efi::Status::NOT_FOUND;
    }
    // SAFETY: as above.
    unsafe { image.write(driver(pick)) };
    efi::Status::SUCCESS
}

extern "efiapi" fn platform_get_driver(
    _this: *mut platform_driver_override::Protocol,
    controller: efi::Handle,
    image: *mut efi::Handle,
) -> efi::Status {
    // The platform override is consulted for every controller while it is installed.
    if controller != CONTROLLER.load(Ordering::SeqCst) {
        return efi::Status::NOT_FOUND;
    }
    next_in_list(PLATFORM_PICK.load(Ordering::SeqCst), image)
}

extern "efiapi" fn platform_get_driver_path(
    _this: *mut platform_driver_override::Protocol,
    _controller: efi::Handle,
    _path: *mut *mut device_path::Protocol,
) -> efi::Status {
    efi::Status::UNSUPPORTED
}

extern "efiapi" fn platform_driver_loaded(
    _this: *mut platform_driver_override::Protocol,
    _controller: efi::Handle,
    _path: *mut device_path::Protocol,
    _image: efi::Handle,
) -> efi::Status {
    efi::Status::UNSUPPORTED
}

extern "efiapi" fn bus_get_driver(
    _this: *mut bus_specific_driver_override::Protocol,
    image: *mut efi::Handle,
) -> efi::Status {
    next_in_list(BUS_PICK.load(Ordering::SeqCst), image)
}

const NAMES: [&str; 2] = ["LOW", "HIGH"];

fn name(index: usize) -> &'static str {
    NAMES.get(index).copied().unwrap_or("none")
}

pub fn run(ctx: &mut Ctx) {
    let bs = ctx.bs;
    BS.store(ptr::from_ref(bs).cast_mut(), Ordering::SeqCst);
    let mut bindings = [0x10u32, 0x20].map(|version| driver_binding::Protocol {
        supported,
        start,
        stop,
        version,
        image_handle: ptr::null_mut(),
        driver_binding_handle: ptr::null_mut(),
    });
    // Each driver's handle exists before its binding, which names it as both its binding
    // and its image handle (the override protocols list image handles).
    for (index, binding) in bindings.iter_mut().enumerate() {
        let mut handle: efi::Handle = ptr::null_mut();
        let status = (bs.install_protocol_interface)(
            &mut handle,
            guid(&DRIVER_TAG),
            efi::NATIVE_INTERFACE,
            ptr::from_ref(&TAG_IFACE).cast_mut().cast(),
        );
        if !ctx.ok("sct_driver_override.setup.driver", status) {
            return;
        }
        binding.image_handle = handle;
        binding.driver_binding_handle = handle;
        DRIVERS[index].store(handle, Ordering::SeqCst);
        let status = (bs.install_protocol_interface)(
            &mut handle,
            guid(&driver_binding::PROTOCOL_GUID),
            efi::NATIVE_INTERFACE,
            ptr::from_mut(binding).cast(),
        );
        if !ctx.ok("sct_driver_override.setup.binding", status) {
            return;
        }
    }
    let mut controller: efi::Handle = ptr::null_mut();
    let status = (bs.install_protocol_interface)(
        &mut controller,
        guid(&CONTROLLER_PROTOCOL),
        efi::NATIVE_INTERFACE,
        ptr::from_ref(&CONTROLLER_IFACE).cast_mut().cast(),
    );
    if ctx.ok("sct_driver_override.setup.controller", status) {
        CONTROLLER.store(controller, Ordering::SeqCst);
        order_checks(ctx, controller);
        let _ = (bs.uninstall_protocol_interface)(
            controller,
            guid(&CONTROLLER_PROTOCOL),
            ptr::from_ref(&CONTROLLER_IFACE).cast_mut().cast(),
        );
    }
    for (index, binding) in bindings.iter_mut().enumerate() {
        let handle = driver(index);
        let _ = (bs.uninstall_protocol_interface)(
            handle,
            guid(&driver_binding::PROTOCOL_GUID),
            ptr::from_mut(binding).cast(),
        );
        let _ = (bs.uninstall_protocol_interface)(
            handle,
            guid(&DRIVER_TAG),
            ptr::from_ref(&TAG_IFACE).cast_mut().cast(),
        );
    }
}

/// Connects `controller` with the override protocols naming `platform` and `bus` (NONE:
/// not installed) and checks that `want` started.
fn order_checks(ctx: &mut Ctx, controller: efi::Handle) {
    let cases: [(&str, usize, usize, usize); 4] = [
        ("sct_driver_override.by_version", NONE, NONE, HIGH),
        ("sct_driver_override.bus_specific", NONE, LOW, LOW),
        ("sct_driver_override.platform", LOW, NONE, LOW),
        ("sct_driver_override.platform_before_bus", HIGH, LOW, HIGH),
    ];
    for (check, platform, bus, want) in cases {
        let (status, started) = connect_with(ctx, controller, platform, bus);
        ctx.check(
            check,
            status == efi::Status::SUCCESS && started == want,
            format_args!(
                "ConnectController {}, {} started, want {}",
                St(status),
                name(started),
                name(want)
            ),
        );
    }
}

fn connect_with(
    ctx: &Ctx,
    controller: efi::Handle,
    platform: usize,
    bus: usize,
) -> (efi::Status, usize) {
    let bs = ctx.bs;
    let mut platform_override = platform_driver_override::Protocol {
        get_driver: platform_get_driver,
        get_driver_path: platform_get_driver_path,
        driver_loaded: platform_driver_loaded,
    };
    let mut bus_override = bus_specific_driver_override::Protocol {
        get_driver: bus_get_driver,
    };
    let platform_iface: *mut c_void = ptr::from_mut(&mut platform_override).cast();
    let bus_iface: *mut c_void = ptr::from_mut(&mut bus_override).cast();
    PLATFORM_PICK.store(platform, Ordering::SeqCst);
    BUS_PICK.store(bus, Ordering::SeqCst);
    STARTED.store(NONE, Ordering::SeqCst);
    // Both interfaces live in this frame and are uninstalled before it ends.
    let mut platform_handle: efi::Handle = ptr::null_mut();
    if platform != NONE {
        let _ = (bs.install_protocol_interface)(
            &mut platform_handle,
            guid(&platform_driver_override::PROTOCOL_GUID),
            efi::NATIVE_INTERFACE,
            platform_iface,
        );
    }
    let mut bus_handle = controller;
    if bus != NONE {
        let _ = (bs.install_protocol_interface)(
            &mut bus_handle,
            guid(&bus_specific_driver_override::PROTOCOL_GUID),
            efi::NATIVE_INTERFACE,
            bus_iface,
        );
    }
    let status = (bs.connect_controller)(
        controller,
        ptr::null_mut(),
        ptr::null_mut(),
        efi::Boolean::FALSE,
    );
    let started = STARTED.load(Ordering::SeqCst);
    let _ = (bs.disconnect_controller)(controller, ptr::null_mut(), ptr::null_mut());
    if bus != NONE {
        let _ = (bs.uninstall_protocol_interface)(
            controller,
            guid(&bus_specific_driver_override::PROTOCOL_GUID),
            bus_iface,
        );
    }
    if !platform_handle.is_null() {
        let _ = (bs.uninstall_protocol_interface)(
            platform_handle,
            guid(&platform_driver_override::PROTOCOL_GUID),
            platform_iface,
        );
    }
    (status, started)
}
