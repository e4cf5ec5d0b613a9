//! What is behind a TPM register page, from its identification registers
//! (PTP Table 30 TPM_INTERFACE_ID, and TPM_DID_VID for FIFO TPMs), and the
//! one line the firmware prints about a started TPM.

#![forbid(unsafe_code)]

use core::fmt;

use tcg::tpm2::{AlgName, PcrBanks};

use super::{Interface, Registers, crb, fifo};

/// What a register page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Tpm2(Interface),
    /// A TIS 1.3 FIFO TPM (InterfaceType 0xF), i.e. a TPM 1.2.
    Tpm12,
    /// Nothing answers: all ones or zeros where IDs must be.
    Nothing,
}

/// A vendor ID that is a vendor's (not floating bus or empty space).
fn plausible_vid(vid: u32) -> bool {
    let vid = vid & 0xffff;
    vid != 0 && vid != 0xffff
}

/// Identifies the TPM at `regs` with at most three reads: one when the
/// page reads as all ones, two when it reads as zeros.
pub fn identify<R: Registers>(regs: &mut R) -> Found {
    let id = regs.read32(crb::reg::INTERFACE_ID);
    if id == u32::MAX {
        return Found::Nothing;
    }
    match id & 0xf {
        crb::INTERFACE_TYPE_CRB if plausible_vid(regs.read32(crb::reg::INTERFACE_ID_HI)) => {
            Found::Tpm2(Interface::Crb)
        }
        fifo::INTERFACE_TYPE_FIFO | fifo::INTERFACE_TYPE_TIS13
            if plausible_vid(regs.read32(fifo::reg::DID_VID)) =>
        {
            if id & 0xf == fifo::INTERFACE_TYPE_FIFO {
                Found::Tpm2(Interface::Fifo)
            } else {
                Found::Tpm12
            }
        }
        _ => Found::Nothing,
    }
}

/// `TPM 2.0 over CRB at 0xfed40000, PCR banks sha256 (sha1 sha384
/// present, unallocated)`: the banks measured into, then the others.
pub struct Summary<'a> {
    pub interface: Interface,
    pub base: u64,
    pub banks: &'a PcrBanks,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TPM 2.0 over {} at {:#x}, PCR banks",
            self.interface, self.base
        )?;
        let banks = self.banks.all();
        if !banks.iter().any(|b| b.is_active()) {
            f.write_str(" none")?;
        }
        for bank in banks.iter().filter(|b| b.is_active()) {
            write!(f, " {}", AlgName(bank.alg))?;
        }
        let group =
            |f: &mut fmt::Formatter<'_>, pick: &dyn Fn(&tcg::tpm2::PcrBank) -> bool, what| {
                let mut any = false;
                for bank in banks.iter().filter(|b| pick(b)) {
                    f.write_str(if any { " " } else { " (" })?;
                    write!(f, "{}", AlgName(bank.alg))?;
                    any = true;
                }
                if any {
                    write!(f, " {what})")?;
                }
                Ok::<(), fmt::Error>(())
            };
        group(f, &|b| !b.allocated, "present, unallocated")?;
        group(
            f,
            &|b| b.allocated && !b.is_active(),
            "allocated, not measured",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::fake::{FakeCrb, FakeFifo, FakeTpm, Flat};
    use alloc::string::ToString;

    #[test]
    fn crb_and_fifo_are_told_apart() {
        assert_eq!(
            identify(&mut FakeCrb::new(FakeTpm::default())),
            Found::Tpm2(Interface::Crb)
        );
        assert_eq!(
            identify(&mut FakeFifo::new(FakeTpm::default())),
            Found::Tpm2(Interface::Fifo)
        );
    }

    #[test]
    fn empty_space_is_nothing() {
        assert_eq!(identify(&mut Flat(0xff)), Found::Nothing);
        assert_eq!(identify(&mut Flat(0)), Found::Nothing);
    }

    #[test]
    fn tis_1_3_is_a_tpm_1_2() {
        let mut fifo = FakeFifo::new(FakeTpm::default());
        fifo.state().interface_id = 0xf;
        assert_eq!(identify(&mut fifo), Found::Tpm12);
    }

    #[test]
    fn summary_names_active_then_other_banks() {
        let banks = FakeTpm::default().banks();
        let line = Summary {
            interface: Interface::Crb,
            base: 0xfed4_0000,
            banks: &banks,
        }
        .to_string();
        assert_eq!(
            line,
            "TPM 2.0 over CRB at 0xfed40000, PCR banks sha256 (sha1 sha384 present, unallocated)"
        );
        let sm3 = FakeTpm::with_banks(&[(0x12, 0xff_ffff), (0x0b, 0)]).banks();
        let line = Summary {
            interface: Interface::Fifo,
            base: 0xfed4_0000,
            banks: &sm3,
        }
        .to_string();
        assert_eq!(
            line,
            "TPM 2.0 over FIFO at 0xfed40000, PCR banks none (sha256 present, unallocated) \
             (sm3_256 allocated, not measured)"
        );
    }
}
