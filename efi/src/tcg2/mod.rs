//! Measured boot: EFI_TCG2_PROTOCOL over the platform's TPM 2.0, the
//! crypto-agile event log it hands the OS, and the firmware's own
//! measurements (TCG EFI Protocol Specification 1.0 rev 0.13, "TCG2";
//! TCG PC Client Platform Firmware Profile (PFP) 1.05, §3.3 and §10).
//!
//! Every measurement extends the TPM's active PCR banks with the digest of
//! what is measured and appends a TCG_PCR_EVENT2 to the log, so replaying
//! the log gives the PCRs. The log starts with the Spec ID event and the
//! events a previous stage logged (SeaBIOS, before a QEMU `-kernel` boot,
//! already extended PCRs); after the first GetEventLog each new event also
//! goes to the EFI_TCG2_FINAL_EVENTS_TABLE (TCG2 §6.6: the OS copied the log
//! then and learns of later events, ExitBootServices' among them, there).
//!
//! The log and the final events table live in pages taken at start; the
//! digests and each entry are built in small heap blocks
//! (`tcg::log::BankHasher`, `LogWriter::entry`). ExitBootServices measures after it has checked the
//! caller's map key, so even a heap growth then cannot fail the call.
//!
//! Without a TPM nothing here is installed and every measurement is a
//! no-op. A TPM command that fails turns measuring off with one warning;
//! the boot goes on.

mod measurements;
mod platform_tpm;
mod protocol;

pub use measurements::{
    boot_option_attempt, measure_authority, measure_firmware, measure_image, measure_ipl,
    measure_secure_boot_policy, set_gpt_source,
};
pub use platform_tpm::PlatformTpm;

use alloc::boxed::Box;

use alloc::vec::Vec;
use log::{info, warn};
use platform::memory::{self, MemoryType, PAGE_SIZE, Placement};
use platform::sync::Global;
use tcg::alg::Digest;
use tcg::log::{BankHasher, FINAL_EVENTS_TABLE_GUID, FinalEvents, LogWriter};
use uefi_raw::Status;
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

/// What the firmware needs of a TPM 2.0 (`platform::tpm` implements it;
/// host tests use a fake).
pub trait Tpm: Send {
    /// The PCR banks that have PCRs allocated and that the firmware hashes.
    fn active_banks(&self) -> &[AlgorithmId];
    /// Every bank the TPM implements (TCG2 GetCapability's
    /// HashAlgorithmBitmap), allocated or not.
    fn supported_banks(&self) -> &[AlgorithmId];
    /// TPM2_PCR_Extend of `pcr` with one digest per active bank.
    fn extend(&mut self, pcr: u32, digests: &[Digest]) -> Result<(), TpmFailure>;
    /// A raw command and its response (TCG2 SubmitCommand); the response's
    /// length in `response`.
    fn submit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, SubmitFailure>;
    /// The largest command and response the interface's buffers take.
    fn max_command_size(&self) -> usize;
    fn max_response_size(&self) -> usize;
    /// TPM_PT_MANUFACTURER (0 when unknown).
    fn manufacturer_id(&self) -> u32;
}

/// A TPM command that did not complete (transport timeout, TPM error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TpmFailure;

/// Why a caller's raw command got no response (TCG2 SubmitCommand).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitFailure {
    /// The response is larger than the caller's output buffer
    /// (EFI_BUFFER_TOO_SMALL).
    ResponseTooLarge,
    /// The command did not complete (EFI_DEVICE_ERROR).
    Failed,
}

/// The PCRs a measurement may name (TCG2 §6.6.5: 0..=23 on a PC client).
pub const PCR_COUNT: u32 = 24;

/// The event log's size: edk2's default (PcdTcgLogAreaMinLen, 64 KiB) is
/// tight for GRUB, which logs every command it runs (PCR 8).
const LOG_PAGES: u64 = 64;

struct Measured {
    tpm: Box<dyn Tpm>,
    log: LogWriter<'static>,
    /// Physical address of the log (TCG2 GetEventLog's EventLogLocation).
    log_base: u64,
    /// An event did not fit (GetEventLog's EventLogTruncated).
    truncated: bool,
    final_events: FinalEvents<'static>,
    /// GetEventLog was called: from now on events also go to the final
    /// events table.
    log_handed_out: bool,
    /// What measuring cost so far, reported at ExitBootServices.
    cost: Cost,
    /// The clock `cost` is kept with (the TSC; a counter in host tests).
    now_ns: fn() -> u64,
}

