//! The globally defined variables of UEFI 2.10 §3.3 that describe the
//! platform to boot loaders and the OS (Boot####, BootOrder, BootCurrent
//! and BootNext belong to `crate::boot_manager`). [`publish`] runs once
//! before anything boots and leaves, as a platform boot manager does:
//!
//! | variable | attributes | value |
//! |---|---|---|
//! | `PlatformLangCodes` | BS,RT | `en-US` |
//! | `PlatformLang` | NV,BS,RT | `en-US`; a valid one set by the user or OS is kept |
//! | `LangCodes` | BS,RT | `eng` (ISO 639-2, deprecated but still defined) |
//! | `Lang` | NV,BS,RT | `eng`; a valid one is kept |
//! | `ConIn`, `ConOut`, `ErrOut` | NV,BS,RT | the console devices (multi-instance path) |
//! | `ConInDev`, `ConOutDev`, `ErrOutDev` | BS,RT | the same devices |
//! | `Timeout` | NV,BS,RT | created as 0 when absent, else kept |
//! | `BootOptionSupport` | BS,RT | 0: no hot keys, no App or SysPrep options |
//! | `OsIndicationsSupported` | BS,RT | `EFI_OS_INDICATIONS_BOOT_TO_FW_UI` |
//!
//! Variables are written only when their value changes. Non-volatile
//! defaults the next boot would recreate identically are not worth a disk
//! write: they reach the ESP with the next non-volatile write of anyone;
//! replacing an invalid language is written at once (`Writer`).
//!
//! `OsIndications` (§8.5.4): when the OS set `BOOT_TO_FW_UI`, the boot menu
//! — this firmware's user interface — waits for the user without a
//! timeout, and the bit is cleared (written at once) as the menu is about to
//! be shown, acknowledging the request; a `kernel=` boot, which comes before
//! the menu, leaves it set. Other bits are not ours to clear: we advertise
//! none of them, so we never consume them.
//!
//! The boot menu's timeout ([`boot_menu_timeout`]): `menu=` on the firmware
//! command line wins; else a non-zero `Timeout` variable (0xFFFF: wait for
//! the user, as EFI 1.10 §3.2 spelled out and edk2 still reads it); else loader.conf's `timeout`. So
//! `efibootmgr -t 5` shows the menu for 5 s at the next boot while the
//! default `Timeout` of 0 leaves loader.conf in charge.

use alloc::vec::Vec;

use efi::protocol_services as ps;
use efi::variables::Attributes;
use log::{info, warn};
use uefi_raw::Guid;
use uefi_raw::protocol::console::{SimpleTextInputProtocol, SimpleTextOutputProtocol};
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::table::runtime::VariableVendor;

use crate::bls::Timeout as LoaderConfTimeout;
use crate::menu::{MenuTimeout, menu_timeout};
use crate::status::status_name;

const GLOBAL_VARIABLE: Guid = VariableVendor::GLOBAL_VARIABLE.0;

const BS_RT: Attributes = Attributes::BOOTSERVICE_ACCESS.union(Attributes::RUNTIME_ACCESS);
const NV_BS_RT: Attributes = BS_RT.union(Attributes::NON_VOLATILE);

/// EFI_OS_INDICATIONS_BOOT_TO_FW_UI (§8.5.4).
pub const OS_INDICATIONS_BOOT_TO_FW_UI: u64 = 0x1;
/// The OsIndications bits this firmware acts on (§8.5.4).
pub const OS_INDICATIONS_SUPPORTED: u64 = OS_INDICATIONS_BOOT_TO_FW_UI;
/// BootOptionSupport (§3.1.4): no EFI_BOOT_OPTION_SUPPORT_KEY (no Key####
/// hot keys), no _APP (LOAD_OPTION_CATEGORY_APP is not treated apart), no
/// _SYSPREP (SysPrep#### options are not run), key count 0.
pub const BOOT_OPTION_SUPPORT: u32 = 0;
/// RFC 4646 tags, `;`-separated (§3.3 PlatformLangCodes).
pub const PLATFORM_LANG_CODES: &str = "en-US";
pub const DEFAULT_PLATFORM_LANG: &str = "en-US";
/// ISO 639-2 codes, concatenated three-letter codes (§3.3 LangCodes).
pub const LANG_CODES: &str = "eng";
pub const DEFAULT_LANG: &str = "eng";
/// A `Timeout` of 0xFFFF waits for the user (EFI 1.10 §3.2; edk2 too).
pub const TIMEOUT_WAIT_FOREVER: u16 = 0xFFFF;
/// `Timeout` created when absent: boot at once, no menu.
pub const DEFAULT_TIMEOUT: u16 = 0;

