//! Device paths (UEFI 2.10 §10.3): node walking, text conversion and the
//! file-path split the boot manager uses, in both the protocols and efi
//! crates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocols::device_path::{self, DevicePathBuf};

fuzz_target!(|data: &[u8]| {
    if let Ok(nodes) = device_path::parse(data) {
        for node in &nodes {
            let _ = (node.is_end_entire(), node.is_file_path(), node.byte_len());
        }
    }
    let _ = device_path::total_len(data);
    let _ = device_path::to_text(data);
    if let Ok(path) = DevicePathBuf::from_bytes(data) {
        let _ = path.to_text();
        let _ = path.split_file_path();
    }
    let _ = efi::device_path::nodes(data);
    let _ = efi::device_path::file_path_text(data);
    let half = data.len() / 2;
    let _ = efi::device_path::prefix_len(&data[..half], &data[half..]);
});
