//! TPM 2.0 commands the firmware sends and the responses it reads, as
//! bytes (TPM 2.0 Library Specification, Part 1 §18 "Command/Response
//! Structure", Part 2 for the structures, Part 3 for each command).
//!
//! Commands are built into a fixed buffer ([`Command`]), so marshalling never
//! allocates (PCRs are extended during ExitBootServices too). Responses come
//! from the device and are untrusted: every parser checks lengths, and a
//! short, oversized or inconsistent response is an [`Error`], never a panic.
//! All integers are big-endian (Part 1 §18.3).

use core::fmt;

use uefi_raw::protocol::tcg::AlgorithmId;

use crate::alg::{Digest, MAX_DIGEST_SIZE, digest_size};

/// tag, commandSize/responseSize, commandCode/responseCode (Part 1 §18.2).
pub const HEADER_LEN: usize = 10;
/// Room for the largest command built here: PCR_Extend with
/// [`MAX_EXTEND_DIGESTS`] SHA-512 digests is 10 + 4 + 4 + 9 + 4 + 8 * 66 = 559.
pub const MAX_COMMAND: usize = 640;
/// Digests one PCR_Extend may carry (one per bank; Part 2 §10.9.7
/// bounds TPML_DIGEST_VALUES by HASH_COUNT, a handful on any TPM).
pub const MAX_EXTEND_DIGESTS: usize = 8;
/// PCR banks [`PcrBanks`] keeps; more in one response is malformed.
pub const MAX_BANKS: usize = 8;
/// PCRs the firmware addresses (PC Client PTP: 24 PCRs, 0-23).
pub const PCR_COUNT: u32 = 24;
/// Bytes of a PCR bitmap in commands (PCR_SELECT_MIN for 24 PCRs, Part 2 §10.6.1).
const PCR_SELECT_BYTES: u8 = 3;

/// TPM_ST (Part 2 §6.9).
pub const ST_NO_SESSIONS: u16 = 0x8001;
pub const ST_SESSIONS: u16 = 0x8002;

/// TPM_CC (Part 2 §6.5.2).
pub mod cc {
    pub const SELF_TEST: u32 = 0x0000_0143;
    pub const STARTUP: u32 = 0x0000_0144;
    pub const GET_CAPABILITY: u32 = 0x0000_017a;
    pub const PCR_READ: u32 = 0x0000_017e;
    pub const PCR_EXTEND: u32 = 0x0000_0182;
}

/// TPM_SU_CLEAR (Part 2 §6.10).
const SU_CLEAR: u16 = 0x0000;
/// TPM_CAP_PCRS (Part 2 §6.12).
const CAP_PCRS: u32 = 0x0000_0005;
/// TPM_RS_PW, the password authorization session (Part 2 §7.6).
const RS_PW: u32 = 0x4000_0009;
/// TPMI_YES_NO (Part 2 §9.2).
const YES: u8 = 1;
const NO: u8 = 0;

/// A TPM_RC (Part 2 §6.6). Format-zero codes are plain numbers; format-one
/// codes (bit 7 set) carry the failing parameter, handle or session in bits
/// 8-11 and the error in bits 0-5.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ResponseCode(pub u32);

impl ResponseCode {
    pub const SUCCESS: Self = Self(0);
    /// TPM2_Startup after the TPM was already started (Part 2 §6.6.3):
    /// harmless when an earlier firmware stage (SeaBIOS) did it.
    pub const INITIALIZE: Self = Self(0x100);
    /// The TPM is in failure mode.
    pub const FAILURE: Self = Self(0x101);
    /// Self-test of the needed algorithms still running (a warning).
    pub const TESTING: Self = Self(0x90a);
    /// The TPM wants the command sent again (warnings, §6.6.3).
    pub const YIELDED: Self = Self(0x908);
    pub const RETRY: Self = Self(0x922);

    const FMT1: u32 = 0x080;
    const WARN: u32 = 0x800;
    const VER1: u32 = 0x100;

    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }

    /// The TPM did not run the command but may if it is sent again.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::TESTING | Self::YIELDED | Self::RETRY)
    }

    /// A format-one code (parameter, handle or session error).
    pub fn is_format_one(self) -> bool {
        self.0 & Self::FMT1 != 0
    }
}

