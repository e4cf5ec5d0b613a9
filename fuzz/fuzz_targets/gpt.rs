//! GPT (UEFI 2.10 §5.3) over an in-memory disk of 512-byte blocks: the input
//! is the disk image from LBA 0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::block::MemDisk;
use protocols::partition::gpt;

fuzz_target!(|data: &[u8]| {
    let mut image = data.to_vec();
    image.resize(data.len().next_multiple_of(512).max(512), 0);
    let disk = MemDisk::new(&mut image, 512);
    if let Ok(table) = gpt::read(&disk) {
        for partition in &table.partitions {
            let _ = partition.size_in_blocks();
            let _ = partition.media_node();
        }
    }
});
