//! Device paths as text (UEFI 2.10 §10.6), the rules the UEFI SCT's
//! DevicePathToText/DevicePathFromText tests check (edk2-test 17bf62e,
//! `*BBTestCoverage.c`, `*BBTestFunction.c`, `*BBTestConformance.c`):
//!
//! - ConvertTextToDeviceNode turns each §10.6.1 form, as the SCT spells it,
//!   into the node the SCT builds by hand;
//! - ConvertDeviceNodeToText writes that node with its own keyword (not the
//!   generic `Path(...)`) and the text converts back to the same bytes;
//! - whole paths convert both ways, display-only text is the short form;
//! - NULL arguments give NULL, results come from pool (FreePool accepts
//!   them).

use core::ptr;

use r_efi::efi;
use r_efi::protocols::{device_path, device_path_from_text, device_path_to_text};

use crate::ctx::Ctx;

/// A node (or path) built by hand, as the SCT's Create*DeviceNode do.
struct Bytes {
    buf: [u8; 96],
    len: usize,
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn concat(parts: &[&[u8]]) -> Bytes {
    let mut out = Bytes {
        buf: [0; 96],
        len: 0,
    };
    for part in parts {
        out.buf[out.len..out.len + part.len()].copy_from_slice(part);
        out.len += part.len();
    }
    out
}

/// A node: type, subtype, 16-bit length, then the payload parts.
fn node(node_type: u8, sub_type: u8, parts: &[&[u8]]) -> Bytes {
    let payload = concat(parts);
    let len = (payload.len + 4) as u16;
    let [lo, hi] = len.to_le_bytes();
    concat(&[&[node_type, sub_type, lo, hi], payload.as_slice()])
}

/// A GUID's bytes as stored: first three fields little-endian.
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let (a, b, c) = (a.to_le_bytes(), b.to_le_bytes(), c.to_le_bytes());
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

const VEN_HW: [u8; 16] = guid(
    0x5AF6_C71E,
    0x1261,
    0x4637,
    [0x98, 0x38, 0xC4, 0xE9, 0x91, 0x3D, 0x1D, 0xBB],
);
const INFINIBAND_GID: [u8; 16] = guid(
    0xA1ED_07B9,
    0x5BDC,
    0x4741,
    [0xAD, 0xCF, 0xCA, 0x1E, 0x86, 0x81, 0xDD, 0x1A],
);
const PC_ANSI: [u8; 16] = guid(
    0xE0C1_4753,
    0xF9BE,
    0x11D2,
    [0x9A, 0x0C, 0x00, 0x90, 0x27, 0x3F, 0xC1, 0x4D],
);
const UART_FLOW_CONTROL: [u8; 16] = guid(
    0x3749_9A9D,
    0x542F,
    0x4C89,
    [0xA0, 0x26, 0x35, 0xDA, 0x14, 0x20, 0x94, 0xE4],
);
const SAS: [u8; 16] = guid(
    0xD487_DDB4,
    0x008B,
    0x11D9,
    [0xAF, 0xDC, 0x00, 0x10, 0x83, 0xFF, 0xCA, 0x4D],
);
const DEBUG_PORT: [u8; 16] = guid(
    0xEBA4_E8D2,
    0x3858,
    0x41EC,
    [0xA2, 0x81, 0x26, 0x47, 0xBA, 0x96, 0x60, 0xD0],
);
const GPT_SIGNATURE: [u8; 16] = guid(
    0xE8AA_ED38,
    0x1815,
    0x4E4F,
    [0xBC, 0xB5, 0x2E, 0x3D, 0xBD, 0x16, 0x0C, 0x9C],
);
const MEDIA_PROTOCOL: [u8; 16] = guid(
    0xBA3A_77E6,
    0x39A2,
    0x4375,
    [0xA3, 0x9A, 0x10, 0x8B, 0xFF, 0xCC, 0xE1, 0xAA],
);
const VIRTUAL_DISK: [u8; 16] = guid(
    0x77AB_535A,
    0x45FC,
    0x624B,
    [0x55, 0x60, 0xF7, 0xB2, 0x81, 0xD1, 0xF9, 0x6E],
);
const VIRTUAL_CD: [u8; 16] = guid(
    0x3D5A_BD30,
    0x4175,
    0x87CE,
    [0x6D, 0x64, 0xD2, 0xAD, 0xE5, 0x23, 0xC4, 0xBB],
);
const PERSISTENT_VIRTUAL_DISK: [u8; 16] = guid(
    0x5CEA_02C9,
    0x4D07,
    0x69D3,
    [0x26, 0x9F, 0x44, 0x96, 0xFB, 0xE0, 0x96, 0xF9],
);
const PERSISTENT_VIRTUAL_CD: [u8; 16] = guid(
    0x0801_8188,
    0x42CD,
    0xBB48,
    [0x10, 0x0F, 0x53, 0x87, 0xD5, 0x3D, 0xED, 0x3D],
);

const IPV6_A: [u8; 16] = [
    0x12, 0x34, 0x56, 0x78, 0xAB, 0xCD, 0x12, 0x34, 0x56, 0x78, 0xAB, 0xCD, 0x12, 0x34, 0x56, 0x78,
];
const IPV6_B: [u8; 16] = [
    0x56, 0x78, 0xAB, 0xCD, 0x12, 0x34, 0x56, 0x78, 0xAB, 0xCD, 0x12, 0x34, 0x56, 0x78, 0xAB, 0xCD,
];
const MAC32: [u8; 32] = [
    0x12, 0x34, 0x56, 0x78, 0xAB, 0xCD, 0x12, 0x34, 0x56, 0x78, 0xAB, 0xCD, 0x12, 0x34, 0x56, 0x78,
    0xAB, 0xCD, 0x12, 0x34, 0x56, 0x78, 0xAB, 0xCD, 0x12, 0x34, 0x56, 0x78, 0xAB, 0xCD, 0x12, 0x34,
];

fn le16(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}
fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}
fn le64(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

fn acpi(product: u16) -> Bytes {
    let [lo, hi] = product.to_le_bytes();
    node(2, 1, &[&[0xD0, 0x41, lo, hi], &[0; 4]])
}

fn ram_disk(kind: &[u8; 16]) -> Bytes {
    node(
        4,
        9,
        &[
            &le64(0xABCD_1234_C000_0000),
            &le64(0xABCD_1234_CFFF_FFFF),
            kind,
            &le16(1),
        ],
    )
}

/// The SCT's text for a node and the bytes it builds for that text.
fn cases() -> [(&'static str, Bytes); 53] {
    let hd = |signature: &[u8], kind: u8| {
        node(
            4,
            1,
            &[
                &le32(6),
                &le64(12_345_678),
                &le64(0xABCD_1234),
                signature,
                &[kind, kind],
            ],
        )
    };
    let mut dns4 = [0u8; 33];
    dns4[1..5].copy_from_slice(&[192, 168, 22, 100]);
    dns4[17..21].copy_from_slice(&[192, 168, 22, 101]);
    let mut mbr = [0u8; 16];
    mbr[..4].copy_from_slice(&le32(0x5678_9ABC));
    let mut ssid = [0u8; 32];
    ssid[..11].copy_from_slice(b"It's a SSID");
    let mut sas_address = [0u8; 8];
    sas_address.copy_from_slice(&0x1234_5678_90AB_CDEFu64.to_be_bytes());
    [
        ("PcCard(0x2A)", node(1, 2, &[&[0x2A]])),
        (
            "MemoryMapped(14,0x123456789ABCDEF,0xFEDCBA9876543210)",
            node(
                1,
                3,
                &[
                    &le32(14),
                    &le64(0x0123_4567_89AB_CDEF),
                    &le64(0xFEDC_BA98_7654_3210),
                ],
            ),
        ),
        (
            "VenHw(5AF6C71E-1261-4637-9838-C4E9913D1DBB,0123456789ABCDEF)",
            node(
                1,
                4,
                &[&VEN_HW, &[0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]],
            ),
        ),
        ("Ctrl(0x1234ABCD)", node(1, 5, &[&le32(0x1234_ABCD)])),
        (
            "BMC(0x00,0x12345678FFFFFFFF))",
            node(1, 6, &[&[0], &le64(0x1234_5678_FFFF_FFFF)]),
        ),
        ("PciRoot(0x0)", acpi(0x0A03)),
        ("PcieRoot(0x0)", acpi(0x0A08)),
        ("Floppy(0x0)", acpi(0x0604)),
        ("Keyboard(0x0)", acpi(0x0301)),
        ("Serial(0x0)", acpi(0x0501)),
        ("ParallelPort(0x0)", acpi(0x0401)),
        (
            "AcpiExp(PNPABCD,PNP0001,5678)",
            node(
                2,
                2,
                &[
                    &[0xD0, 0x41, 0xCD, 0xAB],
                    &[0; 4],
                    &[0xD0, 0x41, 0x01, 0x00],
                    b"\x005678\x00\x00",
                ],
            ),
        ),
        ("AcpiAdr(0x80010100)", node(2, 3, &[&le32(0x8001_0100)])),
        ("Ata(Primary,Master,0)", node(3, 1, &[&[0, 0, 0, 0]])),
        (
            "Scsi(1234,0xABCD)",
            node(3, 2, &[&le16(1234), &le16(0xABCD)]),
        ),
        (
            "Fibre(0x123456789ABCDEF0,0xABCDEF1234567890)",
            node(
                3,
                3,
                &[
                    &[0; 4],
                    &le64(0x1234_5678_9ABC_DEF0),
                    &le64(0xABCD_EF12_3456_7890),
                ],
            ),
        ),
        (
            "FibreEx(0x123456789ABCDEF0,0xABCDEF1234567890)",
            node(
                3,
                21,
                &[
                    &[0; 4],
                    &0x1234_5678_9ABC_DEF0u64.to_be_bytes(),
                    &0xABCD_EF12_3456_7890u64.to_be_bytes(),
                ],
            ),
        ),
        // The 1394 GUID in bare hex, as the SCT writes it (a NULL node made
        // the SCT fault).
        (
            "I1394(ACDE48234567ABCD)",
            node(3, 4, &[&[0; 4], &le64(0xACDE_4823_4567_ABCD)]),
        ),
        ("USB(12,0xAB)", node(3, 5, &[&[12, 0xAB]])),
        (
            "Infiniband(10,A1ED07B9-5BDC-4741-ADCF-CA1E8681DD1A,1234,5678,0xABCD)",
            node(
                3,
                9,
                &[
                    &le32(10),
                    &INFINIBAND_GID,
                    &le64(1234),
                    &le64(5678),
                    &le64(0xABCD),
                ],
            ),
        ),
        ("VenPcAnsi()", node(3, 10, &[&PC_ANSI])),
        (
            "UartFlowCtrl(Hardware)",
            node(3, 10, &[&UART_FLOW_CONTROL, &le32(1)]),
        ),
        (
            "SAS(1234567890,0xABCDEF,2000,SAS,External,Direct,0x6A,0)",
            node(
                3,
                10,
                &[
                    &SAS,
                    &[0; 4],
                    &le64(1_234_567_890),
                    &le64(0xAB_CDEF),
                    &le16(0x6922),
                    &le16(2000),
                ],
            ),
        ),
        ("DebugPort()", node(3, 10, &[&DEBUG_PORT])),
        (
            "MAC(12345678ABCD12345678ABCD12345678ABCD12345678ABCD12345678ABCD1234,2)",
            node(3, 11, &[&MAC32, &[2]]),
        ),
        (
            "IPv4(12.34.56.78,TCP,Static,192.168.67.89,192.168.67.1,255.255.255.0)",
            node(
                3,
                12,
                &[
                    &[192, 168, 67, 89, 12, 34, 56, 78],
                    &[0; 4],
                    &le16(6),
                    &[1],
                    &[192, 168, 67, 1, 255, 255, 255, 0],
                ],
            ),
        ),
        (
            "IPv6(1234:5678:ABCD:1234:5678:ABCD:1234:5678,UDP,Static,5678:ABCD:1234:5678:ABCD:1234:5678:ABCD,8,5678:ABCD:1234:5678:ABCD:1234:5678:ABCD)",
            node(
                3,
                13,
                &[&IPV6_B, &IPV6_A, &[0; 4], &le16(17), &[0, 8], &IPV6_B],
            ),
        ),
        (
            "Uart(115200,8,D,1.5)",
            node(3, 14, &[&[0; 4], &le64(115_200), &[8, 0, 2]]),
        ),
        (
            "UsbVideo(1234,5678,1,0)",
            node(3, 15, &[&le16(1234), &le16(5678), &[0x0E, 1, 0]]),
        ),
        (
            "UsbTestAndMeasurement(1234,5678,1)",
            node(3, 15, &[&le16(1234), &le16(5678), &[0xFE, 3, 1]]),
        ),
        ("Unit(0xAB)", node(3, 17, &[&[0xAB]])),
        (
            "iSCSI(MyTargetName,0x12AB,0x0000005678000000,CRC32C,None,CHAP_BI,TCP)",
            node(
                3,
                19,
                &[
                    &[0, 0, 2, 0],
                    &[0, 0, 0, 0x56, 0x78, 0, 0, 0],
                    &le16(0x12AB),
                    b"MyTargetName\0",
                ],
            ),
        ),
        ("Vlan(0x12)", node(3, 20, &[&le16(0x12)])),
        (
            "SasEx(0x1234567890ABCDEF,0x1234567890ABCDEF,2000,SAS,External,Direct,0x6A)",
            node(
                3,
                22,
                &[&sas_address, &sas_address, &le16(0x6922), &le16(2000)],
            ),
        ),
        (
            "NVMe(0xAB124BEF,AB-CD-EF-01-23-45-67-89)",
            node(3, 23, &[&le32(0xAB12_4BEF), &le64(0xABCD_EF01_2345_6789)]),
        ),
        ("Uri(Uri)", node(3, 24, &[b"Uri"])),
        ("UFS(0,3)", node(3, 25, &[&[0, 3]])),
        ("SD(0)", node(3, 26, &[&[0]])),
        (
            "Bluetooth(001320F5FA77)",
            node(3, 27, &[&[0x00, 0x13, 0x20, 0xF5, 0xFA, 0x77]]),
        ),
        ("Wi-Fi(It's a SSID)", node(3, 28, &[&ssid])),
        ("eMMC(0)", node(3, 29, &[&[0]])),
        (
            "BluetoothLE(001320F5FA77,0)",
            node(3, 30, &[&[0x00, 0x13, 0x20, 0xF5, 0xFA, 0x77, 0]]),
        ),
        ("Dns(192.168.22.100,192.168.22.101)", node(3, 31, &[&dns4])),
        (
            "HD(6,GPT,E8AAED38-1815-4E4F-BCB5-2E3DBD160C9C,12345678,0xABCD1234)",
            hd(&GPT_SIGNATURE, 2),
        ),
        ("HD(6,MBR,0x56789ABC,12345678,0xABCD1234)", hd(&mbr, 1)),
        (
            "CDROM(12340000,12345678,0xABCD1234)",
            node(
                4,
                2,
                &[&le32(12_340_000), &le64(12_345_678), &le64(0xABCD_1234)],
            ),
        ),
        (
            "Media(BA3A77E6-39A2-4375-A39A-108BFFCCE1AA)",
            node(4, 5, &[&MEDIA_PROTOCOL]),
        ),
        (
            "Offset(0xFF, 0xFFFF)",
            node(4, 8, &[&[0; 4], &le64(0xFF), &le64(0xFFFF)]),
        ),
        (
            "VirtualDisk(0xABCD1234C0000000,0xABCD1234CFFFFFFF,1)",
            ram_disk(&VIRTUAL_DISK),
        ),
        (
            "VirtualCD(0xABCD1234C0000000,0xABCD1234CFFFFFFF,1)",
            ram_disk(&VIRTUAL_CD),
        ),
        (
            "PersistentVirtualDisk(0xABCD1234C0000000,0xABCD1234CFFFFFFF,1)",
            ram_disk(&PERSISTENT_VIRTUAL_DISK),
        ),
        (
            "PersistentVirtualCD(0xABCD1234C0000000,0xABCD1234CFFFFFFF,1)",
            ram_disk(&PERSISTENT_VIRTUAL_CD),
        ),
        (
            "BBS(Floppy,MyId,0x12AB)",
            node(5, 1, &[&le16(1), &le16(0x12AB), b"MyId\0"]),
        ),
    ]
}

/// `text` as a NUL-terminated UCS-2 string.
fn ucs2(text: &str) -> [u16; 192] {
    let mut out = [0u16; 192];
    for (slot, unit) in out.iter_mut().zip(text.encode_utf16()) {
        *slot = unit;
    }
    out
}

/// The bytes of a node the firmware returned, or of a whole path.
fn returned(ptr: *mut device_path::Protocol, whole_path: bool) -> &'static [u8] {
    let mut len = 0usize;
    loop {
        // SAFETY: the firmware returned a device path (UEFI 2.10 §10.6.3); each
        // node header is 4 readable bytes and the node is as long as it says.
        let header = unsafe { core::slice::from_raw_parts(ptr.cast::<u8>().add(len), 4) };
        let node_len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        if node_len < 4 {
            break;
        }
        let end = header[0] == 0x7F && header[1] == 0xFF;
        len += node_len;
        if !whole_path || end {
            break;
        }
    }
    // SAFETY: as above, the `len` bytes walked belong to the returned path.
    unsafe { core::slice::from_raw_parts(ptr.cast::<u8>(), len) }
}

/// The UCS-2 text the firmware returned, up to its NUL (bounded).
fn text_units(text: *mut u16) -> &'static [u16] {
    let mut len = 0;
    // SAFETY: the firmware returned a NUL-terminated string (UEFI 2.10 §10.6.2);
    // reading stops at the NUL or after 512 characters.
    while len < 512 && unsafe { text.add(len).read_unaligned() } != 0 {
        len += 1;
    }
    // SAFETY: those `len` characters were just read.
    unsafe { core::slice::from_raw_parts(text, len) }
}

