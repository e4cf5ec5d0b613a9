//! Text to device node and path (UEFI 2.10 §10.6.3, forms of §10.6.1).
//! `Keyword(parameters)` selects a node form; text that is not a known
//! keyword form is a file path (§10.6.1.7); `/` separates nodes and `,`
//! instances outside parentheses.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use uefi_raw::protocol::device_path::{DeviceSubType, DeviceType};

use crate::device_path::{end_entire, node};

use super::layouts;
use super::messaging as msg;
use super::nodes;
use super::syntax::split_top_level;
use super::{TYPE_ACPI, TYPE_BBS, TYPE_HARDWARE, TYPE_MEDIA, TYPE_MESSAGING};

/// `Keyword(parameters)` split into its keyword and parameter text.
fn keyword_form(text: &str) -> Option<(&str, &str)> {
    let (keyword, inner) = text.strip_suffix(')')?.split_once('(')?;
    let valid = !keyword.is_empty()
        && keyword
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    valid.then_some((keyword, inner))
}

/// The payload of a keyword form: `None` for an unknown keyword,
/// `Some(None)` for a known one with malformed parameters.
fn keyword_node(keyword: &str, inner: &str) -> Option<Option<Vec<u8>>> {
    let args: Vec<&str> = inner.split(',').collect();
    if let Some(layout) = layouts::by_keyword(keyword) {
        let data = layout.parse(&args);
        return Some(data.and_then(|d| node(layout.node_type, layout.sub_type, &d).ok()));
    }
    if nodes::is_generic_keyword(keyword) {
        let parsed = nodes::generic_parse(keyword, &args);
        return Some(parsed.and_then(|(t, s, d)| node(t, s, &d).ok()));
    }
    let (node_type, sub_type, data) = match keyword {
        "Acpi" => (TYPE_ACPI, 1, nodes::acpi_parse(&args)),
        "AcpiEx" => (TYPE_ACPI, 2, nodes::acpi_ex_parse(&args)),
        "AcpiExp" => (TYPE_ACPI, 2, nodes::acpi_exp_parse(&args)),
        "AcpiAdr" => (TYPE_ACPI, 3, nodes::acpi_adr_parse(&args)),
        "VenHw" => (TYPE_HARDWARE, 4, nodes::vendor_parse(&args)),
        "VenMsg" => (TYPE_MESSAGING, msg::VENDOR, nodes::vendor_parse(&args)),
        "VenMedia" => (TYPE_MEDIA, 3, nodes::vendor_parse(&args)),
        "Ata" => (TYPE_MESSAGING, msg::ATAPI, msg::ata_parse(&args)),
        "MAC" => (TYPE_MESSAGING, msg::MAC, msg::mac_parse(&args)),
        "IPv4" => (TYPE_MESSAGING, msg::IPV4, msg::ipv4_parse(&args)),
        "IPv6" => (TYPE_MESSAGING, msg::IPV6, msg::ipv6_parse(&args)),
        "Uart" => (TYPE_MESSAGING, msg::UART, msg::uart_parse(&args)),
        "UsbWwid" => (TYPE_MESSAGING, msg::USB_WWID, msg::usb_wwid_parse(&args)),
        "iSCSI" => (TYPE_MESSAGING, msg::ISCSI, msg::iscsi_parse(&args)),
        "SasEx" => (TYPE_MESSAGING, msg::SAS_EX, msg::sas_ex_parse(&args)),
        "SAS" => (TYPE_MESSAGING, msg::VENDOR, msg::sas_parse(&args)),
        "UartFlowCtrl" => (
            TYPE_MESSAGING,
            msg::VENDOR,
            msg::uart_flow_control_parse(&args),
        ),
        "NVMe" => (TYPE_MESSAGING, msg::NVME, msg::nvme_parse(&args)),
        "Uri" => (TYPE_MESSAGING, msg::URI, msg::uri_parse(inner)),
        "Bluetooth" => (TYPE_MESSAGING, msg::BLUETOOTH, msg::bluetooth_parse(&args)),
        "BluetoothLE" => (
            TYPE_MESSAGING,
            msg::BLUETOOTH_LE,
            msg::bluetooth_le_parse(&args),
        ),
        "Wi-Fi" => (TYPE_MESSAGING, msg::WIFI, msg::wifi_parse(inner)),
        "Dns" => (TYPE_MESSAGING, msg::DNS, msg::dns_parse(&args)),
        "HD" => (TYPE_MEDIA, 1, nodes::hard_drive_parse(&args)),
        "BBS" => (TYPE_BBS, 1, nodes::bbs_parse(&args)),
        usb if msg::is_usb_class_keyword(usb) => (
            TYPE_MESSAGING,
            msg::USB_CLASS,
            msg::usb_class_parse(usb, &args),
        ),
        _ => return None,
    };
    Some(data.and_then(|d| node(node_type, sub_type, &d).ok()))
}

/// ConvertTextToDeviceNode: one node from its text.
pub fn text_to_node(text: &str) -> Option<Vec<u8>> {
    if let Some((keyword, inner)) = keyword_form(text)
        && let Some(parsed) = keyword_node(keyword, inner)
    {
        return parsed;
    }
    node(TYPE_MEDIA, 4, &nodes::file_path_parse(text)?).ok()
}

/// ConvertTextToDevicePath: a whole, possibly multi-instance, path.
pub fn text_to_path(text: &str) -> Option<Vec<u8>> {
    let mut path = Vec::new();
    for (i, instance) in split_top_level(text, ',').into_iter().enumerate() {
        if i > 0 {
            path.extend_from_slice(&[DeviceType::END.0, DeviceSubType::END_INSTANCE.0, 4, 0]);
        }
        for node_text in split_top_level(instance, '/')
            .into_iter()
            .filter(|t| !t.is_empty())
        {
            path.extend_from_slice(&text_to_node(node_text)?);
        }
    }
    path.extend_from_slice(&end_entire());
    Some(path)
}
