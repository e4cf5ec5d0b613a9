//! The driver against a simulated HBA: registers that act as AHCI 1.3.1
//! says (ST/CR, FRE/FR, write-one-to-clear status, PxCI), and devices
//! that execute the command FIS, ATAPI command block and PRD table the
//! driver wrote, on in-memory media.

use super::ata::*;
use super::regs::{HbaRegs, hba, port};
use super::*;

use core::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::vec;

/// Raw memory access for the simulated device, as DMA.
fn dma_read(addr: u64, len: usize) -> Vec<u8> {
    // SAFETY: tests only pass addresses the driver handed to the device:
    // its port page or a live caller buffer of at least `len` bytes.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }.to_vec()
}

fn dma_write(addr: u64, data: &[u8]) {
    // SAFETY: as for `dma_read`, for buffers the device may write.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) }
}

#[derive(Clone)]
enum Media {
    Ata { sector_bytes: u32, data: Vec<u8> },
    Atapi { data: Option<Vec<u8>> },
}

struct FakeDevice {
    media: Media,
    /// ATAPI: the next TEST UNIT READY reports UNIT ATTENTION.
    unit_attention: bool,
    sense: (u8, u8),
    /// A read or write touching this block fails with ERR.
    bad_block: Option<u64>,
    /// Commands complete never (PxCI stays set).
    hang: bool,
}

#[derive(Default)]
struct Log {
    /// (ATA command, SCSI opcode, PRD entries, bytes) per command.
    commands: Vec<(u8, u8, usize, usize)>,
}

struct FakeHba {
    regs: RefCell<HashMap<u32, u32>>,
    clock: Cell<u64>,
    devices: RefCell<HashMap<u8, FakeDevice>>,
    log: RefCell<Log>,
}

const S64A_SCLO: u32 = hba::CAP_S64A | hba::CAP_SCLO;

impl FakeHba {
    fn new(devices: Vec<(u8, FakeDevice)>) -> Rc<FakeHba> {
        let fake = FakeHba {
            regs: RefCell::new(HashMap::new()),
            clock: Cell::new(0),
            devices: RefCell::new(HashMap::new()),
            log: RefCell::default(),
        };
        fake.set(hba::CAP, S64A_SCLO | 5);
        fake.set(hba::PI, 0b1111);
        fake.set(hba::VS, 0x0001_0301);
        for (number, device) in devices {
            let base = Self::port_base(number);
            fake.set(base + port::SSTS, 0x113);
            let signature = match device.media {
                Media::Ata { .. } => port::SIG_ATA,
                Media::Atapi { .. } => port::SIG_ATAPI,
            };
            fake.set(base + port::SIG, signature);
            fake.set(base + port::TFD, 0x50);
            fake.devices.borrow_mut().insert(number, device);
        }
        Rc::new(fake)
    }

    fn port_base(number: u8) -> u32 {
        hba::PORTS + u32::from(number) * hba::PORT_BYTES
    }

    fn get(&self, offset: u32) -> u32 {
        self.regs.borrow().get(&offset).copied().unwrap_or(0)
    }

    fn set(&self, offset: u32, value: u32) {
        self.regs.borrow_mut().insert(offset, value);
    }

    fn device<R>(&self, number: u8, f: impl FnOnce(&mut FakeDevice) -> R) -> R {
        f(self.devices.borrow_mut().get_mut(&number).unwrap())
    }