/// How a language list spells its codes (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LanguageCodes {
    /// `LangCodes`: ISO 639-2 three-letter codes run together ("engfra").
    Iso639_2,
    /// `PlatformLangCodes`: RFC 4646 tags separated by `;` ("en-US;fr-FR").
    Rfc4646,
}

/// The text of an ASCII string variable: its bytes up to an optional
/// terminating NUL (edk2 stores the NUL, §3.3 does not require it). None
/// for anything but printable ASCII.
pub fn ascii_value(data: &[u8]) -> Option<&str> {
    let text = data.strip_suffix(&[0]).unwrap_or(data);
    if text.is_empty() || !text.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    core::str::from_utf8(text).ok()
}

/// Whether `value` (a Lang or PlatformLang variable's data) names one of
/// `codes`. Language tags compare without regard to case (RFC 4646 §2.1).
pub fn language_is_listed(value: &[u8], codes: &str, kind: LanguageCodes) -> bool {
    let Some(value) = ascii_value(value) else {
        return false;
    };
    let listed = |code: &str| !code.is_empty() && code.eq_ignore_ascii_case(value);
    match kind {
        LanguageCodes::Rfc4646 => codes.split(';').any(listed),
        LanguageCodes::Iso639_2 => {
            codes.len().is_multiple_of(3)
                && codes.is_ascii()
                && (0..codes.len() / 3).any(|i| listed(&codes[i * 3..i * 3 + 3]))
        }
    }
}

/// An ASCII string variable's data, NUL-terminated as edk2 writes it.
pub fn ascii_data(text: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(text.len() + 1);
    data.extend_from_slice(text.as_bytes());
    data.push(0);
    data
}

/// ConIn/ConOut/ErrOut's value: one instance per console device (§10.3.1
/// multi-instance path; §3.3). None when there is no device, or a path is
/// malformed.
pub fn console_variable_value<P: AsRef<[u8]>>(devices: &[P]) -> Option<Vec<u8>> {
    let mut value: Option<Vec<u8>> = None;
    for device in devices {
        value = Some(
            protocols::device_path_utilities::append_instance(value.as_deref(), device.as_ref())
                .ok()?,
        );
    }
    value
}

/// What to do with OsIndications at startup: the value to write back (None
/// when unchanged) and whether the firmware UI was asked for (§8.5.4: the
/// firmware clears BOOT_TO_FW_UI once it acts on it).
pub fn consume_os_indications(indications: u64) -> (Option<u64>, bool) {
    if indications & OS_INDICATIONS_BOOT_TO_FW_UI == 0 {
        return (None, false);
    }
    (Some(indications & !OS_INDICATIONS_BOOT_TO_FW_UI), true)
}

/// A `Timeout` variable's seconds; None when malformed (not a UINT16).
pub fn parse_timeout(data: &[u8]) -> Option<u16> {
    Some(u16::from_le_bytes(data.try_into().ok()?))
}

/// Whether the firmware command line sets the menu (`menu=<seconds>`).
fn cmdline_sets_menu(cmdline: &str) -> bool {
    platform::cmdline::values(cmdline, "menu")
        .any(|seconds| seconds.plain().is_some_and(|s| s.parse::<u32>().is_ok()))
}

