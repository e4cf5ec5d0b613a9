//! The built-in Boot Loader Specification boot: reads `/loader/loader.conf`,
//! the Type #1 entries `/loader/entries/*.conf` and the Type #2 unified
//! kernel images `/EFI/Linux/*.efi` (`crate::uki`) of each file system
//! through EFI_FILE_PROTOCOL (UEFI 2.10 §13.5), sorts them together and picks
//! the default (`crate::bls`). A Type #1 kernel with the EFI stub is started
//! as an image with the entry's `options` as LoadOptions (§9.1
//! EFI_LOADED_IMAGE) and its initrds, read into EFI pages, published through
//! the Linux initrd LoadFile2 protocol (`crate::initrd`); a kernel without
//! the stub goes through the Linux boot protocol (`crate::linux_boot`). A
//! UKI is started as it is: its stub carries command line and initrd.

use crate::bls::{self, BootEntry, LoaderConf};
use crate::boot_manager::{file_device_path, status_name};
use crate::initrd;
use crate::pages::PageBuffer;
use crate::uki;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::fmt;
use core::mem::offset_of;
use efi::handles::HandleId;
use efi::protocol_services as ps;
use log::{info, warn};
use platform::memory::MemoryType;
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
    /// The Linux boot protocol could not start the kernel.
    Protocol {
        path: String,
        error: crate::linux_boot::LinuxBootError,
    },
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
            BlsBootError::Protocol { path, error } => {
                write!(
                    f,
                    "cannot boot {path} through the Linux boot protocol: {error}"
                )
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
    let attribute = platform::le::u64_at(record, attribute_at)?;
    let units: Vec<u16> = platform::le::u16_units(record.get(offset_of!(file::Info, file_name)..)?)
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
pub(crate) struct OpenFile(*mut file::Protocol);

impl Drop for OpenFile {
    fn drop(&mut self) {
        // SAFETY: `self.0` is an open file handle the protocol gave us and
        // nobody else closes it.
        unsafe { ((*self.0).close)(self.0) };
    }
}

impl OpenFile {
    /// The root directory of the volume on `fs` (§13.4.2 OpenVolume).
    pub(crate) fn open_volume(fs: HandleId) -> Result<OpenFile, Status> {
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
    pub(crate) fn open(&self, path: &str) -> Result<OpenFile, Status> {
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
    pub(crate) fn size(&self) -> Result<u64, Status> {
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
            return platform::le::u64_at(&info, at).ok_or(Status::DEVICE_ERROR);
        }
    }

    /// Moves the read position to `offset` (§13.5.10 SetPosition).
    pub(crate) fn set_position(&self, offset: u64) -> Result<(), Status> {
        // SAFETY: `self.0` is an open file.
        let status = unsafe { ((*self.0).set_position)(self.0, offset) };
        if status.is_error() {
            Err(status)
        } else {
            Ok(())
        }
    }

    /// Fills `out` from the current position; a file ending early is
    /// VOLUME_CORRUPTED when `exact`, else the bytes read are returned.
    pub(crate) fn read_into(&self, out: &mut [u8], exact: bool) -> Result<usize, Status> {
        let mut done = 0;
        while done < out.len() {
            let mut chunk = out.len() - done;
            // SAFETY: `self.0` is open; `out[done..]` holds `chunk` bytes.
            let status = unsafe {
                ((*self.0).read)(self.0, &mut chunk, out[done..].as_mut_ptr() as *mut c_void)
            };
            if status.is_error() {
                return Err(status);
            }
            if chunk == 0 {
                if exact {
                    // Shorter than its directory entry said: a damaged file.
                    return Err(Status::VOLUME_CORRUPTED);
                }
                break;
            }
            done += chunk;
        }
        Ok(done)
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
        if let Err(status) = self.read_into(&mut out[start..], true) {
            out.truncate(start);
            return Err(ReadError::Status(status));
        }
        Ok(())
    }

    /// Names of the plain files in this directory that `wanted` accepts.
    fn file_names(&self, wanted: fn(&str, bool) -> bool) -> Result<Vec<String>, Status> {
        let mut names = Vec::new();
        let mut record = vec![0u8; 512];
        loop {
            let len = self.read_record(&mut record)?;
            if len == 0 {
                return Ok(names);
            }
            if let Some((name, is_dir)) = parse_file_info(&record[..len])
                && wanted(&name, is_dir)
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
/// The volume's loader.conf; the defaults when it is missing or unreadable.
fn read_loader_conf(root: &OpenFile, text: &mut Vec<u8>) -> LoaderConf {
    match read_file(root, LOADER_CONF, text, MAX_CONFIG_SIZE) {
        Ok(()) => bls::parse_loader_conf(text).unwrap_or_else(|e| {
            warn!("bls: ignoring {LOADER_CONF}: {e}");
            LoaderConf::default()
        }),
        Err(_) => LoaderConf::default(),
    }
}

fn read_entries(root: &OpenFile) -> (LoaderConf, Vec<BootEntry>) {
    let mut text = Vec::new();
    let conf = read_loader_conf(root, &mut text);
    let names = root
        .open(ENTRIES_DIR)
        .and_then(|dir| dir.file_names(is_entry_file))
        .unwrap_or_default();
    let mut entries = read_type2_entries(root);
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

/// Type #2 entries: the unified kernel images in `\EFI\Linux`, described
/// by their `.osrel` and `.uname` sections (read alone, not the whole image).
fn read_type2_entries(root: &OpenFile) -> Vec<BootEntry> {
    let is_candidate = |name: &str, is_dir: bool| !is_dir && bls::type2_candidate(name).is_some();
    let Ok(names) = root
        .open(uki::TYPE2_DIR)
        .and_then(|dir| dir.file_names(is_candidate))
    else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter_map(|name| {
            let path = alloc::format!("{}\\{name}", uki::TYPE2_DIR);
            let (osrel, uname) = match root.open(&path) {
                Ok(file) => (read_section(&file, ".osrel"), read_section(&file, ".uname")),
                Err(_) => (None, None),
            };
            uki::type2_entry(&name, osrel.as_deref(), uname.as_deref())
        })
        .collect()
}

/// The contents of the PE section `name` of `file`, when small and present.
fn read_section(file: &OpenFile, name: &str) -> Option<Vec<u8>> {
    let mut header = vec![0u8; uki::HEADER_READ_SIZE];
    file.set_position(0).ok()?;
    let len = file.read_into(&mut header, false).ok()?;
    header.truncate(len);
    let section = uki::sections(&header)
        .ok()?
        .into_iter()
        .find(|s| s.name == name && s.size <= uki::MAX_METADATA_SIZE)?;
    let mut contents = vec![0u8; section.size as usize];
    file.set_position(u64::from(section.file_offset)).ok()?;
    file.read_into(&mut contents, true).ok()?;
    Some(contents)
}

/// Tries the BLS Type #1 and Type #2 entries of every file system, the default entry of
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

/// loader.conf and the sorted entries of the file system `fs`, for the
/// firmware's boot menu (`crate::menu`); `None` when it cannot be opened.
pub fn volume_entries(fs: HandleId) -> Option<(LoaderConf, Vec<BootEntry>)> {
    let root = OpenFile::open_volume(fs).ok()?;
    Some(read_entries(&root))
}

/// The loader.conf of the file system `fs` alone (None when the volume
/// cannot be opened).
pub fn volume_loader_conf(fs: HandleId) -> Option<LoaderConf> {
    let root = OpenFile::open_volume(fs).ok()?;
    Some(read_loader_conf(&root, &mut Vec::new()))
}

/// Whether `path` (absolute, `\`-separated) exists on the file system `fs`.
pub fn file_exists(fs: HandleId, path: &str) -> bool {
    OpenFile::open_volume(fs).is_ok_and(|root| root.open(path).is_ok())
}

/// Boots `entry` of the file system `fs`; returns only on failure.
pub fn boot(fs: HandleId, entry: &BootEntry) -> Result<(), BlsBootError> {
    let root = OpenFile::open_volume(fs).map_err(|status| BlsBootError::Read {
        path: "\\".to_string(),
        status,
    })?;
    let result = boot_entry(fs, &root, entry);
    if result.is_err() {
        initrd::uninstall();
    }
    result
}

/// Reads the files `paths` of the volume `root` into one page buffer below
/// `max_address`, each starting on a 4-byte boundary (how several initrds
/// are concatenated; `crate::initrd::padded_len`).
pub(crate) fn read_into_pages(
    root: &OpenFile,
    paths: &[String],
    memory_type: MemoryType,
    max_address: u64,
) -> Result<PageBuffer, BlsBootError> {
    let read_error = |path: &str, status| BlsBootError::Read {
        path: path.to_string(),
        status,
    };
    let mut files = Vec::with_capacity(paths.len());
    let mut total = 0usize;
    for path in paths {
        let file = root.open(path).map_err(|s| read_error(path, s))?;
        let size = file.size().map_err(|s| read_error(path, s))?;
        let too_large = || BlsBootError::TooLarge {
            path: path.clone(),
            size,
        };
        let start = initrd::padded_len(total).ok_or_else(too_large)?;
        let len = usize::try_from(size).map_err(|_| too_large())?;
        total = start.checked_add(len).ok_or_else(too_large)?;
        files.push((path, file, start, len));
    }
    let mut buffer = PageBuffer::allocate(total, memory_type, max_address).map_err(|_| {
        BlsBootError::TooLarge {
            path: paths.join(" + "),
            size: total as u64,
        }
    })?;
    for (path, file, start, len) in files {
        file.read_into(&mut buffer.as_mut_slice()[start..start + len], true)
            .map_err(|s| read_error(path, s))?;
    }
    Ok(buffer)
}

/// Whether the file at `path` starts with PE headers (a kernel with the EFI
/// stub, a UKI, any EFI application).
pub(crate) fn file_is_pe(root: &OpenFile, path: &str) -> Result<bool, BlsBootError> {
    let read_error = |status| BlsBootError::Read {
        path: path.to_string(),
        status,
    };
    let file = root.open(path).map_err(read_error)?;
    let mut header = vec![0u8; uki::HEADER_READ_SIZE];
    let len = file.read_into(&mut header, false).map_err(read_error)?;
    Ok(uki::is_pe_image(&header[..len]))
}

/// Boots one entry; returns only on failure. Type #1 `linux` kernels with
/// the EFI stub and `efi` programs (Type #2 UKIs among them) are started as
/// EFI images; a `linux` kernel without the stub is booted through the
/// Linux boot protocol (`crate::linux_boot`).
fn boot_entry(fs: HandleId, root: &OpenFile, entry: &BootEntry) -> Result<(), BlsBootError> {
    let kernel = efi_path(
        entry
            .linux
            .as_deref()
            .or(entry.efi.as_deref())
            .ok_or(BlsBootError::NoKernel)?,
    );
    let initrds: Vec<String> = entry.initrd.iter().map(|p| efi_path(p)).collect();
    let description = alloc::format!("BLS entry '{}'", entry.display_title());
    if entry.linux.is_some() && !file_is_pe(root, &kernel)? {
        return boot_with_protocol(root, &kernel, &initrds, &entry.options, &description);
    }
    if !initrds.is_empty() {
        let image = read_into_pages(root, &initrds, MemoryType::LOADER_DATA, u64::MAX)?;
        initrd::install(image).map_err(BlsBootError::Initrd)?;
    }
    let handle = load_from_volume(fs, &kernel)?;
    let status = start_with_options(handle, &entry.options, &description);
    Err(BlsBootError::Returned(status))
}

/// A `linux` kernel without the EFI stub: kernel and initrds into pages,
/// then the 64-bit boot protocol. Returns only on failure.
pub(crate) fn boot_with_protocol(
    root: &OpenFile,
    kernel: &str,
    initrds: &[String],
    options: &str,
    description: &str,
) -> Result<(), BlsBootError> {
    let image = read_into_pages(
        root,
        &[kernel.to_string()],
        MemoryType::LOADER_DATA,
        u64::MAX,
    )?;
    let initrd = if initrds.is_empty() {
        None
    } else {
        Some(read_into_pages(
            root,
            initrds,
            MemoryType::LOADER_DATA,
            crate::linux_boot::INITRD_MAX_ADDRESS,
        )?)
    };
    info!("booting {description} through the Linux boot protocol");
    let error = crate::linux_boot::boot(image.as_slice(), initrd, options);
    Err(BlsBootError::Protocol {
        path: kernel.to_string(),
        error,
    })
}

/// LoadImage of `path` on the volume `fs`: the firmware reads the file
/// itself through the volume's SimpleFileSystem, so the image gets the
/// volume as its device and the file as its path.
pub(crate) fn load_from_volume(fs: HandleId, path: &str) -> Result<HandleId, BlsBootError> {
    let load_error = |status| BlsBootError::Load {
        path: path.to_string(),
        status,
    };
    let mut device_path = file_device_path(fs, path).ok_or(load_error(Status::NOT_FOUND))?;
    let mut handle: r_efi::efi::Handle = core::ptr::null_mut();
    let status = efi::image::load_image(
        false.into(),
        efi::image::firmware_image_handle() as r_efi::efi::Handle,
        device_path.as_mut_ptr() as *mut device_path::Protocol,
        core::ptr::null_mut(),
        0,
        &mut handle,
    );
    if status.is_error() {
        return Err(load_error(status));
    }
    Ok(handle as HandleId)
}

/// Starts a loaded image with `options` as its LoadOptions (UCS-2, §9.1:
/// the EFI stub's command line). Empty options are not passed at all, so a
/// UKI uses the command line built into it. Returns the image's exit status.
pub(crate) fn start_with_options(handle: HandleId, options: &str, description: &str) -> Status {
    let mut options: Vec<u16> = if options.is_empty() {
        Vec::new()
    } else {
        options.encode_utf16().chain(core::iter::once(0)).collect()
    };
    if !options.is_empty()
        && let Some(loaded) =
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
    info!("booting {description}");
    let status = efi::image::start(handle);
    drop(options);
    status
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
