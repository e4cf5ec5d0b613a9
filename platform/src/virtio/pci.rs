//! The virtio 1.2 modern PCI transport (§4.1): vendor-specific capabilities
//! locate the common configuration, notification, ISR and device
//! configuration structures inside the device's memory BARs.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{Ordering, fence};

use super::queue::SplitQueue;
use super::{DeviceStatus, TRANSITIONAL_DEVICE_IDS, VirtioError, feature};
use crate::mmio::Mmio;
use crate::pci::{self, Bdf, CapabilityId, ConfigAccess, PciDevice};

/// `cfg_type` of a virtio PCI capability (§4.1.4); an open set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CfgType(pub u8);

impl CfgType {
    pub const COMMON: Self = Self(1);
    pub const NOTIFY: Self = Self(2);
    pub const ISR: Self = Self(3);
    pub const DEVICE: Self = Self(4);
    pub const PCI_CFG: Self = Self(5);
    pub const SHARED_MEMORY: Self = Self(8);
    pub const VENDOR: Self = Self(9);
}

/// Where one configuration structure lives: `length` bytes at `offset` in BAR
/// `bar` (struct virtio_pci_cap, §4.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapRegion {
    pub bar: u8,
    pub offset: u32,
    pub length: u32,
}

/// The capabilities a driver uses, first instance of each type (§4.1.4:
/// "the driver SHOULD use the first instance").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioCapabilities {
    pub common: CapRegion,
    pub notify: CapRegion,
    pub notify_off_multiplier: u32,
    pub isr: Option<CapRegion>,
    pub device: Option<CapRegion>,
}

/// Layout of struct virtio_pci_cap inside configuration space.
mod cap_field {
    pub const CAP_LEN: u16 = 2;
    pub const CFG_TYPE: u16 = 3;
    pub const BAR: u16 = 4;
    pub const OFFSET: u16 = 8;
    pub const LENGTH: u16 = 12;
    /// struct virtio_pci_notify_cap appends the multiplier (§4.1.4.4).
    pub const NOTIFY_OFF_MULTIPLIER: u16 = 16;
    pub const BASE_LEN: u8 = 16;
    pub const NOTIFY_LEN: u8 = 20;
}

/// Parses the virtio vendor-specific capabilities of `device`.
/// Transitional devices without them are rejected as legacy-only.
pub fn find_capabilities(
    access: &dyn ConfigAccess,
    device: &PciDevice,
) -> Result<VirtioCapabilities, VirtioError> {
    let bdf = device.bdf;
    let (mut common, mut notify, mut isr, mut device_cfg) = (None, None, None, None);
    let mut notify_off_multiplier = 0;
    for cap in pci::capabilities(access, bdf).filter(|cap| cap.id == CapabilityId::VENDOR_SPECIFIC)
    {
        let at = u16::from(cap.offset);
        let cap_len = access.read8(bdf, at + cap_field::CAP_LEN);
        let cfg_type = CfgType(access.read8(bdf, at + cap_field::CFG_TYPE));
        let bar = access.read8(bdf, at + cap_field::BAR);
        // §4.1.4: BAR values 0x6..=0xff are reserved and such capabilities
        // must be ignored, as must ones too short to be a virtio_pci_cap.
        if cap_len < cap_field::BASE_LEN || bar > 5 {
            continue;
        }
        let region = CapRegion {
            bar,
            offset: access.read32(bdf, at + cap_field::OFFSET),
            length: access.read32(bdf, at + cap_field::LENGTH),
        };
        match cfg_type {
            CfgType::COMMON if common.is_none() => common = Some(region),
            CfgType::NOTIFY if notify.is_none() && cap_len >= cap_field::NOTIFY_LEN => {
                notify = Some(region);
                notify_off_multiplier = access.read32(bdf, at + cap_field::NOTIFY_OFF_MULTIPLIER);
            }
            CfgType::ISR if isr.is_none() => isr = Some(region),
            CfgType::DEVICE if device_cfg.is_none() => device_cfg = Some(region),
            _ => {}
        }
    }
    if common.is_none() && notify.is_none() && TRANSITIONAL_DEVICE_IDS.contains(&device.device) {
        return Err(VirtioError::LegacyOnly {
            bdf,
            device_id: device.device,
        });
    }
    let missing = |cfg_type: CfgType| VirtioError::MissingCapability {
        bdf,
        cfg_type: cfg_type.0,
    };
    Ok(VirtioCapabilities {
        common: common.ok_or(missing(CfgType::COMMON))?,
        notify: notify.ok_or(missing(CfgType::NOTIFY))?,
        notify_off_multiplier,
        isr,
        device: device_cfg,
    })
}

