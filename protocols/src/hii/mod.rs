//! HII (UEFI 2.10 §34) for applications such as the edk2 UEFI Shell, GRUB
//! and setup browsers: EFI_HII_DATABASE_PROTOCOL (§34.8) keeps the package
//! lists they register, tells registered notify functions about packages
//! coming and going, exports lists and serves keyboard layouts;
//! EFI_HII_STRING_PROTOCOL (§34.2) reads, adds and edits the strings of
//! their string packages. Forms, fonts and images are not provided (no
//! Config Routing, Font or Image protocol).
//!
//! - [`packages`]: package lists and keyboard layouts (pure, fuzzed)
//! - [`strings`]: string packages, read and edited (pure, fuzzed)
//! - `database`, `string_protocol`: the `extern "efiapi"` layers, which
//!   validate pointers and keep the registered state.

mod database;
pub mod packages;
mod string_protocol;
pub mod strings;

use core::ffi::c_void;

use uefi_raw::Status;
use uefi_raw::protocol::hii::database::HiiDatabaseProtocol;
use uefi_raw::protocol::hii::string::HiiStringProtocol;

pub use packages::{HiiError, has_package, packages};
pub use strings::{find_string, languages, list_string, package_language};

/// A protocol instance shared with EFI callers.
struct Shared<T>(T);

// SAFETY: the instances hold only function pointers and are never written.
unsafe impl<T> Sync for Shared<T> {}

/// Installs the HII database and string protocols on `handle` (a new
/// handle when `None`).
pub fn install(handle: Option<efi::handles::HandleId>) -> Result<efi::handles::HandleId, Status> {
    efi::protocol_services::install(
        handle,
        &[
            (
                HiiDatabaseProtocol::GUID,
                (&raw const database::PROTOCOL.0)
                    .cast_mut()
                    .cast::<c_void>(),
            ),
            (
                HiiStringProtocol::GUID,
                (&raw const string_protocol::PROTOCOL.0)
                    .cast_mut()
                    .cast::<c_void>(),
            ),
        ],
    )
}
