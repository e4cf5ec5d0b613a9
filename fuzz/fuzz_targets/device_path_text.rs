//! Device-path text (UEFI 2.10 §10.6): the from-text parser on any text
//! and the to-text writer on any node. First byte bit 0 clear: the rest is
//! text; whatever parses must write back as text that parses to the same
//! bytes. Bit 0 set: the rest is a node's payload (byte 1 its type, byte 2
//! its subtype); its text must parse back to exactly that node.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocols::device_path_text::{Options, node_text, path_to_text, text_to_path};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let text = String::from_utf8_lossy(rest);
        if let Some(path) = text_to_path(&text) {
            let written = path_to_text(&path).expect("a parsed path is valid");
            assert_eq!(
                text_to_path(&written).as_deref(),
                Some(path.as_slice()),
                "{text:?} -> {written:?}"
            );
        }
        return;
    }
    let [node_type, sub_type, payload @ ..] = rest else {
        return;
    };
    let Ok(node) = protocols::device_path::node(*node_type, *sub_type, payload) else {
        return;
    };
    for (display_only, allow_shortcuts) in [(false, true), (false, false), (true, true)] {
        let options = Options {
            display_only,
            allow_shortcuts,
        };
        let text = node_text(&node, options).expect("a whole node");
        if !display_only {
            let mut path = node.clone();
            path.extend_from_slice(&protocols::device_path::end_entire());
            assert_eq!(text_to_path(&text), Some(path), "{text:?}");
        }
    }
});
