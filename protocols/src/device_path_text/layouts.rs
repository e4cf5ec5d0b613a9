//! Fixed-size nodes described as data (UEFI 2.10 §10.3 layouts, §10.6.1
//! text forms): a keyword, the node's type and subtype, its payload size,
//! constant bytes that select it (an ACPI `_HID`, a vendor GUID), and the
//! fields its text lists in order. One table drives both directions.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::syntax::{guid_at, guid_text, int, number, parse_guid};

/// How a field is stored and written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Little-endian integer of `width` bytes, written `0x…`.
    Hex,
    /// Little-endian integer of `width` bytes, written in decimal.
    Dec,
    /// 16-byte GUID in registry format.
    Guid,
    /// 8 bytes written as one `0x…` number, most significant byte first
    /// (FibreEx WWN/LUN, §10.3.4.3).
    BigEndian,
    /// Little-endian 8-byte integer written as 16 hex digits without a
    /// prefix, and read as hex with or without one: the 1394 GUID, which
    /// edk2 prints `%016lx` and the SCT writes `I1394(ACDE48234567ABCD)`.
    BareHex,
}

#[derive(Clone, Copy)]
pub struct Field {
    pub offset: usize,
    pub width: usize,
    pub kind: Kind,
    /// Left out of the display-only form (§10.6.2 DisplayOnly).
    pub detail: bool,
}

const fn hex(offset: usize, width: usize) -> Field {
    Field {
        offset,
        width,
        kind: Kind::Hex,
        detail: false,
    }
}

const fn dec(offset: usize, width: usize) -> Field {
    Field {
        offset,
        width,
        kind: Kind::Dec,
        detail: false,
    }
}

const fn guid(offset: usize) -> Field {
    Field {
        offset,
        width: 16,
        kind: Kind::Guid,
        detail: false,
    }
}

const fn bare_hex(offset: usize) -> Field {
    Field {
        offset,
        width: 8,
        kind: Kind::BareHex,
        detail: false,
    }
}

const fn big_endian(offset: usize) -> Field {
    Field {
        offset,
        width: 8,
        kind: Kind::BigEndian,
        detail: false,
    }
}

const fn detail(field: Field) -> Field {
    Field {
        detail: true,
        ..field
    }
}

pub struct Layout {
    pub keyword: &'static str,
    pub node_type: u8,
    pub sub_type: u8,
    pub size: usize,
    /// Bytes at an offset that this form requires (an ACPI `_HID`, a
    /// GUID).
    pub constants: &'static [(usize, &'static [u8])],
    /// A shortcut (§10.6.2 AllowShortcuts): written only when the caller
    /// allows them, the plain form otherwise.
    pub shortcut: bool,
    pub fields: &'static [Field],
}

const HW: u8 = 1;
const ACPI: u8 = 2;
const MSG: u8 = 3;
const MEDIA: u8 = 4;

/// `PNPxxxx` as the little-endian `_HID` bytes of an ACPI node.
const fn pnp(product: u32) -> [u8; 4] {
    ((product << 16) | 0x41D0).to_le_bytes()
}

