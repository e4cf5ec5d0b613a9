//! The FIFO interface (PTP §5.5, the TIS of older TPMs), locality 0:
//! request the locality through TPM_ACCESS, make the TPM Ready
//! (STS.commandReady), write the command into TPM_DATA_FIFO in bursts of
//! at most burstCount bytes while STS.Expect says more is wanted, start it
//! (STS.tpmGo), wait for STS.dataAvail, read the response the same way,
//! then return the TPM to Idle and give up the locality.
//!
//! If the response read does not add up (dataAvail still set after the
//! size the header gave, or cleared before it), it is read again once
//! after STS.responseRetry (PTP §5.5.2.2).

#![forbid(unsafe_code)]

use tcg::tpm2::HEADER_LEN;

use super::{
    Clock, Interface, Registers, TpmError, Transport, check_lengths, poll, response_size, timeout,
    wait,
};

/// Register offsets of locality 0 (PTP Table 19 "Allocation of Register
/// Space for FIFO TPM Access").
pub mod reg {
    pub const ACCESS: u64 = 0x00;
    pub const STS: u64 = 0x18;
    pub const DATA_FIFO: u64 = 0x24;
    pub const INTERFACE_ID: u64 = 0x30;
    pub const DID_VID: u64 = 0xf00;
}

/// TPM_ACCESS_x bits.
const ACCESS_REQUEST_USE: u8 = 1 << 1;
const ACCESS_ACTIVE_LOCALITY: u8 = 1 << 5;
const ACCESS_VALID: u8 = 1 << 7;
/// TPM_STS_x bits.
const STS_RESPONSE_RETRY: u32 = 1 << 1;
const STS_EXPECT: u32 = 1 << 3;
const STS_DATA_AVAIL: u32 = 1 << 4;
const STS_GO: u32 = 1 << 5;
const STS_COMMAND_READY: u32 = 1 << 6;
const STS_VALID: u32 = 1 << 7;
const STS_BURST_SHIFT: u32 = 8;
const STS_BURST_MASK: u32 = 0xffff;
const STS_CANCEL: u32 = 1 << 24;

/// InterfaceType of TPM_INTERFACE_ID (PTP Table 30): FIFO for TPM 2.0;
/// 0xF means a TIS 1.3 TPM without the register (a TPM 1.2).
pub const INTERFACE_TYPE_FIFO: u32 = 0;
pub const INTERFACE_TYPE_TIS13: u32 = 0xf;

/// Largest command or response moved through the FIFO: the PTP lets the
/// TPM define it; 4 KiB is what TPMs (and swtpm) use as MAX_COMMAND_SIZE.
pub const MAX_TRANSFER: usize = 4096;

/// A FIFO TPM's locality 0.
pub struct Fifo<R, C> {
    regs: R,
    clock: C,
    base: u64,
}

impl<R: Registers, C: Clock> Fifo<R, C> {
    /// `base` is the physical address of the register page `regs` covers.
    pub fn new(regs: R, clock: C, base: u64) -> Self {
        Fifo { regs, clock, base }
    }

    fn request_locality(&mut self) -> Result<(), TpmError> {
        self.regs.write8(reg::ACCESS, ACCESS_REQUEST_USE);
        poll(
            &mut self.regs,
            &mut self.clock,
            timeout::A,
            "FIFO locality 0",
            |r| {
                let access = r.read8(reg::ACCESS);
                access & (ACCESS_VALID | ACCESS_ACTIVE_LOCALITY)
                    == ACCESS_VALID | ACCESS_ACTIVE_LOCALITY
            },
        )
    }

    /// Idle (or Completion) -> Ready.
    fn ready(&mut self) -> Result<(), TpmError> {
        self.regs.write32(reg::STS, STS_COMMAND_READY);
        poll(
            &mut self.regs,
            &mut self.clock,
            timeout::B,
            "FIFO commandReady",
            |r| r.read32(reg::STS) & STS_COMMAND_READY != 0,
        )
    }

    /// STS once stsValid is set (TIMEOUT_C).
    fn valid_status(&mut self) -> Result<u32, TpmError> {
        let mut sts = 0;
        poll(
            &mut self.regs,
            &mut self.clock,
            timeout::C,
            "FIFO stsValid",
            |r| {
                sts = r.read32(reg::STS);
                sts & STS_VALID != 0
            },
        )?;
        Ok(sts)
    }

