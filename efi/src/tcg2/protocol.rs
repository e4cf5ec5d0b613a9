//! EFI_TCG2_PROTOCOL (TCG EFI Protocol Specification, "TCG2", §6): the
//! `extern "efiapi"` boundary. Arguments are checked here and turned into
//! the measurement calls of the parent module.

use core::ffi::c_void;

use uefi_raw::protocol::tcg::v2::{
    Tcg2BootServiceCapability, Tcg2EventLogBitmap, Tcg2EventLogFormat, Tcg2HashAlgorithmBitmap,
    Tcg2HashLogExtendEventFlags, Tcg2Protocol, Tcg2Version,
};
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};
use uefi_raw::{Boolean, PhysicalAddress, Status};

use super::{MEASURED, MeasureError, PCR_COUNT, SubmitFailure};
use crate::boundary;

static PROTOCOL: Tcg2Protocol = Tcg2Protocol {
    get_capability,
    get_event_log,
    hash_log_extend_event,
    submit_command,
    get_active_pcr_banks,
    set_active_pcr_banks,
    get_result_of_set_active_pcr_banks,
};

/// Installs the protocol on a handle of its own (edk2 does the same).
pub fn install() -> Result<(), Status> {
    let interface = (&raw const PROTOCOL).cast_mut().cast::<c_void>();
    crate::protocol_services::install(None, &[(Tcg2Protocol::GUID, interface)])?;
    Ok(())
}

/// The size of EFI_TCG2_BOOT_SERVICE_CAPABILITY 1.0 (TCG2 §6.4.4: up to
/// ManufacturerID), which callers written for protocol 1.0 pass.
const CAPABILITY_1_0_SIZE: u8 = 28;
const CAPABILITY_SIZE: u8 = size_of::<Tcg2BootServiceCapability>() as u8;

fn bitmap(banks: &[AlgorithmId]) -> Tcg2HashAlgorithmBitmap {
    let mut bitmap = Tcg2HashAlgorithmBitmap::empty();
    for &alg in banks {
        bitmap |= match alg {
            AlgorithmId::SHA1 => Tcg2HashAlgorithmBitmap::SHA1,
            AlgorithmId::SHA256 => Tcg2HashAlgorithmBitmap::SHA256,
            AlgorithmId::SHA384 => Tcg2HashAlgorithmBitmap::SHA384,
            AlgorithmId::SHA512 => Tcg2HashAlgorithmBitmap::SHA512,
            AlgorithmId::SM3_256 => Tcg2HashAlgorithmBitmap::SM3_256,
            _ => Tcg2HashAlgorithmBitmap::empty(),
        };
    }
    bitmap
}

fn our_capability() -> Option<Tcg2BootServiceCapability> {
    MEASURED.with(|slot| {
        let m = slot.as_ref()?;
        let supported = m.tpm.supported_banks();
        Some(Tcg2BootServiceCapability {
            size: CAPABILITY_SIZE,
            structure_version: Tcg2Version { major: 1, minor: 1 },
            protocol_version: Tcg2Version { major: 1, minor: 1 },
            hash_algorithm_bitmap: bitmap(supported),
            // Only the crypto-agile log: the SHA-1-only TCG 1.2 format
            // cannot describe the other banks.
            supported_event_logs: Tcg2EventLogBitmap::TCG_2,
            tpm_present_flag: 1,
            max_command_size: m.tpm.max_command_size().min(u16::MAX.into()) as u16,
            max_response_size: m.tpm.max_response_size().min(u16::MAX.into()) as u16,
            manufacturer_id: m.tpm.manufacturer_id(),
            number_of_pcr_banks: supported.len() as u32,
            active_pcr_banks: bitmap(m.log.banks()),
        })
    })
}

/// GetCapability (TCG2 §6.4). A caller's structure smaller than 1.1's but
/// at least 1.0's gets the 1.0 fields and versions; smaller than that
/// learns the size it needs.
///
/// # Safety
/// `capability` is null or valid for its `size` field's bytes.
unsafe extern "efiapi" fn get_capability(
    _this: *mut Tcg2Protocol,
    capability: *mut Tcg2BootServiceCapability,
) -> Status {
    if capability.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let Some(ours) = our_capability() else {
        return Status::DEVICE_ERROR;
    };
    // SAFETY: non-null; the caller's structure starts with its size byte.
    let size = unsafe { capability.cast::<u8>().read() };
    if size < CAPABILITY_1_0_SIZE {
        // SAFETY: as above.
        unsafe { capability.cast::<u8>().write(CAPABILITY_SIZE) };
        return Status::BUFFER_TOO_SMALL;
    }
    let mut answer = ours;
    let copied = if size < CAPABILITY_SIZE {
        answer.size = CAPABILITY_1_0_SIZE;
        answer.structure_version = Tcg2Version { major: 1, minor: 0 };
        answer.protocol_version = Tcg2Version { major: 1, minor: 0 };
        usize::from(CAPABILITY_1_0_SIZE)
    } else {
        usize::from(CAPABILITY_SIZE)
    };
    // SAFETY: the caller's structure is `size` >= `copied` bytes long;
    // `answer` is a plain repr(C) value of at least `copied` bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (&raw const answer).cast::<u8>(),
            capability.cast::<u8>(),
            copied,
        )
    };
    Status::SUCCESS
}

