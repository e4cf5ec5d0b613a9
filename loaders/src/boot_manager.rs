//! The boot manager (UEFI 2.10 §3). At each start it first refreshes the
//! automatic boot options (`crate::auto_options`: a Boot#### per file
//! system holding `\EFI\BOOT\BOOTX64.EFI`, one for the built-in BLS loader,
//! a hidden one for the boot menu, a hidden one for the direct kernel boot
//! while `kernel=` is given; the visible ones appended to BootOrder), then
//! tries, in order, falling through to the next when an option is missing,
//! fails to load, or returns (one line on serial says why):
//! 1. a direct kernel boot named on the firmware command line (`kernel=`,
//!    `crate::direct`), as the built-in image's hidden Boot#### option,
//!    whose OptionalData carries the request (after the automatic tag) to
//!    the image as LoadOptions. OVMF runs QEMU's `-kernel` outside its boot
//!    options (TryRunningQemuKernel), so Linux sees no BootCurrent there;
//!    here the option gives BootCurrent. It is never in BootOrder and is
//!    deleted at the first start without `kernel=` (as OVMF drops FvFile
//!    options of files no longer in its volume), so neither BootOrder nor
//!    a stale option can boot an old request: only `kernel=` itself, or an
//!    explicit BootNext to it while it still exists;
//! 2. the boot menu (the built-in image, `crate::builtins`) when `menu=` or
//!    a loader.conf timeout asks for it, as its Boot#### option;
//! 3. the firmware command line's pick: `bootnext=XXXX` (a Boot#### option)
//!    or `path=\EFI\...` (that file on each file system);
//! 4. the `BootNext` variable's option, once: it is deleted first (§3.1.2);
//! 5. the active `Boot####` options in `BootOrder` (§3.1.3), whose device
//!    paths may be full or short-form (§3.1.2: starting at a HardDrive node,
//!    or a bare file path), name a file system whose removable-media path
//!    is meant (§3.1.2; the automatic options) or a built-in image
//!    (`Fv()/FvFile()`). The user's and OS's options come first since the
//!    automatic ones are appended. With `boot=bls` the automatic BLS option
//!    is tried where the first automatic option stands, so the BLS loader
//!    still comes before the removable paths;
//! 6. what step 5 did not try: the removable-media path of each file system
//!    in device order and the BLS loader (BLS first with `boot=bls`), each
//!    as its automatic option when it has one (skipped when the user made
//!    that option inactive), so removable media and BLS entries boot as
//!    before even when BootOrder leaves them out or the variable store is
//!    unavailable.
//!
//! `BootCurrent` (volatile, §3.3) names the Boot#### option being started,
//! for every option-based boot (removable paths, the BLS loader and `kernel=`
//! included); `path=` boots and step 6 fallbacks without an option have
//! none.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use efi::ids::HandleId;
use efi::variables::Attributes;
use log::{info, warn};
use platform::sync::Global;
use protocols::device_path::DevicePathBuf;
use uefi_raw::table::runtime::VariableVendor;
use uefi_raw::{Guid, Status};

use crate::auto_options::{self, automatic_option, is_automatic};
use crate::boot_first::{BootFirst, REMOVABLE_MEDIA_PATH};
use crate::builtins::{
    self, BLS_LOADER_FILE, BLS_LOADER_NAME, BOOT_MENU_FILE, BOOT_MENU_NAME, DIRECT_KERNEL_FILE,
    DIRECT_KERNEL_NAME,
};
use crate::efi_file::EfiFile;
use crate::image_boot::{file_device_path, load_and_start_with_options};
use crate::load_option::{self, LoadOption};
use crate::status::status_name;

/// EFI_GLOBAL_VARIABLE (§3.3), the vendor GUID of BootOrder & co.
pub const GLOBAL_VARIABLE: Guid = VariableVendor::GLOBAL_VARIABLE.0;

/// The device paths of the load options tried during this boot, so the
/// fallbacks (step 6) skip what an option already tried.
static TRIED: Global<Vec<Vec<u8>>> = Global::new(Vec::new());

/// The firmware's own boot services (`crate::services`), for what it does
/// before and in the boot manager (the variable store on the ESP, the
/// boot options): entered by `src/main.rs` once the tables and the
/// firmware image exist, for good. The built-in images enter their own.
pub fn enter_firmware_services() -> Result<crate::services::Entered, Status> {
    // SAFETY: the firmware's system table, set up by `efi::tables::init`
    // before this is called and valid until ExitBootServices.
    let services = unsafe {
        crate::services::Services::new(
            efi::image::firmware_image_handle(),
            efi::tables::system_table(),
        )
    }?;
    Ok(crate::services::enter(services))
}

