//! Protocol handler services (UEFI 2.10 §7.3) over the handle database.

// EFI services are safe `extern "efiapi" fn`s (the table's field types) whose
// pointer arguments the spec makes the caller responsible for.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::boundary::{self, guid, read, write};
use crate::handles::{HandleDb, HandleId};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use platform::sync::Global;
use r_efi::efi::{Boolean, Event, Guid, Handle, LocateSearchType, Status};
use r_efi::protocols::device_path;
use r_efi::system::OpenProtocolInformationEntry;

pub static DB: Global<HandleDb> = Global::new(HandleDb::new());

/// Signals the events a database change asked for, after the borrow ended.
fn signal(events: crate::handles::Notify) {
    for event in events.0 {
        crate::events::signal_event(event as Event);
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

pub extern "efiapi" fn install_protocol_interface(
    handle: *mut Handle,
    protocol: *mut Guid,
    interface_type: r_efi::efi::InterfaceType,
    interface: *mut c_void,
) -> Status {
    let result = (|| {
        let g = guid(protocol)?;
        let existing = read(handle)?;
        if interface_type != r_efi::efi::NATIVE_INTERFACE {
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
        write(handle, id as Handle)?;
        signal(events);
        Ok(())
    })();
    boundary::status(result)
}

pub extern "efiapi" fn uninstall_protocol_interface(
    handle: Handle,
    protocol: *mut Guid,
    interface: *mut c_void,
) -> Status {
    let result = guid(protocol)
        .and_then(|g| DB.with(|db| db.uninstall(handle as HandleId, &g, interface as usize)));
    boundary::status(result)
}

pub extern "efiapi" fn reinstall_protocol_interface(
    handle: Handle,
    protocol: *mut Guid,
    old: *mut c_void,
    new: *mut c_void,
) -> Status {
    let result = guid(protocol).and_then(|g| {
        DB.with(|db| db.reinstall(handle as HandleId, &g, old as usize, new as usize))
    });
    boundary::status(result.map(signal))
}

pub extern "efiapi" fn handle_protocol(
    handle: Handle,
    protocol: *mut Guid,
    interface: *mut *mut c_void,
) -> Status {
    let result = (|| {
        let g = guid(protocol)?;
        if interface.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let found = DB.with(|db| db.get(handle as HandleId, &g));
        write(
            interface,
            found.map_or(core::ptr::null_mut(), |p| p as *mut c_void),
        )?;
        found.map(|_| ())
    })();
    boundary::status(result)
}

pub extern "efiapi" fn register_protocol_notify(
    protocol: *mut Guid,
    event: Event,
    registration: *mut *mut c_void,
) -> Status {
    let result = (|| {
        let g = guid(protocol)?;
        if registration.is_null() || !crate::events::is_valid_event(event) {
            return Err(Status::INVALID_PARAMETER);
        }
        let key = Box::into_raw(Box::new(0u64)) as usize;
        DB.with(|db| db.register_notify(g, event as usize, key));
        write(registration, key as *mut c_void)
    })();
    boundary::status(result)
}

/// The handles a LocateHandle search names (§7.3.15).
fn search(
    search_type: LocateSearchType,
    protocol: *mut Guid,
    key: *mut c_void,
) -> Result<Vec<HandleId>, Status> {
    match search_type {
        r_efi::efi::ALL_HANDLES => Ok(DB.with(|db| db.all_handles())),
        r_efi::efi::BY_PROTOCOL => {
            let g = guid(protocol)?;
            Ok(DB.with(|db| db.handles_with(&g)))
        }
        r_efi::efi::BY_REGISTER_NOTIFY => {
            let next = DB.with(|db| db.next_notified(key as usize))?;
            Ok(next.into_iter().map(|(h, _)| h).collect())
        }
        _ => Err(Status::INVALID_PARAMETER),
    }
}

pub extern "efiapi" fn locate_handle(
    search_type: LocateSearchType,
    protocol: *mut Guid,
    key: *mut c_void,
    size: *mut usize,
    buffer: *mut Handle,
) -> Status {
    let result = (|| {
        let available = read(size)?;
        let handles = search(search_type, protocol, key)?;
        if handles.is_empty() {
            return Err(Status::NOT_FOUND);
        }
        let needed = handles.len() * core::mem::size_of::<Handle>();
        write(size, needed)?;
        if available < needed {
            return Err(Status::BUFFER_TOO_SMALL);
        }
        if buffer.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        for (i, h) in handles.iter().enumerate() {
            // SAFETY: the caller's buffer holds `available >= needed` bytes.
            write(unsafe { buffer.add(i) }, *h as Handle)?;
        }
        Ok(())
    })();
    boundary::status(result)
}

pub extern "efiapi" fn locate_handle_buffer(
    search_type: LocateSearchType,
    protocol: *mut Guid,
    key: *mut c_void,
    count: *mut usize,
    buffer: *mut *mut Handle,
) -> Status {
    let result = (|| {
        if count.is_null() || buffer.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let handles = search(search_type, protocol, key)?;
        if handles.is_empty() {
            write(count, 0)?;
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
        write(count, handles.len())?;
        write(buffer, out)
    })();
    boundary::status(result)
}

pub extern "efiapi" fn locate_protocol(
    protocol: *mut Guid,
    registration: *mut c_void,
    interface: *mut *mut c_void,
) -> Status {
    let result = (|| {
        let g = guid(protocol)?;
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
            Some(p) => write(interface, p as *mut c_void),
            None => {
                write(interface, core::ptr::null_mut())?;
                Err(Status::NOT_FOUND)
            }
        }
    })();
    boundary::status(result)
}

pub extern "efiapi" fn open_protocol(
    handle: Handle,
    protocol: *mut Guid,
    interface: *mut *mut c_void,
    agent: Handle,
    controller: Handle,
    attributes: u32,
) -> Status {
    let result = (|| {
        let g = guid(protocol)?;
        if interface.is_null() && attributes != r_efi::system::OPEN_PROTOCOL_TEST_PROTOCOL {
            return Err(Status::INVALID_PARAMETER);
        }
        let opened = DB.with(|db| {
            db.open(
                handle as HandleId,
                &g,
                agent as HandleId,
                controller as HandleId,
                attributes,
            )
        });
        if attributes != r_efi::system::OPEN_PROTOCOL_TEST_PROTOCOL {
            let value = match opened {
                Ok(p) => p as *mut c_void,
                // §7.3.9: on ALREADY_STARTED the interface is still returned.
                Err(Status::ALREADY_STARTED) => {
                    DB.with(|db| db.get(handle as HandleId, &g)).unwrap_or(0) as *mut c_void
                }
                Err(_) => core::ptr::null_mut(),
            };
            write(interface, value)?;
        }
        opened.map(|_| ())
    })();
    boundary::status(result)
}

pub extern "efiapi" fn close_protocol(
    handle: Handle,
    protocol: *mut Guid,
    agent: Handle,
    controller: Handle,
) -> Status {
    let result = guid(protocol).and_then(|g| {
        DB.with(|db| {
            db.close(
                handle as HandleId,
                &g,
                agent as HandleId,
                controller as HandleId,
            )
        })
    });
    boundary::status(result)
}

pub extern "efiapi" fn open_protocol_information(
    handle: Handle,
    protocol: *mut Guid,
    entries: *mut *mut OpenProtocolInformationEntry,
    count: *mut usize,
) -> Status {
    let result = (|| {
        let g = guid(protocol)?;
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
        write(count, info.len())?;
        write(entries, out)
    })();
    boundary::status(result)
}

pub extern "efiapi" fn protocols_per_handle(
    handle: Handle,
    buffer: *mut *mut *mut Guid,
    count: *mut usize,
) -> Status {
    let result = (|| {
        if buffer.is_null() || count.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let guids = DB.with(|db| db.protocols_per_handle(handle as HandleId))?;
        // The array points at GUIDs that must outlive the call: keep one
        // pool block holding the pointer array followed by the GUIDs.
        let ptrs = guids.len() * core::mem::size_of::<*mut Guid>();
        let block = crate::pool::allocate(
            platform::memory::MemoryType::BOOT_SERVICES_DATA,
            ptrs + guids.len() * 16 + 8,
        )?;
        let array = block as *mut *mut Guid;
        // SAFETY: the block holds the pointer array, then (8-aligned) GUIDs.
        let guid_area = unsafe { block.add(ptrs) } as *mut Guid;
        for (i, g) in guids.iter().enumerate() {
            // SAFETY: both writes stay inside the block sized above.
            unsafe {
                guid_area.add(i).write_unaligned(*g);
                array.add(i).write(guid_area.add(i));
            }
        }
        write(count, guids.len())?;
        write(buffer, array)
    })();
    boundary::status(result)
}

/// LocateDevicePath (§7.3.13): the handle with `protocol` whose device path
/// is the longest prefix of `*device_path`; advances `*device_path` past it.
pub extern "efiapi" fn locate_device_path(
    protocol: *mut Guid,
    device_path: *mut *mut device_path::Protocol,
    device: *mut Handle,
) -> Status {
    let result = (|| {
        let g = guid(protocol)?;
        let path = read(device_path)?;
        if path.is_null() || device.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let wanted = crate::device_path::read_path(path)?;
        let mut best: Option<(HandleId, usize)> = None;
        for h in handles_with(&g) {
            let Some(dp) = get_protocol::<device_path::Protocol>(h, &device_path::PROTOCOL_GUID)
            else {
                continue;
            };
            let Ok(candidate) = crate::device_path::read_path(dp) else {
                continue;
            };
            if let Some(len) = crate::device_path::prefix_len(&candidate, &wanted)
                && best.is_none_or(|(_, l)| len > l)
            {
                best = Some((h, len));
            }
        }
        let (h, len) = best.ok_or(Status::NOT_FOUND)?;
        write(device, h as Handle)?;
        // SAFETY: `len` bytes are the matched prefix inside the caller's path.
        write(device_path, unsafe { (path as *mut u8).add(len) }
            as *mut device_path::Protocol)
    })();
    boundary::status(result)
}

/// Firmware drivers that can bind to a controller on ConnectController.
type ConnectHook = fn(HandleId) -> bool;
static CONNECT_HOOKS: Global<Vec<ConnectHook>> = Global::new(Vec::new());

pub fn register_connect_hook(hook: ConnectHook) {
    CONNECT_HOOKS.with(|h| h.push(hook));
}

pub extern "efiapi" fn connect_controller(
    controller: Handle,
    _drivers: *mut Handle,
    _remaining: *mut device_path::Protocol,
    _recursive: Boolean,
) -> Status {
    if !DB.with(|db| db.is_handle(controller as HandleId)) {
        return Status::INVALID_PARAMETER;
    }
    let hooks = CONNECT_HOOKS.with(|h| h.clone());
    let mut connected = false;
    for hook in hooks {
        connected |= hook(controller as HandleId);
    }
    // Our drivers bind at discovery time; a controller they already serve
    // counts as connected.
    if connected
        || DB
            .with(|db| db.protocols_per_handle(controller as HandleId))
            .is_ok_and(|p| p.len() > 1)
    {
        Status::SUCCESS
    } else {
        Status::NOT_FOUND
    }
}

pub extern "efiapi" fn disconnect_controller(
    controller: Handle,
    driver: Handle,
    child: Handle,
) -> Status {
    let valid = DB.with(|db| {
        db.is_handle(controller as HandleId)
            && (driver.is_null() || db.is_handle(driver as HandleId))
            && (child.is_null() || db.is_handle(child as HandleId))
    });
    // The firmware's drivers never open protocols BY_DRIVER, so no driver
    // "manages" a controller in the §7.3.12 sense: nothing to disconnect.
    if valid {
        Status::SUCCESS
    } else {
        Status::INVALID_PARAMETER
    }
}

/// Pairs of (GUID*, interface*) from the variadic argument array, up to NULL.
fn vararg_pairs(args: *const *mut c_void) -> Result<Vec<(Guid, *mut c_void)>, Status> {
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
        pairs.push((guid(g)?, interface));
    }
    Err(Status::INVALID_PARAMETER)
}

#[unsafe(no_mangle)]
extern "efiapi" fn install_multiple_impl(handle: *mut Handle, args: *const *mut c_void) -> Status {
    let result = (|| {
        let pairs = vararg_pairs(args)?;
        let existing = read(handle)?;
        // A device path already present elsewhere makes the call fail (§7.3.16).
        for (g, interface) in &pairs {
            if *g == device_path::PROTOCOL_GUID {
                let mut path = *interface as *mut device_path::Protocol;
                let mut found: Handle = core::ptr::null_mut();
                if locate_device_path(
                    &device_path::PROTOCOL_GUID as *const Guid as *mut Guid,
                    &mut path,
                    &mut found,
                ) == Status::SUCCESS
                    && crate::device_path::is_end(path)
                {
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
        write(handle, id as Handle)
    })();
    boundary::status(result)
}

#[unsafe(no_mangle)]
extern "efiapi" fn uninstall_multiple_impl(handle: Handle, args: *const *mut c_void) -> Status {
    let result = (|| {
        let pairs = vararg_pairs(args)?;
        let id = handle as HandleId;
        let mut done = Vec::new();
        for (g, interface) in &pairs {
            match DB.with(|db| db.uninstall(id, g, *interface as usize)) {
                Ok(()) => done.push((*g, *interface)),
                Err(_) => {
                    // Reinstall what we removed; the spec's status is
                    // EFI_INVALID_PARAMETER when any removal fails.
                    DB.with(|db| {
                        db.create_handle(id);
                        for (g, interface) in &done {
                            let _ = db.install(id, *g, *interface as usize);
                        }
                    });
                    return Err(Status::INVALID_PARAMETER);
                }
            }
        }
        Ok(())
    })();
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

unsafe extern "efiapi" {
    pub safe fn install_multiple_protocol_interfaces(
        handle: *mut Handle,
        a: *mut c_void,
        b: *mut c_void,
    ) -> Status;
    pub safe fn uninstall_multiple_protocol_interfaces(
        handle: Handle,
        a: *mut c_void,
        b: *mut c_void,
    ) -> Status;
}
