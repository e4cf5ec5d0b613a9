//! The boot manager (UEFI 2.10 §3). In order, falling through to the next
//! when an option is missing, fails to load, or returns (one line on serial
//! says why):
//! 1. a direct kernel boot named on the firmware command line (`kernel=`,
//!    `crate::direct`);
//! 2. the firmware command line's pick: `bootnext=XXXX` (a Boot#### option)
//!    or `path=\EFI\...` (that file on each file system);
//! 3. the `BootNext` variable's option, once: it is deleted first (§3.1.2);
//! 4. the active `Boot####` options in `BootOrder` (§3.1.3), whose device
//!    paths may be full or short-form (§3.1.2: starting at a HardDrive node,
//!    or a bare file path);
//! 5. the removable-media path `\EFI\BOOT\BOOTX64.EFI` (§3.5.1.1) of each
//!    file system in device order and the built-in BLS Type #1 boot
//!    (`crate::bls_boot`), BLS first with `boot=bls`.
//!
//! `BootCurrent` (volatile, §3.3) names the Boot#### option being started.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use efi::ids::HandleId;
use efi::protocol_services as ps;
use efi::variables::Attributes;
use log::{info, warn};
use protocols::device_path::DevicePathBuf;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::file_system::SimpleFileSystemProtocol;
use uefi_raw::table::runtime::VariableVendor;
use uefi_raw::{Guid, Status};

use crate::boot_first::{BootFirst, REMOVABLE_MEDIA_PATH};
use crate::image_boot::{file_device_path, load_and_start};
use crate::load_option::{self, LoadOption};
use crate::status::status_name;

/// EFI_GLOBAL_VARIABLE (§3.3), the vendor GUID of BootOrder & co.
pub const GLOBAL_VARIABLE: Guid = VariableVendor::GLOBAL_VARIABLE.0;

/// Tries every boot option in the order `cmdline` (the firmware's own
/// command line) asks for, after the boot menu when one is configured
/// (`crate::menu`). Returns when none booted.
pub fn run(cmdline: &str) {
    crate::global_variables::publish();
    efi::events::ready_to_boot_notify();
    crate::direct::run_from_cmdline(cmdline);
    crate::menu::run(cmdline);
    match CmdlineChoice::from_cmdline(cmdline) {
        Some(CmdlineChoice::BootOption(number)) => boot_option(number),
        Some(CmdlineChoice::Path(path)) => boot_path_on_each_file_system(&path),
        None => {}
    }
    run_load_options();
    match BootFirst::from_cmdline(cmdline) {
        BootFirst::RemovableMedia => {
            run_removable_media();
            crate::bls_boot::run();
        }
        BootFirst::Bls => {
            crate::bls_boot::run();
            run_removable_media();
        }
    }
}

/// What the firmware command line picks to boot before the variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdlineChoice {
    /// `bootnext=XXXX`: the Boot#### option with that hex number.
    BootOption(u16),
    /// `path=\EFI\...`: that file, on each file system in device order.
    Path(String),
}

impl CmdlineChoice {
    /// The last `bootnext=` or `path=` word wins; malformed ones are
    /// ignored with a warning.
    pub fn from_cmdline(cmdline: &str) -> Option<CmdlineChoice> {
        cmdline.split_ascii_whitespace().rev().find_map(|word| {
            if let Some(number) = word.strip_prefix("bootnext=") {
                let parsed = (number.len() == 4)
                    .then(|| u16::from_str_radix(number, 16).ok())
                    .flatten();
                if parsed.is_none() {
                    warn!("ignoring bootnext={number}: not four hex digits");
                }
                return parsed.map(CmdlineChoice::BootOption);
            }
            let path = word.strip_prefix("path=")?;
            if path.is_empty() {
                warn!("ignoring an empty path=");
                return None;
            }
            let path = path.replace('/', "\\");
            Some(CmdlineChoice::Path(if path.starts_with('\\') {
                path
            } else {
                format!("\\{path}")
            }))
        })
    }
}

