//! The built-in Boot Loader Specification boot: reads `/loader/loader.conf`,
//! the Type #1 entries `/loader/entries/*.conf` and the Type #2 unified
//! kernel images `/EFI/Linux/*.efi` (`crate::uki`) of each file system
//! through EFI_FILE_PROTOCOL (UEFI 2.10 §13.5), sorts them together and picks
//! the default (`crate::bls`). A Type #1 kernel with the EFI stub is started
//! as an image with the entry's `options` as LoadOptions (§9.1
//! EFI_LOADED_IMAGE) and its initrds, read into EFI pages, published through
//! the Linux initrd LoadFile2 protocol (`crate::initrd`); a kernel without
//! the stub goes through the Linux boot protocol (`crate::linux_boot`). A
//! UKI is started as it is: its stub carries command line and initrd.

use crate::bls::{self, BootEntry, LoaderConf};
use crate::efi_file::{EfiFile, efi_path};
use crate::file_loading::{self, LoadError};
use crate::image_boot;
use crate::initrd;
use crate::uki;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use efi::ids::HandleId;
use log::warn;
use platform::memory::MemoryType;

const LOADER_CONF: &str = "\\loader\\loader.conf";
const ENTRIES_DIR: &str = "\\loader\\entries";
/// Entry and loader.conf files are a few lines; anything larger is not one.
const MAX_CONFIG_SIZE: u64 = 64 * 1024;
/// Entry text (Type #1 files, Type #2 `.osrel`/`.uname` sections) read per
/// volume. Each entry is bounded, their number only by the directory
/// (65,536 FAT entries): tens of thousands of 64 KiB entries would hold
/// gigabytes in the heap. Real volumes hold a few KiB; past this budget the
/// remaining entries are skipped with one line.
const MAX_ENTRY_TEXT: usize = 4 << 20;

/// What is left of [`MAX_ENTRY_TEXT`] on one volume.
struct TextBudget {
    left: usize,
    warned: bool,
}

impl TextBudget {
    fn new() -> Self {
        Self {
            left: MAX_ENTRY_TEXT,
            warned: false,
        }
    }

    /// Takes `bytes` of the budget; false (after one warning naming `what`)
    /// when they do not fit.
    fn take(&mut self, bytes: usize, what: &str) -> bool {
        if let Some(left) = self.left.checked_sub(bytes) {
            self.left = left;
            return true;
        }
        if !core::mem::replace(&mut self.warned, true) {
            warn!(
                "bls: more than {MAX_ENTRY_TEXT} bytes of boot entries on this volume: \
                 skipping {what} and the entries after it"
            );
        }
        false
    }
}

/// Entry file names worth parsing: visible `*.conf` files.
fn is_entry_file(name: &str, is_dir: bool) -> bool {
    !is_dir && !name.starts_with('.') && name.ends_with(".conf")
}

/// The order to try a volume's entries in: the default first, then the
/// rest in menu order.
pub fn boot_order(entries: &[BootEntry], conf: &LoaderConf) -> Vec<usize> {
    let default = bls::select_default(entries, conf);
    default
        .into_iter()
        .chain((0..entries.len()).filter(|&i| Some(i) != default))
        .collect()
}

/// The volume's loader.conf; the defaults when it is missing or unreadable.
fn read_loader_conf(root: &EfiFile, text: &mut Vec<u8>) -> LoaderConf {
    match file_loading::read_file(root, LOADER_CONF, text, MAX_CONFIG_SIZE) {
        Ok(()) => bls::parse_loader_conf(text).unwrap_or_else(|e| {
            warn!("bls: ignoring {LOADER_CONF}: {e}");
            LoaderConf::default()
        }),
        Err(_) => LoaderConf::default(),
    }
}

