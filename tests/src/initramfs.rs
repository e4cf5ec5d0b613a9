//! Test initramfs: busybox, a few kernel modules and an `/init` that reports what the kernel sees
//! of the firmware as `INIT: ` lines on the console, then powers off.
//!
//! The archive is a gzip'd newc cpio (Linux Documentation/driver-api/early-userspace/
//! buffer-format.rst), written here rather than with `cpio` so device nodes need no root.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::deb::{DebianKernel, deb, debian_kernel};
use crate::paths::cache_dir;
use crate::util::{KeyHasher, publish, temp_sibling};

/// Modules every initramfs loads: virtio-pci transport + virtio-blk for disks, and efivarfs
/// (all `=m` in Debian 12's config).
pub const BASE_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "efivarfs"];

/// Busybox applets linked into `/bin`.
const APPLETS: &[&str] = &[
    "sh",
    "ash",
    "mount",
    "umount",
    "cat",
    "ls",
    "echo",
    "printf",
    "poweroff",
    "reboot",
    "halt",
    "insmod",
    "lsmod",
    "grep",
    "sed",
    "wc",
    "dd",
    "head",
    "tail",
    "test",
    "[",
    "mkdir",
    "rm",
    "sleep",
    "hexdump",
    "od",
    "cmp",
    "find",
    "uname",
    "dmesg",
    "blkid",
    "stat",
    "tr",
    "cut",
    "xxd",
    "sync",
    "md5sum",
    "sha256sum",
    "readlink",
    "true",
    "false",
    "timeout",
    "ip",
    "wget",
];

/// Builds (or reuses) an initramfs for Debian 12's kernel that loads [`BASE_MODULES`] plus
/// `modules`, prints the standard `INIT: ` report, runs `extra_init_script` (busybox sh), prints
/// `INIT: done` and powers off. Returns the cached `.cpio.gz` path.
pub fn initramfs(extra_init_script: &str, modules: &[&str]) -> PathBuf {
    initramfs_for(&debian_kernel(), extra_init_script, modules)
}

/// Programs from Debian 12 packages (with the libraries they need) that a test can add to the
/// initramfs; archives without any stay byte-identical to what they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// `/bin/efibootmgr` with libefiboot, libefivar and libpopt.
    Efibootmgr,
    /// `/bin/efi-updatevar` (efitools: writes or appends a signed update to a Secure Boot
    /// variable through efivarfs) with libcrypto. It finds efivarfs in the output of
    /// `system("mount -l")`, which busybox's mount refuses, so util-linux's `/bin/mount`
    /// (with libmount, libblkid, libselinux, libpcre2) replaces busybox's, and dash is
    /// `/bin/sh`: busybox's shell runs its own applet for `mount` whatever `PATH` says.
    /// With e2fsprogs' `chattr` (libe2p, libcom_err): efivarfs makes db and the other key
    /// variables immutable files, and efi-updatevar leaves clearing that to its user.
    EfiUpdatevar,
    /// `/bin/mokutil` (shim's MOK tool: `--sb-state`, `--list-enrolled`) with libcrypto,
    /// libefivar, libkeyutils and libcrypt.
    Mokutil,
}

/// Where a library of `lib/x86_64-linux-gnu` lands: under its soname, in the initramfs's
/// `/lib/x86_64-linux-gnu`.
const LIB: &str = "lib/x86_64-linux-gnu/";

