//! Loading boot files from a volume: whole files into memory, kernels and
//! initrds into EFI pages, the PE check that tells a kernel with the EFI
//! stub from one without, and the Linux boot protocol path for the latter.
//! Shared by the BLS boot (`bls_boot`) and the direct kernel boot
//! (`direct`); the files are read through [`EfiFile`] (UEFI 2.10 §13.5).

use crate::efi_file::{EfiFile, ReadError};
use crate::initrd;
use crate::pages::PageBuffer;
use crate::status::status_name;
use crate::uki;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use log::info;
use platform::memory::MemoryType;
use uefi_raw::Status;

/// Why a boot file did not load or the kernel did not boot.
#[derive(Debug)]
pub enum LoadError {
    /// A file named by the entry could not be read.
    Read { path: String, status: Status },
    /// The file does not fit in firmware memory.
    TooLarge { path: String, size: u64 },
    /// A kernel, initrd or image path names a directory.
    Directory { path: String },
    /// The entry names neither `linux` nor `efi` (parse_entry rejects these,
    /// kept for completeness).
    NoKernel,
    /// LoadImage refused the kernel.
    Load { path: String, status: Status },
    /// The initrd protocol could not be installed.
    Initrd(Status),
    /// The kernel returned from StartImage.
    Returned(Status),
    /// A `linux` file without PE headers whose setup header is no bzImage's:
    /// refused from its first sectors, before the whole file is read.
    NotKernel {
        path: String,
        size: u64,
        error: crate::bzimage::BzImageError,
    },
    /// Secure Boot is on, and the Linux boot protocol starts a kernel
    /// without LoadImage, which is what verifies images (§32.5).
    Unverifiable { path: String },
    /// The Linux boot protocol could not start the kernel.
    Protocol {
        path: String,
        error: crate::linux_boot::LinuxBootError,
    },
}

impl LoadError {
    /// The EFI status that stands for this failure (what a built-in image
    /// that failed this way returns from StartImage).
    pub fn status(&self) -> Status {
        match self {
            LoadError::Read { status, .. }
            | LoadError::Load { status, .. }
            | LoadError::Initrd(status)
            | LoadError::Returned(status) => *status,
            LoadError::TooLarge { .. } => Status::OUT_OF_RESOURCES,
            LoadError::Directory { .. } | LoadError::NoKernel => Status::NOT_FOUND,
            LoadError::Protocol { .. } | LoadError::NotKernel { .. } => Status::LOAD_ERROR,
            LoadError::Unverifiable { .. } => Status::SECURITY_VIOLATION,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, status } => {
                write!(f, "cannot read {path}: {}", status_name(*status))
            }
            LoadError::TooLarge { path, size } => {
                write!(f, "{path} ({size} bytes) does not fit in memory")
            }
            LoadError::Directory { path } => write!(f, "{path} is a directory, not a file"),
            LoadError::NoKernel => write!(f, "no linux or efi line"),
            LoadError::Load { path, status } => {
                write!(f, "cannot load {path}: {}", status_name(*status))
            }
            LoadError::Initrd(status) => {
                write!(f, "cannot publish the initrd: {}", status_name(*status))
            }
            LoadError::Returned(status) => {
                write!(f, "the kernel returned: {}", status_name(*status))
            }
            LoadError::NotKernel { path, size, error } => write!(
                f,
                "{path} ({size} bytes) is neither an EFI image nor a Linux kernel ({error}): refused"
            ),
            LoadError::Unverifiable { path } => write!(
                f,
                "{path}: Secure Boot is on and the Linux boot protocol cannot verify a kernel; \
                 refused (boot it through its EFI stub)"
            ),
            LoadError::Protocol { path, error } => {
                write!(
                    f,
                    "cannot boot {path} through the Linux boot protocol: {error}"
                )
            }
        }
    }
}

/// Opens the regular file `path` of the volume `root` for reading: a
/// directory there is refused, not read as an empty file.
pub fn open_file(root: &EfiFile, path: &str) -> Result<EfiFile, LoadError> {
    let read_error = |status| LoadError::Read {
        path: path.to_string(),
        status,
    };
    let file = root.open(path).map_err(read_error)?;
    if file.is_directory().map_err(read_error)? {
        return Err(LoadError::Directory {
            path: path.to_string(),
        });
    }
    Ok(file)
}

/// Reads `path` from the volume `root` into `out`, appending; files over
/// `limit` bytes are refused.
pub fn read_file(
    root: &EfiFile,
    path: &str,
    out: &mut Vec<u8>,
    limit: u64,
) -> Result<(), LoadError> {
    let file = open_file(root, path)?;
    file.read_to_end(out, limit).map_err(|e| match e {
        ReadError::Status(status) => LoadError::Read {
            path: path.to_string(),
            status,
        },
        ReadError::TooLarge(size) => LoadError::TooLarge {
            path: path.to_string(),
            size,
        },
    })
}

