//! Secure Boot key inputs for tests and the benchmark (issue 19): test keys
//! made once with openssl in the cache, key inputs written with the
//! `vmfw-keys` crate, as `vmfw-keys` the command would.

use std::path::{Path, PathBuf};
use std::process::Command;

use secure_boot::signature_list::SignatureList;
use vmfw_keys::{MICROSOFT_DB, MICROSOFT_KEK, MICROSOFT_OWNER, VMFW_OWNER};

use crate::paths::cache_dir;
use crate::util::{publish, temp_sibling};

/// A self-signed certificate and its private key.
pub struct TestKey {
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// The test key `name`, made with openssl on first use. Key and
/// certificate are made together in a directory of their own and published
/// as one (a rename): tests starting at once on an empty cache all get the
/// same pair, never one process's key with another's certificate.
pub fn test_key(name: &str) -> TestKey {
    let dir = cache_dir("secure-boot-keys").join(name);
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    if !cert.exists() {
        let scratch = temp_sibling(&dir);
        std::fs::create_dir_all(&scratch)
            .unwrap_or_else(|e| panic!("create {}: {e}", scratch.display()));
        let status = Command::new("openssl")
            .args([
                "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            ])
            .args(["-days", "3650", "-subj"])
            .arg(format!("/CN=vmfw test {name}"))
            .arg("-keyout")
            .arg(scratch.join("key.pem"))
            .arg("-out")
            .arg(scratch.join("cert.pem"))
            .status()
            .expect("openssl (Debian package openssl) must be installed");
        assert!(status.success(), "openssl req for {name}");
        publish(&scratch, &dir);
    }
    TestKey { key, cert }
}

/// One X.509 signature list of the certificate file at `path`.
pub fn x509(path: &Path, owner: [u8; 16]) -> SignatureList {
    let der = vmfw_keys::certificate_der(&std::fs::read(path).unwrap()).unwrap();
    vmfw_keys::x509_list(&der, owner)
}

/// Microsoft's certificates among `pems` as signature lists.
pub fn microsoft(pems: &[&str]) -> Vec<SignatureList> {
    pems.iter()
        .map(|pem| {
            let der = vmfw_keys::certificate_der(pem.as_bytes()).unwrap();
            vmfw_keys::x509_list(&der, MICROSOFT_OWNER)
        })
        .collect()
}

/// Writes the key input `name` holding `entries` and the test PK.
pub fn key_input(name: &str, mut entries: Vec<(&str, Vec<SignatureList>)>) -> PathBuf {
    let pk = test_key("pk");
    entries.push(("PK", vec![x509(&pk.cert, VMFW_OWNER)]));
    write_key_input(name, &entries)
}

/// Writes the key input `name` holding exactly `entries` to the cache.
pub fn write_key_input(name: &str, entries: &[(&str, Vec<SignatureList>)]) -> PathBuf {
    let bytes = vmfw_keys::key_input(entries).unwrap();
    let path = cache_dir("secure-boot-keys").join(format!("{name}.keys"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The usual cloud policy (`vmfw-keys --microsoft` with the test PK).
pub fn microsoft_keys() -> PathBuf {
    key_input(
        "microsoft",
        vec![
            ("KEK", microsoft(&MICROSOFT_KEK)),
            ("db", microsoft(&MICROSOFT_DB)),
        ],
    )
}
