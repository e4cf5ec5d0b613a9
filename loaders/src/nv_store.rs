//! Persistent UEFI variables: the NON_VOLATILE variables (UEFI 2.10 §8.2)
//! are kept in `\EFI\vmfw\vars.bin` on the EFI System Partition of the
//! first disk that has one, written through the firmware's own
//! EFI_FILE_PROTOCOL (§13.5).
//!
//! The file holds two slots of `slot_size` bytes each (the size of the RAM
//! store, so any image fits). Each slot is empty (zeros) or a store image
//! of `efi::variables` whose header `generation` counts the writes. A write
//! goes to the slot that does *not* hold the newest valid image, with the
//! next generation, then flushes: a write torn by a crash or power-off
//! spoils only that slot, and the next start loads the other one. After the
//! file is created it is never resized, so an update rewrites data clusters
//! in place and touches neither the FAT nor the directory's cluster chain.
//!
//! A missing or corrupt file means an empty store and a warning, never a
//! failed boot.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::efi_file::{EfiFile, ReadError};
use efi::ids::HandleId;
use efi::protocol_services as ps;
use efi::variables::{VarError, image_generation, seal_image};
use log::{info, warn};
use platform::sync::Global;
use protocols::storage::{PARTITION_INFO_GUID, PartitionInfo};
use uefi_raw::Status;
use uefi_raw::protocol::file_system::{FileAttribute, FileMode, SimpleFileSystemProtocol};

pub const STORE_DIRECTORIES: [&str; 2] = ["\\EFI", "\\EFI\\vmfw"];
pub const STORE_PATH: &str = "\\EFI\\vmfw\\vars.bin";
pub const SLOT_COUNT: usize = 2;
/// The largest `vars.bin` that is read: 1 MiB, four times the file the
/// firmware writes (two 128 KiB slots). A larger file is no store of ours
/// and is not read at all (its size comes from the disk, and the firmware
/// heap must not be spent on it): empty store, one warning, and the next
/// write replaces it with a file of the right size.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// A slot and the generation of the image it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotImage {
    pub slot: usize,
    pub generation: u32,
}

/// `a` was written after `b` (serial-number arithmetic, so the counter may
/// wrap).
fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The bytes of `slot` in `file`, cut short when the file is.
pub fn slot_bytes(file: &[u8], slot_size: usize, slot: usize) -> &[u8] {
    let start = slot.saturating_mul(slot_size).min(file.len());
    let end = start.saturating_add(slot_size).min(file.len());
    &file[start..end]
}

/// Why no slot could be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoValidSlot {
    /// The error of each slot, in slot order.
    pub errors: [VarError; SLOT_COUNT],
}

impl fmt::Display for NoValidSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot A: {}; slot B: {}", self.errors[0], self.errors[1])
    }
}

/// Loads the newest slot of `file` that `load` accepts (`load` checks the
/// image fully and changes nothing when it fails, as
/// `VariableStore::load` does). Returns the slot loaded and the number of
/// variables it held.
pub fn load_newest(
    file: &[u8],
    slot_size: usize,
    mut load: impl FnMut(&[u8]) -> Result<usize, VarError>,
) -> Result<(SlotImage, usize), NoValidSlot> {
    let mut order: Vec<SlotImage> = (0..SLOT_COUNT)
        .map(|slot| SlotImage {
            slot,
            generation: image_generation(slot_bytes(file, slot_size, slot)).unwrap_or(0),
        })
        .collect();
    // The generation is unchecked here; a corrupt slot that claims to be
    // newer is rejected by `load` and the other one is tried.
    if newer(order[1].generation, order[0].generation) {
        order.swap(0, 1);
    }
    let mut errors = [VarError::NotFound, VarError::NotFound];
    for candidate in order {
        match load(slot_bytes(file, slot_size, candidate.slot)) {
            Ok(count) => return Ok((candidate, count)),
            Err(err) => errors[candidate.slot] = err,
        }
    }
    Err(NoValidSlot { errors })
}

/// Where the next image goes: the other slot, one generation on.
pub fn next_write(current: Option<SlotImage>) -> SlotImage {
    match current {
        None => SlotImage {
            slot: 0,
            generation: 1,
        },
        Some(current) => SlotImage {
            slot: (current.slot + 1) % SLOT_COUNT,
            generation: current.generation.wrapping_add(1),
        },
    }
}

/// Seals `image` (from `VariableStore::non_volatile_image`) for `target`
/// and returns the file offset to write it at.
pub fn prepare_write(image: &mut [u8], target: SlotImage, slot_size: usize) -> Result<u64, Status> {
    if image.len() > slot_size {
        return Err(Status::VOLUME_FULL);
    }
    seal_image(image, target.generation).map_err(|_| Status::INVALID_PARAMETER)?;
    u64::try_from(target.slot.saturating_mul(slot_size)).map_err(|_| Status::VOLUME_FULL)
}

