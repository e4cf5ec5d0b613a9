//! Bringing a controller up (NVM Express Base Specification 2.0 §3.5.1),
//! running admin and I/O commands by polling, and shutting it down before
//! the OS takes over (§3.6.2).

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::command::{Command, cns, io};
use super::identify::{self, ControllerData, NamespaceData};
use super::prp::{self, Second};
use super::queue::QueuePair;
use super::regs::{self, Cap, Csts, offset};
use super::{NvmeError, Transport};
use crate::block::BlockError;
use crate::pci::Bdf;
use crate::virtio::queue::DmaRegion;

/// Admin queue entries: commands run one at a time.
const ADMIN_ENTRIES: u16 = 8;
/// I/O queue entries we ask for; one less are in flight at most.
const IO_ENTRIES: u16 = 32;
/// How long a command may take before the controller is given up on. The
/// spec sets no limit; this is far beyond any virtual or real disk.
const COMMAND_TIMEOUT_MS: u64 = 10_000;
/// Namespaces published per controller; the rest are logged and skipped.
pub const MAX_NAMESPACES: usize = 16;
/// Largest transfer per command: a 2 MiB PRP list's worth, less if MDTS says.
const MAX_TRANSFER: u32 = prp::MAX_TRANSFER;

/// An active namespace the controller reported, usable as a block device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub nsid: u32,
    pub data: NamespaceData,
}

/// One command of a transfer: `bytes` at bus address `data`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Request {
    pub opcode: u8,
    pub nsid: u32,
    pub lba: u64,
    pub blocks: u32,
    pub data: u64,
    pub bytes: u32,
}

/// The I/O queue pair and, per command identifier, its PRP list page.
struct IoState {
    queue: QueuePair,
    prp_lists: DmaRegion,
    busy: Vec<bool>,
}

pub struct Controller<T: Transport> {
    transport: T,
    bdf: Bdf,
    cap: Cap,
    identity: ControllerData,
    /// Bytes per command, a multiple of 4 KiB.
    max_transfer: u32,
    /// Set once the controller is disabled (quiesce or a timeout): every
    /// later command fails without touching it.
    stopped: Cell<bool>,
    admin: RefCell<QueuePair>,
    next_admin_cid: Cell<u16>,
    io: RefCell<IoState>,
}

impl<T: Transport> Controller<T> {
    /// Resets and enables the controller, creates one I/O queue pair and
    /// identifies the active namespaces. Unusable namespaces are logged and
    /// left out; a controller that fails any step is disabled again.
    pub fn start(transport: T, bdf: Bdf) -> Result<(Rc<Self>, Vec<NamespaceInfo>), NvmeError> {
        let cap = Cap(read64(&transport, offset::CAP));
        if cap.0 == u64::MAX {
            return Err(NvmeError::Gone);
        }
        if !cap.supports_nvm_command_set() {
            return Err(NvmeError::Unsupported("no NVM command set", cap.0));
        }
        if cap.min_page_shift() != 12 {
            return Err(NvmeError::Unsupported(
                "minimum page size above 4 KiB",
                cap.0,
            ));
        }
        let stride = cap.doorbell_stride();
        // The last doorbell we ring: queue 1's completion head.
        if u64::from(regs::doorbell(1, true, stride)) + 4 > transport.register_bytes() {
            return Err(NvmeError::Unsupported("doorbells beyond BAR0", cap.0));
        }
        let queue_limit = cap.max_queue_entries().min(u32::from(u16::MAX)) as u16;
        let admin = QueuePair::new(0, ADMIN_ENTRIES.min(queue_limit), stride)?;
        let io_entries = IO_ENTRIES.min(queue_limit);
        let io = QueuePair::new(1, io_entries, stride)?;
        let pages = usize::from(io_entries) * prp::PAGE as usize;
        let prp_lists = DmaRegion::new(pages).map_err(|_| NvmeError::OutOfMemory(pages))?;
        // From here on the controller's drop disables it on every error path.
        let mut controller = Controller {
            transport,
            bdf,
            cap,
            identity: ControllerData {
                serial: String::new(),
                model: String::new(),
                mdts: 0,
                namespaces: 0,
                volatile_write_cache: false,
            },
            max_transfer: MAX_TRANSFER,
            // Until enabled there is nothing to stop.
            stopped: Cell::new(true),
            admin: RefCell::new(admin),
            next_admin_cid: Cell::new(0),
            io: RefCell::new(IoState {
                queue: io,
                prp_lists,
                busy: alloc::vec![false; usize::from(io_entries)],
            }),
        };
        controller.enable()?;
        controller.identify_controller()?;
        controller.create_io_queues()?;
        let namespaces = controller.identify_namespaces()?;
        Ok((Rc::new(controller), namespaces))
    }

    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    pub fn identity(&self) -> &ControllerData {
        &self.identity
    }

