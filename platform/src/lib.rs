//! Platform layer: PVH entry, paging, serial, PCI, virtio-blk, AHCI, RTC and
//! ACPI/SMBIOS discovery. Pure logic is host-testable; hardware access goes
//! through the `x86_64` crate (ports, control registers, descriptor tables)
//! and `mmio`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod acpi;
pub mod ahci;
pub mod apic;
pub mod block;
pub mod boot_timing;
pub mod call_arena;
pub mod cmdline;
pub mod cpu_rng;
pub mod crc32;
pub mod fallible;
pub mod forced_failure;
pub mod heap;
#[cfg(target_os = "none")]
pub mod interrupts;
pub mod le;
pub mod logger;
pub mod memory;
pub mod mmio;
pub mod net;
pub mod nvme;
pub mod paging;
pub mod panic_note;
pub mod pci;
#[cfg(target_os = "none")]
pub mod pvh;
pub mod read_ahead;
pub mod reset;
pub mod rtc;
pub mod scsi;
pub mod serial;
pub mod smbios;
pub mod start_info;
pub mod sync;
pub mod tpm;
pub mod tsc;
pub mod virtio;
