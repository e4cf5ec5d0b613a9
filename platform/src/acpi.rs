//! ACPI table discovery (ACPI 6.5 §5.2): RSDP, XSDT/RSDT, FADT, the DSDT's
//! `\_S5` object and MCFG.
//!
//! The table formats are decoded in [`parse`], which works on byte slices
//! only. Physical memory is read through the [`PhysicalMemory`] trait so the
//! whole discovery walk runs on the host against synthetic memory in tests;
//! the firmware uses [`IdentityMapped`], the one place that turns a physical
//! address into a slice.

use core::fmt;

use log::{info, warn};

pub use parse::{AddressSpace, Ecam, Fadt, FadtFlags, GenericAddress, Rsdp, SdtHeader, SleepType};

/// Largest table the firmware will map. The biggest table a VMM produces is
/// the DSDT, a few tens of KiB; anything claiming more is corrupt.
pub const MAX_TABLE_LEN: usize = 4 << 20;

/// Why a table could not be used. Carries the offending value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// Fewer bytes than the structure needs.
    Truncated {
        needed: usize,
        available: usize,
    },
    BadSignature([u8; 8]),
    BadChecksum {
        signature: [u8; 4],
        sum: u8,
    },
    /// A length field smaller than the header or above [`MAX_TABLE_LEN`].
    BadLength(u32),
    /// Physical memory at this address could not be read.
    Unreadable(u64),
    /// No RSDP was handed over and none was found in the BIOS areas.
    NoRsdp,
    /// `\_S5_` was not found or was not a package of small integers.
    NoS5,
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcpiError::Truncated { needed, available } => {
                write!(f, "truncated: need {needed} bytes, have {available}")
            }
            AcpiError::BadSignature(sig) => write!(f, "bad signature {:?}", Ascii(sig)),
            AcpiError::BadChecksum { signature, sum } => {
                write!(f, "{} checksum sums to {sum:#04x}", Ascii(signature))
            }
            AcpiError::BadLength(len) => write!(f, "implausible table length {len:#x}"),
            AcpiError::Unreadable(addr) => write!(f, "cannot read memory at {addr:#x}"),
            AcpiError::NoRsdp => f.write_str("no RSDP found"),
            AcpiError::NoS5 => f.write_str("no usable \\_S5_ package in the DSDT"),
        }
    }
}

/// Prints a signature as text, with non-printable bytes as `.`.
pub struct Ascii<'a>(pub &'a [u8]);

impl fmt::Display for Ascii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Ascii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Pure decoders for the ACPI structures. No memory access beyond the slices
/// they are given.
pub mod parse {
    #![forbid(unsafe_code)]

    use super::{AcpiError, MAX_TABLE_LEN};