/// Where measured boot's time goes: hashing what is measured and the TPM
/// commands that extend PCRs. One line at ExitBootServices shows it, so a
/// slow boot with a TPM can be told apart from a slow TPM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cost {
    events: u32,
    hashed_bytes: u64,
    hash_ns: u64,
    extend_ns: u64,
}

static MEASURED: Global<Option<Measured>> = Global::new(None);

/// Pages of the EFI_TCG2_FINAL_EVENTS_TABLE: room for the events after the
/// OS's copy of the log (the two ExitBootServices actions and what the OS
/// loader measures after its GetEventLog: Linux, its command line, initrd).
const FINAL_EVENTS_PAGES: u64 = 8;

/// Starts measured boot over `tpm`: the log with the Spec ID event and
/// `previous` (TCG_PCR_EVENT2 records a previous stage logged and
/// extended, in order), the final events table, and EFI_TCG2_PROTOCOL on a
/// handle of its own.
///
/// The log is written into `log_area` when the VMM's ACPI TPM2 table names
/// one (LASA/LAML, where SeaBIOS logged under QEMU; `previous` was read from
/// a copy of it): Linux reads the log there before it looks for the EFI one
/// (drivers/char/tpm/eventlog/common.c), so both must be the same log.
/// Otherwise it goes to fresh pages.
pub fn init(
    tpm: Box<dyn Tpm>,
    log_area: Option<&'static mut [u8]>,
    previous: &[&[u8]],
) -> Result<(), Status> {
    let log_buffer = match log_area {
        Some(area) => area,
        None => {
            let base = allocate_pages(MemoryType::BOOT_SERVICES_DATA, LOG_PAGES)?;
            // SAFETY: the pages were just allocated for the log alone and
            // stay allocated (boot services data: the OS copies the log
            // before ExitBootServices, TCG2 §6.6.2).
            unsafe {
                core::slice::from_raw_parts_mut(base as *mut u8, (LOG_PAGES * PAGE_SIZE) as usize)
            }
        }
    };
    let final_base = allocate_pages(MemoryType::ACPI_NON_VOLATILE, FINAL_EVENTS_PAGES)?;
    // SAFETY: as above, for the final events table, which the OS reads
    // after ExitBootServices: ACPI NVS memory it does not reclaim (edk2
    // does the same).
    let final_buffer = unsafe {
        core::slice::from_raw_parts_mut(
            final_base as *mut u8,
            (FINAL_EVENTS_PAGES * PAGE_SIZE) as usize,
        )
    };
    let final_events = FinalEvents::new(final_buffer).map_err(|_| Status::OUT_OF_RESOURCES)?;
    let carried = start(
        tpm,
        log_buffer,
        final_events,
        previous,
        platform::tsc::now_ns,
    )?;
    crate::tables::set_configuration_table(FINAL_EVENTS_TABLE_GUID, final_base as *mut _)?;
    protocol::install()?;
    // Every image LoadImage loads from now on (PFP §3.3.4.4), and
    // ExitBootServices (PFP §3.3.4.5: PCR 5).
    crate::image::set_image_measurer(measure_image);
    crate::tables::register_exit_boot_services_hook(exit_boot_services);
    info!("tpm: measured boot on ({carried} events carried over from the previous stage)");
    Ok(())
}

/// Sets up the measuring state over `log` (at its own address, the one
/// GetEventLog reports) and `final_events`; how many of `previous` the log
/// took.
fn start(
    tpm: Box<dyn Tpm>,
    log: &'static mut [u8],
    final_events: FinalEvents<'static>,
    previous: &[&[u8]],
    now_ns: fn() -> u64,
) -> Result<usize, Status> {
    let banks: Vec<AlgorithmId> = tpm
        .active_banks()
        .iter()
        .copied()
        .filter(|&alg| tcg::alg::digest_size(alg).is_some())
        .collect();
    if banks.is_empty() {
        warn!("tpm: no PCR bank the firmware can hash is active; measured boot off");
        return Err(Status::UNSUPPORTED);
    }
    let log_base = log.as_ptr() as u64;
    let mut log = LogWriter::new(log, &banks).map_err(|e| {
        warn!("tpm: event log: {e:?}");
        Status::OUT_OF_RESOURCES
    })?;
    let mut truncated = false;
    let mut carried = 0;
    for event in previous {
        match log.append_raw(event) {
            Ok(()) => carried += 1,
            Err(e) => {
                warn!("tpm: an event of the previous stage's log not carried over: {e:?}");
                truncated = true;
            }
        }
    }
    MEASURED.with(|slot| {
        *slot = Some(Measured {
            tpm,
            log,
            log_base,
            truncated,
            final_events,
            log_handed_out: false,
            cost: Cost::default(),
            now_ns,
        })
    });
    Ok(carried)
}

