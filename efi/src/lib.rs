//! The UEFI core: system table, boot and runtime services, handle and
//! protocol database, events, images and variables (UEFI 2.10 §4, §7, §8).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod boundary;
pub mod builtin_images;
pub mod device_path;
pub mod driver_images;
pub mod events;
pub mod fv_sections;
pub mod handles;
pub mod ids;
pub mod image;
pub mod memory_attribute;
pub mod memory_attributes;
pub mod memory_services;
pub mod misc_services;
pub mod pe;
pub mod pool;
pub mod protocol_services;
pub mod runtime;
pub mod secure_boot;
pub mod spec_gaps;
pub mod table_storage;
pub mod tables;
pub mod tcg2;
pub mod variables;