    pub(crate) fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
        ))
    }

    pub(crate) fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    }

    pub(crate) fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(
            bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
        ))
    }

    /// Byte sum modulo 256; every ACPI checksum makes this zero.
    pub fn checksum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
    }

    fn need(bytes: &[u8], needed: usize) -> Result<(), AcpiError> {
        if bytes.len() < needed {
            return Err(AcpiError::Truncated {
                needed,
                available: bytes.len(),
            });
        }
        Ok(())
    }

    pub const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
    /// ACPI 1.0 RSDP size, covered by the first checksum (ACPI 6.5 §5.2.5.3).
    pub const RSDP_V1_LEN: usize = 20;
    /// ACPI 2.0+ RSDP size, covered by the extended checksum.
    pub const RSDP_V2_LEN: usize = 36;

    /// Root System Description Pointer (ACPI 6.5 §5.2.5.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Rsdp {
        pub revision: u8,
        pub oem_id: [u8; 6],
        pub rsdt_address: u32,
        /// Zero for a revision 0 (ACPI 1.0) RSDP.
        pub xsdt_address: u64,
    }

    impl Rsdp {
        /// Decodes an RSDP, verifying the 20-byte checksum and, for revision
        /// 2 and later, the extended checksum over the whole structure.
        pub fn parse(bytes: &[u8]) -> Result<Rsdp, AcpiError> {
            need(bytes, RSDP_V1_LEN)?;
            let mut signature = [0; 8];
            signature.copy_from_slice(&bytes[..8]);
            if &signature != RSDP_SIGNATURE {
                return Err(AcpiError::BadSignature(signature));
            }
            let sum = checksum(&bytes[..RSDP_V1_LEN]);
            if sum != 0 {
                return Err(AcpiError::BadChecksum {
                    signature: *b"RSDP",
                    sum,
                });
            }
            let mut oem_id = [0; 6];
            oem_id.copy_from_slice(&bytes[9..15]);
            let revision = bytes[15];
            let rsdt_address = le_u32(bytes, 16).unwrap_or(0);
            let mut xsdt_address = 0;
            if revision >= 2 {
                need(bytes, RSDP_V2_LEN)?;
                let length = le_u32(bytes, 20).unwrap_or(0);
                if (length as usize) < RSDP_V2_LEN || length as usize > bytes.len() {
                    return Err(AcpiError::BadLength(length));
                }
                let sum = checksum(&bytes[..length as usize]);
                if sum != 0 {
                    return Err(AcpiError::BadChecksum {
                        signature: *b"XSDP",
                        sum,
                    });
                }
                xsdt_address = le_u64(bytes, 24).unwrap_or(0);
            }
            Ok(Rsdp {
                revision,
                oem_id,
                rsdt_address,
                xsdt_address,
            })
        }

        /// Physical address and entry width of the root table; the XSDT is
        /// preferred when present (ACPI 6.5 §5.2.5.3: "An ACPI-compatible
        /// OS must use the XSDT if present").
        pub fn root_table(&self) -> Option<(u64, usize)> {
            if self.xsdt_address != 0 {
                Some((self.xsdt_address, 8))
            } else if self.rsdt_address != 0 {
                Some((u64::from(self.rsdt_address), 4))
            } else {
                None
            }
        }
    }

    /// Finds a valid RSDP in `area` (which starts at physical `base`),
    /// looking on 16-byte boundaries as ACPI 6.5 §5.2.5.1 requires. Returns
    /// the RSDP's physical address.
    pub fn scan_for_rsdp(area: &[u8], base: u64) -> Option<(u64, Rsdp)> {
        (0..area.len()).step_by(16).find_map(|offset| {
            let candidate = &area[offset..];
            if !candidate.starts_with(RSDP_SIGNATURE) {
                return None;
            }
            let rsdp = Rsdp::parse(candidate).ok()?;
            Some((base.checked_add(offset as u64)?, rsdp))
        })
    }

    /// Length of the common table header (ACPI 6.5 §5.2.6).
    pub const SDT_HEADER_LEN: usize = 36;

    /// System Description Table header (ACPI 6.5 §5.2.6, Table 5.4).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SdtHeader {
        pub signature: [u8; 4],
        pub length: u32,
        pub revision: u8,
        pub oem_id: [u8; 6],
        pub oem_table_id: [u8; 8],
    }

    impl SdtHeader {
        /// Decodes a header and checks its length is plausible; does not
        /// check the checksum (the body may not be mapped yet).
        pub fn parse(bytes: &[u8]) -> Result<SdtHeader, AcpiError> {
            need(bytes, SDT_HEADER_LEN)?;
            let mut signature = [0; 4];
            signature.copy_from_slice(&bytes[..4]);
            let length = le_u32(bytes, 4).unwrap_or(0);
            if (length as usize) < SDT_HEADER_LEN || length as usize > MAX_TABLE_LEN {
                return Err(AcpiError::BadLength(length));
            }
            let mut oem_id = [0; 6];
            oem_id.copy_from_slice(&bytes[10..16]);
            let mut oem_table_id = [0; 8];
            oem_table_id.copy_from_slice(&bytes[16..24]);
            Ok(SdtHeader {
                signature,
                length,
                revision: bytes[8],
                oem_id,
                oem_table_id,
            })
        }
    }

    /// Validates a whole table: header, `bytes.len() >= length` and a zero
    /// checksum over `length` bytes. Returns the table cut to its length.
    pub fn validate_table(bytes: &[u8]) -> Result<(SdtHeader, &[u8]), AcpiError> {
        let header = SdtHeader::parse(bytes)?;
        let table = bytes
            .get(..header.length as usize)
            .ok_or(AcpiError::Truncated {
                needed: header.length as usize,
                available: bytes.len(),
            })?;
        let sum = checksum(table);
        if sum != 0 {
            return Err(AcpiError::BadChecksum {
                signature: header.signature,
                sum,
            });
        }
        Ok((header, table))
    }

    /// The table addresses in an XSDT (`entry_size` 8) or RSDT (4): the body
    /// after the header is an array of physical addresses (ACPI 6.5 §5.2.7,
    /// §5.2.8). A trailing partial entry is ignored.
    pub fn root_entries(table: &[u8], entry_size: usize) -> impl Iterator<Item = u64> + '_ {
        let body = table.get(SDT_HEADER_LEN..).unwrap_or(&[]);
        body.chunks_exact(entry_size).map(move |entry| {
            if entry_size == 8 {
                le_u64(entry, 0).unwrap_or(0)
            } else {
                u64::from(le_u32(entry, 0).unwrap_or(0))
            }
        })
    }

    /// GAS address space ID (ACPI 6.5 §5.2.3.2, Table 5.2); an open set.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct AddressSpace(pub u8);

    impl AddressSpace {
        pub const SYSTEM_MEMORY: AddressSpace = AddressSpace(0);
        pub const SYSTEM_IO: AddressSpace = AddressSpace(1);
        pub const PCI_CONFIG: AddressSpace = AddressSpace(2);
    }

    /// Generic Address Structure (ACPI 6.5 §5.2.3.2).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct GenericAddress {
        pub space: AddressSpace,
        pub bit_width: u8,
        pub bit_offset: u8,
        /// 0 undefined, 1 byte, 2 word, 3 dword, 4 qword.
        pub access_size: u8,
        pub address: u64,
    }

    impl GenericAddress {
        pub const LEN: usize = 12;

        /// Decodes a GAS at `at`; `None` if it is absent (outside a short
        /// table, or address zero, which ACPI uses for "not supported").
        pub fn parse(bytes: &[u8], at: usize) -> Option<GenericAddress> {
            let raw = bytes.get(at..at.checked_add(Self::LEN)?)?;
            let address = le_u64(raw, 4)?;
            (address != 0).then_some(GenericAddress {
                space: AddressSpace(raw[0]),
                bit_width: raw[1],
                bit_offset: raw[2],
                access_size: raw[3],
                address,
            })
        }

        /// A legacy FADT block: an I/O port of `len` bytes.
        pub fn io_port(port: u32, len: u8) -> Option<GenericAddress> {
            (port != 0).then_some(GenericAddress {
                space: AddressSpace::SYSTEM_IO,
                bit_width: len.saturating_mul(8),
                bit_offset: 0,
                access_size: 0,
                address: u64::from(port),
            })
        }

        /// Access width in bytes: from the access size when given, else from
        /// the register width, else `default`.
        pub fn access_bytes(&self, default: u8) -> u8 {
            match self.access_size {
                1..=4 => 1 << (self.access_size - 1),
                _ => match self.bit_width {
                    8 => 1,
                    16 => 2,
                    32 => 4,
                    64 => 8,
                    _ => default,
                },
            }
        }
    }

    bitflags::bitflags! {
        /// FADT Flags (ACPI 6.5 §5.2.9, Table 5.10); only the ones the
        /// firmware acts on are named, the rest are retained.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct FadtFlags: u32 {
            /// The PM timer is 32 bits wide rather than 24.
            const TMR_VAL_EXT = 1 << 8;
            /// RESET_REG describes a working reset register.
            const RESET_REG_SUP = 1 << 10;
            /// No fixed hardware: PM1/PM timer are absent, sleep goes
            /// through SLEEP_CONTROL_REG.
            const HW_REDUCED_ACPI = 1 << 20;
            const _ = !0;
        }
    }

    /// Fields of the Fixed ACPI Description Table the firmware uses
    /// (ACPI 6.5 §5.2.9, Table 5.9). Fields beyond a short (older) table's
    /// length read as absent.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Fadt {
        pub flags: FadtFlags,
        /// X_DSDT when nonzero, else DSDT.
        pub dsdt: u64,
        pub pm1a_cnt: Option<GenericAddress>,
        pub pm1b_cnt: Option<GenericAddress>,
        pub pm_timer: Option<GenericAddress>,
        /// CMOS RAM index of the century, zero if unsupported.
        pub century: u8,
        pub reset_reg: Option<GenericAddress>,
        pub reset_value: u8,
        pub sleep_control: Option<GenericAddress>,
        pub sleep_status: Option<GenericAddress>,
    }

    // Byte offsets in Table 5.9.
    const FADT_DSDT: usize = 40;
    const FADT_PM1A_CNT_BLK: usize = 64;
    const FADT_PM1B_CNT_BLK: usize = 68;
    const FADT_PM_TMR_BLK: usize = 76;
    const FADT_PM1_CNT_LEN: usize = 89;
    const FADT_PM_TMR_LEN: usize = 91;
    const FADT_CENTURY: usize = 108;
    const FADT_FLAGS: usize = 112;
    const FADT_RESET_REG: usize = 116;
    const FADT_RESET_VALUE: usize = 128;
    const FADT_X_DSDT: usize = 140;
    const FADT_X_PM1A_CNT_BLK: usize = 172;
    const FADT_X_PM1B_CNT_BLK: usize = 184;
    const FADT_X_PM_TMR_BLK: usize = 208;
    const FADT_SLEEP_CONTROL_REG: usize = 244;
    const FADT_SLEEP_STATUS_REG: usize = 256;

    impl Fadt {
        /// Decodes a validated FADT (signature "FACP").
        pub fn parse(table: &[u8]) -> Result<Fadt, AcpiError> {
            // The ACPI 1.0 FADT ends after the flags; nothing older exists.
            need(table, FADT_FLAGS + 4)?;
            let byte = |at: usize| table.get(at).copied().unwrap_or(0);
            let legacy_port = |at: usize| le_u32(table, at).unwrap_or(0);
            // ACPI 6.5 §5.2.9: the X_ field, when nonzero, supersedes the
            // 32-bit one.
            let block = |x_at: usize, legacy_at: usize, len: u8| {
                GenericAddress::parse(table, x_at)
                    .or_else(|| GenericAddress::io_port(legacy_port(legacy_at), len))
            };
            let pm1_len = byte(FADT_PM1_CNT_LEN).max(2);
            let x_dsdt = le_u64(table, FADT_X_DSDT).unwrap_or(0);
            Ok(Fadt {
                flags: FadtFlags::from_bits_retain(le_u32(table, FADT_FLAGS).unwrap_or(0)),
                dsdt: if x_dsdt != 0 {
                    x_dsdt
                } else {
                    u64::from(legacy_port(FADT_DSDT))
                },
                pm1a_cnt: block(FADT_X_PM1A_CNT_BLK, FADT_PM1A_CNT_BLK, pm1_len),
                pm1b_cnt: block(FADT_X_PM1B_CNT_BLK, FADT_PM1B_CNT_BLK, pm1_len),
                pm_timer: block(
                    FADT_X_PM_TMR_BLK,
                    FADT_PM_TMR_BLK,
                    byte(FADT_PM_TMR_LEN).max(4),
                ),
                century: byte(FADT_CENTURY),
                reset_reg: GenericAddress::parse(table, FADT_RESET_REG),
                reset_value: byte(FADT_RESET_VALUE),
                sleep_control: GenericAddress::parse(table, FADT_SLEEP_CONTROL_REG),
                sleep_status: GenericAddress::parse(table, FADT_SLEEP_STATUS_REG),
            })
        }
    }

    /// One ECAM window from the MCFG (PCI Firmware Specification 3.3
    /// §4.1.2, Table 4-3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Ecam {
        pub base: u64,
        pub segment: u16,
        pub start_bus: u8,
        pub end_bus: u8,
    }

    impl Ecam {
        /// Bytes the window spans: 1 MiB per bus (PCIe Base 6.0 §7.2.2).
        pub fn size(&self) -> u64 {
            (u64::from(self.end_bus.saturating_sub(self.start_bus)) + 1) << 20
        }
    }

    /// The MCFG's allocation entries: after the header and 8 reserved bytes,
    /// 16-byte entries of base, segment, start and end bus.
    pub fn mcfg_entries(table: &[u8]) -> impl Iterator<Item = Ecam> + '_ {
        let body = table.get(SDT_HEADER_LEN + 8..).unwrap_or(&[]);
        body.chunks_exact(16).filter_map(|entry| {
            Some(Ecam {
                base: le_u64(entry, 0)?,
                segment: le_u16(entry, 8)?,
                start_bus: entry[10],
                end_bus: entry[11],
            })
        })
    }

    /// SLP_TYPx values for one sleep state (ACPI 6.5 §7.4.2).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SleepType {
        pub a: u8,
        pub b: u8,
    }

    // AML opcodes (ACPI 6.5 §20.2).
    const NAME_OP: u8 = 0x08;
    const PACKAGE_OP: u8 = 0x12;
    const ZERO_OP: u8 = 0x00;
    const ONE_OP: u8 = 0x01;
    const BYTE_PREFIX: u8 = 0x0A;
    const WORD_PREFIX: u8 = 0x0B;
    const DWORD_PREFIX: u8 = 0x0C;
    const ROOT_CHAR: u8 = b'\\';
    const PARENT_PREFIX_CHAR: u8 = b'^';

    /// Finds `Name(_S5_, Package(){a, b, ...})` in AML and returns its sleep
    /// types, without an interpreter: the object is a static package in
    /// every VMM's DSDT.
    pub fn find_s5(aml: &[u8]) -> Result<SleepType, AcpiError> {
        let mut from = 0;
        while let Some(pos) = aml
            .get(from..)
            .and_then(|rest| rest.windows(4).position(|w| w == b"_S5_"))
        {
            let at = from + pos;
            if preceded_by_name_op(aml, at)
                && let Some(sleep) = s5_package(aml.get(at + 4..).unwrap_or(&[]))
            {
                return Ok(sleep);
            }
            from = at + 1;
        }
        Err(AcpiError::NoS5)
    }

    /// Checks for NameOp before the name segment, allowing a root prefix or
    /// parent prefixes in between (NameString, ACPI 6.5 §20.2.2).
    fn preceded_by_name_op(aml: &[u8], at: usize) -> bool {
        let mut i = at;
        while i > 0 && aml[i - 1] == PARENT_PREFIX_CHAR {
            i -= 1;
        }
        if i == at && i > 0 && aml[i - 1] == ROOT_CHAR {
            i -= 1;
        }
        i > 0 && aml[i - 1] == NAME_OP
    }

    /// Decodes `PackageOp PkgLength NumElements elements...`.
    fn s5_package(aml: &[u8]) -> Option<SleepType> {
        if *aml.first()? != PACKAGE_OP {
            return None;
        }
        let (pkg_len, len_bytes) = pkg_length(aml.get(1..)?)?;
        // PkgLength counts itself and the contents, not the opcode.
        let package = aml.get(1..1usize.checked_add(pkg_len)?)?;
        let mut rest = package.get(len_bytes..)?;
        let count = *rest.first()?;
        rest = &rest[1..];
        let (first, used) = integer(rest)?;
        if count >= 2 {
            let (second, _) = integer(rest.get(used..)?)?;
            Some(SleepType {
                a: slp_typ(first)?,
                b: slp_typ(second)?,
            })
        } else if count == 1 {
            // A single integer carries SLP_TYPa in bits 0-7 and SLP_TYPb in
            // bits 8-15, the form older DSDTs and Cloud Hypervisor use.
            Some(SleepType {
                a: slp_typ(first & 0xff)?,
                b: slp_typ((first >> 8) & 0xff)?,
            })
        } else {
            None
        }
    }

    /// SLP_TYP is a 3-bit field of PM1_CNT (ACPI 6.5 §4.8.3.2.1).
    fn slp_typ(value: u64) -> Option<u8> {
        (value <= 7).then_some(value as u8)
    }

    /// Decodes PkgLength (ACPI 6.5 §20.2.4): returns the length and the
    /// number of bytes the encoding took.
    pub fn pkg_length(aml: &[u8]) -> Option<(usize, usize)> {
        let lead = *aml.first()?;
        let follow = usize::from(lead >> 6);
        if follow == 0 {
            return Some((usize::from(lead & 0x3f), 1));
        }
        let mut len = usize::from(lead & 0x0f);
        for i in 0..follow {
            len |= usize::from(*aml.get(1 + i)?) << (4 + 8 * i);
        }
        Some((len, 1 + follow))
    }

    /// Decodes a ComputationalData integer: returns value and bytes used.
    fn integer(aml: &[u8]) -> Option<(u64, usize)> {
        match *aml.first()? {
            ZERO_OP => Some((0, 1)),
            ONE_OP => Some((1, 1)),
            BYTE_PREFIX => Some((u64::from(*aml.get(1)?), 2)),
            WORD_PREFIX => Some((u64::from(le_u16(aml, 1)?), 3)),
            DWORD_PREFIX => Some((u64::from(le_u32(aml, 1)?), 5)),
            _ => None,
        }
    }
}

