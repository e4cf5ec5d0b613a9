//! EFI_VARIABLE_AUTHENTICATION_2 (UEFI 2.10 §8.2.2), the header of a
//! time-based authenticated SetVariable payload, parsed over the caller's
//! bytes:
//!
//! ```text
//! EFI_TIME TimeStamp              16 bytes; Pad1, Nanosecond, TimeZone,
//!                                 Daylight and Pad2 must be 0
//! WIN_CERTIFICATE_UEFI_GUID AuthInfo
//!   u32  dwLength                 of AuthInfo: the 24 header bytes + CertData
//!   u16  wRevision                0x0200
//!   u16  wCertificateType         WIN_CERT_TYPE_EFI_GUID (0x0EF1)
//!   GUID CertType                 EFI_CERT_TYPE_PKCS7_GUID
//!   CertData                      DER PKCS#7 SignedData, detached
//! the new variable data
//! ```
//!
//! The signature covers VariableName (no NUL) || VendorGuid ||
//! Attributes (u32 LE) || TimeStamp || Data ([`signed_bytes`]).

#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

use ::secure_boot::authenticode::{
    EFI_CERT_TYPE_PKCS7_GUID, WIN_CERT_REVISION_2_0, WIN_CERT_TYPE_EFI_GUID,
};

/// Bytes of EFI_TIME.
pub const TIME_SIZE: usize = 16;
/// Bytes of WIN_CERTIFICATE_UEFI_GUID before CertData.
const CERT_HEADER: usize = 8 + 16;

/// Why a payload is not an EFI_VARIABLE_AUTHENTICATION_2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth2Error {
    /// Shorter than the fixed header, or dwLength runs past the end.
    Truncated,
    /// A TimeStamp field §8.2.2 requires to be 0 is not.
    TimeStampNotZeroed,
    /// wRevision, wCertificateType or CertType is not the PKCS#7 one:
    /// the field.
    CertType(&'static str),
}

impl fmt::Display for Auth2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth2Error::Truncated => f.write_str("EFI_VARIABLE_AUTHENTICATION_2 truncated"),
            Auth2Error::TimeStampNotZeroed => {
                f.write_str("TimeStamp Pad1/Nanosecond/TimeZone/Daylight/Pad2 not 0")
            }
            Auth2Error::CertType(field) => write!(f, "AuthInfo {field} is not PKCS#7"),
        }
    }
}

/// An EFI_TIME as its 16 bytes, compared by its date and time fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeStamp(pub [u8; TIME_SIZE]);

impl TimeStamp {
    /// Year, Month, Day, Hour, Minute, Second: the fields that order two
    /// stamps (the rest are 0 in an authenticated payload).
    fn key(&self) -> (u16, u8, u8, u8, u8, u8) {
        let b = &self.0;
        (
            u16::from_le_bytes([b[0], b[1]]),
            b[2],
            b[3],
            b[4],
            b[5],
            b[6],
        )
    }

    /// Whether `self` is strictly later than `other` (§8.2.1: a
    /// non-append write must carry a later TimeStamp than the stored one).
    pub fn is_later_than(&self, other: &TimeStamp) -> bool {
        self.key().cmp(&other.key()) == Ordering::Greater
    }
}

/// A parsed EFI_VARIABLE_AUTHENTICATION_2 and the data after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth2<'a> {
    pub time_stamp: TimeStamp,
    /// CertData: the PKCS#7 SignedData.
    pub signed_data: &'a [u8],
    /// The new variable data.
    pub data: &'a [u8],
}

/// Parses `payload` (SetVariable's Data) as EFI_VARIABLE_AUTHENTICATION_2
/// followed by the variable's new data.
pub fn parse(payload: &[u8]) -> Result<Auth2<'_>, Auth2Error> {
    let (time, rest) = payload
        .split_first_chunk::<TIME_SIZE>()
        .ok_or(Auth2Error::Truncated)?;
    // Pad1 (7), Nanosecond (8..12), TimeZone (12..14), Daylight (14), Pad2 (15).
    if time[7..].iter().any(|&b| b != 0) {
        return Err(Auth2Error::TimeStampNotZeroed);
    }
    let header = rest.get(..CERT_HEADER).ok_or(Auth2Error::Truncated)?;
    let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let length = usize::try_from(length).map_err(|_| Auth2Error::Truncated)?;
    if u16::from_le_bytes([header[4], header[5]]) != WIN_CERT_REVISION_2_0 {
        return Err(Auth2Error::CertType("wRevision"));
    }
    if u16::from_le_bytes([header[6], header[7]]) != WIN_CERT_TYPE_EFI_GUID {
        return Err(Auth2Error::CertType("wCertificateType"));
    }
    if header[8..] != EFI_CERT_TYPE_PKCS7_GUID {
        return Err(Auth2Error::CertType("CertType"));
    }
    if length < CERT_HEADER {
        return Err(Auth2Error::Truncated);
    }
    let (auth_info, data) = rest.split_at_checked(length).ok_or(Auth2Error::Truncated)?;
    Ok(Auth2 {
        time_stamp: TimeStamp(*time),
        signed_data: &auth_info[CERT_HEADER..],
        data,
    })
}

