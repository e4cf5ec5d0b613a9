//! EFI_HII_DATABASE_PROTOCOL (UEFI 2.10 §34.8): the registered package
//! lists, package notifications and the current keyboard layout, and the
//! `extern "efiapi"` functions over them. Package parsing lives in
//! [`super::packages`]; this layer validates pointers and keeps state.
//!
//! Notify functions (§34.8.1.6) are EFI code that may call back into the
//! database: they are always called with the database released, over a
//! private copy of the packages they are told about.

use alloc::vec::Vec;

use efi::ids::{HandleId, PackageListHandle, PackageNotifyHandle};
use platform::sync::Global;
use uefi_raw::protocol::hii::database::{
    HiiDatabaseNotifyFn, HiiDatabaseNotifyType, HiiDatabaseProtocol, HiiKeyboardLayout,
};
use uefi_raw::protocol::hii::{HiiHandle, HiiPackageHeader, HiiPackageListHeader};
use uefi_raw::{Guid, Handle, Status, guid};

use super::packages::{
    HiiError, PACKAGE_LIST_HEADER, PACKAGE_TYPE_GUID, has_package, keyboard_layouts, normalize,
    package_guid, package_matches, packages, update_list,
};

/// EFI_HII_SET_KEYBOARD_LAYOUT_EVENT_GUID: the event group SetKeyboardLayout
/// signals when the layout changes (§34.8.1.10).
const SET_KEYBOARD_LAYOUT_EVENT: Guid = guid!("14982a4f-b0ed-45b8-a811-5a7a9bc232df");

/// Longest package list accepted (the Shell's are a few hundred KiB).
const MAX_PACKAGE_LIST: usize = 16 << 20;

struct Registered {
    handle: PackageListHandle,
    /// The DriverHandle given to NewPackageList (GetPackageListHandle).
    driver: HandleId,
    /// The list in canonical form: header, packages, End package.
    list: Vec<u8>,
}

struct Notification {
    handle: PackageNotifyHandle,
    package_type: u8,
    guid: Option<[u8; 16]>,
    function: HiiDatabaseNotifyFn,
    notify_types: HiiDatabaseNotifyType,
}

struct Database {
    lists: Vec<Registered>,
    notifications: Vec<Notification>,
    next_id: usize,
    /// The GUID SetKeyboardLayout made current.
    keyboard_layout: Option<[u8; 16]>,
}

