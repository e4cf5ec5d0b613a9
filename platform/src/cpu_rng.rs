//! The CPU's random number instructions: RDRAND (CPUID.01H:ECX[30]) and
//! RDSEED (CPUID.(EAX=07H,ECX=0):EBX[18]).
//!
//! Intel documents RDRAND as the output of an SP800-90A CTR_DRBG using
//! AES-256 (CTR_DRBG_AES_256), reseeded from the on-chip entropy source, and
//! RDSEED as that entropy source's conditioned output, meant for seeding
//! other DRBGs ("Intel Digital Random Number Generator (DRNG) Software
//! Implementation Guide", chapter 3, "DRNG Overview"; AMD's "AMD Random
//! Number Generator" paper describes its RDRAND the same way).
//!
//! Either instruction can fail transiently (carry flag clear) when its
//! source is drained; the retry loops are bounded so a broken or
//! exhausted source is an error, never a hang.

/// Retries of one RDRAND before giving up: the DRNG guide's retry recommendations say
/// ten consecutive failures mean the CPU is broken.
pub const RDRAND_RETRIES: u32 = 10;
/// Retries of one RDSEED: it fails far more often under load (the entropy
/// source is slower than the consumers), so the guide suggests
/// retrying with a pause; this bound is generous yet finishes in well
/// under a millisecond.
pub const RDSEED_RETRIES: u32 = 1000;

/// A source of 64-bit random words failed even after its retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceExhausted;

/// Which random instructions the CPU offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuRng {
    pub rdrand: bool,
    pub rdseed: bool,
}

/// CPUID.01H:ECX bit 30 (Intel SDM vol. 2A, CPUID).
const CPUID1_ECX_RDRAND: u32 = 1 << 30;
/// CPUID.(EAX=07H,ECX=0):EBX bit 18 (Intel SDM vol. 2A, CPUID).
const CPUID7_EBX_RDSEED: u32 = 1 << 18;

impl CpuRng {
    /// Asks CPUID which instructions exist. Costs a few CPUID executions.
    pub fn detect() -> Self {
        use core::arch::x86_64::{__cpuid, __cpuid_count};
        let max_leaf = __cpuid(0).eax;
        let rdrand = __cpuid(1).ecx & CPUID1_ECX_RDRAND != 0;
        let rdseed = max_leaf >= 7 && __cpuid_count(7, 0).ebx & CPUID7_EBX_RDSEED != 0;
        CpuRng { rdrand, rdseed }
    }

    pub fn any(&self) -> bool {
        self.rdrand || self.rdseed
    }

    /// Fills `buf` from RDRAND. `Err` if the CPU lacks it or it keeps failing.
    pub fn fill_rdrand(&self, buf: &mut [u8]) -> Result<(), SourceExhausted> {
        if !self.rdrand {
            return Err(SourceExhausted);
        }
        fill_words(buf, || {
            retry(RDRAND_RETRIES, || {
                // SAFETY: CPUID reported RDRAND (checked above).
                unsafe { rdrand_step() }
            })
        })
    }

    /// Fills `buf` from RDSEED. `Err` if the CPU lacks it or it keeps failing.
    pub fn fill_rdseed(&self, buf: &mut [u8]) -> Result<(), SourceExhausted> {
        if !self.rdseed {
            return Err(SourceExhausted);
        }
        fill_words(buf, || {
            retry(RDSEED_RETRIES, || {
                // SAFETY: CPUID reported RDSEED (checked above).
                let word = unsafe { rdseed_step() };
                if word.is_none() {
                    core::hint::spin_loop();
                }
                word
            })
        })
    }
}

/// One RDRAND; `None` when the carry flag says no value was ready.
///
/// # Safety
/// The CPU must support RDRAND (CPUID.01H:ECX[30]); otherwise #UD.
#[target_feature(enable = "rdrand")]
unsafe fn rdrand_step() -> Option<u64> {
    let mut word = 0u64;
    // Safe to call here: this function enables the target feature, and its
    // caller guarantees the CPU has it.
    let ok = core::arch::x86_64::_rdrand64_step(&mut word);
    (ok == 1).then_some(word)
}

/// One RDSEED; `None` when the carry flag says no value was ready.
///
/// # Safety
/// The CPU must support RDSEED (CPUID.07H.0:EBX[18]); otherwise #UD.
#[target_feature(enable = "rdseed")]
unsafe fn rdseed_step() -> Option<u64> {
    let mut word = 0u64;
    // Safe to call here: this function enables the target feature, and its
    // caller guarantees the CPU has it.
    let ok = core::arch::x86_64::_rdseed64_step(&mut word);
    (ok == 1).then_some(word)
}

/// Calls `step` up to `1 + retries` times until it yields a word.
pub fn retry(retries: u32, mut step: impl FnMut() -> Option<u64>) -> Option<u64> {
    (0..=retries).find_map(|_| step())
}

/// Fills `buf` with little-endian words from `next`, the last one cut to
/// the bytes that remain; stops at the first failure.
pub fn fill_words(
    buf: &mut [u8],
    mut next: impl FnMut() -> Option<u64>,
) -> Result<(), SourceExhausted> {
    for chunk in buf.chunks_mut(8) {
        let word = next().ok_or(SourceExhausted)?.to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fill_the_buffer_and_the_tail_is_cut() {
        let mut counter = 0u64;
        let mut buf = [0u8; 13];
        fill_words(&mut buf, || {
            counter += 1;
            Some(0x0807_0605_0403_0201 * counter)
        })
        .unwrap();
        assert_eq!(&buf[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&buf[8..], &[2, 4, 6, 8, 10]);
        assert_eq!(counter, 2);
        assert_eq!(fill_words(&mut [], || None), Ok(()));
    }

    #[test]
    fn a_failing_source_stops_the_fill() {
        let mut calls = 0;
        let result = fill_words(&mut [0u8; 32], || {
            calls += 1;
            (calls < 3).then_some(7)
        });
        assert_eq!(result, Err(SourceExhausted));
        assert_eq!(calls, 3);
    }

    #[test]
    fn retries_are_bounded() {
        let mut calls = 0;
        assert_eq!(
            retry(RDRAND_RETRIES, || {
                calls += 1;
                None
            }),
            None
        );
        assert_eq!(calls, RDRAND_RETRIES + 1);
        let mut calls = 0;
        assert_eq!(
            retry(5, || {
                calls += 1;
                (calls == 4).then_some(9)
            }),
            Some(9)
        );
        assert_eq!(calls, 4);
    }

    #[test]
    fn host_instructions_work_when_cpuid_offers_them() {
        let cpu = CpuRng::detect();
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        if cpu.rdrand {
            cpu.fill_rdrand(&mut a).unwrap();
            cpu.fill_rdrand(&mut b).unwrap();
            assert_ne!(a, b);
        } else {
            assert_eq!(cpu.fill_rdrand(&mut a), Err(SourceExhausted));
        }
        if cpu.rdseed {
            cpu.fill_rdseed(&mut a).unwrap();
        } else {
            assert_eq!(cpu.fill_rdseed(&mut a), Err(SourceExhausted));
        }
    }
}
