//! Messaging nodes whose text is more than a list of integers (UEFI 2.10
//! §10.3.4 layouts, §10.6.1.6 text): ATA, MAC, IP, UART, USB class and
//! WWID, iSCSI, SAS, NVMe, URI, Bluetooth, Wi-Fi and DNS.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use platform::le;

use super::Options;
use super::layouts::{SAS, UART_FLOW_CONTROL};
use super::syntax::{
    ascii, ascii_until_nul, hex_bytes, hex_string, int, ipv4_text, ipv6_text, listed_ascii,
    listed_ascii_until_nul, number, parse_ipv4, parse_ipv6,
};

pub const ATAPI: u8 = 1;
pub const VENDOR: u8 = 10;
pub const MAC: u8 = 11;
pub const IPV4: u8 = 12;
pub const IPV6: u8 = 13;
pub const UART: u8 = 14;
pub const USB_CLASS: u8 = 15;
pub const USB_WWID: u8 = 16;
pub const ISCSI: u8 = 19;
pub const SAS_EX: u8 = 22;
pub const NVME: u8 = 23;
pub const URI: u8 = 24;
pub const BLUETOOTH: u8 = 27;
pub const WIFI: u8 = 28;
pub const BLUETOOTH_LE: u8 = 30;
pub const DNS: u8 = 31;

fn join(keyword: &str, args: &[String]) -> String {
    format!("{keyword}({})", args.join(","))
}

/// `Ata(Primary|Secondary,Master|Slave,Lun)`; display-only `Ata(Lun)`.
pub fn ata_text(d: &[u8], options: Options) -> Option<String> {
    let [channel, drive, lun_lo, lun_hi] = d.try_into().ok()?;
    let lun = u16::from_le_bytes([lun_lo, lun_hi]);
    if options.display_only {
        return Some(format!("Ata(0x{lun:x})"));
    }
    let channel = ["Primary", "Secondary"].get(usize::from(channel))?;
    let drive = ["Master", "Slave"].get(usize::from(drive))?;
    Some(format!("Ata({channel},{drive},0x{lun:x})"))
}

pub fn ata_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [channel, drive, lun] = args else {
        return None;
    };
    let pick = |text: &str, names: [&str; 2]| match names.iter().position(|n| *n == text.trim()) {
        Some(i) => u8::try_from(i).ok(),
        None => int::<u8>(text),
    };
    let mut data = Vec::from([
        pick(channel, ["Primary", "Secondary"])?,
        pick(drive, ["Master", "Slave"])?,
    ]);
    data.extend_from_slice(&int::<u16>(lun)?.to_le_bytes());
    Some(data)
}

/// How many address bytes a MAC node's text shows: 6 for IfType 0 and 1
/// (Ethernet, §10.3.4.11), all 32 otherwise.
fn mac_shown(if_type: u8) -> usize {
    if if_type <= 1 { 6 } else { 32 }
}

pub fn mac_text(d: &[u8]) -> Option<String> {
    let (address, if_type) = (d.get(..32)?, *d.get(32)?);
    if d.len() != 33 || address[mac_shown(if_type)..].iter().any(|&b| b != 0) {
        return None;
    }
    Some(format!(
        "MAC({},0x{if_type:x})",
        hex_string(&address[..mac_shown(if_type)])
    ))
}

pub fn mac_parse(args: &[&str]) -> Option<Vec<u8>> {
    let (address, if_type) = match args {
        [address] => (address, 0),
        [address, if_type] => (address, int::<u8>(if_type)?),
        _ => return None,
    };
    let address = hex_bytes(address)?;
    if address.len() > 32 {
        return None;
    }
    let mut data = alloc::vec![0u8; 33];
    data[..address.len()].copy_from_slice(&address);
    data[32] = if_type;
    Some(data)
}

fn protocol_text(protocol: u16) -> String {
    match protocol {
        6 => "TCP".into(),
        17 => "UDP".into(),
        other => format!("0x{other:x}"),
    }
}

fn protocol_parse(text: &str) -> Option<u16> {
    match text.trim() {
        "TCP" => Some(6),
        "UDP" => Some(17),
        other => int(other),
    }
}

/// An omitted protocol is 0.
fn protocol_or_zero(text: &str) -> Option<u16> {
    match text.trim() {
        "" => Some(0),
        text => protocol_parse(text),
    }
}

