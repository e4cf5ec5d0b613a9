//! What the built-in loaders measure, as any EFI application would: through
//! EFI_TCG2_PROTOCOL's HashLogExtendEvent (TCG EFI Protocol §6.6), when the
//! firmware offers it (a VM with a TPM 2.0).

use alloc::vec::Vec;
use core::ffi::c_void;

use uefi_raw::protocol::tcg::EventType;
use uefi_raw::protocol::tcg::v2::{Tcg2HashLogExtendEventFlags, Tcg2Protocol};

use crate::services;

/// EFI_TCG2_EVENT_HEADER's size and version (TCG2 §6.6.2).
const HEADER_SIZE: u32 = 14;
const HEADER_VERSION: u16 = 1;

/// EV_IPL of `data` into `pcr`, logged with `description`; nothing without
/// the protocol. A failure is logged and the boot goes on (measured boot
/// is the firmware's to report, not the loader's to stop).
pub fn measure_ipl(pcr: u32, data: &[u8], description: &str) {
    let Ok(services) = services::current() else {
        return;
    };
    let Some(&handle) = services.locate_handles(&Tcg2Protocol::GUID).first() else {
        return;
    };
    let Some(tcg2) = services.protocol::<Tcg2Protocol>(handle, &Tcg2Protocol::GUID) else {
        return;
    };
    // EFI_TCG2_EVENT: Size, then the packed header, then the event data.
    let size = 4 + HEADER_SIZE as usize + description.len();
    let mut event = Vec::with_capacity(size);
    event.extend_from_slice(&(size as u32).to_le_bytes());
    event.extend_from_slice(&HEADER_SIZE.to_le_bytes());
    event.extend_from_slice(&HEADER_VERSION.to_le_bytes());
    event.extend_from_slice(&pcr.to_le_bytes());
    event.extend_from_slice(&EventType::IPL.0.to_le_bytes());
    event.extend_from_slice(description.as_bytes());
    let tcg2 = tcg2.as_ptr();
    // SAFETY: `tcg2` is the interface HandleProtocol returned; `data` and
    // `event` are live for the call, `event` a whole EFI_TCG2_EVENT.
    let status = unsafe {
        ((*tcg2).hash_log_extend_event)(
            tcg2,
            Tcg2HashLogExtendEventFlags::empty(),
            data.as_ptr() as u64,
            data.len() as u64,
            event.as_ptr().cast::<c_void>(),
        )
    };
    if status.is_error() {
        log::warn!("tpm: measuring {description} into PCR {pcr}: {status:?}");
    }
}
