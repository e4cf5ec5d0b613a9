//! EFI_LOAD_OPTION (UEFI 2.10 §3.1.3), `BootOrder` and `Boot####` names (§3.3).
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bitflags::bitflags;
use protocols::device_path::{self, DevicePathBuf, DevicePathError};

bitflags! {
    /// EFI_LOAD_OPTION Attributes (§3.1.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct LoadOptionAttributes: u32 {
        const ACTIVE = 0x0000_0001;
        const FORCE_RECONNECT = 0x0000_0002;
        const HIDDEN = 0x0000_0008;
        /// Category field; 0 (boot) or 0x100 (application).
        const CATEGORY = 0x0000_1F00;
        const CATEGORY_APP = 0x0000_0100;
        const _ = !0;
    }
}

/// Fixed header: Attributes (u32) + FilePathListLength (u16).
const HEADER_SIZE: usize = 6;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadOptionError {
    /// Shorter than the 6-byte header.
    Truncated(usize),
    /// No NUL terminates the description before the end of the data.
    UnterminatedDescription,
    /// FilePathListLength reaches past the end of the data.
    FilePathListPastEnd { length: u16, available: usize },
    /// The file-path list is empty or malformed.
    BadFilePathList(DevicePathError),
    /// The description or file-path list is too long to encode.
    TooLong(usize),
    /// BootOrder has an odd number of bytes.
    OddBootOrder(usize),
}

impl fmt::Display for LoadOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadOptionError::Truncated(len) => write!(f, "load option of {len} bytes is truncated"),
            LoadOptionError::UnterminatedDescription => write!(f, "description lacks its NUL"),
            LoadOptionError::FilePathListPastEnd { length, available } => write!(
                f,
                "file path list of {length} bytes exceeds the {available} bytes left"
            ),
            LoadOptionError::BadFilePathList(e) => write!(f, "bad file path list: {e}"),
            LoadOptionError::TooLong(len) => write!(f, "file path list of {len} bytes is too long"),
            LoadOptionError::OddBootOrder(len) => write!(f, "BootOrder of odd length {len}"),
        }
    }
}

/// A decoded EFI_LOAD_OPTION.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOption {
    pub attributes: LoadOptionAttributes,
    pub description: String,
    /// One or more packed device paths, the first being the boot target.
    pub file_path_list: Vec<u8>,
    pub optional_data: Vec<u8>,
}

impl LoadOption {
    pub fn parse(bytes: &[u8]) -> Result<Self, LoadOptionError> {
        if bytes.len() < HEADER_SIZE {
            return Err(LoadOptionError::Truncated(bytes.len()));
        }
        let attributes = LoadOptionAttributes::from_bits_retain(u32::from_le_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3],
        ]));
        let list_length = u16::from_le_bytes([bytes[4], bytes[5]]);
        let rest = &bytes[HEADER_SIZE..];
        let units: Vec<u16> = platform::le::u16_units(rest)
            .take_while(|&unit| unit != 0)
            .collect();
        let description_bytes = (units.len() + 1) * 2;
        if description_bytes > rest.len() {
            return Err(LoadOptionError::UnterminatedDescription);
        }
        let description = char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        let after_description = &rest[description_bytes..];
        let list = after_description.get(..usize::from(list_length)).ok_or(
            LoadOptionError::FilePathListPastEnd {
                length: list_length,
                available: after_description.len(),
            },
        )?;
        validate_file_path_list(list)?;
        Ok(LoadOption {
            attributes,
            description,
            file_path_list: list.to_vec(),
            optional_data: after_description[list.len()..].to_vec(),
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, LoadOptionError> {
        let list_length = u16::try_from(self.file_path_list.len())
            .map_err(|_| LoadOptionError::TooLong(self.file_path_list.len()))?;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&self.attributes.bits().to_le_bytes());
        bytes.extend_from_slice(&list_length.to_le_bytes());
        for unit in self.description.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&self.file_path_list);
        bytes.extend_from_slice(&self.optional_data);
        Ok(bytes)
    }

    pub fn is_active(&self) -> bool {
        self.attributes.contains(LoadOptionAttributes::ACTIVE)
    }

    /// The first device path of the list: the thing to boot.
    pub fn device_path(&self) -> DevicePathBuf {
        // Validated by `parse`; a hand-built option with a bad list yields an empty path.
        DevicePathBuf::from_bytes(&self.file_path_list).unwrap_or_default()
    }
}

/// The list must hold at least one path and consist solely of whole paths.
fn validate_file_path_list(mut list: &[u8]) -> Result<(), LoadOptionError> {
    if list.is_empty() {
        return Err(LoadOptionError::BadFilePathList(
            DevicePathError::MissingEnd,
        ));
    }
    while !list.is_empty() {
        let len = device_path::total_len(list).map_err(LoadOptionError::BadFilePathList)?;
        list = &list[len..];
    }
    Ok(())
}

/// Decodes the `BootOrder` variable: an array of little-endian u16.
pub fn parse_boot_order(bytes: &[u8]) -> Result<Vec<u16>, LoadOptionError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(LoadOptionError::OddBootOrder(bytes.len()));
    }
    Ok(platform::le::u16_units(bytes).collect())
}

pub fn serialize_boot_order(order: &[u16]) -> Vec<u8> {
    order.iter().flat_map(|n| n.to_le_bytes()).collect()
}

/// `Boot####` with four upper-case hex digits (§3.3).
pub fn boot_variable_name(number: u16) -> String {
    format!("Boot{number:04X}")
}

