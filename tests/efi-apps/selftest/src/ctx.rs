//! Test context: firmware tables, ConOut reporting and the pass/fail tally.

use core::ffi::c_void;
use core::fmt::{self, Write};
use core::ptr;

use r_efi::efi;
use r_efi::protocols::simple_text_output;

/// Everything a test needs: the tables handed to `efi_main` and the running tally.
pub struct Ctx {
    pub image: efi::Handle,
    pub st: &'static efi::SystemTable,
    pub bs: &'static efi::BootServices,
    pub rt: &'static efi::RuntimeServices,
    passed: u32,
    failed: u32,
}

impl Ctx {
    pub fn new(image: efi::Handle, st: &'static efi::SystemTable) -> Option<Self> {
        // SAFETY: the firmware hands `efi_main` a valid system table whose service table
        // pointers stay valid until ExitBootServices (UEFI 2.10 §4.3); null is checked.
        let bs = unsafe { st.boot_services.as_ref()? };
        // SAFETY: as above, the runtime services table lives for the whole boot.
        let rt = unsafe { st.runtime_services.as_ref()? };
        Some(Self {
            image,
            st,
            bs,
            rt,
            passed: 0,
            failed: 0,
        })
    }

    pub fn tally(&self) -> (u32, u32) {
        (self.passed, self.failed)
    }

    /// Prints formatted text on ConOut (UEFI 2.10 §12.4.3 OutputString), `\n` becoming CRLF.
    pub fn print(&self, args: fmt::Arguments) {
        let mut out = ConOut {
            proto: self.st.con_out,
            buf: [0; 128],
            len: 0,
        };
        // ConOut errors cannot be reported anywhere else; ignoring them is all we can do.
        let _ = out.write_fmt(args);
        out.flush();
    }

    pub fn pass(&mut self, name: &str) {
        self.passed += 1;
        self.print(format_args!("PASS {name}\n"));
    }

    pub fn fail(&mut self, name: &str, detail: fmt::Arguments) {
        self.failed += 1;
        self.print(format_args!("FAIL {name}: {detail}\n"));
    }

    /// Records one check; returns `ok` so callers can skip dependent checks.
    pub fn check(&mut self, name: &str, ok: bool, detail: fmt::Arguments) -> bool {
        if ok {
            self.pass(name);
        } else {
            self.fail(name, detail);
        }
        ok
    }

    /// Records a check that a service returned one of the `allowed` statuses.
    pub fn expect(&mut self, name: &str, got: efi::Status, allowed: &[efi::Status]) -> bool {
        if allowed.contains(&got) {
            self.pass(name);
            true
        } else {
            self.fail(
                name,
                format_args!("got {}, want {}", St(got), StList(allowed)),
            );
            false
        }
    }

    /// Checks for EFI_SUCCESS.
    pub fn ok(&mut self, name: &str, got: efi::Status) -> bool {
        self.expect(name, got, &[efi::Status::SUCCESS])
    }

    pub fn alloc_pool(&self, size: usize) -> Option<*mut u8> {
        let mut buf: *mut c_void = ptr::null_mut();
        let status = (self.bs.allocate_pool)(efi::LOADER_DATA, size, &mut buf);
        (status == efi::Status::SUCCESS && !buf.is_null()).then_some(buf.cast())
    }

    pub fn free_pool<T>(&self, buf: *mut T) {
        if !buf.is_null() {
            let _ = (self.bs.free_pool)(buf.cast());
        }
    }

    pub fn handle_protocol<T>(&self, handle: efi::Handle, guid: &efi::Guid) -> Option<*mut T> {
        let mut guid = *guid;
        let mut iface: *mut c_void = ptr::null_mut();
        let status = (self.bs.handle_protocol)(handle, &mut guid, &mut iface);
        (status == efi::Status::SUCCESS && !iface.is_null()).then_some(iface.cast())
    }

    /// Finds a configuration table by GUID (UEFI 2.10 §4.6).
    pub fn config_table(&self, guid: &efi::Guid) -> Option<*mut c_void> {
        if self.st.configuration_table.is_null() {
            return None;
        }
        // SAFETY: the system table advertises `number_of_table_entries` entries at
        // `configuration_table` (UEFI 2.10 §4.3); null was excluded above.
        let tables = unsafe {
            core::slice::from_raw_parts(
                self.st.configuration_table,
                self.st.number_of_table_entries,
            )
        };
        tables
            .iter()
            .find(|t| t.vendor_guid == *guid)
            .map(|t| t.vendor_table)
    }

