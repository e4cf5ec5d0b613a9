//! Secure Boot authenticated variable test application (UEFI 2.10 §8.2.2,
//! §32.3). On its own volume:
//!
//! 1. `\authvar.bin`, when present: records of
//!    `u8 name length, name (ASCII: PK, KEK, db, dbx, dbt), u32 attributes,
//!    u32 payload length, payload` (little-endian). Each becomes one
//!    SetVariable of that key variable (PK and KEK under the global GUID,
//!    the others under EFI_IMAGE_SECURITY_DATABASE_GUID) and prints
//!    `AUTHVAR: set <name> #<index> status=<hex>`. The file is then deleted,
//!    so a reboot does not write again.
//! 2. Prints `AUTHVAR: SetupMode=<n> SecureBoot=<n>` and, for each key
//!    variable, `AUTHVAR: <name> size=<bytes>` (or `absent`).
//! 3. `\hello.efi`, when present: LoadImage from its bytes, prints
//!    `AUTHVAR: LoadImage hello status=<hex>` and, when allowed, starts it
//!    (it prints `HELLO: running` and powers off).
//! 4. Prints `AUTHVAR: done` and powers off.
//!
//! `\runtime.bin` (same records), when present, replaces all of that: it
//! is read and deleted, then the application calls ExitBootServices and
//! makes each SetVariable as the OS would at runtime, prints
//! `AUTHVAR: runtime set <name> #<index> status=<hex>` straight to COM1
//! (the console is gone), and resets warm: the next start shows what
//! survived.
//!
//! The host test (tests/tests/secure_boot_updates.rs) makes the payloads.

#![no_std]
#![no_main]

use core::ffi::c_void;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::{file, loaded_image, simple_file_system};

use efi_con::ucs2;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

const GLOBAL: efi::Guid = efi::Guid::from_fields(
    0x8be4_df61,
    0x93ca,
    0x11d2,
    0xaa,
    0x0d,
    &[0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);
const IMAGE_SECURITY_DATABASE: efi::Guid = efi::Guid::from_fields(
    0xd719_b2cb,
    0x3d3a,
    0x4596,
    0xa3,
    0xbc,
    &[0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f],
);

/// Largest file read: a few signed payloads, or the hello application.
const MAX_FILE: usize = 256 * 1024;
static mut BUFFER: [u8; MAX_FILE] = [0; MAX_FILE];

struct App<'a> {
    st: &'a efi::SystemTable,
    bs: &'a efi::BootServices,
    rt: &'a efi::RuntimeServices,
    image: efi::Handle,
}