    /// Runs the command in slot 0 of port `number`, as the HBA would.
    fn execute(&self, number: u8) {
        let base = Self::port_base(number);
        let list =
            u64::from(self.get(base + port::CLB)) | u64::from(self.get(base + port::CLBU)) << 32;
        let header = dma_read(list, 16);
        let flags = u32::from_le_bytes(header[0..4].try_into().unwrap());
        assert_eq!(flags & 0x1F, 5, "CFL: a 20-byte register FIS");
        let table = u64::from_le_bytes(header[8..16].try_into().unwrap());
        let fis = dma_read(table, 20);
        assert_eq!((fis[0], fis[1]), (FIS_TYPE_REG_H2D, 0x80));
        let cdb = dma_read(table + 0x40, 16);
        let prd_count = (flags >> 16) as usize;
        let prds: Vec<(u64, usize)> = (0..prd_count)
            .map(|i| {
                let entry = dma_read(table + 0x80 + 16 * i as u64, 16);
                let addr = u64::from_le_bytes(entry[0..8].try_into().unwrap());
                let dbc = u32::from_le_bytes(entry[12..16].try_into().unwrap());
                assert_eq!(dbc & 1, 1, "even byte counts");
                assert_eq!(addr & 1, 0, "word-aligned buffers");
                (addr, (dbc & 0x3F_FFFF) as usize + 1)
            })
            .collect();
        let bytes: usize = prds.iter().map(|p| p.1).sum();
        let atapi = flags & (1 << 5) != 0;
        let write = flags & (1 << 6) != 0;
        self.log.borrow_mut().commands.push((
            fis[2],
            if atapi { cdb[0] } else { 0 },
            prd_count,
            bytes,
        ));
        if self.device(number, |d| d.hang) {
            return;
        }
        let lba = u64::from_le_bytes([fis[4], fis[5], fis[6], fis[8], fis[9], fis[10], 0, 0]);
        let count = u16::from_le_bytes([fis[12], fis[13]]);
        let result = self.device(number, |device| {
            device.run(fis[2], &cdb, lba, count, bytes, write)
        });
        match result {
            Ok(mut data) if !write => {
                data.resize(bytes, 0);
                let mut at = 0;
                for (addr, len) in prds {
                    dma_write(addr, &data[at..at + len]);
                    at += len;
                }
                self.complete(base, 0x50);
            }
            Ok(_) => self.complete(base, 0x50),
            Err(()) => {
                // Task file error: the HBA stops with the command still
                // issued (§6.2.2).
                let sense_key = self.device(number, |d| d.sense.0);
                self.set(
                    base + port::TFD,
                    0x51 | u32::from(sense_key) << 12 | 0x04 << 8,
                );
                self.set(base + port::IS, self.get(base + port::IS) | port::IS_TFES);
            }
        }
        if write {
            // Writes carry their data in the PRDs.
            let mut data = Vec::new();
            for (addr, len) in self.last_prds(number) {
                data.extend(dma_read(addr, len));
            }
            self.device(number, |device| device.store(lba, &data));
        }
    }

    fn last_prds(&self, number: u8) -> Vec<(u64, usize)> {
        let base = Self::port_base(number);
        let list =
            u64::from(self.get(base + port::CLB)) | u64::from(self.get(base + port::CLBU)) << 32;
        let header = dma_read(list, 16);
        let table = u64::from_le_bytes(header[8..16].try_into().unwrap());
        let count = (u32::from_le_bytes(header[0..4].try_into().unwrap()) >> 16) as u64;
        (0..count)
            .map(|i| {
                let entry = dma_read(table + 0x80 + 16 * i, 16);
                let dbc = u32::from_le_bytes(entry[12..16].try_into().unwrap());
                (
                    u64::from_le_bytes(entry[0..8].try_into().unwrap()),
                    (dbc & 0x3F_FFFF) as usize + 1,
                )
            })
            .collect()
    }

    fn complete(&self, base: u32, status: u32) {
        self.set(base + port::TFD, status);
        self.set(base + port::CI, 0);
    }
}

impl FakeDevice {
    fn ata(sector_bytes: u32, sectors: usize) -> Self {
        let data = (0..sectors * sector_bytes as usize)
            .map(|i| (i * 7 + i / 4093) as u8)
            .collect();
        Self::with(Media::Ata { sector_bytes, data })
    }

    fn cdrom(blocks: Option<usize>) -> Self {
        let data = blocks.map(|blocks| {
            (0..blocks * 2048)
                .map(|i| (i / 2048 + i % 251) as u8)
                .collect()
        });
        let mut device = Self::with(Media::Atapi { data });
        device.unit_attention = true;
        device
    }

