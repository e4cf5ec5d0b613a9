//! Hostile disks: each test corrupts one structure of an otherwise valid
//! disk (a GPT entry, a FAT chain, a directory, a kernel, a BLS entry, a PE
//! relocation) and expects the firmware to report the problem on one log
//! line, skip that boot option and end cleanly with "no bootable device
//! found": no hang, no CPU exception, no panic. Where only part of a disk is
//! bad (one unreadable sector), the rest must keep working.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vm_tests::{EspBuilder, Vm, boot_firmware, crc32, debian_kernel, efi_app, firmware};

const TIMEOUT: Duration = Duration::from_secs(180);
const SECTOR: u64 = 512;

/// A private, writable copy of a built disk image, removed on drop.
struct DiskCopy(PathBuf);

impl DiskCopy {
    fn of(image: &Path, name: &str) -> DiskCopy {
        let path =
            std::env::temp_dir().join(format!("vmfw-hostile-{name}-{}.img", std::process::id()));
        std::fs::copy(image, &path).unwrap();
        DiskCopy(path)
    }

    fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&self.0).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        let mut buf = vec![0; len];
        file.read_exact(&mut buf).unwrap();
        buf
    }

    fn write(&self, offset: u64, data: &[u8]) {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.0)
            .unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(data).unwrap();
    }

    fn sectors(&self) -> u64 {
        std::fs::metadata(&self.0).unwrap().len() / SECTOR
    }
}

