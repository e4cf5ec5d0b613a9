//! The driver model (§11.1): ConnectController (§7.3.12) and
//! DisconnectController (§7.3.13) over EFI_DRIVER_BINDING_PROTOCOL. The
//! relationships live in the open records: a driver manages a controller when
//! it holds one of its protocols BY_DRIVER, and a child is the controller
//! handle of a BY_CHILD_CONTROLLER open of the parent's protocols.

use alloc::vec::Vec;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::driver::DriverBindingProtocol;
use uefi_raw::{Boolean, Handle, Status};

use super::{DB, get_protocol, handles_with};
use crate::boundary::read;
use crate::ids::{HandleId, Interface};
use crate::spec_gaps::{
    self, BusSpecificDriverOverrideProtocol, DriverFamilyOverrideProtocol,
    PlatformDriverOverrideProtocol,
};

/// A driver's binding as the core calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Binding {
    /// The handle carrying EFI_DRIVER_BINDING_PROTOCOL (the agent of the
    /// driver's opens).
    handle: HandleId,
    interface: Interface,
    image: HandleId,
    version: u32,
}

/// The binding installed on `handle`, if any.
fn binding_on(handle: HandleId) -> Option<Binding> {
    let interface = get_protocol::<DriverBindingProtocol>(handle, &DriverBindingProtocol::GUID)?;
    if interface.is_null() || !interface.is_aligned() {
        return None;
    }
    // SAFETY: the interface was installed as an EFI_DRIVER_BINDING_PROTOCOL
    // (non-null, aligned); reading its fields is how the protocol is used.
    let (image, version) = unsafe { ((*interface).image_handle, (*interface).version) };
    Some(Binding {
        handle,
        interface: Interface::from_ptr(interface),
        image: HandleId::from_raw(image),
        version,
    })
}

/// The order ConnectController tries drivers in (§7.3.12): the bindings
/// `preferred` names (by image or binding handle), in list order, then all
/// others by Version, highest first. `preferred` is the concatenation of the
/// override lists [`driver_order`] gathers.
fn connect_order(bindings: &[Binding], preferred: &[HandleId]) -> Vec<Binding> {
    let mut ordered: Vec<Binding> = Vec::with_capacity(bindings.len());
    for wanted in preferred {
        for binding in bindings {
            if (binding.image == *wanted || binding.handle == *wanted) && !ordered.contains(binding)
            {
                ordered.push(*binding);
            }
        }
    }
    let mut rest: Vec<Binding> = bindings
        .iter()
        .filter(|b| !ordered.contains(b))
        .copied()
        .collect();
    // Stable: equal versions keep installation order.
    rest.sort_by_key(|b| core::cmp::Reverse(b.version));
    ordered.extend(rest);
    ordered
}

/// The driver order for `controller` with the spec's precedence (§7.3.12):
/// the caller's list (context override), then the drivers the platform
/// driver override protocol names for the controller, then the drivers whose
/// binding handle carries the driver family override protocol (highest
/// GetVersion first), then the ones the controller's bus specific driver
/// override protocol names, then the rest by Version.
fn driver_order(controller: HandleId, bindings: &[Binding], context: &[HandleId]) -> Vec<Binding> {
    let mut preferred = context.to_vec();
    preferred.extend(platform_override_images(controller));
    preferred.extend(family_override_bindings(bindings));
    preferred.extend(bus_override_images(controller));
    connect_order(bindings, &preferred)
}

/// Walks an override protocol's GetDriver list: `next` gets the previous
/// image handle (NULL first) and returns the next one, until it fails, gives
/// NULL, or repeats itself (a broken protocol must not hang the connect).
fn override_list(mut next: impl FnMut(Handle) -> Option<Handle>) -> Vec<HandleId> {
    let mut images = Vec::new();
    let mut previous: Handle = core::ptr::null_mut();
    for _ in 0..MAX_DRIVER_LIST {
        let Some(image) = next(previous) else { break };
        let id = HandleId::from_raw(image);
        if image.is_null() || images.contains(&id) {
            break;
        }
        images.push(id);
        previous = image;
    }
    images
}

