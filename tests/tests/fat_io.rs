//! FAT file I/O through EFI_FILE_PROTOCOL, checked from the host.
//!
//! The `fileio` EFI app (tests/efi-apps/fileio) reads a 64 MiB pseudo-random `\big.bin` in
//! 1 MiB chunks and prints its CRC-32 and read time, then creates `\out\written.txt`, reads
//! it back and powers off. The host compares the CRC with its own, then checks the disk it
//! wrote: `fsck.vfat -n` must find nothing to fix, and mtools must read back exactly the
//! content the app wrote.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vm_tests::{EspBuilder, Vm, crc32, efi_app, firmware};

/// Generous: TCG emulation of a 64 MiB read plus a byte-wise CRC.
const READ_TIMEOUT: Duration = Duration::from_secs(600);
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

const BIG_LEN: usize = 64 << 20;
const ESP_MIB: u64 = 200;
/// Disk images made by the harness use 512-byte sectors.
const SECTOR: u64 = 512;

/// `\out\written.txt` as the app writes it: 100 KiB of `a..z` cycling, then this line.
const PATTERN_LEN: usize = 100 * 1024;
const TRAILER: &[u8] = b"vmfw fileio: written through EFI_FILE_PROTOCOL\n";

fn expected_written_txt() -> Vec<u8> {
    let mut content: Vec<u8> = (0..PATTERN_LEN).map(|i| b'a' + (i % 26) as u8).collect();
    content.extend_from_slice(TRAILER);
    content
}

/// Deterministic pseudo-random bytes (xorshift64), so the cached disk image is reused.
fn big_bin() -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(BIG_LEN);
    while data.len() < BIG_LEN {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data
}

/// A private copy of a file, deleted on drop, so a writable VM leaves the cache pristine.
struct TempFile(PathBuf);

impl TempFile {
    fn path(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("vmfw-fat-io-{}-{name}", std::process::id())))
    }

    fn copy_of(source: &Path, name: &str) -> Self {
        let copy = Self::path(name);
        std::fs::copy(source, &copy.0)
            .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", source.display(), copy.0.display()));
        copy
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run(cmd: &mut Command) -> (bool, String) {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Byte offset and length of partition 1, from `sgdisk -i 1`.
fn esp_range(disk: &Path) -> (u64, u64) {
    let (ok, info) = run(Command::new("sgdisk").arg("-i").arg("1").arg(disk));
    assert!(ok, "sgdisk -i 1 failed:\n{info}");
    let sector = |label: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} in sgdisk output:\n{info}"))
    };
    let first = sector("First sector:");
    let last = sector("Last sector:");
    (first * SECTOR, (last + 1 - first) * SECTOR)
}

/// Copies partition 1 of `disk` into its own file (fsck.vfat takes no offset).
fn extract_esp(disk: &Path) -> TempFile {
    let (offset, len) = esp_range(disk);
    let out = TempFile::path("esp.img");
    let mut source = File::open(disk).unwrap_or_else(|e| panic!("open {}: {e}", disk.display()));
    source.seek(SeekFrom::Start(offset)).expect("seek to ESP");
    let mut dest =
        File::create(&out.0).unwrap_or_else(|e| panic!("create {}: {e}", out.0.display()));
    let copied = std::io::copy(&mut source.take(len), &mut dest).expect("copy ESP");
    assert_eq!(
        copied, len,
        "disk image shorter than its partition table says"
    );
    out
}

/// The `key=value` field `key` of an app output line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

#[test]
fn fat_read_crc_write_and_fsck() {
    let big = big_bin();
    let expected_crc = crc32(&big);
    let cached = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("fileio"))
        .bytes("/big.bin", big)
        .esp_size_mib(ESP_MIB)
        .build();
    let disk = TempFile::copy_of(&cached, "disk.img");

    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    let reading = vm.expect("FILEIO: reading", STEP_TIMEOUT).unwrap();
    let result = vm
        .expect_any(&["FILEIO: crc32=", "FILEIO: error"], READ_TIMEOUT)
        .unwrap()
        .1;
    let line = result.line.trim();
    assert_eq!(
        field(line, "crc32"),
        format!("{expected_crc:08x}"),
        "CRC mismatch: {line}"
    );
    assert_eq!(field(line, "bytes"), BIG_LEN.to_string(), "{line}");
    let ms: u64 = field(line, "ms").parse().expect("ms is a number");
    let write = vm.expect("FILEIO: write=", STEP_TIMEOUT).unwrap();
    assert!(
        write.line.trim_end().ends_with("write=ok"),
        "{}\n{}",
        write.line,
        vm.transcript()
    );
    vm.expect("FILEIO: done", STEP_TIMEOUT).unwrap();
    // The app ends with ResetSystem(EfiResetShutdown), which must power QEMU off.
    vm.wait_exit(Duration::from_secs(60)).unwrap();

    let mib = BIG_LEN as f64 / f64::from(1 << 20);
    let app_rate = mib / (ms.max(1) as f64 / 1000.0);
    let host_span = result.elapsed.saturating_sub(reading.elapsed);
    println!(
        "fileio: crc32={expected_crc:08x} matches; app-timed Read calls {ms} ms = {app_rate:.1} MiB/s; \
         host-observed read+CRC {:.1} s = {:.1} MiB/s",
        host_span.as_secs_f64(),
        mib / host_span.as_secs_f64().max(0.001)
    );
    if let Some(extra) = vm.find("FILEIO: total_ms=") {
        println!("fileio: {}", extra.line.trim());
    }
    drop(vm);

    let esp = extract_esp(&disk.0);
    let (clean, report) = run(Command::new("fsck.vfat").arg("-n").arg(&esp.0));
    println!("fsck.vfat -n:\n{report}");
    assert!(clean, "fsck.vfat -n found problems:\n{report}");

    let written = TempFile::path("written.txt");
    let (ok, output) = run(Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-n")
        .arg("-i")
        .arg(&esp.0)
        .arg("::/out/written.txt")
        .arg(&written.0));
    assert!(ok, "mcopy ::/out/written.txt failed:\n{output}");
    let content = std::fs::read(&written.0).expect("read extracted written.txt");
    assert!(
        content == expected_written_txt(),
        "written.txt differs: {} bytes, want {}",
        content.len(),
        PATTERN_LEN + TRAILER.len()
    );
}
