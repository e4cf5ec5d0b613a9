//! Hardware, ACPI, media and BIOS nodes whose text is more than a list of
//! integers (UEFI 2.10 §10.3, §10.6.1.2-§10.6.1.8), and the generic
//! `Path(type,subtype,data)` form every node can take.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use platform::le;

use super::Options;
use super::syntax::{
    eisa_text, guid_at, guid_text, hex_bytes, hex_string, int, listed_ascii,
    listed_ascii_until_nul, parse_eisa, parse_guid,
};

/// `Acpi(HID,UID)`: the plain form of an ACPI node (shortcuts such as
/// `PciRoot` come from the layout table).
pub fn acpi_text(d: &[u8]) -> Option<String> {
    if d.len() != 8 {
        return None;
    }
    let (hid, uid) = (le::u32_at(d, 0)?, le::u32_at(d, 4)?);
    Some(format!("Acpi({},0x{uid:x})", eisa_text(hid)))
}

pub fn acpi_parse(args: &[&str]) -> Option<Vec<u8>> {
    let (hid, uid) = match args {
        [hid] => (parse_eisa(hid)?, 0),
        [hid, uid] => (parse_eisa(hid)?, int::<u32>(uid)?),
        _ => return None,
    };
    let mut data = Vec::from(hid.to_le_bytes());
    data.extend_from_slice(&uid.to_le_bytes());
    Some(data)
}

/// The three NUL-terminated strings after an expanded ACPI node's fixed
/// part, in node order `_HID`, `_UID`, `_CID`; None unless they fill the
/// payload exactly.
fn acpi_ex_strings(d: &[u8]) -> Option<[&str; 3]> {
    let mut rest = d.get(12..)?;
    let mut strings = [""; 3];
    for slot in &mut strings {
        let end = rest.iter().position(|&b| b == 0)?;
        *slot = listed_ascii_until_nul(&rest[..end])?;
        rest = &rest[end + 1..];
    }
    rest.is_empty().then_some(strings)
}

/// `AcpiEx(HID,CID,UID,HIDSTR,CIDSTR,UIDSTR)`, or `AcpiExp(HID,CID,UIDSTR)`
/// when only the `_UID` string is present (§10.6.1.3).
pub fn acpi_ex_text(d: &[u8]) -> Option<String> {
    let (hid, uid, cid) = (le::u32_at(d, 0)?, le::u32_at(d, 4)?, le::u32_at(d, 8)?);
    let [hid_str, uid_str, cid_str] = acpi_ex_strings(d)?;
    let only_uid_str = hid_str.is_empty() && cid_str.is_empty() && !uid_str.is_empty();
    if only_uid_str && uid == 0 {
        return Some(format!(
            "AcpiExp({},{},{uid_str})",
            eisa_text(hid),
            eisa_text(cid)
        ));
    }
    Some(format!(
        "AcpiEx({},{},0x{uid:x},{hid_str},{cid_str},{uid_str})",
        eisa_text(hid),
        eisa_text(cid)
    ))
}

fn acpi_ex_node(ids: [u32; 3], strings: [&str; 3]) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    for id in ids {
        data.extend_from_slice(&id.to_le_bytes());
    }
    for string in strings {
        let bytes = listed_ascii(string.trim())?;
        if bytes.contains(&0) {
            return None;
        }
        data.extend_from_slice(bytes);
        data.push(0);
    }
    Some(data)
}

pub fn acpi_ex_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [hid, cid, uid, hid_str, cid_str, uid_str] = args else {
        return None;
    };
    acpi_ex_node(
        [parse_eisa(hid)?, int(uid)?, parse_eisa(cid)?],
        [hid_str, uid_str, cid_str],
    )
}

pub fn acpi_exp_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [hid, cid, uid_str] = args else {
        return None;
    };
    acpi_ex_node([parse_eisa(hid)?, 0, parse_eisa(cid)?], ["", uid_str, ""])
}

/// `AcpiAdr(ADR,...)`: one or more 32-bit `_ADR` values.
pub fn acpi_adr_text(d: &[u8]) -> Option<String> {
    if d.is_empty() || !d.len().is_multiple_of(4) {
        return None;
    }
    let adrs: Vec<String> = d
        .chunks_exact(4)
        .map(|a| format!("0x{:x}", u32::from_le_bytes([a[0], a[1], a[2], a[3]])))
        .collect();
    Some(format!("AcpiAdr({})", adrs.join(",")))
}

pub fn acpi_adr_parse(args: &[&str]) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    for adr in args {
        data.extend_from_slice(&int::<u32>(adr)?.to_le_bytes());
    }
    Some(data)
}

/// `VenHw`, `VenMsg`, `VenMedia`: the vendor GUID and, when present, the
/// vendor data as hex bytes.
pub fn vendor_text(keyword: &str, d: &[u8]) -> Option<String> {
    let guid = guid_text(&guid_at(d, 0)?);
    Some(match &d[16..] {
        [] => format!("{keyword}({guid})"),
        data => format!("{keyword}({guid},{})", hex_string(data)),
    })
}

pub fn vendor_parse(args: &[&str]) -> Option<Vec<u8>> {
    let (guid, data) = match args {
        [guid] => (guid, Vec::new()),
        [guid, data] => (guid, hex_bytes(data)?),
        _ => return None,
    };
    let mut payload = Vec::from(parse_guid(guid)?.to_bytes());
    payload.extend_from_slice(&data);
    Some(payload)
}

const MBR: u8 = 1;
const GPT: u8 = 2;