/// loader.conf and the parsed, sorted entries of the volume `root`.
fn read_entries(root: &EfiFile) -> (LoaderConf, Vec<BootEntry>) {
    let mut text = Vec::new();
    let conf = read_loader_conf(root, &mut text);
    let names = root
        .open(ENTRIES_DIR)
        .and_then(|dir| dir.file_names(is_entry_file))
        .unwrap_or_default();
    let mut budget = TextBudget::new();
    let mut entries = read_type2_entries(root, &mut budget);
    for name in names {
        let path = alloc::format!("{ENTRIES_DIR}\\{name}");
        text.clear();
        if let Err(e) = file_loading::read_file(root, &path, &mut text, MAX_CONFIG_SIZE) {
            warn!("bls: skipping {path}: {e}");
            continue;
        }
        if !budget.take(text.len(), &path) {
            break;
        }
        match bls::parse_entry(&name, &text) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(e) => warn!("bls: skipping {path}: {e}"),
        }
    }
    bls::sort_entries(&mut entries);
    (conf, entries)
}

/// Type #2 entries: the unified kernel images in `\EFI\Linux`, described
/// by their `.osrel` and `.uname` sections (read alone, not the whole image).
fn read_type2_entries(root: &EfiFile, budget: &mut TextBudget) -> Vec<BootEntry> {
    let is_candidate = |name: &str, is_dir: bool| !is_dir && bls::type2_candidate(name).is_some();
    let Ok(names) = root
        .open(uki::TYPE2_DIR)
        .and_then(|dir| dir.file_names(is_candidate))
    else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for name in names {
        let path = alloc::format!("{}\\{name}", uki::TYPE2_DIR);
        let (osrel, uname) = match root.open(&path) {
            Ok(file) => (read_section(&file, ".osrel"), read_section(&file, ".uname")),
            Err(_) => (None, None),
        };
        let len = |s: &Option<Vec<u8>>| s.as_ref().map_or(0, Vec::len);
        if !budget.take(len(&osrel) + len(&uname), &path) {
            break;
        }
        entries.extend(uki::type2_entry(&name, osrel.as_deref(), uname.as_deref()));
    }
    entries
}

/// The contents of the PE section `name` of `file`, when small and present.
fn read_section(file: &EfiFile, name: &str) -> Option<Vec<u8>> {
    let mut header = vec![0u8; uki::HEADER_READ_SIZE];
    file.set_position(0).ok()?;
    let len = file.read_into(&mut header, false).ok()?;
    header.truncate(len);
    let section = uki::sections(&header)
        .ok()?
        .into_iter()
        .find(|s| s.name == name && s.size <= uki::MAX_METADATA_SIZE)?;
    let mut contents = vec![0u8; section.size as usize];
    file.set_position(u64::from(section.file_offset)).ok()?;
    file.read_into(&mut contents, true).ok()?;
    Some(contents)
}

/// Tries the BLS Type #1 and Type #2 entries of every file system, the default entry of
/// each first. Returns when none booted.
pub fn run() {
    for fs in crate::services::file_systems() {
        let Ok(root) = EfiFile::open_volume(fs) else {
            continue;
        };
        let (conf, entries) = read_entries(&root);
        for index in boot_order(&entries, &conf) {
            let entry = &entries[index];
            let title = entry.display_title();
            if let Err(e) = boot_entry(fs, &root, entry) {
                warn!("BLS entry '{title}' ({}): {e}", entry.file_name);
                initrd::uninstall();
            }
        }
    }
}

/// loader.conf and the sorted entries of the file system `fs`, for the
/// firmware's boot menu (`crate::menu`); `None` when it cannot be opened.
pub fn volume_entries(fs: HandleId) -> Option<(LoaderConf, Vec<BootEntry>)> {
    let root = EfiFile::open_volume(fs).ok()?;
    Some(read_entries(&root))
}

/// The loader.conf of the file system `fs` alone (None when the volume
/// cannot be opened).
pub fn volume_loader_conf(fs: HandleId) -> Option<LoaderConf> {
    let root = EfiFile::open_volume(fs).ok()?;
    Some(read_loader_conf(&root, &mut Vec::new()))
}

