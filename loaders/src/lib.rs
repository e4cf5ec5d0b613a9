#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod auto_options;
pub mod bls;
pub mod bls_boot;
pub mod boot_first;
pub mod boot_manager;
pub mod builtins;
pub mod bzimage;
pub mod direct;
pub mod efi_file;
pub mod file_loading;
pub mod global_variables;
pub mod image_boot;
pub mod initrd;
pub mod linux_boot;
pub mod load_file_boot;
pub mod load_option;
pub mod measure;
pub mod menu;
pub mod nv_journal;
pub mod nv_store;
pub mod pages;
pub mod panic_recovery;
pub mod services;
pub mod status;
pub mod text_console;
pub mod uki;
