//! The firmware's memory footprint as the benchmark reports it (issue 18):
//! the smallest VM a boot chain still boots in, found by bisection over RAM
//! sizes, and the firmware's own use, from the line it logs at
//! ExitBootServices:
//!
//! `firmware memory at ExitBootServices: heap high-water 4167 KiB, heap arenas 6144 KiB (3), boot services pages 6452 KiB`

/// What the firmware reports holding at ExitBootServices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FirmwareMemory {
    pub heap_high_water_kib: u64,
    pub heap_arena_kib: u64,
    pub heap_arenas: u64,
    pub boot_services_kib: u64,
}

/// The text that starts the firmware's report line.
pub const FIRMWARE_MEMORY_LINE: &str = "firmware memory at ExitBootServices: ";

/// Parses the firmware's report line (any prefix before it is ignored).
pub fn parse_firmware_memory(line: &str) -> Option<FirmwareMemory> {
    let rest = line.split_once(FIRMWARE_MEMORY_LINE)?.1;
    let number_after = |key: &str| -> Option<u64> {
        let after = rest.split_once(key)?.1;
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some(FirmwareMemory {
        heap_high_water_kib: number_after("heap high-water ")?,
        heap_arena_kib: number_after("heap arenas ")?,
        heap_arenas: number_after(" KiB (")?,
        boot_services_kib: number_after("boot services pages ")?,
    })
}

/// The smallest of `sizes` (ascending) for which `boots` holds, assuming a
/// VM that boots in some size also boots in every larger one; None when
/// even the largest fails. Calls `boots` about log2(len) times.
pub fn smallest_that_boots(sizes: &[u32], mut boots: impl FnMut(u32) -> bool) -> Option<u32> {
    let (mut lo, mut hi) = (0, sizes.len());
    // Invariant: every size below `lo` fails; sizes[hi] (if any) boots.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if boots(sizes[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    sizes.get(lo).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_report_line() {
        let line = "[   5.377] firmware memory at ExitBootServices: heap high-water 4167 KiB, \
                    heap arenas 6144 KiB (3), boot services pages 6452 KiB";
        assert_eq!(
            parse_firmware_memory(line),
            Some(FirmwareMemory {
                heap_high_water_kib: 4167,
                heap_arena_kib: 6144,
                heap_arenas: 3,
                boot_services_kib: 6452,
            })
        );
        assert_eq!(parse_firmware_memory("INIT: done"), None);
    }

    #[test]
    fn bisection_finds_the_threshold() {
        let sizes: Vec<u32> = (8..=32).map(|n| n * 16).collect();
        let mut calls = 0;
        let found = smallest_that_boots(&sizes, |mib| {
            calls += 1;
            mib >= 192
        });
        assert_eq!(found, Some(192));
        assert!(calls <= 6, "{calls} boots");
        assert_eq!(smallest_that_boots(&sizes, |_| false), None);
        assert_eq!(smallest_that_boots(&sizes, |_| true), Some(128));
    }
}