/// struct virtio_pci_common_cfg (§4.1.4.3). Only used for its field offsets;
/// the registers are accessed through `Mmio`.
#[repr(C)]
pub struct CommonCfg {
    pub device_feature_select: u32,
    pub device_feature: u32,
    pub driver_feature_select: u32,
    pub driver_feature: u32,
    pub config_msix_vector: u16,
    pub num_queues: u16,
    pub device_status: u8,
    pub config_generation: u8,
    pub queue_select: u16,
    pub queue_size: u16,
    pub queue_msix_vector: u16,
    pub queue_enable: u16,
    pub queue_notify_off: u16,
    pub queue_desc: u64,
    pub queue_driver: u64,
    pub queue_device: u64,
    pub queue_notif_config_data: u16,
    pub queue_reset: u16,
}

/// Devices predating virtio 1.2 end the structure after `queue_device`; we
/// touch nothing beyond it.
const COMMON_CFG_MIN_LEN: u32 = offset_of!(CommonCfg, queue_notif_config_data) as u32;

/// "No MSI-X vector" (§4.1.5.1.2): we poll.
const VIRTIO_MSI_NO_VECTOR: u16 = 0xFFFF;

/// Bound on polls of the status register after a reset (§4.1.4.3.2: the
/// driver waits for it to read back 0).
const RESET_SPINS: u32 = 10_000_000;

macro_rules! common {
    ($field:ident) => {
        offset_of!(CommonCfg, $field) as u64
    };
}

/// Rings a queue's doorbell.
#[derive(Clone, Copy, Debug)]
pub struct Notifier {
    doorbell: Mmio,
    queue: u16,
}

impl Notifier {
    /// Tells the device the queue has new buffers (§4.1.5.2; without
    /// VIRTIO_F_NOTIFICATION_DATA the value written is the queue index).
    pub fn notify(&self) {
        // §2.7.13.4: the available index must be visible before the
        // notification.
        fence(Ordering::SeqCst);
        self.doorbell.write(0, self.queue);
    }
}

/// An initialised modern virtio PCI function: memory decoding and bus
/// mastering on, configuration structures mapped.
pub struct VirtioPciTransport {
    bdf: Bdf,
    common: Mmio,
    notify: Mmio,
    notify_off_multiplier: u32,
    device_config: Option<Mmio>,
}

impl VirtioPciTransport {
    /// Finds and maps the device's configuration structures. The device's
    /// BARs must already be assigned.
    ///
    /// # Safety
    /// `device` must describe the function at `device.bdf` as `access` reaches
    /// it (from `pci::enumerate`), with BARs placed in address space reserved
    /// for PCI: its memory BARs become MMIO windows, written through safe
    /// methods, and the device gets bus mastering.
    pub unsafe fn new(access: &dyn ConfigAccess, device: &PciDevice) -> Result<Self, VirtioError> {
        let caps = find_capabilities(access, device)?;
        let common = map_region(device, CfgType::COMMON, caps.common, COMMON_CFG_MIN_LEN)?;
        let notify = map_region(device, CfgType::NOTIFY, caps.notify, 2)?;
        let device_config = caps
            .device
            .map(|region| map_region(device, CfgType::DEVICE, region, 0))
            .transpose()?;
        // SAFETY: the BARs are the device's own (this function's contract).
        // A virtio device DMAs only through virtqueues whose addresses the
        // driver writes to the common configuration (virtio 1.2 §4.1.4.3);
        // none is enabled yet, and the driver gives it only memory it owns.
        unsafe { pci::enable_memory_and_bus_master(access, device.bdf) };
        Ok(VirtioPciTransport {
            bdf: device.bdf,
            common,
            notify,
            notify_off_multiplier: caps.notify_off_multiplier,
            device_config,
        })
    }

