//! AHCI 1.3.1 register blocks: the generic host control registers (§3.1)
//! and one port's registers (§3.3), reached through [`HbaRegs`] so host
//! tests can put a fake HBA behind the driver.

use crate::mmio::Mmio;

/// The generic host control registers (§3.1) as laid out at the start of
/// the ABAR. Only used for offsets; registers are read through [`HbaRegs`].
#[repr(C)]
pub struct HbaRegisters {
    pub cap: u32,
    pub ghc: u32,
    pub is: u32,
    pub pi: u32,
    pub vs: u32,
    pub ccc_ctl: u32,
    pub ccc_ports: u32,
    pub em_loc: u32,
    pub em_ctl: u32,
    pub cap2: u32,
    pub bohc: u32,
}

/// One port's registers (§3.3), 0x80 bytes from 0x100 + port x 0x80.
#[repr(C)]
pub struct PortRegisters {
    pub clb: u32,
    pub clbu: u32,
    pub fb: u32,
    pub fbu: u32,
    pub is: u32,
    pub ie: u32,
    pub cmd: u32,
    pub reserved: u32,
    pub tfd: u32,
    pub sig: u32,
    pub ssts: u32,
    pub sctl: u32,
    pub serr: u32,
    pub sact: u32,
    pub ci: u32,
    pub sntf: u32,
    pub fbs: u32,
    pub devslp: u32,
    pub reserved_vendor: [u32; 14],
}

macro_rules! offset {
    ($block:ident, $field:ident) => {
        core::mem::offset_of!(super::$block, $field) as u32
    };
}

/// Generic host control register offsets in the ABAR.
pub mod hba {
    pub const CAP: u32 = offset!(HbaRegisters, cap);
    pub const GHC: u32 = offset!(HbaRegisters, ghc);
    pub const IS: u32 = offset!(HbaRegisters, is);
    pub const PI: u32 = offset!(HbaRegisters, pi);
    pub const VS: u32 = offset!(HbaRegisters, vs);
    pub const CAP2: u32 = offset!(HbaRegisters, cap2);
    pub const BOHC: u32 = offset!(HbaRegisters, bohc);
    /// Port registers start here, 0x80 bytes each (§3.3).
    pub const PORTS: u32 = 0x100;
    pub const PORT_BYTES: u32 = core::mem::size_of::<super::PortRegisters>() as u32;

    /// CAP bits (§3.1.1).
    pub const CAP_S64A: u32 = 1 << 31;
    pub const CAP_SCLO: u32 = 1 << 24;
    pub const CAP_SSS: u32 = 1 << 27;
    /// GHC bits (§3.1.2).
    pub const GHC_HR: u32 = 1 << 0;
    pub const GHC_IE: u32 = 1 << 1;
    pub const GHC_AE: u32 = 1 << 31;
    /// CAP2 bit 0: BIOS/OS handoff (§3.1.10).
    pub const CAP2_BOH: u32 = 1 << 0;
    /// BOHC bits (§3.1.11).
    pub const BOHC_BOS: u32 = 1 << 0;
    pub const BOHC_OOS: u32 = 1 << 1;
    pub const BOHC_BB: u32 = 1 << 4;
}

/// Port register offsets from the port's base.
pub mod port {
    pub const CLB: u32 = offset!(PortRegisters, clb);
    pub const CLBU: u32 = offset!(PortRegisters, clbu);
    pub const FB: u32 = offset!(PortRegisters, fb);
    pub const FBU: u32 = offset!(PortRegisters, fbu);
    pub const IS: u32 = offset!(PortRegisters, is);
    pub const IE: u32 = offset!(PortRegisters, ie);
    pub const CMD: u32 = offset!(PortRegisters, cmd);
    pub const TFD: u32 = offset!(PortRegisters, tfd);
    pub const SIG: u32 = offset!(PortRegisters, sig);
    pub const SSTS: u32 = offset!(PortRegisters, ssts);
    pub const SERR: u32 = offset!(PortRegisters, serr);
    pub const CI: u32 = offset!(PortRegisters, ci);

    /// PxCMD bits (§3.3.7).
    pub const CMD_ST: u32 = 1 << 0;
    pub const CMD_SUD: u32 = 1 << 1;
    pub const CMD_POD: u32 = 1 << 2;
    pub const CMD_CLO: u32 = 1 << 3;
    pub const CMD_FRE: u32 = 1 << 4;
    pub const CMD_FR: u32 = 1 << 14;
    pub const CMD_CR: u32 = 1 << 15;
    /// PxIS error bits (§3.3.5): task file error, host bus fatal and data
    /// errors, interface fatal error, overflow.
    pub const IS_TFES: u32 = 1 << 30;
    pub const IS_HBFS: u32 = 1 << 29;
    pub const IS_HBDS: u32 = 1 << 28;
    pub const IS_IFS: u32 = 1 << 27;
    pub const IS_OFS: u32 = 1 << 24;
    pub const IS_ERRORS: u32 = IS_TFES | IS_HBFS | IS_HBDS | IS_IFS | IS_OFS;
    /// PxTFD status bits (§3.3.8).
    pub const TFD_ERR: u32 = 1 << 0;
    pub const TFD_DRQ: u32 = 1 << 3;
    pub const TFD_BSY: u32 = 1 << 7;
    /// PxSSTS.DET (§3.3.10): device present and Phy communication up.
    pub const SSTS_DET_MASK: u32 = 0xF;
    pub const DET_PRESENT: u32 = 3;
    /// DET 1: a device is there but the link is not up yet.
    pub const DET_NO_PHY: u32 = 1;
    /// PxSIG values (§3.3.9) reported by the device's first D2H FIS.
    pub const SIG_ATA: u32 = 0x0000_0101;
    pub const SIG_ATAPI: u32 = 0xEB14_0101;
}

/// The HBA's registers and a clock for timeouts. The firmware's is the
/// ABAR window and the TSC; host tests put a simulated HBA here.
pub trait HbaRegs {
    fn read(&self, offset: u32) -> u32;
    fn write(&self, offset: u32, value: u32);
    /// Microseconds since some fixed point.
    fn now_us(&self) -> u64;
}

/// The ABAR (BAR5) of a real HBA.
pub struct MmioRegs {
    pub abar: Mmio,
}

impl HbaRegs for MmioRegs {
    fn read(&self, offset: u32) -> u32 {
        self.abar.read(u64::from(offset))
    }

    fn write(&self, offset: u32, value: u32) {
        self.abar.write(u64::from(offset), value)
    }

    fn now_us(&self) -> u64 {
        crate::tsc::now_ns() / 1000
    }
}

/// Polls `read` until `done` holds or `timeout_us` passes; returns the
/// last value read and whether `done` held.
pub fn poll(
    regs: &dyn HbaRegs,
    offset: u32,
    timeout_us: u64,
    done: impl Fn(u32) -> bool,
) -> (u32, bool) {
    let start = regs.now_us();
    loop {
        let value = regs.read(offset);
        if done(value) {
            return (value, true);
        }
        if regs.now_us().saturating_sub(start) > timeout_us {
            return (value, false);
        }
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_blocks_match_ahci_1_3_1() {
        assert_eq!(
            (hba::GHC, hba::PI, hba::CAP2, hba::BOHC),
            (0x04, 0x0C, 0x24, 0x28)
        );
        assert_eq!(hba::PORT_BYTES, 0x80);
        assert_eq!(
            (port::IS, port::CMD, port::TFD, port::SIG),
            (0x10, 0x18, 0x20, 0x24)
        );
        assert_eq!((port::SSTS, port::SERR, port::CI), (0x28, 0x30, 0x38));
    }
}