const fn guid_bytes(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let (a, b, c) = (a.to_le_bytes(), b.to_le_bytes(), c.to_le_bytes());
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// Messaging vendor GUIDs with their own text forms (§10.3.4.4, §10.6.1.6).
pub const PC_ANSI: [u8; 16] = guid_bytes(
    0xE0C1_4753,
    0xF9BE,
    0x11D2,
    [0x9A, 0x0C, 0x00, 0x90, 0x27, 0x3F, 0xC1, 0x4D],
);
pub const VT_100: [u8; 16] = guid_bytes(
    0xDFA6_6065,
    0xB419,
    0x11D3,
    [0x9A, 0x2D, 0x00, 0x90, 0x27, 0x3F, 0xC1, 0x4D],
);
pub const VT_100_PLUS: [u8; 16] = guid_bytes(
    0x7BAE_C70B,
    0x57E0,
    0x4C76,
    [0x8E, 0x87, 0x2F, 0x9E, 0x28, 0x08, 0x83, 0x43],
);
pub const VT_UTF8: [u8; 16] = guid_bytes(
    0xAD15_A0D6,
    0x8BEC,
    0x4ACF,
    [0xA0, 0x73, 0xD0, 0x1D, 0xE7, 0x7E, 0x2D, 0x88],
);
pub const UART_FLOW_CONTROL: [u8; 16] = guid_bytes(
    0x3749_9A9D,
    0x542F,
    0x4C89,
    [0xA0, 0x26, 0x35, 0xDA, 0x14, 0x20, 0x94, 0xE4],
);
pub const SAS: [u8; 16] = guid_bytes(
    0xD487_DDB4,
    0x008B,
    0x11D9,
    [0xAF, 0xDC, 0x00, 0x10, 0x83, 0xFF, 0xCA, 0x4D],
);
pub const DEBUG_PORT: [u8; 16] = guid_bytes(
    0xEBA4_E8D2,
    0x3858,
    0x41EC,
    [0xA2, 0x81, 0x26, 0x47, 0xBA, 0x96, 0x60, 0xD0],
);
/// RAM disk type GUIDs (§10.3.5.12).
const VIRTUAL_DISK: [u8; 16] = guid_bytes(
    0x77AB_535A,
    0x45FC,
    0x624B,
    [0x55, 0x60, 0xF7, 0xB2, 0x81, 0xD1, 0xF9, 0x6E],
);
const VIRTUAL_CD: [u8; 16] = guid_bytes(
    0x3D5A_BD30,
    0x4175,
    0x87CE,
    [0x6D, 0x64, 0xD2, 0xAD, 0xE5, 0x23, 0xC4, 0xBB],
);
const PERSISTENT_VIRTUAL_DISK: [u8; 16] = guid_bytes(
    0x5CEA_02C9,
    0x4D07,
    0x69D3,
    [0x26, 0x9F, 0x44, 0x96, 0xFB, 0xE0, 0x96, 0xF9],
);
const PERSISTENT_VIRTUAL_CD: [u8; 16] = guid_bytes(
    0x0801_8188,
    0x42CD,
    0xBB48,
    [0x10, 0x0F, 0x53, 0x87, 0xD5, 0x3D, 0xED, 0x3D],
);

const fn layout(
    keyword: &'static str,
    node_type: u8,
    sub_type: u8,
    size: usize,
    fields: &'static [Field],
) -> Layout {
    Layout {
        keyword,
        node_type,
        sub_type,
        size,
        constants: &[],
        fields,
        shortcut: false,
    }
}

/// A form selected by constant payload bytes.
const fn selected(
    keyword: &'static str,
    node_type: u8,
    sub_type: u8,
    size: usize,
    constants: &'static [(usize, &'static [u8])],
    fields: &'static [Field],
) -> Layout {
    Layout {
        keyword,
        node_type,
        sub_type,
        size,
        constants,
        fields,
        shortcut: false,
    }
}

