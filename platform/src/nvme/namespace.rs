//! One active namespace as a block device: transfers split into commands of
//! at most the controller's transfer size, all in flight together.

use alloc::rc::Rc;
use core::sync::atomic::{Ordering, fence};

use super::Transport;
use super::command::io;
use super::controller::{Controller, NamespaceInfo, flush_request, split};
use crate::block::{BlockDevice, BlockError};
use crate::read_ahead::{Geometry, ReadAhead};
use crate::virtio::queue::DmaRegion;

pub struct Namespace<T: Transport> {
    controller: Rc<Controller<T>>,
    info: NamespaceInfo,
    /// Sequential small reads are served from 1 MiB windows.
    read_ahead: ReadAhead,
}

impl<T: Transport> Namespace<T> {
    pub fn new(controller: Rc<Controller<T>>, info: NamespaceInfo) -> Self {
        log::info!(
            "nvme at {} ns{}: {} blocks of {} bytes",
            controller.bdf(),
            info.nsid,
            info.data.blocks,
            info.data.block_size
        );
        Namespace {
            controller,
            info,
            read_ahead: ReadAhead::new(),
        }
    }

    pub fn controller(&self) -> &Controller<T> {
        &self.controller
    }

    pub fn nsid(&self) -> u32 {
        self.info.nsid
    }

    /// The IEEE EUI-64 as the Identify data holds it (zero if none).
    pub fn eui64(&self) -> [u8; 8] {
        self.info.data.eui64
    }

    /// Stops the controller (all its namespaces) before the OS owns memory.
    pub fn shutdown(&self) {
        self.read_ahead.clear();
        self.controller.shutdown();
    }

    /// Reads (`opcode` READ) into or writes from `len` bytes at `data`.
    ///
    /// # Safety
    /// `len` bytes at `data` must stay valid for the controller's DMA until
    /// this returns.
    unsafe fn transfer(
        &self,
        opcode: u8,
        lba: u64,
        data: u64,
        len: usize,
    ) -> Result<(), BlockError> {
        let mut requests = split(
            opcode,
            self.info.nsid,
            self.info.data.block_size,
            self.controller.max_transfer(),
            lba,
            data,
            len,
        );
        // SAFETY: forwarded from this function's contract.
        unsafe { self.controller.run(&mut requests) }
    }

    /// A transfer for a buffer PRPs cannot describe (not dword aligned),
    /// through an aligned bounce buffer, one command at a time.
    fn bounced(&self, opcode: u8, lba: u64, buf: *mut u8, len: usize) -> Result<(), BlockError> {
        let block = self.info.data.block_size as usize;
        let step = (self.controller.max_transfer() as usize / block).max(1) * block;
        let bounce = DmaRegion::new(step.min(len)).map_err(|_| BlockError::Timeout)?;
        let mut done = 0;
        while done < len {
            let bytes = (len - done).min(step);
            let at = lba + (done / block) as u64;
            // SAFETY: `buf` has `len` bytes (the caller's slice), `bounce`
            // at least `bytes`; they do not overlap.
            unsafe {
                if opcode == io::WRITE {
                    core::ptr::copy_nonoverlapping(buf.add(done), bounce.addr() as *mut u8, bytes);
                }
                // SAFETY: `bounce` lives until after `transfer` returns.
                self.transfer(opcode, at, bounce.addr(), bytes)?;
                fence(Ordering::SeqCst);
                if opcode == io::READ {
                    core::ptr::copy_nonoverlapping(
                        bounce.addr() as *const u8,
                        buf.add(done),
                        bytes,
                    );
                }
            }
            done += bytes;
        }
        Ok(())
    }
}

impl<T: Transport> BlockDevice for Namespace<T> {
    fn block_size(&self) -> u32 {
        self.info.data.block_size
    }

    fn num_blocks(&self) -> u64 {
        self.info.data.blocks
    }

    fn read_only(&self) -> bool {
        false
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_request(lba, buf.len())?;
        let geometry = Geometry {
            block_size: self.block_size(),
            num_blocks: self.num_blocks(),
        };
        self.read_ahead.read(geometry, lba, buf, |lba, buf| {
            let data = buf.as_mut_ptr() as u64;
            if !data.is_multiple_of(4) {
                return self.bounced(io::READ, lba, buf.as_mut_ptr(), buf.len());
            }
            // SAFETY: `buf` is borrowed mutably until `transfer` returns,
            // and that is after the controller is done with it.
            let result = unsafe { self.transfer(io::READ, lba, data, buf.len()) };
            // The controller wrote `buf` behind the compiler's back.
            fence(Ordering::SeqCst);
            result
        })
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let blocks = self.check_request(lba, buf.len())?;
        self.read_ahead.invalidate(lba, blocks);
        fence(Ordering::SeqCst);
        let data = buf.as_ptr() as u64;
        if !data.is_multiple_of(4) {
            // The bounce path only reads through the pointer for writes.
            return self.bounced(io::WRITE, lba, buf.as_ptr().cast_mut(), buf.len());
        }
        // SAFETY: `buf` is borrowed until `transfer` returns; the
        // controller only reads it (Write).
        unsafe { self.transfer(io::WRITE, lba, data, buf.len()) }
    }

    /// Without a volatile write cache there is nothing to flush (NVM
    /// Command Set §3.2.2).
    fn flush(&self) -> Result<(), BlockError> {
        if !self.controller.needs_flush() {
            return Ok(());
        }
        // SAFETY: a Flush carries no data.
        unsafe {
            self.controller
                .run(&mut core::iter::once(flush_request(self.info.nsid)))
        }
    }
}
