//! Decoding of a PKCS#7 / CMS SignedData (RFC 5652 §5.1) into the parts the
//! verification reads: the encapsulated content, the certificates and the
//! SignerInfos.
//!
//! cms's own `SignedData` type would decode everything, CRLs included, and
//! der instantiates its generic decoders once per nesting depth of every
//! type it meets: that came to about 60 KB of firmware code for parts no
//! rule here reads. So the outer SEQUENCE is walked element by element; each
//! certificate and SignerInfo is still decoded by x509-cert / cms, and
//! revocation information (`crls`, [1]) is skipped: revocation is dbx's job
//! (UEFI 2.10 §32.5.3.3), as in edk2, which never consults CRLs.

use alloc::vec::Vec;
use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignerInfo};
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::Certificate;

use crate::error::Error;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");

/// The parts of a SignedData the verification reads.
pub struct SignedData {
    pub content: EncapsulatedContentInfo,
    pub certificates: Vec<Certificate>,
    pub signer_infos: Vec<SignerInfo>,
}

fn rule(rule: &'static str, value: u64) -> Error {
    Error::Pkcs7 { rule, value }
}

/// Decodes a SignedData, wrapped in a ContentInfo or bare (edk2 accepts
/// both for EFI_VARIABLE_AUTHENTICATION_2; Authenticode always wraps).
///
/// The WIN_CERTIFICATE holding it may be longer than the DER: signers pad
/// dwLength to 8 bytes (Microsoft's shim signatures end in 1 to 7 zero
/// bytes). Zero padding is ignored, anything else after the DER is refused.
pub fn decode(der: &[u8]) -> Result<SignedData, Error> {
    let mut reader = SliceReader::new(der)?;
    let outer = AnyRef::decode(&mut reader)?;
    let used = usize::try_from(reader.position())?;
    let (der, padding) = der.split_at(used);
    if padding.iter().any(|&b| b != 0) {
        return Err(rule("bytes after the SignedData", padding.len() as u64));
    }
    if outer.tag() != Tag::Sequence {
        return Err(rule("not a SEQUENCE", u64::from(u8::from(outer.tag()))));
    }
    // A ContentInfo starts with its contentType OID, a SignedData with its
    // version INTEGER.
    if outer.value().first() == Some(&u8::from(Tag::ObjectIdentifier)) {
        let info = ContentInfo::from_der(der)?;
        if info.content_type != ID_SIGNED_DATA {
            return Err(rule("ContentInfo is not signedData", 0));
        }
        if info.content.tag() != Tag::Sequence {
            return Err(rule("content is not a SEQUENCE", 0));
        }
        fields(info.content.value())
    } else {
        fields(outer.value())
    }
}

/// SignedData ::= SEQUENCE { version CMSVersion, digestAlgorithms SET,
///   encapContentInfo, certificates [0] IMPLICIT OPTIONAL,
///   crls [1] IMPLICIT OPTIONAL, signerInfos SET OF SignerInfo }
fn fields(body: &[u8]) -> Result<SignedData, Error> {
    let mut r = SliceReader::new(body)?;
    // The version and digestAlgorithms (a hint for one-pass hashing) are not
    // needed: each SignerInfo names its own digest algorithm.
    let _version = u8::decode(&mut r)?;
    let algorithms = AnyRef::decode(&mut r)?;
    if algorithms.tag() != Tag::Set {
        return Err(rule("digestAlgorithms is not a SET", 0));
    }
    let content = EncapsulatedContentInfo::decode(&mut r)?;
    let mut certificates = Vec::new();
    let mut signer_infos = None;
    let context = |number| Tag::ContextSpecific {
        constructed: true,
        number,
    };
    while !r.is_finished() {
        let item = AnyRef::decode(&mut r)?;
        match item.tag() {
            _ if signer_infos.is_some() => {
                return Err(rule(
                    "data after signerInfos",
                    u64::from(u8::from(item.tag())),
                ));
            }
            t if t == context(TagNumber::N0) && certificates.is_empty() => {
                let mut set = SliceReader::new(item.value())?;
                while !set.is_finished() {
                    // CertificateChoices: only plain certificates (a
                    // SEQUENCE) can be chain members; the obsolete and
                    // attribute-certificate choices are skipped.
                    if set.peek_tag()? == Tag::Sequence {
                        certificates.push(Certificate::decode(&mut set)?);
                    } else {
                        AnyRef::decode(&mut set)?;
                    }
                }
            }
            t if t == context(TagNumber::N1) => {}
            Tag::Set => {
                let mut set = SliceReader::new(item.value())?;
                let mut infos = Vec::new();
                while !set.is_finished() {
                    infos.push(SignerInfo::decode(&mut set)?);
                }
                signer_infos = Some(infos);
            }
            other => {
                return Err(rule(
                    "unexpected SignedData field",
                    u64::from(u8::from(other)),
                ));
            }
        }
    }
    Ok(SignedData {
        content,
        certificates,
        signer_infos: signer_infos.ok_or(rule("no signerInfos", 0))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const ID_DATA: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ];

    /// A bare SignedData: version 1, no digest algorithms, detached id-data
    /// content, then `rest`.
    fn bare(rest: &[u8]) -> Vec<u8> {
        let mut body = vec![0x02, 0x01, 0x01, 0x31, 0x00, 0x30, ID_DATA.len() as u8];
        body.extend_from_slice(&ID_DATA);
        body.extend_from_slice(rest);
        let mut der = vec![0x30, body.len() as u8];
        der.extend(body);
        der
    }

    fn rule_of(der: &[u8]) -> &'static str {
        match decode(der) {
            Err(Error::Pkcs7 { rule, .. }) => rule,
            Err(other) => panic!("{other:?}"),
            Ok(_) => "decoded",
        }
    }

    #[test]
    fn structure_rules() {
        assert_eq!(rule_of(&bare(&[0x31, 0x00])), "decoded");
        assert_eq!(decode(&bare(&[0x31, 0x00])).unwrap().signer_infos.len(), 0);
        assert_eq!(rule_of(&bare(&[])), "no signerInfos");
        assert_eq!(
            rule_of(&bare(&[0x31, 0x00, 0x31, 0x00])),
            "data after signerInfos"
        );
        assert_eq!(rule_of(&bare(&[0x04, 0x00])), "unexpected SignedData field");
        // CRLs ([1]) are skipped, an empty certificate set is allowed.
        assert_eq!(
            rule_of(&bare(&[0xa0, 0x00, 0xa1, 0x00, 0x31, 0x00])),
            "decoded"
        );
        assert_eq!(rule_of(&[0x02, 0x01, 0x01]), "not a SEQUENCE");
        let mut info = vec![0x30, 15];
        info.extend_from_slice(&ID_DATA);
        info.extend_from_slice(&[0xa0, 0x02, 0x30, 0x00]);
        assert_eq!(rule_of(&info), "ContentInfo is not signedData");
        let mut padded = bare(&[0x31, 0x00]);
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(rule_of(&padded), "decoded");
        padded.push(9);
        assert_eq!(rule_of(&padded), "bytes after the SignedData");
        for len in 0..padded.len() {
            let _ = decode(&padded[..len]);
        }
    }
}
