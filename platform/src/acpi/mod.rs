//! ACPI table discovery (ACPI 6.5 §5.2): RSDP, XSDT/RSDT, FADT, the DSDT's
//! `\_S5` object, MCFG and the TPM2 table.
//!
//! The table formats are decoded in [`parse`], which works on byte slices
//! only. Physical memory is read through the [`PhysicalMemory`] trait so the
//! whole discovery walk runs on the host against synthetic memory in tests;
//! the firmware uses [`IdentityMapped`], the one place that turns a physical
//! address into a slice. `register` drives the registers the FADT names.

use core::fmt;

use log::{info, warn};

pub mod parse;
mod register;
#[cfg(test)]
pub(crate) mod test_tables;
#[cfg(test)]
mod tests;

pub use parse::{
    AddressSpace, Ecam, Fadt, FadtFlags, GenericAddress, Rsdp, SdtHeader, SleepType, Tpm2Table,
};

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
        .and_then(|b| crate::le::u16_at(b, 0))
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

/// Without an MCFG, the ECAM window of the PCIe host bridge from its
/// `_CBA` in the DSDT (QEMU microvm `pcie=on`): segment 0, buses 0-255 (a
/// window that ends earlier reads as absent devices past its end, all ones).
fn ecam_from_cba(aml: &[u8]) -> Option<Ecam> {
    let base = parse::find_cba(aml)?;
    info!("acpi: no MCFG table; PCIe ECAM at {base:#x} from the host bridge's _CBA");
    Some(Ecam {
        base,
        segment: 0,
        start_bus: 0,
        end_bus: 255,
    })
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
    /// The first MCFG window (segment 0 on every VMM), or without an MCFG
    /// the window the DSDT's `_CBA` names.
    pub mcfg: Option<Ecam>,
    /// The TPM2 table (TCG ACPI Specification §8.3), found in the same
    /// walk so a machine without a TPM pays no second one.
    pub tpm2: Option<Tpm2Table>,
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
            tpm2: None,
        };
        for table in tables(memory, root, entry_size) {
            log::debug!(
                "acpi: {} at {:#x}",
                Ascii(&table.header.signature),
                table.address
            );
            match &table.header.signature {
                b"FACP" if info.fadt.is_none() => match Fadt::parse(table.bytes) {
                    Ok(fadt) => info.apply_fadt(fadt),
                    Err(err) => warn!("acpi: FADT at {:#x}: {err}", table.address),
                },
                b"MCFG" if info.mcfg.is_none() => {
                    info.mcfg = parse::mcfg_entries(table.bytes).next();
                }
                b"TPM2" if info.tpm2.is_none() => match Tpm2Table::parse(table.bytes) {
                    Ok(tpm2) => info.tpm2 = Some(tpm2),
                    Err(err) => warn!("acpi: TPM2 table at {:#x}: {err}", table.address),
                },
                _ => {}
            }
        }
        if let Some(dsdt) = info.dsdt {
            match read_table(memory, dsdt) {
                Ok((_, aml)) => {
                    let aml = aml.get(parse::SDT_HEADER_LEN..).unwrap_or(&[]);
                    info.s5_sleep_type = parse::find_s5(aml)
                        .map_err(|err| warn!("acpi: DSDT at {dsdt:#x}: {err}"))
                        .ok();
                    if info.mcfg.is_none() {
                        info.mcfg = ecam_from_cba(aml);
                    }
                }
                Err(err) => warn!("acpi: DSDT at {dsdt:#x}: {err}"),
            }
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
