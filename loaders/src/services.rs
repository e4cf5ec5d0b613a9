//! The EFI services the loaders use, reached through the system table of
//! the image they run as (UEFI 2.10 §4.3 EFI_SYSTEM_TABLE, §7 boot
//! services), as any EFI application reaches them: the built-in images
//! (`crate::builtins`) enter with the table StartImage gave them, the boot
//! manager with the firmware's own. The table is validated once, when it
//! is entered ([`Services::new`]); the methods here are then safe wrappers
//! of the boot services the loaders need (LocateHandleBuffer,
//! HandleProtocol, AllocatePages/FreePages, GetMemoryMap, LoadImage,
//! StartImage, ExitBootServices, InstallProtocolInterface,
//! UninstallProtocolInterface) and of the system table's configuration
//! table and consoles.
//!
//! The edge between what goes through here and what may call the `efi`
//! crate directly (enforced by `tests/tests/module_graph.rs`):
//! - The loaders proper, the code of the built-in images and what they
//!   share with the boot manager (file access, image loading, Linux boot,
//!   BLS, UKI, initrd, menu, console), use only these services and the
//!   `efi` crate's pure helpers and types (`efi::device_path` node parsing,
//!   `efi::pe` header parsing, `efi::ids::HandleId`, `efi::spec_gaps`
//!   GUIDs), never its service implementations.
//! - The platform boot manager is firmware-private, as edk2's BDS is part
//!   of the platform: `boot_manager`, `auto_options`, `global_variables`,
//!   `nv_store` and `nv_journal` own the variable store, its on-disk image
//!   and journal and the batched persistence of the automatic options,
//!   which no boot service offers; `builtins` registers the built-in
//!   images with the firmware volume (`efi::builtin_images`). They may name
//!   `efi` internals.

use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr::NonNull;
use efi::ids::HandleId;
use efi::spec_gaps::BOOT_SERVICES_SIGNATURE;
use platform::sync::Global;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::file_system::SimpleFileSystemProtocol;
use uefi_raw::table::boot::{AllocateType, BootServices, InterfaceType, MemoryType};
use uefi_raw::table::configuration::ConfigurationTable;
use uefi_raw::table::system::SystemTable;
use uefi_raw::{Guid, Handle, PhysicalAddress, Status};

/// LocateHandleBuffer's ByProtocol search (§7.3.15).
const BY_PROTOCOL: i32 = 2;

/// The boot services of one image: its handle (the parent of what it loads,
/// the caller of ExitBootServices) and its validated system table.
#[derive(Clone, Copy)]
pub struct Services {
    image: HandleId,
    system: NonNull<SystemTable>,
    boot: NonNull<BootServices>,
}

// SAFETY: the firmware runs on one CPU without threads; the tables are
// only ever used from that one context.
unsafe impl Send for Services {}

/// The services of the images running, innermost last ([`enter`]).
static STACK: Global<Vec<Services>> = Global::new(Vec::new());

impl Services {
    /// Checks `system` once: a system table with its signature, whose
    /// boot services table carries its own.
    ///
    /// # Safety
    /// `system` is null or points at a readable EFI_SYSTEM_TABLE whose
    /// pointers stay valid while these services are entered (the image's
    /// run, or until ExitBootServices).
    pub unsafe fn new(image: HandleId, system: *mut SystemTable) -> Result<Self, Status> {
        let system = NonNull::new(system).ok_or(Status::INVALID_PARAMETER)?;
        // SAFETY: non-null and readable, as the caller guarantees.
        let table = unsafe { system.as_ref() };
        if table.header.signature != SystemTable::SIGNATURE {
            return Err(Status::INVALID_PARAMETER);
        }
        let boot = NonNull::new(table.boot_services).ok_or(Status::INVALID_PARAMETER)?;
        // SAFETY: the table's boot services pointer, non-null, valid as
        // the caller guarantees for the table's pointers.
        if unsafe { boot.as_ref() }.header.signature != BOOT_SERVICES_SIGNATURE {
            return Err(Status::INVALID_PARAMETER);
        }
        Ok(Services {
            image,
            system,
            boot,
        })
    }