    pub fn max_transfer(&self) -> u32 {
        self.max_transfer
    }

    pub fn needs_flush(&self) -> bool {
        self.identity.volatile_write_cache
    }

    /// §3.5.1 steps 1-7: disable, program the admin queue, enable.
    fn enable(&mut self) -> Result<(), NvmeError> {
        self.disable()?;
        let t = &self.transport;
        let admin = self.admin.get_mut();
        t.write32(offset::AQA, regs::aqa(admin.entries()));
        write64(t, offset::ASQ, admin.sq_addr());
        write64(t, offset::ACQ, admin.cq_addr());
        // We poll; keep the pin-based interrupt quiet (§3.1.3.3).
        t.write32(offset::INTMS, u32::MAX);
        t.write32(offset::CC, regs::CC_ENABLED);
        self.stopped.set(false);
        self.wait("enable", self.cap.timeout_ms(), |csts| csts.ready())
    }

    /// CC.EN = 0 and wait for CSTS.RDY = 0 (§3.5.2): the controller stops
    /// all processing, including DMA, and forgets its queues.
    fn disable(&self) -> Result<(), NvmeError> {
        self.stopped.set(true);
        self.transport.write32(offset::CC, 0);
        self.wait("disable", self.cap.timeout_ms(), |csts| !csts.ready())
    }

    /// Polls CSTS until `done`, a fatal status or `timeout_ms`.
    fn wait(
        &self,
        what: &'static str,
        timeout_ms: u64,
        done: impl Fn(Csts) -> bool,
    ) -> Result<(), NvmeError> {
        let deadline = self.deadline(timeout_ms);
        loop {
            let csts = Csts(self.transport.read32(offset::CSTS));
            if done(csts) {
                return Ok(());
            }
            if csts.fatal() && what != "disable" {
                return Err(NvmeError::Fatal(csts.0));
            }
            if self.transport.now_ns() > deadline {
                return Err(NvmeError::Timeout(what));
            }
            core::hint::spin_loop();
        }
    }

    fn deadline(&self, timeout_ms: u64) -> u64 {
        self.transport
            .now_ns()
            .saturating_add(timeout_ms.saturating_mul(1_000_000))
    }

    /// Runs one admin command with an optional 4 KiB data page.
    fn admin_command(&self, command: Command, page: Option<&DmaRegion>) -> Result<(), NvmeError> {
        if self.stopped.get() {
            return Err(NvmeError::Timeout("admin command"));
        }
        let cid = self.next_admin_cid.get();
        self.next_admin_cid.set(cid.wrapping_add(1));
        let command = match page {
            Some(page) => command.with_prps(page.addr(), 0),
            None => command,
        }
        .with_cid(cid);
        let mut queue = self.admin.borrow_mut();
        // SAFETY: the only memory named is `page` (or a queue the command
        // creates, which the controller owns); this function returns once
        // the command completed, or after disabling the controller.
        if !unsafe { queue.submit(&command) } {
            return Err(NvmeError::Timeout("admin queue full"));
        }
        queue.ring(&self.transport);
        let deadline = self.deadline(COMMAND_TIMEOUT_MS);
        loop {
            let polled = queue.poll();
            queue.release(&self.transport);
            match polled {
                Some(done) if done.cid == cid => {
                    return if done.status.is_success() {
                        Ok(())
                    } else {
                        Err(NvmeError::Command {
                            opcode: command.opcode(),
                            status: done.status,
                        })
                    };
                }
                Some(stray) => log::warn!("nvme at {}: stray admin completion {stray:?}", self.bdf),
                None if self.transport.now_ns() > deadline => {
                    drop(queue);
                    self.stop();
                    return Err(NvmeError::Timeout("admin command"));
                }
                None => core::hint::spin_loop(),
            }
        }
    }

    fn identify(&self, cns: u32, nsid: u32, page: &DmaRegion) -> Result<[u8; 4096], NvmeError> {
        self.admin_command(Command::identify(cns, nsid), Some(page))?;
        let mut data = [0u8; 4096];
        for (i, dword) in data.chunks_exact_mut(4).enumerate() {
            dword.copy_from_slice(&page.read::<u32>(4 * i).to_le_bytes());
        }
        Ok(data)
    }

