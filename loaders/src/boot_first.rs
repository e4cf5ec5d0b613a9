//! Which of the fallback boot paths the firmware command line puts first:
//! the removable-media path (UEFI 2.10 §3.5.1.1), the built-in BLS boot or
//! the network. Shared by the boot manager and the boot menu, which lists the
//! options in the order the boot manager would try them.

use log::warn;
use platform::cmdline;

/// The removable-media boot path for x64 (UEFI 2.10 §3.5.1.1).
pub const REMOVABLE_MEDIA_PATH: &str = "\\EFI\\BOOT\\BOOTX64.EFI";

/// Which boot path the firmware command line asks to try first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootFirst {
    /// `\EFI\BOOT\BOOTX64.EFI` on each file system, then BLS entries (default).
    RemovableMedia,
    /// BLS Type #1 entries (`boot=bls`), then the removable-media path.
    Bls,
    /// The network boot options (`boot=net`), then the disks.
    Network,
}

impl BootFirst {
    /// The last `boot=` word of the firmware command line decides; unknown
    /// values keep the default.
    pub fn from_cmdline(cmdline: &str) -> BootFirst {
        cmdline::values(cmdline, "boot")
            .filter_map(|value| match value.plain() {
                Some("bls") => Some(BootFirst::Bls),
                Some("net") => Some(BootFirst::Network),
                Some("removable") => Some(BootFirst::RemovableMedia),
                _ => {
                    warn!("ignoring unknown boot={value}");
                    None
                }
            })
            .last()
            .unwrap_or(BootFirst::RemovableMedia)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_chooses_what_boots_first() {
        assert_eq!(BootFirst::from_cmdline(""), BootFirst::RemovableMedia);
        assert_eq!(
            BootFirst::from_cmdline("log=debug boot=bls"),
            BootFirst::Bls
        );
        assert_eq!(
            BootFirst::from_cmdline("boot=bls boot=removable"),
            BootFirst::RemovableMedia
        );
        assert_eq!(BootFirst::from_cmdline("boot=net"), BootFirst::Network);
        assert_eq!(
            BootFirst::from_cmdline("boot=floppy"),
            BootFirst::RemovableMedia
        );
        assert_eq!(
            BootFirst::from_cmdline("reboot=bls"),
            BootFirst::RemovableMedia
        );
    }
}
