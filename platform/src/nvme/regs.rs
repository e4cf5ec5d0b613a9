//! The controller register block (NVM Express Base Specification 2.0,
//! §3.1.3): offsets and the fields of CAP, CC and CSTS the driver uses.
#![forbid(unsafe_code)]

/// Register offsets in BAR0 (§3.1.3, Figure 35).
pub mod offset {
    pub const CAP: u32 = 0x00;
    pub const VS: u32 = 0x08;
    /// Interrupt Mask Set: masks pin-based/MSI vectors (§3.1.3.3).
    pub const INTMS: u32 = 0x0C;
    pub const CC: u32 = 0x14;
    pub const CSTS: u32 = 0x1C;
    pub const AQA: u32 = 0x24;
    pub const ASQ: u32 = 0x28;
    pub const ACQ: u32 = 0x30;
    /// First doorbell (§3.1.3.23).
    pub const DOORBELLS: u32 = 0x1000;
}

/// Controller Capabilities (§3.1.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap(pub u64);

impl Cap {
    /// Maximum Queue Entries Supported, as a count (the field is 0's based).
    pub fn max_queue_entries(self) -> u32 {
        (self.0 & 0xFFFF) as u32 + 1
    }

    /// Worst-case time for CSTS.RDY to follow CC.EN, in milliseconds
    /// (CAP.TO counts 500 ms units). Never zero, so a wait always polls.
    pub fn timeout_ms(self) -> u64 {
        ((self.0 >> 24) & 0xFF).max(1) * 500
    }

    /// Doorbell Stride: doorbells are `4 << DSTRD` bytes apart.
    pub fn doorbell_stride(self) -> u32 {
        4 << ((self.0 >> 32) & 0xF)
    }

    /// CSS bit 0: the NVM Command Set.
    pub fn supports_nvm_command_set(self) -> bool {
        (self.0 >> 37) & 1 != 0
    }

    /// Memory Page Size Minimum, as a shift (page = 2^(12 + MPSMIN)).
    pub fn min_page_shift(self) -> u32 {
        12 + ((self.0 >> 48) & 0xF) as u32
    }
}

/// Controller Configuration (§3.1.3.5) for the NVM Command Set (CSS 000b),
/// 4 KiB pages (MPS 0), round robin (AMS 000b), 64-byte submission and
/// 16-byte completion entries (IOSQES 6, IOCQES 4).
pub const CC_ENABLED: u32 = 1 | (6 << 16) | (4 << 20);
/// CC.SHN = 01b: normal shutdown notification (§3.6.2).
pub const CC_SHUTDOWN_NORMAL: u32 = 1 << 14;

/// Controller Status (§3.1.3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Csts(pub u32);

impl Csts {
    pub fn ready(self) -> bool {
        self.0 & 1 != 0
    }

    /// Controller Fatal Status. All ones is what a read of a vanished
    /// device returns, so it counts as fatal too.
    pub fn fatal(self) -> bool {
        self.0 & 2 != 0
    }

    /// SHST = 10b: shutdown processing complete.
    pub fn shutdown_complete(self) -> bool {
        (self.0 >> 2) & 3 == 2
    }
}

/// Admin Queue Attributes (§3.1.3.8): both sizes are 0's based.
pub fn aqa(entries: u16) -> u32 {
    let n = u32::from(entries.saturating_sub(1)) & 0xFFF;
    n | (n << 16)
}

/// Offset of queue `qid`'s submission tail (`completion` false) or
/// completion head doorbell (§3.1.3.23, §3.1.3.24).
pub fn doorbell(qid: u16, completion: bool, stride: u32) -> u32 {
    offset::DOORBELLS + (2 * u32::from(qid) + u32::from(completion)) * stride
}

/// Version (§3.1.3.2) as "major.minor[.tertiary]".
pub fn version(vs: u32) -> (u32, u32, u32) {
    (vs >> 16, (vs >> 8) & 0xFF, vs & 0xFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_fields_decode() {
        // QEMU's nvme: MQES 2047, CQR, TO 15, DSTRD 0, CSS NVM, MPSMIN 0, MPSMAX 4.
        let cap = Cap(0x0040_0020_0F01_07FF);
        assert_eq!(cap.max_queue_entries(), 2048);
        assert_eq!(cap.timeout_ms(), 7500);
        assert_eq!(cap.doorbell_stride(), 4);
        assert!(cap.supports_nvm_command_set());
        assert_eq!(cap.min_page_shift(), 12);
        let odd = Cap(0x0001_0003_0000_0000);
        assert_eq!(odd.timeout_ms(), 500);
        assert_eq!(odd.doorbell_stride(), 32);
        assert!(!odd.supports_nvm_command_set());
        assert_eq!(odd.min_page_shift(), 13);
    }

    #[test]
    fn doorbells_follow_the_stride() {
        assert_eq!(doorbell(0, false, 4), 0x1000);
        assert_eq!(doorbell(0, true, 4), 0x1004);
        assert_eq!(doorbell(1, false, 4), 0x1008);
        assert_eq!(doorbell(1, true, 16), 0x1030);
    }

    #[test]
    fn status_and_attributes() {
        assert!(Csts(1).ready());
        assert!(Csts(u32::MAX).fatal());
        assert!(Csts(0b1001).shutdown_complete());
        assert!(!Csts(0b0101).shutdown_complete());
        assert_eq!(aqa(32), 0x001F_001F);
        assert_eq!(aqa(0), 0);
        assert_eq!(version(0x0001_0400), (1, 4, 0));
    }
}