/// The images EFI_PLATFORM_DRIVER_OVERRIDE_PROTOCOL.GetDriver() (§11.3)
/// lists for `controller`, from the first instance installed.
fn platform_override_images(controller: HandleId) -> Vec<HandleId> {
    let Some(this) = handles_with(&spec_gaps::PLATFORM_DRIVER_OVERRIDE_PROTOCOL_GUID)
        .into_iter()
        .find_map(|h| {
            get_protocol::<PlatformDriverOverrideProtocol>(
                h,
                &spec_gaps::PLATFORM_DRIVER_OVERRIDE_PROTOCOL_GUID,
            )
        })
        .filter(|p| !p.is_null() && p.is_aligned())
    else {
        return Vec::new();
    };
    override_list(|previous| {
        let mut image = previous;
        // SAFETY: `this` is an installed platform driver override interface
        // (non-null, aligned); GetDriver takes it, the controller and a
        // local handle slot (§11.3.1).
        let status = unsafe { ((*this).get_driver)(this, controller.as_raw(), &mut image) };
        (!status.is_error()).then_some(image)
    })
}

/// The images EFI_BUS_SPECIFIC_DRIVER_OVERRIDE_PROTOCOL.GetDriver() (§11.4)
/// on `controller` lists.
fn bus_override_images(controller: HandleId) -> Vec<HandleId> {
    let Some(this) = get_protocol::<BusSpecificDriverOverrideProtocol>(
        controller,
        &spec_gaps::BUS_SPECIFIC_DRIVER_OVERRIDE_PROTOCOL_GUID,
    )
    .filter(|p| !p.is_null() && p.is_aligned()) else {
        return Vec::new();
    };
    override_list(|previous| {
        let mut image = previous;
        // SAFETY: `this` is an installed bus specific driver override
        // interface (non-null, aligned); GetDriver takes it and a local
        // handle slot (§11.4.1).
        let status = unsafe { ((*this).get_driver)(this, &mut image) };
        (!status.is_error()).then_some(image)
    })
}

/// The binding handles carrying EFI_DRIVER_FAMILY_OVERRIDE_PROTOCOL
/// (§11.12), highest GetVersion() first.
fn family_override_bindings(bindings: &[Binding]) -> Vec<HandleId> {
    let mut family: Vec<(u32, HandleId)> = Vec::new();
    for binding in bindings {
        let Some(this) = get_protocol::<DriverFamilyOverrideProtocol>(
            binding.handle,
            &spec_gaps::DRIVER_FAMILY_OVERRIDE_PROTOCOL_GUID,
        )
        .filter(|p| !p.is_null() && p.is_aligned()) else {
            continue;
        };
        // SAFETY: `this` is an installed driver family override interface
        // (non-null, aligned); GetVersion only takes it (§11.12.1).
        let version = unsafe { ((*this).get_version)(this) };
        family.push((version, binding.handle));
    }
    family.sort_by_key(|&(version, _)| core::cmp::Reverse(version));
    family.into_iter().map(|(_, handle)| handle).collect()
}

/// Whether `binding` is still installed as it was when collected (a driver
/// started earlier may have changed the database).
fn still_installed(binding: &Binding) -> bool {
    DB.with(|db| db.get(binding.handle, &DriverBindingProtocol::GUID))
        .is_ok_and(|i| i == binding.interface)
}

fn driver_binding_ptr(binding: &Binding) -> *mut DriverBindingProtocol {
    binding.interface.as_exposed_ptr()
}

fn call_supported(
    binding: &Binding,
    controller: HandleId,
    remaining: *const DevicePathProtocol,
) -> Status {
    let this = driver_binding_ptr(binding);
    // SAFETY: `this` is an installed DriverBinding interface (see `binding_on`).
    let supported = unsafe { (*this).supported };
    // SAFETY: the driver's own Supported, called as §11.1.1 defines it;
    // `remaining` is null or a device path the ConnectController caller gave.
    unsafe { supported(this, controller.as_raw(), remaining) }
}

fn call_start(
    binding: &Binding,
    controller: HandleId,
    remaining: *const DevicePathProtocol,
) -> Status {
    let this = driver_binding_ptr(binding);
    // SAFETY: as in `call_supported`.
    let start = unsafe { (*this).start };
    // SAFETY: as for Supported (§11.1.2).
    unsafe { start(this, controller.as_raw(), remaining) }
}

fn call_stop(binding: &Binding, controller: HandleId, children: &[HandleId]) -> Status {
    let this = driver_binding_ptr(binding);
    let mut buffer: Vec<Handle> = children.iter().map(|c| c.as_raw()).collect();
    let list = if buffer.is_empty() {
        core::ptr::null()
    } else {
        buffer.as_mut_ptr().cast_const()
    };
    // SAFETY: as in `call_supported`.
    let stop = unsafe { (*this).stop };
    // SAFETY: the driver's own Stop (§11.1.3); `list` holds `buffer.len()`
    // handles and outlives the call.
    unsafe { stop(this, controller.as_raw(), buffer.len(), list) }
}