/// `IPv4(Remote,Protocol,Static|DHCP,Local,Gateway,Mask)` (§10.6.1.6);
/// the ports have no text and must be 0.
pub fn ipv4_text_node(d: &[u8], options: Options) -> Option<String> {
    if d.len() != 23 || le::u32_at(d, 8)? != 0 {
        return None;
    }
    let remote = ipv4_text(&d[4..8]);
    if options.display_only {
        return Some(format!("IPv4({remote})"));
    }
    let origin = ["DHCP", "Static"].get(usize::from(d[14]))?;
    Some(format!(
        "IPv4({remote},{},{origin},{},{},{})",
        protocol_text(le::u16_at(d, 12)?),
        ipv4_text(&d[..4]),
        ipv4_text(&d[15..19]),
        ipv4_text(&d[19..23])
    ))
}

pub fn ipv4_parse(args: &[&str]) -> Option<Vec<u8>> {
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    let address = |i: usize| match arg(i).trim() {
        "" => Some([0; 4]),
        text => parse_ipv4(text),
    };
    if args.len() > 6 {
        return None;
    }
    let mut data = Vec::with_capacity(23);
    data.extend_from_slice(&address(3)?);
    data.extend_from_slice(&parse_ipv4(arg(0))?);
    data.extend_from_slice(&[0; 4]);
    data.extend_from_slice(&protocol_or_zero(arg(1))?.to_le_bytes());
    data.push(match arg(2).trim() {
        "Static" => 1,
        "DHCP" | "" => 0,
        _ => return None,
    });
    data.extend_from_slice(&address(4)?);
    data.extend_from_slice(&address(5)?);
    Some(data)
}

const IPV6_ORIGINS: [&str; 3] = ["Static", "StatelessAutoConfigure", "StatefulAutoConfigure"];

/// `IPv6(Remote,Protocol,Origin,Local,PrefixLength,Gateway)`.
pub fn ipv6_text_node(d: &[u8], options: Options) -> Option<String> {
    if d.len() != 56 || le::u32_at(d, 32)? != 0 {
        return None;
    }
    let remote = ipv6_text(&d[16..32]);
    if options.display_only {
        return Some(format!("IPv6({remote})"));
    }
    Some(format!(
        "IPv6({remote},{},{},{},{},{})",
        protocol_text(le::u16_at(d, 36)?),
        IPV6_ORIGINS.get(usize::from(d[38]))?,
        ipv6_text(&d[..16]),
        d[39],
        ipv6_text(&d[40..56])
    ))
}

pub fn ipv6_parse(args: &[&str]) -> Option<Vec<u8>> {
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    let address = |i: usize| match arg(i).trim() {
        "" => Some([0; 16]),
        text => parse_ipv6(text),
    };
    if args.len() > 6 {
        return None;
    }
    let mut data = Vec::with_capacity(56);
    data.extend_from_slice(&address(3)?);
    data.extend_from_slice(&parse_ipv6(arg(0))?);
    data.extend_from_slice(&[0; 4]);
    data.extend_from_slice(&protocol_or_zero(arg(1))?.to_le_bytes());
    let origin = match arg(2).trim() {
        "" => 0,
        text => IPV6_ORIGINS.iter().position(|o| *o == text)?,
    };
    data.push(u8::try_from(origin).ok()?);
    data.push(int::<u8>(arg(4))?);
    data.extend_from_slice(&address(5)?);
    Some(data)
}

const PARITY: [&str; 6] = ["D", "N", "E", "O", "M", "S"];
const STOP_BITS: [&str; 4] = ["D", "1", "1.5", "2"];

/// `Uart(Baud,DataBits,Parity,StopBits)`.
pub fn uart_text(d: &[u8]) -> Option<String> {
    if d.len() != 15 || le::u32_at(d, 0)? != 0 {
        return None;
    }
    Some(format!(
        "Uart({},{},{},{})",
        le::u64_at(d, 4)?,
        d[12],
        PARITY.get(usize::from(d[13]))?,
        STOP_BITS.get(usize::from(d[14]))?
    ))
}

pub fn uart_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [baud, data_bits, parity, stop] = args else {
        return None;
    };
    // "DEFAULT" means the usual 115200 8 data bits (§10.6.1.6, as EDK2
    // reads it).
    let baud = match baud.trim() {
        "DEFAULT" => 115_200,
        text => number(text)?,
    };
    let data_bits = match data_bits.trim() {
        "DEFAULT" => 8,
        text => int(text)?,
    };
    let named = |names: &[&str], text: &str| match names.iter().position(|n| *n == text.trim()) {
        Some(i) => u8::try_from(i).ok(),
        None => None,
    };
    let mut data = Vec::from([0u8; 4]);
    data.extend_from_slice(&baud.to_le_bytes());
    data.extend_from_slice(&[data_bits, named(&PARITY, parity)?, named(&STOP_BITS, stop)?]);
    Some(data)
}

