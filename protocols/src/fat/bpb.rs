//! Boot sector (BPB) parsing and validation, and the FAT type decision by
//! cluster count (Microsoft FAT specification, "FAT Type Determination").
#![forbid(unsafe_code)]

use super::FatError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

/// The volume layout derived from a validated BPB. All sector numbers are in
/// FAT logical sectors (`bytes_per_sector`) from the start of the volume.
#[derive(Clone, Debug)]
pub(crate) struct Geometry {
    pub fat_type: FatType,
    pub bytes_per_sector: u32,
    pub sectors_per_cluster: u32,
    pub reserved_sectors: u32,
    pub num_fats: u32,
    pub fat_sectors: u32,
    /// Entries of the fixed FAT12/16 root directory (0 on FAT32).
    pub root_entries: u32,
    pub root_dir_start: u32,
    pub data_start: u32,
    pub cluster_count: u32,
    /// First cluster of the FAT32 root directory (0 on FAT12/16).
    pub root_cluster: u32,
    pub fsinfo_sector: Option<u32>,
    /// FAT32 BPB_ExtFlags: with mirroring disabled only this FAT is used.
    pub active_fat: Option<u32>,
    /// Offset of BS_VolLab in the boot sector, when the extended boot
    /// signature says the field exists.
    pub label_offset: Option<usize>,
    /// FAT32 BPB_BkBootSec.
    pub backup_boot_sector: Option<u32>,
}

pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    platform::le::u16_at(b, off).unwrap_or(0)
}

pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    platform::le::u32_at(b, off).unwrap_or(0)
}

fn bad(field: &'static str, value: u64) -> FatError {
    FatError::BadBpb { field, value }
}