    fn boot(&self) -> &BootServices {
        // SAFETY: validated in `new`; valid while entered.
        unsafe { self.boot.as_ref() }
    }

    /// The image these services belong to.
    pub fn image(&self) -> HandleId {
        self.image
    }

    /// The system table, as handed to an OS (Linux's `efi_info`).
    pub fn system_table(&self) -> *mut SystemTable {
        self.system.as_ptr()
    }

    /// The system table's console output and input protocols (either may
    /// be null when the firmware has no console).
    pub fn consoles(
        &self,
    ) -> (
        *mut uefi_raw::protocol::console::SimpleTextOutputProtocol,
        *mut uefi_raw::protocol::console::SimpleTextInputProtocol,
    ) {
        // SAFETY: validated in `new`; valid while entered.
        let table = unsafe { self.system.as_ref() };
        (table.stdout, table.stdin)
    }

    /// Whether the global `SecureBoot` variable is 1 (UEFI 2.10 §3.3): images
    /// then run only when the firmware's LoadImage verified them (§32.5).
    pub fn secure_boot(&self) -> bool {
        // SAFETY: validated in `new`; valid while entered.
        let table = unsafe { self.system.as_ref() };
        if table.runtime_services.is_null() {
            return false;
        }
        let name: Vec<u16> = "SecureBoot".encode_utf16().chain([0]).collect();
        let mut value = 0u8;
        let mut size = 1usize;
        // SAFETY: the runtime services table the system table points at;
        // the name is NUL-terminated, the GUID, size and one-byte buffer
        // are live locals, and no attributes are asked for.
        let status = unsafe {
            ((*table.runtime_services).get_variable)(
                name.as_ptr(),
                &uefi_raw::table::runtime::VariableVendor::GLOBAL_VARIABLE.0,
                core::ptr::null_mut(),
                &mut size,
                &raw mut value,
            )
        };
        status == Status::SUCCESS && size == 1 && value == 1
    }

    /// The configuration table (§4.6) entry for `guid`, if any.
    pub fn configuration_table(&self, guid: &Guid) -> Option<*mut c_void> {
        // SAFETY: validated in `new`; valid while entered.
        let table = unsafe { self.system.as_ref() };
        if table.configuration_table.is_null() {
            return None;
        }
        // SAFETY: the system table's array of
        // `number_of_configuration_table_entries` entries (§4.3).
        let entries: &[ConfigurationTable] = unsafe {
            core::slice::from_raw_parts(
                table.configuration_table,
                table.number_of_configuration_table_entries,
            )
        };
        entries
            .iter()
            .find(|entry| entry.vendor_guid == *guid)
            .map(|entry| entry.vendor_table)
    }

    /// LocateHandleBuffer(ByProtocol): every handle with `protocol`, in the
    /// handle database's order; empty when there is none.
    pub fn locate_handles(&self, protocol: &Guid) -> Vec<HandleId> {
        let mut count = 0usize;
        let mut buffer: *mut Handle = core::ptr::null_mut();
        // SAFETY: live locals; a valid GUID; no search key.
        let status = unsafe {
            (self.boot().locate_handle_buffer)(
                BY_PROTOCOL,
                protocol,
                core::ptr::null(),
                &mut count,
                &mut buffer,
            )
        };
        if status.is_error() || buffer.is_null() {
            return Vec::new();
        }
        // SAFETY: LocateHandleBuffer returned `count` handles at `buffer`.
        let handles = unsafe { core::slice::from_raw_parts(buffer, count) }
            .iter()
            .map(|&handle| HandleId::from_raw(handle))
            .collect();
        // SAFETY: pool memory LocateHandleBuffer allocated for us (§7.3.15).
        let _ = unsafe { (self.boot().free_pool)(buffer.cast::<u8>()) };
        handles
    }

    /// HandleProtocol: `handle`'s interface of `protocol`, if it has one.
    pub fn protocol<T>(&self, handle: HandleId, protocol: &Guid) -> Option<NonNull<T>> {
        let mut interface: *mut c_void = core::ptr::null_mut();
        // SAFETY: live local; a valid GUID; the handle is only looked up.
        let status =
            unsafe { (self.boot().handle_protocol)(handle.as_raw(), protocol, &mut interface) };
        if status.is_error() {
            return None;
        }
        NonNull::new(interface.cast::<T>())
    }

