//! EFI_SIMPLE_NETWORK_PROTOCOL's entry points (UEFI 2.10 §24.1): each
//! validates `This` and the caller's pointers, turns them into Rust values
//! and hands them to [`Nic`], then refreshes the Mode the caller reads.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::c_void;

use efi::boundary;
use platform::net::{MacAddress, NetDevice};
use platform::sync::Global;
use uefi_raw::protocol::network::snp::{
    InterruptStatus, NetworkMode, NetworkState, NetworkStatistics, ReceiveFlags,
    SimpleNetworkProtocol,
};
use uefi_raw::{Boolean, Event, IpAddress, Status};

use super::nic::{MAX_MCAST_FILTERS, Nic, ReceiveError, mcast_ip_to_mac};

const SNP_SIGNATURE: u64 = u64::from_le_bytes(*b"vmfwSNP_");
/// §24.1: EFI_SIMPLE_NETWORK_PROTOCOL_REVISION.
const REVISION: u64 = 0x0001_0000;
/// Bytes of an EFI_MAC_ADDRESS; lists of them (the multicast filter) are
/// laid out at this stride.
const EFI_MAC_BYTES: usize = size_of::<uefi_raw::MacAddress>();

#[repr(C)]
pub(super) struct Snp {
    protocol: SimpleNetworkProtocol,
    /// What `protocol.mode` points at; rewritten from the `Nic` after every
    /// call, read by the caller between calls.
    mode: UnsafeCell<NetworkMode>,
    signature: u64,
    nic: Global<Nic>,
}

impl Snp {
    /// Runs `f` on the NIC and refreshes Mode; EFI_NOT_READY when a call
    /// interrupted another one on the same NIC (a notify function calling
    /// back in), which §24.1's "not ready" covers.
    fn with<R>(&self, f: impl FnOnce(&mut Nic) -> R) -> Result<R, Status> {
        self.nic
            .try_with(|nic| {
                let result = f(nic);
                // SAFETY: Mode is written only here, under the NIC's borrow
                // flag, so no other reference to it exists; the firmware is
                // single-threaded and the caller reads it only between calls.
                nic.write_mode(unsafe { &mut *self.mode.get() });
                result
            })
            .ok_or(Status::NOT_READY)
    }

    /// WaitForPacket's condition for this NIC.
    pub(super) fn frame_waiting(&self) -> bool {
        self.with(Nic::frame_waiting).unwrap_or(false)
    }

    /// The interface pointer installed on the handle.
    pub(super) fn interface(&'static self) -> *mut c_void {
        (&raw const self.protocol).cast_mut().cast()
    }
}

/// Builds an instance over `device`, Mode filled in and the device stopped
/// (Mode.State Stopped until the caller's Start). Never freed: the handle
/// database keeps the pointer for good.
pub(super) fn new_snp(device: Rc<dyn NetDevice>, wait_for_packet: Event) -> &'static Snp {
    let nic = Nic::new(device);
    let instance = Box::leak(Box::new(Snp {
        protocol: SimpleNetworkProtocol {
            revision: REVISION,
            start,
            stop,
            initialize,
            reset,
            shutdown,
            receive_filters,
            station_address,
            statistics,
            multicast_ip_to_mac,
            non_volatile_data,
            get_status,
            transmit,
            receive,
            wait_for_packet,
            mode: core::ptr::null(),
        },
        mode: UnsafeCell::new(empty_mode()),
        signature: SNP_SIGNATURE,
        nic: Global::new(nic),
    }));
    instance.protocol.mode = instance.mode.get().cast_const();
    let _ = instance.with(|_| ());
    instance
}

fn empty_mode() -> NetworkMode {
    NetworkMode {
        state: NetworkState::STOPPED,
        hw_address_size: 0,
        media_header_size: 0,
        max_packet_size: 0,
        nv_ram_size: 0,
        nv_ram_access_size: 0,
        receive_filter_mask: 0,
        receive_filter_setting: 0,
        max_mcast_filter_count: 0,
        mcast_filter_count: 0,
        mcast_filter: [uefi_raw::MacAddress::default(); 16],
        current_address: uefi_raw::MacAddress::default(),
        broadcast_address: uefi_raw::MacAddress::default(),
        permanent_address: uefi_raw::MacAddress::default(),
        if_type: 0,
        mac_address_changeable: Boolean::FALSE,
        multiple_tx_supported: Boolean::FALSE,
        media_present_supported: Boolean::FALSE,
        media_present: Boolean::FALSE,
    }
}

