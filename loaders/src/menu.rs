//! The firmware's boot menu on the console. It appears only when a timeout
//! is configured — `menu=<seconds>` on the firmware command line, a
//! non-zero `Timeout` variable (UEFI 2.10 §3.3), or a positive `timeout` (or
//! `menu-force`) in a volume's `/loader/loader.conf` (Boot Loader
//! Specification), in that order (`crate::global_variables`) — or when the
//! OS asked for the firmware UI (OsIndications, §8.5.4: then it waits for
//! the user) — and lists the removable-media path
//! `\EFI\BOOT\BOOTX64.EFI` of each file system (UEFI 2.10 §3.5.1.1) and the
//! BLS Type #1 entries, in the order the boot manager tries those two kinds
//! (`boot=bls` puts the entries first). Up/Down/Home/End move the selection,
//! Enter boots it; the countdown boots the highlighted option and stops at
//! the first key. `Boot####` load options are not listed.
//!
//! [`Menu`] and [`menu_timeout`] are the logic (host-tested); [`run`] draws
//! it through ConOut, reads keys through ConIn and counts seconds with a
//! timer event (`crate::text_console`), then boots what was picked.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use efi::ids::HandleId;
use log::{info, warn};
use protocols::console::input::{CHAR_CARRIAGE_RETURN, Key, ScanCode};
use uefi_raw::Status;

use crate::bls::{BootEntry, Timeout};
use crate::bls_boot;
use crate::boot_first::{BootFirst, REMOVABLE_MEDIA_PATH};
use crate::efi_file;
use crate::image_boot::{file_device_path, load_and_start};
use crate::text_console::{SecondTimer, TextConsole, wait_for_any};

/// How long the menu waits before booting the selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MenuTimeout {
    Seconds(u32),
    /// Wait for the user (`timeout menu-force`).
    Forever,
}

/// The menu's timeout: the last `menu=<seconds>` of the firmware command
/// line wins (`menu=0` turns the menu off), else loader.conf's `timeout`.
/// `None`: no menu, boot at once.
pub fn menu_timeout(cmdline: &str, loader_conf: Option<&Timeout>) -> Option<MenuTimeout> {
    let from_cmdline = platform::cmdline::values(cmdline, "menu")
        .filter_map(|value| match value.plain().map(str::parse::<u32>) {
            Some(Ok(seconds)) => Some(seconds),
            _ => {
                warn!("ignoring menu={value}: not a number of seconds");
                None
            }
        })
        .last();
    let timeout = match from_cmdline {
        Some(seconds) => MenuTimeout::Seconds(seconds),
        None => match loader_conf? {
            Timeout::Seconds(seconds) => MenuTimeout::Seconds(*seconds),
            Timeout::MenuForce => MenuTimeout::Forever,
        },
    };
    (timeout != MenuTimeout::Seconds(0)).then_some(timeout)
}

/// What a key or a second of waiting did to the menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do but redraw.
    Changed,
    /// Boot option `index`.
    Boot(usize),
    /// The key means nothing here.
    Ignored,
}

/// The menu's state: which option is highlighted and the countdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Menu {
    count: usize,
    selected: usize,
    /// Seconds left; `None` once stopped (or never started).
    remaining: Option<u32>,
}

impl Menu {
    /// A menu over `count` options (at least one) highlighting `default`.
    pub fn new(count: usize, default: usize, timeout: MenuTimeout) -> Menu {
        Menu {
            count: count.max(1),
            selected: default.min(count.saturating_sub(1)),
            remaining: match timeout {
                MenuTimeout::Seconds(s) => Some(s),
                MenuTimeout::Forever => None,
            },
        }
    }

    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn remaining(&self) -> Option<u32> {
        self.remaining
    }

    /// Handles one key. Any key stops the countdown.
    pub fn key(&mut self, key: &Key) -> Outcome {
        let counting = self.remaining.take().is_some();
        let last = self.count - 1;
        let selected = match key.scan {
            ScanCode::UP => self.selected.saturating_sub(1),
            ScanCode::DOWN => (self.selected + 1).min(last),
            ScanCode::HOME | ScanCode::PAGE_UP => 0,
            ScanCode::END | ScanCode::PAGE_DOWN => last,
            ScanCode::NULL if key.unicode == CHAR_CARRIAGE_RETURN => {
                return Outcome::Boot(self.selected);
            }
            _ if counting => return Outcome::Changed,
            _ => return Outcome::Ignored,
        };
        self.selected = selected;
        Outcome::Changed
    }

    /// One second passed: counts down, booting the selection at zero.
    pub fn tick(&mut self) -> Outcome {
        match self.remaining {
            None => Outcome::Ignored,
            Some(0 | 1) => {
                self.remaining = Some(0);
                Outcome::Boot(self.selected)
            }
            Some(s) => {
                self.remaining = Some(s - 1);
                Outcome::Changed
            }
        }
    }