/// glibc's loader (also at `/lib64/ld-linux-x86-64.so.2`, where binaries look for it), libc
/// and libdl (for libefivar), added once to any archive with programs.
const GLIBC: &[(&str, &str, &str)] = &[
    (
        "libc6",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib/x86_64-linux-gnu/libc.so.6",
    ),
    (
        "libc6",
        "lib/x86_64-linux-gnu/libdl.so.2",
        "lib/x86_64-linux-gnu/libdl.so.2",
    ),
    (
        "libc6",
        "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    ),
    (
        "libc6",
        "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "lib64/ld-linux-x86-64.so.2",
    ),
];

impl Program {
    /// (package, path in the package, path in the initramfs; a path ending in `/` takes the
    /// file's name). Symlinks in the package are followed, so each library lands under its
    /// soname.
    fn files(self) -> &'static [(&'static str, &'static str, &'static str)] {
        match self {
            Program::Efibootmgr => &[
                ("efibootmgr", "bin/efibootmgr", "bin/"),
                (
                    "libefiboot1",
                    "usr/lib/x86_64-linux-gnu/libefiboot.so.1",
                    LIB,
                ),
                ("libefivar1", "usr/lib/x86_64-linux-gnu/libefivar.so.1", LIB),
                ("libpopt0", "usr/lib/x86_64-linux-gnu/libpopt.so.0", LIB),
            ],
            Program::EfiUpdatevar => &[
                ("efitools", "usr/bin/efi-updatevar", "bin/"),
                ("mount", "bin/mount", "bin/"),
                ("dash", "bin/dash", "bin/sh"),
                ("e2fsprogs", "usr/bin/chattr", "bin/"),
                ("libssl3", "usr/lib/x86_64-linux-gnu/libcrypto.so.3", LIB),
                ("libmount1", "usr/lib/x86_64-linux-gnu/libmount.so.1", LIB),
                ("libblkid1", "usr/lib/x86_64-linux-gnu/libblkid.so.1", LIB),
                ("libselinux1", "lib/x86_64-linux-gnu/libselinux.so.1", LIB),
                (
                    "libpcre2-8-0",
                    "usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
                    LIB,
                ),
                ("libext2fs2", "lib/x86_64-linux-gnu/libe2p.so.2", LIB),
                ("libcom-err2", "lib/x86_64-linux-gnu/libcom_err.so.2", LIB),
            ],
            Program::Mokutil => &[
                ("mokutil", "usr/bin/mokutil", "bin/"),
                ("libssl3", "usr/lib/x86_64-linux-gnu/libcrypto.so.3", LIB),
                ("libefivar1", "usr/lib/x86_64-linux-gnu/libefivar.so.1", LIB),
                ("libkeyutils1", "lib/x86_64-linux-gnu/libkeyutils.so.1", LIB),
                ("libcrypt1", "lib/x86_64-linux-gnu/libcrypt.so.1", LIB),
            ],
        }
    }
}

/// The host files and initramfs paths of `programs` and the glibc they share, each path once.
fn program_files(programs: &[Program]) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let shared = if programs.is_empty() { &[][..] } else { GLIBC };
    let all = programs.iter().flat_map(|p| p.files()).chain(shared);
    for &(package, from, to) in all {
        let to = match to.strip_suffix('/') {
            Some(dir) => format!("{dir}/{}", from.rsplit('/').next().unwrap_or(from)),
            None => to.to_string(),
        };
        if !files.iter().any(|(_, existing)| *existing == to) {
            files.push((deb(package).join(from), to));
        }
    }
    files
}

/// [`initramfs`] with `programs` added (e.g. `efibootmgr`).
pub fn initramfs_with(extra_init_script: &str, modules: &[&str], programs: &[Program]) -> PathBuf {
    build(&debian_kernel(), extra_init_script, modules, programs)
}

/// [`initramfs`] for another kernel (e.g. Debian 13's).
pub fn initramfs_for(kernel: &DebianKernel, extra_init_script: &str, modules: &[&str]) -> PathBuf {
    build(kernel, extra_init_script, modules, &[])
}

