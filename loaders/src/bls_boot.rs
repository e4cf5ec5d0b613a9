//! The built-in Boot Loader Specification Type #1 boot: reads
//! `/loader/loader.conf` and `/loader/entries/*.conf` from each file system
//! through EFI_FILE_PROTOCOL (UEFI 2.10 §13.5), picks the default entry
//! (`crate::bls`), publishes its initrds through the Linux initrd LoadFile2
//! protocol (`crate::initrd`) and starts its kernel (a PE with the Linux EFI
//! stub) with the entry's `options` as LoadOptions (§9.1 EFI_LOADED_IMAGE).

use crate::bls::{self, BootEntry, LoaderConf};
use crate::boot_manager::{file_device_path, status_name};
use crate::initrd;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::fmt;
use core::mem::offset_of;
use efi::handles::HandleId;
use efi::protocol_services as ps;
use log::{info, warn};
use r_efi::efi::Status;
use r_efi::protocols::{device_path, file, loaded_image, simple_file_system};

const LOADER_CONF: &str = "\\loader\\loader.conf";
const ENTRIES_DIR: &str = "\\loader\\entries";
/// Entry and loader.conf files are a few lines; anything larger is not one.
const MAX_CONFIG_SIZE: u64 = 64 * 1024;

/// Why an entry did not boot.
#[derive(Debug)]
pub enum BlsBootError {
    /// A file named by the entry could not be read.
    Read { path: String, status: Status },
    /// The file does not fit in firmware memory.
    TooLarge { path: String, size: u64 },
    /// The entry names neither `linux` nor `efi` (parse_entry rejects these,
    /// kept for completeness).
    NoKernel,
    /// LoadImage refused the kernel.
    Load { path: String, status: Status },
    /// The initrd protocol could not be installed.
    Initrd(Status),
    /// The kernel returned from StartImage.
    Returned(Status),
}

impl fmt::Display for BlsBootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlsBootError::Read { path, status } => {
                write!(f, "cannot read {path}: {}", status_name(*status))
            }
            BlsBootError::TooLarge { path, size } => {
                write!(f, "{path} ({size} bytes) does not fit in memory")
            }
            BlsBootError::NoKernel => write!(f, "no linux or efi line"),
            BlsBootError::Load { path, status } => {
                write!(f, "cannot load {path}: {}", status_name(*status))
            }
            BlsBootError::Initrd(status) => {
                write!(f, "cannot publish the initrd: {}", status_name(*status))
            }
            BlsBootError::Returned(status) => {
                write!(f, "the kernel returned: {}", status_name(*status))
            }
        }
    }
}

/// A BLS path (`/`-separated, relative to the partition root) as an EFI file
/// name (`\`-separated, absolute; UEFI 2.10 §13.5.2 Open).
pub fn efi_path(bls_path: &str) -> String {
    let mut path = String::with_capacity(bls_path.len() + 1);
    for part in bls_path.split(['/', '\\']).filter(|p| !p.is_empty()) {
        path.push('\\');
        path.push_str(part);
    }
    if path.is_empty() {
        path.push('\\');
    }
    path
}

/// Name and directory flag of one EFI_FILE_INFO record (UEFI 2.10 §13.5.16),
/// as Read on a directory returns them (§13.5.5).
pub fn parse_file_info(record: &[u8]) -> Option<(String, bool)> {
    let attribute_at = offset_of!(file::Info, attribute);
    let attribute = u64::from_le_bytes(
        record
            .get(attribute_at..attribute_at + 8)?
            .try_into()
            .ok()?,
    );
    let units: Vec<u16> = record
        .get(offset_of!(file::Info, file_name)..)?
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&c| c != 0)
        .collect();
    let name = String::from_utf16(&units).ok()?;
    Some((name, attribute & file::DIRECTORY != 0))
}

/// Entry file names worth parsing: visible `*.conf` files.
fn is_entry_file(name: &str, is_dir: bool) -> bool {
    !is_dir && !name.starts_with('.') && name.ends_with(".conf")
}

/// The order to try a volume's entries in: the default first, then the
/// rest in menu order.
pub fn boot_order(entries: &[BootEntry], conf: &LoaderConf) -> Vec<usize> {
    let default = bls::select_default(entries, conf);
    default
        .into_iter()
        .chain((0..entries.len()).filter(|&i| Some(i) != default))
        .collect()
}

/// An open EFI_FILE_PROTOCOL instance, closed on drop.
struct OpenFile(*mut file::Protocol);

