//! Why a network boot step failed, and the one place it becomes a `Status`.

use core::fmt;

use platform::net::NetError;
use uefi_raw::Status;

use super::http::HttpError;
use super::tftp::TftpError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetBootError {
    /// The device failed or is stopped.
    Device(NetError),
    /// No DHCP server answered within `waited_ms`.
    NoLease { waited_ms: u64 },
    /// No station address yet: neither Dhcp nor SetStationIp ran.
    NoAddress,
    /// The DHCP answer names no boot file (or no server to fetch it from).
    NoBootFile,
    /// The TFTP server refused the transfer or broke the protocol.
    Tftp(TftpError),
    /// The HTTP server's answer, or the URL, is unusable.
    Http(HttpError),
    /// A URL names a host, and the lease gave no DNS server to ask.
    NoDnsServer,
    /// The DNS servers know no IPv4 address for the host.
    NameNotFound,
    /// The server refused the connection (`what` it was for).
    Refused { what: &'static str },
    /// The server stopped answering `what` for `waited_ms`.
    Timeout { what: &'static str, waited_ms: u64 },
    /// The file is `needed` bytes, more than the buffer offered.
    BufferTooSmall { needed: u64 },
    /// A step that cannot fail did (a bug; it names the step).
    Internal(&'static str),
    /// Memory for the transfer could not be allocated.
    OutOfResources { bytes: u64 },
}

impl From<NetError> for NetBootError {
    fn from(error: NetError) -> Self {
        NetBootError::Device(error)
    }
}

impl From<TftpError> for NetBootError {
    fn from(error: TftpError) -> Self {
        NetBootError::Tftp(error)
    }
}

impl From<HttpError> for NetBootError {
    fn from(error: HttpError) -> Self {
        NetBootError::Http(error)
    }
}

impl fmt::Display for NetBootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetBootError::Device(error) => write!(f, "network device: {error}"),
            NetBootError::NoLease { waited_ms: 0 } => {
                write!(f, "no DHCP answer (none earlier in this boot either)")
            }
            NetBootError::NoLease { waited_ms } => {
                write!(
                    f,
                    "no DHCP answer in {}.{} s",
                    waited_ms / 1000,
                    waited_ms % 1000 / 100
                )
            }
            NetBootError::NoAddress => write!(f, "no station address (no DHCP yet)"),
            NetBootError::NoBootFile => write!(f, "the DHCP answer names no boot file"),
            NetBootError::Tftp(error) => write!(f, "TFTP {error}"),
            NetBootError::Http(error) => write!(f, "HTTP: {error}"),
            NetBootError::Refused { what } => write!(f, "{what}: connection refused"),
            NetBootError::NoDnsServer => write!(f, "the DHCP lease names no DNS server"),
            NetBootError::NameNotFound => write!(f, "the host name has no IPv4 address"),
            NetBootError::Timeout { what, waited_ms } => {
                write!(f, "{what}: no answer in {waited_ms} ms")
            }
            NetBootError::BufferTooSmall { needed } => {
                write!(f, "file of {needed} bytes does not fit the buffer")
            }
            NetBootError::OutOfResources { bytes } => write!(f, "no memory for {bytes} bytes"),
            NetBootError::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl NetBootError {
    /// The status an EFI caller gets (UEFI 2.10 §24.3.5 Mtftp, §13.1 LoadFile).
    pub fn status(&self) -> Status {
        match self {
            NetBootError::Device(NetError::Stopped) => Status::NOT_STARTED,
            NetBootError::Device(_) => Status::DEVICE_ERROR,
            NetBootError::NoLease { .. } | NetBootError::Timeout { .. } => Status::TIMEOUT,
            NetBootError::NoAddress => Status::NO_MAPPING,
            NetBootError::NoBootFile => Status::NOT_FOUND,
            NetBootError::Tftp(_) => Status::TFTP_ERROR,
            NetBootError::Http(HttpError::Status(404)) => Status::NOT_FOUND,
            NetBootError::Http(HttpError::BadUrl(_)) => Status::INVALID_PARAMETER,
            NetBootError::Http(_) => Status::HTTP_ERROR,
            NetBootError::Refused { .. } => Status::NO_RESPONSE,
            NetBootError::NoDnsServer | NetBootError::NameNotFound => Status::NOT_FOUND,
            NetBootError::BufferTooSmall { .. } => Status::BUFFER_TOO_SMALL,
            NetBootError::OutOfResources { .. } => Status::OUT_OF_RESOURCES,
            NetBootError::Internal(_) => Status::DEVICE_ERROR,
        }
    }
}