    fn with(media: Media) -> Self {
        FakeDevice {
            media,
            unit_attention: false,
            sense: (0, 0),
            bad_block: None,
            hang: false,
        }
    }

    fn identify(&self, packet: bool) -> Result<Vec<u8>, ()> {
        let mut page = vec![0u8; 512];
        let mut put = |word: usize, value: u16| {
            page[2 * word..2 * word + 2].copy_from_slice(&value.to_le_bytes())
        };
        let model = b"FAKE DEVICE 1                           ";
        for (i, pair) in model.chunks(2).enumerate() {
            put(27 + i, u16::from_be_bytes([pair[0], pair[1]]));
        }
        match (&self.media, packet) {
            (Media::Ata { sector_bytes, data }, false) => {
                put(0, 0x0040);
                put(83, 1 << 10 | 1 << 13 | 1 << 14);
                put(86, 1 << 10 | 1 << 13);
                let sectors = (data.len() / *sector_bytes as usize) as u64;
                for i in 0..4 {
                    put(100 + i, (sectors >> (16 * i)) as u16);
                }
                if *sector_bytes != 512 {
                    put(106, 0x4000 | 1 << 12);
                    let words = sector_bytes / 2;
                    put(117, words as u16);
                    put(118, (words >> 16) as u16);
                }
            }
            (Media::Atapi { .. }, true) => put(0, 0x8580),
            _ => return Err(()),
        }
        Ok(page)
    }

    fn run(
        &mut self,
        command: u8,
        cdb: &[u8],
        lba: u64,
        count: u16,
        bytes: usize,
        write: bool,
    ) -> Result<Vec<u8>, ()> {
        match command {
            command::IDENTIFY_DEVICE => self.identify(false),
            command::IDENTIFY_PACKET_DEVICE => self.identify(true),
            command::FLUSH_CACHE_EXT => Ok(Vec::new()),
            command::READ_DMA_EXT | command::WRITE_DMA_EXT => {
                let Media::Ata { sector_bytes, data } = &self.media else {
                    return Err(());
                };
                let size = *sector_bytes as usize;
                let sectors = if count == 0 {
                    65536
                } else {
                    usize::from(count)
                };
                assert_eq!(sectors * size, bytes, "count matches the PRDs");
                assert_eq!(write, command == command::WRITE_DMA_EXT);
                let end = lba as usize + sectors;
                if self
                    .bad_block
                    .is_some_and(|bad| (lba..end as u64).contains(&bad))
                    || end * size > data.len()
                {
                    return Err(());
                }
                Ok(if write {
                    Vec::new()
                } else {
                    data[lba as usize * size..end * size].to_vec()
                })
            }
            command::PACKET => self.packet(cdb, bytes),
            _ => Err(()),
        }
    }

    fn packet(&mut self, cdb: &[u8], bytes: usize) -> Result<Vec<u8>, ()> {
        let Media::Atapi { data } = &self.media else {
            return Err(());
        };
        let check = |sense: (u8, u8), device: &mut FakeDevice| {
            device.sense = sense;
            Err(())
        };
        if cdb[0] == scsi::REQUEST_SENSE {
            let mut sense = vec![0u8; 18];
            sense[0] = 0x70;
            sense[2] = self.sense.0;
            sense[12] = self.sense.1;
            return Ok(sense);
        }
        let Some(data) = data.clone() else {
            return check((sense::NOT_READY, sense::ASC_MEDIUM_NOT_PRESENT), self);
        };
        if core::mem::take(&mut self.unit_attention) {
            return check((sense::UNIT_ATTENTION, 0x28), self);
        }
        match cdb[0] {
            scsi::TEST_UNIT_READY => Ok(Vec::new()),
            scsi::READ_CAPACITY_10 => {
                let last = (data.len() / 2048 - 1) as u32;
                Ok([last.to_be_bytes(), 2048u32.to_be_bytes()].concat())
            }
            scsi::READ_10 | scsi::READ_12 => {
                let lba = u32::from_be_bytes(cdb[2..6].try_into().unwrap()) as usize;
                let blocks = if cdb[0] == scsi::READ_10 {
                    usize::from(u16::from_be_bytes([cdb[7], cdb[8]]))
                } else {
                    u32::from_be_bytes(cdb[6..10].try_into().unwrap()) as usize
                };
                assert_eq!(blocks * 2048, bytes);
                if self
                    .bad_block
                    .is_some_and(|bad| (lba..lba + blocks).contains(&(bad as usize)))
                {
                    return check((0x03, 0x11), self);
                }
                data.get(lba * 2048..(lba + blocks) * 2048)
                    .map(<[u8]>::to_vec)
                    .ok_or(())
            }
            _ => check((0x05, 0x20), self),
        }
    }

