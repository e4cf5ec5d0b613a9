//! Pure device-path utilities (UEFI 2.10 §10): validation and iteration,
//! builders for the nodes this firmware produces, concatenation, splitting a
//! path into its device and file parts, and text rendering in the style of
//! the DevicePathToText protocol (§10.6).
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use uefi_raw::Guid;
use uefi_raw::protocol::device_path::{DeviceSubType, DeviceType};

use crate::partition::{HardDriveInfo, MediaNode, SIGNATURE_TYPE_GUID, SIGNATURE_TYPE_MBR};

// Node types and subtypes as the bytes they are in a path (§10.3.1); named
// for use in patterns.
const TYPE_HARDWARE: u8 = DeviceType::HARDWARE.0;
const TYPE_ACPI: u8 = DeviceType::ACPI.0;
pub const TYPE_MESSAGING: u8 = DeviceType::MESSAGING.0;
const TYPE_MEDIA: u8 = DeviceType::MEDIA.0;
pub const TYPE_BIOS: u8 = DeviceType::BIOS_BOOT_SPEC.0;
const TYPE_END: u8 = DeviceType::END.0;
const END_ENTIRE: u8 = DeviceSubType::END_ENTIRE.0;
const END_INSTANCE: u8 = DeviceSubType::END_INSTANCE.0;
const HARDWARE_PCI: u8 = DeviceSubType::HARDWARE_PCI.0;
const MESSAGING_MAC: u8 = DeviceSubType::MESSAGING_MAC_ADDRESS.0;
const MEDIA_HARD_DRIVE: u8 = DeviceSubType::MEDIA_HARD_DRIVE.0;
const MEDIA_CD_ROM: u8 = DeviceSubType::MEDIA_CD_ROM.0;
const MEDIA_FILE_PATH: u8 = DeviceSubType::MEDIA_FILE_PATH.0;
const MEDIA_VENDOR: u8 = DeviceSubType::MEDIA_VENDOR.0;

/// ACPI device path subtype (§10.3.3).
pub const ACPI_SUBTYPE_HID: u8 = DeviceSubType::ACPI.0;
/// EISA PNP ID for PNP0A03 (PCI root bridge): compressed "PNP" in the low
/// half, product number in the high half (§10.3.3).
pub const EISA_PNP0A03: u32 = 0x0A03_41D0;
/// PNP0A08 (PCI Express root bridge).
pub const EISA_PNP0A08: u32 = 0x0A08_41D0;
const EISA_PNP_VENDOR: u32 = 0x41D0;

const HEADER_SIZE: usize = 4;
const HARD_DRIVE_NODE_SIZE: usize = 42;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevicePathError {
    /// Fewer than 4 bytes remain for a node header at this offset.
    TruncatedHeader { offset: usize },
    /// Node length below 4 at this offset.
    BadNodeLength { offset: usize, length: u16 },
    /// Node at this offset runs past the buffer.
    NodePastEnd { offset: usize, length: u16 },
    /// No End Entire node before the end of the buffer.
    MissingEnd,
    /// A node would exceed the 16-bit length field.
    NodeTooLarge(usize),
}

impl fmt::Display for DevicePathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevicePathError::TruncatedHeader { offset } => {
                write!(f, "truncated device-path node header at offset {offset}")
            }
            DevicePathError::BadNodeLength { offset, length } => {
                write!(
                    f,
                    "device-path node at offset {offset} has length {length} < 4"
                )
            }
            DevicePathError::NodePastEnd { offset, length } => write!(
                f,
                "device-path node at offset {offset} of length {length} runs past the buffer"
            ),
            DevicePathError::MissingEnd => write!(f, "device path lacks an End Entire node"),
            DevicePathError::NodeTooLarge(len) => {
                write!(f, "device-path node of {len} bytes exceeds 65535")
            }
        }
    }
}

/// One node: header fields and the bytes after the 4-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node<'a> {
    pub node_type: u8,
    pub sub_type: u8,
    pub data: &'a [u8],
}