impl fmt::Debug for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TPM_RC {:#x}", self.0)?;
        let name = match *self {
            Self::SUCCESS => "SUCCESS",
            Self::INITIALIZE => "INITIALIZE",
            Self::FAILURE => "FAILURE",
            Self::TESTING => "TESTING",
            Self::YIELDED => "YIELDED",
            Self::RETRY => "RETRY",
            rc if rc.is_format_one() => "format 1",
            rc if rc.0 & Self::WARN != 0 => "warning",
            rc if rc.0 & Self::VER1 != 0 => "error",
            _ => "TPM 1.2 code",
        };
        write!(f, " ({name})")
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a command could not be built or its response not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The TPM answered with this response code instead of success.
    Rc(ResponseCode),
    /// The response ends before a field it must hold.
    Truncated { needed: usize, available: usize },
    /// The response's tag is neither TPM_ST_NO_SESSIONS nor TPM_ST_SESSIONS.
    BadTag(u16),
    /// The header's responseSize disagrees with the bytes received.
    BadSize { header: u32, received: usize },
    /// A field the firmware relies on has a value the command cannot produce.
    Malformed(&'static str),
    /// A command argument the firmware does not send (PCR number, digest
    /// count, algorithm).
    BadArgument(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rc(rc) => write!(f, "{rc}"),
            Error::Truncated { needed, available } => {
                write!(
                    f,
                    "response truncated: need {needed} bytes, have {available}"
                )
            }
            Error::BadTag(tag) => write!(f, "response tag {tag:#06x}"),
            Error::BadSize { header, received } => {
                write!(f, "response says {header} bytes, {received} received")
            }
            Error::Malformed(what) => write!(f, "malformed response: {what}"),
            Error::BadArgument(what) => write!(f, "bad command argument: {what}"),
        }
    }
}

/// A marshalled command, at most [`MAX_COMMAND`] bytes.
#[derive(Clone)]
pub struct Command {
    bytes: [u8; MAX_COMMAND],
    len: usize,
}

impl Command {
    /// The header with a zero size; [`finish`](Self::finish) fills it in.
    fn new(tag: u16, code: u32) -> Self {
        let mut command = Command {
            bytes: [0; MAX_COMMAND],
            len: 0,
        };
        command.u16(tag).u32(0).u32(code);
        command
    }

    /// Appends `data`. Callers bound their arguments so every command fits;
    /// were one not to, it is cut short and the TPM rejects its size.
    fn put(&mut self, data: &[u8]) -> &mut Self {
        let end = self.len.saturating_add(data.len());
        if let Some(dst) = self.bytes.get_mut(self.len..end) {
            dst.copy_from_slice(data);
            self.len = end;
        }
        self
    }

    fn u8(&mut self, v: u8) -> &mut Self {
        self.put(&[v])
    }

    fn u16(&mut self, v: u16) -> &mut Self {
        self.put(&v.to_be_bytes())
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.put(&v.to_be_bytes())
    }