/// Reads physical memory. The firmware's implementation is [`IdentityMapped`];
/// tests supply synthetic memory.
pub trait PhysicalMemory {
    /// `len` bytes at physical `address`, or `None` if they cannot be read.
    fn bytes(&self, address: u64, len: usize) -> Option<&[u8]>;
}

/// RAM below 4 GiB and firmware tables are identity mapped from boot (see
/// `paging`), so a physical address is a valid pointer.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentityMapped;

/// Highest physical address the reader will touch: ACPI tables, the BIOS
/// areas and SMBIOS all live in the low 4 GiB that `paging` maps at boot,
/// except an XSDT-referenced table placed higher, which the page tables also
/// cover as RAM.
const PHYSICAL_LIMIT: u64 = 1 << 46;

impl PhysicalMemory for IdentityMapped {
    fn bytes(&self, address: u64, len: usize) -> Option<&[u8]> {
        let end = address.checked_add(len as u64)?;
        if address == 0 || len > MAX_TABLE_LEN || end > PHYSICAL_LIMIT {
            return None;
        }
        // SAFETY: physical memory is identity mapped and readable for the
        // firmware's lifetime (paging maps RAM and the low 4 GiB at boot);
        // the range is non-null, does not wrap, is bounded by MAX_TABLE_LEN
        // and PHYSICAL_LIMIT, and callers size it from a table's own length.
        // Firmware tables and the BIOS areas are read-only once handed over,
        // so nothing mutates them while the slice lives; `u8` has no
        // alignment or validity requirement.
        Some(unsafe { core::slice::from_raw_parts(address as *const u8, len) })
    }
}