/// Tries every boot option in the order `cmdline` (the firmware's own
/// command line) asks for, after the boot menu when one is configured
/// (`crate::menu`). Returns when none booted.
pub fn run(cmdline: &str) {
    crate::global_variables::publish();
    efi::events::ready_to_boot_notify();
    builtins::set_command_line(cmdline);
    crate::panic_recovery::read_test_panic(cmdline);
    let direct = crate::direct::request_from_cmdline(cmdline);
    let direct_options = direct.as_ref().map(builtins::direct_kernel_load_options);
    let targets = AutomaticTargets::find(direct_options.clone());
    let numbers = refresh_automatic_options(&targets);
    if let Some(options) = &direct_options {
        match numbers.direct {
            Some(number) => boot_option(number),
            // The store refused the option: the image still boots, without
            // BootCurrent.
            None => {
                let path = builtins::device_path(&DIRECT_KERNEL_FILE);
                let _ = start_boot_option(&path, options, DIRECT_KERNEL_NAME);
            }
        }
    }
    // Decided once, after a `kernel=` boot had its chance: this consumes an
    // OsIndications BOOT_TO_FW_UI request (§8.5.4), and the menu's image
    // reads the decision back.
    let menu_timeout = crate::global_variables::boot_menu_timeout(
        cmdline,
        crate::menu::loader_conf_timeout().as_ref(),
    );
    builtins::set_menu_timeout(menu_timeout);
    if menu_timeout.is_some() {
        match numbers.menu {
            Some(number) => boot_option(number),
            None => {
                let _ = builtins::start(&BOOT_MENU_FILE, BOOT_MENU_NAME);
            }
        }
    }
    // `http=URL` asks for HTTP boot (the NICs' HTTP options fetch that URL),
    // so those options go before the variables, like `bootnext=`.
    let http_given = platform::cmdline::values(cmdline, "http").next().is_some();
    if http_given {
        for &number in &numbers.http {
            boot_option(number);
        }
    }
    match CmdlineChoice::from_cmdline(cmdline) {
        Some(CmdlineChoice::BootOption(number)) => boot_option(number),
        Some(CmdlineChoice::Path(path)) => boot_path_on_each_file_system(&path),
        None => {}
    }
    let boot_first = BootFirst::from_cmdline(cmdline);
    // The HTTP options `http=` already tried are not downloaded again.
    let tried: &[u16] = if http_given { &numbers.http } else { &[] };
    run_load_options(&numbers.first(boot_first), tried);
    run_fallbacks(&targets, boot_first);
}

/// What the automatic options stand for, found at this start.
struct AutomaticTargets {
    /// The device paths of all file systems, in device order, each with
    /// whether the removable-media path opens on it.
    file_systems: Vec<(Vec<u8>, bool)>,
    /// The direct kernel boot image's LoadOptions, when `kernel=` is given.
    direct: Option<Vec<u8>>,
    /// The device paths of the NICs that can boot (their LoadFile is the
    /// PXE client), in device order.
    network: Vec<Vec<u8>>,
}

impl AutomaticTargets {
    fn find(direct: Option<Vec<u8>>) -> Self {
        let file_systems = crate::services::file_systems()
            .into_iter()
            .filter_map(|fs| {
                let has_removable_path = EfiFile::open_volume(fs)
                    .is_ok_and(|root| root.open(REMOVABLE_MEDIA_PATH).is_ok());
                Some((handle_device_path(fs)?, has_removable_path))
            })
            .collect();
        let network = crate::services::load_file_devices()
            .into_iter()
            .filter_map(handle_device_path)
            .collect();
        AutomaticTargets {
            file_systems,
            direct,
            network,
        }
    }

    /// The file systems holding the removable-media path.
    fn removable(&self) -> impl Iterator<Item = &[u8]> {
        self.file_systems
            .iter()
            .filter(|(_, has)| *has)
            .map(|(path, _)| path.as_slice())
    }

    /// The automatic options wanted now, in BootOrder order: the removable
    /// paths, the BLS loader, the network, the (hidden) boot menu, the
    /// (hidden) direct kernel boot when `kernel=` is given.
    fn wanted(&self) -> Vec<LoadOption> {
        let mut wanted: Vec<LoadOption> = self
            .removable()
            .map(|path| automatic_option(&auto_options::removable_description(path), path, false))
            .collect();
        wanted.push(automatic_option(
            BLS_LOADER_NAME,
            &builtins::device_path(&BLS_LOADER_FILE),
            false,
        ));
        for path in &self.network {
            wanted.push(automatic_option(
                &auto_options::network_description(path),
                path,
                false,
            ));
        }
        wanted.push(automatic_option(
            BOOT_MENU_NAME,
            &builtins::device_path(&BOOT_MENU_FILE),
            true,
        ));
        if let Some(options) = &self.direct {
            wanted.push(auto_options::direct_kernel_option(
                DIRECT_KERNEL_NAME,
                &builtins::device_path(&DIRECT_KERNEL_FILE),
                options,
            ));
        }
        wanted
    }
}

/// The numbers of the built-ins' automatic options after the refresh.
struct BuiltinNumbers {
    bls: Option<u16>,
    menu: Option<u16>,
    direct: Option<u16>,
    /// The network options, in device order.
    network: Vec<u16>,
    /// Those of them that are HTTP boot's.
    http: Vec<u16>,
}