/// `BootNext` once (deleted before it is tried, so a failing option cannot
/// trap the machine), then the active options of `BootOrder`.
fn run_load_options() {
    if let Some((_, bytes)) = read_variable("BootNext") {
        // §3.1.2: the boot manager deletes BootNext before booting it.
        let status = set_variable("BootNext", Attributes::empty(), &[]);
        if status.is_error() {
            warn!("cannot delete BootNext: {}", status_name(status));
        }
        match <[u8; 2]>::try_from(bytes.as_slice()) {
            Ok(number) => boot_option(u16::from_le_bytes(number)),
            Err(_) => warn!("ignoring BootNext of {} bytes", bytes.len()),
        }
    }
    let Some((_, order)) = read_variable("BootOrder") else {
        return;
    };
    let order = match load_option::parse_boot_order(&order) {
        Ok(order) => order,
        Err(e) => {
            warn!("ignoring BootOrder: {e}");
            return;
        }
    };
    for number in order {
        let name = load_option::boot_variable_name(number);
        match read_option(number) {
            Some(option) if !option.is_active() => info!("{name} is inactive, skipped"),
            Some(_) => boot_option(number),
            None => {}
        }
    }
}

/// Reads and parses Boot####; None (after a warning) when missing or bad.
fn read_option(number: u16) -> Option<LoadOption> {
    let name = load_option::boot_variable_name(number);
    let Some((_, bytes)) = read_variable(&name) else {
        warn!("{name} (in BootOrder or BootNext) does not exist");
        return None;
    };
    LoadOption::parse(&bytes)
        .map_err(|e| warn!("{name} is malformed: {e}"))
        .ok()
}

/// Boots load option Boot`number` (active or not), with BootCurrent set.
fn boot_option(number: u16) {
    let name = load_option::boot_variable_name(number);
    let Some(option) = read_option(number) else {
        return;
    };
    let target = option.device_path();
    let file_systems: Vec<(HandleId, Vec<u8>)> = ps::handles_with(&SimpleFileSystemProtocol::GUID)
        .into_iter()
        .filter_map(|fs| Some((fs, handle_device_path(fs)?)))
        .collect();
    let candidates = expand_device_path(target.as_bytes(), &file_systems);
    if candidates.is_empty() {
        warn!(
            "{name} ({}): no device matches {}; trying the next boot option",
            option.description,
            target.to_text()
        );
        return;
    }
    for path in candidates {
        let file = efi::device_path::file_path_text(&path).unwrap_or_default();
        let description = format!("{name} ({}) {file}", option.description);
        // §3.3: BootCurrent is volatile BS|RT and names the option booting.
        let status = set_variable(
            "BootCurrent",
            Attributes::BOOTSERVICE_ACCESS | Attributes::RUNTIME_ACCESS,
            &number.to_le_bytes(),
        );
        if status.is_error() {
            warn!("cannot set BootCurrent: {}", status_name(status));
        }
        match load_and_start(&path, &description) {
            Status::NOT_FOUND => warn!("{description}: not found; trying the next boot option"),
            Status::SUCCESS => warn!("{description} returned; trying the next boot option"),
            status => warn!(
                "{description} failed: {}; trying the next boot option",
                status_name(status)
            ),
        }
    }
    let _ = set_variable("BootCurrent", Attributes::empty(), &[]);
}

/// Tries `file` on each file system in device order.
fn boot_path_on_each_file_system(file: &str) {
    for fs in ps::handles_with(&SimpleFileSystemProtocol::GUID) {
        let Some(path) = file_device_path(fs, file) else {
            continue;
        };
        let description = efi::device_path::file_path_text(&path).unwrap_or_default();
        match load_and_start(&path, &description) {
            Status::NOT_FOUND => continue,
            Status::SUCCESS => warn!("{description} returned; trying the next boot option"),
            status => warn!(
                "{description} failed: {}; trying the next boot option",
                status_name(status)
            ),
        }
    }
}

