//! GPT disk images with a FAT32 EFI System Partition (and optionally more partitions), built
//! with sgdisk (or, for 4Kn disks, [`crate::gpt`]), mkfs.vfat and mtools, cached in
//! `<root>/.cache/disks/` by a hash of the inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths::cache_dir;
use crate::util::{KeyHasher, publish, remove_any, run, temp_sibling};

/// Where a file's contents come from.
#[derive(Clone, Debug)]
pub enum FileSource {
    Host(PathBuf),
    Bytes(Vec<u8>),
}

/// Directories and files of a FAT file system. Paths use `/` and are absolute inside the file
/// system (`/EFI/BOOT/BOOTX64.EFI`); parent directories are created automatically.
#[derive(Clone, Debug, Default)]
pub struct FatContents {
    dirs: Vec<String>,
    files: Vec<(String, FileSource)>,
}

impl FatContents {
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies the host file `host` to `fat_path`.
    pub fn file(mut self, fat_path: &str, host: impl Into<PathBuf>) -> Self {
        self.files
            .push((normalize(fat_path), FileSource::Host(host.into())));
        self
    }

    /// Writes `data` to `fat_path`.
    pub fn bytes(mut self, fat_path: &str, data: impl Into<Vec<u8>>) -> Self {
        self.files
            .push((normalize(fat_path), FileSource::Bytes(data.into())));
        self
    }

    /// Creates an (empty) directory.
    pub fn dir(mut self, fat_path: &str) -> Self {
        self.dirs.push(normalize(fat_path));
        self
    }

    pub(crate) fn hash_into(&self, key: &mut KeyHasher) {
        for dir in &self.dirs {
            key.str("dir").str(dir);
        }
        for (path, source) in &self.files {
            key.str("file").str(path);
            match source {
                FileSource::Host(host) => key.file(host),
                FileSource::Bytes(data) => key.bytes(data),
            };
        }
    }

    /// Bytes of content, to size the file system.
    pub(crate) fn content_size(&self) -> u64 {
        self.files
            .iter()
            .map(|(_, source)| match source {
                FileSource::Host(host) => std::fs::metadata(host)
                    .unwrap_or_else(|e| panic!("stat {}: {e}", host.display()))
                    .len(),
                FileSource::Bytes(data) => data.len() as u64,
            })
            .sum()
    }

    /// Every directory to create, parents before children.
    fn all_dirs(&self) -> Vec<String> {
        let mut dirs = std::collections::BTreeSet::new();
        let file_parents = self
            .files
            .iter()
            .filter_map(|(path, _)| path.rsplit_once('/').map(|(parent, _)| parent.to_string()));
        for dir in self.dirs.iter().cloned().chain(file_parents) {
            let mut prefix = String::new();
            for component in dir.split('/').filter(|c| !c.is_empty()) {
                prefix.push('/');
                prefix.push_str(component);
                dirs.insert(prefix.clone());
            }
        }
        let mut dirs: Vec<String> = dirs.into_iter().collect();
        dirs.sort_by_key(|d| d.matches('/').count());
        dirs
    }

    /// Makes a FAT32 image of `size_mib` at `image` holding these contents, with sectors of
    /// `block_size` bytes (the disk's logical block size).
    fn make_image(
        &self,
        image: &Path,
        size_mib: u64,
        label: &str,
        block_size: u64,
        scratch: &Path,
    ) {
        self.make_fat(image, size_mib * MIB, Some(32), label, block_size, scratch);
    }

    /// Makes a FAT image of `bytes` at `image` holding these contents, with sectors of
    /// `sector_size` bytes: FAT32, or with `fat_bits` None the type mkfs.vfat picks for the
    /// size (FAT12/16 for the small El Torito images of an ISO).
    pub(crate) fn make_fat(
        &self,
        image: &Path,
        bytes: u64,
        fat_bits: Option<u8>,
        label: &str,
        sector_size: u64,
        scratch: &Path,
    ) {
        let file = std::fs::File::create(image)
            .unwrap_or_else(|e| panic!("create {}: {e}", image.display()));
        file.set_len(bytes)
            .unwrap_or_else(|e| panic!("size {}: {e}", image.display()));
        drop(file);
        let mut mkfs = Command::new("mkfs.vfat");
        if let Some(bits) = fat_bits {
            mkfs.args(["-F", &bits.to_string()]);
        }
        if sector_size != 512 {
            // One sector per cluster keeps FAT32's 65525 clusters within MIN_FAT32_4KN_MIB.
            mkfs.args(["-S", &sector_size.to_string(), "-s", "1"]);
        }
        run(mkfs.args(["-n", label, "-i", "7e575eed"]).arg(image));
        let mtools = |tool: &str| {
            let mut cmd = Command::new(tool);
            // mtools refuses images whose geometry looks unusual unless told not to check.
            cmd.env("MTOOLS_SKIP_CHECK", "1").arg("-i").arg(image);
            cmd
        };
        for dir in self.all_dirs() {
            run(mtools("mmd").arg(format!("::{dir}")));
        }
        for (index, (path, source)) in self.files.iter().enumerate() {
            let host = match source {
                FileSource::Host(host) => host.clone(),
                FileSource::Bytes(data) => {
                    let temp = scratch.join(format!("bytes-{index}"));
                    std::fs::write(&temp, data)
                        .unwrap_or_else(|e| panic!("write {}: {e}", temp.display()));
                    temp
                }
            };
            run(mtools("mcopy")
                .arg("-o")
                .arg(&host)
                .arg(format!("::{path}")));
        }
    }
}