impl BuiltinNumbers {
    fn of(options: &[(u16, LoadOption)], network: &[Vec<u8>]) -> Self {
        let numbers_of = |paths: &mut dyn Iterator<Item = &Vec<u8>>| -> Vec<u16> {
            paths
                .filter_map(|path| {
                    options
                        .iter()
                        .find(|(_, o)| is_automatic(o) && o.file_path_list == *path)
                        .map(|(number, _)| *number)
                })
                .collect()
        };
        BuiltinNumbers {
            bls: automatic_number(options, &BLS_LOADER_FILE),
            menu: automatic_number(options, &BOOT_MENU_FILE),
            direct: automatic_number(options, &DIRECT_KERNEL_FILE),
            network: numbers_of(&mut network.iter()),
            http: numbers_of(
                &mut network
                    .iter()
                    .filter(|p| crate::load_file_boot::is_uri_path(p)),
            ),
        }
    }

    /// The automatic options `boot_first` moves up in BootOrder.
    fn first(&self, boot_first: BootFirst) -> Vec<u16> {
        match boot_first {
            BootFirst::RemovableMedia => Vec::new(),
            BootFirst::Bls => self.bls.into_iter().collect(),
            BootFirst::Network => self.network.clone(),
        }
    }
}

/// Every Boot#### variable, parsed (malformed ones skipped).
fn existing_options() -> Vec<(u16, LoadOption)> {
    let raw: Vec<(u16, Vec<u8>)> = efi::runtime::with_variables(|store| {
        store
            .iter_non_volatile()
            .filter(|v| v.guid == GLOBAL_VARIABLE)
            .filter_map(|v| {
                let name: String = char::decode_utf16(v.name())
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect();
                let number = load_option::parse_boot_variable_name(&name)?;
                Some((number, v.data.to_vec()))
            })
            .collect()
    })
    .unwrap_or_default();
    raw.into_iter()
        .filter_map(|(number, bytes)| Some((number, LoadOption::parse(&bytes).ok()?)))
        .collect()
}

/// Creates and deletes automatic options as `crate::auto_options::plan`
/// says, in one store write; returns the built-ins' option numbers.
fn refresh_automatic_options(targets: &AutomaticTargets) -> BuiltinNumbers {
    let existing = existing_options();
    let boot_order = read_variable("BootOrder")
        .and_then(|(_, bytes)| load_option::parse_boot_order(&bytes).ok())
        .unwrap_or_default();
    let plan = auto_options::plan(&existing, &boot_order, &targets.wanted());
    if !plan.is_empty() && apply(&plan).is_err() {
        // Nothing (or not all) was stored: number nothing new, and leave
        // out an option whose LoadOptions may be stale.
        let mut numbers = BuiltinNumbers::of(&existing, &targets.network);
        if !plan.update.is_empty() {
            numbers.direct = None;
        }
        return numbers;
    }
    let mut all = existing;
    all.retain(|(number, _)| !plan.delete.contains(number));
    for (number, option) in plan.update {
        if let Some(slot) = all.iter_mut().find(|(n, _)| *n == number) {
            slot.1 = option;
        }
    }
    all.extend(plan.create);
    BuiltinNumbers::of(&all, &targets.network)
}

/// The number of the automatic option of the built-in `file` in `options`.
fn automatic_number(options: &[(u16, LoadOption)], file: &Guid) -> Option<u16> {
    let path = builtins::device_path(file);
    options
        .iter()
        .find(|(_, o)| is_automatic(o) && o.file_path_list == path)
        .map(|(number, _)| *number)
}

/// Writes a refresh plan with one persist for all of it; Err when a write
/// failed (each failure is logged).
fn apply(plan: &auto_options::Plan) -> Result<(), ()> {
    let non_volatile =
        Attributes::NON_VOLATILE | Attributes::BOOTSERVICE_ACCESS | Attributes::RUNTIME_ACCESS;
    // (name for the log, UCS-2 name, data, attributes)
    let mut writes: Vec<(String, Vec<u16>, Vec<u8>, Attributes)> = Vec::new();
    for number in &plan.delete {
        let name = load_option::boot_variable_name(*number);
        info!(
            "{name}: automatic boot option no longer backed (device gone, or no kernel=), deleted"
        );
        writes.push((
            name.clone(),
            variable_name(&name),
            Vec::new(),
            Attributes::empty(),
        ));
    }
    for (number, option) in &plan.create {
        let Ok(bytes) = option.to_bytes() else {
            continue;
        };
        let name = load_option::boot_variable_name(*number);
        info!("{name}: new automatic boot option '{}'", option.description);
        writes.push((name.clone(), variable_name(&name), bytes, non_volatile));
    }
    for (number, option) in &plan.update {
        let Ok(bytes) = option.to_bytes() else {
            continue;
        };
        let name = load_option::boot_variable_name(*number);
        info!("{name}: '{}' gets new load options", option.description);
        writes.push((name.clone(), variable_name(&name), bytes, non_volatile));
    }
    if let Some(order) = &plan.boot_order {
        let bytes = load_option::serialize_boot_order(order);
        let name = String::from("BootOrder");
        writes.push((name, variable_name("BootOrder"), bytes, non_volatile));
    }
    let changes: Vec<efi::runtime::VariableChange<'_>> = writes
        .iter()
        .map(|(_, name, data, attributes)| {
            (
                name.as_slice(),
                GLOBAL_VARIABLE,
                *attributes,
                data.as_slice(),
            )
        })
        .collect();
    let statuses = efi::runtime::set_variables_persisting(&changes);
    let mut result = Ok(());
    for ((name, ..), status) in writes.iter().zip(statuses) {
        if status.is_error() {
            warn!("cannot update {name}: {}", status_name(status));
            result = Err(());
        }
    }
    result
}

