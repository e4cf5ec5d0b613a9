use super::info::char16_from_bytes;
use super::*;
use core::cell::RefCell;
use core::mem::offset_of;
use core::ptr::null_mut;
use std::process::Command;
use std::vec;
use uefi_raw::protocol::file_system::{
    FileInfo, FileIoToken, FileProtocolRevision, FileProtocolV2, FileSystemInfo,
    FileSystemVolumeLabel,
};
use uefi_raw::{Event, Guid};

std::thread_local! {
    /// Events the revision 2 calls signalled (host tests have no event services).
    static SIGNALLED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Stand-in events of the host tests: small odd addresses, never dereferenced.
const TEST_EVENT: Event = 0x1001 as Event;
const NOT_AN_EVENT: Event = 0x2001 as Event;

pub(super) fn is_test_event(event: Event) -> bool {
    event == TEST_EVENT
}

pub(super) fn record_signal(event: Event) {
    SIGNALLED.with(|s| s.borrow_mut().push(event as usize));
}

fn take_signals() -> Vec<usize> {
    SIGNALLED.with(|s| core::mem::take(&mut *s.borrow_mut()))
}

/// A RAM disk the test can still look at after handing it to the volume.
struct SharedDisk(Rc<RefCell<Vec<u8>>>);

impl BlockDevice for SharedDisk {
    fn block_size(&self) -> u32 {
        512
    }
    fn num_blocks(&self) -> u64 {
        (self.0.borrow().len() / 512) as u64
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let start = lba as usize * 512;
        buf.copy_from_slice(&self.0.borrow()[start..start + buf.len()]);
        Ok(())
    }
    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let start = lba as usize * 512;
        self.0.borrow_mut()[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&self) -> Result<(), BlockError> {
        Ok(())
    }
}

fn ucs2(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(core::iter::once(0)).collect()
}

fn clock() -> DateTime {
    DateTime {
        year: 2025,
        month: 6,
        day: 15,
        hour: 10,
        minute: 20,
        second: 30,
    }
}

/// Calls through the protocol table the way an EFI application does.
struct Handle(*mut FileProtocolV1);

impl Handle {
    fn table(&self) -> &FileProtocolV1 {
        // SAFETY: handles in these tests come from Open/OpenVolume and are
        // used only until Close or Delete.
        unsafe { &*self.0 }
    }
    fn open(&self, path: &str, mode: u64, attributes: u64) -> Result<Handle, Status> {
        let name = ucs2(path);
        let mut out = null_mut();
        let (mode, attributes) = (
            FileMode::from_bits_retain(mode),
            FileAttribute::from_bits_retain(attributes),
        );
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        match unsafe { (self.table().open)(self.0, &mut out, name.as_ptr(), mode, attributes) } {
            Status::SUCCESS => Ok(Handle(out)),
            status => Err(status),
        }
    }
    fn write(&self, data: &[u8]) -> Status {
        let mut size = data.len();
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        unsafe { (self.table().write)(self.0, &mut size, data.as_ptr().cast()) }
    }
    fn read(&self, buf: &mut [u8]) -> (Status, usize) {
        let mut size = buf.len();
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        let status = unsafe { (self.table().read)(self.0, &mut size, buf.as_mut_ptr().cast()) };
        (status, size)
    }
    fn info(&self, kind: Guid) -> (Status, Vec<u8>) {
        let mut size = 0usize;
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        let status = unsafe { (self.table().get_info)(self.0, &kind, &mut size, null_mut()) };
        if status != Status::BUFFER_TOO_SMALL {
            return (status, Vec::new());
        }
        let mut buf = vec![0u8; size];
        let status =
            // SAFETY: the handle came from Open or OpenVolume and is still open; the other
            // arguments are live locals.
            unsafe { (self.table().get_info)(self.0, &kind, &mut size, buf.as_mut_ptr().cast()) };
        (status, buf)
    }
    fn set_info(&self, kind: Guid, size: usize, buf: &[u8]) -> Status {
        // SAFETY: the handle came from Open or OpenVolume and is still open; `buf` is
        // a live local of at least `size` bytes or the call must not read past it.
        unsafe { (self.table().set_info)(self.0, &kind, size, buf.as_ptr().cast()) }
    }
    fn file_info(&self) -> Vec<u8> {
        let (status, info) = self.info(FileInfo::ID);
        assert_eq!(status, Status::SUCCESS);
        info
    }
    fn v2(&self) -> &FileProtocolV2 {
        // SAFETY: as `table`; every handle of ours is a revision 2 table.
        unsafe { &*self.0.cast::<FileProtocolV2>() }
    }
    fn set_position(&self, position: u64) -> Status {
        // SAFETY: the handle came from Open or OpenVolume and is still open.
        unsafe { (self.table().set_position)(self.0, position) }
    }
    fn delete(self) -> Status {
        // SAFETY: the handle came from Open or OpenVolume and is still open.
        unsafe { (self.table().delete)(self.0) }
    }
    fn close(self) -> Status {
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        unsafe { (self.table().close)(self.0) }
    }
}

fn info_name(info: &[u8]) -> String {
    char16_from_bytes(&info[offset_of!(FileInfo, file_name)..])
}

fn info_u64(info: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(info[off..off + 8].try_into().expect("8 bytes"))
}

const RW: u64 = MODE_READ | MODE_WRITE;
const CREATE: u64 = RW | MODE_CREATE;

/// A freshly formatted FAT16 volume labelled "ESP": its bytes and its root.
fn fresh_volume(tag: &str) -> (Rc<RefCell<Vec<u8>>>, Handle) {
    let dir = std::env::temp_dir().join(format!("vmfw-simplefs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let image = dir.join("esp.img");
    let status = Command::new("mkfs.vfat")
        .args(["-C", "-F", "16", "-s", "1", "-n", "ESP"])
        .arg(&image)
        .arg("8192")
        .output()
        .expect("mkfs.vfat (apt-get install -y dosfstools)");
    assert!(status.status.success());
    let bytes = Rc::new(RefCell::new(std::fs::read(&image).expect("image")));
    let _ = std::fs::remove_dir_all(&dir);
    let fs = new_simple_file_system(Box::new(SharedDisk(bytes.clone())), clock).expect("mount");
    let mut root = null_mut();
    // SAFETY: `fs` is the live instance returned above; `root` a live local.
    let status = unsafe { ((*fs).open_volume)(fs, &mut root) };
    assert_eq!(status, Status::SUCCESS);
    (bytes, Handle(root))
}

/// `info` with its FileSize, Attribute or name replaced, Size kept right.
fn with_u64(mut info: Vec<u8>, off: usize, value: u64) -> Vec<u8> {
    info[off..off + 8].copy_from_slice(&value.to_le_bytes());
    info
}

fn with_name(info: &[u8], name: &str) -> Vec<u8> {
    let mut out = info[..offset_of!(FileInfo, file_name)].to_vec();
    out.extend(ucs2(name).iter().flat_map(|u| u.to_le_bytes()));
    let len = out.len() as u64;
    with_u64(out, 0, len)
}

const FILE_SIZE: usize = offset_of!(FileInfo, file_size);
const ATTRIBUTE: usize = offset_of!(FileInfo, attribute);

#[test]
fn read_only_handle_may_write_back_its_info_and_change_only_attributes() {
    let (_bytes, root) = fresh_volume("ro-handle");
    let file = root.open("ro.txt", CREATE, 0).expect("create");
    assert_eq!(file.write(b"x"), Status::SUCCESS);
    assert_eq!(file.close(), Status::SUCCESS);
    let file = root.open("ro.txt", MODE_READ, 0).expect("open read-only");
    let info = file.file_info();

    // UEFI 2.10 §13.5.13: unchanged info, or only Attribute changed, succeeds.
    assert_eq!(
        file.set_info(FileInfo::ID, info.len(), &info),
        Status::SUCCESS
    );
    let read_only = with_u64(info.clone(), ATTRIBUTE, FileAttribute::READ_ONLY.bits());
    assert_eq!(
        file.set_info(FileInfo::ID, read_only.len(), &read_only),
        Status::SUCCESS
    );
    assert_eq!(
        info_u64(&file.file_info(), ATTRIBUTE),
        FileAttribute::READ_ONLY.bits()
    );
    let cleared = with_u64(info.clone(), ATTRIBUTE, 0);
    assert_eq!(
        file.set_info(FileInfo::ID, cleared.len(), &cleared),
        Status::SUCCESS
    );
    assert_eq!(info_u64(&file.file_info(), ATTRIBUTE), 0);

    // Any other field: EFI_ACCESS_DENIED, and nothing changes.
    let bigger = with_u64(info.clone(), FILE_SIZE, 0x100);
    assert_eq!(
        file.set_info(FileInfo::ID, bigger.len(), &bigger),
        Status::ACCESS_DENIED
    );
    let renamed = with_name(&info, "other.txt");
    assert_eq!(
        file.set_info(FileInfo::ID, renamed.len(), &renamed),
        Status::ACCESS_DENIED
    );
    let mut touched = info.clone();
    touched[offset_of!(FileInfo, modification_time)] ^= 1; // another year
    assert_eq!(
        file.set_info(FileInfo::ID, touched.len(), &touched),
        Status::ACCESS_DENIED
    );
    let now = file.file_info();
    assert_eq!(info_name(&now), "ro.txt");
    assert_eq!(info_u64(&now, FILE_SIZE), 1);
    assert_eq!(file.close(), Status::SUCCESS);
    assert_eq!(root.close(), Status::SUCCESS);
}

#[test]
fn directory_size_and_directory_bit_cannot_change() {
    let (_bytes, root) = fresh_volume("dir-size");
    let dir = root.open("d", CREATE, DIRECTORY).expect("mkdir");
    let info = dir.file_info();
    assert_eq!(
        dir.set_info(FileInfo::ID, info.len(), &info),
        Status::SUCCESS
    );
    let bigger = with_u64(info.clone(), FILE_SIZE, 0x100);
    assert_eq!(
        dir.set_info(FileInfo::ID, bigger.len(), &bigger),
        Status::ACCESS_DENIED
    );
    let not_dir = with_u64(info.clone(), ATTRIBUTE, 0);
    assert_eq!(
        dir.set_info(FileInfo::ID, not_dir.len(), &not_dir),
        Status::ACCESS_DENIED
    );
    assert_eq!(dir.file_info(), info);
    // The root has no entry: writing its info back is fine, changing it is not.
    let root_info = root.file_info();
    assert_eq!(
        root.set_info(FileInfo::ID, root_info.len(), &root_info),
        Status::SUCCESS
    );
    let hidden = with_u64(
        root_info,
        ATTRIBUTE,
        (FileAttribute::DIRECTORY | FileAttribute::HIDDEN).bits(),
    );
    assert_eq!(
        root.set_info(FileInfo::ID, hidden.len(), &hidden),
        Status::ACCESS_DENIED
    );
    assert_eq!(dir.delete(), Status::SUCCESS);
    assert_eq!(root.close(), Status::SUCCESS);
}

#[test]
fn too_small_buffers_are_bad_buffer_size_and_change_nothing() {
    let (_bytes, root) = fresh_volume("small");
    let label = |root: &Handle| {
        let (status, label) = root.info(FileSystemVolumeLabel::ID);
        assert_eq!(status, Status::SUCCESS);
        char16_from_bytes(&label)
    };
    assert_eq!(label(&root), "ESP");
    let new_label: Vec<u8> = ucs2("NEW").iter().flat_map(|u| u.to_le_bytes()).collect();
    for size in [0, 1, 6] {
        // The NUL lies beyond BufferSize (UEFI 2.10 §13.5.13).
        assert_eq!(
            root.set_info(FileSystemVolumeLabel::ID, size, &new_label),
            Status::BAD_BUFFER_SIZE,
            "label of {size} bytes"
        );
    }
    let (_, sys) = root.info(FileSystemInfo::ID);
    let label_at = offset_of!(FileSystemInfo, volume_label);
    assert_eq!(
        root.set_info(FileSystemInfo::ID, label_at + 1, &sys),
        Status::BAD_BUFFER_SIZE
    );
    let short_size = with_u64(sys.clone(), 0, (label_at + 1) as u64);
    assert_eq!(
        root.set_info(FileSystemInfo::ID, sys.len(), &short_size),
        Status::BAD_BUFFER_SIZE
    );
    assert_eq!(label(&root), "ESP");

    let file = root.open("f.txt", CREATE, 0).expect("create");
    let info = file.file_info();
    let name_at = offset_of!(FileInfo, file_name);
    assert_eq!(
        file.set_info(FileInfo::ID, name_at - 1, &info),
        Status::BAD_BUFFER_SIZE
    );
    // Size below the fixed part, with invalid attributes: refused as a whole.
    let bad = with_u64(
        with_u64(info.clone(), 0, (name_at - 1) as u64),
        ATTRIBUTE,
        !0,
    );
    assert_eq!(
        file.set_info(FileInfo::ID, bad.len(), &bad),
        Status::BAD_BUFFER_SIZE
    );
    // Size larger than BufferSize.
    assert_eq!(
        file.set_info(FileInfo::ID, info.len() - 2, &info),
        Status::BAD_BUFFER_SIZE
    );
    assert_eq!(file.file_info(), info);
    // A Size shorter than BufferSize is what counts (callers round up).
    let mut padded = info.clone();
    padded.extend([0xAA; 64]);
    assert_eq!(
        file.set_info(FileInfo::ID, padded.len(), &padded),
        Status::SUCCESS
    );
    assert_eq!(file.delete(), Status::SUCCESS);
    assert_eq!(root.close(), Status::SUCCESS);
}

#[test]
fn failed_set_info_leaves_the_file_as_it_was() {
    let (_bytes, root) = fresh_volume("atomic");
    let file = root.open("keep.txt", CREATE, 0).expect("create");
    assert_eq!(file.write(b"data"), Status::SUCCESS);
    let info = file.file_info();
    // Rename and a size no FAT file can have: the size fails after the
    // rename succeeded, and the rename is undone.
    let request = with_u64(with_name(&info, "moved.txt"), FILE_SIZE, 1 << 33);
    assert_eq!(
        file.set_info(FileInfo::ID, request.len(), &request),
        Status::VOLUME_FULL
    );
    assert_eq!(info_name(&file.file_info()), "keep.txt");
    assert_eq!(
        root.open("moved.txt", MODE_READ, 0).err(),
        Some(Status::NOT_FOUND)
    );
    assert_eq!(file.delete(), Status::SUCCESS);
    assert_eq!(root.close(), Status::SUCCESS);
}

#[test]
fn write_and_flush_of_a_file_made_read_only_are_write_protected() {
    let (_bytes, root) = fresh_volume("wp");
    let file = root.open("wp.txt", CREATE, 0).expect("create");
    let info = with_u64(file.file_info(), ATTRIBUTE, FileAttribute::READ_ONLY.bits());
    assert_eq!(
        file.set_info(FileInfo::ID, info.len(), &info),
        Status::SUCCESS
    );
    // UEFI 2.10 §13.5.6, §13.5.11: "the file ... is write-protected".
    assert_eq!(file.write(b"x"), Status::WRITE_PROTECTED);
    // SAFETY: the handle is open.
    let status = unsafe { (file.table().flush)(file.0) };
    assert_eq!(status, Status::WRITE_PROTECTED);
    let reader = root.open("wp.txt", MODE_READ, 0).expect("open");
    // SAFETY: the handle is open.
    let status = unsafe { (reader.table().flush)(reader.0) };
    assert_eq!(status, Status::ACCESS_DENIED);
    assert_eq!(reader.close(), Status::SUCCESS);
    assert_eq!(file.delete(), Status::SUCCESS);
    assert_eq!(root.close(), Status::SUCCESS);
}

fn token(event: Event, buf: &mut [u8]) -> FileIoToken {
    FileIoToken {
        event,
        status: Status::NOT_READY,
        buffer_size: buf.len(),
        buffer: buf.as_mut_ptr().cast(),
    }
}

#[test]
fn revision_2_calls_complete_their_tokens() {
    let (_bytes, root) = fresh_volume("rev2");
    assert_eq!(root.table().revision, FileProtocolRevision::REVISION_2);
    take_signals();
    let name = ucs2("async.txt");
    let mut out = null_mut();
    let mut open = token(TEST_EVENT, &mut []);
    let (create, attributes) = (
        FileMode::from_bits_retain(CREATE),
        FileAttribute::from_bits_retain(0),
    );
    let v2 = root.0.cast::<FileProtocolV2>();
    // SAFETY: live handle and locals.
    let status =
        unsafe { (root.v2().open_ex)(v2, &mut out, name.as_ptr(), create, attributes, &mut open) };
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(open.status, Status::SUCCESS);
    assert_eq!(take_signals(), [TEST_EVENT as usize]);
    let file = Handle(out.cast());
    let fv2 = file.0.cast::<FileProtocolV2>();

    // Non-blocking write: done, token filled in, event signalled once.
    let mut data = *b"hello";
    let mut write = token(TEST_EVENT, &mut data);
    // SAFETY: live handle and token.
    let status = unsafe { (file.v2().write_ex)(fv2, &mut write) };
    assert_eq!(status, Status::SUCCESS);
    assert_eq!((write.status, write.buffer_size), (Status::SUCCESS, 5));
    assert_eq!(take_signals(), [TEST_EVENT as usize]);
    // SAFETY: live handle.
    let status = unsafe { (file.table().set_position)(file.0, 1) };
    assert_eq!(status, Status::SUCCESS);

    // Blocking read (null event): the call's status, nothing signalled.
    let mut buf = [0u8; 16];
    let mut read = token(null_mut(), &mut buf);
    // SAFETY: live handle and token.
    let status = unsafe { (file.v2().read_ex)(fv2, &mut read) };
    assert_eq!(status, Status::SUCCESS);
    assert_eq!((read.status, read.buffer_size), (Status::SUCCESS, 4));
    assert_eq!(&buf[..4], b"ello");
    let mut flush = token(TEST_EVENT, &mut []);
    // SAFETY: live handle and token.
    let status = unsafe { (file.v2().flush_ex)(fv2, &mut flush) };
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(flush.status, Status::SUCCESS);
    assert_eq!(take_signals(), [TEST_EVENT as usize]);

    // Refused requests return their status and signal nothing.
    // SAFETY: live handle; a null token.
    let status = unsafe { (file.v2().read_ex)(fv2, null_mut()) };
    assert_eq!(status, Status::INVALID_PARAMETER);
    let mut bogus = token(NOT_AN_EVENT, &mut buf);
    // SAFETY: live handle and token.
    let status = unsafe { (file.v2().read_ex)(fv2, &mut bogus) };
    assert_eq!(status, Status::INVALID_PARAMETER);
    let reader = root.open("async.txt", MODE_READ, 0).expect("open");
    let rv2 = reader.0.cast::<FileProtocolV2>();
    let mut denied = token(TEST_EVENT, &mut data);
    // SAFETY: live handle and token.
    let status = unsafe { (reader.v2().write_ex)(rv2, &mut denied) };
    assert_eq!(status, Status::ACCESS_DENIED);
    let mut missing = token(TEST_EVENT, &mut []);
    let absent = ucs2("absent.txt");
    let read_only = FileMode::from_bits_retain(MODE_READ);
    // SAFETY: live handle and locals.
    let status = unsafe {
        (root.v2().open_ex)(
            v2,
            &mut out,
            absent.as_ptr(),
            read_only,
            attributes,
            &mut missing,
        )
    };
    assert_eq!(status, Status::NOT_FOUND);
    assert_eq!(take_signals(), Vec::<usize>::new());
    assert_eq!(reader.close(), Status::SUCCESS);
    assert_eq!(file.delete(), Status::SUCCESS);
    assert_eq!(root.close(), Status::SUCCESS);
}

#[test]
fn efi_file_protocol_round_trip() {
    let dir = std::env::temp_dir().join(format!("vmfw-simplefs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let image = dir.join("esp.img");
    let status = Command::new("mkfs.vfat")
        .args(["-C", "-F", "16", "-s", "1", "-n", "ESP"])
        .arg(&image)
        .arg("8192")
        .output()
        .expect("mkfs.vfat (apt-get install -y dosfstools)");
    assert!(status.status.success());
    let bytes = Rc::new(RefCell::new(std::fs::read(&image).expect("image")));

    let fs = new_simple_file_system(Box::new(SharedDisk(bytes.clone())), clock).expect("mount");
    let mut root_ptr = null_mut();
    // SAFETY: `fs` is the live instance returned above.
    let open_volume = unsafe { (*fs).open_volume };
    // SAFETY: a live instance and locals of the sizes passed.
    assert_eq!(unsafe { open_volume(fs, &mut root_ptr) }, Status::SUCCESS);
    assert_eq!(
        // SAFETY: a live instance and locals of the sizes passed.
        unsafe { open_volume(fs, null_mut()) },
        Status::INVALID_PARAMETER
    );
    assert_eq!(
        // SAFETY: a live instance and locals of the sizes passed.
        unsafe { open_volume(null_mut(), &mut root_ptr) },
        Status::INVALID_PARAMETER
    );
    let root = Handle(root_ptr);
    assert_eq!(
        root.open("missing.txt", MODE_READ, 0).err(),
        Some(Status::NOT_FOUND)
    );
    assert_eq!(
        root.open("x", MODE_WRITE, 0).err(),
        Some(Status::INVALID_PARAMETER)
    );
    let _ = root
        .open("EFI", CREATE, DIRECTORY)
        .expect("mkdir EFI")
        .close();
    let boot = root
        .open("\\EFI\\Boot", CREATE, DIRECTORY)
        .expect("mkdir Boot");
    let file = boot.open("grub.cfg", CREATE, 0).expect("create");
    assert_eq!(file.write(b"set timeout=5\n"), Status::SUCCESS);
    assert_eq!(
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        unsafe { (file.table().set_position)(file.0, 4) },
        Status::SUCCESS
    );
    let mut buf = [0u8; 64];
    assert_eq!(file.read(&mut buf), (Status::SUCCESS, 10));
    assert_eq!(&buf[..10], b"timeout=5\n");
    let mut position = 0u64;
    assert_eq!(
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        unsafe { (file.table().get_position)(file.0, &mut position) },
        Status::SUCCESS
    );
    assert_eq!(position, 14);
    assert_eq!(
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        unsafe { (file.table().set_position)(file.0, u64::MAX) },
        Status::SUCCESS
    );
    assert_eq!(file.write(b"menuentry\n"), Status::SUCCESS);

    let (status, info) = file.info(FileInfo::ID);
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(info_name(&info), "grub.cfg");
    assert_eq!(info_u64(&info, offset_of!(FileInfo, file_size)), 24);
    assert_eq!(
        info_u64(&info, offset_of!(FileInfo, attribute)),
        FileAttribute::ARCHIVE.bits()
    );
    assert_eq!(u16::from_le_bytes([info[24], info[25]]), 2025);

    // SetInfo: rename and truncate.
    let mut new_info = info[..offset_of!(FileInfo, file_name)].to_vec();
    new_info.extend(ucs2("GRUB.CONF").iter().flat_map(|u| u.to_le_bytes()));
    let len = new_info.len() as u64;
    new_info[..8].copy_from_slice(&len.to_le_bytes());
    new_info[8..16].copy_from_slice(&14u64.to_le_bytes());
    let kind = FileInfo::ID;
    let set_info = file.table().set_info;
    assert_eq!(
        // SAFETY: a live instance and locals of the sizes passed.
        unsafe { set_info(file.0, &kind, new_info.len(), new_info.as_mut_ptr().cast()) },
        Status::SUCCESS
    );
    assert_eq!(
        // SAFETY: a live instance and locals of the sizes passed.
        unsafe { set_info(file.0, &kind, 10, new_info.as_mut_ptr().cast()) },
        Status::BAD_BUFFER_SIZE
    );
    // SAFETY: the handle came from Open or OpenVolume and is still open; the other arguments
    // are live locals.
    assert_eq!(unsafe { (file.table().flush)(file.0) }, Status::SUCCESS);
    assert_eq!(file.close(), Status::SUCCESS);

    // Directory reads: one EFI_FILE_INFO per call, size reported first.
    let mut empty = [0u8; 0];
    let (status, needed) = boot.read(&mut empty);
    assert_eq!(status, Status::BUFFER_TOO_SMALL);
    assert!(needed > offset_of!(FileInfo, file_name));
    let mut names = Vec::new();
    loop {
        let mut entry = [0u8; 512];
        let (status, n) = boot.read(&mut entry);
        assert_eq!(status, Status::SUCCESS);
        if n == 0 {
            break;
        }
        names.push(info_name(&entry[..n]));
    }
    assert_eq!(names, [".", "..", "GRUB.CONF"]);
    assert_eq!(boot.write(b"x"), Status::UNSUPPORTED);

    let reopened = root
        .open("efi\\boot\\grub.conf", MODE_READ, 0)
        .expect("reopen");
    let mut buf = [0u8; 64];
    assert_eq!(reopened.read(&mut buf), (Status::SUCCESS, 14));
    assert_eq!(reopened.write(b"no"), Status::ACCESS_DENIED);
    assert_eq!(
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        unsafe { (reopened.table().delete)(reopened.0) },
        Status::WARN_DELETE_FAILURE
    );

    let (status, sys) = root.info(FileSystemInfo::ID);
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(
        char16_from_bytes(&sys[offset_of!(FileSystemInfo, volume_label)..]),
        "ESP"
    );
    let mut label = ucs2("BOOTVOL");
    let kind = FileSystemVolumeLabel::ID;
    let set_info = root.table().set_info;
    assert_eq!(
        // SAFETY: a live instance and locals of the sizes passed.
        unsafe { set_info(root.0, &kind, label.len() * 2, label.as_mut_ptr().cast()) },
        Status::SUCCESS
    );
    let (_, label) = root.info(FileSystemVolumeLabel::ID);
    assert_eq!(char16_from_bytes(&label), "BOOTVOL");

    let scratch = root
        .open("scratch file.tmp", CREATE, 0)
        .expect("create scratch");
    assert_eq!(
        // SAFETY: the handle came from Open or OpenVolume and is still open; the other
        // arguments are live locals.
        unsafe { (scratch.table().delete)(scratch.0) },
        Status::SUCCESS
    );
    assert_eq!(
        root.open("scratch file.tmp", MODE_READ, 0).err(),
        Some(Status::NOT_FOUND)
    );
    assert_eq!(boot.close(), Status::SUCCESS);
    assert_eq!(root.close(), Status::SUCCESS);

    std::fs::write(&image, &*bytes.borrow()).expect("write back");
    let fsck = Command::new("fsck.vfat")
        .arg("-n")
        .arg(&image)
        .output()
        .expect("fsck");
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let mtype = Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&image)
        .arg("::/EFI/Boot/GRUB.CONF")
        .output()
        .expect("mtype");
    assert_eq!(mtype.stdout, b"set timeout=5\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The names the SCT's Open conformance checkpoint 4 tries to create (its
/// UnacceptableFileName list): none may be created (UEFI 2.10 §13.5.2).
#[test]
fn unacceptable_names_are_not_created() {
    let (_bytes, root) = fresh_volume("names");
    let mut names: Vec<String> = vec![String::new()];
    for c in 1u8..0x20 {
        names.push(format!("{}A", c as char));
        names.push(format!("A{}", c as char));
    }
    for c in ['"', '*', '/', ':', '<', '>', '?', '|'] {
        names.push(format!("{c}a"));
        names.push(format!("a{c}"));
    }
    let mut created = Vec::new();
    for name in &names {
        if let Ok(handle) = root.open(name, CREATE, 0) {
            created.push(name.clone());
            let _ = handle.close();
        }
    }
    assert_eq!(created, Vec::<String>::new());
    assert_eq!(root.close(), Status::SUCCESS);
}

/// A file deleted through one handle: the other handle's Read, Write,
/// GetInfo and SetInfo are EFI_DEVICE_ERROR (UEFI 2.10 §13.5.5, §13.5.6;
/// SCT WriteEx conformance checkpoint 3) and its Delete fails, even after
/// a new file took the freed directory slot.
#[test]
fn a_file_deleted_through_another_handle_is_not_written() {
    let (bytes, root) = fresh_volume("deleted");
    let first = root.open("gone.bin", CREATE, 0).expect("create");
    assert_eq!(first.write(b"old data"), Status::SUCCESS);
    let second = root.open("gone.bin", RW, 0).expect("open");
    let info = second.file_info();
    assert_eq!(first.delete(), Status::SUCCESS);
    let newcomer = root.open("gone.bin", CREATE, 0).expect("create again");
    assert_eq!(newcomer.write(b"new"), Status::SUCCESS);

    assert_eq!(second.write(b"stale"), Status::DEVICE_ERROR);
    let mut buf = [0u8; 8];
    assert_eq!(second.read(&mut buf).0, Status::DEVICE_ERROR);
    assert_eq!(second.info(FileInfo::ID).0, Status::DEVICE_ERROR);
    assert_eq!(
        second.set_info(FileInfo::ID, info.len(), &info),
        Status::DEVICE_ERROR
    );
    assert_eq!(second.delete(), Status::WARN_DELETE_FAILURE);

    // The new file is intact.
    let mut buf = [0u8; 8];
    assert_eq!(newcomer.set_position(0), Status::SUCCESS);
    assert_eq!(newcomer.read(&mut buf), (Status::SUCCESS, 3));
    assert_eq!(&buf[..3], b"new");
    assert_eq!(newcomer.close(), Status::SUCCESS);
    assert_eq!(root.close(), Status::SUCCESS);
    drop(bytes);
}
