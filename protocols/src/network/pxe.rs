//! PXE boot on a NIC's handle: EFI_PXE_BASE_CODE_PROTOCOL (UEFI 2.10 §24.3)
//! as far as boot loaders use it, and EFI_LOAD_FILE_PROTOCOL (§13.1), which
//! the boot manager's LoadImage calls for a `MAC()` boot option.
//!
//! LoadFile runs DHCP as a PXE client, takes the boot file from the ACK and
//! fetches it by TFTP: a first call without a buffer learns the size (TFTP
//! `tsize`), the second reads the file into LoadImage's pages. The PXE
//! Base Code is then started with the ACK in its Mode, which is how the
//! started image finds its siblings: shim reads Mode.DhcpAck's server and
//! boot file directory and fetches `grubx64.efi` with Mtftp; GRUB reads the
//! same ACK to configure its own stack over SNP.
//!
//! Implemented: Start (IPv4), Stop, Dhcp, Mtftp TFTP_GET_FILE_SIZE and
//! TFTP_READ_FILE, SetStationIp. Discover, the multicast and write and
//! directory operations of Mtftp, UdpRead/UdpWrite, SetIpFilter, Arp,
//! SetParameters and SetPackets return EFI_UNSUPPORTED; so does IPv6.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::{RefCell, UnsafeCell};
use core::ffi::c_void;

use efi::boundary;
use efi::ids::HandleId;
use platform::net::{DisplayMac, NetDevice};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
use uefi_raw::protocol::media::LoadFileProtocol;
use uefi_raw::protocol::network::pxe::{
    PxeBaseCodeBootType, PxeBaseCodeDiscoverInfo, PxeBaseCodeIpFilter, PxeBaseCodeMode,
    PxeBaseCodeMtftpInfo, PxeBaseCodePacket, PxeBaseCodeProtocol, PxeBaseCodeTftpOpcode,
    PxeBaseCodeUdpOpFlags, PxeBaseCodeUdpPort,
};
use uefi_raw::{Boolean, Char8, IpAddress, MacAddress, Status};

use super::dhcp::{self, BootClient, Lease};
use super::error::NetBootError;
use super::load_file::{self, NetworkFile};
use super::stack::{Stack, now};
use super::tftp::{self, TftpError};
use super::tftp_client::{self, Target};

/// How long DHCP may take before a network boot gives up (the issue's
/// "within 10 s" for a network without a DHCP server).
const DHCP_DEADLINE_MS: u64 = 8000;
/// §24.3: the default TTL and ToS of the PXE Base Code's IP packets.
const DEFAULT_TTL: u8 = 16;
const PXE_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwPXEB");
/// Longest file name Mtftp takes (a TFTP request must fit one packet).
const MAX_FILE_NAME: usize = 512;

/// What the PXE Base Code and LoadFile of one NIC share.
struct PxeClient {
    nic: Rc<dyn NetDevice>,
    /// Station address and router, from DHCP or SetStationIp.
    address: RefCell<Option<(Ipv4Cidr, Option<Ipv4Address>)>>,
    /// The last lease, whose ACK names the boot file.
    lease: RefCell<Option<Lease>>,
    /// Read by callers through `PxeBaseCodeProtocol::mode` between calls,
    /// written only inside our calls: the firmware is single-threaded and
    /// no reference to it outlives one of our functions.
    mode: Box<UnsafeCell<PxeBaseCodeMode>>,
}

#[repr(C)]
struct PxeInstance {
    protocol: PxeBaseCodeProtocol,
    signature: u64,
    client: Rc<PxeClient>,
}

/// The PXE boot file, behind the NIC's LoadFile.
struct PxeBootFile(Rc<PxeClient>);

impl NetworkFile for PxeBootFile {
    const SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwPXLF");
    const NAME: &'static str = "pxe";

    fn load(&self, buffer: Option<&mut [u8]>) -> Result<u64, NetBootError> {
        self.0.load_boot_file(buffer)
    }
}

impl PxeClient {
    /// Runs `f` on the Mode.
    fn with_mode<R>(&self, f: impl FnOnce(&mut PxeBaseCodeMode) -> R) -> R {
        // SAFETY: see `mode`: no other reference to the Mode exists while
        // one of our functions runs, and this one ends before it returns.
        f(unsafe { &mut *self.mode.get() })
    }

    fn started(&self) -> bool {
        self.with_mode(|mode| mode.started.into())
    }

