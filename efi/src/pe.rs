//! PE32+ image parsing and loading for LoadImage (UEFI 2.10 §2.1.1; Microsoft
//! PE/COFF specification): headers are validated, sections copied to their
//! RVAs, and base relocations applied for the actual load address.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt;

use bitflags::bitflags;

pub const DOS_SIGNATURE: u16 = 0x5A4D; // "MZ"
pub const PE_SIGNATURE: u32 = 0x0000_4550; // "PE\0\0"
pub const MACHINE_X86_64: u16 = 0x8664;
pub const OPTIONAL_MAGIC_PE32_PLUS: u16 = 0x20B;
/// The PE/COFF spec limits an image to 96 sections.
pub const MAX_SECTIONS: u16 = 96;
/// Refuse images whose in-memory size is absurd for a boot-time binary.
pub const MAX_IMAGE_SIZE: u32 = 512 << 20;

const DOS_LFANEW_OFFSET: usize = 0x3C;
const COFF_HEADER_SIZE: usize = 20;
/// Fixed part of the PE32+ optional header, before the data directories.
const OPTIONAL_FIXED_SIZE: usize = 112;
const SECTION_HEADER_SIZE: usize = 40;
const IMAGE_BASE_OFFSET: usize = 24; // within the optional header
/// COFF Characteristics: the image carries no relocations and must load at ImageBase.
pub const IMAGE_FILE_RELOCS_STRIPPED: u16 = 0x0001;

/// Optional-header Subsystem values EFI accepts (UEFI 2.10 §2.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subsystem(pub u16);

impl Subsystem {
    pub const EFI_APPLICATION: Subsystem = Subsystem(10);
    pub const EFI_BOOT_SERVICE_DRIVER: Subsystem = Subsystem(11);
    pub const EFI_RUNTIME_DRIVER: Subsystem = Subsystem(12);
}

bitflags! {
    /// Optional-header DllCharacteristics.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DllCharacteristics: u16 {
        const HIGH_ENTROPY_VA = 0x0020;
        const DYNAMIC_BASE = 0x0040;
        const FORCE_INTEGRITY = 0x0080;
        /// The image tolerates non-executable data pages.
        const NX_COMPAT = 0x0100;
        const _ = !0;
    }
}

bitflags! {
    /// Section-header Characteristics (the ones that matter for loading).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SectionFlags: u32 {
        const CNT_CODE = 0x0000_0020;
        const CNT_INITIALIZED_DATA = 0x0000_0040;
        const CNT_UNINITIALIZED_DATA = 0x0000_0080;
        const MEM_DISCARDABLE = 0x0200_0000;
        const MEM_EXECUTE = 0x2000_0000;
        const MEM_READ = 0x4000_0000;
        const MEM_WRITE = 0x8000_0000;
        const _ = !0;
    }
}

/// Data-directory indices (PE/COFF "Optional Header Data Directories").
pub const DIRECTORY_RESOURCE: usize = 2;
pub const DIRECTORY_SECURITY: usize = 4;
pub const DIRECTORY_BASE_RELOCATION: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DataDirectory {
    /// An RVA, except for the security directory where it is a file offset.
    pub address: u32,
    pub size: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: [u8; 8],
    /// RVA of the section in the loaded image.
    pub rva: u32,
    /// Size in memory (VirtualSize, or SizeOfRawData when VirtualSize is 0).
    pub size: u32,
    pub raw_offset: u32,
    /// Bytes copied from the file; the rest of `size` is zero-filled.
    pub raw_size: u32,
    pub characteristics: SectionFlags,
}

/// A validated PE32+ image description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeInfo {
    pub machine: u16,
    pub characteristics: u16,
    pub subsystem: Subsystem,
    pub image_base: u64,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    pub section_alignment: u32,
    pub file_alignment: u32,
    /// RVA of the entry point.
    pub entry_point: u32,
    pub dll_characteristics: DllCharacteristics,
    pub data_directories: Vec<DataDirectory>,
    pub sections: Vec<Section>,
    /// File offset of the optional header (to patch ImageBase after loading).
    optional_header_offset: usize,
}

impl PeInfo {
    pub fn nx_compat(&self) -> bool {
        self.dll_characteristics
            .contains(DllCharacteristics::NX_COMPAT)
    }

