//! The driver against a simulated controller: registers, queues in the
//! driver's memory, PRPs walked as a controller walks them. The model runs
//! commands when their doorbell is written, so every test is synchronous.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::command::{Command, admin, cns, io};
use super::regs::offset;
use super::*;
use crate::block::{BlockDevice, BlockError};
use crate::pci::Bdf;

fn read<T: Copy>(addr: u64) -> T {
    // SAFETY: the model only reads queue memory and buffers the driver
    // handed over in a command that is being processed, all alive.
    unsafe { core::ptr::read_volatile(addr as *const T) }
}

fn write<T: Copy>(addr: u64, value: T) {
    // SAFETY: as for `read`.
    unsafe { core::ptr::write_volatile(addr as *mut T, value) }
}

#[derive(Clone, Copy, Default)]
struct Queue {
    addr: u64,
    entries: u16,
    /// Submission head or completion tail.
    index: u16,
    phase: bool,
    cqid: u16,
    /// Completion head, as the driver last reported it.
    head: u16,
}

#[derive(Clone)]
struct FakeNamespace {
    lbads: u8,
    metadata: u16,
    data: Vec<u8>,
}

#[derive(Default)]
struct Model {
    cap: u64,
    vs: u32,
    mdts: u8,
    cc: u32,
    csts: u32,
    aqa: u32,
    asq: u64,
    acq: u64,
    sqs: HashMap<u16, Queue>,
    cqs: HashMap<u16, Queue>,
    namespaces: Vec<(u32, FakeNamespace)>,
    never_ready: bool,
    hang: bool,
    hang_admin: bool,
    failing_lba: Option<u64>,
    /// Largest I/O transfer and PRP list length seen.
    largest_transfer: usize,
    longest_list: usize,
    io_commands: usize,
    shutdown_requested: bool,
}

struct Fake {
    model: RefCell<Model>,
    clock: Cell<u64>,
}

impl Fake {
    /// QEMU-like: MQES 2047, TO 1 (500 ms), DSTRD 0, NVM command set.
    fn new(namespaces: Vec<(u32, FakeNamespace)>) -> Rc<Fake> {
        Rc::new(Fake {
            model: RefCell::new(Model {
                cap: 0x0000_0020_0101_07FF,
                vs: 0x0001_0400,
                namespaces,
                ..Model::default()
            }),
            clock: Cell::new(0),
        })
    }

    fn with(self: &Rc<Self>, change: impl FnOnce(&mut Model)) -> Rc<Self> {
        change(&mut self.model.borrow_mut());
        self.clone()
    }
}

fn namespace(blocks: usize, lbads: u8) -> FakeNamespace {
    let bytes = blocks << lbads;
    FakeNamespace {
        lbads,
        metadata: 0,
        data: (0..bytes).map(|i| (i * 7 % 251) as u8).collect(),
    }
}

impl Transport for Rc<Fake> {
    fn read32(&self, at: u32) -> u32 {
        let m = self.model.borrow();
        match at {
            offset::CAP => m.cap as u32,
            0x04 => (m.cap >> 32) as u32,
            offset::VS => m.vs,
            offset::CC => m.cc,
            offset::CSTS => m.csts,
            _ => 0,
        }
    }

    fn write32(&self, at: u32, value: u32) {
        let mut m = self.model.borrow_mut();
        match at {
            offset::CC => m.set_cc(value),
            offset::AQA => m.aqa = value,
            offset::ASQ => m.asq = (m.asq & !0xFFFF_FFFF) | u64::from(value),
            0x2C => m.asq = (m.asq & 0xFFFF_FFFF) | u64::from(value) << 32,
            offset::ACQ => m.acq = (m.acq & !0xFFFF_FFFF) | u64::from(value),
            0x34 => m.acq = (m.acq & 0xFFFF_FFFF) | u64::from(value) << 32,
            at if at >= offset::DOORBELLS => {
                let index = (at - offset::DOORBELLS) / 4;
                let qid = (index / 2) as u16;
                if index.is_multiple_of(2) {
                    m.run_queue(qid, value as u16);
                } else {
                    let cq = m.cqs.get_mut(&qid).expect("doorbell of a missing queue");
                    assert!(
                        value < u32::from(cq.entries),
                        "head {value} beyond queue {qid}"
                    );
                    cq.head = value as u16;
                }
            }
            _ => {}
        }
    }