impl Node<'_> {
    pub fn is_end_entire(&self) -> bool {
        self.node_type == TYPE_END && self.sub_type == END_ENTIRE
    }

    pub fn is_end_instance(&self) -> bool {
        self.node_type == TYPE_END && self.sub_type == END_INSTANCE
    }

    pub fn is_file_path(&self) -> bool {
        self.node_type == TYPE_MEDIA && self.sub_type == MEDIA_FILE_PATH
    }

    /// Total length including the header.
    pub fn byte_len(&self) -> usize {
        HEADER_SIZE + self.data.len()
    }
}

/// Validates `path` and returns its nodes up to, not including, End Entire
/// (End Instance nodes of multi-instance paths are returned).
pub fn parse(path: &[u8]) -> Result<Vec<Node<'_>>, DevicePathError> {
    let mut nodes = Vec::new();
    let mut offset = 0;
    loop {
        let header = path
            .get(offset..offset + HEADER_SIZE)
            .ok_or(if offset == path.len() {
                DevicePathError::MissingEnd
            } else {
                DevicePathError::TruncatedHeader { offset }
            })?;
        let length = u16::from_le_bytes([header[2], header[3]]);
        if usize::from(length) < HEADER_SIZE {
            return Err(DevicePathError::BadNodeLength { offset, length });
        }
        let end = offset + usize::from(length);
        let bytes = path
            .get(offset..end)
            .ok_or(DevicePathError::NodePastEnd { offset, length })?;
        let node = Node {
            node_type: header[0],
            sub_type: header[1],
            data: &bytes[HEADER_SIZE..],
        };
        if node.is_end_entire() {
            return Ok(nodes);
        }
        nodes.push(node);
        offset = end;
    }
}

/// Byte length of the path at the start of `path`, End Entire included.
pub fn total_len(path: &[u8]) -> Result<usize, DevicePathError> {
    Ok(parse(path)?.iter().map(Node::byte_len).sum::<usize>() + HEADER_SIZE)
}

/// Builds a node from its type, subtype and payload.
pub fn node(node_type: u8, sub_type: u8, data: &[u8]) -> Result<Vec<u8>, DevicePathError> {
    let length = data.len() + HEADER_SIZE;
    let length16 = u16::try_from(length).map_err(|_| DevicePathError::NodeTooLarge(length))?;
    let mut bytes = Vec::with_capacity(length);
    bytes.extend_from_slice(&[node_type, sub_type]);
    bytes.extend_from_slice(&length16.to_le_bytes());
    bytes.extend_from_slice(data);
    Ok(bytes)
}

fn small_node(node_type: u8, sub_type: u8, data: &[u8]) -> Vec<u8> {
    // Payloads of fixed, small size always fit the 16-bit length.
    node(node_type, sub_type, data).unwrap_or_default()
}

/// ACPI(PNP0A03, uid): `PciRoot(uid)` (§10.3.3).
pub fn pci_root(uid: u32) -> Vec<u8> {
    let mut data = [0u8; 8];
    data[..4].copy_from_slice(&EISA_PNP0A03.to_le_bytes());
    data[4..].copy_from_slice(&uid.to_le_bytes());
    small_node(TYPE_ACPI, ACPI_SUBTYPE_HID, &data)
}

/// PCI node (§10.3.2.1): the payload is Function then Device.
pub fn pci(device: u8, function: u8) -> Vec<u8> {
    small_node(TYPE_HARDWARE, HARDWARE_PCI, &[function, device])
}

/// MAC address messaging node (§10.3.4.11): the address padded to 32 bytes,
/// then the interface type (1: Ethernet, RFC 3232).
pub fn mac(address: &[u8; 6], if_type: u8) -> Vec<u8> {
    let mut data = [0u8; 33];
    data[..6].copy_from_slice(address);
    data[32] = if_type;
    small_node(TYPE_MESSAGING, MESSAGING_MAC, &data)
}