/// Boots `entry` of the file system `fs`; returns only on failure.
pub fn boot(fs: HandleId, entry: &BootEntry) -> Result<(), LoadError> {
    let root = EfiFile::open_volume(fs).map_err(|status| LoadError::Read {
        path: "\\".to_string(),
        status,
    })?;
    let result = boot_entry(fs, &root, entry);
    if result.is_err() {
        initrd::uninstall();
    }
    result
}

/// Boots one entry; returns only on failure. Type #1 `linux` kernels with
/// the EFI stub and `efi` programs (Type #2 UKIs among them) are started as
/// EFI images; a `linux` kernel without the stub is booted through the
/// Linux boot protocol (`crate::linux_boot`).
fn boot_entry(fs: HandleId, root: &EfiFile, entry: &BootEntry) -> Result<(), LoadError> {
    let kernel = efi_path(
        entry
            .linux
            .as_deref()
            .or(entry.efi.as_deref())
            .ok_or(LoadError::NoKernel)?,
    );
    let initrds: Vec<String> = entry.initrd.iter().map(|p| efi_path(p)).collect();
    let description = alloc::format!("BLS entry '{}'", entry.display_title());
    if entry.linux.is_some() && !file_loading::file_is_pe(root, &kernel)? {
        return file_loading::boot_with_protocol(
            root,
            &kernel,
            &initrds,
            &entry.options,
            &description,
        );
    }
    if !initrds.is_empty() {
        let image =
            file_loading::read_into_pages(root, &initrds, MemoryType::LOADER_DATA, u64::MAX)?;
        initrd::install(image).map_err(LoadError::Initrd)?;
    }
    let handle = image_boot::load_from_volume(fs, &kernel)?;
    let status = image_boot::start_with_options(handle, &entry.options, &description);
    Err(LoadError::Returned(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_text_past_the_volume_budget_is_refused() {
        let mut budget = TextBudget::new();
        // 65 entries of 63 KiB fit (1 KiB left); a 64 KiB one does not.
        for _ in 0..65 {
            assert!(budget.take(63 * 1024, "e.conf"));
        }
        assert!(!budget.take(64 * 1024, "big.conf"));
        assert!(budget.warned);
        // A small entry still fits in what is left; a huge count never wraps.
        assert!(budget.take(1024, "small.conf"));
        assert!(!budget.take(usize::MAX, "x.conf"));
    }

    #[test]
    fn only_visible_conf_files_are_entries() {
        assert!(is_entry_file("debian.conf", false));
        assert!(!is_entry_file("debian.conf", true));
        assert!(!is_entry_file(".debian.conf", false));
        assert!(!is_entry_file("debian.conf.bak", false));
    }

    fn entry(id: &str, linux: &str) -> BootEntry {
        bls::parse_entry(
            &alloc::format!("{id}.conf"),
            alloc::format!("linux {linux}\n").as_bytes(),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn default_entry_is_tried_first_then_menu_order() {
        let mut entries = vec![
            entry("debian-6.1", "/a"),
            entry("debian-6.12", "/b"),
            entry("rescue", "/c"),
        ];
        bls::sort_entries(&mut entries);
        let ids = |order: Vec<usize>| -> Vec<String> {
            order.into_iter().map(|i| entries[i].id.clone()).collect()
        };
        // Without a default: menu order (ids by descending version).
        assert_eq!(
            ids(boot_order(&entries, &LoaderConf::default())),
            ["rescue", "debian-6.12", "debian-6.1"]
        );
        let conf = LoaderConf {
            default: Some("debian-6.1*".to_string()),
            timeout: None,
        };
        // `debian-6.1*` matches both; the first in menu order wins.
        assert_eq!(
            ids(boot_order(&entries, &conf)),
            ["debian-6.12", "rescue", "debian-6.1"]
        );
        assert!(boot_order(&[], &conf).is_empty());
    }
}