    fn register_bytes(&self) -> u64 {
        0x4000
    }

    /// Each look at the clock takes a millisecond, so timeouts expire fast.
    fn now_ns(&self) -> u64 {
        self.clock.set(self.clock.get() + 1_000_000);
        self.clock.get()
    }
}

impl Model {
    fn set_cc(&mut self, value: u32) {
        self.cc = value;
        if value & 1 == 0 {
            self.csts = 0;
            self.sqs.clear();
            self.cqs.clear();
            return;
        }
        if (value >> 14) & 3 == 1 {
            self.shutdown_requested = true;
            self.csts |= 2 << 2;
            return;
        }
        if self.csts & 1 == 0 && !self.never_ready {
            let entries = |shift: u32| ((self.aqa >> shift) & 0xFFF) as u16 + 1;
            let (sq, cq) = (entries(0), entries(16));
            self.sqs.insert(
                0,
                Queue {
                    addr: self.asq,
                    entries: sq,
                    ..Queue::default()
                },
            );
            self.cqs.insert(
                0,
                Queue {
                    addr: self.acq,
                    entries: cq,
                    phase: true,
                    ..Queue::default()
                },
            );
            self.csts = 1;
        }
    }

    /// Processes submission queue `qid` up to the new tail.
    fn run_queue(&mut self, qid: u16, tail: u16) {
        let Some(mut sq) = self.sqs.get(&qid).copied() else {
            panic!("doorbell of missing queue {qid}");
        };
        assert!(tail < sq.entries, "tail {tail} beyond queue {qid}");
        while sq.index != tail {
            let at = sq.addr + 64 * u64::from(sq.index);
            let mut dwords = [0u32; 16];
            for (i, dword) in dwords.iter_mut().enumerate() {
                *dword = read(at + 4 * i as u64);
            }
            let command = Command(dwords);
            sq.index = (sq.index + 1) % sq.entries;
            let status = if qid == 0 {
                self.admin(&command)
            } else {
                self.io(&command)
            };
            if let Some(status) = status {
                self.complete(sq.cqid, qid, sq.index, command.cid(), status);
            }
        }
        self.sqs.insert(qid, sq);
    }

    fn complete(&mut self, cqid: u16, sqid: u16, sq_head: u16, cid: u16, status: u16) {
        let cq = self.cqs.get_mut(&cqid).expect("completion queue");
        // §4.1.1: full is one entry short of the head; posting then would
        // overwrite an entry the driver has not consumed.
        assert_ne!(
            (cq.index + 1) % cq.entries,
            cq.head,
            "completion queue {cqid} overflow"
        );
        let at = cq.addr + 16 * u64::from(cq.index);
        write(at, 0u32);
        write(at + 8, u32::from(sq_head) | u32::from(sqid) << 16);
        write(
            at + 12,
            u32::from(cid) | u32::from(cq.phase) << 16 | u32::from(status) << 17,
        );
        cq.index += 1;
        if cq.index == cq.entries {
            cq.index = 0;
            cq.phase = !cq.phase;
        }
    }

