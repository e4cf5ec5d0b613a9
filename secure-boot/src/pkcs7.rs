//! PKCS#7 / CMS SignedData verification for Authenticode images and for
//! EFI_VARIABLE_AUTHENTICATION_2 (UEFI 2.10 §8.2.2, §32.2.4).
//!
//! What is checked, for both uses:
//! - one SignerInfo, digest SHA-256, signature RSA PKCS#1 v1.5 over SHA-256
//!   (the algorithms UEFI 2.10 §32.2.4 and §8.2.2 require support for; other
//!   algorithms are refused by name, not guessed);
//! - its signed attributes (when present) carry the content type and a
//!   messageDigest equal to the SHA-256 of the content, and the signature is
//!   over their DER encoding as a SET OF (RFC 5652 §5.4: the [0] IMPLICIT tag
//!   is replaced by the SET tag; like OpenSSL, we re-encode, which also puts
//!   the attributes in DER order);
//! - the signer certificate chains through the certificates the SignedData
//!   carries to the caller's trust anchor, which counts when it equals a
//!   chain member or its key verifies one's signature; carried issuers must
//!   be CAs (basicConstraints), the anchor counts as db holds it (edk2 Pkcs7Verify uses
//!   OpenSSL's partial-chain mode the same way: any db certificate may be an
//!   anchor, root or not).
//!
//! Validity dates are not checked: the firmware has no trusted clock (the
//! RTC belongs to the guest), and UEFI signing certificates are routinely
//! expired while their signatures stay valid (Microsoft's UEFI CA 2011
//! expires in 2026 with every shim still signed by it); edk2 ignores time
//! for the same reason (X509_V_FLAG_NO_CHECK_TIME).
//!
//! Authenticode (Authenticode PE spec, "Authenticode-Specific Structures"):
//! the content is an SpcIndirectDataContent (1.3.6.1.4.1.311.2.1.4) whose
//! DigestInfo holds the image digest, and its messageDigest covers the DER
//! contents of that SEQUENCE without its tag and length.

use alloc::vec::Vec;
use cms::signed_data::{SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Sequence};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

use crate::error::Error;
use crate::signed_data::{self, SignedData};

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// SPC_INDIRECT_DATA_OBJID (Authenticode PE spec).
pub const SPC_INDIRECT_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");

/// Longest certificate chain followed from the signer to an anchor; it
/// bounds the work a hostile certificate set can cause.
const MAX_CHAIN: usize = 8;

/// DigestInfo (PKCS#1 / Authenticode).
#[derive(Sequence)]
struct DigestInfo {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// SpcIndirectDataContent: the PE-specific `data` is not needed.
#[derive(Sequence)]
struct SpcIndirectDataContent {
    _data: Any,
    message_digest: DigestInfo,
}

/// A decoded SignedData.
pub struct Pkcs7 {
    signed: SignedData,
}

/// Where a verified chain met the trust anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trusted {
    /// The chain member the anchor equals or signs (0 = the signer).
    pub depth: usize,
    /// True when the anchor is that member itself, false when it signs it.
    pub anchor_is_member: bool,
}

fn rule(rule: &'static str, value: u64) -> Error {
    Error::Pkcs7 { rule, value }
}

fn fail(what: &'static str, depth: usize) -> Error {
    Error::Verify {
        what,
        depth: depth as u64,
    }
}

/// Decodes a SignedData, wrapped in a ContentInfo or bare (see
/// [`crate::signed_data::decode`]).
pub fn parse(der: &[u8]) -> Result<Pkcs7, Error> {
    Ok(Pkcs7 {
        signed: signed_data::decode(der)?,
    })
}

impl Pkcs7 {
    /// The certificates the SignedData carries (signer and intermediates).
    pub fn certificates(&self) -> &[Certificate] {
        &self.signed.certificates
    }

    /// The SignedData's only SignerInfo.
    fn signer_info(&self) -> Result<&SignerInfo, Error> {
        let infos = &self.signed.signer_infos;
        match infos.as_slice() {
            [one] => Ok(one),
            many => Err(rule("SignerInfo count", many.len() as u64)),
        }
    }