/// GetEventLog (TCG2 §6.5): where the crypto-agile log is, its last entry
/// and whether an event did not fit. From now on new events also go to the
/// final events table.
///
/// # Safety
/// Each output pointer is null or valid for writing its type.
unsafe extern "efiapi" fn get_event_log(
    _this: *mut Tcg2Protocol,
    format: Tcg2EventLogFormat,
    location: *mut PhysicalAddress,
    last_entry: *mut PhysicalAddress,
    truncated: *mut Boolean,
) -> Status {
    if format != Tcg2EventLogBitmap::TCG_2 {
        return Status::INVALID_PARAMETER;
    }
    let answer = MEASURED.with(|slot| {
        let m = slot.as_mut()?;
        m.log_handed_out = true;
        Some((
            m.log_base,
            m.log_base + m.log.last_entry_offset() as u64,
            m.truncated,
        ))
    });
    let Some((base, last, was_truncated)) = answer else {
        return Status::DEVICE_ERROR;
    };
    // SAFETY: each pointer is null (skipped) or the caller's output for
    // its type (this function's contract).
    unsafe {
        if !location.is_null() {
            location.write_unaligned(base);
        }
        if !last_entry.is_null() {
            last_entry.write_unaligned(last);
        }
        if !truncated.is_null() {
            truncated.write_unaligned(Boolean::from(was_truncated));
        }
    }
    Status::SUCCESS
}

/// EFI_TCG2_EVENT's header size (TCG2 §6.6.2: HeaderSize, HeaderVersion,
/// PCRIndex, EventType, packed).
const EVENT_HEADER_SIZE: u32 = 14;
/// EFI_TCG2_EVENT_HEADER_VERSION.
const EVENT_HEADER_VERSION: u16 = 1;

/// An EFI_TCG2_EVENT as the caller gave it, checked.
struct CallerEvent<'a> {
    pcr: u32,
    event_type: EventType,
    data: &'a [u8],
}

