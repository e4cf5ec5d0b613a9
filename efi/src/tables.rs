//! The EFI system table and boot services table (UEFI 2.10 §4), statics of
//! the firmware image so they stay valid after ExitBootServices (the image
//! is runtime memory). The runtime services table lives in `runtime`; the
//! storage of these tables is in [`crate::table_storage`], which images
//! reach without depending on this module.

pub use crate::table_storage::system_table;

use crate::boundary::{self, guid};
use crate::spec_gaps;
use crate::table_storage::{MAX_CONFIG_TABLES, tables};
use crate::{events, image, memory_services as mem, misc_services, protocol_services as ps};
use core::ffi::c_void;
use platform::sync::Global;
use uefi_raw::protocol::console::{SimpleTextInputProtocol, SimpleTextOutputProtocol};
use uefi_raw::table::boot::{BootServices, MemoryDescriptor};
use uefi_raw::table::configuration::ConfigurationTable;
use uefi_raw::table::system::SystemTable;
use uefi_raw::table::{Header, Revision};
use uefi_raw::{Guid, Handle, Status};

/// "vmfw" in UCS-2.
static VENDOR: [u16; 5] = [b'v' as u16, b'm' as u16, b'f' as u16, b'w' as u16, 0];
const FIRMWARE_REVISION: u32 = 0x0001_0000;

static INITIALISED: Global<bool> = Global::new(false);

fn header(signature: u64, size: usize) -> Header {
    Header {
        signature,
        revision: Revision::EFI_2_70,
        size: size as u32,
        crc: 0,
        reserved: 0,
    }
}

/// Recomputes a table's header CRC32 (§4.2: over HeaderSize bytes with the
/// CRC field zero).
fn update_crc(header: *mut Header) {
    // SAFETY: `header` starts one of our tables, HeaderSize bytes long.
    unsafe {
        (*header).crc = 0;
        let bytes = core::slice::from_raw_parts(header as *const u8, (*header).size as usize);
        (*header).crc = platform::crc32::crc32(bytes);
    }
}

pub fn update_crcs() {
    // SAFETY: field addresses inside the initialised static.
    unsafe {
        update_crc(&raw mut (*tables()).system.header);
        update_crc(&raw mut (*tables()).boot.header);
    }
}

/// Fills the tables. Call once, before any EFI service is used.
pub fn init() {
    let boot = BootServices {
        header: header(
            spec_gaps::BOOT_SERVICES_SIGNATURE,
            core::mem::size_of::<BootServices>(),
        ),
        raise_tpl: events::raise_tpl,
        restore_tpl: events::restore_tpl,
        allocate_pages: mem::allocate_pages,
        free_pages: mem::free_pages,
        get_memory_map: mem::get_memory_map,
        allocate_pool: mem::allocate_pool,
        free_pool: mem::free_pool,
        create_event: events::create_event,
        set_timer: events::set_timer,
        wait_for_event: events::wait_for_event,
        signal_event: events::signal_event,
        close_event: ps::close_event,
        check_event: events::check_event,
        install_protocol_interface: ps::install_protocol_interface,
        reinstall_protocol_interface: ps::reinstall_protocol_interface,
        uninstall_protocol_interface: ps::uninstall_protocol_interface,
        handle_protocol: ps::handle_protocol,
        reserved: core::ptr::null_mut(),
        register_protocol_notify: ps::register_protocol_notify,
        locate_handle: ps::locate_handle,
        locate_device_path: ps::locate_device_path,
        install_configuration_table,
        load_image: image::load_image,
        start_image: image::start_image,
        exit: image::exit,
        unload_image: image::unload_image,
        exit_boot_services,
        get_next_monotonic_count: misc_services::get_next_monotonic_count,
        stall: misc_services::stall,
        set_watchdog_timer: misc_services::set_watchdog_timer,
        connect_controller: ps::connect_controller,
        disconnect_controller: ps::disconnect_controller,
        open_protocol: ps::open_protocol,
        close_protocol: ps::close_protocol,
        open_protocol_information: ps::open_protocol_information,
        protocols_per_handle: ps::protocols_per_handle,
        locate_handle_buffer: ps::locate_handle_buffer,
        locate_protocol: ps::locate_protocol,
        install_multiple_protocol_interfaces: ps::install_multiple_protocol_interfaces,
        uninstall_multiple_protocol_interfaces: ps::uninstall_multiple_protocol_interfaces,
        calculate_crc32: misc_services::calculate_crc32,
        copy_mem: misc_services::copy_mem,
        set_mem: misc_services::set_mem,
        create_event_ex: events::create_event_ex,
    };
    // SAFETY: single-threaded init before any EFI caller exists; fields are
    // written through raw pointers into the static.
    unsafe {
        let t = tables();
        (&raw mut (*t).boot).write(boot);
        (&raw mut (*t).config).write(core::array::from_fn(|_| ConfigurationTable {
            vendor_guid: Guid::ZERO,
            vendor_table: core::ptr::null_mut(),
        }));
        (&raw mut (*t).system).write(SystemTable {
            header: header(SystemTable::SIGNATURE, core::mem::size_of::<SystemTable>()),
            firmware_vendor: VENDOR.as_ptr(),
            firmware_revision: FIRMWARE_REVISION,
            stdin_handle: core::ptr::null_mut(),
            stdin: core::ptr::null_mut(),
            stdout_handle: core::ptr::null_mut(),
            stdout: core::ptr::null_mut(),
            stderr_handle: core::ptr::null_mut(),
            stderr: core::ptr::null_mut(),
            runtime_services: crate::runtime::runtime_services_table(),
            boot_services: &raw mut (*t).boot,
            number_of_configuration_table_entries: 0,
            configuration_table: &raw mut (*t).config as *mut ConfigurationTable,
        });
    }
    INITIALISED.with(|i| *i = true);
    update_crcs();
}

