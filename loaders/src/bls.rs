//! Boot Loader Specification (UAPI group BLS): Type #1 entries in
//! `/loader/entries/*.conf`, `loader.conf`, the spec's sort order, and the
//! Type #2 (`/EFI/Linux/*.efi`) candidate rule. Boot counting follows the
//! UAPI "Automatic Boot Assessment" naming (`NAME+LEFT[-DONE].conf`).
#![forbid(unsafe_code)]

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

/// The only `architecture` value this firmware boots (BLS: EFI architecture names).
pub const NATIVE_ARCHITECTURE: &str = "x64";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlsError {
    /// The file is not UTF-8; carries the byte offset of the first bad byte.
    NotUtf8 { valid_up_to: usize },
    /// A Type #1 entry file name must end in `.conf`.
    NotConfFile(String),
    /// The entry names neither `linux` nor `efi`.
    MissingKernel(String),
}

impl fmt::Display for BlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlsError::NotUtf8 { valid_up_to } => {
                write!(f, "not UTF-8 after byte {valid_up_to}")
            }
            BlsError::NotConfFile(name) => write!(f, "entry file {name:?} does not end in .conf"),
            BlsError::MissingKernel(id) => write!(f, "entry {id:?} has neither linux nor efi"),
        }
    }
}

/// Boot-counting state from a `+LEFT[-DONE]` file-name suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootCounter {
    pub tries_left: u32,
    pub tries_done: Option<u32>,
}

/// A Type #1 entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootEntry {
    /// File name without `.conf` and without the boot-counting suffix.
    pub id: String,
    /// The file name as found (needed to rename it when counting boots).
    pub file_name: String,
    pub title: Option<String>,
    pub version: Option<String>,
    pub machine_id: Option<String>,
    pub sort_key: Option<String>,
    pub linux: Option<String>,
    pub initrd: Vec<String>,
    pub efi: Option<String>,
    /// All `options` lines, joined with single spaces.
    pub options: String,
    pub architecture: Option<String>,
    pub counter: Option<BootCounter>,
}

impl BootEntry {
    /// Entries whose tries are used up are "bad": sorted last, never default.
    pub fn is_bad(&self) -> bool {
        self.counter.is_some_and(|c| c.tries_left == 0)
    }

    /// What a menu shows: title, else id (plus version when there is one).
    pub fn display_title(&self) -> String {
        let mut title = self.title.clone().unwrap_or_else(|| self.id.clone());
        if let Some(version) = &self.version {
            title.push_str(" (");
            title.push_str(version);
            title.push(')');
        }
        title
    }
}

/// Splits `NAME+LEFT[-DONE]` into NAME and the counter; other names are returned whole.
pub fn split_boot_counter(stem: &str) -> (&str, Option<BootCounter>) {
    let Some((name, suffix)) = stem.rsplit_once('+') else {
        return (stem, None);
    };
    let (left, done) = match suffix.split_once('-') {
        Some((left, done)) => (left, Some(done)),
        None => (suffix, None),
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    match (number(left), done.map(number)) {
        (Some(tries_left), None) => (
            name,
            Some(BootCounter {
                tries_left,
                tries_done: None,
            }),
        ),
        (Some(tries_left), Some(Some(done))) => (
            name,
            Some(BootCounter {
                tries_left,
                tries_done: Some(done),
            }),
        ),
        _ => (stem, None),
    }
}

/// Yields `(key, value)` for each non-blank, non-comment line; key and value
/// are separated by the first run of whitespace.
fn key_values(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        match line.split_once([' ', '\t']) {
            Some((key, value)) => Some((key, value.trim())),
            None => Some((line, "")),
        }
    })
}

