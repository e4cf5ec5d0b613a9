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
    self, EFI_CERT_SHA256_GUID, EFI_CERT_X509_GUID, EFI_CERT_X509_SHA256_GUID, Guid, SignatureList,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature_list::{Signature, serialise};
    use alloc::vec;

    const UNSIGNED: &[u8] = include_bytes!("../tests/data/unsigned.efi");
    const SIGNED: &[u8] = include_bytes!("../tests/data/signed.efi");
    const CHAIN: &[u8] = include_bytes!("../tests/data/chain.efi");
    const ROGUE: &[u8] = include_bytes!("../tests/data/rogue.efi");
    const DB_CA: &[u8] = include_bytes!("../tests/data/db-ca.der");
    const OTHER_CA: &[u8] = include_bytes!("../tests/data/other-ca.der");
    const INTERMEDIATE: &[u8] = include_bytes!("../tests/data/intermediate.der");
    const SIGNER: &[u8] = include_bytes!("../tests/data/signer.der");

    const OWNER: Guid = [0x5a; 16];

    fn list(kind: Guid, items: &[&[u8]]) -> SignatureList {
        SignatureList {
            signature_type: kind,
            header: vec![],
            signature_size: (16 + items[0].len()) as u32,
            signatures: items
                .iter()
                .map(|d| Signature {
                    owner: OWNER,
                    data: d.to_vec(),
                })
                .collect(),
        }
    }

    fn var(lists: &[SignatureList]) -> Vec<u8> {
        serialise(lists).unwrap()
    }

    fn hash(image: &[u8]) -> [u8; 32] {
        authenticode::sha256(image).unwrap()
    }

    const AT: fn(usize, usize) -> Entry = |list, index| Entry {
        list,
        index,
        owner: OWNER,
    };

    #[test]
    fn signed_image_with_its_ca_in_db_is_allowed() {
        // db: an unrelated hash list first, so the entry named is list 1.
        let db = var(&[
            list(EFI_CERT_SHA256_GUID, &[&[0; 32]]),
            list(EFI_CERT_X509_GUID, &[OTHER_CA]),
            list(EFI_CERT_X509_GUID, &[DB_CA]),
        ]);
        let allowed = verify_image(SIGNED, &db, &[]).unwrap();
        assert_eq!(
            allowed,
            Allowed::Certificate {
                entry: AT(2, 0),
                signature: 0,
                depth: 0
            }
        );
        assert_eq!(
            alloc::format!("{allowed}"),
            "signature 0 verified by db certificate list 2 entry 0 (chain depth 0)"
        );
    }

    #[test]
    fn one_flipped_byte_is_refused() {
        let db = var(&[list(EFI_CERT_X509_GUID, &[DB_CA])]);
        let mut image = SIGNED.to_vec();
        // A byte of the first section's code (after the 0x400 header bytes).
        image[0x480] ^= 0x01;
        match verify_image(&image, &db, &[]) {
            Err(Refused::NotInDb {
                signatures: 1,
                last_error: Some(Error::Verify { what, .. }),
                ..
            }) => assert_eq!(what, "signed digest differs from the image's"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_ca_is_refused_and_unsigned_is_refused() {
        let db = var(&[list(EFI_CERT_X509_GUID, &[OTHER_CA])]);
        assert!(matches!(
            verify_image(SIGNED, &db, &[]),
            Err(Refused::NotInDb { signatures: 1, .. })
        ));
        let db = var(&[list(EFI_CERT_X509_GUID, &[DB_CA])]);
        let refused = verify_image(UNSIGNED, &db, &[]).unwrap_err();
        assert!(matches!(
            refused,
            Refused::NotInDb {
                signatures: 0,
                last_error: None,
                ..
            }
        ));
        assert!(alloc::format!("{refused}").starts_with("0 signature(s), SHA-256 "));
    }

    #[test]
    fn hash_in_db_allows_the_unsigned_image() {
        let h = hash(UNSIGNED);
        let db = var(&[list(EFI_CERT_SHA256_GUID, &[&[1; 32], &h])]);
        assert_eq!(
            verify_image(UNSIGNED, &db, &[]),
            Ok(Allowed::Hash { entry: AT(0, 1) })
        );
        // The signature does not change the Authenticode hash.
        assert_eq!(hash(SIGNED), h);
    }

    #[test]
    fn dbx_wins_over_db() {
        let db = var(&[
            list(EFI_CERT_X509_GUID, &[DB_CA]),
            list(EFI_CERT_SHA256_GUID, &[&hash(SIGNED)]),
        ]);
        let dbx = var(&[list(EFI_CERT_SHA256_GUID, &[&hash(SIGNED)])]);
        assert_eq!(
            verify_image(SIGNED, &db, &dbx),
            Err(Refused::HashInDbx { entry: AT(0, 0) })
        );
        let dbx = var(&[list(EFI_CERT_X509_GUID, &[SIGNER])]);
        assert_eq!(
            verify_image(SIGNED, &db, &dbx),
            Err(Refused::CertificateInDbx {
                entry: AT(0, 0),
                signature: 0
            })
        );
        // The intermediate in dbx revokes what it signed.
        let dbx = var(&[list(EFI_CERT_X509_GUID, &[INTERMEDIATE])]);
        assert!(matches!(
            verify_image(CHAIN, &db, &dbx),
            Err(Refused::CertificateInDbx { .. })
        ));
        assert!(verify_image(SIGNED, &db, &dbx).is_ok());
        // EFI_CERT_X509_SHA256: the signer's TBS hash and a revocation time.
        let signer = pkcs7::parse_certificate(SIGNER).unwrap();
        let mut entry = pkcs7::tbs_sha256(&signer).unwrap().to_vec();
        entry.extend_from_slice(&[0; 16]);
        let dbx = var(&[list(EFI_CERT_X509_SHA256_GUID, &[&entry])]);
        assert_eq!(
            verify_image(SIGNED, &db, &dbx),
            Err(Refused::CertificateHashInDbx {
                entry: AT(0, 0),
                signature: 0
            })
        );
    }

    #[test]
    fn chain_to_the_db_root_is_allowed() {
        let db = var(&[list(EFI_CERT_X509_GUID, &[DB_CA])]);
        assert_eq!(
            verify_image(CHAIN, &db, &[]),
            Ok(Allowed::Certificate {
                entry: AT(0, 0),
                signature: 0,
                depth: 1
            })
        );
        let db = var(&[list(EFI_CERT_X509_GUID, &[OTHER_CA])]);
        assert!(verify_image(CHAIN, &db, &[]).is_err());
    }

    #[test]
    fn a_leaf_cannot_issue_certificates() {
        // rogue.efi's signer was issued by `signer`, a db-CA-signed leaf
        // (CA:FALSE) that the SignedData carries as if it were a CA.
        let db = var(&[list(EFI_CERT_X509_GUID, &[DB_CA])]);
        match verify_image(ROGUE, &db, &[]) {
            Err(Refused::NotInDb {
                last_error: Some(Error::Verify { what, depth: 0 }),
                ..
            }) => assert_eq!(what, "no chain to the trusted certificate"),
            other => panic!("{other:?}"),
        }
        // With the leaf itself in db it is the anchor, trusted as db holds it.
        let db = var(&[list(EFI_CERT_X509_GUID, &[SIGNER])]);
        assert!(verify_image(ROGUE, &db, &[]).is_ok());
    }

    #[test]
    fn unreadable_policy_or_image_refuses() {
        let db = var(&[list(EFI_CERT_X509_GUID, &[DB_CA])]);
        assert!(matches!(
            verify_image(SIGNED, &db, &[1, 2, 3]),
            Err(Refused::BadDbx(_))
        ));
        assert!(matches!(
            verify_image(SIGNED, &[0; 27], &[]),
            Err(Refused::BadDb(_))
        ));
        assert!(matches!(
            verify_image(&SIGNED[..100], &db, &[]),
            Err(Refused::Malformed(_))
        ));
    }

    #[test]
    fn hostile_certificate_tables_refuse() {
        let db = var(&[list(EFI_CERT_X509_GUID, &[DB_CA])]);
        let (offset, _) = cert_directory(SIGNED);
        // dwLength past the table's end.
        let mut image = SIGNED.to_vec();
        image[offset..offset + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert!(matches!(
            verify_image(&image, &db, &[]),
            Err(Refused::Malformed(Error::CertTable {
                field: "dwLength",
                ..
            }))
        ));
        // An entry of another type is skipped, leaving the image unsigned.
        let mut image = SIGNED.to_vec();
        image[offset + 6] = 0x01;
        assert!(matches!(
            verify_image(&image, &db, &[]),
            Err(Refused::NotInDb {
                last_error: Some(Error::CertTable { .. }),
                ..
            })
        ));
        // Garbage in place of the SignedData.
        let mut image = SIGNED.to_vec();
        for b in &mut image[offset + 8..offset + 40] {
            *b = 0xff;
        }
        assert!(matches!(
            verify_image(&image, &db, &[]),
            Err(Refused::NotInDb {
                last_error: Some(Error::Der(_)),
                ..
            })
        ));
    }

    /// The file offset and size of the certificate table of a PE32+ image.
    fn cert_directory(image: &[u8]) -> (usize, usize) {
        let pe = u32::from_le_bytes(image[0x3c..0x40].try_into().unwrap()) as usize;
        let entry = pe + 24 + 112 + 32;
        let word = |at: usize| u32::from_le_bytes(image[at..at + 4].try_into().unwrap()) as usize;
        (word(entry), word(entry + 4))
    }
}
