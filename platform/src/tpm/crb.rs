//! The Command Response Buffer interface (PTP §6.5), locality 0: request
//! the locality, move the TPM from Idle to Ready (CTRL_REQ.cmdReady),
//! write the command into the command buffer, set CTRL_START, wait for the
//! TPM to clear it, read the response from the response buffer, then
//! return the TPM to Idle and give up the locality, so the OS finds the
//! interface as after reset.
//!
//! Every register is read and written 32 bits wide, as the PTP defines
//! them (Cloud Hypervisor's CRB only accepts 32-bit register writes).
//! The buffers are used only when they lie inside the locality's register
//! page, as on QEMU and Cloud Hypervisor, so the device cannot point the
//! firmware at memory of its choosing.

#![forbid(unsafe_code)]

use tcg::tpm2::HEADER_LEN;

use super::{
    Clock, Interface, LOCALITY_SIZE, Registers, TpmError, Transport, check_lengths, poll,
    response_size, timeout, wait,
};

/// Register offsets of locality 0 (PTP Table 29 "CRB Interface Registers").
pub mod reg {
    pub const LOC_STATE: u64 = 0x00;
    pub const LOC_CTRL: u64 = 0x08;
    pub const LOC_STS: u64 = 0x0c;
    pub const INTERFACE_ID: u64 = 0x30;
    pub const INTERFACE_ID_HI: u64 = 0x34;
    pub const CTRL_REQ: u64 = 0x40;
    pub const CTRL_STS: u64 = 0x44;
    pub const CTRL_CANCEL: u64 = 0x48;
    pub const CTRL_START: u64 = 0x4c;
    pub const CTRL_CMD_SIZE: u64 = 0x58;
    pub const CTRL_CMD_LADDR: u64 = 0x5c;
    pub const CTRL_CMD_HADDR: u64 = 0x60;
    pub const CTRL_RSP_SIZE: u64 = 0x64;
    pub const CTRL_RSP_ADDR: u64 = 0x68;
    pub const DATA_BUFFER: u64 = 0x80;
}

/// TPM_LOC_STATE_x bits.
const LOC_STATE_ASSIGNED: u32 = 1 << 1;
const LOC_STATE_ACTIVE_SHIFT: u32 = 2;
const LOC_STATE_ACTIVE_MASK: u32 = 0b111;
const LOC_STATE_VALID: u32 = 1 << 7;
/// TPM_LOC_CTRL_x bits.
const LOC_CTRL_REQUEST_ACCESS: u32 = 1 << 0;
const LOC_CTRL_RELINQUISH: u32 = 1 << 1;
/// TPM_LOC_STS_x.Granted.
const LOC_STS_GRANTED: u32 = 1 << 0;
/// TPM_CRB_CTRL_REQ_x bits.
const CTRL_REQ_CMD_READY: u32 = 1 << 0;
const CTRL_REQ_GO_IDLE: u32 = 1 << 1;
/// TPM_CRB_CTRL_STS_x bits: tpmSts (fatal error) and tpmIdle.
const CTRL_STS_FATAL: u32 = 1 << 0;
const CTRL_STS_IDLE: u32 = 1 << 1;
/// CTRL_START / CTRL_CANCEL: write 1 to invoke; START reads 1 until done.
const INVOKE: u32 = 1;

/// InterfaceType of TPM_INTERFACE_ID (PTP Table 30): CRB active.
pub const INTERFACE_TYPE_CRB: u32 = 1;

/// A command or response buffer, as an offset into the register page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Buffer {
    offset: u64,
    len: usize,
}

/// The buffer at physical `address` of `size` bytes, if it lies in the
/// register page at `base` after the control area, 32-bit aligned for the
/// word writes of `write_buffer`.
fn buffer_in_page(base: u64, address: u64, size: u32) -> Option<Buffer> {
    let offset = address.checked_sub(base)?;
    let end = offset.checked_add(u64::from(size))?;
    let inside = offset >= reg::DATA_BUFFER && end <= LOCALITY_SIZE;
    (inside && offset.is_multiple_of(4) && size as usize >= HEADER_LEN).then_some(Buffer {
        offset,
        len: size as usize,
    })
}

/// A CRB TPM's locality 0.
pub struct Crb<R, C> {
    regs: R,
    clock: C,
    base: u64,
    command: Buffer,
    response: Buffer,
}

impl<R: Registers, C: Clock> Crb<R, C> {
    /// Reads where the device keeps its buffers. `base` is the physical
    /// address of the register page `regs` covers.
    pub fn new(mut regs: R, clock: C, base: u64) -> Result<Self, TpmError> {
        let cmd_addr = u64::from(regs.read32(reg::CTRL_CMD_LADDR))
            | u64::from(regs.read32(reg::CTRL_CMD_HADDR)) << 32;
        let cmd_size = regs.read32(reg::CTRL_CMD_SIZE);
        let rsp_addr = u64::from(regs.read32(reg::CTRL_RSP_ADDR))
            | u64::from(regs.read32(reg::CTRL_RSP_ADDR + 4)) << 32;
        let rsp_size = regs.read32(reg::CTRL_RSP_SIZE);
        let command = buffer_in_page(base, cmd_addr, cmd_size)
            .ok_or(TpmError::Device("command buffer outside the register page"))?;
        let response = buffer_in_page(base, rsp_addr, rsp_size).ok_or(TpmError::Device(
            "response buffer outside the register page",
        ))?;
        Ok(Crb {
            regs,
            clock,
            base,
            command,
            response,
        })
    }

