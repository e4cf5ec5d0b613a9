//! File access through EFI_SIMPLE_FILE_SYSTEM_PROTOCOL and EFI_FILE_PROTOCOL
//! (UEFI 2.10 §13.4, §13.5): open a volume and a path on it, read a file or
//! a directory, write, flush and delete. Every loader that touches files
//! (BLS, direct boot, the variable store) goes through [`EfiFile`].

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::mem::offset_of;
use efi::ids::HandleId;
use uefi_raw::Status;
use uefi_raw::protocol::file_system::{
    FileAttribute, FileInfo, FileMode, FileProtocolV1, SimpleFileSystemProtocol,
};

/// A BLS or command-line path (`/`- or `\`-separated, relative to the
/// partition root) as an EFI file name (`\`-separated, absolute; UEFI 2.10
/// §13.5.2 Open).
pub fn efi_path(path: &str) -> String {
    let mut efi = String::with_capacity(path.len() + 1);
    for part in path.split(['/', '\\']).filter(|p| !p.is_empty()) {
        efi.push('\\');
        efi.push_str(part);
    }
    if efi.is_empty() {
        efi.push('\\');
    }
    efi
}

/// Name and directory flag of one EFI_FILE_INFO record (UEFI 2.10 §13.5.16),
/// as Read on a directory returns them (§13.5.5).
pub fn parse_file_info(record: &[u8]) -> Option<(String, bool)> {
    let attribute_at = offset_of!(FileInfo, attribute);
    let attribute = platform::le::u64_at(record, attribute_at)?;
    let units: Vec<u16> = platform::le::u16_units(record.get(offset_of!(FileInfo, file_name)..)?)
        .take_while(|&c| c != 0)
        .collect();
    let name = String::from_utf16(&units).ok()?;
    Some((name, attribute & FileAttribute::DIRECTORY.bits() != 0))
}

/// Why reading a whole file failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The file protocol reported an error.
    Status(Status),
    /// The file is larger than the caller's limit or than memory allows.
    TooLarge(u64),
}

/// An open EFI_FILE_PROTOCOL instance, closed on drop.
pub struct EfiFile(*mut FileProtocolV1);

impl Drop for EfiFile {
    fn drop(&mut self) {
        // SAFETY: `self.0` is an open file handle the protocol gave us and
        // nobody else closes it (`delete` forgets `self` instead).
        let _ = unsafe { ((*self.0).close)(self.0) };
    }
}

/// `status` as a Result; `Ok(())` for success and warnings.
fn check(status: Status) -> Result<(), Status> {
    if status.is_error() {
        Err(status)
    } else {
        Ok(())
    }
}

impl EfiFile {
    /// The root directory of the volume on `fs` (§13.4.2 OpenVolume).
    pub fn open_volume(fs: HandleId) -> Result<EfiFile, Status> {
        let sfs = crate::services::current()?
            .protocol::<SimpleFileSystemProtocol>(fs, &SimpleFileSystemProtocol::GUID)
            .ok_or(Status::NOT_FOUND)?
            .as_ptr();
        let mut root: *mut FileProtocolV1 = core::ptr::null_mut();
        // SAFETY: `sfs` is an installed SimpleFileSystem interface; the
        // out-pointer is valid.
        let status = unsafe { ((*sfs).open_volume)(sfs, &mut root) };
        check(status)?;
        if root.is_null() {
            return Err(Status::DEVICE_ERROR);
        }
        Ok(EfiFile(root))
    }

    /// Opens `path` (absolute, `\`-separated) on the volume `fs` with
    /// `mode` and, when created, `attributes` (§13.5.2 Open).
    pub fn open_on(
        fs: HandleId,
        path: &str,
        mode: FileMode,
        attributes: FileAttribute,
    ) -> Result<EfiFile, Status> {
        EfiFile::open_volume(fs)?.open_with(path, mode, attributes)
    }

    /// Opens `path` (absolute, `\`-separated) for reading (§13.5.2).
    pub fn open(&self, path: &str) -> Result<EfiFile, Status> {
        self.open_with(path, FileMode::READ, FileAttribute::empty())
    }