/// Maps a whole table: reads the header for the length, then the table, and
/// verifies its checksum.
pub fn read_table<M: PhysicalMemory>(
    memory: &M,
    address: u64,
) -> Result<(SdtHeader, &[u8]), AcpiError> {
    let header_bytes = memory
        .bytes(address, parse::SDT_HEADER_LEN)
        .ok_or(AcpiError::Unreadable(address))?;
    let header = SdtHeader::parse(header_bytes)?;
    let table = memory
        .bytes(address, header.length as usize)
        .ok_or(AcpiError::Unreadable(address))?;
    parse::validate_table(table)
}

/// The physical areas ACPI 6.5 §5.2.5.1 says to search for the RSDP: the
/// first KiB of the EBDA (its segment is the word at 0x40E) and the BIOS
/// read-only area 0xE0000-0xFFFFF.
pub fn search_rsdp<M: PhysicalMemory>(memory: &M) -> Option<(u64, Rsdp)> {
    const EBDA_SEGMENT_POINTER: u64 = 0x40e;
    const BIOS_AREA: u64 = 0xe0000;
    const BIOS_AREA_LEN: usize = 0x20000;
    let ebda = memory
        .bytes(EBDA_SEGMENT_POINTER, 2)
        .and_then(|b| parse::le_u16(b, 0))
        .map(|segment| u64::from(segment) << 4)
        .filter(|&base| base != 0);
    let in_ebda = ebda.and_then(|base| {
        let area = memory.bytes(base, 1024)?;
        parse::scan_for_rsdp(area, base)
    });
    in_ebda.or_else(|| {
        let area = memory.bytes(BIOS_AREA, BIOS_AREA_LEN)?;
        parse::scan_for_rsdp(area, BIOS_AREA)
    })
}

/// A validated table found through the root table.
#[derive(Clone, Copy, Debug)]
pub struct TableRef<'m> {
    pub address: u64,
    pub header: SdtHeader,
    pub bytes: &'m [u8],
}

/// The tables listed in the XSDT (or RSDT). Tables that cannot be read or
/// fail their checksum are logged and skipped.
pub fn tables<'m, M: PhysicalMemory>(
    memory: &'m M,
    root: &'m [u8],
    entry_size: usize,
) -> impl Iterator<Item = TableRef<'m>> + 'm {
    parse::root_entries(root, entry_size).filter_map(move |address| {
        match read_table(memory, address) {
            Ok((header, bytes)) => Some(TableRef {
                address,
                header,
                bytes,
            }),
            Err(err) => {
                warn!("acpi: skipping table at {address:#x}: {err}");
                None
            }
        }
    })
}

/// The reset register from the FADT, present only when RESET_REG_SUP is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetRegister {
    pub register: GenericAddress,
    pub value: u8,
}

/// The PM timer: 3.579545 MHz, 24 or 32 bits (ACPI 6.5 §4.8.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmTimer {
    pub register: GenericAddress,
    pub bits32: bool,
}

impl PmTimer {
    pub const FREQUENCY_HZ: u64 = 3_579_545;
}

/// Everything the platform layer needs from ACPI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiInfo {
    /// Physical address of the RSDP, for the EFI configuration table.
    pub rsdp_address: u64,
    pub rsdp: Rsdp,
    pub fadt: Option<Fadt>,
    pub reset: Option<ResetRegister>,
    pub pm1a_cnt: Option<GenericAddress>,
    pub pm1b_cnt: Option<GenericAddress>,
    pub pm_timer: Option<PmTimer>,
    pub hw_reduced: bool,
    pub sleep_control: Option<GenericAddress>,
    pub sleep_status: Option<GenericAddress>,
    pub dsdt: Option<u64>,
    pub s5_sleep_type: Option<SleepType>,
    /// CMOS index of the century byte, if the FADT names one.
    pub century: Option<u8>,
    /// The first MCFG window (segment 0 on every VMM).
    pub mcfg: Option<Ecam>,
}

impl AcpiInfo {
    /// Discovers ACPI from the RSDP the VMM handed over (PVH start info) or,
    /// failing that, by searching the BIOS areas.
    pub fn discover(rsdp_address: Option<u64>) -> Result<AcpiInfo, AcpiError> {
        Self::discover_in(&IdentityMapped, rsdp_address)
    }

