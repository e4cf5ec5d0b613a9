#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod console;
pub mod device_path;
pub mod fat;
pub mod partition;
pub mod simple_fs;
pub mod storage;
