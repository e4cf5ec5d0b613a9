//! Protocol handler services (UEFI 2.10 §7.3) over the handle database.

use crate::boundary::{self, guid, read, write};
use crate::handles::{HandleDb, HandleId};
use crate::spec_gaps;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use platform::sync::Global;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::driver::DriverBindingProtocol;
use uefi_raw::table::boot::{InterfaceType, OpenProtocolInformationEntry};
use uefi_raw::{Boolean, Event, Guid, Handle, Status};

pub static DB: Global<HandleDb> = Global::new(HandleDb::new());

/// Signals the events a database change asked for, after the borrow ended.
fn signal(events: crate::handles::Notify) {
    for event in events.0 {
        // SAFETY: SignalEvent takes the event by value and dereferences
        // nothing.
        let _ = unsafe { crate::events::signal_event(event as Event) };
    }
}

/// A fresh handle value: the address of a small heap object, so handles look
/// like the pointers the spec declares them to be and never repeat.
pub fn new_handle() -> HandleId {
    let id = Box::into_raw(Box::new(0u64)) as HandleId;
    DB.with(|db| db.create_handle(id));
    id
}

/// Installs protocols on a handle from firmware code (creating it if None).
pub fn install(
    handle: Option<HandleId>,
    protocols: &[(Guid, *mut c_void)],
) -> Result<HandleId, Status> {
    let handle = handle.unwrap_or_else(new_handle);
    for (g, interface) in protocols {
        let events = DB.with(|db| db.install(handle, *g, *interface as usize))?;
        signal(events);
    }
    Ok(handle)
}

pub fn get_protocol<T>(handle: HandleId, g: &Guid) -> Option<*mut T> {
    DB.with(|db| db.get(handle, g)).ok().map(|p| p as *mut T)
}

