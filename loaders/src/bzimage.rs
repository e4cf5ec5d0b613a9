//! Linux x86 boot protocol (Linux Documentation/arch/x86/boot.rst): parses a
//! bzImage's setup header and builds the zero page (`struct boot_params`,
//! Documentation/arch/x86/zero-page.rst) for the 64-bit entry.
#![forbid(unsafe_code)]

use core::fmt;

use bitflags::bitflags;

/// Offsets into the image and the zero page (boot.rst "The real-mode kernel header").
mod offset {
    pub const SETUP_HEADER: usize = 0x1F1;
    pub const SETUP_SECTS: usize = 0x1F1;
    pub const BOOT_FLAG: usize = 0x1FE;
    pub const JUMP: usize = 0x200;
    pub const HEADER_MAGIC: usize = 0x202;
    pub const VERSION: usize = 0x206;
    pub const TYPE_OF_LOADER: usize = 0x210;
    pub const LOADFLAGS: usize = 0x211;
    pub const CODE32_START: usize = 0x214;
    pub const RAMDISK_IMAGE: usize = 0x218;
    pub const RAMDISK_SIZE: usize = 0x21C;
    pub const CMD_LINE_PTR: usize = 0x228;
    pub const INITRD_ADDR_MAX: usize = 0x22C;
    pub const KERNEL_ALIGNMENT: usize = 0x230;
    pub const RELOCATABLE_KERNEL: usize = 0x234;
    pub const XLOADFLAGS: usize = 0x236;
    pub const CMDLINE_SIZE: usize = 0x238;
    pub const PREF_ADDRESS: usize = 0x258;
    pub const INIT_SIZE: usize = 0x260;
    pub const HANDOVER_OFFSET: usize = 0x264;
    /// Zero-page fields outside the setup header (zero-page.rst).
    pub const ACPI_RSDP_ADDR: usize = 0x070;
    pub const EXT_RAMDISK_IMAGE: usize = 0x0C0;
    pub const EXT_RAMDISK_SIZE: usize = 0x0C4;
    pub const EXT_CMD_LINE_PTR: usize = 0x0C8;
    pub const EFI_INFO: usize = 0x1C0;
    pub const E820_ENTRIES: usize = 0x1E8;
    /// The setup header may not grow past the EDD MBR signature buffer.
    pub const SETUP_HEADER_LIMIT: usize = 0x290;
    pub const E820_TABLE: usize = 0x2D0;
}

pub const BOOT_FLAG: u16 = 0xAA55;
pub const HEADER_MAGIC: &[u8; 4] = b"HdrS";
/// 2.12 introduced xloadflags and with it the documented 64-bit entry.
pub const MIN_VERSION: u16 = 0x020C;
/// setup_sects == 0 means 4 (boot.rst, for compatibility).
const DEFAULT_SETUP_SECTS: u8 = 4;
pub const ZERO_PAGE_SIZE: usize = 4096;
pub const E820_MAX_ENTRIES: usize = 128;
const E820_ENTRY_SIZE: usize = 20;
/// type_of_loader 0xFF: "undefined" boot loader (boot.rst).
pub const LOADER_TYPE_UNDEFINED: u8 = 0xFF;
/// "EL64" as stored little-endian in efi_loader_signature.
pub const EFI_LOADER_SIGNATURE_64: &[u8; 4] = b"EL64";
/// The 64-bit entry point is 0x200 bytes into the protected-mode kernel.
pub const ENTRY_64_OFFSET: u64 = 0x200;

bitflags! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct LoadFlags: u8 {
        const LOADED_HIGH = 0x01;
        const KASLR = 0x02;
        const QUIET = 0x20;
        const KEEP_SEGMENTS = 0x40;
        const CAN_USE_HEAP = 0x80;
        const _ = !0;
    }
}