/// Connects drivers to one controller: each round the first driver, in
/// `connect_order`, whose Supported accepts the controller is started and
/// leaves the candidates; rounds repeat until no driver accepts. Whether
/// any Start succeeded.
fn connect_single(
    controller: HandleId,
    order: &[Binding],
    remaining: *const DevicePathProtocol,
) -> bool {
    let mut candidates: Vec<Option<Binding>> = order.iter().copied().map(Some).collect();
    let mut started = false;
    loop {
        let mut found = false;
        for slot in candidates.iter_mut() {
            let Some(binding) = *slot else {
                continue;
            };
            if !still_installed(&binding) {
                *slot = None;
                continue;
            }
            if call_supported(&binding, controller, remaining).is_error() {
                continue;
            }
            *slot = None;
            found = true;
            if !call_start(&binding, controller, remaining).is_error() {
                started = true;
            }
            break;
        }
        if !found {
            return started;
        }
    }
}

/// ConnectController (§7.3.12) for firmware code: `preferred` is the
/// caller's DriverImageHandle list. With `recursive`, every child the
/// drivers created (and their children in turn) is connected as well.
/// EFI_SUCCESS when a driver started on `controller` or one already manages
/// it (the spec's NOT_FOUND covers "no driver connected"; a controller that
/// is already connected counts as connected here).
pub fn connect(controller: HandleId, preferred: &[HandleId], recursive: bool) -> Status {
    // SAFETY: a null RemainingDevicePath is always allowed.
    unsafe { connect_from(controller, preferred, core::ptr::null(), recursive) }
}