    /// The image digest an Authenticode signature vouches for: the
    /// SpcIndirectDataContent's DigestInfo, which must be SHA-256.
    pub fn authenticode_digest(&self) -> Result<[u8; 32], Error> {
        let content = self.authenticode_content()?;
        let spc = SpcIndirectDataContent::from_der(&content.to_der()?)?;
        if spc.message_digest.algorithm.oid != ID_SHA256 {
            return Err(rule("image digest is not SHA-256", 0));
        }
        spc.message_digest
            .digest
            .as_bytes()
            .try_into()
            .map_err(|_| {
                rule(
                    "image digest length",
                    spc.message_digest.digest.as_bytes().len() as u64,
                )
            })
    }

    fn authenticode_content(&self) -> Result<&Any, Error> {
        let info = &self.signed.content;
        if info.econtent_type != SPC_INDIRECT_DATA {
            return Err(rule("content type is not SpcIndirectDataContent", 0));
        }
        info.econtent
            .as_ref()
            .ok_or(rule("no SpcIndirectDataContent", 0))
    }

    /// Verifies an Authenticode signature up to `anchor` (a DER X.509
    /// certificate). The caller compares [`Self::authenticode_digest`] with
    /// the image's own digest.
    pub fn verify_authenticode(&self, anchor: &[u8]) -> Result<Trusted, Error> {
        let content = self.authenticode_content()?;
        // The messageDigest covers the SEQUENCE's contents, not its header.
        self.verify_content(content.value(), SPC_INDIRECT_DATA, true, anchor)
    }

    /// Verifies a detached signature of `data` (content type id-data), as
    /// EFI_VARIABLE_AUTHENTICATION_2 carries it (UEFI 2.10 §8.2.2).
    pub fn verify_detached(&self, data: &[u8], anchor: &[u8]) -> Result<Trusted, Error> {
        let info = &self.signed.content;
        if info.econtent_type != ID_DATA {
            return Err(rule("content type is not id-data", 0));
        }
        if info.econtent.is_some() {
            return Err(rule("content is not detached", 0));
        }
        self.verify_content(data, ID_DATA, false, anchor)
    }

    fn verify_content(
        &self,
        content: &[u8],
        content_type: ObjectIdentifier,
        attributes_required: bool,
        anchor: &[u8],
    ) -> Result<Trusted, Error> {
        let signer = self.signer_info()?;
        if signer.digest_alg.oid != ID_SHA256 {
            return Err(rule("digest algorithm is not SHA-256", 0));
        }
        let content_digest: [u8; 32] = Sha256::digest(content).into();
        let signed_digest: [u8; 32] = match &signer.signed_attrs {
            Some(attrs) => {
                check_attributes(attrs, content_type, &content_digest)?;
                Sha256::digest(attrs.to_der()?).into()
            }
            None if attributes_required => return Err(rule("no signed attributes", 0)),
            None => content_digest,
        };
        let leaf = self.signer_certificate(signer)?;
        let alg = &signer.signature_algorithm.oid;
        if *alg != RSA_ENCRYPTION && *alg != SHA256_WITH_RSA {
            return Err(rule("signature algorithm is not RSA", 0));
        }
        rsa_key(leaf)?
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &signed_digest,
                signer.signature.as_bytes(),
            )
            .map_err(|_| fail("signature does not verify", 0))?;
        self.chain_to(leaf, anchor)
    }

    /// The certificate the SignerInfo names by issuer and serial number.
    fn signer_certificate(&self, signer: &SignerInfo) -> Result<&Certificate, Error> {
        let SignerIdentifier::IssuerAndSerialNumber(id) = &signer.sid else {
            return Err(rule("signer named by subject key identifier", 0));
        };
        self.signed
            .certificates
            .iter()
            .find(|c| {
                c.tbs_certificate.issuer == id.issuer
                    && c.tbs_certificate.serial_number == id.serial_number
            })
            .ok_or(fail("signer certificate not in SignedData", 0))
    }

    /// Follows issuers from `leaf` through the carried certificates until
    /// the anchor equals or signs a chain member.
    fn chain_to(&self, leaf: &Certificate, anchor: &[u8]) -> Result<Trusted, Error> {
        let anchor = Certificate::from_der(anchor)?;
        let mut current = leaf;
        for depth in 0..MAX_CHAIN {
            if *current == anchor {
                return Ok(Trusted {
                    depth,
                    anchor_is_member: true,
                });
            }
            if signs(&anchor, current) {
                return Ok(Trusted {
                    depth,
                    anchor_is_member: false,
                });
            }
            // A carried certificate issues the next link only if it is a
            // CA: otherwise the holder of any db-signed leaf key could mint
            // certificates of its own (RFC 5280 §6.1.4 (k); OpenSSL, and
            // so edk2, check the same). The anchor is trusted as db holds it.
            match self
                .signed
                .certificates
                .iter()
                .find(|c| *c != current && is_ca(c) && signs(c, current))
            {
                Some(issuer) => current = issuer,
                None => return Err(fail("no chain to the trusted certificate", depth)),
            }
        }
        Err(fail("certificate chain too long", MAX_CHAIN))
    }
}

