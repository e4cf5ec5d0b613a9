//! EFI_DEVICE_PATH_UTILITIES_PROTOCOL (UEFI 2.10 §10.5): size, copy,
//! concatenation and multi-instance handling of device paths. Every path
//! returned is a fresh AllocatePool buffer the caller frees with FreePool.
//!
//! The path arithmetic works on byte vectors (host-tested); the
//! `extern "efiapi"` layer copies the caller's paths in with
//! `efi::device_path::read_path` and the results out to pool memory.

use alloc::vec::Vec;
use core::ffi::c_void;

use platform::memory::MemoryType;
use uefi_raw::protocol::device_path::{
    DevicePathProtocol as DevicePath, DevicePathUtilitiesProtocol as Protocol, DeviceSubType,
    DeviceType,
};
use uefi_raw::{Boolean, Status};

use crate::device_path::{DevicePathError, end_entire, parse};

const HEADER_SIZE: usize = 4;
const END_INSTANCE: [u8; 4] = [DeviceType::END.0, DeviceSubType::END_INSTANCE.0, 4, 0];

/// `path` without its final End Entire node (End Instance nodes stay).
fn without_end(path: &[u8]) -> Result<&[u8], DevicePathError> {
    let len: usize = parse(path)?.iter().map(|n| n.byte_len()).sum();
    Ok(&path[..len])
}

/// AppendDevicePath: `first`'s instance(s) followed by `second`; a missing
/// path counts as empty.
pub fn append_paths(
    first: Option<&[u8]>,
    second: Option<&[u8]>,
) -> Result<Vec<u8>, DevicePathError> {
    let mut out = Vec::new();
    if let Some(first) = first {
        out.extend_from_slice(without_end(first)?);
    }
    if let Some(second) = second {
        out.extend_from_slice(without_end(second)?);
    }
    out.extend_from_slice(&end_entire());
    Ok(out)
}