fn allocate_pages(ty: MemoryType, pages: u64) -> Result<u64, Status> {
    let base = memory::with_map(|m| m.allocate(Placement::MaxAddress(u32::MAX as u64), ty, pages))
        .map_err(|_| Status::OUT_OF_RESOURCES)?;
    // SAFETY: freshly allocated, ours alone; zeroed so the log's unused
    // tail reads as empty.
    unsafe { core::ptr::write_bytes(base as *mut u8, 0, (pages * PAGE_SIZE) as usize) };
    Ok(base)
}

/// Whether measurements happen (a TPM was found and started).
pub fn active() -> bool {
    MEASURED.try_with(|m| m.is_some()).unwrap_or(false)
}

/// Why a measurement was not made or not logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasureError {
    /// No TPM, or measuring was turned off after a failure.
    Off,
    /// PCR index out of range.
    BadPcr(u32),
    /// What was to be hashed could not be (a malformed PE image).
    Unhashable,
    /// The TPM did not extend.
    Tpm,
    /// Extended, but the log (or the final events table) is full.
    LogFull,
}

/// Measures `data` into `pcr`: the digest of `data` in every bank,
/// `event_data` logged with it (PFP §10.4: for most event types the digest
/// covers the event data itself; the caller passes the same bytes twice).
pub fn measure(
    pcr: u32,
    event_type: EventType,
    data: &[u8],
    event_data: &[u8],
) -> Result<(), MeasureError> {
    measure_with(pcr, event_type, event_data, |hash| {
        hash(data);
        Ok(())
    })
}

/// Measures what `feed` hands to the hashers (called once with an update
/// function for all banks) into `pcr`, logging `event_data`.
pub fn measure_with(
    pcr: u32,
    event_type: EventType,
    event_data: &[u8],
    feed: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<(), ()>,
) -> Result<(), MeasureError> {
    if pcr >= PCR_COUNT {
        return Err(MeasureError::BadPcr(pcr));
    }
    let digests = digests_of(feed)?;
    extend_and_log(pcr, event_type, &digests, event_data, true)
}

/// A caller's HashLogExtendEvent: the digest of `data` (of the PE/COFF
/// image in `data`, its Authenticode digest, with `pe_image`), extended
/// into `pcr` and, with `log`, logged with `event_data`.
fn measure_caller(
    pcr: u32,
    event_type: EventType,
    data: &[u8],
    pe_image: bool,
    event_data: &[u8],
    log: bool,
) -> Result<(), MeasureError> {
    let digests = digests_of(|update| {
        if pe_image {
            ::secure_boot::authenticode::hash_with(data, update).map_err(|_| ())
        } else {
            update(data);
            Ok(())
        }
    })?;
    extend_and_log(pcr, event_type, &digests, event_data, log)
}

/// One digest per bank of the log of what `feed` hands to the update
/// function it is called with.
fn digests_of(
    feed: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<(), ()>,
) -> Result<Vec<Digest>, MeasureError> {
    let Some((banks, now_ns)) = MEASURED
        .try_with(|m| m.as_ref().map(|m| (m.log.banks().to_vec(), m.now_ns)))
        .flatten()
    else {
        return Err(MeasureError::Off);
    };
    let started = now_ns();
    let mut hashed_bytes = 0u64;
    let mut hasher = BankHasher::new(&banks).map_err(|_| MeasureError::Unhashable)?;
    feed(&mut |bytes: &[u8]| {
        hashed_bytes = hashed_bytes.saturating_add(bytes.len() as u64);
        hasher.update(bytes)
    })
    .map_err(|()| MeasureError::Unhashable)?;
    let digests = hasher.finish();
    let hash_ns = now_ns().saturating_sub(started);
    MEASURED.with(|slot| {
        if let Some(m) = slot.as_mut() {
            m.cost.hashed_bytes = m.cost.hashed_bytes.saturating_add(hashed_bytes);
            m.cost.hash_ns = m.cost.hash_ns.saturating_add(hash_ns);
        }
    });
    Ok(digests)
}