impl App<'_> {
    fn print(&self, args: core::fmt::Arguments) {
        efi_con::print(self.st.con_out, args);
    }

    /// The root directory of the volume this image came from.
    fn root(&self) -> Option<*mut file::Protocol> {
        let mut guid = loaded_image::PROTOCOL_GUID;
        let mut iface: *mut c_void = ptr::null_mut();
        if (self.bs.handle_protocol)(self.image, &mut guid, &mut iface).is_error() {
            return None;
        }
        // SAFETY: HandleProtocol succeeded: our own LoadedImage protocol.
        let loaded = unsafe { (iface as *const loaded_image::Protocol).as_ref()? };
        let mut guid = simple_file_system::PROTOCOL_GUID;
        let mut fs: *mut c_void = ptr::null_mut();
        if (self.bs.handle_protocol)(loaded.device_handle, &mut guid, &mut fs).is_error() {
            return None;
        }
        let fs = fs.cast::<simple_file_system::Protocol>();
        let mut root: *mut file::Protocol = ptr::null_mut();
        // SAFETY: `fs` is the SimpleFileSystem interface of our device.
        let status = unsafe { ((*fs).open_volume)(fs, &mut root) };
        (!status.is_error() && !root.is_null()).then_some(root)
    }

    /// Reads `name` (NUL-terminated) into BUFFER; deletes it afterwards
    /// when `delete`. None when it does not exist.
    fn read(&self, root: *mut file::Protocol, name: &[u16], delete: bool) -> Option<&'static [u8]> {
        let mut handle: *mut file::Protocol = ptr::null_mut();
        let mut name_buf = [0u16; 32];
        name_buf[..name.len()].copy_from_slice(name);
        // SAFETY: `root` is an open directory handle.
        let status = unsafe {
            ((*root).open)(
                root,
                &mut handle,
                name_buf.as_mut_ptr(),
                file::MODE_READ | file::MODE_WRITE,
                0,
            )
        };
        if status.is_error() || handle.is_null() {
            return None;
        }
        // SAFETY: the single-threaded application is the only user of
        // BUFFER, and each returned slice is used before the next read.
        let buffer = unsafe { &mut *ptr::addr_of_mut!(BUFFER) };
        let mut total = 0;
        loop {
            let mut size = MAX_FILE - total;
            // SAFETY: `handle` is open; the buffer holds `size` bytes.
            let status =
                unsafe { ((*handle).read)(handle, &mut size, buffer[total..].as_mut_ptr().cast()) };
            if status.is_error() || size == 0 || total + size >= MAX_FILE {
                total += size.min(MAX_FILE - total);
                break;
            }
            total += size;
        }
        // SAFETY: `handle` is open; Delete and Close both end it.
        unsafe {
            if delete {
                ((*handle).delete)(handle);
            } else {
                ((*handle).close)(handle);
            }
        }
        Some(&buffer[..total])
    }

    fn set_from_file(&self, bytes: &[u8]) {
        let mut rest = bytes;
        let mut index = 0;
        while let Some((name, attributes, payload, after)) = split_record(rest) {
            rest = after;
            let text = core::str::from_utf8(name).unwrap_or("?");
            let status = self.set(name, attributes, payload);
            self.print(format_args!(
                "AUTHVAR: set {text} #{index} status={:#x}\n",
                status.as_usize()
            ));
            index += 1;
        }
    }

    fn guid(name: &[u8]) -> efi::Guid {
        if name == b"PK" || name == b"KEK" {
            GLOBAL
        } else {
            IMAGE_SECURITY_DATABASE
        }
    }

    fn set(&self, name: &[u8], attributes: u32, data: &[u8]) -> efi::Status {
        let mut name16 = [0u16; 8];
        for (unit, &byte) in name16.iter_mut().zip(name.iter().take(7)) {
            *unit = u16::from(byte);
        }
        let mut guid = Self::guid(name);
        (self.rt.set_variable)(
            name16.as_mut_ptr(),
            &mut guid,
            attributes,
            data.len(),
            data.as_ptr().cast_mut().cast(),
        )
    }

    /// The size of variable `name`, None when absent.
    fn size(&self, name: &[u8], guid: efi::Guid) -> Option<usize> {
        let mut name16 = [0u16; 16];
        for (unit, &byte) in name16.iter_mut().zip(name.iter().take(15)) {
            *unit = u16::from(byte);
        }
        let mut guid = guid;
        let mut size = 0usize;
        let status = (self.rt.get_variable)(
            name16.as_mut_ptr(),
            &mut guid,
            ptr::null_mut(),
            &mut size,
            ptr::null_mut(),
        );
        (status == efi::Status::BUFFER_TOO_SMALL || status == efi::Status::SUCCESS).then_some(size)
    }

    fn byte(&self, name: &[u8]) -> u8 {
        let mut name16 = [0u16; 16];
        for (unit, &byte) in name16.iter_mut().zip(name.iter().take(15)) {
            *unit = u16::from(byte);
        }
        let mut guid = GLOBAL;
        let mut value = [0xffu8; 1];
        let mut size = 1usize;
        let status = (self.rt.get_variable)(
            name16.as_mut_ptr(),
            &mut guid,
            ptr::null_mut(),
            &mut size,
            value.as_mut_ptr().cast(),
        );
        if status.is_error() { 0xff } else { value[0] }
    }

    fn report(&self) {
        self.print(format_args!(
            "AUTHVAR: SetupMode={} SecureBoot={}\n",
            self.byte(b"SetupMode"),
            self.byte(b"SecureBoot")
        ));
        for name in [&b"PK"[..], b"KEK", b"db", b"dbx", b"dbt"] {
            let text = core::str::from_utf8(name).unwrap_or("?");
            match self.size(name, Self::guid(name)) {
                Some(size) => self.print(format_args!("AUTHVAR: {text} size={size}\n")),
                None => self.print(format_args!("AUTHVAR: {text} absent\n")),
            }
        }
    }

    fn load_hello(&self, bytes: &[u8]) {
        let mut child: efi::Handle = ptr::null_mut();
        let status = (self.bs.load_image)(
            efi::Boolean::FALSE,
            self.image,
            ptr::null_mut(),
            bytes.as_ptr().cast_mut().cast(),
            bytes.len(),
            &mut child,
        );
        self.print(format_args!(
            "AUTHVAR: LoadImage hello status={:#x}\n",
            status.as_usize()
        ));
        if status == efi::Status::SUCCESS {
            (self.bs.start_image)(child, ptr::null_mut(), ptr::null_mut());
        } else if !child.is_null() {
            (self.bs.unload_image)(child);
        }
    }
}

const PAYLOADS: [u16; 12] = ucs2("authvar.bin");
const RUNTIME_PAYLOADS: [u16; 12] = ucs2("runtime.bin");