fn normalize(path: &str) -> String {
    let path = path.replace('\\', "/");
    if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    }
}

const MIB: u64 = 1024 * 1024;
/// Partitions start 1 MiB apart-aligned; the first at LBA 2048 as partitioning tools do.
const FIRST_PARTITION_MIB: u64 = 1;
/// FAT32 needs at least 65525 clusters; 64 MiB leaves room with mkfs.vfat's defaults.
const MIN_FAT32_MIB: u64 = 64;
/// With 4096-byte sectors (and clusters) FAT32's 65525 clusters take 256 MiB, plus the FATs:
/// why 4Kn drives' ESPs are at least 260 MiB.
const MIN_FAT32_4KN_MIB: u64 = 272;

/// A partition after the ESP.
#[derive(Clone, Debug)]
pub struct Partition {
    /// sgdisk type code: `EA00` XBOOTLDR, `8300` Linux file system, `EF00` another ESP.
    pub type_code: String,
    /// GPT partition name.
    pub name: String,
    /// Size; `0` picks a size that fits `fat` (or 8 MiB if there is nothing to hold).
    pub size_mib: u64,
    /// Formats the partition as FAT32 with these contents; `None` leaves it zeroed.
    pub fat: Option<FatContents>,
}

impl Partition {
    /// A FAT32 partition of `type_code` holding `contents`, sized to fit.
    pub fn fat(type_code: &str, name: &str, contents: FatContents) -> Self {
        Partition {
            type_code: type_code.to_string(),
            name: name.to_string(),
            size_mib: 0,
            fat: Some(contents),
        }
    }

    /// An unformatted partition.
    pub fn raw(type_code: &str, name: &str, size_mib: u64) -> Self {
        Partition {
            type_code: type_code.to_string(),
            name: name.to_string(),
            size_mib,
            fat: None,
        }
    }

    fn effective_size_mib(&self, block_size: u64) -> u64 {
        match (&self.fat, self.size_mib) {
            (_, size) if size > 0 => size,
            (Some(fat), _) => fat_size_mib(fat, block_size),
            (None, _) => 8,
        }
    }
}

fn fat_size_mib(contents: &FatContents, block_size: u64) -> u64 {
    // Content plus a quarter for FAT overhead and cluster slack, plus room for tests to write.
    let content_mib = contents.content_size().div_ceil(MIB);
    let minimum = if block_size == 512 {
        MIN_FAT32_MIB
    } else {
        MIN_FAT32_4KN_MIB
    };
    (content_mib + content_mib / 4 + 16).max(minimum)
}

/// Builds a GPT disk whose first partition is a FAT32 EFI System Partition.
///
/// ```no_run
/// let disk = vm_tests::EspBuilder::new()
///     .file("/EFI/BOOT/BOOTX64.EFI", "/path/to/app.efi")
///     .bytes("/startup.nsh", "echo hi\n")
///     .build();
/// ```
#[derive(Clone, Debug, Default)]
pub struct EspBuilder {
    esp: FatContents,
    esp_size_mib: u64,
    partitions: Vec<Partition>,
    /// Logical block size; 0 is 512.
    block_size: u64,
}