fn build(
    kernel: &DebianKernel,
    extra_init_script: &str,
    modules: &[&str],
    programs: &[Program],
) -> PathBuf {
    let busybox_root = deb("busybox-static");
    // Debian 12 installs /bin/busybox; merged-/usr releases /usr/bin/busybox.
    let busybox = ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|p| busybox_root.join(p))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no busybox in {}", busybox_root.display()));
    let wanted: Vec<&str> = BASE_MODULES.iter().chain(modules).copied().collect();
    let ordered = module_load_order(&kernel.modules, &wanted);
    let init = init_script(&ordered, extra_init_script);

    let mut key = KeyHasher::new("initramfs v1");
    key.str(&kernel.version).str(&init).file(&busybox);
    for module in &ordered {
        key.str(&module.name).file(&module.path);
    }
    // Only archives with programs hash them, so the others keep their names.
    let program_files = program_files(programs);
    for (from, to) in &program_files {
        key.str(to).file(from);
    }
    let out = cache_dir("initramfs").join(format!("initramfs-{}.cpio.gz", key.hex()));
    if out.is_file() {
        return out;
    }

    let mut archive = Cpio::default();
    for dir in [
        "bin",
        "sbin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "etc",
        "lib",
        "lib/modules",
    ] {
        archive.directory(dir);
    }
    // The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
    archive.char_device("dev/console", 5, 1);
    archive.file("bin/busybox", 0o755, &read(&busybox));
    // A program installed under an applet's name (util-linux's mount, dash) replaces it.
    for applet in APPLETS {
        let path = format!("bin/{applet}");
        if !program_files.iter().any(|(_, to)| *to == path) {
            archive.symlink(&path, "busybox");
        }
    }
    for module in &ordered {
        archive.file(
            &format!("lib/modules/{}.ko", module.name),
            0o644,
            &module_bytes(&module.path),
        );
    }
    if !program_files.is_empty() {
        for dir in ["lib/x86_64-linux-gnu", "lib64"] {
            archive.directory(dir);
        }
    }
    for (from, to) in &program_files {
        archive.file(to, 0o755, &read(from));
    }
    archive.file("init", 0o755, init.as_bytes());
    let cpio = archive.finish();

    let temp = temp_sibling(&out);
    let file =
        std::fs::File::create(&temp).unwrap_or_else(|e| panic!("create {}: {e}", temp.display()));
    let mut gzip = Command::new("gzip")
        .args(["-n", "-6", "-c"])
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .expect("start gzip");
    gzip.stdin
        .take()
        .expect("stdin is piped")
        .write_all(&cpio)
        .expect("write to gzip");
    assert!(gzip.wait().expect("wait for gzip").success(), "gzip failed");
    publish(&temp, &out);
    out
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A module's ELF image. Debian 12 ships plain `.ko`; newer kernels compress modules, which
/// busybox insmod cannot load, so they are decompressed here.
fn module_bytes(path: &Path) -> Vec<u8> {
    let decompressor = match path.extension().and_then(|e| e.to_str()) {
        Some("xz") => "xz",
        Some("zst") => "zstd",
        _ => return read(path),
    };
    let output = Command::new(decompressor)
        .arg("-dc")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("start {decompressor}: {e}"));
    assert!(
        output.status.success(),
        "{decompressor} -dc {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The `/init` script. Output lines the tests assert on start with `INIT: `.
fn init_script(modules: &[Module], extra: &str) -> String {
    let mut script = String::from(
        r#"#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Keep kernel messages from interleaving with the report lines.
echo 1 > /proc/sys/kernel/printk
"#,
    );
    for module in modules {
        // efivarfs refuses to load without EFI runtime services (direct kernel boot).
        let condition = if module.name == "efivarfs" {
            "[ ! -d /sys/firmware/efi ] || "
        } else {
            ""
        };
        script.push_str(&format!(
            "{condition}insmod /lib/modules/{0}.ko || echo 'INIT: insmod {0} failed'\n",
            module.name
        ));
    }
    script.push_str(
        r#"echo "INIT: cmdline=$(cat /proc/cmdline)"
if [ -d /sys/firmware/efi ]; then
  echo "INIT: efi=yes"
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars || echo "INIT: efivarfs mount failed"
  echo "INIT: efivars=$(ls /sys/firmware/efi/efivars | wc -l)"
  # efivarfs files are 4 bytes of attributes (NV|BS|RT = 7) followed by the data.
  var=/sys/firmware/efi/efivars/VmfwTest-5b0e6e2a-4f3c-4d8e-9a51-2f7c1d3e8b60
  printf '\007\000\000\000vmfw-ok' > $var 2>/dev/null
  if [ "$(tail -c +5 $var 2>/dev/null)" = vmfw-ok ]; then
    echo "INIT: efivar-rw=ok"
  else
    echo "INIT: efivar-rw=fail"
  fi
else
  echo "INIT: efi=no"
  echo "INIT: efivars=0"
  echo "INIT: efivar-rw=fail"
fi
if [ -d /sys/firmware/acpi/tables ]; then echo "INIT: acpi=yes"; else echo "INIT: acpi=no"; fi
if [ -d /sys/firmware/dmi/tables ]; then echo "INIT: dmi=yes"; else echo "INIT: dmi=no"; fi
disk=none
for d in /dev/vd[a-z]; do
  if [ -b "$d" ]; then
    if dd if=$d of=/dev/null bs=512 count=64 2>/dev/null; then disk="$d ok"; else disk="$d fail"; fi
    break
  fi
done
echo "INIT: disk=$disk"
"#,
    );
    script.push_str(extra);
    script.push_str("\necho \"INIT: done\"\nsync\npoweroff -f\n");
    script
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Module {
    name: String,
    path: PathBuf,
}

/// `wanted` modules plus their dependencies (from each module's `.modinfo` `depends=`, since the
/// package ships no modules.dep), dependencies first. Modules built into the kernel are absent
/// from the tree and skipped.
fn module_load_order(modules_dir: &Path, wanted: &[&str]) -> Vec<Module> {
    assert!(
        modules_dir.is_dir(),
        "no kernel modules at {}",
        modules_dir.display()
    );
    let mut index = std::collections::HashMap::new();
    let mut stack = vec![modules_dir.join("kernel")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                let stem = [".ko", ".ko.xz", ".ko.zst"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix));
                if let Some(stem) = stem {
                    // modinfo and modules.dep treat '-' and '_' alike.
                    index.insert(stem.replace('-', "_"), path.clone());
                }
            }
        }
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for name in wanted {
        visit(&index, &name.replace('-', "_"), &mut seen, &mut order);
    }
    order
}

fn visit(
    index: &std::collections::HashMap<String, PathBuf>,
    name: &str,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<Module>,
) {
    if !seen.insert(name.to_string()) {
        return;
    }
    let Some(path) = index.get(name) else {
        // Built in (=y): nothing to load.
        return;
    };
    for dep in modinfo_depends(&module_bytes(path)) {
        visit(index, &dep, seen, order);
    }
    order.push(Module {
        name: name.to_string(),
        path: path.clone(),
    });
}

