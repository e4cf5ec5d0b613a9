//! Fake TPMs for the host tests: a TPM 2.0 that answers the firmware's
//! commands (and really extends its PCRs), behind register-level models of
//! the CRB and FIFO interfaces as QEMU and Cloud Hypervisor implement them.
//! Each fake is a shared handle, so a test keeps one while the transport
//! owns another.

use std::sync::{Arc, Mutex, MutexGuard};
use std::vec::Vec;

use tcg::alg::{Digest, digest_size, extend};
use tcg::tpm2::{self, PcrBanks, ST_NO_SESSIONS, ST_SESSIONS, cc};
use uefi_raw::protocol::tcg::AlgorithmId;

use super::{Clock, Registers, crb, fifo};

/// A clock that advances `step` microseconds every time it is read, so
/// timeouts expire after a predictable number of polls.
pub(crate) struct FakeClock {
    pub now: u64,
    pub step: u64,
}

impl FakeClock {
    pub(crate) fn new() -> Self {
        FakeClock { now: 0, step: 10 }
    }
}

impl Clock for FakeClock {
    fn now_us(&mut self) -> u64 {
        self.now += self.step;
        self.now
    }
}

/// Empty address space: every byte reads as the same value.
pub(crate) struct Flat(pub u8);

impl Registers for Flat {
    fn read8(&mut self, _: u64) -> u8 {
        self.0
    }
    fn read32(&mut self, _: u64) -> u32 {
        u32::from_ne_bytes([self.0; 4])
    }
    fn write8(&mut self, _: u64, _: u8) {}
    fn write32(&mut self, _: u64, _: u32) {}
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn response(tag: u16, rc: u32, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&tag.to_be_bytes());
    r.extend_from_slice(&((10 + body.len()) as u32).to_be_bytes());
    r.extend_from_slice(&rc.to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A TPM 2.0 with PCR banks, a started flag and PCR values.
pub(crate) struct FakeTpm {
    started: bool,
    /// (algorithm, allocated PCRs bitmap, the 24 PCR values).
    banks: Vec<(u16, u32, Vec<Digest>)>,
    /// Every command received.
    pub commands: Vec<Vec<u8>>,
    pub self_test_rc: u32,
    /// How many commands to answer TPM_RC_RETRY before running them.
    pub retries: u32,
}

impl Default for FakeTpm {
    /// sha256 allocated; sha1 and sha384 implemented but not allocated.
    fn default() -> Self {
        Self::with_banks(&[(0x04, 0), (0x0b, 0xff_ffff), (0x0c, 0)])
    }
}

impl FakeTpm {
    pub(crate) fn with_banks(banks: &[(u16, u32)]) -> Self {
        let banks = banks
            .iter()
            .map(|&(alg, pcrs)| {
                let zero = Digest::zero(AlgorithmId(alg))
                    .unwrap_or_else(|| Digest::zero(AlgorithmId::SHA256).unwrap());
                (alg, pcrs, vec![zero; 24])
            })
            .collect();
        FakeTpm {
            started: false,
            banks,
            commands: Vec::new(),
            self_test_rc: 0,
            retries: 0,
        }
    }

    /// The banks as the firmware parses them.
    pub(crate) fn banks(&self) -> PcrBanks {
        tpm2::parse_pcr_banks(&self.capability()).unwrap()
    }

    fn capability(&self) -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0, 5];
        body.extend_from_slice(&(self.banks.len() as u32).to_be_bytes());
        for (alg, pcrs, _) in &self.banks {
            body.extend_from_slice(&alg.to_be_bytes());
            body.push(3);
            body.extend_from_slice(&pcrs.to_le_bytes()[..3]);
        }
        response(ST_NO_SESSIONS, 0, &body)
    }

    pub(crate) fn pcr(&self, alg: u16, pcr: usize) -> Digest {
        self.banks.iter().find(|b| b.0 == alg).unwrap().2[pcr]
    }

    /// Runs one command.
    pub(crate) fn respond(&mut self, command: &[u8]) -> Vec<u8> {
        self.commands.push(command.to_vec());
        let fail = |rc| response(ST_NO_SESSIONS, rc, &[]);
        if command.len() < 10 || be32(command, 2) as usize != command.len() {
            return fail(0x095); // TPM_RC_COMMAND_SIZE
        }
        if self.retries > 0 {
            self.retries -= 1;
            return fail(0x922);
        }
        let code = be32(command, 6);
        if !self.started && code != cc::STARTUP {
            return fail(0x100);
        }
        match code {
            cc::STARTUP if self.started => fail(0x100),
            cc::STARTUP => {
                self.started = true;
                fail(0)
            }
            cc::SELF_TEST => fail(self.self_test_rc),
            cc::GET_CAPABILITY => self.capability(),
            cc::PCR_EXTEND => self.extend(command),
            cc::PCR_READ => self.read(command),
            _ => fail(0x143), // TPM_RC_COMMAND_CODE
        }
    }