impl Drop for DiskCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Rewrites the GPT entry array with `edit` in both the primary and the
/// backup copy, fixing up every CRC so only the entries' meaning is wrong.
fn patch_gpt_entries(disk: &DiskCopy, edit: impl Fn(&mut [u8])) {
    for header_lba in [1, disk.sectors() - 1] {
        let mut header = disk.read(header_lba * SECTOR, SECTOR as usize);
        let entries_lba = u64_at(&header, 72);
        let count = u32_at(&header, 80) as usize;
        let entry_size = u32_at(&header, 84) as usize;
        let mut entries = disk.read(entries_lba * SECTOR, count * entry_size);
        edit(&mut entries);
        disk.write(entries_lba * SECTOR, &entries);
        header[88..92].copy_from_slice(&crc32(&entries).to_le_bytes());
        let header_size = u32_at(&header, 12) as usize;
        header[16..20].fill(0);
        let crc = crc32(&header[..header_size]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        disk.write(header_lba * SECTOR, &header);
    }
}

/// Sets GPT entry `index` (0-based) to a Linux data partition spanning
/// `first..=last`.
fn set_gpt_entry(entries: &mut [u8], index: usize, first: u64, last: u64) {
    let entry = &mut entries[index * 128..(index + 1) * 128];
    // Linux filesystem data 0FC63DAF-8483-4772-8E79-3D69D8477DE4 (mixed endian).
    entry[..16].copy_from_slice(&[
        0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d,
        0xe4,
    ]);
    entry[16..32].copy_from_slice(&[0x42; 16]);
    entry[32..40].copy_from_slice(&first.to_le_bytes());
    entry[40..48].copy_from_slice(&last.to_le_bytes());
}

/// Byte offset of partition 1 (the ESP) from the primary GPT.
fn esp_offset(disk: &DiskCopy) -> u64 {
    let header = disk.read(SECTOR, SECTOR as usize);
    let entry = disk.read(u64_at(&header, 72) * SECTOR, 128);
    u64_at(&entry, 32) * SECTOR
}

/// FAT32 layout of the ESP: (byte offset of the first FAT, FAT size in
/// bytes, number of FATs).
fn fat_tables(disk: &DiskCopy) -> (u64, u64, u64) {
    let base = esp_offset(disk);
    let bpb = disk.read(base, 512);
    let bytes_per_sector = u64::from(u16::from_le_bytes([bpb[11], bpb[12]]));
    let reserved = u64::from(u16::from_le_bytes([bpb[14], bpb[15]]));
    let fats = u64::from(bpb[16]);
    let fat_sectors = u64::from(u32_at(&bpb, 36));
    (
        base + reserved * bytes_per_sector,
        fat_sectors * bytes_per_sector,
        fats,
    )
}

/// The cluster runs of `fat_path` on the ESP, from mtools' `mshowfat`
/// (`::/path <3-10> <12>`).
fn clusters(disk: &DiskCopy, fat_path: &str) -> Vec<u32> {
    let image = format!("{}@@{}", disk.0.display(), esp_offset(disk));
    let out = Command::new("mshowfat")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-i", &image, &format!("::{fat_path}")])
        .output()
        .expect("mshowfat (mtools) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut clusters = Vec::new();
    for run in text.split('<').skip(1) {
        let run = run.split('>').next().unwrap();
        let (first, last) = run.split_once('-').unwrap_or((run, run));
        clusters.extend(first.trim().parse::<u32>().unwrap()..=last.trim().parse::<u32>().unwrap());
    }
    assert!(!clusters.is_empty(), "mshowfat found {fat_path}: {text}");
    clusters
}

/// Points FAT32 entry `cluster` at `next` in every FAT copy.
fn set_fat_entry(disk: &DiskCopy, cluster: u32, next: u32) {
    let (first_fat, fat_bytes, fats) = fat_tables(disk);
    for copy in 0..fats {
        disk.write(
            first_fat + copy * fat_bytes + u64::from(cluster) * 4,
            &next.to_le_bytes(),
        );
    }
}

/// The firmware reports `error` on a line, then finds nothing else to boot,
/// without faulting.
fn assert_rejected(disk: &DiskCopy, error: &[&str]) -> Vm {
    let mut vm = boot_firmware(&disk.0);
    let line = vm
        .expect(error[0], TIMEOUT)
        .unwrap_or_else(|e| panic!("no '{}' report: {e:?}\n{}", error[0], vm.transcript()));
    for part in &error[1..] {
        assert!(line.line.contains(part), "'{part}' in: {}", line.line);
    }
    vm.expect("no bootable device found", TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:?}\n{}", vm.transcript()));
    let transcript = vm.transcript();
    assert!(
        !transcript.contains("CPU exception") && !transcript.contains("panic"),
        "{transcript}"
    );
    vm
}

/// An ESP with nothing bootable but a BLS entry directory.
fn plain_esp() -> PathBuf {
    EspBuilder::new()
        .bytes("/loader/loader.conf", "timeout 0\n")
        .dir("/loader/entries")
        .build()
}

#[test]
fn gpt_entry_past_the_end_of_the_disk() {
    let disk = DiskCopy::of(&plain_esp(), "gpt-past-end");
    let sectors = disk.sectors();
    patch_gpt_entries(&disk, |entries| {
        set_gpt_entry(entries, 1, sectors - 100, sectors + 5000);
    });
    assert_rejected(&disk, &["partition 2", "exceeds the allowed range"]);
}

#[test]
fn gpt_entries_that_overlap() {
    let disk = DiskCopy::of(&plain_esp(), "gpt-overlap");
    patch_gpt_entries(&disk, |entries| {
        let esp_first = u64_at(entries, 32);
        set_gpt_entry(entries, 1, esp_first + 64, esp_first + 2047);
    });
    assert_rejected(&disk, &["overlaps partition"]);
}

#[test]
fn fat_cluster_chain_loop_in_the_boot_application() {
    let image = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("selftest"))
        .build();
    let disk = DiskCopy::of(&image, "fat-chain-loop");
    let chain = clusters(&disk, "/EFI/BOOT/BOOTX64.EFI");
    assert!(chain.len() > 4, "a multi-cluster file: {chain:?}");
    // The third cluster links back to the first: reading loops forever
    // unless the file system bounds the walk.
    set_fat_entry(&disk, chain[2], chain[0]);
    let vm = assert_rejected(&disk, &["FAT: cluster chain"]);
    assert!(
        vm.find("BOOTX64.EFI failed: volume corrupted").is_some(),
        "{}",
        vm.transcript()
    );
}

#[test]
fn fat_directory_loop() {
    let disk = DiskCopy::of(&plain_esp(), "fat-dir-loop");
    // /loader/entries is one cluster; linking it to itself makes an endless
    // directory that the BLS scan must not walk forever.
    let entries = clusters(&disk, "/loader/entries");
    set_fat_entry(&disk, entries[entries.len() - 1], entries[0]);
    assert_rejected(&disk, &["FAT: ", "cluster"]);
}

#[test]
fn truncated_kernel_in_a_bls_entry() {
    let kernel = debian_kernel();
    let whole = std::fs::read(&kernel.vmlinuz).unwrap();
    let image = EspBuilder::new()
        .bytes("/vmlinuz-truncated", whole[..whole.len() / 3].to_vec())
        .bytes(
            "/loader/entries/truncated.conf",
            "title Truncated\nlinux /vmlinuz-truncated\noptions console=ttyS0\n",
        )
        .build();
    let disk = DiskCopy::of(&image, "truncated-kernel");
    assert_rejected(&disk, &["BLS entry 'Truncated'"]);
}

#[test]
fn bls_entry_naming_a_missing_file() {
    let image = EspBuilder::new()
        .bytes(
            "/loader/entries/missing.conf",
            "title Missing\nlinux /no-such-vmlinuz\noptions console=ttyS0\n",
        )
        .build();
    let disk = DiskCopy::of(&image, "bls-missing");
    assert_rejected(&disk, &["BLS entry 'Missing'", "no-such-vmlinuz"]);
}

/// Moves the first base-relocation block of a PE32+ file to a page far
/// outside the image (PE/COFF "The .reloc Section").
/// Byte offset on the disk of cluster `cluster` of the ESP (FAT32).
fn cluster_offset(disk: &DiskCopy, cluster: u32) -> u64 {
    let base = esp_offset(disk);
    let bpb = disk.read(base, 512);
    let bytes_per_sector = u64::from(u16::from_le_bytes([bpb[11], bpb[12]]));
    let cluster_bytes = bytes_per_sector * u64::from(bpb[13]);
    let (first_fat, fat_bytes, fats) = fat_tables(disk);
    let data = first_fat + fat_bytes * fats;
    data + u64::from(cluster - 2) * cluster_bytes
}

/// One unreadable sector in a file near the start of the ESP (QEMU's blkdebug fails every
/// read that covers it) costs that file only: the volume mounts and the boot application
/// after it runs to its end. The firmware's read-ahead once widened a small read into a
/// window over the bad sector and lost the whole volume.
#[test]
fn a_bad_sector_in_one_file_leaves_the_volume_usable() {
    let image = EspBuilder::new()
        .bytes("/a.bin", vec![0x5a; 256 * 1024])
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("selftest"))
        .build();
    let disk = DiskCopy::of(&image, "bad-sector");
    let bad = cluster_offset(&disk, clusters(&disk, "/a.bin")[4]) / SECTOR;
    let config = disk.0.with_extension("blkdebug.conf");
    std::fs::write(
        &config,
        format!("[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\nsector = \"{bad}\"\n"),
    )
    .unwrap();
    // Writable (the copy is private): under a snapshot overlay, a write near the bad sector
    // would copy its whole overlay cluster from the disk and fail on QEMU's side.
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(format!(
            "blkdebug:{}:{}",
            config.display(),
            disk.0.display()
        ))
        .spawn();
    let summary = vm
        .expect(" passed, ", TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:?}\n{}", vm.transcript()));
    let _ = std::fs::remove_file(&config);
    assert!(
        summary.line.trim_end().ends_with(" passed, 0 failed"),
        "{}",
        summary.line
    );
}