/// The `depends=` list from a module's `.modinfo` section (NUL-separated `key=value` strings).
fn modinfo_depends(elf: &[u8]) -> Vec<String> {
    let Some(section) = elf_section(elf, ".modinfo") else {
        return Vec::new();
    };
    section
        .split(|&b| b == 0)
        .filter_map(|entry| entry.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|dep| !dep.is_empty())
                .map(|dep| dep.replace('-', "_"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Contents of a named section of a little-endian ELF64 file (System V gABI, "Sections").
fn elf_section<'a>(elf: &'a [u8], wanted: &str) -> Option<&'a [u8]> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let table = usize::try_from(u64_at(0x28)?).ok()?;
    let entry_size = usize::from(u16_at(0x3a)?);
    let count = usize::from(u16_at(0x3c)?);
    let names_index = usize::from(u16_at(0x3e)?);
    // Section header: sh_name at +0, sh_offset at +0x18, sh_size at +0x20.
    let header = |i: usize| table.checked_add(i.checked_mul(entry_size)?);
    let bounds = |h: usize| -> Option<(usize, usize)> {
        let offset = usize::try_from(u64_at(h + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(h + 0x20)?).ok()?;
        Some((offset, offset.checked_add(size)?))
    };
    let (names_start, names_end) = bounds(header(names_index)?)?;
    let names = elf.get(names_start..names_end)?;
    (0..count).find_map(|i| {
        let h = header(i)?;
        let name_offset =
            usize::try_from(u32::from_le_bytes(elf.get(h..h + 4)?.try_into().ok()?)).ok()?;
        let name = names.get(name_offset..)?.split(|&b| b == 0).next()?;
        if name != wanted.as_bytes() {
            return None;
        }
        let (start, end) = bounds(h)?;
        elf.get(start..end)
    })
}

/// A newc ("070701") cpio archive being written in memory.
#[derive(Default)]
struct Cpio {
    data: Vec<u8>,
    next_inode: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), body: &[u8]) {
        self.next_inode += 1;
        let name_size = name.len() + 1;
        let fields = [
            self.next_inode,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime: fixed, for reproducible archives
            u32::try_from(body.len()).expect("cpio members are < 4 GiB"),
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            u32::try_from(name_size).expect("short names"),
            0, // check (unused by newc)
        ];
        self.data.extend_from_slice(b"070701");
        for field in fields {
            self.data
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(body);
        self.pad();
    }

    /// Header and name, and data, are each padded to a multiple of four bytes.
    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    fn directory(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, permissions: u32, body: &[u8]) {
        self.entry(name, 0o100_000 | permissions, (0, 0), body);
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120_777, (0, 0), target.as_bytes());
    }

    fn char_device(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020_600, (major, minor), &[]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_entries_are_newc_and_aligned() {
        let mut cpio = Cpio::default();
        cpio.file("init", 0o755, b"hello");
        let data = cpio.finish();
        assert_eq!(&data[..6], b"070701");
        // mode field is the second 8-hex-digit field.
        assert_eq!(&data[14..22], b"000081ed");
        // filesize 5, namesize 5 ("init\0").
        assert_eq!(&data[54..62], b"00000005");
        assert_eq!(&data[94..102], b"00000005");
        assert_eq!(&data[110..115], b"init\0");
        // 110 + 5 = 115 -> padded to 116, then the body.
        assert_eq!(&data[116..121], b"hello");
        let trailer = 124;
        assert_eq!(&data[trailer..trailer + 6], b"070701");
        assert_eq!(data.len() % 4, 0);
        assert!(data.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn modinfo_depends_reads_the_section() {
        // A minimal ELF64 with a null section, .modinfo and .shstrtab.
        let names = b"\0.modinfo\0.shstrtab\0";
        let modinfo = b"license=GPL\0depends=virtio,virtio_ring\0vermagic=x\0";
        let mut elf = vec![0u8; 64];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        let modinfo_at = elf.len();
        elf.extend_from_slice(modinfo);
        let names_at = elf.len();
        elf.extend_from_slice(names);
        let table = elf.len();
        elf[0x28..0x30].copy_from_slice(&(table as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        for (name, offset, size) in [
            (0u32, 0usize, 0usize),
            (1, modinfo_at, modinfo.len()),
            (10, names_at, names.len()),
        ] {
            let mut header = [0u8; 64];
            header[..4].copy_from_slice(&name.to_le_bytes());
            header[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            header[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&header);
        }
        assert_eq!(modinfo_depends(&elf), ["virtio", "virtio_ring"]);
        assert!(modinfo_depends(b"not an elf").is_empty());
    }
}
