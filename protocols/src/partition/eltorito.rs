//! El Torito boot images of a CD-ROM or ISO image (El Torito Bootable
//! CD-ROM Format Specification 1.0; UEFI 2.10 §13.3.2: each boot image is a
//! "partition" with a CD-ROM media device path node, §10.3.5.2).
//!
//! The ISO 9660 volume descriptors start at byte 32768, one per 2048-byte
//! sector, until the set terminator. The boot record descriptor names the
//! boot catalog's sector; the catalog holds a validation entry (checksummed),
//! the initial/default entry, then section headers each followed by their
//! entries. Every bootable no-emulation image becomes a partition: the
//! default entry is boot entry 0, later bootable entries 1, 2, ... in catalog
//! order (edk2 numbers them the same way, so device paths agree with OVMF's).
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use platform::block::BlockDevice;

use super::{
    ElToritoImage, Partition, PartitionError, PartitionKind, PartitionTable, Scheme, buffer,
    le_u16, le_u32,
};

/// ISO 9660 logical sectors; El Torito addresses (RBA) count them.
pub const CD_SECTOR: u64 = 2048;
/// The volume descriptor set starts at sector 16 (ISO 9660 §6.2.1).
const FIRST_DESCRIPTOR: u64 = 16;
/// Bound on the descriptors read before giving up on a terminator.
const MAX_DESCRIPTORS: u64 = 32;
const DESCRIPTOR_BOOT_RECORD: u8 = 0;
const DESCRIPTOR_PRIMARY: u8 = 1;
const DESCRIPTOR_TERMINATOR: u8 = 255;
const STANDARD_ID: &[u8; 5] = b"CD001";
const EL_TORITO_ID: &[u8] = b"EL TORITO SPECIFICATION";

const ENTRY_SIZE: usize = 32;
const HEADER_VALIDATION: u8 = 0x01;
const HEADER_MORE: u8 = 0x90;
const HEADER_FINAL: u8 = 0x91;
const BOOTABLE: u8 = 0x88;
/// An extension entry continues the previous section entry.
const EXTENSION: u8 = 0x44;
/// Boot media type 0: the image is loaded as is, no floppy or disk emulation.
const NO_EMULATION: u8 = 0;
/// The image's sector count is in 512-byte "virtual sectors".
const VIRTUAL_SECTOR: u64 = 512;

/// The platform id of EFI boot images (El Torito platform ids, UEFI 2.10
/// §13.3.2.1).
pub const PLATFORM_EFI: u8 = 0xEF;

/// The boot images of `disk`'s El Torito catalog, as partitions in the
/// device's blocks; `Ok(None)` when the disk holds no El Torito catalog (no
/// ISO 9660 descriptors, or no boot record among them). A catalog that is
/// there but broken is an error.
pub fn read(disk: &dyn BlockDevice) -> Result<Option<PartitionTable>, PartitionError> {
    let block_size = u64::from(disk.block_size());
    // A CD sector must be whole blocks of the device (2048 on a CD-ROM,
    // 512 when an ISO image was written to a disk).
    if block_size == 0 || block_size > CD_SECTOR || !CD_SECTOR.is_multiple_of(block_size) {
        return Ok(None);
    }
    let mut sector = buffer(CD_SECTOR as usize)?;
    let mut volume_sectors = None;
    let mut catalog_rba = None;
    for index in FIRST_DESCRIPTOR..FIRST_DESCRIPTOR + MAX_DESCRIPTORS {
        if !read_cd_sector(disk, index, &mut sector)? || &sector[1..6] != STANDARD_ID {
            break;
        }
        match sector[0] {
            DESCRIPTOR_TERMINATOR => break,
            DESCRIPTOR_PRIMARY => volume_sectors = Some(u64::from(le_u32(&sector, 80))),
            DESCRIPTOR_BOOT_RECORD if sector[7..7 + EL_TORITO_ID.len()] == *EL_TORITO_ID => {
                catalog_rba = Some(u64::from(le_u32(&sector, 0x47)));
            }
            _ => {}
        }
    }
    let Some(catalog_rba) = catalog_rba else {
        return Ok(None);
    };
    if !read_cd_sector(disk, catalog_rba, &mut sector)? {
        return Err(PartitionError::ElToritoBadCatalog { rba: catalog_rba });
    }
    let images =
        parse_catalog(&sector).ok_or(PartitionError::ElToritoBadCatalog { rba: catalog_rba })?;

    let blocks_per_sector = CD_SECTOR / block_size;
    let disk_blocks = disk.num_blocks();
    // The end of the medium in blocks: the volume's size when the primary
    // descriptor gives one that fits the device, else the device's.
    let medium_end = volume_sectors
        .and_then(|s| s.checked_mul(blocks_per_sector))
        .filter(|&end| end > 0 && end <= disk_blocks)
        .unwrap_or(disk_blocks);
    let mut partitions = Vec::new();
    let mut rejected = Vec::new();
    for (index, image) in images.iter().enumerate() {
        let number = index as u32 + 1;
        let start = u64::from(image.load_rba) * blocks_per_sector;
        if image.media_type != NO_EMULATION {
            log::debug!(
                "El Torito: boot entry {}: media type {} (emulation) not supported",
                image.boot_entry,
                image.media_type
            );
            continue;
        }
        // A count below 2 is what mastering tools write for images larger
        // than 16-bit counts hold: the image then runs to the end of the
        // medium, as edk2 also reads it.
        let end = if image.sector_count < 2 {
            medium_end
        } else {
            let bytes = u64::from(image.sector_count) * VIRTUAL_SECTOR;
            start.saturating_add(bytes.div_ceil(block_size))
        };
        if start == 0 || start >= end || end > disk_blocks {
            super::reject(
                &mut rejected,
                PartitionError::PartitionOutOfRange {
                    number,
                    start,
                    end: end.saturating_sub(1),
                    limit: disk_blocks.saturating_sub(1),
                },
            );
            continue;
        }
        partitions.push(Partition {
            number,
            start_lba: start,
            end_lba: end - 1,
            kind: PartitionKind::ElTorito(ElToritoImage {
                boot_entry: image.boot_entry,
                platform_id: image.platform_id,
            }),
        });
    }
    Ok(Some(PartitionTable {
        scheme: Scheme::ElTorito { catalog_rba },
        partitions,
        rejected,
    }))
}