/// Step 6: the removable paths (on every file system, also those whose
/// file would not open when the options were made: LoadImage then says why)
/// and the BLS loader that no option tried, in the order `boot_first` says.
fn run_fallbacks(targets: &AutomaticTargets, boot_first: BootFirst) {
    let bls = builtins::device_path(&BLS_LOADER_FILE);
    let mut order: Vec<&[u8]> = targets
        .file_systems
        .iter()
        .map(|(path, _)| path.as_slice())
        .collect();
    match boot_first {
        BootFirst::RemovableMedia | BootFirst::Network => order.push(&bls),
        BootFirst::Bls => order.insert(0, &bls),
    }
    let network = targets.network.iter().map(Vec::as_slice);
    match boot_first {
        BootFirst::Network => order.splice(0..0, network),
        _ => order.splice(order.len().., network),
    };
    let existing = existing_options();
    for path in order {
        if TRIED.with(|tried| tried.iter().any(|t| t == path)) {
            continue;
        }
        let option = existing
            .iter()
            .find(|(_, o)| is_automatic(o) && o.file_path_list == path);
        match option {
            Some((_, o)) if !o.is_active() => info!("{} is inactive, skipped", o.description),
            Some((number, _)) => boot_option(*number),
            None if path == bls.as_slice() => {
                let _ = builtins::start(&BLS_LOADER_FILE, BLS_LOADER_NAME);
            }
            None if targets.network.iter().any(|n| n == path) => {
                let description = auto_options::network_description(path);
                let status = start_boot_option(path, &[], &description);
                warn!(
                    "{description}: {}; trying the next boot option",
                    status_name(status)
                );
            }
            None => boot_removable_path(path),
        }
    }
}

/// What the firmware command line picks to boot before the variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdlineChoice {
    /// `bootnext=XXXX`: the Boot#### option with that hex number.
    BootOption(u16),
    /// `path=\EFI\...`: that file, on each file system in device order.
    Path(String),
}

impl CmdlineChoice {
    /// The last `bootnext=` or `path=` word wins; malformed ones are
    /// ignored with a warning.
    pub fn from_cmdline(cmdline: &str) -> Option<CmdlineChoice> {
        let choice = |word: platform::cmdline::Word<'_>| {
            let (key, value) = word.key_value()?;
            match key {
                "bootnext" => {
                    let number = value.to_string();
                    let parsed = load_option::option_number_from_hex(&number);
                    if parsed.is_none() {
                        warn!("ignoring bootnext={number}: not four hex digits");
                    }
                    parsed.map(CmdlineChoice::BootOption)
                }
                "path" => {
                    let path = value.to_string().replace('/', "\\");
                    if path.is_empty() {
                        warn!("ignoring an empty path=");
                        return None;
                    }
                    Some(CmdlineChoice::Path(if path.starts_with('\\') {
                        path
                    } else {
                        format!("\\{path}")
                    }))
                }
                _ => None,
            }
        };
        platform::cmdline::words(cmdline).filter_map(choice).last()
    }
}

/// `BootNext` once (deleted before it is tried, so a failing option cannot
/// trap the machine), then the active options of `BootOrder`, the
/// automatic ones in `first` moved up to where the first automatic option
/// stands (`boot=bls`, `boot=net`), except those in `tried`.
fn run_load_options(first: &[u16], tried: &[u16]) {
    if let Some((_, bytes)) = read_variable("BootNext") {
        // §3.1.2: the boot manager deletes BootNext before booting it.
        let status = set_variable("BootNext", Attributes::empty(), &[]);
        if status.is_error() {
            warn!("cannot delete BootNext: {}", status_name(status));
        }
        match <[u8; 2]>::try_from(bytes.as_slice()) {
            Ok(number) => boot_option(u16::from_le_bytes(number)),
            Err(_) => warn!("ignoring BootNext of {} bytes", bytes.len()),
        }
    }
    let Some((_, order)) = read_variable("BootOrder") else {
        return;
    };
    let order = match load_option::parse_boot_order(&order) {
        Ok(order) => order,
        Err(e) => {
            warn!("ignoring BootOrder: {e}");
            return;
        }
    };
    let (order, repeats) = without_repeats(&order);
    if repeats > 0 {
        warn!("BootOrder repeats options {repeats} times; each is tried once");
    }
    let automatic = |number: u16| {
        read_variable(&load_option::boot_variable_name(number))
            .and_then(|(_, bytes)| LoadOption::parse(&bytes).ok())
            .is_some_and(|option| is_automatic(&option))
    };
    for number in walk_order(&order, automatic, first)
        .into_iter()
        .filter(|n| !tried.contains(n))
    {
        boot_active_option(number);
    }
}