// ---------------------------------------------------------------------------
// The live store file

struct NvState {
    esp: HandleId,
    slot_size: usize,
    /// The slot holding the newest valid image on disk.
    current: Option<SlotImage>,
    /// Whether the store file exists with both slots.
    file_ready: bool,
}

static STATE: Global<Option<NvState>> = Global::new(None);

/// Finds the ESP and loads the newest valid slot of its store file into
/// the variable store. `slot_size` is the RAM store's size. Call it once
/// the disks are published and before the boot manager runs. Returns
/// whether later NON_VOLATILE changes can be written back: then the
/// firmware registers [`persist`] as `efi::runtime`'s persist hook
/// (`src/main.rs`, `wire_hooks`); otherwise they stay in RAM.
pub fn init(slot_size: usize) -> bool {
    let Some(esp) = first_esp() else {
        warn!("variables: no EFI System Partition; non-volatile variables will not persist");
        return false;
    };
    let expected_len = slot_size.saturating_mul(SLOT_COUNT);
    let (file, current) = match read_file(esp, STORE_PATH) {
        Err(StoreReadError::Status(Status::NOT_FOUND)) => {
            info!("variables: no {STORE_PATH}, starting empty");
            (None, None)
        }
        Err(StoreReadError::TooLarge(size)) => {
            warn!(
                "variables: {STORE_PATH} is {size} bytes, more than the {MAX_FILE_SIZE} a store file may have: not read, starting empty"
            );
            (None, None)
        }
        Err(StoreReadError::NoMemory(size)) => {
            warn!(
                "variables: no memory for the {size} bytes of {STORE_PATH} (EFI_OUT_OF_RESOURCES), starting empty"
            );
            (None, None)
        }
        Err(StoreReadError::Status(status)) => {
            warn!(
                "variables: cannot read {STORE_PATH} (status {:#x}), starting empty",
                status.0
            );
            (None, None)
        }
        Ok(bytes) => {
            let loaded = load_newest(&bytes, slot_size, efi::runtime::load_variables);
            let current = match loaded {
                Ok((slot, count)) => {
                    info!(
                        "variables: {count} loaded from {STORE_PATH} (slot {}, generation {})",
                        slot.slot, slot.generation
                    );
                    Some(slot)
                }
                Err(e) => {
                    warn!("variables: {STORE_PATH} unusable ({e}), starting empty");
                    None
                }
            };
            (Some(bytes.len()), current)
        }
    };
    // A read-only disk keeps a store it cannot update: load it, but do not
    // make every NON_VOLATILE SetVariable fail with EFI_DEVICE_ERROR.
    let (writable_path, what) = match file {
        Some(_) => (STORE_PATH, STORE_PATH),
        None => ("\\", "the ESP"),
    };
    if let Err(status) = EfiFile::open_on(
        esp,
        writable_path,
        FileMode::READ | FileMode::WRITE,
        FileAttribute::empty(),
    ) {
        warn!(
            "variables: {what} not writable (status {:#x}); changes will not persist",
            status.0
        );
        return false;
    }
    STATE.with(|state| {
        *state = Some(NvState {
            esp,
            slot_size,
            current,
            // A missing file is created by the first write, not here: a boot
            // that changes no NON_VOLATILE variable leaves the disk alone.
            file_ready: file == Some(expected_len),
        })
    });
    // A resized file lost its old slots: write the loaded store back.
    if file.is_some_and(|len| len != expected_len) && current.is_some() {
        let image = efi::runtime::with_variables(|s| s.non_volatile_image());
        if let Some(image) = image
            && let Err(status) = persist(image)
        {
            warn!("variables: rewrite failed (status {:#x})", status.0);
        }
    }
    true
}

/// The persist hook (`efi::runtime::PersistHook`): writes `image` to the
/// next slot of the store file and flushes. NOT_READY before a successful
/// [`init`].
pub fn persist(mut image: Vec<u8>) -> Result<(), Status> {
    let (esp, slot_size, current, file_ready) = STATE
        .try_with(|state| {
            state
                .as_ref()
                .map(|s| (s.esp, s.slot_size, s.current, s.file_ready))
        })
        .flatten()
        .ok_or(Status::NOT_READY)?;
    if !file_ready {
        create_file(esp, slot_size.saturating_mul(SLOT_COUNT))?;
        STATE.with(|state| {
            if let Some(state) = state.as_mut() {
                state.file_ready = true;
            }
        });
    }
    let target = next_write(current);
    let offset = prepare_write(&mut image, target, slot_size)?;
    let file = EfiFile::open_on(
        esp,
        STORE_PATH,
        FileMode::READ | FileMode::WRITE,
        FileAttribute::empty(),
    )?;
    file.write_at(offset, &image)?;
    file.flush()?;
    STATE.with(|state| {
        if let Some(state) = state.as_mut() {
            state.current = Some(target);
        }
    });
    Ok(())
}

