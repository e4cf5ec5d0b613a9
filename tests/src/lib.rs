//! VM test harness: builds the firmware, EFI test applications, Debian-based disk images and
//! initramfs archives, then runs QEMU and reads the guest's serial console.
//!
//! Everything expensive (downloads, disk images) is cached under `<root>/.cache/`, keyed by a
//! hash of its inputs, and built atomically (temporary file + rename) so parallel tests can share
//! it.

pub mod build;
pub mod deb;
pub mod disk;
pub mod footprint;
pub mod gpt;
pub mod http_server;
pub mod images;
pub mod initramfs;
pub mod installed;
pub mod iso;
pub mod module_graph;
pub mod netbench;
pub mod paths;
pub mod qemu;
pub mod sb_keys;
pub mod swtpm;
pub mod uki;
mod util;

pub use build::{efi_app, firmware};
pub use deb::{DebianKernel, deb, deb_trixie, debian_kernel, debian13_kernel};
pub use disk::{EspBuilder, FatContents, FileSource, Partition, TempDisk};
pub use images::{
    BLS_CMDLINE, DefaultImage, GRUB_CMDLINE, SIGNED_GRUB, SIGNED_SHIM, bls_entry, boot_firmware,
    boot_ovmf, default_image, default_image_4kn, expect_linux_environment, grub_cfg,
};
pub use initramfs::{BASE_MODULES, Program, initramfs, initramfs_for, initramfs_with};
pub use installed::{INSTALLED_DEBIAN_BOOTED, installed_debian, installed_debian13};
pub use paths::{cache_dir, workspace_root};
pub use qemu::{Boot, DiskBus, Match, Network, Vm, VmBuilder, VmError};
pub use swtpm::{Swtpm, TpmInterface};
pub use uki::{
    SYSTEMD_BOOT_EFI, SYSTEMD_STUB, systemd_boot, systemd_stub, unified_kernel_image,
    unified_kernel_image_on,
};
pub use util::report_field;
pub use util::{crc32, publish, temp_sibling};