    fn identify_controller(&mut self) -> Result<(), NvmeError> {
        let page = data_page()?;
        let data = self.identify(cns::CONTROLLER, 0, &page)?;
        self.identity = identify::controller(&data);
        // MDTS counts minimum-size (4 KiB) pages as a power of two.
        if self.identity.mdts != 0 {
            let limit = 1u64
                .checked_shl(u32::from(self.identity.mdts))
                .map_or(u64::MAX, |pages| pages.saturating_mul(prp::PAGE));
            self.max_transfer = limit.min(u64::from(MAX_TRANSFER)) as u32;
        }
        Ok(())
    }

    fn create_io_queues(&mut self) -> Result<(), NvmeError> {
        let (qid, entries, cq, sq) = {
            let io = &self.io.get_mut().queue;
            (io.qid(), io.entries(), io.cq_addr(), io.sq_addr())
        };
        self.admin_command(Command::create_io_cq(qid, entries, cq), None)?;
        self.admin_command(Command::create_io_sq(qid, entries, sq, qid), None)
    }

    /// The active namespace list (NVMe 1.1 and later) or, before it, every
    /// ID up to NN; each identified, the unusable ones logged and skipped.
    fn identify_namespaces(&self) -> Result<Vec<NamespaceInfo>, NvmeError> {
        let page = data_page()?;
        let version = regs::version(self.transport.read32(offset::VS));
        let mut ids = if version >= (1, 1, 0) {
            identify::namespace_list(&self.identify(cns::ACTIVE_NAMESPACES, 0, &page)?)
        } else {
            (1..=self.identity.namespaces.min(MAX_NAMESPACES as u32 + 1)).collect()
        };
        // 0 is no namespace and all ones is every namespace (§3.2.1.2),
        // neither one to read from; a device listing one twice gets one disk.
        ids.retain(|&id| id != 0 && id != u32::MAX);
        ids.dedup();
        if ids.len() > MAX_NAMESPACES {
            log::warn!(
                "nvme at {}: {} namespaces; using the first {MAX_NAMESPACES}",
                self.bdf,
                ids.len()
            );
            ids.truncate(MAX_NAMESPACES);
        }
        let mut namespaces = Vec::new();
        for nsid in ids {
            let data = self.identify(cns::NAMESPACE, nsid, &page)?;
            match identify::namespace(&data) {
                Ok(data) if data.block_size > self.max_transfer => log::warn!(
                    "nvme at {} ns{nsid}: blocks of {} bytes exceed the {}-byte transfer limit; skipped",
                    self.bdf,
                    data.block_size,
                    self.max_transfer
                ),
                Ok(data) => namespaces.push(NamespaceInfo { nsid, data }),
                Err(error) => log::warn!("nvme at {} ns{nsid}: {error}; skipped", self.bdf),
            }
        }
        Ok(namespaces)
    }

    /// Runs `requests`, keeping the I/O queue as full as it goes, and polls
    /// until all are done. The first failing status is returned, but only
    /// after every submitted command has completed: their buffers belong to
    /// the caller. On a timeout the controller is disabled, which ends its
    /// DMA, before returning.
    ///
    /// # Safety
    /// Each request's `bytes` at `data` must be memory the controller may
    /// read (writes) or write (reads) until this function returns, and
    /// `data` must be dword aligned.
    pub(super) unsafe fn run(
        &self,
        requests: &mut dyn Iterator<Item = Request>,
    ) -> Result<(), BlockError> {
        if self.stopped.get() {
            return Err(BlockError::Timeout);
        }
        let mut io = self.io.borrow_mut();
        let io = &mut *io;
        let mut requests = requests.peekable();
        let mut failure = None;
        let mut deadline = self.deadline(COMMAND_TIMEOUT_MS);
        loop {
            while failure.is_none() && io.queue.has_room() {
                let Some(request) = requests.next() else {
                    break;
                };
                // SAFETY: the caller vouches for the data buffer until this
                // function returns, which is after its completion or after
                // the controller is disabled.
                if let Err(error) = unsafe { submit(io, request) } {
                    failure = Some(error);
                }
            }
            io.queue.ring(&self.transport);
            while let Some(done) = io.queue.poll() {
                deadline = self.deadline(COMMAND_TIMEOUT_MS);
                match io.busy.get_mut(usize::from(done.cid)) {
                    Some(busy) if *busy => *busy = false,
                    _ => {
                        log::warn!("nvme at {}: stray I/O completion {done:?}", self.bdf);
                        continue;
                    }
                }
                if !done.status.is_success() && failure.is_none() {
                    log::error!("nvme at {}: I/O command failed: {}", self.bdf, done.status);
                    failure = Some(BlockError::DeviceStatus(done.status.code()));
                }
            }
            io.queue.release(&self.transport);
            let outstanding = io.busy.iter().any(|&busy| busy);
            if !outstanding && (failure.is_some() || requests.peek().is_none()) {
                return failure.map_or(Ok(()), Err);
            }
            if self.transport.now_ns() > deadline {
                log::error!(
                    "nvme at {}: I/O timed out; disabling the controller",
                    self.bdf
                );
                self.stop();
                return Err(BlockError::Timeout);
            }
            core::hint::spin_loop();
        }
    }

