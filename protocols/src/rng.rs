//! EFI_RNG_PROTOCOL (UEFI 2.10 §37.5): random bytes for the OS loader (the
//! Linux EFI stub seeds KASLR and its LINUX_EFI_RANDOM_SEED table from it,
//! systemd-boot its random seed).
//!
//! Sources, each used only when present: RDRAND and RDSEED when CPUID
//! offers them, and a virtio-rng device. The algorithms offered follow from
//! them (§37.5.1): EFI_RNG_ALGORITHM_SP800_90_CTR_256 when RDRAND exists,
//! since Intel documents RDRAND as the output of an SP800-90A CTR_DRBG with
//! AES-256 (Intel DRNG Software Implementation Guide, "DRNG Overview"; see
//! `platform::cpu_rng`), and EFI_RNG_ALGORITHM_RAW whenever any source
//! exists, served by the least processed source: RDSEED (the conditioned
//! entropy source), then virtio-rng (the host's RNG), then RDRAND. The first
//! listed algorithm is the default (§37.5.1: "the first algorithm in the
//! list is the default"). Without any source the protocol is not installed,
//! so callers see honestly that there is none.
//!
//! The protocol sits on the virtio-rng device's handle (with its device
//! path) when there is one, else on a handle of its own.
//!
//! The pure parts (which algorithms, which sources, argument rules) are
//! host-tested; the `extern "efiapi"` layer only reads and writes the
//! caller's memory.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;

use efi::ids::HandleId;
use platform::cpu_rng::CpuRng;
use platform::sync::Global;
use platform::virtio::VirtioRng;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::rng::{RngAlgorithmType, RngProtocol};
use uefi_raw::{Guid, Status};

use crate::device_path::{DevicePathBuf, pci, pci_root};

/// A source of random bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Rdrand,
    Rdseed,
    VirtioRng,
}

/// Which sources this machine has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Available {
    pub rdrand: bool,
    pub rdseed: bool,
    pub virtio_rng: bool,
}

impl Available {
    pub fn any(&self) -> bool {
        self.rdrand || self.rdseed || self.virtio_rng
    }

    /// The algorithms GetInfo lists, default first (§37.5.1).
    pub fn algorithms(&self) -> Vec<Guid> {
        let mut list = Vec::new();
        if self.rdrand {
            list.push(RngAlgorithmType::ALGORITHM_SP800_90_CTR_256.0);
        }
        if self.any() {
            list.push(RngAlgorithmType::ALGORITHM_RAW.0);
        }
        list
    }

    /// The sources that serve `algorithm`, in the order they are tried;
    /// empty for an algorithm we do not offer.
    pub fn sources_for(&self, algorithm: &Guid) -> Vec<Source> {
        let candidates: &[(bool, Source)] =
            if *algorithm == RngAlgorithmType::ALGORITHM_SP800_90_CTR_256.0 {
                &[(self.rdrand, Source::Rdrand)]
            } else if *algorithm == RngAlgorithmType::ALGORITHM_RAW.0 {
                &[
                    (self.rdseed, Source::Rdseed),
                    (self.virtio_rng, Source::VirtioRng),
                    (self.rdrand, Source::Rdrand),
                ]
            } else {
                &[]
            };
        candidates
            .iter()
            .filter(|(present, _)| *present)
            .map(|&(_, source)| source)
            .collect()
    }
}

/// GetInfo's answer (§37.5.1) for a caller buffer of `list_size` bytes
/// (`None`: the size pointer is NULL) that may be NULL (`list_present`):
/// `Ok(bytes)` to copy the list and report `bytes`, or the error status and,
/// for EFI_BUFFER_TOO_SMALL, the size to report.
pub fn info_reply(
    list_size: Option<usize>,
    list_present: bool,
    algorithms: &[Guid],
) -> Result<usize, (Status, Option<usize>)> {
    let needed = core::mem::size_of_val(algorithms);
    let Some(list_size) = list_size else {
        return Err((Status::INVALID_PARAMETER, None));
    };
    if algorithms.is_empty() {
        return Err((Status::UNSUPPORTED, None));
    }
    if list_size < needed {
        return Err((Status::BUFFER_TOO_SMALL, Some(needed)));
    }
    if !list_present {
        return Err((Status::INVALID_PARAMETER, None));
    }
    Ok(needed)
}

