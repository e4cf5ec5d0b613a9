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

#[test]
fn fadt_legacy_blocks() {
    let fadt = Fadt::parse(&q35_fadt(0x5000)).unwrap();
    assert_eq!(fadt.dsdt, 0x5000);
    assert_eq!(
        fadt.pm1a_cnt,
        Some(GenericAddress {
            space: AddressSpace::SYSTEM_IO,
            bit_width: 16,
            bit_offset: 0,
            access_size: 0,
            address: 0x604
        })
    );
    assert_eq!(fadt.pm1b_cnt, None);
    assert_eq!(fadt.pm_timer.unwrap().address, 0x608);
    assert_eq!(fadt.pm_timer.unwrap().access_bytes(1), 4);
    assert_eq!(fadt.century, 0x32);
    assert_eq!(fadt.reset_reg.unwrap().address, 0xcf9);
    assert_eq!(fadt.reset_value, 6);
    assert!(
        fadt.flags
            .contains(FadtFlags::RESET_REG_SUP | FadtFlags::TMR_VAL_EXT)
    );
    assert_eq!(fadt.sleep_control, None);
}

#[test]
fn fadt_x_fields_supersede_legacy_ones() {
    let mut body = vec![0u8; 244 - 36];
    body[40 - 36..44 - 36].copy_from_slice(&0x5000u32.to_le_bytes());
    body[64 - 36..68 - 36].copy_from_slice(&0x604u32.to_le_bytes());
    body[140 - 36..148 - 36].copy_from_slice(&0x1_0000_5000u64.to_le_bytes());
    body[172 - 36..184 - 36].copy_from_slice(&gas(0, 16, 2, 0xfed0_0000));
    let fadt = Fadt::parse(&table(b"FACP", &body)).unwrap();
    assert_eq!(fadt.dsdt, 0x1_0000_5000);
    let pm1a = fadt.pm1a_cnt.unwrap();
    assert_eq!(pm1a.space, AddressSpace::SYSTEM_MEMORY);
    assert_eq!(pm1a.address, 0xfed0_0000);
    assert_eq!(pm1a.access_bytes(1), 2);
}

#[test]
fn acpi_1_fadt_is_accepted_and_too_short_rejected() {
    let fadt = Fadt::parse(&table(b"FACP", &[0u8; 116 - 36])).unwrap();
    assert_eq!(fadt.reset_reg, None);
    assert_eq!(fadt.sleep_control, None);
    assert!(matches!(
        Fadt::parse(&table(b"FACP", &[0u8; 40])),
        Err(AcpiError::Truncated { .. })
    ));
}

#[test]
fn mcfg_entry() {
    let m = mcfg(0xb000_0000, 0, 0, 0xff);
    let ecam: Vec<Ecam> = mcfg_entries(&m).collect();
    assert_eq!(
        ecam,
        vec![Ecam {
            base: 0xb000_0000,
            segment: 0,
            start_bus: 0,
            end_bus: 0xff
        }]
    );
    assert_eq!(ecam[0].size(), 256 << 20);
}

#[test]
fn pkg_length_encodings() {
    assert_eq!(pkg_length(&[0x06]), Some((6, 1)));
    // 2-byte form: low nibble 0x3, next byte 0x12 -> 0x123.
    assert_eq!(pkg_length(&[0x43, 0x12]), Some((0x123, 2)));
    assert_eq!(pkg_length(&[0x81, 0x34, 0x12]), Some((0x12341, 3)));
    assert_eq!(pkg_length(&[0x43]), None);
}

#[test]
fn s5_qemu_zero_ops() {
    assert_eq!(find_s5(QEMU_S5), Ok(SleepType { a: 0, b: 0 }));
}

#[test]
fn s5_byte_prefix_values_with_root_prefix() {
    // Name(\_S5_, Package(2){0x05, 0x07})
    let aml = [
        0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x05, 0x0a, 0x07,
    ];
    assert_eq!(find_s5(&aml), Ok(SleepType { a: 5, b: 7 }));
}

#[test]
fn s5_mixed_one_op_and_parent_prefix() {
    // Name(^^_S5_, Package(4){One, 0x02, Zero, Zero})
    let aml = [
        0x08, b'^', b'^', b'_', b'S', b'5', b'_', 0x12, 0x07, 0x04, 0x01, 0x0a, 0x02, 0x00, 0x00,
    ];
    assert_eq!(find_s5(&aml), Ok(SleepType { a: 1, b: 2 }));
}

#[test]
fn s5_single_element_cloud_hypervisor_form() {
    // Name(_S5_, Package(1){0x05})
    let aml = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x0a, 0x05];
    assert_eq!(find_s5(&aml), Ok(SleepType { a: 5, b: 0 }));
    // A word packing SLP_TYPa and SLP_TYPb.
    let aml = [
        0x08, b'_', b'S', b'5', b'_', 0x12, 0x05, 0x01, 0x0b, 0x07, 0x03,
    ];
    assert_eq!(find_s5(&aml), Ok(SleepType { a: 7, b: 3 }));
}

#[test]
fn s5_two_byte_pkg_length() {
    let mut aml = vec![0x08, b'_', b'S', b'5', b'_', 0x12, 0x40, 0x01, 0x02];
    aml.extend_from_slice(&[0x0a, 0x03, 0x0a, 0x04]);
    // Pad the package to its declared length of 0x40 + 1 bytes.
    aml.resize(6 + 0x40, 0);
    assert_eq!(find_s5(&aml), Ok(SleepType { a: 3, b: 4 }));
}

#[test]
fn s5_skips_lookalikes_and_rejects_garbage() {
    // "_S5_" inside a string first (no NameOp), then the real object.
    let mut aml = vec![0x0d, b'_', b'S', b'5', b'_', 0x00];
    aml.extend_from_slice(QEMU_S5);
    assert_eq!(find_s5(&aml), Ok(SleepType { a: 0, b: 0 }));

    // A method named _S5_ is not a package.
    let method = [0x14, 0x08, b'_', b'S', b'5', b'_', 0x00, 0xa4, 0x00];
    assert_eq!(find_s5(&method), Err(AcpiError::NoS5));
    // Sleep type out of the 3-bit range.
    let aml = [
        0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x09, 0x00, 0x00,
    ];
    assert_eq!(find_s5(&aml), Err(AcpiError::NoS5));
    // Truncated package.
    assert_eq!(find_s5(&QEMU_S5[..9]), Err(AcpiError::NoS5));
    assert_eq!(find_s5(b""), Err(AcpiError::NoS5));
}