/// USB class forms (§10.6.1.6 table): keyword, class, and the subclass
/// for the application-specific classes (0xFE). EDK2 writes them whatever
/// AllowShortcuts says, and so do we.
const USB_CLASSES: &[(&str, u8, Option<u8>)] = &[
    ("UsbAudio", 0x01, None),
    ("UsbCDCControl", 0x02, None),
    ("UsbHID", 0x03, None),
    ("UsbImage", 0x06, None),
    ("UsbPrinter", 0x07, None),
    ("UsbMassStorage", 0x08, None),
    ("UsbHub", 0x09, None),
    ("UsbCDCData", 0x0A, None),
    ("UsbSmartCard", 0x0B, None),
    ("UsbVideo", 0x0E, None),
    ("UsbDiagnostic", 0xDC, None),
    ("UsbWireless", 0xE0, None),
    ("UsbDeviceFirmwareUpdate", 0xFE, Some(1)),
    ("UsbIrdaBridge", 0xFE, Some(2)),
    ("UsbTestAndMeasurement", 0xFE, Some(3)),
];

pub fn usb_class_text(d: &[u8]) -> Option<String> {
    let [v0, v1, p0, p1, class, sub_class, protocol] = d.try_into().ok()?;
    let (vendor, product) = (u16::from_le_bytes([v0, v1]), u16::from_le_bytes([p0, p1]));
    let mut args = Vec::from([format!("0x{vendor:x}"), format!("0x{product:x}")]);
    let shortcut = USB_CLASSES
        .iter()
        .find(|(_, c, s)| *c == class && s.is_none_or(|s| s == sub_class));
    let keyword = match shortcut {
        Some((keyword, _, Some(_))) => keyword,
        Some((keyword, _, None)) => {
            args.push(format!("0x{sub_class:x}"));
            keyword
        }
        None => {
            args.push(format!("0x{class:x}"));
            args.push(format!("0x{sub_class:x}"));
            "UsbClass"
        }
    };
    args.push(format!("0x{protocol:x}"));
    Some(join(keyword, &args))
}

/// `UsbClass(VID,PID,Class,SubClass,Protocol)` or one of its class forms.
pub fn usb_class_parse(keyword: &str, args: &[&str]) -> Option<Vec<u8>> {
    let (class, sub_class, rest) = if keyword == "UsbClass" {
        let [vid, pid, class, sub_class, protocol] = args else {
            return None;
        };
        (int(class)?, int(sub_class)?, [*vid, *pid, *protocol])
    } else {
        let &(_, class, fixed_sub_class) = USB_CLASSES.iter().find(|(k, ..)| *k == keyword)?;
        match (fixed_sub_class, args) {
            (Some(sub_class), [vid, pid, protocol]) => (class, sub_class, [*vid, *pid, *protocol]),
            (None, [vid, pid, sub_class, protocol]) => {
                (class, int(sub_class)?, [*vid, *pid, *protocol])
            }
            _ => return None,
        }
    };
    let mut data = Vec::with_capacity(7);
    data.extend_from_slice(&int::<u16>(rest[0])?.to_le_bytes());
    data.extend_from_slice(&int::<u16>(rest[1])?.to_le_bytes());
    data.extend_from_slice(&[class, sub_class, int(rest[2])?]);
    Some(data)
}

pub fn is_usb_class_keyword(keyword: &str) -> bool {
    keyword == "UsbClass" || USB_CLASSES.iter().any(|(k, ..)| *k == keyword)
}

/// `UsbWwid(VID,PID,InterfaceNumber,"SerialNumber")`.
pub fn usb_wwid_text(d: &[u8]) -> Option<String> {
    let serial = d.get(6..)?;
    if !serial.len().is_multiple_of(2) {
        return None;
    }
    let serial: String = char::decode_utf16(le::u16_units(serial))
        .collect::<Result<_, _>>()
        .ok()?;
    Some(format!(
        "UsbWwid(0x{:x},0x{:x},0x{:x},\"{serial}\")",
        le::u16_at(d, 2)?,
        le::u16_at(d, 4)?,
        le::u16_at(d, 0)?
    ))
}

