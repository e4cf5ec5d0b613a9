//! What the firmware measures, and where (TCG PC Client Platform Firmware
//! Profile (PFP) 1.05 §3.3.4, "PCR usage"):
//!
//! | PCR | event | when |
//! | --- | --- | --- |
//! | 0 | EV_EFI_PLATFORM_FIRMWARE_BLOB2: the firmware's code and read-only data | start |
//! | 7 | EV_EFI_VARIABLE_DRIVER_CONFIG: SecureBoot, PK, KEK, db, dbx | start, after the keys |
//! | 1 | EV_EFI_VARIABLE_BOOT: BootOrder, then each Boot#### it names | first boot option |
//! | 4 | EV_EFI_ACTION "Calling EFI Application from Boot Option" | each boot option |
//! | 0-7 | EV_SEPARATOR | first boot option |
//! | 5 | EV_EFI_GPT_EVENT: the GPT of the disk of the first image, once | LoadImage |
//! | 4 | EV_EFI_BOOT_SERVICES_APPLICATION: Authenticode digest | LoadImage of an application |
//! | 2 | EV_EFI_BOOT_SERVICES_DRIVER / _RUNTIME_SERVICES_DRIVER | LoadImage of a driver |
//! | 4 | EV_EFI_ACTION "Returning from EFI Application from Boot Option" | next boot option |
//! | 9 | EV_IPL: kernel and initrd started through the Linux boot protocol | before the jump |
//! | 8 | EV_IPL: that kernel's command line | before the jump |
//! | 7 | EV_EFI_VARIABLE_AUTHORITY: the db entry that allowed an image, once | LoadImage, Secure Boot on |
//! | 5 | EV_EFI_ACTION "Exit Boot Services Invocation", "... Returned with Success" | ExitBootServices |
//!
//! Nothing that depends on time or on where something was loaded goes into
//! a digest (the image events' addresses are in their event data only), so
//! two boots of the same disk give the same PCRs 0-7.

use alloc::vec::Vec;

use log::debug;
use platform::sync::Global;
use tcg::log as events;
use uefi_raw::Guid;
use uefi_raw::protocol::tcg::EventType;
use uefi_raw::table::runtime::VariableVendor;

use super::{measure, measure_with};
use crate::runtime::with_variables;

const GLOBAL: Guid = VariableVendor::GLOBAL_VARIABLE.0;
const IMAGE_SECURITY_DATABASE: Guid = VariableVendor::IMAGE_SECURITY_DATABASE.0;

/// PCR 0: the firmware image as the VMM loaded it, `start..end` (its code
/// and read-only data; the writable data changes as it runs).
pub fn measure_firmware(start: u64, end: u64) {
    let len = end.saturating_sub(start);
    let Ok(data) = events::platform_firmware_blob2(b"vmfw", start, len) else {
        return;
    };
    // SAFETY: `start..end` is the firmware's own read-only image, mapped
    // and never written while it runs.
    let blob = unsafe { core::slice::from_raw_parts(start as *const u8, len as usize) };
    let _ = measure(0, EventType::EFI_PLATFORM_FIRMWARE_BLOB2, blob, &data);
}

fn variable(vendor: &Guid, name: &str) -> (Vec<u16>, Vec<u8>) {
    let name16: Vec<u16> = name.encode_utf16().collect();
    let value = with_variables(|store| store.find(&name16, vendor).map(|v| v.data.to_vec()))
        .flatten()
        .unwrap_or_default();
    (name16, value)
}

/// PCR 7 (PFP §3.3.4.8): the Secure Boot policy, each variable whether it
/// exists or not (an absent one with no data), in the PFP's order.
pub fn measure_secure_boot_policy() {
    let policy = [
        (GLOBAL, "SecureBoot"),
        (GLOBAL, "PK"),
        (GLOBAL, "KEK"),
        (IMAGE_SECURITY_DATABASE, "db"),
        (IMAGE_SECURITY_DATABASE, "dbx"),
    ];
    for (vendor, name) in policy {
        let (name16, value) = variable(&vendor, name);
        let event = events::variable_driver_config(&vendor, &name16, &value);
        let _ = measure(7, event.event_type, event.measured(), &event.data);
    }
}

/// PCR 1 (PFP §3.3.4.2): BootOrder, then each Boot#### it names, once.
fn measure_boot_variables() {
    let (name, order) = variable(&GLOBAL, "BootOrder");
    let event = events::variable_boot(&GLOBAL, &name, &order);
    let _ = measure(1, event.event_type, event.measured(), &event.data);
    let mut seen = Vec::new();
    for pair in order.chunks_exact(2) {
        let number = u16::from_le_bytes([pair[0], pair[1]]);
        if seen.contains(&number) {
            continue;
        }
        seen.push(number);
        let (name, value) = variable(&GLOBAL, &alloc::format!("Boot{number:04X}"));
        if value.is_empty() {
            continue;
        }
        let event = events::variable_boot(&GLOBAL, &name, &value);
        let _ = measure(1, event.event_type, event.measured(), &event.data);
    }
}

