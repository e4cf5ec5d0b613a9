//! The FAT12/16/32 file system over an in-memory disk (the input, from the
//! boot sector on): mount, walk every directory, open and read every file,
//! then create, write, read back, rename and delete a file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::block::MemDisk;
use protocols::fat::{DirCursor, FileSystem, Node};

/// Bounds on the walk so one input stays fast; the file system's own loop
/// limits are what is under test, not these.
const MAX_DEPTH: u32 = 4;
const MAX_ENTRIES: u32 = 96;
/// Bytes read from one file: past the first clusters a read only repeats
/// the same chain walk (a volume of at most `max_len` bytes claiming huge
/// files otherwise spends most executions re-reading them).
const MAX_READ: u64 = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let mut image = data.to_vec();
    image.resize(data.len().next_multiple_of(512).max(512), 0);
    let Ok(fs) = FileSystem::mount(MemDisk::new(&mut image, 512)) else {
        return;
    };
    let _ = fs.volume_label();
    let _ = fs.free_bytes();
    let root = fs.root();
    let mut budget = MAX_ENTRIES;
    walk(&fs, &root, 0, &mut budget);
    for path in [
        "\\EFI\\BOOT\\BOOTX64.EFI",
        "loader\\entries",
        "a\\..\\b\\.\\c",
    ] {
        if let Ok(node) = fs.open(&root, path) {
            read_all(&fs, &node);
        }
    }
    if let Ok(mut file) = fs.create(&root, "\\fuzz\\new file.txt", false) {
        let payload = &data[..data.len().min(3000)];
        if fs.write(&mut file, 0, payload).is_ok() {
            let mut back = vec![0; payload.len()];
            if let Ok(n) = fs.read(&file, 0, &mut back) {
                assert_eq!(&back[..n], &payload[..n]);
            }
        }
        let _ = fs.set_len(&mut file, 100);
        let _ = fs.rename(&mut file, "renamed.txt");
        let _ = fs.delete(file);
    }
    let _ = fs.flush();
});

fn walk(fs: &FileSystem<MemDisk>, dir: &Node, depth: u32, budget: &mut u32) {
    let mut cursor = DirCursor::new();
    while let Ok(Some(entry)) = fs.read_dir(dir, &mut cursor) {
        let Some(left) = budget.checked_sub(1) else {
            return;
        };
        *budget = left;
        if entry.name == "." || entry.name == ".." {
            continue;
        }
        let Ok(node) = fs.open(dir, &entry.name) else {
            continue;
        };
        let _ = fs.metadata(&node);
        if node.is_dir() {
            if depth < MAX_DEPTH {
                walk(fs, &node, depth + 1, budget);
            }
        } else {
            read_all(fs, &node);
        }
    }
}

fn read_all(fs: &FileSystem<MemDisk>, node: &Node) {
    let mut buf = [0u8; 4096];
    let mut offset = 0u64;
    while offset < node.size().min(MAX_READ) {
        match fs.read(node, offset, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => offset += n as u64,
        }
    }
}
