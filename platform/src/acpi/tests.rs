use super::parse::*;
use super::test_tables::*;
use super::*;

#[test]
fn discover_q35_like_tables() {
    let mut memory = FakeMemory::default();
    memory.put(0xf5000, rsdp_v2(0x7000, 0x7100));
    // The RSDT differs from the XSDT to prove the XSDT is used.
    memory.put(0x7100, rsdt(&[]));
    memory.put(0x7000, xsdt(&[0x8000, 0x8800, 0x9000, 0x9800, 0x9c00]));
    memory.put(0x8000, q35_fadt(0xa000));
    let mut corrupt = table(b"APIC", &[0; 8]);
    corrupt[40] = 1;
    memory.put(0x8800, corrupt);
    memory.put(0x9000, mcfg(0xb000_0000, 0, 0, 0xff));
    memory.put(0x9800, table(b"HPET", &[0; 20]));
    // TPM2 revision 3 (no log area): client, CRB at 0xfed40040.
    let mut tpm2 = vec![0u8; 4];
    tpm2.extend_from_slice(&0xfed4_0040u64.to_le_bytes());
    tpm2.extend_from_slice(&7u32.to_le_bytes());
    memory.put(0x9c00, table(b"TPM2", &tpm2));
    memory.put(0xa000, dsdt_with(QEMU_S5));

    let info = AcpiInfo::discover_in(&memory, Some(0xf5000)).unwrap();
    assert_eq!(info.rsdp_address, 0xf5000);
    assert!(!info.hw_reduced);
    assert_eq!(info.reset.unwrap().register.address, 0xcf9);
    assert_eq!(info.reset.unwrap().value, 6);
    assert_eq!(info.pm1a_cnt.unwrap().address, 0x604);
    assert_eq!(info.pm_timer.unwrap().register.address, 0x608);
    assert!(info.pm_timer.unwrap().bits32);
    assert_eq!(info.century, Some(0x32));
    assert_eq!(info.dsdt, Some(0xa000));
    assert_eq!(info.s5_sleep_type, Some(SleepType { a: 0, b: 0 }));
    assert_eq!(info.mcfg.unwrap().base, 0xb000_0000);
    let tpm2 = info.tpm2.unwrap();
    assert_eq!((tpm2.control_area, tpm2.start_method), (0xfed4_0040, 7));

    // The corrupt APIC is skipped; later tables are still found.
    let rsdp = info.rsdp;
    assert!(find_table_in(&memory, &rsdp, b"APIC").is_none());
    assert_eq!(
        find_table_in(&memory, &rsdp, b"HPET").unwrap().address,
        0x9800
    );
}

#[test]
fn discover_hw_reduced_through_bios_area_search() {
    let mut memory = FakeMemory::default();
    // No EBDA pointer (word at 0x40E is zero), RSDP in the BIOS area.
    memory.put(0x400, vec![0; 0x20]);
    let mut bios = vec![0u8; 0x20000];
    bios[0x1_0000..0x1_0014].copy_from_slice(&rsdp_v1(0x7000));
    memory.put(0xe0000, bios);
    memory.put(0x7000, rsdt(&[0x8000]));
    memory.put(0x8000, hw_reduced_fadt(0xa000));
    let s5 = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x0a, 0x05];
    memory.put(0xa000, dsdt_with(&s5));

    let info = AcpiInfo::discover_in(&memory, None).unwrap();
    assert_eq!(info.rsdp_address, 0xf0000);
    assert!(info.hw_reduced);
    assert_eq!(info.pm1a_cnt, None);
    assert_eq!(info.pm_timer, None);
    assert_eq!(info.sleep_control.unwrap().address, 0x3c0);
    assert_eq!(info.reset.unwrap().value, 1);
    assert_eq!(info.s5_sleep_type, Some(SleepType { a: 5, b: 0 }));
    assert_eq!(info.century, None);
    assert_eq!(info.mcfg, None);
}

#[test]
fn discover_prefers_ebda_and_rejects_bad_given_rsdp() {
    let mut memory = FakeMemory::default();
    let mut bda = vec![0u8; 0x20];
    bda[0x0e..0x10].copy_from_slice(&0x9fc0u16.to_le_bytes());
    memory.put(0x400, bda);
    let mut ebda = vec![0u8; 1024];
    ebda[0x20..0x34].copy_from_slice(&rsdp_v1(0x7000));
    memory.put(0x9fc00, ebda);
    let mut bad = rsdp_v1(0x7000);
    bad[16] ^= 1;
    memory.put(0x1000, bad);
    memory.put(0x7000, rsdt(&[]));
    let info = AcpiInfo::discover_in(&memory, Some(0x1000)).unwrap();
    assert_eq!(info.rsdp_address, 0x9fc20);
    assert_eq!(info.fadt, None);
    assert_eq!(info.reset, None);
}

#[test]
fn discover_without_rsdp_fails() {
    let memory = FakeMemory::default();
    assert_eq!(AcpiInfo::discover_in(&memory, None), Err(AcpiError::NoRsdp));
}

#[test]
fn reset_register_requires_flag() {
    let mut body = q35_fadt(0xa000)[36..].to_vec();
    body[112 - 36..116 - 36].copy_from_slice(&0u32.to_le_bytes());
    let mut memory = FakeMemory::default();
    memory.put(0x1000, rsdp_v1(0x7000));
    memory.put(0x7000, rsdt(&[0x8000]));
    memory.put(0x8000, table(b"FACP", &body));
    let info = AcpiInfo::discover_in(&memory, Some(0x1000)).unwrap();
    assert_eq!(info.reset, None);
    // No DSDT mapped: \_S5 is unknown rather than an error.
    assert_eq!(info.s5_sleep_type, None);
}

#[test]
fn error_display() {
    let e = AcpiError::BadChecksum {
        signature: *b"FACP",
        sum: 3,
    };
    assert_eq!(alloc::format!("{e}"), "FACP checksum sums to 0x03");
}
