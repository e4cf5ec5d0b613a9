//! A testing aid: `test-alloc-fail=SITE[,SITE...]` on the firmware command
//! line makes the named allocation fail as if memory were exhausted, so a VM
//! test can show what the firmware does then (a status or one serial line,
//! never a panic) without filling a VM's memory first. Sites:
//!
//! - `loadimage`: LoadImage's pages for the image (EFI_OUT_OF_RESOURCES);
//! - `fat`: the FAT driver's buffers when it mounts a volume (the volume is
//!   not mounted; its DriverBinding returns EFI_OUT_OF_RESOURCES);
//! - `varstore`: the buffer for `\EFI\vmfw\vars.bin` (empty store, warning).
//!
//! Without the word nothing is forced; an unknown site is ignored.

use core::sync::atomic::{AtomicU8, Ordering};

/// An allocation that `test-alloc-fail=` can make fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    LoadImage,
    Fat,
    VarStore,
}

impl Site {
    const ALL: [Site; 3] = [Site::LoadImage, Site::Fat, Site::VarStore];

    /// The name the command line uses.
    pub const fn name(self) -> &'static str {
        match self {
            Site::LoadImage => "loadimage",
            Site::Fat => "fat",
            Site::VarStore => "varstore",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

static FORCED: AtomicU8 = AtomicU8::new(0);

/// The sites named by `test-alloc-fail=` words of `cmdline`, as a bit set.
fn parse(cmdline: &str) -> u8 {
    crate::cmdline::values(cmdline, "test-alloc-fail")
        .filter_map(|value| value.plain())
        .flat_map(|value| value.split(','))
        .filter_map(|name| Site::ALL.into_iter().find(|site| site.name() == name))
        .fold(0, |bits, site| bits | site.bit())
}

/// Reads the switch from the firmware command line (once, at start) and
/// says on serial which allocations will fail.
pub fn init(cmdline: &str) {
    let bits = parse(cmdline);
    FORCED.store(bits, Ordering::Relaxed);
    for site in Site::ALL {
        if bits & site.bit() != 0 {
            log::warn!(
                "test-alloc-fail={}: this allocation will fail (testing aid)",
                site.name()
            );
        }
    }
}

/// Whether the allocation at `site` is to fail.
pub fn forced(site: Site) -> bool {
    FORCED.load(Ordering::Relaxed) & site.bit() != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_are_read_from_the_word_and_its_list() {
        assert_eq!(parse(""), 0);
        assert_eq!(parse("log=debug"), 0);
        assert_eq!(parse("test-alloc-fail=fat"), Site::Fat.bit());
        assert_eq!(
            parse("a test-alloc-fail=loadimage,varstore b"),
            Site::LoadImage.bit() | Site::VarStore.bit()
        );
        assert_eq!(
            parse("test-alloc-fail=fat test-alloc-fail=varstore"),
            Site::Fat.bit() | Site::VarStore.bit()
        );
        assert_eq!(parse("test-alloc-fail=heap,FAT"), 0, "unknown names");
        assert_eq!(parse("xtest-alloc-fail=fat"), 0);
    }
}