/// The generation of the newest valid store slot on the ESP; None before
/// [`init`], without a writable store, or with no slot written yet. The
/// variable journal records it (`nv_journal`).
pub fn disk_generation() -> Option<u32> {
    STATE
        .try_with(|state| state.as_ref().and_then(|s| s.current).map(|c| c.generation))
        .flatten()
}

/// The first file system, in device order, on a partition marked as the
/// EFI System Partition (§13.18 PartitionInfo `System`: GPT type
/// C12A7328-... or MBR type 0xEF).
fn first_esp() -> Option<HandleId> {
    ps::handles_with(&SimpleFileSystemProtocol::GUID)
        .into_iter()
        .find(|&fs| {
            ps::get_protocol::<PartitionInfo>(fs, &PARTITION_INFO_GUID).is_some_and(|info| {
                // SAFETY: the firmware installed this PartitionInfo
                // structure (protocols::storage) and never frees it.
                unsafe { (*info).system == 1 }
            })
        })
}

/// Creates the store directories and a zero-filled file of `len` bytes
/// (both slots empty), replacing one of another size.
fn create_file(esp: HandleId, len: usize) -> Result<(), Status> {
    for dir in STORE_DIRECTORIES {
        EfiFile::open_on(
            esp,
            dir,
            FileMode::READ | FileMode::WRITE | FileMode::CREATE,
            FileAttribute::DIRECTORY,
        )?;
    }
    if let Ok(old) = EfiFile::open_on(
        esp,
        STORE_PATH,
        FileMode::READ | FileMode::WRITE,
        FileAttribute::empty(),
    ) {
        old.delete()?;
    }
    let file = EfiFile::open_on(
        esp,
        STORE_PATH,
        FileMode::READ | FileMode::WRITE | FileMode::CREATE,
        FileAttribute::empty(),
    )?;
    file.write_at(0, &vec![0u8; len])?;
    file.flush()
}

/// Why the store file was not read.
enum StoreReadError {
    Status(Status),
    /// Larger than [`MAX_FILE_SIZE`] bytes.
    TooLarge(u64),
    /// No heap for its bytes (or `test-alloc-fail=varstore`).
    NoMemory(u64),
}