/// Validates `This` of an SNP call.
///
/// # Safety
/// `this` is null or readable up to and including where an `Snp` keeps its
/// signature: every interface `new_snp` returned is (never freed).
unsafe fn instance<'a>(this: *const SimpleNetworkProtocol) -> Result<&'a Snp, Status> {
    let instance = this.cast::<Snp>();
    if instance.is_null() || !instance.is_aligned() {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: non-null and aligned, and readable through the signature by
    // this function's contract. The signature decides whether it is ours.
    let signature = unsafe { (&raw const (*instance).signature).read() };
    if signature != SNP_SIGNATURE {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: the signature marks an `Snp` made by `new_snp`, leaked and
    // never freed; we only take shared references to it.
    Ok(unsafe { &*instance })
}

/// Runs `f` on the instance behind `this`, flattening the statuses.
///
/// # Safety
/// As [`instance`].
unsafe fn call(
    this: *const SimpleNetworkProtocol,
    f: impl FnOnce(&mut Nic) -> Result<(), Status>,
) -> Status {
    // SAFETY: passed on from this function's contract.
    let result = unsafe { instance(this) }.and_then(|snp| snp.with(f)?);
    boundary::status(result)
}

/// Reads the HwAddressSize (6) bytes of an EFI_MAC_ADDRESS the caller
/// points at; `None` for NULL. edk2 copies no more than that either, so a
/// caller's 6-byte array is enough.
///
/// # Safety
/// `ptr` is null or valid for reading 6 bytes.
unsafe fn read_mac(ptr: *const uefi_raw::MacAddress) -> Result<Option<MacAddress>, Status> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null, readable for 6 bytes by this function's contract.
    let bytes = unsafe { boundary::bytes(ptr.cast::<u8>(), 6) }?;
    let mut mac = [0; 6];
    mac.copy_from_slice(bytes);
    Ok(Some(mac))
}

/// Writes the 6 address bytes into an optional output EFI_MAC_ADDRESS.
///
/// # Safety
/// `ptr` is null or valid for writing 6 bytes.
unsafe fn write_mac(ptr: *mut uefi_raw::MacAddress, mac: &MacAddress) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: non-null, writable for 6 bytes by this function's contract.
    if let Ok(out) = unsafe { boundary::bytes_mut(ptr.cast::<u8>(), 6) } {
        out.copy_from_slice(mac);
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (Start) requires of the caller.
unsafe extern "efiapi" fn start(this: *const SimpleNetworkProtocol) -> Status {
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe { call(this, Nic::start) }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (Stop) requires of the caller.
unsafe extern "efiapi" fn stop(this: *const SimpleNetworkProtocol) -> Status {
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe { call(this, Nic::stop) }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (Initialize) requires of the caller.
unsafe extern "efiapi" fn initialize(
    this: *const SimpleNetworkProtocol,
    _extra_rx_buffer_size: usize,
    _extra_tx_buffer_size: usize,
) -> Status {
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe { call(this, Nic::initialize) }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (Reset) requires of the caller.
unsafe extern "efiapi" fn reset(this: *const SimpleNetworkProtocol, _extended: Boolean) -> Status {
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe { call(this, Nic::reset) }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (Shutdown) requires of the caller.
unsafe extern "efiapi" fn shutdown(this: *const SimpleNetworkProtocol) -> Status {
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe { call(this, Nic::shutdown) }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (ReceiveFilters) requires of the
/// caller: `multicast_filter` holds `multicast_filter_count` EFI_MAC_ADDRESS
/// entries when the count is not 0 and the list is not reset.
unsafe extern "efiapi" fn receive_filters(
    this: *const SimpleNetworkProtocol,
    enable: ReceiveFlags,
    disable: ReceiveFlags,
    reset_multicast_filter: Boolean,
    multicast_filter_count: usize,
    multicast_filter: *const uefi_raw::MacAddress,
) -> Status {
    let reset = bool::from(reset_multicast_filter);
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe {
        call(this, |nic| {
            nic.require_initialized()?;
            // The list is optional when ResetMCastFilter is TRUE, and more
            // entries than the mode holds are refused before it is read.
            let count = if reset { 0 } else { multicast_filter_count };
            if count > MAX_MCAST_FILTERS {
                return Err(Status::INVALID_PARAMETER);
            }
            // SAFETY: the caller's list of `count` addresses (# Safety
            // above); a NULL list with a non-zero count is refused.
            let raw = boundary::bytes(multicast_filter.cast::<u8>(), count * EFI_MAC_BYTES)?;
            let list: Vec<MacAddress> = raw
                .chunks_exact(EFI_MAC_BYTES)
                .map(|entry| {
                    let mut mac = [0; 6];
                    mac.copy_from_slice(&entry[..6]);
                    mac
                })
                .collect();
            nic.receive_filters(enable, disable, reset, &list)
        })
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (StationAddress) requires of the
/// caller.
unsafe extern "efiapi" fn station_address(
    this: *const SimpleNetworkProtocol,
    reset: Boolean,
    new: *const uefi_raw::MacAddress,
) -> Status {
    let reset = bool::from(reset);
    // SAFETY: the caller's new address, when given (# Safety above).
    let new = match unsafe { read_mac(new) } {
        Ok(new) => new,
        Err(status) => return status,
    };
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe { call(this, |nic| nic.station_address(reset, new)) }
}

/// Statistics (§24.1): no counters are kept, so after the state checks
/// every call is EFI_UNSUPPORTED.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (Statistics) requires of the caller.
unsafe extern "efiapi" fn statistics(
    this: *const SimpleNetworkProtocol,
    _reset: Boolean,
    _size: *mut usize,
    _table: *mut NetworkStatistics,
) -> Status {
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe {
        call(this, |nic| {
            nic.require_initialized()?;
            Err(Status::UNSUPPORTED)
        })
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (MCastIPtoMAC) requires of the
/// caller.
unsafe extern "efiapi" fn multicast_ip_to_mac(
    this: *const SimpleNetworkProtocol,
    ipv6: Boolean,
    ip: *const IpAddress,
    mac: *mut uefi_raw::MacAddress,
) -> Status {
    // SAFETY: the caller's EFI_IP_ADDRESS (16 bytes) (# Safety above).
    let ip = match unsafe { boundary::read(ip.cast::<[u8; 16]>()) } {
        Ok(ip) => ip,
        Err(status) => return status,
    };
    if mac.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let mut mapped = [0; 6];
    // SAFETY: `This` is the interface the caller got from our handle.
    let status = unsafe {
        call(this, |nic| {
            nic.require_initialized()?;
            mapped = mcast_ip_to_mac(ipv6.into(), &ip)?;
            Ok(())
        })
    };
    if status == Status::SUCCESS {
        // The whole EFI_MAC_ADDRESS, zero-padded: it is a fresh value.
        // SAFETY: non-null, the caller's output (# Safety above).
        return boundary::status(unsafe { boundary::write(mac, mapped.into()) });
    }
    status
}

/// NvData (§24.1): the interface has no NVRAM (Mode.NvRamSize 0), so after
/// the state checks every call is EFI_UNSUPPORTED.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (NvData) requires of the caller.
unsafe extern "efiapi" fn non_volatile_data(
    this: *const SimpleNetworkProtocol,
    _read: Boolean,
    _offset: usize,
    _size: usize,
    _buffer: *mut c_void,
) -> Status {
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe {
        call(this, |nic| {
            nic.require_initialized()?;
            Err(Status::UNSUPPORTED)
        })
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (GetStatus) requires of the caller.
unsafe extern "efiapi" fn get_status(
    this: *const SimpleNetworkProtocol,
    interrupt_status: *mut InterruptStatus,
    tx_buf: *mut *mut c_void,
) -> Status {
    let mut answer = (None, None);
    // SAFETY: `This` is the interface the caller got from our handle.
    let status = unsafe {
        call(this, |nic| {
            answer = nic.get_status(!interrupt_status.is_null(), !tx_buf.is_null())?;
            Ok(())
        })
    };
    if status != Status::SUCCESS {
        return status;
    }
    let (interrupts, recycled) = answer;
    if let Some(interrupts) = interrupts {
        // SAFETY: non-null (asked for above), the caller's output.
        if let Err(status) = unsafe { boundary::write(interrupt_status, interrupts) } {
            return status;
        }
    }
    if let Some(address) = recycled {
        // The address Transmit was given, handed back as that pointer.
        let buffer = core::ptr::with_exposed_provenance_mut::<c_void>(address);
        // SAFETY: non-null (asked for above), the caller's output.
        if let Err(status) = unsafe { boundary::write(tx_buf, buffer) } {
            return status;
        }
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (Transmit) requires of the caller:
/// `buffer` holds `buffer_size` bytes.
unsafe extern "efiapi" fn transmit(
    this: *const SimpleNetworkProtocol,
    header_size: usize,
    buffer_size: usize,
    buffer: *const c_void,
    src: *const uefi_raw::MacAddress,
    dest: *const uefi_raw::MacAddress,
    protocol: *const u16,
) -> Status {
    if buffer.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's frame of `buffer_size` bytes (# Safety above).
    let frame = match unsafe { boundary::bytes(buffer.cast::<u8>(), buffer_size) } {
        Ok(frame) => frame,
        Err(status) => return status,
    };
    // The addresses and the protocol only matter when a header is built.
    let (mut src_mac, mut dest_mac, mut ether_type) = (None, None, None);
    if header_size != 0 {
        // SAFETY: optional caller inputs (# Safety above).
        let read = unsafe { (read_mac(src), read_mac(dest), boundary::read(protocol)) };
        match read {
            (Ok(s), Ok(d), p) => {
                src_mac = s;
                dest_mac = d;
                ether_type = p.ok();
            }
            (Err(status), _, _) | (_, Err(status), _) => return status,
        }
    }
    let address = buffer.expose_provenance();
    // SAFETY: `This` is the interface the caller got from our handle.
    unsafe {
        call(this, |nic| {
            nic.transmit(header_size, frame, address, src_mac, dest_mac, ether_type)
        })
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §24.1 (Receive) requires of the caller:
/// `buffer` holds `*buffer_size` bytes.
unsafe extern "efiapi" fn receive(
    this: *const SimpleNetworkProtocol,
    header_size: *mut usize,
    buffer_size: *mut usize,
    buffer: *mut c_void,
    src: *mut uefi_raw::MacAddress,
    dest: *mut uefi_raw::MacAddress,
    protocol: *mut u16,
) -> Status {
    // SAFETY: `This` is the interface the caller got from our handle.
    let snp = match unsafe { instance(this) } {
        Ok(snp) => snp,
        Err(status) => return status,
    };
    // SAFETY: the caller's in/out size (# Safety above).
    let Ok(size) = (unsafe { boundary::read(buffer_size.cast_const()) }) else {
        return Status::INVALID_PARAMETER;
    };
    if buffer.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's buffer of `*buffer_size` bytes (# Safety above).
    let buf = match unsafe { boundary::bytes_mut(buffer.cast::<u8>(), size) } {
        Ok(buf) => buf,
        Err(status) => return status,
    };
    let received = match snp.with(|nic| nic.receive(buf)) {
        Ok(Ok(received)) => received,
        Ok(Err(ReceiveError::TooSmall(needed))) => {
            // SAFETY: non-null (read above), the caller's in/out size.
            let _ = unsafe { boundary::write(buffer_size, needed) };
            return Status::BUFFER_TOO_SMALL;
        }
        Ok(Err(ReceiveError::Status(status))) | Err(status) => return status,
    };
    // SAFETY: the caller's outputs, each optional (# Safety above).
    unsafe {
        let _ = boundary::write(buffer_size, received.len);
        if !header_size.is_null() {
            let _ = boundary::write(header_size, platform::net::ETHERNET_HEADER_BYTES);
        }
        write_mac(src, &received.src);
        write_mac(dest, &received.dest);
        if !protocol.is_null() {
            let _ = boundary::write(protocol, received.protocol);
        }
    }
    Status::SUCCESS
}