/// Extends `pcr` with `digests` and, when `log` is set, appends the event.
fn extend_and_log(
    pcr: u32,
    event_type: EventType,
    digests: &[Digest],
    event_data: &[u8],
    log: bool,
) -> Result<(), MeasureError> {
    let outcome = MEASURED.with(|slot| {
        let measured = slot.as_mut()?;
        let started = (measured.now_ns)();
        let extended = measured.tpm.extend(pcr, digests);
        let cost = &mut measured.cost;
        cost.events = cost.events.saturating_add(1);
        cost.extend_ns = cost
            .extend_ns
            .saturating_add((measured.now_ns)().saturating_sub(started));
        if extended.is_err() {
            return Some(Err(MeasureError::Tpm));
        }
        if !log {
            return Some(Ok(()));
        }
        let mut result = Ok(());
        if measured
            .log
            .append(pcr, event_type, digests, event_data)
            .is_err()
        {
            measured.truncated = true;
            result = Err(MeasureError::LogFull);
        }
        if measured.log_handed_out {
            let entry = measured.log.entry(pcr, event_type, digests, event_data);
            if entry
                .and_then(|e| measured.final_events.append(&e))
                .is_err()
            {
                result = Err(MeasureError::LogFull);
            }
        }
        Some(result)
    });
    match outcome {
        None => Err(MeasureError::Off),
        Some(Err(MeasureError::Tpm)) => {
            // A TPM that stopped answering: no further measurement can
            // keep log and PCRs in step, so measuring ends here.
            warn!("tpm: PCR {pcr} extend failed; measured boot off for the rest of this boot");
            MEASURED.with(|slot| *slot = None);
            Err(MeasureError::Tpm)
        }
        Some(result) => result,
    }
}

/// EV_SEPARATOR (4 zero bytes, PFP §10.4.1) in `pcrs`, as the firmware
/// does before it runs the first boot option (PFP §3.3.4.x: the end of the
/// pre-OS measurements of PCRs 0-7).
pub fn measure_separators(pcrs: core::ops::RangeInclusive<u32>) {
    for pcr in pcrs {
        let _ = measure(pcr, EventType::SEPARATOR, &[0; 4], &[0; 4]);
    }
}

/// An EV_EFI_ACTION string (PFP §10.4.4: the digest covers the string
/// without a terminator).
pub fn measure_action(pcr: u32, action: &str) {
    let _ = measure(
        pcr,
        EventType::EFI_ACTION,
        action.as_bytes(),
        action.as_bytes(),
    );
}

