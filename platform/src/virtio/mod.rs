//! Virtio 1.2 over the modern PCI transport, with split virtqueues and
//! polled virtio-blk, virtio-scsi, virtio-net and virtio-rng drivers.
//!
//! The firmware identity-maps RAM, so the addresses of heap buffers are the
//! bus addresses handed to devices.

pub mod blk;
pub mod net;
pub mod pci;
pub mod queue;
pub mod rng;
pub mod scsi;

use bitflags::bitflags;
use core::fmt;

use crate::pci::Bdf;

pub use blk::{VirtioBlk, probe_all};
pub use rng::VirtioRng;

/// PCI vendor ID of all virtio devices (virtio 1.2 §4.1.2).
pub const VIRTIO_VENDOR_ID: u16 = 0x1AF4;
/// Modern device IDs are 0x1040 + the virtio device type (§4.1.2.1).
pub const MODERN_DEVICE_ID_BASE: u16 = 0x1040;
/// Transitional devices use 0x1000..=0x103F and may lack the modern
/// capabilities (§4.1.2.3).
pub const TRANSITIONAL_DEVICE_IDS: core::ops::RangeInclusive<u16> = 0x1000..=0x103F;

bitflags! {
    /// Device status field (§2.1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DeviceStatus: u8 {
        const ACKNOWLEDGE = 1;
        const DRIVER = 2;
        const DRIVER_OK = 4;
        const FEATURES_OK = 8;
        const DEVICE_NEEDS_RESET = 64;
        const FAILED = 128;
    }
}

/// Device-independent feature bits (§6).
pub mod feature {
    pub const VERSION_1: u64 = 1 << 32;
    pub const ACCESS_PLATFORM: u64 = 1 << 33;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtioError {
    /// A transitional device without the virtio 1.x capabilities: we only
    /// speak the modern interface.
    LegacyOnly { bdf: Bdf, device_id: u16 },
    /// A required vendor-specific capability (by `cfg_type`) is missing.
    MissingCapability { bdf: Bdf, cfg_type: u8 },
    /// A capability points outside its BAR, at an I/O or unassigned BAR, or
    /// is too short for the structure it describes.
    BadCapability {
        bdf: Bdf,
        cfg_type: u8,
        bar: u8,
        offset: u32,
        length: u32,
    },
    /// The device does not offer a feature we require.
    MissingFeature { bdf: Bdf, feature: u64 },
    /// The device cleared FEATURES_OK: it rejected our feature subset.
    FeaturesRejected { bdf: Bdf, features: u64 },
    /// The device did not read back status 0 after a reset.
    ResetTimeout { bdf: Bdf },
    /// The queue does not exist (size 0) or its notify address is outside
    /// the notify region.
    QueueUnavailable { bdf: Bdf, queue: u16 },
    /// A split queue size must be a power of two up to 32768 (§2.7).
    InvalidQueueSize { size: u16 },
    /// Queue or request memory could not be allocated.
    OutOfMemory { bytes: usize },
    /// The device's configuration makes requests impossible (e.g.
    /// `size_max` below one block).
    UnusableConfig {
        bdf: Bdf,
        what: &'static str,
        value: u64,
    },
}

impl fmt::Display for VirtioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VirtioError::LegacyOnly { bdf, device_id } => write!(
                f,
                "virtio device {VIRTIO_VENDOR_ID:04x}:{device_id:04x} at {bdf} is legacy-only (no virtio 1.x PCI \
                 capabilities); give the VMM disable-legacy=on or a modern device"
            ),
            VirtioError::MissingCapability { bdf, cfg_type } => {
                write!(
                    f,
                    "virtio device at {bdf} lacks PCI capability cfg_type {cfg_type}"
                )
            }
            VirtioError::BadCapability {
                bdf,
                cfg_type,
                bar,
                offset,
                length,
            } => write!(
                f,
                "virtio device at {bdf}: capability cfg_type {cfg_type} (BAR{bar} + {offset:#x}, {length:#x} bytes) \
                 is unusable"
            ),
            VirtioError::MissingFeature { bdf, feature } => {
                write!(
                    f,
                    "virtio device at {bdf} does not offer required feature {feature:#x}"
                )
            }
            VirtioError::FeaturesRejected { bdf, features } => {
                write!(f, "virtio device at {bdf} rejected features {features:#x}")
            }
            VirtioError::ResetTimeout { bdf } => {
                write!(f, "virtio device at {bdf} did not complete reset")
            }
            VirtioError::QueueUnavailable { bdf, queue } => {
                write!(f, "virtio device at {bdf} has no usable queue {queue}")
            }
            VirtioError::InvalidQueueSize { size } => write!(f, "invalid virtqueue size {size}"),
            VirtioError::OutOfMemory { bytes } => {
                write!(f, "cannot allocate {bytes} bytes for virtio")
            }
            VirtioError::UnusableConfig { bdf, what, value } => {
                write!(f, "virtio device at {bdf} has unusable {what} {value:#x}")
            }
        }
    }
}