pub fn handles_with(g: &Guid) -> Vec<HandleId> {
    DB.with(|db| db.handles_with(g))
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn install_protocol_interface(
    handle: *mut Handle,
    protocol: *const Guid,
    interface_type: InterfaceType,
    interface: *const c_void,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let g = unsafe { guid(protocol) }?;
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let existing = unsafe { read(handle) }?;
        if interface_type != InterfaceType::NATIVE_INTERFACE {
            return Err(Status::INVALID_PARAMETER);
        }
        let id = if existing.is_null() {
            new_handle()
        } else {
            let id = existing as HandleId;
            if !DB.with(|db| db.is_handle(id)) {
                return Err(Status::INVALID_PARAMETER);
            }
            id
        };
        let installed = DB.with(|db| db.install(id, g, interface as usize));
        let events = match installed {
            Ok(events) => events,
            Err(e) => {
                // A handle created for this call must not linger empty.
                if existing.is_null() {
                    DB.with(|db| db.remove_handle(id));
                }
                return Err(e);
            }
        };
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(handle, id as Handle) }?;
        signal(events);
        Ok(())
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn uninstall_protocol_interface(
    handle: Handle,
    protocol: *const Guid,
    interface: *const c_void,
) -> Status {
    let result =
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { guid(protocol) }.and_then(|g| uninstall_one(handle as HandleId, &g, interface as usize));
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn reinstall_protocol_interface(
    handle: Handle,
    protocol: *const Guid,
    old: *const c_void,
    new: *const c_void,
) -> Status {
    // §7.3.4: the drivers using the old interface are disconnected, and the
    // controller is connected again afterwards (the new interface may suit
    // other drivers), whether or not the replacement succeeded.
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let result = unsafe { guid(protocol) }.and_then(|g| {
        let id = handle as HandleId;
        let holders = DB
            .with(|db| db.by_driver_agents(id, &g, Some(old as usize)))
            .unwrap_or_default();
        for &holder in &holders {
            let _ = disconnect(id, Some(holder), None);
        }
        let replaced = DB
            .with(|db| db.reinstall(id, &g, old as usize, new as usize))
            .map(signal);
        if replaced.is_ok() || !holders.is_empty() {
            let _ = connect(id, &[], true);
        }
        replaced
    });
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn handle_protocol(
    handle: Handle,
    protocol: *const Guid,
    interface: *mut *mut c_void,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let g = unsafe { guid(protocol) }?;
        if interface.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let found = DB.with(|db| db.get(handle as HandleId, &g));
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe {
            write(
                interface,
                found.map_or(core::ptr::null_mut(), |p| p as *mut c_void),
            )
        }?;
        found.map(|_| ())
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn register_protocol_notify(
    protocol: *const Guid,
    event: Event,
    registration: *mut *mut c_void,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let g = unsafe { guid(protocol) }?;
        if registration.is_null() || !crate::events::is_valid_event(event) {
            return Err(Status::INVALID_PARAMETER);
        }
        let key = Box::into_raw(Box::new(0u64)) as usize;
        DB.with(|db| db.register_notify(g, event as usize, key));
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(registration, key as *mut c_void) }
    })();
    boundary::status(result)
}

/// The handles a LocateHandle search names (§7.3.15).
fn search(
    search_type: i32,
    protocol: *const Guid,
    key: *const c_void,
) -> Result<Vec<HandleId>, Status> {
    match search_type {
        spec_gaps::ALL_HANDLES => Ok(DB.with(|db| db.all_handles())),
        spec_gaps::BY_PROTOCOL => {
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            let g = unsafe { guid(protocol) }?;
            Ok(DB.with(|db| db.handles_with(&g)))
        }
        spec_gaps::BY_REGISTER_NOTIFY => {
            let next = DB.with(|db| db.next_notified(key as usize))?;
            Ok(next.into_iter().map(|(h, _)| h).collect())
        }
        _ => Err(Status::INVALID_PARAMETER),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn locate_handle(
    search_type: i32,
    protocol: *const Guid,
    key: *const c_void,
    size: *mut usize,
    buffer: *mut Handle,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let available = unsafe { read(size) }?;
        let handles = search(search_type, protocol, key)?;
        if handles.is_empty() {
            return Err(Status::NOT_FOUND);
        }
        let needed = handles.len() * core::mem::size_of::<Handle>();
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(size, needed) }?;
        if available < needed {
            return Err(Status::BUFFER_TOO_SMALL);
        }
        if buffer.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        for (i, h) in handles.iter().enumerate() {
            // SAFETY: the caller's buffer holds `available >= needed` bytes.
            unsafe { write(buffer.add(i), *h as Handle) }?;
        }
        Ok(())
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn locate_handle_buffer(
    search_type: i32,
    protocol: *const Guid,
    key: *const c_void,
    count: *mut usize,
    buffer: *mut *mut Handle,
) -> Status {
    let result = (|| {
        if count.is_null() || buffer.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let handles = search(search_type, protocol, key)?;
        if handles.is_empty() {
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            unsafe { write(count, 0) }?;
            return Err(Status::NOT_FOUND);
        }
        let out = crate::pool::allocate(
            platform::memory::MemoryType::BOOT_SERVICES_DATA,
            handles.len() * core::mem::size_of::<Handle>(),
        )? as *mut Handle;
        for (i, h) in handles.iter().enumerate() {
            // SAFETY: `out` was just allocated with room for every handle.
            unsafe { out.add(i).write(*h as Handle) };
        }
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(count, handles.len()) }?;
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(buffer, out) }
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn locate_protocol(
    protocol: *const Guid,
    registration: *const c_void,
    interface: *mut *mut c_void,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let g = unsafe { guid(protocol) }?;
        if interface.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let found = DB.with(|db| {
            if registration.is_null() {
                db.handles_with(&g)
                    .first()
                    .and_then(|&h| db.get(h, &g).ok())
            } else {
                db.next_notified(registration as usize)
                    .ok()
                    .flatten()
                    .and_then(|(h, _)| db.get(h, &g).ok())
            }
        });
        match found {
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            Some(p) => unsafe { write(interface, p as *mut c_void) },
            None => {
                // SAFETY: the caller's pointers, as this function's # Safety requires.
                unsafe { write(interface, core::ptr::null_mut()) }?;
                Err(Status::NOT_FOUND)
            }
        }
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn open_protocol(
    handle: Handle,
    protocol: *const Guid,
    interface: *mut *mut c_void,
    agent: Handle,
    controller: Handle,
    attributes: u32,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let g = unsafe { guid(protocol) }?;
        if interface.is_null() && attributes != spec_gaps::OPEN_PROTOCOL_TEST_PROTOCOL {
            return Err(Status::INVALID_PARAMETER);
        }
        let opened = open(
            handle as HandleId,
            &g,
            agent as HandleId,
            controller as HandleId,
            attributes,
        );
        if attributes != spec_gaps::OPEN_PROTOCOL_TEST_PROTOCOL {
            let value = match opened {
                Ok(p) => p as *mut c_void,
                // §7.3.9: on ALREADY_STARTED the interface is still returned.
                Err(Status::ALREADY_STARTED) => {
                    DB.with(|db| db.get(handle as HandleId, &g)).unwrap_or(0) as *mut c_void
                }
                Err(_) => core::ptr::null_mut(),
            };
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            unsafe { write(interface, value) }?;
        }
        opened.map(|_| ())
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn close_protocol(
    handle: Handle,
    protocol: *const Guid,
    agent: Handle,
    controller: Handle,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let result = unsafe { guid(protocol) }.and_then(|g| {
        close(
            handle as HandleId,
            &g,
            agent as HandleId,
            controller as HandleId,
        )
    });
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn open_protocol_information(
    handle: Handle,
    protocol: *const Guid,
    entries: *mut *mut OpenProtocolInformationEntry,
    count: *mut usize,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let g = unsafe { guid(protocol) }?;
        if entries.is_null() || count.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let info = DB.with(|db| db.open_information(handle as HandleId, &g))?;
        let size = info.len().max(1) * core::mem::size_of::<OpenProtocolInformationEntry>();
        let out = crate::pool::allocate(platform::memory::MemoryType::BOOT_SERVICES_DATA, size)?
            as *mut OpenProtocolInformationEntry;
        for (i, o) in info.iter().enumerate() {
            let entry = OpenProtocolInformationEntry {
                agent_handle: o.agent as Handle,
                controller_handle: o.controller as Handle,
                attributes: o.attributes,
                open_count: o.count,
            };
            // SAFETY: `out` has room for every entry.
            unsafe { out.add(i).write(entry) };
        }
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(count, info.len()) }?;
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(entries, out) }
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
pub unsafe extern "efiapi" fn protocols_per_handle(
    handle: Handle,
    buffer: *mut *mut *const Guid,
    count: *mut usize,
) -> Status {
    let result = (|| {
        if buffer.is_null() || count.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let guids = DB.with(|db| db.protocols_per_handle(handle as HandleId))?;
        // The array points at GUIDs that must outlive the call: keep one
        // pool block holding the pointer array followed by the GUIDs.
        let ptrs = guids.len() * core::mem::size_of::<*const Guid>();
        let block = crate::pool::allocate(
            platform::memory::MemoryType::BOOT_SERVICES_DATA,
            ptrs + guids.len() * 16 + 8,
        )?;
        let array = block as *mut *const Guid;
        // SAFETY: the block holds the pointer array, then (8-aligned) GUIDs.
        let guid_area = unsafe { block.add(ptrs) } as *mut Guid;
        for (i, g) in guids.iter().enumerate() {
            // SAFETY: both writes stay inside the block sized above.
            unsafe {
                guid_area.add(i).write_unaligned(*g);
                array.add(i).write(guid_area.add(i));
            }
        }
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(count, guids.len()) }?;
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(buffer, array) }
    })();
    boundary::status(result)
}

/// LocateDevicePath (§7.3.13): the handle with `protocol` whose device path
/// is the longest prefix of `*device_path`; advances `*device_path` past it.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3.13 requires of the caller.
pub unsafe extern "efiapi" fn locate_device_path(
    protocol: *const Guid,
    device_path: *mut *const DevicePathProtocol,
    device: *mut Handle,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let g = unsafe { guid(protocol) }?;
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let path = unsafe { read(device_path) }?;
        if path.is_null() || device.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        // SAFETY: the caller's path, as this function's # Safety requires.
        let wanted = unsafe { crate::device_path::read_path(path) }?;
        let mut best: Option<(HandleId, usize)> = None;
        for h in handles_with(&g) {
            let Some(dp) = get_protocol::<DevicePathProtocol>(h, &DevicePathProtocol::GUID) else {
                continue;
            };
            // SAFETY: device paths installed on handles are well formed
            // (the installer's contract, §10.2).
            let Ok(candidate) = (unsafe { crate::device_path::read_path(dp) }) else {
                continue;
            };
            if let Some(len) = crate::device_path::prefix_len(&candidate, &wanted)
                && best.is_none_or(|(_, l)| len > l)
            {
                best = Some((h, len));
            }
        }
        let (h, len) = best.ok_or(Status::NOT_FOUND)?;
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(device, h as Handle) }?;
        // SAFETY: `len` bytes are the matched prefix inside the caller's path.
        unsafe {
            write(
                device_path,
                (path as *const u8).add(len) as *const DevicePathProtocol,
            )
        }
    })();
    boundary::status(result)
}

// ---------------------------------------------------------------------------
// The driver model (§11.1): ConnectController (§7.3.12) and
// DisconnectController (§7.3.13) over EFI_DRIVER_BINDING_PROTOCOL. The
// relationships live in the open records: a driver manages a controller when
// it holds one of its protocols BY_DRIVER, and a child is the controller
// handle of a BY_CHILD_CONTROLLER open of the parent's protocols.

/// A driver's binding as the core calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Binding {
    /// The handle carrying EFI_DRIVER_BINDING_PROTOCOL (the agent of the
    /// driver's opens).
    handle: HandleId,
    interface: usize,
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
        interface: interface as usize,
        image: image as HandleId,
        version,
    })
}

