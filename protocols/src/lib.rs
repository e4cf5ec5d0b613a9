#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod console;
pub mod device_path;
pub mod device_path_text;
pub mod device_path_utilities;
pub mod driver;
pub mod fat;
pub mod hii;
pub mod network;
pub mod partition;
pub mod rng;
pub mod simple_fs;
pub mod storage;
pub mod ucs2;
pub mod unicode_collation;