/// HardDrive media node (§10.3.5.1).
pub fn hard_drive(info: &HardDriveInfo) -> Vec<u8> {
    let mut data = Vec::with_capacity(HARD_DRIVE_NODE_SIZE - HEADER_SIZE);
    data.extend_from_slice(&info.partition_number.to_le_bytes());
    data.extend_from_slice(&info.partition_start.to_le_bytes());
    data.extend_from_slice(&info.partition_size.to_le_bytes());
    data.extend_from_slice(&info.signature);
    data.push(info.partition_format);
    data.push(info.signature_type);
    small_node(TYPE_MEDIA, MEDIA_HARD_DRIVE, &data)
}

/// CD-ROM media node (§10.3.5.2): an El Torito boot image.
pub fn cd_rom(boot_entry: u32, partition_start: u64, partition_size: u64) -> Vec<u8> {
    let mut data = Vec::with_capacity(20);
    data.extend_from_slice(&boot_entry.to_le_bytes());
    data.extend_from_slice(&partition_start.to_le_bytes());
    data.extend_from_slice(&partition_size.to_le_bytes());
    small_node(TYPE_MEDIA, MEDIA_CD_ROM, &data)
}

/// Media node of a partition: HardDrive or CD-ROM.
pub fn media(node: &MediaNode) -> Vec<u8> {
    match node {
        MediaNode::HardDrive(info) => hard_drive(info),
        MediaNode::CdRom {
            boot_entry,
            partition_start,
            partition_size,
        } => cd_rom(*boot_entry, *partition_start, *partition_size),
    }
}

/// File path media node (§10.3.5.4): NUL-terminated UCS-2. Characters
/// outside the BMP cannot be expressed and become U+FFFD.
pub fn file_path(path: &str) -> Result<Vec<u8>, DevicePathError> {
    let mut data = Vec::with_capacity((path.len() + 1) * 2);
    for c in path.chars() {
        let unit = u16::try_from(u32::from(c)).unwrap_or(0xFFFD);
        data.extend_from_slice(&unit.to_le_bytes());
    }
    data.extend_from_slice(&[0, 0]);
    node(TYPE_MEDIA, MEDIA_FILE_PATH, &data)
}

/// Vendor-defined media node (§10.3.5.3).
pub fn vendor_media(vendor: &Guid, data: &[u8]) -> Result<Vec<u8>, DevicePathError> {
    let mut payload = Vec::with_capacity(16 + data.len());
    payload.extend_from_slice(&vendor.to_bytes());
    payload.extend_from_slice(data);
    node(TYPE_MEDIA, MEDIA_VENDOR, &payload)
}

pub fn end_entire() -> [u8; 4] {
    [TYPE_END, END_ENTIRE, 4, 0]
}

/// An owned, validated device path that always ends in End Entire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePathBuf {
    bytes: Vec<u8>,
}

impl Default for DevicePathBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl DevicePathBuf {
    /// The empty path (just End Entire).
    pub fn new() -> Self {
        DevicePathBuf {
            bytes: end_entire().to_vec(),
        }
    }

    /// Copies the path at the start of `bytes` (through its End Entire node).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DevicePathError> {
        let len = total_len(bytes)?;
        Ok(DevicePathBuf {
            bytes: bytes[..len].to_vec(),
        })
    }

    /// Builds a path from encoded nodes (each as returned by the builders).
    pub fn from_nodes<N: AsRef<[u8]>>(nodes: &[N]) -> Result<Self, DevicePathError> {
        let mut path = Self::new();
        for node in nodes {
            path.push(node.as_ref())?;
        }
        Ok(path)
    }

    /// Appends one encoded node, which must be exactly one well-formed node.
    pub fn push(&mut self, node: &[u8]) -> Result<(), DevicePathError> {
        let mut check = node.to_vec();
        check.extend_from_slice(&end_entire());
        if total_len(&check)? != check.len() {
            return Err(DevicePathError::NodePastEnd {
                offset: 0,
                length: node.len() as u16,
            });
        }
        let end = self.bytes.len() - HEADER_SIZE;
        self.bytes.splice(end..end, node.iter().copied());
        Ok(())
    }

    /// Concatenates `other` after this path's nodes (UEFI AppendDevicePath).
    pub fn append(&mut self, other: &DevicePathBuf) {
        let end = self.bytes.len() - HEADER_SIZE;
        self.bytes.truncate(end);
        self.bytes.extend_from_slice(&other.bytes);
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn nodes(&self) -> Vec<Node<'_>> {
        // Validated on construction.
        parse(&self.bytes).unwrap_or_default()
    }

    /// Splits at the first FilePath node: the device part, and the file path
    /// joined from the FilePath nodes (consecutive nodes are joined with `\`).
    pub fn split_file_path(&self) -> (DevicePathBuf, Option<String>) {
        let nodes = self.nodes();
        let Some(first_file) = nodes.iter().position(Node::is_file_path) else {
            return (self.clone(), None);
        };
        let device_len: usize = nodes[..first_file].iter().map(Node::byte_len).sum();
        let mut device = self.bytes[..device_len].to_vec();
        device.extend_from_slice(&end_entire());
        let mut file = String::new();
        for node in nodes[first_file..].iter().filter(|n| n.is_file_path()) {
            let part = decode_ucs2(node.data);
            if !file.is_empty() && !file.ends_with('\\') && !part.starts_with('\\') {
                file.push('\\');
            }
            file.push_str(&part);
        }
        (DevicePathBuf { bytes: device }, Some(file))
    }

    /// DevicePathToText-style rendering.
    pub fn to_text(&self) -> String {
        to_text(&self.bytes)
    }
}

