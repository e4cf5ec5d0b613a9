//! Automatic boot options (UEFI 2.10 §3.1, §3.5.1): the Boot#### variables
//! the firmware itself creates at each start, as a platform boot manager
//! does (edk2's "refresh all boot options"): one per file system holding the
//! removable-media path `\EFI\BOOT\BOOTX64.EFI`, one for the BLS Type #1
//! loader, a hidden one for the boot menu and, only while the firmware
//! command line names a `kernel=`, a hidden one for the direct kernel boot.
//!
//! An automatic option is recognised by its OptionalData, which starts with
//! the 16 bytes of [`AUTO_OPTION_TAG`]: exactly those for all but the direct
//! kernel boot's, whose tag is followed by the LoadOptions its image gets
//! (the `kernel=` request, [`direct_kernel_option`]). Options made by the
//! user or the OS (`efibootmgr -c`, grub-install) never carry the tag and
//! are never touched.
//! [`plan`] decides, from the options that exist and those wanted now:
//! - an automatic option whose device is gone is deleted (and leaves
//!   BootOrder);
//! - a wanted option an automatic one already has (same device path) is
//!   kept as it is, even if the user changed its attributes or moved or
//!   dropped it in BootOrder; only its LoadOptions are rewritten when they
//!   changed (a different `kernel=` request);
//! - a new one gets the lowest free Boot#### number and is appended to
//!   BootOrder once (unless it is hidden: the boot menu and the direct
//!   kernel boot are reached through BootNext or the firmware's own steps,
//!   never by falling through BootOrder).
//!
//! Nothing is written when nothing changed, since each non-volatile write
//! rewrites the store on the ESP.
#![forbid(unsafe_code)]

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocols::device_path::DevicePathBuf;
use uefi_raw::{Guid, guid};

use crate::load_option::{LoadOption, LoadOptionAttributes};

/// The OptionalData of every automatic boot option.
pub const AUTO_OPTION_TAG: Guid = guid!("5b5c7f9e-2a43-4c1d-9a64-0f3e8d21b7a6");

/// Whether `option` is one the firmware created.
pub fn is_automatic(option: &LoadOption) -> bool {
    option
        .optional_data
        .starts_with(&AUTO_OPTION_TAG.to_bytes())
}

/// What the boot manager passes as LoadOptions to the image of the
/// automatic `option` (UEFI 2.10 §3.1.3: OptionalData is passed to the
/// image; the tag is the firmware's own bookkeeping and stays behind):
/// empty for all but the direct kernel boot's option.
pub fn load_options(option: &LoadOption) -> &[u8] {
    option.optional_data.get(16..).unwrap_or_default()
}

/// An automatic option: `description` and the single device path `path`
/// (End-terminated), active, hidden when `hidden`.
pub fn automatic_option(description: &str, path: &[u8], hidden: bool) -> LoadOption {
    let mut attributes = LoadOptionAttributes::ACTIVE;
    if hidden {
        attributes |= LoadOptionAttributes::HIDDEN | LoadOptionAttributes::CATEGORY_APP;
    }
    LoadOption {
        attributes,
        description: String::from(description),
        file_path_list: path.to_vec(),
        optional_data: AUTO_OPTION_TAG.to_bytes().to_vec(),
    }
}

/// The direct kernel boot's option (`crate::direct`): active and hidden
/// (§3.1.3: not offered in a boot menu, and never in BootOrder, so nothing
/// boots it by falling through BootOrder once `kernel=` is gone), of the
/// boot category (it boots an OS), with `load_options` (the `kernel=`
/// request as UCS-2, NUL-terminated) after the tag.
pub fn direct_kernel_option(description: &str, path: &[u8], load_options: &[u8]) -> LoadOption {
    let mut option = automatic_option(description, path, false);
    option.attributes |= LoadOptionAttributes::HIDDEN;
    option.optional_data.extend_from_slice(load_options);
    option
}

/// What the refresh writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Boot#### variables to delete.
    pub delete: Vec<u16>,
    /// Boot#### variables to create.
    pub create: Vec<(u16, LoadOption)>,
    /// Existing automatic options rewritten with new LoadOptions (their
    /// attributes and description as they were).
    pub update: Vec<(u16, LoadOption)>,
    /// The new BootOrder, when it changes.
    pub boot_order: Option<Vec<u16>>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty()
            && self.create.is_empty()
            && self.update.is_empty()
            && self.boot_order.is_none()
    }
}