/// Reads the files `paths` of the volume `root` into one page buffer below
/// `max_address`, each starting on a 4-byte boundary (how several initrds
/// are concatenated; `crate::initrd::padded_len`).
pub fn read_into_pages(
    root: &EfiFile,
    paths: &[String],
    memory_type: MemoryType,
    max_address: u64,
) -> Result<PageBuffer, LoadError> {
    let read_error = |path: &str, status| LoadError::Read {
        path: path.to_string(),
        status,
    };
    let mut files = Vec::with_capacity(paths.len());
    let mut total = 0usize;
    for path in paths {
        let file = open_file(root, path)?;
        let size = file.size().map_err(|s| read_error(path, s))?;
        let too_large = || LoadError::TooLarge {
            path: path.clone(),
            size,
        };
        let start = initrd::padded_len(total).ok_or_else(too_large)?;
        let len = usize::try_from(size).map_err(|_| too_large())?;
        total = start.checked_add(len).ok_or_else(too_large)?;
        files.push((path, file, start, len));
    }
    let mut buffer =
        PageBuffer::allocate(total, memory_type, max_address).map_err(|_| LoadError::TooLarge {
            path: paths.join(" + "),
            size: total as u64,
        })?;
    for (path, file, start, len) in files {
        file.read_into(&mut buffer.as_mut_slice()[start..start + len], true)
            .map_err(|s| read_error(path, s))?;
    }
    Ok(buffer)
}

/// Whether the file at `path` starts with PE headers (a kernel with the EFI
/// stub, a UKI, any EFI application).
pub fn file_is_pe(root: &EfiFile, path: &str) -> Result<bool, LoadError> {
    let read_error = |status| LoadError::Read {
        path: path.to_string(),
        status,
    };
    let file = open_file(root, path)?;
    let mut header = vec![0u8; uki::HEADER_READ_SIZE];
    let len = file.read_into(&mut header, false).map_err(read_error)?;
    Ok(uki::is_pe_image(&header[..len]))
}

/// The setup area of a bzImage: at most 255 setup sectors and the boot
/// sector (Linux `Documentation/arch/x86/boot.rst`).
const SETUP_READ_SIZE: usize = 256 * 512;

/// Checks the setup header of the bzImage at `path` from its first
/// sectors, so that a large file that is no kernel is refused without
/// being read whole.
fn check_bzimage(root: &EfiFile, path: &str) -> Result<(), LoadError> {
    let read_error = |status| LoadError::Read {
        path: path.to_string(),
        status,
    };
    let file = open_file(root, path)?;
    let size = file.size().map_err(read_error)?;
    let len = usize::try_from(size).map_or(SETUP_READ_SIZE, |s| s.min(SETUP_READ_SIZE));
    let mut header = Vec::new();
    header
        .try_reserve_exact(len)
        .map_err(|_| LoadError::TooLarge {
            path: path.to_string(),
            size,
        })?;
    header.resize(len, 0);
    let read = file.read_into(&mut header, false).map_err(read_error)?;
    crate::bzimage::SetupHeader::parse(&header[..read])
        .map(|_| ())
        .map_err(|error| LoadError::NotKernel {
            path: path.to_string(),
            size,
            error,
        })
}

/// A `linux` kernel without the EFI stub: kernel and initrds into pages,
/// then the 64-bit boot protocol. Returns only on failure.
pub fn boot_with_protocol(
    root: &EfiFile,
    kernel: &str,
    initrds: &[String],
    options: &str,
    description: &str,
) -> Result<(), LoadError> {
    if crate::services::current().is_ok_and(|services| services.secure_boot()) {
        return Err(LoadError::Unverifiable {
            path: kernel.to_string(),
        });
    }
    check_bzimage(root, kernel)?;
    let image = read_into_pages(
        root,
        &[kernel.to_string()],
        MemoryType::LOADER_DATA,
        u64::MAX,
    )?;
    let initrd = if initrds.is_empty() {
        None
    } else {
        Some(read_into_pages(
            root,
            initrds,
            MemoryType::LOADER_DATA,
            crate::linux_boot::INITRD_MAX_ADDRESS,
        )?)
    };
    info!("booting {description} through the Linux boot protocol");
    let error = crate::linux_boot::boot(image.as_slice(), initrd, options);
    Err(LoadError::Protocol {
        path: kernel.to_string(),
        error,
    })
}