    /// Whether the EFI_RT_PROPERTIES_TABLE (UEFI 2.10 §4.6.2) declares the runtime service
    /// `bit` unsupported; without the table every service must be supported.
    pub fn rt_unsupported(&self, bit: u32) -> bool {
        let Some(table) = self.config_table(&efi::RT_PROPERTIES_TABLE_GUID) else {
            return false;
        };
        // SAFETY: a table published under RT_PROPERTIES_TABLE_GUID has this layout
        // (UEFI 2.10 §4.6.2); read unaligned since config tables carry no alignment promise.
        let props = unsafe { ptr::read_unaligned(table.cast::<efi::RtPropertiesTable>()) };
        props.runtime_services_supported & bit == 0
    }
}

/// Small buffered UCS-2 writer onto a Simple Text Output protocol.
struct ConOut {
    proto: *mut simple_text_output::Protocol,
    buf: [u16; 128],
    len: usize,
}

impl ConOut {
    fn push(&mut self, unit: u16) {
        if self.len + 2 > self.buf.len() {
            self.flush();
        }
        self.buf[self.len] = unit;
        self.len += 1;
    }

    fn flush(&mut self) {
        if self.len == 0 || self.proto.is_null() {
            self.len = 0;
            return;
        }
        self.buf[self.len] = 0;
        // SAFETY: `proto` is the system table's non-null ConOut, valid during boot services.
        let output = unsafe { (*self.proto).output_string };
        let _ = output(self.proto, self.buf.as_mut_ptr());
        self.len = 0;
    }
}

impl Write for ConOut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '\n' {
                self.push(u16::from(b'\r'));
            }
            // ConOut only takes UCS-2 (UEFI 2.10 §12.4); replace anything outside the BMP.
            let unit = u16::try_from(u32::from(c)).unwrap_or(u16::from(b'?'));
            self.push(unit);
        }
        Ok(())
    }
}

/// Status with a readable name.
pub struct St(pub efi::Status);

impl fmt::Display for St {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: &[(efi::Status, &str)] = &[
            (efi::Status::SUCCESS, "SUCCESS"),
            (efi::Status::LOAD_ERROR, "LOAD_ERROR"),
            (efi::Status::INVALID_PARAMETER, "INVALID_PARAMETER"),
            (efi::Status::UNSUPPORTED, "UNSUPPORTED"),
            (efi::Status::BAD_BUFFER_SIZE, "BAD_BUFFER_SIZE"),
            (efi::Status::BUFFER_TOO_SMALL, "BUFFER_TOO_SMALL"),
            (efi::Status::NOT_READY, "NOT_READY"),
            (efi::Status::DEVICE_ERROR, "DEVICE_ERROR"),
            (efi::Status::WRITE_PROTECTED, "WRITE_PROTECTED"),
            (efi::Status::OUT_OF_RESOURCES, "OUT_OF_RESOURCES"),
            (efi::Status::NOT_FOUND, "NOT_FOUND"),
            (efi::Status::ACCESS_DENIED, "ACCESS_DENIED"),
            (efi::Status::ALREADY_STARTED, "ALREADY_STARTED"),
            (efi::Status::ABORTED, "ABORTED"),
            (efi::Status::SECURITY_VIOLATION, "SECURITY_VIOLATION"),
        ];
        match NAMES.iter().find(|(s, _)| *s == self.0) {
            Some((_, name)) => f.write_str(name),
            None => write!(f, "{:#x}", self.0.as_usize()),
        }
    }
}

struct StList<'a>(&'a [efi::Status]);

impl fmt::Display for StList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            write!(f, "{}", St(*s))?;
        }
        Ok(())
    }
}

/// Encodes an ASCII string literal as a NUL-terminated UCS-2 array at compile time.
pub const fn ucs2<const N: usize>(s: &str) -> [u16; N] {
    let bytes = s.as_bytes();
    let mut out = [0u16; N];
    let mut i = 0;
    while i < bytes.len() && i + 1 < N {
        out[i] = bytes[i] as u16;
        i += 1;
    }
    out
}