    /// [`discover`](Self::discover) over any physical memory reader.
    pub fn discover_in<M: PhysicalMemory>(
        memory: &M,
        rsdp_address: Option<u64>,
    ) -> Result<AcpiInfo, AcpiError> {
        let given = rsdp_address.filter(|&a| a != 0).and_then(|address| {
            let bytes = memory
                .bytes(address, parse::RSDP_V2_LEN)
                .or_else(|| memory.bytes(address, parse::RSDP_V1_LEN))?;
            match Rsdp::parse(bytes) {
                Ok(rsdp) => Some((address, rsdp)),
                Err(err) => {
                    warn!("acpi: RSDP at {address:#x} from the VMM is invalid: {err}");
                    None
                }
            }
        });
        let (rsdp_address, rsdp) = given
            .or_else(|| search_rsdp(memory))
            .ok_or(AcpiError::NoRsdp)?;
        let (root_address, entry_size) = rsdp.root_table().ok_or(AcpiError::NoRsdp)?;
        let (root_header, root) = read_table(memory, root_address)?;
        info!(
            "acpi: RSDP rev {} at {rsdp_address:#x}, {} at {root_address:#x}, OEM {}",
            rsdp.revision,
            Ascii(&root_header.signature),
            Ascii(&rsdp.oem_id)
        );

        let mut info = AcpiInfo {
            rsdp_address,
            rsdp,
            fadt: None,
            reset: None,
            pm1a_cnt: None,
            pm1b_cnt: None,
            pm_timer: None,
            hw_reduced: false,
            sleep_control: None,
            sleep_status: None,
            dsdt: None,
            s5_sleep_type: None,
            century: None,
            mcfg: None,
        };
        for table in tables(memory, root, entry_size) {
            match &table.header.signature {
                b"FACP" if info.fadt.is_none() => match Fadt::parse(table.bytes) {
                    Ok(fadt) => info.apply_fadt(fadt),
                    Err(err) => warn!("acpi: FADT at {:#x}: {err}", table.address),
                },
                b"MCFG" if info.mcfg.is_none() => {
                    info.mcfg = parse::mcfg_entries(table.bytes).next();
                }
                _ => {}
            }
        }
        if let Some(dsdt) = info.dsdt {
            info.s5_sleep_type = match read_table(memory, dsdt) {
                Ok((_, aml)) => parse::find_s5(aml.get(parse::SDT_HEADER_LEN..).unwrap_or(&[]))
                    .map_err(|err| warn!("acpi: DSDT at {dsdt:#x}: {err}"))
                    .ok(),
                Err(err) => {
                    warn!("acpi: DSDT at {dsdt:#x}: {err}");
                    None
                }
            };
        }
        Ok(info)
    }

    fn apply_fadt(&mut self, fadt: Fadt) {
        self.fadt = Some(fadt);
        self.hw_reduced = fadt.flags.contains(FadtFlags::HW_REDUCED_ACPI);
        self.reset = fadt
            .reset_reg
            .filter(|_| fadt.flags.contains(FadtFlags::RESET_REG_SUP))
            .map(|register| ResetRegister {
                register,
                value: fadt.reset_value,
            });
        // HW-reduced platforms have no fixed PM1/PM timer blocks (ACPI 6.5
        // §4.1); ignore stale values there.
        if !self.hw_reduced {
            self.pm1a_cnt = fadt.pm1a_cnt;
            self.pm1b_cnt = fadt.pm1b_cnt;
            self.pm_timer = fadt.pm_timer.map(|register| PmTimer {
                register,
                bits32: fadt.flags.contains(FadtFlags::TMR_VAL_EXT),
            });
        }
        self.sleep_control = fadt.sleep_control;
        self.sleep_status = fadt.sleep_status;
        self.dsdt = (fadt.dsdt != 0).then_some(fadt.dsdt);
        self.century = (fadt.century != 0).then_some(fadt.century);
    }

    /// Finds a table by signature, e.g. `b"APIC"`.
    pub fn find_table(&self, signature: &[u8; 4]) -> Option<TableRef<'static>> {
        find_table_in(&IdentityMapped, &self.rsdp, signature)
    }
}

/// Finds the first valid table with `signature` below the RSDP's root table.
pub fn find_table_in<'m, M: PhysicalMemory>(
    memory: &'m M,
    rsdp: &Rsdp,
    signature: &[u8; 4],
) -> Option<TableRef<'m>> {
    let (root_address, entry_size) = rsdp.root_table()?;
    let (_, root) = read_table(memory, root_address).ok()?;
    tables(memory, root, entry_size).find(|t| &t.header.signature == signature)
}

