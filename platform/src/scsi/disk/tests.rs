//! Discovery and transfers against a fake controller whose units answer
//! from tables, garbage included.

use super::*;
use crate::scsi::{self, op};
use alloc::collections::BTreeMap;
use alloc::vec;
use core::cell::RefCell;

/// One unit of the fake controller.
#[derive(Clone, Default)]
struct FakeUnit {
    inquiry: Vec<u8>,
    /// READ CAPACITY(16) answer; None: the command fails.
    capacity16: Option<Vec<u8>>,
    capacity10: Option<Vec<u8>>,
    /// TEST UNIT READY outcomes in turn (then Good).
    tur: Vec<Outcome>,
    /// The medium, in blocks of the capacity's size.
    medium: Vec<u8>,
    block: usize,
}

#[derive(Default)]
struct Fake {
    units: BTreeMap<(u16, u16), RefCell<FakeUnit>>,
    /// REPORT LUNS answers per target; None: the command fails.
    luns: BTreeMap<u16, Option<Vec<u8>>>,
    /// (opcode, lba, bytes) of every READ/WRITE.
    transfers: RefCell<Vec<(u8, u64, usize)>>,
}

const BAD_TARGET: u8 = 3;

fn be_u32(bytes: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes(bytes.try_into().unwrap()))
}

impl ScsiTransport for Fake {
    fn command(&self, target: u16, lun: u16, cdb: &Cdb, data: Data) -> Result<Outcome, BlockError> {
        if cdb[0] == op::REPORT_LUNS {
            return Ok(match self.luns.get(&target) {
                None => Outcome::Transport(BAD_TARGET),
                Some(None) => Outcome::Failed {
                    status: 2,
                    sense: None,
                },
                Some(Some(answer)) => {
                    if let Data::In(buf) = data {
                        let n = buf.len().min(answer.len());
                        buf[..n].copy_from_slice(&answer[..n]);
                    }
                    Outcome::Good
                }
            });
        }
        let Some(unit) = self.units.get(&(target, lun)) else {
            return Ok(Outcome::Transport(BAD_TARGET));
        };
        let mut unit = unit.borrow_mut();
        let answer = |data: Data, answer: &[u8]| {
            if let Data::In(buf) = data {
                let n = buf.len().min(answer.len());
                buf[..n].copy_from_slice(&answer[..n]);
            }
            Outcome::Good
        };
        let failed = Outcome::Failed {
            status: 2,
            sense: None,
        };
        Ok(match cdb[0] {
            op::INQUIRY => answer(data, &unit.inquiry.clone()),
            op::TEST_UNIT_READY => {
                if unit.tur.is_empty() {
                    Outcome::Good
                } else {
                    unit.tur.remove(0)
                }
            }
            op::SERVICE_ACTION_IN_16 => match unit.capacity16.clone() {
                Some(c) => answer(data, &c),
                None => failed,
            },
            op::READ_CAPACITY_10 => match unit.capacity10.clone() {
                Some(c) => answer(data, &c),
                None => failed,
            },
            op::READ_10 | op::READ_16 | op::WRITE_10 | op::WRITE_16 => {
                let (lba, blocks) = if cdb[0] == op::READ_10 || cdb[0] == op::WRITE_10 {
                    (
                        be_u32(&cdb[2..6]),
                        u64::from(u16::from_be_bytes([cdb[7], cdb[8]])),
                    )
                } else {
                    (
                        u64::from_be_bytes(cdb[2..10].try_into().unwrap()),
                        be_u32(&cdb[10..14]),
                    )
                };
                let at = lba as usize * unit.block;
                let len = blocks as usize * unit.block;
                self.transfers.borrow_mut().push((cdb[0], lba, len));
                match data {
                    Data::In(buf) => {
                        assert_eq!(buf.len(), len, "CDB count matches the buffer");
                        buf.copy_from_slice(&unit.medium[at..at + len]);
                    }
                    Data::Out(buf) => {
                        assert_eq!(buf.len(), len);
                        unit.medium[at..at + len].copy_from_slice(buf);
                    }
                    Data::None => panic!("a transfer without data"),
                }
                Outcome::Good
            }
            op::SYNCHRONIZE_CACHE_10 => Outcome::Good,
            _ => failed,
        })
    }
    fn no_such_target(&self, outcome: Outcome) -> bool {
        outcome == Outcome::Transport(BAD_TARGET)
    }
    fn max_target(&self) -> u16 {
        7
    }
    fn reset(&self) {}
    fn bdf(&self) -> Bdf {
        Bdf::new(0, 3, 0)
    }
}

fn capacity16(blocks: u64, size: u32) -> Vec<u8> {
    let mut data = vec![0u8; 32];
    data[..8].copy_from_slice(&(blocks - 1).to_be_bytes());
    data[8..12].copy_from_slice(&size.to_be_bytes());
    data
}

fn disk_unit(blocks: usize, block: usize) -> FakeUnit {
    FakeUnit {
        inquiry: vec![scsi::TYPE_DISK, 0],
        capacity16: Some(capacity16(blocks as u64, block as u32)),
        medium: (0..blocks * block).map(|i| (i / 7) as u8).collect(),
        block,
        ..Default::default()
    }
}

