//! System, boot services and runtime services tables (UEFI 2.10 §4.2-§4.6).

use core::mem::{offset_of, size_of};
use core::ptr;

use r_efi::efi;

use crate::ctx::{Ctx, St};

/// Lowest revision the suite accepts: 2.0 (`major << 16 | minor`, UEFI 2.10 §4.2.1).
const MIN_REVISION: u32 = 2 << 16;

/// Check names of one table: signature, revision, header size, CRC.
type HeaderNames = [&'static str; 4];

pub fn run(ctx: &mut Ctx) {
    let st = ctx.st;
    let headers: [(HeaderNames, *const efi::TableHeader, u64, usize); 3] = [
        (
            [
                "tables.system_table.signature",
                "tables.system_table.revision",
                "tables.system_table.header_size",
                "tables.system_table.crc32",
            ],
            &st.hdr,
            efi::SYSTEM_TABLE_SIGNATURE,
            size_of::<efi::SystemTable>(),
        ),
        (
            [
                "tables.boot_services.signature",
                "tables.boot_services.revision",
                "tables.boot_services.header_size",
                "tables.boot_services.crc32",
            ],
            &ctx.bs.hdr,
            efi::BOOT_SERVICES_SIGNATURE,
            size_of::<efi::BootServices>(),
        ),
        (
            [
                "tables.runtime_services.signature",
                "tables.runtime_services.revision",
                "tables.runtime_services.header_size",
                "tables.runtime_services.crc32",
            ],
            &ctx.rt.hdr,
            efi::RUNTIME_SERVICES_SIGNATURE,
            size_of::<efi::RuntimeServices>(),
        ),
    ];
    for ([sig_name, rev_name, size_name, crc_name], hdr_ptr, signature, min_size) in headers {
        // SAFETY: each pointer is the header at the start of a live firmware table.
        let hdr = unsafe { &*hdr_ptr };
        ctx.check(
            sig_name,
            hdr.signature == signature,
            format_args!("{:#x}", hdr.signature),
        );
        ctx.check(
            rev_name,
            hdr.revision >= MIN_REVISION,
            format_args!("{:#x}", hdr.revision),
        );
        ctx.check(
            size_name,
            hdr.header_size as usize >= min_size,
            format_args!("{} < {min_size}", hdr.header_size),
        );
        check_crc(ctx, crc_name, hdr_ptr);
    }

    ctx.check(
        "tables.con_out",
        !st.con_out.is_null() && !st.console_out_handle.is_null(),
        format_args!("ConOut or its handle is null"),
    );
    ctx.check(
        "tables.con_in",
        !st.con_in.is_null() && !st.console_in_handle.is_null(),
        format_args!("ConIn or its handle is null"),
    );
    ctx.check(
        "tables.firmware_vendor",
        !st.firmware_vendor.is_null(),
        format_args!("null"),
    );
    // §4.6: ACPI 2.0+ tables go under EFI_ACPI_TABLE_GUID; a platform whose
    // VMM only offers ACPI 1.0 tables (revision 0 RSDP) uses ACPI_TABLE_GUID.
    let acpi = ctx
        .config_table(&efi::ACPI_20_TABLE_GUID)
        .or_else(|| ctx.config_table(&efi::ACPI_10_TABLE_GUID));
    ctx.check(
        "tables.config.acpi",
        acpi.is_some_and(|t| !t.is_null()),
        format_args!("neither the ACPI 2.0 nor the ACPI 1.0 table GUID"),
    );
    let smbios = ctx
        .config_table(&efi::SMBIOS3_TABLE_GUID)
        .or_else(|| ctx.config_table(&efi::SMBIOS_TABLE_GUID));
    ctx.check(
        "tables.config.smbios",
        smbios.is_some_and(|t| !t.is_null()),
        format_args!("neither SMBIOS nor SMBIOS3 table GUID"),
    );
}

/// The header CRC32 covers `header_size` bytes with the CRC field itself zeroed
/// (UEFI 2.10 §4.2.1); compute it on a copy with CalculateCrc32.
fn check_crc(ctx: &mut Ctx, name: &str, hdr: *const efi::TableHeader) {
    // SAFETY: `hdr` points at a live table header.
    let (size, expected) = unsafe { ((*hdr).header_size as usize, (*hdr).crc32) };
    let Some(copy) = ctx.alloc_pool(size) else {
        ctx.fail(name, format_args!("AllocatePool({size}) failed"));
        return;
    };
    // SAFETY: the firmware table spans `header_size` bytes (§4.2.1) and `copy` was just
    // allocated with that size; the regions are distinct.
    unsafe {
        ptr::copy_nonoverlapping(hdr.cast::<u8>(), copy, size);
        ptr::write_bytes(copy.add(offset_of!(efi::TableHeader, crc32)), 0, 4);
    }
    let mut crc = 0u32;
    let status = (ctx.bs.calculate_crc32)(copy.cast(), size, &mut crc);
    ctx.free_pool(copy);
    if status != efi::Status::SUCCESS {
        ctx.fail(name, format_args!("CalculateCrc32: {}", St(status)));
        return;
    }
    ctx.check(
        name,
        crc == expected,
        format_args!("computed {crc:#x}, header says {expected:#x}"),
    );
}

/// Test-only configuration table GUID.
const TABLE_GUID: efi::Guid = efi::Guid::from_fields(
    0x5e1f7e57,
    0x07ab,
    0x4d1c,
    0x9a,
    0x61,
    &[0, 0, 0, 0, 0x7, 0xa],
);
static TABLE_ONE: u64 = 1;
static TABLE_TWO: u64 = 2;

/// InstallConfigurationTable adds, replaces and removes entries (UEFI 2.10 §7.3.11), and
/// the system table CRC follows.
pub fn run_config_table(ctx: &mut Ctx) {
    let st = ctx.st;
    let install = ctx.bs.install_configuration_table;
    let guid = ptr::from_ref(&TABLE_GUID).cast_mut();
    let one = ptr::from_ref(&TABLE_ONE).cast_mut().cast();
    let two = ptr::from_ref(&TABLE_TWO).cast_mut().cast();

    if ctx.ok("config_table.install", install(guid, one)) {
        ctx.check(
            "config_table.install.visible",
            ctx.config_table(&TABLE_GUID) == Some(one),
            format_args!("entry missing or wrong"),
        );
        check_crc(ctx, "config_table.install.crc32", &st.hdr);
    }
    if ctx.ok("config_table.replace", install(guid, two)) {
        ctx.check(
            "config_table.replace.visible",
            ctx.config_table(&TABLE_GUID) == Some(two),
            format_args!("entry not replaced"),
        );
    }
    if ctx.ok("config_table.remove", install(guid, ptr::null_mut())) {
        ctx.check(
            "config_table.remove.gone",
            ctx.config_table(&TABLE_GUID).is_none(),
            format_args!("entry still present"),
        );
        check_crc(ctx, "config_table.remove.crc32", &st.hdr);
    }
    ctx.expect(
        "config_table.remove_missing",
        install(guid, ptr::null_mut()),
        &[efi::Status::NOT_FOUND],
    );
    ctx.expect(
        "config_table.null_guid",
        install(ptr::null_mut(), one),
        &[efi::Status::INVALID_PARAMETER],
    );
}
