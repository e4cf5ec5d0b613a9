//! Networking: the firmware's IPv4 boot clients (DHCP, TFTP) over smoltcp.

pub mod dhcp;
pub mod error;
pub mod pxe;
pub mod stack;
pub mod tftp;
pub mod tftp_client;
