//! The platform's TPM 2.0 (`platform::tpm`, CRB or FIFO) as the measuring
//! code's [`Tpm`](super::Tpm).

use alloc::vec::Vec;

use tcg::alg::Digest;
use uefi_raw::protocol::tcg::AlgorithmId;

use super::{SubmitFailure, Tpm, TpmFailure};

pub struct PlatformTpm {
    tpm: platform::tpm::Tpm,
    active: Vec<AlgorithmId>,
    supported: Vec<AlgorithmId>,
}

impl PlatformTpm {
    /// Over a started TPM (its banks are known).
    pub fn new(tpm: platform::tpm::Tpm) -> Self {
        let active = tpm.active_banks().collect();
        let supported = tpm.banks().all().iter().map(|bank| bank.alg).collect();
        PlatformTpm {
            tpm,
            active,
            supported,
        }
    }
}

impl Tpm for PlatformTpm {
    fn active_banks(&self) -> &[AlgorithmId] {
        &self.active
    }

    fn supported_banks(&self) -> &[AlgorithmId] {
        &self.supported
    }

    fn extend(&mut self, pcr: u32, digests: &[Digest]) -> Result<(), TpmFailure> {
        self.tpm.extend(pcr, digests).map_err(|e| {
            log::warn!("tpm: TPM2_PCR_Extend of PCR {pcr}: {e}");
            TpmFailure
        })
    }

    fn submit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, SubmitFailure> {
        self.tpm.submit(command, response).map_err(|e| match e {
            // The caller's buffer, not the TPM: the transport has put the
            // device back to idle, so no warning.
            platform::tpm::TpmError::ResponseTooLarge { .. } => SubmitFailure::ResponseTooLarge,
            e => {
                log::warn!("tpm: SubmitCommand: {e}");
                SubmitFailure::Failed
            }
        })
    }

    fn max_command_size(&self) -> usize {
        self.tpm.max_command_size()
    }

    fn max_response_size(&self) -> usize {
        self.tpm.max_response_size()
    }

    fn manufacturer_id(&self) -> u32 {
        // TPM_PT_MANUFACTURER is not queried; TCG2 allows 0 ("unknown").
        0
    }
}