    /// Start (§24.3.2) for IPv4.
    fn start(&self) -> Result<(), Status> {
        if self.started() {
            return Err(Status::ALREADY_STARTED);
        }
        self.nic
            .start()
            .map_err(|e| NetBootError::from(e).status())?;
        self.with_mode(|mode| {
            *mode = zeroed_mode();
            mode.started = Boolean::TRUE;
            mode.auto_arp = Boolean::TRUE;
            mode.ttl = DEFAULT_TTL;
        });
        Ok(())
    }

    /// Stop (§24.3.3): the Mode is cleared, the device stays as SNP left it.
    fn stop(&self) -> Result<(), Status> {
        if !self.started() {
            return Err(Status::NOT_STARTED);
        }
        self.with_mode(|mode| *mode = zeroed_mode());
        *self.address.borrow_mut() = None;
        *self.lease.borrow_mut() = None;
        Ok(())
    }

    /// A stack over the started device, with the station address if known.
    fn stack(&self) -> Result<Stack<'_>, NetBootError> {
        self.nic.start()?;
        let mut stack = Stack::new(&*self.nic);
        if let Some((address, router)) = *self.address.borrow() {
            stack.configure(address, router);
        }
        Ok(stack)
    }

    /// Dhcp (§24.3.4): a lease as a PXE client, recorded in the Mode.
    fn dhcp(&self) -> Result<Lease, NetBootError> {
        let mut stack = self.stack()?;
        let started = now();
        let lease = dhcp::acquire(&mut stack, BootClient::Pxe, DHCP_DEADLINE_MS)?;
        log::info!(
            "pxe: DHCP on {}: address {}, server {} ({} ms)",
            DisplayMac(&self.nic.mac()),
            lease.address,
            lease.server,
            (now() - started).total_millis()
        );
        *self.address.borrow_mut() = Some((lease.address, lease.router));
        *self.lease.borrow_mut() = Some(lease.clone());
        self.with_mode(|mode| record_lease(mode, &lease));
        Ok(lease)
    }

    /// A TFTP read of `file` from `server` into `target`.
    fn tftp(
        &self,
        server: Ipv4Address,
        file: &str,
        block_size: u16,
        target: Target,
    ) -> Result<u64, NetBootError> {
        if self.address.borrow().is_none() {
            return Err(NetBootError::NoAddress);
        }
        let mut stack = self.stack()?;
        let result = tftp_client::read(&mut stack, server, file, block_size, target);
        self.with_mode(|mode| {
            mode.tftp_error_received = Boolean::FALSE;
            if let Err(NetBootError::Tftp(TftpError::Server { code, message })) = &result {
                mode.tftp_error_received = Boolean::TRUE;
                mode.tftp_error.error_code = *code as u8;
                let text = message.as_bytes();
                let len = text.len().min(mode.tftp_error.error_string.len() - 1);
                for (to, from) in mode.tftp_error.error_string.iter_mut().zip(&text[..len]) {
                    *to = *from as Char8;
                }
            }
        });
        result
    }

    /// LoadFile's work: DHCP when there is no lease yet, then the boot
    /// file's size (`buffer` None: `BufferTooSmall` with it) or the file.
    fn load_boot_file(&self, buffer: Option<&mut [u8]>) -> Result<u64, NetBootError> {
        if !self.started() {
            self.start()
                .map_err(|_| NetBootError::Device(platform::net::NetError::Stopped))?;
        }
        let known = self.lease.borrow().clone();
        let lease = match known {
            Some(lease) => lease,
            None => self.dhcp()?,
        };
        let boot = dhcp::boot_file(&lease.ack, lease.server).ok_or(NetBootError::NoBootFile)?;
        let started = now();
        let size_only = buffer.is_none();
        let target = match buffer {
            Some(buffer) => Target::Buffer(buffer),
            None => Target::SizeOnly,
        };
        let size = self.tftp(boot.server, &boot.name, tftp::ETHERNET_BLOCK_SIZE, target)?;
        if size_only {
            log::info!(
                "pxe: boot file tftp://{}/{}: {size} bytes",
                boot.server,
                boot.name
            );
            return Err(NetBootError::BufferTooSmall { needed: size });
        } else {
            let ms = (now() - started).total_millis().max(1);
            log::info!("pxe: read {size} bytes in {ms} ms ({} KB/s)", size / ms);
        }
        Ok(size)
    }
}

fn zeroed_mode() -> PxeBaseCodeMode {
    // SAFETY: PxeBaseCodeMode is plain data (booleans, bytes, integers,
    // addresses and packet unions of bytes): all zeroes is a valid value,
    // and the spec's initial state (§24.3.1: nothing received, not started).
    unsafe { core::mem::zeroed() }
}