impl Drop for OpenFile {
    fn drop(&mut self) {
        // SAFETY: `self.0` is an open file handle the protocol gave us and
        // nobody else closes it.
        unsafe { ((*self.0).close)(self.0) };
    }
}

impl OpenFile {
    /// The root directory of the volume on `fs` (§13.4.2 OpenVolume).
    fn open_volume(fs: HandleId) -> Result<OpenFile, Status> {
        let sfs = ps::get_protocol::<simple_file_system::Protocol>(
            fs,
            &simple_file_system::PROTOCOL_GUID,
        )
        .ok_or(Status::NOT_FOUND)?;
        let mut root: *mut file::Protocol = core::ptr::null_mut();
        // SAFETY: `sfs` is an installed SimpleFileSystem interface; the
        // out-pointer is valid.
        let status = unsafe { ((*sfs).open_volume)(sfs, &mut root) };
        if status.is_error() {
            return Err(status);
        }
        if root.is_null() {
            return Err(Status::DEVICE_ERROR);
        }
        Ok(OpenFile(root))
    }

    /// Opens `path` (absolute, `\`-separated) for reading (§13.5.2).
    fn open(&self, path: &str) -> Result<OpenFile, Status> {
        let mut name: Vec<u16> = path.encode_utf16().chain(core::iter::once(0)).collect();
        let mut opened: *mut file::Protocol = core::ptr::null_mut();
        // SAFETY: `self.0` is an open directory; the name is NUL-terminated
        // and the out-pointer valid.
        let status =
            unsafe { ((*self.0).open)(self.0, &mut opened, name.as_mut_ptr(), file::MODE_READ, 0) };
        if status.is_error() {
            return Err(status);
        }
        if opened.is_null() {
            return Err(Status::DEVICE_ERROR);
        }
        Ok(OpenFile(opened))
    }

    /// Reads into `buffer`, growing it when the protocol asks for more room;
    /// returns the bytes read (0 at the end of a directory).
    fn read_record(&self, buffer: &mut Vec<u8>) -> Result<usize, Status> {
        loop {
            let mut size = buffer.len();
            // SAFETY: `self.0` is open; `buffer` holds `size` writable bytes.
            let status =
                unsafe { ((*self.0).read)(self.0, &mut size, buffer.as_mut_ptr() as *mut c_void) };
            if status == Status::BUFFER_TOO_SMALL && size > buffer.len() {
                buffer.resize(size, 0);
                continue;
            }
            return if status.is_error() {
                Err(status)
            } else {
                Ok(size)
            };
        }
    }

    /// The file's size from its EFI_FILE_INFO (§13.5.12 GetInfo).
    fn size(&self) -> Result<u64, Status> {
        let mut info = vec![0u8; 256];
        loop {
            let mut size = info.len();
            let mut guid = file::INFO_ID;
            // SAFETY: `self.0` is open; `info` holds `size` writable bytes.
            let status = unsafe {
                ((*self.0).get_info)(
                    self.0,
                    &mut guid,
                    &mut size,
                    info.as_mut_ptr() as *mut c_void,
                )
            };
            if status == Status::BUFFER_TOO_SMALL && size > info.len() {
                info.resize(size, 0);
                continue;
            }
            if status.is_error() {
                return Err(status);
            }
            let at = offset_of!(file::Info, file_size);
            let bytes = info.get(at..at + 8).ok_or(Status::DEVICE_ERROR)?;
            return Ok(u64::from_le_bytes(
                bytes.try_into().map_err(|_| Status::DEVICE_ERROR)?,
            ));
        }
    }

    /// Appends the whole file to `out`.
    fn read_to_end(&self, out: &mut Vec<u8>, limit: u64) -> Result<(), ReadError> {
        let size = self.size().map_err(ReadError::Status)?;
        if size > limit {
            return Err(ReadError::TooLarge(size));
        }
        let len = usize::try_from(size).map_err(|_| ReadError::TooLarge(size))?;
        out.try_reserve_exact(len)
            .map_err(|_| ReadError::TooLarge(size))?;
        let start = out.len();
        out.resize(start + len, 0);
        let mut done = 0;
        while done < len {
            let mut chunk = len - done;
            // SAFETY: `self.0` is open; `out[start + done..]` holds `chunk` bytes.
            let status = unsafe {
                ((*self.0).read)(
                    self.0,
                    &mut chunk,
                    out[start + done..].as_mut_ptr() as *mut c_void,
                )
            };
            if status.is_error() {
                out.truncate(start);
                return Err(ReadError::Status(status));
            }
            if chunk == 0 {
                // Shorter than its directory entry said: a damaged file.
                out.truncate(start);
                return Err(ReadError::Status(Status::VOLUME_CORRUPTED));
            }
            done += chunk;
        }
        Ok(())
    }

