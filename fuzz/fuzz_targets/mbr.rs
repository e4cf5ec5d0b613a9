//! MBR and extended (EBR) partition chains (UEFI 2.10 §5.2) over an
//! in-memory disk, plus the scheme detection that picks GPT or MBR.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::block::MemDisk;
use protocols::partition::{self, mbr::Mbr};

fuzz_target!(|data: &[u8]| {
    let mut image = data.to_vec();
    image.resize(data.len().next_multiple_of(512).max(512), 0);
    let disk = MemDisk::new(&mut image, 512);
    if let Ok(mbr) = Mbr::parse(&image_sector(&disk)) {
        let _ = mbr.is_protective();
        if let Ok(table) = partition::mbr::read(&disk, &mbr) {
            for partition in &table.partitions {
                let _ = partition.media_node();
            }
        }
    }
    let _ = partition::read_partitions(&disk);
});

fn image_sector(disk: &MemDisk) -> [u8; 512] {
    use platform::block::BlockDevice;
    let mut sector = [0; 512];
    let _ = disk.read_blocks(0, &mut sector);
    sector
}