/// Mode after a lease: station address, mask, the ACK and the route.
fn record_lease(mode: &mut PxeBaseCodeMode, lease: &Lease) {
    mode.station_ip = IpAddress::new_v4(lease.address.address().octets());
    mode.subnet_mask = IpAddress::new_v4(lease.address.netmask().octets());
    let mut packet = [0u8; dhcp::MAX_PACKET];
    let len = lease.ack.len().min(packet.len());
    packet[..len].copy_from_slice(&lease.ack[..len]);
    mode.dhcp_ack = PxeBaseCodePacket { raw: packet };
    mode.dhcp_ack_received = Boolean::TRUE;
    mode.route_table_entries = 0;
    if let Some(router) = lease.router {
        mode.route_table[0].gw_addr = IpAddress::new_v4(router.octets());
        mode.route_table_entries = 1;
    }
}

/// Installs the PXE Base Code and LoadFile for `nic` on `handle` (the NIC's
/// handle, with its `MAC()` device path).
pub fn install(handle: HandleId, nic: Rc<dyn NetDevice>) -> Result<(), Status> {
    let client = Rc::new(PxeClient {
        nic,
        address: RefCell::new(None),
        lease: RefCell::new(None),
        mode: Box::new(UnsafeCell::new(zeroed_mode())),
    });
    let pxe = Box::into_raw(Box::new(PxeInstance {
        protocol: PxeBaseCodeProtocol {
            revision: 0x0002_0000,
            start,
            stop,
            dhcp: dhcp_call,
            discover,
            mtftp,
            udp_write,
            udp_read,
            set_ip_filter,
            arp,
            set_parameters,
            set_station_ip,
            set_packets,
            mode: client.mode.get(),
        },
        signature: PXE_SIGNATURE,
        client: client.clone(),
    }));
    let load_file = load_file::new_interface(PxeBootFile(client));
    efi::protocol_services::install(
        Some(handle),
        &[
            (PxeBaseCodeProtocol::GUID, pxe.cast::<c_void>()),
            (LoadFileProtocol::GUID, load_file),
        ],
    )
    .map(|_| ())
}

