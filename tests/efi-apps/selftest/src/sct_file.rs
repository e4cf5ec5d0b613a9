//! EFI_SIMPLE_FILE_SYSTEM_PROTOCOL / EFI_FILE_PROTOCOL rules the UEFI SCT checks
//! (UEFI 2.10 §13.4, §13.5; edk2-test SimpleFileSystem BlackBoxTest), run on the ESP
//! this image was loaded from, inside a scratch directory of its own that is removed
//! at the end.

use core::ffi::c_void;
use core::mem::offset_of;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use r_efi::efi;
use r_efi::protocols::{file, loaded_image, simple_file_system};

use crate::ctx::{Ctx, St, ucs2};

const SCRATCH: [u16; 16] = ucs2("sct_file.tmp");
const RW: u64 = file::MODE_READ | file::MODE_WRITE;
const CREATE: u64 = RW | file::MODE_CREATE;
const NAME_AT: usize = offset_of!(file::Info, file_name);
const FILE_SIZE_AT: usize = offset_of!(file::Info, file_size);
const ATTRIBUTE_AT: usize = offset_of!(file::Info, attribute);
const LABEL_AT: usize = offset_of!(file::SystemInfo, volume_label);

/// An open EFI_FILE_PROTOCOL handle, closed (or deleted) exactly once.
struct File(*mut file::Protocol);

impl File {
    fn table(&self) -> &file::Protocol {
        // SAFETY: `self.0` came from OpenVolume/Open(Ex) and is open until `close` or
        // `delete` consume `self`.
        unsafe { &*self.0 }
    }

    fn open(&self, name: &[u16], mode: u64, attributes: u64) -> Result<File, efi::Status> {
        let mut out = ptr::null_mut();
        let name = name.as_ptr().cast_mut();
        // `name` is NUL-terminated and `out` a live local.
        match (self.table().open)(self.0, &mut out, name, mode, attributes) {
            efi::Status::SUCCESS => Ok(File(out)),
            status => Err(status),
        }
    }

    fn write(&self, data: &[u8]) -> efi::Status {
        let mut size = data.len();
        let buf = data.as_ptr().cast_mut().cast();
        // `buf` holds `size` readable bytes.
        (self.table().write)(self.0, &mut size, buf)
    }

    fn flush(&self) -> efi::Status {
        (self.table().flush)(self.0)
    }

    fn set_position(&self, position: u64) -> efi::Status {
        (self.table().set_position)(self.0, position)
    }

    /// GetInfo of `kind` into `buf`; returns the record's length.
    fn info(&self, kind: &efi::Guid, buf: &mut [u8]) -> Result<usize, efi::Status> {
        let mut size = buf.len();
        let mut kind = *kind;
        let out = buf.as_mut_ptr().cast();
        // `out` holds `size` writable bytes.
        match (self.table().get_info)(self.0, &mut kind, &mut size, out) {
            efi::Status::SUCCESS => Ok(size),
            status => Err(status),
        }
    }

    /// SetInfo of `kind` with `size` as BufferSize; `buf` holds at least that much.
    fn set_info(&self, kind: &efi::Guid, size: usize, buf: &[u8]) -> efi::Status {
        let mut kind = *kind;
        let size = size.min(buf.len());
        let data = buf.as_ptr().cast_mut().cast();
        // `data` holds `size` readable bytes.
        (self.table().set_info)(self.0, &mut kind, size, data)
    }

    fn close(self) -> efi::Status {
        // Consumes the handle: it is not used again.
        (self.table().close)(self.0)
    }

    fn delete(self) -> efi::Status {
        // Consumes the handle: it is not used again.
        (self.table().delete)(self.0)
    }
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(word)
}