/// Register access through a GAS, for the reset, PM1 and sleep registers.
impl GenericAddress {
    /// Writes `value` at the register's access width. Returns false for an
    /// address space the firmware cannot drive.
    ///
    /// # Safety
    /// The GAS must name a register of this platform (the FADT's reset, PM1
    /// or sleep registers) whose write has the effect the caller wants; an
    /// arbitrary GAS would write arbitrary memory or ports.
    pub unsafe fn write(&self, value: u64) -> bool {
        use crate::mmio::Mmio;
        use x86_64::instructions::port::Port;
        let width = self.access_bytes(1);
        match self.space {
            AddressSpace::SYSTEM_IO => {
                let Ok(port) = u16::try_from(self.address) else {
                    return false;
                };
                // SAFETY: the caller's contract: `port` is a platform register.
                unsafe {
                    match width {
                        1 => Port::<u8>::new(port).write(value as u8),
                        2 => Port::<u16>::new(port).write(value as u16),
                        _ => Port::<u32>::new(port).write(value as u32),
                    }
                }
                true
            }
            AddressSpace::SYSTEM_MEMORY => {
                // SAFETY: the caller's contract: a register of the platform;
                // the window covers exactly one access of the given width.
                let mmio = unsafe { Mmio::new(self.address, u64::from(width)) };
                match width {
                    1 => mmio.write::<u8>(0, value as u8),
                    2 => mmio.write::<u16>(0, value as u16),
                    4 => mmio.write::<u32>(0, value as u32),
                    _ => mmio.write::<u64>(0, value),
                }
                true
            }
            AddressSpace::PCI_CONFIG => {
                // ACPI 6.5 §5.2.3.2: bus 0, device in bits 32-47, function
                // in 16-31, register offset in 0-15. Type 1 config access
                // through 0xCF8/0xCFC (PCI Local Bus 3.0 §3.2.2.3.2).
                let device = (self.address >> 32) & 0x1f;
                let function = (self.address >> 16) & 0x7;
                let offset = self.address & 0xfc;
                let select = 0x8000_0000 | (device << 11) | (function << 8) | offset;
                let data = 0xcfc + (self.address & 3) as u16;
                // SAFETY: the caller's contract: a configuration register of
                // a platform device; 0xCF8/0xCFC are the type 1 access ports.
                unsafe {
                    Port::<u32>::new(0xcf8).write(select as u32);
                    match width {
                        1 => Port::<u8>::new(data).write(value as u8),
                        2 => Port::<u16>::new(data).write(value as u16),
                        _ => Port::<u32>::new(data).write(value as u32),
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Reads the register at its access width; `None` for an unsupported
    /// address space.
    ///
    /// # Safety
    /// As for [`GenericAddress::write`]: the GAS must name a register of this
    /// platform (reads of device registers can have side effects, and an
    /// arbitrary memory address need not be mapped).
    pub unsafe fn read(&self) -> Option<u64> {
        use crate::mmio::Mmio;
        use x86_64::instructions::port::Port;
        let width = self.access_bytes(1);
        match self.space {
            AddressSpace::SYSTEM_IO => {
                let port = u16::try_from(self.address).ok()?;
                // SAFETY: the caller's contract: `port` is a platform register.
                Some(unsafe {
                    match width {
                        1 => u64::from(Port::<u8>::new(port).read()),
                        2 => u64::from(Port::<u16>::new(port).read()),
                        _ => u64::from(Port::<u32>::new(port).read()),
                    }
                })
            }
            AddressSpace::SYSTEM_MEMORY => {
                // SAFETY: the caller's contract, as for `write`.
                let mmio = unsafe { Mmio::new(self.address, u64::from(width)) };
                Some(match width {
                    1 => u64::from(mmio.read::<u8>(0)),
                    2 => u64::from(mmio.read::<u16>(0)),
                    4 => u64::from(mmio.read::<u32>(0)),
                    _ => mmio.read::<u64>(0),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::parse::*;
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Sparse synthetic physical memory.
    #[derive(Default)]
    pub(crate) struct FakeMemory {
        regions: Vec<(u64, Vec<u8>)>,
    }

    impl FakeMemory {
        pub(crate) fn put(&mut self, address: u64, bytes: Vec<u8>) {
            self.regions.push((address, bytes));
        }
    }

    impl PhysicalMemory for FakeMemory {
        fn bytes(&self, address: u64, len: usize) -> Option<&[u8]> {
            self.regions.iter().find_map(|(base, data)| {
                let start = usize::try_from(address.checked_sub(*base)?).ok()?;
                data.get(start..start.checked_add(len)?)
            })
        }
    }

    fn fix_checksum(bytes: &mut [u8], at: usize, over: usize) {
        bytes[at] = 0;
        bytes[at] = 0u8.wrapping_sub(checksum(&bytes[..over]));
    }

    fn rsdp_v2(xsdt: u64, rsdt: u32) -> Vec<u8> {
        let mut b = vec![0u8; 36];
        b[..8].copy_from_slice(b"RSD PTR ");
        b[9..15].copy_from_slice(b"VMFWOE");
        b[15] = 2;
        b[16..20].copy_from_slice(&rsdt.to_le_bytes());
        b[20..24].copy_from_slice(&36u32.to_le_bytes());
        b[24..32].copy_from_slice(&xsdt.to_le_bytes());
        fix_checksum(&mut b, 8, 20);
        fix_checksum(&mut b, 32, 36);
        b
    }

    fn rsdp_v1(rsdt: u32) -> Vec<u8> {
        let mut b = vec![0u8; 20];
        b[..8].copy_from_slice(b"RSD PTR ");
        b[16..20].copy_from_slice(&rsdt.to_le_bytes());
        fix_checksum(&mut b, 8, 20);
        b
    }

    fn table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 36];
        b[..4].copy_from_slice(signature);
        b[4..8].copy_from_slice(&((36 + body.len()) as u32).to_le_bytes());
        b[8] = 1;
        b[10..16].copy_from_slice(b"VMFWOE");
        b.extend_from_slice(body);
        let len = b.len();
        fix_checksum(&mut b, 9, len);
        b
    }

    fn xsdt(entries: &[u64]) -> Vec<u8> {
        let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        table(b"XSDT", &body)
    }

    fn rsdt(entries: &[u32]) -> Vec<u8> {
        let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        table(b"RSDT", &body)
    }

    fn gas(space: u8, width: u8, access: u8, address: u64) -> [u8; 12] {
        let mut g = [0u8; 12];
        g[0] = space;
        g[1] = width;
        g[3] = access;
        g[4..].copy_from_slice(&address.to_le_bytes());
        g
    }

    /// A QEMU q35-like FADT (revision 3, 244 bytes): legacy PM blocks, a
    /// reset register at 0xCF9 and century 0x32.
    fn q35_fadt(dsdt: u32) -> Vec<u8> {
        let mut body = vec![0u8; 244 - 36];
        let at = |offset: usize| offset - 36;
        body[at(40)..at(44)].copy_from_slice(&dsdt.to_le_bytes());
        body[at(64)..at(68)].copy_from_slice(&0x604u32.to_le_bytes());
        body[at(76)..at(80)].copy_from_slice(&0x608u32.to_le_bytes());
        body[at(89)] = 2;
        body[at(91)] = 4;
        body[at(108)] = 0x32;
        let flags: u32 = (1 << 8) | (1 << 10);
        body[at(112)..at(116)].copy_from_slice(&flags.to_le_bytes());
        body[at(116)..at(128)].copy_from_slice(&gas(1, 8, 1, 0xcf9));
        body[at(128)] = 0x06;
        table(b"FACP", &body)
    }

    /// A Cloud Hypervisor-like FADT (276 bytes): HW-reduced, reset and sleep
    /// through port 0x3C0, X_DSDT only.
    fn hw_reduced_fadt(x_dsdt: u64) -> Vec<u8> {
        let mut body = vec![0u8; 276 - 36];
        let at = |offset: usize| offset - 36;
        let flags: u32 = (1 << 10) | (1 << 20);
        body[at(112)..at(116)].copy_from_slice(&flags.to_le_bytes());
        body[at(116)..at(128)].copy_from_slice(&gas(1, 8, 1, 0x3c0));
        body[at(128)] = 1;
        body[at(140)..at(148)].copy_from_slice(&x_dsdt.to_le_bytes());
        // Stale PM1a block that HW-reduced mode must ignore.
        body[at(64)..at(68)].copy_from_slice(&0x1234u32.to_le_bytes());
        body[at(244)..at(256)].copy_from_slice(&gas(1, 8, 1, 0x3c0));
        body[at(256)..at(268)].copy_from_slice(&gas(1, 8, 1, 0x3c0));
        table(b"FACP", &body)
    }

    fn mcfg(base: u64, segment: u16, start: u8, end: u8) -> Vec<u8> {
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&base.to_le_bytes());
        body.extend_from_slice(&segment.to_le_bytes());
        body.extend_from_slice(&[start, end, 0, 0, 0, 0]);
        table(b"MCFG", &body)
    }

    /// Some unrelated AML, then `Name(_S5_, Package(4){...})`, the way QEMU
    /// emits it.
    fn dsdt_with(aml: &[u8]) -> Vec<u8> {
        let mut body = vec![0x10, 0x05, b'\\', b'_', b'S', b'B', b'_'];
        body.extend_from_slice(aml);
        table(b"DSDT", &body)
    }

    const QEMU_S5: &[u8] = &[
        0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn rsdp_v1_and_v2_checksums() {
        let v2 = rsdp_v2(0x1000, 0x2000);
        let rsdp = Rsdp::parse(&v2).unwrap();
        assert_eq!(rsdp.revision, 2);
        assert_eq!(rsdp.root_table(), Some((0x1000, 8)));
        assert_eq!(&rsdp.oem_id, b"VMFWOE");

        let v1 = rsdp_v1(0x2000);
        let rsdp = Rsdp::parse(&v1).unwrap();
        assert_eq!(rsdp.root_table(), Some((0x2000, 4)));

        let mut bad = v2.clone();
        bad[30] ^= 1; // only the extended checksum covers byte 30
        assert!(matches!(
            Rsdp::parse(&bad),
            Err(AcpiError::BadChecksum { signature, .. }) if &signature == b"XSDP"
        ));
        let mut bad = v1.clone();
        bad[17] ^= 1;
        assert!(matches!(
            Rsdp::parse(&bad),
            Err(AcpiError::BadChecksum { .. })
        ));
        assert!(matches!(
            Rsdp::parse(b"RSD PTX 0123456789abcdef"),
            Err(AcpiError::BadSignature(_))
        ));
        assert!(matches!(
            Rsdp::parse(&v2[..10]),
            Err(AcpiError::Truncated { .. })
        ));
    }

    #[test]
    fn rsdp_without_xsdt_falls_back_to_rsdt() {
        let rsdp = Rsdp::parse(&rsdp_v2(0, 0x3000)).unwrap();
        assert_eq!(rsdp.root_table(), Some((0x3000, 4)));
    }

    #[test]
    fn scan_finds_rsdp_only_on_16_byte_boundaries() {
        let mut area = vec![0u8; 256];
        area[8..28].copy_from_slice(&rsdp_v1(0x2000)); // misaligned: ignored
        assert_eq!(scan_for_rsdp(&area, 0xe0000), None);
        area[0x40..0x54].copy_from_slice(&rsdp_v1(0x2000));
        let (address, _) = scan_for_rsdp(&area, 0xe0000).unwrap();
        assert_eq!(address, 0xe0040);
    }

    #[test]
    fn table_validation() {
        let good = table(b"TEST", &[1, 2, 3]);
        let (header, bytes) = validate_table(&good).unwrap();
        assert_eq!(&header.signature, b"TEST");
        assert_eq!(bytes.len(), 39);

        let mut bad = good.clone();
        bad[37] ^= 0xff;
        assert!(matches!(
            validate_table(&bad),
            Err(AcpiError::BadChecksum { .. })
        ));
        let mut short = good.clone();
        short[4..8].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(
            validate_table(&short).unwrap_err(),
            AcpiError::BadLength(10)
        );
        let mut long = good.clone();
        long[4..8].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            validate_table(&long),
            Err(AcpiError::Truncated { needed: 100, .. })
        ));
    }

    #[test]
    fn fadt_legacy_blocks() {
        let fadt = Fadt::parse(&q35_fadt(0x5000)).unwrap();
        assert_eq!(fadt.dsdt, 0x5000);
        assert_eq!(
            fadt.pm1a_cnt,
            Some(GenericAddress {
                space: AddressSpace::SYSTEM_IO,
                bit_width: 16,
                bit_offset: 0,
                access_size: 0,
                address: 0x604
            })
        );
        assert_eq!(fadt.pm1b_cnt, None);
        assert_eq!(fadt.pm_timer.unwrap().address, 0x608);
        assert_eq!(fadt.pm_timer.unwrap().access_bytes(1), 4);
        assert_eq!(fadt.century, 0x32);
        assert_eq!(fadt.reset_reg.unwrap().address, 0xcf9);
        assert_eq!(fadt.reset_value, 6);
        assert!(
            fadt.flags
                .contains(FadtFlags::RESET_REG_SUP | FadtFlags::TMR_VAL_EXT)
        );
        assert_eq!(fadt.sleep_control, None);
    }

    #[test]
    fn fadt_x_fields_supersede_legacy_ones() {
        let mut body = vec![0u8; 244 - 36];
        body[40 - 36..44 - 36].copy_from_slice(&0x5000u32.to_le_bytes());
        body[64 - 36..68 - 36].copy_from_slice(&0x604u32.to_le_bytes());
        body[140 - 36..148 - 36].copy_from_slice(&0x1_0000_5000u64.to_le_bytes());
        body[172 - 36..184 - 36].copy_from_slice(&gas(0, 16, 2, 0xfed0_0000));
        let fadt = Fadt::parse(&table(b"FACP", &body)).unwrap();
        assert_eq!(fadt.dsdt, 0x1_0000_5000);
        let pm1a = fadt.pm1a_cnt.unwrap();
        assert_eq!(pm1a.space, AddressSpace::SYSTEM_MEMORY);
        assert_eq!(pm1a.address, 0xfed0_0000);
        assert_eq!(pm1a.access_bytes(1), 2);
    }

    #[test]
    fn acpi_1_fadt_is_accepted_and_too_short_rejected() {
        let fadt = Fadt::parse(&table(b"FACP", &[0u8; 116 - 36])).unwrap();
        assert_eq!(fadt.reset_reg, None);
        assert_eq!(fadt.sleep_control, None);
        assert!(matches!(
            Fadt::parse(&table(b"FACP", &[0u8; 40])),
            Err(AcpiError::Truncated { .. })
        ));
    }

    #[test]
    fn mcfg_entry() {
        let m = mcfg(0xb000_0000, 0, 0, 0xff);
        let ecam: Vec<Ecam> = mcfg_entries(&m).collect();
        assert_eq!(
            ecam,
            vec![Ecam {
                base: 0xb000_0000,
                segment: 0,
                start_bus: 0,
                end_bus: 0xff
            }]
        );
        assert_eq!(ecam[0].size(), 256 << 20);
    }

    #[test]
    fn pkg_length_encodings() {
        assert_eq!(pkg_length(&[0x06]), Some((6, 1)));
        // 2-byte form: low nibble 0x3, next byte 0x12 -> 0x123.
        assert_eq!(pkg_length(&[0x43, 0x12]), Some((0x123, 2)));
        assert_eq!(pkg_length(&[0x81, 0x34, 0x12]), Some((0x12341, 3)));
        assert_eq!(pkg_length(&[0x43]), None);
    }

    #[test]
    fn s5_qemu_zero_ops() {
        assert_eq!(find_s5(QEMU_S5), Ok(SleepType { a: 0, b: 0 }));
    }

    #[test]
    fn s5_byte_prefix_values_with_root_prefix() {
        // Name(\_S5_, Package(2){0x05, 0x07})
        let aml = [
            0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x05, 0x0a, 0x07,
        ];
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 5, b: 7 }));
    }

    #[test]
    fn s5_mixed_one_op_and_parent_prefix() {
        // Name(^^_S5_, Package(4){One, 0x02, Zero, Zero})
        let aml = [
            0x08, b'^', b'^', b'_', b'S', b'5', b'_', 0x12, 0x07, 0x04, 0x01, 0x0a, 0x02, 0x00,
            0x00,
        ];
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 1, b: 2 }));
    }