/// AppendDeviceNode: `path` followed by the single `node` (its header
/// gives its length).
pub fn append_node(path: Option<&[u8]>, node: Option<&[u8]>) -> Result<Vec<u8>, DevicePathError> {
    let mut out = match path {
        Some(path) => without_end(path)?.to_vec(),
        None => Vec::new(),
    };
    if let Some(node) = node {
        let header = node
            .get(..HEADER_SIZE)
            .ok_or(DevicePathError::TruncatedHeader { offset: 0 })?;
        let length = u16::from_le_bytes([header[2], header[3]]);
        let bytes = node
            .get(..usize::from(length))
            .filter(|_| usize::from(length) >= HEADER_SIZE)
            .ok_or(DevicePathError::BadNodeLength { offset: 0, length })?;
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(&end_entire());
    Ok(out)
}

/// AppendDevicePathInstance: `instance` as a further instance of `path`.
pub fn append_instance(path: Option<&[u8]>, instance: &[u8]) -> Result<Vec<u8>, DevicePathError> {
    let mut out = Vec::new();
    if let Some(path) = path {
        out.extend_from_slice(without_end(path)?);
        out.extend_from_slice(&END_INSTANCE);
    }
    out.extend_from_slice(without_end(instance)?);
    out.extend_from_slice(&end_entire());
    Ok(out)
}

/// GetNextDevicePathInstance: the first instance of `path` (with an End
/// Entire node) and the byte offset of the next instance, if any.
pub fn next_instance(path: &[u8]) -> Result<(Vec<u8>, Option<usize>), DevicePathError> {
    let mut instance = Vec::new();
    let mut offset = 0;
    for node in parse(path)? {
        offset += node.byte_len();
        if node.is_end_instance() {
            instance.extend_from_slice(&end_entire());
            return Ok((instance, Some(offset)));
        }
        instance.extend_from_slice(&path[offset - node.byte_len()..offset]);
    }
    instance.extend_from_slice(&end_entire());
    Ok((instance, None))
}

/// IsDevicePathMultiInstance.
pub fn is_multi_instance(path: &[u8]) -> bool {
    parse(path).is_ok_and(|nodes| nodes.iter().any(|n| n.is_end_instance()))
}

/// CreateDeviceNode: a zeroed node of `length` bytes (header included).
pub fn create_node(node_type: u8, sub_type: u8, length: u16) -> Option<Vec<u8>> {
    if usize::from(length) < HEADER_SIZE {
        return None;
    }
    let mut node = alloc::vec![0u8; usize::from(length)];
    node[0] = node_type;
    node[1] = sub_type;
    node[2..4].copy_from_slice(&length.to_le_bytes());
    Some(node)
}

// --- extern "efiapi" layer ----------------------------------------------------

/// Copies `bytes` into a new pool buffer (EfiBootServicesData, §7.2.4).
pub(crate) fn to_pool(bytes: &[u8]) -> *mut u8 {
    match efi::pool::allocate(MemoryType::BOOT_SERVICES_DATA, bytes.len()) {
        Ok(buffer) => {
            // SAFETY: the pool just gave us `bytes.len()` writable bytes.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer, bytes.len()) };
            buffer
        }
        Err(_) => core::ptr::null_mut(),
    }
}

fn path_to_pool(result: Result<Vec<u8>, DevicePathError>) -> *mut DevicePath {
    match result {
        Ok(path) => to_pool(&path).cast(),
        Err(_) => core::ptr::null_mut(),
    }
}

/// The caller's path, `None` for NULL; `Err` when it is malformed.
///
/// # Safety
/// `path` is null or a device path (§10.3.1).
unsafe fn optional_path(path: *const DevicePath) -> Result<Option<Vec<u8>>, Status> {
    if path.is_null() {
        return Ok(None);
    }
    // SAFETY: this function's contract.
    unsafe { efi::device_path::read_path(path) }.map(Some)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.5 requires of the caller.
unsafe extern "efiapi" fn get_device_path_size(path: *const DevicePath) -> usize {
    // SAFETY: the caller's paths, as this function's # Safety requires.
    match unsafe { optional_path(path) } {
        Ok(Some(path)) => path.len(),
        _ => 0,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.5 requires of the caller.
unsafe extern "efiapi" fn duplicate_device_path(path: *const DevicePath) -> *mut DevicePath {
    // SAFETY: the caller's paths, as this function's # Safety requires.
    match unsafe { optional_path(path) } {
        Ok(Some(path)) => to_pool(&path).cast(),
        _ => core::ptr::null_mut(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.5 requires of the caller.
unsafe extern "efiapi" fn append_device_path(
    first: *const DevicePath,
    second: *const DevicePath,
) -> *mut DevicePath {
    // SAFETY: the caller's paths, as this function's # Safety requires.
    match unsafe { (optional_path(first), optional_path(second)) } {
        (Ok(a), Ok(b)) => path_to_pool(append_paths(a.as_deref(), b.as_deref())),
        _ => core::ptr::null_mut(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.5 requires of the caller.
unsafe extern "efiapi" fn append_device_node(
    path: *const DevicePath,
    node: *const DevicePath,
) -> *mut DevicePath {
    let node = if node.is_null() {
        None
    } else {
        // SAFETY: the caller's node, as this function's # Safety requires.
        let Ok(header) = (unsafe { efi::boundary::bytes(node.cast::<u8>(), HEADER_SIZE) }) else {
            return core::ptr::null_mut();
        };
        let length = usize::from(u16::from_le_bytes([header[2], header[3]]));
        // SAFETY: the node is as long as its header says (the contract).
        match unsafe { efi::boundary::bytes(node.cast::<u8>(), length) } {
            Ok(bytes) => Some(bytes),
            Err(_) => return core::ptr::null_mut(),
        }
    };
    // SAFETY: the caller's paths, as this function's # Safety requires.
    match unsafe { optional_path(path) } {
        Ok(path) => path_to_pool(append_node(path.as_deref(), node)),
        Err(_) => core::ptr::null_mut(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.5 requires of the caller.
unsafe extern "efiapi" fn append_device_path_instance(
    path: *const DevicePath,
    instance: *const DevicePath,
) -> *mut DevicePath {
    // SAFETY: the caller's paths, as this function's # Safety requires.
    match unsafe { (optional_path(path), optional_path(instance)) } {
        (Ok(path), Ok(Some(instance))) => path_to_pool(append_instance(path.as_deref(), &instance)),
        _ => core::ptr::null_mut(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.5 requires of the caller.
unsafe extern "efiapi" fn get_next_device_path_instance(
    cursor: *mut *const DevicePath,
    size: *mut usize,
) -> *mut DevicePath {
    // SAFETY: the caller's cursor, as this function's # Safety requires.
    let Ok(current) = (unsafe { efi::boundary::read(cursor) }) else {
        return core::ptr::null_mut();
    };
    // SAFETY: the cursor points into the caller's path.
    let Ok(Some(path)) = (unsafe { optional_path(current) }) else {
        return core::ptr::null_mut();
    };
    let Ok((instance, next)) = next_instance(&path) else {
        return core::ptr::null_mut();
    };
    let next = next.map_or(core::ptr::null(), |offset| {
        current
            .cast::<u8>()
            .wrapping_add(offset)
            .cast::<DevicePath>()
    });
    // SAFETY: the caller's cursor and size, as this function's # Safety
    // requires.
    unsafe {
        let _ = efi::boundary::write(cursor, next);
        if !size.is_null() {
            let _ = efi::boundary::write(size, instance.len());
        }
    }
    to_pool(&instance).cast()
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §10.5 requires of the caller.
unsafe extern "efiapi" fn is_device_path_multi_instance(path: *const DevicePath) -> Boolean {
    // SAFETY: the caller's paths, as this function's # Safety requires.
    match unsafe { optional_path(path) } {
        Ok(Some(path)) => is_multi_instance(&path).into(),
        _ => Boolean::FALSE,
    }
}

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §10.5): every
/// argument is a value, and handles and events are only looked up.
unsafe extern "efiapi" fn create_device_node(
    node_type: DeviceType,
    sub_type: DeviceSubType,
    length: u16,
) -> *mut DevicePath {
    create_node(node_type.0, sub_type.0, length)
        .map_or(core::ptr::null_mut(), |node| to_pool(&node).cast())
}

struct Shared(Protocol);

// SAFETY: the instance holds only function pointers and is never written.
unsafe impl Sync for Shared {}

static PROTOCOL: Shared = Shared(Protocol {
    get_device_path_size,
    duplicate_device_path,
    append_device_path,
    append_device_node,
    append_device_path_instance,
    get_next_device_path_instance,
    is_device_path_multi_instance,
    create_device_node,
});

/// Installs the protocol on `handle` (a new handle when `None`).
pub fn install(handle: Option<efi::handles::HandleId>) -> Result<efi::handles::HandleId, Status> {
    efi::protocol_services::install(
        handle,
        &[(
            Protocol::GUID,
            (&raw const PROTOCOL.0).cast_mut().cast::<c_void>(),
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_path::{file_path, pci, pci_root};

    fn path(nodes: &[&[u8]]) -> Vec<u8> {
        let mut out: Vec<u8> = nodes.concat();
        out.extend_from_slice(&end_entire());
        out
    }

    #[test]
    fn appending_paths_and_nodes() {
        let root = pci_root(0);
        let dev = pci(3, 0);
        let a = path(&[&root]);
        let b = path(&[&dev]);
        assert_eq!(
            append_paths(Some(&a), Some(&b)).unwrap(),
            path(&[&root, &dev])
        );
        assert_eq!(append_paths(None, Some(&b)).unwrap(), b);
        assert_eq!(append_paths(None, None).unwrap(), end_entire());
        assert_eq!(
            append_node(Some(&a), Some(&dev)).unwrap(),
            path(&[&root, &dev])
        );
        assert_eq!(append_node(None, Some(&dev)).unwrap(), b);
        assert_eq!(append_node(Some(&a), None).unwrap(), a);
        assert!(append_node(Some(&a), Some(&[1, 1, 2, 0])).is_err());
        assert!(append_paths(Some(&[1, 1]), None).is_err());
    }

    #[test]
    fn instances_split_and_join() {
        let file = file_path("\\a.efi").unwrap();
        let first = path(&[&pci_root(0), &pci(1, 0)]);
        let second = path(&[&pci_root(0), &file]);
        let both = append_instance(Some(&first), &second).unwrap();
        assert!(is_multi_instance(&both));
        assert!(!is_multi_instance(&first));
        assert_eq!(total_size(&both), first.len() + second.len());

        let (one, next) = next_instance(&both).unwrap();
        assert_eq!(one, first);
        let next = next.unwrap();
        let (two, last) = next_instance(&both[next..]).unwrap();
        assert_eq!(two, second);
        assert_eq!(last, None);
        assert_eq!(append_instance(None, &first).unwrap(), first);
    }

    fn total_size(path: &[u8]) -> usize {
        crate::device_path::total_len(path).unwrap()
    }

    #[test]
    fn created_nodes_have_their_header() {
        assert_eq!(create_node(4, 4, 6).unwrap(), [4, 4, 6, 0, 0, 0]);
        assert_eq!(create_node(1, 1, 3), None);
    }
}