    fn store(&mut self, lba: u64, bytes: &[u8]) {
        if let Media::Ata { sector_bytes, data } = &mut self.media {
            let at = lba as usize * *sector_bytes as usize;
            if let Some(target) = data.get_mut(at..at + bytes.len()) {
                target.copy_from_slice(bytes);
            }
        }
    }
}

impl HbaRegs for FakeHba {
    fn read(&self, offset: u32) -> u32 {
        self.get(offset)
    }

    fn write(&self, offset: u32, value: u32) {
        if offset < hba::PORTS {
            match offset {
                // The reset completes at once and leaves AE as it was.
                hba::GHC => self.set(offset, value & !hba::GHC_HR),
                _ => self.set(offset, value),
            }
            return;
        }
        let number = ((offset - hba::PORTS) / hba::PORT_BYTES) as u8;
        let base = Self::port_base(number);
        match offset - base {
            port::IS | port::SERR => self.set(offset, self.get(offset) & !value),
            port::CMD => {
                // CR follows ST, FR follows FRE, CLO clears at once;
                // clearing ST clears PxCI (§3.3.14).
                let mut cmd = value & !(port::CMD_CR | port::CMD_FR | port::CMD_CLO);
                if value & port::CMD_ST != 0 {
                    cmd |= port::CMD_CR;
                } else {
                    self.set(base + port::CI, 0);
                }
                if value & port::CMD_FRE != 0 {
                    cmd |= port::CMD_FR;
                }
                self.set(offset, cmd);
            }
            port::CI => {
                assert_ne!(
                    self.get(base + port::CMD) & port::CMD_ST,
                    0,
                    "issued on a started port"
                );
                self.set(offset, value);
                self.execute(number);
            }
            _ => self.set(offset, value),
        }
    }

    fn now_us(&self) -> u64 {
        let now = self.clock.get() + 100;
        self.clock.set(now);
        now
    }
}

fn probe(devices: Vec<(u8, FakeDevice)>) -> (Rc<FakeHba>, Vec<AhciDevice>) {
    let fake = FakeHba::new(devices);
    let found = probe_hba(fake.clone(), Bdf::new(0, 0x1f, 2), 32);
    (fake, found)
}

