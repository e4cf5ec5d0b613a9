//! `vmfw-keys`: makes the Secure Boot key input vmfw reads from a PVH module
//! (README "Secure Boot").
//!
//! ```text
//! cargo run -q -p vmfw-keys -- --pk pk.pem --microsoft -o keys.bin
//! ```

use std::process::ExitCode;

use secure_boot::signature_list::{self, SignatureList};
use vmfw_keys::{
    MICROSOFT_DB, MICROSOFT_KEK, MICROSOFT_OWNER, VMFW_OWNER, certificate_der, key_input,
    parse_guid, sha256_list, x509_list,
};

const USAGE: &str = "\
usage: vmfw-keys [--pk CERT] [--kek ITEM]... [--db ITEM]... [--dbx ITEM]... [--dbt ITEM]...
                 [--microsoft] [--owner GUID] -o FILE

Writes vmfw's Secure Boot key input: give it to the firmware as a PVH module
(QEMU: -kernel vmfw -initrd FILE; Cloud Hypervisor: --kernel vmfw --initramfs FILE).
With a PK the firmware boots in user mode with Secure Boot on; without one, in
setup mode with Secure Boot off.

ITEM is one of
  a certificate, PEM or DER         an EFI_CERT_X509 entry
  a file ending in .esl             EFI_SIGNATURE_LISTs, taken as they are
  sha256:HEX                        an EFI_CERT_SHA256 entry (an image digest)
  image:FILE                        the Authenticode SHA-256 of a PE image
--microsoft   adds Microsoft's KEK CAs (2011, 2023) to KEK and the Windows and
              UEFI CAs (2011, 2023) to db: the usual cloud-image policy, under
              which Microsoft-signed shim boots
--owner GUID  SignatureOwner of the entries made here (Microsoft's keep theirs)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmfw-keys: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut owner = VMFW_OWNER;
    let mut output = None;
    let mut microsoft = false;
    let mut items: Vec<(&'static str, String)> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n\n{USAGE}"));
        match arg.as_str() {
            "--pk" => items.push(("PK", value()?)),
            "--kek" => items.push(("KEK", value()?)),
            "--db" => items.push(("db", value()?)),
            "--dbx" => items.push(("dbx", value()?)),
            "--dbt" => items.push(("dbt", value()?)),
            "--microsoft" => microsoft = true,
            "--owner" => {
                let text = value()?;
                owner = parse_guid(&text).ok_or(format!("--owner {text}: not a GUID"))?;
            }
            "-o" | "--output" => output = Some(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("unknown argument {arg}\n\n{USAGE}")),
        }
    }
    let output = output.ok_or(format!("no output file (-o FILE)\n\n{USAGE}"))?;
    if items.iter().filter(|(key, _)| *key == "PK").count() > 1 {
        return Err("PK is one certificate; --pk given twice".into());
    }
    let mut entries: Vec<(&str, Vec<SignatureList>)> = Vec::new();
    for (key, item) in &items {
        let lists =
            lists_of(item, owner).map_err(|e| format!("--{} {item}: {e}", key.to_lowercase()))?;
        if *key == "PK"
            && !(lists.len() == 1
                && lists[0].signatures.len() == 1
                && lists[0].signature_type == signature_list::EFI_CERT_X509_GUID)
        {
            return Err(format!("--pk {item}: PK must be one X.509 certificate"));
        }
        entries.push((key, lists));
    }
    if microsoft {
        for (key, pems) in [("KEK", &MICROSOFT_KEK[..]), ("db", &MICROSOFT_DB[..])] {
            for pem in pems {
                let der = certificate_der(pem.as_bytes())?;
                entries.push((key, vec![x509_list(&der, MICROSOFT_OWNER)]));
            }
        }
    }
    let bytes = key_input(&entries)?;
    std::fs::write(&output, &bytes).map_err(|e| format!("{output}: {e}"))?;
    let has_pk = entries.iter().any(|(key, _)| *key == "PK");
    eprintln!(
        "vmfw-keys: wrote {output} ({} bytes): {}",
        bytes.len(),
        if has_pk {
            "Secure Boot on (user mode)"
        } else {
            "no PK: setup mode, Secure Boot off"
        }
    );
    Ok(())
}

/// The signature lists one ITEM stands for (see USAGE).
fn lists_of(item: &str, owner: [u8; 16]) -> Result<Vec<SignatureList>, String> {
    if let Some(hex) = item.strip_prefix("sha256:") {
        return Ok(vec![sha256_list(&[parse_sha256(hex)?], owner)]);
    }
    if let Some(path) = item.strip_prefix("image:") {
        let image = std::fs::read(path).map_err(|e| e.to_string())?;
        let digest = secure_boot::authenticode::sha256(&image).map_err(|e| e.to_string())?;
        return Ok(vec![sha256_list(&[digest], owner)]);
    }
    let bytes = std::fs::read(item).map_err(|e| e.to_string())?;
    if item.ends_with(".esl") {
        let lists = signature_list::parse(&bytes).map_err(|e| e.to_string())?;
        if lists.is_empty() {
            return Err("no EFI_SIGNATURE_LIST in it".into());
        }
        return Ok(lists);
    }
    Ok(vec![x509_list(&certificate_der(&bytes)?, owner)])
}

fn parse_sha256(hex: &str) -> Result<[u8; 32], String> {
    let bad = || format!("sha256:{hex}: not 64 hex digits");
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}