/// GetRNG's argument rules (§37.5.2): `value_length` 0 or a NULL buffer is
/// EFI_INVALID_PARAMETER, checked first (the SCT passes both with a NULL
/// algorithm too); a NULL algorithm (`None`) means the default, the first of
/// `algorithms`; one we do not offer is EFI_UNSUPPORTED. Returns the
/// algorithm to use.
pub fn choose_algorithm(
    algorithm: Option<Guid>,
    value_length: usize,
    value_present: bool,
    algorithms: &[Guid],
) -> Result<Guid, Status> {
    if value_length == 0 || !value_present {
        return Err(Status::INVALID_PARAMETER);
    }
    match algorithm {
        None => algorithms.first().copied().ok_or(Status::UNSUPPORTED),
        Some(wanted) if algorithms.contains(&wanted) => Ok(wanted),
        Some(_) => Err(Status::UNSUPPORTED),
    }
}

/// The sources found at start-up.
struct Sources {
    cpu: CpuRng,
    virtio_rng: Option<VirtioRng>,
}

impl Sources {
    fn available(&self) -> Available {
        Available {
            rdrand: self.cpu.rdrand,
            rdseed: self.cpu.rdseed,
            virtio_rng: self.virtio_rng.is_some(),
        }
    }

    fn fill(&self, source: Source, buf: &mut [u8]) -> bool {
        match source {
            Source::Rdrand => self.cpu.fill_rdrand(buf).is_ok(),
            Source::Rdseed => self.cpu.fill_rdseed(buf).is_ok(),
            Source::VirtioRng => self
                .virtio_rng
                .as_ref()
                .is_some_and(|device| device.fill(buf).is_ok()),
        }
    }
}

struct Installed(Option<Sources>);

// SAFETY: the firmware runs on one CPU (see `platform::sync`); the device's
// queue memory is only touched from this CPU.
unsafe impl Send for Installed {}

static SOURCES: Global<Installed> = Global::new(Installed(None));

/// Fills `buf` by `algorithm` from the first source that succeeds.
/// EFI_NOT_READY when a GetRNG interrupted another one that holds the
/// sources (§37.5.2 allows NOT_READY when no data can be had right now).
fn generate(algorithm: &Guid, buf: &mut [u8]) -> Status {
    let outcome = SOURCES.try_with(|installed| {
        let Some(sources) = &installed.0 else {
            return Status::UNSUPPORTED;
        };
        let served = sources
            .available()
            .sources_for(algorithm)
            .into_iter()
            .any(|source| sources.fill(source, buf));
        if served {
            Status::SUCCESS
        } else {
            log::warn!("rng: every source failed");
            Status::DEVICE_ERROR
        }
    });
    outcome.unwrap_or(Status::NOT_READY)
}