/// `order` with each option's first occurrence only, and how many entries
/// were dropped. A BootOrder that lists an option thousands of times (a
/// corrupt or hostile variable) must not cost a load attempt and a warning
/// per repeat.
pub fn without_repeats(order: &[u16]) -> (Vec<u16>, usize) {
    let mut seen = alloc::collections::BTreeSet::new();
    let unique: Vec<u16> = order.iter().copied().filter(|n| seen.insert(*n)).collect();
    let repeats = order.len() - unique.len();
    (unique, repeats)
}

/// The order BootOrder's options are tried in: as listed, except that the
/// automatic options in `first` (the BLS loader's with `boot=bls`, the
/// network options with `boot=net`) move up to where the first automatic
/// option stands, so they precede the removable paths as before there were
/// options; one the user already put ahead stays where it is.
pub fn walk_order(order: &[u16], is_automatic: impl Fn(u16) -> bool, first: &[u16]) -> Vec<u16> {
    let moved: Vec<u16> = order
        .iter()
        .copied()
        .filter(|n| first.contains(n))
        .collect();
    let Some(&leader) = moved.first() else {
        return order.to_vec();
    };
    let mut walk: Vec<u16> = order
        .iter()
        .copied()
        .filter(|n| !moved.contains(n))
        .collect();
    let at = walk
        .iter()
        .position(|&n| is_automatic(n))
        .unwrap_or(walk.len());
    let leader_at = order.iter().position(|&n| n == leader).unwrap_or(0);
    let at = at.min(leader_at);
    walk.splice(at..at, moved);
    walk
}

/// Boots Boot`number` if it exists and is active.
fn boot_active_option(number: u16) {
    match read_option(number) {
        Some(option) if !option.is_active() => {
            info!(
                "{} is inactive, skipped",
                load_option::boot_variable_name(number)
            )
        }
        Some(_) => boot_option(number),
        None => {}
    }
}

/// Reads and parses Boot####; None (after a warning) when missing or bad.
fn read_option(number: u16) -> Option<LoadOption> {
    let name = load_option::boot_variable_name(number);
    let Some((_, bytes)) = read_variable(&name) else {
        warn!("{name} (in BootOrder or BootNext) does not exist");
        return None;
    };
    LoadOption::parse(&bytes)
        .map_err(|e| warn!("{name} is malformed: {e}"))
        .ok()
}

/// Boots load option Boot`number` (active or not), with BootCurrent set.
fn boot_option(number: u16) {
    let name = load_option::boot_variable_name(number);
    if !crate::panic_recovery::starting(number, &name) {
        return;
    }
    let Some(option) = read_option(number) else {
        return;
    };
    let target = option.device_path();
    TRIED.with(|tried| tried.push(option.file_path_list.clone()));
    let file_systems: Vec<(HandleId, Vec<u8>)> = crate::services::file_systems()
        .into_iter()
        .filter_map(|fs| Some((fs, handle_device_path(fs)?)))
        .collect();
    let candidates: Vec<Vec<u8>> = expand_device_path(target.as_bytes(), &file_systems)
        .into_iter()
        .map(|path| with_removable_media_path(path, &file_systems))
        .collect();
    if candidates.is_empty() {
        warn!(
            "{name} ({}): no device matches {}; trying the next boot option",
            option.description,
            target.to_text()
        );
        return;
    }
    for path in candidates {
        let file = efi::device_path::file_path_text(&path).unwrap_or_default();
        // A removable-media boot is logged by its file first, as it was
        // before it had an option.
        let description = if is_automatic(&option) && !file.is_empty() {
            format!("{file} ({name}: {})", option.description)
        } else {
            let text = format!("{name} ({}) {file}", option.description);
            String::from(text.trim_end())
        };
        // §3.3: BootCurrent is volatile BS|RT and names the option booting.
        let status = set_variable(
            "BootCurrent",
            Attributes::BOOTSERVICE_ACCESS | Attributes::RUNTIME_ACCESS,
            &number.to_le_bytes(),
        );
        if status.is_error() {
            warn!("cannot set BootCurrent: {}", status_name(status));
        }
        // §3.1.3: OptionalData goes to the image as LoadOptions; for the
        // firmware's own options only what follows the automatic tag (the
        // direct kernel boot's request). Other options' OptionalData is not
        // passed (unchanged behaviour).
        let load_options = if is_automatic(&option) {
            auto_options::load_options(&option)
        } else {
            &[]
        };
        let status = start_boot_option(&path, load_options, &description);
        crate::panic_recovery::returned();
        match status {
            Status::NOT_FOUND => warn!("{description}: not found; trying the next boot option"),
            Status::SUCCESS => warn!("{description} returned; trying the next boot option"),
            status => warn!(
                "{description} failed: {}; trying the next boot option",
                status_name(status)
            ),
        }
    }
    let _ = set_variable("BootCurrent", Attributes::empty(), &[]);
}