bitflags! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct XLoadFlags: u16 {
        const KERNEL_64 = 0x01;
        const CAN_BE_LOADED_ABOVE_4G = 0x02;
        const EFI_HANDOVER_32 = 0x04;
        const EFI_HANDOVER_64 = 0x08;
        const EFI_KEXEC = 0x10;
        const _ = !0;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BzImageError {
    /// The image is shorter than `needed` bytes.
    Truncated {
        needed: usize,
        len: usize,
    },
    BadBootFlag(u16),
    BadHeaderMagic(u32),
    /// Boot protocol older than 2.12.
    VersionTooOld(u16),
    /// xloadflags lacks XLF_KERNEL_64.
    No64BitEntry(u16),
    /// The command line (without NUL) exceeds cmdline_size.
    CmdlineTooLong {
        len: usize,
        max: u32,
    },
    /// The initrd ends above initrd_addr_max and the kernel cannot take it above 4 GiB.
    RamdiskTooHigh {
        end: u64,
        max: u32,
    },
    /// Address above 4 GiB for a kernel without XLF_CAN_BE_LOADED_ABOVE_4G.
    AddressAbove4G(u64),
    E820TableFull,
}

impl fmt::Display for BzImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BzImageError::*;
        match self {
            Truncated { needed, len } => {
                write!(f, "bzImage of {len} bytes truncated (needs {needed})")
            }
            BadBootFlag(flag) => write!(f, "boot_flag {flag:#06x} is not 0xaa55"),
            BadHeaderMagic(magic) => write!(f, "header magic {magic:#010x} is not \"HdrS\""),
            VersionTooOld(v) => write!(
                f,
                "boot protocol {}.{:02} is older than 2.12",
                v >> 8,
                v & 0xFF
            ),
            No64BitEntry(x) => write!(f, "xloadflags {x:#06x} lack XLF_KERNEL_64"),
            CmdlineTooLong { len, max } => write!(f, "command line of {len} bytes exceeds {max}"),
            RamdiskTooHigh { end, max } => {
                write!(
                    f,
                    "initrd ending at {end:#x} is above initrd_addr_max {max:#x}"
                )
            }
            AddressAbove4G(addr) => write!(
                f,
                "address {addr:#x} above 4 GiB not supported by this kernel"
            ),
            E820TableFull => write!(f, "e820 table already holds {E820_MAX_ENTRIES} entries"),
        }
    }
}

fn bytes_at(data: &[u8], at: usize, len: usize) -> Result<&[u8], BzImageError> {
    data.get(at..at + len)
        .ok_or_else(|| truncated(data, at, len))
}