#[test]
fn probe_finds_disks_and_cdroms_on_ports_with_devices() {
    let (fake, found) = probe(vec![
        (0, FakeDevice::ata(512, 1000)),
        (1, FakeDevice::cdrom(Some(50))),
        (3, FakeDevice::cdrom(None)),
    ]);
    assert_eq!(found.len(), 3);
    let (disk, cd, empty) = (&found[0], &found[1], &found[2]);
    assert_eq!((disk.port_number(), disk.is_cdrom()), (0, false));
    assert_eq!(
        (disk.block_size(), disk.num_blocks(), disk.read_only()),
        (512, 1000, false)
    );
    assert!(!disk.removable() && disk.media_present());
    assert_eq!(disk.model, "FAKE DEVICE 1");
    assert_eq!((cd.port_number(), cd.is_cdrom()), (1, true));
    assert_eq!((cd.block_size(), cd.num_blocks()), (2048, 50));
    assert!(cd.removable() && cd.media_present() && cd.read_only());
    assert_eq!(empty.port_number(), 3);
    assert!(empty.removable() && !empty.media_present());
    assert_eq!(empty.num_blocks(), 0);
    // AHCI mode on, interrupts off; every port running with FIS receive.
    assert_ne!(fake.get(hba::GHC) & hba::GHC_AE, 0);
    for number in [0, 1, 3] {
        let cmd = fake.get(FakeHba::port_base(number) + port::CMD);
        assert_eq!(
            cmd & (port::CMD_ST | port::CMD_FRE),
            port::CMD_ST | port::CMD_FRE
        );
    }
    // The port without a device (2) was left alone.
    assert_eq!(fake.get(FakeHba::port_base(2) + port::CMD), 0);
}

#[test]
fn large_reads_and_writes_use_few_commands_with_prd_tables() {
    let sectors = 100_000;
    let (fake, found) = probe(vec![(0, FakeDevice::ata(512, sectors))]);
    let disk = &found[0];
    let expected = match &fake.devices.borrow()[&0].media {
        Media::Ata { data, .. } => data.clone(),
        _ => unreachable!(),
    };
    fake.log.borrow_mut().commands.clear();
    // 40 MiB: one command of 65535 sectors (8 PRDs) and one of the rest.
    let mut buf = vec![0u8; 80_000 * 512];
    disk.read_blocks(7, &mut buf).unwrap();
    assert!(buf == expected[7 * 512..80_007 * 512]);
    let commands = fake.log.borrow().commands.clone();
    assert_eq!(
        commands,
        [
            (command::READ_DMA_EXT, 0, 8, 65535 * 512),
            (command::READ_DMA_EXT, 0, 2, 14465 * 512)
        ]
    );

    fake.log.borrow_mut().commands.clear();
    let pattern: Vec<u8> = (0..64 * 512).map(|i| (i % 13) as u8).collect();
    disk.write_blocks(500, &pattern).unwrap();
    disk.flush().unwrap();
    let mut back = vec![0u8; pattern.len()];
    disk.read_blocks(500, &mut back).unwrap();
    assert_eq!(back, pattern);
    let ops: Vec<u8> = fake.log.borrow().commands.iter().map(|c| c.0).collect();
    assert_eq!(ops[..2], [command::WRITE_DMA_EXT, command::FLUSH_CACHE_EXT]);
    assert_eq!(
        disk.read_blocks(99_999, &mut [0u8; 1024]),
        Err(BlockError::OutOfRange {
            lba: 99_999,
            blocks: 2
        })
    );
}

#[test]
fn odd_buffers_go_through_the_bounce_buffer() {
    let (fake, found) = probe(vec![(0, FakeDevice::ata(512, 2048))]);
    let disk = &found[0];
    let expected = match &fake.devices.borrow()[&0].media {
        Media::Ata { data, .. } => data.clone(),
        _ => unreachable!(),
    };
    let mut storage = vec![0u8; 600 * 512 + 1];
    let odd = &mut storage[1..];
    disk.read_blocks(3, odd).unwrap();
    assert!(odd[..] == expected[3 * 512..603 * 512]);
    // 300 KiB in bounce-sized (256 KiB) commands.
    let log = fake.log.borrow();
    let last: Vec<usize> = log.commands.iter().rev().take(2).map(|c| c.3).collect();
    assert_eq!(last, [300 * 1024 - 256 * 1024, 256 * 1024]);
}

#[test]
fn four_k_sectors_come_from_identify_words_117_118() {
    let (_, found) = probe(vec![(0, FakeDevice::ata(4096, 256))]);
    assert_eq!((found[0].block_size(), found[0].num_blocks()), (4096, 256));
    let mut buf = vec![0u8; 3 * 4096];
    found[0].read_blocks(10, &mut buf).unwrap();
}