/// Whether `attrs` hold exactly one content type equal to `content_type`
/// and exactly one messageDigest equal to `digest` (RFC 5652 §11.1, §11.2).
fn check_attributes(
    attrs: &x509_cert::attr::Attributes,
    content_type: ObjectIdentifier,
    digest: &[u8; 32],
) -> Result<(), Error> {
    let single = |oid: ObjectIdentifier, name: &'static str| -> Result<&Any, Error> {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        match (found.next(), found.next()) {
            (Some(a), None) if a.values.len() == 1 => a.values.get(0).ok_or(rule(name, 0)),
            (Some(a), None) => Err(rule(name, a.values.len() as u64)),
            (None, _) => Err(rule(name, 0)),
            (Some(_), Some(_)) => Err(rule(name, 2)),
        }
    };
    let kind: ObjectIdentifier = single(ID_CONTENT_TYPE, "contentType attribute")?.decode_as()?;
    if kind != content_type {
        return Err(rule("contentType attribute differs from the content", 0));
    }
    let md: OctetString = single(ID_MESSAGE_DIGEST, "messageDigest attribute")?.decode_as()?;
    if md.as_bytes() != digest {
        return Err(fail("messageDigest differs from the content's digest", 0));
    }
    Ok(())
}

/// The RSA public key of a certificate (RFC 8017 RSAPublicKey in the SPKI).
/// `RsaPublicKey::new` refuses moduli above 4096 bits, which bounds the cost
/// of a hostile key.
fn rsa_key(cert: &Certificate) -> Result<RsaPublicKey, Error> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(rule("public key is not RSA", 0));
    }
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or(rule("public key has unused bits", 0))?;
    RsaPublicKey::from_pkcs1_der(bits).map_err(|_| rule("RSA public key", bits.len() as u64))
}

/// Whether `issuer` issued `cert`: names match and `issuer`'s key verifies
/// the sha256WithRSAEncryption signature over the TBSCertificate.
pub fn signs(issuer: &Certificate, cert: &Certificate) -> bool {
    if issuer.tbs_certificate.subject != cert.tbs_certificate.issuer
        || cert.signature_algorithm.oid != SHA256_WITH_RSA
    {
        return false;
    }
    let (Ok(key), Ok(tbs), Some(sig)) = (
        rsa_key(issuer),
        cert.tbs_certificate.to_der(),
        cert.signature.as_bytes(),
    ) else {
        return false;
    };
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(tbs), sig)
        .is_ok()
}

/// Whether the certificate's basicConstraints extension (2.5.29.19) says
/// it is a CA (RFC 5280 §4.2.1.9). Without the extension it is not.
fn is_ca(cert: &Certificate) -> bool {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|b| b.ca)
}

/// SHA-256 of a certificate's DER TBSCertificate: the value
/// EFI_CERT_X509_SHA256 entries of dbx name (UEFI 2.10 §32.4.1).
pub fn tbs_sha256(cert: &Certificate) -> Result<[u8; 32], Error> {
    Ok(Sha256::digest(cert.tbs_certificate.to_der()?).into())
}

/// The DER of a certificate, to compare with EFI_CERT_X509 entries.
pub fn certificate_der(cert: &Certificate) -> Result<Vec<u8>, Error> {
    Ok(cert.to_der()?)
}

/// Verifies an EFI_VARIABLE_AUTHENTICATION_2 `CertData` (a SignedData,
/// wrapped or bare) as a detached signature of `data` up to `anchor`.
pub fn verify_detached(signed_data: &[u8], data: &[u8], anchor: &[u8]) -> Result<Trusted, Error> {
    parse(signed_data)?.verify_detached(data, anchor)
}

