//! `hvm_start_info` (Xen `include/public/arch-x86/hvm/start_info.h`), the boot
//! information a PVH VMM hands us in `%ebx`. Every pointer and length in it is
//! validated before use; the parse result is self-contained (no pointers).
#![forbid(unsafe_code)]

use core::fmt;

pub const MAGIC: u32 = 0x336e_c578;
/// Size of the version-1 structure.
const HEADER_SIZE: usize = 56;
const MODLIST_ENTRY_SIZE: usize = 32;
const MEMMAP_ENTRY_SIZE: usize = 24;

pub const MAX_MEMMAP_ENTRIES: usize = 128;
pub const MAX_MODULES: usize = 8;
/// The longest firmware command line taken, as long as Linux's on x86
/// (COMMAND_LINE_SIZE). A longer one is refused whole, never cut: a cut
/// line loses its last words or splits a quoted value.
pub const MAX_CMDLINE: usize = 2048;

/// Reads guest-physical memory. The firmware's implementation checks that
/// the range is mapped RAM; tests use a byte vector.
pub trait PhysRead {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), StartInfoError>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    BadMagic(u32),
    UnsupportedVersion(u32),
    NoMemoryMap,
    TooManyMemmapEntries(u32),
    /// A pointer in the structure names memory we cannot read.
    Unreadable {
        addr: u64,
        len: u64,
    },
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "hvm_start_info magic {m:#x}, expected {MAGIC:#x}"),
            Self::UnsupportedVersion(v) => write!(f, "hvm_start_info version {v} unsupported"),
            Self::NoMemoryMap => write!(f, "hvm_start_info carries no memory map"),
            Self::TooManyMemmapEntries(n) => write!(f, "hvm_start_info memory map has {n} entries"),
            Self::Unreadable { addr, len } => {
                write!(
                    f,
                    "hvm_start_info points at unreadable memory {addr:#x}+{len:#x}"
                )
            }
        }
    }
}

/// E820-style types used by `hvm_memmap_table_entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemmapType(pub u32);

impl MemmapType {
    pub const RAM: Self = Self(1);
    pub const RESERVED: Self = Self(2);
    pub const ACPI: Self = Self(3);
    pub const NVS: Self = Self(4);
    pub const UNUSABLE: Self = Self(5);
    pub const DISABLED: Self = Self(6);
    pub const PMEM: Self = Self(7);

