//! Device-path reading for the core services (UEFI 2.10 §10.3): copies a
//! caller's path out node by node, bounded, so the rest of the firmware
//! works on a byte vector.

use alloc::vec::Vec;
use uefi_raw::Status;
use uefi_raw::protocol::device_path::DevicePathProtocol as Protocol;

const END_TYPE: u8 = 0x7f;
const END_ENTIRE: u8 = 0xff;
/// No real device path comes near this; it bounds a walk over garbage.
const MAX_PATH: usize = 64 * 1024;

/// The path's bytes including the End-Entire node.
///
/// # Safety
/// `path` is null or points to a device path that ends with an End-Entire
/// node (UEFI 2.10 §10.3.1), each node as long as its Length says.
pub unsafe fn read_path(path: *const Protocol) -> Result<Vec<u8>, Status> {
    if path.is_null() {
        return Err(Status::INVALID_PARAMETER);
    }
    let mut out = Vec::new();
    let mut node = path as *const u8;
    loop {
        let mut header = [0u8; 4];
        // SAFETY: `node` points at a node header inside the caller's path
        // (the first one by contract, later ones by the lengths we checked).
        unsafe { core::ptr::copy_nonoverlapping(node, header.as_mut_ptr(), 4) };
        let len = u16::from_le_bytes([header[2], header[3]]) as usize;
        if len < 4 || out.len() + len > MAX_PATH {
            return Err(Status::INVALID_PARAMETER);
        }
        let start = out.len();
        // Within MAX_PATH, but the caller's all the same: fallible.
        platform::fallible::reserve(&mut out, len).map_err(|_| Status::OUT_OF_RESOURCES)?;
        out.resize(start + len, 0);
        // SAFETY: the node says it is `len` bytes long.
        unsafe { core::ptr::copy_nonoverlapping(node, out[start..].as_mut_ptr(), len) };
        if header[0] == END_TYPE && header[1] == END_ENTIRE {
            return Ok(out);
        }
        // SAFETY: the next node follows this one within the caller's path.
        node = unsafe { node.add(len) };
    }
}

/// Splits a path (as read by `read_path`) into node slices, End excluded.
pub fn nodes(path: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = path;
    while rest.len() >= 4 {
        let len = u16::from_le_bytes([rest[2], rest[3]]) as usize;
        if len < 4 || len > rest.len() || rest[0] == END_TYPE {
            break;
        }
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

/// If `prefix` (without its End node) is a whole-node prefix of `path`,
/// the prefix's length in bytes.
pub fn prefix_len(prefix: &[u8], path: &[u8]) -> Option<usize> {
    let prefix_nodes = nodes(prefix);
    let path_nodes = nodes(path);
    if prefix_nodes.len() > path_nodes.len() {
        return None;
    }
    let mut len = 0;
    for (a, b) in prefix_nodes.iter().zip(&path_nodes) {
        if a != b {
            return None;
        }
        len += a.len();
    }
    Some(len)
}

/// Whether `path` is null or starts with an End node.
///
/// # Safety
/// `path` is null or points to at least a device path node header.
pub unsafe fn is_end(path: *const Protocol) -> bool {
    if path.is_null() {
        return true;
    }
    // SAFETY: a non-null device path starts with a node header.
    let header = unsafe { (path as *const [u8; 2]).read_unaligned() };
    header[0] == END_TYPE
}

/// End-Entire node bytes.
pub const END: [u8; 4] = [END_TYPE, END_ENTIRE, 4, 0];

/// Text of the file-path (media 4/4) nodes of a path, joined with `\`.
pub fn file_path_text(path: &[u8]) -> Option<alloc::string::String> {
    let mut text = alloc::string::String::new();
    let mut any = false;
    for node in nodes(path) {
        if node[0] == 4 && node[1] == 4 {
            any = true;
            let units: Vec<u16> = platform::le::u16_units(&node[4..])
                .take_while(|&c| c != 0)
                .collect();
            let part = alloc::string::String::from_utf16_lossy(&units);
            if !text.is_empty() && !text.ends_with('\\') && !part.starts_with('\\') {
                text.push('\\');
            }
            text.push_str(&part);
        }
    }
    any.then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pci(dev: u8) -> [u8; 6] {
        [1, 1, 6, 0, 0, dev]
    }

    #[test]
    fn prefix_matching_is_node_wise() {
        let mut disk = Vec::new();
        disk.extend_from_slice(&pci(2));
        disk.extend_from_slice(&END);
        let mut file = Vec::new();
        file.extend_from_slice(&pci(2));
        file.extend_from_slice(&[4, 4, 8, 0, b'a', 0, 0, 0]);
        file.extend_from_slice(&END);
        assert_eq!(prefix_len(&disk, &file), Some(6));
        assert_eq!(prefix_len(&file, &disk), None);
        let mut other = Vec::new();
        other.extend_from_slice(&pci(3));
        other.extend_from_slice(&END);
        assert_eq!(prefix_len(&other, &file), None);
        assert_eq!(file_path_text(&file).as_deref(), Some("a"));
    }

    #[test]
    fn reads_a_path_from_memory() {
        let mut path = Vec::new();
        path.extend_from_slice(&pci(2));
        path.extend_from_slice(&END);
        // SAFETY: a well-formed path in a live vector.
        let read = unsafe { read_path(path.as_ptr() as *const Protocol) }.unwrap();
        assert_eq!(read, path);
        let bad = [1u8, 1, 2, 0];
        assert_eq!(
            // SAFETY: the bad node's length (2) is checked before anything
            // past its 4-byte header is read.
            unsafe { read_path(bad.as_ptr() as *const Protocol) },
            Err(Status::INVALID_PARAMETER)
        );
    }
}
