#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bls;
pub mod bls_boot;
pub mod boot_manager;
pub mod bzimage;
pub mod initrd;
pub mod load_option;