impl EspBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies the host file `host` to `esp_path` on the ESP.
    pub fn file(mut self, esp_path: &str, host: impl Into<PathBuf>) -> Self {
        self.esp = self.esp.file(esp_path, host);
        self
    }

    /// Writes `data` to `esp_path` on the ESP.
    pub fn bytes(mut self, esp_path: &str, data: impl Into<Vec<u8>>) -> Self {
        self.esp = self.esp.bytes(esp_path, data);
        self
    }

    /// Creates an empty directory on the ESP.
    pub fn dir(mut self, esp_path: &str) -> Self {
        self.esp = self.esp.dir(esp_path);
        self
    }

    /// Sets the ESP size (default: fits the contents, at least 64 MiB).
    pub fn esp_size_mib(mut self, mib: u64) -> Self {
        self.esp_size_mib = mib;
        self
    }

    /// Lays the disk out in logical blocks of `bytes` (512 or 4096): the GPT's LBAs and the FAT
    /// file systems' sectors. 4Kn disks get a GPT written by [`crate::gpt`] (sgdisk assumes
    /// 512-byte sectors on files) and FAT32 made with `mkfs.fat -S 4096`.
    pub fn block_size(mut self, bytes: u64) -> Self {
        assert!(bytes == 512 || bytes == 4096, "block size {bytes}");
        self.block_size = bytes;
        self
    }

    /// Adds a partition after the ESP (partition numbers follow the call order from 2).
    pub fn partition(mut self, partition: Partition) -> Self {
        self.partitions.push(partition);
        self
    }

    /// Path of the raw disk image, building it unless an identical one is cached.
    pub fn build(&self) -> PathBuf {
        let block_size = if self.block_size == 0 {
            512
        } else {
            self.block_size
        };
        let esp = Partition {
            type_code: "EF00".into(),
            name: "EFI System Partition".into(),
            size_mib: if self.esp_size_mib > 0 {
                self.esp_size_mib
            } else {
                fat_size_mib(&self.esp, block_size)
            },
            fat: Some(self.esp.clone()),
        };
        let partitions: Vec<Partition> = std::iter::once(esp)
            .chain(self.partitions.iter().cloned())
            .collect();

        let mut key = KeyHasher::new("gpt disk v2");
        if block_size != 512 {
            key.str("block size").str(&block_size.to_string());
        }
        for partition in &partitions {
            key.str(&partition.type_code)
                .str(&partition.name)
                .str(&partition.effective_size_mib(block_size).to_string());
            if let Some(fat) = &partition.fat {
                key.str("fat");
                fat.hash_into(&mut key);
            }
        }
        let out = cache_dir("disks").join(format!("disk-{}.img", key.hex()));
        if out.is_file() {
            return out;
        }

        let scratch = temp_sibling(&out.with_extension("d"));
        std::fs::create_dir_all(&scratch)
            .unwrap_or_else(|e| panic!("create {}: {e}", scratch.display()));
        let disk = scratch.join("disk.img");
        let total_mib: u64 = partitions
            .iter()
            .map(|p| p.effective_size_mib(block_size))
            .sum();
        // One MiB before the first partition, one after the last for the backup GPT.
        let disk_file = std::fs::File::create(&disk)
            .unwrap_or_else(|e| panic!("create {}: {e}", disk.display()));
        disk_file
            .set_len((FIRST_PARTITION_MIB + total_mib + 1) * MIB)
            .unwrap_or_else(|e| panic!("size {}: {e}", disk.display()));
        drop(disk_file);

        // GUIDs from the cache key, not sgdisk's random ones: the same inputs
        // give the same disk, byte for byte, however many processes build it
        // (its GUIDs are in boot options and measured-boot event logs).
        let guid = |what: &str| {
            let h = KeyHasher::new("gpt disk guid")
                .str(&key.hex())
                .str(what)
                .hex();
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        };
        let mut sgdisk = Command::new("sgdisk");
        sgdisk
            .arg("--clear")
            .arg(format!("--disk-guid={}", guid("disk")));
        let mut start_mib = FIRST_PARTITION_MIB;
        let mut placements = Vec::new();
        let mut gpt_partitions = Vec::new();
        for (index, partition) in partitions.iter().enumerate() {
            let number = index + 1;
            let size = partition.effective_size_mib(block_size);
            let first_lba = start_mib * MIB / block_size;
            let last_lba = (start_mib + size) * MIB / block_size - 1;
            sgdisk
                .arg(format!("--new={number}:{first_lba}:{last_lba}"))
                .arg(format!("--typecode={number}:{}", partition.type_code))
                .arg(format!("--change-name={number}:{}", partition.name))
                .arg(format!(
                    "--partition-guid={number}:{}",
                    guid(&number.to_string())
                ));
            placements.push((start_mib, size));
            gpt_partitions.push(crate::gpt::GptPartition {
                type_guid: crate::gpt::type_guid(&partition.type_code),
                unique_guid: crate::gpt::guid_bytes(&guid(&number.to_string())),
                first: first_lba,
                last: last_lba,
                name: partition.name.clone(),
            });
            start_mib += size;
        }
        if block_size == 512 {
            run(sgdisk.arg(&disk));
        } else {
            crate::gpt::write(
                &disk,
                block_size,
                crate::gpt::guid_bytes(&guid("disk")),
                &gpt_partitions,
            );
        }

        for (index, (partition, (start_mib, size))) in partitions.iter().zip(placements).enumerate()
        {
            let Some(fat) = &partition.fat else { continue };
            let image = scratch.join(format!("part{}.img", index + 1));
            let label = if index == 0 { "ESP" } else { "FAT" };
            fat.make_image(&image, size, label, block_size, &scratch);
            run(Command::new("dd")
                .arg(format!("if={}", image.display()))
                .arg(format!("of={}", disk.display()))
                .args(["bs=1M", "conv=notrunc,sparse", "status=none"])
                .arg(format!("seek={start_mib}")));
            remove_any(&image);
        }
        publish(&disk, &out);
        remove_any(&scratch);
        out
    }
}