fn lun0() -> Option<Vec<u8>> {
    let mut answer = vec![0u8; 16];
    answer[3] = 8;
    Some(answer)
}

fn probe(fake: Fake) -> (Rc<dyn ScsiTransport>, Vec<ScsiDisk>) {
    let controller: Rc<dyn ScsiTransport> = Rc::new(fake);
    let disks = probe_units(&controller);
    (controller, disks)
}

#[test]
fn disks_and_cd_roms_are_found_and_garbage_is_skipped() {
    let mut fake = Fake::default();
    fake.units.insert((0, 0), RefCell::new(disk_unit(64, 512)));
    fake.luns.insert(0, lun0());
    // A CD-ROM that reports UNIT ATTENTION twice, then READ CAPACITY(10) only.
    let attention = Outcome::Failed {
        status: scsi::STATUS_CHECK_CONDITION,
        sense: Some(Sense {
            key: scsi::SENSE_UNIT_ATTENTION,
            asc: 0x29,
            ascq: 0,
        }),
    };
    fake.units.insert(
        (1, 0),
        RefCell::new(FakeUnit {
            inquiry: vec![scsi::TYPE_CDROM, 0x80],
            capacity10: Some(vec![0, 0, 0, 99, 0, 0, 8, 0]),
            tur: vec![attention, attention],
            medium: vec![0; 100 * 2048],
            block: 2048,
            ..Default::default()
        }),
    );
    fake.luns.insert(1, None);
    // Garbage INQUIRY answers: all ones (qualifier 7: nothing there), one
    // byte of an unknown device type, a tape drive; an empty CD drive; a
    // disk with 520-byte blocks; a disk whose capacity is all ones.
    for (target, inquiry) in [(2u16, vec![0xFF; 36]), (3, vec![0x1F]), (4, vec![0x01, 0])] {
        fake.units.insert(
            (target, 0),
            RefCell::new(FakeUnit {
                inquiry,
                ..disk_unit(8, 512)
            }),
        );
        fake.luns.insert(target, lun0());
    }
    let no_medium = Outcome::Failed {
        status: scsi::STATUS_CHECK_CONDITION,
        sense: Some(Sense {
            key: scsi::SENSE_NOT_READY,
            asc: scsi::ASC_NO_MEDIUM,
            ascq: 0,
        }),
    };
    fake.units.insert(
        (5, 0),
        RefCell::new(FakeUnit {
            inquiry: vec![scsi::TYPE_CDROM, 0x80],
            tur: vec![no_medium; 8],
            ..Default::default()
        }),
    );
    fake.luns.insert(5, lun0());
    fake.units.insert(
        (6, 0),
        RefCell::new(FakeUnit {
            capacity16: Some(capacity16(8, 520)),
            ..disk_unit(8, 512)
        }),
    );
    fake.luns.insert(6, lun0());
    fake.units.insert(
        (7, 0),
        RefCell::new(FakeUnit {
            capacity16: Some(vec![0xFF; 32]),
            ..disk_unit(8, 512)
        }),
    );
    // A REPORT LUNS answer claiming 4 GiB of LUN entries.
    let mut huge = vec![0u8; 16];
    huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    fake.luns.insert(7, Some(huge));

    let (_, disks) = probe(fake);
    let found: Vec<(u16, u16, bool, u64, u32)> = disks
        .iter()
        .map(|d| (d.target, d.lun, d.cdrom, d.num_blocks(), d.block_size()))
        .collect();
    assert_eq!(found, [(0, 0, false, 64, 512), (1, 0, true, 100, 2048)]);
    assert!(disks[1].read_only() && disks[1].removable());
    assert!(!disks[0].read_only() && !disks[0].removable());
}

#[test]
fn transfers_are_whole_blocks_in_commands_of_at_most_1_mib() {
    let mut fake = Fake::default();
    let blocks = 6 * 1024; // 3 MiB of 512-byte blocks
    fake.units
        .insert((0, 0), RefCell::new(disk_unit(blocks, 512)));
    fake.luns.insert(0, lun0());
    let fake = Rc::new(fake);
    let controller: Rc<dyn ScsiTransport> = fake.clone();
    let disks = probe_units(&controller);
    let disk = &disks[0];

    let mut buf = vec![0u8; 2 * MAX_COMMAND_BYTES + 4096];
    disk.read_blocks(8, &mut buf).unwrap();
    let expected: Vec<u8> = (8 * 512..8 * 512 + buf.len())
        .map(|i| (i / 7) as u8)
        .collect();
    assert!(buf == expected);
    assert_eq!(
        *fake.transfers.borrow(),
        [
            (op::READ_10, 8, MAX_COMMAND_BYTES),
            (op::READ_10, 8 + 2048, MAX_COMMAND_BYTES),
            (op::READ_10, 8 + 4096, 4096)
        ]
    );
    disk.write_blocks(1, &[0xAB; 1024]).unwrap();
    let mut back = [0u8; 1024];
    disk.read_blocks(1, &mut back).unwrap();
    assert!(back.iter().all(|&b| b == 0xAB));
    disk.flush().unwrap();
    assert_eq!(
        disk.read_blocks(blocks as u64 - 1, &mut back),
        Err(BlockError::OutOfRange {
            lba: blocks as u64 - 1,
            blocks: 2
        })
    );
}