fn utf8(bytes: &[u8]) -> Result<&str, BlsError> {
    core::str::from_utf8(bytes).map_err(|e| BlsError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

/// Parses one entry file. Returns `Ok(None)` for entries for another
/// architecture, which are filtered out as the spec requires.
pub fn parse_entry(file_name: &str, contents: &[u8]) -> Result<Option<BootEntry>, BlsError> {
    let stem = file_name
        .strip_suffix(".conf")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| BlsError::NotConfFile(file_name.to_string()))?;
    let (id, counter) = split_boot_counter(stem);
    let mut entry = BootEntry {
        id: id.to_string(),
        file_name: file_name.to_string(),
        counter,
        ..BootEntry::default()
    };
    for (key, value) in key_values(utf8(contents)?) {
        let value = value.to_string();
        match key {
            "title" => entry.title = Some(value),
            "version" => entry.version = Some(value),
            "machine-id" => entry.machine_id = Some(value),
            "sort-key" => entry.sort_key = Some(value),
            "linux" => entry.linux = Some(value),
            "initrd" => entry.initrd.push(value),
            "efi" => entry.efi = Some(value),
            "options" if !value.is_empty() => {
                if !entry.options.is_empty() {
                    entry.options.push(' ');
                }
                entry.options.push_str(&value);
            }
            "architecture" => entry.architecture = Some(value),
            // devicetree, devicetree-overlay and unknown keys do not apply here.
            _ => {}
        }
    }
    if entry.linux.is_none() && entry.efi.is_none() {
        return Err(BlsError::MissingKernel(entry.id));
    }
    if let Some(arch) = &entry.architecture
        && !arch.eq_ignore_ascii_case(NATIVE_ARCHITECTURE)
    {
        log::info!("bls: skipping {file_name}: architecture {arch}");
        return Ok(None);
    }
    Ok(Some(entry))
}

/// The longest countdown a `timeout` asks for; longer ones (and 0xFFFF, the
/// UEFI Timeout variable's "wait indefinitely") mean [`Timeout::MenuForce`].
pub const MAX_TIMEOUT_SECONDS: u32 = 0xFFFF;

/// `timeout` in loader.conf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Seconds to show the menu; 0 (also `menu-hidden`/`menu-disabled`) boots at once.
    Seconds(u32),
    /// Show the menu and wait for the user.
    MenuForce,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoaderConf {
    /// Glob over entry ids.
    pub default: Option<String>,
    pub timeout: Option<Timeout>,
}

/// Parses `/loader/loader.conf`; unknown keys (console-mode, editor, ...) are ignored.
pub fn parse_loader_conf(contents: &[u8]) -> Result<LoaderConf, BlsError> {
    let mut conf = LoaderConf::default();
    for (key, value) in key_values(utf8(contents)?) {
        match key {
            "default" if !value.is_empty() => conf.default = Some(value.to_string()),
            "timeout" => {
                conf.timeout = parse_timeout(value).or_else(|| {
                    log::warn!("bls: ignoring timeout {value:?}");
                    conf.timeout
                })
            }
            _ => {}
        }
    }
    Ok(conf)
}

/// A loader.conf `timeout` value; None when it is none of the forms.
fn parse_timeout(value: &str) -> Option<Timeout> {
    match value {
        "menu-force" => return Some(Timeout::MenuForce),
        "menu-hidden" | "menu-disabled" => return Some(Timeout::Seconds(0)),
        _ => {}
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: beyond u32 is as long as the longest.
    let seconds = value.parse::<u32>().unwrap_or(u32::MAX);
    if seconds < MAX_TIMEOUT_SECONDS {
        return Some(Timeout::Seconds(seconds));
    }
    // The UEFI Timeout variable's 0xFFFF means "wait indefinitely" (UEFI
    // 2.10 §3.3); a countdown as long waits for a key too, rather than run
    // for years.
    log::warn!(
        "bls: timeout {value} s is {MAX_TIMEOUT_SECONDS} s or more: the menu waits for a key"
    );
    Some(Timeout::MenuForce)
}

fn strip_zeros(s: &[u8]) -> &[u8] {
    let zeros = s.iter().take_while(|&&c| c == b'0').count();
    &s[zeros..]
}

/// Version comparison of the UAPI "Version Format Specification": `~` sorts
/// before everything (even the end), then the end, then `-`, `^`, `.`;
/// digit runs compare numerically and beat letter runs; letters compare bytewise.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let valid = |c: u8| c.is_ascii_alphanumeric() || b"~-^.".contains(&c);
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        while a.first().is_some_and(|&c| !valid(c)) {
            a = &a[1..];
        }
        while b.first().is_some_and(|&c| !valid(c)) {
            b = &b[1..];
        }
        let (ca, cb) = (a.first().copied(), b.first().copied());
        // Separators, in precedence order: the side that has it is older.
        if let Some(sep) = [b'~', 0, b'-', b'^', b'.'].into_iter().find(|&sep| {
            let is = |c: Option<u8>| {
                if sep == 0 {
                    c.is_none()
                } else {
                    c == Some(sep)
                }
            };
            is(ca) || is(cb)
        }) {
            if sep == 0 {
                // One side ended: the longer one is newer (or both ended: equal).
                return ca.is_some().cmp(&cb.is_some());
            }
            match (ca == Some(sep), cb == Some(sep)) {
                (true, true) => {
                    a = &a[1..];
                    b = &b[1..];
                    continue;
                }
                (true, false) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
        }
        let digit_run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
        let alpha_run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        if ca.is_some_and(|c| c.is_ascii_digit()) || cb.is_some_and(|c| c.is_ascii_digit()) {
            a = strip_zeros(a);
            b = strip_zeros(b);
            let (la, lb) = (digit_run(a), digit_run(b));
            let order = la.cmp(&lb).then_with(|| a[..la].cmp(&b[..lb]));
            if order != Ordering::Equal {
                return order;
            }
            a = &a[la..];
            b = &b[lb..];
        } else {
            let (la, lb) = (alpha_run(a), alpha_run(b));
            let common = la.min(lb);
            let order = a[..common].cmp(&b[..common]).then(la.cmp(&lb));
            if order != Ordering::Equal {
                return order;
            }
            a = &a[la..];
            b = &b[lb..];
        }
    }
}

/// The BLS menu order: good entries before bad (tries used up) ones; entries
/// with sort-key first, by sort-key, then machine-id, then version descending;
/// entries without sort-key after, by id in descending version order.
pub fn compare_entries(a: &BootEntry, b: &BootEntry) -> Ordering {
    a.is_bad()
        .cmp(&b.is_bad())
        .then_with(|| match (&a.sort_key, &b.sort_key) {
            (Some(key_a), Some(key_b)) => key_a
                .cmp(key_b)
                .then_with(|| a.machine_id.cmp(&b.machine_id))
                .then_with(|| {
                    let version = |e: &BootEntry| e.version.clone().unwrap_or_default();
                    compare_versions(&version(b), &version(a))
                })
                .then_with(|| compare_versions(&b.id, &a.id)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => compare_versions(&b.id, &a.id),
        })
}

pub fn sort_entries(entries: &mut [BootEntry]) {
    entries.sort_by(compare_entries);
}

/// Glob match with `*` (any run) and `?` (any one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Index of the default entry in sorted `entries`: the first good entry whose
/// id (with or without `.conf`) matches the `default` glob, else the first good
/// entry, else the first entry.
pub fn select_default(entries: &[BootEntry], conf: &LoaderConf) -> Option<usize> {
    let matches = |entry: &BootEntry, pattern: &str| {
        glob_match(pattern, &entry.id) || glob_match(pattern, &alloc::format!("{}.conf", entry.id))
    };
    conf.default
        .as_deref()
        .and_then(|pattern| {
            entries
                .iter()
                .position(|e| !e.is_bad() && matches(e, pattern))
        })
        .or_else(|| entries.iter().position(|e| !e.is_bad()))
        .or(if entries.is_empty() { None } else { Some(0) })
}

/// Type #2: whether a file in `/EFI/Linux/` is a unified kernel image
/// candidate (a visible `*.efi`, case-insensitively), and its id and boot counter.
pub fn type2_candidate(file_name: &str) -> Option<(&str, Option<BootCounter>)> {
    if file_name.starts_with('.') || file_name.contains(['/', '\\']) || file_name.len() <= 4 {
        return None;
    }
    // A name ending in a multi-byte character has no 4-byte ASCII suffix.
    let (stem, extension) = file_name.split_at_checked(file_name.len() - 4)?;
    if !extension.eq_ignore_ascii_case(".efi") {
        return None;
    }
    Some(split_boot_counter(stem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type2_candidate_survives_multibyte_names() {
        assert_eq!(type2_candidate("kernel\u{e9}\u{e9}"), None);
        assert!(type2_candidate("linux-\u{e9}.EFI").is_some());
    }

    const DEBIAN: &str = "\
# Boot Loader Specification type#1 entry
# File created by /usr/lib/kernel/install.d/90-loaderentry.install (systemd 252.39-1~deb12u2)
title      Debian GNU/Linux 12 (bookworm)
version    6.1.0-57-amd64
machine-id 6a9857a393724b7a981ebb5b8495b9ea
sort-key   debian
options    root=UUID=0b0a6a73-3d54-4d1a-9f0e-6d0cb1b7e5f1 ro
options    quiet
linux      /6a9857a393724b7a981ebb5b8495b9ea/6.1.0-57-amd64/linux
initrd     /6a9857a393724b7a981ebb5b8495b9ea/6.1.0-57-amd64/initrd.img-6.1.0-57-amd64
";

    const FEDORA: &str = "title Fedora Linux (6.8.5-301.fc40.x86_64) 40 (Workstation Edition)
version 6.8.5-301.fc40.x86_64
linux /vmlinuz-6.8.5-301.fc40.x86_64
initrd /intel-ucode.img
initrd /initramfs-6.8.5-301.fc40.x86_64.img
options root=UUID=1c2e rhgb quiet
grub_users $grub_users
grub_arg --unrestricted
grub_class fedora
";

    fn entry(name: &str, text: &str) -> BootEntry {
        parse_entry(name, text.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn parses_debian_entry() {
        let e = entry(
            "6a9857a393724b7a981ebb5b8495b9ea-6.1.0-57-amd64+3-1.conf",
            DEBIAN,
        );
        assert_eq!(e.id, "6a9857a393724b7a981ebb5b8495b9ea-6.1.0-57-amd64");
        assert_eq!(
            e.counter,
            Some(BootCounter {
                tries_left: 3,
                tries_done: Some(1)
            })
        );
        assert_eq!(e.title.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(e.version.as_deref(), Some("6.1.0-57-amd64"));
        assert_eq!(e.sort_key.as_deref(), Some("debian"));
        assert_eq!(
            e.options,
            "root=UUID=0b0a6a73-3d54-4d1a-9f0e-6d0cb1b7e5f1 ro quiet"
        );
        assert_eq!(e.initrd.len(), 1);
        assert!(e.linux.as_deref().unwrap().ends_with("/linux"));
        assert!(!e.is_bad());
    }

    #[test]
    fn parses_fedora_entry() {
        let e = entry("8f1e-6.8.5-301.fc40.x86_64.conf", FEDORA);
        assert_eq!(e.id, "8f1e-6.8.5-301.fc40.x86_64");
        assert_eq!(e.counter, None);
        assert_eq!(
            e.initrd,
            ["/intel-ucode.img", "/initramfs-6.8.5-301.fc40.x86_64.img"]
        );
        assert_eq!(e.options, "root=UUID=1c2e rhgb quiet");
        assert_eq!(e.sort_key, None);
    }

    #[test]
    fn entry_filters_and_errors() {
        let arm = "title x\nlinux /vmlinuz\narchitecture aa64\n";
        assert_eq!(parse_entry("arm.conf", arm.as_bytes()), Ok(None));
        let x64 = "title x\nefi /EFI/tool.efi\narchitecture X64\ndevicetree /dtb\n";
        assert_eq!(
            entry("tool.conf", x64).efi.as_deref(),
            Some("/EFI/tool.efi")
        );
        assert_eq!(
            parse_entry("a.conf", b"title only\n"),
            Err(BlsError::MissingKernel("a".into()))
        );
        assert_eq!(
            parse_entry("a.txt", b"linux /x\n"),
            Err(BlsError::NotConfFile("a.txt".into()))
        );
        assert_eq!(
            parse_entry("a.conf", b"linux /\xff\n"),
            Err(BlsError::NotUtf8 { valid_up_to: 7 })
        );
        let tabs = entry("t.conf", "\n  # comment\n\tlinux\t\t/vmlinuz  \noptions\n");
        assert_eq!(
            (tabs.linux.as_deref(), tabs.options.as_str()),
            (Some("/vmlinuz"), "")
        );
    }

    #[test]
    fn boot_counter_suffixes() {
        assert_eq!(
            split_boot_counter("a+5"),
            (
                "a",
                Some(BootCounter {
                    tries_left: 5,
                    tries_done: None
                })
            )
        );
        assert_eq!(
            split_boot_counter("a+0-3"),
            (
                "a",
                Some(BootCounter {
                    tries_left: 0,
                    tries_done: Some(3)
                })
            )
        );
        for not_counter in ["a+", "a+x", "a+1-", "a+-1", "c++", "a+1-2-3"] {
            assert_eq!(split_boot_counter(not_counter), (not_counter, None));
        }
    }

    #[test]
    fn version_comparison() {
        use Ordering::*;
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.2", "1.10", Less),
            ("6.1.0-57-amd64", "6.1.0-9-amd64", Greater),
            ("123", "0123", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0.1", Less),
            ("123-9", "123.1", Less),
            ("1.0^p1", "1.0", Greater),
            ("1.0^p1", "1.0.1", Less),
            ("a", "b", Less),
            ("1a", "1", Greater),
            ("1", "a", Greater),
            ("abc", "ab", Greater),
            ("6.8.5-301.fc40", "6.8.5-300.fc40", Greater),
            ("1_2", "1.2", Greater), // `_` is skipped; `.` loses to a digit
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_versions(a, b), expected, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    fn keyed(id: &str, sort_key: Option<&str>, machine: &str, version: &str) -> BootEntry {
        BootEntry {
            id: id.into(),
            sort_key: sort_key.map(Into::into),
            machine_id: Some(machine.into()),
            version: Some(version.into()),
            linux: Some("/vmlinuz".into()),
            ..BootEntry::default()
        }
    }

    #[test]
    fn sort_order() {
        let mut entries = vec![
            keyed("a-10", None, "dd", "10"),
            keyed("a-5", None, "dd", "5"),
            keyed("b", None, "b7", "3"),
            keyed("c", Some("xxxx"), "30", "5"),
            keyed("cx", Some("xxxx"), "30", "10"),
            keyed("d", Some("kkkk"), "81", "100"),
            keyed("e", Some("xxxx"), "20", "1"),
        ];
        let mut bad = keyed("d-bad", Some("kkkk"), "81", "200");
        bad.counter = Some(BootCounter {
            tries_left: 0,
            tries_done: Some(3),
        });
        entries.push(bad);
        sort_entries(&mut entries);
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["d", "e", "cx", "c", "b", "a-10", "a-5", "d-bad"]);
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("debian-*", "debian-6.1.0-57-amd64"));
        assert!(glob_match("*-amd64", "debian-6.1.0-57-amd64"));
        assert!(glob_match("6a98*6.1.0-?7*", "6a9857a3-6.1.0-57-amd64"));
        assert!(glob_match("a*b*c", "axxbyybc"));
        assert!(!glob_match("a*b*c", "axxbyybd"));
        assert!(!glob_match("fedora-*", "debian-1"));
        assert!(!glob_match("?", ""));
        assert!(glob_match("é?", "éa"));
    }

    #[test]
    fn loader_conf_and_default() {
        let conf = parse_loader_conf(
            b"# comment\ndefault  fedora-*\ntimeout 5\nconsole-mode max\neditor no\n",
        )
        .unwrap();
        assert_eq!(
            conf,
            LoaderConf {
                default: Some("fedora-*".into()),
                timeout: Some(Timeout::Seconds(5))
            }
        );
        assert_eq!(
            parse_loader_conf(b"timeout menu-force").unwrap().timeout,
            Some(Timeout::MenuForce)
        );
        assert_eq!(
            parse_loader_conf(b"timeout 0").unwrap().timeout,
            Some(Timeout::Seconds(0))
        );
        assert_eq!(
            parse_loader_conf(b"timeout menu-hidden").unwrap().timeout,
            Some(Timeout::Seconds(0))
        );
        assert_eq!(parse_loader_conf(b"timeout soon").unwrap().timeout, None);
        // Countdowns of 0xFFFF s and more wait for a key instead (issue 18:
        // 4294967295 counted down for 136 years).
        assert_eq!(
            parse_loader_conf(b"timeout 65534").unwrap().timeout,
            Some(Timeout::Seconds(65534))
        );
        for huge in [
            &b"timeout 65535"[..],
            b"timeout 4294967295",
            b"timeout 99999999999999999999",
        ] {
            assert_eq!(
                parse_loader_conf(huge).unwrap().timeout,
                Some(Timeout::MenuForce)
            );
        }

        let mut entries = vec![
            keyed("debian-6.1.0-57", Some("debian"), "m", "6.1.0-57"),
            keyed("fedora-6.8.5", Some("fedora"), "m", "6.8.5"),
            keyed("fedora-6.9.1", Some("fedora"), "m", "6.9.1"),
        ];
        sort_entries(&mut entries);
        assert_eq!(select_default(&entries, &conf), Some(1));
        assert_eq!(entries[1].id, "fedora-6.9.1");
        let by_file = LoaderConf {
            default: Some("debian-*.conf".into()),
            timeout: None,
        };
        assert_eq!(select_default(&entries, &by_file), Some(0));
        let none = LoaderConf {
            default: Some("arch-*".into()),
            timeout: None,
        };
        assert_eq!(select_default(&entries, &none), Some(0));
        entries[0].counter = Some(BootCounter {
            tries_left: 0,
            tries_done: None,
        });
        assert_eq!(select_default(&entries, &LoaderConf::default()), Some(1));
        assert_eq!(select_default(&[], &conf), None);
    }

    #[test]
    fn type2_candidates() {
        assert_eq!(
            type2_candidate("debian-6.1.0.efi"),
            Some(("debian-6.1.0", None))
        );
        assert_eq!(type2_candidate("UKI.EFI"), Some(("UKI", None)));
        assert_eq!(
            type2_candidate("fedora+2-1.efi"),
            Some((
                "fedora",
                Some(BootCounter {
                    tries_left: 2,
                    tries_done: Some(1)
                })
            ))
        );
        for rejected in [
            ".hidden.efi",
            ".efi",
            "vmlinuz",
            "linux.efi.signed",
            "a/b.efi",
            "x.conf",
        ] {
            assert_eq!(type2_candidate(rejected), None, "{rejected}");
        }
    }
}
