//! Where the EFI system table, the boot services table and the
//! configuration table array live (UEFI 2.10 §4): one static of the firmware
//! image, so they stay valid after ExitBootServices (the image is runtime
//! memory). [`crate::tables`] fills them; [`crate::image`] hands
//! [`system_table`] to the images it starts. A module of its own so that
//! `image` need not depend on `tables`, which names image's services.

use uefi_raw::table::boot::BootServices;
use uefi_raw::table::configuration::ConfigurationTable;
use uefi_raw::table::system::SystemTable;

/// Room for configuration tables (EFI_SYSTEM_TABLE.ConfigurationTable).
pub(crate) const MAX_CONFIG_TABLES: usize = 32;

pub(crate) struct Tables {
    pub(crate) system: SystemTable,
    pub(crate) boot: BootServices,
    pub(crate) config: [ConfigurationTable; MAX_CONFIG_TABLES],
}

// SAFETY: raw pointers inside name statics of the image or installed
// interfaces; the firmware is single-threaded.
unsafe impl Send for Tables {}

/// Initialised by `tables::init` before anything reads it.
static mut TABLES: core::mem::MaybeUninit<Tables> = core::mem::MaybeUninit::uninit();

/// The tables' storage; only written through raw pointers.
pub(crate) fn tables() -> *mut Tables {
    (&raw mut TABLES).cast::<Tables>()
}

/// The EFI_SYSTEM_TABLE handed to images (valid once `tables::init` ran).
pub fn system_table() -> *mut SystemTable {
    // SAFETY: the field address inside the static, no reference taken.
    unsafe { &raw mut (*tables()).system }
}