/// The order ConnectController tries drivers in (§7.3.12): the drivers the
/// caller lists (by image or binding handle) first, in list order (the
/// context override), then all others by Version, highest first. The
/// platform, driver family and bus specific override protocols that rank
/// between those two are not consulted (a simplification: the firmware
/// installs none of them, and neither do the boot loaders we run).
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

/// Whether `binding` is still installed as it was when collected (a driver
/// started earlier may have changed the database).
fn still_installed(binding: &Binding) -> bool {
    DB.with(|db| db.get(binding.handle, &DriverBindingProtocol::GUID))
        .is_ok_and(|i| i == binding.interface)
}

fn driver_binding_ptr(binding: &Binding) -> *mut DriverBindingProtocol {
    binding.interface as *mut DriverBindingProtocol
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
    unsafe { supported(this, controller as Handle, remaining) }
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
    unsafe { start(this, controller as Handle, remaining) }
}

fn call_stop(binding: &Binding, controller: HandleId, children: &[HandleId]) -> Status {
    let this = driver_binding_ptr(binding);
    let mut buffer: Vec<Handle> = children.iter().map(|&c| c as Handle).collect();
    let list = if buffer.is_empty() {
        core::ptr::null()
    } else {
        buffer.as_mut_ptr().cast_const()
    };
    // SAFETY: as in `call_supported`.
    let stop = unsafe { (*this).stop };
    // SAFETY: the driver's own Stop (§11.1.3); `list` holds `buffer.len()`
    // handles and outlives the call.
    unsafe { stop(this, controller as Handle, buffer.len(), list) }
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
    let order = connect_order(&bindings, preferred);
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
        let general = connect_order(&bindings, &[]);
        let mut visited = alloc::vec![controller];
        let mut queue: alloc::collections::VecDeque<HandleId> =
            DB.with(|db| db.children(controller, None)).into();
        while let Some(child) = queue.pop_front() {
            if visited.contains(&child) {
                continue;
            }
            visited.push(child);
            connect_single(child, &general, core::ptr::null());
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
            preferred.push(handle as HandleId);
        }
    }
    // SAFETY: the caller's path, as this function's # Safety requires.
    unsafe {
        connect_from(
            controller as HandleId,
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
        controller as HandleId,
        (!driver.is_null()).then_some(driver as HandleId),
        (!child.is_null()).then_some(child as HandleId),
    )
}