pub fn usb_wwid_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [vid, pid, interface, serial] = args else {
        return None;
    };
    let serial = serial.trim();
    let serial = serial
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(serial);
    let mut data = Vec::new();
    for value in [interface, vid, pid] {
        data.extend_from_slice(&int::<u16>(value)?.to_le_bytes());
    }
    data.extend(serial.encode_utf16().flat_map(u16::to_le_bytes));
    Some(data)
}

/// Login option bits of an iSCSI node (§10.3.4.20).
const HEADER_CRC32C: u16 = 1 << 1;
const DATA_CRC32C: u16 = 1 << 3;
const AUTH_NONE: u16 = 1 << 11;
const AUTH_CHAP_UNI: u16 = 1 << 12;

/// `iSCSI(TargetName,PortalGroup,LUN,HeaderDigest,DataDigest,Authentication,Protocol)`;
/// the LUN is its 8 bytes, byte 0 first.
pub fn iscsi_text(d: &[u8]) -> Option<String> {
    let (protocol, options) = (le::u16_at(d, 0)?, le::u16_at(d, 2)?);
    let (lun, tag) = (d.get(4..12)?, le::u16_at(d, 12)?);
    let name = d.get(14..)?;
    // The name is NUL-terminated and the node holds nothing after it.
    let (&0, name) = name.split_last()? else {
        return None;
    };
    let name = listed_ascii_until_nul(name).filter(|n| n.len() == name.len())?;
    // Only TCP and the four option bits have text; "None" and "CHAP_UNI"
    // exclude each other.
    let known = HEADER_CRC32C | DATA_CRC32C | AUTH_NONE | AUTH_CHAP_UNI;
    let both_auth = AUTH_NONE | AUTH_CHAP_UNI;
    if protocol != 0 || options & !known != 0 || options & both_auth == both_auth {
        return None;
    }
    let digest = |bit: u16| if options & bit != 0 { "CRC32C" } else { "None" };
    let auth = match (options & AUTH_NONE != 0, options & AUTH_CHAP_UNI != 0) {
        (true, _) => "None",
        (false, true) => "CHAP_UNI",
        (false, false) => "CHAP_BI",
    };
    Some(format!(
        "iSCSI({name},0x{tag:x},0x{},{},{},{auth},TCP)",
        hex_string(lun),
        digest(HEADER_CRC32C),
        digest(DATA_CRC32C)
    ))
}

pub fn iscsi_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [name, tag, lun, header, data_digest, auth, protocol] = args else {
        return None;
    };
    let digest = |text: &str, bit: u16| match text.trim() {
        "CRC32C" => Some(bit),
        "None" => Some(0),
        _ => None,
    };
    let options = digest(header, HEADER_CRC32C)?
        | digest(data_digest, DATA_CRC32C)?
        | match auth.trim() {
            "None" => AUTH_NONE,
            "CHAP_UNI" => AUTH_CHAP_UNI,
            "CHAP_BI" => 0,
            _ => return None,
        };
    if protocol.trim() != "TCP" {
        return None;
    }
    let mut data = Vec::from([0, 0]);
    data.extend_from_slice(&options.to_le_bytes());
    data.extend_from_slice(&int::<u64>(lun)?.to_be_bytes());
    data.extend_from_slice(&int::<u16>(tag)?.to_le_bytes());
    data.extend_from_slice(listed_ascii(name)?);
    data.push(0);
    Some(data)
}

/// The four topology parameters of SAS and SasEx nodes (§10.6.1.6):
/// `NoTopology,0,0,0`, `SAS|SATA,Internal|External,Direct|Expanded,DriveBay`
/// or the raw value.
fn topology_text(info: u16) -> [String; 4] {
    let kind = info & 0x0F;
    let text: [String; 4] = if info & 0x80 == 0 && kind == 0 {
        ["NoTopology".into(), "0".into(), "0".into(), "0".into()]
    } else if info & 0x80 == 0 && (kind == 1 || kind == 2) {
        let bay = if kind == 1 { 0 } else { (info >> 8) + 1 };
        [
            if info & 0x10 != 0 { "SATA" } else { "SAS" }.into(),
            if info & 0x20 != 0 {
                "External"
            } else {
                "Internal"
            }
            .into(),
            if info & 0x40 != 0 {
                "Expanded"
            } else {
                "Direct"
            }
            .into(),
            format!("0x{bay:x}"),
        ]
    } else {
        [format!("0x{info:x}"), "0".into(), "0".into(), "0".into()]
    };
    let [a, b, c, d] = &text;
    if topology_parse(&[a, b, c, d]) == Some(info) {
        text
    } else {
        [format!("0x{info:x}"), "0".into(), "0".into(), "0".into()]
    }
}

