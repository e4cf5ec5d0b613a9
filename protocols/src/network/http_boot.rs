//! UEFI HTTP boot (UEFI 2.10 §24.7) on a NIC: a child handle with the path
//! `<NIC>/IPv4(0.0.0.0)/Uri()` and EFI_LOAD_FILE_PROTOCOL, as edk2's HTTP
//! boot driver makes. LoadFile takes the boot file's URL from the firmware
//! command line (`http=URL`, [`set_url`]) or from DHCP as an HTTP client
//! (vendor class `HTTPClient`, the URL in the boot file name), and GETs it.
//!
//! LoadFile's first call (no buffer) downloads the file into pages of our
//! own and answers with its size; the second copies it out and frees them.
//! What the file is (an EFI image, or a disk or ISO image for a RAM disk)
//! is the boot manager's business.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::RefCell;
use core::ffi::c_void;

use efi::ids::HandleId;
use platform::net::NetDevice;
use platform::sync::Global;
use uefi_raw::Status;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::media::LoadFileProtocol;

use super::dhcp::{self, BootClient};
use super::download::Download;
use super::error::NetBootError;
use super::http::{self, HttpError};
use super::http_client::{self, Sink};
use super::load_file::{self, NetworkFile};
use super::stack::{Stack, now};
use crate::device_path::{DevicePathBuf, node};

/// The URL from the firmware command line, for every NIC.
static URL: Global<Option<String>> = Global::new(None);

/// Sets the URL HTTP boot fetches (`http=` on the firmware command line)
/// instead of asking DHCP for one.
pub fn set_url(url: &str) {
    URL.with(|slot| *slot = Some(String::from(url)));
}

/// Whether `http=` gave a URL.
pub fn url_given() -> bool {
    URL.try_with(|slot| slot.is_some()).unwrap_or(false)
}

/// How long DHCP may take (as for PXE).
const DHCP_DEADLINE_MS: u64 = 8000;

struct HttpBoot {
    nic: Rc<dyn NetDevice>,
    /// The last file downloaded by a size query, until it is copied out.
    fetched: RefCell<Option<Download>>,
}

/// Installs HTTP boot for `nic`, published on `nic_handle`, on a child
/// handle whose path extends the NIC's; returns it.
pub fn install(nic_handle: HandleId, nic: Rc<dyn NetDevice>) -> Result<HandleId, Status> {
    let nic_path = efi::protocol_services::get_protocol::<DevicePathProtocol>(
        nic_handle,
        &DevicePathProtocol::GUID,
    )
    .ok_or(Status::NOT_FOUND)?;
    // SAFETY: the NIC's handle holds the whole path `add_nic` installed.
    let nic_path = unsafe { efi::device_path::read_path(nic_path) }?;
    // IPv4 node (§10.3.4.12): addresses from DHCP, so all zero; protocol
    // 6 (TCP). Uri node (§10.3.4.23) empty: the URL is found at boot.
    let mut ipv4 = [0u8; 23];
    ipv4[12..14].copy_from_slice(&6u16.to_le_bytes());
    let mut path = DevicePathBuf::from_bytes(&nic_path).map_err(|_| Status::INVALID_PARAMETER)?;
    for child in [node(3, 12, &ipv4), node(3, 24, &[])] {
        let child = child.map_err(|_| Status::INVALID_PARAMETER)?;
        path.push(&child).map_err(|_| Status::INVALID_PARAMETER)?;
    }
    let path = Box::leak(path.as_bytes().to_vec().into_boxed_slice());
    let load_file = load_file::new_interface(HttpBoot {
        nic,
        fetched: RefCell::new(None),
    });
    efi::protocol_services::install(
        None,
        &[
            (DevicePathProtocol::GUID, path.as_mut_ptr().cast::<c_void>()),
            (LoadFileProtocol::GUID, load_file),
        ],
    )
}

impl Sink for Option<Download> {
    fn length(&mut self, length: Option<u64>) -> Result<(), NetBootError> {
        *self = Some(Download::new(length)?);
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), NetBootError> {
        match self {
            Some(download) => download.push(bytes),
            None => Err(NetBootError::OutOfResources { bytes: 0 }),
        }
    }
}

impl NetworkFile for HttpBoot {
    const SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwHTLF");
    const NAME: &'static str = "http";

    /// The file into `buffer`, fetched by the first call (a size query,
    /// answered `BufferTooSmall` with the size) and kept until a buffer
    /// large enough takes it.
    fn load(&self, buffer: Option<&mut [u8]>) -> Result<u64, NetBootError> {
        let cached = self.fetched.borrow().as_ref().map(|d| d.bytes().len());
        let len = match cached {
            Some(len) => len,
            None => self.fetch()?,
        };
        match buffer {
            Some(out) if out.len() >= len => {
                if let Some(download) = self.fetched.borrow_mut().take() {
                    out[..len].copy_from_slice(download.bytes());
                }
                Ok(len as u64)
            }
            _ => Err(NetBootError::BufferTooSmall { needed: len as u64 }),
        }
    }
}

impl HttpBoot {
    /// DHCP, then the GET; the file stays in `fetched`.
    fn fetch(&self) -> Result<usize, NetBootError> {
        self.nic.start()?;
        let mut stack = Stack::new(&*self.nic);
        let lease = dhcp::acquire(&mut stack, BootClient::Http, DHCP_DEADLINE_MS)?;
        stack.configure(lease.address, lease.router);
        let given = URL.try_with(|slot| slot.clone()).flatten();
        let text = match given {
            Some(url) => url,
            None => {
                dhcp::boot_file(&lease.ack, lease.server)
                    .ok_or(NetBootError::NoBootFile)?
                    .name
            }
        };
        log::info!("http: DHCP address {}, boot file {text}", lease.address);
        let url = http::parse_url(&text)?;
        let started = now();
        let mut download: Option<Download> = None;
        let (url, length) = http_client::get(&mut stack, &url, &lease.dns, &mut download)?;
        let ms = (now() - started).total_millis().max(1);
        log::info!(
            "http: {url}: {length} bytes in {ms} ms ({} KB/s)",
            length / ms
        );
        let download = download.ok_or(HttpError::Malformed("no body"))?;
        let len = download.bytes().len();
        *self.fetched.borrow_mut() = Some(download);
        Ok(len)
    }
}