/// The refresh of `existing` (every Boot#### variable, parsed) and
/// `boot_order` against the automatic options `wanted` now, in the order
/// new ones join BootOrder.
pub fn plan(existing: &[(u16, LoadOption)], boot_order: &[u16], wanted: &[LoadOption]) -> Plan {
    let mut plan = Plan::default();
    for (number, option) in existing {
        let still_wanted = wanted
            .iter()
            .any(|w| w.file_path_list == option.file_path_list);
        if is_automatic(option) && !still_wanted {
            plan.delete.push(*number);
        }
    }
    let mut used: BTreeSet<u16> = existing.iter().map(|(number, _)| *number).collect();
    for option in wanted {
        let present = existing
            .iter()
            .find(|(_, o)| is_automatic(o) && o.file_path_list == option.file_path_list);
        if let Some((number, current)) = present {
            if current.optional_data != option.optional_data {
                let mut updated = current.clone();
                updated.optional_data = option.optional_data.clone();
                plan.update.push((*number, updated));
            }
            continue;
        }
        let Some(number) = (0..=u16::MAX).find(|n| !used.contains(n)) else {
            break;
        };
        used.insert(number);
        plan.create.push((number, option.clone()));
    }
    let mut order: Vec<u16> = boot_order
        .iter()
        .copied()
        .filter(|n| !plan.delete.contains(n))
        .collect();
    for (number, option) in &plan.create {
        if !option.attributes.contains(LoadOptionAttributes::HIDDEN) && !order.contains(number) {
            order.push(*number);
        }
    }
    if order != boot_order {
        plan.boot_order = Some(order);
    }
    plan
}

const HARDWARE: u8 = 1;
const PCI: u8 = 1;
const MESSAGING: u8 = 3;
const SCSI: u8 = 2;
const SATA: u8 = 0x12;
const NVME: u8 = 0x17;
const MEDIA: u8 = 4;
const HARD_DRIVE: u8 = 1;
const CD_ROM: u8 = 2;

/// The bus word and the device's address on it, from a messaging node
/// (UEFI 2.10 §10.3.4): `SCSI 0:1`, `SATA port 2`, `NVMe ns 1`.
fn bus_of(node: &[u8]) -> Option<(&'static str, String)> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(node.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(node.get(at..at + 4)?.try_into().ok()?));
    match (node.first(), node.get(1)) {
        (Some(&MESSAGING), Some(&SCSI)) => Some(("SCSI", format!("{}:{}", u16_at(4)?, u16_at(6)?))),
        (Some(&MESSAGING), Some(&SATA)) => Some(("SATA", format!("port {}", u16_at(4)?))),
        (Some(&MESSAGING), Some(&NVME)) => Some(("NVMe", format!("ns {}", u32_at(4)?))),
        _ => None,
    }
}

/// The description of the removable-media option of the file system at
/// `path` (its device path): the disk's bus, kind and hardware path and the
/// partition number, e.g. `UEFI disk Pci(0x3,0x0) partition 1` (virtio-blk),
/// `UEFI NVMe disk Pci(0x4,0x0) ns 1 partition 1`, `UEFI SATA CD-ROM
/// Pci(0x1f,0x2) port 1`.
pub fn removable_description(path: &[u8]) -> String {
    let nodes = efi::device_path::nodes(path);
    let hardware: Vec<&[u8]> = nodes
        .iter()
        .copied()
        .filter(|n| n[0] == HARDWARE && n[1] == PCI)
        .collect();
    let location = DevicePathBuf::from_nodes(&hardware)
        .map(|p| p.to_text())
        .unwrap_or_default();
    let partition = nodes
        .iter()
        .find(|n| n[0] == MEDIA && n[1] == HARD_DRIVE)
        .and_then(|n| n.get(4..8))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes);
    let cd_rom = nodes.iter().any(|n| n[0] == MEDIA && n[1] == CD_ROM);
    let bus = nodes.iter().find_map(|n| bus_of(n));
    let mut description = String::from("UEFI ");
    if let Some((bus, _)) = &bus {
        description.push_str(bus);
        description.push(' ');
    }
    description.push_str(if cd_rom { "CD-ROM" } else { "disk" });
    if !location.is_empty() {
        description.push(' ');
        description.push_str(&location);
    }
    if let Some((_, address)) = &bus {
        description.push(' ');
        description.push_str(address);
    }
    if let Some(n) = partition {
        description.push_str(&format!(" partition {n}"));
    }
    description
}

