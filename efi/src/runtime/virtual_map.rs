//! SetVirtualAddressMap and ConvertPointer (UEFI 2.10 §8.4): parses the
//! OS's virtual map of the runtime regions and translates addresses by it.

use core::ffi::c_void;
use core::fmt;
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, Ordering};

use log::error;
use platform::sync::Global;
use uefi_raw::Status;
use uefi_raw::table::Header;
use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor};
use uefi_raw::table::runtime::RuntimeServices;

use super::{TABLE, update_table_crc};
use crate::spec_gaps;

/// Runtime regions SetVirtualAddressMap can record.
pub const MAX_RUNTIME_REGIONS: usize = 64;
const PAGE_SIZE: u64 = 4096;
const DESCRIPTOR_SIZE: usize = size_of::<MemoryDescriptor>();

/// Why a virtual address map was rejected (all EFI_INVALID_PARAMETER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    DescriptorVersion(u32),
    DescriptorSize(usize),
    MapSize(usize),
    TooManyRegions(usize),
    /// The region at this physical address wraps the address space.
    RegionOverflow(u64),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::DescriptorVersion(v) => write!(f, "descriptor version {v} unsupported"),
            MapError::DescriptorSize(s) => write!(f, "descriptor size {s} invalid"),
            MapError::MapSize(s) => write!(f, "map size {s} not a multiple of the descriptor"),
            MapError::TooManyRegions(n) => write!(f, "more than {n} runtime regions"),
            MapError::RegionOverflow(a) => write!(f, "region at {a:#x} wraps around"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeRegion {
    pub physical_start: u64,
    pub virtual_start: u64,
    pub size: u64,
}

/// The runtime regions' virtual addresses, from SetVirtualAddressMap.
#[derive(Clone, Copy, Debug)]
pub struct VirtualMap {
    regions: [RuntimeRegion; MAX_RUNTIME_REGIONS],
    count: usize,
}

impl VirtualMap {
    pub const fn new() -> Self {
        VirtualMap {
            regions: [RuntimeRegion {
                physical_start: 0,
                virtual_start: 0,
                size: 0,
            }; MAX_RUNTIME_REGIONS],
            count: 0,
        }
    }

    /// Decodes a memory map as SetVirtualAddressMap receives it, keeping
    /// the EFI_MEMORY_RUNTIME descriptors (§8.4.2, §7.2.3).
    pub fn parse(map: &[u8], descriptor_size: usize, version: u32) -> Result<Self, MapError> {
        if version != MemoryDescriptor::VERSION {
            return Err(MapError::DescriptorVersion(version));
        }
        // Later descriptor versions may grow, but stay 8-byte multiples.
        if descriptor_size < DESCRIPTOR_SIZE || !descriptor_size.is_multiple_of(8) {
            return Err(MapError::DescriptorSize(descriptor_size));
        }
        if !map.len().is_multiple_of(descriptor_size) {
            return Err(MapError::MapSize(map.len()));
        }
        // Every offset read is below DESCRIPTOR_SIZE, checked above, so
        // the zero for a short read never happens.
        let field = |descriptor: &[u8], offset: usize| {
            platform::le::u64_at(descriptor, offset).unwrap_or(0)
        };
        let mut result = VirtualMap::new();
        for descriptor in map.chunks_exact(descriptor_size) {
            // MemoryDescriptor (repr C): type u32, padding, then
            // physical_start, virtual_start, number_of_pages, attribute.
            let attribute = field(descriptor, 32);
            if attribute & MemoryAttribute::RUNTIME.bits() == 0 {
                continue;
            }
            let physical_start = field(descriptor, 8);
            let size = field(descriptor, 24)
                .checked_mul(PAGE_SIZE)
                .filter(|size| physical_start.checked_add(*size).is_some())
                .ok_or(MapError::RegionOverflow(physical_start))?;
            let slot = result
                .regions
                .get_mut(result.count)
                .ok_or(MapError::TooManyRegions(MAX_RUNTIME_REGIONS))?;
            *slot = RuntimeRegion {
                physical_start,
                virtual_start: field(descriptor, 16),
                size,
            };
            result.count += 1;
        }
        Ok(result)
    }

    pub fn regions(&self) -> &[RuntimeRegion] {
        &self.regions[..self.count]
    }

    /// The virtual address of a physical address inside a runtime region.
    pub fn translate(&self, physical: u64) -> Option<u64> {
        self.regions()
            .iter()
            .find(|r| physical >= r.physical_start && physical - r.physical_start < r.size)
            .map(|r| r.virtual_start.wrapping_add(physical - r.physical_start))
    }
}

impl Default for VirtualMap {
    fn default() -> Self {
        Self::new()
    }
}

static VIRTUAL_MAP: Global<Option<VirtualMap>> = Global::new(None);
pub(super) static RUNTIME_PHASE: AtomicBool = AtomicBool::new(false);
static VIRTUAL_MODE: AtomicBool = AtomicBool::new(false);
/// Signals EVT_SIGNAL_VIRTUAL_ADDRESS_CHANGE / the virtual-address-change
/// event group; set by the core (events module).
static VIRTUAL_ADDRESS_CHANGE_HOOK: Global<Option<fn()>> = Global::new(None);

/// The core registers how to signal the virtual-address-change event group
/// (§7.1.1); it is called from SetVirtualAddressMap once the map is
/// recorded, so notify functions can call ConvertPointer. The core should
/// also convert its system table pointers then (see [`convert_address`]).
pub fn set_virtual_address_change_hook(hook: fn()) {
    VIRTUAL_ADDRESS_CHANGE_HOOK.with(|slot| *slot = Some(hook));
}

/// The virtual address of `physical` once SetVirtualAddressMap recorded a
/// map; None outside runtime regions or before.
pub fn convert_address(physical: u64) -> Option<u64> {
    VIRTUAL_MAP
        .try_with(|map| map.as_ref().and_then(|m| m.translate(physical)))
        .flatten()
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn set_virtual_address_map(
    map_size: usize,
    descriptor_size: usize,
    descriptor_version: u32,
    virtual_map: *const MemoryDescriptor,
) -> Status {
    // §8.4.2: EFI_UNSUPPORTED when not yet at runtime or already virtual.
    if !RUNTIME_PHASE.load(Ordering::Relaxed) || VIRTUAL_MODE.swap(true, Ordering::Relaxed) {
        return Status::UNSUPPORTED;
    }
    if virtual_map.is_null() && map_size != 0 {
        VIRTUAL_MODE.store(false, Ordering::Relaxed);
        return Status::INVALID_PARAMETER;
    }
    let bytes: &[u8] = if map_size == 0 {
        &[]
    } else {
        // SAFETY: the caller passes `map_size` readable bytes of memory map
        // at a non-null `virtual_map` (§8.4.2).
        unsafe { core::slice::from_raw_parts(virtual_map.cast::<u8>(), map_size) }
    };
    let map = match VirtualMap::parse(bytes, descriptor_size, descriptor_version) {
        Ok(map) => map,
        Err(err) => {
            error!("SetVirtualAddressMap: {err}");
            VIRTUAL_MODE.store(false, Ordering::Relaxed);
            return Status::INVALID_PARAMETER;
        }
    };
    VIRTUAL_MAP.with(|slot| *slot = Some(map));
    // Copied out: notify functions run without any of our borrows held.
    let hook = VIRTUAL_ADDRESS_CHANGE_HOOK.with(|hook| *hook);
    if let Some(hook) = hook {
        hook();
    }
    convert_table_pointers(&map);
    Status::SUCCESS
}

/// Points the runtime services table's functions at their virtual
/// addresses. The firmware is linked at a fixed address and keeps running
/// there: Linux maps runtime regions 1:1 besides the virtual mapping, so
/// absolute references inside the implementations remain valid.
fn convert_table_pointers(map: &VirtualMap) {
    let table = TABLE.0.get();
    let slots = (size_of::<RuntimeServices>() - size_of::<Header>()) / size_of::<usize>();
    for index in 0..slots {
        // SAFETY: RuntimeServices is repr(C): the header is followed by
        // `slots` function pointers, each one usize wide, and nothing else
        // accesses the table while the OS is inside SetVirtualAddressMap
        // (runtime services are not reentrant, §8.1). A non-zero address is
        // a valid function pointer bit pattern.
        unsafe {
            let slot = table
                .cast::<u8>()
                .add(size_of::<Header>())
                .cast::<usize>()
                .add(index);
            if let Some(virt) = map.translate(slot.read() as u64)
                && virt != 0
            {
                slot.write(virt as usize);
            }
        }
    }
    update_table_crc();
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn convert_pointer(
    debug_disposition: usize,
    address: *mut *mut c_void,
) -> Status {
    if address.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: non-null pointer to the caller's pointer (§8.4.3).
    let pointer = unsafe { address.read_unaligned() } as u64;
    let Some(map) = VIRTUAL_MAP.try_with(|map| *map).flatten() else {
        // No map yet: not supported at this time (§8.4.3).
        return Status::UNSUPPORTED;
    };
    if pointer == 0 {
        return if debug_disposition & spec_gaps::OPTIONAL_POINTER as usize != 0 {
            Status::SUCCESS
        } else {
            Status::INVALID_PARAMETER
        };
    }
    match map.translate(pointer) {
        Some(virt) => {
            // SAFETY: as for the read above.
            unsafe { address.write_unaligned(virt as usize as *mut c_void) };
            Status::SUCCESS
        }
        None => Status::NOT_FOUND,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use uefi_raw::table::boot::MemoryType;

    pub(in crate::runtime) fn descriptor(
        kind: u32,
        physical: u64,
        virt: u64,
        pages: u64,
        attribute: u64,
        size: usize,
    ) -> Vec<u8> {
        let mut d = vec![0u8; size];
        d[0..4].copy_from_slice(&kind.to_le_bytes());
        d[8..16].copy_from_slice(&physical.to_le_bytes());
        d[16..24].copy_from_slice(&virt.to_le_bytes());
        d[24..32].copy_from_slice(&pages.to_le_bytes());
        d[32..40].copy_from_slice(&attribute.to_le_bytes());
        d
    }

    #[test]
    fn virtual_map_parsing_and_translation() {
        let size = 48; // larger than MemoryDescriptor, as firmware often uses
        let mut map = descriptor(
            MemoryType::RUNTIME_SERVICES_CODE.0,
            0x10_0000,
            0xffff_8000_0000_0000,
            16,
            (MemoryAttribute::RUNTIME | MemoryAttribute::WRITE_BACK).bits(),
            size,
        );
        map.extend(descriptor(
            MemoryType::CONVENTIONAL.0,
            0x20_0000,
            0,
            256,
            MemoryAttribute::WRITE_BACK.bits(),
            size,
        ));
        map.extend(descriptor(
            MemoryType::RUNTIME_SERVICES_DATA.0,
            0x40_0000,
            0xffff_8000_0010_0000,
            1,
            MemoryAttribute::RUNTIME.bits(),
            size,
        ));
        let m = VirtualMap::parse(&map, size, 1).unwrap();
        assert_eq!(m.regions().len(), 2);
        assert_eq!(m.translate(0x10_0000), Some(0xffff_8000_0000_0000));
        assert_eq!(m.translate(0x10_ffff), Some(0xffff_8000_0000_ffff));
        assert_eq!(m.translate(0x11_0000), None);
        assert_eq!(m.translate(0x0f_ffff), None);
        assert_eq!(m.translate(0x20_0000), None); // not a runtime region
        assert_eq!(m.translate(0x40_0010), Some(0xffff_8000_0010_0010));

        assert_eq!(
            VirtualMap::parse(&map, size, 2).unwrap_err(),
            MapError::DescriptorVersion(2)
        );
        assert_eq!(
            VirtualMap::parse(&map, 32, 1).unwrap_err(),
            MapError::DescriptorSize(32)
        );
        assert_eq!(
            VirtualMap::parse(&map, 44, 1).unwrap_err(),
            MapError::DescriptorSize(44)
        );
        assert_eq!(
            VirtualMap::parse(&map[..100], size, 1).unwrap_err(),
            MapError::MapSize(100)
        );
        let wrap = descriptor(
            0,
            u64::MAX - 4095,
            0,
            2,
            MemoryAttribute::RUNTIME.bits(),
            40,
        );
        assert_eq!(
            VirtualMap::parse(&wrap, 40, 1).unwrap_err(),
            MapError::RegionOverflow(u64::MAX - 4095)
        );
        let many: Vec<u8> = (0..=MAX_RUNTIME_REGIONS as u64)
            .flat_map(|i| descriptor(0, i << 20, 0, 1, MemoryAttribute::RUNTIME.bits(), 40))
            .collect();
        assert_eq!(
            VirtualMap::parse(&many, 40, 1).unwrap_err(),
            MapError::TooManyRegions(MAX_RUNTIME_REGIONS)
        );
        assert_eq!(VirtualMap::parse(&[], 40, 1).unwrap().regions().len(), 0);
    }
}