    /// Shuts the controller down (§3.6.2: CC.SHN normal, wait for SHST
    /// complete) and disables it, so it does no DMA once the OS owns
    /// memory. Later commands fail with `BlockError::Timeout`.
    pub fn shutdown(&self) {
        if self.stopped.replace(true) {
            return;
        }
        self.transport
            .write32(offset::CC, regs::CC_ENABLED | regs::CC_SHUTDOWN_NORMAL);
        match self.wait("shutdown", self.cap.timeout_ms(), |csts| {
            csts.shutdown_complete()
        }) {
            Ok(()) => log::info!("nvme at {}: shut down", self.bdf),
            Err(error) => log::warn!("nvme at {}: {error}", self.bdf),
        }
        self.stop();
    }

    /// Disables the controller, logging if it does not stop.
    fn stop(&self) {
        if let Err(error) = self.disable() {
            log::error!("nvme at {}: {error}", self.bdf);
        }
    }
}

impl<T: Transport> Drop for Controller<T> {
    /// Queue memory is freed with `self`: stop the controller using it.
    fn drop(&mut self) {
        if !self.stopped.get() {
            self.stop();
        }
    }
}

/// Queues one I/O command, with its PRP list in the page of its command
/// identifier when the buffer spans more than two pages.
///
/// # Safety
/// As for [`Controller::run`], for `request`.
unsafe fn submit(io: &mut IoState, request: Request) -> Result<(), BlockError> {
    let Some(cid) = io.busy.iter().position(|&busy| !busy) else {
        return Err(BlockError::Timeout);
    };
    let mut command =
        Command::read_write(request.opcode, request.nsid, request.lba, request.blocks);
    if request.bytes != 0 {
        let prps = prp::plan(request.data, request.bytes)
            .map_err(|_| BlockError::BadBufferSize(request.bytes as usize))?;
        let prp2 = match prps.second {
            Second::None => 0,
            Second::Page(page) => page,
            Second::List { first, count } => {
                let list = cid * prp::PAGE as usize;
                for (i, page) in prp::list_entries(first, count).enumerate() {
                    io.prp_lists.write(list + 8 * i, page);
                }
                io.prp_lists.addr() + list as u64
            }
        };
        command = command.with_prps(prps.prp1, prp2);
    }
    let command = command.with_cid(cid as u16);
    // SAFETY: the PRP list lives in `io.prp_lists`, owned with the queue;
    // the data buffer is this function's caller's obligation.
    if unsafe { io.queue.submit(&command) } {
        io.busy[cid] = true;
        Ok(())
    } else {
        Err(BlockError::Timeout)
    }
}

fn data_page() -> Result<DmaRegion, NvmeError> {
    DmaRegion::new(prp::PAGE as usize).map_err(|_| NvmeError::OutOfMemory(prp::PAGE as usize))
}

/// 64-bit registers as two dword accesses, low first (§3.1.3: the host may
/// access them so).
fn read64(t: &impl Transport, at: u32) -> u64 {
    u64::from(t.read32(at)) | u64::from(t.read32(at + 4)) << 32
}

fn write64(t: &impl Transport, at: u32, value: u64) {
    t.write32(at, value as u32);
    t.write32(at + 4, (value >> 32) as u32);
}

/// Splits `len` bytes at `data` into commands of at most `max_transfer`
/// bytes (whole blocks) starting at block `lba`.
pub(super) fn split(
    opcode: u8,
    nsid: u32,
    block_size: u32,
    max_transfer: u32,
    lba: u64,
    data: u64,
    len: usize,
) -> impl Iterator<Item = Request> {
    let step = (max_transfer - max_transfer % block_size).max(block_size) as usize;
    (0..len).step_by(step).map(move |offset| {
        let bytes = (len - offset).min(step) as u32;
        Request {
            opcode,
            nsid,
            lba: lba + (offset / block_size as usize) as u64,
            blocks: bytes / block_size,
            data: data + offset as u64,
            bytes,
        }
    })
}

/// A Flush of `nsid` (NVM Command Set §3.2.2): no data.
pub(super) fn flush_request(nsid: u32) -> Request {
    Request {
        opcode: io::FLUSH,
        nsid,
        lba: 0,
        blocks: 0,
        data: 0,
        bytes: 0,
    }
}