    /// The menu as text lines ending in `\r\n`: `titles` with a `>` before
    /// the selection, the key help and the countdown.
    pub fn render(&self, titles: &[String]) -> String {
        let mut text = String::from("vmfw boot menu\r\n\r\n");
        for (index, title) in titles.iter().enumerate() {
            let marker = if index == self.selected { '>' } else { ' ' };
            let _ = write!(text, " {marker} {}. {title}\r\n", index + 1);
        }
        text.push_str("\r\nUp/Down to select, Enter to boot.\r\n");
        if let Some(seconds) = self.remaining {
            let _ = write!(text, "Booting the selected option in {seconds} s.\r\n");
        }
        text
    }
}

/// What a menu option boots.
enum Target {
    RemovableMedia { path: Vec<u8> },
    Bls { fs: HandleId, entry: Box<BootEntry> },
}

struct BootOption {
    title: String,
    target: Target,
}

/// The options in the order the boot manager tries them.
fn boot_options(first: BootFirst) -> Vec<BootOption> {
    let mut removable = Vec::new();
    let mut bls = Vec::new();
    for fs in crate::services::file_systems() {
        if efi_file::file_exists(fs, REMOVABLE_MEDIA_PATH)
            && let Some(path) = file_device_path(fs, REMOVABLE_MEDIA_PATH)
        {
            let title = efi::device_path::file_path_text(&path)
                .unwrap_or_else(|| String::from(REMOVABLE_MEDIA_PATH));
            removable.push(BootOption {
                title,
                target: Target::RemovableMedia { path },
            });
        }
        let Some((conf, entries)) = bls_boot::volume_entries(fs) else {
            continue;
        };
        for index in bls_boot::boot_order(&entries, &conf) {
            let entry = Box::new(entries[index].clone());
            bls.push(BootOption {
                title: entry.display_title(),
                target: Target::Bls { fs, entry },
            });
        }
    }
    match first {
        // The menu lists the disks' choices; network options are not in it.
        BootFirst::RemovableMedia | BootFirst::Network => {
            removable.into_iter().chain(bls).collect()
        }
        BootFirst::Bls => bls.into_iter().chain(removable).collect(),
    }
}

/// The `timeout` of the first loader.conf, in file-system order, that sets one.
pub fn loader_conf_timeout() -> Option<Timeout> {
    crate::services::file_systems()
        .into_iter()
        .find_map(|fs| bls_boot::volume_loader_conf(fs)?.timeout)
}

/// Draws `menu` on `console` and runs it until an option is picked: keys
/// from ConIn, one tick of the countdown per second of a periodic timer
/// event, both awaited with WaitForEvent. `None` when the timer or the
/// wait fails (the boot manager then goes on without the menu).
fn choose(console: &TextConsole, mut menu: Menu, titles: &[String]) -> Option<usize> {
    let draw = |menu: &Menu| {
        let _ = console.clear();
        let _ = console.write(&menu.render(titles));
    };
    let timer = SecondTimer::start()
        .map_err(|status| warn!("boot menu: no timer: {status:?}"))
        .ok()?;
    let mut events = [console.key_event(), timer.event()];
    draw(&menu);
    loop {
        let outcome = match wait_for_any(&mut events) {
            // WaitForKey may be signalled with the key already taken.
            Ok(0) => console
                .read_key()
                .map_or(Outcome::Ignored, |key| menu.key(&key)),
            Ok(_) => menu.tick(),
            Err(status) => {
                warn!("boot menu: WaitForEvent failed: {status:?}");
                return None;
            }
        };
        match outcome {
            Outcome::Boot(index) => return Some(index),
            Outcome::Changed => draw(&menu),
            Outcome::Ignored => {}
        }
    }
}

/// The menu as the firmware's UI, started on purpose (its Boot####
/// option): `timeout` is this boot's decision (the boot manager's, from
/// `crate::global_variables::boot_menu_timeout`), else it waits for the
/// user.
pub fn run_as_firmware_ui(cmdline: &str, timeout: Option<MenuTimeout>) {
    show(cmdline, timeout.unwrap_or(MenuTimeout::Forever));
}

