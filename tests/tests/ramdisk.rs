//! The storage drivers bind any Block I/O (issue 21): the `ramdisk` EFI app
//! (tests/efi-apps/ramdisk) installs a Block I/O of its own over a FAT image
//! read from the ESP, calls ConnectController, and reads a file back through
//! the SimpleFileSystem the firmware's drivers put on it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use vm_tests::{EspBuilder, Vm, cache_dir, crc32, efi_app, firmware, publish, temp_sibling};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The file inside the RAM disk: 300 KiB of a pattern, so the read spans
/// many clusters.
fn hello() -> Vec<u8> {
    (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// A 4 MiB FAT image holding `\HELLO.TXT`, cached.
fn ramdisk_image() -> PathBuf {
    let out = cache_dir("disks").join("ramdisk-fat-v1.img");
    if out.is_file() {
        return out;
    }
    let temp = temp_sibling(&out);
    let content = temp.with_extension("txt");
    std::fs::write(&content, hello()).unwrap();
    let run = |cmd: &mut Command| {
        let status = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(status.success(), "{cmd:?}: {status}");
    };
    run(Command::new("mkfs.fat")
        .args(["-C", "-i", "12345678"])
        .arg(&temp)
        .arg("4096"));
    run(Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&temp)
        .arg(&content)
        .arg("::/HELLO.TXT"));
    let _ = std::fs::remove_file(&content);
    publish(&temp, &out);
    out
}

#[test]
fn block_io_installed_by_an_app_gets_a_file_system() {
    let disk = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("ramdisk"))
        .file("/ramdisk.img", ramdisk_image())
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(&disk).spawn();
    let (_, found) = vm
        .expect_any(&["RAMDISK: crc32=", "RAMDISK: error"], TIMEOUT)
        .unwrap();
    let line = found.line.trim();
    let content = hello();
    assert!(
        line.ends_with(&format!(
            "crc32={:08x} bytes={}",
            crc32(&content),
            content.len()
        )),
        "{line}"
    );
    assert!(
        vm.find("storage: Disk I/O on another driver's Block I/O (8192 blocks of 512 bytes)")
            .is_some(),
        "the Disk I/O driver bound the app's Block I/O"
    );
    vm.expect("RAMDISK: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}