/// OpenProtocol (§7.3.9) for firmware code: the interface (0 for
/// TEST_PROTOCOL). An EXCLUSIVE open of an interface other agents hold
/// BY_DRIVER first disconnects those drivers, as the spec asks.
pub fn open(
    handle: HandleId,
    g: &Guid,
    agent: HandleId,
    controller: HandleId,
    attributes: u32,
) -> Result<usize, Status> {
    let opened = DB.with(|db| db.open(handle, g, agent, controller, attributes));
    if opened != Err(Status::ACCESS_DENIED) || attributes & spec_gaps::OPEN_PROTOCOL_EXCLUSIVE == 0
    {
        return opened;
    }
    let holders = DB.with(|db| {
        let opens = db.open_information(handle, g).unwrap_or_default();
        // Another agent's EXCLUSIVE open cannot be taken away.
        if opens
            .iter()
            .any(|o| o.attributes & spec_gaps::OPEN_PROTOCOL_EXCLUSIVE != 0)
        {
            return Vec::new();
        }
        db.by_driver_agents(handle, g, None)
            .unwrap_or_default()
            .into_iter()
            .filter(|&a| a != agent)
            .collect()
    });
    if holders.is_empty() {
        return opened;
    }
    for holder in holders {
        let _ = disconnect(handle, Some(holder), None);
    }
    DB.with(|db| db.open(handle, g, agent, controller, attributes))
}