/// The option number a firmware command-line word names (`bootnext=XXXX`,
/// `test-panic=XXXX`): exactly four hex digits, either case.
pub fn option_number_from_hex(digits: &str) -> Option<u16> {
    (digits.len() == 4)
        .then(|| u16::from_str_radix(digits, 16).ok())
        .flatten()
}

/// The number of a `Boot####` variable; None for other names (lower-case hex
/// and other lengths do not name load options).
pub fn parse_boot_variable_name(name: &str) -> Option<u16> {
    let digits = name.strip_prefix("Boot")?;
    let valid = digits.len() == 4
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    valid
        .then(|| u16::from_str_radix(digits, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::device_path::{file_path, pci, pci_root};

    fn boot_path() -> DevicePathBuf {
        DevicePathBuf::from_nodes(&[
            pci_root(0),
            pci(3, 0),
            file_path("\\EFI\\debian\\shimx64.efi").unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn round_trips() {
        let option = LoadOption {
            attributes: LoadOptionAttributes::ACTIVE,
            description: String::from("debian"),
            file_path_list: boot_path().as_bytes().to_vec(),
            optional_data: b"\\grubx64.efi".to_vec(),
        };
        let bytes = option.to_bytes().unwrap();
        // Attributes, FilePathListLength, "debian\0" in UCS-2.
        assert_eq!(
            bytes[..6],
            [1, 0, 0, 0, boot_path().as_bytes().len() as u8, 0]
        );
        assert_eq!(&bytes[6..20], b"d\0e\0b\0i\0a\0n\0\0\0");
        let parsed = LoadOption::parse(&bytes).unwrap();
        assert_eq!(parsed, option);
        assert!(parsed.is_active());
        assert_eq!(
            parsed.device_path().to_text(),
            "PciRoot(0x0)/Pci(0x3,0x0)/\\EFI\\debian\\shimx64.efi"
        );
    }

    #[test]
    fn parses_multiple_paths_and_unknown_attributes() {
        let mut list = boot_path().as_bytes().to_vec();
        list.extend_from_slice(
            DevicePathBuf::from_nodes(&[pci_root(1)])
                .unwrap()
                .as_bytes(),
        );
        let option = LoadOption {
            attributes: LoadOptionAttributes::from_bits_retain(0x0100_0109),
            description: String::from("UEFI Shell \u{2713}"),
            file_path_list: list,
            optional_data: Vec::new(),
        };
        let parsed = LoadOption::parse(&option.to_bytes().unwrap()).unwrap();
        assert_eq!(parsed, option);
        assert!(parsed.attributes.contains(LoadOptionAttributes::HIDDEN));
        assert_eq!(parsed.device_path(), boot_path());
    }

    #[test]
    fn rejects_malformed_options() {
        let good = LoadOption {
            attributes: LoadOptionAttributes::ACTIVE,
            description: String::from("x"),
            file_path_list: boot_path().as_bytes().to_vec(),
            optional_data: vec![1, 2, 3],
        }
        .to_bytes()
        .unwrap();
        assert_eq!(
            LoadOption::parse(&good[..5]),
            Err(LoadOptionError::Truncated(5))
        );
        assert_eq!(
            LoadOption::parse(&good[..9]),
            Err(LoadOptionError::UnterminatedDescription)
        );
        let mut long = good.clone();
        long[4..6].copy_from_slice(&0x4000u16.to_le_bytes());
        assert_eq!(
            LoadOption::parse(&long),
            Err(LoadOptionError::FilePathListPastEnd {
                length: 0x4000,
                available: good.len() - 10
            })
        );
        let mut bad_node = good.clone();
        bad_node[12] = 1; // first node's length low byte: below 4
        bad_node[13] = 0;
        assert_eq!(
            LoadOption::parse(&bad_node),
            Err(LoadOptionError::BadFilePathList(
                DevicePathError::BadNodeLength {
                    offset: 0,
                    length: 1
                }
            ))
        );
        let mut empty_list = good[..10].to_vec();
        empty_list[4] = 0;
        assert!(matches!(
            LoadOption::parse(&empty_list),
            Err(LoadOptionError::BadFilePathList(_))
        ));
        // A list length cutting a path short.
        let mut cut = good.clone();
        cut[4] -= 2;
        assert!(matches!(
            LoadOption::parse(&cut),
            Err(LoadOptionError::BadFilePathList(_))
        ));
    }

    #[test]
    fn boot_order_and_names() {
        assert_eq!(
            parse_boot_order(&[1, 0, 0x0A, 0, 0xFF, 0xFF]),
            Ok(vec![1, 10, 0xFFFF])
        );
        assert_eq!(
            parse_boot_order(&[1, 0, 2]),
            Err(LoadOptionError::OddBootOrder(3))
        );
        assert_eq!(parse_boot_order(&[]), Ok(vec![]));
        assert_eq!(serialize_boot_order(&[3, 0x1234]), [3, 0, 0x34, 0x12]);
        assert_eq!(boot_variable_name(0x000A), "Boot000A");
        assert_eq!(boot_variable_name(0xBEEF), "BootBEEF");
        assert_eq!(parse_boot_variable_name("Boot000A"), Some(10));
        assert_eq!(parse_boot_variable_name("BootFFFF"), Some(0xFFFF));
        for not_boot in [
            "Boot000a",
            "Boot00A",
            "Boot0000A",
            "BootOrder",
            "Driver0001",
            "Boot+001",
        ] {
            assert_eq!(parse_boot_variable_name(not_boot), None, "{not_boot}");
        }
    }
}
