use super::*;
use crate::acpi::AcpiError;
use crate::acpi::test_tables::*;

#[test]
fn rsdp_v1_and_v2_checksums() {
    let v2 = rsdp_v2(0x1000, 0x2000);
    let rsdp = Rsdp::parse(&v2).unwrap();
    assert_eq!(rsdp.revision, 2);
    assert_eq!(rsdp.root_table(), Some((0x1000, 8)));
    assert_eq!(&rsdp.oem_id, b"VMFWOE");

    let v1 = rsdp_v1(0x2000);
    let rsdp = Rsdp::parse(&v1).unwrap();
    assert_eq!(rsdp.root_table(), Some((0x2000, 4)));

    let mut bad = v2.clone();
    bad[30] ^= 1; // only the extended checksum covers byte 30
    assert!(matches!(
        Rsdp::parse(&bad),
        Err(AcpiError::BadChecksum { signature, .. }) if &signature == b"XSDP"
    ));
    let mut bad = v1.clone();
    bad[17] ^= 1;
    assert!(matches!(
        Rsdp::parse(&bad),
        Err(AcpiError::BadChecksum { .. })
    ));
    assert!(matches!(
        Rsdp::parse(b"RSD PTX 0123456789abcdef"),
        Err(AcpiError::BadSignature(_))
    ));
    assert!(matches!(
        Rsdp::parse(&v2[..10]),
        Err(AcpiError::Truncated { .. })
    ));
}

#[test]
fn rsdp_without_xsdt_falls_back_to_rsdt() {
    let rsdp = Rsdp::parse(&rsdp_v2(0, 0x3000)).unwrap();
    assert_eq!(rsdp.root_table(), Some((0x3000, 4)));
}

#[test]
fn scan_finds_rsdp_only_on_16_byte_boundaries() {
    let mut area = vec![0u8; 256];
    area[8..28].copy_from_slice(&rsdp_v1(0x2000)); // misaligned: ignored
    assert_eq!(scan_for_rsdp(&area, 0xe0000), None);
    area[0x40..0x54].copy_from_slice(&rsdp_v1(0x2000));
    let (address, _) = scan_for_rsdp(&area, 0xe0000).unwrap();
    assert_eq!(address, 0xe0040);
}

#[test]
fn table_validation() {
    let good = table(b"TEST", &[1, 2, 3]);
    let (header, bytes) = validate_table(&good).unwrap();
    assert_eq!(&header.signature, b"TEST");
    assert_eq!(bytes.len(), 39);

    let mut bad = good.clone();
    bad[37] ^= 0xff;
    assert!(matches!(
        validate_table(&bad),
        Err(AcpiError::BadChecksum { .. })
    ));
    let mut short = good.clone();
    short[4..8].copy_from_slice(&10u32.to_le_bytes());
    assert_eq!(
        validate_table(&short).unwrap_err(),
        AcpiError::BadLength(10)
    );
    let mut long = good.clone();
    long[4..8].copy_from_slice(&100u32.to_le_bytes());
    assert!(matches!(
        validate_table(&long),
        Err(AcpiError::Truncated { needed: 100, .. })
    ));
}
