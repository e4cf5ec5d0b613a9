//! TPM 2.0 responses and TPM registers, both device-controlled: the
//! `tcg::tpm2` response parsers and the ACPI TPM2 table parser (mode 0),
//! and the CRB (mode 1) and FIFO (mode 2) transports of `platform::tpm`
//! driven by a device whose every register read comes from the input, with
//! a clock that runs 1 ms per reading so every timeout ends quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::acpi::Tpm2Table;
use platform::tpm::crb::Crb;
use platform::tpm::fifo::Fifo;
use platform::tpm::{Clock, Registers, Transport};
use tcg::alg::hash;
use tcg::tpm2;
use uefi_raw::protocol::tcg::AlgorithmId;

/// Register reads replay the input, then read as all ones (a vanished device).
struct Scripted<'a> {
    data: &'a [u8],
    at: usize,
}

impl Scripted<'_> {
    fn next(&mut self) -> u8 {
        let byte = self.data.get(self.at).copied().unwrap_or(0xff);
        self.at = self.at.saturating_add(1);
        byte
    }
}

impl Registers for Scripted<'_> {
    fn read8(&mut self, _: u64) -> u8 {
        self.next()
    }
    fn read32(&mut self, _: u64) -> u32 {
        u32::from_le_bytes([self.next(), self.next(), self.next(), self.next()])
    }
    fn write8(&mut self, _: u64, _: u8) {}
    fn write32(&mut self, _: u64, _: u32) {}
}

struct FastClock(u64);

impl Clock for FastClock {
    fn now_us(&mut self) -> u64 {
        self.0 += 1000;
        self.0
    }
}

const BASE: u64 = 0xfed4_0000;

fn exercise(transport: &mut dyn Transport) {
    let digest = hash(AlgorithmId::SHA256, b"fuzz").unwrap();
    let command = tpm2::pcr_extend(0, &[digest]).unwrap();
    for size in [10, 64, 4096] {
        let mut response = vec![0u8; size];
        if let Ok(len) = transport.execute(command.as_bytes(), &mut response, 100_000) {
            assert!((tpm2::HEADER_LEN..=size).contains(&len));
            let _ = tpm2::parse_pcr_extend(&response[..len]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = tpm2::ResponseHeader::parse(bytes);
            let _ = tpm2::check(bytes);
            let _ = tpm2::parse_startup(bytes);
            let _ = tpm2::parse_pcr_extend(bytes);
            if let Ok(banks) = tpm2::parse_pcr_banks(bytes) {
                assert!(banks.all().len() <= tpm2::MAX_BANKS);
                let _ = banks.active().count();
            }
            for alg in tcg::alg::SUPPORTED {
                let _ = tpm2::parse_pcr_read(bytes, alg);
            }
            let _ = Tpm2Table::parse(bytes);
        }
        1 => {
            let regs = Scripted { data: bytes, at: 0 };
            if let Ok(mut crb) = Crb::new(regs, FastClock(0), BASE) {
                exercise(&mut crb);
            }
        }
        _ => {
            let regs = Scripted { data: bytes, at: 0 };
            exercise(&mut Fifo::new(regs, FastClock(0), BASE));
        }
    }
});