/// CloseProtocol (§7.3.10) for firmware code.
pub fn close(
    handle: HandleId,
    g: &Guid,
    agent: HandleId,
    controller: HandleId,
) -> Result<(), Status> {
    DB.with(|db| db.close(handle, g, agent, controller))
}

/// UninstallProtocolInterface (§7.3.3) of one interface: the drivers holding
/// it BY_DRIVER are disconnected first; if it is still held after that, they
/// are connected again and the call fails with EFI_ACCESS_DENIED.
fn uninstall_one(handle: HandleId, g: &Guid, interface: usize) -> Result<(), Status> {
    let holders = DB.with(|db| db.by_driver_agents(handle, g, Some(interface)))?;
    for &holder in &holders {
        let _ = disconnect(handle, Some(holder), None);
    }
    let removed = DB.with(|db| db.uninstall(handle, g, interface));
    if removed == Err(Status::ACCESS_DENIED) && !holders.is_empty() {
        let _ = connect(handle, &[], true);
    }
    removed
}

/// Uninstalls `protocols` from `handle` from firmware code, all or nothing
/// (§7.3.17): on a failure the ones already removed are installed again.
pub fn uninstall(handle: HandleId, protocols: &[(Guid, *mut c_void)]) -> Result<(), Status> {
    for (done, (g, interface)) in protocols.iter().enumerate() {
        if let Err(status) = uninstall_one(handle, g, *interface as usize) {
            let events = DB.with(|db| {
                db.create_handle(handle);
                let mut events = Vec::new();
                for (g, interface) in &protocols[..done] {
                    if let Ok(notify) = db.install(handle, *g, *interface as usize) {
                        events.extend(notify.0);
                    }
                }
                crate::handles::Notify(events)
            });
            signal(events);
            return Err(status);
        }
    }
    Ok(())
}