    /// Opens `path` relative to this directory with `mode` and, when
    /// created, `attributes` (§13.5.2 Open).
    pub fn open_with(
        &self,
        path: &str,
        mode: FileMode,
        attributes: FileAttribute,
    ) -> Result<EfiFile, Status> {
        let name: Vec<u16> = path.encode_utf16().chain(core::iter::once(0)).collect();
        let mut opened: *mut FileProtocolV1 = core::ptr::null_mut();
        // SAFETY: `self.0` is an open directory; the name is NUL-terminated
        // and the out-pointer valid.
        let status =
            unsafe { ((*self.0).open)(self.0, &mut opened, name.as_ptr(), mode, attributes) };
        check(status)?;
        if opened.is_null() {
            return Err(Status::DEVICE_ERROR);
        }
        Ok(EfiFile(opened))
    }

    /// Reads into `buffer`, growing it (see [`grow`]) when the protocol asks for more room;
    /// returns the bytes read (0 at the end of a directory; §13.5.5 Read).
    fn read_record(&self, buffer: &mut Vec<u8>) -> Result<usize, Status> {
        loop {
            let mut size = buffer.len();
            // SAFETY: `self.0` is open; `buffer` holds `size` writable bytes.
            let status =
                unsafe { ((*self.0).read)(self.0, &mut size, buffer.as_mut_ptr() as *mut c_void) };
            if status == Status::BUFFER_TOO_SMALL && size > buffer.len() {
                grow(buffer, size)?;
                continue;
            }
            check(status)?;
            return Ok(size);
        }
    }

    /// The file's EFI_FILE_INFO record (§13.5.12 GetInfo).
    fn info(&self) -> Result<Vec<u8>, Status> {
        let mut info = vec![0u8; 256];
        loop {
            let mut size = info.len();
            // SAFETY: `self.0` is open; `info` holds `size` writable bytes.
            let status = unsafe {
                ((*self.0).get_info)(
                    self.0,
                    &FileInfo::ID,
                    &mut size,
                    info.as_mut_ptr() as *mut c_void,
                )
            };
            if status == Status::BUFFER_TOO_SMALL && size > info.len() {
                grow(&mut info, size)?;
                continue;
            }
            check(status)?;
            return Ok(info);
        }
    }

    /// The file's size from its EFI_FILE_INFO.
    pub fn size(&self) -> Result<u64, Status> {
        let at = offset_of!(FileInfo, file_size);
        platform::le::u64_at(&self.info()?, at).ok_or(Status::DEVICE_ERROR)
    }

    /// Whether this is a directory (EFI_FILE_DIRECTORY in its EFI_FILE_INFO).
    pub fn is_directory(&self) -> Result<bool, Status> {
        let at = offset_of!(FileInfo, attribute);
        let attribute = platform::le::u64_at(&self.info()?, at).ok_or(Status::DEVICE_ERROR)?;
        Ok(attribute & FileAttribute::DIRECTORY.bits() != 0)
    }

    /// Moves the read/write position to `offset` (§13.5.10 SetPosition).
    pub fn set_position(&self, offset: u64) -> Result<(), Status> {
        // SAFETY: `self.0` is an open file.
        check(unsafe { ((*self.0).set_position)(self.0, offset) })
    }