    pub fn name(self) -> &'static str {
        match self {
            Self::RAM => "ram",
            Self::RESERVED => "reserved",
            Self::ACPI => "acpi",
            Self::NVS => "acpi-nvs",
            Self::UNUSABLE => "unusable",
            Self::DISABLED => "disabled",
            Self::PMEM => "pmem",
            _ => "unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemmapEntry {
    pub addr: u64,
    pub size: u64,
    pub kind: MemmapType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    pub addr: u64,
    pub size: u64,
}

pub struct StartInfo {
    pub version: u32,
    pub rsdp: Option<u64>,
    memmap: [MemmapEntry; MAX_MEMMAP_ENTRIES],
    memmap_len: usize,
    modules: [Module; MAX_MODULES],
    modules_len: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// The VMM's command line was longer than [`MAX_CMDLINE`] and ignored.
    cmdline_refused: bool,
}

// The fields below are read out of the fixed-size arrays `parse` fills, at
// constant offsets inside them, so the zero for a short read never happens.
fn u32_at(b: &[u8], off: usize) -> u32 {
    crate::le::u32_at(b, off).unwrap_or(0)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    crate::le::u64_at(b, off).unwrap_or(0)
}

impl StartInfo {
    pub fn parse(mem: &dyn PhysRead, addr: u64) -> Result<StartInfo, StartInfoError> {
        let mut header = [0u8; HEADER_SIZE];
        // Version 0 is 48 bytes; read that much first so a v0 structure at
        // the very end of RAM still parses.
        mem.read(addr, &mut header[..48])?;
        let magic = u32_at(&header, 0);
        if magic != MAGIC {
            return Err(StartInfoError::BadMagic(magic));
        }
        let version = u32_at(&header, 4);
        if version == 0 {
            // No memory map in version 0; PVH VMMs we support all give v1.
            return Err(StartInfoError::NoMemoryMap);
        }
        if version > 1 {
            log::warn!("hvm_start_info version {version}, reading it as version 1");
        }
        mem.read(addr + 48, &mut header[48..])?;

        let mut info = StartInfo {
            version,
            rsdp: None,
            memmap: [MemmapEntry {
                addr: 0,
                size: 0,
                kind: MemmapType(0),
            }; MAX_MEMMAP_ENTRIES],
            memmap_len: 0,
            modules: [Module { addr: 0, size: 0 }; MAX_MODULES],
            modules_len: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
            cmdline_refused: false,
        };

        let rsdp = u64_at(&header, 32);
        info.rsdp = (rsdp != 0).then_some(rsdp);

        let memmap_paddr = u64_at(&header, 40);
        let memmap_entries = u32_at(&header, 48);
        if memmap_paddr == 0 || memmap_entries == 0 {
            return Err(StartInfoError::NoMemoryMap);
        }
        if memmap_entries as usize > MAX_MEMMAP_ENTRIES {
            return Err(StartInfoError::TooManyMemmapEntries(memmap_entries));
        }
        for i in 0..memmap_entries as usize {
            let mut raw = [0u8; MEMMAP_ENTRY_SIZE];
            mem.read(element(memmap_paddr, i, MEMMAP_ENTRY_SIZE)?, &mut raw)?;
            let entry = MemmapEntry {
                addr: u64_at(&raw, 0),
                size: u64_at(&raw, 8),
                kind: MemmapType(u32_at(&raw, 16)),
            };
            // Entries that wrap the address space are dropped, not trusted.
            if entry.size == 0 || entry.addr.checked_add(entry.size).is_none() {
                log::warn!("ignoring memory map entry {entry:x?}");
                continue;
            }
            info.memmap[info.memmap_len] = entry;
            info.memmap_len += 1;
        }

        let cmdline_paddr = u64_at(&header, 24);
        if cmdline_paddr != 0 {
            match read_c_string(mem, cmdline_paddr, &mut info.cmdline)? {
                Some(len) => info.cmdline_len = len,
                None => info.cmdline_refused = true,
            }
        }

        let nr_modules = u32_at(&header, 12) as usize;
        let modlist_paddr = u64_at(&header, 16);
        if nr_modules > MAX_MODULES {
            log::warn!("hvm_start_info has {nr_modules} modules; using the first {MAX_MODULES}");
        }
        if modlist_paddr != 0 {
            for i in 0..nr_modules.min(MAX_MODULES) {
                let mut raw = [0u8; MODLIST_ENTRY_SIZE];
                mem.read(element(modlist_paddr, i, MODLIST_ENTRY_SIZE)?, &mut raw)?;
                info.modules[info.modules_len] = Module {
                    addr: u64_at(&raw, 0),
                    size: u64_at(&raw, 8),
                };
                info.modules_len += 1;
            }
        }
        Ok(info)
    }

    pub fn memmap(&self) -> &[MemmapEntry] {
        &self.memmap[..self.memmap_len]
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.modules_len]
    }

    /// Whether the VMM's command line was longer than [`MAX_CMDLINE`] and so
    /// ignored ([`StartInfo::cmdline`] is then empty). The caller reports
    /// it once the logger runs.
    pub fn cmdline_refused(&self) -> bool {
        self.cmdline_refused
    }

