//! TPM 2.0 device access: the two register interfaces of the TCG PC Client
//! Platform TPM Profile (PTP) Specification, CRB ([`crb`]) and FIFO/TIS
//! ([`fifo`]), behind one [`Transport`]; the [`Tpm`] that speaks TPM 2.0
//! commands (built and parsed by `tcg::tpm2`) over either; and the
//! firmware's discovery of the device ([`discover`]) into [`TPM`].
//!
//! Register access goes through [`Registers`] and time through [`Clock`],
//! so both transports run on the host against fake devices.

use core::fmt;

use tcg::tpm2::HEADER_LEN;

use crate::mmio::Mmio;

pub mod crb;
mod device;
mod discover;
#[cfg(test)]
mod fake;
pub mod fifo;
pub mod probe;

pub use device::{Started, Tpm};
pub use discover::{TPM, discover_and_start};
pub use tcg::tpm2::{PcrBank, PcrBanks};

/// The standard address of locality 0 of a PC client TPM (PTP §5.4.1 for
/// FIFO, §6.4.1 for CRB), where QEMU and Cloud Hypervisor put theirs.
pub const STANDARD_BASE: u64 = 0xfed4_0000;
/// One locality's register page.
pub const LOCALITY_SIZE: u64 = 0x1000;

/// Interface timeouts (PTP Table 17 "Timeouts"), in microseconds.
pub mod timeout {
    /// Locality request and relinquish.
    pub const A: u64 = 750_000;
    /// Going from Idle to Ready (commandReady / cmdReady).
    pub const B: u64 = 2_000_000;
    /// Status register updates (stsValid, Expect) and cancel.
    pub const C: u64 = 200_000;
    /// burstCount becoming non-zero.
    pub const D: u64 = 30_000;
    /// What the firmware's own commands (Startup, SelfTest, GetCapability,
    /// PCR_Extend) may take: five times the PTP's long command duration
    /// (2 s), for a software TPM behind an emulated CPU.
    pub const BOOT_COMMAND: u64 = 10_000_000;
    /// Any command passed through for an OS loader (TCG2 SubmitCommand):
    /// RSA key generation on an emulated TPM takes minutes.
    pub const SUBMITTED_COMMAND: u64 = 300_000_000;
}

/// A TPM's register window. Offsets are constants of the interface
/// specifications, so an implementation may panic on one outside its
/// window (a driver bug, like `Mmio`).
pub trait Registers {
    fn read8(&mut self, offset: u64) -> u8;
    fn read32(&mut self, offset: u64) -> u32;
    fn write8(&mut self, offset: u64, value: u8);
    fn write32(&mut self, offset: u64, value: u32);
}

impl Registers for Mmio {
    fn read8(&mut self, offset: u64) -> u8 {
        self.read(offset)
    }

    fn read32(&mut self, offset: u64) -> u32 {
        self.read(offset)
    }

    fn write8(&mut self, offset: u64, value: u8) {
        self.write(offset, value)
    }

    fn write32(&mut self, offset: u64, value: u32) {
        self.write(offset, value)
    }
}

/// A monotonic clock for timeouts.
pub trait Clock {
    fn now_us(&mut self) -> u64;
}

/// The firmware's clock: the TSC (`tsc::now_ns`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TscClock;

impl Clock for TscClock {
    fn now_us(&mut self) -> u64 {
        crate::tsc::now_ns() / 1000
    }
}

/// Which PTP interface a transport drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    Crb,
    Fifo,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interface::Crb => "CRB",
            Interface::Fifo => "FIFO",
        })
    }
}

/// Why talking to the TPM failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpmError {
    /// The device did not reach a state within its PTP timeout.
    Timeout(&'static str),
    /// The device broke the interface protocol (says what).
    Device(&'static str),
    /// The command does not fit the device's command buffer.
    CommandTooLarge { len: usize, max: usize },
    /// The response does not fit the caller's buffer (or the device's).
    ResponseTooLarge { len: usize, max: usize },
    /// The response was not a valid TPM 2.0 response, or not success.
    Tpm(tcg::tpm2::Error),
}

impl From<tcg::tpm2::Error> for TpmError {
    fn from(e: tcg::tpm2::Error) -> Self {
        TpmError::Tpm(e)
    }
}

impl fmt::Display for TpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpmError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            TpmError::Device(what) => write!(f, "device error: {what}"),
            TpmError::CommandTooLarge { len, max } => {
                write!(f, "command of {len} bytes exceeds the {max}-byte buffer")
            }
            TpmError::ResponseTooLarge { len, max } => {
                write!(f, "response of {len} bytes exceeds the {max}-byte buffer")
            }
            TpmError::Tpm(e) => write!(f, "{e}"),
        }
    }
}

/// One way of sending a TPM 2.0 command and reading its response.
pub trait Transport {
    /// Sends `command` at locality 0 and reads the response into
    /// `response`, waiting at most `timeout_us` for the TPM to execute it.
    /// Returns the response's length. The response header is checked for
    /// a plausible size only; its response code is the caller's.
    fn execute(
        &mut self,
        command: &[u8],
        response: &mut [u8],
        timeout_us: u64,
    ) -> Result<usize, TpmError>;

    /// Busy-waits `us` microseconds (before retrying a command the TPM
    /// answered with TPM_RC_RETRY).
    fn wait_us(&mut self, us: u64);

    fn interface(&self) -> Interface;
    /// Physical address of locality 0's registers.
    fn base(&self) -> u64;
    /// Largest command the device accepts.
    fn max_command_size(&self) -> usize;
    /// Largest response the device can return.
    fn max_response_size(&self) -> usize;
}

/// Polls `done` until it holds or `timeout_us` passes; `what` names the
/// awaited state in the error. Checks once more after the deadline so a
/// preempted poller does not report a state that did arrive.
pub(crate) fn poll<R: Registers, C: Clock>(
    regs: &mut R,
    clock: &mut C,
    timeout_us: u64,
    what: &'static str,
    mut done: impl FnMut(&mut R) -> bool,
) -> Result<(), TpmError> {
    let start = clock.now_us();
    loop {
        if done(regs) {
            return Ok(());
        }
        if clock.now_us().saturating_sub(start) > timeout_us {
            return if done(regs) {
                Ok(())
            } else {
                Err(TpmError::Timeout(what))
            };
        }
        core::hint::spin_loop();
    }
}

/// What every transport checks before it sends a command: it fits the
/// interface's buffer (`max` bytes), and command and response buffer can
/// each hold a TPM header.
pub(crate) fn check_lengths(command: &[u8], response: &[u8], max: usize) -> Result<(), TpmError> {
    if command.len() > max {
        return Err(TpmError::CommandTooLarge {
            len: command.len(),
            max,
        });
    }
    if command.len() < HEADER_LEN || response.len() < HEADER_LEN {
        return Err(TpmError::Device("buffer shorter than a TPM header"));
    }
    Ok(())
}

/// Busy-waits `us` microseconds on `clock`.
pub(crate) fn wait<C: Clock>(clock: &mut C, us: u64) {
    let start = clock.now_us();
    while clock.now_us().saturating_sub(start) < us {
        core::hint::spin_loop();
    }
}

/// The size in a response header read so far (`tcg::tpm2` checks the tag
/// and minimum), bounded by what the caller and the device can hold.
pub(crate) fn response_size(header: &[u8], max: usize) -> Result<usize, TpmError> {
    let size = tcg::tpm2::ResponseHeader::parse(header)?.size as usize;
    if size > max {
        return Err(TpmError::ResponseTooLarge { len: size, max });
    }
    Ok(size)
}
