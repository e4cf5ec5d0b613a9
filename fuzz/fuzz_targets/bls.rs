//! Boot Loader Specification Type #1 entries and loader.conf: the first
//! input byte picks the parser, the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loaders::bls;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, contents)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        // The file name drives boot counting ("name+LEFT-DONE.conf"); take it
        // from the first line so the fuzzer can vary it too.
        let (name, body) = match contents.iter().position(|&b| b == b'\n') {
            Some(end) => (&contents[..end], &contents[end + 1..]),
            None => (&b"entry.conf"[..], contents),
        };
        let name = String::from_utf8_lossy(name);
        let _ = bls::type2_candidate(&name);
        if let Ok(Some(entry)) = bls::parse_entry(&name, body) {
            let _ = entry.is_bad();
            let _ = entry.display_title();
            let mut entries = vec![entry.clone(), entry];
            bls::sort_entries(&mut entries);
        }
    } else if let Ok(conf) = bls::parse_loader_conf(contents) {
        let text = String::from_utf8_lossy(contents);
        let _ = bls::glob_match(&text, "entry-6.1.0.conf");
        let _ = bls::compare_versions(&text, "6.1.0-rc1");
        let _ = bls::select_default(&[], &conf);
    }
});