/// Sets ConIn/ConOut/StdErr (§4.3).
pub fn set_console(
    in_handle: Handle,
    con_in: *mut SimpleTextInputProtocol,
    out_handle: Handle,
    con_out: *mut SimpleTextOutputProtocol,
) {
    // SAFETY: the tables are initialised; single-threaded.
    unsafe {
        let st = system_table();
        (*st).stdin_handle = in_handle;
        (*st).stdin = con_in;
        (*st).stdout_handle = out_handle;
        (*st).stdout = con_out;
        (*st).stderr_handle = out_handle;
        (*st).stderr = con_out;
    }
    update_crcs();
}

/// Adds, replaces or (with a null table) removes a configuration table.
pub fn set_configuration_table(g: Guid, table: *mut c_void) -> Result<(), Status> {
    // SAFETY: the tables are initialised; the system table's count and the
    // array are only modified here, single-threaded.
    unsafe {
        let t = tables();
        let count = (*t).system.number_of_configuration_table_entries;
        let config = &mut (*t).config;
        let existing = config[..count].iter().position(|c| c.vendor_guid == g);
        match (existing, table.is_null()) {
            (Some(i), false) => config[i].vendor_table = table,
            (Some(i), true) => {
                // Entry i moves past the end, the later ones close up.
                config[i..count].rotate_left(1);
                (*t).system.number_of_configuration_table_entries = count - 1;
            }
            (None, true) => return Err(Status::NOT_FOUND),
            (None, false) => {
                if count == MAX_CONFIG_TABLES {
                    return Err(Status::OUT_OF_RESOURCES);
                }
                config[count] = ConfigurationTable {
                    vendor_guid: g,
                    vendor_table: table,
                };
                (*t).system.number_of_configuration_table_entries = count + 1;
            }
        }
    }
    update_crcs();
    Ok(())
}

/// InstallConfigurationTable (§7.3.15).
///
/// # Safety
/// `g` is null or points to an EFI_GUID, as §7.3.15 requires.
unsafe extern "efiapi" fn install_configuration_table(
    g: *const Guid,
    table: *const c_void,
) -> Status {
    // SAFETY: `g` as this function's contract states.
    let g = unsafe { guid(g) };
    let result = g.and_then(|g| set_configuration_table(g, table.cast_mut()).map(|()| g));
    // §7.3.15: a successful change signals the event group named by the
    // table's GUID, after the table is in place (no borrow is held here).
    if let Ok(g) = result {
        crate::events::signal_group_event(&g);
    }
    boundary::status(result.map(|_| ()))
}

/// EFI_MEMORY_ATTRIBUTES_TABLE storage: a static of the image, filled at
/// ExitBootServices from the final memory map.
const MAX_ATTRIBUTE_ENTRIES: usize = 64;
#[repr(C, align(8))]
struct AttributesTable {
    header: spec_gaps::MemoryAttributesTable<0>,
    entries: [[u8; mem::DESCRIPTOR_SIZE]; MAX_ATTRIBUTE_ENTRIES],
}
static mut ATTRIBUTES_TABLE: AttributesTable = AttributesTable {
    header: spec_gaps::MemoryAttributesTable {
        version: spec_gaps::MEMORY_ATTRIBUTES_TABLE_VERSION,
        number_of_entries: 0,
        descriptor_size: mem::DESCRIPTOR_SIZE as u32,
        reserved: 0,
        entry: [],
    },
    entries: [[0; mem::DESCRIPTOR_SIZE]; MAX_ATTRIBUTE_ENTRIES],
};
static IMAGE_LAYOUT: Global<crate::memory_attributes::ImageLayout> =
    Global::new(crate::memory_attributes::ImageLayout {
        start: 0,
        text_start: 0,
        text_end: 0,
        end: 0,
    });

