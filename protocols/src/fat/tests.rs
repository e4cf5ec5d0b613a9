//! Host tests against real images made by dosfstools and mtools.

use std::cell::{Cell, RefCell};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use platform::block::{BlockDevice, BlockError};

use super::*;

/// A BlockDevice over an image file, starting `offset` bytes in (a partition).
struct FileDisk {
    file: RefCell<File>,
    offset: u64,
    blocks: u64,
    reads: Cell<u32>,
}

impl FileDisk {
    fn open(path: &Path, offset: u64) -> FileDisk {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open image");
        let len = file.metadata().expect("metadata").len();
        FileDisk {
            file: RefCell::new(file),
            offset,
            blocks: (len - offset) / 512,
            reads: Cell::new(0),
        }
    }
}

impl BlockDevice for FileDisk {
    fn block_size(&self) -> u32 {
        512
    }
    fn num_blocks(&self) -> u64 {
        self.blocks
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        self.reads.set(self.reads.get() + 1);
        let mut file = self.file.borrow_mut();
        file.seek(SeekFrom::Start(self.offset + lba * 512))
            .map_err(|_| BlockError::Device(1))?;
        file.read_exact(buf).map_err(|_| BlockError::Device(2))
    }
    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let mut file = self.file.borrow_mut();
        file.seek(SeekFrom::Start(self.offset + lba * 512))
            .map_err(|_| BlockError::Device(1))?;
        file.write_all(buf).map_err(|_| BlockError::Device(3))
    }
    fn flush(&self) -> Result<(), BlockError> {
        self.file
            .borrow_mut()
            .flush()
            .map_err(|_| BlockError::Device(4))
    }
}

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("vmfw-fat-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} not runnable ({e}); apt-get install -y dosfstools mtools")
        });
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn must(program: &str, args: &[&str]) -> String {
    let (ok, text) = run(program, args);
    assert!(ok, "{program} {args:?} failed: {text}");
    text
}

/// Makes an image of `kib` KiB formatted as FAT`bits`, `offset_sectors` in.
fn mkfs(image: &Path, bits: u32, kib: u64, extra: &[&str], offset_sectors: u64) {
    let file = File::create(image).expect("create image");
    file.set_len((kib + offset_sectors / 2) * 1024)
        .expect("size image");
    let bits = bits.to_string();
    let offset = offset_sectors.to_string();
    let mut args = vec!["-F", &bits, "-n", "TESTVOL", "--offset", &offset];
    args.extend_from_slice(extra);
    let image = image.to_str().expect("utf-8 path");
    args.push(image);
    must("mkfs.vfat", &args);
}

fn mtools_target(image: &Path, offset_sectors: u64) -> String {
    if offset_sectors == 0 {
        image.to_str().expect("utf-8").into()
    } else {
        format!(
            "{}@@{}",
            image.to_str().expect("utf-8"),
            offset_sectors * 512
        )
    }
}

fn mcopy(image: &Path, offset_sectors: u64, host: &Path, dest: &str) {
    let target = mtools_target(image, offset_sectors);
    must(
        "mcopy",
        &["-i", &target, host.to_str().expect("utf-8"), dest],
    );
}

fn mmd(image: &Path, offset_sectors: u64, dir: &str) {
    let target = mtools_target(image, offset_sectors);
    must("mmd", &["-i", &target, dir]);
}

fn mtype(image: &Path, path: &str) -> Vec<u8> {
    let out = Command::new("mtype")
        .args(["-i", image.to_str().expect("utf-8"), path])
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .expect("mtype");
    assert!(
        out.status.success(),
        "mtype {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn fsck_clean(image: &Path) {
    let (ok, text) = run("fsck.vfat", &["-n", image.to_str().expect("utf-8")]);
    assert!(ok, "fsck.vfat found problems:\n{text}");
}

/// Deterministic test data (xorshift), different per seed.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn read_all<D: BlockDevice>(fs: &FileSystem<D>, node: &Node) -> Vec<u8> {
    let mut buf = vec![0u8; node.size() as usize];
    assert_eq!(fs.read(node, 0, &mut buf).expect("read"), buf.len());
    buf
}

fn names<D: BlockDevice>(fs: &FileSystem<D>, dir: &Node) -> Vec<String> {
    let mut cursor = DirCursor::new();
    let mut out = Vec::new();
    while let Some(entry) = fs.read_dir(dir, &mut cursor).expect("read_dir") {
        out.push(entry.name);
    }
    out.sort();
    out
}