fn decode_ucs2(data: &[u8]) -> String {
    let units = platform::le::u16_units(data).take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Formats a GUID in registry format, upper case, as DevicePathToText does.
pub fn format_guid(guid: &Guid) -> String {
    String::from_utf8_lossy(&guid.to_ascii_hex_lower()).to_ascii_uppercase()
}

fn hex(data: &[u8]) -> String {
    data.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

/// Renders a node; None when its payload is too short for its kind (it is
/// then shown generically).
fn node_text(node: &Node) -> Option<String> {
    let d = node.data;
    Some(match (node.node_type, node.sub_type) {
        (TYPE_ACPI, ACPI_SUBTYPE_HID) => {
            let (hid, uid) = (platform::le::u32_at(d, 0)?, platform::le::u32_at(d, 4)?);
            match hid {
                EISA_PNP0A03 => format!("PciRoot(0x{uid:x})"),
                EISA_PNP0A08 => format!("PcieRoot(0x{uid:x})"),
                _ if hid & 0xFFFF == EISA_PNP_VENDOR => {
                    format!("Acpi(PNP{:04X},0x{uid:x})", hid >> 16)
                }
                _ => format!("Acpi(0x{hid:08x},0x{uid:x})"),
            }
        }
        (TYPE_HARDWARE, HARDWARE_PCI) => {
            let (function, device) = (d.first()?, d.get(1)?);
            format!("Pci(0x{device:x},0x{function:x})")
        }
        (TYPE_MEDIA, MEDIA_HARD_DRIVE) => {
            let number = platform::le::u32_at(d, 0)?;
            let (start, size) = (platform::le::u64_at(d, 4)?, platform::le::u64_at(d, 12)?);
            let signature: [u8; 16] = platform::le::array_at(d, 20)?;
            let signature_type = *d.get(37)?;
            let id = match signature_type {
                SIGNATURE_TYPE_MBR => format!("MBR,0x{:08x}", platform::le::u32_at(&signature, 0)?),
                SIGNATURE_TYPE_GUID => {
                    format!("GPT,{}", format_guid(&Guid::from_bytes(signature)))
                }
                other => format!("{other},0"),
            };
            format!("HD({number},{id},0x{start:x},0x{size:x})")
        }
        (TYPE_MEDIA, MEDIA_CD_ROM) => {
            let entry = platform::le::u32_at(d, 0)?;
            let (start, size) = (platform::le::u64_at(d, 4)?, platform::le::u64_at(d, 12)?);
            format!("CDROM(0x{entry:x},0x{start:x},0x{size:x})")
        }
        (TYPE_MEDIA, MEDIA_FILE_PATH) => decode_ucs2(d),
        (TYPE_MEDIA, MEDIA_VENDOR) => {
            let guid = Guid::from_bytes(d.get(..16)?.try_into().ok()?);
            match &d[16..] {
                [] => format!("VenMedia({})", format_guid(&guid)),
                extra => format!("VenMedia({},{})", format_guid(&guid), hex(extra)),
            }
        }
        _ => return None,
    })
}

/// Renders a (possibly invalid) path; a malformed tail is shown as `<invalid>`.
pub fn to_text(path: &[u8]) -> String {
    let nodes = match parse(path) {
        Ok(nodes) => nodes,
        Err(_) => return String::from("<invalid>"),
    };
    let mut text = String::new();
    let mut at_instance_start = true;
    for node in &nodes {
        if node.is_end_instance() {
            text.push(',');
            at_instance_start = true;
            continue;
        }
        if !at_instance_start {
            text.push('/');
        }
        at_instance_start = false;
        match node_text(node) {
            Some(rendered) => text.push_str(&rendered),
            None => {
                let _ = write!(
                    text,
                    "Path({},{},{})",
                    node.node_type,
                    node.sub_type,
                    hex(node.data)
                );
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::{PARTITION_FORMAT_GPT, PARTITION_FORMAT_MBR, SIGNATURE_TYPE_NONE};
    use uefi_raw::guid;

    fn esp_guid() -> Guid {
        guid!("1234abcd-5678-9abc-def0-01020304056a")
    }

    fn gpt_disk_path() -> DevicePathBuf {
        DevicePathBuf::from_nodes(&[
            pci_root(0),
            pci(2, 0),
            hard_drive(&HardDriveInfo {
                partition_number: 1,
                partition_start: 0x800,
                partition_size: 0x10_0000,
                signature: esp_guid().to_bytes(),
                partition_format: PARTITION_FORMAT_GPT,
                signature_type: SIGNATURE_TYPE_GUID,
            }),
        ])
        .unwrap()
    }

    #[test]
    fn cd_rom_node_builds_and_renders() {
        let node = cd_rom(1, 0x20, 0x5a0);
        assert_eq!(node.len(), 24);
        let path = DevicePathBuf::from_nodes(&[pci_root(0), pci(0x1f, 2), node]).unwrap();
        assert_eq!(
            path.to_text(),
            "PciRoot(0x0)/Pci(0x1f,0x2)/CDROM(0x1,0x20,0x5a0)"
        );
    }

    #[test]
    fn builds_and_renders_a_boot_path() {
        let mut path = gpt_disk_path();
        path.push(&file_path("\\EFI\\BOOT\\BOOTX64.EFI").unwrap())
            .unwrap();
        assert_eq!(
            path.to_text(),
            "PciRoot(0x0)/Pci(0x2,0x0)/HD(1,GPT,1234ABCD-5678-9ABC-DEF0-01020304056A,0x800,0x100000)/\\EFI\\BOOT\\BOOTX64.EFI"
        );
        let bytes = path.as_bytes();
        // PciRoot 12, Pci 6, HD 42, FilePath 4 + 2 * (21 + NUL), End 4.
        assert_eq!(bytes.len(), 12 + 6 + 42 + 48 + 4);
        assert_eq!(
            &bytes[..12],
            &[2, 1, 12, 0, 0xD0, 0x41, 0x03, 0x0A, 0, 0, 0, 0]
        );
        assert_eq!(&bytes[12..18], &[1, 1, 6, 0, 0, 2]);
        assert_eq!(&bytes[bytes.len() - 4..], &[0x7F, 0xFF, 4, 0]);
        assert_eq!(DevicePathBuf::from_bytes(bytes).unwrap(), path);
        assert_eq!(total_len(bytes), Ok(bytes.len()));
    }

    #[test]
    fn renders_other_nodes() {
        let mbr = hard_drive(&HardDriveInfo {
            partition_number: 5,
            partition_start: 0x7000,
            partition_size: 0x1000,
            signature: [0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            partition_format: PARTITION_FORMAT_MBR,
            signature_type: SIGNATURE_TYPE_MBR,
        });
        let none = hard_drive(&HardDriveInfo {
            partition_number: 2,
            partition_start: 1,
            partition_size: 2,
            signature: [0; 16],
            partition_format: PARTITION_FORMAT_MBR,
            signature_type: SIGNATURE_TYPE_NONE,
        });
        let mut acpi = vec![2, 1, 12, 0];
        acpi.extend_from_slice(&0x0501_41D0u32.to_le_bytes());
        acpi.extend_from_slice(&3u32.to_le_bytes());
        let path = DevicePathBuf::from_nodes(&[
            acpi,
            mbr,
            none,
            vendor_media(&esp_guid(), &[0xAB, 0x01]).unwrap(),
            vendor_media(&esp_guid(), &[]).unwrap(),
            vec![3, 0x17, 6, 0, 0xBE, 0xEF],
            vec![1, 1, 4, 0], // PCI node too short: shown generically
        ])
        .unwrap();
        assert_eq!(
            path.to_text(),
            "Acpi(PNP0501,0x3)/HD(5,MBR,0x12345678,0x7000,0x1000)/HD(2,0,0,0x1,0x2)/\
             VenMedia(1234ABCD-5678-9ABC-DEF0-01020304056A,AB01)/\
             VenMedia(1234ABCD-5678-9ABC-DEF0-01020304056A)/Path(3,23,BEEF)/Path(1,1,)"
        );
        // Multi-instance paths render instances separated by commas.
        let mut two = DevicePathBuf::from_nodes(&[pci_root(0)]).unwrap();
        two.push(&[0x7F, 0x01, 4, 0]).unwrap();
        two.push(&pci_root(1)).unwrap();
        assert_eq!(two.to_text(), "PciRoot(0x0),PciRoot(0x1)");
    }

    #[test]
    fn append_and_split() {
        let device = gpt_disk_path();
        let file = DevicePathBuf::from_nodes(&[
            file_path("\\EFI\\debian").unwrap(),
            file_path("shimx64.efi").unwrap(),
        ])
        .unwrap();
        let mut full = device.clone();
        full.append(&file);
        assert_eq!(full.nodes().len(), 5);
        let (split_device, split_file) = full.split_file_path();
        assert_eq!(split_device, device);
        assert_eq!(split_file.as_deref(), Some("\\EFI\\debian\\shimx64.efi"));
        assert_eq!(device.split_file_path(), (device.clone(), None));
        let mut empty = DevicePathBuf::new();
        empty.append(&DevicePathBuf::new());
        assert_eq!(empty.as_bytes(), &end_entire());
        assert_eq!(empty.to_text(), "");
    }

    #[test]
    fn rejects_malformed_paths() {
        assert_eq!(parse(&[]), Err(DevicePathError::MissingEnd));
        assert_eq!(
            parse(&[1, 1]),
            Err(DevicePathError::TruncatedHeader { offset: 0 })
        );
        assert_eq!(
            parse(&[1, 1, 2, 0, 0x7F, 0xFF, 4, 0]),
            Err(DevicePathError::BadNodeLength {
                offset: 0,
                length: 2
            })
        );
        assert_eq!(parse(&[1, 1, 6, 0, 0, 2]), Err(DevicePathError::MissingEnd));
        assert_eq!(
            parse(&[1, 1, 6, 0, 0, 2, 0x7F, 0xFF, 40, 0]),
            Err(DevicePathError::NodePastEnd {
                offset: 6,
                length: 40
            })
        );
        // Only the path before End Entire counts; trailing bytes are ignored.
        assert_eq!(total_len(&[0x7F, 0xFF, 4, 0, 9, 9]), Ok(4));
        assert_eq!(to_text(&[1, 1, 6, 0]), "<invalid>");
        let mut path = DevicePathBuf::new();
        assert!(path.push(&[1, 1, 9, 0, 0]).is_err());
        assert!(
            path.push(&[1, 1, 4, 0, 0]).is_err(),
            "trailing bytes after the node"
        );
        assert_eq!(
            file_path(&"x".repeat(40000)),
            Err(DevicePathError::NodeTooLarge(80006))
        );
        assert_eq!(file_path("\u{1F600}").unwrap()[4..6], [0xFD, 0xFF]);
    }
}
