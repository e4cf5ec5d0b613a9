//! A TPM 2.0 over any [`Transport`]: the commands the firmware itself
//! sends (TPM 2.0 Part 3) and a raw pass-through for the TCG2 protocol's
//! SubmitCommand.

#![forbid(unsafe_code)]

use alloc::boxed::Box;

use tcg::alg::Digest;
use tcg::tpm2::{self, PcrBanks};
use uefi_raw::protocol::tcg::AlgorithmId;

use super::{Interface, TpmError, Transport, timeout};
use crate::acpi::parse::LogArea;

/// Room for the responses of the firmware's own commands (the largest,
/// GetCapability(PCRS), is under 64 bytes on any TPM).
const OWN_RESPONSE: usize = 256;
/// Tries of a command the TPM answers with TPM_RC_RETRY, YIELDED or
/// TESTING (Part 2 §6.6.3 warnings: "the command may be retried"), and
/// the pause between them.
const TRIES: u32 = 5;
const RETRY_PAUSE_US: u64 = 10_000;

/// What [`Tpm::start`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    /// False when TPM2_Startup answered TPM_RC_INITIALIZE: something had
    /// started the TPM before (SeaBIOS under QEMU `-kernel`, which also
    /// extended PCRs 0-7 and logged them in the TPM2 table's log area; or
    /// a VMM's swtpm run with `--flags startup-clear`, with no log area).
    pub by_us: bool,
}

/// A TPM 2.0 device.
pub struct Tpm {
    transport: Box<dyn Transport + Send>,
    banks: PcrBanks,
    log_area: Option<LogArea>,
    started: Option<Started>,
}

impl Tpm {
    /// `log_area` is the TPM2 ACPI table's LAML/LASA, if it had them.
    pub fn new(transport: Box<dyn Transport + Send>, log_area: Option<LogArea>) -> Self {
        Tpm {
            transport,
            banks: PcrBanks::EMPTY,
            log_area,
            started: None,
        }
    }

    /// Runs one of the firmware's commands, retrying the TPM's "try again"
    /// warnings; the response's code is left to the parser.
    fn run<T>(
        &mut self,
        command: &tpm2::Command,
        parse: impl Fn(&[u8]) -> Result<T, tpm2::Error>,
    ) -> Result<T, TpmError> {
        let mut response = [0u8; OWN_RESPONSE];
        let mut tries = 0;
        loop {
            tries += 1;
            let len =
                self.transport
                    .execute(command.as_bytes(), &mut response, timeout::BOOT_COMMAND)?;
            match parse(&response[..len]) {
                Err(tpm2::Error::Rc(rc)) if rc.is_retryable() && tries < TRIES => {
                    self.transport.wait_us(RETRY_PAUSE_US);
                }
                result => return result.map_err(TpmError::from),
            }
        }
    }

    /// TPM2_Startup(CLEAR) (accepting an already started TPM), a
    /// self-test, then the PCR banks (TCG PC Client PFP §3.3.2: the
    /// firmware's first TPM duties). The self-test is full when this
    /// firmware started the TPM; after an earlier stage did (SeaBIOS runs
    /// a full test itself), it covers what is still untested, which saves
    /// ~45 ms per boot with swtpm. A TPM in failure mode or one that fails
    /// self-test is an error; the firmware then uses no TPM.
    pub fn start(&mut self) -> Result<Started, TpmError> {
        let by_us = self.run(&tpm2::startup_clear(), tpm2::parse_startup)?;
        self.run(&tpm2::self_test(by_us), |r| tpm2::check(r).map(|_| ()))?;
        self.banks = self.run(&tpm2::get_capability_pcrs(), tpm2::parse_pcr_banks)?;
        let started = Started { by_us };
        self.started = Some(started);
        Ok(started)
    }

    /// What the last successful [`start`](Self::start) found.
    pub fn started(&self) -> Option<Started> {
        self.started
    }

    /// All banks the TPM has, as of `start`.
    pub fn banks(&self) -> &PcrBanks {
        &self.banks
    }

    /// The banks every measurement extends: allocated, with a hash the
    /// firmware computes.
    pub fn active_banks(&self) -> impl Iterator<Item = AlgorithmId> + '_ {
        self.banks.active()
    }

    /// TPM2_PCR_Extend of `pcr` with `digests`, one per active bank.
    pub fn extend(&mut self, pcr: u32, digests: &[Digest]) -> Result<(), TpmError> {
        let command = tpm2::pcr_extend(pcr, digests)?;
        self.run(&command, tpm2::parse_pcr_extend)
    }

    /// TPM2_PCR_Read of one PCR; None when the bank does not hold it.
    pub fn pcr_read(&mut self, pcr: u32, alg: AlgorithmId) -> Result<Option<Digest>, TpmError> {
        let command = tpm2::pcr_read(pcr, alg)?;
        self.run(&command, |r| tpm2::parse_pcr_read(r, alg))
    }

    /// Passes a caller's command through unchanged and returns the length
    /// of the response written to `response` (TCG EFI Protocol §6.7
    /// SubmitCommand: the response code is the caller's to read).
    pub fn submit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, TpmError> {
        self.transport
            .execute(command, response, timeout::SUBMITTED_COMMAND)
    }

    pub fn interface(&self) -> Interface {
        self.transport.interface()
    }

    /// Physical address of the TPM's locality 0 registers.
    pub fn base(&self) -> u64 {
        self.transport.base()
    }

    pub fn max_command_size(&self) -> usize {
        self.transport.max_command_size()
    }

    pub fn max_response_size(&self) -> usize {
        self.transport.max_response_size()
    }

    /// The TPM2 table's log area (the event log SeaBIOS left under QEMU).
    pub fn log_area(&self) -> Option<LogArea> {
        self.log_area
    }
}

#[cfg(test)]
mod tests;