    pub fn data_directory(&self, index: usize) -> Option<DataDirectory> {
        self.data_directories
            .get(index)
            .copied()
            .filter(|d| d.size != 0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeError {
    /// The file is shorter than the structure at `needed` bytes.
    Truncated {
        needed: usize,
        len: usize,
    },
    BadDosSignature(u16),
    BadPeSignature(u32),
    UnsupportedMachine(u16),
    BadOptionalHeaderSize(u16),
    BadOptionalMagic(u16),
    UnsupportedSubsystem(u16),
    BadAlignment {
        section: u32,
        file: u32,
    },
    BadSizeOfImage(u32),
    BadSizeOfHeaders(u32),
    TooManySections(u16),
    /// Section `index` reaches past SizeOfImage or into the headers.
    SectionOutOfImage {
        index: usize,
        rva: u32,
        size: u32,
    },
    /// Section `index`'s raw data lies past the end of the file.
    SectionOutOfFile {
        index: usize,
        offset: u32,
        size: u32,
    },
    /// Section `index` overlaps or precedes the previous one.
    SectionOverlap {
        index: usize,
        rva: u32,
    },
    BadEntryPoint(u32),
    BadDataDirectory {
        index: usize,
        address: u32,
        size: u32,
    },
    /// `load` was given a destination that is not SizeOfImage bytes.
    BadDestinationSize {
        expected: u32,
        actual: usize,
    },
    /// The image must be relocated but has no relocations.
    RelocationsStripped,
    BadRelocationBlock {
        rva: u32,
        size: u32,
    },
    UnsupportedRelocationType {
        rva: u32,
        kind: u8,
    },
    RelocationOutOfImage {
        rva: u64,
    },
}

impl fmt::Display for PeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PeError::*;
        match self {
            Truncated { needed, len } => {
                write!(f, "file of {len} bytes truncated (needs {needed})")
            }
            BadDosSignature(sig) => write!(f, "bad DOS signature {sig:#06x}"),
            BadPeSignature(sig) => write!(f, "bad PE signature {sig:#010x}"),
            UnsupportedMachine(m) => write!(f, "unsupported machine {m:#06x}"),
            BadOptionalHeaderSize(s) => write!(f, "bad optional header size {s}"),
            BadOptionalMagic(m) => write!(f, "optional header magic {m:#06x} is not PE32+"),
            UnsupportedSubsystem(s) => write!(f, "subsystem {s} is not an EFI subsystem"),
            BadAlignment { section, file } => {
                write!(f, "bad alignment: section {section:#x}, file {file:#x}")
            }
            BadSizeOfImage(s) => write!(f, "bad SizeOfImage {s:#x}"),
            BadSizeOfHeaders(s) => write!(f, "bad SizeOfHeaders {s:#x}"),
            TooManySections(n) => write!(f, "too many sections ({n})"),
            SectionOutOfImage { index, rva, size } => {
                write!(f, "section {index} ({rva:#x}+{size:#x}) outside the image")
            }
            SectionOutOfFile {
                index,
                offset,
                size,
            } => {
                write!(
                    f,
                    "section {index} data ({offset:#x}+{size:#x}) past end of file"
                )
            }
            SectionOverlap { index, rva } => {
                write!(
                    f,
                    "section {index} at {rva:#x} overlaps the previous section"
                )
            }
            BadEntryPoint(rva) => write!(f, "entry point {rva:#x} outside the image"),
            BadDataDirectory {
                index,
                address,
                size,
            } => {
                write!(
                    f,
                    "data directory {index} ({address:#x}+{size:#x}) outside the image"
                )
            }
            BadDestinationSize { expected, actual } => {
                write!(f, "destination is {actual} bytes, image needs {expected}")
            }
            RelocationsStripped => write!(f, "image must be relocated but has no relocations"),
            BadRelocationBlock { rva, size } => {
                write!(f, "bad relocation block at {rva:#x} of size {size}")
            }
            UnsupportedRelocationType { rva, kind } => {
                write!(f, "unsupported relocation type {kind} at {rva:#x}")
            }
            RelocationOutOfImage { rva } => write!(f, "relocation at {rva:#x} outside the image"),
        }
    }
}

fn bytes_at(data: &[u8], offset: usize, len: usize) -> Result<&[u8], PeError> {
    offset
        .checked_add(len)
        .and_then(|end| data.get(offset..end))
        .ok_or_else(|| truncated(data, offset, len))
}

fn truncated(data: &[u8], offset: usize, len: usize) -> PeError {
    PeError::Truncated {
        needed: offset.saturating_add(len),
        len: data.len(),
    }
}

fn u16_at(data: &[u8], offset: usize) -> Result<u16, PeError> {
    platform::le::u16_at(data, offset).ok_or_else(|| truncated(data, offset, 2))
}

fn u32_at(data: &[u8], offset: usize) -> Result<u32, PeError> {
    platform::le::u32_at(data, offset).ok_or_else(|| truncated(data, offset, 4))
}

fn u64_at(data: &[u8], offset: usize) -> Result<u64, PeError> {
    platform::le::u64_at(data, offset).ok_or_else(|| truncated(data, offset, 8))
}

/// `rva + size` as an exclusive end, if it stays within `limit`.
fn end_within(rva: u32, size: u32, limit: u32) -> Option<u32> {
    rva.checked_add(size).filter(|&end| end <= limit)
}

/// One section-table row as the file stores it (PE Format, "Section
/// Table"), not checked against the rest of the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionHeader {
    pub name: [u8; 8],
    pub virtual_size: u32,
    pub rva: u32,
    /// SizeOfRawData.
    pub raw_size: u32,
    /// PointerToRawData.
    pub raw_offset: u32,
    pub characteristics: SectionFlags,
}

impl SectionHeader {
    /// The name without its NUL padding (at most 8 bytes; longer names
    /// of object files do not occur in images).
    pub fn name(&self) -> &[u8] {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(8);
        &self.name[..len]
    }
}

/// Decodes the 40-byte section-table row at `offset` of `file`.
fn section_header_at(file: &[u8], offset: usize) -> Result<SectionHeader, PeError> {
    let row = bytes_at(file, offset, SECTION_HEADER_SIZE)?;
    let mut name = [0u8; 8];
    name.copy_from_slice(&row[..8]);
    Ok(SectionHeader {
        name,
        virtual_size: u32_at(row, 8)?,
        rva: u32_at(row, 12)?,
        raw_size: u32_at(row, 16)?,
        raw_offset: u32_at(row, 20)?,
        characteristics: SectionFlags::from_bits_retain(u32_at(row, 36)?),
    })
}

/// Offset of the COFF file header, after checking the DOS `MZ` signature
/// and the `PE\0\0` signature that `e_lfanew` points to.
pub fn coff_header_offset(file: &[u8]) -> Result<usize, PeError> {
    let dos_signature = u16_at(file, 0)?;
    if dos_signature != DOS_SIGNATURE {
        return Err(PeError::BadDosSignature(dos_signature));
    }
    let pe_offset = u32_at(file, DOS_LFANEW_OFFSET)? as usize;
    let pe_signature = u32_at(file, pe_offset)?;
    if pe_signature != PE_SIGNATURE {
        return Err(PeError::BadPeSignature(pe_signature));
    }
    pe_offset
        .checked_add(4)
        .ok_or(PeError::BadPeSignature(pe_signature))
}

/// The section table of the PE image whose file starts with `header`.
/// Reads only the signatures, the COFF header and the table, so a prefix
/// of the file reaching the end of the table is enough (a UKI's metadata
/// sections are found without reading the kernel); nothing is validated
/// against the image, as `parse` does for images that are to run.
pub fn section_headers(header: &[u8]) -> Result<Vec<SectionHeader>, PeError> {
    let coff = coff_header_offset(header)?;
    let count = usize::from(u16_at(header, coff + 2)?);
    let optional_size = usize::from(u16_at(header, coff + 16)?);
    let table = coff + COFF_HEADER_SIZE + optional_size;
    // Every row must lie inside `header`, so `count` is bounded by its
    // length before anything is allocated.
    let table_end = count
        .checked_mul(SECTION_HEADER_SIZE)
        .and_then(|len| table.checked_add(len))
        .ok_or(PeError::Truncated {
            needed: usize::MAX,
            len: header.len(),
        })?;
    bytes_at(header, table, table_end - table)?;
    (0..count)
        .map(|index| section_header_at(header, table + index * SECTION_HEADER_SIZE))
        .collect()
}

/// Parses and validates the headers of a PE32+ EFI image.
pub fn parse(file: &[u8]) -> Result<PeInfo, PeError> {
    parse_headers(file, file.len())
}