/// Records the firmware image layout and installs the (still empty)
/// memory attributes table.
pub fn install_memory_attributes_table(layout: crate::memory_attributes::ImageLayout) {
    IMAGE_LAYOUT.with(|l| *l = layout);
    let _ = set_configuration_table(
        spec_gaps::MEMORY_ATTRIBUTES_TABLE_GUID,
        (&raw mut ATTRIBUTES_TABLE).cast(),
    );
}

fn fill_memory_attributes_table() {
    let layout = IMAGE_LAYOUT.with(|l| *l);
    let entries =
        platform::memory::with_map(|m| crate::memory_attributes::entries(m.regions(), layout));
    if entries.len() > MAX_ATTRIBUTE_ENTRIES {
        log::warn!(
            "memory attributes table: {} runtime ranges, keeping {MAX_ATTRIBUTE_ENTRIES}",
            entries.len()
        );
    }
    let count = entries.len().min(MAX_ATTRIBUTE_ENTRIES);
    let table = &raw mut ATTRIBUTES_TABLE;
    // SAFETY: single-threaded, at ExitBootServices; the static is only
    // written here and nothing else holds a reference to it.
    let (slots, header) = unsafe { (&mut (*table).entries, &mut (*table).header) };
    for (slot, e) in slots.iter_mut().zip(&entries) {
        let descriptor = MemoryDescriptor {
            ty: e.ty,
            padding: 0,
            phys_start: e.start,
            virt_start: 0,
            page_count: e.pages,
            att: e.attribute,
        };
        *slot = [0; mem::DESCRIPTOR_SIZE];
        // SAFETY: a descriptor (40 bytes) fits the 48-byte slot.
        unsafe { (slot.as_mut_ptr() as *mut MemoryDescriptor).write_unaligned(descriptor) };
    }
    header.number_of_entries = count as u32;
}

/// Converts the system table's own pointers after SetVirtualAddressMap
/// (§8.4.1: the firmware fixes up the table the OS keeps using).
pub fn convert_to_virtual() {
    let convert = |p: u64| crate::runtime::convert_address(p).unwrap_or(p);
    // SAFETY: single-threaded; the system table is our static and the OS
    // called SetVirtualAddressMap, whose contract this fix-up implements.
    unsafe {
        let st = system_table();
        (*st).runtime_services = convert((*st).runtime_services as u64) as *mut _;
        (*st).configuration_table = convert((*st).configuration_table as u64) as *mut _;
        (*st).firmware_vendor = convert((*st).firmware_vendor as u64) as *mut _;
        update_crc(&raw mut (*st).header);
    }
}

/// Work the firmware does at ExitBootServices (quiesce devices), registered
/// by the drivers.
static EXIT_HOOKS: Global<alloc::vec::Vec<fn()>> = Global::new(alloc::vec::Vec::new());

pub fn register_exit_boot_services_hook(hook: fn()) {
    EXIT_HOOKS.with(|h| h.push(hook));
}

static EXITED: Global<bool> = Global::new(false);

pub fn boot_services_exited() -> bool {
    EXITED.try_with(|e| *e).unwrap_or(true)
}

/// ExitBootServices (§7.4.6).
///
/// # Safety
/// None beyond the EFI calling convention: both arguments are values.
unsafe extern "efiapi" fn exit_boot_services(image_handle: Handle, map_key: usize) -> Status {
    if boot_services_exited() {
        return Status::INVALID_PARAMETER;
    }
    if !ps::DB.with(|db| db.is_handle(crate::ids::HandleId::from_raw(image_handle))) {
        return Status::INVALID_PARAMETER;
    }
    events::before_exit_boot_services_notify();
    if map_key != mem::map_key() {
        return Status::INVALID_PARAMETER;
    }
    events::exit_boot_services_notify();
    let hooks = EXIT_HOOKS.with(|h| h.clone());
    for hook in hooks {
        hook();
    }
    crate::runtime::exit_boot_services();
    fill_memory_attributes_table();
    EXITED.with(|e| *e = true);
    // The boot services table is now off limits (§4.3): a caller following
    // the spec no longer uses it. Clearing the pointers catches those that do.
    // SAFETY: single-threaded; the system table is our static.
    unsafe {
        let st = system_table();
        (*st).stdin = core::ptr::null_mut();
        (*st).stdout = core::ptr::null_mut();
        (*st).stderr = core::ptr::null_mut();
        (*st).stdin_handle = core::ptr::null_mut();
        (*st).stdout_handle = core::ptr::null_mut();
        (*st).stderr_handle = core::ptr::null_mut();
        (*st).boot_services = core::ptr::null_mut();
    }
    update_crcs();
    Status::SUCCESS
}
