//! The persistent variable file `\EFI\vmfw\vars.bin`: two slots
//! (`loaders::nv_store`), each a store image that `efi::variables`
//! checks record by record before loading it (UEFI 2.10 §8.2 semantics on
//! top). After a load the variables are walked as GetNextVariableName and
//! GetVariable see them, and the non-volatile image is re-serialised and
//! must load again with the same variables.
//!
//! The first input byte chooses the slot size (bits 1-7) and whether the
//! harness reseals each slot's CRC first (bit 0), so the fuzzer gets past
//! the CRC to the records; the rest is the file.
#![no_main]

use efi::variables::{Attributes, VariableStore, image_generation, seal_image};
use libfuzzer_sys::fuzz_target;
use loaders::nv_store::{SLOT_COUNT, load_newest, next_write, prepare_write, slot_bytes};

/// Store images are at least this big (header, one record of a one-letter
/// name and one data byte), so every slot size is a usable store.
const MIN_SLOT: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let slot_size = MIN_SLOT + usize::from(flags >> 1) * 16;
    let mut file = bytes.to_vec();
    if flags & 1 != 0 {
        for slot in 0..SLOT_COUNT {
            let start = (slot * slot_size).min(file.len());
            let end = (start + slot_size).min(file.len());
            let image = &mut file[start..end];
            let generation = image_generation(image).unwrap_or(0);
            let _ = seal_image(image, generation);
        }
    }

    let mut buffer = vec![0u8; slot_size];
    let mut store = VariableStore::new(&mut buffer).expect("slot-sized store");
    let Ok((loaded, count)) = load_newest(&file, slot_size, |image| store.load(image)) else {
        return;
    };
    assert!(slot_bytes(&file, slot_size, loaded.slot).len() <= slot_size);

    // GetNextVariableName from the start reaches every variable once.
    let mut seen = 0;
    let mut previous: Option<(Vec<u16>, _)> = None;
    loop {
        let next = match &previous {
            None => store.next_variable(None),
            Some((name, guid)) => store.next_variable(Some((name, guid))),
        };
        let Ok(variable) = next else {
            break;
        };
        let name: Vec<u16> = variable.name().collect();
        let found = store
            .find(&name, &variable.guid)
            .expect("listed variable is found");
        assert_eq!(found.data, variable.data);
        previous = Some((name, variable.guid));
        seen += 1;
        assert!(
            seen <= count,
            "GetNextVariableName lists more than was loaded"
        );
    }
    assert_eq!(seen, count);

    // The non-volatile part written back loads again, unchanged.
    let non_volatile = store.iter_non_volatile().count();
    let mut image = store.non_volatile_image();
    let target = next_write(Some(loaded));
    prepare_write(&mut image, target, slot_size).expect("image fits its slot");
    let mut copy = vec![0u8; slot_size];
    let mut reloaded = VariableStore::new(&mut copy).expect("slot-sized store");
    assert_eq!(reloaded.load(&image), Ok(non_volatile));
    for variable in reloaded.iter_non_volatile() {
        assert!(variable.attributes.contains(Attributes::NON_VOLATILE));
        let name: Vec<u16> = variable.name().collect();
        let original = store
            .find(&name, &variable.guid)
            .expect("reloaded variable exists");
        assert_eq!(original.data, variable.data);
    }
});