#[test]
fn mounts_each_fat_type_by_cluster_count() {
    let scratch = Scratch::new("types");
    for (bits, kib, expected) in [
        (12, 2048, FatType::Fat12),
        (16, 16384, FatType::Fat16),
        (32, 40960, FatType::Fat32),
    ] {
        let image = scratch.path(&format!("fat{bits}.img"));
        let extra: &[&str] = if bits == 32 { &["-s", "1"] } else { &[] };
        mkfs(&image, bits, kib, extra, 0);
        let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
        assert_eq!(fs.fat_type(), expected);
        assert_eq!(fs.volume_label().expect("label"), "TESTVOL");
        let free = fs.free_bytes().expect("free");
        assert!(
            free > 0 && free <= fs.total_bytes(),
            "free {free} total {}",
            fs.total_bytes()
        );
    }
}

#[test]
fn reads_long_names_and_deep_directories() {
    let scratch = Scratch::new("lfn");
    for bits in [12, 16, 32] {
        let image = scratch.path("lfn.img");
        let _ = fs::remove_file(&image);
        let (kib, extra): (u64, &[&str]) = match bits {
            12 => (4096, &["-s", "4"]),
            16 => (16384, &["-s", "2"]),
            _ => (40960, &["-s", "1"]),
        };
        mkfs(&image, bits, kib, extra, 0);
        let long = "A rather long file name with spaces.text";
        let unicode = "Grüße aus Köln.txt";
        let host = scratch.path("host.bin");
        fs::write(&host, pattern(5000, 7)).expect("host file");
        mmd(&image, 0, "::/EFI");
        mmd(&image, 0, "::/EFI/Boot Loader Entries");
        mmd(&image, 0, "::/EFI/Boot Loader Entries/level3");
        mmd(&image, 0, "::/EFI/Boot Loader Entries/level3/level4");
        mcopy(
            &image,
            0,
            &host,
            &format!("::/EFI/Boot Loader Entries/level3/level4/{long}"),
        );
        mcopy(&image, 0, &host, &format!("::/{unicode}"));
        mcopy(&image, 0, &host, "::/SHORT.TXT");

        let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
        let root = fs.root();
        let deep = fs
            .open(&root, "\\efi\\BOOT LOADER ENTRIES\\Level3/LEVEL4\\a rather LONG file name with spaces.TEXT")
            .expect("deep open");
        assert_eq!(deep.name(), long);
        assert_eq!(read_all(&fs, &deep), pattern(5000, 7));
        assert_eq!(
            read_all(&fs, &fs.open(&root, unicode).expect("unicode")),
            pattern(5000, 7)
        );
        assert!(fs.open(&root, "short.txt").is_ok());

        // Relative paths, "." and "..", and lookup by the generated alias.
        let level3 = fs
            .open(&root, "/EFI/Boot Loader Entries/./level3")
            .expect("level3");
        assert!(level3.is_dir());
        let back = fs
            .open(&level3, "level4\\..\\..\\..\\..\\SHORT.TXT")
            .expect("dot-dot");
        assert_eq!(back.size(), 5000);
        let up = fs.open(&level3, "..").expect("parent");
        assert_eq!(up.name(), "Boot Loader Entries");
        assert!(fs.open(&root, "..\\..\\EFI").expect("above root").is_dir());
        let mut cursor = DirCursor::new();
        let mut alias = None;
        let level4 = fs.open(&level3, "level4").expect("level4");
        while let Some(entry) = fs.read_dir(&level4, &mut cursor).expect("iterate") {
            if entry.name == long {
                alias = Some(entry.short_name.clone());
            }
        }
        let alias = alias.expect("long entry listed");
        assert!(alias.contains('~'), "alias {alias}");
        assert_eq!(fs.open(&level4, &alias).expect("by alias").name(), long);

        assert_eq!(names(&fs, &level4), [".", "..", long]);
        assert!(matches!(fs.open(&root, "missing"), Err(FatError::NotFound(n)) if n == "missing"));
        assert_eq!(
            fs.open(&root, "SHORT.TXT\\x").err(),
            Some(FatError::NotADirectory)
        );
    }
}