    fn admin(&mut self, command: &Command) -> Option<u16> {
        if self.hang_admin {
            return None;
        }
        let cdw10 = command.0[10];
        let size = |cdw10: u32| (cdw10 >> 16) as u16 + 1;
        match command.opcode() {
            admin::IDENTIFY => {
                let page = command.prp1();
                assert!(page.is_multiple_of(4096));
                let mut data = vec![0u8; 4096];
                match cdw10 {
                    cns::CONTROLLER => {
                        data[4..9].copy_from_slice(b"vmfw0");
                        data[24..28].copy_from_slice(b"Fake");
                        data[77] = self.mdts;
                        let nn = self.namespaces.iter().map(|n| n.0).max().unwrap_or(0);
                        data[516..520].copy_from_slice(&nn.to_le_bytes());
                        data[525] = 1;
                    }
                    cns::ACTIVE_NAMESPACES => {
                        for (i, (nsid, _)) in self.namespaces.iter().take(1024).enumerate() {
                            data[4 * i..4 * i + 4].copy_from_slice(&nsid.to_le_bytes());
                        }
                    }
                    cns::NAMESPACE => {
                        if let Some((_, ns)) = self.namespaces.iter().find(|n| n.0 == command.0[1])
                        {
                            let blocks = (ns.data.len() >> ns.lbads) as u64;
                            data[..8].copy_from_slice(&blocks.to_le_bytes());
                            data[120..128].copy_from_slice(&[
                                0x52,
                                0x54,
                                0,
                                0,
                                0,
                                0,
                                0,
                                command.0[1] as u8,
                            ]);
                            let format = u32::from(ns.lbads) << 16 | u32::from(ns.metadata);
                            data[128..132].copy_from_slice(&format.to_le_bytes());
                        }
                    }
                    _ => return Some(0x02), // Invalid Field in Command
                }
                for (i, byte) in data.iter().enumerate() {
                    write(page + i as u64, *byte);
                }
            }
            admin::CREATE_IO_CQ => {
                let queue = Queue {
                    addr: command.prp1(),
                    entries: size(cdw10),
                    phase: true,
                    ..Queue::default()
                };
                self.cqs.insert(cdw10 as u16, queue);
            }
            admin::CREATE_IO_SQ => {
                let cqid = (command.0[11] >> 16) as u16;
                assert!(self.cqs.contains_key(&cqid));
                let queue = Queue {
                    addr: command.prp1(),
                    entries: size(cdw10),
                    cqid,
                    ..Queue::default()
                };
                self.sqs.insert(cdw10 as u16, queue);
            }
            opcode => panic!("unexpected admin opcode {opcode:#x}"),
        }
        Some(0)
    }

    /// The pages of a transfer, walked from PRP1/PRP2 as §4.1.1 defines.
    fn segments(&mut self, command: &Command, bytes: usize) -> Vec<(u64, usize)> {
        let prp1 = command.prp1();
        assert!(prp1.is_multiple_of(4));
        let first = (4096 - (prp1 % 4096) as usize).min(bytes);
        let mut segments = vec![(prp1, first)];
        let rest = bytes - first;
        let pages = rest.div_ceil(4096);
        let entries: Vec<u64> = match pages {
            0 => vec![],
            1 => vec![command.prp2()],
            _ => {
                self.longest_list = self.longest_list.max(pages);
                assert!(command.prp2().is_multiple_of(8));
                (0..pages)
                    .map(|i| read(command.prp2() + 8 * i as u64))
                    .collect()
            }
        };
        for (i, page) in entries.into_iter().enumerate() {
            assert!(page.is_multiple_of(4096), "PRP entry {page:#x} not a page");
            segments.push((page, (rest - 4096 * i).min(4096)));
        }
        segments
    }