    /// Fills `out` from the current position; a file ending early is
    /// VOLUME_CORRUPTED when `exact`, else the bytes read are returned.
    pub fn read_into(&self, out: &mut [u8], exact: bool) -> Result<usize, Status> {
        let mut done = 0;
        while done < out.len() {
            let mut chunk = out.len() - done;
            // SAFETY: `self.0` is open; `out[done..]` holds `chunk` bytes.
            let status = unsafe {
                ((*self.0).read)(self.0, &mut chunk, out[done..].as_mut_ptr() as *mut c_void)
            };
            check(status)?;
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

    /// Appends the whole file to `out`; files over `limit` bytes are
    /// refused before anything is read.
    pub fn read_to_end(&self, out: &mut Vec<u8>, limit: u64) -> Result<(), ReadError> {
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

    /// The whole file; a file ending before the size its EFI_FILE_INFO
    /// gives is returned as far as it goes. No memory for it (its size
    /// comes from the disk) is OUT_OF_RESOURCES.
    pub fn read_all(&self) -> Result<Vec<u8>, Status> {
        let size = self.size()?;
        let len = usize::try_from(size).map_err(|_| Status::OUT_OF_RESOURCES)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| Status::OUT_OF_RESOURCES)?;
        data.resize(len, 0);
        let read = self.read_into(&mut data, false)?;
        data.truncate(read);
        Ok(data)
    }

    /// Names of the entries of this directory that `wanted` (name,
    /// is-directory) accepts.
    pub fn file_names(&self, wanted: impl Fn(&str, bool) -> bool) -> Result<Vec<String>, Status> {
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

    /// Writes all of `data` at `offset` (§13.5.6 Write); a short write is
    /// VOLUME_FULL.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), Status> {
        self.set_position(offset)?;
        let mut written = data.len();
        // SAFETY: `data` holds `written` readable bytes.
        let status = unsafe { ((*self.0).write)(self.0, &mut written, data.as_ptr().cast()) };
        check(status)?;
        if written != data.len() {
            return Err(Status::VOLUME_FULL);
        }
        Ok(())
    }

    /// Writes buffered data to the device (§13.5.11 Flush).
    pub fn flush(&self) -> Result<(), Status> {
        // SAFETY: `self.0` is an open file handle.
        check(unsafe { ((*self.0).flush)(self.0) })
    }

    /// Deletes the file; Delete closes the handle, even when it fails
    /// (§13.5.4 Delete).
    pub fn delete(self) -> Result<(), Status> {
        let handle = self.0;
        core::mem::forget(self);
        // SAFETY: `handle` is an open file handle, consumed by Delete.
        check(unsafe { ((*handle).delete)(handle) })
    }
}

/// Whether `path` (absolute, `\`-separated) exists on the file system `fs`.
pub fn file_exists(fs: HandleId, path: &str) -> bool {
    EfiFile::open_volume(fs).is_ok_and(|root| root.open(path).is_ok())
}

/// Grows `buffer` to the `size` a file protocol asked for (§13.5.5 Read,
/// §13.5.12 GetInfo: EFI_BUFFER_TOO_SMALL with the size needed). The size is
/// the file system driver's, which may be another image's: fallible, and no
/// memory for it is EFI_OUT_OF_RESOURCES.
fn grow(buffer: &mut Vec<u8>, size: usize) -> Result<(), Status> {
    let more = size.saturating_sub(buffer.len());
    platform::fallible::reserve(buffer, more).map_err(|_| Status::OUT_OF_RESOURCES)?;
    buffer.resize(size, 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn bls_paths_become_absolute_efi_paths() {
        assert_eq!(efi_path("/vmlinuz-6.1"), "\\vmlinuz-6.1");
        assert_eq!(efi_path("debian/6.1/linux"), "\\debian\\6.1\\linux");
        assert_eq!(efi_path("//a//b/"), "\\a\\b");
        assert_eq!(efi_path(""), "\\");
    }

    fn info_record(name: &str, attribute: u64) -> Vec<u8> {
        let name_at = offset_of!(FileInfo, file_name);
        let mut record = vec![0u8; name_at];
        let attribute_at = offset_of!(FileInfo, attribute);
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
            parse_file_info(&info_record("debian.conf", FileAttribute::ARCHIVE.bits())),
            Some(("debian.conf".to_string(), false))
        );
        assert_eq!(
            parse_file_info(&info_record("sub", FileAttribute::DIRECTORY.bits())),
            Some(("sub".to_string(), true))
        );
        assert_eq!(parse_file_info(&[0u8; 10]), None);
        // Unpaired surrogate: not a name we can use.
        let mut bad = info_record("", 0);
        let name_at = offset_of!(FileInfo, file_name);
        bad.splice(name_at..name_at, [0x00, 0xd8]);
        assert_eq!(parse_file_info(&bad), None);
    }
}