/// A vendor messaging node named after its GUID (`VenPcAnsi()`...): the
/// shortcut of `VenMsg(GUID)`, as EDK2 treats it too.
const fn vendor_shortcut(keyword: &'static str, guid: &'static [(usize, &'static [u8])]) -> Layout {
    Layout {
        keyword,
        node_type: MSG,
        sub_type: 10,
        size: 16,
        constants: guid,
        fields: &[],
        shortcut: true,
    }
}

const RAM_DISK_RANGE: [Field; 3] = [hex(0, 8), hex(8, 8), dec(32, 2)];

/// Forms selected by constants come before the plain form of the same node
/// so that rendering picks them (shortcuts only when allowed).
pub const LAYOUTS: &[Layout] = &[
    // Hardware (§10.3.2, §10.6.1.2).
    layout("Pci", HW, 1, 2, &[hex(1, 1), hex(0, 1)]),
    layout("PcCard", HW, 2, 1, &[hex(0, 1)]),
    layout(
        "MemoryMapped",
        HW,
        3,
        20,
        &[hex(0, 4), hex(4, 8), hex(12, 8)],
    ),
    layout("Ctrl", HW, 5, 4, &[hex(0, 4)]),
    layout("BMC", HW, 6, 9, &[hex(0, 1), hex(1, 8)]),
    // ACPI (§10.3.3, §10.6.1.3).
    selected("PciRoot", ACPI, 1, 8, &[(0, &pnp(0x0A03))], &[hex(4, 4)]),
    selected("PcieRoot", ACPI, 1, 8, &[(0, &pnp(0x0A08))], &[hex(4, 4)]),
    selected("Floppy", ACPI, 1, 8, &[(0, &pnp(0x0604))], &[hex(4, 4)]),
    selected("Keyboard", ACPI, 1, 8, &[(0, &pnp(0x0301))], &[hex(4, 4)]),
    selected("Serial", ACPI, 1, 8, &[(0, &pnp(0x0501))], &[hex(4, 4)]),
    selected(
        "ParallelPort",
        ACPI,
        1,
        8,
        &[(0, &pnp(0x0401))],
        &[hex(4, 4)],
    ),
    // Messaging (§10.3.4, §10.6.1.6).
    layout("Scsi", MSG, 2, 4, &[hex(0, 2), hex(2, 2)]),
    layout("Fibre", MSG, 3, 20, &[hex(4, 8), hex(12, 8)]),
    layout("FibreEx", MSG, 21, 20, &[big_endian(4), big_endian(12)]),
    layout("I1394", MSG, 4, 12, &[bare_hex(4)]),
    layout("USB", MSG, 5, 2, &[hex(0, 1), hex(1, 1)]),
    layout("I2O", MSG, 6, 4, &[hex(0, 4)]),
    layout(
        "Infiniband",
        MSG,
        9,
        44,
        &[hex(0, 4), guid(4), hex(20, 8), hex(28, 8), hex(36, 8)],
    ),
    vendor_shortcut("VenPcAnsi", &[(0, &PC_ANSI)]),
    vendor_shortcut("VenVt100", &[(0, &VT_100)]),
    vendor_shortcut("VenVt100Plus", &[(0, &VT_100_PLUS)]),
    vendor_shortcut("VenUtf8", &[(0, &VT_UTF8)]),
    vendor_shortcut("DebugPort", &[(0, &DEBUG_PORT)]),
    layout("Unit", MSG, 17, 1, &[hex(0, 1)]),
    layout("Sata", MSG, 18, 6, &[hex(0, 2), hex(2, 2), hex(4, 2)]),
    layout("Vlan", MSG, 20, 2, &[dec(0, 2)]),
    layout("UFS", MSG, 25, 2, &[hex(0, 1), hex(1, 1)]),
    layout("SD", MSG, 26, 1, &[hex(0, 1)]),
    layout("eMMC", MSG, 29, 1, &[hex(0, 1)]),
    layout("NVDIMM", MSG, 32, 16, &[guid(0)]),
    // Media (§10.3.5, §10.6.1.7).
    layout(
        "CDROM",
        MEDIA,
        2,
        20,
        &[hex(0, 4), detail(hex(4, 8)), detail(hex(12, 8))],
    ),
    layout("Media", MEDIA, 5, 16, &[guid(0)]),
    layout("FvFile", MEDIA, 6, 16, &[guid(0)]),
    layout("Fv", MEDIA, 7, 16, &[guid(0)]),
    layout("Offset", MEDIA, 8, 20, &[hex(4, 8), hex(12, 8)]),
    selected(
        "VirtualDisk",
        MEDIA,
        9,
        34,
        &[(16, &VIRTUAL_DISK)],
        &RAM_DISK_RANGE,
    ),
    selected(
        "VirtualCD",
        MEDIA,
        9,
        34,
        &[(16, &VIRTUAL_CD)],
        &RAM_DISK_RANGE,
    ),
    selected(
        "PersistentVirtualDisk",
        MEDIA,
        9,
        34,
        &[(16, &PERSISTENT_VIRTUAL_DISK)],
        &RAM_DISK_RANGE,
    ),
    selected(
        "PersistentVirtualCD",
        MEDIA,
        9,
        34,
        &[(16, &PERSISTENT_VIRTUAL_CD)],
        &RAM_DISK_RANGE,
    ),
    layout(
        "RamDisk",
        MEDIA,
        9,
        34,
        &[hex(0, 8), hex(8, 8), dec(32, 2), guid(16)],
    ),
];

fn le_value(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

impl Layout {
    /// Whether `data` is a payload of this form.
    pub fn matches(&self, node_type: u8, sub_type: u8, data: &[u8]) -> bool {
        (self.node_type, self.sub_type) == (node_type, sub_type)
            && data.len() == self.size
            && self
                .constants
                .iter()
                .all(|&(offset, bytes)| data.get(offset..offset + bytes.len()) == Some(bytes))
    }

    /// The text of a payload that [`Layout::matches`].
    pub fn render(&self, data: &[u8], display_only: bool) -> Option<String> {
        let mut args = Vec::new();
        for field in self.fields {
            if display_only && field.detail {
                continue;
            }
            let bytes = data.get(field.offset..field.offset.checked_add(field.width)?)?;
            args.push(match field.kind {
                Kind::Hex => format!("0x{:x}", le_value(bytes)),
                Kind::Dec => format!("{}", le_value(bytes)),
                Kind::Guid => guid_text(&guid_at(bytes, 0)?),
                Kind::BigEndian => format!("0x{}", super::syntax::hex_string(bytes)),
                Kind::BareHex => format!("{:016x}", le_value(bytes)),
            });
        }
        Some(format!("{}({})", self.keyword, args.join(",")))
    }

    /// The payload described by `args`; omitted trailing arguments are 0.
    pub fn parse(&self, args: &[&str]) -> Option<Vec<u8>> {
        let no_args = args.iter().all(|a| a.trim().is_empty());
        if args.len() > self.fields.len() && !(self.fields.is_empty() && no_args) {
            return None;
        }
        let mut data = alloc::vec![0u8; self.size];
        for &(offset, bytes) in self.constants {
            data.get_mut(offset..offset + bytes.len())?
                .copy_from_slice(bytes);
        }
        for (i, field) in self.fields.iter().enumerate() {
            let text = args.get(i).copied().unwrap_or("");
            let target = data.get_mut(field.offset..field.offset + field.width)?;
            match field.kind {
                Kind::Hex | Kind::Dec => {
                    let value = number(text)?;
                    if field.width < 8 && value >> (8 * field.width) != 0 {
                        return None;
                    }
                    target.copy_from_slice(&value.to_le_bytes()[..field.width]);
                }
                Kind::Guid => target.copy_from_slice(&parse_guid(text)?.to_bytes()),
                Kind::BigEndian => target.copy_from_slice(&int::<u64>(text)?.to_be_bytes()),
                Kind::BareHex => target.copy_from_slice(&bare_hex_number(text)?.to_le_bytes()),
            }
        }
        Some(data)
    }
}

/// Up to 16 hex digits, `0x` prefix optional ([`Kind::BareHex`]).
fn bare_hex_number(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// The forms spelled `keyword`.
pub fn by_keyword(keyword: &str) -> Option<&'static Layout> {
    LAYOUTS.iter().find(|l| l.keyword == keyword)
}

/// The form that renders a node: a shortcut only when allowed.
pub fn for_node(
    node_type: u8,
    sub_type: u8,
    data: &[u8],
    allow_shortcuts: bool,
) -> Option<&'static Layout> {
    LAYOUTS
        .iter()
        .filter(|l| allow_shortcuts || !l.shortcut)
        .find(|l| l.matches(node_type, sub_type, data))
}