    fn io(&mut self, command: &Command) -> Option<u16> {
        if self.hang {
            return None;
        }
        self.io_commands += 1;
        let nsid = command.0[1];
        let index = self.namespaces.iter().position(|n| n.0 == nsid)?;
        if command.opcode() == io::FLUSH {
            return Some(0);
        }
        let lba = u64::from(command.0[10]) | u64::from(command.0[11]) << 32;
        let blocks = (command.0[12] & 0xFFFF) as usize + 1;
        let lbads = self.namespaces[index].1.lbads;
        let bytes = blocks << lbads;
        self.largest_transfer = self.largest_transfer.max(bytes);
        let start = (lba as usize) << lbads;
        if start + bytes > self.namespaces[index].1.data.len() {
            return Some(0x80); // LBA Out of Range
        }
        if self
            .failing_lba
            .is_some_and(|bad| (lba..lba + blocks as u64).contains(&bad))
        {
            return Some(2 << 8 | 0x81); // Unrecovered Read Error
        }
        let mut position = start;
        for (addr, len) in self.segments(command, bytes) {
            let disk = &mut self.namespaces[index].1.data[position..position + len];
            // SAFETY: the driver handed `len` bytes at `addr` to this command.
            let buffer = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len) };
            match command.opcode() {
                io::READ => buffer.copy_from_slice(disk),
                io::WRITE => disk.copy_from_slice(buffer),
                opcode => panic!("unexpected I/O opcode {opcode:#x}"),
            }
            position += len;
        }
        Some(0)
    }
}

const BDF: Bdf = Bdf::new(0, 3, 0);

fn start(fake: &Rc<Fake>) -> Vec<Namespace<Rc<Fake>>> {
    let (controller, found) = Controller::start(fake.clone(), BDF).unwrap();
    found
        .into_iter()
        .map(|info| Namespace::new(controller.clone(), info))
        .collect()
}

fn contents(fake: &Fake, nsid: u32) -> Vec<u8> {
    let model = fake.model.borrow();
    model
        .namespaces
        .iter()
        .find(|n| n.0 == nsid)
        .unwrap()
        .1
        .data
        .clone()
}

#[test]
fn brings_up_the_controller_and_finds_usable_namespaces() {
    let mut with_metadata = namespace(64, 9);
    with_metadata.metadata = 8;
    let fake = Fake::new(vec![
        (1, namespace(4096, 9)),
        (2, namespace(256, 12)),
        (3, namespace(0, 9)),
        (5, with_metadata),
    ]);
    let namespaces = start(&fake);
    let found: Vec<_> = namespaces
        .iter()
        .map(|ns| (ns.nsid(), ns.block_size(), ns.num_blocks()))
        .collect();
    assert_eq!(found, [(1, 512, 4096), (2, 4096, 256)]);
    assert_eq!(namespaces[1].eui64(), [0x52, 0x54, 0, 0, 0, 0, 0, 2]);
    let controller = namespaces[0].controller();
    assert_eq!(controller.identity().serial, "vmfw0");
    assert_eq!(controller.max_transfer(), 2 << 20);
    let model = fake.model.borrow();
    // NVM command set, 4 KiB pages, 64/16-byte entries, enabled.
    assert_eq!(model.cc, 0x0046_0001);
    assert_eq!(model.aqa, 0x0007_0007);
    assert_eq!(model.sqs[&1].entries, 32);
}

#[test]
fn large_transfers_use_prp_lists_up_to_mdts() {
    let fake = Fake::new(vec![(1, namespace(16384, 9))]).with(|m| m.mdts = 7);
    let namespaces = start(&fake);
    let ns = &namespaces[0];
    assert_eq!(ns.controller().max_transfer(), 512 << 10);
    // 3 MiB + 2 blocks from block 5: seven commands, in flight together.
    let mut buffer = vec![0u8; (3 << 20) + 1024];
    ns.read_blocks(5, &mut buffer).unwrap();
    assert_eq!(
        buffer[..],
        contents(&fake, 1)[5 * 512..5 * 512 + buffer.len()]
    );
    {
        let model = fake.model.borrow();
        assert_eq!(model.largest_transfer, 512 << 10);
        assert!(model.longest_list >= 127, "lists of {}", model.longest_list);
    }

    let pattern: Vec<u8> = (0..600 * 512).map(|i| (i % 13) as u8).collect();
    ns.write_blocks(1000, &pattern).unwrap();
    ns.flush().unwrap();
    assert_eq!(contents(&fake, 1)[1000 * 512..1600 * 512], pattern[..]);
    let mut back = vec![0u8; pattern.len()];
    ns.read_blocks(1000, &mut back).unwrap();
    assert_eq!(back, pattern);
    assert_eq!(
        ns.read_blocks(16380, &mut [0u8; 8 * 512]),
        Err(BlockError::OutOfRange {
            lba: 16380,
            blocks: 8
        })
    );
}