#[test]
fn device_errors_carry_the_status_and_the_port_recovers() {
    let (fake, found) = probe(vec![(0, FakeDevice::ata(512, 4096))]);
    fake.device(0, |d| d.bad_block = Some(100));
    let disk = &found[0];
    assert_eq!(
        disk.read_blocks(90, &mut vec![0u8; 20 * 512]),
        Err(BlockError::Device(0x51))
    );
    // Error recovery restarted the port: the next command works.
    disk.read_blocks(0, &mut vec![0u8; 8 * 512]).unwrap();
    assert_eq!(fake.get(port::CI + hba::PORTS), 0);
}

#[test]
fn a_device_that_never_completes_times_out() {
    let (fake, found) = probe(vec![(0, FakeDevice::ata(512, 4096))]);
    fake.device(0, |d| d.hang = true);
    let disk = &found[0];
    assert_eq!(
        disk.read_blocks(0, &mut vec![0u8; 4096 * 2]),
        Err(BlockError::Timeout)
    );
    // The simulated clock moved past the data timeout, not forever.
    assert!(fake.clock.get() > DATA_TIMEOUT_US);
    fake.device(0, |d| d.hang = false);
    disk.read_blocks(0, &mut vec![0u8; 512]).unwrap();
}

#[test]
fn cdrom_reads_2048_byte_blocks_and_refuses_writes() {
    let (fake, found) = probe(vec![(1, FakeDevice::cdrom(Some(400)))]);
    let cd = &found[0];
    let mut buf = vec![0u8; 300 * 2048];
    fake.log.borrow_mut().commands.clear();
    cd.read_blocks(16, &mut buf).unwrap();
    let expected: Vec<u8> = (16 * 2048..316 * 2048)
        .map(|i| (i / 2048 + i % 251) as u8)
        .collect();
    assert!(buf == expected);
    let commands = fake.log.borrow().commands.clone();
    assert_eq!(commands, [(command::PACKET, scsi::READ_10, 1, 300 * 2048)]);
    assert_eq!(cd.write_blocks(0, &buf[..2048]), Err(BlockError::ReadOnly));
    assert_eq!(cd.flush(), Ok(()));
    fake.device(1, |d| d.bad_block = Some(399));
    assert_eq!(
        cd.read_blocks(399, &mut buf[..2048]),
        Err(BlockError::Device(0x51))
    );
}

#[test]
fn stopped_ports_refuse_requests() {
    let (fake, found) = probe(vec![(0, FakeDevice::ata(512, 64))]);
    found[0].stop();
    let cmd = fake.get(FakeHba::port_base(0) + port::CMD);
    assert_eq!(
        cmd & (port::CMD_ST | port::CMD_CR | port::CMD_FRE | port::CMD_FR),
        0
    );
    assert_eq!(
        found[0].read_blocks(0, &mut [0u8; 512]),
        Err(BlockError::Timeout)
    );
}

#[test]
fn ports_beyond_the_abar_or_without_a_link_are_skipped() {
    let fake = FakeHba::new(vec![
        (0, FakeDevice::ata(512, 64)),
        (2, FakeDevice::ata(512, 64)),
    ]);
    // Port 2 lies outside a 2-port ABAR.
    assert_eq!(probe_hba(fake.clone(), Bdf::new(0, 0x1f, 2), 2).len(), 1);
    // A link that never comes up (DET 1) costs a bounded wait.
    let fake = FakeHba::new(vec![(0, FakeDevice::ata(512, 64))]);
    fake.set(FakeHba::port_base(1) + port::SSTS, port::DET_NO_PHY);
    assert_eq!(probe_hba(fake.clone(), Bdf::new(0, 0x1f, 2), 32).len(), 1);
}