fn put_u64(buf: &mut [u8], at: usize, value: u64) {
    buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Whether this is our firmware (vendor "vmfw"), which must provide what the checks
/// below allow other firmware to lack.
fn is_vmfw(ctx: &Ctx) -> bool {
    let vendor = ctx.st.firmware_vendor;
    if vendor.is_null() {
        return false;
    }
    let want = ucs2::<5>("vmfw");
    // SAFETY: FirmwareVendor is a NUL-terminated string (UEFI 2.10 §4.3); at most
    // five units are read, stopping at the NUL.
    (0..want.len()).all(|i| unsafe { vendor.add(i).read() } == want[i])
}

/// The root of the volume this image was loaded from.
fn open_root(ctx: &Ctx) -> Option<File> {
    let li: *mut loaded_image::Protocol =
        ctx.handle_protocol(ctx.image, &loaded_image::PROTOCOL_GUID)?;
    // SAFETY: the firmware's LoadedImage protocol of this image.
    let device = unsafe { (*li).device_handle };
    let fs: *mut simple_file_system::Protocol =
        ctx.handle_protocol(device, &simple_file_system::PROTOCOL_GUID)?;
    let mut root = ptr::null_mut();
    // SAFETY: the device's live SimpleFileSystem protocol; `root` a live local.
    let status = unsafe { ((*fs).open_volume)(fs, &mut root) };
    (status == efi::Status::SUCCESS).then_some(File(root))
}

pub fn run(ctx: &mut Ctx) {
    let Some(root) = open_root(ctx) else {
        ctx.fail(
            "sct_file.open_root",
            format_args!("no SimpleFileSystem root"),
        );
        return;
    };
    // A scratch directory from an earlier, interrupted run is removed first.
    if let Ok(stale) = root.open(&SCRATCH, RW, 0) {
        remove_files(&stale);
        let _ = stale.delete();
    }
    let Ok(scratch) = root.open(&SCRATCH, CREATE, file::DIRECTORY) else {
        ctx.fail(
            "sct_file.scratch",
            format_args!("cannot create the scratch directory"),
        );
        let _ = root.close();
        return;
    };
    unacceptable_names(ctx, &scratch);
    file_info_rules(ctx, &scratch);
    directory_rules(ctx, &scratch);
    volume_label_rules(ctx, &root);
    write_protected_rules(ctx, &scratch);
    deleted_file_rules(ctx, &scratch);
    revision_2(ctx, &root, &scratch);
    remove_files(&scratch);
    ctx.expect(
        "sct_file.cleanup",
        scratch.delete(),
        &[efi::Status::SUCCESS],
    );
    let _ = root.close();
}

/// The files the checks create in the scratch directory.
const FILES: [[u16; 8]; 4] = [
    ucs2("ro.bin"),
    ucs2("wp.bin"),
    ucs2("ex.bin"),
    ucs2("del.bin"),
];

/// Deletes the checks' files, clearing a read-only attribute a failed run left.
fn remove_files(dir: &File) {
    for name in &FILES {
        if let Ok(f) = dir.open(name, file::MODE_READ, 0) {
            let mut info = [0u8; 256];
            if let Ok(len) = f.info(&file::INFO_ID, &mut info)
                && u64_at(&info, ATTRIBUTE_AT) & file::READ_ONLY != 0
            {
                put_u64(&mut info, ATTRIBUTE_AT, 0);
                let _ = f.set_info(&file::INFO_ID, len, &info);
            }
            let _ = f.close();
        }
        if let Ok(f) = dir.open(name, RW, 0) {
            let _ = f.delete();
        }
    }
}

/// Open with EFI_FILE_MODE_CREATE of a name that is empty, or holds `/` or a control
/// character, fails (UEFI 2.10 §13.5.2; SCT Conformance.c Open checkpoint 4).
fn unacceptable_names(ctx: &mut Ctx, dir: &File) {
    let names: [[u16; 3]; 5] = [
        [0; 3],
        [u16::from(b'/'), u16::from(b'a'), 0],
        [u16::from(b'a'), u16::from(b'/'), 0],
        [1, u16::from(b'A'), 0],
        [u16::from(b'a'), u16::from(b'?'), 0],
    ];
    let mut created = 0;
    for name in &names {
        if let Ok(f) = dir.open(name, CREATE, 0) {
            created += 1;
            // Remove what was created by mistake, unless it is the directory itself.
            if name[0] == 0 {
                let _ = f.close();
            } else {
                let _ = f.delete();
            }
        }
    }
    ctx.check(
        "sct_file.open.create_unacceptable_names",
        created == 0,
        format_args!("{created} of {} names created", names.len()),
    );
}

/// SetInfo(EFI_FILE_INFO) on a handle opened read-only (UEFI 2.10 §13.5.13): the
/// unchanged info, or one changing only Attribute, succeeds; any other change is
/// EFI_ACCESS_DENIED. (SCT Function.c Open checkpoint 2, Conformance.c SetInfo
/// checkpoints 2 and 6.)
fn file_info_rules(ctx: &mut Ctx, dir: &File) {
    let name = FILES[0];
    let Ok(writer) = dir.open(&name, CREATE, 0) else {
        ctx.fail("sct_file.create", format_args!("cannot create ro.bin"));
        return;
    };
    ctx.ok("sct_file.write", writer.write(&[0]));
    let _ = writer.close();
    let Ok(reader) = dir.open(&name, file::MODE_READ, 0) else {
        ctx.fail(
            "sct_file.open_read_only",
            format_args!("cannot open ro.bin"),
        );
        return;
    };
    let mut info = [0u8; 256];
    let Ok(len) = reader.info(&file::INFO_ID, &mut info) else {
        ctx.fail("sct_file.get_info", format_args!("GetInfo failed"));
        let _ = reader.close();
        return;
    };
    ctx.ok(
        "sct_file.set_info.read_only_handle_unchanged",
        reader.set_info(&file::INFO_ID, len, &info),
    );
    let mut attribute = info;
    put_u64(&mut attribute, ATTRIBUTE_AT, file::READ_ONLY);
    // Conformance.c passes a BufferSize beyond the record; its Size is what counts.
    ctx.ok(
        "sct_file.set_info.read_only_handle_attribute",
        reader.set_info(&file::INFO_ID, info.len(), &attribute),
    );
    let mut now = [0u8; 256];
    let attribute_now = reader
        .info(&file::INFO_ID, &mut now)
        .map(|_| u64_at(&now, ATTRIBUTE_AT));
    ctx.check(
        "sct_file.set_info.read_only_handle_attribute_set",
        attribute_now == Ok(file::READ_ONLY),
        format_args!("Attribute now {attribute_now:x?}"),
    );
    put_u64(&mut attribute, ATTRIBUTE_AT, 0);
    ctx.ok(
        "sct_file.set_info.read_only_handle_attribute_cleared",
        reader.set_info(&file::INFO_ID, len, &attribute),
    );
    let mut bigger = info;
    put_u64(&mut bigger, FILE_SIZE_AT, 0x100);
    ctx.expect(
        "sct_file.set_info.read_only_handle_size",
        reader.set_info(&file::INFO_ID, len, &bigger),
        &[efi::Status::ACCESS_DENIED],
    );
    // SCT Conformance.c SetInfo checkpoint 3: BufferSize below the fixed part.
    ctx.expect(
        "sct_file.set_info.small_buffer",
        reader.set_info(&file::INFO_ID, NAME_AT - 1, &info),
        &[efi::Status::BAD_BUFFER_SIZE],
    );
    let _ = reader.close();
}

/// A directory's FileSize cannot change (UEFI 2.10 §13.5.13: EFI_ACCESS_DENIED).
fn directory_rules(ctx: &mut Ctx, scratch: &File) {
    let mut info = [0u8; 256];
    let Ok(len) = scratch.info(&file::INFO_ID, &mut info) else {
        ctx.fail("sct_file.dir_info", format_args!("GetInfo failed"));
        return;
    };
    ctx.ok(
        "sct_file.set_info.directory_unchanged",
        scratch.set_info(&file::INFO_ID, len, &info),
    );
    let mut bigger = info;
    put_u64(
        &mut bigger,
        FILE_SIZE_AT,
        u64_at(&info, FILE_SIZE_AT) + 0x100,
    );
    ctx.expect(
        "sct_file.set_info.directory_size",
        scratch.set_info(&file::INFO_ID, len, &bigger),
        &[efi::Status::ACCESS_DENIED],
    );
}

/// SetInfo of EFI_FILE_SYSTEM_VOLUME_LABEL / EFI_FILE_SYSTEM_INFO with a BufferSize
/// too small for the record is EFI_BAD_BUFFER_SIZE and leaves the label alone (SCT
/// Conformance.c SetInfo checkpoint 3).
fn volume_label_rules(ctx: &mut Ctx, root: &File) {
    let mut label = [0u8; 128];
    let Ok(label_len) = root.info(&file::SYSTEM_VOLUME_LABEL_ID, &mut label) else {
        ctx.fail("sct_file.label", format_args!("GetInfo(label) failed"));
        return;
    };
    ctx.expect(
        "sct_file.set_info.label_small_buffer",
        root.set_info(&file::SYSTEM_VOLUME_LABEL_ID, 1, &label),
        &[efi::Status::BAD_BUFFER_SIZE],
    );
    let mut system = [0u8; 256];
    if root.info(&file::SYSTEM_INFO_ID, &mut system).is_ok() {
        ctx.expect(
            "sct_file.set_info.system_info_small_buffer",
            root.set_info(&file::SYSTEM_INFO_ID, LABEL_AT - 1, &system),
            &[efi::Status::BAD_BUFFER_SIZE],
        );
    }
    let mut after = [0u8; 128];
    let after_len = root.info(&file::SYSTEM_VOLUME_LABEL_ID, &mut after);
    let kept = after_len == Ok(label_len) && after[..label_len] == label[..label_len];
    if !kept {
        // Put the ESP's label back for whatever runs next.
        let _ = root.set_info(&file::SYSTEM_VOLUME_LABEL_ID, label_len, &label);
    }
    ctx.check(
        "sct_file.set_info.label_kept",
        kept,
        format_args!("the volume label changed"),
    );
}

/// Write and Flush through a handle opened for writing, once the file is made
/// read-only, are EFI_WRITE_PROTECTED (UEFI 2.10 §13.5.6, §13.5.11; SCT Conformance.c
/// Write checkpoint 2, Flush checkpoint 1).
fn write_protected_rules(ctx: &mut Ctx, dir: &File) {
    // edk2's FAT driver (OVMF) decides write access once, at Open: a file made
    // read-only through a handle already open for writing keeps taking writes and
    // flushes (EFI_SUCCESS). §13.5.6/§13.5.11 list EFI_WRITE_PROTECTED for a
    // write-protected file without such an exception, and the SCT requires it, so
    // OVMF's answer is not accepted: the check is skipped on other firmware.
    if !is_vmfw(ctx) {
        ctx.print(format_args!(
            "# sct_file.write.read_only_file: skipped (not vmfw; edk2 checks at Open)\n"
        ));
        return;
    }
    let Ok(f) = dir.open(&FILES[1], CREATE, 0) else {
        ctx.fail("sct_file.create_wp", format_args!("cannot create wp.bin"));
        return;
    };
    let mut info = [0u8; 256];
    if let Ok(len) = f.info(&file::INFO_ID, &mut info) {
        put_u64(&mut info, ATTRIBUTE_AT, file::READ_ONLY);
        ctx.ok(
            "sct_file.set_info.make_read_only",
            f.set_info(&file::INFO_ID, len, &info),
        );
        ctx.expect(
            "sct_file.write.read_only_file",
            f.write(b"x"),
            &[efi::Status::WRITE_PROTECTED],
        );
        ctx.expect(
            "sct_file.flush.read_only_file",
            f.flush(),
            &[efi::Status::WRITE_PROTECTED],
        );
    }
    let _ = f.delete();
}

/// Writing through a handle whose file was deleted through another handle is
/// EFI_DEVICE_ERROR (UEFI 2.10 §13.5.6; SCT SimpleFileSystemExBBTestConformance.c
/// WriteEx checkpoint 3 checks it through WriteEx).
fn deleted_file_rules(ctx: &mut Ctx, dir: &File) {
    let Ok(first) = dir.open(&FILES[3], CREATE, 0) else {
        ctx.fail("sct_file.create_del", format_args!("cannot create del.bin"));
        return;
    };
    let _ = first.write(b"data");
    let Ok(second) = dir.open(&FILES[3], RW, 0) else {
        ctx.fail(
            "sct_file.open_del",
            format_args!("cannot open del.bin again"),
        );
        let _ = first.delete();
        return;
    };
    ctx.ok("sct_file.delete", first.delete());
    ctx.expect(
        "sct_file.write.deleted_file",
        second.write(b"x"),
        &[efi::Status::DEVICE_ERROR],
    );
    let _ = second.close();
}

/// Counts completions of the revision 2 requests.
static COMPLETIONS: AtomicU32 = AtomicU32::new(0);

extern "efiapi" fn count_completion(_event: efi::Event, context: *mut c_void) {
    // SAFETY: the event below passes COMPLETIONS as its context.
    unsafe { &*context.cast::<AtomicU32>() }.fetch_add(1, Ordering::SeqCst);
}

/// Waits up to a second for the completion count to reach `count`.
fn wait_for(ctx: &Ctx, count: u32) -> bool {
    for _ in 0..100 {
        if COMPLETIONS.load(Ordering::SeqCst) >= count {
            return true;
        }
        let _ = (ctx.bs.stall)(10_000);
    }
    COMPLETIONS.load(Ordering::SeqCst) >= count
}

fn token(event: efi::Event, buf: &mut [u8]) -> file::IoToken {
    file::IoToken {
        event,
        status: efi::Status::NOT_READY,
        buffer_size: buf.len(),
        buffer: buf.as_mut_ptr().cast(),
    }
}

/// EFI_FILE_PROTOCOL_REVISION2: OpenEx/ReadEx/WriteEx/FlushEx complete their token
/// (UEFI 2.10 §13.5.7-§13.5.10). Firmware reporting revision 1 does not have them
/// (edk2 OVMF's FAT driver as tested); ours must.
fn revision_2(ctx: &mut Ctx, root: &File, dir: &File) {
    let revision = root.table().revision;
    if revision < file::REVISION2 {
        if is_vmfw(ctx) {
            ctx.fail("sct_file.revision2", format_args!("revision {revision:#x}"));
        } else {
            ctx.print(format_args!(
                "# sct_file.revision2: skipped (revision {revision:#x}, not vmfw)\n"
            ));
        }
        return;
    }
    ctx.pass("sct_file.revision2");
    let mut event: efi::Event = ptr::null_mut();
    let context = ptr::from_ref(&COMPLETIONS).cast_mut().cast();
    let status = (ctx.bs.create_event)(
        efi::EVT_NOTIFY_SIGNAL,
        efi::TPL_CALLBACK,
        Some(count_completion),
        context,
        &mut event,
    );
    if !ctx.ok("sct_file.ex.create_event", status) {
        return;
    }
    let base = COMPLETIONS.load(Ordering::SeqCst);

    let name = FILES[2];
    let mut opened = ptr::null_mut();
    let mut open = token(event, &mut []);
    // The name, out pointer and token are live locals that outlive the request (it
    // is waited for below).
    let status = (dir.table().open_ex)(
        dir.0,
        &mut opened,
        name.as_ptr().cast_mut(),
        CREATE,
        0,
        &mut open,
    );
    let done = status == efi::Status::SUCCESS && wait_for(ctx, base + 1);
    ctx.check(
        "sct_file.ex.open_async",
        done && open.status == efi::Status::SUCCESS && !opened.is_null(),
        format_args!("returned {}, token {}", St(status), St(open.status)),
    );
    if !done || opened.is_null() {
        let _ = (ctx.bs.close_event)(event);
        return;
    }
    let f = File(opened);

    let mut data = *b"hello";
    let mut write = token(event, &mut data);
    // The token and its buffer outlive the request.
    let status = (f.table().write_ex)(f.0, &mut write);
    let done = status == efi::Status::SUCCESS && wait_for(ctx, base + 2);
    ctx.check(
        "sct_file.ex.write_async",
        done && write.status == efi::Status::SUCCESS && write.buffer_size == 5,
        format_args!(
            "returned {}, token {} size {}",
            St(status),
            St(write.status),
            write.buffer_size
        ),
    );

    let _ = f.set_position(1);
    let mut buf = [0u8; 8];
    let mut read = token(ptr::null_mut(), &mut buf);
    // A null event makes the request blocking.
    let status = (f.table().read_ex)(f.0, &mut read);
    let size = read.buffer_size;
    ctx.check(
        "sct_file.ex.read_blocking",
        status == efi::Status::SUCCESS && size == 4 && &buf[..4] == b"ello",
        format_args!("returned {}, size {size}", St(status)),
    );

    let mut flush = token(event, &mut []);
    let status = (f.table().flush_ex)(f.0, &mut flush);
    let done = status == efi::Status::SUCCESS && wait_for(ctx, base + 3);
    ctx.check(
        "sct_file.ex.flush_async",
        done && flush.status == efi::Status::SUCCESS,
        format_args!("returned {}, token {}", St(status), St(flush.status)),
    );

    // Refused before any I/O: the status comes back directly (SCT
    // SimpleFileSystemExBBTestConformance.c WriteEx checkpoint 2).
    if let Ok(reader) = dir.open(&name, file::MODE_READ, 0) {
        let mut denied = token(event, &mut data);
        let status = (reader.table().write_ex)(reader.0, &mut denied);
        ctx.expect(
            "sct_file.ex.write_read_only_handle",
            status,
            &[efi::Status::ACCESS_DENIED],
        );
        let _ = reader.close();
    }
    let missing = ucs2::<12>("missing.bin");
    let mut absent = ptr::null_mut();
    let mut open = token(ptr::null_mut(), &mut []);
    let status = (dir.table().open_ex)(
        dir.0,
        &mut absent,
        missing.as_ptr().cast_mut(),
        file::MODE_READ,
        0,
        &mut open,
    );
    ctx.expect(
        "sct_file.ex.open_missing",
        status,
        &[efi::Status::NOT_FOUND],
    );
    // Nothing refused may signal: only the three requests above completed.
    let _ = (ctx.bs.stall)(10_000);
    let count = COMPLETIONS.load(Ordering::SeqCst) - base;
    ctx.check(
        "sct_file.ex.signal_count",
        count == 3,
        format_args!("{count} completions signalled, want 3"),
    );
    let _ = f.delete();
    let _ = (ctx.bs.close_event)(event);
}