/// `HD(Partition,MBR|GPT,Signature,Start,Size)` (§10.6.1.7); the partition
/// format byte follows the signature type, so other combinations have no
/// text.
pub fn hard_drive_text(d: &[u8]) -> Option<String> {
    if d.len() != 38 {
        return None;
    }
    let (number, start, size) = (le::u32_at(d, 0)?, le::u64_at(d, 4)?, le::u64_at(d, 12)?);
    let (signature, format, kind) = (&d[20..36], d[36], d[37]);
    let signature = match (format, kind) {
        (MBR, MBR) if signature[4..].iter().all(|&b| b == 0) => {
            format!("MBR,0x{:08x}", le::u32_at(signature, 0)?)
        }
        (GPT, GPT) => format!("GPT,{}", guid_text(&guid_at(signature, 0)?)),
        _ => return None,
    };
    Some(format!("HD({number},{signature},0x{start:x},0x{size:x})"))
}

pub fn hard_drive_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [number, kind, signature, start, size] = args else {
        return None;
    };
    let mut signature_bytes = [0u8; 16];
    let kind = match kind.trim() {
        "MBR" => {
            signature_bytes[..4].copy_from_slice(&int::<u32>(signature)?.to_le_bytes());
            MBR
        }
        "GPT" => {
            signature_bytes = parse_guid(signature)?.to_bytes();
            GPT
        }
        _ => return None,
    };
    let mut data = Vec::from(int::<u32>(number)?.to_le_bytes());
    data.extend_from_slice(&int::<u64>(start)?.to_le_bytes());
    data.extend_from_slice(&int::<u64>(size)?.to_le_bytes());
    data.extend_from_slice(&signature_bytes);
    data.extend_from_slice(&[kind, kind]);
    Some(data)
}

/// A file-path node's text is its path (§10.6.1.7): NUL-terminated UCS-2
/// with nothing after the NUL.
pub fn file_path_text(d: &[u8]) -> Option<String> {
    if !d.len().is_multiple_of(2) {
        return None;
    }
    let (units, last) = d.split_last_chunk::<2>()?;
    if *last != [0, 0] {
        return None;
    }
    let text: String = char::decode_utf16(le::u16_units(units))
        .collect::<Result<_, _>>()
        .ok()?;
    (!text.is_empty() && !text.contains('\0')).then_some(text)
}

pub fn file_path_parse(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.contains('\0') {
        return None;
    }
    let mut data: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    data.extend_from_slice(&[0, 0]);
    Some(data)
}

const BBS_TYPES: [&str; 6] = ["Floppy", "HD", "CDROM", "PCMCIA", "USB", "Network"];

/// `BBS(Type,Id,Flags)` (§10.6.1.8); display-only leaves out the flags.
pub fn bbs_text(d: &[u8], options: Options) -> Option<String> {
    let (device_type, status) = (le::u16_at(d, 0)?, le::u16_at(d, 2)?);
    let (&0, description) = d.get(4..)?.split_last()? else {
        return None;
    };
    let description =
        listed_ascii_until_nul(description).filter(|t| t.len() == description.len())?;
    let kind = match usize::from(device_type).checked_sub(1) {
        Some(i) if i < BBS_TYPES.len() => BBS_TYPES[i].into(),
        _ => format!("0x{device_type:x}"),
    };
    Some(if options.display_only {
        format!("BBS({kind},{description})")
    } else {
        format!("BBS({kind},{description},0x{status:x})")
    })
}

pub fn bbs_parse(args: &[&str]) -> Option<Vec<u8>> {
    let (kind, description, status) = match args {
        [kind, description] => (kind, description, 0),
        [kind, description, status] => (kind, description, int::<u16>(status)?),
        _ => return None,
    };
    let device_type = match BBS_TYPES.iter().position(|t| *t == kind.trim()) {
        Some(i) => u16::try_from(i + 1).ok()?,
        None => int(kind)?,
    };
    let description = listed_ascii(description)?;
    if description.contains(&0) {
        return None;
    }
    let mut data = Vec::from(device_type.to_le_bytes());
    data.extend_from_slice(&status.to_le_bytes());
    data.extend_from_slice(description);
    data.push(0);
    Some(data)
}

/// `Path(type,subtype,data)` (§10.6.1.1): any node, type and subtype in
/// decimal, the payload as hex bytes.
pub fn generic_text(node_type: u8, sub_type: u8, d: &[u8]) -> String {
    format!("Path({node_type},{sub_type},{})", hex_string(d))
}

/// `Path(type,subtype[,data])` and the per-type spellings of it
/// (`HardwarePath(subtype,data)`, `AcpiPath`, `Msg`, `MediaPath`, `BbsPath`).
pub fn generic_parse(keyword: &str, args: &[&str]) -> Option<(u8, u8, Vec<u8>)> {
    let typed = [
        ("HardwarePath", 1),
        ("AcpiPath", 2),
        ("Msg", 3),
        ("MediaPath", 4),
        ("BbsPath", 5),
    ];
    let (node_type, rest) = match typed.iter().find(|(k, _)| *k == keyword) {
        Some(&(_, node_type)) => (node_type, args),
        None if keyword == "Path" => (int(args.first()?)?, args.get(1..)?),
        None => return None,
    };
    let (sub_type, data) = match rest {
        [sub_type] => (int(sub_type)?, Vec::new()),
        [sub_type, data] => (int(sub_type)?, hex_bytes(data)?),
        _ => return None,
    };
    Some((node_type, sub_type, data))
}

/// Whether `keyword` is one the generic form uses.
pub fn is_generic_keyword(keyword: &str) -> bool {
    matches!(
        keyword,
        "Path" | "HardwarePath" | "AcpiPath" | "Msg" | "MediaPath" | "BbsPath"
    )
}