const MEDIA_TYPE: u8 = 4;
const HARD_DRIVE_SUBTYPE: u8 = 1;
const FILE_PATH_SUBTYPE: u8 = 4;
/// HardDrive node payload: the partition signature and signature type
/// (§10.3.5.1), which identify a partition across device renumbering.
const HD_SIGNATURE: core::ops::Range<usize> = 20..36;
const HD_SIGNATURE_TYPE: usize = 37;

/// The full device paths to try for a load option's path, given the file
/// systems (handle, device path with End) in device order (§3.1.2):
/// - with a HardDrive node (full or short-form path): the file system
///   whose path has a HardDrive node with the same signature, followed by
///   the option's nodes after its HardDrive node;
/// - starting with a file path (short-form): that file on each file
///   system;
/// - otherwise the path itself, for LoadImage to resolve.
pub fn expand_device_path(path: &[u8], file_systems: &[(HandleId, Vec<u8>)]) -> Vec<Vec<u8>> {
    let nodes = efi::device_path::nodes(path);
    let is = |node: &[u8], sub_type| node[0] == MEDIA_TYPE && node[1] == sub_type;
    let hard_drive = nodes
        .iter()
        .position(|node| is(node, HARD_DRIVE_SUBTYPE) && node.len() > HD_SIGNATURE_TYPE + 4);
    // The prefix's nodes, then `tail`, then End. Both come from `nodes`,
    // which yields only whole, well-formed nodes, so the builder accepts
    // them all.
    let with_tail = |prefix: &[u8], tail: &[&[u8]]| -> Option<Vec<u8>> {
        let mut all = efi::device_path::nodes(prefix);
        all.extend_from_slice(tail);
        let path = DevicePathBuf::from_nodes(&all).ok()?;
        Some(path.as_bytes().to_vec())
    };
    if let Some(index) = hard_drive {
        let wanted = nodes[index];
        let same_partition = |node: &&[u8]| {
            is(node, HARD_DRIVE_SUBTYPE)
                && node.get(4 + HD_SIGNATURE.start..4 + HD_SIGNATURE.end)
                    == wanted.get(4 + HD_SIGNATURE.start..4 + HD_SIGNATURE.end)
                && node.get(4 + HD_SIGNATURE_TYPE) == wanted.get(4 + HD_SIGNATURE_TYPE)
        };
        return file_systems
            .iter()
            .filter(|(_, fs_path)| efi::device_path::nodes(fs_path).iter().any(same_partition))
            .take(1)
            .filter_map(|(_, fs_path)| with_tail(fs_path, &nodes[index + 1..]))
            .collect();
    }
    match nodes.first() {
        Some(first) if is(first, FILE_PATH_SUBTYPE) => file_systems
            .iter()
            .filter_map(|(_, fs_path)| with_tail(fs_path, &nodes))
            .collect(),
        Some(_) => with_tail(&[], &nodes).into_iter().collect(),
        None => Vec::new(),
    }
}

fn handle_device_path(handle: HandleId) -> Option<Vec<u8>> {
    let dp = ps::get_protocol::<DevicePathProtocol>(handle, &DevicePathProtocol::GUID)?;
    // SAFETY: device paths installed on handles are well formed.
    unsafe { efi::device_path::read_path(dp) }.ok()
}

fn variable_name(name: &str) -> Vec<u16> {
    name.encode_utf16().collect()
}

/// A global variable's attributes and data.
fn read_variable(name: &str) -> Option<(Attributes, Vec<u8>)> {
    let name = variable_name(name);
    efi::runtime::with_variables(|store| {
        store
            .find(&name, &GLOBAL_VARIABLE)
            .map(|v| (v.attributes, v.data.to_vec()))
    })
    .flatten()
}

/// Sets (or, with empty data, deletes) a global variable; non-volatile
/// changes are persisted before this returns.
fn set_variable(name: &str, attributes: Attributes, data: &[u8]) -> Status {
    efi::runtime::set_variable_persisting(&variable_name(name), &GLOBAL_VARIABLE, attributes, data)
}