/// An ESP whose boot sector is damaged: the volume line at the default log level says why
/// the FAT driver refused it, so the user needs no `log=debug` to find out.
#[test]
fn esp_with_a_damaged_boot_sector_says_why() {
    let disk = DiskCopy::of(&plain_esp(), "bad-bpb");
    let base = esp_offset(&disk);
    disk.write(base + 11, &768u16.to_le_bytes());
    assert_rejected(
        &disk,
        &["no FAT file system (", "partition 1", "BytsPerSec = 0x300"],
    );
}

/// A BootOrder that lists one missing option 30,000 times (set by the `bootorder` app before a
/// reset): the boot manager tries it once, with one warning for the repeats and one for the
/// missing option, then boots the removable-media path again. It once printed 60,000
/// warnings and took ~38 s over it.
#[test]
fn boot_order_repeating_one_option_30000_times() {
    let image = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("bootorder"))
        .build();
    let disk = DiskCopy::of(&image, "bootorder");
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .arg("-action")
        .arg("reboot=reset")
        .spawn();
    for line in [
        "BOOTORDER: hostile BootOrder set, resetting",
        "BootOrder repeats options 29999 times; each is tried once",
        "BOOTORDER: booted again",
        "BOOTORDER: done",
    ] {
        vm.expect(line, TIMEOUT)
            .unwrap_or_else(|e| panic!("expected {line:?}: {e:?}\n{}", vm.transcript()));
    }
    vm.wait_exit(Duration::from_secs(30)).unwrap();
    let transcript = vm.transcript();
    assert_eq!(
        transcript
            .matches("Boot7A7A (in BootOrder or BootNext) does not exist")
            .count(),
        1,
        "one warning for the missing option:\n{transcript}"
    );
}

