//! Network boot throughput for the benchmark (issue 22): one 100 MB file
//! fetched by the firmware's TFTP client (a PXE boot whose boot file it is)
//! and by its HTTP client (`http=`), against the same file read from a
//! virtio-blk ESP through EFI_FILE_PROTOCOL (the `fileio` app), and against
//! what the link gives Linux: the test kernel, booted directly, fetching it
//! with busybox `wget` over its own virtio-net driver. One VM each. The
//! firmware's own lines give its figures (`pxe: read N bytes in T ms`,
//! `http: URL: N bytes in T ms`); the file is no image, so each boot then
//! falls through harmlessly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http_server::{HttpServer, Route};
use crate::{EspBuilder, Network, Vm, cache_dir, debian_kernel, efi_app, initramfs, report_field};

/// Bytes of the file: the issue's 100 MB.
pub const FILE_BYTES: u64 = 100_000_000;
const TIMEOUT: Duration = Duration::from_secs(300);

/// A transfer's size and duration as the measuring side timed it.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub bytes: u64,
    pub ms: u64,
}

impl Rate {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / (self.ms.max(1) as f64 / 1000.0)
    }
}

/// The four figures.
#[derive(Clone, Copy, Debug)]
pub struct NetThroughput {
    pub tftp: Rate,
    pub http: Rate,
    pub virtio_blk: Rate,
    /// Linux's own HTTP download over the same user-mode network: the
    /// link's rate as a guest with a full TCP stack sees it under TCG.
    pub linux_http: Rate,
}

/// The 100 MB file (deterministic pseudo-random bytes, so nothing along
/// the way can compress it), made once.
pub fn test_file() -> PathBuf {
    let dir = cache_dir("netbench");
    let path = dir.join("file-100mb.bin");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == FILE_BYTES) {
        return path;
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut bytes = Vec::with_capacity(FILE_BYTES as usize);
    while (bytes.len() as u64) < FILE_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(FILE_BYTES as usize);
    let temp = dir.join(format!("file-100mb.bin.{}", std::process::id()));
    std::fs::write(&temp, &bytes).unwrap();
    std::fs::rename(&temp, &path).unwrap();
    path
}

/// `N bytes in T ms` from a firmware log line.
fn parse_rate(line: &str) -> Option<Rate> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "bytes")?;
    let bytes = words.get(at.checked_sub(1)?)?.parse().ok()?;
    let in_at = words[at..].iter().position(|w| *w == "in")? + at;
    let ms = words.get(in_at + 1)?.parse().ok()?;
    (words.get(in_at + 2) == Some(&"ms")).then_some(Rate { bytes, ms })
}

fn tftp(firmware: &Path, file: &Path) -> Result<Rate, String> {
    let root = file.parent().unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let mut vm = Vm::builder()
        .firmware(firmware)
        .nic(Network::tftp(root, &name))
        .name("bench-netbench-tftp")
        .spawn();
    let line = vm
        .expect("pxe: read ", TIMEOUT)
        .map_err(|e| format!("tftp: {e}"))?;
    parse_rate(&line.line).ok_or(format!("tftp: {}", line.line.trim()))
}

fn http(firmware: &Path, file: &Path) -> Result<Rate, String> {
    let server = HttpServer::start(&[("/file.bin", Route::File(file.to_path_buf()))]);
    let url = server.guest_url("/file.bin");
    let mut vm = Vm::builder()
        .firmware(firmware)
        .nic(Network::user())
        .memory_mib(1024)
        .append(format!("http={url}"))
        .name("bench-netbench-http")
        .spawn();
    let line = vm
        .expect(&format!("http: {url}: "), TIMEOUT)
        .map_err(|e| format!("http: {e}"))?;
    parse_rate(&line.line).ok_or(format!("http: {}", line.line.trim()))
}

fn virtio_blk(firmware: &Path, file: &Path) -> Result<Rate, String> {
    let disk = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("fileio"))
        .file("/big.bin", file)
        .esp_size_mib(160)
        .build();
    let mut vm = Vm::builder()
        .firmware(firmware)
        .disk(&disk)
        .name("bench-netbench-virtio-blk")
        .spawn();
    let line = vm
        .expect("FILEIO: crc32=", TIMEOUT)
        .map_err(|e| format!("virtio-blk: {e}"))?;
    let field = |key| report_field::<u64>(&line.line, key);
    match (field("bytes"), field("ms")) {
        (Some(bytes), Some(ms)) => Ok(Rate { bytes, ms }),
        _ => Err(format!("virtio-blk: {}", line.line.trim())),
    }
}

/// The initramfs script: a static address (QEMU's user-mode network gives
/// 10.0.2.15 by DHCP), then the URL from `netbench.url=` timed by the
/// kernel's uptime.
const LINUX_SCRIPT: &str = r#"
url=$(sed -n 's/.*netbench\.url=\([^ ]*\).*/\1/p' /proc/cmdline)
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0
start=$(cut -d' ' -f1 /proc/uptime)
if wget -q -O /dev/null "$url"; then
    end=$(cut -d' ' -f1 /proc/uptime)
    echo "NETBENCH: start=$start end=$end"
else
    echo "NETBENCH: wget failed"
fi
"#;

fn linux_http(file: &Path) -> Result<Rate, String> {
    let server = HttpServer::start(&[("/file.bin", Route::File(file.to_path_buf()))]);
    let kernel = debian_kernel();
    let initrd = initramfs(LINUX_SCRIPT, &["virtio_net"]);
    let mut vm = Vm::builder()
        .direct(&kernel.vmlinuz, Some(initrd))
        .append(format!(
            "console=ttyS0 panic=-1 netbench.url={}",
            server.guest_url("/file.bin")
        ))
        .nic(Network::user())
        .name("bench-netbench-linux")
        .spawn();
    let line = vm
        .expect("NETBENCH: ", TIMEOUT)
        .map_err(|e| format!("linux: {e}"))?;
    let seconds = |key| report_field::<f64>(&line.line, key);
    match (seconds("start"), seconds("end")) {
        (Some(start), Some(end)) => Ok(Rate {
            bytes: FILE_BYTES,
            ms: ((end - start) * 1000.0).round() as u64,
        }),
        _ => Err(format!("linux: {}", line.line.trim())),
    }
}

/// Runs the four transfers, one VM each.
pub fn run(firmware: &Path) -> Result<NetThroughput, String> {
    let file = test_file();
    Ok(NetThroughput {
        tftp: tftp(firmware, &file)?,
        http: http(firmware, &file)?,
        virtio_blk: virtio_blk(firmware, &file)?,
        linux_http: linux_http(&file)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_firmware_lines() {
        let pxe = parse_rate("[   2.5] pxe: read 100000000 bytes in 2500 ms (40000 KB/s)").unwrap();
        assert_eq!((pxe.bytes, pxe.ms), (100_000_000, 2500));
        assert!((pxe.mb_per_s() - 40.0).abs() < 1e-9);
        let http = parse_rate("http: http://10.0.2.2:1/f: 1000 bytes in 10 ms (100 KB/s)").unwrap();
        assert_eq!((http.bytes, http.ms), (1000, 10));
        assert!(parse_rate("pxe: boot file tftp://x: 5 bytes").is_none());
    }
}