/// [`connect`] with the caller's RemainingDevicePath.
///
/// # Safety
/// `remaining` is null or points to a device path (§7.3.12).
unsafe fn connect_from(
    controller: HandleId,
    preferred: &[HandleId],
    remaining: *const DevicePathProtocol,
    recursive: bool,
) -> Status {
    if !DB.with(|db| db.is_handle(controller)) {
        return Status::INVALID_PARAMETER;
    }
    let bindings: Vec<Binding> = handles_with(&DriverBindingProtocol::GUID)
        .into_iter()
        .filter_map(binding_on)
        .collect();
    if bindings.is_empty() {
        return Status::NOT_FOUND;
    }
    let order = driver_order(controller, &bindings, preferred);
    let started = connect_single(controller, &order, remaining);
    let status = if started
        // SAFETY: `remaining` as this function's contract states.
        || (!remaining.is_null() && unsafe { crate::device_path::is_end(remaining) })
        || DB
            .with(|db| db.managing_drivers(controller))
            .is_ok_and(|d| !d.is_empty())
    {
        Status::SUCCESS
    } else {
        Status::NOT_FOUND
    };
    if recursive {
        // Breadth first over the children; `visited` stops a driver that
        // names an ancestor as its child from looping forever.
        let mut visited = alloc::vec![controller];
        let mut queue: alloc::collections::VecDeque<HandleId> =
            DB.with(|db| db.children(controller, None)).into();
        while let Some(child) = queue.pop_front() {
            if visited.contains(&child) {
                continue;
            }
            visited.push(child);
            let order = driver_order(child, &bindings, &[]);
            connect_single(child, &order, core::ptr::null());
            queue.extend(DB.with(|db| db.children(child, None)));
        }
    }
    status
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn connect_controller(
    controller: Handle,
    drivers: *const Handle,
    remaining: *const DevicePathProtocol,
    recursive: Boolean,
) -> Status {
    if controller.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // The caller's list ends with NULL; a list that never ends is refused.
    let mut preferred = Vec::new();
    if !drivers.is_null() {
        for i in 0..=MAX_DRIVER_LIST {
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            let Ok(handle) = (unsafe { read(drivers.wrapping_add(i)) }) else {
                return Status::INVALID_PARAMETER;
            };
            if handle.is_null() {
                break;
            }
            if i == MAX_DRIVER_LIST {
                return Status::INVALID_PARAMETER;
            }
            preferred.push(HandleId::from_raw(handle));
        }
    }
    // SAFETY: the caller's path, as this function's # Safety requires.
    unsafe {
        connect_from(
            HandleId::from_raw(controller),
            &preferred,
            remaining,
            recursive.into(),
        )
    }
}

/// Longest DriverImageHandle list ConnectController reads.
const MAX_DRIVER_LIST: usize = 1024;

/// DisconnectController (§7.3.13) for firmware code. Each driver managing
/// `controller` (only `driver`, when given) gets Stop for its children (only
/// `child`, when given), then, once it has none left, Stop for the
/// controller itself. An agent holding a protocol BY_DRIVER without a
/// DriverBinding (an application, not a driver) has no Stop to call and is
/// left alone.
pub fn disconnect(
    controller: HandleId,
    driver: Option<HandleId>,
    child: Option<HandleId>,
) -> Status {
    let managing = DB.with(|db| {
        let valid = db.is_handle(controller)
            && driver.is_none_or(|d| db.is_handle(d))
            && child.is_none_or(|c| db.is_handle(c));
        if !valid {
            return Err(Status::INVALID_PARAMETER);
        }
        db.managing_drivers(controller)
    });
    let managing = match managing {
        Ok(managing) => managing,
        Err(status) => return status,
    };
    // UEFI 2.10: a DriverImageHandle without a DriverBinding is invalid.
    if driver.is_some_and(|d| binding_on(d).is_none()) {
        return Status::INVALID_PARAMETER;
    }
    let mut failed = false;
    for agent in managing {
        if driver.is_some_and(|d| d != agent) {
            continue;
        }
        // A driver stopped earlier in this loop may have taken another one
        // with it (its Stop uninstalled a protocol that driver held, and
        // the core disconnected that driver first): only drivers that
        // still manage the controller are asked to stop (as edk2 does).
        let still_managing = DB.with(|db| {
            db.managing_drivers(controller)
                .is_ok_and(|drivers| drivers.contains(&agent))
        });
        if !still_managing {
            continue;
        }
        let Some(binding) = binding_on(agent) else {
            continue;
        };
        let children = DB.with(|db| db.children(controller, Some(agent)));
        let to_stop = match child {
            None => children.clone(),
            Some(c) if children.contains(&c) => alloc::vec![c],
            Some(_) => continue,
        };
        let mut status = Status::SUCCESS;
        if !to_stop.is_empty() {
            status = call_stop(&binding, controller, &to_stop);
        }
        if !status.is_error() && to_stop.len() == children.len() {
            status = call_stop(&binding, controller, &[]);
        }
        if status.is_error() {
            log::debug!("DisconnectController: driver {agent:#x} refused to stop: {status:?}");
            failed = true;
        }
    }
    // Nothing managed (or nothing of `driver`'s): nothing to do, success.
    if failed {
        Status::DEVICE_ERROR
    } else {
        Status::SUCCESS
    }
}

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.3): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn disconnect_controller(
    controller: Handle,
    driver: Handle,
    child: Handle,
) -> Status {
    if controller.is_null() {
        return Status::INVALID_PARAMETER;
    }
    disconnect(
        HandleId::from_raw(controller),
        (!driver.is_null()).then_some(HandleId::from_raw(driver)),
        (!child.is_null()).then_some(HandleId::from_raw(child)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary;
    use crate::protocol_services::{
        close, install, new_handle, open, reinstall_protocol_interface, uninstall,
    };
    use crate::spec_gaps::{
        OPEN_PROTOCOL_BY_CHILD_CONTROLLER, OPEN_PROTOCOL_BY_DRIVER, OPEN_PROTOCOL_EXCLUSIVE,
    };
    use core::ffi::c_void;
    use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
    use platform::sync::Global;
    use uefi_raw::Guid;
    use uefi_raw::guid;

    /// EFI_DRIVER_BINDING_SUPPORTED and _START (§11.1).
    type SupportedFn = extern "efiapi" fn(
        *const DriverBindingProtocol,
        Handle,
        *const DevicePathProtocol,
    ) -> Status;
    /// EFI_DRIVER_BINDING_STOP (§11.1).
    type StopFn =
        extern "efiapi" fn(*const DriverBindingProtocol, Handle, usize, *const Handle) -> Status;

    const BUS_IO: Guid = guid!("000000b5-0001-0002-0304-050505050505");
    const CHILD_IO: Guid = guid!("000000c6-0001-0002-0304-050505050505");
    const SERVICE: Guid = guid!("000000d7-0001-0002-0304-050505050505");
    const OTHER: Guid = guid!("000000e8-0001-0002-0304-050505050505");

    static BUS_HANDLE: AtomicUsize = AtomicUsize::new(0);
    static DEVICE_HANDLE: AtomicUsize = AtomicUsize::new(0);
    static BUS_STARTS: AtomicU32 = AtomicU32::new(0);
    static DEVICE_REFUSES_STOP: AtomicBool = AtomicBool::new(false);
    static CHILDREN: Global<Vec<HandleId>> = Global::new(Vec::new());
    static TOKEN: u8 = 0;

    fn token() -> *mut c_void {
        &TOKEN as *const u8 as *mut c_void
    }

    fn binding(
        supported: SupportedFn,
        start: SupportedFn,
        stop: StopFn,
        version: u32,
        slot: &AtomicUsize,
    ) -> HandleId {
        let handle = new_handle();
        let protocol = Box::leak(Box::new(DriverBindingProtocol {
            supported,
            start,
            stop,
            version,
            image_handle: handle.as_raw(),
            driver_binding_handle: handle.as_raw(),
        }));
        install(
            Some(handle),
            &[(
                DriverBindingProtocol::GUID,
                (protocol as *mut DriverBindingProtocol).cast(),
            )],
        )
        .unwrap();
        slot.store(handle.value(), Ordering::SeqCst);
        handle
    }

    /// Supported as drivers write it: a BY_DRIVER open that is closed again.
    fn probe(controller: Handle, g: &Guid, agent: &AtomicUsize) -> Status {
        let agent = HandleId::from_value(agent.load(Ordering::SeqCst));
        let controller = HandleId::from_raw(controller);
        match open(controller, g, agent, controller, OPEN_PROTOCOL_BY_DRIVER) {
            Ok(_) => {
                close(controller, g, agent, controller).unwrap();
                Status::SUCCESS
            }
            Err(status) => status,
        }
    }

    // A bus driver: on a BUS_IO controller it makes two children with CHILD_IO.
    extern "efiapi" fn bus_supported(
        _: *const DriverBindingProtocol,
        controller: Handle,
        _: *const DevicePathProtocol,
    ) -> Status {
        probe(controller, &BUS_IO, &BUS_HANDLE)
    }

    extern "efiapi" fn bus_start(
        _: *const DriverBindingProtocol,
        controller: Handle,
        _: *const DevicePathProtocol,
    ) -> Status {
        let me = HandleId::from_value(BUS_HANDLE.load(Ordering::SeqCst));
        let controller = HandleId::from_raw(controller);
        if let Err(status) = open(controller, &BUS_IO, me, controller, OPEN_PROTOCOL_BY_DRIVER) {
            return status;
        }
        BUS_STARTS.fetch_add(1, Ordering::SeqCst);
        for _ in 0..2 {
            let child = install(None, &[(CHILD_IO, token())]).unwrap();
            open(
                controller,
                &BUS_IO,
                me,
                child,
                OPEN_PROTOCOL_BY_CHILD_CONTROLLER,
            )
            .unwrap();
            CHILDREN.with(|c| c.push(child));
        }
        Status::SUCCESS
    }

    extern "efiapi" fn bus_stop(
        _: *const DriverBindingProtocol,
        controller: Handle,
        count: usize,
        children: *const Handle,
    ) -> Status {
        let me = HandleId::from_value(BUS_HANDLE.load(Ordering::SeqCst));
        let controller = HandleId::from_raw(controller);
        if count == 0 {
            return boundary::status(close(controller, &BUS_IO, me, controller));
        }
        // SAFETY: the core passes `count` child handles.
        let children = unsafe { core::slice::from_raw_parts(children, count) };
        let mut status = Status::SUCCESS;
        for &child in children {
            let child = HandleId::from_raw(child);
            close(controller, &BUS_IO, me, child).unwrap();
            if uninstall(child, &[(CHILD_IO, token())]).is_err() {
                open(
                    controller,
                    &BUS_IO,
                    me,
                    child,
                    OPEN_PROTOCOL_BY_CHILD_CONTROLLER,
                )
                .unwrap();
                status = Status::DEVICE_ERROR;
            } else {
                CHILDREN.with(|c| c.retain(|&h| h != child));
            }
        }
        status
    }

    // A device driver: on a CHILD_IO handle it installs SERVICE.
    extern "efiapi" fn device_supported(
        _: *const DriverBindingProtocol,
        controller: Handle,
        _: *const DevicePathProtocol,
    ) -> Status {
        probe(controller, &CHILD_IO, &DEVICE_HANDLE)
    }

    extern "efiapi" fn device_start(
        _: *const DriverBindingProtocol,
        controller: Handle,
        _: *const DevicePathProtocol,
    ) -> Status {
        let me = HandleId::from_value(DEVICE_HANDLE.load(Ordering::SeqCst));
        let controller = HandleId::from_raw(controller);
        if let Err(status) = open(
            controller,
            &CHILD_IO,
            me,
            controller,
            OPEN_PROTOCOL_BY_DRIVER,
        ) {
            return status;
        }
        install(Some(controller), &[(SERVICE, token())]).unwrap();
        Status::SUCCESS
    }

    extern "efiapi" fn device_stop(
        _: *const DriverBindingProtocol,
        controller: Handle,
        count: usize,
        _: *const Handle,
    ) -> Status {
        assert_eq!(count, 0, "a device driver has no children");
        if DEVICE_REFUSES_STOP.load(Ordering::SeqCst) {
            return Status::ACCESS_DENIED;
        }
        let controller = HandleId::from_raw(controller);
        uninstall(controller, &[(SERVICE, token())]).unwrap();
        let me = HandleId::from_value(DEVICE_HANDLE.load(Ordering::SeqCst));
        boundary::status(close(controller, &CHILD_IO, me, controller))
    }

    fn children() -> Vec<HandleId> {
        CHILDREN.with(|c| c.clone())
    }

    fn has(handle: HandleId, g: &Guid) -> bool {
        get_protocol::<c_void>(handle, g).is_some()
    }

    #[test]
    fn connect_order_puts_listed_drivers_first_then_versions() {
        let b = |handle: usize, image: usize, version| Binding {
            handle: HandleId::from_value(handle),
            interface: Interface::from_value(handle),
            image: HandleId::from_value(image),
            version,
        };
        let all = [b(1, 1, 5), b(2, 2, 9), b(3, 7, 5), b(4, 4, 1)];
        let order = |preferred: &[usize]| -> Vec<usize> {
            let preferred: Vec<HandleId> =
                preferred.iter().map(|&h| HandleId::from_value(h)).collect();
            connect_order(&all, &preferred)
                .iter()
                .map(|b| b.handle.value())
                .collect()
        };
        assert_eq!(order(&[]), [2, 1, 3, 4], "equal versions keep their order");
        assert_eq!(order(&[4, 7]), [4, 3, 2, 1], "by binding or image handle");
        assert_eq!(order(&[99]), [2, 1, 3, 4]);
    }

    /// The one test that uses the global handle database.
    #[test]
    fn connect_and_disconnect_drive_bus_and_device_drivers() {
        let bus = binding(bus_supported, bus_start, bus_stop, 0x20, &BUS_HANDLE);
        let device = binding(
            device_supported,
            device_start,
            device_stop,
            0x10,
            &DEVICE_HANDLE,
        );
        let controller = install(None, &[(BUS_IO, token())]).unwrap();
        let unrelated = install(None, &[(OTHER, token())]).unwrap();

        assert_eq!(connect(unrelated, &[], true), Status::NOT_FOUND);
        assert_eq!(
            connect(HandleId::from_value(0x1234), &[], false),
            Status::INVALID_PARAMETER
        );

        // Not recursive: the bus driver makes its children, nobody binds them.
        assert_eq!(connect(controller, &[], false), Status::SUCCESS);
        let kids = children();
        assert_eq!(kids.len(), 2);
        assert_eq!(DB.with(|db| db.children(controller, None)), kids);
        assert_eq!(DB.with(|db| db.managing_drivers(controller)), Ok(vec![bus]));
        assert!(!has(kids[0], &SERVICE));

        // Connected again: Supported says ALREADY_STARTED, still SUCCESS.
        assert_eq!(connect(controller, &[], false), Status::SUCCESS);
        assert_eq!(BUS_STARTS.load(Ordering::SeqCst), 1);

        // Recursive: the children get the device driver.
        assert_eq!(connect(controller, &[], true), Status::SUCCESS);
        assert!(kids.iter().all(|&k| has(k, &SERVICE)));
        assert_eq!(DB.with(|db| db.managing_drivers(kids[1])), Ok(vec![device]));

        // One driver from one child.
        assert_eq!(disconnect(kids[0], Some(device), None), Status::SUCCESS);
        assert!(!has(kids[0], &SERVICE) && has(kids[1], &SERVICE));
        assert_eq!(
            disconnect(kids[0], Some(device), None),
            Status::SUCCESS,
            "not managing"
        );
        assert_eq!(
            disconnect(kids[0], Some(unrelated), None),
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            disconnect(kids[0], Some(HandleId::from_value(0x1234)), None),
            Status::INVALID_PARAMETER
        );

        // A child whose driver refuses to stop keeps the bus connected:
        // uninstalling its CHILD_IO fails, and the other child is gone.
        DEVICE_REFUSES_STOP.store(true, Ordering::SeqCst);
        assert_eq!(disconnect(controller, None, None), Status::DEVICE_ERROR);
        assert_eq!(children(), [kids[1]]);
        assert!(has(kids[1], &SERVICE));
        assert_eq!(DB.with(|db| db.managing_drivers(controller)), Ok(vec![bus]));

        // Once it lets go, everything goes.
        DEVICE_REFUSES_STOP.store(false, Ordering::SeqCst);
        assert_eq!(disconnect(controller, None, None), Status::SUCCESS);
        assert!(children().is_empty());
        assert!(kids.iter().all(|&k| !DB.with(|db| db.is_handle(k))));
        assert_eq!(DB.with(|db| db.managing_drivers(controller)), Ok(vec![]));
        assert_eq!(
            disconnect(controller, None, None),
            Status::SUCCESS,
            "unmanaged"
        );

        // The preferred list does not stop other drivers from binding.
        assert_eq!(connect(controller, &[device], true), Status::SUCCESS);
        assert_eq!(BUS_STARTS.load(Ordering::SeqCst), 2);
        let kids = children();
        assert!(kids.iter().all(|&k| has(k, &SERVICE)));

        // ChildHandle: only that child is stopped; the bus stays connected.
        assert_eq!(
            disconnect(controller, Some(bus), Some(kids[0])),
            Status::SUCCESS
        );
        assert_eq!(children(), [kids[1]]);
        assert_eq!(DB.with(|db| db.managing_drivers(controller)), Ok(vec![bus]));

        // §7.3.9: an EXCLUSIVE open disconnects the BY_DRIVER holder.
        let app = install(None, &[(OTHER, token())]).unwrap();
        assert_eq!(
            open(
                controller,
                &BUS_IO,
                app,
                controller,
                OPEN_PROTOCOL_EXCLUSIVE
            ),
            Ok(Interface::from_ptr(token()))
        );
        assert!(children().is_empty());
        assert_eq!(
            connect(controller, &[], true),
            Status::NOT_FOUND,
            "the bus driver cannot open it BY_DRIVER now"
        );
        close(controller, &BUS_IO, app, controller).unwrap();

        // §7.3.4: reinstalling an interface a driver holds restarts the driver.
        assert_eq!(connect(controller, &[], true), Status::SUCCESS);
        let before = children();
        assert_eq!(before.len(), 2);
        let starts = BUS_STARTS.load(Ordering::SeqCst);
        static TOKEN2: u8 = 0;
        let token2 = &TOKEN2 as *const u8 as *mut c_void;
        // SAFETY: pointers are null or live locals.
        let status = unsafe {
            reinstall_protocol_interface(
                controller.as_raw(),
                &BUS_IO as *const Guid as *mut Guid,
                token(),
                token2,
            )
        };
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(BUS_STARTS.load(Ordering::SeqCst), starts + 1);
        let after = children();
        assert_eq!(after.len(), 2);
        assert!(after.iter().all(|c| !before.contains(c)), "new children");
        assert!(
            after.iter().all(|&k| has(k, &SERVICE)),
            "connected recursively"
        );

        // §7.3.3: uninstalling an interface a driver holds stops the driver.
        uninstall(controller, &[(BUS_IO, token2)]).unwrap();
        assert!(children().is_empty());
        assert!(!DB.with(|db| db.is_handle(controller)));

        override_protocols_rank_drivers();
    }

    /// Image handles the test platform and bus overrides name (values).
    static PLATFORM_PICKS: Global<Vec<usize>> = Global::new(Vec::new());
    static BUS_PICKS: Global<Vec<usize>> = Global::new(Vec::new());

    /// GetDriver over a list: the entry after `*image` (the first for NULL).
    fn next_pick(list: &Global<Vec<usize>>, image: *mut Handle) -> r_efi::efi::Status {
        // SAFETY: the core passes a live handle slot.
        let previous = unsafe { *image } as usize;
        let picks = list.with(|l| l.clone());
        let at = if previous == 0 {
            0
        } else {
            match picks.iter().position(|&p| p == previous) {
                Some(i) => i + 1,
                None => return r_efi::efi::Status::INVALID_PARAMETER,
            }
        };
        match picks.get(at) {
            Some(&next) => {
                // SAFETY: as above.
                unsafe { *image = next as Handle };
                r_efi::efi::Status::SUCCESS
            }
            None => r_efi::efi::Status::NOT_FOUND,
        }
    }

    extern "efiapi" fn platform_get_driver(
        _: *mut PlatformDriverOverrideProtocol,
        _: Handle,
        image: *mut Handle,
    ) -> r_efi::efi::Status {
        next_pick(&PLATFORM_PICKS, image)
    }

    extern "efiapi" fn platform_get_driver_path(
        _: *mut PlatformDriverOverrideProtocol,
        _: Handle,
        _: *mut *mut r_efi::protocols::device_path::Protocol,
    ) -> r_efi::efi::Status {
        r_efi::efi::Status::UNSUPPORTED
    }

    extern "efiapi" fn platform_driver_loaded(
        _: *mut PlatformDriverOverrideProtocol,
        _: Handle,
        _: *mut r_efi::protocols::device_path::Protocol,
        _: Handle,
    ) -> r_efi::efi::Status {
        r_efi::efi::Status::UNSUPPORTED
    }

    extern "efiapi" fn bus_get_driver(
        _: *mut BusSpecificDriverOverrideProtocol,
        image: *mut Handle,
    ) -> r_efi::efi::Status {
        next_pick(&BUS_PICKS, image)
    }

    extern "efiapi" fn family_version_7(_: *mut DriverFamilyOverrideProtocol) -> u32 {
        7
    }

    extern "efiapi" fn family_version_9(_: *mut DriverFamilyOverrideProtocol) -> u32 {
        9
    }

    /// §7.3.12: context, platform driver override, driver family override
    /// (by GetVersion), bus specific driver override, then Version.
    fn override_protocols_rank_drivers() {
        let handles: Vec<HandleId> = (0..8).map(|_| new_handle()).collect();
        let controller = handles[0];
        // Bindings (handle = image) with rising versions, so that without
        // overrides the order would be 7, 6, 5, 4, 3, 2, 1.
        let bindings: Vec<Binding> = (1..8)
            .map(|i| Binding {
                handle: handles[i],
                interface: Interface::from_value(i),
                image: handles[i],
                version: i as u32,
            })
            .collect();
        let platform = Box::leak(Box::new(PlatformDriverOverrideProtocol {
            get_driver: platform_get_driver,
            get_driver_path: platform_get_driver_path,
            driver_loaded: platform_driver_loaded,
        }));
        let bus = Box::leak(Box::new(BusSpecificDriverOverrideProtocol {
            get_driver: bus_get_driver,
        }));
        let family_low = Box::leak(Box::new(DriverFamilyOverrideProtocol {
            get_version: family_version_7,
        }));
        let family_high = Box::leak(Box::new(DriverFamilyOverrideProtocol {
            get_version: family_version_9,
        }));
        let platform_handle = install(
            None,
            &[(
                spec_gaps::PLATFORM_DRIVER_OVERRIDE_PROTOCOL_GUID,
                (platform as *mut PlatformDriverOverrideProtocol).cast(),
            )],
        )
        .unwrap();
        install(
            Some(controller),
            &[(
                spec_gaps::BUS_SPECIFIC_DRIVER_OVERRIDE_PROTOCOL_GUID,
                (bus as *mut BusSpecificDriverOverrideProtocol).cast(),
            )],
        )
        .unwrap();
        for (index, family) in [(4, &mut *family_low), (5, &mut *family_high)] {
            install(
                Some(handles[index]),
                &[(
                    spec_gaps::DRIVER_FAMILY_OVERRIDE_PROTOCOL_GUID,
                    (family as *mut DriverFamilyOverrideProtocol).cast(),
                )],
            )
            .unwrap();
        }
        // Platform: 2 then 1 (and 1 again: a repeat ends the list); bus: 3.
        PLATFORM_PICKS
            .with(|p| *p = alloc::vec![handles[2].value(), handles[1].value(), handles[1].value()]);
        BUS_PICKS.with(|p| *p = alloc::vec![handles[3].value()]);
        let order: Vec<usize> = driver_order(controller, &bindings, &[handles[6]])
            .iter()
            .map(|b| handles.iter().position(|&h| h == b.handle).unwrap())
            .collect();
        assert_eq!(order, [6, 2, 1, 5, 4, 3, 7]);

        uninstall(
            platform_handle,
            &[(
                spec_gaps::PLATFORM_DRIVER_OVERRIDE_PROTOCOL_GUID,
                (platform as *mut PlatformDriverOverrideProtocol).cast(),
            )],
        )
        .unwrap();
        let order: Vec<usize> = driver_order(controller, &bindings, &[])
            .iter()
            .map(|b| handles.iter().position(|&h| h == b.handle).unwrap())
            .collect();
        assert_eq!(
            order,
            [5, 4, 3, 7, 6, 2, 1],
            "without the platform override"
        );
    }
}
