//! Big files and forced allocation failures (issue 18): boot files of
//! 100 MiB load through EFI pages, never whole into the firmware heap; what
//! cannot be had is refused with one serial line and the boot goes on;
//! `test-alloc-fail=` makes LoadImage, the FAT driver and the variable store
//! fail their allocations, each with its documented line, never a panic.
//!
//! The firmware this replaced panicked on each of the big files
//! (`memory allocation of ... bytes failed`), read a 100 MiB non-kernel
//! whole before looking at it, and ignored `test-alloc-fail=`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vm_tests::{
    EspBuilder, Vm, cache_dir, debian_kernel, efi_app, expect_linux_environment, firmware,
    initramfs, publish, temp_sibling, unified_kernel_image,
};

const TIMEOUT: Duration = Duration::from_secs(300);
const MIB: u64 = 1 << 20;

/// Fails on a firmware panic or CPU exception anywhere in the transcript.
fn assert_no_panic(vm: &Vm) {
    let transcript = vm.transcript();
    assert!(
        !transcript.contains("firmware panic") && !transcript.contains("CPU exception"),
        "{transcript}"
    );
}

/// Waits for `pattern`, with the transcript in the failure message.
fn expect(vm: &mut Vm, pattern: &str) -> String {
    match vm.expect(pattern, TIMEOUT) {
        Ok(found) => found.line,
        Err(e) => panic!("no '{pattern}': {e:?}\n{}", vm.transcript()),
    }
}

/// A host file `name` in the test cache: `head` then zeros up to `len` bytes.
fn padded_file(name: &str, head: &[u8], len: u64) -> PathBuf {
    let path = cache_dir("bigfiles").join(name);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == len) {
        return path;
    }
    let temp = temp_sibling(&path);
    let mut file = std::fs::File::create(&temp).unwrap();
    file.write_all(head).unwrap();
    file.set_len(len).unwrap();
    drop(file);
    publish(&temp, &path);
    path
}

/// The `hello` application with zeros appended up to 100 MiB: still a valid
/// PE (the appended data is no section), 100 MiB on disk.
fn hello_100_mib() -> PathBuf {
    let hello = std::fs::read(efi_app("hello")).unwrap();
    let tag = format!("hello-{}.efi", hello.len());
    padded_file(&tag, &hello, 100 * MIB)
}