/// Shows the menu with `timeout` and boots the option picked; returns when
/// there is nothing to list or the pick did not boot.
fn show(cmdline: &str, timeout: MenuTimeout) {
    let options = boot_options(BootFirst::from_cmdline(cmdline));
    if options.is_empty() {
        return;
    }
    let Some(console) = TextConsole::from_system_table() else {
        warn!("boot menu: no console (ConIn/ConOut), not shown");
        return;
    };
    let titles: Vec<String> = options.iter().map(|o| o.title.clone()).collect();
    let menu = Menu::new(options.len(), 0, timeout);
    let Some(chosen) = choose(&console, menu, &titles) else {
        return;
    };
    let Some(option) = options.get(chosen) else {
        return;
    };
    info!("boot menu: option {} '{}'", chosen + 1, option.title);
    match &option.target {
        Target::RemovableMedia { path } => {
            let status = load_and_start(path, &option.title);
            if status != Status::SUCCESS {
                warn!("{} did not boot: {status:?}", option.title);
            }
        }
        Target::Bls { fs, entry } => {
            if let Err(e) = bls_boot::boot(*fs, entry) {
                warn!("BLS entry '{}': {e}", option.title);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn command_line_overrides_loader_conf_and_zero_disables() {
        assert_eq!(menu_timeout("", None), None);
        assert_eq!(menu_timeout("log=info", Some(&Timeout::Seconds(0))), None);
        assert_eq!(
            menu_timeout("", Some(&Timeout::Seconds(5))),
            Some(MenuTimeout::Seconds(5))
        );
        assert_eq!(
            menu_timeout("", Some(&Timeout::MenuForce)),
            Some(MenuTimeout::Forever)
        );
        assert_eq!(menu_timeout("menu=3", None), Some(MenuTimeout::Seconds(3)));
        assert_eq!(menu_timeout("menu=0", Some(&Timeout::Seconds(5))), None);
        assert_eq!(
            menu_timeout("menu=7 menu=x", Some(&Timeout::MenuForce)),
            Some(MenuTimeout::Seconds(7))
        );
        assert_eq!(
            menu_timeout("menu=soon", Some(&Timeout::Seconds(2))),
            Some(MenuTimeout::Seconds(2))
        );
    }

    const ENTER: Key = Key::char(CHAR_CARRIAGE_RETURN);

    #[test]
    fn arrows_move_within_bounds_and_enter_boots() {
        let mut menu = Menu::new(3, 0, MenuTimeout::Forever);
        assert_eq!(menu.key(&Key::scan(ScanCode::UP)), Outcome::Changed);
        assert_eq!(menu.selected(), 0);
        menu.key(&Key::scan(ScanCode::DOWN));
        menu.key(&Key::scan(ScanCode::DOWN));
        menu.key(&Key::scan(ScanCode::DOWN));
        assert_eq!(menu.selected(), 2);
        menu.key(&Key::scan(ScanCode::HOME));
        assert_eq!(menu.selected(), 0);
        menu.key(&Key::scan(ScanCode::END));
        assert_eq!(menu.key(&ENTER), Outcome::Boot(2));
        assert_eq!(menu.key(&Key::char(u16::from(b'q'))), Outcome::Ignored);
    }

    #[test]
    fn countdown_boots_the_selection_unless_a_key_stops_it() {
        let mut menu = Menu::new(2, 1, MenuTimeout::Seconds(2));
        assert_eq!(menu.tick(), Outcome::Changed);
        assert_eq!(menu.remaining(), Some(1));
        assert_eq!(menu.tick(), Outcome::Boot(1));

        let mut menu = Menu::new(2, 0, MenuTimeout::Seconds(2));
        assert_eq!(menu.key(&Key::char(u16::from(b'x'))), Outcome::Changed);
        assert_eq!(menu.remaining(), None);
        assert_eq!(menu.tick(), Outcome::Ignored);
        assert_eq!(menu.tick(), Outcome::Ignored);

        let mut forever = Menu::new(1, 0, MenuTimeout::Forever);
        assert_eq!(forever.tick(), Outcome::Ignored);
    }

    #[test]
    fn default_beyond_the_list_is_clamped() {
        assert_eq!(Menu::new(2, 9, MenuTimeout::Forever).selected(), 1);
        assert_eq!(Menu::new(0, 0, MenuTimeout::Forever).selected(), 0);
    }

    #[test]
    fn render_marks_the_selection_and_shows_the_countdown() {
        let titles = ["Debian".to_string(), "Rescue".to_string()];
        let mut menu = Menu::new(2, 0, MenuTimeout::Seconds(5));
        let text = menu.render(&titles);
        assert!(text.contains(" > 1. Debian\r\n"), "{text}");
        assert!(text.contains("   2. Rescue\r\n"), "{text}");
        assert!(text.contains("in 5 s."), "{text}");
        menu.key(&Key::scan(ScanCode::DOWN));
        let text = menu.render(&titles);
        assert!(text.contains("   1. Debian\r\n"), "{text}");
        assert!(text.contains(" > 2. Rescue\r\n"), "{text}");
        assert!(!text.contains("Booting the selected"), "{text}");
    }
}