/// ExitBootServices succeeded (PFP §3.3.4.5: both actions in PCR 5).
pub fn exit_boot_services() {
    if !active() {
        return;
    }
    measure_action(5, "Exit Boot Services Invocation");
    measure_action(5, "Exit Boot Services Returned with Success");
    if let Some(cost) = MEASURED.try_with(|m| m.as_ref().map(|m| m.cost)).flatten() {
        info!(
            "tpm: {} PCR extends in {} ms; {} KiB hashed in {} ms",
            cost.events,
            cost.extend_ns / 1_000_000,
            cost.hashed_bytes / 1024,
            cost.hash_ns / 1_000_000
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A TPM that keeps its PCRs in memory, as `tcg::alg::extend` computes
    /// them, and can be told to fail.
    struct FakeTpm {
        banks: Vec<AlgorithmId>,
        pcrs: alloc::sync::Arc<platform::sync::Global<BTreeMap<(u16, u32), Digest>>>,
        fail: bool,
    }

    impl Tpm for FakeTpm {
        fn active_banks(&self) -> &[AlgorithmId] {
            &self.banks
        }
        fn supported_banks(&self) -> &[AlgorithmId] {
            &self.banks
        }
        fn extend(&mut self, pcr: u32, digests: &[Digest]) -> Result<(), TpmFailure> {
            if self.fail {
                return Err(TpmFailure);
            }
            assert_eq!(digests.len(), self.banks.len());
            self.pcrs.with(|pcrs| {
                for d in digests {
                    let old = pcrs
                        .get(&(d.alg().0, pcr))
                        .copied()
                        .unwrap_or_else(|| Digest::zero(d.alg()).unwrap());
                    pcrs.insert((d.alg().0, pcr), tcg::alg::extend(&old, d).unwrap());
                }
            });
            Ok(())
        }
        fn submit(&mut self, _: &[u8], response: &mut [u8]) -> Result<usize, SubmitFailure> {
            // Its responses are 16 bytes long.
            if response.len() < 16 {
                return Err(SubmitFailure::ResponseTooLarge);
            }
            Err(SubmitFailure::Failed)
        }
        fn max_command_size(&self) -> usize {
            4096
        }
        fn max_response_size(&self) -> usize {
            4096
        }
        fn manufacturer_id(&self) -> u32 {
            0
        }
    }

    /// A clock that advances 1 ms each time it is read.
    fn fake_clock() -> u64 {
        static NOW: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
        NOW.fetch_add(1_000_000, core::sync::atomic::Ordering::Relaxed)
    }

    fn leaked(len: usize) -> &'static mut [u8] {
        Box::leak(vec![0u8; len].into_boxed_slice())
    }

    fn log_bytes() -> Vec<u8> {
        MEASURED.with(|m| m.as_ref().unwrap().log.as_bytes().to_vec())
    }

    /// One test for the global state: measurements reach the TPM and the
    /// log alike (replaying the log gives the fake TPM's PCRs), events
    /// after GetEventLog also reach the final events table, and a failing
    /// TPM turns measuring off.
    #[test]
    fn log_replays_to_the_pcrs_and_a_failed_extend_stops_measuring() {
        let banks = vec![AlgorithmId::SHA1, AlgorithmId::SHA256];
        let pcrs = alloc::sync::Arc::new(platform::sync::Global::new(BTreeMap::new()));
        let tpm = FakeTpm {
            banks: banks.clone(),
            pcrs: pcrs.clone(),
            fail: false,
        };
        let final_table: &'static mut [u8] = leaked(4096);
        let final_address = final_table.as_ptr() as usize;
        let final_events = FinalEvents::new(final_table).unwrap();
        start(Box::new(tpm), leaked(16384), final_events, &[], fake_clock).unwrap();
        assert!(active());

        measure_separators(0..=7);
        measure_action(4, "Calling EFI Application from Boot Option");
        assert_eq!(
            measure(24, EventType::EFI_ACTION, b"x", b"x"),
            Err(MeasureError::BadPcr(24))
        );
        // As GetEventLog does.
        MEASURED.with(|m| m.as_mut().unwrap().log_handed_out = true);
        exit_boot_services();
        let cost = MEASURED.with(|m| m.as_ref().unwrap().cost);
        assert_eq!(cost.events, 8 + 1 + 2);
        let actions = [
            "Calling EFI Application from Boot Option",
            "Exit Boot Services Invocation",
            "Exit Boot Services Returned with Success",
        ];
        let action_bytes: usize = actions.iter().map(|a| a.len()).sum();
        assert_eq!(cost.hashed_bytes, (8 * 4 + action_bytes) as u64);
        // The fake clock moves 1 ms a read: each extend and each hash spans one.
        assert_eq!(cost.extend_ns, 11 * 1_000_000);
        assert_eq!(cost.hash_ns, 11 * 1_000_000);

        let log = log_bytes();
        let parsed = tcg::log::parse(&log).unwrap();
        assert_eq!(parsed.events.len(), 8 + 1 + 2);
        let replayed = tcg::log::replay(&parsed).unwrap();
        pcrs.with(|pcrs| {
            for (&(alg, pcr), digest) in pcrs.iter() {
                assert_eq!(replayed.get(AlgorithmId(alg), pcr).as_ref(), Some(digest));
            }
        });
        // The two ExitBootServices events, and only they, in the final
        // events table.
        // SAFETY: the leaked table is still alive and only read here.
        let table = unsafe { core::slice::from_raw_parts(final_address as *const u8, 4096) };
        assert_eq!(&table[..8], &1u64.to_le_bytes());
        assert_eq!(&table[8..16], &2u64.to_le_bytes());
        assert_eq!(&table[16..20], &5u32.to_le_bytes());

        // SubmitCommand: a response larger than the caller's buffer (or a
        // buffer shorter than any response) is EFI_BUFFER_TOO_SMALL, a
        // failed command EFI_DEVICE_ERROR.
        let command = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8];
        let mut out = [0u8; 32];
        for (out_len, expected) in [
            (4, Status::BUFFER_TOO_SMALL),
            (12, Status::BUFFER_TOO_SMALL),
            (32, Status::DEVICE_ERROR),
        ] {
            // SAFETY: both buffers are live for the lengths given.
            let status = unsafe {
                protocol::submit_command(
                    core::ptr::null_mut(),
                    command.len() as u32,
                    command.as_ptr(),
                    out_len,
                    out.as_mut_ptr(),
                )
            };
            assert_eq!(status, expected, "output of {out_len} bytes");
        }

        MEASURED.with(|m| {
            let m = m.as_mut().unwrap();
            m.tpm = Box::new(FakeTpm {
                banks: banks.clone(),
                pcrs: pcrs.clone(),
                fail: true,
            });
        });
        assert_eq!(
            measure(4, EventType::EFI_ACTION, b"x", b"x"),
            Err(MeasureError::Tpm)
        );
        assert!(!active());
        assert_eq!(
            measure(4, EventType::EFI_ACTION, b"x", b"x"),
            Err(MeasureError::Off)
        );
    }
}
