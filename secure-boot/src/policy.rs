//! The image verification policy of UEFI 2.10 §32.5.3.3: is this PE/COFF
//! image allowed to run, given db (allowed) and dbx (forbidden)?
//!
//! 1. dbx first: the image's SHA-256 Authenticode digest, any certificate a
//!    signature carries (equal to, or signed by, a dbx X.509 entry), or the
//!    SHA-256 of such a certificate's TBSCertificate (EFI_CERT_X509_SHA256;
//!    with no trusted clock its revocation time cannot be compared with a
//!    signing time, so every match revokes, as edk2 does for unsigned
//!    timestamps) -> refused.
//! 2. Then a signature whose digest is the image's and whose chain reaches
//!    a db X.509 certificate, or the image digest as a db EFI_CERT_SHA256
//!    entry -> allowed, naming the db entry (the TCG PCR 7 event later logs
//!    that EFI_SIGNATURE_DATA).
//! 3. Anything else (unsigned, or no signature verifies) -> refused.
//!
//! A db or dbx that does not parse refuses every image: a policy that
//! cannot be read must not fail open.

use alloc::vec::Vec;
use core::fmt;

use crate::authenticode;
use crate::error::Error;
use crate::pkcs7;
use crate::signature_list::{
    self, EFI_CERT_SHA256_GUID, EFI_CERT_X509_GUID, EFI_CERT_X509_SHA256_GUID, Guid,
    SignatureList,
};

/// Where an entry sits in db or dbx: list and entry index, and its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub list: usize,
    pub index: usize,
    pub owner: Guid,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "list {} entry {}", self.list, self.index)
    }
}

/// Why an image may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Signature number `signature` of the certificate table chains to this
    /// db certificate; `depth` is the chain member it equals or signs.
    Certificate {
        entry: Entry,
        signature: usize,
        depth: usize,
    },
    /// The image's SHA-256 is this db entry.
    Hash { entry: Entry },
}

/// Why an image may not run (EFI_SECURITY_VIOLATION).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The image's headers or certificate table do not parse.
    Malformed(Error),
    /// db does not parse.
    BadDb(Error),
    /// dbx does not parse.
    BadDbx(Error),
    /// The image's SHA-256 is a dbx entry.
    HashInDbx { entry: Entry },
    /// A certificate of signature `signature` is, or is signed by, a dbx
    /// X.509 entry.
    CertificateInDbx { entry: Entry, signature: usize },
    /// The TBSCertificate hash of a certificate of signature `signature` is
    /// a dbx EFI_CERT_X509_SHA256 entry.
    CertificateHashInDbx { entry: Entry, signature: usize },
    /// Neither a signature nor the hash is allowed by db: how many
    /// signatures there were, why the last one failed, and the digest.
    NotInDb {
        signatures: usize,
        last_error: Option<Error>,
        sha256: [u8; 32],
    },
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowed::Certificate {
                entry,
                signature,
                depth,
            } => write!(
                f,
                "signature {signature} verified by db certificate {entry} (chain depth {depth})"
            ),
            Allowed::Hash { entry } => write!(f, "SHA-256 in db {entry}"),
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Malformed(e) => write!(f, "malformed image: {e}"),
            Refused::BadDb(e) => write!(f, "db unreadable: {e}"),
            Refused::BadDbx(e) => write!(f, "dbx unreadable: {e}"),
            Refused::HashInDbx { entry } => write!(f, "SHA-256 in dbx {entry}"),
            Refused::CertificateInDbx { entry, signature } => {
                write!(f, "signature {signature}: certificate in dbx {entry}")
            }
            Refused::CertificateHashInDbx { entry, signature } => {
                write!(f, "signature {signature}: certificate hash in dbx {entry}")
            }
            Refused::NotInDb {
                signatures,
                last_error,
                sha256,
            } => {
                write!(f, "{signatures} signature(s)")?;
                if let Some(e) = last_error {
                    write!(f, " (last: {e})")?;
                }
                write!(f, ", SHA-256 ")?;
                for b in sha256 {
                    write!(f, "{b:02x}")?;
                }
                write!(f, " not in db")
            }
        }
    }
}