/// Starts a boot option's image. TCG PFP §3.3.4.4: "Calling EFI
/// Application from Boot Option" (and, the first time, the boot variables
/// and the separators) precedes the image's own measurement in LoadImage.
fn start_boot_option(path: &[u8], load_options: &[u8], description: &str) -> Status {
    efi::tcg2::boot_option_attempt();
    if crate::load_file_boot::is_uri_path(path) {
        return start_fetched(path, load_options, description);
    }
    load_and_start_with_options(path, load_options, description)
}

/// An HTTP boot option: the fetched image started, or the fetched disk's
/// removable-media path booted (UEFI 2.10 §24.7.3).
fn start_fetched(path: &[u8], load_options: &[u8], description: &str) -> Status {
    match crate::load_file_boot::fetch(path) {
        Ok(crate::load_file_boot::Fetched::Image(handle)) => match crate::services::current() {
            Ok(services) => {
                crate::image_boot::start_loaded(&services, handle, load_options, description)
            }
            Err(status) => status,
        },
        Ok(crate::load_file_boot::Fetched::RamDisk(disk)) => {
            let prefix = &disk[..disk.len().saturating_sub(4)];
            let volumes: Vec<Vec<u8>> = crate::services::file_systems()
                .into_iter()
                .filter_map(handle_device_path)
                .filter(|fs| fs.starts_with(prefix))
                .collect();
            if volumes.is_empty() {
                warn!("{description}: the RAM disk holds no file system");
            }
            for volume in volumes {
                boot_removable_path(&volume);
            }
            Status::NOT_FOUND
        }
        Err(status) => status,
    }
}

/// Tries `file` on each file system in device order.
fn boot_path_on_each_file_system(file: &str) {
    for fs in crate::services::file_systems() {
        let Some(path) = file_device_path(fs, file) else {
            continue;
        };
        let description = efi::device_path::file_path_text(&path).unwrap_or_default();
        match start_boot_option(&path, &[], &description) {
            Status::NOT_FOUND => continue,
            Status::SUCCESS => warn!("{description} returned; trying the next boot option"),
            status => warn!(
                "{description} failed: {}; trying the next boot option",
                status_name(status)
            ),
        }
    }
}

const MEDIA_TYPE: u8 = 4;
const HARD_DRIVE_SUBTYPE: u8 = 1;
const FILE_PATH_SUBTYPE: u8 = 4;
/// HardDrive node payload: the partition signature and signature type
/// (§10.3.5.1), which identify a partition across device renumbering.
const HD_SIGNATURE: core::ops::Range<usize> = 20..36;
const HD_SIGNATURE_TYPE: usize = 37;

/// The full device paths to try for a load option's path, given the file
/// systems (handle, device path with End) in device order (§3.1.2):
/// - with a HardDrive node (full or short-form path): the file system
///   whose path has a HardDrive node with the same signature, followed by
///   the option's nodes after its HardDrive node;
/// - starting with a file path (short-form): that file on each file
///   system;
/// - otherwise the path itself, for LoadImage to resolve.
pub fn expand_device_path(path: &[u8], file_systems: &[(HandleId, Vec<u8>)]) -> Vec<Vec<u8>> {
    let nodes = efi::device_path::nodes(path);
    let is = |node: &[u8], sub_type| node[0] == MEDIA_TYPE && node[1] == sub_type;
    let hard_drive = nodes
        .iter()
        .position(|node| is(node, HARD_DRIVE_SUBTYPE) && node.len() > HD_SIGNATURE_TYPE + 4);
    // The prefix's nodes, then `tail`, then End. Both come from `nodes`,
    // which yields only whole, well-formed nodes, so the builder accepts
    // them all.
    let with_tail = |prefix: &[u8], tail: &[&[u8]]| -> Option<Vec<u8>> {
        let mut all = efi::device_path::nodes(prefix);
        all.extend_from_slice(tail);
        let path = DevicePathBuf::from_nodes(&all).ok()?;
        Some(path.as_bytes().to_vec())
    };
    if let Some(index) = hard_drive {
        let wanted = nodes[index];
        let same_partition = |node: &&[u8]| {
            is(node, HARD_DRIVE_SUBTYPE)
                && node.get(4 + HD_SIGNATURE.start..4 + HD_SIGNATURE.end)
                    == wanted.get(4 + HD_SIGNATURE.start..4 + HD_SIGNATURE.end)
                && node.get(4 + HD_SIGNATURE_TYPE) == wanted.get(4 + HD_SIGNATURE_TYPE)
        };
        return file_systems
            .iter()
            .filter(|(_, fs_path)| efi::device_path::nodes(fs_path).iter().any(same_partition))
            .take(1)
            .filter_map(|(_, fs_path)| with_tail(fs_path, &nodes[index + 1..]))
            .collect();
    }
    match nodes.first() {
        Some(first) if is(first, FILE_PATH_SUBTYPE) => file_systems
            .iter()
            .filter_map(|(_, fs_path)| with_tail(fs_path, &nodes))
            .collect(),
        Some(_) => with_tail(&[], &nodes).into_iter().collect(),
        None => Vec::new(),
    }
}