/// The boot menu's timeout from every source, in priority order: the
/// firmware UI asked through OsIndications (wait for the user), `menu=` on
/// the command line, a non-zero `Timeout` variable, loader.conf. None: no
/// menu.
pub fn menu_timeout_from(
    firmware_ui: bool,
    cmdline: &str,
    timeout_variable: Option<u16>,
    loader_conf: Option<&LoaderConfTimeout>,
) -> Option<MenuTimeout> {
    if firmware_ui {
        return Some(MenuTimeout::Forever);
    }
    if !cmdline_sets_menu(cmdline) {
        match timeout_variable {
            Some(TIMEOUT_WAIT_FOREVER) => return Some(MenuTimeout::Forever),
            Some(seconds @ 1..) => return Some(MenuTimeout::Seconds(u32::from(seconds))),
            _ => {}
        }
    }
    menu_timeout(cmdline, loader_conf)
}

/// [`menu_timeout_from`] with this boot's OsIndications request and
/// `Timeout` variable: what the boot menu waits. The boot manager calls it
/// once per boot, after a `kernel=` boot had its chance, and hands the
/// result to the menu's image (`crate::builtins::set_menu_timeout`): a
/// BOOT_TO_FW_UI request is consumed here, when the menu is about to be
/// shown (§8.5.4: the bit is cleared once the firmware stops in its UI).
pub fn boot_menu_timeout(
    cmdline: &str,
    loader_conf: Option<&LoaderConfTimeout>,
) -> Option<MenuTimeout> {
    let timeout = read("Timeout").and_then(|(_, data)| parse_timeout(&data));
    let firmware_ui = take_firmware_ui_request();
    menu_timeout_from(firmware_ui, cmdline, timeout, loader_conf)
}

/// Whether OsIndications asks for the firmware UI; if so the bit is
/// cleared at once, with one store write, so the next boot does not stop
/// again. The other bits stay as the OS set them: they are not ours.
fn take_firmware_ui_request() -> bool {
    let Some((attributes, data)) = read("OsIndications") else {
        return false;
    };
    let Ok(bytes) = <[u8; 8]>::try_from(data.as_slice()) else {
        warn!("ignoring OsIndications of {} bytes", data.len());
        return false;
    };
    let (remaining, firmware_ui) = consume_os_indications(u64::from_le_bytes(bytes));
    if let Some(remaining) = remaining {
        info!("OsIndications asks for the firmware UI: the boot menu waits");
        let status = efi::runtime::set_variable_persisting(
            &utf16("OsIndications"),
            &GLOBAL_VARIABLE,
            attributes,
            &remaining.to_le_bytes(),
        );
        if status.is_error() {
            warn!("cannot clear OsIndications: {}", status_name(status));
        }
    }
    firmware_ui
}

/// Sets the global variables of the module table. Failures are reported on serial and do not stop the boot.
pub fn publish() {
    let mut writer = Writer::default();
    writer.ensure("PlatformLangCodes", BS_RT, &ascii_data(PLATFORM_LANG_CODES));
    writer.ensure("LangCodes", BS_RT, &ascii_data(LANG_CODES));
    writer.keep_listed_language(
        "PlatformLang",
        PLATFORM_LANG_CODES,
        LanguageCodes::Rfc4646,
        DEFAULT_PLATFORM_LANG,
    );
    writer.keep_listed_language("Lang", LANG_CODES, LanguageCodes::Iso639_2, DEFAULT_LANG);
    writer.publish_consoles();
    match read("Timeout") {
        Some((attributes, data)) if attributes == NV_BS_RT && parse_timeout(&data).is_some() => {}
        Some(_) => {
            warn!("Timeout is malformed; reset to {DEFAULT_TIMEOUT}");
            writer.ensure("Timeout", NV_BS_RT, &DEFAULT_TIMEOUT.to_le_bytes());
        }
        None => writer.ensure("Timeout", NV_BS_RT, &DEFAULT_TIMEOUT.to_le_bytes()),
    }
    writer.ensure(
        "BootOptionSupport",
        BS_RT,
        &BOOT_OPTION_SUPPORT.to_le_bytes(),
    );
    writer.ensure(
        "OsIndicationsSupported",
        BS_RT,
        &OS_INDICATIONS_SUPPORTED.to_le_bytes(),
    );
    writer.persist();
}