    /// A non-zero burstCount (TIMEOUT_D).
    fn burst(&mut self) -> Result<usize, TpmError> {
        let mut burst = 0;
        poll(
            &mut self.regs,
            &mut self.clock,
            timeout::D,
            "FIFO burstCount",
            |r| {
                burst = (r.read32(reg::STS) >> STS_BURST_SHIFT) & STS_BURST_MASK;
                burst != 0
            },
        )?;
        Ok(burst as usize)
    }

    fn send(&mut self, command: &[u8]) -> Result<(), TpmError> {
        let mut sent = 0;
        while sent < command.len() {
            let burst = self.burst()?;
            let end = command.len().min(sent.saturating_add(burst));
            for &byte in &command[sent..end] {
                self.regs.write8(reg::DATA_FIFO, byte);
            }
            sent = end;
            let expect = self.valid_status()? & STS_EXPECT != 0;
            if expect != (sent < command.len()) {
                return Err(TpmError::Device(if expect {
                    "FIFO expects more than the command's size"
                } else {
                    "FIFO stopped expecting before the command's end"
                }));
            }
        }
        Ok(())
    }

    /// Reads `out.len()` response bytes in bursts.
    fn receive(&mut self, out: &mut [u8]) -> Result<(), TpmError> {
        let mut got = 0;
        while got < out.len() {
            let burst = self.burst()?;
            let end = out.len().min(got.saturating_add(burst));
            for byte in &mut out[got..end] {
                *byte = self.regs.read8(reg::DATA_FIFO);
            }
            got = end;
        }
        Ok(())
    }

    /// One read of the whole response; `Ok(None)` when its bytes did not
    /// add up and a retry may help.
    fn read_response(&mut self, response: &mut [u8]) -> Result<Option<usize>, TpmError> {
        let max = response.len().min(MAX_TRANSFER);
        self.receive(&mut response[..HEADER_LEN])?;
        let size = response_size(&response[..HEADER_LEN], max)?;
        self.receive(&mut response[HEADER_LEN..size])?;
        let left_over = self.valid_status()? & STS_DATA_AVAIL != 0;
        Ok((!left_over).then_some(size))
    }

    fn run(
        &mut self,
        command: &[u8],
        response: &mut [u8],
        timeout_us: u64,
    ) -> Result<usize, TpmError> {
        self.ready()?;
        self.send(command)?;
        self.regs.write32(reg::STS, STS_GO);
        let done = poll(
            &mut self.regs,
            &mut self.clock,
            timeout_us,
            "FIFO command completion",
            |r| r.read32(reg::STS) & (STS_VALID | STS_DATA_AVAIL) == STS_VALID | STS_DATA_AVAIL,
        );
        if let Err(e) = done {
            // PTP §5.5.2.4: commandCancel aborts the running command.
            self.regs.write32(reg::STS, STS_CANCEL);
            return Err(e);
        }
        if let Some(size) = self.read_response(response)? {
            return Ok(size);
        }
        self.regs.write32(reg::STS, STS_RESPONSE_RETRY);
        self.read_response(response)?.ok_or(TpmError::Device(
            "FIFO response longer than its header says",
        ))
    }

    /// Back to Idle and locality released, whatever happened before.
    fn finish(&mut self) {
        self.regs.write32(reg::STS, STS_COMMAND_READY);
        self.regs.write8(reg::ACCESS, ACCESS_ACTIVE_LOCALITY);
    }
}

impl<R: Registers, C: Clock> Transport for Fifo<R, C> {
    fn execute(
        &mut self,
        command: &[u8],
        response: &mut [u8],
        timeout_us: u64,
    ) -> Result<usize, TpmError> {
        check_lengths(command, response, MAX_TRANSFER)?;
        self.request_locality()?;
        let result = self.run(command, response, timeout_us);
        self.finish();
        result
    }

    fn wait_us(&mut self, us: u64) {
        wait(&mut self.clock, us);
    }

    fn interface(&self) -> Interface {
        Interface::Fifo
    }

    fn base(&self) -> u64 {
        self.base
    }

    fn max_command_size(&self) -> usize {
        MAX_TRANSFER
    }

    fn max_response_size(&self) -> usize {
        MAX_TRANSFER
    }
}

#[cfg(test)]
mod tests;