/// Parses and validates the headers of a PE32+ EFI image of `file_len`
/// bytes whose first bytes are `file` (at least up to the end of the
/// section table): what a loader reading the file in pieces checks before
/// it reads the sections ([`load_from`]).
pub fn parse_headers(file: &[u8], file_len: usize) -> Result<PeInfo, PeError> {
    let coff = coff_header_offset(file)?;
    let machine = u16_at(file, coff)?;
    if machine != MACHINE_X86_64 {
        return Err(PeError::UnsupportedMachine(machine));
    }
    let section_count = u16_at(file, coff + 2)?;
    let optional_size = u16_at(file, coff + 16)?;
    let characteristics = u16_at(file, coff + 18)?;
    if section_count > MAX_SECTIONS {
        return Err(PeError::TooManySections(section_count));
    }

    let opt = coff + COFF_HEADER_SIZE;
    let optional = bytes_at(file, opt, usize::from(optional_size))?;
    if optional.len() < OPTIONAL_FIXED_SIZE {
        return Err(PeError::BadOptionalHeaderSize(optional_size));
    }
    let magic = u16_at(optional, 0)?;
    if magic != OPTIONAL_MAGIC_PE32_PLUS {
        return Err(PeError::BadOptionalMagic(magic));
    }
    let entry_point = u32_at(optional, 16)?;
    let image_base = u64_at(optional, IMAGE_BASE_OFFSET)?;
    let section_alignment = u32_at(optional, 32)?;
    let file_alignment = u32_at(optional, 36)?;
    let size_of_image = u32_at(optional, 56)?;
    let size_of_headers = u32_at(optional, 60)?;
    let subsystem = Subsystem(u16_at(optional, 68)?);
    let dll_characteristics = DllCharacteristics::from_bits_retain(u16_at(optional, 70)?);
    let directory_count = u32_at(optional, 108)? as usize;

    if !(10..=12).contains(&subsystem.0) {
        return Err(PeError::UnsupportedSubsystem(subsystem.0));
    }
    if !section_alignment.is_power_of_two() || !file_alignment.is_power_of_two() {
        return Err(PeError::BadAlignment {
            section: section_alignment,
            file: file_alignment,
        });
    }
    if size_of_image == 0 || size_of_image > MAX_IMAGE_SIZE {
        return Err(PeError::BadSizeOfImage(size_of_image));
    }
    let section_table = opt + usize::from(optional_size);
    let section_table_end = section_table + usize::from(section_count) * SECTION_HEADER_SIZE;
    if (size_of_headers as usize) < section_table_end
        || size_of_headers > size_of_image
        || size_of_headers as usize > file_len
    {
        return Err(PeError::BadSizeOfHeaders(size_of_headers));
    }
    if entry_point >= size_of_image {
        return Err(PeError::BadEntryPoint(entry_point));
    }

    let directories_bytes = directory_count
        .checked_mul(8)
        .filter(|&n| OPTIONAL_FIXED_SIZE + n <= optional.len())
        .ok_or(PeError::BadOptionalHeaderSize(optional_size))?;
    let mut data_directories = Vec::with_capacity(directory_count);
    for index in 0..directories_bytes / 8 {
        let at = OPTIONAL_FIXED_SIZE + index * 8;
        let directory = DataDirectory {
            address: u32_at(optional, at)?,
            size: u32_at(optional, at + 4)?,
        };
        // The security directory is a file offset and is not loaded.
        let limit = if index == DIRECTORY_SECURITY {
            u32::MAX
        } else {
            size_of_image
        };
        if directory.size != 0 && end_within(directory.address, directory.size, limit).is_none() {
            return Err(PeError::BadDataDirectory {
                index,
                address: directory.address,
                size: directory.size,
            });
        }
        data_directories.push(directory);
    }

    let mut sections = Vec::with_capacity(usize::from(section_count));
    let mut previous_end = size_of_headers;
    for index in 0..usize::from(section_count) {
        let SectionHeader {
            name,
            virtual_size,
            rva,
            raw_size: raw_size_in_file,
            raw_offset,
            characteristics,
        } = section_header_at(file, section_table + index * SECTION_HEADER_SIZE)?;
        let size = if virtual_size == 0 {
            raw_size_in_file
        } else {
            virtual_size
        };
        // Raw data beyond VirtualSize is file-alignment padding; uninitialised
        // sections have none.
        let raw_size = if characteristics.contains(SectionFlags::CNT_UNINITIALIZED_DATA) {
            0
        } else {
            raw_size_in_file.min(size)
        };
        if rva < previous_end && size != 0 {
            return Err(if rva < size_of_headers {
                PeError::SectionOutOfImage { index, rva, size }
            } else {
                PeError::SectionOverlap { index, rva }
            });
        }
        let end = end_within(rva, size, size_of_image).ok_or(PeError::SectionOutOfImage {
            index,
            rva,
            size,
        })?;
        if raw_size != 0
            && end_within(
                raw_offset,
                raw_size,
                u32::try_from(file_len).unwrap_or(u32::MAX),
            )
            .is_none()
        {
            return Err(PeError::SectionOutOfFile {
                index,
                offset: raw_offset,
                size: raw_size,
            });
        }
        previous_end = previous_end.max(end);
        sections.push(Section {
            name,
            rva,
            size,
            raw_offset,
            raw_size,
            characteristics,
        });
    }

    Ok(PeInfo {
        machine,
        characteristics,
        subsystem,
        image_base,
        size_of_image,
        size_of_headers,
        section_alignment,
        file_alignment,
        entry_point,
        dll_characteristics,
        data_directories,
        sections,
        optional_header_offset: opt,
    })
}

/// Lays the image out in `dest` (exactly SizeOfImage bytes) for execution at
/// `load_address`: headers and sections copied, gaps zeroed, base relocations
/// applied, and ImageBase in the loaded header set to `load_address`.
pub fn load(file: &[u8], info: &PeInfo, dest: &mut [u8], load_address: u64) -> Result<(), PeError> {
    let read = |offset: usize, out: &mut [u8]| {
        out.copy_from_slice(bytes_at(file, offset, out.len())?);
        Ok(())
    };
    load_from(read, info, dest, load_address)
}

/// [`load`] with the file's bytes from `read(offset, out)`, which fills
/// `out` from the file at `offset`: only the headers and each section's raw
/// data are read, straight into `dest`, so a file need never be in memory
/// whole (data appended after the last section is not read at all).
pub fn load_from<E: From<PeError>>(
    mut read: impl FnMut(usize, &mut [u8]) -> Result<(), E>,
    info: &PeInfo,
    dest: &mut [u8],
    load_address: u64,
) -> Result<(), E> {
    if dest.len() != info.size_of_image as usize {
        return Err(PeError::BadDestinationSize {
            expected: info.size_of_image,
            actual: dest.len(),
        }
        .into());
    }
    let headers = info.size_of_headers as usize;
    let actual = dest.len();
    read(
        0,
        dest.get_mut(..headers).ok_or(PeError::BadDestinationSize {
            expected: info.size_of_headers,
            actual,
        })?,
    )?;
    for (index, section) in info.sections.iter().enumerate() {
        let start = section.rva as usize;
        let target = start
            .checked_add(section.raw_size as usize)
            .and_then(|end| dest.get_mut(start..end))
            .ok_or(PeError::SectionOutOfImage {
                index,
                rva: section.rva,
                size: section.size,
            })?;
        read(section.raw_offset as usize, target)?;
    }
    zero_gaps(info, dest);
    let delta = load_address.wrapping_sub(info.image_base);
    if delta != 0 {
        relocate(info, dest, delta)?;
    }
    let image_base_field = info.optional_header_offset + IMAGE_BASE_OFFSET;
    if let Some(field) = dest.get_mut(image_base_field..image_base_field + 8) {
        field.copy_from_slice(&load_address.to_le_bytes());
    }
    Ok(())
}