#[test]
fn large_file_reads_at_odd_offsets_in_few_requests() {
    let scratch = Scratch::new("large");
    let image = scratch.path("large.img");
    // A partition 1 MiB into the disk, as GPT would place it.
    let offset = 2048;
    mkfs(&image, 32, 40960, &["-s", "1"], offset);
    let data = pattern(3 * 1024 * 1024 + 777, 99);
    let host = scratch.path("initrd");
    fs::write(&host, &data).expect("host file");
    mcopy(&image, offset, &host, "::/initrd.img");

    let fs = FileSystem::mount(FileDisk::open(&image, offset * 512)).expect("mount");
    let node = fs.open(&fs.root(), "INITRD.IMG").expect("open");
    assert_eq!(node.size(), data.len() as u64);
    let before = fs.device().reads.get();
    assert_eq!(read_all(&fs, &node), data);
    let requests = fs.device().reads.get() - before;
    // A contiguous file is one data request plus the FAT sectors walked,
    // which are read FAT_READ_AHEAD at a time (48 FAT sectors here).
    assert!(
        requests <= 8,
        "{requests} device reads for one whole-file read"
    );

    for (offset, len) in [
        (0, 1),
        (1, 511),
        (511, 2),
        (513, 4096),
        (4095, 70001),
        (1_000_003, 1_048_577),
        (data.len() - 3, 100),
    ] {
        let mut buf = vec![0u8; len];
        let n = fs.read(&node, offset as u64, &mut buf).expect("read");
        let expect = &data[offset..(offset + len).min(data.len())];
        assert_eq!(n, expect.len());
        assert_eq!(&buf[..n], expect, "offset {offset} len {len}");
    }
    let mut buf = [0u8; 8];
    assert_eq!(
        fs.read(&node, data.len() as u64 + 5, &mut buf)
            .expect("past end"),
        0
    );

    // With 4 KiB clusters the FAT walk is a few sectors: the whole file is
    // one data request plus the partial tail block.
    let image = scratch.path("large16.img");
    mkfs(&image, 16, 65536, &["-s", "8"], 0);
    mcopy(&image, 0, &host, "::/initrd.img");
    let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
    let node = fs.open(&fs.root(), "initrd.img").expect("open");
    let before = fs.device().reads.get();
    assert_eq!(read_all(&fs, &node), data);
    let requests = fs.device().reads.get() - before;
    assert!(
        requests <= 6,
        "{requests} device reads for one whole-file read"
    );
}