/// GPT attribute bit 1, "No Block IO Protocol" (UEFI 2.10 Table 5-8): the firmware must not
/// publish the partition, so its boot application never runs.
#[test]
fn gpt_partition_marked_no_block_io() {
    let image = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("blkbench"))
        .build();
    let disk = DiskCopy::of(&image, "gpt-no-block-io");
    patch_gpt_entries(&disk, |entries| entries[48] |= 1 << 1);
    let vm = assert_rejected(&disk, &["GPT attribute bit 1", "partition 1"]);
    assert!(!vm.transcript().contains("BLKBENCH"), "{}", vm.transcript());
}

/// A directory named as an initrd (`initrd /loader`) is refused with a clear line, not read
/// as an empty initrd; the same for a directory named as the kernel.
#[test]
fn bls_entry_naming_a_directory() {
    let kernel = debian_kernel();
    let image = EspBuilder::new()
        .file("/vmlinuz", &kernel.vmlinuz)
        .bytes(
            "/loader/entries/dir-initrd.conf",
            "title DirInitrd\nlinux /vmlinuz\ninitrd /loader\noptions console=ttyS0\n",
        )
        .build();
    let disk = DiskCopy::of(&image, "bls-dir-initrd");
    assert_rejected(
        &disk,
        &[
            "BLS entry 'DirInitrd'",
            "\\loader is a directory, not a file",
        ],
    );
    let image = EspBuilder::new()
        .dir("/boot")
        .bytes(
            "/loader/entries/dir-kernel.conf",
            "title DirKernel\nlinux /boot\noptions console=ttyS0\n",
        )
        .build();
    let disk = DiskCopy::of(&image, "bls-dir-kernel");
    assert_rejected(
        &disk,
        &["BLS entry 'DirKernel'", "\\boot is a directory, not a file"],
    );
}

