//! A downloaded file in EFI pages (never the firmware heap: boot files and
//! disk images are tens or hundreds of MB). It is sized from the length
//! the server announced, and grows by doubling when none was given.

use platform::memory::{self, MemoryType, PAGE_SIZE, Placement};

use super::error::NetBootError;

/// BootServicesData pages holding `len` bytes, freed on drop.
pub struct Download {
    base: u64,
    pages: u64,
    len: usize,
}

/// The first allocation without an announced length.
const INITIAL_BYTES: u64 = 4 << 20;

fn allocate(bytes: u64) -> Result<(u64, u64), NetBootError> {
    let pages = bytes.div_ceil(PAGE_SIZE).max(1);
    memory::with_map(|map| map.allocate(Placement::Anywhere, MemoryType::BOOT_SERVICES_DATA, pages))
        .map(|base| (base, pages))
        .map_err(|_| NetBootError::OutOfResources { bytes })
}

impl Download {
    /// Room for `length` bytes, or a first guess when it is unknown.
    pub fn new(length: Option<u64>) -> Result<Self, NetBootError> {
        let (base, pages) = allocate(length.unwrap_or(INITIAL_BYTES))?;
        Ok(Download {
            base,
            pages,
            len: 0,
        })
    }

    fn capacity(&self) -> u64 {
        self.pages * PAGE_SIZE
    }

    /// Appends `bytes`, moving to pages twice as large when they do not fit.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), NetBootError> {
        let needed = self.len as u64 + bytes.len() as u64;
        if needed > self.capacity() {
            let (base, pages) = allocate(needed.max(self.capacity().saturating_mul(2)))?;
            // SAFETY: both ranges are pages we own, identity-mapped and
            // distinct; `len` bytes of the old ones are filled.
            unsafe {
                core::ptr::copy_nonoverlapping(self.base as *const u8, base as *mut u8, self.len)
            };
            let _ = memory::with_map(|map| map.free(self.base, self.pages));
            self.base = base;
            self.pages = pages;
        }
        // SAFETY: `len + bytes.len()` fits the pages (checked above), which
        // are ours; `bytes` is another buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (self.base as *mut u8).add(self.len),
                bytes.len(),
            )
        };
        self.len += bytes.len();
        Ok(())
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the pages are ours and `len` bytes of them are filled.
        unsafe { core::slice::from_raw_parts(self.base as *const u8, self.len) }
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        let _ = memory::with_map(|map| map.free(self.base, self.pages));
    }
}