fn starts_with(units: &[u16], prefix: &str) -> bool {
    let mut units = units.iter();
    prefix.encode_utf16().all(|p| units.next() == Some(&p))
}

fn locate<T>(ctx: &Ctx, guid: &efi::Guid) -> Option<&'static T> {
    let mut guid = *guid;
    let mut iface = ptr::null_mut();
    let status = (ctx.bs.locate_protocol)(&mut guid, ptr::null_mut(), &mut iface);
    // SAFETY: the firmware installed an interface of this GUID's type.
    (status == efi::Status::SUCCESS).then(|| unsafe { &*iface.cast::<T>() })
}

pub fn run(ctx: &mut Ctx) {
    let to_text = locate::<device_path_to_text::Protocol>(ctx, &device_path_to_text::PROTOCOL_GUID);
    let from_text =
        locate::<device_path_from_text::Protocol>(ctx, &device_path_from_text::PROTOCOL_GUID);
    let (Some(to_text), Some(from_text)) = (to_text, from_text) else {
        ctx.fail(
            "sct_device_path.locate",
            format_args!("to-text or from-text protocol missing"),
        );
        return;
    };
    ctx.pass("sct_device_path.locate");
    null_arguments(ctx, to_text, from_text);
    let mut freed = true;
    for (text, expected) in cases() {
        let keyword = text.split('(').next().unwrap_or(text);
        freed &= text_to_node(ctx, from_text, keyword, text, expected.as_slice());
        freed &= node_to_text(ctx, to_text, from_text, keyword, expected.as_slice());
    }
    ctx.check(
        "sct_device_path.pool",
        freed,
        format_args!("FreePool refused a returned text or node"),
    );
    paths(ctx, to_text, from_text);
}

