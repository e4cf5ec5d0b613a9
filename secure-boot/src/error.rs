//! The one error type of the crate. Each variant names what was wrong and
//! carries the offending value, so a refusal fits on one serial line.

use core::fmt;

/// Why input was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A PE/COFF header field is out of range: the field and its value.
    Pe { field: &'static str, value: u64 },
    /// A WIN_CERTIFICATE entry of the certificate table is malformed: the
    /// field and its value.
    CertTable { field: &'static str, value: u64 },
    /// An EFI_SIGNATURE_LIST is malformed: the field and its value.
    SignatureList { field: &'static str, value: u64 },
    /// DER that does not decode (PKCS#7, X.509, RSA key).
    Der(der::ErrorKind),
    /// The PKCS#7 structure breaks an Authenticode / UEFI rule: which one,
    /// with the offending value where there is a number to give.
    Pkcs7 { rule: &'static str, value: u64 },
    /// A signature does not verify, or no certificate chain reaches the
    /// trust anchor: what failed, and the depth in the chain (0 = signer).
    Verify { what: &'static str, depth: u64 },
}

impl From<der::Error> for Error {
    fn from(e: der::Error) -> Self {
        Error::Der(e.kind())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pe { field, value } => write!(f, "bad PE/COFF {field} {value:#x}"),
            Error::CertTable { field, value } => {
                write!(f, "bad certificate table {field} {value:#x}")
            }
            Error::SignatureList { field, value } => {
                write!(f, "bad EFI_SIGNATURE_LIST {field} {value:#x}")
            }
            Error::Der(kind) => write!(f, "bad DER: {kind}"),
            Error::Pkcs7 { rule, value } => write!(f, "PKCS#7: {rule} ({value:#x})"),
            Error::Verify { what, depth } => write!(f, "{what} (chain depth {depth})"),
        }
    }
}
