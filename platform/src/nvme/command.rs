//! Submission and completion queue entries (NVM Express Base Specification
//! 2.0 §4.2, §4.6) and the commands the driver sends: Identify, Create I/O
//! Completion/Submission Queue (§5.17, §5.4, §5.5) and the NVM Command Set's
//! Read, Write and Flush (NVM Command Set Specification 1.0 §3.2).
#![forbid(unsafe_code)]

use core::fmt;

/// Admin opcodes (Base §5, Figure 138).
pub mod admin {
    pub const CREATE_IO_SQ: u8 = 0x01;
    pub const CREATE_IO_CQ: u8 = 0x05;
    pub const IDENTIFY: u8 = 0x06;
}

/// NVM Command Set opcodes (NVM Command Set §3, Figure 15).
pub mod io {
    pub const FLUSH: u8 = 0x00;
    pub const WRITE: u8 = 0x01;
    pub const READ: u8 = 0x02;
}

/// Identify CNS values (Base §5.17.1, Figure 273).
pub mod cns {
    pub const NAMESPACE: u32 = 0x00;
    pub const CONTROLLER: u32 = 0x01;
    pub const ACTIVE_NAMESPACES: u32 = 0x02;
}

/// A 64-byte submission queue entry as 16 dwords (§4.2, Figure 88).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Command(pub [u32; 16]);

impl Command {
    /// CDW0 holds the opcode and (bits 31:16) the command identifier; FUSE
    /// and PSDT stay 0 (not fused, PRPs).
    pub fn new(opcode: u8, nsid: u32) -> Self {
        let mut dwords = [0; 16];
        dwords[0] = u32::from(opcode);
        dwords[1] = nsid;
        Command(dwords)
    }

    pub fn opcode(&self) -> u8 {
        self.0[0] as u8
    }

    #[cfg(test)]
    pub fn cid(&self) -> u16 {
        (self.0[0] >> 16) as u16
    }

    pub fn with_cid(mut self, cid: u16) -> Self {
        self.0[0] = (self.0[0] & 0xFFFF) | (u32::from(cid) << 16);
        self
    }

    /// Data Pointer: PRP Entry 1 in dwords 6-7, PRP Entry 2 in 8-9.
    pub fn with_prps(mut self, prp1: u64, prp2: u64) -> Self {
        self.0[6] = prp1 as u32;
        self.0[7] = (prp1 >> 32) as u32;
        self.0[8] = prp2 as u32;
        self.0[9] = (prp2 >> 32) as u32;
        self
    }

    #[cfg(test)]
    pub fn prp1(&self) -> u64 {
        u64::from(self.0[6]) | u64::from(self.0[7]) << 32
    }

    #[cfg(test)]
    pub fn prp2(&self) -> u64 {
        u64::from(self.0[8]) | u64::from(self.0[9]) << 32
    }

    /// Identify (§5.17): CNS in CDW10 bits 7:0; a 4 KiB data buffer.
    pub fn identify(cns: u32, nsid: u32) -> Self {
        let mut command = Command::new(admin::IDENTIFY, nsid);
        command.0[10] = cns;
        command
    }

    /// Create I/O Completion Queue (§5.4): QSIZE (0's based) and QID in
    /// CDW10; CDW11 = physically contiguous, interrupts disabled (we poll).
    pub fn create_io_cq(qid: u16, entries: u16, addr: u64) -> Self {
        let mut command = Command::new(admin::CREATE_IO_CQ, 0).with_prps(addr, 0);
        command.0[10] = u32::from(entries - 1) << 16 | u32::from(qid);
        command.0[11] = 1;
        command
    }

    /// Create I/O Submission Queue (§5.5): CDW11 = CQID, physically
    /// contiguous, priority ignored under round robin.
    pub fn create_io_sq(qid: u16, entries: u16, addr: u64, cqid: u16) -> Self {
        let mut command = Command::new(admin::CREATE_IO_SQ, 0).with_prps(addr, 0);
        command.0[10] = u32::from(entries - 1) << 16 | u32::from(qid);
        command.0[11] = u32::from(cqid) << 16 | 1;
        command
    }

