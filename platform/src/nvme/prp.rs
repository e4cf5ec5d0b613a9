//! Physical Region Page entries (NVM Express Base Specification 2.0 §4.1.1):
//! how a contiguous buffer is described to the controller. PRP1 may start
//! anywhere dword-aligned in its page; every later entry is a whole page.
//! Two pages fit PRP1 and PRP2; more put PRP2 at a list of page addresses.
#![forbid(unsafe_code)]

/// The memory page size the driver programs (CC.MPS = 0).
pub const PAGE: u64 = 4096;
/// Entries in one PRP list page; the driver never chains list pages, so
/// transfers are capped at what PRP1 and one list describe.
pub const LIST_ENTRIES: u64 = PAGE / 8;
/// The largest transfer any buffer alignment fits into PRP1 + one list:
/// 2 MiB spans at most 513 pages.
pub const MAX_TRANSFER: u32 = (LIST_ENTRIES * PAGE) as u32;

/// What goes into PRP2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Second {
    /// The buffer ends in PRP1's page.
    None,
    /// The buffer ends in the next page; PRP2 is its address.
    Page(u64),
    /// PRP2 points at a list of `count` page addresses starting at `first`
    /// and each a page after the one before (the buffer is contiguous).
    List { first: u64, count: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prps {
    pub prp1: u64,
    pub second: Second,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrpError {
    /// PRP1's offset must be dword aligned (§4.1.1).
    Unaligned,
    /// Empty, wrapping the address space, or needing a chained list.
    BadLength,
}

/// Describes `len` bytes at bus address `addr`.
pub fn plan(addr: u64, len: u32) -> Result<Prps, PrpError> {
    if !addr.is_multiple_of(4) {
        return Err(PrpError::Unaligned);
    }
    let end = addr
        .checked_add(u64::from(len))
        .filter(|_| len != 0)
        .ok_or(PrpError::BadLength)?;
    let first = (addr / PAGE + 1) * PAGE;
    let count = end.saturating_sub(first).div_ceil(PAGE);
    let second = match count {
        0 => Second::None,
        1 => Second::Page(first),
        _ if count <= LIST_ENTRIES => Second::List { first, count },
        _ => return Err(PrpError::BadLength),
    };
    Ok(Prps { prp1: addr, second })
}

/// The list entries for `Second::List`.
pub fn list_entries(first: u64, count: u64) -> impl Iterator<Item = u64> {
    (0..count).map(move |i| first + i * PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages a plan covers, in order, as the controller walks them.
    fn pages(prps: Prps) -> Vec<u64> {
        let mut pages = vec![prps.prp1 / PAGE * PAGE];
        match prps.second {
            Second::None => {}
            Second::Page(page) => pages.push(page),
            Second::List { first, count } => pages.extend(list_entries(first, count)),
        }
        pages
    }

    #[test]
    fn small_and_two_page_transfers_need_no_list() {
        assert_eq!(
            plan(0x10_0000, 4096),
            Ok(Prps {
                prp1: 0x10_0000,
                second: Second::None
            })
        );
        assert_eq!(
            plan(0x10_0200, 4096),
            Ok(Prps {
                prp1: 0x10_0200,
                second: Second::Page(0x10_1000)
            })
        );
        assert_eq!(
            plan(0x10_0000, 8192).unwrap().second,
            Second::Page(0x10_1000)
        );
    }

    #[test]
    fn every_size_from_4_kib_to_2_mib_covers_its_pages() {
        for offset in [0u64, 4, 0x200, 0xFFC] {
            let mut len = 4096u32;
            while len <= MAX_TRANSFER {
                let addr = 0x4000_0000 + offset;
                let prps = plan(addr, len).unwrap();
                let want: Vec<u64> = (addr / PAGE..(addr + u64::from(len)).div_ceil(PAGE))
                    .map(|page| page * PAGE)
                    .collect();
                assert_eq!(pages(prps), want, "offset {offset:#x} len {len}");
                if want.len() > 2 {
                    assert!(
                        matches!(prps.second, Second::List { count, .. } if count <= LIST_ENTRIES)
                    );
                }
                len *= 2;
            }
        }
        // 2 MiB from an unaligned start: 513 pages, a full list.
        assert_eq!(
            plan(0x4000_0200, MAX_TRANSFER).unwrap().second,
            Second::List {
                first: 0x4000_1000,
                count: 512
            }
        );
    }

    #[test]
    fn bad_buffers_are_refused() {
        assert_eq!(plan(0x1001, 512), Err(PrpError::Unaligned));
        assert_eq!(plan(0x1000, 0), Err(PrpError::BadLength));
        assert_eq!(plan(u64::MAX - 3, 8), Err(PrpError::BadLength));
        // One page more than PRP1 + a list can hold.
        assert_eq!(
            plan(0x4000_0200, MAX_TRANSFER + 4096),
            Err(PrpError::BadLength)
        );
    }
}