fn handle_device_path(handle: HandleId) -> Option<Vec<u8>> {
    crate::image_boot::handle_device_path(&crate::services::current().ok()?, handle)
}

fn variable_name(name: &str) -> Vec<u16> {
    name.encode_utf16().collect()
}

/// A global variable's attributes and data.
fn read_variable(name: &str) -> Option<(Attributes, Vec<u8>)> {
    let name = variable_name(name);
    efi::runtime::with_variables(|store| {
        store
            .find(&name, &GLOBAL_VARIABLE)
            .map(|v| (v.attributes, v.data.to_vec()))
    })
    .flatten()
}

/// Sets (or, with empty data, deletes) a global variable; non-volatile
/// changes are persisted before this returns.
fn set_variable(name: &str, attributes: Attributes, data: &[u8]) -> Status {
    efi::runtime::set_variable_persisting(&variable_name(name), &GLOBAL_VARIABLE, attributes, data)
}

/// Boots the removable-media path of the file system whose device path is
/// `fs_path` (a fallback without a load option).
fn boot_removable_path(fs_path: &[u8]) {
    let Some(path) = append_removable_media_path(fs_path) else {
        return;
    };
    let description = efi::device_path::file_path_text(&path).unwrap_or_default();
    match start_boot_option(&path, &[], &description) {
        Status::NOT_FOUND => {}
        Status::SUCCESS => warn!("{description} returned; trying the next boot option"),
        status => warn!(
            "{description} failed: {}; trying the next boot option",
            status_name(status)
        ),
    }
}

/// `path` (End-terminated) with a FilePath node for the removable-media
/// path before its End.
fn append_removable_media_path(path: &[u8]) -> Option<Vec<u8>> {
    let file = protocols::device_path::file_path(REMOVABLE_MEDIA_PATH).ok()?;
    let mut nodes = efi::device_path::nodes(path);
    nodes.push(&file);
    Some(DevicePathBuf::from_nodes(&nodes).ok()?.as_bytes().to_vec())
}