    /// Read or Write (NVM Command Set §3.2.4, §3.2.6): SLBA in CDW10-11,
    /// NLB (0's based) in CDW12 bits 15:0. `blocks` is 1..=65536.
    pub fn read_write(opcode: u8, nsid: u32, lba: u64, blocks: u32) -> Self {
        let mut command = Command::new(opcode, nsid);
        command.0[10] = lba as u32;
        command.0[11] = (lba >> 32) as u32;
        command.0[12] = blocks.saturating_sub(1) & 0xFFFF;
        command
    }
}

/// Status Field of a completion (§4.6.1): type and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// Status Code Type: 0 generic, 1 command specific, 2 media errors...
    pub sct: u8,
    pub sc: u8,
}

impl Status {
    pub const SUCCESS: Status = Status { sct: 0, sc: 0 };

    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }

    /// SCT and SC in one number, for `BlockError::DeviceStatus`.
    pub fn code(self) -> u16 {
        u16::from(self.sct) << 8 | u16::from(self.sc)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status type {:#x} code {:#04x}", self.sct, self.sc)
    }
}

/// A 16-byte completion queue entry (§4.6, Figure 91).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub cid: u16,
    pub phase: bool,
    pub status: Status,
}

impl Completion {
    /// Decodes dword 3: CID 15:0, phase tag 16, status 31:17 (SC 24:17,
    /// SCT 27:25; CRD, More and DNR above are not needed to report it).
    pub fn from_dw3(dw3: u32) -> Self {
        Completion {
            cid: dw3 as u16,
            phase: (dw3 >> 16) & 1 != 0,
            status: Status {
                sct: ((dw3 >> 25) & 7) as u8,
                sc: (dw3 >> 17) as u8,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_command_layout() {
        let command = Command::read_write(io::READ, 1, 0x1_2345_6789, 8)
            .with_cid(0x42)
            .with_prps(0x10_0000, 0x20_0000);
        assert_eq!(command.0[0], 0x0042_0002);
        assert_eq!(command.0[1], 1);
        assert_eq!(
            (command.0[10], command.0[11], command.0[12]),
            (0x2345_6789, 1, 7)
        );
        assert_eq!((command.prp1(), command.prp2()), (0x10_0000, 0x20_0000));
        assert_eq!((command.opcode(), command.cid()), (io::READ, 0x42));
    }

    #[test]
    fn queue_creation_layout() {
        let cq = Command::create_io_cq(1, 64, 0x5000);
        assert_eq!((cq.0[0], cq.0[10], cq.0[11]), (0x05, 0x003F_0001, 1));
        let sq = Command::create_io_sq(1, 64, 0x6000, 1);
        assert_eq!(
            (sq.0[0], sq.0[10], sq.0[11]),
            (0x01, 0x003F_0001, 0x0001_0001)
        );
        assert_eq!(sq.prp1(), 0x6000);
    }

    #[test]
    fn completion_status_decodes() {
        let ok = Completion::from_dw3(0x0001_0007);
        assert_eq!((ok.cid, ok.phase, ok.status), (7, true, Status::SUCCESS));
        // LBA Out of Range: SCT 0, SC 0x80, DNR set, phase 0.
        let bad = Completion::from_dw3(0x8000_0000 | (0x80 << 17) | 3);
        assert_eq!((bad.cid, bad.phase), (3, false));
        assert_eq!(bad.status, Status { sct: 0, sc: 0x80 });
        assert_eq!(bad.status.code(), 0x0080);
        // Media error: Unrecovered Read Error, SCT 2 SC 0x81.
        let media = Completion::from_dw3((2 << 25) | (0x81 << 17));
        assert_eq!(media.status.code(), 0x0281);
        assert_eq!(media.status.to_string(), "status type 0x2 code 0x81");
    }
}