#[test]
fn writes_pass_fsck_and_read_back_with_mtools() {
    let scratch = Scratch::new("write");
    for bits in [12, 16, 32] {
        let image = scratch.path(&format!("w{bits}.img"));
        let (kib, extra): (u64, &[&str]) = match bits {
            12 => (4096, &["-s", "4"]),
            16 => (16384, &["-s", "2"]),
            _ => (40960, &["-s", "1"]),
        };
        mkfs(&image, bits, kib, extra, 0);
        let host = scratch.path("seed");
        fs::write(&host, pattern(3000, 5)).expect("host");
        mcopy(&image, 0, &host, "::/old.bin");
        mmd(&image, 0, "::/olddir");

        let big = pattern(300_000 + 13, bits.into());
        {
            let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
            let free_before = fs.free_bytes().expect("free");
            let root = fs.root();
            let dir = fs.create(&root, "Loader Entries", true).expect("mkdir");
            let sub = fs.create(&dir, "nested.d", true).expect("nested mkdir");
            let mut file = fs
                .create(&sub, "Linux Kernel Image.efi", false)
                .expect("create");
            // Several writes: in pieces, out of order, and past the end.
            fs.write(&mut file, 0, &big[..1000]).expect("write head");
            fs.write(&mut file, 1000, &big[1000..200_000])
                .expect("write middle");
            fs.write(&mut file, 250_000, &big[250_000..])
                .expect("write tail past end");
            fs.write(&mut file, 200_000, &big[200_000..250_000])
                .expect("fill gap");
            assert_eq!(read_all(&fs, &file), big);

            let mut gap = fs.create(&root, "gap.bin", false).expect("create gap");
            fs.write(&mut gap, 5000, b"end").expect("sparse write");
            let mut expect_gap = vec![0u8; 5000];
            expect_gap.extend_from_slice(b"end");
            assert_eq!(read_all(&fs, &gap), expect_gap);

            let mut shrink = fs.create(&root, "SHRINK.BIN", false).expect("create");
            fs.write(&mut shrink, 0, &big[..100_000]).expect("write");
            fs.set_len(&mut shrink, 10).expect("truncate");
            fs.set_len(&mut shrink, 20).expect("extend");
            let mut expect_shrink = big[..10].to_vec();
            expect_shrink.extend_from_slice(&[0; 10]);
            assert_eq!(read_all(&fs, &shrink), expect_shrink);

            // Many entries force the directory to grow past one cluster.
            for i in 0..80 {
                let mut f = fs
                    .create(&dir, &format!("entry number {i}.conf"), false)
                    .expect("many");
                fs.write(&mut f, 0, format!("title {i}\n").as_bytes())
                    .expect("write many");
            }
            for i in (0..80).step_by(3) {
                let f = fs
                    .open(&dir, &format!("ENTRY NUMBER {i}.CONF"))
                    .expect("reopen");
                fs.delete(f).expect("delete");
            }
            assert_eq!(
                fs.create(&root, "GAP.BIN", false).err(),
                Some(FatError::AlreadyExists("GAP.BIN".into()))
            );
            assert_eq!(
                fs.delete(fs.open(&root, "Loader Entries").expect("dir"))
                    .err(),
                Some(FatError::DirectoryNotEmpty)
            );

            let old = fs.open(&root, "old.bin").expect("old");
            fs.delete(old).expect("delete old");
            fs.delete(fs.open(&root, "olddir").expect("olddir"))
                .expect("rmdir");
            let mut renamed = fs.open(&root, "gap.bin").expect("gap");
            fs.rename(&mut renamed, "Renamed Gap File.bin")
                .expect("rename");
            let mut case = fs.open(&root, "shrink.bin").expect("shrink");
            fs.rename(&mut case, "shrink.bin")
                .expect("case-only rename");
            fs.set_volume_label("NEWLABEL").expect("label");
            fs.flush().expect("flush");
            assert_eq!(fs.volume_label().expect("label"), "NEWLABEL");
            assert!(fs.free_bytes().expect("free") < free_before);
        }

        fsck_clean(&image);
        assert_eq!(
            mtype(&image, "::/Loader Entries/nested.d/Linux Kernel Image.efi"),
            big
        );
        assert_eq!(
            mtype(&image, "::/Loader Entries/entry number 4.conf"),
            b"title 4\n"
        );
        assert_eq!(mtype(&image, "::/Renamed Gap File.bin").len(), 5003);
        let listing = must("mdir", &["-i", image.to_str().expect("utf-8"), "::/"]);
        assert!(listing.contains("Renamed Gap File.bin"), "{listing}");
        assert!(listing.contains("shrink.bin"), "{listing}");
        assert!(listing.contains("NEWLABEL"), "{listing}");
        assert!(
            !listing.contains("old.bin") && !listing.contains("olddir"),
            "{listing}"
        );
        let sub = must(
            "mdir",
            &["-i", image.to_str().expect("utf-8"), "::/Loader Entries"],
        );
        assert!(
            sub.contains("entry number 79.conf") && !sub.contains("entry number 78.conf"),
            "{sub}"
        );

        // Remount: everything persisted, and free space is the FAT's truth.
        let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("remount");
        let root = fs.root();
        let file = fs
            .open(&root, "loader entries\\NESTED.D\\linux kernel image.EFI")
            .expect("reopen");
        assert_eq!(read_all(&fs, &file), big);
        let meta = fs.metadata(&file).expect("metadata");
        assert_eq!(meta.size, big.len() as u64);
        assert!(meta.attributes.contains(Attributes::ARCHIVE));
        assert_eq!(meta.modified, DateTime::EPOCH);
    }
}