#[test]
fn two_mib_commands_fill_one_list_page() {
    let fake = Fake::new(vec![(1, namespace(2048, 12))]);
    let ns = &start(&fake)[0];
    // A buffer starting 4 bytes into a page: 2 MiB spans 513 pages.
    let mut storage = vec![0u32; (4 << 20) / 4 + 2048];
    let bytes: &mut [u8] = bytemuck_bytes(&mut storage);
    let skip = (4096 - (bytes.as_ptr() as usize % 4096)) % 4096 + 4;
    let buffer = &mut bytes[skip..skip + (4 << 20)];
    ns.read_blocks(3, buffer).unwrap();
    assert_eq!(
        buffer[..],
        contents(&fake, 1)[3 * 4096..3 * 4096 + (4 << 20)]
    );
    let model = fake.model.borrow();
    assert_eq!(model.largest_transfer, 2 << 20);
    assert_eq!(model.longest_list, 512);
}

/// The bytes of a `u32` vector, so tests can place buffers at chosen
/// alignments.
fn bytemuck_bytes(words: &mut [u32]) -> &mut [u8] {
    // SAFETY: any bytes are valid u8s; the slice covers exactly `words`.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 4) }
}

#[test]
fn unaligned_buffers_go_through_a_bounce_buffer() {
    let fake = Fake::new(vec![(1, namespace(512, 9))]);
    let ns = &start(&fake)[0];
    let mut storage = vec![0u32; 2048];
    let bytes = bytemuck_bytes(&mut storage);
    let odd = &mut bytes[1..1 + 8 * 512];
    ns.read_blocks(7, odd).unwrap();
    assert_eq!(odd[..], contents(&fake, 1)[7 * 512..15 * 512]);
    let pattern = odd.iter().map(|b| b ^ 0x5A).collect::<Vec<_>>();
    odd.copy_from_slice(&pattern);
    ns.write_blocks(100, odd).unwrap();
    assert_eq!(contents(&fake, 1)[100 * 512..108 * 512], pattern[..]);
}

#[test]
fn queues_wrap_and_the_phase_flips() {
    // MQES 3: four-entry queues, three commands in flight at most.
    let fake = Fake::new(vec![(1, namespace(1024, 9))]).with(|m| m.cap = (m.cap & !0xFFFF) | 3);
    let ns = &start(&fake)[0];
    assert_eq!(fake.model.borrow().sqs[&1].entries, 4);
    // Scattered reads (no read-ahead) and one long read of many commands.
    for round in 0..40u64 {
        let lba = (round * 37) % 1000;
        let mut block = [0u8; 1024];
        ns.read_blocks(lba, &mut block).unwrap();
        let at = lba as usize * 512;
        assert_eq!(
            block[..],
            contents(&fake, 1)[at..at + 1024],
            "round {round}"
        );
    }
    let mut all = vec![0u8; 1024 * 512];
    ns.read_blocks(0, &mut all).unwrap();
    assert_eq!(all, contents(&fake, 1));
    assert!(fake.model.borrow().io_commands > 40);
}