/// Validates `This` of a PXE Base Code call.
///
/// # Safety
/// `this` is null or readable through where a `PxeInstance` keeps its
/// signature: every interface `install` made is (never freed).
unsafe fn pxe_client<'a>(this: *const PxeBaseCodeProtocol) -> Result<&'a PxeClient, Status> {
    let instance = this.cast::<PxeInstance>();
    if instance.is_null() || !instance.is_aligned() {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: non-null, aligned and readable by this function's contract.
    if unsafe { (&raw const (*instance).signature).read() } != PXE_SIGNATURE {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: the signature marks a `PxeInstance` made by `install`, never
    // freed; only shared references are taken.
    Ok(unsafe { &*(*instance).client })
}

/// As [`pxe_client`], for the calls that need a started PXE Base Code
/// (§24.3: `EFI_NOT_STARTED` otherwise).
///
/// # Safety
/// As for [`pxe_client`].
unsafe fn started_client<'a>(this: *const PxeBaseCodeProtocol) -> Result<&'a PxeClient, Status> {
    // SAFETY: this function's contract is `pxe_client`'s.
    let client = unsafe { pxe_client(this) }?;
    if client.started() {
        Ok(client)
    } else {
        Err(Status::NOT_STARTED)
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.3.2 requires of the caller.
unsafe extern "efiapi" fn start(this: *mut PxeBaseCodeProtocol, use_ipv6: Boolean) -> Status {
    // SAFETY: `This` is the caller's interface pointer (§24.3).
    let client = match unsafe { pxe_client(this) } {
        Ok(client) => client,
        Err(status) => return status,
    };
    if use_ipv6.into() {
        // IPv6 PXE is not implemented (README).
        return Status::UNSUPPORTED;
    }
    boundary::status(client.start())
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.3.3 requires of the caller.
unsafe extern "efiapi" fn stop(this: *mut PxeBaseCodeProtocol) -> Status {
    // SAFETY: as for `start`.
    boundary::status(unsafe { pxe_client(this) }.and_then(|client| client.stop()))
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.3.4 requires of the caller.
unsafe extern "efiapi" fn dhcp_call(
    this: *mut PxeBaseCodeProtocol,
    _sort_offers: Boolean,
) -> Status {
    // SAFETY: as for `start`.
    let client = match unsafe { started_client(this) } {
        Ok(client) => client,
        Err(status) => return status,
    };
    match client.dhcp() {
        Ok(_) => Status::SUCCESS,
        Err(error) => {
            log::warn!("pxe: DHCP failed: {error}");
            error.status()
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.3.6 requires of the caller.
unsafe extern "efiapi" fn mtftp(
    this: *mut PxeBaseCodeProtocol,
    operation: PxeBaseCodeTftpOpcode,
    buffer: *mut c_void,
    _overwrite: Boolean,
    buffer_size: *mut u64,
    block_size: *const usize,
    server_ip: *const IpAddress,
    filename: *const Char8,
    _info: *const PxeBaseCodeMtftpInfo,
    dont_use_buffer: Boolean,
) -> Status {
    // SAFETY: as for `start`.
    let client = match unsafe { started_client(this) } {
        Ok(client) => client,
        Err(status) => return status,
    };
    let size_only = match operation {
        PxeBaseCodeTftpOpcode::TFTP_GET_FILE_SIZE => true,
        PxeBaseCodeTftpOpcode::TFTP_READ_FILE => dont_use_buffer.into(),
        _ => return Status::UNSUPPORTED,
    };
    // SAFETY: the caller passes readable pointers or NULL (§24.3.6).
    let arguments = unsafe {
        (
            boundary::read(buffer_size),
            boundary::read(server_ip),
            (!block_size.is_null())
                .then(|| boundary::read(block_size))
                .transpose(),
            file_name(filename),
        )
    };
    let (size, server, block, name) = match arguments {
        (Ok(size), Ok(server), Ok(block), Ok(name)) => (size, server, block, name),
        _ => return Status::INVALID_PARAMETER,
    };
    // §24.3.6: BlockSize below 512 is invalid; NULL is the largest.
    let block = match block {
        None => tftp::ETHERNET_BLOCK_SIZE,
        Some(block) if block < 512 => return Status::INVALID_PARAMETER,
        Some(block) => block.min(usize::from(tftp::ETHERNET_BLOCK_SIZE)) as u16,
    };
    // SAFETY: the union's IPv4 view is the first four bytes of any value.
    let server = Ipv4Address::from_octets(unsafe { server.v4 }.octets());
    let target = if size_only {
        Target::SizeOnly
    } else {
        let Ok(len) = usize::try_from(size) else {
            return Status::INVALID_PARAMETER;
        };
        // SAFETY: the caller hands us `BufferSize` bytes at `Buffer` to fill
        // (§24.3.6); `bytes_mut` rejects NULL for a non-empty buffer.
        match unsafe { boundary::bytes_mut(buffer.cast(), len) } {
            Ok(slice) => Target::Buffer(slice),
            Err(status) => return status,
        }
    };
    let result = client.tftp(server, &name, block, target);
    let reported = match &result {
        Ok(size) | Err(NetBootError::BufferTooSmall { needed: size }) => Some(*size),
        Err(_) => None,
    };
    if let Some(reported) = reported {
        // SAFETY: read above, so non-null and the caller's to write.
        let _ = unsafe { boundary::write(buffer_size, reported) };
    }
    match result {
        Ok(_) => Status::SUCCESS,
        Err(error) => {
            // The caller gets the status; shim, for one, probes optional
            // files, so a missing one is not worth a warning.
            log::info!("pxe: tftp://{server}/{name}: {error}");
            error.status()
        }
    }
}

/// A NUL-terminated ASCII file name of at most `MAX_FILE_NAME` bytes.
///
/// # Safety
/// `name` is null or points to a NUL-terminated string, or to at least
/// `MAX_FILE_NAME` readable bytes.
unsafe fn file_name(name: *const Char8) -> Result<String, Status> {
    if name.is_null() {
        return Err(Status::INVALID_PARAMETER);
    }
    let mut text = String::new();
    for i in 0..MAX_FILE_NAME {
        // SAFETY: within the string by the contract; we stop at its NUL.
        let byte = unsafe { name.cast::<u8>().add(i).read() };
        if byte == 0 {
            return Ok(text);
        }
        text.push(char::from(byte));
    }
    Err(Status::INVALID_PARAMETER)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.3.13 requires of the caller.
unsafe extern "efiapi" fn set_station_ip(
    this: *mut PxeBaseCodeProtocol,
    new_station_ip: *const IpAddress,
    new_subnet_mask: *const IpAddress,
) -> Status {
    // SAFETY: as for `start`.
    let client = match unsafe { started_client(this) } {
        Ok(client) => client,
        Err(status) => return status,
    };
    // SAFETY: the caller passes readable pointers or NULL (§24.3.13: NULL
    // leaves that value as it is).
    let (ip, mask) = unsafe {
        (
            (!new_station_ip.is_null())
                .then(|| boundary::read(new_station_ip))
                .transpose(),
            (!new_subnet_mask.is_null())
                .then(|| boundary::read(new_subnet_mask))
                .transpose(),
        )
    };
    let (Ok(ip), Ok(mask)) = (ip, mask) else {
        return Status::INVALID_PARAMETER;
    };
    client.with_mode(|mode| {
        // SAFETY: the IPv4 view of the unions (we run IPv4 only).
        let (old_ip, old_mask) = unsafe { (mode.station_ip.v4, mode.subnet_mask.v4) };
        // SAFETY: as above.
        let ip = ip.map_or(old_ip, |ip| unsafe { ip.v4 });
        // SAFETY: as above.
        let mask = mask.map_or(old_mask, |mask| unsafe { mask.v4 });
        let Some(prefix) =
            smoltcp::wire::IpAddress::Ipv4(Ipv4Address::from_octets(mask.octets())).prefix_len()
        else {
            return Status::INVALID_PARAMETER;
        };
        mode.station_ip = IpAddress::new_v4(ip.octets());
        mode.subnet_mask = IpAddress::new_v4(mask.octets());
        let router = client.address.borrow().and_then(|(_, router)| router);
        *client.address.borrow_mut() = Some((
            Ipv4Cidr::new(Ipv4Address::from_octets(ip.octets()), prefix),
            router,
        ));
        Status::SUCCESS
    })
}

/// # Safety
/// Nothing is read: Discover is not implemented.
unsafe extern "efiapi" fn discover(
    _: *mut PxeBaseCodeProtocol,
    _: PxeBaseCodeBootType,
    _: *mut u16,
    _: Boolean,
    _: *const PxeBaseCodeDiscoverInfo,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Nothing is read: UdpWrite is not implemented.
unsafe extern "efiapi" fn udp_write(
    _: *mut PxeBaseCodeProtocol,
    _: PxeBaseCodeUdpOpFlags,
    _: *const IpAddress,
    _: *const PxeBaseCodeUdpPort,
    _: *const IpAddress,
    _: *const IpAddress,
    _: *mut PxeBaseCodeUdpPort,
    _: *const usize,
    _: *const c_void,
    _: *const usize,
    _: *const c_void,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Nothing is read: UdpRead is not implemented.
unsafe extern "efiapi" fn udp_read(
    _: *mut PxeBaseCodeProtocol,
    _: PxeBaseCodeUdpOpFlags,
    _: *mut IpAddress,
    _: *mut PxeBaseCodeUdpPort,
    _: *mut IpAddress,
    _: *mut PxeBaseCodeUdpPort,
    _: *const usize,
    _: *mut c_void,
    _: *mut usize,
    _: *mut c_void,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Nothing is read: SetIpFilter is not implemented (it filters UdpRead).
unsafe extern "efiapi" fn set_ip_filter(
    _: *mut PxeBaseCodeProtocol,
    _: *const PxeBaseCodeIpFilter,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Nothing is read: Arp is not implemented.
unsafe extern "efiapi" fn arp(
    _: *mut PxeBaseCodeProtocol,
    _: *const IpAddress,
    _: *mut MacAddress,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Nothing is read: SetParameters is not implemented.
unsafe extern "efiapi" fn set_parameters(
    _: *mut PxeBaseCodeProtocol,
    _: *const Boolean,
    _: *const Boolean,
    _: *const u8,
    _: *const u8,
    _: *const Boolean,
) -> Status {
    Status::UNSUPPORTED
}

/// # Safety
/// Nothing is read: SetPackets is not implemented.
#[allow(clippy::too_many_arguments)]
unsafe extern "efiapi" fn set_packets(
    _: *mut PxeBaseCodeProtocol,
    _: *const Boolean,
    _: *const Boolean,
    _: *const Boolean,
    _: *const Boolean,
    _: *const Boolean,
    _: *const Boolean,
    _: *const PxeBaseCodePacket,
    _: *const PxeBaseCodePacket,
    _: *const PxeBaseCodePacket,
    _: *const PxeBaseCodePacket,
    _: *const PxeBaseCodePacket,
    _: *const PxeBaseCodePacket,
) -> Status {
    Status::UNSUPPORTED
}