/// Page rights of one piece of an image mapped W^X.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageRights {
    ReadOnly,
    ReadWrite,
    ReadExecute,
}

/// How to map a loaded NX_COMPAT image W^X: `(rva range, rights)` pieces
/// covering SizeOfImage (rounded up to `page`): headers read-only, each
/// section by its Characteristics, gaps read-write. None when the image did
/// not opt in (DllCharacteristics NX_COMPAT, PE/COFF "DLL Characteristics")
/// or cannot be split at page boundaries: a section not page aligned or both
/// writable and executable. Such images keep read-write-execute pages.
pub fn wx_layout(info: &PeInfo, page: u32) -> Option<Vec<(core::ops::Range<u32>, PageRights)>> {
    if !info.nx_compat() || page == 0 || !info.section_alignment.is_multiple_of(page) {
        return None;
    }
    let round = |value: u32| value.checked_next_multiple_of(page);
    let image_end = round(info.size_of_image)?;
    let mut pieces = Vec::with_capacity(2 * info.sections.len() + 2);
    let mut push = |range: core::ops::Range<u32>, rights| {
        if !range.is_empty() {
            pieces.push((range, rights));
        }
    };
    let first_section = info.sections.first().map_or(image_end, |s| s.rva);
    let mut covered = round(info.size_of_headers)?.min(first_section);
    push(0..covered, PageRights::ReadOnly);
    for section in &info.sections {
        let flags = section.characteristics;
        let writable = flags.contains(SectionFlags::MEM_WRITE);
        let executable = flags.contains(SectionFlags::MEM_EXECUTE);
        if !section.rva.is_multiple_of(page) || section.rva < covered || (writable && executable) {
            return None;
        }
        let end = round(section.rva.checked_add(section.size)?)?.min(image_end);
        push(covered..section.rva, PageRights::ReadWrite);
        let rights = match (writable, executable) {
            (_, true) => PageRights::ReadExecute,
            (true, false) => PageRights::ReadWrite,
            (false, false) => PageRights::ReadOnly,
        };
        push(section.rva..end, rights);
        covered = end.max(section.rva);
    }
    push(covered..image_end, PageRights::ReadWrite);
    Some(pieces)
}

/// Zeroes the parts of a laid-out image no header or section data covers.
/// Only those: zeroing a kernel-sized image before copying it in would write
/// every byte twice, a measurable cost under emulation.
fn zero_gaps(info: &PeInfo, dest: &mut [u8]) {
    let mut covered: Vec<(usize, usize)> = info
        .sections
        .iter()
        .map(|s| {
            let start = s.rva as usize;
            (start, start.saturating_add(s.raw_size as usize))
        })
        .collect();
    covered.push((0, info.size_of_headers as usize));
    covered.sort_unstable();
    let mut zero_from = 0usize;
    for (start, end) in covered {
        if let Some(gap) = dest.get_mut(zero_from..start) {
            gap.fill(0);
        }
        zero_from = zero_from.max(end);
    }
    if let Some(tail) = dest.get_mut(zero_from..) {
        tail.fill(0);
    }
}

/// Base-relocation types (PE/COFF "Base Relocation Types").
const REL_BASED_ABSOLUTE: u8 = 0;
const REL_BASED_HIGHLOW: u8 = 3;
const REL_BASED_DIR64: u8 = 10;

/// Walks the .reloc blocks in the loaded image and adds `delta` at each fixup.
fn relocate(info: &PeInfo, image: &mut [u8], delta: u64) -> Result<(), PeError> {
    let Some(directory) = info.data_directory(DIRECTORY_BASE_RELOCATION) else {
        if info.characteristics & IMAGE_FILE_RELOCS_STRIPPED != 0 {
            return Err(PeError::RelocationsStripped);
        }
        return Ok(());
    };
    let mut block_at = directory.address as usize;
    // Validated in `parse` to lie within SizeOfImage.
    let end = block_at + directory.size as usize;
    while block_at + 8 <= end {
        let page_rva = u32_at(image, block_at)?;
        let block_size = u32_at(image, block_at + 4)?;
        let bad_block = PeError::BadRelocationBlock {
            rva: page_rva,
            size: block_size,
        };
        let block_end = block_at.checked_add(block_size as usize).ok_or(bad_block)?;
        if block_size < 8 || block_end > end {
            return Err(bad_block);
        }
        for entry_at in (block_at + 8..block_end.saturating_sub(1)).step_by(2) {
            let entry = u16_at(image, entry_at)?;
            let kind = (entry >> 12) as u8;
            let fixup = u64::from(page_rva) + u64::from(entry & 0x0FFF);
            let width = match kind {
                REL_BASED_ABSOLUTE => continue,
                REL_BASED_HIGHLOW => 4,
                REL_BASED_DIR64 => 8,
                _ => {
                    return Err(PeError::UnsupportedRelocationType {
                        rva: page_rva,
                        kind,
                    });
                }
            };
            let target = usize::try_from(fixup)
                .ok()
                .and_then(|start| image.get_mut(start..start.checked_add(width)?))
                .ok_or(PeError::RelocationOutOfImage { rva: fixup })?;
            if width == 8 {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(target);
                target.copy_from_slice(&u64::from_le_bytes(raw).wrapping_add(delta).to_le_bytes());
            } else {
                let mut raw = [0u8; 4];
                raw.copy_from_slice(target);
                // HIGHLOW adds the low 32 bits of the delta.
                let value = u32::from_le_bytes(raw).wrapping_add(delta as u32);
                target.copy_from_slice(&value.to_le_bytes());
            }
        }
        block_at = block_end;
    }
    Ok(())
}

/// The resource name under which an image carries its HII package list
/// (the convention edk2's build tools and loader share; UEFI 2.10 §7.4.1
/// has LoadImage install EFI_HII_PACKAGE_LIST_PROTOCOL for it).
const HII_RESOURCE_NAME: &[u16] = &[b'H' as u16, b'I' as u16, b'I' as u16];
/// Resource trees are name / ID / language: three directory levels.
const RESOURCE_TREE_DEPTH: usize = 3;
/// "Points at a subdirectory" / "is a name" bit of a resource entry.
const RESOURCE_HIGH_BIT: u32 = 0x8000_0000;
/// EFI_HII_PACKAGE_LIST_HEADER: a GUID and a 32-bit length.
const HII_PACKAGE_LIST_HEADER_SIZE: u32 = 20;

