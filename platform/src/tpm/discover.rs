//! Finding the firmware's TPM: the ACPI TPM2 table the VMM publishes
//! (TCG ACPI Specification §8.3) says which interface and where; without
//! one, the standard address is probed with one or two MMIO reads. The
//! TPM found is started and kept in [`TPM`] for the TCG2 protocol and the
//! measurements.

use alloc::boxed::Box;

use log::{debug, info, warn};

use super::probe::{Found, Summary, identify};
use super::{
    Interface, LOCALITY_SIZE, STANDARD_BASE, Tpm, TpmError, Transport, TscClock, crb, fifo,
};
use crate::acpi::AcpiInfo;
use crate::acpi::parse::{Tpm2Table, start_method};
use crate::mmio::Mmio;
use crate::paging::{self, Access};
use crate::sync::Global;
use crate::tsc;

/// The started TPM, if the machine has a usable one.
pub static TPM: Global<Option<Tpm>> = Global::new(None);

/// Where the TPM2 table says locality 0's registers are, and through which
/// interface; None (logged) for a table the firmware cannot use.
fn from_table(table: &Tpm2Table) -> Option<(u64, Interface)> {
    let (base, interface) = match table.start_method {
        // The control area (CTRL_REQ) sits at offset 0x40 of the page.
        start_method::CRB => (
            table.control_area.checked_sub(crb::reg::CTRL_REQ)?,
            Interface::Crb,
        ),
        // FIFO TPMs are at the standard address; QEMU leaves the control
        // area field zero for them.
        start_method::FIFO if table.control_area == 0 => (STANDARD_BASE, Interface::Fifo),
        start_method::FIFO => (table.control_area & !(LOCALITY_SIZE - 1), Interface::Fifo),
        other => {
            warn!("tpm: the TPM2 table's start method {other} is not supported; no TPM");
            return None;
        }
    };
    if base == 0 || !base.is_multiple_of(LOCALITY_SIZE) {
        warn!("tpm: the TPM2 table's control area {base:#x} is not a register page; no TPM");
        return None;
    }
    Some((base, interface))
}

/// Finds, starts and publishes the TPM, printing one line about it (or a
/// warning if it cannot be used). Without a TPM it prints nothing at info
/// level and costs an ACPI table lookup and a register read or two.
pub fn discover_and_start(acpi: Option<&AcpiInfo>) {
    let started = tsc::now_ns();
    let table = acpi.and_then(|a| a.tpm2);
    let (base, expected) = match &table {
        Some(table) => match from_table(table) {
            Some((base, interface)) => (base, Some(interface)),
            None => return,
        },
        None => (STANDARD_BASE, None),
    };
    if expected.is_some() {
        // The VMM says a TPM is there: uncached device memory before the
        // first access. (A probe without a table reads the page as the
        // boot mapping has it, so a machine without a TPM keeps its page
        // tables unchanged; VMMs trap the access either way.)
        paging::set_access(base, LOCALITY_SIZE, Access::DEVICE);
    }
    // SAFETY: `base` is the page the TPM2 table names, now mapped as device
    // memory, or the PTP's standard TPM address, which the boot page tables
    // map (the low 4 GiB) and where PC platforms put nothing but a TPM:
    // reading it is harmless when nothing is there. The window stays
    // mapped for the firmware's life.
    let mut regs = unsafe { Mmio::new(base, LOCALITY_SIZE) };
    let found = identify(&mut regs);
    let interface = match (found, expected) {
        (Found::Tpm2(interface), None) => {
            paging::set_access(base, LOCALITY_SIZE, Access::DEVICE);
            interface
        }
        (Found::Tpm2(interface), Some(expected)) if interface == expected => interface,
        (Found::Tpm2(interface), Some(expected)) => {
            warn!(
                "tpm: the TPM2 table says {expected} but the TPM at {base:#x} is {interface}; no TPM"
            );
            return;
        }
        (Found::Tpm12, _) => {
            warn!("tpm: the TPM at {base:#x} is a TPM 1.2, which the firmware does not support");
            return;
        }
        (Found::Nothing, Some(expected)) => {
            warn!("tpm: no {expected} TPM answers at {base:#x}, though the TPM2 table lists one");
            return;
        }
        (Found::Nothing, None) => {
            debug!(
                "tpm: none (no TPM2 table, nothing at {base:#x}; looked for {} us)",
                tsc::now_ns().saturating_sub(started) / 1000
            );
            return;
        }
    };
    let transport: Box<dyn Transport + Send> = match interface {
        Interface::Crb => match crb::Crb::new(regs, TscClock, base) {
            Ok(crb) => Box::new(crb),
            Err(e) => {
                warn!("tpm: CRB TPM at {base:#x} unusable, continuing without it: {e}");
                return;
            }
        },
        // InterfaceType 0 is the PTP's FIFO for TPM 2.0 (a TPM 1.2 reports 0xF).
        Interface::Fifo => Box::new(fifo::Fifo::new(regs, TscClock, base)),
    };
    let mut tpm = Tpm::new(transport, table.and_then(|t| t.log_area));
    match tpm.start() {
        Ok(state) => {
            info!(
                "tpm: {}",
                Summary {
                    interface,
                    base,
                    banks: tpm.banks(),
                }
            );
            debug!(
                "tpm: started {} in {} us",
                if state.by_us {
                    "by the firmware"
                } else {
                    "already (an earlier stage sent Startup)"
                },
                tsc::now_ns().saturating_sub(started) / 1000
            );
            TPM.with(|slot| *slot = Some(tpm));
        }
        Err(e) => warn!("{}", Unusable { interface, base, e }),
    }
}

/// The one warning for a TPM that does not start.
struct Unusable {
    interface: Interface,
    base: u64,
    e: TpmError,
}

impl core::fmt::Display for Unusable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "tpm: TPM 2.0 over {} at {:#x} did not start ({}); continuing without a TPM",
            self.interface, self.base, self.e
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(control_area: u64, start_method: u32) -> Tpm2Table {
        Tpm2Table {
            platform_class: 0,
            control_area,
            start_method,
            log_area: None,
        }
    }

    #[test]
    fn table_gives_base_and_interface() {
        assert_eq!(
            from_table(&table(0xfed4_0040, 7)),
            Some((0xfed4_0000, Interface::Crb))
        );
        assert_eq!(
            from_table(&table(0, 6)),
            Some((0xfed4_0000, Interface::Fifo))
        );
        assert_eq!(from_table(&table(0xfed4_0040, 2)), None);
        assert_eq!(from_table(&table(0x20, 7)), None);
        assert_eq!(from_table(&table(0xfed4_0044, 7)), None);
    }

    #[test]
    fn the_warning_names_the_tpm_and_the_cause() {
        let line = alloc::format!(
            "{}",
            Unusable {
                interface: Interface::Fifo,
                base: 0xfed4_0000,
                e: TpmError::Timeout("FIFO locality 0"),
            }
        );
        assert_eq!(
            line,
            "tpm: TPM 2.0 over FIFO at 0xfed40000 did not start (timed out waiting for \
             FIFO locality 0); continuing without a TPM"
        );
    }
}