impl Database {
    fn next_id(&mut self) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

static DATABASE: Global<Database> = Global::new(Database {
    lists: Vec::new(),
    notifications: Vec::new(),
    next_id: 1,
    keyboard_layout: None,
});

/// Runs `f` over the registered list `handle`, if there is one.
pub(super) fn with_list<R>(handle: HiiHandle, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let id = PackageListHandle::from_raw(handle);
    DATABASE.with(|db| db.lists.iter().find(|r| r.handle == id).map(|r| f(&r.list)))
}

/// Replaces the bytes of list `handle` (NewString, SetString); false when
/// the list is gone.
pub(super) fn replace_list(handle: HiiHandle, list: Vec<u8>) -> bool {
    let id = PackageListHandle::from_raw(handle);
    DATABASE.with(|db| match db.lists.iter_mut().find(|r| r.handle == id) {
        Some(registered) => {
            registered.list = list;
            true
        }
        None => false,
    })
}

/// Status for a list that could not be taken in: no memory for the
/// caller's list is EFI_OUT_OF_RESOURCES, anything else a malformed list.
fn error_status(error: HiiError) -> Status {
    match error {
        HiiError::OutOfMemory { .. } => Status::OUT_OF_RESOURCES,
        _ => Status::INVALID_PARAMETER,
    }
}

/// A private copy of list `handle` (notify functions may call back into
/// the database): EFI_NOT_FOUND without such a list, EFI_OUT_OF_RESOURCES
/// without memory for the copy (a list may be 16 MiB).
fn copy_of(handle: PackageListHandle) -> Result<Vec<u8>, Status> {
    DATABASE.with(|db| {
        let registered = db.lists.iter().find(|r| r.handle == handle);
        let list = registered.ok_or(Status::NOT_FOUND)?;
        platform::fallible::copy(&list.list).map_err(|_| Status::OUT_OF_RESOURCES)
    })
}

/// Calls the notify functions registered for `notify_type` and each of
/// `found`'s packages. The database is not borrowed while they run.
fn notify(handle: PackageListHandle, notify_type: HiiDatabaseNotifyType, found: &[(u8, &[u8])]) {
    let registered: Vec<(u8, Option<[u8; 16]>, HiiDatabaseNotifyFn)> = DATABASE.with(|db| {
        db.notifications
            .iter()
            .filter(|n| n.notify_types.0 & notify_type.0 != 0)
            .map(|n| (n.package_type, n.guid, n.function))
            .collect()
    });
    for (package_type, package) in found {
        let guid = package_guid(package)
            .filter(|_| *package_type == PACKAGE_TYPE_GUID)
            .map(Guid::from_bytes);
        let guid_ptr = guid.as_ref().map_or(core::ptr::null(), core::ptr::from_ref);
        for (filter_type, filter_guid, function) in &registered {
            if package_matches(*filter_type, filter_guid.as_ref(), *package_type, package) {
                // SAFETY: `function` was registered through RegisterPackageNotify,
                // whose caller promises a callable notify function (§34.8.1.6);
                // the package and GUID stay alive (local copies) for the call.
                let _ = unsafe {
                    function(
                        *package_type,
                        guid_ptr,
                        package.as_ptr().cast::<HiiPackageHeader>(),
                        handle.as_raw(),
                        notify_type,
                    )
                };
            }
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.1 requires of the caller.
unsafe extern "efiapi" fn new_package_list(
    _this: *const HiiDatabaseProtocol,
    list: *const HiiPackageListHeader,
    driver: Handle,
    handle: *mut HiiHandle,
) -> Status {
    if handle.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(header) = (unsafe { efi::boundary::read(list) }) else {
        return Status::INVALID_PARAMETER;
    };
    let length = header.package_length as usize;
    if !(PACKAGE_LIST_HEADER..=MAX_PACKAGE_LIST).contains(&length) {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the list is as long as its header says (the contract).
    let Ok(bytes) = (unsafe { efi::boundary::bytes(list.cast::<u8>(), length) }) else {
        return Status::INVALID_PARAMETER;
    };
    // The list's size is the caller's: every copy below is fallible, and
    // nothing is registered unless all of them succeeded (§34.8.1.1 lists
    // EFI_OUT_OF_RESOURCES for this).
    let prepared = normalize(bytes).and_then(|canonical| {
        let kept = platform::fallible::copy(&canonical)?;
        Ok((canonical, kept))
    });
    let (canonical, kept) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return error_status(error),
    };
    let found = match packages(&canonical) {
        Ok(found) => found,
        Err(error) => return error_status(error),
    };
    let id = DATABASE.with(|db| {
        let id = PackageListHandle::from_value(db.next_id());
        db.lists.push(Registered {
            handle: id,
            driver: HandleId::from_raw(driver),
            list: kept,
        });
        id
    });
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let written = unsafe { efi::boundary::write(handle, id.as_raw()) };
    notify(id, HiiDatabaseNotifyType::NEW_PACK, &found);
    efi::boundary::status(written)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.2 requires of the caller.
unsafe extern "efiapi" fn remove_package_list(
    _this: *const HiiDatabaseProtocol,
    handle: HiiHandle,
) -> Status {
    let id = PackageListHandle::from_raw(handle);
    let list = match copy_of(id) {
        Ok(list) => list,
        Err(status) => return status,
    };
    // Told while the list is still registered, as edk2 does: a notify
    // function may still look the packages up by handle.
    if let Ok(found) = packages(&list) {
        notify(id, HiiDatabaseNotifyType::REMOVE_PACK, &found);
    }
    DATABASE.with(|db| db.lists.retain(|r| r.handle != id));
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.3 requires of the caller.
unsafe extern "efiapi" fn update_package_list(
    _this: *const HiiDatabaseProtocol,
    handle: HiiHandle,
    list: *const HiiPackageListHeader,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(header) = (unsafe { efi::boundary::read(list) }) else {
        return Status::INVALID_PARAMETER;
    };
    let id = PackageListHandle::from_raw(handle);
    let current = match copy_of(id) {
        Ok(current) => current,
        Err(status) => return status,
    };
    let length = header.package_length as usize;
    if !(PACKAGE_LIST_HEADER..=MAX_PACKAGE_LIST).contains(&length) {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the list is as long as its header says (the contract).
    let Ok(bytes) = (unsafe { efi::boundary::bytes(list.cast::<u8>(), length) }) else {
        return Status::INVALID_PARAMETER;
    };
    let update = match platform::fallible::copy(bytes) {
        Ok(update) => update,
        Err(error) => return error_status(error.into()),
    };
    let done = match update_list(&current, &update) {
        Ok(done) => done,
        Err(error) => return error_status(error),
    };
    notify(id, HiiDatabaseNotifyType::REMOVE_PACK, &done.removed);
    if !replace_list(handle, done.list) {
        // A REMOVE_PACK notify function removed the whole list.
        return Status::NOT_FOUND;
    }
    notify(id, HiiDatabaseNotifyType::ADD_PACK, &done.added);
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.4 requires of the caller.
unsafe extern "efiapi" fn list_package_lists(
    _this: *const HiiDatabaseProtocol,
    package_type: u8,
    guid: *const Guid,
    size: *mut usize,
    handles: *mut HiiHandle,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(capacity) = (unsafe { efi::boundary::read(size) }) else {
        return Status::INVALID_PARAMETER;
    };
    // A GUID goes with, and only with, EFI_HII_PACKAGE_TYPE_GUID (§34.8.1.4).
    if (package_type == PACKAGE_TYPE_GUID) == guid.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let guid = unsafe { efi::boundary::guid(guid) }
        .ok()
        .map(|g| g.to_bytes());
    let found: Vec<PackageListHandle> = DATABASE.with(|db| {
        db.lists
            .iter()
            .filter(|r| has_package(&r.list, package_type, guid.as_ref()))
            .map(|r| r.handle)
            .collect()
    });
    if found.is_empty() {
        return Status::NOT_FOUND;
    }
    let needed = found.len() * size_of::<HiiHandle>();
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let _ = unsafe { efi::boundary::write(size, needed) };
    if capacity < needed {
        return Status::BUFFER_TOO_SMALL;
    }
    if handles.is_null() {
        return Status::INVALID_PARAMETER;
    }
    for (i, id) in found.into_iter().enumerate() {
        // SAFETY: the caller's buffer holds `capacity` >= `needed` bytes.
        unsafe { handles.add(i).write_unaligned(id.as_raw()) };
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.5 requires of the caller.
unsafe extern "efiapi" fn export_package_lists(
    _this: *const HiiDatabaseProtocol,
    handle: HiiHandle,
    size: *mut usize,
    buffer: *mut HiiPackageListHeader,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(capacity) = (unsafe { efi::boundary::read(size) }) else {
        return Status::INVALID_PARAMETER;
    };
    if capacity != 0 && buffer.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // A NULL handle exports every list, one after the other.
    let wanted = (!handle.is_null()).then(|| PackageListHandle::from_raw(handle));
    // Copies of lists of up to 16 MiB each: fallible.
    let lists = DATABASE.with(|db| {
        let mut out: Vec<(PackageListHandle, Vec<u8>)> = Vec::new();
        for r in db
            .lists
            .iter()
            .filter(|r| wanted.is_none_or(|w| w == r.handle))
        {
            let copy = platform::fallible::copy(&r.list)?;
            platform::fallible::push(&mut out, (r.handle, copy))?;
        }
        Ok::<_, platform::fallible::OutOfMemory>(out)
    });
    let Ok(lists) = lists else {
        return Status::OUT_OF_RESOURCES;
    };
    if wanted.is_some() && lists.is_empty() {
        return Status::NOT_FOUND;
    }
    let needed: usize = lists.iter().map(|(_, l)| l.len()).sum();
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let _ = unsafe { efi::boundary::write(size, needed) };
    if capacity < needed {
        return Status::BUFFER_TOO_SMALL;
    }
    for (id, list) in &lists {
        if let Ok(found) = packages(list) {
            notify(*id, HiiDatabaseNotifyType::EXPORT_PACK, &found);
        }
    }
    if needed == 0 {
        return Status::SUCCESS;
    }
    // SAFETY: the caller's buffer holds `capacity` >= `needed` bytes.
    match unsafe { efi::boundary::bytes_mut(buffer.cast::<u8>(), needed) } {
        Ok(out) => {
            let mut at = 0;
            for (_, list) in &lists {
                out[at..at + list.len()].copy_from_slice(list);
                at += list.len();
            }
            Status::SUCCESS
        }
        Err(status) => status,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.6 requires of the caller.
unsafe extern "efiapi" fn register_package_notify(
    _this: *const HiiDatabaseProtocol,
    package_type: u8,
    guid: *const Guid,
    function: HiiDatabaseNotifyFn,
    notify_types: HiiDatabaseNotifyType,
    notify_handle: *mut Handle,
) -> Status {
    let all_types = HiiDatabaseNotifyType::NEW_PACK.0
        | HiiDatabaseNotifyType::REMOVE_PACK.0
        | HiiDatabaseNotifyType::EXPORT_PACK.0
        | HiiDatabaseNotifyType::ADD_PACK.0;
    if notify_handle.is_null()
        || (package_type == PACKAGE_TYPE_GUID) == guid.is_null()
        || notify_types.0 == 0
        || notify_types.0 & !all_types != 0
    {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let guid = unsafe { efi::boundary::guid(guid) }
        .ok()
        .map(|g| g.to_bytes());
    let handle = DATABASE.with(|db| {
        let handle = PackageNotifyHandle::from_value(db.next_id());
        db.notifications.push(Notification {
            handle,
            package_type,
            guid,
            function,
            notify_types,
        });
        handle
    });
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    efi::boundary::status(unsafe { efi::boundary::write(notify_handle, handle.as_raw()) })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.7 requires of the caller.
unsafe extern "efiapi" fn unregister_package_notify(
    _this: *const HiiDatabaseProtocol,
    notify_handle: Handle,
) -> Status {
    let id = PackageNotifyHandle::from_raw(notify_handle);
    DATABASE.with(|db| {
        let before = db.notifications.len();
        db.notifications.retain(|n| n.handle != id);
        if db.notifications.len() < before {
            Status::SUCCESS
        } else {
            Status::NOT_FOUND
        }
    })
}

/// A keyboard layout's GUID and a copy of its EFI_HII_KEYBOARD_LAYOUT bytes.
type Layout = ([u8; 16], Vec<u8>);

/// Every keyboard layout of every list, as (GUID, layout bytes), first
/// registered first.
/// Their number and size are the registering callers' (lists of up to 16
/// MiB): every copy is fallible, and no memory is EFI_OUT_OF_RESOURCES.
fn all_keyboard_layouts() -> Result<Vec<Layout>, Status> {
    let copies = DATABASE.with(|db| {
        let mut out = Vec::new();
        for registered in &db.lists {
            for (guid, layout) in keyboard_layouts(&registered.list)? {
                let copy = platform::fallible::copy(layout)?;
                platform::fallible::push(&mut out, (guid, copy))?;
            }
        }
        Ok::<_, HiiError>(out)
    });
    copies.map_err(|_| Status::OUT_OF_RESOURCES)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.8 requires of the caller.
unsafe extern "efiapi" fn find_keyboard_layouts(
    _this: *const HiiDatabaseProtocol,
    length: *mut u16,
    guids: *mut Guid,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(capacity) = (unsafe { efi::boundary::read(length) }) else {
        return Status::INVALID_PARAMETER;
    };
    if capacity != 0 && guids.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let layouts = match all_keyboard_layouts() {
        Ok(layouts) => layouts,
        Err(status) => return status,
    };
    let mut unique: Vec<[u8; 16]> = Vec::new();
    for (guid, _) in layouts {
        if !unique.contains(&guid) && platform::fallible::push(&mut unique, guid).is_err() {
            return Status::OUT_OF_RESOURCES;
        }
    }
    if unique.is_empty() {
        return Status::NOT_FOUND;
    }
    let Ok(needed) = u16::try_from(unique.len() * size_of::<Guid>()) else {
        return Status::OUT_OF_RESOURCES;
    };
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let _ = unsafe { efi::boundary::write(length, needed) };
    if capacity < needed {
        return Status::BUFFER_TOO_SMALL;
    }
    for (i, guid) in unique.into_iter().enumerate() {
        // SAFETY: the caller's buffer holds `capacity` >= `needed` bytes.
        unsafe { guids.add(i).write_unaligned(Guid::from_bytes(guid)) };
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.9 requires of the caller.
unsafe extern "efiapi" fn get_keyboard_layout(
    _this: *const HiiDatabaseProtocol,
    guid: *const Guid,
    length: *mut u16,
    layout: *mut HiiKeyboardLayout,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(capacity) = (unsafe { efi::boundary::read(length) }) else {
        return Status::INVALID_PARAMETER;
    };
    if capacity != 0 && layout.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // A NULL KeyGuid asks for the current layout (SetKeyboardLayout).
    let wanted = if guid.is_null() {
        DATABASE.with(|db| db.keyboard_layout)
    } else {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { efi::boundary::guid(guid) }
            .ok()
            .map(|g| g.to_bytes())
    };
    let Some(wanted) = wanted else {
        return Status::NOT_FOUND;
    };
    let layouts = match all_keyboard_layouts() {
        Ok(layouts) => layouts,
        Err(status) => return status,
    };
    let Some((_, bytes)) = layouts.into_iter().find(|(g, _)| *g == wanted) else {
        return Status::NOT_FOUND;
    };
    let needed = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let _ = unsafe { efi::boundary::write(length, needed) };
    if capacity < needed {
        return Status::BUFFER_TOO_SMALL;
    }
    // SAFETY: the caller's buffer holds `capacity` >= `needed` bytes.
    match unsafe { efi::boundary::bytes_mut(layout.cast::<u8>(), bytes.len()) } {
        Ok(out) => {
            out.copy_from_slice(&bytes);
            Status::SUCCESS
        }
        Err(status) => status,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.10 requires of the caller.
unsafe extern "efiapi" fn set_keyboard_layout(
    _this: *const HiiDatabaseProtocol,
    guid: *const Guid,
) -> Status {
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    let Ok(guid) = (unsafe { efi::boundary::guid(guid) }) else {
        return Status::INVALID_PARAMETER;
    };
    let wanted = guid.to_bytes();
    match all_keyboard_layouts() {
        Ok(layouts) if layouts.iter().any(|(g, _)| *g == wanted) => {}
        Ok(_) => return Status::NOT_FOUND,
        Err(status) => return status,
    }
    let changed = DATABASE.with(|db| db.keyboard_layout.replace(wanted) != Some(wanted));
    if changed {
        // Outside the database borrow: the group's notify functions may
        // call GetKeyboardLayout.
        efi::events::signal_group(&SET_KEYBOARD_LAYOUT_EVENT);
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §34.8.1.11 requires of the caller.
unsafe extern "efiapi" fn get_package_list_handle(
    _this: *const HiiDatabaseProtocol,
    handle: HiiHandle,
    driver: *mut Handle,
) -> Status {
    if driver.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let id = PackageListHandle::from_raw(handle);
    let Some(found) =
        DATABASE.with(|db| db.lists.iter().find(|r| r.handle == id).map(|r| r.driver))
    else {
        // The spec's answer for a handle that is not a package list.
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: the caller's pointers, as this function's # Safety requires.
    efi::boundary::status(unsafe { efi::boundary::write(driver, found.as_raw()) })
}

pub(super) static PROTOCOL: super::Shared<HiiDatabaseProtocol> =
    super::Shared(HiiDatabaseProtocol {
        new_package_list,
        remove_package_list,
        update_package_list,
        list_package_lists,
        export_package_lists,
        register_package_notify,
        unregister_package_notify,
        find_keyboard_layouts,
        get_keyboard_layout,
        set_keyboard_layout,
        get_package_list_handle,
    });