fn truncated(data: &[u8], at: usize, len: usize) -> BzImageError {
    BzImageError::Truncated {
        needed: at + len,
        len: data.len(),
    }
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, BzImageError> {
    platform::le::u16_at(data, at).ok_or_else(|| truncated(data, at, 2))
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BzImageError> {
    platform::le::u32_at(data, at).ok_or_else(|| truncated(data, at, 4))
}

fn u64_at(data: &[u8], at: usize) -> Result<u64, BzImageError> {
    Ok(u64::from(u32_at(data, at)?) | u64::from(u32_at(data, at + 4)?) << 32)
}

/// The setup-header fields a 64-bit loader needs (boot.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupHeader {
    /// Effective number of 512-byte setup sectors (0 in the image means 4).
    pub setup_sects: u8,
    pub version: u16,
    pub loadflags: LoadFlags,
    pub code32_start: u32,
    pub initrd_addr_max: u32,
    pub kernel_alignment: u32,
    pub relocatable_kernel: bool,
    pub cmdline_size: u32,
    pub xloadflags: XLoadFlags,
    pub pref_address: u64,
    /// Linear memory the kernel needs from its load address while decompressing.
    pub init_size: u32,
    /// Offset of the EFI handover entry from the protected-mode kernel start
    /// (the 64-bit handover entry is 0x200 further).
    pub handover_offset: u32,
    /// Exclusive end of the setup header in the image: 0x202 + the jump byte at 0x201.
    pub header_end: usize,
}

impl SetupHeader {
    pub fn parse(image: &[u8]) -> Result<Self, BzImageError> {
        let boot_flag = u16_at(image, offset::BOOT_FLAG)?;
        if boot_flag != BOOT_FLAG {
            return Err(BzImageError::BadBootFlag(boot_flag));
        }
        let magic = u32_at(image, offset::HEADER_MAGIC)?;
        if magic != u32::from_le_bytes(*HEADER_MAGIC) {
            return Err(BzImageError::BadHeaderMagic(magic));
        }
        let version = u16_at(image, offset::VERSION)?;
        if version < MIN_VERSION {
            return Err(BzImageError::VersionTooOld(version));
        }
        let xloadflags = XLoadFlags::from_bits_retain(u16_at(image, offset::XLOADFLAGS)?);
        if !xloadflags.contains(XLoadFlags::KERNEL_64) {
            return Err(BzImageError::No64BitEntry(xloadflags.bits()));
        }
        let setup_sects = match bytes_at(image, offset::SETUP_SECTS, 1)?[0] {
            0 => DEFAULT_SETUP_SECTS,
            n => n,
        };
        let jump_length = usize::from(bytes_at(image, offset::JUMP + 1, 1)?[0]);
        let header_end = (offset::HEADER_MAGIC + jump_length).min(offset::SETUP_HEADER_LIMIT);
        let header = SetupHeader {
            setup_sects,
            version,
            loadflags: LoadFlags::from_bits_retain(bytes_at(image, offset::LOADFLAGS, 1)?[0]),
            code32_start: u32_at(image, offset::CODE32_START)?,
            initrd_addr_max: u32_at(image, offset::INITRD_ADDR_MAX)?,
            kernel_alignment: u32_at(image, offset::KERNEL_ALIGNMENT)?,
            relocatable_kernel: bytes_at(image, offset::RELOCATABLE_KERNEL, 1)?[0] != 0,
            cmdline_size: u32_at(image, offset::CMDLINE_SIZE)?,
            xloadflags,
            pref_address: u64_at(image, offset::PREF_ADDRESS)?,
            init_size: u32_at(image, offset::INIT_SIZE)?,
            handover_offset: u32_at(image, offset::HANDOVER_OFFSET)?,
            header_end,
        };
        // The whole setup area and header must be present.
        bytes_at(image, 0, header.kernel_offset().max(header_end))?;
        Ok(header)
    }

    /// File offset of the protected-mode kernel: (setup_sects + 1) * 512.
    pub fn kernel_offset(&self) -> usize {
        (usize::from(self.setup_sects) + 1) * 512
    }

    /// The protected-mode kernel, to be placed at a `kernel_alignment`-aligned address.
    pub fn kernel<'a>(&self, image: &'a [u8]) -> &'a [u8] {
        image.get(self.kernel_offset()..).unwrap_or(&[])
    }

    /// Offset of the EFI handover 64-bit entry from the protected-mode kernel
    /// start, if the kernel offers it (boot.rst "EFI HANDOVER PROTOCOL").
    pub fn efi_handover_64_offset(&self) -> Option<u64> {
        (self.xloadflags.contains(XLoadFlags::EFI_HANDOVER_64) && self.handover_offset != 0)
            .then(|| u64::from(self.handover_offset) + ENTRY_64_OFFSET)
    }

    fn above_4g_allowed(&self) -> bool {
        self.xloadflags.contains(XLoadFlags::CAN_BE_LOADED_ABOVE_4G)
    }
}

/// e820 memory types (zero-page.rst / ACPI address range types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Type(pub u32);

impl E820Type {
    pub const RAM: E820Type = E820Type(1);
    pub const RESERVED: E820Type = E820Type(2);
    pub const ACPI: E820Type = E820Type(3);
    pub const NVS: E820Type = E820Type(4);
    pub const UNUSABLE: E820Type = E820Type(5);
    pub const PMEM: E820Type = E820Type(7);
}

/// The EFI fields of the zero page (zero-page.rst 0x1C0, `struct efi_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EfiInfo {
    pub system_table: u64,
    pub memory_map: u64,
    pub memory_map_size: u32,
    pub descriptor_size: u32,
    pub descriptor_version: u32,
}

/// A zero page under construction.
#[derive(Clone)]
pub struct BootParams {
    page: [u8; ZERO_PAGE_SIZE],
    header: SetupHeader,
}

