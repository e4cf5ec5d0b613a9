//! Protocol handler services (UEFI 2.10 §7.3) over the handle database.
//! The driver model (ConnectController, DisconnectController) is in
//! [`driver_model`].

mod driver_model;

pub use driver_model::{connect, connect_controller, disconnect, disconnect_controller};

use crate::boundary::{self, guid, read, write};
use crate::handles::HandleDb;
use crate::ids::{EventId, HandleId, Interface, Registration};
use crate::spec_gaps;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use platform::sync::Global;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::table::boot::{InterfaceType, OpenProtocolInformationEntry};
use uefi_raw::{Event, Guid, Handle, Status};

pub static DB: Global<HandleDb> = Global::new(HandleDb::new());

/// Signals the events a database change asked for, after the borrow ended.
fn signal(events: crate::handles::Notify) {
    for event in events.0 {
        // SAFETY: SignalEvent takes the event by value and dereferences
        // nothing.
        let _ = unsafe { crate::events::signal_event(event.as_raw()) };
    }
}

/// A fresh handle value: the address of a small heap object, so handles look
/// like the pointers the spec declares them to be and never repeat.
pub fn new_handle() -> HandleId {
    let id = HandleId::from_raw(Box::into_raw(Box::new(0u64)).cast());
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
        let events = DB.with(|db| db.install(handle, *g, Interface::from_ptr(*interface)))?;
        signal(events);
    }
    Ok(handle)
}

pub fn get_protocol<T>(handle: HandleId, g: &Guid) -> Option<*mut T> {
    DB.with(|db| db.get(handle, g))
        .ok()
        .map(Interface::as_exposed_ptr)
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
            let id = HandleId::from_raw(existing);
            if !DB.with(|db| db.is_handle(id)) {
                return Err(Status::INVALID_PARAMETER);
            }
            id
        };
        let installed = DB.with(|db| db.install(id, g, Interface::from_ptr(interface)));
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
        unsafe { write(handle, id.as_raw()) }?;
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
        unsafe { guid(protocol) }.and_then(|g| uninstall_one(HandleId::from_raw(handle), &g, Interface::from_ptr(interface)));
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
        let id = HandleId::from_raw(handle);
        let holders = DB
            .with(|db| db.by_driver_agents(id, &g, Some(Interface::from_ptr(old))))
            .unwrap_or_default();
        for &holder in &holders {
            let _ = disconnect(id, Some(holder), None);
        }
        let replaced = DB
            .with(|db| db.reinstall(id, &g, Interface::from_ptr(old), Interface::from_ptr(new)))
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
        let found = DB.with(|db| db.get(HandleId::from_raw(handle), &g));
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe {
            write(
                interface,
                found.map_or(core::ptr::null_mut(), Interface::as_exposed_ptr),
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
        let key = Registration::from_raw(Box::into_raw(Box::new(0u64)).cast());
        DB.with(|db| db.register_notify(g, EventId::from_raw(event), key));
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(registration, key.as_raw()) }
    })();
    boundary::status(result)
}

/// CloseEvent (§7.1.3) as the boot services table offers it: the event
/// table closes the event ([`crate::events::close_event`]), and the
/// RegisterProtocolNotify registrations tied to it go too, so their keys
/// stop naming a registration.
///
/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.1): the event is a
/// value that is only looked up.
pub unsafe extern "efiapi" fn close_event(event: Event) -> Status {
    // SAFETY: as this function's # Safety states.
    let status = unsafe { crate::events::close_event(event) };
    if status == Status::SUCCESS {
        DB.with(|db| db.unregister_event(EventId::from_raw(event)));
    }
    status
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
            let next = DB.with(|db| db.next_notified(Registration::from_raw(key.cast_mut())))?;
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
            unsafe { write(buffer.add(i), h.as_raw()) }?;
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
            unsafe { out.add(i).write(h.as_raw()) };
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
                db.next_notified(Registration::from_raw(registration.cast_mut()))
                    .ok()
                    .flatten()
                    .and_then(|(h, _)| db.get(h, &g).ok())
            }
        });
        match found {
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            Some(p) => unsafe { write(interface, p.as_exposed_ptr()) },
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
        let handle = HandleId::from_raw(handle);
        let opened = open(
            handle,
            &g,
            HandleId::from_raw(agent),
            HandleId::from_raw(controller),
            attributes,
        );
        if attributes != spec_gaps::OPEN_PROTOCOL_TEST_PROTOCOL {
            let value = match opened {
                Ok(p) => p.as_exposed_ptr(),
                // §7.3.9: on ALREADY_STARTED the interface is still returned.
                Err(Status::ALREADY_STARTED) => DB
                    .with(|db| db.get(handle, &g))
                    .map_or(core::ptr::null_mut(), Interface::as_exposed_ptr),
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
            HandleId::from_raw(handle),
            &g,
            HandleId::from_raw(agent),
            HandleId::from_raw(controller),
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
        let info = DB.with(|db| db.open_information(HandleId::from_raw(handle), &g))?;
        let size = info.len().max(1) * core::mem::size_of::<OpenProtocolInformationEntry>();
        let out = crate::pool::allocate(platform::memory::MemoryType::BOOT_SERVICES_DATA, size)?
            as *mut OpenProtocolInformationEntry;
        for (i, o) in info.iter().enumerate() {
            let entry = OpenProtocolInformationEntry {
                agent_handle: o.agent.as_raw(),
                controller_handle: o.controller.as_raw(),
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
        let guids = DB.with(|db| db.protocols_per_handle(HandleId::from_raw(handle)))?;
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
        if path.is_null() {
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
        // §7.3.14: no match is EFI_NOT_FOUND whatever Device is; a NULL
        // Device is only refused once there is a handle to return.
        let (h, len) = best.ok_or(Status::NOT_FOUND)?;
        if device.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(device, h.as_raw()) }?;
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

/// OpenProtocol (§7.3.9) for firmware code: the interface (NULL for
/// TEST_PROTOCOL). An EXCLUSIVE open of an interface other agents hold
/// BY_DRIVER first disconnects those drivers, as the spec asks.
pub fn open(
    handle: HandleId,
    g: &Guid,
    agent: HandleId,
    controller: HandleId,
    attributes: u32,
) -> Result<Interface, Status> {
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
fn uninstall_one(handle: HandleId, g: &Guid, interface: Interface) -> Result<(), Status> {
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
        if let Err(status) = uninstall_one(handle, g, Interface::from_ptr(*interface)) {
            let events = DB.with(|db| {
                db.create_handle(handle);
                let mut events = Vec::new();
                for (g, interface) in &protocols[..done] {
                    if let Ok(notify) = db.install(handle, *g, Interface::from_ptr(*interface)) {
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
        } else if DB.with(|db| db.is_handle(HandleId::from_raw(existing))) {
            HandleId::from_raw(existing)
        } else {
            return Err(Status::INVALID_PARAMETER);
        };
        let mut done = Vec::new();
        for (g, interface) in &pairs {
            match DB.with(|db| db.install(id, *g, Interface::from_ptr(*interface))) {
                Ok(events) => {
                    done.push((*g, *interface));
                    signal(events);
                }
                Err(e) => {
                    // All or nothing: roll back what this call installed.
                    DB.with(|db| {
                        for (g, interface) in &done {
                            let _ = db.uninstall(id, g, Interface::from_ptr(*interface));
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
        unsafe { write(handle, id.as_raw()) }
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
        uninstall(HandleId::from_raw(handle), &pairs).map_err(|_| Status::INVALID_PARAMETER)
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