    /// Writes commandSize into the header.
    fn finish(mut self) -> Self {
        let size = (self.len as u32).to_be_bytes();
        self.bytes[2..6].copy_from_slice(&size);
        self
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The TPM_CC, for logs.
    pub fn code(&self) -> u32 {
        u32::from_be_bytes([self.bytes[6], self.bytes[7], self.bytes[8], self.bytes[9]])
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command(cc {:#x}, {} bytes)", self.code(), self.len)
    }
}

/// TPM2_Startup(TPM_SU_CLEAR) (Part 3 §9.3): the first command after a
/// TPM reset; resets PCRs 0-15 and the platform hierarchy.
pub fn startup_clear() -> Command {
    let mut c = Command::new(ST_NO_SESSIONS, cc::STARTUP);
    c.u16(SU_CLEAR);
    c.finish()
}

/// TPM2_SelfTest (Part 3 §10.2): with `full`, test every function;
/// without, only those not tested yet (after an earlier stage's full test,
/// nothing: a software TPM's full test costs tens of milliseconds).
pub fn self_test(full: bool) -> Command {
    let mut c = Command::new(ST_NO_SESSIONS, cc::SELF_TEST);
    c.u8(if full { YES } else { NO });
    c.finish()
}

/// TPM2_GetCapability(TPM_CAP_PCRS) (Part 3 §30.2): the PCR allocation.
/// "property" must be zero; the TPM returns the whole TPML_PCR_SELECTION
/// whatever propertyCount says.
pub fn get_capability_pcrs() -> Command {
    let mut c = Command::new(ST_NO_SESSIONS, cc::GET_CAPABILITY);
    c.u32(CAP_PCRS).u32(0).u32(1);
    c.finish()
}

fn check_pcr(pcr: u32) -> Result<(), Error> {
    if pcr >= PCR_COUNT {
        return Err(Error::BadArgument("PCR index above 23"));
    }
    Ok(())
}

/// TPM2_PCR_Extend (Part 3 §22.2) of `pcr` with one digest per bank, under
/// an empty-password TPM_RS_PW session: PCRs 0-23 have an empty authValue
/// (PC Client PTP, PCR attributes).
pub fn pcr_extend(pcr: u32, digests: &[Digest]) -> Result<Command, Error> {
    check_pcr(pcr)?;
    if digests.is_empty() || digests.len() > MAX_EXTEND_DIGESTS {
        return Err(Error::BadArgument("digest count"));
    }
    let mut c = Command::new(ST_SESSIONS, cc::PCR_EXTEND);
    // @pcrHandle: a PCR's handle is its number (TPM_HT_PCR = 0, Part 2 §7.2).
    c.u32(pcr);
    // authorizationSize, then TPMS_AUTH_COMMAND (Part 1 §18.7 and Part 2
    // §10.13.2): handle, empty nonce, attributes continueSession, empty hmac.
    c.u32(4 + 2 + 1 + 2).u32(RS_PW).u16(0).u8(1).u16(0);
    // TPML_DIGEST_VALUES: count, then TPMT_HA { hashAlg, digest }.
    c.u32(digests.len() as u32);
    for digest in digests {
        c.u16(digest.alg().0).put(digest.as_bytes());
    }
    Ok(c.finish())
}

/// TPM2_PCR_Read (Part 3 §22.4) of one PCR in one bank.
pub fn pcr_read(pcr: u32, alg: AlgorithmId) -> Result<Command, Error> {
    check_pcr(pcr)?;
    let mut c = Command::new(ST_NO_SESSIONS, cc::PCR_READ);
    let mut select = [0u8; PCR_SELECT_BYTES as usize];
    select[(pcr / 8) as usize] = 1 << (pcr % 8);
    // TPML_PCR_SELECTION with one TPMS_PCR_SELECTION.
    c.u32(1).u16(alg.0).u8(PCR_SELECT_BYTES).put(&select);
    Ok(c.finish())
}

/// A cursor over response bytes; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], at: usize) -> Self {
        Reader { bytes, at }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let needed = self.at.checked_add(n).ok_or(Error::Truncated {
            needed: usize::MAX,
            available: self.bytes.len(),
        })?;
        let out = self.bytes.get(self.at..needed).ok_or(Error::Truncated {
            needed,
            available: self.bytes.len(),
        })?;
        self.at = needed;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A response header (Part 1 §18.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHeader {
    pub tag: u16,
    pub size: u32,
    pub code: ResponseCode,
}

impl ResponseHeader {
    /// Decodes the first [`HEADER_LEN`] bytes. Transports use the size to
    /// know how much more to read; it must cover at least the header.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, 0);
        let tag = r.u16()?;
        let size = r.u32()?;
        let code = ResponseCode(r.u32()?);
        if tag != ST_NO_SESSIONS && tag != ST_SESSIONS {
            return Err(Error::BadTag(tag));
        }
        if (size as usize) < HEADER_LEN {
            return Err(Error::BadSize {
                header: size,
                received: bytes.len(),
            });
        }
        Ok(ResponseHeader { tag, size, code })
    }
}

/// Checks a whole response: a valid header whose size is the byte count,
/// and success. Returns the bytes after the header.
pub fn check(response: &[u8]) -> Result<&[u8], Error> {
    let header = ResponseHeader::parse(response)?;
    if header.size as usize != response.len() {
        return Err(Error::BadSize {
            header: header.size,
            received: response.len(),
        });
    }
    if !header.code.is_success() {
        return Err(Error::Rc(header.code));
    }
    Ok(&response[HEADER_LEN..])
}

/// TPM2_Startup's response: success, or TPM_RC_INITIALIZE meaning an
/// earlier stage already started the TPM (returned as `Ok(false)`).
pub fn parse_startup(response: &[u8]) -> Result<bool, Error> {
    match check(response) {
        Ok(_) => Ok(true),
        Err(Error::Rc(ResponseCode::INITIALIZE)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One PCR bank of the TPM (a TPMS_PCR_SELECTION of the allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcrBank {
    pub alg: AlgorithmId,
    /// PCRs 0-31 allocated in this bank (bit n = PCR n).
    pub pcrs: u32,
    /// Whether any PCR at all is allocated (the bitmap may be longer).
    pub allocated: bool,
}

impl PcrBank {
    /// Allocated and of an algorithm the firmware hashes: a bank to
    /// extend (TCG PC Client PFP §3.3.4: every active bank gets every event).
    pub fn is_active(&self) -> bool {
        self.allocated && digest_size(self.alg).is_some()
    }
}

/// The TPM's PCR banks in the order it listed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcrBanks {
    banks: [PcrBank; MAX_BANKS],
    count: usize,
}

impl PcrBanks {
    pub const EMPTY: PcrBanks = PcrBanks {
        banks: [PcrBank {
            alg: AlgorithmId::ERROR,
            pcrs: 0,
            allocated: false,
        }; MAX_BANKS],
        count: 0,
    };

    /// Every bank the TPM implements, allocated or not.
    pub fn all(&self) -> &[PcrBank] {
        &self.banks[..self.count]
    }

    /// The banks to extend: allocated, with an algorithm the firmware hashes.
    pub fn active(&self) -> impl Iterator<Item = AlgorithmId> + '_ {
        self.all().iter().filter(|b| b.is_active()).map(|b| b.alg)
    }

    pub fn contains(&self, alg: AlgorithmId) -> bool {
        self.all().iter().any(|b| b.alg == alg)
    }
}

/// TPM2_GetCapability(TPM_CAP_PCRS)'s response: moreData, then
/// TPMS_CAPABILITY_DATA { capability, TPML_PCR_SELECTION } (Part 3 §30.2,
/// Part 2 §10.10.2, §10.9.7, §10.6.2).
pub fn parse_pcr_banks(response: &[u8]) -> Result<PcrBanks, Error> {
    let body = check(response)?;
    let mut r = Reader::new(body, 0);
    let _more_data = r.u8()?;
    if r.u32()? != CAP_PCRS {
        return Err(Error::Malformed("capability is not TPM_CAP_PCRS"));
    }
    let count = r.u32()? as usize;
    if count > MAX_BANKS {
        return Err(Error::Malformed("more PCR banks than any TPM has"));
    }
    let mut banks = PcrBanks::EMPTY;
    for _ in 0..count {
        let alg = AlgorithmId(r.u16()?);
        // sizeofSelect is a byte, so a bitmap is at most 255 bytes long.
        let sizeof_select = r.u8()?;
        let select = r.take(usize::from(sizeof_select))?;
        if banks.contains(alg) {
            return Err(Error::Malformed("PCR bank listed twice"));
        }
        let mut pcrs = [0u8; 4];
        for (dst, src) in pcrs.iter_mut().zip(select) {
            *dst = *src;
        }
        banks.banks[banks.count] = PcrBank {
            alg,
            pcrs: u32::from_le_bytes(pcrs),
            allocated: select.iter().any(|&b| b != 0),
        };
        banks.count += 1;
    }
    Ok(banks)
}

/// TPM2_PCR_Extend's response: success. The session area after
/// parameterSize (an empty TPMS_AUTH_RESPONSE for TPM_RS_PW) is not used.
pub fn parse_pcr_extend(response: &[u8]) -> Result<(), Error> {
    let body = check(response)?;
    if ResponseHeader::parse(response)?.tag != ST_SESSIONS {
        return Err(Error::Malformed("PCR_Extend response without sessions"));
    }
    let mut r = Reader::new(body, 0);
    // parameterSize: PCR_Extend has no response parameters.
    r.u32()?;
    Ok(())
}

/// TPM2_PCR_Read's response (Part 3 §22.4): pcrUpdateCounter,
/// pcrSelectionOut, pcrValues. `None` when the TPM selected nothing (the
/// PCR is not allocated in that bank).
pub fn parse_pcr_read(response: &[u8], alg: AlgorithmId) -> Result<Option<Digest>, Error> {
    let body = check(response)?;
    let mut r = Reader::new(body, 0);
    let _update_counter = r.u32()?;
    let selections = r.u32()?;
    if selections as usize > MAX_BANKS {
        return Err(Error::Malformed("PCR_Read selection count"));
    }
    for _ in 0..selections {
        r.u16()?;
        let size = r.u8()?;
        r.take(usize::from(size))?;
    }
    let values = r.u32()?;
    if values == 0 {
        return Ok(None);
    }
    if values != 1 {
        return Err(Error::Malformed(
            "PCR_Read returned several digests for one PCR",
        ));
    }
    let size = usize::from(r.u16()?);
    if size > MAX_DIGEST_SIZE {
        return Err(Error::Malformed("digest longer than any algorithm's"));
    }
    let bytes = r.take(size)?;
    Digest::from_bytes(alg, bytes)
        .map(Some)
        .ok_or(Error::Malformed("digest size is not the bank's"))
}

/// The lower-case name of a bank's algorithm, as Linux names
/// `/sys/class/tpm/tpm0/pcr-<name>`; unknown algorithms print their number.
#[derive(Clone, Copy)]
pub struct AlgName(pub AlgorithmId);

impl fmt::Display for AlgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            AlgorithmId::SHA1 => "sha1",
            AlgorithmId::SHA256 => "sha256",
            AlgorithmId::SHA384 => "sha384",
            AlgorithmId::SHA512 => "sha512",
            AlgorithmId::SM3_256 => "sm3_256",
            other => return write!(f, "alg{:#06x}", other.0),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests;
