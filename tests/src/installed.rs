//! A Debian 12 system installed the way the distribution installs itself (debootstrap, Debian's
//! own `grub-install` and `update-grub`, systemd), built by `tests/scripts/mk-installed-debian.sh`
//! and cached under `.cache/disks/`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::paths::{cache_dir, workspace_root};
use crate::util::{KeyHasher, run, try_run};

/// What the installed system's report unit prints once systemd has finished booting with
/// nothing failed, EFI variables visible, the ESP mounted from `/etc/fstab` and the boot-time
/// `fsck.fat` of the ESP (which the firmware writes `vars.bin` to) finding nothing to fix.
pub const INSTALLED_DEBIAN_BOOTED: &str =
    "VMFW-INSTALLED: system=running efi=yes esp=yes esp-fsck=clean failed=[]";

/// The installed Debian 12 disk: GPT with a 128 MiB ESP (shim and signed GRUB under
/// `\EFI\debian` and the removable path) and an ext4 root holding `/boot`. Built once per cache
/// key (the build script's text), which takes about two minutes and needs root or password-less
/// sudo (debootstrap, chroot, loop devices) and the Debian mirror.
pub fn installed_debian() -> PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| build("bookworm")).clone()
}

/// The same for Debian 13 "trixie" (shim 16.1, GRUB 2.12, kernel 6.12, systemd 257).
pub fn installed_debian13() -> PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| build("trixie")).clone()
}

fn build(suite: &str) -> PathBuf {
    let script = workspace_root().join("tests/scripts/mk-installed-debian.sh");
    let key = KeyHasher::new("installed debian v1")
        .str(suite)
        .file(&script)
        .hex();
    let out = cache_dir("disks").join(format!("installed-{suite}-{key}.img"));
    if out.is_file() {
        return out;
    }
    let is_root = run(Command::new("id").arg("-u")).trim() == "0";
    let mut cmd = if is_root {
        Command::new("bash")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "bash"]);
        sudo
    };
    let (ok, output) = try_run(cmd.arg(&script).arg(&out).arg(suite));
    assert!(
        ok && out.is_file(),
        "building the installed Debian ({suite}) disk failed (it needs root or password-less \
         sudo):\n{output}"
    );
    out
}