/// Decodes one DER X.509 certificate (a db/dbx EFI_CERT_X509 entry).
pub fn parse_certificate(der: &[u8]) -> Result<Certificate, Error> {
    Ok(Certificate::from_der(der)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authenticode;
    use cms::content_info::ContentInfo;

    const SIGNED: &[u8] = include_bytes!("../tests/data/signed.efi");
    const CHAIN: &[u8] = include_bytes!("../tests/data/chain.efi");
    const DB_CA: &[u8] = include_bytes!("../tests/data/db-ca.der");
    const OTHER_CA: &[u8] = include_bytes!("../tests/data/other-ca.der");
    const INTERMEDIATE: &[u8] = include_bytes!("../tests/data/intermediate.der");
    const SIGNER: &[u8] = include_bytes!("../tests/data/signer.der");
    const PAYLOAD: &[u8] = include_bytes!("../tests/data/payload.bin");
    const PAYLOAD_P7: &[u8] = include_bytes!("../tests/data/payload.p7");
    const PAYLOAD_NOATTR_P7: &[u8] = include_bytes!("../tests/data/payload-noattr.p7");

    fn signature(image: &[u8]) -> Pkcs7 {
        let table = authenticode::certificates(image).unwrap();
        assert_eq!(table.len(), 1);
        parse(table[0].signed_data().unwrap()).unwrap()
    }

    #[test]
    fn our_digest_is_the_one_sbsign_signed() {
        for image in [SIGNED, CHAIN] {
            assert_eq!(
                signature(image).authenticode_digest().unwrap(),
                authenticode::sha256(image).unwrap()
            );
        }
    }

    #[test]
    fn signer_verifies_up_to_the_db_ca() {
        let p7 = signature(SIGNED);
        assert_eq!(
            p7.verify_authenticode(DB_CA),
            Ok(Trusted {
                depth: 0,
                anchor_is_member: false
            })
        );
        // The signer itself as anchor.
        assert_eq!(
            p7.verify_authenticode(SIGNER),
            Ok(Trusted {
                depth: 0,
                anchor_is_member: true
            })
        );
        assert!(matches!(
            p7.verify_authenticode(OTHER_CA),
            Err(Error::Verify { .. })
        ));
    }

    #[test]
    fn chain_through_a_carried_intermediate() {
        let p7 = signature(CHAIN);
        assert_eq!(p7.certificates().len(), 2);
        assert_eq!(p7.verify_authenticode(DB_CA).unwrap().depth, 1);
        assert_eq!(p7.verify_authenticode(INTERMEDIATE).unwrap().depth, 0);
        assert!(p7.verify_authenticode(OTHER_CA).is_err());
    }

    #[test]
    fn detached_signature_with_and_without_content_info_and_attributes() {
        let unwrapped = ContentInfo::from_der(PAYLOAD_P7)
            .unwrap()
            .content
            .to_der()
            .unwrap();
        for der in [PAYLOAD_P7, PAYLOAD_NOATTR_P7, &unwrapped] {
            let p7 = parse(der).unwrap();
            assert!(p7.verify_detached(PAYLOAD, DB_CA).is_ok());
            assert!(p7.verify_detached(PAYLOAD, OTHER_CA).is_err());
            let mut changed = PAYLOAD.to_vec();
            changed[0] ^= 1;
            assert!(p7.verify_detached(&changed, DB_CA).is_err());
            // Not an Authenticode signature.
            assert!(p7.authenticode_digest().is_err());
        }
    }

    #[test]
    fn zero_padding_after_the_der_is_ignored_other_bytes_refused() {
        let mut padded = PAYLOAD_P7.to_vec();
        padded.extend_from_slice(&[0; 6]);
        assert!(
            parse(&padded)
                .unwrap()
                .verify_detached(PAYLOAD, DB_CA)
                .is_ok()
        );
        padded.push(1);
        assert!(matches!(
            parse(&padded),
            Err(Error::Pkcs7 {
                rule: "bytes after the SignedData",
                value: 7
            })
        ));
    }

    #[test]
    fn tampered_signature_is_refused() {
        let table = authenticode::certificates(SIGNED).unwrap();
        let der = table[0].signed_data().unwrap();
        // The RSA signature is the last OCTET STRING: flip its last byte.
        let mut bad = der.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            parse(&bad).unwrap().verify_authenticode(DB_CA),
            Err(Error::Verify {
                what: "signature does not verify",
                depth: 0
            })
        );
        for len in 0..der.len() {
            if let Ok(p7) = parse(&der[..len]) {
                assert!(p7.verify_authenticode(DB_CA).is_err());
            }
        }
    }
}
