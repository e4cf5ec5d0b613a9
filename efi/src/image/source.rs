//! Where LoadImage (UEFI 2.10 §7.4.1) gets an image's bytes: the caller's
//! SourceBuffer in place, a SimpleFileSystem file read piece by piece
//! (headers, then each section straight into the image's pages), or a
//! LoadFile/LoadFile2 buffer in temporary EFI pages. Nothing of the file
//! is copied to the firmware heap but its headers, so an image's size is
//! bounded by free memory, not by the heap, and a file larger than the
//! image it holds (data appended after the last section) is never read
//! whole.

use alloc::vec::Vec;
use core::ffi::c_void;
use platform::memory::{self, MemoryType, PAGE_SIZE, Placement};
use uefi_raw::Status;
use uefi_raw::protocol::file_system::{FileInfo, FileProtocolV1};

/// Bytes read first to find the PE headers and the section table: the
/// DOS stub, the COFF and optional headers and 96 sections of 40 bytes
/// (`pe::MAX_SECTIONS`) fit with room to spare.
const HEADER_READ_SIZE: usize = 64 * 1024;
/// The most one File.Read asks for: big enough to keep the per-call cost
/// out of the way, small enough that a driver's own bounce buffers (if it
/// needs any) stay small.
const READ_CHUNK: usize = 16 << 20;

/// The bytes of the image being loaded.
pub(super) enum Source<'a> {
    /// The caller's SourceBuffer or pages the firmware filled.
    Memory(&'a [u8]),
    /// An open file (closed by the caller) of `len` bytes.
    File {
        handle: *mut FileProtocolV1,
        len: usize,
    },
}

impl Source<'_> {
    /// The file's size in bytes.
    pub(super) fn len(&self) -> usize {
        match self {
            Source::Memory(data) => data.len(),
            Source::File { len, .. } => *len,
        }
    }

    /// The first bytes of the file, enough for `pe::parse_headers`; a copy
    /// on the heap of at most [`HEADER_READ_SIZE`] bytes.
    pub(super) fn headers(&self) -> Result<Vec<u8>, Status> {
        let len = self.len().min(HEADER_READ_SIZE);
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| Status::OUT_OF_RESOURCES)?;
        out.resize(len, 0);
        self.read_at(0, &mut out)?;
        Ok(out)
    }

    /// Fills `out` from offset `offset` of the file; a file ending early is
    /// LOAD_ERROR (its size said otherwise).
    pub(super) fn read_at(&self, offset: usize, out: &mut [u8]) -> Result<(), Status> {
        match *self {
            Source::Memory(data) => {
                let bytes = offset
                    .checked_add(out.len())
                    .and_then(|end| data.get(offset..end))
                    .ok_or(Status::LOAD_ERROR)?;
                out.copy_from_slice(bytes);
                Ok(())
            }
            Source::File { handle, .. } => read_file_at(handle, offset, out),
        }
    }
}

/// The size of the open file `handle` (EFI_FILE_INFO.FileSize, §13.5.12).
pub(super) fn file_size(handle: *mut FileProtocolV1) -> Result<u64, Status> {
    // EFI_FILE_INFO with a name of up to ~480 UCS-2 characters.
    let mut info = [0u64; 128];
    let mut size = core::mem::size_of_val(&info);
    // SAFETY: `handle` is an open file; the buffer is `size` bytes.
    let status = unsafe {
        ((*handle).get_info)(
            handle,
            &FileInfo::ID,
            &mut size,
            info.as_mut_ptr() as *mut c_void,
        )
    };
    if status != Status::SUCCESS {
        return Err(Status::LOAD_ERROR);
    }
    Ok(info[1]) // FileSize follows the UINT64 Size field.
}

/// SetPosition then Read in chunks of at most [`READ_CHUNK`] (§13.5.9-10).
fn read_file_at(handle: *mut FileProtocolV1, offset: usize, out: &mut [u8]) -> Result<(), Status> {
    // SAFETY: `handle` is an open file; SetPosition takes a value.
    let status = unsafe { ((*handle).set_position)(handle, offset as u64) };
    if status.is_error() {
        return Err(status);
    }
    let mut done = 0;
    while done < out.len() {
        let want = (out.len() - done).min(READ_CHUNK);
        let mut got = want;
        // SAFETY: `out[done..]` has room for `want` bytes; Read only writes.
        let status =
            unsafe { ((*handle).read)(handle, &mut got, out[done..].as_mut_ptr() as *mut c_void) };
        if status.is_error() {
            // A damaged file is a failed load, not a missing one.
            return Err(status);
        }
        if got == 0 || got > want {
            return Err(Status::LOAD_ERROR);
        }
        done += got;
    }
    Ok(())
}

/// The whole file, for Secure Boot's check (the Authenticode digest covers
/// the file's every byte but the checksum and the certificate table): the
/// caller's buffer in place, or a file read once into temporary pages, from
/// which the image is then loaded, so what is verified is what runs.
pub(super) enum Whole<'a> {
    Borrowed(&'a [u8]),
    Read(TempPages),
}

impl Whole<'_> {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Whole::Borrowed(data) => data,
            Whole::Read(pages) => pages.bytes(pages.len),
        }
    }
}

impl<'a> Source<'a> {
    /// All of the file; a file is read into EFI pages, never the heap.
    pub(super) fn whole(&self) -> Result<Whole<'a>, Status> {
        match *self {
            Source::Memory(data) => Ok(Whole::Borrowed(data)),
            Source::File { handle, len } => {
                let mut pages = TempPages::allocate(len)?;
                // SAFETY: the pages were just allocated for `len` bytes, are
                // identity-mapped and ours alone.
                let out = unsafe { core::slice::from_raw_parts_mut(pages.as_mut_ptr(), len) };
                read_file_at(handle, 0, out)?;
                Ok(Whole::Read(pages))
            }
        }
    }
}

/// Temporary BootServicesData pages for a LoadFile(2) buffer, freed on drop.
pub(super) struct TempPages {
    base: u64,
    pages: u64,
    len: usize,
}

impl TempPages {
    /// Pages for `len` bytes; OUT_OF_RESOURCES when free memory is short.
    pub(super) fn allocate(len: usize) -> Result<Self, Status> {
        let pages = (len as u64).div_ceil(PAGE_SIZE).max(1);
        let base = memory::with_map(|m| {
            m.allocate(Placement::Anywhere, MemoryType::BOOT_SERVICES_DATA, pages)
        })
        .map_err(|_| Status::OUT_OF_RESOURCES)?;
        Ok(TempPages { base, pages, len })
    }

    pub(super) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.base as *mut u8
    }

    /// The first `len` bytes (at most the allocated length).
    pub(super) fn bytes(&self, len: usize) -> &[u8] {
        // SAFETY: the pages are ours, identity-mapped and hold at least
        // `self.len` bytes; the loader filled what it reported.
        unsafe { core::slice::from_raw_parts(self.base as *const u8, len.min(self.len)) }
    }
}

impl Drop for TempPages {
    fn drop(&mut self) {
        let _ = memory::with_map(|m| m.free(self.base, self.pages));
    }
}