/// Changes variables in the runtime's store; non-volatile changes reach
/// the disk with at most one store write at the end, and only when they
/// must. The defaults (a first boot's PlatformLang, Lang, ConIn/ConOut/
/// ErrOut, Timeout) would be recreated identically at the next boot, so
/// they are not worth a disk write (each rewrites the store on the ESP,
/// measured at +30-45 ms of a TCG boot): they stay in the store, non-volatile
/// and visible to the OS, and reach the disk with the next non-volatile
/// write of anyone (shim's SbatLevel, a Boot####...). What a later boot
/// must not redo is written at once: an invalid language replaced.
#[derive(Default)]
struct Writer {
    /// A change that must reach the disk now.
    must_persist: bool,
    /// A non-volatile variable this writer set (name, attributes, data):
    /// setting it again through `set_variable_persisting` writes the whole
    /// non-volatile image, every earlier change included.
    last_non_volatile: Option<(&'static str, Attributes, Vec<u8>)>,
}

impl Writer {
    /// Sets `name` to `data` with `attributes` unless it already holds
    /// exactly that, so an unchanged variable costs nothing. A variable with
    /// other attributes is deleted first (§8.2.3: SetVariable cannot change
    /// the attributes of an existing variable).
    fn ensure(&mut self, name: &'static str, attributes: Attributes, data: &[u8]) {
        match read(name) {
            Some((current, value)) if current == attributes && value == data => return,
            Some((current, _)) if current != attributes => self.set(name, Attributes::empty(), &[]),
            _ => {}
        }
        self.set(name, attributes, data);
    }

    /// SetVariable in the store, without persisting yet. (A non-volatile
    /// variable replaced by a volatile one — a *Dev an OS made
    /// non-volatile — is gone from RAM only; the next boot replaces it
    /// again.)
    fn set(&mut self, name: &'static str, attributes: Attributes, data: &[u8]) {
        let result = efi::runtime::with_variables(|store| {
            store.set(&utf16(name), &GLOBAL_VARIABLE, attributes, data)
        });
        match result {
            Some(Ok(())) if attributes.contains(Attributes::NON_VOLATILE) => {
                self.last_non_volatile = Some((name, attributes, data.to_vec()));
            }
            Some(Ok(())) => {}
            Some(Err(e)) => warn!("cannot set {name}: {}", status_name(e.status())),
            None => warn!("cannot set {name}: no variable store"),
        }
    }

    /// One store write for every non-volatile change when one must reach
    /// the disk, through the path SetVariable takes
    /// (`efi::runtime::set_variable_persisting`).
    fn persist(self) {
        if !self.must_persist {
            return;
        }
        let Some((name, attributes, data)) = self.last_non_volatile else {
            return;
        };
        let status = efi::runtime::set_variable_persisting(
            &utf16(name),
            &GLOBAL_VARIABLE,
            attributes,
            &data,
        );
        if status.is_error() {
            warn!("global variables not saved: {}", status_name(status));
        }
    }

    /// Keeps Lang/PlatformLang when it names a listed language with the
    /// spec's attributes; otherwise (absent, unlisted or malformed) sets
    /// `default`, saying so on serial when a value was replaced.
    fn keep_listed_language(
        &mut self,
        name: &'static str,
        codes: &str,
        kind: LanguageCodes,
        default: &str,
    ) {
        match read(name) {
            Some((attributes, data))
                if attributes == NV_BS_RT && language_is_listed(&data, codes, kind) => {}
            Some((_, data)) => {
                let shown = ascii_value(&data).unwrap_or("<not an ASCII string>");
                warn!("{name} {shown:?} is not one of {codes:?}; set to {default}");
                self.ensure(name, NV_BS_RT, &ascii_data(default));
                self.must_persist = true;
            }
            None => self.ensure(name, NV_BS_RT, &ascii_data(default)),
        }
    }