#[test]
fn timestamps_and_attributes_round_trip() {
    let scratch = Scratch::new("times");
    let image = scratch.path("t.img");
    mkfs(&image, 16, 8192, &["-s", "1"], 0);
    let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
    fs.set_clock(|| DateTime {
        year: 2024,
        month: 2,
        day: 29,
        hour: 13,
        minute: 37,
        second: 42,
    });
    let root = fs.root();
    let mut file = fs.create(&root, "stamp.txt", false).expect("create");
    let meta = fs.metadata(&file).expect("meta");
    assert_eq!(
        meta.created,
        DateTime {
            year: 2024,
            month: 2,
            day: 29,
            hour: 13,
            minute: 37,
            second: 42
        }
    );
    assert_eq!(
        meta.accessed,
        DateTime {
            year: 2024,
            month: 2,
            day: 29,
            hour: 0,
            minute: 0,
            second: 0
        }
    );
    let later = DateTime {
        year: 2030,
        month: 12,
        day: 31,
        hour: 23,
        minute: 59,
        second: 58,
    };
    fs.set_times(&file, None, Some(later), None)
        .expect("set times");
    fs.set_attributes(&mut file, Attributes::READ_ONLY | Attributes::HIDDEN)
        .expect("attrs");
    assert_eq!(
        fs.write(&mut file, 0, b"x").err(),
        Some(FatError::AccessDenied("file is read-only"))
    );
    let again = fs.open(&root, "STAMP.TXT").expect("reopen");
    assert_eq!(fs.metadata(&again).expect("meta").modified, later);
    assert_eq!(
        again.attributes(),
        Attributes::READ_ONLY | Attributes::HIDDEN
    );
    drop(fs);
    fsck_clean(&image);
    let listing = must("mdir", &["-i", image.to_str().expect("utf-8"), "-a", "::/"]);
    assert!(
        listing.contains("2030-12-31") || listing.contains("12-31-2030"),
        "{listing}"
    );
}

/// Reads the boot sector numbers the hostile tests need to patch an image.
struct Layout {
    fat_offset: u64,
    bytes_per_sector: u64,
}

fn layout(image: &Path) -> Layout {
    let bytes = fs::read(image).expect("image");
    let bps = u64::from(u16::from_le_bytes([bytes[11], bytes[12]]));
    Layout {
        fat_offset: u64::from(u16::from_le_bytes([bytes[14], bytes[15]])) * bps,
        bytes_per_sector: bps,
    }
}

fn find(image: &Path, needle: &[u8]) -> usize {
    let bytes = fs::read(image).expect("image");
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in image")
}

fn patch(image: &Path, at: u64, bytes: &[u8]) {
    let mut file = OpenOptions::new().write(true).open(image).expect("open");
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.write_all(bytes).expect("patch");
}

fn entry_cluster16(image: &Path, name: &[u8; 11]) -> (u64, u16) {
    let at = find(image, name);
    let bytes = fs::read(image).expect("image");
    (
        at as u64,
        u16::from_le_bytes([bytes[at + 26], bytes[at + 27]]),
    )
}