    /// Names of the plain files in this directory.
    fn file_names(&self) -> Result<Vec<String>, Status> {
        let mut names = Vec::new();
        let mut record = vec![0u8; 512];
        loop {
            let len = self.read_record(&mut record)?;
            if len == 0 {
                return Ok(names);
            }
            if let Some((name, is_dir)) = parse_file_info(&record[..len])
                && is_entry_file(&name, is_dir)
            {
                names.push(name);
            }
        }
    }
}

enum ReadError {
    Status(Status),
    TooLarge(u64),
}

/// Reads `path` from the volume `root` into `out`, appending.
fn read_file(
    root: &OpenFile,
    path: &str,
    out: &mut Vec<u8>,
    limit: u64,
) -> Result<(), BlsBootError> {
    let file = root.open(path).map_err(|status| BlsBootError::Read {
        path: path.to_string(),
        status,
    })?;
    file.read_to_end(out, limit).map_err(|e| match e {
        ReadError::Status(status) => BlsBootError::Read {
            path: path.to_string(),
            status,
        },
        ReadError::TooLarge(size) => BlsBootError::TooLarge {
            path: path.to_string(),
            size,
        },
    })
}

/// loader.conf and the parsed, sorted entries of the volume on `fs`.
fn read_entries(root: &OpenFile) -> (LoaderConf, Vec<BootEntry>) {
    let mut text = Vec::new();
    let conf = match read_file(root, LOADER_CONF, &mut text, MAX_CONFIG_SIZE) {
        Ok(()) => bls::parse_loader_conf(&text).unwrap_or_else(|e| {
            warn!("bls: ignoring {LOADER_CONF}: {e}");
            LoaderConf::default()
        }),
        Err(_) => LoaderConf::default(),
    };
    let names = match root.open(ENTRIES_DIR).and_then(|dir| dir.file_names()) {
        Ok(names) => names,
        Err(_) => return (conf, Vec::new()),
    };
    let mut entries = Vec::new();
    for name in names {
        let path = alloc::format!("{ENTRIES_DIR}\\{name}");
        text.clear();
        if let Err(e) = read_file(root, &path, &mut text, MAX_CONFIG_SIZE) {
            warn!("bls: skipping {path}: {e}");
            continue;
        }
        match bls::parse_entry(&name, &text) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(e) => warn!("bls: skipping {path}: {e}"),
        }
    }
    bls::sort_entries(&mut entries);
    (conf, entries)
}

/// Tries the BLS Type #1 entries of every file system, the default entry of
/// each first. Returns when none booted.
pub fn run() {
    for fs in ps::handles_with(&simple_file_system::PROTOCOL_GUID) {
        let Ok(root) = OpenFile::open_volume(fs) else {
            continue;
        };
        let (conf, entries) = read_entries(&root);
        for index in boot_order(&entries, &conf) {
            let entry = &entries[index];
            let title = entry.display_title();
            if let Err(e) = boot_entry(fs, &root, entry) {
                warn!("BLS entry '{title}' ({}): {e}", entry.file_name);
                initrd::uninstall();
            }
        }
    }
}