/// The entries of `lists` of type `kind`, with where they sit.
fn entries<'a>(
    lists: &'a [SignatureList],
    kind: Guid,
) -> impl Iterator<Item = (Entry, &'a [u8])> + 'a {
    lists
        .iter()
        .enumerate()
        .filter(move |(_, l)| l.signature_type == kind)
        .flat_map(|(list, l)| {
            l.signatures.iter().enumerate().map(move |(index, s)| {
                (
                    Entry {
                        list,
                        index,
                        owner: s.owner,
                    },
                    s.data.as_slice(),
                )
            })
        })
}

/// Decides whether `image` may run under `db` and `dbx` (both in the
/// EFI_SIGNATURE_LIST variable format). See the module documentation.
pub fn verify_image(image: &[u8], db: &[u8], dbx: &[u8]) -> Result<Allowed, Refused> {
    let dbx = signature_list::parse(dbx).map_err(Refused::BadDbx)?;
    let db = signature_list::parse(db).map_err(Refused::BadDb)?;
    let digest = authenticode::sha256(image).map_err(Refused::Malformed)?;
    let table = authenticode::certificates(image).map_err(Refused::Malformed)?;

    if let Some((entry, _)) = entries(&dbx, EFI_CERT_SHA256_GUID).find(|(_, h)| *h == digest) {
        return Err(Refused::HashInDbx { entry });
    }

    let mut last_error = None;
    let mut signatures = Vec::new();
    for (number, cert) in table.iter().enumerate() {
        let Some(der) = cert.signed_data() else {
            last_error = Some(Error::CertTable {
                field: "wCertificateType",
                value: u64::from(cert.certificate_type),
            });
            continue;
        };
        match pkcs7::parse(der) {
            Ok(p7) => {
                forbidden(&p7, number, &dbx)?;
                signatures.push((number, p7));
            }
            Err(e) => last_error = Some(e),
        }
    }

    for (number, p7) in &signatures {
        match p7.authenticode_digest() {
            Ok(signed) if signed == digest => {}
            Ok(_) => {
                last_error = Some(Error::Verify {
                    what: "signed digest differs from the image's",
                    depth: 0,
                });
                continue;
            }
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        }
        for (entry, anchor) in entries(&db, EFI_CERT_X509_GUID) {
            match p7.verify_authenticode(anchor) {
                Ok(trusted) => {
                    return Ok(Allowed::Certificate {
                        entry,
                        signature: *number,
                        depth: trusted.depth,
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
    }

    if let Some((entry, _)) = entries(&db, EFI_CERT_SHA256_GUID).find(|(_, h)| *h == digest) {
        return Ok(Allowed::Hash { entry });
    }
    Err(Refused::NotInDb {
        signatures: table.len(),
        last_error,
        sha256: digest,
    })
}

/// Refuses when a certificate carried by signature `number` is in dbx.
fn forbidden(p7: &pkcs7::Pkcs7, number: usize, dbx: &[SignatureList]) -> Result<(), Refused> {
    for cert in p7.certificates() {
        let der = pkcs7::certificate_der(cert).map_err(Refused::Malformed)?;
        for (entry, revoked) in entries(dbx, EFI_CERT_X509_GUID) {
            let signs = pkcs7::parse_certificate(revoked).is_ok_and(|r| pkcs7::signs(&r, cert));
            if revoked == der.as_slice() || signs {
                return Err(Refused::CertificateInDbx {
                    entry,
                    signature: number,
                });
            }
        }
        let tbs = pkcs7::tbs_sha256(cert).map_err(Refused::Malformed)?;
        if let Some((entry, _)) =
            entries(dbx, EFI_CERT_X509_SHA256_GUID).find(|(_, d)| d.get(..32) == Some(&tbs[..]))
        {
            return Err(Refused::CertificateHashInDbx {
                entry,
                signature: number,
            });
        }
    }
    Ok(())
}