/// One newc cpio archive (Linux `Documentation/driver-api/early-userspace/buffer-format.rst`)
/// holding `padding` (`len` zero bytes) and the trailer; the kernel unpacks it
/// after the compressed archive it follows.
fn padding_cpio(len: u64) -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, name: &str, mode: u32, size: u64) {
        let name_len = name.len() + 1;
        write!(
            out,
            "070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{name_len:08x}{:08x}",
            1, 0, 0, 1, 0, 0, 0, 0, 0, 0
        )
        .unwrap();
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    let mut out = Vec::new();
    entry(&mut out, "padding", 0o100644, len);
    out.resize(out.len() + len as usize, 0);
    out.resize(out.len().next_multiple_of(4), 0);
    entry(&mut out, "TRAILER!!!", 0, 0);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

/// The test initramfs followed by an uncompressed archive of 90 MiB of
/// padding: an initrd of about 93 MiB.
fn padded_initrd() -> PathBuf {
    let base = initramfs("", &[]);
    let stem = base.file_stem().unwrap().to_string_lossy().into_owned();
    let path = cache_dir("bigfiles").join(format!("{stem}-padded90.img"));
    if !path.is_file() {
        let mut data = std::fs::read(&base).unwrap();
        data.resize(data.len().next_multiple_of(4), 0);
        data.extend_from_slice(&padding_cpio(90 * MIB));
        let temp = temp_sibling(&path);
        std::fs::write(&temp, &data).unwrap();
        publish(&temp, &path);
    }
    path
}

const UKI_CMDLINE: &str = "console=ttyS0 panic=-1 vmfw.entry=big-uki";

/// An ESP holding the same 100 MiB unified kernel image as a BLS Type #2
/// entry and as `\EFI\BOOT\BOOTX64.EFI`.
fn big_uki_disk() -> PathBuf {
    let kernel = debian_kernel();
    let os_release = "PRETTY_NAME=\"Big UKI (vmfw test)\"\nID=debian\nVERSION_ID=\"12\"\n";
    let uki = unified_kernel_image(&kernel, &padded_initrd(), UKI_CMDLINE, os_release);
    let size = std::fs::metadata(&uki).unwrap().len();
    assert!(size >= 95 * MIB, "the UKI is {size} bytes");
    EspBuilder::new()
        .file("/EFI/Linux/big.efi", &uki)
        .file("/EFI/BOOT/BOOTX64.EFI", &uki)
        .build()
}

/// Boots `disk` with `append` and waits for the UKI's own `/init`.
fn boot_big_uki(disk: &Path, append: &str, booted_as: &str) {
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(disk)
        .append(append)
        .spawn();
    let line = expect(&mut vm, "INIT: cmdline=");
    assert!(line.contains(UKI_CMDLINE), "{line}");
    expect_linux_environment(&mut vm, TIMEOUT);
    expect(&mut vm, "INIT: done");
    assert!(
        vm.find(booted_as).is_some(),
        "booted through '{booted_as}':\n{}",
        vm.transcript()
    );
    assert_no_panic(&vm);
}

/// A 100 MiB UKI (kernel 6.1, a 93 MiB initrd) boots through the BLS Type #2
/// path.
#[test]
fn uki_of_100_mib_boots_as_bls_type2_entry() {
    boot_big_uki(
        &big_uki_disk(),
        "boot=bls",
        "booting BLS entry 'Big UKI (vmfw test)",
    );
}

/// The same UKI boots as the removable-media `\EFI\BOOT\BOOTX64.EFI`.
#[test]
fn uki_of_100_mib_boots_as_bootx64() {
    boot_big_uki(
        &big_uki_disk(),
        "",
        "booting \\EFI\\BOOT\\BOOTX64.EFI (Boot0000",
    );
}

/// On a 96 MiB VM the 100 MiB UKI does not fit in free memory: LoadImage
/// refuses it from its headers with one line naming the file, its size and
/// the memory it needs, and the next boot option (`hello` as
/// `BOOTX64.EFI`) runs.
#[test]
fn uki_larger_than_free_memory_is_refused_and_the_next_option_runs() {
    let kernel = debian_kernel();
    let os_release = "PRETTY_NAME=\"Big UKI (vmfw test)\"\nID=debian\nVERSION_ID=\"12\"\n";
    let uki = unified_kernel_image(&kernel, &padded_initrd(), UKI_CMDLINE, os_release);
    let size = std::fs::metadata(&uki).unwrap().len();
    let disk = EspBuilder::new()
        .file("/EFI/Linux/big.efi", &uki)
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("hello"))
        .build();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(disk)
        // Not 128 MiB: the firmware leaves about 118 MiB of it free, so the
        // UKI loads, and its kernel then has no room to decompress.
        .memory_mib(96)
        .append("boot=bls")
        .spawn();
    let line = expect(&mut vm, "LoadImage: \\EFI\\Linux\\big.efi");
    assert!(
        line.contains(&format!("({size} bytes) needs"))
            && line.contains("bytes free): refused (EFI_OUT_OF_RESOURCES)"),
        "{line}"
    );
    expect(&mut vm, "HELLO: running");
    assert_no_panic(&vm);
}

/// An ESP with the 100 MiB `hello` at `\big.efi` and a BLS Type #1 entry
/// whose `efi` line names it.
fn big_pe_disk() -> PathBuf {
    EspBuilder::new()
        .file("/big.efi", hello_100_mib())
        .bytes(
            "/loader/entries/big.conf",
            "title Big PE\nefi /big.efi\noptions from-bls-entry\n",
        )
        .build()
}

/// The 100 MiB PE named by `kernel=` runs with its command line.
#[test]
fn pe_of_100_mib_runs_from_kernel_word() {
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(big_pe_disk())
        .append("kernel=\\big.efi cmdline=from-kernel-word")
        .spawn();
    let line = expect(&mut vm, "HELLO: running");
    assert!(line.contains("LoadOptions=from-kernel-word"), "{line}");
    assert_no_panic(&vm);
}

/// The 100 MiB PE named by a BLS `efi` line runs with the entry's options.
#[test]
fn pe_of_100_mib_runs_from_bls_efi_line() {
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(big_pe_disk())
        .spawn();
    let line = expect(&mut vm, "HELLO: running");
    assert!(line.contains("LoadOptions=from-bls-entry"), "{line}");
    assert!(vm.find("booting BLS entry 'Big PE'").is_some());
    assert_no_panic(&vm);
}

