//! The serial console's input decoder (`protocols::console::input`): bytes
//! from the terminal become EFI keys, escape sequences (ECMA-48 CSI, SS3,
//! Linux console) are decoded, and a lone ESC turns into the Esc key after
//! a pause. Each input byte pair is a received byte and the time since the
//! previous one, so sequences also arrive split across reads and timeouts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocols::console::input::{Decoder, ESC_TIMEOUT_NS, Keyboard, QUEUE_CAPACITY};

/// Time step per unit of the delay byte: delays from 0 to 50 steps stay
/// under the ESC timeout, longer ones pass it.
const STEP_NS: u64 = ESC_TIMEOUT_NS / 50;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new();
    let mut keyboard: Keyboard<u8> = Keyboard::new();
    let mut keys = Vec::new();
    let mut now = 0u64;
    for pair in data.chunks(2) {
        let byte = pair[0];
        let delay = pair.get(1).copied().unwrap_or(0);
        now += u64::from(delay) * STEP_NS;
        decoder.expire(now, &mut keys);
        decoder.feed(byte, now, &mut keys);
        let _ = keyboard.receive(&[byte], now);
    }
    decoder.flush(&mut keys);
    assert!(!decoder.pending());
    for key in &keys {
        let _ = key.input_key();
        let _ = key.key_data(0);
    }

    // The whole input in one read, as a burst from the terminal, with a
    // notification registered for the first key decoded above.
    let mut burst: Keyboard<u8> = Keyboard::new();
    if let Some(first) = keys.first() {
        let handle = burst.register(first.key_data(0), 1).expect("first handle");
        let calls = burst.receive(data, 0);
        assert!(calls.iter().all(|(function, _)| *function == 1));
        burst.unregister(handle).expect("registered handle");
    } else {
        let _ = burst.receive(data, 0);
    }
    let mut queued = 0;
    while burst.pop().is_some() {
        queued += 1;
    }
    assert!(queued <= QUEUE_CAPACITY);
});