/// The description of a NIC's network boot option, as edk2 words it:
/// `UEFI PXEv4 (MAC:525400123456)` or `UEFI HTTPv4 (MAC:...)`, from the
/// path's MAC node (§10.3.4.11).
pub fn network_description(path: &[u8]) -> String {
    const MAC_ADDRESS: u8 = 11;
    let mac = efi::device_path::nodes(path)
        .into_iter()
        .find(|n| n[0] == MESSAGING && n[1] == MAC_ADDRESS)
        .and_then(|n| n.get(4..10))
        .map(|bytes| bytes.iter().map(|b| format!("{b:02X}")).collect::<String>());
    // HTTP boot's child path ends with a Uri node (§10.3.4.23).
    let protocol = if crate::load_file_boot::is_uri_path(path) {
        "HTTPv4"
    } else {
        "PXEv4"
    };
    match mac {
        Some(mac) => format!("UEFI {protocol} (MAC:{mac})"),
        None => format!("UEFI {protocol}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::device_path::{file_path, hard_drive, pci, pci_root};
    use protocols::partition::HardDriveInfo;

    fn disk(slot: u8) -> Vec<u8> {
        let hd = hard_drive(&HardDriveInfo {
            partition_number: 1,
            partition_start: 2048,
            partition_size: 4096,
            signature: [slot; 16],
            partition_format: 2,
            signature_type: 2,
        });
        DevicePathBuf::from_nodes(&[pci_root(0), pci(slot, 0), hd])
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    fn auto(path: &[u8]) -> LoadOption {
        automatic_option(&removable_description(path), path, false)
    }

    fn user(path: &[u8]) -> LoadOption {
        LoadOption {
            attributes: LoadOptionAttributes::ACTIVE,
            description: String::from("debian"),
            file_path_list: path.to_vec(),
            optional_data: Vec::new(),
        }
    }

    #[test]
    fn first_start_creates_and_appends_after_the_users_options() {
        let grub = DevicePathBuf::from_nodes(&[file_path("\\EFI\\debian\\grubx64.efi").unwrap()])
            .unwrap()
            .as_bytes()
            .to_vec();
        let existing = [(0, user(&grub))];
        let menu = automatic_option("Boot menu", &disk(9), true);
        let wanted = [auto(&disk(3)), auto(&disk(4)), menu.clone()];
        let plan = plan(&existing, &[0], &wanted);
        assert!(plan.delete.is_empty());
        assert_eq!(
            plan.create,
            vec![(1, wanted[0].clone()), (2, wanted[1].clone()), (3, menu)]
        );
        // The hidden menu option stays out of BootOrder.
        assert_eq!(plan.boot_order, Some(vec![0, 1, 2]));
    }

    #[test]
    fn a_second_start_with_the_same_devices_writes_nothing() {
        let existing = [(1, auto(&disk(3))), (2, auto(&disk(4)))];
        let wanted = [auto(&disk(3)), auto(&disk(4))];
        assert!(plan(&existing, &[1, 2], &wanted).is_empty());
        // Also when the user reordered, dropped one from BootOrder or
        // deactivated one: their choices stand.
        let mut inactive = auto(&disk(4));
        inactive.attributes = LoadOptionAttributes::empty();
        let existing = [(1, auto(&disk(3))), (2, inactive)];
        assert!(plan(&existing, &[1], &wanted).is_empty());
    }

    #[test]
    fn vanished_devices_lose_their_automatic_option_only() {
        // Boot0000 is the user's option for the same disk that vanished.
        let existing = [
            (0, user(&disk(4))),
            (1, auto(&disk(3))),
            (2, auto(&disk(4))),
        ];
        let wanted = [auto(&disk(3)), auto(&disk(5))];
        let plan = plan(&existing, &[2, 0, 1, 7], &wanted);
        assert_eq!(plan.delete, vec![2]);
        // The new disk takes the lowest free number, 0002 being deleted
        // only after numbers are chosen: 0003.
        assert_eq!(plan.create, vec![(3, wanted[1].clone())]);
        // Unknown numbers in BootOrder (0007) are the user's business.
        assert_eq!(plan.boot_order, Some(vec![0, 1, 7, 3]));
    }

    #[test]
    fn the_direct_kernel_option_follows_the_request() {
        let fv = disk(9);
        let direct = |request: &str| {
            let bytes: Vec<u8> = request.encode_utf16().flat_map(u16::to_le_bytes).collect();
            direct_kernel_option("Direct kernel boot", &fv, &bytes)
        };
        let first = direct("kernel=\\a");
        assert!(is_automatic(&first));
        assert_eq!(
            load_options(&first),
            [
                b'k', 0, b'e', 0, b'r', 0, b'n', 0, b'e', 0, b'l', 0, b'=', 0, b'\\', 0, b'a', 0
            ]
        );
        assert!(
            first
                .attributes
                .contains(LoadOptionAttributes::ACTIVE | LoadOptionAttributes::HIDDEN)
        );
        assert!(
            !first
                .attributes
                .contains(LoadOptionAttributes::CATEGORY_APP)
        );
        // Created hidden: not in BootOrder.
        let existing = [(0, auto(&disk(3)))];
        let created = plan(&existing, &[0], &[auto(&disk(3)), first.clone()]);
        assert_eq!(created.create, vec![(1, first.clone())]);
        assert_eq!(created.boot_order, None);
        // The same request again writes nothing; another one rewrites only
        // the LoadOptions, keeping what the user changed.
        let mut kept = first.clone();
        kept.attributes = LoadOptionAttributes::HIDDEN;
        let existing = [(0, auto(&disk(3))), (1, kept.clone())];
        assert!(plan(&existing, &[0], &[auto(&disk(3)), first.clone()]).is_empty());
        let second = direct("kernel=\\b");
        let updated = plan(&existing, &[0], &[auto(&disk(3)), second.clone()]);
        let mut expected = kept.clone();
        expected.optional_data = second.optional_data.clone();
        assert_eq!(updated.update, vec![(1, expected)]);
        assert!(updated.create.is_empty() && updated.delete.is_empty());
        // Without kernel= it is not wanted: deleted.
        let gone = plan(&existing, &[0], &[auto(&disk(3))]);
        assert_eq!(gone.delete, vec![1]);
        assert_eq!(gone.boot_order, None);
    }

    #[test]
    fn descriptions_name_the_disk_and_partition() {
        assert_eq!(
            removable_description(&disk(3)),
            "UEFI disk Pci(0x3,0x0) partition 1"
        );
        let bare = DevicePathBuf::from_nodes(&[pci_root(0), pci(5, 1)])
            .unwrap()
            .as_bytes()
            .to_vec();
        assert_eq!(removable_description(&bare), "UEFI disk Pci(0x5,0x1)");
        assert_eq!(removable_description(&efi::device_path::END), "UEFI disk");
        assert_eq!(removable_description(&[1, 2, 3]), "UEFI disk");
    }

    #[test]
    fn network_options_name_the_mac_address() {
        let mut mac = vec![3u8, 11, 37, 0, 0x52, 0x54, 0, 0x12, 0x34, 0x56];
        mac.resize(4 + 32 + 1, 0);
        mac[36] = 1;
        let path = DevicePathBuf::from_nodes(&[pci_root(0), pci(3, 0), mac]).unwrap();
        assert_eq!(
            network_description(path.as_bytes()),
            "UEFI PXEv4 (MAC:525400123456)"
        );
    }

    #[test]
    fn descriptions_name_the_bus_and_cd_roms() {
        let path = |nodes: &[Vec<u8>]| {
            DevicePathBuf::from_nodes(nodes)
                .unwrap()
                .as_bytes()
                .to_vec()
        };
        let node = |t, s, data: &[u8]| protocols::device_path::node(t, s, data).unwrap();
        let scsi = node(3, 2, &[1, 0, 0, 0]);
        let cd = protocols::device_path::cd_rom(1, 0x20, 0x100);
        assert_eq!(
            removable_description(&path(&[pci_root(0), pci(1, 0), scsi, cd.clone()])),
            "UEFI SCSI CD-ROM Pci(0x1,0x0) 1:0"
        );
        let mut nvme = 1u32.to_le_bytes().to_vec();
        nvme.extend_from_slice(&[0; 8]);
        let hd = hard_drive(&HardDriveInfo {
            partition_number: 2,
            partition_start: 2048,
            partition_size: 4096,
            signature: [7; 16],
            partition_format: 2,
            signature_type: 2,
        });
        assert_eq!(
            removable_description(&path(&[pci_root(0), pci(4, 0), node(3, 0x17, &nvme), hd])),
            "UEFI NVMe disk Pci(0x4,0x0) ns 1 partition 2"
        );
        assert_eq!(
            removable_description(&path(&[
                pci_root(0),
                pci(0x1f, 2),
                node(3, 0x12, &[1, 0, 0xFF, 0xFF, 0, 0]),
                cd
            ])),
            "UEFI SATA CD-ROM Pci(0x1f,0x2) port 1"
        );
        // A truncated messaging node names no bus.
        assert_eq!(
            removable_description(&path(&[pci_root(0), pci(1, 0), node(3, 2, &[1])])),
            "UEFI disk Pci(0x1,0x0)"
        );
    }
}