#[test]
fn device_errors_carry_the_status_and_the_queue_recovers() {
    let fake = Fake::new(vec![(1, namespace(1024, 9))]).with(|m| {
        m.mdts = 1;
        m.failing_lba = Some(100);
    });
    let ns = &start(&fake)[0];
    let mut buffer = vec![0u8; 256 * 512];
    assert_eq!(
        ns.read_blocks(0, &mut buffer),
        Err(BlockError::DeviceStatus(0x0281))
    );
    ns.read_blocks(200, &mut buffer[..64 * 512]).unwrap();
    assert_eq!(buffer[..64 * 512], contents(&fake, 1)[200 * 512..264 * 512]);
}

#[test]
fn a_hung_controller_times_out_and_is_disabled() {
    let fake = Fake::new(vec![(1, namespace(64, 9))]);
    let ns = &start(&fake)[0];
    fake.model.borrow_mut().hang = true;
    assert_eq!(ns.read_blocks(0, &mut [0u8; 512]), Err(BlockError::Timeout));
    assert_eq!(fake.model.borrow().cc & 1, 0, "controller disabled");
    fake.model.borrow_mut().hang = false;
    assert_eq!(ns.read_blocks(0, &mut [0u8; 512]), Err(BlockError::Timeout));
}

#[test]
fn shutdown_notifies_then_disables() {
    let fake = Fake::new(vec![(1, namespace(64, 9)), (2, namespace(64, 9))]);
    let namespaces = start(&fake);
    namespaces[0].shutdown();
    namespaces[1].shutdown();
    let model = fake.model.borrow();
    assert!(model.shutdown_requested);
    assert_eq!(model.cc, 0);
    drop(model);
    assert_eq!(
        namespaces[1].read_blocks(0, &mut [0u8; 512]),
        Err(BlockError::Timeout)
    );
}

#[test]
fn too_many_namespaces_are_capped() {
    let fake = Fake::new((1..=40).map(|nsid| (nsid, namespace(8, 9))).collect());
    let namespaces = start(&fake);
    assert_eq!(namespaces.len(), MAX_NAMESPACES);
    assert_eq!(namespaces.last().unwrap().nsid(), MAX_NAMESPACES as u32);
}

#[test]
fn unusable_controllers_are_refused_and_left_disabled() {
    let error = |fake: Rc<Fake>| Controller::start(fake, BDF).err().unwrap();
    let gone = Fake::new(vec![]).with(|m| m.cap = u64::MAX);
    assert_eq!(error(gone), NvmeError::Gone);
    let no_nvm = Fake::new(vec![]).with(|m| m.cap &= !(1 << 37));
    assert!(matches!(error(no_nvm), NvmeError::Unsupported(..)));
    // DSTRD 15: queue 1's doorbells 384 KiB into a 16 KiB BAR.
    let far_doorbells = Fake::new(vec![]).with(|m| m.cap |= 0xF << 32);
    assert!(matches!(
        error(far_doorbells),
        NvmeError::Unsupported("doorbells beyond BAR0", _)
    ));
    let big_pages = Fake::new(vec![]).with(|m| m.cap |= 1 << 48);
    assert!(matches!(error(big_pages), NvmeError::Unsupported(..)));
    let never_ready = Fake::new(vec![]).with(|m| m.never_ready = true);
    assert_eq!(error(never_ready.clone()), NvmeError::Timeout("enable"));
    assert_eq!(never_ready.model.borrow().cc, 0, "left disabled");
    let hung = Fake::new(vec![(1, namespace(8, 9))]).with(|m| m.hang_admin = true);
    assert_eq!(error(hung.clone()), NvmeError::Timeout("admin command"));
    assert_eq!(hung.model.borrow().cc, 0, "left disabled");
}

#[test]
fn broadcast_and_repeated_namespace_ids_are_not_disks() {
    let fake = Fake::new(vec![
        (1, namespace(8, 9)),
        (1, namespace(8, 9)),
        (u32::MAX, namespace(8, 9)),
    ]);
    let ids: Vec<u32> = start(&fake).iter().map(|ns| ns.nsid()).collect();
    assert_eq!(ids, [1]);
}