fn topology_parse(args: &[&str; 4]) -> Option<u16> {
    let [kind, location, connect, bay] = args.map(str::trim);
    match kind {
        "NoTopology" => Some(0),
        "SAS" | "SATA" => {
            let bay = int::<u16>(bay)?;
            let mut info = match bay {
                0 => 1,
                bay if bay <= 0x100 => 2 | ((bay - 1) << 8),
                _ => return None,
            };
            if kind == "SATA" {
                info |= 0x10;
            }
            info |= match location {
                "Internal" => 0,
                "External" => 0x20,
                _ => return None,
            };
            info |= match connect {
                "Direct" => 0,
                "Expanded" => 0x40,
                _ => return None,
            };
            Some(info)
        }
        other => int(other),
    }
}

/// `SasEx(Address,LUN,RTP,<topology>)`: address and LUN are byte arrays,
/// byte 0 first.
pub fn sas_ex_text(d: &[u8]) -> Option<String> {
    if d.len() != 20 {
        return None;
    }
    let mut args = Vec::from([
        format!("0x{}", hex_string(&d[..8])),
        format!("0x{}", hex_string(&d[8..16])),
        format!("0x{:x}", le::u16_at(d, 18)?),
    ]);
    args.extend(topology_text(le::u16_at(d, 16)?));
    Some(join("SasEx", &args))
}

pub fn sas_ex_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [address, lun, port, kind, location, connect, bay] = args else {
        return None;
    };
    let mut data = Vec::with_capacity(20);
    data.extend_from_slice(&int::<u64>(address)?.to_be_bytes());
    data.extend_from_slice(&int::<u64>(lun)?.to_be_bytes());
    data.extend_from_slice(&topology_parse(&[kind, location, connect, bay])?.to_le_bytes());
    data.extend_from_slice(&int::<u16>(port)?.to_le_bytes());
    Some(data)
}

/// The vendor messaging shortcuts with a payload, `UartFlowCtrl` and `SAS`
/// (`VenMsg(GUID,data)` when shortcuts are not allowed).
pub fn vendor_text(d: &[u8], options: Options) -> Option<String> {
    if !options.allow_shortcuts {
        return None;
    }
    let (guid, rest) = (d.get(..16)?, d.get(16..)?);
    if guid == UART_FLOW_CONTROL && rest.len() == 4 {
        let map = le::u32_at(rest, 0)?;
        let name = ["None", "Hardware", "XonXoff"].get(usize::try_from(map).ok()?)?;
        return Some(format!("UartFlowCtrl({name})"));
    }
    if guid == SAS && rest.len() == 24 {
        let mut args = Vec::from([
            format!("0x{:x}", le::u64_at(rest, 4)?),
            format!("0x{:x}", le::u64_at(rest, 12)?),
            format!("0x{:x}", le::u16_at(rest, 22)?),
        ]);
        args.extend(topology_text(le::u16_at(rest, 20)?));
        args.push(format!("0x{:x}", le::u32_at(rest, 0)?));
        return Some(join("SAS", &args));
    }
    None
}

pub fn uart_flow_control_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [mode] = args else { return None };
    let map: u32 = match mode.trim() {
        "None" => 0,
        "Hardware" => 1,
        "XonXoff" => 2,
        _ => return None,
    };
    let mut data = Vec::from(UART_FLOW_CONTROL);
    data.extend_from_slice(&map.to_le_bytes());
    Some(data)
}

pub fn sas_parse(args: &[&str]) -> Option<Vec<u8>> {
    let (fixed, reserved) = match args {
        [fixed @ .., reserved] if args.len() == 8 => (fixed, int::<u32>(reserved)?),
        fixed if fixed.len() == 7 => (fixed, 0),
        _ => return None,
    };
    let [address, lun, port, kind, location, connect, bay] = fixed else {
        return None;
    };
    let mut data = Vec::from(SAS);
    data.extend_from_slice(&reserved.to_le_bytes());
    data.extend_from_slice(&number(address)?.to_le_bytes());
    data.extend_from_slice(&number(lun)?.to_le_bytes());
    data.extend_from_slice(&topology_parse(&[kind, location, connect, bay])?.to_le_bytes());
    data.extend_from_slice(&int::<u16>(port)?.to_le_bytes());
    Some(data)
}