/// §10.6.2/§10.6.3: NULL in, NULL out (SCT *BBTestConformance.c).
fn null_arguments(
    ctx: &mut Ctx,
    to_text: &device_path_to_text::Protocol,
    from_text: &device_path_from_text::Protocol,
) {
    let mut all_null = true;
    for (display, shortcuts) in [(false, false), (true, false), (false, true), (true, true)] {
        let node = (to_text.convert_device_node_to_text)(
            ptr::null_mut(),
            display.into(),
            shortcuts.into(),
        );
        let path = (to_text.convert_device_path_to_text)(
            ptr::null_mut(),
            display.into(),
            shortcuts.into(),
        );
        all_null &= node.is_null() && path.is_null();
    }
    ctx.check(
        "sct_device_path.to_text.null",
        all_null,
        format_args!("a NULL node or path gave text"),
    );
    let node = (from_text.convert_text_to_device_node)(ptr::null());
    let path = (from_text.convert_text_to_device_path)(ptr::null());
    ctx.check(
        "sct_device_path.from_text.null",
        node.is_null() && path.is_null(),
        format_args!("NULL text gave a device path"),
    );
}

/// ConvertTextToDeviceNode(SCT text) is the node the SCT builds; false when
/// FreePool refuses the result (§10.6.3: it comes from pool).
fn text_to_node(
    ctx: &mut Ctx,
    from_text: &device_path_from_text::Protocol,
    keyword: &str,
    text: &str,
    expected: &[u8],
) -> bool {
    let mut name = [0u8; 64];
    let name = label(&mut name, "sct_device_path.from_text.", keyword);
    let input = ucs2(text);
    let node = (from_text.convert_text_to_device_node)(input.as_ptr().cast_mut());
    if node.is_null() {
        ctx.fail(name, format_args!("NULL for {text}"));
        return true;
    }
    let got = returned(node, false);
    ctx.check(
        name,
        got == expected,
        format_args!("{text}: got {got:02x?}"),
    );
    (ctx.bs.free_pool)(node.cast()) == efi::Status::SUCCESS
}