/// Checks an EFI_TCG2_EVENT (TCG2 §6.6.2, §6.6.5: INVALID_PARAMETER for a
/// size smaller than its header, a bad header or a PCR above 23).
///
/// # Safety
/// `event` is null or valid for its Size field's bytes.
unsafe fn caller_event<'a>(event: *const c_void) -> Result<CallerEvent<'a>, Status> {
    // SAFETY: the caller's EFI_TCG2_EVENT starts with its UINT32 Size.
    let size = unsafe { boundary::read(event.cast::<u32>()) }?;
    if size < 4 + EVENT_HEADER_SIZE {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: the caller vouches for `size` bytes at `event`.
    let bytes = unsafe { boundary::bytes(event.cast::<u8>(), size as usize) }?;
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let header_size = u32_at(4);
    let header_version = u16::from_le_bytes([bytes[8], bytes[9]]);
    let pcr = u32_at(10);
    let event_type = EventType(u32_at(14));
    if header_size != EVENT_HEADER_SIZE
        || header_version != EVENT_HEADER_VERSION
        || pcr >= PCR_COUNT
    {
        return Err(Status::INVALID_PARAMETER);
    }
    Ok(CallerEvent {
        pcr,
        event_type,
        data: &bytes[(4 + EVENT_HEADER_SIZE) as usize..],
    })
}

/// HashLogExtendEvent (TCG2 §6.6): hashes the caller's data (a PE/COFF
/// image's Authenticode digest with PE_COFF_IMAGE), extends the PCR and
/// logs the event (not with EXTEND_ONLY).
///
/// # Safety
/// `data_to_hash` is valid for `data_to_hash_len` bytes; `event` is null or
/// valid for its Size field's bytes.
unsafe extern "efiapi" fn hash_log_extend_event(
    _this: *mut Tcg2Protocol,
    flags: Tcg2HashLogExtendEventFlags,
    data_to_hash: PhysicalAddress,
    data_to_hash_len: u64,
    event: *const c_void,
) -> Status {
    // SAFETY: this function's contract.
    let event = match unsafe { caller_event(event) } {
        Ok(event) => event,
        Err(status) => return status,
    };
    let Ok(len) = usize::try_from(data_to_hash_len) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: this function's contract.
    let data = match unsafe { boundary::bytes(data_to_hash as *const u8, len) } {
        Ok(data) => data,
        Err(status) => return status,
    };
    let pe_image = flags.contains(Tcg2HashLogExtendEventFlags::PE_COFF_IMAGE);
    let log = !flags.contains(Tcg2HashLogExtendEventFlags::EFI_TCG2_EXTEND_ONLY);
    let result =
        super::measure_caller(event.pcr, event.event_type, data, pe_image, event.data, log);
    log::debug!(
        "tpm: HashLogExtendEvent: PCR {}, event type {:#x}, {} bytes{}: {result:?}",
        event.pcr,
        event.event_type.0,
        data.len(),
        if pe_image { " (PE/COFF image)" } else { "" }
    );
    match result {
        Ok(()) => Status::SUCCESS,
        Err(MeasureError::BadPcr(_)) => Status::INVALID_PARAMETER,
        // TCG2 §6.6.5: a PE_COFF_IMAGE that is not a PE/COFF image.
        Err(MeasureError::Unhashable) => Status::UNSUPPORTED,
        // "The extend operation occurred, but the event could not be
        // written to one or more event logs."
        Err(MeasureError::LogFull) => Status::VOLUME_FULL,
        Err(MeasureError::Tpm | MeasureError::Off) => Status::DEVICE_ERROR,
    }
}

/// SubmitCommand (TCG2 §6.7): a raw TPM command, for callers that speak
/// TPM 2.0 themselves (systemd, tpm2-tss in a boot loader).
///
/// # Safety
/// `input` is valid for `input_size` bytes, `output` for `output_size`.
pub(super) unsafe extern "efiapi" fn submit_command(
    _this: *mut Tcg2Protocol,
    input_size: u32,
    input: *const u8,
    output_size: u32,
    output: *mut u8,
) -> Status {
    if input_size == 0 || output_size == 0 {
        return Status::INVALID_PARAMETER;
    }
    // Every response starts with a 10-byte header (TPM 2.0 Part 1 §18).
    if output_size < tcg::tpm2::HEADER_LEN as u32 {
        return Status::BUFFER_TOO_SMALL;
    }
    // SAFETY: this function's contract.
    let command = match unsafe { boundary::bytes(input, input_size as usize) } {
        Ok(command) => command,
        Err(status) => return status,
    };
    // SAFETY: this function's contract.
    let response = match unsafe { boundary::bytes_mut(output, output_size as usize) } {
        Ok(response) => response,
        Err(status) => return status,
    };
    let result = MEASURED.with(|slot| {
        let m = slot.as_mut()?;
        if command.len() > m.tpm.max_command_size() {
            return Some(Err(Status::INVALID_PARAMETER));
        }
        Some(m.tpm.submit(command, response).map_err(|e| match e {
            // TCG2 §6.7: "The output parameter block is too small."
            SubmitFailure::ResponseTooLarge => Status::BUFFER_TOO_SMALL,
            SubmitFailure::Failed => Status::DEVICE_ERROR,
        }))
    });
    match result {
        None => Status::DEVICE_ERROR,
        Some(Ok(_)) => Status::SUCCESS,
        Some(Err(status)) => status,
    }
}

/// GetActivePcrBanks (TCG2 §6.8).
///
/// # Safety
/// `active` is null or valid for writing a bitmap.
unsafe extern "efiapi" fn get_active_pcr_banks(
    _this: *mut Tcg2Protocol,
    active: *mut Tcg2HashAlgorithmBitmap,
) -> Status {
    let Some(banks) = MEASURED.with(|slot| slot.as_ref().map(|m| bitmap(m.log.banks()))) else {
        return Status::DEVICE_ERROR;
    };
    // SAFETY: this function's contract.
    boundary::status(unsafe { boundary::write(active, banks) })
}

/// SetActivePcrBanks (TCG2 §6.9) needs a TPM2_PCR_Allocate and a reset
/// through the physical-presence flow, which this firmware does not have:
/// the VMM's swtpm configuration chooses the banks.
unsafe extern "efiapi" fn set_active_pcr_banks(
    _this: *mut Tcg2Protocol,
    _active: Tcg2HashAlgorithmBitmap,
) -> Status {
    Status::UNSUPPORTED
}

/// GetResultOfSetActivePcrBanks (TCG2 §6.10): see set_active_pcr_banks.
unsafe extern "efiapi" fn get_result_of_set_active_pcr_banks(
    _this: *mut Tcg2Protocol,
    _operation_present: *mut u32,
    _response: *mut u32,
) -> Status {
    Status::UNSUPPORTED
}