/// A 100 MiB Type #1 `linux` file that is no kernel (neither PE nor bzImage)
/// is refused from its first sectors with one line; the next entry boots.
#[test]
fn non_kernel_of_100_mib_is_refused_and_the_next_entry_boots() {
    let junk = padded_file("junk-100m.bin", b"not a kernel", 100 * MIB);
    let disk = EspBuilder::new()
        .file("/junk.bin", junk)
        .file("/hello.efi", efi_app("hello"))
        .bytes(
            "/loader/entries/a-junk.conf",
            "title Junk\nsort-key test\nversion 2\nlinux /junk.bin\n",
        )
        .bytes(
            "/loader/entries/b-hello.conf",
            "title Hello\nsort-key test\nversion 1\nefi /hello.efi\noptions next-entry\n",
        )
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(disk).spawn();
    let refused = expect(&mut vm, "is neither an EFI image nor a Linux kernel");
    assert!(
        refused.contains("BLS entry 'Junk")
            && refused.contains("\\junk.bin (104857600 bytes)")
            && refused.contains("refused"),
        "{refused}"
    );
    let line = expect(&mut vm, "HELLO: running");
    assert!(line.contains("LoadOptions=next-entry"), "{line}");
    assert_no_panic(&vm);
}

/// A 40 MiB `\EFI\vmfw\vars.bin` is not read: an empty store, one warning,
/// and the boot goes on.
#[test]
fn vars_bin_of_40_mib_gives_an_empty_store() {
    let store = padded_file("vars-40m.bin", b"VMFWVAR", 40 * MIB);
    let disk = EspBuilder::new()
        .file("/EFI/vmfw/vars.bin", store)
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("hello"))
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(disk).spawn();
    let warning = expect(&mut vm, "variables: \\EFI\\vmfw\\vars.bin is");
    assert!(
        warning.contains("41943040 bytes") && warning.contains("starting empty"),
        "{warning}"
    );
    expect(&mut vm, "HELLO: running");
    assert_no_panic(&vm);
}

/// A small ESP: `hello` as the removable-media application and a store file
/// of the size the firmware writes (empty slots).
fn small_disk() -> PathBuf {
    EspBuilder::new()
        .bytes("/EFI/vmfw/vars.bin", vec![0u8; 256 * 1024])
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("hello"))
        .build()
}

/// Boots the small disk with `test-alloc-fail=<site>`.
fn boot_forcing(site: &str) -> Vm {
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(small_disk())
        .append(format!("test-alloc-fail={site}"))
        .spawn();
    expect(
        &mut vm,
        &format!("test-alloc-fail={site}: this allocation will fail"),
    );
    vm
}

/// LoadImage cannot have the image's pages: EFI_OUT_OF_RESOURCES with one
/// line naming the file; nothing else is bootable.
#[test]
fn forced_loadimage_failure_is_out_of_resources() {
    let mut vm = boot_forcing("loadimage");
    let line = expect(&mut vm, "LoadImage: \\EFI\\BOOT\\BOOTX64.EFI");
    assert!(
        line.contains("refused (EFI_OUT_OF_RESOURCES)"),
        "one line names the file, its size and the status: {line}"
    );
    expect(&mut vm, "no bootable device found");
    assert!(vm.find("HELLO: running").is_none());
    assert_no_panic(&vm);
}

/// The FAT driver cannot have its buffers: the volume is not mounted (one
/// line, EFI_OUT_OF_RESOURCES) and the boot ends without a file system.
#[test]
fn forced_fat_failure_leaves_the_volume_unmounted() {
    let mut vm = boot_forcing("fat");
    let line = expect(&mut vm, "storage: FAT volume not mounted");
    assert!(line.contains("EFI_OUT_OF_RESOURCES"), "{line}");
    expect(&mut vm, "no bootable device found");
    assert!(vm.find("HELLO: running").is_none());
    assert_no_panic(&vm);
}

/// The variable store cannot have the buffer for `vars.bin`: an empty
/// store, one warning, and the boot goes on.
#[test]
fn forced_varstore_failure_gives_an_empty_store() {
    let mut vm = boot_forcing("varstore");
    let line = expect(&mut vm, "variables: no memory for the");
    assert!(
        line.contains("EFI_OUT_OF_RESOURCES") && line.contains("starting empty"),
        "{line}"
    );
    expect(&mut vm, "HELLO: running");
    assert_no_panic(&vm);
}
