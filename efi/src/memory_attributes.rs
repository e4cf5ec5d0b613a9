//! EFI_MEMORY_ATTRIBUTES_TABLE (UEFI 2.10 §4.6.4): tells the OS which parts
//! of runtime memory are code (read-only) and data (no-execute), so it can
//! map runtime services W^X. Built from the final memory map at
//! ExitBootServices; the OS reads it after that.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use platform::memory::{MemoryAttribute, MemoryType, PAGE_SIZE, Region};

/// Where the firmware image's parts lie (page aligned, from the linker script).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageLayout {
    /// Read-only data: `start..text_start`.
    pub start: u64,
    pub text_start: u64,
    pub text_end: u64,
    /// Writable data and BSS: `text_end..end`.
    pub end: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub ty: MemoryType,
    pub start: u64,
    pub pages: u64,
    pub attribute: MemoryAttribute,
}

/// One entry per runtime range, the firmware image split into its rodata,
/// text and data parts; other runtime code is left executable and writable
/// (we cannot know its layout), runtime data is marked no-execute.
pub fn entries(regions: &[Region], image: ImageLayout) -> Vec<Entry> {
    let parts = [
        (
            image.start,
            image.text_start,
            MemoryAttribute::READ_ONLY | MemoryAttribute::EXECUTE_PROTECT,
        ),
        (image.text_start, image.text_end, MemoryAttribute::READ_ONLY),
        (image.text_end, image.end, MemoryAttribute::EXECUTE_PROTECT),
    ];
    let mut out = Vec::new();
    for r in regions
        .iter()
        .filter(|r| r.attribute.contains(MemoryAttribute::RUNTIME))
    {
        let mut cursor = r.start;
        let mut push = |start: u64, end: u64, protection: MemoryAttribute| {
            if end > start {
                out.push(Entry {
                    ty: r.ty,
                    start,
                    pages: (end - start) / PAGE_SIZE,
                    attribute: MemoryAttribute::RUNTIME | protection,
                });
            }
        };
        for (start, end, protection) in parts {
            let (start, end) = (start.max(r.start), end.min(r.end()));
            if start >= end {
                continue;
            }
            push(cursor, start, default_protection(r.ty));
            push(start, end, protection);
            cursor = end;
        }
        push(cursor, r.end(), default_protection(r.ty));
    }
    out
}

fn default_protection(ty: MemoryType) -> MemoryAttribute {
    if ty == MemoryType::RUNTIME_SERVICES_DATA {
        MemoryAttribute::EXECUTE_PROTECT
    } else {
        MemoryAttribute::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: u64, pages: u64, ty: MemoryType) -> Region {
        Region {
            start,
            pages,
            ty,
            attribute: MemoryAttribute::RUNTIME | MemoryAttribute::WRITE_BACK,
            freeable: false,
        }
    }

    #[test]
    fn splits_the_firmware_image_and_keeps_other_runtime_ranges() {
        let image = ImageLayout {
            start: 0x10_0000,
            text_start: 0x10_2000,
            text_end: 0x10_8000,
            end: 0x11_0000,
        };
        let regions = [
            region(0x10_0000, 8, MemoryType::RUNTIME_SERVICES_CODE),
            region(0x10_8000, 8, MemoryType::RUNTIME_SERVICES_DATA),
            Region {
                attribute: MemoryAttribute::WRITE_BACK,
                ..region(0x20_0000, 4, MemoryType::BOOT_SERVICES_DATA)
            },
            region(0x30_0000, 2, MemoryType::RUNTIME_SERVICES_DATA),
        ];
        let e = entries(&regions, image);
        let rt = MemoryAttribute::RUNTIME;
        assert_eq!(
            e,
            vec![
                Entry {
                    ty: MemoryType::RUNTIME_SERVICES_CODE,
                    start: 0x10_0000,
                    pages: 2,
                    attribute: rt | MemoryAttribute::READ_ONLY | MemoryAttribute::EXECUTE_PROTECT
                },
                Entry {
                    ty: MemoryType::RUNTIME_SERVICES_CODE,
                    start: 0x10_2000,
                    pages: 6,
                    attribute: rt | MemoryAttribute::READ_ONLY
                },
                Entry {
                    ty: MemoryType::RUNTIME_SERVICES_DATA,
                    start: 0x10_8000,
                    pages: 8,
                    attribute: rt | MemoryAttribute::EXECUTE_PROTECT
                },
                Entry {
                    ty: MemoryType::RUNTIME_SERVICES_DATA,
                    start: 0x30_0000,
                    pages: 2,
                    attribute: rt | MemoryAttribute::EXECUTE_PROTECT
                },
            ]
        );
    }
}