/// The RVA of the HII package list a loaded image carries in its resource
/// section (PE Format, "The .rsrc Section"): the data of the first leaf under
/// the root entry named "HII". `image` is the image as loaded (laid out by
/// RVA, as `load` leaves it) and `directory` its resource data directory.
/// None when there is none, or when the tree or the data leaves `image`.
pub fn hii_package_list(image: &[u8], directory: DataDirectory) -> Option<u32> {
    if directory.size == 0 {
        return None;
    }
    let root = directory.address as usize;
    let tree = bytes_at(image, root, directory.size as usize).ok()?;
    let named = usize::from(u16_at(tree, 12).ok()?);
    let mut target = (0..named).find_map(|index| {
        let entry = 16usize.checked_add(index.checked_mul(8)?)?;
        let name = u32_at(tree, entry).ok()?;
        let is_hii = name & RESOURCE_HIGH_BIT != 0
            && resource_name(tree, (name & !RESOURCE_HIGH_BIT) as usize)
                .is_some_and(|n| n.eq(HII_RESOURCE_NAME.iter().copied()));
        if is_hii {
            u32_at(tree, entry + 4).ok()
        } else {
            None
        }
    })?;
    // Down through the first entry of each subdirectory to a data entry.
    for _ in 1..RESOURCE_TREE_DEPTH {
        if target & RESOURCE_HIGH_BIT == 0 {
            break;
        }
        let subdirectory = (target & !RESOURCE_HIGH_BIT) as usize;
        let entries = u16_at(tree, subdirectory.checked_add(12)?)
            .ok()?
            .checked_add(u16_at(tree, subdirectory.checked_add(14)?).ok()?)?;
        if entries == 0 {
            return None;
        }
        target = u32_at(tree, subdirectory.checked_add(16 + 4)?).ok()?;
    }
    if target & RESOURCE_HIGH_BIT != 0 {
        return None;
    }
    let data_entry = target as usize;
    let rva = u32_at(tree, data_entry).ok()?;
    let size = u32_at(tree, data_entry.checked_add(4)?).ok()?;
    let end = end_within(rva, size, u32::try_from(image.len()).ok()?)?;
    (size >= HII_PACKAGE_LIST_HEADER_SIZE && end > rva).then_some(rva)
}