#[test]
fn identify_parsing() {
    let device = FakeDevice::ata(4096, 10);
    let page: [u8; 512] = device.identify(false).unwrap().try_into().unwrap();
    let identity = parse_identify(&page).unwrap();
    assert_eq!(
        (identity.sectors, identity.sector_bytes, identity.flush_ext),
        (10, 4096, true)
    );
    assert_eq!(identity.model, "FAKE DEVICE 1");
    let mut no_lba48 = page;
    no_lba48[2 * 86 + 1] &= !(1 << 2);
    assert_eq!(parse_identify(&no_lba48), Err(IdentifyError::NoLba48));
    let mut odd_size = page;
    odd_size[2 * 117] = 0x01;
    assert!(matches!(
        parse_identify(&odd_size),
        Err(IdentifyError::BadSectorSize(_))
    ));
    let mut atapi = [0u8; 512];
    atapi[..2].copy_from_slice(&0x8581u16.to_le_bytes());
    assert_eq!(parse_identify(&atapi), Err(IdentifyError::NotAta));
    let packet = parse_identify_packet(&atapi).unwrap();
    assert_eq!((packet.device_type, packet.cdb_bytes), (5, 16));
    assert!(parse_identify_packet(&page).is_err());
    // Garbage: all ones is not ATA; all zeros has no LBA48.
    assert!(parse_identify(&[0xFF; 512]).is_err());
    assert!(parse_identify(&[0; 512]).is_err());
}

#[test]
fn fis_cdb_and_prd_building() {
    let fis = h2d_fis(command::READ_DMA_EXT, 0, 0x0000_1234_5678_9ABC, 0x0102);
    assert_eq!(
        fis[..16],
        [
            0x27, 0x80, 0x25, 0, 0xBC, 0x9A, 0x78, 0x40, 0x56, 0x34, 0x12, 0, 0x02, 0x01, 0, 0
        ]
    );
    assert_eq!(packet_fis()[..4], [0x27, 0x80, 0xA0, 1]);
    assert_eq!(cdb_read(0x10203, 5)[..9], [0x28, 0, 0, 1, 2, 3, 0, 0, 5]);
    assert_eq!(
        cdb_read(1, 0x12345)[..10],
        [0xA8, 0, 0, 0, 0, 1, 0, 1, 0x23, 0x45]
    );
    assert_eq!(
        prd_entry(0x1_0000_2000, 4 << 20)[8..],
        [0, 0, 0, 0, 0xFF, 0xFF, 0x3F, 0]
    );
    assert_eq!(
        prd_split(0x1000, 9 << 20, 8).unwrap(),
        [
            (0x1000, 4 << 20),
            (0x1000 + (4 << 20), 4 << 20),
            (0x1000 + (8 << 20), 1 << 20)
        ]
    );
    assert_eq!(prd_split(0x1001, 512, 8), None, "odd address");
    assert_eq!(prd_split(0x1000, 511, 8), None, "odd length");
    assert_eq!(prd_split(0x1000, 33 << 20, 8), None, "more than 8 entries");
    assert_eq!(prd_split(u64::MAX - 511, 1024, 8), None, "wraps");
    assert_eq!(prd_split(0x1000, 0, 8), None);
}

#[test]
fn read_capacity_and_sense_parsing() {
    assert_eq!(
        parse_read_capacity(&[0, 0, 0, 99, 0, 0, 8, 0]),
        Some((100, 2048))
    );
    assert_eq!(parse_read_capacity(&[0, 0, 0, 99, 0, 0, 8]), None);
    assert_eq!(parse_read_capacity(&[0xFF; 8]), None);
    assert_eq!(parse_read_capacity(&[0, 0, 0, 1, 0, 0, 0, 0]), None);
    assert_eq!(parse_read_capacity(&[0, 0, 0, 1, 0, 0, 3, 0]), None);
    let mut sense = [0u8; 18];
    sense[0] = 0xF0;
    sense[2] = 0x22;
    sense[12] = 0x3A;
    assert_eq!(parse_sense(&sense), Some((2, 0x3A)));
    assert_eq!(parse_sense(&sense[..12]), None);
    assert_eq!(parse_sense(&[0x72; 18]), None, "descriptor format");
}