    fn request_locality(&mut self) -> Result<(), TpmError> {
        self.regs.write32(reg::LOC_CTRL, LOC_CTRL_REQUEST_ACCESS);
        poll(
            &mut self.regs,
            &mut self.clock,
            timeout::A,
            "CRB locality 0",
            |r| {
                let state = r.read32(reg::LOC_STATE);
                let active = (state >> LOC_STATE_ACTIVE_SHIFT) & LOC_STATE_ACTIVE_MASK;
                state & (LOC_STATE_VALID | LOC_STATE_ASSIGNED)
                    == LOC_STATE_VALID | LOC_STATE_ASSIGNED
                    && active == 0
                    && r.read32(reg::LOC_STS) & LOC_STS_GRANTED != 0
            },
        )
    }

    /// Idle -> Ready (PTP §6.5.3.2): the TPM clears cmdReady once ready.
    fn ready(&mut self) -> Result<(), TpmError> {
        self.regs.write32(reg::CTRL_REQ, CTRL_REQ_CMD_READY);
        poll(
            &mut self.regs,
            &mut self.clock,
            timeout::B,
            "CRB cmdReady",
            |r| r.read32(reg::CTRL_REQ) & CTRL_REQ_CMD_READY == 0,
        )?;
        let status = self.regs.read32(reg::CTRL_STS);
        if status & CTRL_STS_FATAL != 0 {
            return Err(TpmError::Device("CRB reports a fatal error"));
        }
        if status & CTRL_STS_IDLE != 0 {
            return Err(TpmError::Device("CRB still idle after cmdReady"));
        }
        Ok(())
    }

    /// Copies bytes into the data buffer front to back, each once: whole
    /// 32-bit words, then the tail byte by byte.
    fn write_buffer(&mut self, offset: u64, data: &[u8]) {
        let mut words = data.chunks_exact(4);
        let mut at = offset;
        for word in words.by_ref() {
            let value = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            self.regs.write32(at, value);
            at += 4;
        }
        for &byte in words.remainder() {
            self.regs.write8(at, byte);
            at += 1;
        }
    }

    fn read_buffer(&mut self, offset: u64, out: &mut [u8]) {
        for (at, byte) in (offset..).zip(out.iter_mut()) {
            *byte = self.regs.read8(at);
        }
    }

    fn run(
        &mut self,
        command: &[u8],
        response: &mut [u8],
        timeout_us: u64,
    ) -> Result<usize, TpmError> {
        self.ready()?;
        self.write_buffer(self.command.offset, command);
        self.regs.write32(reg::CTRL_START, INVOKE);
        let done = poll(
            &mut self.regs,
            &mut self.clock,
            timeout_us,
            "CRB command completion",
            |r| r.read32(reg::CTRL_START) & INVOKE == 0,
        );
        if let Err(e) = done {
            self.cancel();
            return Err(e);
        }
        if self.regs.read32(reg::CTRL_STS) & CTRL_STS_FATAL != 0 {
            return Err(TpmError::Device("CRB reports a fatal error"));
        }
        let max = response.len().min(self.response.len);
        let mut header = [0; HEADER_LEN];
        self.read_buffer(self.response.offset, &mut header);
        let size = response_size(&header, max)?;
        response[..HEADER_LEN].copy_from_slice(&header);
        let rest = &mut response[HEADER_LEN..size];
        self.read_buffer(self.response.offset + HEADER_LEN as u64, rest);
        Ok(size)
    }

    /// Asks the TPM to abandon a command that overran its time (PTP
    /// §6.5.3.5), waiting TIMEOUT_B for it to stop.
    fn cancel(&mut self) {
        self.regs.write32(reg::CTRL_CANCEL, INVOKE);
        let _ = poll(
            &mut self.regs,
            &mut self.clock,
            timeout::B,
            "CRB cancel",
            |r| r.read32(reg::CTRL_START) & INVOKE == 0,
        );
        self.regs.write32(reg::CTRL_CANCEL, 0);
    }

    /// Back to Idle and locality released, whatever happened before.
    fn finish(&mut self) {
        self.regs.write32(reg::CTRL_REQ, CTRL_REQ_GO_IDLE);
        let _ = poll(
            &mut self.regs,
            &mut self.clock,
            timeout::C,
            "CRB goIdle",
            |r| r.read32(reg::CTRL_REQ) & CTRL_REQ_GO_IDLE == 0,
        );
        self.regs.write32(reg::LOC_CTRL, LOC_CTRL_RELINQUISH);
    }
}

impl<R: Registers, C: Clock> Transport for Crb<R, C> {
    fn execute(
        &mut self,
        command: &[u8],
        response: &mut [u8],
        timeout_us: u64,
    ) -> Result<usize, TpmError> {
        check_lengths(command, response, self.command.len)?;
        self.request_locality()?;
        let result = self.run(command, response, timeout_us);
        self.finish();
        result
    }

    fn wait_us(&mut self, us: u64) {
        wait(&mut self.clock, us);
    }

    fn interface(&self) -> Interface {
        Interface::Crb
    }

    fn base(&self) -> u64 {
        self.base
    }

    fn max_command_size(&self) -> usize {
        self.command.len
    }

    fn max_response_size(&self) -> usize {
        self.response.len
    }
}

#[cfg(test)]
mod tests;
