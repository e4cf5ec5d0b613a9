//! A submission/completion queue pair in memory shared with the controller
//! (NVM Express Base Specification 2.0 §3.3.1, §4.1): the driver writes
//! entries at the submission tail and rings its doorbell; the controller
//! posts completions whose phase tag flips on every pass through the
//! completion queue, so a new entry is one whose tag differs from the last
//! pass's (§4.6).

use core::sync::atomic::{Ordering, fence};

use super::command::{Command, Completion};
use super::regs::doorbell;
use super::{NvmeError, Transport};
use crate::virtio::queue::DmaRegion;

const SQ_ENTRY_BYTES: usize = 64;
const CQ_ENTRY_BYTES: usize = 16;

pub struct QueuePair {
    qid: u16,
    entries: u16,
    sq: DmaRegion,
    cq: DmaRegion,
    sq_tail: u16,
    cq_head: u16,
    /// The phase tag of entries not yet consumed: starts at 1 because the
    /// queue memory is zeroed (§4.6).
    phase: bool,
    /// Commands submitted and not completed; kept below `entries` so the
    /// submission queue never overruns its head and the completion queue
    /// never fills (§4.1.1: full is one less than the size).
    in_flight: u16,
    sq_doorbell: u32,
    cq_doorbell: u32,
    /// Entries written or consumed since the doorbell was last rung: the
    /// doorbells are rung once per batch, each write being a VM exit.
    sq_pending: bool,
    cq_pending: bool,
}

impl QueuePair {
    /// `entries` is 2..=4096 (our own choice, checked by the caller against
    /// CAP.MQES); both queues fit in page-aligned, zeroed memory.
    pub fn new(qid: u16, entries: u16, stride: u32) -> Result<Self, NvmeError> {
        let bytes = |entry| usize::from(entries) * entry;
        let region = |len| DmaRegion::new(len).map_err(|_| NvmeError::OutOfMemory(len));
        Ok(QueuePair {
            qid,
            entries,
            sq: region(bytes(SQ_ENTRY_BYTES))?,
            cq: region(bytes(CQ_ENTRY_BYTES))?,
            sq_tail: 0,
            cq_head: 0,
            phase: true,
            in_flight: 0,
            sq_doorbell: doorbell(qid, false, stride),
            cq_doorbell: doorbell(qid, true, stride),
            sq_pending: false,
            cq_pending: false,
        })
    }

    pub fn qid(&self) -> u16 {
        self.qid
    }

    pub fn entries(&self) -> u16 {
        self.entries
    }

    pub fn sq_addr(&self) -> u64 {
        self.sq.addr()
    }

    pub fn cq_addr(&self) -> u64 {
        self.cq.addr()
    }

    pub fn has_room(&self) -> bool {
        self.in_flight + 1 < self.entries
    }

    /// Writes `command` at the tail; [`ring`](Self::ring) hands it to the
    /// controller. Returns false when the queue is full.
    ///
    /// # Safety
    /// Any memory `command` points the controller at (PRPs) must stay
    /// valid for its DMA until the command completes or the controller is
    /// disabled.
    pub unsafe fn submit(&mut self, command: &Command) -> bool {
        if !self.has_room() {
            return false;
        }
        let at = usize::from(self.sq_tail) * SQ_ENTRY_BYTES;
        for (i, dword) in command.0.iter().enumerate() {
            self.sq.write(at + 4 * i, *dword);
        }
        self.sq_tail = (self.sq_tail + 1) % self.entries;
        self.in_flight += 1;
        self.sq_pending = true;
        true
    }

    /// Tells the controller about the commands submitted since the last
    /// call (submission tail doorbell).
    pub fn ring(&mut self, transport: &impl Transport) {
        if core::mem::take(&mut self.sq_pending) {
            // The entries must be in memory before the controller sees the tail.
            fence(Ordering::SeqCst);
            transport.write32(self.sq_doorbell, u32::from(self.sq_tail));
        }
    }

    /// Consumes the next completion if the controller posted one;
    /// [`release`](Self::release) gives the slots back.
    pub fn poll(&mut self) -> Option<Completion> {
        let at = usize::from(self.cq_head) * CQ_ENTRY_BYTES;
        let completion = Completion::from_dw3(self.cq.read(at + 12));
        if completion.phase != self.phase {
            return None;
        }
        // Read nothing else of the entry, and no data the command returned,
        // before seeing its phase tag.
        fence(Ordering::SeqCst);
        self.cq_head += 1;
        if self.cq_head == self.entries {
            self.cq_head = 0;
            self.phase = !self.phase;
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        self.cq_pending = true;
        Some(completion)
    }

    /// Tells the controller the completions consumed since the last call
    /// are free (completion head doorbell).
    pub fn release(&mut self, transport: &impl Transport) {
        if core::mem::take(&mut self.cq_pending) {
            transport.write32(self.cq_doorbell, u32::from(self.cq_head));
        }
    }
}