impl BootParams {
    /// A zeroed page with the image's setup header copied to 0x1F1 and
    /// type_of_loader set to 0xFF.
    pub fn new(image: &[u8], header: &SetupHeader) -> Result<Self, BzImageError> {
        let mut page = [0u8; ZERO_PAGE_SIZE];
        let range = offset::SETUP_HEADER..header.header_end;
        page[range.clone()].copy_from_slice(bytes_at(image, range.start, range.len())?);
        page[offset::TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
        Ok(BootParams {
            page,
            header: *header,
        })
    }

    pub fn as_bytes(&self) -> &[u8; ZERO_PAGE_SIZE] {
        &self.page
    }

    fn put_u32(&mut self, at: usize, value: u32) {
        self.page[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    fn put_u64(&mut self, at: usize, value: u64) {
        self.page[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// Splits an address into the 32-bit field and its `ext_` high half.
    fn split(&self, address: u64) -> Result<(u32, u32), BzImageError> {
        if address >> 32 != 0 && !self.header.above_4g_allowed() {
            return Err(BzImageError::AddressAbove4G(address));
        }
        Ok((address as u32, (address >> 32) as u32))
    }

    /// Points cmd_line_ptr (+ext_cmd_line_ptr) at a NUL-terminated command line
    /// of `len` bytes (without the NUL).
    pub fn set_cmdline(&mut self, address: u64, len: usize) -> Result<(), BzImageError> {
        if len > self.header.cmdline_size as usize {
            return Err(BzImageError::CmdlineTooLong {
                len,
                max: self.header.cmdline_size,
            });
        }
        let (low, high) = self.split(address)?;
        self.put_u32(offset::CMD_LINE_PTR, low);
        self.put_u32(offset::EXT_CMD_LINE_PTR, high);
        Ok(())
    }

    /// Sets ramdisk_image/size (+ext_ fields). Below 4 GiB the initrd must end
    /// at or below initrd_addr_max.
    pub fn set_ramdisk(&mut self, address: u64, size: u64) -> Result<(), BzImageError> {
        let end = address
            .checked_add(size)
            .ok_or(BzImageError::AddressAbove4G(u64::MAX))?;
        let last = end.saturating_sub(1);
        if size != 0
            && !self.header.above_4g_allowed()
            && last > u64::from(self.header.initrd_addr_max)
        {
            return Err(BzImageError::RamdiskTooHigh {
                end: last,
                max: self.header.initrd_addr_max,
            });
        }
        let (image_low, image_high) = self.split(address)?;
        if size >> 32 != 0 && !self.header.above_4g_allowed() {
            return Err(BzImageError::AddressAbove4G(size));
        }
        self.put_u32(offset::RAMDISK_IMAGE, image_low);
        self.put_u32(offset::EXT_RAMDISK_IMAGE, image_high);
        self.put_u32(offset::RAMDISK_SIZE, size as u32);
        self.put_u32(offset::EXT_RAMDISK_SIZE, (size >> 32) as u32);
        Ok(())
    }

    pub fn e820_entries(&self) -> usize {
        usize::from(self.page[offset::E820_ENTRIES])
    }

    /// Appends an entry to the e820 table (at most 128).
    pub fn add_e820(
        &mut self,
        address: u64,
        size: u64,
        kind: E820Type,
    ) -> Result<(), BzImageError> {
        let count = self.e820_entries();
        if count >= E820_MAX_ENTRIES {
            return Err(BzImageError::E820TableFull);
        }
        let at = offset::E820_TABLE + count * E820_ENTRY_SIZE;
        self.put_u64(at, address);
        self.put_u64(at + 8, size);
        self.put_u32(at + 16, kind.0);
        self.page[offset::E820_ENTRIES] = (count + 1) as u8;
        Ok(())
    }

    pub fn set_acpi_rsdp(&mut self, address: u64) {
        self.put_u64(offset::ACPI_RSDP_ADDR, address);
    }

    /// Fills `efi_info` with the "EL64" signature, as the EFI stub would.
    pub fn set_efi_info(&mut self, info: &EfiInfo) {
        let base = offset::EFI_INFO;
        self.page[base..base + 4].copy_from_slice(EFI_LOADER_SIGNATURE_64);
        self.put_u32(base + 0x04, info.system_table as u32);
        self.put_u32(base + 0x08, info.descriptor_size);
        self.put_u32(base + 0x0C, info.descriptor_version);
        self.put_u32(base + 0x10, info.memory_map as u32);
        self.put_u32(base + 0x14, info.memory_map_size);
        self.put_u32(base + 0x18, (info.system_table >> 32) as u32);
        self.put_u32(base + 0x1C, (info.memory_map >> 32) as u32);
    }

    /// Records where the protected-mode kernel was placed (code32_start).
    pub fn set_code32_start(&mut self, address: u32) {
        self.put_u32(offset::CODE32_START, address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    /// A synthetic bzImage: 2 setup sectors + 1 KiB of "kernel".
    fn synthetic(version: u16, xloadflags: u16) -> Vec<u8> {
        let mut image = vec![0u8; 3 * 512 + 1024];
        image[offset::SETUP_SECTS] = 2;
        image[offset::BOOT_FLAG..][..2].copy_from_slice(&BOOT_FLAG.to_le_bytes());
        image[offset::JUMP] = 0xEB;
        image[offset::JUMP + 1] = 0x6A; // header ends at 0x26C
        image[offset::HEADER_MAGIC..][..4].copy_from_slice(HEADER_MAGIC);
        image[offset::VERSION..][..2].copy_from_slice(&version.to_le_bytes());
        image[offset::LOADFLAGS] = 0x81;
        image[offset::INITRD_ADDR_MAX..][..4].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        image[offset::KERNEL_ALIGNMENT..][..4].copy_from_slice(&0x20_0000u32.to_le_bytes());
        image[offset::RELOCATABLE_KERNEL] = 1;
        image[offset::XLOADFLAGS..][..2].copy_from_slice(&xloadflags.to_le_bytes());
        image[offset::CMDLINE_SIZE..][..4].copy_from_slice(&2047u32.to_le_bytes());
        image[offset::PREF_ADDRESS..][..8].copy_from_slice(&0x100_0000u64.to_le_bytes());
        image[offset::INIT_SIZE..][..4].copy_from_slice(&0x80_0000u32.to_le_bytes());
        image[offset::HANDOVER_OFFSET..][..4].copy_from_slice(&0x190u32.to_le_bytes());
        image[offset::HANDOVER_OFFSET + 8] = 0x77; // past the header end: not copied
        image
    }

    #[test]
    fn parses_synthetic_header() {
        let image = synthetic(0x020F, 0x0B);
        let header = SetupHeader::parse(&image).unwrap();
        assert_eq!(header.setup_sects, 2);
        assert_eq!(header.kernel_offset(), 1536);
        assert_eq!(header.kernel(&image).len(), 1024);
        assert_eq!(header.header_end, 0x26C);
        assert_eq!(
            header.loadflags,
            LoadFlags::LOADED_HIGH | LoadFlags::CAN_USE_HEAP
        );
        assert!(header.relocatable_kernel);
        assert_eq!(header.efi_handover_64_offset(), Some(0x390));
        assert_eq!(
            (header.pref_address, header.init_size),
            (0x100_0000, 0x80_0000)
        );

        let mut zero_sects = synthetic(0x020F, 0x01);
        zero_sects[offset::SETUP_SECTS] = 0;
        zero_sects.resize(5 * 512 + 10, 0);
        let header = SetupHeader::parse(&zero_sects).unwrap();
        assert_eq!((header.setup_sects, header.kernel_offset()), (4, 2560));
        assert_eq!(header.efi_handover_64_offset(), None);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            SetupHeader::parse(&synthetic(0x020B, 0x01)),
            Err(BzImageError::VersionTooOld(0x020B))
        );
        assert_eq!(
            SetupHeader::parse(&synthetic(0x020F, 0x02)),
            Err(BzImageError::No64BitEntry(0x02))
        );
        let mut image = synthetic(0x020F, 0x01);
        image[offset::HEADER_MAGIC] = b'X';
        assert!(matches!(
            SetupHeader::parse(&image),
            Err(BzImageError::BadHeaderMagic(_))
        ));
        image[offset::BOOT_FLAG] = 0;
        assert_eq!(
            SetupHeader::parse(&image),
            Err(BzImageError::BadBootFlag(0xAA00))
        );
        assert!(matches!(
            SetupHeader::parse(&image[..0x100]),
            Err(BzImageError::Truncated { .. })
        ));
        // Setup sectors claimed beyond the file.
        let mut image = synthetic(0x020F, 0x01);
        image[offset::SETUP_SECTS] = 200;
        assert_eq!(
            SetupHeader::parse(&image),
            Err(BzImageError::Truncated {
                needed: 201 * 512,
                len: image.len()
            })
        );
    }

    fn u32_in(page: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(page[at..at + 4].try_into().unwrap())
    }

    fn u64_in(page: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(page[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn builds_zero_page() {
        let image = synthetic(0x020F, 0x0B);
        let header = SetupHeader::parse(&image).unwrap();
        let mut params = BootParams::new(&image, &header).unwrap();
        params.set_cmdline(0x1_2345_6000, 100).unwrap();
        params.set_ramdisk(0x2_0000_0000, 0x1_0000_1000).unwrap();
        params.add_e820(0, 0x9F000, E820Type::RAM).unwrap();
        params
            .add_e820(0x10_0000, 0x7FF0_0000, E820Type::RAM)
            .unwrap();
        params.set_acpi_rsdp(0xF_E000);
        params.set_efi_info(&EfiInfo {
            system_table: 0x1_8000_0000,
            memory_map: 0x2_4000_0000,
            memory_map_size: 48 * 20,
            descriptor_size: 48,
            descriptor_version: 1,
        });
        let page = params.as_bytes();
        // Setup header copied; the fields set above differ from the image.
        assert_eq!(page[0x1F1..0x210], image[0x1F1..0x210]);
        assert_eq!(page[0x22C..0x26C], image[0x22C..0x26C]);
        assert_eq!(page[0x26C], 0, "bytes past the header end are not copied");
        assert_eq!(page[0x210], 0xFF);
        assert_eq!((u32_in(page, 0x228), u32_in(page, 0x0C8)), (0x2345_6000, 1));
        assert_eq!((u32_in(page, 0x218), u32_in(page, 0x0C0)), (0, 2));
        assert_eq!((u32_in(page, 0x21C), u32_in(page, 0x0C4)), (0x1000, 1));
        assert_eq!(page[0x1E8], 2);
        assert_eq!(
            (
                u64_in(page, 0x2D0),
                u64_in(page, 0x2D8),
                u32_in(page, 0x2E0)
            ),
            (0, 0x9F000, 1)
        );
        assert_eq!(
            (u64_in(page, 0x2E4), u64_in(page, 0x2EC)),
            (0x10_0000, 0x7FF0_0000)
        );
        assert_eq!(u64_in(page, 0x70), 0xF_E000);
        assert_eq!(&page[0x1C0..0x1C4], b"EL64");
        assert_eq!(
            [0x1C4, 0x1C8, 0x1CC, 0x1D0, 0x1D4, 0x1D8, 0x1DC].map(|at| u32_in(page, at)),
            [0x8000_0000, 48, 1, 0x4000_0000, 960, 1, 2]
        );
        assert_eq!(
            params.set_cmdline(0x1000, 2048),
            Err(BzImageError::CmdlineTooLong {
                len: 2048,
                max: 2047
            })
        );
    }

    #[test]
    fn limits_for_kernels_below_4g() {
        let image = synthetic(0x020F, 0x01);
        let header = SetupHeader::parse(&image).unwrap();
        let mut params = BootParams::new(&image, &header).unwrap();
        assert_eq!(
            params.set_ramdisk(0x7FFF_0000, 0x2_0000),
            Err(BzImageError::RamdiskTooHigh {
                end: 0x8000_FFFF,
                max: 0x7FFF_FFFF
            })
        );
        params.set_ramdisk(0x7FFE_0000, 0x2_0000).unwrap();
        assert_eq!(
            params.set_cmdline(0x1_0000_0000, 10),
            Err(BzImageError::AddressAbove4G(0x1_0000_0000))
        );
        for i in 0..E820_MAX_ENTRIES {
            params
                .add_e820(i as u64 * 4096, 4096, E820Type::RESERVED)
                .unwrap();
        }
        assert_eq!(
            params.add_e820(0, 1, E820Type::RAM),
            Err(BzImageError::E820TableFull)
        );
        assert_eq!(params.e820_entries(), 128);
        // The last entry ends exactly at the end of the table (0x2D0 + 0xA00).
        assert_eq!(u32_in(params.as_bytes(), 0xCD0 - 4), 2);
    }

    /// The vmlinuz of Debian's current 6.1 kernel, downloaded at test time.
    /// Fails the test when apt or dpkg-deb cannot provide it: returning
    /// early would pass without testing anything.
    fn debian_kernel() -> Vec<u8> {
        let depends = Command::new("apt-cache")
            .args(["depends", "linux-image-amd64"])
            .output()
            .unwrap_or_else(|e| panic!("apt-cache cannot be run ({e}); this test needs apt"));
        let depends = String::from_utf8_lossy(&depends.stdout).into_owned();
        let package = depends
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-6.1"))
            .unwrap_or_else(|| {
                panic!("no linux-image-6.1 in `apt-cache depends linux-image-amd64`: {depends:?}")
            });
        let dir: PathBuf =
            std::env::temp_dir().join(format!("vmfw-bzimage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let download = Command::new("apt-get")
            .args(["download", package])
            .current_dir(&dir)
            .output();
        assert!(
            download.as_ref().is_ok_and(|o| o.status.success()),
            "apt-get download {package} failed (needs apt and the network, as the VM \
             tests do): {download:?}"
        );
        let deb = std::fs::read_dir(&dir)
            .expect("download directory")
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "deb"))
            .unwrap_or_else(|| panic!("apt-get download {package} left no .deb"));
        let root = dir.join("root");
        let extracted = Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb.path())
            .arg(&root)
            .status();
        assert!(
            extracted.is_ok_and(|s| s.success()),
            "dpkg-deb -x {} failed",
            deb.path().display()
        );
        let vmlinuz = std::fs::read_dir(root.join("boot"))
            .expect("the package has /boot")
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
            .unwrap_or_else(|| panic!("{package} has no /boot/vmlinuz-*"));
        let image = std::fs::read(vmlinuz.path()).expect("vmlinuz readable");
        let _ = std::fs::remove_dir_all(&dir);
        image
    }

    #[test]
    fn parses_debian_kernel() {
        let image = debian_kernel();
        let header = SetupHeader::parse(&image).unwrap();
        assert!(header.version >= 0x020F, "version {:#x}", header.version);
        assert!(header.xloadflags.contains(
            XLoadFlags::KERNEL_64
                | XLoadFlags::CAN_BE_LOADED_ABOVE_4G
                | XLoadFlags::EFI_HANDOVER_64
        ));
        assert!(header.loadflags.contains(LoadFlags::LOADED_HIGH));
        assert!(header.relocatable_kernel);
        assert_eq!(header.kernel_alignment, 0x20_0000);
        assert_eq!(header.pref_address, 0x100_0000);
        assert!(header.cmdline_size >= 2047);
        assert!(header.init_size as usize > header.kernel(&image).len());
        assert!(header.efi_handover_64_offset().is_some());
        // The protected-mode kernel is the rest of the file after the setup sectors.
        assert_eq!(
            header.kernel_offset() + header.kernel(&image).len(),
            image.len()
        );
        let mut params = BootParams::new(&image, &header).unwrap();
        params.set_cmdline(0x2_0000_0000, 30).unwrap();
        let page = params.as_bytes();
        assert_eq!(
            page[0x1F1..header.header_end],
            {
                let mut expected = image[0x1F1..header.header_end].to_vec();
                expected[0x210 - 0x1F1] = 0xFF;
                expected[0x228 - 0x1F1..0x22C - 0x1F1].fill(0);
                expected
            }[..]
        );
        assert_eq!(&page[0x202..0x206], b"HdrS");
    }
}
