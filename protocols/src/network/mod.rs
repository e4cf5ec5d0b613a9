//! Networking: the firmware's IPv4 boot clients (DHCP, TFTP) over smoltcp,
//! PXE, and the network interfaces they and the OS loaders use.
//!
//! Each [`NetDevice`] gets a handle with the device path
//! `PciRoot(0x0)/Pci(dev,fn)/MAC(address,0x1)` and
//! EFI_SIMPLE_NETWORK_PROTOCOL (UEFI 2.10 §24.1), which GRUB's efinet and
//! iPXE drive; the firmware's own network clients reach the device through
//! [`nics`].
//!
//! Nothing of the firmware opens SNP: GRUB opens it EXCLUSIVE and iPXE's
//! SNP driver BY_DRIVER|EXCLUSIVE, and an open of ours would first be
//! disconnected or make theirs fail. The device starts stopped (Mode.State
//! Stopped) and stops again at ExitBootServices ([`quiesce_all`]).
//!
//! WaitForPacket is a firmware condition event (like ConIn's WaitForKey)
//! that CheckEvent/WaitForEvent evaluate by polling the NIC; a condition is
//! a plain `fn()`, so each NIC gets its own from [`WAITERS`].

use alloc::rc::Rc;
use alloc::vec::Vec;

use efi::ids::HandleId;
use platform::net::{DisplayMac, NetDevice};
use platform::pci::Bdf;
use platform::sync::Global;
use uefi_raw::Status;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::network::snp::SimpleNetworkProtocol;

use crate::device_path::{DevicePathBuf, mac, pci, pci_root};

pub mod dhcp;
pub mod dns;
pub mod download;
pub mod error;
pub mod http;
pub mod http_boot;
pub mod http_client;
mod load_file;
pub mod nic;
pub mod pxe;
mod snp;
pub mod stack;
#[cfg(test)]
mod tests;
pub mod tftp;
pub mod tftp_client;

use nic::IF_TYPE_ETHERNET;
use snp::Snp;

struct Nic {
    handle: HandleId,
    device: Rc<dyn NetDevice>,
    snp: &'static Snp,
}

struct Registry(Vec<Nic>);

// SAFETY: the firmware runs on one CPU (see `platform::sync`); the devices
// and instances are only touched from this CPU.
unsafe impl Send for Registry {}

static NICS: Global<Registry> = Global::new(Registry(Vec::new()));

/// WaitForPacket's condition for the NIC at `index` of the registry.
fn frame_waiting(index: usize) -> bool {
    let snp = NICS.try_with(|nics| nics.0.get(index).map(|nic| nic.snp));
    snp.flatten().is_some_and(Snp::frame_waiting)
}

fn waiter<const INDEX: usize>() -> bool {
    frame_waiting(INDEX)
}

/// One WaitForPacket condition per NIC; more NICs than this are not
/// published (a VM with more than 8 NICs for the firmware is not a case).
const WAITERS: [fn() -> bool; 8] = [
    waiter::<0>,
    waiter::<1>,
    waiter::<2>,
    waiter::<3>,
    waiter::<4>,
    waiter::<5>,
    waiter::<6>,
    waiter::<7>,
];

/// Publishes `device`, the network function at `bdf`, on a new handle:
/// its device path and EFI_SIMPLE_NETWORK_PROTOCOL. Logs one line.
pub fn add_nic(device: Rc<dyn NetDevice>, bdf: Bdf) -> Result<HandleId, Status> {
    let index = NICS.with(|nics| nics.0.len());
    let waiter = *WAITERS.get(index).ok_or(Status::OUT_OF_RESOURCES)?;
    let address = device.mac();
    let path = DevicePathBuf::from_nodes(&[
        pci_root(0),
        pci(bdf.device, bdf.function),
        mac(&address, IF_TYPE_ETHERNET),
    ])
    .map_err(|_| Status::INVALID_PARAMETER)?;
    let wait_for_packet = efi::events::create_internal_wait_event(waiter);
    if wait_for_packet.is_null() {
        return Err(Status::OUT_OF_RESOURCES);
    }
    let snp = snp::new_snp(device.clone(), wait_for_packet);
    // The handle database keeps the pointer for as long as the handle
    // lives, which is forever: leak a copy.
    let path = alloc::boxed::Box::leak(path.as_bytes().to_vec().into_boxed_slice());
    let handle = efi::protocol_services::install(
        None,
        &[
            (DevicePathProtocol::GUID, path.as_mut_ptr().cast()),
            (SimpleNetworkProtocol::GUID, snp.interface()),
        ],
    )?;
    log::info!(
        "network: virtio-net at {bdf}, MAC {}, link {}",
        DisplayMac(&address),
        if device.link_up() { "up" } else { "down" }
    );
    NICS.with(|nics| {
        nics.0.push(Nic {
            handle,
            device,
            snp,
        })
    });
    Ok(handle)
}

/// Every published NIC: its handle (where a PXE client installs
/// EFI_PXE_BASE_CODE_PROTOCOL) and its device.
pub fn nics() -> Vec<(HandleId, Rc<dyn NetDevice>)> {
    NICS.with(|nics| {
        nics.0
            .iter()
            .map(|nic| (nic.handle, nic.device.clone()))
            .collect()
    })
}

/// Stops every NIC, so no DMA lands in memory the OS owns and its driver
/// finds the device reset. The core runs this at ExitBootServices
/// (§7.4.6), after which SNP may not be used.
pub fn quiesce_all() {
    let done = NICS.try_with(|nics| {
        for nic in &nics.0 {
            nic.device.stop();
        }
    });
    if done.is_none() {
        log::error!("network: NIC list busy at quiesce");
    }
}
