//! Built-in images: applications linked into the firmware image (the boot
//! menu, the BLS loader) that callers load and start like any other image.
//!
//! Each one is a file of a firmware volume that exists only as a handle: the
//! volume's handle carries the device path `Fv(FIRMWARE_VOLUME)` (UEFI 2.10
//! §10.3.5.7, MEDIA_PIWG_FW_VOL_DP), and a built-in image is named by
//! `Fv(FIRMWARE_VOLUME)/FvFile(<file GUID>)` (§10.3.5.6,
//! MEDIA_PIWG_FW_FILE_DP), as edk2 names the applications in its flash
//! volumes. LoadImage of that path (`crate::image`) creates an image handle
//! with LoadedImage and LoadedImageDevicePath; StartImage calls the image's
//! Rust entry with that handle.
//!
//! The firmware's UEFI drivers (the storage drivers of `protocols`) are
//! files of the same volume: `crate::driver_images` gives a driver's handle
//! LoadedImage with `FvFile(<its GUID>)`, as edk2 does for the drivers it
//! dispatches from flash, so the Shell's `drivers` and `dh` find the image
//! and, through the volume's EFI_FIRMWARE_VOLUME2_PROTOCOL
//! ([`firmware_volume`]), its name. This module keeps the list of the
//! volume's files.
//!
//! `efi` does not know the built-ins: the crates that implement them
//! register them here ([`register`], and `crate::driver_images` for the
//! drivers) before the boot manager runs.

use crate::ids::HandleId;
use crate::protocol_services as ps;

pub mod firmware_volume;
use alloc::vec::Vec;
use core::ffi::c_void;
use platform::sync::Global;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::table::system::SystemTable;
use uefi_raw::{Guid, Status, guid};

/// The firmware volume holding the built-in images: the GUID of its Fv()
/// device path node.
pub const FIRMWARE_VOLUME: Guid = guid!("2fbc36d0-1a63-4377-aa16-872a5f25934b");

/// A built-in image's entry point: runs with the image's own handle (the
/// agent of what it opens, the parent of what it loads) and the system
/// table (§4.1, as EFI_IMAGE_ENTRY_POINT gets them) and returns the status
/// StartImage hands back.
pub type BuiltinEntry = fn(image: HandleId, system_table: *mut SystemTable) -> Status;

/// What registers a built-in image.
#[derive(Clone, Copy)]
pub struct BuiltinImage {
    /// The GUID of its FvFile() node.
    pub file: Guid,
    /// Its name, for logs and for the naming hook (ComponentName2).
    pub name: &'static str,
    pub entry: BuiltinEntry,
}

/// What kind of file of the volume an image is (PI 1.8 vol. 3 §2.1.4.1,
/// EFI_FV_FILETYPE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// EFI_FV_FILETYPE_APPLICATION: a built-in image started by LoadImage.
    Application,
    /// EFI_FV_FILETYPE_DRIVER: a firmware driver, resident from the start.
    Driver,
}

/// A file of the firmware volume: its FvFile() GUID, the name of its
/// user-interface section and its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeFile {
    pub file: Guid,
    pub name: &'static str,
    pub kind: FileKind,
}