/// Writes `text` to COM1 (port 0x3f8) by polling, as nothing else prints
/// after ExitBootServices.
fn com1(text: &[u8]) {
    for &byte in text {
        // SAFETY: port I/O on the 16550 UART QEMU puts at 0x3f8; reading
        // the line status register and writing the data register have no
        // other effect.
        unsafe {
            loop {
                let status: u8;
                core::arch::asm!("in al, dx", out("al") status, in("dx") 0x3fdu16);
                if status & 0x20 != 0 {
                    break;
                }
            }
            core::arch::asm!("out dx, al", in("al") byte, in("dx") 0x3f8u16);
        }
    }
}

/// A line buffer that formats into COM1.
struct Com1Line {
    buf: [u8; 128],
    len: usize,
}

impl core::fmt::Write for Com1Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

fn com1_print(args: core::fmt::Arguments) {
    use core::fmt::Write;
    let mut line = Com1Line {
        buf: [0; 128],
        len: 0,
    };
    let _ = line.write_fmt(args);
    com1(&line.buf[..line.len]);
}

static mut MEMORY_MAP: [u8; 64 * 1024] = [0; 64 * 1024];

impl App<'_> {
    /// ExitBootServices with a fresh map key (UEFI 2.10 §7.4.6).
    fn exit_boot_services(&self) -> bool {
        for _ in 0..4 {
            // SAFETY: the single-threaded application is the only user.
            let map = unsafe { &mut *ptr::addr_of_mut!(MEMORY_MAP) };
            let mut size = map.len();
            let mut key = 0usize;
            let mut descriptor_size = 0usize;
            let mut version = 0u32;
            let status = (self.bs.get_memory_map)(
                &mut size,
                map.as_mut_ptr().cast(),
                &mut key,
                &mut descriptor_size,
                &mut version,
            );
            if status.is_error() {
                continue;
            }
            if !(self.bs.exit_boot_services)(self.image, key).is_error() {
                return true;
            }
        }
        false
    }

    /// The records of `bytes` as runtime SetVariables; never returns.
    fn runtime_writes(&self, bytes: &[u8]) -> ! {
        if !self.exit_boot_services() {
            self.print(format_args!("AUTHVAR: ExitBootServices failed\n"));
        }
        let mut rest = bytes;
        let mut index = 0;
        while let Some((name, attributes, payload, after)) = split_record(rest) {
            rest = after;
            let status = self.set(name, attributes, payload);
            com1_print(format_args!(
                "AUTHVAR: runtime set {} #{index} status={:#x}\r\n",
                core::str::from_utf8(name).unwrap_or("?"),
                status.as_usize()
            ));
            index += 1;
        }
        (self.rt.reset_system)(efi::RESET_WARM, efi::Status::SUCCESS, 0, ptr::null_mut());
        loop {
            core::hint::spin_loop();
        }
    }
}

/// One `\authvar.bin` record: name, attributes, payload, and the bytes after it.
type Record<'a> = (&'a [u8], u32, &'a [u8], &'a [u8]);

fn split_record(bytes: &[u8]) -> Option<Record<'_>> {
    let (&len, after) = bytes.split_first()?;
    let (name, after) = after.split_at_checked(usize::from(len))?;
    let (attributes, after) = after.split_first_chunk::<4>()?;
    let (size, after) = after.split_first_chunk::<4>()?;
    let (payload, after) = after.split_at_checked(u32::from_le_bytes(*size) as usize)?;
    Some((name, u32::from_le_bytes(*attributes), payload, after))
}
const HELLO: [u16; 10] = ucs2("hello.efi");

#[unsafe(export_name = "efi_main")]
extern "efiapi" fn efi_main(image: efi::Handle, st: *mut efi::SystemTable) -> efi::Status {
    // SAFETY: the firmware passes a valid system table (UEFI 2.10 §4.1);
    // null is rejected.
    let Some(st) = (unsafe { st.as_ref() }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    // SAFETY: the services pointers of a valid system table are valid
    // (UEFI 2.10 §4.4, §4.5); null is rejected.
    let (Some(bs), Some(rt)) = (unsafe { st.boot_services.as_ref() }, unsafe {
        st.runtime_services.as_ref()
    }) else {
        return efi::Status::INVALID_PARAMETER;
    };
    let app = App { st, bs, rt, image };
    match app.root() {
        Some(root) => {
            if let Some(bytes) = app.read(root, &RUNTIME_PAYLOADS, true) {
                app.runtime_writes(bytes);
            }
            if let Some(bytes) = app.read(root, &PAYLOADS, true) {
                app.set_from_file(bytes);
            }
            app.report();
            if let Some(bytes) = app.read(root, &HELLO, false) {
                app.load_hello(bytes);
            }
        }
        None => app.print(format_args!("AUTHVAR: no volume\n")),
    }
    app.print(format_args!("AUTHVAR: done\n"));
    (rt.reset_system)(
        efi::RESET_SHUTDOWN,
        efi::Status::SUCCESS,
        0,
        ptr::null_mut(),
    );
    efi::Status::ABORTED
}