/// A private copy of a disk image in the temp directory, deleted on drop: a test that
/// boots with guest writes reaching the file (`Vm::builder().disk_writable`) leaves the
/// cached image pristine. `name` makes the file unique among the process's tests.
pub struct TempDisk(pub PathBuf);

impl TempDisk {
    pub fn copy_of(source: &Path, name: &str) -> Self {
        let copy = std::env::temp_dir().join(format!("vmfw-{name}-{}.img", std::process::id()));
        std::fs::copy(source, &copy)
            .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", source.display(), copy.display()));
        TempDisk(copy)
    }
}

impl Drop for TempDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_come_parents_first() {
        let contents = FatContents::new()
            .file("EFI/BOOT/BOOTX64.EFI", "/x")
            .dir("/loader/entries")
            .bytes("\\EFI\\debian\\grub.cfg", "x");
        assert_eq!(
            contents.all_dirs(),
            [
                "/EFI",
                "/loader",
                "/EFI/BOOT",
                "/EFI/debian",
                "/loader/entries"
            ]
        );
    }

    #[test]
    fn builds_a_gpt_disk_with_files() {
        let marker = format!("built by unit test {}", std::process::id());
        let disk = EspBuilder::new()
            .bytes("/EFI/BOOT/hello.txt", marker.clone())
            .partition(Partition::raw("8300", "linux", 2))
            .build();
        let table = run(Command::new("sgdisk").arg("--print").arg(&disk));
        assert!(table.contains("EF00"), "{table}");
        assert!(table.contains("8300"), "{table}");
        // Read the file back out of the ESP at its partition offset (LBA 2048).
        let copy = run(Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(format!("{}@@1M", disk.display()))
            .arg("::/EFI/BOOT/hello.txt"));
        assert_eq!(copy, marker);
        // Same inputs: same cached image.
        let again = EspBuilder::new()
            .bytes("/EFI/BOOT/hello.txt", marker)
            .partition(Partition::raw("8300", "linux", 2))
            .build();
        assert_eq!(disk, again);
        std::fs::remove_file(disk).unwrap();
    }

    /// A 4Kn disk: GPT header at byte 4096 (LBA 1), partitions in 4096-byte LBAs, and an ESP
    /// whose FAT32 has 4096-byte sectors, readable by mtools at its 1 MiB offset.
    #[test]
    fn builds_a_4kn_gpt_disk() {
        let marker = format!("4Kn unit test {}", std::process::id());
        let disk = EspBuilder::new()
            .block_size(4096)
            .bytes("/EFI/BOOT/hello.txt", marker.clone())
            .build();
        let bytes = std::fs::read(&disk).unwrap();
        assert_eq!(&bytes[510..512], [0x55, 0xAA]);
        assert_eq!(&bytes[4096..4104], b"EFI PART");
        // First partition entry at LBA 2: starts at LBA 256 (1 MiB).
        let entry = &bytes[8192..8192 + 128];
        assert_eq!(&entry[0..16], crate::gpt::type_guid("EF00"));
        assert_eq!(u64::from_le_bytes(entry[32..40].try_into().unwrap()), 256);
        // The backup header in the last 4096-byte block.
        assert_eq!(&bytes[bytes.len() - 4096..bytes.len() - 4088], b"EFI PART");
        let esp = &bytes[1 << 20..];
        assert_eq!(
            u16::from_le_bytes([esp[11], esp[12]]),
            4096,
            "FAT bytes per sector"
        );
        let copy = run(Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(format!("{}@@1M", disk.display()))
            .arg("::/EFI/BOOT/hello.txt"));
        assert_eq!(copy, marker);
        std::fs::remove_file(disk).unwrap();
    }
}