/// Called on each new image handle of a built-in with the image's name, so
/// another crate can install a name protocol on it (ComponentName2 lives in
/// `protocols`).
pub type NamingHook = fn(image: HandleId, name: &'static str);

static BUILTINS: Global<Vec<BuiltinImage>> = Global::new(Vec::new());
/// The firmware drivers' files, in registration order.
static DRIVER_FILES: Global<Vec<VolumeFile>> = Global::new(Vec::new());
static VOLUME: Global<HandleId> = Global::new(HandleId::NULL);
/// The volume's device path (Fv node + End), owned here for good because
/// the handle's DevicePath protocol points into it.
static VOLUME_PATH: Global<Vec<u8>> = Global::new(Vec::new());
static NAMING_HOOK: Global<Option<NamingHook>> = Global::new(None);

const MEDIA_DEVICE_PATH: u8 = 4;
const PIWG_FW_FILE: u8 = 6;
const PIWG_FW_VOLUME: u8 = 7;
/// Header (4 bytes) + GUID: the length of both PIWG nodes.
const PIWG_NODE_LEN: u8 = 20;

fn piwg_node(sub_type: u8, guid: &Guid) -> [u8; PIWG_NODE_LEN as usize] {
    let mut node = [0u8; PIWG_NODE_LEN as usize];
    node[..4].copy_from_slice(&[MEDIA_DEVICE_PATH, sub_type, PIWG_NODE_LEN, 0]);
    node[4..].copy_from_slice(&guid.to_bytes());
    node
}

/// `Fv(FIRMWARE_VOLUME)/End`: the volume handle's device path.
pub fn volume_device_path() -> Vec<u8> {
    let mut path = piwg_node(PIWG_FW_VOLUME, &FIRMWARE_VOLUME).to_vec();
    path.extend_from_slice(&crate::device_path::END);
    path
}

/// `FvFile(file)/End`: a built-in's path relative to the volume
/// (LoadedImage.FilePath).
pub fn file_node_path(file: &Guid) -> Vec<u8> {
    let mut path = piwg_node(PIWG_FW_FILE, file).to_vec();
    path.extend_from_slice(&crate::device_path::END);
    path
}

/// `Fv(FIRMWARE_VOLUME)/FvFile(file)/End`: the full device path that
/// LoadImage and a load option's FilePathList use for a built-in.
pub fn device_path(file: &Guid) -> Vec<u8> {
    let mut path = piwg_node(PIWG_FW_VOLUME, &FIRMWARE_VOLUME).to_vec();
    path.extend_from_slice(&file_node_path(file));
    path
}

/// The built-in `path` names (it must be exactly Fv/FvFile/End with our
/// volume and a registered file), or None.
pub fn find(path: &[u8]) -> Option<BuiltinImage> {
    let volume = piwg_node(PIWG_FW_VOLUME, &FIRMWARE_VOLUME);
    let rest = path.strip_prefix(&volume[..])?;
    let file = rest.get(..usize::from(PIWG_NODE_LEN))?;
    if rest.get(usize::from(PIWG_NODE_LEN)..)? != crate::device_path::END
        || file[..4] != [MEDIA_DEVICE_PATH, PIWG_FW_FILE, PIWG_NODE_LEN, 0]
    {
        return None;
    }
    let guid = Guid::from_bytes(file[4..].try_into().ok()?);
    BUILTINS.with(|all| all.iter().find(|b| b.file == guid).copied())
}

/// The firmware volume's handle (NULL before the first registration).
pub fn volume_handle() -> HandleId {
    VOLUME.with(|v| *v)
}

/// Creates the volume's handle, with its device path and
/// EFI_FIRMWARE_VOLUME2_PROTOCOL, on first use; returns it.
pub(crate) fn ensure_volume() -> Result<HandleId, Status> {
    let existing = volume_handle();
    if !existing.is_null() {
        return Ok(existing);
    }
    let path = VOLUME_PATH.with(|p| {
        *p = volume_device_path();
        p.as_mut_ptr()
    });
    let handle = ps::install(
        None,
        &[
            (DevicePathProtocol::GUID, path.cast::<c_void>()),
            (
                firmware_volume::FIRMWARE_VOLUME2_GUID,
                firmware_volume::interface(),
            ),
        ],
    )?;
    VOLUME.with(|v| *v = handle);
    Ok(handle)
}

/// Makes `image` loadable by its device path; creates the volume handle on
/// first use. A second registration of the same file replaces the first.
pub fn register(image: BuiltinImage) -> Result<(), Status> {
    ensure_volume()?;
    BUILTINS.with(|all| {
        all.retain(|b| b.file != image.file);
        all.push(image);
    });
    Ok(())
}

/// Lists the firmware driver file `file` (a second one of the same GUID
/// replaces the first).
pub(crate) fn add_driver_file(file: VolumeFile) {
    DRIVER_FILES.with(|all| {
        all.retain(|d| d.file != file.file);
        all.push(file);
    });
}

/// Every file of the volume: the built-in applications in registration
/// order, then the drivers.
pub fn volume_files() -> Vec<VolumeFile> {
    let mut files: Vec<VolumeFile> = BUILTINS.with(|all| {
        all.iter()
            .map(|b| VolumeFile {
                file: b.file,
                name: b.name,
                kind: FileKind::Application,
            })
            .collect()
    });
    DRIVER_FILES.with(|all| files.extend_from_slice(all));
    files
}

/// The file of the volume named `file`, if any.
pub fn volume_file(file: &Guid) -> Option<VolumeFile> {
    volume_files().into_iter().find(|f| f.file == *file)
}

/// Sets the hook that names each new built-in image handle.
pub fn set_naming_hook(hook: NamingHook) {
    NAMING_HOOK.with(|h| *h = Some(hook));
}

/// Runs the naming hook for a new image handle of `image`.
pub(crate) fn name_new_handle(handle: HandleId, image: &BuiltinImage) {
    if let Some(hook) = NAMING_HOOK.with(|h| *h) {
        hook(handle, image.name);
    }
}

/// Tests of this module and of `firmware_volume` share its global lists,
/// which refuse use from two threads at once as re-entry: they run one at a
/// time under this lock.
#[cfg(test)]
pub(crate) fn serial_tests() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: Guid = guid!("eb51ac8f-d5e6-467f-8472-520bc777f144");

    #[test]
    fn paths_are_the_piwg_nodes() {
        let path = device_path(&FILE);
        assert_eq!(path.len(), 20 + 20 + 4);
        assert_eq!(&path[..4], &[4, 7, 20, 0]);
        assert_eq!(&path[4..20], &FIRMWARE_VOLUME.to_bytes());
        assert_eq!(&path[20..24], &[4, 6, 20, 0]);
        assert_eq!(&path[24..40], &FILE.to_bytes());
        assert_eq!(&path[40..], &crate::device_path::END);
        assert_eq!(&volume_device_path()[..20], &path[..20]);
        assert_eq!(file_node_path(&FILE), path[20..].to_vec());
    }

    fn entry(_: HandleId, _: *mut SystemTable) -> Status {
        Status::SUCCESS
    }

    #[test]
    fn only_registered_files_of_our_volume_are_found() {
        let _serial = serial_tests();
        register(BuiltinImage {
            file: FILE,
            name: "test",
            entry,
        })
        .unwrap();
        assert_eq!(find(&device_path(&FILE)).map(|b| b.name), Some("test"));
        let other = guid!("a33a8786-5f3c-4b4d-80f8-c15577dc42ea");
        assert!(find(&device_path(&other)).is_none());
        // Truncated, extended or foreign-volume paths are not ours.
        let path = device_path(&FILE);
        assert!(find(&path[..40]).is_none());
        let mut longer = path[..40].to_vec();
        longer.extend_from_slice(&[4, 4, 6, 0, 0x41, 0]);
        longer.extend_from_slice(&crate::device_path::END);
        assert!(find(&longer).is_none());
        let mut foreign = path.clone();
        foreign[4] ^= 1;
        assert!(find(&foreign).is_none());
        assert!(find(&[]).is_none());
    }
}