    /// ConIn/ConOut/ErrOut and their *Dev: the device paths of the handles
    /// with the console protocols. StdErr goes where ConOut goes (the system
    /// table's StdErr is the ConOut interface).
    fn publish_consoles(&mut self) {
        let input = devices_with(&SimpleTextInputProtocol::GUID);
        let output = devices_with(&SimpleTextOutputProtocol::GUID);
        for (names, devices) in [
            (["ConIn", "ConInDev"], &input),
            (["ConOut", "ConOutDev"], &output),
            (["ErrOut", "ErrOutDev"], &output),
        ] {
            let Some(value) = console_variable_value(devices) else {
                warn!("{}: no console device with a device path", names[0]);
                continue;
            };
            self.ensure(names[0], NV_BS_RT, &value);
            self.ensure(names[1], BS_RT, &value);
        }
    }
}

/// The device paths of the handles carrying `protocol`, in handle order.
fn devices_with(protocol: &Guid) -> Vec<Vec<u8>> {
    ps::handles_with(protocol)
        .into_iter()
        .filter_map(|handle| {
            let path = ps::get_protocol::<DevicePathProtocol>(handle, &DevicePathProtocol::GUID)?;
            // SAFETY: device paths installed on handles are well formed and
            // stay installed while we read them (no code runs meanwhile).
            unsafe { efi::device_path::read_path(path) }.ok()
        })
        .collect()
}

fn utf16(name: &str) -> Vec<u16> {
    name.encode_utf16().collect()
}

/// A global variable's attributes and data, from the runtime's store.
fn read(name: &str) -> Option<(Attributes, Vec<u8>)> {
    let name = utf16(name);
    efi::runtime::with_variables(|store| {
        store
            .find(&name, &GLOBAL_VARIABLE)
            .map(|v| (v.attributes, v.data.to_vec()))
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::console::device_path::CONSOLE_DEVICE_PATH;

    #[test]
    fn ascii_values_may_end_in_one_nul() {
        assert_eq!(ascii_value(b"en-US\0"), Some("en-US"));
        assert_eq!(ascii_value(b"en-US"), Some("en-US"));
        assert_eq!(ascii_value(b"en\0US"), None);
        assert_eq!(ascii_value(b"\0"), None);
        assert_eq!(ascii_value(b""), None);
        assert_eq!(ascii_value(b"en US"), None);
        assert_eq!(ascii_value(&[0xc3, 0xa9]), None);
    }

    #[test]
    fn platform_lang_must_be_one_of_the_rfc4646_codes() {
        let codes = "en-US;fr-FR";
        let kind = LanguageCodes::Rfc4646;
        assert!(language_is_listed(b"en-US\0", codes, kind));
        assert!(language_is_listed(b"fr-FR", codes, kind));
        assert!(
            language_is_listed(b"EN-us\0", codes, kind),
            "tags ignore case"
        );
        assert!(!language_is_listed(b"en\0", codes, kind));
        assert!(!language_is_listed(b"de-DE\0", codes, kind));
        assert!(!language_is_listed(b"en-US;fr-FR", codes, kind));
        assert!(!language_is_listed(b"", codes, kind));
        assert!(
            !language_is_listed(b"", ";", kind),
            "empty codes list nothing"
        );
        assert!(language_is_listed(
            &ascii_data(DEFAULT_PLATFORM_LANG),
            PLATFORM_LANG_CODES,
            kind
        ));
    }

    #[test]
    fn lang_must_be_one_of_the_three_letter_codes() {
        let kind = LanguageCodes::Iso639_2;
        assert!(language_is_listed(b"eng\0", "engfra", kind));
        assert!(language_is_listed(b"fra", "engfra", kind));
        assert!(
            !language_is_listed(b"ngf", "engfra", kind),
            "code boundaries"
        );
        assert!(!language_is_listed(b"en", "engfra", kind));
        assert!(!language_is_listed(b"eng", "engf", kind), "malformed list");
        assert!(language_is_listed(
            &ascii_data(DEFAULT_LANG),
            LANG_CODES,
            kind
        ));
    }

    #[test]
    fn console_variables_list_each_device_as_an_instance() {
        assert_eq!(console_variable_value::<&[u8]>(&[]), None);
        let one = console_variable_value(&[&CONSOLE_DEVICE_PATH[..]]).unwrap();
        assert_eq!(one, CONSOLE_DEVICE_PATH, "a single device is its own path");
        let screen = protocols::device_path::DevicePathBuf::from_nodes(&[
            protocols::device_path::pci_root(0),
            protocols::device_path::pci(2, 0),
        ])
        .unwrap();
        let two = console_variable_value(&[&CONSOLE_DEVICE_PATH[..], screen.as_bytes()]).unwrap();
        let (first, next) = protocols::device_path_utilities::next_instance(&two).unwrap();
        assert_eq!(first, CONSOLE_DEVICE_PATH);
        let (second, last) =
            protocols::device_path_utilities::next_instance(&two[next.unwrap()..]).unwrap();
        assert_eq!(second, screen.as_bytes());
        assert_eq!(last, None);
        assert!(
            console_variable_value(&[&b"\x01\x01"[..]]).is_none(),
            "malformed"
        );
    }

    #[test]
    fn boot_to_firmware_ui_is_consumed_and_other_bits_kept() {
        assert_eq!(consume_os_indications(0), (None, false));
        assert_eq!(consume_os_indications(0x4), (None, false));
        assert_eq!(consume_os_indications(0x1), (Some(0), true));
        assert_eq!(consume_os_indications(0x45), (Some(0x44), true));
        assert_eq!(OS_INDICATIONS_SUPPORTED & OS_INDICATIONS_BOOT_TO_FW_UI, 1);
    }

    #[test]
    fn timeout_is_a_uint16() {
        assert_eq!(parse_timeout(&[5, 0]), Some(5));
        assert_eq!(parse_timeout(&[0xff, 0xff]), Some(TIMEOUT_WAIT_FOREVER));
        assert_eq!(parse_timeout(&[5]), None);
        assert_eq!(parse_timeout(&[5, 0, 0, 0]), None);
    }

    #[test]
    fn menu_timeout_sources_in_priority_order() {
        let conf = LoaderConfTimeout::Seconds(7);
        let seconds = MenuTimeout::Seconds;
        // OsIndications' firmware UI beats everything, even menu=0.
        assert_eq!(
            menu_timeout_from(true, "menu=0", Some(0), Some(&conf)),
            Some(MenuTimeout::Forever)
        );
        // menu= on the command line beats the variable.
        assert_eq!(
            menu_timeout_from(false, "menu=3", Some(9), None),
            Some(seconds(3))
        );
        assert_eq!(
            menu_timeout_from(false, "menu=0", Some(9), Some(&conf)),
            None
        );
        // A non-zero Timeout beats loader.conf; 0xFFFF waits.
        assert_eq!(
            menu_timeout_from(false, "", Some(9), Some(&conf)),
            Some(seconds(9))
        );
        assert_eq!(
            menu_timeout_from(false, "", Some(TIMEOUT_WAIT_FOREVER), None),
            Some(MenuTimeout::Forever)
        );
        // Timeout 0 (the default) or absent leaves loader.conf in charge.
        assert_eq!(
            menu_timeout_from(false, "", Some(0), Some(&conf)),
            Some(seconds(7))
        );
        assert_eq!(
            menu_timeout_from(false, "", None, Some(&conf)),
            Some(seconds(7))
        );
        assert_eq!(menu_timeout_from(false, "", Some(0), None), None);
        // A malformed menu= is ignored, as by the menu itself.
        assert_eq!(
            menu_timeout_from(false, "menu=x", Some(4), None),
            Some(seconds(4))
        );
    }
}
