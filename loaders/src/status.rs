//! Short human-readable names of EFI_STATUS codes (UEFI 2.10 Appendix D)
//! for the one-line boot messages on serial.

use uefi_raw::Status;

/// The name of `status` as the boot messages print it.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::SUCCESS => "success",
        Status::LOAD_ERROR => "load error",
        Status::INVALID_PARAMETER => "invalid parameter",
        Status::UNSUPPORTED => "unsupported",
        Status::NOT_FOUND => "not found",
        Status::OUT_OF_RESOURCES => "out of resources",
        Status::SECURITY_VIOLATION => "security violation",
        Status::ACCESS_DENIED => "access denied",
        Status::ABORTED => "aborted",
        Status::VOLUME_CORRUPTED => "volume corrupted",
        Status::DEVICE_ERROR => "device error",
        Status::TIMEOUT => "timeout",
        Status::NOT_STARTED => "not started",
        Status::TFTP_ERROR => "TFTP error",
        Status::BUFFER_TOO_SMALL => "buffer too small",
        _ => "error",
    }
}