    /// AllocatePages: `pages` pages of `memory_type` placed as `placement`
    /// says (`MAX_ADDRESS` with the highest address, or `ADDRESS` at one);
    /// returns their base.
    pub fn allocate_pages(
        &self,
        placement: AllocateType,
        memory_type: MemoryType,
        pages: usize,
        address: PhysicalAddress,
    ) -> Result<PhysicalAddress, Status> {
        let mut address = address;
        // SAFETY: `address` is a live local.
        let status =
            unsafe { (self.boot().allocate_pages)(placement, memory_type, pages, &mut address) };
        if status.is_error() {
            return Err(status);
        }
        Ok(address)
    }

    /// FreePages of what [`Services::allocate_pages`] returned.
    pub fn free_pages(&self, address: PhysicalAddress, pages: usize) -> Status {
        // SAFETY: the service checks the range against the memory map.
        unsafe { (self.boot().free_pages)(address, pages) }
    }

    /// GetMemoryMap into `buffer` (§7.2.3): its status with the map's size
    /// in bytes (the size needed, with BUFFER_TOO_SMALL), its key, the
    /// descriptor size and version.
    pub fn memory_map(&self, buffer: &mut [u8]) -> (Status, MemoryMapInfo) {
        let mut size = buffer.len();
        let mut key = 0usize;
        let mut descriptor_size = 0usize;
        let mut version = 0u32;
        let map = if buffer.is_empty() {
            core::ptr::null_mut()
        } else {
            buffer.as_mut_ptr().cast()
        };
        // SAFETY: live locals, and a buffer of `size` bytes (or none with
        // size 0).
        let status = unsafe {
            (self.boot().get_memory_map)(
                &mut size,
                map,
                &mut key,
                &mut descriptor_size,
                &mut version,
            )
        };
        let info = MemoryMapInfo {
            size,
            key,
            descriptor_size,
            version,
        };
        (status, info)
    }

    /// ExitBootServices for this image with the map `key` (§7.4.6).
    pub fn exit_boot_services(&self, key: usize) -> Status {
        // SAFETY: values only.
        unsafe { (self.boot().exit_boot_services)(self.image.as_raw(), key) }
    }

    /// LoadImage of the device path `path` (End-terminated), with this
    /// image as the parent. `boot_policy` is TRUE for the boot manager's
    /// boot options (§3.1.2, §7.4.1): a LoadFile device then treats the load
    /// as a boot, which for a NIC is a PXE boot.
    pub fn load_image(&self, path: &[u8], boot_policy: bool) -> Result<HandleId, Status> {
        self.load(path, boot_policy, &[])
    }

    /// LoadImage of the image in `source` (a boot option's file that a
    /// LoadFile handed over, §3.1.2), `path` being where it came from.
    pub fn load_image_from_buffer(&self, path: &[u8], source: &[u8]) -> Result<HandleId, Status> {
        self.load(path, true, source)
    }

    /// LoadImage with `source` as SourceBuffer (none when empty).
    fn load(&self, path: &[u8], boot_policy: bool, source: &[u8]) -> Result<HandleId, Status> {
        let mut handle: Handle = core::ptr::null_mut();
        let source_ptr = if source.is_empty() {
            core::ptr::null()
        } else {
            source.as_ptr().cast()
        };
        // SAFETY: `path` (a whole device path) and `source` are held by the
        // caller during the call; `handle` a live local.
        let status = unsafe {
            (self.boot().load_image)(
                boot_policy.into(),
                self.image.as_raw(),
                path.as_ptr().cast::<DevicePathProtocol>(),
                source_ptr,
                source.len(),
                &mut handle,
            )
        };
        // §7.4.1: an image Secure Boot refused comes back loaded, with
        // EFI_SECURITY_VIOLATION; it is unloaded here, as no caller runs it.
        if status == Status::SECURITY_VIOLATION && !handle.is_null() {
            // SAFETY: `handle` is the image LoadImage just created.
            let _ = unsafe { (self.boot().unload_image)(handle) };
        }
        if status.is_error() {
            return Err(status);
        }
        Ok(HandleId::from_raw(handle))
    }

