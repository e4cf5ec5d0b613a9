//! The driver against a simulated virtio-net device on another thread that
//! loops every transmitted frame back into the next receive buffer.

use super::*;

use crate::mmio::Mmio;
use core::mem::offset_of;
use core::sync::atomic::{Ordering, fence};
use std::sync::atomic::AtomicBool;

use super::super::feature::VERSION_1;
use super::super::pci::CommonCfg;

fn read<T: Copy>(addr: u64) -> T {
    // SAFETY: tests only pass addresses of queue memory, alive while the
    // device runs.
    unsafe { core::ptr::read_volatile(addr as *const T) }
}

fn write<T: Copy>(addr: u64, value: T) {
    // SAFETY: as for `read`.
    unsafe { core::ptr::write_volatile(addr as *mut T, value) }
}

/// One split queue as the device sees it.
#[derive(Clone, Copy)]
struct Ring {
    descriptors: u64,
    avail: u64,
    used: u64,
    size: u16,
}

impl Ring {
    fn of(queue: &SplitQueue) -> Self {
        Ring {
            descriptors: queue.descriptor_table_addr(),
            avail: queue.available_ring_addr(),
            used: queue.used_ring_addr(),
            size: queue.size(),
        }
    }

    /// The head of available entry `n`, and its one descriptor.
    fn take(&self, n: u16) -> (u16, u64, u32) {
        let head: u16 = read(self.avail + 4 + 2 * u64::from(n % self.size));
        let at = self.descriptors + 16 * u64::from(head);
        (head, read(at), read(at + 8))
    }

    fn complete(&self, used_idx: &mut u16, head: u16, written: u32) {
        let slot = self.used + 4 + 8 * u64::from(*used_idx % self.size);
        write(slot, u32::from(head));
        write(slot + 4, written);
        fence(Ordering::SeqCst);
        *used_idx = used_idx.wrapping_add(1);
        write(self.used + 2, *used_idx);
    }
}

/// Loops frames back: each transmit chain is completed and its bytes
/// (header included) copied into the next receive buffer.
fn serve(receive: Ring, transmit: Ring, stop: &AtomicBool) {
    let (mut rx_avail, mut rx_used, mut tx_avail, mut tx_used) = (0u16, 0u16, 0u16, 0u16);
    while !stop.load(Ordering::SeqCst) {
        let tx_idx: u16 = read(transmit.avail + 2);
        let rx_idx: u16 = read(receive.avail + 2);
        fence(Ordering::SeqCst);
        if tx_avail != tx_idx && rx_avail != rx_idx {
            let (tx_head, tx_addr, tx_len) = transmit.take(tx_avail);
            let (rx_head, rx_addr, rx_len) = receive.take(rx_avail);
            let len = tx_len.min(rx_len);
            for offset in 0..u64::from(len) {
                write::<u8>(rx_addr + offset, read(tx_addr + offset));
            }
            transmit.complete(&mut tx_used, tx_head, 0);
            receive.complete(&mut rx_used, rx_head, len);
            tx_avail = tx_avail.wrapping_add(1);
            rx_avail = rx_avail.wrapping_add(1);
        }
        std::thread::yield_now();
    }
}

/// A started driver over fake registers (plain memory: every field reads
/// back what was written; the offered features read as VERSION_1), whose
/// queues have 4 entries.
fn started_driver() -> VirtioNet {
    // Leaked so they outlive the driver, whose drop resets the device.
    let registers: &'static mut [u64; 9] = Box::leak(Box::new([0; 9]));
    // SAFETY: leaked memory lives forever and nothing else uses it.
    let common = unsafe { Mmio::new(registers.as_ptr() as u64, 64) };
    // SAFETY: as above; the last word is the doorbell.
    let notify = unsafe { Mmio::new(registers[8..].as_ptr() as u64, 8) };
    common.write(offset_of!(CommonCfg, queue_size) as u64, 4u16);
    // Both feature halves read 1: bit 0 of the high half is VERSION_1.
    common.write(offset_of!(CommonCfg, device_feature) as u64, 1u32);
    let net = VirtioNet {
        transport: VirtioPciTransport::over_memory(common, notify),
        features: VERSION_1,
        mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
        mtu: STANDARD_MTU,
        poll_spins: 1_000_000_000,
        queues: RefCell::new(None),
    };
    net.start().unwrap();
    net
}

fn rings(net: &VirtioNet) -> (Ring, Ring) {
    let queues = net.queues.borrow();
    let queues = queues.as_ref().unwrap();
    (Ring::of(&queues.receive), Ring::of(&queues.transmit))
}

/// Runs `body` while the simulated device serves; the device stops even
/// when `body` panics.
fn with_device<R>(net: &VirtioNet, body: impl FnOnce() -> R) -> R {
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let (receive, transmit) = rings(net);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| serve(receive, transmit, &stop));
        let _stop = StopOnDrop(&stop);
        body()
    })
}

/// Waits for the looped-back frame.
fn receive_within(net: &VirtioNet, buf: &mut [u8]) -> Result<usize, NetError> {
    for _ in 0..10_000_000 {
        if let Some(len) = net.receive(buf)? {
            return Ok(len);
        }
        std::thread::yield_now();
    }
    panic!("no frame came back");
}

#[test]
fn frames_go_out_and_come_back_without_the_header() {
    let net = started_driver();
    let frame: Vec<u8> = (0..100u8).collect();
    let mut buf = [0u8; 1514];
    with_device(&net, || {
        // More frames than slots: slots are recycled both ways.
        for round in 0..10u8 {
            let mut frame = frame.clone();
            frame[20] = round;
            net.transmit(&frame).unwrap();
            let len = receive_within(&net, &mut buf).unwrap();
            assert_eq!(&buf[..len], &frame[..]);
        }
    });
}

#[test]
fn a_small_buffer_leaves_the_frame_queued() {
    let net = started_driver();
    let frame = [7u8; 60];
    with_device(&net, || {
        net.transmit(&frame).unwrap();
        let mut small = [0u8; 20];
        let needed = loop {
            match net.receive(&mut small) {
                Err(NetError::BufferTooSmall { needed }) => break needed,
                Ok(None) => std::thread::yield_now(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(needed, 60);
        let mut buf = [0u8; 64];
        assert_eq!(net.receive(&mut buf), Ok(Some(60)));
    });
}

#[test]
fn bad_sizes_and_a_stopped_device_are_refused() {
    let net = started_driver();
    assert_eq!(net.transmit(&[0; 13]), Err(NetError::BadFrameSize(13)));
    assert_eq!(net.transmit(&[0; 1515]), Err(NetError::BadFrameSize(1515)));
    assert_eq!(net.receive(&mut [0; 1514]), Ok(None));
    net.stop();
    assert!(!net.is_started());
    assert_eq!(net.transmit(&[0; 60]), Err(NetError::Stopped));
    assert_eq!(net.receive(&mut [0; 1514]), Err(NetError::Stopped));
    net.start().unwrap();
    assert!(net.is_started());
}
