//! hvm_start_info (Xen arch-x86/hvm/start_info.h) as the VMM hands it over:
//! the input is guest memory starting at `BASE`, the structure at its start.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::start_info::{PhysRead, StartInfo, StartInfoError};

const BASE: u64 = 0x1000;

struct Memory<'a>(&'a [u8]);

impl PhysRead for Memory<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), StartInfoError> {
        let len = buf.len() as u64;
        let unreadable = StartInfoError::Unreadable { addr, len };
        let start = addr.checked_sub(BASE).ok_or(unreadable)? as usize;
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or(unreadable)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(info) = StartInfo::parse(&Memory(data), BASE) else {
        return;
    };
    for entry in info.memmap() {
        let _ = entry.kind.name();
        let _ = entry.addr.checked_add(entry.size);
    }
    let _ = info.modules().len();
    let _ = info.cmdline().len();
});
