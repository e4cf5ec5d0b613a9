//! System reset and power-off, backing EFI ResetSystem (UEFI 2.10 §8.5.1).
//!
//! ACPI's registers come first (the FADT reset register, the PM1 control
//! blocks or, on HW-reduced platforms such as Cloud Hypervisor, the sleep
//! control register); the legacy PC mechanisms follow only if the machine is
//! still running. Every path ends in a halt loop if nothing worked.

use log::{error, info, warn};

use crate::acpi::{AcpiInfo, GenericAddress, SleepType};
use crate::tsc;
use x86_64::instructions::port::{Port, PortWriteOnly};

/// The kinds of reset UEFI distinguishes (EFI_RESET_TYPE, §8.5.1); platform
/// specific resets map to `Cold`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetKind {
    Cold,
    Warm,
}

pub mod values {
    //! Register values, host-testable.
    #![forbid(unsafe_code)]

    use super::ResetKind;

    /// PM1 control: SLP_TYPx in bits 10-12, SLP_EN bit 13 (ACPI 6.5
    /// §4.8.3.2.1, Table 4.13).
    pub const SLP_TYP_SHIFT: u16 = 10;
    pub const SLP_TYP_MASK: u16 = 0b111 << SLP_TYP_SHIFT;
    pub const SLP_EN: u16 = 1 << 13;
    /// GBL_RLS (bit 2) is write-only; writing back a read 1 would raise an
    /// SMI, so it is always written as zero.
    pub const GBL_RLS: u16 = 1 << 2;

    /// PM1 control value selecting `slp_typ`, with or without SLP_EN, that
    /// keeps the register's other bits (SCI_EN in particular).
    pub fn pm1_control(current: u16, slp_typ: u8, enable: bool) -> u16 {
        let base = current & !(SLP_TYP_MASK | SLP_EN | GBL_RLS);
        let typ = (u16::from(slp_typ) << SLP_TYP_SHIFT) & SLP_TYP_MASK;
        base | typ | if enable { SLP_EN } else { 0 }
    }

    /// Sleep control register: SLP_TYP in bits 2-4, SLP_EN bit 5 (ACPI 6.5
    /// §4.8.3.7).
    pub fn sleep_control(slp_typ: u8) -> u8 {
        ((slp_typ & 0b111) << 2) | (1 << 5)
    }

    /// Writes to the reset control register at 0xCF9 (Intel ICH/PCH
    /// datasheets, "Reset Control Register"): bit 1 selects a hard (system)
    /// reset, and a 0->1 edge of bit 2 (RST_CPU) performs it; without bit 1
    /// only the CPU is reset.
    pub fn cf9_sequence(kind: ResetKind) -> [u8; 2] {
        match kind {
            ResetKind::Cold => [0x02, 0x06],
            ResetKind::Warm => [0x00, 0x04],
        }
    }
}

/// How long to give a reset or power-off write to take effect before trying
/// the next mechanism.
const SETTLE_US: u64 = 100_000;
const RESET_CONTROL: u16 = 0xcf9;
const KBC_STATUS_COMMAND: u16 = 0x64;
/// 8042 command: pulse the output port's reset line.
const KBC_PULSE_RESET: u8 = 0xfe;
/// QEMU's ICH9 LPC places PM1a control at PMBASE 0x600 + 4; writing S5
/// (SLP_TYP 0 in QEMU's mapping) with SLP_EN powers off.
const QEMU_Q35_PM1A_CNT: u16 = 0x604;

/// Resets the machine. Never returns; halts if no mechanism worked.
///
/// # Safety
/// `acpi`, if given, must be this platform's ACPI information (from
/// `AcpiInfo::discover`): the FADT reset register it names is written, and a
/// made-up register would write arbitrary memory or ports before the reset.
pub unsafe fn reset(kind: ResetKind, acpi: Option<&AcpiInfo>) -> ! {
    disable_interrupts();
    info!("reset: {kind:?} reset");
    if let Some(reset) = acpi.and_then(|a| a.reset) {
        // SAFETY: the register comes from the platform's FADT (this
        // function's contract; ACPI 6.5 §4.8.3.6), which names it as the
        // reset register; we are resetting.
        if unsafe { reset.register.write(u64::from(reset.value)) } {
            tsc::stall_us(SETTLE_US);
            warn!("reset: FADT reset register had no effect");
        } else {
            warn!(
                "reset: FADT reset register in unsupported space {:?}",
                reset.register.space
            );
        }
    }

    let [prepare, go] = values::cf9_sequence(kind);
    let mut reset_control = PortWriteOnly::<u8>::new(RESET_CONTROL);
    // SAFETY: 0xCF9 is the chipset reset control register (ICH9 §13.7.5);
    // the writes reset the machine, which is what the caller asked for.
    unsafe { reset_control.write(prepare) };
    tsc::stall_us(50);
    // SAFETY: as above.
    unsafe { reset_control.write(go) };
    tsc::stall_us(SETTLE_US);

    // Wait for the 8042's input buffer to drain (status bit 1), bounded in
    // case there is no controller.
    let mut kbc = Port::<u8>::new(KBC_STATUS_COMMAND);
    for _ in 0..10_000 {
        // SAFETY: reading the 8042 status register has no side effects.
        if unsafe { kbc.read() } & 0x02 == 0 {
            break;
        }
        tsc::stall_us(10);
    }
    // SAFETY: the 8042 reset-pulse command resets the machine, as asked.
    unsafe { kbc.write(KBC_PULSE_RESET) };
    tsc::stall_us(SETTLE_US);

    error!("reset: no reset mechanism worked; halting");
    halt()
}