/// The UTF-16 name at `offset` in a resource tree (a 16-bit length, then
/// the characters), if it lies inside the tree.
fn resource_name(tree: &[u8], offset: usize) -> Option<impl Iterator<Item = u16> + '_> {
    let length = usize::from(u16_at(tree, offset).ok()?);
    let text = bytes_at(tree, offset.checked_add(2)?, length.checked_mul(2)?).ok()?;
    Some(
        text.chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::OnceLock;

    /// EFI binaries from Debian packages, fetched once per test run. Fails
    /// the test when apt-get or dpkg-deb cannot provide them: returning
    /// early would pass without testing anything.
    fn debian_efi_binaries() -> &'static [PathBuf] {
        static FILES: OnceLock<Vec<PathBuf>> = OnceLock::new();
        FILES.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("vmfw-pe-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temporary directory");
            let download = Command::new("apt-get")
                .args([
                    "download",
                    "shim-signed",
                    "grub-efi-amd64-signed",
                    "systemd-boot-efi",
                ])
                .current_dir(&dir)
                .output();
            assert!(
                download.as_ref().is_ok_and(|o| o.status.success()),
                "apt-get download of the Debian EFI binaries failed (needs apt \
                     and the network, as the VM tests do): {download:?}"
            );
            let mut found = Vec::new();
            for deb in std::fs::read_dir(&dir)
                .expect("download directory")
                .flatten()
            {
                if deb.path().extension().is_some_and(|e| e == "deb") {
                    let ok = Command::new("dpkg-deb")
                        .arg("-x")
                        .arg(deb.path())
                        .arg(dir.join("root"))
                        .status();
                    assert!(
                        ok.is_ok_and(|s| s.success()),
                        "dpkg-deb -x {} failed",
                        deb.path().display()
                    );
                }
            }
            collect_efi(&dir.join("root"), &mut found);
            found
        })
    }

    fn collect_efi(dir: &std::path::Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                collect_efi(&path, found);
            } else if name.ends_with(".efi") || name.ends_with(".efi.signed") {
                found.push(path);
            }
        }
    }

    /// Loads `file` at ImageBase and at a shifted base and checks that the two
    /// layouts differ exactly by the delta at 8-byte fixups (besides the
    /// patched ImageBase field), and that sections match the file.
    fn check_load(file: &[u8], info: &PeInfo) -> usize {
        let size = info.size_of_image as usize;
        let (mut at_base, mut moved) = (vec![0xAA; size], vec![0x55; size]);
        load(file, info, &mut at_base, info.image_base).unwrap();
        let delta = 0x1234_5000u64;
        load(file, info, &mut moved, info.image_base + delta).unwrap();
        for section in &info.sections {
            let (rva, raw) = (section.rva as usize, section.raw_size as usize);
            let original = &file[section.raw_offset as usize..][..raw];
            assert_eq!(&at_base[rva..rva + raw], original, "section data copied");
            assert!(
                at_base[rva + raw..rva + section.size as usize]
                    .iter()
                    .all(|&b| b == 0)
            );
        }
        let image_base_field = info.optional_header_offset + IMAGE_BASE_OFFSET;
        let mut fixups = 0;
        let mut at = 0;
        while at < size {
            if at_base[at] == moved[at] {
                at += 1;
                continue;
            }
            let word =
                |image: &[u8], s: usize| u64::from_le_bytes(image[s..s + 8].try_into().unwrap());
            // The first changed byte lies inside a 64-bit fixup, not
            // necessarily at its start (the delta's low byte is zero): find
            // the start whose u64 moved by exactly the delta.
            let start = (at.saturating_sub(7)..=at)
                .find(|&s| {
                    word(&moved, s).wrapping_sub(word(&at_base, s)) == delta
                        || (s == image_base_field && word(&moved, s) == info.image_base + delta)
                })
                .unwrap_or_else(|| panic!("unexplained difference at {at:#x}"));
            fixups += 1;
            at = start + 8;
        }
        fixups
    }

    fn names_of(path: &std::path::Path) -> String {
        path.file_name().unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn parses_and_loads_debian_efi_binaries() {
        let files = debian_efi_binaries();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for wanted in [
            "shimx64.efi.signed",
            "grubx64.efi.signed",
            "systemd-bootx64.efi",
        ] {
            assert!(
                names.iter().any(|n| n == wanted),
                "{wanted} missing from {names:?}"
            );
        }
        for path in files {
            let file = std::fs::read(path).unwrap();
            let info = parse(&file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(info.machine, MACHINE_X86_64);
            assert_eq!(
                info.subsystem,
                Subsystem::EFI_APPLICATION,
                "{}",
                path.display()
            );
            assert!(!info.sections.is_empty());
            assert!(
                info.sections
                    .iter()
                    .any(|s| s.characteristics.contains(SectionFlags::MEM_EXECUTE))
            );
            let fixups = check_load(&file, &info);
            // shim and systemd-boot are gnu-efi builds that relocate themselves
            // from .rela; their .reloc holds a lone ABSOLUTE entry. GRUB has
            // real DIR64 relocations.
            let name = names_of(path);
            if name.starts_with("grub") || name.starts_with("gcd") {
                assert!(fixups > 100, "{name}: only {fixups} fixups");
            }
            let layout = wx_layout(&info, 4096);
            if let Some(pieces) = &layout {
                let end = pieces.last().map_or(0, |(r, _)| r.end);
                assert_eq!(end, info.size_of_image.next_multiple_of(4096));
                assert!(pieces.windows(2).all(|w| w[0].0.end == w[1].0.start));
            }
            eprintln!(
                "{}: {} sections, {fixups} fixups, nx={}, W^X {layout:?}",
                path.display(),
                info.sections.len(),
                info.nx_compat()
            );
        }
        let download_dir = std::env::temp_dir().join(format!("vmfw-pe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(download_dir);
    }

    /// A minimal valid image: headers, one code section, one reloc section
    /// holding a DIR64 and a HIGHLOW fixup.
    fn synthetic_image() -> Vec<u8> {
        let mut f = vec![0u8; 0x600];
        f[0..2].copy_from_slice(b"MZ");
        f[0x3C..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        f[0x40..0x44].copy_from_slice(b"PE\0\0");
        let coff = 0x44;
        f[coff..coff + 2].copy_from_slice(&MACHINE_X86_64.to_le_bytes());
        f[coff + 2..coff + 4].copy_from_slice(&2u16.to_le_bytes());
        let optional_size = (OPTIONAL_FIXED_SIZE + 16 * 8) as u16;
        f[coff + 16..coff + 18].copy_from_slice(&optional_size.to_le_bytes());
        let o = coff + 20;
        let put32 =
            |f: &mut Vec<u8>, at: usize, v: u32| f[at..at + 4].copy_from_slice(&v.to_le_bytes());
        f[o..o + 2].copy_from_slice(&OPTIONAL_MAGIC_PE32_PLUS.to_le_bytes());
        put32(&mut f, o + 16, 0x1000); // entry
        f[o + 24..o + 32].copy_from_slice(&0x40_0000u64.to_le_bytes());
        put32(&mut f, o + 32, 0x1000);
        put32(&mut f, o + 36, 0x200);
        put32(&mut f, o + 56, 0x3000); // SizeOfImage
        put32(&mut f, o + 60, 0x200); // SizeOfHeaders
        f[o + 68..o + 70].copy_from_slice(&10u16.to_le_bytes());
        f[o + 70..o + 72].copy_from_slice(&0x0160u16.to_le_bytes());
        put32(&mut f, o + 108, 16);
        put32(&mut f, o + 112 + 5 * 8, 0x2000); // reloc directory
        put32(&mut f, o + 112 + 5 * 8 + 4, 12);
        let s = o + optional_size as usize;
        // .text: 0x1000, 0x800 in memory, 0x200 in the file at 0x200
        f[s..s + 5].copy_from_slice(b".text");
        put32(&mut f, s + 8, 0x800);
        put32(&mut f, s + 12, 0x1000);
        put32(&mut f, s + 16, 0x200);
        put32(&mut f, s + 20, 0x200);
        put32(&mut f, s + 36, 0x6000_0020);
        let s = s + 40;
        f[s..s + 6].copy_from_slice(b".reloc");
        put32(&mut f, s + 8, 12);
        put32(&mut f, s + 12, 0x2000);
        put32(&mut f, s + 16, 0x200);
        put32(&mut f, s + 20, 0x400);
        put32(&mut f, s + 36, 0x4200_0040);
        // .text data: a pointer to ImageBase+0x1010 at 0x1008, a 32-bit one at 0x1020.
        f[0x208..0x210].copy_from_slice(&0x40_1010u64.to_le_bytes());
        put32(&mut f, 0x220, 0x40_1010);
        put32(&mut f, 0x400, 0x1000); // block page
        put32(&mut f, 0x404, 12);
        f[0x408..0x40A].copy_from_slice(&(0xA000u16 | 0x008).to_le_bytes());
        f[0x40A..0x40C].copy_from_slice(&(0x3000u16 | 0x020).to_le_bytes());
        f
    }

    #[test]
    fn section_table_reads_from_a_prefix_of_the_file() {
        let file = synthetic_image();
        // The headers alone: `parse` needs the section data, this does not.
        let prefix = &file[..0x200];
        assert!(parse(prefix).is_err());
        let table = section_headers(prefix).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table[0].name(), b".text");
        assert_eq!(
            (table[0].virtual_size, table[0].rva, table[0].raw_size),
            (0x800, 0x1000, 0x200)
        );
        assert_eq!(table[1].name(), b".reloc");
        assert_eq!(table[1].raw_offset, 0x400);
        assert_eq!(coff_header_offset(&file), Ok(0x44));
        // The table must lie inside what was read.
        assert!(matches!(
            section_headers(&file[..0x150]),
            Err(PeError::Truncated { .. })
        ));
        assert_eq!(
            section_headers(&[0u8; 64]),
            Err(PeError::BadDosSignature(0))
        );
    }

    const RELOC_BLOCK: usize = 0x400;

    #[test]
    fn synthetic_image_loads_and_relocates() {
        let file = synthetic_image();
        let info = parse(&file).unwrap();
        assert_eq!(info.entry_point, 0x1000);
        assert!(info.nx_compat());
        assert_eq!(info.sections[0].size, 0x800);
        assert_eq!(info.sections[0].raw_size, 0x200);
        let mut image = vec![0xFF; 0x3000];
        load(&file, &info, &mut image, 0x1_0000_0000).unwrap();
        let delta = 0x1_0000_0000u64 - 0x40_0000;
        assert_eq!(image[0x1008..0x1010], (0x40_1010 + delta).to_le_bytes());
        assert_eq!(
            image[0x1020..0x1024],
            (0x40_1010u32.wrapping_add(delta as u32)).to_le_bytes()
        );
        assert!(
            image[0x1200..0x1800].iter().all(|&b| b == 0),
            "zero-filled tail"
        );
        // Every byte no header or section covers is zero, whatever was there.
        let headers = info.size_of_headers as usize;
        assert!(image[headers..0x1000].iter().all(|&b| b == 0), "gap");
        let last = info.sections.last().unwrap();
        let covered_end = (last.rva + last.raw_size) as usize;
        assert!(image[covered_end..].iter().all(|&b| b == 0), "end");
        let image_base_field = info.optional_header_offset + IMAGE_BASE_OFFSET;
        assert_eq!(
            image[image_base_field..][..8],
            0x1_0000_0000u64.to_le_bytes()
        );
        assert_eq!(
            load(&file, &info, &mut image[..0x2000], 0),
            Err(PeError::BadDestinationSize {
                expected: 0x3000,
                actual: 0x2000
            })
        );
    }

    /// A loader that reads in pieces (`parse_headers` on a prefix, then
    /// `load_from`) lays out the same image as `load` of the whole file,
    /// reads only the headers and the sections' raw data (never data
    /// appended after them), and passes its read errors through.
    #[test]
    fn loading_in_pieces_matches_the_whole_file_and_skips_appended_data() {
        let mut file = synthetic_image();
        let image_end = file.len();
        file.resize(image_end + 0x10000, 0xAB);
        let info = parse_headers(&file[..0x400], file.len()).unwrap();
        assert_eq!(info, parse(&file).unwrap());
        let mut whole = vec![0u8; 0x3000];
        load(&file, &info, &mut whole, 0x20_0000).unwrap();
        let mut reads = Vec::new();
        let mut pieces = vec![0xFFu8; 0x3000];
        let read = |offset: usize, out: &mut [u8]| -> Result<(), PeError> {
            reads.push((offset, out.len()));
            out.copy_from_slice(&file[offset..offset + out.len()]);
            Ok(())
        };
        load_from(read, &info, &mut pieces, 0x20_0000).unwrap();
        assert_eq!(pieces, whole);
        assert!(
            reads.iter().all(|&(offset, len)| offset + len <= image_end),
            "nothing past the image was read: {reads:?}"
        );
        // A section table that does not fit the prefix read is reported.
        assert!(matches!(
            parse_headers(&file[..0x100], file.len()),
            Err(PeError::Truncated { .. })
        ));
        // A file shorter than its sections say is refused from the headers.
        assert!(matches!(
            parse_headers(&file[..0x400], 0x400),
            Err(PeError::SectionOutOfFile { .. })
        ));
        #[derive(Debug, PartialEq)]
        enum Failure {
            Pe(PeError),
            Device,
        }
        impl From<PeError> for Failure {
            fn from(e: PeError) -> Self {
                Failure::Pe(e)
            }
        }
        let failing = |_: usize, _: &mut [u8]| Err(Failure::Device);
        assert_eq!(
            load_from(failing, &info, &mut pieces, 0x20_0000),
            Err(Failure::Device)
        );
    }

    #[test]
    fn hostile_relocations_are_rejected() {
        let load_moved = |file: &[u8]| {
            let info = parse(file)?;
            load(
                file,
                &info,
                &mut vec![0; info.size_of_image as usize],
                0x8000_0000,
            )
        };
        let mut file = synthetic_image();
        file[0x408..0x40A].copy_from_slice(&(0xA000u16 | 0xFFC).to_le_bytes());
        file[RELOC_BLOCK..RELOC_BLOCK + 4].copy_from_slice(&0x2000u32.to_le_bytes());
        assert_eq!(
            load_moved(&file),
            Err(PeError::RelocationOutOfImage { rva: 0x2FFC })
        );

        let mut file = synthetic_image();
        file[0x408..0x40A].copy_from_slice(&0x5008u16.to_le_bytes());
        assert_eq!(
            load_moved(&file),
            Err(PeError::UnsupportedRelocationType {
                rva: 0x1000,
                kind: 5
            })
        );

        let mut file = synthetic_image();
        file[0x404..0x408].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            load_moved(&file),
            Err(PeError::BadRelocationBlock {
                rva: 0x1000,
                size: 0
            })
        );

        let mut file = synthetic_image();
        file[0x404..0x408].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert!(matches!(
            load_moved(&file),
            Err(PeError::BadRelocationBlock { .. })
        ));
    }

    #[test]
    fn hostile_headers_are_rejected() {
        let base = synthetic_image();
        let opt = 0x44 + 20;
        let sec = opt + OPTIONAL_FIXED_SIZE + 16 * 8;
        let with = |at: usize, bytes: &[u8]| {
            let mut f = base.clone();
            f[at..at + bytes.len()].copy_from_slice(bytes);
            parse(&f).err()
        };
        assert_eq!(
            parse(&base[..0x1F0]).err(),
            Some(PeError::BadSizeOfHeaders(0x200))
        );
        assert!(matches!(
            parse(&base[..0x30]),
            Err(PeError::Truncated { .. })
        ));
        assert_eq!(with(0, b"ZM"), Some(PeError::BadDosSignature(0x4D5A)));
        assert!(matches!(
            with(0x3C, &u32::MAX.to_le_bytes()),
            Some(PeError::Truncated { .. })
        ));
        assert_eq!(
            with(0x44, &0x14Cu16.to_le_bytes()),
            Some(PeError::UnsupportedMachine(0x14C))
        );
        assert_eq!(
            with(opt, &0x10Bu16.to_le_bytes()),
            Some(PeError::BadOptionalMagic(0x10B))
        );
        assert_eq!(
            with(opt + 68, &3u16.to_le_bytes()),
            Some(PeError::UnsupportedSubsystem(3))
        );
        assert_eq!(
            with(opt + 56, &u32::MAX.to_le_bytes()),
            Some(PeError::BadSizeOfImage(u32::MAX))
        );
        assert_eq!(
            with(opt + 16, &0x3000u32.to_le_bytes()),
            Some(PeError::BadEntryPoint(0x3000))
        );
        assert_eq!(
            with(0x46, &1000u16.to_le_bytes()),
            Some(PeError::TooManySections(1000))
        );
        assert_eq!(
            with(opt + 108, &0x1000_0000u32.to_le_bytes()),
            Some(PeError::BadOptionalHeaderSize(240))
        );
        assert_eq!(
            with(opt + 112 + 5 * 8 + 4, &0x2000u32.to_le_bytes()),
            Some(PeError::BadDataDirectory {
                index: 5,
                address: 0x2000,
                size: 0x2000
            })
        );
        // Section raw data past the end of the file.
        assert_eq!(
            with(sec + 20, &0x10_0000u32.to_le_bytes()),
            Some(PeError::SectionOutOfFile {
                index: 0,
                offset: 0x10_0000,
                size: 0x200
            })
        );
        // Section past SizeOfImage, overlapping the next, over the headers.
        assert_eq!(
            with(sec + 8, &0x10_0000u32.to_le_bytes()),
            Some(PeError::SectionOutOfImage {
                index: 0,
                rva: 0x1000,
                size: 0x10_0000
            })
        );
        assert_eq!(
            with(sec + 40 + 12, &0x1400u32.to_le_bytes()),
            Some(PeError::SectionOverlap {
                index: 1,
                rva: 0x1400
            })
        );
        assert_eq!(
            with(sec + 12, &0x100u32.to_le_bytes()),
            Some(PeError::SectionOutOfImage {
                index: 0,
                rva: 0x100,
                size: 0x800
            })
        );
    }
    fn section_at(rva: u32, size: u32, flags: SectionFlags) -> Section {
        Section {
            name: [0; 8],
            rva,
            size,
            raw_offset: 0,
            raw_size: 0,
            characteristics: flags,
        }
    }

    #[test]
    fn wx_layout_follows_section_rights() {
        let mut info = parse(&synthetic_image()).unwrap();
        let (r, rw, rx) = (
            SectionFlags::MEM_READ,
            SectionFlags::MEM_READ | SectionFlags::MEM_WRITE,
            SectionFlags::MEM_READ | SectionFlags::MEM_EXECUTE,
        );
        info.dll_characteristics = DllCharacteristics::NX_COMPAT;
        info.size_of_image = 0x5800;
        info.sections = vec![
            section_at(0x1000, 0x1234, rx),
            section_at(0x3000, 0x800, r),
            section_at(0x4000, 0x10, rw),
        ];
        assert_eq!(
            wx_layout(&info, 0x1000),
            Some(vec![
                (0..0x1000, PageRights::ReadOnly),
                (0x1000..0x3000, PageRights::ReadExecute),
                (0x3000..0x4000, PageRights::ReadOnly),
                (0x4000..0x5000, PageRights::ReadWrite),
                (0x5000..0x6000, PageRights::ReadWrite),
            ])
        );
        // A gap between sections stays writable data.
        info.sections[1].rva = 0x3000;
        info.sections[0].size = 0x800;
        assert_eq!(
            wx_layout(&info, 0x1000).unwrap()[2],
            (0x2000..0x3000, PageRights::ReadWrite)
        );

        let refuse = |change: &dyn Fn(&mut PeInfo)| {
            let mut bad = info.clone();
            change(&mut bad);
            wx_layout(&bad, 0x1000)
        };
        assert_eq!(
            refuse(&|i| i.dll_characteristics = DllCharacteristics::empty()),
            None
        );
        assert_eq!(refuse(&|i| i.section_alignment = 0x200), None);
        assert_eq!(refuse(&|i| i.sections[1].rva = 0x3200), None);
        assert_eq!(refuse(&|i| i.sections[2].characteristics = rw | rx), None);
        assert_eq!(refuse(&|i| i.sections[1].rva = 0x1000), None, "overlap");
    }

    /// A loaded image of `size` bytes whose resource tree at 0x100 holds
    /// root -> `name` -> ID 1 -> language 0x409 -> data at 0x400 (0x40 bytes).
    fn image_with_resource(name: &str) -> (Vec<u8>, DataDirectory) {
        let mut image = vec![0u8; 0x1000];
        let tree = 0x100;
        let put16 = |image: &mut Vec<u8>, at: usize, v: u16| {
            image[tree + at..tree + at + 2].copy_from_slice(&v.to_le_bytes())
        };
        let put32 = |image: &mut Vec<u8>, at: usize, v: u32| {
            image[tree + at..tree + at + 4].copy_from_slice(&v.to_le_bytes())
        };
        // Root: one named entry -> subdirectory at 0x20.
        put16(&mut image, 12, 1);
        put32(&mut image, 16, 0x8000_0000 | 0x80);
        put32(&mut image, 20, 0x8000_0000 | 0x20);
        // Level 2: one ID entry -> subdirectory at 0x40.
        put16(&mut image, 0x20 + 14, 1);
        put32(&mut image, 0x20 + 16, 1);
        put32(&mut image, 0x20 + 20, 0x8000_0000 | 0x40);
        // Level 3: one ID entry -> data entry at 0x60.
        put16(&mut image, 0x40 + 14, 1);
        put32(&mut image, 0x40 + 16, 0x409);
        put32(&mut image, 0x40 + 20, 0x60);
        put32(&mut image, 0x60, 0x400);
        put32(&mut image, 0x64, 0x40);
        // The name string.
        let units: Vec<u16> = name.encode_utf16().collect();
        put16(&mut image, 0x80, units.len() as u16);
        for (i, unit) in units.iter().enumerate() {
            put16(&mut image, 0x82 + 2 * i, *unit);
        }
        let directory = DataDirectory {
            address: tree as u32,
            size: 0xa0,
        };
        (image, directory)
    }

    #[test]
    fn hii_package_list_is_found_under_its_resource_name() {
        let (image, directory) = image_with_resource("HII");
        assert_eq!(hii_package_list(&image, directory), Some(0x400));
        let (image, directory) = image_with_resource("HIJ");
        assert_eq!(hii_package_list(&image, directory), None);
        let (image, directory) = image_with_resource("HIIX");
        assert_eq!(hii_package_list(&image, directory), None);
        assert_eq!(hii_package_list(&image, DataDirectory::default()), None);
    }

    #[test]
    fn hii_package_list_rejects_broken_trees() {
        // Data leaving the image.
        let (mut image, directory) = image_with_resource("HII");
        image[0x160..0x164].copy_from_slice(&0xfe0u32.to_le_bytes());
        assert_eq!(hii_package_list(&image, directory), None);
        // A subdirectory naming itself never reaches a data entry.
        let (mut image, directory) = image_with_resource("HII");
        image[0x154..0x158].copy_from_slice(&(0x8000_0040u32).to_le_bytes());
        assert_eq!(hii_package_list(&image, directory), None);
        // A tree running past the image.
        let (image, mut directory) = image_with_resource("HII");
        directory.size = 0x1000;
        assert_eq!(hii_package_list(&image, directory), None);
        // Every truncation and every single-byte corruption: no panic.
        let (image, directory) = image_with_resource("HII");
        for len in 0..image.len() {
            let _ = hii_package_list(&image[..len], directory);
        }
        for at in 0x100..0x1a0 {
            for value in [0x00, 0x7f, 0x80, 0xff] {
                let mut broken = image.clone();
                broken[at] = value;
                let _ = hii_package_list(&broken, directory);
            }
        }
    }
}
