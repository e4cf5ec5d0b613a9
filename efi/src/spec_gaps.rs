//! The few UEFI definitions that uefi-raw 0.17, the firmware's spec
//! vocabulary, lacks: event group and configuration table GUIDs, the
//! EFI_RT_PROPERTIES_TABLE and EFI_MEMORY_ATTRIBUTES_TABLE layouts, the
//! OpenProtocol attributes, LocateHandle search types, ConvertPointer's
//! debug disposition, the boot/runtime services table signatures, the
//! LoadedImageDevicePath GUID and the LoadedImage revision.
//!
//! They are taken from r-efi here, in one place, instead of being written by
//! hand; everything else uses uefi-raw. r-efi spells its GUIDs with its own
//! type, so they are re-expressed as `uefi_raw::Guid` (same 16 bytes, UEFI
//! 2.10 Appendix A) by [`guid`], the one place the two crates meet.

use uefi_raw::Guid;

/// The same GUID as uefi-raw's type: both store the spec's 16-byte layout.
const fn guid(g: r_efi::efi::Guid) -> Guid {
    Guid::from_bytes(*g.as_bytes())
}

// Event groups (§7.1.2, CreateEventEx).
pub const EVENT_GROUP_EXIT_BOOT_SERVICES: Guid = guid(r_efi::efi::EVENT_GROUP_EXIT_BOOT_SERVICES);
pub const EVENT_GROUP_BEFORE_EXIT_BOOT_SERVICES: Guid =
    guid(r_efi::efi::EVENT_GROUP_BEFORE_EXIT_BOOT_SERVICES);
pub const EVENT_GROUP_VIRTUAL_ADDRESS_CHANGE: Guid =
    guid(r_efi::efi::EVENT_GROUP_VIRTUAL_ADDRESS_CHANGE);
pub const EVENT_GROUP_READY_TO_BOOT: Guid = guid(r_efi::efi::EVENT_GROUP_READY_TO_BOOT);
pub const EVENT_GROUP_AFTER_READY_TO_BOOT: Guid = guid(r_efi::efi::EVENT_GROUP_AFTER_READY_TO_BOOT);
pub const EVENT_GROUP_MEMORY_MAP_CHANGE: Guid = guid(r_efi::efi::EVENT_GROUP_MEMORY_MAP_CHANGE);

// Configuration tables (§4.6).
pub const ACPI_10_TABLE_GUID: Guid = guid(r_efi::efi::ACPI_10_TABLE_GUID);
pub const ACPI_20_TABLE_GUID: Guid = guid(r_efi::efi::ACPI_20_TABLE_GUID);
pub const SMBIOS_TABLE_GUID: Guid = guid(r_efi::efi::SMBIOS_TABLE_GUID);
pub const SMBIOS3_TABLE_GUID: Guid = guid(r_efi::efi::SMBIOS3_TABLE_GUID);
pub const RT_PROPERTIES_TABLE_GUID: Guid = guid(r_efi::efi::RT_PROPERTIES_TABLE_GUID);
pub const MEMORY_ATTRIBUTES_TABLE_GUID: Guid = guid(r_efi::system::MEMORY_ATTRIBUTES_TABLE_GUID);

/// EFI_RT_PROPERTIES_TABLE (§4.6.2) and its RuntimeServicesSupported bits.
pub use r_efi::efi::{
    RT_PROPERTIES_TABLE_VERSION, RT_SUPPORTED_CONVERT_POINTER,
    RT_SUPPORTED_GET_NEXT_HIGH_MONOTONIC_COUNT, RT_SUPPORTED_GET_NEXT_VARIABLE_NAME,
    RT_SUPPORTED_GET_TIME, RT_SUPPORTED_GET_VARIABLE, RT_SUPPORTED_GET_WAKEUP_TIME,
    RT_SUPPORTED_QUERY_CAPSULE_CAPABILITIES, RT_SUPPORTED_QUERY_VARIABLE_INFO,
    RT_SUPPORTED_RESET_SYSTEM, RT_SUPPORTED_SET_TIME, RT_SUPPORTED_SET_VARIABLE,
    RT_SUPPORTED_SET_VIRTUAL_ADDRESS_MAP, RT_SUPPORTED_SET_WAKEUP_TIME,
    RT_SUPPORTED_UPDATE_CAPSULE, RtPropertiesTable,
};