    fn extend(&mut self, c: &[u8]) -> Vec<u8> {
        let pcr = be32(c, 10) as usize;
        let auth = be32(c, 14) as usize;
        let mut at = 18 + auth;
        let count = be32(c, at);
        at += 4;
        for _ in 0..count {
            let alg = be16(c, at);
            let size = digest_size(AlgorithmId(alg)).unwrap();
            let digest = Digest::from_bytes(AlgorithmId(alg), &c[at + 2..at + 2 + size]).unwrap();
            at += 2 + size;
            if let Some(bank) = self.banks.iter_mut().find(|b| b.0 == alg)
                && bank.1 & (1 << pcr) != 0
            {
                bank.2[pcr] = extend(&bank.2[pcr], &digest).unwrap();
            }
        }
        response(ST_SESSIONS, 0, &[0, 0, 0, 0, 0, 0, 1, 0, 0])
    }

    fn read(&mut self, c: &[u8]) -> Vec<u8> {
        let alg = be16(c, 14);
        let select = u32::from_le_bytes([c[17], c[18], c[19], 0]);
        let pcr = select.trailing_zeros() as usize;
        let mut body = vec![0, 0, 0, 1];
        match self.banks.iter().find(|b| b.0 == alg && b.1 & select != 0) {
            Some(bank) => {
                body.extend_from_slice(&[0, 0, 0, 1]);
                body.extend_from_slice(&c[14..20]);
                let value = bank.2[pcr];
                body.extend_from_slice(&[0, 0, 0, 1]);
                body.extend_from_slice(&(value.as_bytes().len() as u16).to_be_bytes());
                body.extend_from_slice(value.as_bytes());
            }
            None => body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]),
        }
        response(ST_NO_SESSIONS, 0, &body)
    }
}

/// Where the fake CRB puts its buffers: QEMU's layout (both at 0x80,
/// 3968 bytes).
pub(crate) const CRB_BASE: u64 = 0xfed4_0000;

/// The CRB device's state.
pub(crate) struct CrbState {
    pub tpm: FakeTpm,
    pub regs: Vec<u8>,
    /// CTRL_START never clears (a hung TPM).
    pub hang: bool,
    pub cancelled: bool,
}

/// A CRB TPM at [`CRB_BASE`].
#[derive(Clone)]
pub(crate) struct FakeCrb(Arc<Mutex<CrbState>>);

impl FakeCrb {
    pub(crate) fn new(tpm: FakeTpm) -> Self {
        let mut regs = vec![0u8; 0x1000];
        let mut put = |at: u64, v: u32| {
            regs[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes());
        };
        put(crb::reg::LOC_STATE, 1 << 7);
        put(crb::reg::CTRL_STS, 1 << 1);
        put(
            crb::reg::INTERFACE_ID,
            crb::INTERFACE_TYPE_CRB | 1 << 4 | 1 << 14,
        );
        put(crb::reg::INTERFACE_ID_HI, 0x1014);
        put(crb::reg::CTRL_CMD_SIZE, 0xf80);
        put(crb::reg::CTRL_CMD_LADDR, (CRB_BASE + 0x80) as u32);
        put(crb::reg::CTRL_RSP_SIZE, 0xf80);
        put(crb::reg::CTRL_RSP_ADDR, (CRB_BASE + 0x80) as u32);
        FakeCrb(Arc::new(Mutex::new(CrbState {
            tpm,
            regs,
            hang: false,
            cancelled: false,
        })))
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, CrbState> {
        self.0.lock().unwrap()
    }
}

impl CrbState {
    pub(crate) fn reg(&self, at: u64) -> u32 {
        let at = at as usize;
        u32::from_le_bytes(self.regs[at..at + 4].try_into().unwrap())
    }