fn relocation_outside_image(pe: &mut [u8]) {
    let header = u32_at(pe, 0x3c) as usize;
    let optional = header + 24;
    let sections = optional + usize::from(u16::from_le_bytes([pe[header + 20], pe[header + 21]]));
    let section_count = usize::from(u16::from_le_bytes([pe[header + 6], pe[header + 7]]));
    let reloc_rva = u32_at(pe, optional + 112 + 5 * 8);
    assert_ne!(reloc_rva, 0, "the test application has base relocations");
    for i in 0..section_count {
        let section = &pe[sections + i * 40..sections + (i + 1) * 40];
        let rva = u32_at(section, 12);
        let raw_size = u32_at(section, 16);
        let raw = u32_at(section, 20);
        if (rva..rva + raw_size).contains(&reloc_rva) {
            let block = (raw + reloc_rva - rva) as usize;
            pe[block..block + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
            return;
        }
    }
    panic!("no section holds the relocations");
}

#[test]
fn pe_relocation_outside_the_image() {
    let mut pe = std::fs::read(efi_app("wxtest")).unwrap();
    relocation_outside_image(&mut pe);
    let image = EspBuilder::new().bytes("/EFI/BOOT/BOOTX64.EFI", pe).build();
    let disk = DiskCopy::of(&image, "pe-reloc");
    let vm = assert_rejected(&disk, &["LoadImage"]);
    assert!(vm.find("wxtest: start").is_none(), "the image never ran");
}

/// A firmware panic (forced with the testing aid `test-panic=0000` as the
/// removable-media option starts) reports where it happened, resets the VM
/// after a short delay instead of halting it, and the next start skips that
/// option once: the BLS loader's option boots the kernel. Before, a panic
/// halted the VM for good.
#[test]
fn a_panic_resets_and_the_next_start_skips_the_option() {
    let image = vm_tests::default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .append("test-panic=0000")
        .arg("-action")
        .arg("reboot=reset")
        .spawn();
    for line in [
        "*** firmware panic (last phase: file-system): ",
        "*** while booting Boot0000",
        "*** resetting in 5 s",
        "the previous start panicked while booting Boot0000; skipping it this start",
        "Boot0000: skipped this start",
        "INIT: cmdline=",
    ] {
        vm.expect(line, TIMEOUT)
            .unwrap_or_else(|e| panic!("expected {line:?}: {e:?}\n{}", vm.transcript()));
    }
    let booted = vm.find("INIT: cmdline=").unwrap();
    assert!(
        booted.line.contains("vmfw.entry=bls"),
        "the BLS loader's option booted: {}",
        booted.line
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// `panic=halt` keeps the former behaviour for debugging: the report, then a
/// halted VM (no reset, no second start).
#[test]
fn panic_halt_keeps_the_vm_halted() {
    let image = vm_tests::default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .append("test-panic=0000 panic=halt")
        .arg("-action")
        .arg("reboot=reset")
        .spawn();
    vm.expect("*** halted (panic=halt)", TIMEOUT).unwrap();
    std::thread::sleep(Duration::from_secs(8));
    let transcript = vm.transcript();
    assert_eq!(
        transcript
            .matches("UEFI firmware for virtual machines")
            .count(),
        1,
        "the firmware did not start again:\n{transcript}"
    );
}

/// Sizes an EFI caller controls (the allocation audit, `docs/allocation-audit.md`): the
/// `allocsize` app hands HII NewPackageList a 16 MiB list of 4,194,298 four-byte packages,
/// whose index alone is ~100 MB, in a 128 MiB VM. The firmware must answer
/// EFI_OUT_OF_RESOURCES and keep working (a small list is then registered and removed);
/// it once panicked with `memory allocation of 50331648 bytes failed` and reset.
#[test]
fn caller_sizes_the_heap_cannot_hold_are_out_of_resources() {
    const OUT_OF_RESOURCES: &str = "0x8000000000000009";
    let image = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("allocsize"))
        .build();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image)
        .memory_mib(128)
        .spawn();
    for line in [
        &format!("ALLOCSIZE: NewPackageList(16 MiB, 4194298 packages) = {OUT_OF_RESOURCES}"),
        &format!("ALLOCSIZE: AllocatePool(2^62 bytes) = {OUT_OF_RESOURCES}"),
        "ALLOCSIZE: NewPackageList(small) = 0x0, RemovePackageList = 0x0",
        "ALLOCSIZE: done",
    ] {
        vm.expect(line, TIMEOUT)
            .unwrap_or_else(|e| panic!("expected {line:?}: {e:?}\n{}", vm.transcript()));
    }
    vm.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(
        !vm.transcript().contains("firmware panic"),
        "no panic:\n{}",
        vm.transcript()
    );
}