impl Geometry {
    /// Validates the boot sector of a volume of `volume_bytes` bytes.
    pub(crate) fn parse(bs: &[u8], volume_bytes: u64) -> Result<Geometry, FatError> {
        if bs.len() < 512 {
            return Err(bad("boot sector length", bs.len() as u64));
        }
        let signature = le16(bs, 510);
        if signature != 0xAA55 {
            return Err(bad("signature", signature.into()));
        }
        let bytes_per_sector = u32::from(le16(bs, 11));
        if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) {
            return Err(bad("BytsPerSec", bytes_per_sector.into()));
        }
        let sectors_per_cluster = u32::from(bs[13]);
        if !sectors_per_cluster.is_power_of_two() {
            return Err(bad("SecPerClus", sectors_per_cluster.into()));
        }
        let reserved_sectors = u32::from(le16(bs, 14));
        if reserved_sectors == 0 {
            return Err(bad("RsvdSecCnt", 0));
        }
        let num_fats = u32::from(bs[16]);
        if num_fats == 0 {
            return Err(bad("NumFATs", 0));
        }
        let root_entries = u32::from(le16(bs, 17));
        let total_sectors = match le16(bs, 19) {
            0 => le32(bs, 32),
            n => u32::from(n),
        };
        let fat16_size = u32::from(le16(bs, 22));
        let fat_sectors = if fat16_size != 0 {
            fat16_size
        } else {
            le32(bs, 36)
        };
        if fat_sectors == 0 {
            return Err(bad("FATSz", 0));
        }
        let volume_sectors = volume_bytes / u64::from(bytes_per_sector);
        if u64::from(total_sectors) > volume_sectors {
            return Err(bad("TotSec", total_sectors.into()));
        }
        let root_dir_sectors = (root_entries * 32).div_ceil(bytes_per_sector);
        let root_dir_start = num_fats
            .checked_mul(fat_sectors)
            .and_then(|fats| fats.checked_add(reserved_sectors))
            .filter(|&start| start < total_sectors)
            .ok_or(bad("FATSz", fat_sectors.into()))?;
        let data_start = root_dir_start
            .checked_add(root_dir_sectors)
            .filter(|&start| start < total_sectors)
            .ok_or(bad("TotSec", total_sectors.into()))?;
        let cluster_count = (total_sectors - data_start) / sectors_per_cluster;
        if cluster_count == 0 {
            return Err(bad("cluster count", 0));
        }
        // The thresholds are the specification's, exactly.
        let fat_type = if cluster_count < 4085 {
            FatType::Fat12
        } else if cluster_count < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        if cluster_count > 0x0FFF_FFF5 {
            return Err(bad("cluster count", cluster_count.into()));
        }
        // The FAT must hold an entry for every cluster plus the two reserved.
        let entry_bits: u64 = match fat_type {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        let needed_bytes = (u64::from(cluster_count) + 2) * entry_bits / 8 + 1;
        if needed_bytes > u64::from(fat_sectors) * u64::from(bytes_per_sector) {
            return Err(bad("FATSz", fat_sectors.into()));
        }
        let mut geo = Geometry {
            fat_type,
            bytes_per_sector,
            sectors_per_cluster,
            reserved_sectors,
            num_fats,
            fat_sectors,
            root_entries,
            root_dir_start,
            data_start,
            cluster_count,
            root_cluster: 0,
            fsinfo_sector: None,
            active_fat: None,
            label_offset: None,
            backup_boot_sector: None,
        };
        if fat_type == FatType::Fat32 {
            if root_entries != 0 || fat16_size != 0 {
                return Err(bad("RootEntCnt", root_entries.into()));
            }
            let root_cluster = le32(bs, 44);
            if !geo.cluster_in_range(root_cluster) {
                return Err(bad("RootClus", root_cluster.into()));
            }
            geo.root_cluster = root_cluster;
            let fsinfo = u32::from(le16(bs, 48));
            if fsinfo != 0 && fsinfo < reserved_sectors {
                geo.fsinfo_sector = Some(fsinfo);
            }
            let backup = u32::from(le16(bs, 50));
            if backup != 0 && backup < reserved_sectors {
                geo.backup_boot_sector = Some(backup);
            }
            let ext_flags = le16(bs, 40);
            if ext_flags & 0x80 != 0 {
                let active = u32::from(ext_flags & 0xF);
                if active >= num_fats {
                    return Err(bad("ExtFlags", ext_flags.into()));
                }
                geo.active_fat = Some(active);
            }
            if bs[66] == 0x29 {
                geo.label_offset = Some(71);
            }
        } else {
            if root_entries == 0 {
                return Err(bad("RootEntCnt", 0));
            }
            if bs[38] == 0x29 {
                geo.label_offset = Some(43);
            }
        }
        Ok(geo)
    }

    pub(crate) fn max_cluster(&self) -> u32 {
        self.cluster_count + 1
    }

    pub(crate) fn cluster_in_range(&self, cluster: u32) -> bool {
        (2..=self.max_cluster()).contains(&cluster)
    }

    pub(crate) fn cluster_bytes(&self) -> u32 {
        self.bytes_per_sector * self.sectors_per_cluster
    }

    /// First sector of a cluster already checked with `cluster_in_range`.
    pub(crate) fn cluster_sector(&self, cluster: u32) -> u32 {
        self.data_start + (cluster - 2) * self.sectors_per_cluster
    }

    /// The first sector of the FAT copy that is read.
    pub(crate) fn fat_start(&self) -> u32 {
        self.reserved_sectors + self.active_fat.unwrap_or(0) * self.fat_sectors
    }

    /// Smallest FAT entry value meaning end of chain, and the bad-cluster mark.
    pub(crate) fn eoc_and_bad(&self) -> (u32, u32) {
        match self.fat_type {
            FatType::Fat12 => (0xFF8, 0xFF7),
            FatType::Fat16 => (0xFFF8, 0xFFF7),
            FatType::Fat32 => (0x0FFF_FFF8, 0x0FFF_FFF7),
        }
    }
}