/// Reads CD sector `index` into `sector`; false when it lies past the end.
fn read_cd_sector(
    disk: &dyn BlockDevice,
    index: u64,
    sector: &mut [u8],
) -> Result<bool, PartitionError> {
    let blocks_per_sector = CD_SECTOR / u64::from(disk.block_size());
    let Some(lba) = index.checked_mul(blocks_per_sector) else {
        return Ok(false);
    };
    if lba.saturating_add(blocks_per_sector) > disk.num_blocks() {
        return Ok(false);
    }
    disk.read_blocks(lba, sector)?;
    Ok(true)
}

/// One bootable catalog entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogImage {
    /// 0 for the default entry, then 1, 2, ... for bootable section entries.
    pub boot_entry: u32,
    pub platform_id: u8,
    pub media_type: u8,
    /// In 512-byte virtual sectors.
    pub sector_count: u16,
    /// In 2048-byte CD sectors.
    pub load_rba: u32,
}

/// The bootable entries of a catalog sector; None when the validation
/// entry is not one (header id, 0x55AA key bytes, 16-bit word sum of 0).
pub fn parse_catalog(sector: &[u8]) -> Option<Vec<CatalogImage>> {
    let validation = sector.get(..ENTRY_SIZE)?;
    let sum = validation
        .chunks_exact(2)
        .fold(0u16, |sum, word| sum.wrapping_add(le_u16(word, 0)));
    if validation[0] != HEADER_VALIDATION || validation[30..32] != [0x55, 0xAA] || sum != 0 {
        return None;
    }
    let mut platform_id = validation[1];
    let mut images = Vec::new();
    let mut boot_entry = 0;
    let mut push = |entry: &[u8], platform_id: u8, images: &mut Vec<CatalogImage>| {
        if entry[0] == BOOTABLE && le_u32(entry, 8) != 0 {
            images.push(CatalogImage {
                boot_entry,
                platform_id,
                media_type: entry[1] & 0x0F,
                sector_count: le_u16(entry, 6),
                load_rba: le_u32(entry, 8),
            });
            boot_entry += 1;
        } else if boot_entry == 0 {
            // The default entry is number 0 even when not bootable.
            boot_entry = 1;
        }
    };
    let mut entries = sector[ENTRY_SIZE..].chunks_exact(ENTRY_SIZE);
    push(entries.next()?, platform_id, &mut images);
    // Section headers, each followed by its entries; the last has 0x91.
    while let Some(header) = entries.next() {
        if header[0] != HEADER_MORE && header[0] != HEADER_FINAL {
            break;
        }
        platform_id = header[1];
        let count = le_u16(header, 2);
        let mut left = count;
        while left > 0 {
            let Some(entry) = entries.next() else { break };
            if entry[0] == EXTENSION {
                continue;
            }
            push(entry, platform_id, &mut images);
            left -= 1;
        }
        if header[0] == HEADER_FINAL {
            break;
        }
    }
    Some(images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::block::MemDisk;
    use std::vec;

    fn validation(platform: u8) -> [u8; 32] {
        let mut entry = [0u8; 32];
        entry[0] = HEADER_VALIDATION;
        entry[1] = platform;
        entry[4..12].copy_from_slice(b"vmfwtest");
        entry[30] = 0x55;
        entry[31] = 0xAA;
        let sum = entry.chunks_exact(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        entry[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
        entry
    }

    fn boot_entry(bootable: bool, media: u8, count: u16, rba: u32) -> [u8; 32] {
        let mut entry = [0u8; 32];
        entry[0] = if bootable { BOOTABLE } else { 0 };
        entry[1] = media;
        entry[6..8].copy_from_slice(&count.to_le_bytes());
        entry[8..12].copy_from_slice(&rba.to_le_bytes());
        entry
    }

    fn header(last: bool, platform: u8, count: u16) -> [u8; 32] {
        let mut entry = [0u8; 32];
        entry[0] = if last { HEADER_FINAL } else { HEADER_MORE };
        entry[1] = platform;
        entry[2..4].copy_from_slice(&count.to_le_bytes());
        entry
    }

    /// The layout `xorriso -as mkisofs -b ... -eltorito-alt-boot -e efi.img
    /// -no-emul-boot` writes: a BIOS default entry, then an EFI section.
    fn hybrid_catalog() -> Vec<u8> {
        let mut sector = vec![0u8; 2048];
        for (i, entry) in [
            validation(0),
            boot_entry(true, 0, 4, 30),
            header(true, PLATFORM_EFI, 1),
            boot_entry(true, 0, 5760, 40),
        ]
        .iter()
        .enumerate()
        {
            sector[i * 32..(i + 1) * 32].copy_from_slice(entry);
        }
        sector
    }

    #[test]
    fn catalog_lists_default_and_section_entries() {
        let images = parse_catalog(&hybrid_catalog()).unwrap();
        assert_eq!(
            images,
            vec![
                CatalogImage {
                    boot_entry: 0,
                    platform_id: 0,
                    media_type: 0,
                    sector_count: 4,
                    load_rba: 30
                },
                CatalogImage {
                    boot_entry: 1,
                    platform_id: PLATFORM_EFI,
                    media_type: 0,
                    sector_count: 5760,
                    load_rba: 40
                },
            ]
        );
    }

    #[test]
    fn catalog_with_a_bad_checksum_or_key_is_refused() {
        let mut sector = hybrid_catalog();
        sector[4] ^= 1;
        assert_eq!(parse_catalog(&sector), None);
        let mut sector = hybrid_catalog();
        sector[31] = 0;
        assert_eq!(parse_catalog(&sector), None);
        assert_eq!(parse_catalog(&[0u8; 16]), None);
    }

    #[test]
    fn non_bootable_default_keeps_the_numbering() {
        let mut sector = vec![0u8; 2048];
        sector[..32].copy_from_slice(&validation(PLATFORM_EFI));
        sector[32..64].copy_from_slice(&boot_entry(false, 0, 0, 0));
        sector[64..96].copy_from_slice(&header(true, PLATFORM_EFI, 1));
        sector[96..128].copy_from_slice(&boot_entry(true, 0, 0, 50));
        let images = parse_catalog(&sector).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].boot_entry, 1);
    }

    /// An ISO image of `sectors` CD sectors with a primary descriptor, a
    /// boot record naming the catalog at sector 20, and `catalog` there.
    fn iso(sectors: u32, catalog: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; sectors as usize * 2048];
        let descriptor = |image: &mut Vec<u8>, index: usize, kind: u8| {
            let d = &mut image[index * 2048..(index + 1) * 2048];
            d[0] = kind;
            d[1..6].copy_from_slice(STANDARD_ID);
            d[6] = 1;
        };
        descriptor(&mut image, 16, DESCRIPTOR_PRIMARY);
        image[16 * 2048 + 80..16 * 2048 + 84].copy_from_slice(&sectors.to_le_bytes());
        descriptor(&mut image, 17, DESCRIPTOR_BOOT_RECORD);
        image[17 * 2048 + 7..17 * 2048 + 7 + EL_TORITO_ID.len()].copy_from_slice(EL_TORITO_ID);
        image[17 * 2048 + 0x47..17 * 2048 + 0x4B].copy_from_slice(&20u32.to_le_bytes());
        descriptor(&mut image, 18, DESCRIPTOR_TERMINATOR);
        image[20 * 2048..20 * 2048 + catalog.len()].copy_from_slice(catalog);
        image
    }

    #[test]
    fn images_become_partitions_in_device_blocks() {
        for block_size in [2048u32, 512] {
            let mut image = iso(4000, &hybrid_catalog());
            let disk = MemDisk::new(&mut image, block_size);
            let table = read(&disk).unwrap().unwrap();
            assert_eq!(table.scheme, Scheme::ElTorito { catalog_rba: 20 });
            let per = u64::from(2048 / block_size);
            let ranges: Vec<(u64, u64)> = table
                .partitions
                .iter()
                .map(|p| (p.start_lba, p.end_lba))
                .collect();
            // 4 virtual sectors = 2048 bytes; 5760 = 2,949,120 bytes.
            assert_eq!(
                ranges,
                vec![
                    (30 * per, 30 * per + 2048 / u64::from(block_size) - 1),
                    (40 * per, 40 * per + 2_949_120 / u64::from(block_size) - 1)
                ],
                "block size {block_size}"
            );
            assert!(matches!(
                table.partitions[1].kind,
                PartitionKind::ElTorito(ElToritoImage {
                    boot_entry: 1,
                    platform_id: PLATFORM_EFI
                })
            ));
        }
    }

    #[test]
    fn a_small_count_runs_to_the_end_of_the_volume() {
        let mut catalog = vec![0u8; 2048];
        catalog[..32].copy_from_slice(&validation(PLATFORM_EFI));
        catalog[32..64].copy_from_slice(&boot_entry(true, 0, 1, 100));
        // The device is larger than the volume (a padded image).
        let mut image = iso(1000, &catalog);
        image.resize(1200 * 2048, 0);
        let disk = MemDisk::new(&mut image, 2048);
        let table = read(&disk).unwrap().unwrap();
        assert_eq!(
            (table.partitions[0].start_lba, table.partitions[0].end_lba),
            (100, 999)
        );
    }

    #[test]
    fn hostile_catalogs_are_refused_without_panic() {
        // An image past the end of the medium, an image at sector 0, an
        // emulation entry: none becomes a partition.
        let mut catalog = vec![0u8; 2048];
        catalog[..32].copy_from_slice(&validation(PLATFORM_EFI));
        catalog[32..64].copy_from_slice(&boot_entry(true, 0, 65535, 90));
        catalog[64..96].copy_from_slice(&header(false, PLATFORM_EFI, 3));
        catalog[96..128].copy_from_slice(&boot_entry(true, 2, 4, 50));
        catalog[128..160].copy_from_slice(&boot_entry(true, 0, 4, u32::MAX));
        catalog[160..192].copy_from_slice(&boot_entry(true, 0, 4, 60));
        // A header promising more entries than the sector holds.
        catalog[192..224].copy_from_slice(&header(true, PLATFORM_EFI, 65535));
        let mut image = iso(100, &catalog);
        let disk = MemDisk::new(&mut image, 2048);
        let table = read(&disk).unwrap().unwrap();
        let starts: Vec<u64> = table.partitions.iter().map(|p| p.start_lba).collect();
        assert_eq!(starts, vec![60]);
        assert_eq!(table.rejected.len(), 2);

        // A boot record naming a catalog past the end.
        let mut image = iso(100, &catalog);
        image[17 * 2048 + 0x47..17 * 2048 + 0x4B].copy_from_slice(&5000u32.to_le_bytes());
        let disk = MemDisk::new(&mut image, 2048);
        assert_eq!(
            read(&disk),
            Err(PartitionError::ElToritoBadCatalog { rba: 5000 })
        );
    }

    #[test]
    fn disks_without_descriptors_are_not_el_torito() {
        let mut image = vec![0u8; 100 * 2048];
        assert_eq!(read(&MemDisk::new(&mut image, 512)), Ok(None));
        let mut small = vec![0u8; 4096];
        assert_eq!(read(&MemDisk::new(&mut small, 512)), Ok(None));
        let mut image = vec![0u8; 100 * 4096];
        assert_eq!(read(&MemDisk::new(&mut image, 4096)), Ok(None));
    }
}