/// Powers the machine off (ACPI S5). Never returns; halts if nothing worked.
///
/// # Safety
/// As for [`reset`]: `acpi`, if given, must be this platform's ACPI
/// information, whose PM1 and sleep control registers are written.
pub unsafe fn shutdown(acpi: Option<&AcpiInfo>) -> ! {
    disable_interrupts();
    info!("reset: power off");
    if let Some(acpi) = acpi {
        match acpi.s5_sleep_type {
            // SAFETY: `acpi` is the platform's (this function's contract).
            Some(s5) => unsafe { acpi_power_off(acpi, s5) },
            None => warn!("reset: no \\_S5 sleep type known"),
        }
    }
    // SAFETY: on QEMU q35 this is PM1a control; elsewhere an unclaimed port.
    // Entering S5 is what the caller asked for.
    unsafe { PortWriteOnly::<u16>::new(QEMU_Q35_PM1A_CNT).write(values::SLP_EN) };
    tsc::stall_us(SETTLE_US);

    error!("reset: power off failed; halting");
    halt()
}

/// Enters S5 through whichever ACPI registers the FADT provides (ACPI 6.5
/// §7.4.2 and §16.1.7: SLP_TYP is written first, then with SLP_EN).
///
/// # Safety
/// `acpi` must be this platform's ACPI information, as for [`shutdown`].
unsafe fn acpi_power_off(acpi: &AcpiInfo, s5: SleepType) {
    if let Some(pm1a) = acpi.pm1a_cnt {
        let blocks = [(Some(pm1a), s5.a), (acpi.pm1b_cnt, s5.b)];
        for enable in [false, true] {
            for (block, slp_typ) in blocks {
                if let Some(block) = block {
                    // SAFETY: a PM1 control block of the platform's FADT.
                    unsafe { write_pm1(&block, slp_typ, enable) };
                }
            }
        }
        tsc::stall_us(SETTLE_US);
        warn!("reset: PM1 control S5 write had no effect");
    }
    if let Some(sleep_control) = acpi.sleep_control {
        // SAFETY: the platform's FADT names this as the sleep control
        // register (ACPI 6.5 §4.8.3.7); we are powering off.
        if unsafe { sleep_control.write(u64::from(values::sleep_control(s5.a))) } {
            tsc::stall_us(SETTLE_US);
            warn!("reset: sleep control S5 write had no effect");
        } else {
            warn!(
                "reset: sleep control register in unsupported space {:?}",
                sleep_control.space
            );
        }
    }
}

/// Writes SLP_TYP (and SLP_EN if `enable`) into a PM1 control block.
///
/// # Safety
/// `block` must be a PM1 control block of this platform's FADT.
unsafe fn write_pm1(block: &GenericAddress, slp_typ: u8, enable: bool) {
    // PM1 control is a 16-bit register whatever the block length says.
    let register = GenericAddress {
        access_size: 2,
        ..*block
    };
    // SAFETY: `block` is a PM1 control block from the FADT (this function's
    // contract; ACPI 6.5 §4.8.3.2); reading it and setting SLP_TYP/SLP_EN
    // enters S5, as asked.
    let current = unsafe { register.read() }.unwrap_or(0) as u16;
    // SAFETY: as above.
    let written =
        unsafe { register.write(u64::from(values::pm1_control(current, slp_typ, enable))) };
    if !written {
        warn!(
            "reset: PM1 control block in unsupported space {:?}",
            block.space
        );
    }
}

fn disable_interrupts() {
    // SAFETY: masking interrupts has no memory effects; the machine is being
    // reset or powered off, so no handler needs to run again.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
}

/// Stops the CPU for good.
pub fn halt() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops this CPU; with interrupts masked it
        // stays stopped (an NMI resumes the loop, which halts again).
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

#[cfg(test)]
mod tests {
    use super::ResetKind;
    use super::values::*;

    #[test]
    fn pm1_control_values() {
        // QEMU: SCI_EN set, S5 = 0 -> SLP_EN only on top of SCI_EN.
        assert_eq!(pm1_control(0x0001, 0, true), 0x2001);
        assert_eq!(pm1_control(0x0001, 0, false), 0x0001);
        // SLP_TYP 5 = 0b101 << 10 = 0x1400.
        assert_eq!(pm1_control(0, 5, true), 0x3400);
        // Stale SLP_TYP/SLP_EN and GBL_RLS are cleared, others kept.
        assert_eq!(pm1_control(0x3c07, 2, false), 0x0803);
        // Out-of-range types cannot spill into other bits.
        assert_eq!(pm1_control(0, 0xff, false), SLP_TYP_MASK);
    }

    #[test]
    fn sleep_control_values() {
        // Cloud Hypervisor: S5 = 5 -> 0x34.
        assert_eq!(sleep_control(5), 0x34);
        assert_eq!(sleep_control(0), 0x20);
        assert_eq!(sleep_control(0xff), 0x3c);
    }

    #[test]
    fn cf9_sequences() {
        assert_eq!(cf9_sequence(ResetKind::Cold), [0x02, 0x06]);
        assert_eq!(cf9_sequence(ResetKind::Warm), [0x00, 0x04]);
    }
}