fn installed_algorithms() -> Vec<Guid> {
    SOURCES
        .try_with(|installed| {
            installed
                .0
                .as_ref()
                .map(|sources| sources.available().algorithms())
        })
        .flatten()
        .unwrap_or_default()
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §37.5.1 requires of the caller.
unsafe extern "efiapi" fn get_info(
    _this: *mut RngProtocol,
    list_size: *mut usize,
    list: *mut RngAlgorithmType,
) -> Status {
    let algorithms = installed_algorithms();
    // SAFETY: the caller's size pointer, as this function's # Safety requires.
    let size = unsafe { efi::boundary::read(list_size.cast_const()) }.ok();
    match info_reply(size, !list.is_null(), &algorithms) {
        Ok(bytes) => {
            // SAFETY: the caller's list has room for `*list_size` >= `bytes`
            // bytes (checked by `info_reply`).
            let out = unsafe { efi::boundary::bytes_mut(list.cast::<u8>(), bytes) };
            let Ok(out) = out else {
                return Status::INVALID_PARAMETER;
            };
            for (slot, guid) in out.chunks_exact_mut(16).zip(&algorithms) {
                slot.copy_from_slice(&guid.to_bytes());
            }
            // SAFETY: non-null (read above); the caller's size pointer.
            efi::boundary::status(unsafe { efi::boundary::write(list_size, bytes) })
        }
        Err((status, report)) => {
            if let Some(bytes) = report {
                // SAFETY: non-null (read above); the caller's size pointer.
                let _ = unsafe { efi::boundary::write(list_size, bytes) };
            }
            status
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §37.5.2 requires of the caller.
unsafe extern "efiapi" fn get_rng(
    _this: *mut RngProtocol,
    algorithm: *const RngAlgorithmType,
    value_length: usize,
    value: *mut u8,
) -> Status {
    let wanted = if algorithm.is_null() {
        None
    } else {
        // SAFETY: a non-null algorithm points at a GUID (# Safety above).
        match unsafe { efi::boundary::guid(algorithm.cast::<Guid>()) } {
            Ok(guid) => Some(guid),
            Err(status) => return status,
        }
    };
    let algorithms = installed_algorithms();
    let chosen = match choose_algorithm(wanted, value_length, !value.is_null(), &algorithms) {
        Ok(chosen) => chosen,
        Err(status) => return status,
    };
    // SAFETY: the caller's buffer of `value_length` bytes (# Safety above).
    match unsafe { efi::boundary::bytes_mut(value, value_length) } {
        Ok(buf) => generate(&chosen, buf),
        Err(status) => status,
    }
}

static PROTOCOL: RngProtocol = RngProtocol { get_info, get_rng };

/// Installs EFI_RNG_PROTOCOL when some source exists: on the virtio-rng
/// device's handle with its device path `PciRoot(0x0)/Pci(dev,fn)`, or on a
/// new handle when there is only the CPU. Returns the handle, or `None`
/// (nothing installed) without any source. At most once.
pub fn install(cpu: CpuRng, virtio_rng: Option<VirtioRng>) -> Result<Option<HandleId>, Status> {
    let sources = Sources { cpu, virtio_rng };
    let available = sources.available();
    if !available.any() {
        log::info!("rng: no RDRAND, RDSEED or virtio-rng; EFI_RNG_PROTOCOL not installed");
        return Ok(None);
    }
    let mut protocols: Vec<(Guid, *mut c_void)> = Vec::with_capacity(2);
    protocols.push((
        RngProtocol::GUID,
        (&raw const PROTOCOL).cast_mut().cast::<c_void>(),
    ));
    if let Some(device) = &sources.virtio_rng {
        let bdf = device.bdf();
        let path = DevicePathBuf::from_nodes(&[pci_root(0), pci(bdf.device, bdf.function)])
            .map_err(|_| Status::INVALID_PARAMETER)?;
        // The handle database keeps the pointer for as long as the handle
        // lives, which is forever: leak a copy.
        let bytes = Box::leak(path.as_bytes().to_vec().into_boxed_slice());
        protocols.push((DevicePathProtocol::GUID, bytes.as_mut_ptr().cast()));
    }
    let stored = SOURCES.with(|installed| {
        if installed.0.is_some() {
            return false;
        }
        installed.0 = Some(sources);
        true
    });
    if !stored {
        return Err(Status::ALREADY_STARTED);
    }
    let handle = efi::protocol_services::install(None, &protocols)?;
    log::info!(
        "rng: EFI_RNG_PROTOCOL from{}{}{}",
        if available.rdrand { " RDRAND" } else { "" },
        if available.rdseed { " RDSEED" } else { "" },
        if available.virtio_rng {
            " virtio-rng"
        } else {
            ""
        }
    );
    Ok(Some(handle))
}

/// Resets the virtio-rng device, so no DMA lands in memory the OS owns and
/// its driver finds the device in reset state. The core runs this at
/// ExitBootServices (§7.4.6), after which the protocol may not be used.
pub fn quiesce() {
    let done = SOURCES.try_with(|installed| {
        if let Some(device) = installed.0.as_ref().and_then(|s| s.virtio_rng.as_ref()) {
            device.reset();
        }
    });
    if done.is_none() {
        log::error!("rng: sources busy at quiesce");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: Guid = RngAlgorithmType::ALGORITHM_RAW.0;
    const CTR: Guid = RngAlgorithmType::ALGORITHM_SP800_90_CTR_256.0;
    const HASH: Guid = RngAlgorithmType::ALGORITHM_SP800_90_HASH_256.0;

    fn available(rdrand: bool, rdseed: bool, virtio_rng: bool) -> Available {
        Available {
            rdrand,
            rdseed,
            virtio_rng,
        }
    }

    #[test]
    fn algorithms_follow_the_sources_default_first() {
        assert_eq!(available(false, false, false).algorithms(), []);
        assert_eq!(available(false, false, true).algorithms(), [RAW]);
        assert_eq!(available(false, true, false).algorithms(), [RAW]);
        assert_eq!(available(true, false, false).algorithms(), [CTR, RAW]);
        assert_eq!(available(true, true, true).algorithms(), [CTR, RAW]);
    }

    #[test]
    fn raw_prefers_the_least_processed_source() {
        let all = available(true, true, true);
        assert_eq!(
            all.sources_for(&RAW),
            [Source::Rdseed, Source::VirtioRng, Source::Rdrand]
        );
        assert_eq!(all.sources_for(&CTR), [Source::Rdrand]);
        assert_eq!(all.sources_for(&HASH), []);
        let virtio_only = available(false, false, true);
        assert_eq!(virtio_only.sources_for(&RAW), [Source::VirtioRng]);
        assert_eq!(virtio_only.sources_for(&CTR), []);
        assert_eq!(
            available(true, false, false).sources_for(&RAW),
            [Source::Rdrand]
        );
    }

    #[test]
    fn get_info_sizes_and_errors() {
        let list = [CTR, RAW];
        // The SCT's probe: a 10-byte buffer is too small; the size is set.
        assert_eq!(
            info_reply(Some(10), true, &list),
            Err((Status::BUFFER_TOO_SMALL, Some(32)))
        );
        // Size 0 with a NULL list asks for the size.
        assert_eq!(
            info_reply(Some(0), false, &list),
            Err((Status::BUFFER_TOO_SMALL, Some(32)))
        );
        assert_eq!(
            info_reply(None, true, &list),
            Err((Status::INVALID_PARAMETER, None))
        );
        assert_eq!(
            info_reply(Some(32), false, &list),
            Err((Status::INVALID_PARAMETER, None))
        );
        assert_eq!(info_reply(Some(32), true, &list), Ok(32));
        assert_eq!(info_reply(Some(100), true, &list), Ok(32));
        assert_eq!(
            info_reply(Some(16), true, &[]),
            Err((Status::UNSUPPORTED, None))
        );
    }

    #[test]
    fn get_rng_argument_rules() {
        let list = [CTR, RAW];
        assert_eq!(choose_algorithm(None, 32, true, &list), Ok(CTR));
        assert_eq!(choose_algorithm(Some(RAW), 32, true, &list), Ok(RAW));
        assert_eq!(
            choose_algorithm(Some(HASH), 32, true, &list),
            Err(Status::UNSUPPORTED)
        );
        // Length and buffer are checked before the algorithm, as the SCT
        // expects with a NULL algorithm and length 0.
        for algorithm in [None, Some(RAW), Some(HASH)] {
            assert_eq!(
                choose_algorithm(algorithm, 0, true, &list),
                Err(Status::INVALID_PARAMETER)
            );
            assert_eq!(
                choose_algorithm(algorithm, 10, false, &list),
                Err(Status::INVALID_PARAMETER)
            );
        }
        assert_eq!(
            choose_algorithm(None, 8, true, &[RAW]),
            Ok(RAW),
            "without RDRAND the default is raw"
        );
    }
}