    /// The firmware's command line (QEMU `-append`), lossily decoded.
    pub fn cmdline(&self) -> &str {
        let bytes = &self.cmdline[..self.cmdline_len];
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

/// Reads a NUL-terminated string of at most `buf.len()` bytes, one small chunk
/// at a time so a string near the end of RAM is still readable.
/// Address of element `index` of `size`-byte elements at `base`; an array
/// that wraps the address space is unreadable.
fn element(base: u64, index: usize, size: usize) -> Result<u64, StartInfoError> {
    let offset = index.checked_mul(size).map(|o| o as u64);
    offset
        .and_then(|o| base.checked_add(o))
        .ok_or(StartInfoError::Unreadable {
            addr: base,
            len: size as u64,
        })
}

/// Reads a NUL-terminated string into `buf`: its length, or None when no
/// NUL comes within `buf.len()` bytes (too long: refused, not cut).
fn read_c_string(
    mem: &dyn PhysRead,
    addr: u64,
    buf: &mut [u8],
) -> Result<Option<usize>, StartInfoError> {
    let mut len = 0;
    while len <= buf.len() {
        let mut byte = [0u8];
        mem.read(element(addr, len, 1)?, &mut byte)?;
        if byte[0] == 0 {
            return Ok(Some(len));
        }
        let Some(slot) = buf.get_mut(len) else {
            break;
        };
        *slot = byte[0];
        len += 1;
    }
    buf.fill(0);
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    struct FakeMem(Vec<u8>);

    impl PhysRead for FakeMem {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), StartInfoError> {
            let err = StartInfoError::Unreadable {
                addr,
                len: buf.len() as u64,
            };
            let start = usize::try_from(addr).map_err(|_| err)?;
            let end = start.checked_add(buf.len()).ok_or(err)?;
            buf.copy_from_slice(self.0.get(start..end).ok_or(err)?);
            Ok(())
        }
    }

    fn put32(m: &mut [u8], off: usize, v: u32) {
        m[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put64(m: &mut [u8], off: usize, v: u64) {
        m[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// A start_info at 0x100 as QEMU's PVH option ROM builds it.
    fn sample() -> FakeMem {
        let mut m = vec![0u8; 0x1000];
        put32(&mut m, 0x100, MAGIC);
        put32(&mut m, 0x104, 1);
        put32(&mut m, 0x10c, 1); // one module
        put64(&mut m, 0x110, 0x400);
        put64(&mut m, 0x118, 0x300); // cmdline
        put64(&mut m, 0x120, 0xf_5a40); // rsdp
        put64(&mut m, 0x128, 0x200); // memmap
        put32(&mut m, 0x130, 3);
        let entries = [
            (0u64, 0x9fc00u64, 1u32),
            (0xf0000, 0x10000, 2),
            (0x10_0000, 0x3ff0_0000, 1),
        ];
        for (i, (a, s, t)) in entries.iter().enumerate() {
            put64(&mut m, 0x200 + i * 24, *a);
            put64(&mut m, 0x208 + i * 24, *s);
            put32(&mut m, 0x210 + i * 24, *t);
        }
        m[0x300..0x309].copy_from_slice(b"log=debug");
        put64(&mut m, 0x400, 0x80_0000);
        put64(&mut m, 0x408, 0x1234);
        FakeMem(m)
    }

    #[test]
    fn parses_qemu_style_start_info() {
        let info = StartInfo::parse(&sample(), 0x100).unwrap();
        assert_eq!(info.rsdp, Some(0xf_5a40));
        assert_eq!(info.cmdline(), "log=debug");
        assert_eq!(info.memmap().len(), 3);
        assert_eq!(
            info.memmap()[2],
            MemmapEntry {
                addr: 0x10_0000,
                size: 0x3ff0_0000,
                kind: MemmapType::RAM
            }
        );
        assert_eq!(
            info.modules(),
            &[Module {
                addr: 0x80_0000,
                size: 0x1234
            }]
        );
    }

    #[test]
    fn rejects_bad_magic_and_version_0() {
        let mut mem = sample();
        put32(&mut mem.0, 0x100, 0xdead_beef);
        assert_eq!(
            StartInfo::parse(&mem, 0x100).err(),
            Some(StartInfoError::BadMagic(0xdead_beef))
        );
        let mut mem = sample();
        put32(&mut mem.0, 0x104, 0);
        assert_eq!(
            StartInfo::parse(&mem, 0x100).err(),
            Some(StartInfoError::NoMemoryMap)
        );
    }

    #[test]
    fn rejects_pointers_outside_memory() {
        let mut mem = sample();
        put64(&mut mem.0, 0x128, 0xffff_ffff_ffff_fff0);
        assert!(matches!(
            StartInfo::parse(&mem, 0x100),
            Err(StartInfoError::Unreadable { .. })
        ));
        assert!(matches!(
            StartInfo::parse(&sample(), 0xfe0),
            Err(StartInfoError::Unreadable { .. })
        ));
        let mut mem = sample();
        put32(&mut mem.0, 0x130, 100_000);
        assert_eq!(
            StartInfo::parse(&mem, 0x100).err(),
            Some(StartInfoError::TooManyMemmapEntries(100_000))
        );
    }

    #[test]
    fn drops_wrapping_entries_and_bounds_cmdline() {
        let mut mem = sample();
        put64(&mut mem.0, 0x200, u64::MAX - 5);
        for b in &mut mem.0[0x300..0x1000] {
            *b = b'x';
        }
        put32(&mut mem.0, 0x10c, 0);
        let info = StartInfo::parse(&mem, 0x100).unwrap();
        assert_eq!(info.memmap().len(), 2);
        // 3,328 bytes without a NUL: refused whole, not cut.
        assert!(info.cmdline_refused());
        assert_eq!(info.cmdline(), "");
        assert!(info.modules().is_empty());
        // Exactly MAX_CMDLINE bytes are taken; one more is refused.
        for (len, refused) in [(MAX_CMDLINE, false), (MAX_CMDLINE + 1, true)] {
            let mut mem = sample();
            for b in &mut mem.0[0x300..0x300 + len] {
                *b = b'y';
            }
            mem.0[0x300 + len] = 0;
            let info = StartInfo::parse(&mem, 0x100).unwrap();
            assert_eq!(info.cmdline_refused(), refused, "{len} bytes");
            assert_eq!(info.cmdline().len(), if refused { 0 } else { len });
        }
    }
}