    /// StartImage of a loaded image; its exit status (exit data freed).
    pub fn start_image(&self, image: HandleId) -> Status {
        // SAFETY: null ExitData pointers are allowed (§7.4.2).
        unsafe {
            (self.boot().start_image)(image.as_raw(), core::ptr::null_mut(), core::ptr::null_mut())
        }
    }

    /// InstallProtocolInterface of `interface` as `protocol` on `handle`
    /// (a new handle when NULL); returns the handle.
    ///
    /// # Safety
    /// `interface` is an interface of `protocol` that stays valid while it
    /// is installed (callers of the protocol use it).
    pub unsafe fn install_protocol(
        &self,
        handle: HandleId,
        protocol: &Guid,
        interface: *mut c_void,
    ) -> Result<HandleId, Status> {
        let mut raw = handle.as_raw();
        // SAFETY: live local; `interface` as this function's # Safety says.
        let status = unsafe {
            (self.boot().install_protocol_interface)(
                &mut raw,
                protocol,
                InterfaceType::NATIVE_INTERFACE,
                interface,
            )
        };
        if status.is_error() {
            return Err(status);
        }
        Ok(HandleId::from_raw(raw))
    }

    /// UninstallProtocolInterface of `interface` as `protocol` on `handle`.
    ///
    /// # Safety
    /// `interface` is what was installed as `protocol` on `handle` (the
    /// service compares it, and may hand it to drivers' Stop).
    pub unsafe fn uninstall_protocol(
        &self,
        handle: HandleId,
        protocol: &Guid,
        interface: *mut c_void,
    ) -> Status {
        // SAFETY: as this function's # Safety says.
        unsafe { (self.boot().uninstall_protocol_interface)(handle.as_raw(), protocol, interface) }
    }
}

/// What GetMemoryMap reported.
#[derive(Clone, Copy, Debug)]
pub struct MemoryMapInfo {
    pub size: usize,
    pub key: usize,
    pub descriptor_size: usize,
    pub version: u32,
}

/// Every handle with a SimpleFileSystem (§13.4), through the current
/// services; none before any are entered.
pub fn file_systems() -> Vec<HandleId> {
    current()
        .map(|s| s.locate_handles(&SimpleFileSystemProtocol::GUID))
        .unwrap_or_default()
}

/// Every handle with a LoadFile (§13.1): the NICs the PXE client boots
/// from; none before any services are entered.
pub fn load_file_devices() -> Vec<HandleId> {
    current()
        .map(|s| s.locate_handles(&uefi_raw::protocol::media::LoadFileProtocol::GUID))
        .unwrap_or_default()
}

/// Makes `services` the ones the loaders use until the guard is dropped
/// (a built-in image's run; the boot manager's whole run).
pub fn enter(services: Services) -> Entered {
    STACK.with(|stack| stack.push(services));
    Entered(())
}

/// While alive, the services given to [`enter`] are current.
#[must_use]
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        STACK.with(|stack| {
            stack.pop();
        });
    }
}

/// The services of the innermost image running; NOT_READY before anything
/// entered them (the loaders run only inside the boot manager).
pub fn current() -> Result<Services, Status> {
    STACK
        .with(|stack| stack.last().copied())
        .ok_or(Status::NOT_READY)
}

/// Host tests: the firmware's tables, entered for good (as the boot
/// manager does) so that code under test finds its services.
#[cfg(test)]
pub(crate) fn enter_for_tests() {
    use std::sync::Once;
    static ENTERED: Once = Once::new();
    ENTERED.call_once(|| {
        efi::tables::init();
        // SAFETY: the tables just initialised, in a static that lives for
        // the whole process.
        let services = unsafe { Services::new(HandleId::NULL, efi::tables::system_table()) }
            .expect("the firmware's own system table validates");
        core::mem::forget(enter(services));
    });
}