/// Pairs of (GUID*, interface*) from the variadic argument array, up to NULL.
///
/// # Safety
/// `args` points at (GUID pointer, interface) pairs ending with a null GUID
/// pointer, as the trampolines below lay them out from the caller's
/// arguments (§7.3.16, §7.3.17).
unsafe fn vararg_pairs(args: *const *mut c_void) -> Result<Vec<(Guid, *mut c_void)>, Status> {
    let mut pairs = Vec::new();
    for i in 0..64 {
        // SAFETY: `args` points at the spilled variadic arguments the
        // trampoline laid out; the list ends at a NULL GUID pointer.
        let g = unsafe { args.add(2 * i).read() } as *const Guid;
        if g.is_null() {
            return Ok(pairs);
        }
        // SAFETY: as above: every GUID pointer is followed by its interface.
        let interface = unsafe { args.add(2 * i + 1).read() };
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        pairs.push((unsafe { guid(g) }?, interface));
    }
    Err(Status::INVALID_PARAMETER)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
#[unsafe(no_mangle)]
unsafe extern "efiapi" fn install_multiple_impl(
    handle: *mut Handle,
    args: *const *mut c_void,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let pairs = unsafe { vararg_pairs(args) }?;
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let existing = unsafe { read(handle) }?;
        // A device path already present elsewhere makes the call fail (§7.3.16).
        for (g, interface) in &pairs {
            if *g == DevicePathProtocol::GUID {
                let mut path = *interface as *const DevicePathProtocol;
                let mut found: Handle = core::ptr::null_mut();
                // SAFETY: a device path interface the caller installs is a
                // device path (its contract); the GUID and slots are locals.
                // LocateDevicePath leaves `path` inside that path.
                let duplicate = unsafe {
                    locate_device_path(&DevicePathProtocol::GUID, &mut path, &mut found)
                        == Status::SUCCESS
                        && crate::device_path::is_end(path)
                };
                if duplicate {
                    return Err(Status::ALREADY_STARTED);
                }
            }
        }
        let id = if existing.is_null() {
            new_handle()
        } else if DB.with(|db| db.is_handle(existing as HandleId)) {
            existing as HandleId
        } else {
            return Err(Status::INVALID_PARAMETER);
        };
        let mut done = Vec::new();
        for (g, interface) in &pairs {
            match DB.with(|db| db.install(id, *g, *interface as usize)) {
                Ok(events) => {
                    done.push((*g, *interface));
                    signal(events);
                }
                Err(e) => {
                    // All or nothing: roll back what this call installed.
                    DB.with(|db| {
                        for (g, interface) in &done {
                            let _ = db.uninstall(id, g, *interface as usize);
                        }
                        if existing.is_null() {
                            db.remove_handle(id);
                        }
                    });
                    return Err(e);
                }
            }
        }
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(handle, id as Handle) }
    })();
    boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.3 requires of the caller.
#[unsafe(no_mangle)]
unsafe extern "efiapi" fn uninstall_multiple_impl(
    handle: Handle,
    args: *const *mut c_void,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let result = unsafe { vararg_pairs(args) }.and_then(|pairs| {
        // All or nothing; the spec's status is EFI_INVALID_PARAMETER when
        // any removal fails (§7.3.17).
        uninstall(handle as HandleId, &pairs).map_err(|_| Status::INVALID_PARAMETER)
    });
    boundary::status(result)
}