/// Tries `\EFI\BOOT\BOOTX64.EFI` on each file system in device order.
fn run_removable_media() {
    let file_systems = ps::handles_with(&SimpleFileSystemProtocol::GUID);
    for fs in file_systems {
        let Some(path) = file_device_path(fs, REMOVABLE_MEDIA_PATH) else {
            continue;
        };
        let description = efi::device_path::file_path_text(&path).unwrap_or_default();
        match load_and_start(&path, &description) {
            Status::NOT_FOUND => continue,
            Status::SUCCESS => warn!("{description} returned; trying the next boot option"),
            status => warn!(
                "{description} failed: {}; trying the next boot option",
                status_name(status)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_picks_an_option_or_a_path() {
        assert_eq!(CmdlineChoice::from_cmdline("log=debug"), None);
        assert_eq!(
            CmdlineChoice::from_cmdline("bootnext=000A"),
            Some(CmdlineChoice::BootOption(10))
        );
        assert_eq!(
            CmdlineChoice::from_cmdline("bootnext=12 bootnext=zzzz"),
            None,
            "malformed numbers are ignored"
        );
        assert_eq!(
            CmdlineChoice::from_cmdline("bootnext=0001 path=/EFI/debian/grubx64.efi"),
            Some(CmdlineChoice::Path("\\EFI\\debian\\grubx64.efi".into()))
        );
        assert_eq!(
            CmdlineChoice::from_cmdline("path=\\a.efi bootnext=0003"),
            Some(CmdlineChoice::BootOption(3))
        );
        assert_eq!(
            CmdlineChoice::from_cmdline("path=a.efi"),
            Some(CmdlineChoice::Path("\\a.efi".into()))
        );
    }

    use protocols::device_path::{file_path, hard_drive, pci, pci_root};
    use protocols::partition::HardDriveInfo;

    fn hd(signature_byte: u8, number: u32) -> Vec<u8> {
        hard_drive(&HardDriveInfo {
            partition_number: number,
            partition_start: 2048,
            partition_size: 4096,
            signature: [signature_byte; 16],
            partition_format: 2,
            signature_type: 2,
        })
    }

    fn path(nodes: &[Vec<u8>]) -> Vec<u8> {
        DevicePathBuf::from_nodes(nodes)
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn load_option_paths_expand_to_our_devices() {
        let esp = path(&[pci_root(0), pci(3, 0), hd(0xaa, 1)]);
        let other = path(&[pci_root(0), pci(4, 0), hd(0xbb, 1)]);
        let file_systems = [
            (HandleId::from_value(1), other.clone()),
            (HandleId::from_value(2), esp.clone()),
        ];
        let shim = file_path("\\EFI\\debian\\shimx64.efi").unwrap();
        let full = path(&[pci_root(0), pci(3, 0), hd(0xaa, 1), shim.clone()]);

        // Short form: HD() + file, matched by signature, on any PCI slot.
        let short = path(&[hd(0xaa, 1), shim.clone()]);
        assert_eq!(
            expand_device_path(&short, &file_systems),
            vec![full.clone()]
        );
        // A full path from another slot numbering still finds the partition.
        let moved = path(&[pci_root(0), pci(9, 0), hd(0xaa, 1), shim.clone()]);
        assert_eq!(
            expand_device_path(&moved, &file_systems),
            vec![full.clone()]
        );
        // A partition we do not have: nothing to try.
        let unknown = path(&[hd(0xcc, 1), shim.clone()]);
        assert!(expand_device_path(&unknown, &file_systems).is_empty());
        // A bare file path: that file on every file system, in order.
        let bare = path(std::slice::from_ref(&shim));
        let mut on_other = efi::device_path::nodes(&other).concat();
        on_other.extend_from_slice(&shim);
        on_other.extend_from_slice(&efi::device_path::END);
        assert_eq!(
            expand_device_path(&bare, &file_systems),
            vec![on_other, full.clone()]
        );
        // Anything else goes to LoadImage unchanged.
        let pci_only = path(&[pci_root(0), pci(5, 0), shim]);
        assert_eq!(
            expand_device_path(&pci_only, &file_systems),
            vec![pci_only.clone()]
        );
        assert!(expand_device_path(&efi::device_path::END, &file_systems).is_empty());
    }
}