/// The bytes an EFI_VARIABLE_AUTHENTICATION_2 signature covers (§8.2.2):
/// VariableName without its NUL, VendorGuid, Attributes, TimeStamp, Data.
pub fn signed_bytes(
    name: &[u16],
    guid: &[u8; 16],
    attributes: u32,
    time_stamp: &TimeStamp,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() * 2 + 16 + 4 + TIME_SIZE + data.len());
    for unit in name {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out.extend_from_slice(guid);
    out.extend_from_slice(&attributes.to_le_bytes());
    out.extend_from_slice(&time_stamp.0);
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn time(year: u16, month: u8, second: u8) -> [u8; 16] {
        let mut t = [0u8; 16];
        t[..2].copy_from_slice(&year.to_le_bytes());
        t[2] = month;
        t[3] = 1;
        t[6] = second;
        t
    }

    fn payload(time: [u8; 16], cert: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = time.to_vec();
        out.extend_from_slice(&((CERT_HEADER + cert.len()) as u32).to_le_bytes());
        out.extend_from_slice(&WIN_CERT_REVISION_2_0.to_le_bytes());
        out.extend_from_slice(&WIN_CERT_TYPE_EFI_GUID.to_le_bytes());
        out.extend_from_slice(&EFI_CERT_TYPE_PKCS7_GUID);
        out.extend_from_slice(cert);
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn splits_time_signature_and_data() {
        let p = payload(time(2024, 5, 0), b"SIGNATURE", b"DATA");
        let auth = parse(&p).unwrap();
        assert_eq!(auth.time_stamp.0, time(2024, 5, 0));
        assert_eq!(auth.signed_data, b"SIGNATURE");
        assert_eq!(auth.data, b"DATA");
        // Empty data: a delete.
        let p = payload(time(2024, 5, 0), b"S", b"");
        assert_eq!(parse(&p).unwrap().data, b"");
    }

    #[test]
    fn refuses_malformed_headers() {
        let good = payload(time(2024, 5, 0), b"SIG", b"DATA");
        for cut in 0..TIME_SIZE + CERT_HEADER + 3 {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        for byte in 7..16 {
            let mut p = good.clone();
            p[byte] = 1;
            assert_eq!(
                parse(&p),
                Err(Auth2Error::TimeStampNotZeroed),
                "byte {byte}"
            );
        }
        let mut p = good.clone();
        p[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&p), Err(Auth2Error::Truncated));
        let mut p = good.clone();
        p[16..20].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(parse(&p), Err(Auth2Error::Truncated));
        let mut p = good.clone();
        p[22] = 2; // WIN_CERT_TYPE_PKCS_SIGNED_DATA
        assert_eq!(parse(&p), Err(Auth2Error::CertType("wCertificateType")));
        let mut p = good.clone();
        p[30] ^= 1;
        assert_eq!(parse(&p), Err(Auth2Error::CertType("CertType")));
        let mut p = good;
        p[21] = 1;
        assert_eq!(parse(&p), Err(Auth2Error::CertType("wRevision")));
    }

    #[test]
    fn orders_time_stamps_by_date_and_time() {
        let a = TimeStamp(time(2024, 5, 0));
        assert!(TimeStamp(time(2024, 5, 1)).is_later_than(&a));
        assert!(TimeStamp(time(2025, 1, 0)).is_later_than(&a));
        assert!(!a.is_later_than(&a));
        assert!(!TimeStamp(time(2023, 12, 59)).is_later_than(&a));
        assert!(a.is_later_than(&TimeStamp::default()));
    }

    #[test]
    fn signed_bytes_are_name_guid_attributes_time_data() {
        let t = TimeStamp(time(2024, 5, 0));
        let bytes = signed_bytes(&[0x64, 0x62], &[7; 16], 0x27, &t, b"XY");
        let mut expected = vec![0x64, 0, 0x62, 0];
        expected.extend_from_slice(&[7; 16]);
        expected.extend_from_slice(&[0x27, 0, 0, 0]);
        expected.extend_from_slice(&t.0);
        expected.extend_from_slice(b"XY");
        assert_eq!(bytes, expected);
    }
}
