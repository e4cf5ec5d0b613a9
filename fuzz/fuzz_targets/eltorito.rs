//! El Torito boot catalogs (`protocols::partition::eltorito`): the catalog
//! parser alone, and the whole walk (volume descriptors from CD sector 16,
//! the boot record, the catalog, images as partitions) over a disk of 2048-,
//! 1024- or 512-byte blocks, also through the scheme detection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::block::MemDisk;
use protocols::partition::{self, eltorito};

/// The input starts at CD sector 16, where the volume descriptors do.
const DESCRIPTORS_AT: usize = 16 * 2048;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let _ = eltorito::parse_catalog(rest);
    let block_size = [2048, 1024, 512][usize::from(mode % 3)];
    let mut image = vec![0u8; DESCRIPTORS_AT];
    image.extend_from_slice(rest);
    image.resize(image.len().next_multiple_of(2048), 0);
    let disk = MemDisk::new(&mut image, block_size);
    if let Ok(Some(table)) = eltorito::read(&disk) {
        for p in &table.partitions {
            assert!(p.start_lba <= p.end_lba && p.end_lba < image_blocks(&disk));
            let _ = p.media_node();
        }
    }
    let _ = partition::read_partitions(&disk);
});

fn image_blocks(disk: &MemDisk) -> u64 {
    use platform::block::BlockDevice;
    disk.num_blocks()
}