/// The db entries already measured as authorities.
static AUTHORITIES: Global<Vec<Vec<u8>>> = Global::new(Vec::new());

/// PCR 7 (PFP §3.3.4.8): the db entry that allowed an image
/// (EV_EFI_VARIABLE_AUTHORITY, its EFI_SIGNATURE_DATA: owner and
/// certificate or hash), each entry once however many images it allows.
pub fn measure_authority(db: &[u8], list: usize, index: usize) {
    if !super::active() {
        return;
    }
    let Ok(lists) = ::secure_boot::signature_list::parse(db) else {
        return;
    };
    let Some(signature) = lists.get(list).and_then(|l| l.signatures.get(index)) else {
        return;
    };
    let mut data = Vec::with_capacity(16 + signature.data.len());
    data.extend_from_slice(&signature.owner);
    data.extend_from_slice(&signature.data);
    let new = AUTHORITIES.with(|seen| {
        if seen.contains(&data) {
            return false;
        }
        seen.push(data.clone());
        true
    });
    if new {
        let name: Vec<u16> = "db".encode_utf16().collect();
        let event = events::variable_authority(&IMAGE_SECURITY_DATABASE, &name, &data);
        let _ = measure(7, event.event_type, event.measured(), &event.data);
    }
}

/// Boot options started so far.
static ATTEMPTS: Global<u32> = Global::new(0);

/// The boot manager is about to start a boot option's image. The first
/// time, the boot variables and the end of the pre-OS measurements
/// (separators in PCRs 0-7); each later time, the return of the previous
/// one first.
pub fn boot_option_attempt() {
    if !super::active() {
        return;
    }
    let attempt = ATTEMPTS.with(|n| {
        *n += 1;
        *n
    });
    if attempt == 1 {
        measure_boot_variables();
    } else {
        super::measure_action(4, events::RETURNING_FROM_EFI_APPLICATION);
    }
    super::measure_action(4, events::CALLING_EFI_APPLICATION);
    if attempt == 1 {
        super::measure_separators(0..=7);
    }
}

/// Where the GPT of an image's disk comes from (the storage layer, which
/// `efi` cannot name): the header block and the partition entry array of
/// the disk a device path lies on.
pub type GptSource = fn(&[u8]) -> Option<(Vec<u8>, Vec<u8>)>;

static GPT_SOURCE: Global<Option<GptSource>> = Global::new(None);
/// The GPT was measured: PFP measures it once, for the first image loaded
/// from a GPT disk.
static GPT_MEASURED: Global<bool> = Global::new(false);

/// Sets where LoadImage's measurement finds an image's GPT.
pub fn set_gpt_source(source: GptSource) {
    GPT_SOURCE.with(|slot| *slot = Some(source));
}

/// PCR 5 (PFP §3.3.4.5): EV_EFI_GPT_EVENT, UEFI_GPT_DATA of the disk
/// `device_path` lies on, once per boot.
fn measure_gpt(device_path: &[u8]) {
    if GPT_MEASURED.with(|done| *done) {
        return;
    }
    let Some(source) = GPT_SOURCE.with(|slot| *slot) else {
        return;
    };
    let Some((header, entries)) = source(device_path) else {
        return;
    };
    let Ok(event) = events::gpt(&header, &entries) else {
        return;
    };
    GPT_MEASURED.with(|done| *done = true);
    let _ = measure(5, event.event_type, event.measured(), &event.data);
}

/// EV_IPL of `data` into `pcr`, logged with `description`: what a loader
/// starts without LoadImage (a kernel through the Linux boot protocol, its
/// initrd into PCR 9, its command line into PCR 8, as GRUB measures what
/// it loads).
pub fn measure_ipl(pcr: u32, data: &[u8], description: &str) {
    let _ = measure(pcr, EventType::IPL, data, description.as_bytes());
}

/// LoadImage of a PE/COFF `file` of `subsystem` (10 application, 11 boot
/// services driver, 12 runtime driver) loaded at `base` (`size` bytes,
/// linked for `link_address`) from `device_path` (PFP §3.3.4.4/§3.3.4.3).
pub fn measure_image(
    file: &[u8],
    subsystem: u16,
    base: u64,
    size: u64,
    link_address: u64,
    device_path: &[u8],
) {
    let (pcr, event_type) = match subsystem {
        10 => (4, EventType::EFI_BOOT_SERVICES_APPLICATION),
        11 => (2, EventType::EFI_BOOT_SERVICES_DRIVER),
        12 => (2, EventType::EFI_RUNTIME_SERVICES_DRIVER),
        _ => return,
    };
    measure_gpt(device_path);
    let data = events::image_load(base, size, link_address, device_path);
    let result = measure_with(pcr, event_type, &data, |update| {
        ::secure_boot::authenticode::hash_with(file, update).map_err(|_| ())
    });
    debug!(
        "tpm: image of {} bytes measured into PCR {pcr}: {result:?}",
        file.len()
    );
}