/// Boots one entry; returns only on failure.
fn boot_entry(fs: HandleId, root: &OpenFile, entry: &BootEntry) -> Result<(), BlsBootError> {
    let kernel = efi_path(
        entry
            .linux
            .as_deref()
            .or(entry.efi.as_deref())
            .ok_or(BlsBootError::NoKernel)?,
    );

    // Several initrds are concatenated, each on a 4-byte boundary.
    let mut initrd_image = Vec::new();
    for initrd_path in &entry.initrd {
        let path = efi_path(initrd_path);
        read_file(root, &path, &mut initrd_image, u64::MAX)?;
        initrd::pad_for_next(&mut initrd_image);
    }
    if !entry.initrd.is_empty() {
        initrd::install(initrd_image).map_err(BlsBootError::Initrd)?;
    }

    // LoadImage reads the kernel itself through the ESP's SimpleFileSystem,
    // so the image gets the ESP as its device and the file as its path.
    let load_error = |status| BlsBootError::Load {
        path: kernel.clone(),
        status,
    };
    let mut path = file_device_path(fs, &kernel).ok_or(load_error(Status::NOT_FOUND))?;
    let mut handle: r_efi::efi::Handle = core::ptr::null_mut();
    let status = efi::image::load_image(
        false.into(),
        efi::image::firmware_image_handle() as r_efi::efi::Handle,
        path.as_mut_ptr() as *mut device_path::Protocol,
        core::ptr::null_mut(),
        0,
        &mut handle,
    );
    if status.is_error() {
        return Err(load_error(status));
    }
    let handle = handle as HandleId;

    // The EFI stub takes its command line from LoadOptions as UCS-2 (§9.1).
    let mut options: Vec<u16> = entry
        .options
        .encode_utf16()
        .chain(core::iter::once(0))
        .collect();
    if let Some(loaded) =
        ps::get_protocol::<loaded_image::Protocol>(handle, &loaded_image::PROTOCOL_GUID)
    {
        // SAFETY: `loaded` is the LoadedImage protocol of the image just
        // loaded, not yet started, so nothing else accesses it; `options`
        // outlives the image's run (start returns before it is dropped).
        unsafe {
            (*loaded).load_options = options.as_mut_ptr() as *mut c_void;
            (*loaded).load_options_size = (options.len() * 2) as u32;
        }
    }
    info!("booting BLS entry '{}'", entry.display_title());
    let status = efi::image::start(handle);
    drop(options);
    Err(BlsBootError::Returned(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bls_paths_become_absolute_efi_paths() {
        assert_eq!(efi_path("/vmlinuz-6.1"), "\\vmlinuz-6.1");
        assert_eq!(efi_path("debian/6.1/linux"), "\\debian\\6.1\\linux");
        assert_eq!(efi_path("//a//b/"), "\\a\\b");
        assert_eq!(efi_path(""), "\\");
    }

    fn info_record(name: &str, attribute: u64) -> Vec<u8> {
        let name_at = offset_of!(file::Info, file_name);
        let mut record = vec![0u8; name_at];
        let attribute_at = offset_of!(file::Info, attribute);
        record[attribute_at..attribute_at + 8].copy_from_slice(&attribute.to_le_bytes());
        for unit in name.encode_utf16().chain(core::iter::once(0)) {
            record.extend_from_slice(&unit.to_le_bytes());
        }
        let len = record.len() as u64;
        record[..8].copy_from_slice(&len.to_le_bytes());
        record
    }

    #[test]
    fn file_info_records_give_names_and_directory_flag() {
        assert_eq!(
            parse_file_info(&info_record("debian.conf", file::ARCHIVE)),
            Some(("debian.conf".to_string(), false))
        );
        assert_eq!(
            parse_file_info(&info_record("sub", file::DIRECTORY)),
            Some(("sub".to_string(), true))
        );
        assert_eq!(parse_file_info(&[0u8; 10]), None);
        // Unpaired surrogate: not a name we can use.
        let mut bad = info_record("", 0);
        let name_at = offset_of!(file::Info, file_name);
        bad.splice(name_at..name_at, [0x00, 0xd8]);
        assert_eq!(parse_file_info(&bad), None);
    }

    #[test]
    fn only_visible_conf_files_are_entries() {
        assert!(is_entry_file("debian.conf", false));
        assert!(!is_entry_file("debian.conf", true));
        assert!(!is_entry_file(".debian.conf", false));
        assert!(!is_entry_file("debian.conf.bak", false));
    }

    fn entry(id: &str, linux: &str) -> BootEntry {
        bls::parse_entry(
            &alloc::format!("{id}.conf"),
            alloc::format!("linux {linux}\n").as_bytes(),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn default_entry_is_tried_first_then_menu_order() {
        let mut entries = vec![
            entry("debian-6.1", "/a"),
            entry("debian-6.12", "/b"),
            entry("rescue", "/c"),
        ];
        bls::sort_entries(&mut entries);
        let ids = |order: Vec<usize>| -> Vec<String> {
            order.into_iter().map(|i| entries[i].id.clone()).collect()
        };
        // Without a default: menu order (ids by descending version).
        assert_eq!(
            ids(boot_order(&entries, &LoaderConf::default())),
            ["rescue", "debian-6.12", "debian-6.1"]
        );
        let conf = LoaderConf {
            default: Some("debian-6.1*".to_string()),
            timeout: None,
        };
        // `debian-6.1*` matches both; the first in menu order wins.
        assert_eq!(
            ids(boot_order(&entries, &conf)),
            ["debian-6.12", "rescue", "debian-6.1"]
        );
        assert!(boot_order(&[], &conf).is_empty());
    }
}