    #[test]
    fn s5_single_element_cloud_hypervisor_form() {
        // Name(_S5_, Package(1){0x05})
        let aml = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x0a, 0x05];
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 5, b: 0 }));
        // A word packing SLP_TYPa and SLP_TYPb.
        let aml = [
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x05, 0x01, 0x0b, 0x07, 0x03,
        ];
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 7, b: 3 }));
    }

    #[test]
    fn s5_two_byte_pkg_length() {
        let mut aml = vec![0x08, b'_', b'S', b'5', b'_', 0x12, 0x40, 0x01, 0x02];
        aml.extend_from_slice(&[0x0a, 0x03, 0x0a, 0x04]);
        // Pad the package to its declared length of 0x40 + 1 bytes.
        aml.resize(6 + 0x40, 0);
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 3, b: 4 }));
    }

    #[test]
    fn s5_skips_lookalikes_and_rejects_garbage() {
        // "_S5_" inside a string first (no NameOp), then the real object.
        let mut aml = vec![0x0d, b'_', b'S', b'5', b'_', 0x00];
        aml.extend_from_slice(QEMU_S5);
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 0, b: 0 }));

        // A method named _S5_ is not a package.
        let method = [0x14, 0x08, b'_', b'S', b'5', b'_', 0x00, 0xa4, 0x00];
        assert_eq!(find_s5(&method), Err(AcpiError::NoS5));
        // Sleep type out of the 3-bit range.
        let aml = [
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x09, 0x00, 0x00,
        ];
        assert_eq!(find_s5(&aml), Err(AcpiError::NoS5));
        // Truncated package.
        assert_eq!(find_s5(&QEMU_S5[..9]), Err(AcpiError::NoS5));
        assert_eq!(find_s5(b""), Err(AcpiError::NoS5));
    }

    #[test]
    fn discover_q35_like_tables() {
        let mut memory = FakeMemory::default();
        memory.put(0xf5000, rsdp_v2(0x7000, 0x7100));
        // The RSDT differs from the XSDT to prove the XSDT is used.
        memory.put(0x7100, rsdt(&[]));
        memory.put(0x7000, xsdt(&[0x8000, 0x8800, 0x9000, 0x9800]));
        memory.put(0x8000, q35_fadt(0xa000));
        let mut corrupt = table(b"APIC", &[0; 8]);
        corrupt[40] = 1;
        memory.put(0x8800, corrupt);
        memory.put(0x9000, mcfg(0xb000_0000, 0, 0, 0xff));
        memory.put(0x9800, table(b"HPET", &[0; 20]));
        memory.put(0xa000, dsdt_with(QEMU_S5));

        let info = AcpiInfo::discover_in(&memory, Some(0xf5000)).unwrap();
        assert_eq!(info.rsdp_address, 0xf5000);
        assert!(!info.hw_reduced);
        assert_eq!(info.reset.unwrap().register.address, 0xcf9);
        assert_eq!(info.reset.unwrap().value, 6);
        assert_eq!(info.pm1a_cnt.unwrap().address, 0x604);
        assert_eq!(info.pm_timer.unwrap().register.address, 0x608);
        assert!(info.pm_timer.unwrap().bits32);
        assert_eq!(info.century, Some(0x32));
        assert_eq!(info.dsdt, Some(0xa000));
        assert_eq!(info.s5_sleep_type, Some(SleepType { a: 0, b: 0 }));
        assert_eq!(info.mcfg.unwrap().base, 0xb000_0000);

        // The corrupt APIC is skipped; later tables are still found.
        let rsdp = info.rsdp;
        assert!(find_table_in(&memory, &rsdp, b"APIC").is_none());
        assert_eq!(
            find_table_in(&memory, &rsdp, b"HPET").unwrap().address,
            0x9800
        );
    }

    #[test]
    fn discover_hw_reduced_through_bios_area_search() {
        let mut memory = FakeMemory::default();
        // No EBDA pointer (word at 0x40E is zero), RSDP in the BIOS area.
        memory.put(0x400, vec![0; 0x20]);
        let mut bios = vec![0u8; 0x20000];
        bios[0x1_0000..0x1_0014].copy_from_slice(&rsdp_v1(0x7000));
        memory.put(0xe0000, bios);
        memory.put(0x7000, rsdt(&[0x8000]));
        memory.put(0x8000, hw_reduced_fadt(0xa000));
        let s5 = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x0a, 0x05];
        memory.put(0xa000, dsdt_with(&s5));

        let info = AcpiInfo::discover_in(&memory, None).unwrap();
        assert_eq!(info.rsdp_address, 0xf0000);
        assert!(info.hw_reduced);
        assert_eq!(info.pm1a_cnt, None);
        assert_eq!(info.pm_timer, None);
        assert_eq!(info.sleep_control.unwrap().address, 0x3c0);
        assert_eq!(info.reset.unwrap().value, 1);
        assert_eq!(info.s5_sleep_type, Some(SleepType { a: 5, b: 0 }));
        assert_eq!(info.century, None);
        assert_eq!(info.mcfg, None);
    }

    #[test]
    fn discover_prefers_ebda_and_rejects_bad_given_rsdp() {
        let mut memory = FakeMemory::default();
        let mut bda = vec![0u8; 0x20];
        bda[0x0e..0x10].copy_from_slice(&0x9fc0u16.to_le_bytes());
        memory.put(0x400, bda);
        let mut ebda = vec![0u8; 1024];
        ebda[0x20..0x34].copy_from_slice(&rsdp_v1(0x7000));
        memory.put(0x9fc00, ebda);
        let mut bad = rsdp_v1(0x7000);
        bad[16] ^= 1;
        memory.put(0x1000, bad);
        memory.put(0x7000, rsdt(&[]));
        let info = AcpiInfo::discover_in(&memory, Some(0x1000)).unwrap();
        assert_eq!(info.rsdp_address, 0x9fc20);
        assert_eq!(info.fadt, None);
        assert_eq!(info.reset, None);
    }

    #[test]
    fn discover_without_rsdp_fails() {
        let memory = FakeMemory::default();
        assert_eq!(AcpiInfo::discover_in(&memory, None), Err(AcpiError::NoRsdp));
    }

    #[test]
    fn reset_register_requires_flag() {
        let mut body = q35_fadt(0xa000)[36..].to_vec();
        body[112 - 36..116 - 36].copy_from_slice(&0u32.to_le_bytes());
        let mut memory = FakeMemory::default();
        memory.put(0x1000, rsdp_v1(0x7000));
        memory.put(0x7000, rsdt(&[0x8000]));
        memory.put(0x8000, table(b"FACP", &body));
        let info = AcpiInfo::discover_in(&memory, Some(0x1000)).unwrap();
        assert_eq!(info.reset, None);
        // No DSDT mapped: \_S5 is unknown rather than an error.
        assert_eq!(info.s5_sleep_type, None);
    }

    #[test]
    fn error_display() {
        let e = AcpiError::BadChecksum {
            signature: *b"FACP",
            sum: 3,
        };
        assert_eq!(alloc::format!("{e}"), "FACP checksum sums to 0x03");
    }
}