/// A load option's path that names a file system itself, with no file
/// (the automatic removable options, or a user's option for a whole
/// device), gets the removable-media path appended (§3.1.2, §3.5.1.1);
/// other paths are kept.
pub fn with_removable_media_path(path: Vec<u8>, file_systems: &[(HandleId, Vec<u8>)]) -> Vec<u8> {
    if !file_systems.iter().any(|(_, fs_path)| *fs_path == path) {
        return path;
    }
    append_removable_media_path(&path).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_picks_an_option_or_a_path() {
        assert_eq!(CmdlineChoice::from_cmdline("log=debug"), None);
        assert_eq!(
            CmdlineChoice::from_cmdline("bootnext=000A"),
            Some(CmdlineChoice::BootOption(10))
        );
        assert_eq!(
            CmdlineChoice::from_cmdline("bootnext=12 bootnext=zzzz"),
            None,
            "malformed numbers are ignored"
        );
        assert_eq!(
            CmdlineChoice::from_cmdline("bootnext=0001 path=/EFI/debian/grubx64.efi"),
            Some(CmdlineChoice::Path("\\EFI\\debian\\grubx64.efi".into()))
        );
        assert_eq!(
            CmdlineChoice::from_cmdline("path=\\a.efi bootnext=0003"),
            Some(CmdlineChoice::BootOption(3))
        );
        assert_eq!(
            CmdlineChoice::from_cmdline("path=a.efi"),
            Some(CmdlineChoice::Path("\\a.efi".into()))
        );
        assert_eq!(
            CmdlineChoice::from_cmdline(r#"path="\EFI\my tools\x.efi""#),
            Some(CmdlineChoice::Path("\\EFI\\my tools\\x.efi".into())),
            "a quoted path holds spaces"
        );
        assert_eq!(
            CmdlineChoice::from_cmdline(r#"kernel=\k cmdline="path=\X.EFI bootnext=0001""#),
            None,
            "words inside the kernel's quoted command line are the kernel's"
        );
    }

    #[test]
    fn repeated_boot_order_entries_are_tried_once() {
        assert_eq!(without_repeats(&[]), (vec![], 0));
        assert_eq!(without_repeats(&[3, 1, 2]), (vec![3, 1, 2], 0));
        assert_eq!(without_repeats(&[3, 1, 3, 2, 1, 3]), (vec![3, 1, 2], 3));
        // Issue 18's hostile BootOrder: one option 30,000 times.
        let hostile = vec![0x0007u16; 30_000];
        assert_eq!(without_repeats(&hostile), (vec![7], 29_999));
    }

    #[test]
    fn boot_bls_moves_the_bls_option_before_the_other_automatic_ones() {
        // 0005 and 0006 are the user's, 0001-0003 automatic, 0003 the BLS loader.
        let automatic = |n: u16| (1..=3).contains(&n);
        let order = [5, 1, 2, 3, 6];
        assert_eq!(walk_order(&order, automatic, &[]), order);
        assert_eq!(walk_order(&order, automatic, &[3]), [5, 3, 1, 2, 6]);
        // Already ahead of the other automatic ones (the user moved it): unchanged.
        let order = [3, 5, 1, 2];
        assert_eq!(walk_order(&order, automatic, &[3]), order);
        // Not in BootOrder (the user dropped it): as listed.
        assert_eq!(walk_order(&[5, 1], automatic, &[3]), [5, 1]);
    }

    #[test]
    fn boot_net_moves_every_network_option_up_in_order() {
        // 0001 a disk, 0002 BLS, 0004 and 0005 two NICs; 0007 the user's.
        let automatic = |n: u16| (1..=5).contains(&n);
        assert_eq!(
            walk_order(&[7, 1, 2, 4, 5], automatic, &[4, 5]),
            [7, 4, 5, 1, 2]
        );
    }

    #[test]
    fn a_path_naming_a_file_system_gets_the_removable_media_path() {
        let esp = path(&[pci_root(0), pci(3, 0), hd(0xaa, 1)]);
        let file_systems = [(HandleId::from_value(2), esp.clone())];
        let expected = path(&[
            pci_root(0),
            pci(3, 0),
            hd(0xaa, 1),
            file_path("\\EFI\\BOOT\\BOOTX64.EFI").unwrap(),
        ]);
        assert_eq!(
            with_removable_media_path(esp.clone(), &file_systems),
            expected
        );
        // A file on it, or a device that is no file system, stays as it is.
        let grub = path(&[
            pci_root(0),
            pci(3, 0),
            hd(0xaa, 1),
            file_path("\\EFI\\debian\\grubx64.efi").unwrap(),
        ]);
        assert_eq!(with_removable_media_path(grub.clone(), &file_systems), grub);
        let disk = path(&[pci_root(0), pci(3, 0)]);
        assert_eq!(with_removable_media_path(disk.clone(), &file_systems), disk);
    }

    use protocols::device_path::{file_path, hard_drive, pci, pci_root};
    use protocols::partition::HardDriveInfo;

    fn hd(signature_byte: u8, number: u32) -> Vec<u8> {
        hard_drive(&HardDriveInfo {
            partition_number: number,
            partition_start: 2048,
            partition_size: 4096,
            signature: [signature_byte; 16],
            partition_format: 2,
            signature_type: 2,
        })
    }

    fn path(nodes: &[Vec<u8>]) -> Vec<u8> {
        DevicePathBuf::from_nodes(nodes)
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn load_option_paths_expand_to_our_devices() {
        let esp = path(&[pci_root(0), pci(3, 0), hd(0xaa, 1)]);
        let other = path(&[pci_root(0), pci(4, 0), hd(0xbb, 1)]);
        let file_systems = [
            (HandleId::from_value(1), other.clone()),
            (HandleId::from_value(2), esp.clone()),
        ];
        let shim = file_path("\\EFI\\debian\\shimx64.efi").unwrap();
        let full = path(&[pci_root(0), pci(3, 0), hd(0xaa, 1), shim.clone()]);

        // Short form: HD() + file, matched by signature, on any PCI slot.
        let short = path(&[hd(0xaa, 1), shim.clone()]);
        assert_eq!(
            expand_device_path(&short, &file_systems),
            vec![full.clone()]
        );
        // A full path from another slot numbering still finds the partition.
        let moved = path(&[pci_root(0), pci(9, 0), hd(0xaa, 1), shim.clone()]);
        assert_eq!(
            expand_device_path(&moved, &file_systems),
            vec![full.clone()]
        );
        // A partition we do not have: nothing to try.
        let unknown = path(&[hd(0xcc, 1), shim.clone()]);
        assert!(expand_device_path(&unknown, &file_systems).is_empty());
        // A bare file path: that file on every file system, in order.
        let bare = path(std::slice::from_ref(&shim));
        let mut on_other = efi::device_path::nodes(&other).concat();
        on_other.extend_from_slice(&shim);
        on_other.extend_from_slice(&efi::device_path::END);
        assert_eq!(
            expand_device_path(&bare, &file_systems),
            vec![on_other, full.clone()]
        );
        // Anything else goes to LoadImage unchanged.
        let pci_only = path(&[pci_root(0), pci(5, 0), shim]);
        assert_eq!(
            expand_device_path(&pci_only, &file_systems),
            vec![pci_only.clone()]
        );
        assert!(expand_device_path(&efi::device_path::END, &file_systems).is_empty());
    }
}