/// ConvertDeviceNodeToText(node, shortcuts allowed) uses the node's
/// keyword and reads back as the same node; false when FreePool refuses the
/// text (§10.6.2).
fn node_to_text(
    ctx: &mut Ctx,
    to_text: &device_path_to_text::Protocol,
    from_text: &device_path_from_text::Protocol,
    keyword: &str,
    node: &[u8],
) -> bool {
    let mut name = [0u8; 64];
    let name = label(&mut name, "sct_device_path.to_text.", keyword);
    let text = (to_text.convert_device_node_to_text)(
        node.as_ptr().cast_mut().cast(),
        false.into(),
        true.into(),
    );
    if text.is_null() {
        ctx.fail(name, format_args!("NULL text"));
        return true;
    }
    let units = text_units(text);
    let mut prefix = [0u8; 40];
    let prefix = label(&mut prefix, keyword, "(");
    let back = (from_text.convert_text_to_device_node)(text);
    let same = !back.is_null() && returned(back, false) == node;
    ctx.check(
        name,
        starts_with(units, prefix) && same,
        format_args!("{}", Utf16(units)),
    );
    ctx.free_pool(back);
    (ctx.bs.free_pool)(text.cast()) == efi::Status::SUCCESS
}

/// Whole paths both ways (SCT *BBTestFunction.c) and display-only text.
fn paths(
    ctx: &mut Ctx,
    to_text: &device_path_to_text::Protocol,
    from_text: &device_path_from_text::Protocol,
) {
    let expected = concat(&[
        acpi(0x0A03).as_slice(),
        &[1, 1, 6, 0, 0x10, 1],
        &[3, 1, 8, 0, 0, 0, 0, 0],
        &[0x7F, 0xFF, 4, 0],
    ]);
    let input = ucs2("PciRoot(0)/Pci(1,0x10)/Ata(Primary,Master,0)");
    let path = (from_text.convert_text_to_device_path)(input.as_ptr().cast_mut());
    let parsed = !path.is_null() && returned(path, true) == expected.as_slice();
    ctx.check(
        "sct_device_path.from_text.path",
        parsed,
        format_args!("PciRoot/Pci/Ata path differs"),
    );
    ctx.free_pool(path);
    let text = (to_text.convert_device_path_to_text)(
        expected.as_slice().as_ptr().cast_mut().cast(),
        false.into(),
        false.into(),
    );
    let back = if text.is_null() {
        ptr::null_mut()
    } else {
        (from_text.convert_text_to_device_path)(text)
    };
    let round_trip = !back.is_null() && returned(back, true) == expected.as_slice();
    let units = if text.is_null() {
        &[][..]
    } else {
        text_units(text)
    };
    ctx.check(
        "sct_device_path.to_text.path",
        starts_with(units, "PciRoot(") && round_trip,
        format_args!("{}", Utf16(units)),
    );
    ctx.free_pool(back);
    ctx.free_pool(text);

    // AllowShortcuts FALSE: a vendor node named after its GUID is written as
    // VenMsg(GUID[,data]) instead (§10.6.2), and still reads back.
    let mut plain = true;
    for (text, node) in cases() {
        let by_guid = ["VenPcAnsi", "UartFlowCtrl", "SAS", "DebugPort"];
        if !by_guid.iter().any(|k| text.split('(').next() == Some(*k)) {
            continue;
        }
        let written = (to_text.convert_device_node_to_text)(
            node.as_slice().as_ptr().cast_mut().cast(),
            false.into(),
            false.into(),
        );
        let units = if written.is_null() {
            &[][..]
        } else {
            text_units(written)
        };
        let back = if written.is_null() {
            ptr::null_mut()
        } else {
            (from_text.convert_text_to_device_node)(written)
        };
        let same = !back.is_null() && returned(back, false) == node.as_slice();
        if !(starts_with(units, "VenMsg(") && same) {
            ctx.fail(
                "sct_device_path.to_text.no_shortcuts",
                format_args!("{}", Utf16(units)),
            );
            plain = false;
        }
        ctx.free_pool(back);
        ctx.free_pool(written);
    }
    if plain {
        ctx.pass("sct_device_path.to_text.no_shortcuts");
    }

    // DisplayOnly: IPv4 shows only the remote address (§10.6.1.6).
    let ipv4 = cases()
        .into_iter()
        .find(|(t, _)| t.starts_with("IPv4"))
        .map(|(_, n)| n);
    if let Some(ipv4) = ipv4 {
        let text = (to_text.convert_device_node_to_text)(
            ipv4.as_slice().as_ptr().cast_mut().cast(),
            true.into(),
            false.into(),
        );
        let units = if text.is_null() {
            &[][..]
        } else {
            text_units(text)
        };
        let short = "IPv4(12.34.56.78)";
        ctx.check(
            "sct_device_path.to_text.display_only",
            units.iter().copied().eq(short.encode_utf16()),
            format_args!("{}", Utf16(units)),
        );
        ctx.free_pool(text);
    }
}

/// `prefix` followed by `suffix` in `buf`, as a str.
fn label<'a>(buf: &'a mut [u8], prefix: &str, suffix: &str) -> &'a str {
    let total = (prefix.len() + suffix.len()).min(buf.len());
    let first = prefix.len().min(total);
    buf[..first].copy_from_slice(&prefix.as_bytes()[..first]);
    buf[first..total].copy_from_slice(&suffix.as_bytes()[..total - first]);
    core::str::from_utf8(&buf[..total]).unwrap_or("")
}

/// UCS-2 shown as text in a detail line.
struct Utf16<'a>(&'a [u16]);

impl core::fmt::Display for Utf16<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in char::decode_utf16(self.0.iter().copied()) {
            core::fmt::Write::write_char(f, c.unwrap_or(char::REPLACEMENT_CHARACTER))?;
        }
        Ok(())
    }
}