    fn set(&mut self, at: u64, v: u32) {
        let at = at as usize;
        self.regs[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

impl Registers for FakeCrb {
    fn read8(&mut self, offset: u64) -> u8 {
        self.state().regs[offset as usize]
    }

    fn read32(&mut self, offset: u64) -> u32 {
        assert!(offset.is_multiple_of(4));
        self.state().reg(offset)
    }

    fn write8(&mut self, offset: u64, value: u8) {
        assert!(offset >= crb::reg::DATA_BUFFER, "8-bit register write");
        self.state().regs[offset as usize] = value;
    }

    fn write32(&mut self, offset: u64, value: u32) {
        let mut s = self.state();
        match offset {
            crb::reg::LOC_CTRL => match value {
                1 => {
                    s.set(crb::reg::LOC_STATE, 1 << 7 | 1 << 1);
                    s.set(crb::reg::LOC_STS, 1);
                }
                2 => {
                    s.set(crb::reg::LOC_STATE, 1 << 7);
                    s.set(crb::reg::LOC_STS, 0);
                }
                _ => {}
            },
            crb::reg::CTRL_REQ => match value {
                1 => s.set(crb::reg::CTRL_STS, 0),
                2 => s.set(crb::reg::CTRL_STS, 1 << 1),
                _ => {}
            },
            crb::reg::CTRL_CANCEL => {
                if value == 1 {
                    s.cancelled = true;
                }
            }
            crb::reg::CTRL_START if value == 1 => {
                assert_eq!(s.reg(crb::reg::LOC_STATE) & 2, 2, "START without locality");
                assert_eq!(s.reg(crb::reg::CTRL_STS) & 2, 0, "START while idle");
                if s.hang {
                    s.set(crb::reg::CTRL_START, 1);
                    return;
                }
                let len = be32(&s.regs, 0x82) as usize;
                let command = s.regs[0x80..0x80 + len.min(0xf80)].to_vec();
                let answer = s.tpm.respond(&command);
                s.regs[0x80..0x80 + answer.len()].copy_from_slice(&answer);
                // Cloud Hypervisor writes !START on completion.
                s.set(crb::reg::CTRL_START, !1);
            }
            offset if offset >= crb::reg::DATA_BUFFER => s.set(offset, value),
            _ => {}
        }
    }
}

/// The FIFO device's state (PTP §5.5.2 state machine, locality 0 only).
pub(crate) struct FifoState {
    pub tpm: FakeTpm,
    pub interface_id: u32,
    pub active: bool,
    /// Never grants the locality.
    pub deny_locality: bool,
    ready: bool,
    received: Vec<u8>,
    response: Vec<u8>,
    read: usize,
    /// Largest burstCount the device reports.
    pub burst: usize,
    /// Pads the next response with a stray byte until responseRetry.
    pub garble_once: bool,
    pub hang: bool,
    pub cancelled: bool,
    pub retried: bool,
}

#[derive(Clone)]
pub(crate) struct FakeFifo(Arc<Mutex<FifoState>>);

impl FakeFifo {
    pub(crate) fn new(tpm: FakeTpm) -> Self {
        FakeFifo(Arc::new(Mutex::new(FifoState {
            tpm,
            interface_id: fifo::INTERFACE_TYPE_FIFO,
            active: false,
            deny_locality: false,
            ready: false,
            received: Vec::new(),
            response: Vec::new(),
            read: 0,
            burst: 7,
            garble_once: false,
            hang: false,
            cancelled: false,
            retried: false,
        })))
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, FifoState> {
        self.0.lock().unwrap()
    }
}

impl FifoState {
    fn expected(&self) -> usize {
        if self.received.len() < 6 {
            usize::MAX
        } else {
            be32(&self.received, 2) as usize
        }
    }

    fn status(&self) -> u32 {
        // stsValid, tpmFamily 01 (TPM 2.0).
        let mut sts = 1 << 7 | 1 << 26;
        if self.ready {
            sts |= 1 << 6;
        }
        let receiving = !self.ready && !self.received.is_empty() && self.response.is_empty();
        if receiving && self.received.len() < self.expected() {
            sts |= 1 << 3;
        }
        let left = self.response.len().saturating_sub(self.read);
        if left > 0 {
            sts |= 1 << 4;
        }
        let burst = if self.response.is_empty() {
            self.burst
        } else {
            left.min(self.burst)
        };
        sts | (burst as u32) << 8
    }
}

impl Registers for FakeFifo {
    fn read8(&mut self, offset: u64) -> u8 {
        let mut s = self.state();
        match offset {
            fifo::reg::ACCESS => 1 << 7 | if s.active { 1 << 5 } else { 0 },
            fifo::reg::DATA_FIFO => {
                let byte = s.response.get(s.read).copied().unwrap_or(0xff);
                s.read += 1;
                byte
            }
            _ => 0,
        }
    }

    fn read32(&mut self, offset: u64) -> u32 {
        let s = self.state();
        match offset {
            fifo::reg::STS => s.status(),
            fifo::reg::INTERFACE_ID => s.interface_id,
            fifo::reg::DID_VID => 0x0001_1014,
            _ => 0,
        }
    }

    fn write8(&mut self, offset: u64, value: u8) {
        let mut s = self.state();
        match offset {
            fifo::reg::ACCESS if value == 1 << 1 => s.active = !s.deny_locality,
            fifo::reg::ACCESS if value == 1 << 5 => s.active = false,
            fifo::reg::DATA_FIFO => {
                assert!(s.active, "FIFO write without locality");
                assert!(
                    s.ready || !s.received.is_empty(),
                    "FIFO write before commandReady"
                );
                s.ready = false;
                s.received.push(value);
            }
            _ => {}
        }
    }

    fn write32(&mut self, offset: u64, value: u32) {
        assert_eq!(offset, fifo::reg::STS, "32-bit write outside STS");
        let mut s = self.state();
        if value & 1 << 6 != 0 {
            s.ready = true;
            s.received.clear();
            s.response.clear();
            s.read = 0;
        }
        if value & 1 << 5 != 0 && !s.hang {
            assert_eq!(s.received.len(), s.expected(), "tpmGo with Expect set");
            let command = core::mem::take(&mut s.received);
            let mut answer = s.tpm.respond(&command);
            if s.garble_once {
                answer.push(0);
            }
            s.response = answer;
            s.read = 0;
        }
        if value & 1 << 1 != 0 {
            s.retried = true;
            if s.garble_once {
                s.garble_once = false;
                s.response.pop();
            }
            s.read = 0;
        }
        if value & 1 << 24 != 0 {
            s.cancelled = true;
        }
    }
}
