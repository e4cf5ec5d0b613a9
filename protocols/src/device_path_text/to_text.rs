//! Device node and path to text (UEFI 2.10 §10.6.2, forms of §10.6.1).
//!
//! Every node gets its specific form only when that text parses back to
//! the very same bytes; otherwise (reserved bits set, a payload of the
//! wrong size, a string the syntax cannot carry) it is written in the
//! generic `Path(type,subtype,data)` form, which always round-trips.
#![forbid(unsafe_code)]

use alloc::string::String;

use crate::device_path::{Node, parse};

use super::from_text::text_to_path;
use super::layouts;
use super::messaging as msg;
use super::nodes;
use super::{Options, TYPE_ACPI, TYPE_BBS, TYPE_HARDWARE, TYPE_MEDIA, TYPE_MESSAGING};

/// The specific form of a node, before the round-trip check.
fn specific_text(node_type: u8, sub_type: u8, d: &[u8], options: Options) -> Option<String> {
    if let Some(layout) = layouts::for_node(node_type, sub_type, d, options.allow_shortcuts) {
        return layout.render(d, options.display_only);
    }
    match (node_type, sub_type) {
        (TYPE_HARDWARE, 4) => nodes::vendor_text("VenHw", d),
        (TYPE_ACPI, 1) => nodes::acpi_text(d),
        (TYPE_ACPI, 2) => nodes::acpi_ex_text(d),
        (TYPE_ACPI, 3) => nodes::acpi_adr_text(d),
        (TYPE_MESSAGING, msg::ATAPI) => msg::ata_text(d, options),
        (TYPE_MESSAGING, msg::VENDOR) => {
            msg::vendor_text(d, options).or_else(|| nodes::vendor_text("VenMsg", d))
        }
        (TYPE_MESSAGING, msg::MAC) => msg::mac_text(d),
        (TYPE_MESSAGING, msg::IPV4) => msg::ipv4_text_node(d, options),
        (TYPE_MESSAGING, msg::IPV6) => msg::ipv6_text_node(d, options),
        (TYPE_MESSAGING, msg::UART) => msg::uart_text(d),
        (TYPE_MESSAGING, msg::USB_CLASS) => msg::usb_class_text(d),
        (TYPE_MESSAGING, msg::USB_WWID) => msg::usb_wwid_text(d),
        (TYPE_MESSAGING, msg::ISCSI) => msg::iscsi_text(d),
        (TYPE_MESSAGING, msg::SAS_EX) => msg::sas_ex_text(d),
        (TYPE_MESSAGING, msg::NVME) => msg::nvme_text(d),
        (TYPE_MESSAGING, msg::URI) => msg::uri_text(d),
        (TYPE_MESSAGING, msg::BLUETOOTH) => msg::bluetooth_text(d),
        (TYPE_MESSAGING, msg::WIFI) => msg::wifi_text(d),
        (TYPE_MESSAGING, msg::BLUETOOTH_LE) => msg::bluetooth_le_text(d),
        (TYPE_MESSAGING, msg::DNS) => msg::dns_text(d),
        (TYPE_MEDIA, 1) => nodes::hard_drive_text(d),
        (TYPE_MEDIA, 3) => nodes::vendor_text("VenMedia", d),
        (TYPE_MEDIA, 4) => nodes::file_path_text(d),
        (TYPE_BBS, 1) => nodes::bbs_text(d, options),
        _ => None,
    }
}

/// The text of one node (ConvertDeviceNodeToText).
pub fn node_text(node: &Node, options: Options) -> String {
    let (t, s, d) = (node.node_type, node.sub_type, node.data);
    let full = Options {
        display_only: false,
        ..options
    };
    let Some(text) = specific_text(t, s, d, full) else {
        return nodes::generic_text(t, s, d);
    };
    // The full text must read back as exactly this node, alone.
    let mut expected = alloc::vec::Vec::with_capacity(node.byte_len() + 4);
    expected.extend_from_slice(&[t, s]);
    expected.extend_from_slice(&u16::try_from(node.byte_len()).unwrap_or(0).to_le_bytes());
    expected.extend_from_slice(d);
    expected.extend_from_slice(&crate::device_path::end_entire());
    if text_to_path(&text).as_deref() != Some(expected.as_slice()) {
        return nodes::generic_text(t, s, d);
    }
    if options.display_only {
        specific_text(t, s, d, options).unwrap_or(text)
    } else {
        text
    }
}

/// The text of a path (ConvertDevicePathToText): nodes joined by `/`,
/// instances by `,`; None when the bytes are not a valid path.
pub fn path_text(path: &[u8], options: Options) -> Option<String> {
    let mut text = String::new();
    let mut at_instance_start = true;
    for node in parse(path).ok()? {
        if node.is_end_instance() {
            text.push(',');
            at_instance_start = true;
            continue;
        }
        if !at_instance_start {
            text.push('/');
        }
        at_instance_start = false;
        text.push_str(&node_text(&node, options));
    }
    Some(text)
}