/// EFI_MEMORY_ATTRIBUTES_TABLE header (§4.6.4); its entries are
/// EFI_MEMORY_DESCRIPTORs, written as `uefi_raw::table::boot::MemoryDescriptor`.
pub use r_efi::system::{MEMORY_ATTRIBUTES_TABLE_VERSION, MemoryAttributesTable};

/// OpenProtocol Attributes (§7.3.9).
pub use r_efi::system::{
    OPEN_PROTOCOL_BY_CHILD_CONTROLLER, OPEN_PROTOCOL_BY_DRIVER, OPEN_PROTOCOL_BY_HANDLE_PROTOCOL,
    OPEN_PROTOCOL_EXCLUSIVE, OPEN_PROTOCOL_GET_PROTOCOL, OPEN_PROTOCOL_TEST_PROTOCOL,
};

/// LocateHandle SearchType values (§7.3.6); uefi-raw passes them as `i32`.
pub const ALL_HANDLES: i32 = r_efi::efi::ALL_HANDLES as i32;
pub const BY_REGISTER_NOTIFY: i32 = r_efi::efi::BY_REGISTER_NOTIFY as i32;
pub const BY_PROTOCOL: i32 = r_efi::efi::BY_PROTOCOL as i32;

/// ConvertPointer DebugDisposition (§8.4.2).
pub use r_efi::efi::OPTIONAL_POINTER;

/// Table header signatures (§4.4, §4.5); the system table's is
/// `uefi_raw::table::system::SystemTable::SIGNATURE`.
pub use r_efi::efi::{BOOT_SERVICES_SIGNATURE, RUNTIME_SERVICES_SIGNATURE};

/// EFI_LOADED_IMAGE_DEVICE_PATH_PROTOCOL (§9.2) and the LoadedImage
/// revision (§9.1).
pub const LOADED_IMAGE_DEVICE_PATH_PROTOCOL_GUID: Guid =
    guid(r_efi::protocols::loaded_image_device_path::PROTOCOL_GUID);
pub use r_efi::protocols::loaded_image::REVISION as LOADED_IMAGE_PROTOCOL_REVISION;

/// The driver override protocols ConnectController consults (§7.3.12):
/// EFI_PLATFORM_DRIVER_OVERRIDE_PROTOCOL (§11.3), EFI_BUS_SPECIFIC_DRIVER_
/// OVERRIDE_PROTOCOL (§11.4) and EFI_DRIVER_FAMILY_OVERRIDE_PROTOCOL (§11.12).
pub use r_efi::protocols::bus_specific_driver_override::Protocol as BusSpecificDriverOverrideProtocol;
pub use r_efi::protocols::driver_family_override::Protocol as DriverFamilyOverrideProtocol;
pub use r_efi::protocols::platform_driver_override::Protocol as PlatformDriverOverrideProtocol;
pub const PLATFORM_DRIVER_OVERRIDE_PROTOCOL_GUID: Guid =
    guid(r_efi::protocols::platform_driver_override::PROTOCOL_GUID);
pub const BUS_SPECIFIC_DRIVER_OVERRIDE_PROTOCOL_GUID: Guid =
    guid(r_efi::protocols::bus_specific_driver_override::PROTOCOL_GUID);
pub const DRIVER_FAMILY_OVERRIDE_PROTOCOL_GUID: Guid =
    guid(r_efi::protocols::driver_family_override::PROTOCOL_GUID);

/// EFI_HII_PACKAGE_LIST_PROTOCOL, which LoadImage installs on an image
/// carrying HII resources (§7.4.1): its interface is the image's
/// EFI_HII_PACKAGE_LIST_HEADER itself.
pub const HII_PACKAGE_LIST_PROTOCOL_GUID: Guid =
    guid(r_efi::protocols::hii_package_list::PROTOCOL_GUID);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_keep_the_spec_text_form() {
        // UEFI 2.10 §4.6.1.1 spells EFI_ACPI_20_TABLE_GUID this way.
        assert_eq!(
            alloc::format!("{ACPI_20_TABLE_GUID}"),
            "8868e871-e4f1-11d3-bc22-0080c73c8881"
        );
        assert_eq!(
            guid(r_efi::efi::SMBIOS3_TABLE_GUID).to_bytes(),
            *r_efi::efi::SMBIOS3_TABLE_GUID.as_bytes()
        );
    }
}
