//! Platform layer: PVH entry, paging, serial, PCI, virtio-blk, RTC and
//! ACPI/SMBIOS discovery. Pure logic is host-testable; hardware access lives in
//! `io`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod block;
pub mod io;
pub mod paging;
pub mod logger;
pub mod memory;
pub mod serial;
pub mod start_info;
#[cfg(target_os = "none")]
pub mod interrupts;
#[cfg(target_os = "none")]
pub mod pvh;
pub mod sync;