#[test]
fn hostile_images_end_in_errors() {
    let scratch = Scratch::new("hostile");
    let host = scratch.path("data");
    fs::write(&host, pattern(10_000, 3)).expect("host");
    let fresh = |name: &str| {
        let image = scratch.path(name);
        mkfs(&image, 16, 8192, &["-s", "1"], 0);
        mcopy(&image, 0, &host, "::/LOOPFILE.BIN");
        mmd(&image, 0, "::/DIRA");
        mmd(&image, 0, "::/DIRA/DIRB");
        image
    };

    // A file whose chain loops back on itself.
    let image = fresh("loop.img");
    let l = layout(&image);
    let (_, first) = entry_cluster16(&image, b"LOOPFILEBIN");
    patch(
        &image,
        l.fat_offset + u64::from(first + 5) * 2,
        &first.to_le_bytes(),
    );
    let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
    let err = fs
        .open(&fs.root(), "LOOPFILE.BIN")
        .expect_err("loop must fail");
    assert!(matches!(err, FatError::ChainTooLong { .. }), "{err}");
    assert!(!err.to_string().is_empty());

    // A chain that runs out of range.
    let image = fresh("range.img");
    let l = layout(&image);
    let (_, first) = entry_cluster16(&image, b"LOOPFILEBIN");
    patch(
        &image,
        l.fat_offset + u64::from(first + 2) * 2,
        &0xFFF0u16.to_le_bytes(),
    );
    let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
    assert_eq!(
        fs.open(&fs.root(), "LOOPFILE.BIN").err(),
        Some(FatError::ClusterOutOfRange(0xFFF0))
    );

    // A directory entry whose first cluster is out of range.
    let image = fresh("direntry.img");
    let (at, _) = entry_cluster16(&image, b"DIRA       ");
    patch(&image, at + 26, &0xFFF0u16.to_le_bytes());
    let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
    assert_eq!(
        fs.open(&fs.root(), "DIRA\\DIRB").err(),
        Some(FatError::ClusterOutOfRange(0xFFF0))
    );

    // A subdirectory pointing at its own parent.
    let image = fresh("self.img");
    let (_, dira) = entry_cluster16(&image, b"DIRA       ");
    let (at, _) = entry_cluster16(&image, b"DIRB       ");
    patch(&image, at + 26, &dira.to_le_bytes());
    let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
    assert_eq!(
        fs.open(&fs.root(), "DIRA\\DIRB").err(),
        Some(FatError::DirectoryLoop(u32::from(dira)))
    );

    // A directory whose cluster chain loops.
    let image = fresh("dirloop.img");
    let l = layout(&image);
    let (_, dira) = entry_cluster16(&image, b"DIRA       ");
    patch(
        &image,
        l.fat_offset + u64::from(dira) * 2,
        &dira.to_le_bytes(),
    );
    let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
    let err = fs.open(&fs.root(), "DIRA").expect_err("dir loop");
    assert!(matches!(err, FatError::ChainTooLong { .. }), "{err}");
    // Iterating it directly through a crafted node still stops.
    let node = Node {
        first_cluster: u32::from(dira),
        size: 0,
        attributes: Attributes::DIRECTORY,
        location: None,
        short_name: [0; 11],
        name: String::new(),
        hint: Cell::new((0, 0)),
    };
    let mut cursor = DirCursor::new();
    let mut count = 0;
    let result = loop {
        match fs.read_dir(&node, &mut cursor) {
            Ok(Some(_)) => count += 1,
            other => break other,
        }
    };
    // The end-of-directory mark in the first cluster ends it before the loop.
    assert!(matches!(result, Ok(None)));
    assert_eq!(count, 3);
    // Deleting a looping file cannot hang either.
    let image = fresh("freeloop.img");
    let l = layout(&image);
    let (_, first) = entry_cluster16(&image, b"LOOPFILEBIN");
    patch(
        &image,
        l.fat_offset + u64::from(first + 19) * 2,
        &first.to_le_bytes(),
    );
    let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
    let err = fs.free_chain(u32::from(first)).expect_err("free loop");
    assert_eq!(err, FatError::FreeClusterInChain(u32::from(first)));

    // Broken boot sectors.
    let image = fresh("bpb.img");
    let bps = layout(&image).bytes_per_sector;
    assert_eq!(bps, 512);
    for (offset, bytes, field) in [
        (11u64, &[0u8, 0][..], "BytsPerSec"),
        (13, &[3], "SecPerClus"),
        (16, &[0], "NumFATs"),
        (22, &[0xFF, 0xFF], "FATSz"),
        (510, &[0, 0], "signature"),
    ] {
        let copy = scratch.path("bpb-copy.img");
        fs::copy(&image, &copy).expect("copy");
        patch(&copy, offset, bytes);
        match FileSystem::mount(FileDisk::open(&copy, 0)) {
            Err(FatError::BadBpb { field: f, .. }) => assert_eq!(f, field),
            Err(e) => panic!("patch at {offset}: unexpected {e}"),
            Ok(_) => panic!("patch at {offset}: mounted"),
        }
    }
    let zeros = scratch.path("zeros.img");
    File::create(&zeros)
        .and_then(|f| f.set_len(1 << 20))
        .expect("zeros");
    assert!(FileSystem::mount(FileDisk::open(&zeros, 0)).is_err());
}

#[test]
fn fills_the_volume_then_frees_it() {
    let scratch = Scratch::new("full");
    let image = scratch.path("full.img");
    mkfs(&image, 12, 1024, &["-s", "1"], 0);
    let fs = FileSystem::mount(FileDisk::open(&image, 0)).expect("mount");
    let root = fs.root();
    let free = fs.free_bytes().expect("free");
    let mut file = fs.create(&root, "fill", false).expect("create");
    let chunk = vec![0xA5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match fs.write(&mut file, written, &chunk) {
            Ok(n) => written += n as u64,
            Err(FatError::NoSpace) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(written > 0 && written <= free);
    assert_eq!(file.size(), written);
    // A failed write leaves no allocated clusters behind.
    let used = written.div_ceil(512) * 512;
    assert_eq!(fs.free_bytes().expect("free"), free - used);
    fs.delete(file).expect("delete");
    assert_eq!(fs.free_bytes().expect("free"), free);
    fs.flush().expect("flush");
    drop(fs);
    fsck_clean(&image);
}
