//! The firmware command line's grammar (`platform::cmdline`) and the
//! consumers that read words from it: the direct-boot request, the boot
//! manager's `bootnext=`/`path=` choice and the log level.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::cmdline;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = core::str::from_utf8(data) else {
        return;
    };
    let valid = cmdline::validate(line).is_ok();
    let mut rebuilt_len = 0;
    for word in cmdline::words(line) {
        let raw = word.raw();
        assert!(!raw.is_empty());
        assert!(!raw.starts_with(|c: char| c.is_ascii_whitespace()));
        rebuilt_len += raw.len();
        // Unquoting never adds characters.
        let text = word.text();
        assert!(text.chars().count() <= raw.chars().count());
        assert_eq!(text.to_string().chars().count(), text.chars().count());
        if let Some((key, value)) = word.key_value() {
            assert!(!key.contains('"'));
            assert!(value.is(&value.to_string()));
            if let Some(plain) = value.plain() {
                assert_eq!(plain, value.to_string());
            }
        }
    }
    // Words and the whitespace between them are the whole line.
    let whitespace = line.bytes().filter(u8::is_ascii_whitespace).count();
    assert!(rebuilt_len + whitespace >= line.len());
    if valid {
        let _ = loaders::direct::parse(line);
        let _ = loaders::boot_manager::CmdlineChoice::from_cmdline(line);
        let _ = platform::logger::level_from_cmdline(line);
    }
});