// The MS x64 ABI passes variadic arguments like fixed ones: four in
// registers (with caller-reserved home slots) and the rest on the stack. The
// trampolines spill the registers into their home slots, making one array of
// arguments, and pass a pointer to its second element.
core::arch::global_asm!(
    r#"
    .pushsection .text.efi_varargs, "ax"
    .globl install_multiple_protocol_interfaces
install_multiple_protocol_interfaces:
    mov [rsp + 8], rcx
    mov [rsp + 16], rdx
    mov [rsp + 24], r8
    mov [rsp + 32], r9
    lea rdx, [rsp + 16]
    sub rsp, 40
    call install_multiple_impl
    add rsp, 40
    ret

    .globl uninstall_multiple_protocol_interfaces
uninstall_multiple_protocol_interfaces:
    mov [rsp + 8], rcx
    mov [rsp + 16], rdx
    mov [rsp + 24], r8
    mov [rsp + 32], r9
    lea rdx, [rsp + 16]
    sub rsp, 40
    call uninstall_multiple_impl
    add rsp, 40
    ret
    .popsection
    "#
);

// The trampolines take the MS x64 (efiapi) convention. uefi-raw types the
// table fields `extern "C"` because variadic efiapi function pointers need an
// unstable feature; the firmware only stores these addresses in the table
// and never calls them from Rust.
unsafe extern "C" {
    /// InstallMultipleProtocolInterfaces (§7.3.16).
    ///
    /// # Safety
    /// Pointer arguments as UEFI 2.10 §7.3.16 requires of the caller.
    pub fn install_multiple_protocol_interfaces(handle: *mut Handle, ...) -> Status;
    /// UninstallMultipleProtocolInterfaces (§7.3.17).
    ///
    /// # Safety
    /// Pointer arguments as UEFI 2.10 §7.3.17 requires of the caller.
    pub fn uninstall_multiple_protocol_interfaces(handle: Handle, ...) -> Status;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec_gaps::{
        OPEN_PROTOCOL_BY_CHILD_CONTROLLER, OPEN_PROTOCOL_BY_DRIVER, OPEN_PROTOCOL_EXCLUSIVE,
    };
    use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
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
            image_handle: handle as Handle,
            driver_binding_handle: handle as Handle,
        }));
        install(
            Some(handle),
            &[(
                DriverBindingProtocol::GUID,
                (protocol as *mut DriverBindingProtocol).cast(),
            )],
        )
        .unwrap();
        slot.store(handle, Ordering::SeqCst);
        handle
    }

    /// Supported as drivers write it: a BY_DRIVER open that is closed again.
    fn probe(controller: Handle, g: &Guid, agent: &AtomicUsize) -> Status {
        let agent = agent.load(Ordering::SeqCst);
        let controller = controller as HandleId;
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
        let me = BUS_HANDLE.load(Ordering::SeqCst);
        let controller = controller as HandleId;
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
        let me = BUS_HANDLE.load(Ordering::SeqCst);
        let controller = controller as HandleId;
        if count == 0 {
            return boundary::status(close(controller, &BUS_IO, me, controller));
        }
        // SAFETY: the core passes `count` child handles.
        let children = unsafe { core::slice::from_raw_parts(children, count) };
        let mut status = Status::SUCCESS;
        for &child in children {
            let child = child as HandleId;
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
        let me = DEVICE_HANDLE.load(Ordering::SeqCst);
        let controller = controller as HandleId;
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
        let controller = controller as HandleId;
        uninstall(controller, &[(SERVICE, token())]).unwrap();
        let me = DEVICE_HANDLE.load(Ordering::SeqCst);
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
        let b = |handle, image, version| Binding {
            handle,
            interface: handle,
            image,
            version,
        };
        let all = [b(1, 1, 5), b(2, 2, 9), b(3, 7, 5), b(4, 4, 1)];
        let order = |preferred: &[HandleId]| -> Vec<HandleId> {
            connect_order(&all, preferred)
                .iter()
                .map(|b| b.handle)
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
        assert_eq!(connect(0x1234, &[], false), Status::INVALID_PARAMETER);

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
            disconnect(kids[0], Some(0x1234), None),
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
            Ok(token() as usize)
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
                controller as Handle,
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
    }
}