    /// A transport over plain memory, for host tests of the drivers above.
    #[cfg(test)]
    pub(crate) fn over_memory(common: Mmio, notify: Mmio) -> Self {
        VirtioPciTransport {
            bdf: Bdf::new(0, 9, 0),
            common,
            notify,
            notify_off_multiplier: 0,
            device_config: None,
        }
    }

    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    pub fn status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_retain(self.common.read(common!(device_status)))
    }

    fn add_status(&self, bits: DeviceStatus) {
        self.common
            .write(common!(device_status), (self.status() | bits).bits());
    }

    /// Resets the device (§4.1.4.3.2): it stops all DMA and forgets its
    /// queues, features and status.
    pub fn reset(&self) -> Result<(), VirtioError> {
        self.common.write(common!(device_status), 0u8);
        for _ in 0..RESET_SPINS {
            if self.common.read::<u8>(common!(device_status)) == 0 {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(VirtioError::ResetTimeout { bdf: self.bdf })
    }

    /// Marks initialisation as failed (§3.1.1); the device gives up on us.
    pub fn fail(&self) {
        self.add_status(DeviceStatus::FAILED);
    }

    /// Steps 1-6 of §3.1.1: reset, ACKNOWLEDGE, DRIVER, then accept the
    /// offered subset of `wanted` plus VIRTIO_F_VERSION_1 (required) and
    /// VIRTIO_F_ACCESS_PLATFORM (our addresses are physical, so honouring it
    /// is free), and confirm FEATURES_OK stuck. Returns the accepted features.
    pub fn negotiate(&self, wanted: u64) -> Result<u64, VirtioError> {
        self.reset()?;
        self.add_status(DeviceStatus::ACKNOWLEDGE);
        self.add_status(DeviceStatus::DRIVER);
        let offered = self.device_features();
        if offered & feature::VERSION_1 == 0 {
            self.fail();
            return Err(VirtioError::MissingFeature {
                bdf: self.bdf,
                feature: feature::VERSION_1,
            });
        }
        let accepted = offered & (wanted | feature::VERSION_1 | feature::ACCESS_PLATFORM);
        for half in 0..2u32 {
            self.common.write(common!(driver_feature_select), half);
            self.common
                .write(common!(driver_feature), (accepted >> (32 * half)) as u32);
        }
        self.add_status(DeviceStatus::FEATURES_OK);
        if !self.status().contains(DeviceStatus::FEATURES_OK) {
            self.fail();
            return Err(VirtioError::FeaturesRejected {
                bdf: self.bdf,
                features: accepted,
            });
        }
        Ok(accepted)
    }

    /// The 64-bit feature window, read 32 bits at a time (§4.1.4.3).
    fn device_features(&self) -> u64 {
        let mut features = 0;
        for half in 0..2u32 {
            self.common.write(common!(device_feature_select), half);
            features |= u64::from(self.common.read::<u32>(common!(device_feature))) << (32 * half);
        }
        features
    }

    /// The largest size the device allows for `queue`; 0 if it does not exist.
    pub fn max_queue_size(&self, queue: u16) -> u16 {
        self.common.write(common!(queue_select), queue);
        self.common.read(common!(queue_size))
    }

    /// Hands `ring`'s memory to the device as queue `index` and enables it
    /// (§4.1.5.1.3). Returns the queue's doorbell.
    ///
    /// # Safety
    /// The device writes `ring`'s used ring and reads the rest by DMA from
    /// then on (virtio 1.2 §2.7): `ring` must stay allocated, and be changed
    /// only through its own methods, until the device is reset.
    pub unsafe fn setup_queue(
        &self,
        index: u16,
        ring: &SplitQueue,
    ) -> Result<Notifier, VirtioError> {
        let unavailable = VirtioError::QueueUnavailable {
            bdf: self.bdf,
            queue: index,
        };
        let max = self.max_queue_size(index);
        if max == 0 || ring.size() > max {
            return Err(unavailable);
        }
        self.common.write(common!(queue_size), ring.size());
        self.common
            .write(common!(queue_msix_vector), VIRTIO_MSI_NO_VECTOR);
        // 64-bit fields are written as two 32-bit halves (§4.1.3.1).
        for (field, address) in [
            (common!(queue_desc), ring.descriptor_table_addr()),
            (common!(queue_driver), ring.available_ring_addr()),
            (common!(queue_device), ring.used_ring_addr()),
        ] {
            self.common.write(field, address as u32);
            self.common.write(field + 4, (address >> 32) as u32);
        }
        // §4.1.4.4: the doorbell is at queue_notify_off * multiplier.
        let notify_off: u16 = self.common.read(common!(queue_notify_off));
        let doorbell = self
            .notify
            .sub(
                u64::from(notify_off) * u64::from(self.notify_off_multiplier),
                2,
            )
            .ok_or(unavailable)?;
        self.common.write(common!(queue_enable), 1u16);
        Ok(Notifier {
            doorbell,
            queue: index,
        })
    }

    /// Step 8 of §3.1.1: the driver is ready and the device may run.
    pub fn driver_ok(&self) {
        self.add_status(DeviceStatus::DRIVER_OK);
    }

    pub fn has_device_config(&self) -> bool {
        self.device_config.is_some()
    }

    /// Reads a device-specific configuration field, or `None` if it lies
    /// beyond the structure the device exposes.
    pub fn config_read<T: Copy>(&self, offset: usize) -> Option<T> {
        let config = self.device_config.as_ref()?;
        let width = size_of::<T>();
        let fits = offset
            .checked_add(width)
            .is_some_and(|end| end as u64 <= config.len());
        (fits && offset.is_multiple_of(width)).then(|| config.read(offset as u64))
    }

    /// A 64-bit configuration field, read as two 32-bit halves and retried
    /// until config_generation shows a consistent snapshot (§4.1.3.1, §2.5.1).
    pub fn config_read_u64(&self, offset: usize) -> Option<u64> {
        loop {
            let before: u8 = self.common.read(common!(config_generation));
            let low: u32 = self.config_read(offset)?;
            let high: u32 = self.config_read(offset + 4)?;
            if self.common.read::<u8>(common!(config_generation)) == before {
                return Some(u64::from(high) << 32 | u64::from(low));
            }
        }
    }
}

/// Maps one configuration structure, checking it lies inside an assigned
/// memory BAR and is at least `min_len` bytes long.
fn map_region(
    device: &PciDevice,
    cfg_type: CfgType,
    region: CapRegion,
    min_len: u32,
) -> Result<Mmio, VirtioError> {
    let bad = VirtioError::BadCapability {
        bdf: device.bdf,
        cfg_type: cfg_type.0,
        bar: region.bar,
        offset: region.offset,
        length: region.length,
    };
    let bar = device
        .bars
        .get(usize::from(region.bar))
        .copied()
        .flatten()
        .filter(|bar| bar.is_memory() && bar.is_assigned())
        .ok_or(bad)?;
    let end = u64::from(region.offset) + u64::from(region.length);
    if region.length < min_len || end > bar.size {
        return Err(bad);
    }
    let base = bar
        .address
        .checked_add(u64::from(region.offset))
        .ok_or(bad)?;
    crate::paging::map_device_memory(base, u64::from(region.length));
    // SAFETY: the range lies inside a memory BAR the device decodes (checked
    // above against the sized BAR; `VirtioPciTransport::new`'s caller vouches
    // that `device` is real), and was just mapped as device memory.
    Ok(unsafe { Mmio::new(base, u64::from(region.length)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::fake::{FakeConfig, FakeFunction};

    const BDF: Bdf = Bdf::new(0, 4, 0);

    /// body of a virtio_pci_cap after cap_vndr/cap_next.
    fn cap_body(
        cfg_type: u8,
        bar: u8,
        offset: u32,
        length: u32,
        multiplier: Option<u32>,
    ) -> Vec<u8> {
        let cap_len = if multiplier.is_some() { 20 } else { 16 };
        let mut body = vec![cap_len, cfg_type, bar, 0, 0, 0];
        body.extend_from_slice(&offset.to_le_bytes());
        body.extend_from_slice(&length.to_le_bytes());
        if let Some(multiplier) = multiplier {
            body.extend_from_slice(&multiplier.to_le_bytes());
        }
        body
    }

    /// A modern virtio-blk laid out like QEMU's: MSI-X, then the virtio
    /// capabilities pointing into 64-bit BAR 4.
    fn modern_blk(device_id: u16) -> FakeFunction {
        FakeFunction::new(0x1AF4, device_id, 0x01, 0x00, 0)
            .bar64(4, 0xFE00_0000, 0x4000)
            .capability(0x98, 0x11, 0x84, &[])
            .capability(0x84, 0x09, 0x70, &cap_body(5, 0, 0, 0, None))
            .capability(0x70, 0x09, 0x60, &cap_body(2, 4, 0x3000, 0x1000, Some(4)))
            .capability(0x60, 0x09, 0x50, &cap_body(4, 4, 0x2000, 0x1000, None))
            .capability(0x50, 0x09, 0x40, &cap_body(3, 4, 0x1000, 0x1000, None))
            .capability(0x40, 0x09, 0x00, &cap_body(1, 4, 0x0000, 0x1000, None))
    }

    fn probe(config: &FakeConfig) -> PciDevice {
        pci::probe_function(config, BDF).unwrap()
    }

    #[test]
    fn finds_every_structure() {
        let config = FakeConfig::default();
        config.add(BDF, modern_blk(0x1042));
        let caps = find_capabilities(&config, &probe(&config)).unwrap();
        let region = |offset| CapRegion {
            bar: 4,
            offset,
            length: 0x1000,
        };
        assert_eq!(
            caps,
            VirtioCapabilities {
                common: region(0),
                notify: region(0x3000),
                notify_off_multiplier: 4,
                isr: Some(region(0x1000)),
                device: Some(region(0x2000)),
            }
        );
    }

    #[test]
    fn first_instance_wins_and_reserved_bars_are_ignored() {
        let config = FakeConfig::default();
        config.add(
            BDF,
            modern_blk(0x1042)
                .capability(0xB0, 0x09, 0xC8, &cap_body(1, 7, 0x100, 0x1000, None))
                .capability(0xC8, 0x09, 0x98, &cap_body(1, 4, 0x100, 0x1000, None)),
        );
        // Start the list at the reserved-BAR entry.
        config.functions.borrow_mut().get_mut(&BDF).unwrap().space[0x34] = 0xB0;
        let caps = find_capabilities(&config, &probe(&config)).unwrap();
        assert_eq!(caps.common.offset, 0x100);
    }

    #[test]
    fn transitional_device_without_modern_caps_is_legacy_only() {
        let config = FakeConfig::default();
        config.add(
            BDF,
            FakeFunction::new(0x1AF4, 0x1001, 0x01, 0x00, 0).capability(0x40, 0x11, 0, &[]),
        );
        let error = find_capabilities(&config, &probe(&config)).unwrap_err();
        assert_eq!(
            error,
            VirtioError::LegacyOnly {
                bdf: BDF,
                device_id: 0x1001
            }
        );
        assert!(error.to_string().contains("1af4:1001 at 00:04.0"));
    }

    #[test]
    fn transitional_device_with_modern_caps_is_accepted() {
        let config = FakeConfig::default();
        config.add(BDF, modern_blk(0x1001));
        assert!(find_capabilities(&config, &probe(&config)).is_ok());
    }

    #[test]
    fn modern_device_missing_notify_is_reported() {
        let config = FakeConfig::default();
        config.add(
            BDF,
            FakeFunction::new(0x1AF4, 0x1042, 0x01, 0x00, 0).capability(
                0x40,
                0x09,
                0,
                &cap_body(1, 4, 0, 0x1000, None),
            ),
        );
        assert_eq!(
            find_capabilities(&config, &probe(&config)),
            Err(VirtioError::MissingCapability {
                bdf: BDF,
                cfg_type: 2
            })
        );
    }

    #[test]
    fn regions_outside_their_bar_are_rejected() {
        let config = FakeConfig::default();
        config.add(BDF, modern_blk(0x1042));
        let device = probe(&config);
        let inside_end = CapRegion {
            bar: 4,
            offset: 0x3000,
            length: 0x1000,
        };
        let beyond = CapRegion {
            length: 0x1001,
            ..inside_end
        };
        let io_bar = CapRegion {
            bar: 0,
            ..inside_end
        };
        assert!(map_region(&device, CfgType::NOTIFY, beyond, 2).is_err());
        assert!(map_region(&device, CfgType::NOTIFY, io_bar, 2).is_err());
        assert!(
            map_region(
                &device,
                CfgType::COMMON,
                CapRegion {
                    length: 0x20,
                    ..inside_end
                },
                COMMON_CFG_MIN_LEN
            )
            .is_err()
        );
        assert_eq!(
            map_region(&device, CfgType::NOTIFY, inside_end, 2)
                .unwrap()
                .base(),
            0xFE00_3000
        );
    }

    #[test]
    fn common_cfg_matches_the_spec_layout() {
        assert_eq!(offset_of!(CommonCfg, device_status), 20);
        assert_eq!(offset_of!(CommonCfg, queue_select), 22);
        assert_eq!(offset_of!(CommonCfg, queue_notify_off), 30);
        assert_eq!(offset_of!(CommonCfg, queue_desc), 32);
        assert_eq!(offset_of!(CommonCfg, queue_device), 48);
        assert_eq!(offset_of!(CommonCfg, queue_reset), 58);
    }
}