/// `NVMe(NSID,EUI-64)`: the EUI-64 is written most significant byte
/// (stored last) first, bytes separated by `-`.
pub fn nvme_text(d: &[u8]) -> Option<String> {
    if d.len() != 12 {
        return None;
    }
    let eui: Vec<String> = d[4..].iter().rev().map(|b| format!("{b:02x}")).collect();
    Some(format!("NVMe(0x{:x},{})", le::u32_at(d, 0)?, eui.join("-")))
}

pub fn nvme_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [nsid, eui] = args else { return None };
    let bytes: Vec<u8> = eui
        .trim()
        .split('-')
        .map(|b| {
            (!b.is_empty() && b.len() <= 2 && b.bytes().all(|c| c.is_ascii_hexdigit()))
                .then(|| u8::from_str_radix(b, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    if bytes.len() != 8 {
        return None;
    }
    let mut data = Vec::from(int::<u32>(nsid)?.to_le_bytes());
    data.extend(bytes.iter().rev());
    Some(data)
}

/// `Uri(text)` and `Wi-Fi(SSID)`: the whole parameter text is the string.
pub fn uri_text(d: &[u8]) -> Option<String> {
    let text = ascii_until_nul(d).filter(|t| t.len() == d.len())?;
    Some(format!("Uri({text})"))
}

pub fn uri_parse(raw: &str) -> Option<Vec<u8>> {
    Some(ascii(raw)?.to_vec())
}

pub fn wifi_text(d: &[u8]) -> Option<String> {
    let ssid = ascii_until_nul(d.get(..32)?)?;
    if d.len() != 32 || d[ssid.len()..].iter().any(|&b| b != 0) {
        return None;
    }
    Some(format!("Wi-Fi({ssid})"))
}

pub fn wifi_parse(raw: &str) -> Option<Vec<u8>> {
    let ssid = ascii(raw)?;
    if ssid.len() > 32 || ssid.contains(&0) {
        return None;
    }
    let mut data = alloc::vec![0u8; 32];
    data[..ssid.len()].copy_from_slice(ssid);
    Some(data)
}

/// `Bluetooth(BDADDR)`, `BluetoothLE(BDADDR,Type)`: address bytes in order.
pub fn bluetooth_text(d: &[u8]) -> Option<String> {
    (d.len() == 6).then(|| format!("Bluetooth({})", hex_string(d)))
}

pub fn bluetooth_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [address] = args else { return None };
    hex_bytes(address).filter(|a| a.len() == 6)
}

pub fn bluetooth_le_text(d: &[u8]) -> Option<String> {
    (d.len() == 7).then(|| format!("BluetoothLE({},0x{:x})", hex_string(&d[..6]), d[6]))
}

pub fn bluetooth_le_parse(args: &[&str]) -> Option<Vec<u8>> {
    let [address, kind] = args else { return None };
    let mut data = hex_bytes(address).filter(|a| a.len() == 6)?;
    data.push(int(kind)?);
    Some(data)
}

/// `Dns(Address,...)`: one flag byte (IPv6 or not), then 16 bytes per
/// server; IPv4 addresses use the first four.
pub fn dns_text(d: &[u8]) -> Option<String> {
    let (&is_ipv6, servers) = d.split_first()?;
    if servers.is_empty() || !servers.len().is_multiple_of(16) || is_ipv6 > 1 {
        return None;
    }
    let mut args = Vec::new();
    for server in servers.chunks_exact(16) {
        args.push(if is_ipv6 == 1 {
            ipv6_text(server)
        } else if server[4..].iter().all(|&b| b == 0) {
            ipv4_text(&server[..4])
        } else {
            return None;
        });
    }
    Some(join("Dns", &args))
}

pub fn dns_parse(args: &[&str]) -> Option<Vec<u8>> {
    let is_ipv6 = args.first()?.contains(':');
    let mut data = Vec::from([u8::from(is_ipv6)]);
    for server in args {
        let mut bytes = [0u8; 16];
        if is_ipv6 {
            bytes = parse_ipv6(server)?;
        } else {
            bytes[..4].copy_from_slice(&parse_ipv4(server)?);
        }
        data.extend_from_slice(&bytes);
    }
    Some(data)
}