fn read_file(esp: HandleId, path: &str) -> Result<Vec<u8>, StoreReadError> {
    let file = EfiFile::open_on(esp, path, FileMode::READ, FileAttribute::empty())
        .map_err(StoreReadError::Status)?;
    let size = file.size().map_err(StoreReadError::Status)?;
    if size > MAX_FILE_SIZE {
        return Err(StoreReadError::TooLarge(size));
    }
    if platform::forced_failure::forced(platform::forced_failure::Site::VarStore) {
        return Err(StoreReadError::NoMemory(size));
    }
    let mut data = Vec::new();
    file.read_to_end(&mut data, MAX_FILE_SIZE)
        .map_err(|e| match e {
            ReadError::Status(status) => StoreReadError::Status(status),
            ReadError::TooLarge(size) => StoreReadError::NoMemory(size),
        })?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use efi::variables::{Attributes, HEADER_SIZE, RECORD_HEADER_SIZE, VariableStore};
    use uefi_raw::{Guid, guid};

    const SLOT: usize = 1024;
    const VENDOR: Guid = guid!("00000001-0002-0003-0405-060708090a0b");

    fn ucs2(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn nv() -> Attributes {
        Attributes::NON_VOLATILE | Attributes::BOOTSERVICE_ACCESS | Attributes::RUNTIME_ACCESS
    }

    /// A store image with `Boot0000` = `data` (plus a volatile variable
    /// that must not be in it).
    fn image_with(data: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; SLOT];
        let mut store = VariableStore::new(&mut buf).unwrap();
        store.set(&ucs2("Boot0000"), &VENDOR, nv(), data).unwrap();
        store
            .set(
                &ucs2("Volatile"),
                &VENDOR,
                Attributes::BOOTSERVICE_ACCESS,
                &[1],
            )
            .unwrap();
        store.non_volatile_image()
    }

    /// Writes `image` the way the hook does, into `file`.
    fn write(file: &mut [u8], current: Option<SlotImage>, mut image: Vec<u8>) -> SlotImage {
        let target = next_write(current);
        let offset = prepare_write(&mut image, target, SLOT).unwrap() as usize;
        file[offset..offset + image.len()].copy_from_slice(&image);
        target
    }

    /// Loads `file` into a fresh store; returns the slot and Boot0000.
    fn load(file: &[u8]) -> Result<(SlotImage, Vec<u8>), NoValidSlot> {
        let mut buf = vec![0u8; SLOT];
        let mut store = VariableStore::new(&mut buf).unwrap();
        let (slot, count) = load_newest(file, SLOT, |image| store.load(image))?;
        assert_eq!(count, 1);
        assert!(store.find(&ucs2("Volatile"), &VENDOR).is_none());
        let data = store
            .find(&ucs2("Boot0000"), &VENDOR)
            .unwrap()
            .data
            .to_vec();
        Ok((slot, data))
    }

    #[test]
    fn writes_alternate_and_newest_wins() {
        let mut file = vec![0u8; 2 * SLOT];
        assert!(load(&file).is_err(), "an all-zero file holds nothing");
        let first = write(&mut file, None, image_with(b"one"));
        assert_eq!(
            first,
            SlotImage {
                slot: 0,
                generation: 1
            }
        );
        assert_eq!(load(&file).unwrap(), (first, b"one".to_vec()));
        let second = write(&mut file, Some(first), image_with(b"two"));
        assert_eq!(
            second,
            SlotImage {
                slot: 1,
                generation: 2
            }
        );
        assert_eq!(load(&file).unwrap(), (second, b"two".to_vec()));
        let third = write(&mut file, Some(second), image_with(b"three"));
        assert_eq!(
            third,
            SlotImage {
                slot: 0,
                generation: 3
            }
        );
        assert_eq!(load(&file).unwrap(), (third, b"three".to_vec()));
    }

    #[test]
    fn corrupted_crc_falls_back_to_the_other_slot() {
        let mut file = vec![0u8; 2 * SLOT];
        let first = write(&mut file, None, image_with(b"old"));
        let second = write(&mut file, Some(first), image_with(b"new"));
        // A torn write of the newer slot: one data byte differs.
        let last_data_byte = SLOT + HEADER_SIZE + RECORD_HEADER_SIZE + 18 + 2;
        file[last_data_byte] ^= 0xff;
        assert_eq!(load(&file).unwrap(), (first, b"old".to_vec()));
        // Both bad: nothing loads, and each slot says why.
        file[HEADER_SIZE + RECORD_HEADER_SIZE + 18] ^= 0xff;
        let err = load(&file).unwrap_err();
        for slot_error in err.errors {
            assert!(
                matches!(
                    slot_error,
                    VarError::Corrupt(efi::variables::Corruption::BadCrc { .. })
                ),
                "{slot_error}"
            );
        }
        assert!(
            err.to_string()
                .starts_with("slot A: corrupt variable store: CRC")
        );
        let _ = second;
    }

    #[test]
    fn truncated_file_keeps_what_is_whole() {
        let mut file = vec![0u8; 2 * SLOT];
        let first = write(&mut file, None, image_with(b"kept"));
        let second = write(&mut file, Some(first), image_with(b"lost"));
        let _ = second;
        // Cut inside slot B's image: slot A still loads.
        file.truncate(SLOT + HEADER_SIZE + 4);
        assert_eq!(load(&file).unwrap(), (first, b"kept".to_vec()));
        // Cut inside slot A: nothing.
        file.truncate(10);
        let err = load(&file).unwrap_err();
        assert!(matches!(
            err.errors[0],
            VarError::Corrupt(efi::variables::Corruption::Truncated { len: 10, .. })
        ));
        assert!(load(&[]).is_err());
    }

    #[test]
    fn full_store_fits_its_slot_and_more_does_not() {
        // Fill a store the size of a slot completely.
        let mut buf = vec![0u8; SLOT];
        let mut store = VariableStore::new(&mut buf).unwrap();
        let max = store.max_variable_size();
        store
            .set(&ucs2("Big"), &VENDOR, nv(), &vec![7u8; max - 8])
            .unwrap();
        assert_eq!(store.query_info(nv()).unwrap().remaining_storage, 0);
        let image = store.non_volatile_image();
        assert_eq!(image.len(), SLOT);
        let mut file = vec![0u8; 2 * SLOT];
        let target = write(&mut file, None, image.clone());
        let mut buf2 = vec![0u8; SLOT];
        let mut loaded = VariableStore::new(&mut buf2).unwrap();
        assert_eq!(
            load_newest(&file, SLOT, |i| loaded.load(i)),
            Ok((target, 1))
        );
        // An image larger than a slot is refused, not written over slot B.
        let mut too_big = image;
        too_big.push(0);
        assert_eq!(
            prepare_write(&mut too_big, next_write(None), SLOT),
            Err(Status::VOLUME_FULL)
        );
    }

    #[test]
    fn generations_compare_across_wrap() {
        assert!(newer(2, 1));
        assert!(!newer(1, 2));
        assert!(newer(0, u32::MAX));
        assert_eq!(
            next_write(Some(SlotImage {
                slot: 1,
                generation: u32::MAX
            })),
            SlotImage {
                slot: 0,
                generation: 0
            }
        );
    }
}
