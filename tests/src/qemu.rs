//! QEMU runner: starts a VM with its first serial port on stdio, records the console output with
//! timestamps, and lets tests wait for lines, type input and wait for exit.
//!
//! KVM hangs on the development machines, so every VM runs under TCG.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::paths::log_dir;
use crate::swtpm::{Swtpm, TpmInterface};

/// Where OVMF (Debian's `ovmf` package) keeps its 4 MiB flash images.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// How the VM starts.
#[derive(Clone, Debug)]
pub enum Boot {
    /// Our firmware: a PVH ELF loaded with `-kernel`.
    Firmware(PathBuf),
    /// OVMF from pflash, with a private copy of the variable store (baseline UEFI).
    Ovmf,
    /// QEMU's own Linux loader, no firmware in between (baseline for kernel behaviour).
    Direct {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
    },
}

#[derive(Clone, Debug)]
struct Disk {
    path: PathBuf,
    writable: bool,
    bus: DiskBus,
}

/// How a disk is attached to the VM (issue 21: every disk a QEMU user attaches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskBus {
    /// Modern-only virtio-blk PCI, with this logical (and physical) block size.
    VirtioBlk { block_size: u32 },
    /// An NVMe controller of its own with one namespace of this block size.
    Nvme { block_size: u32 },
    /// A SATA disk on q35's ICH9 AHCI controller (`ide.N`, N = the disk's index among AHCI
    /// devices).
    SataDisk,
    /// A SATA (ATAPI) CD-ROM on q35's AHCI controller; the file is an ISO image.
    SataCdrom,
    /// A SCSI disk on a virtio-scsi controller shared by all SCSI devices of the VM.
    ScsiDisk { block_size: u32 },
    /// A SCSI CD-ROM on that virtio-scsi controller.
    ScsiCdrom,
}

impl DiskBus {
    const VIRTIO_BLK: DiskBus = DiskBus::VirtioBlk { block_size: 512 };

    fn is_ahci(self) -> bool {
        matches!(self, DiskBus::SataDisk | DiskBus::SataCdrom)
    }

    fn is_scsi(self) -> bool {
        matches!(self, DiskBus::ScsiDisk { .. } | DiskBus::ScsiCdrom)
    }

    /// The `-device` argument for drive `d{index}` (`ahci_port`: its port on the AHCI
    /// controller).
    fn device_arg(self, index: usize, ahci_port: usize) -> String {
        let sizes = |size: u32| format!("logical_block_size={size},physical_block_size={size}");
        match self {
            DiskBus::VirtioBlk { block_size } => format!(
                "virtio-blk-pci,drive=d{index},disable-legacy=on{}",
                if block_size == 512 {
                    String::new()
                } else {
                    format!(",{}", sizes(block_size))
                }
            ),
            DiskBus::Nvme { block_size } => {
                format!(
                    "nvme,drive=d{index},serial=vmfw{index},{}",
                    sizes(block_size)
                )
            }
            DiskBus::SataDisk => format!("ide-hd,drive=d{index},bus=ide.{ahci_port}"),
            DiskBus::SataCdrom => format!("ide-cd,drive=d{index},bus=ide.{ahci_port}"),
            DiskBus::ScsiDisk { block_size } => {
                format!("scsi-hd,drive=d{index},bus=scsi0.0,{}", sizes(block_size))
            }
            DiskBus::ScsiCdrom => format!("scsi-cd,drive=d{index},bus=scsi0.0"),
        }
    }
}

/// A virtio-net NIC and what its cable reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// QEMU's user-mode network (slirp): the guest is 10.0.2.15, the host
    /// 10.0.2.2, with DHCP; `tftp_root` is served by TFTP and `boot_file` named
    /// in the DHCP answer (`-netdev user,tftp=,bootfile=`).
    User {
        tftp_root: Option<PathBuf>,
        boot_file: Option<String>,
    },
    /// A NIC on a hub with nothing else on it: no DHCP server answers.
    Unplugged,
}

impl Network {
    /// The user-mode network without TFTP or a boot file.
    pub fn user() -> Self {
        Network::User {
            tftp_root: None,
            boot_file: None,
        }
    }

    /// The user-mode network serving `root` by TFTP with `boot_file` in DHCP.
    pub fn tftp(root: impl Into<PathBuf>, boot_file: &str) -> Self {
        Network::User {
            tftp_root: Some(root.into()),
            boot_file: Some(boot_file.to_string()),
        }
    }

    fn netdev_arg(&self, index: usize) -> String {
        match self {
            Network::User {
                tftp_root,
                boot_file,
            } => {
                let mut arg = format!("user,id=n{index}");
                if let Some(root) = tftp_root {
                    arg.push_str(&format!(",tftp={}", root.display()));
                }
                if let Some(file) = boot_file {
                    arg.push_str(&format!(",bootfile={file}"));
                }
                arg
            }
            Network::Unplugged => format!("hubport,id=n{index},hubid={index}"),
        }
    }
}

/// Configures and starts a [`Vm`]. Defaults: 1024 MiB, one CPU, no disks, no command line.
#[derive(Clone, Debug)]
pub struct VmBuilder {
    boot: Option<Boot>,
    disks: Vec<Disk>,
    memory_mib: u32,
    cpus: u32,
    append: Option<String>,
    debug_exit: bool,
    name: Option<String>,
    extra_args: Vec<String>,
    tpm: Option<(TpmInterface, Option<&'static str>)>,
    networks: Vec<Network>,
    /// `-machine` (q35 unless [`microvm`](Self::microvm) is asked for).
    machine: &'static str,
}

impl VmBuilder {
    /// QEMU's microvm machine with a PCIe host bridge: no SeaBIOS (qboot
    /// starts the PVH entry), HW-reduced ACPI without MCFG or PM timer, no
    /// port 0x61 behind the PIT; the nearest to Cloud Hypervisor that runs
    /// here. Disks still attach as PCI devices.
    pub fn microvm(mut self) -> Self {
        self.machine = "microvm,pcie=on,rtc=on";
        self
    }

    /// Boots `path` (our firmware ELF) with `-kernel`.
    pub fn firmware(mut self, path: impl Into<PathBuf>) -> Self {
        self.boot = Some(Boot::Firmware(path.into()));
        self
    }

    /// Boots OVMF instead of our firmware.
    pub fn ovmf(mut self) -> Self {
        self.boot = Some(Boot::Ovmf);
        self
    }

    /// Boots a Linux kernel directly with QEMU's loader (`-kernel`/`-initrd`), no firmware.
    pub fn direct(mut self, kernel: impl Into<PathBuf>, initrd: Option<PathBuf>) -> Self {
        self.boot = Some(Boot::Direct {
            kernel: kernel.into(),
            initrd,
        });
        self
    }

    /// Adds a raw disk as a modern-only virtio-blk PCI device. Guest writes go to a temporary
    /// overlay (`snapshot=on`) so cached images stay pristine and can be shared by parallel VMs.
    pub fn disk(self, path: impl Into<PathBuf>) -> Self {
        self.disk_on(path, DiskBus::VIRTIO_BLK)
    }

    /// Adds a raw disk (or ISO image, for the CD-ROM buses) on `bus`, snapshotted as
    /// [`disk`](Self::disk) does.
    pub fn disk_on(mut self, path: impl Into<PathBuf>, bus: DiskBus) -> Self {
        self.disks.push(Disk {
            path: path.into(),
            writable: false,
            bus,
        });
        self
    }

    /// Adds a modern virtio-net NIC (MAC 52:54:00:12:34:5N for the Nth) on
    /// `network`, without QEMU's iPXE option ROM (`romfile=`): the firmware's
    /// own driver is what is tested.
    pub fn nic(mut self, network: Network) -> Self {
        self.networks.push(network);
        self
    }

    /// Adds a raw disk whose guest writes reach the file (for persistence tests; the file must
    /// not be shared with another running VM, QEMU locks it).
    pub fn disk_writable(mut self, path: impl Into<PathBuf>) -> Self {
        self.disks.push(Disk {
            path: path.into(),
            writable: true,
            bus: DiskBus::VIRTIO_BLK,
        });
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// Kernel command line (`-append`); with our firmware it reaches the PVH start info.
    pub fn append(mut self, cmdline: impl Into<String>) -> Self {
        self.append = Some(cmdline.into());
        self
    }

    /// Adds `isa-debug-exit` at port 0xf4: a guest write of `v` there makes QEMU exit with
    /// status `(v << 1) | 1`.
    pub fn debug_exit(mut self, enabled: bool) -> Self {
        self.debug_exit = enabled;
        self
    }

    /// Name of the transcript `<root>/target/vm-logs/<name>.log`; defaults to the test's name
    /// (the test harness names each test thread after its test).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Attaches a fresh software TPM 2.0 (a new `swtpm`, started by `spawn` and stopped with
    /// the VM) as `interface`.
    pub fn tpm(mut self, interface: TpmInterface) -> Self {
        self.tpm = Some((interface, None));
        self
    }

    /// As [`tpm`](Self::tpm), the TPM first provisioned by `swtpm_setup` with only the PCR
    /// banks `banks` allocated (e.g. `"sha256"`, as `swtpm_setup` and libvirt do by default;
    /// a never-provisioned swtpm has all four).
    pub fn tpm_with_banks(mut self, interface: TpmInterface, banks: &'static str) -> Self {
        self.tpm = Some((interface, Some(banks)));
        self
    }

    /// Passes an extra argument to QEMU verbatim.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// The QEMU command line this builder produces, with `vars` as the OVMF variable store.
    fn command(&self, vars: Option<&Path>) -> Command {
        let mut cmd = Command::new("qemu-system-x86_64");
        // Several vCPUs share one TCG thread: with a thread each (MTTCG), a
        // vCPU can run a stale translation of code another vCPU just patched,
        // and Linux's text_poke_bp then oopses on an int3 it no longer owns
        // ("Oops: int3" in sched_clock_tick, seen in CI on Debian 13's 6.12).
        let accel = if self.cpus > 1 {
            "tcg,thread=single"
        } else {
            "tcg"
        };
        cmd.args(["-machine", self.machine])
            .args(["-accel", accel])
            .args(["-m", &self.memory_mib.to_string()])
            .args(["-smp", &self.cpus.to_string()])
            .args(["-display", "none", "-no-reboot", "-nodefaults"])
            .args(["-serial", "stdio"]);
        match self
            .boot
            .as_ref()
            .expect("VmBuilder: no firmware(), ovmf() or direct() given")
        {
            Boot::Firmware(path) => {
                cmd.arg("-kernel").arg(path);
            }
            Boot::Ovmf => {
                let vars = vars.expect("OVMF needs a variable store");
                cmd.arg("-drive")
                    .arg(format!(
                        "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
                    ))
                    .arg("-drive")
                    .arg(format!(
                        "if=pflash,format=raw,unit=1,file={}",
                        vars.display()
                    ));
            }
            Boot::Direct { kernel, initrd } => {
                cmd.arg("-kernel").arg(kernel);
                if let Some(initrd) = initrd {
                    cmd.arg("-initrd").arg(initrd);
                }
            }
        }
        if let Some(append) = &self.append {
            cmd.args(["-append", append]);
        }
        if self.disks.iter().any(|d| d.bus.is_scsi()) {
            cmd.args(["-device", "virtio-scsi-pci,id=scsi0,disable-legacy=on"]);
        }
        let mut ahci_ports = 0;
        for (index, disk) in self.disks.iter().enumerate() {
            let snapshot = if disk.writable { "off" } else { "on" };
            let media = if disk.bus == DiskBus::SataCdrom || disk.bus == DiskBus::ScsiCdrom {
                ",media=cdrom"
            } else {
                ""
            };
            cmd.arg("-drive")
                .arg(format!(
                    "if=none,id=d{index},file={},format=raw,snapshot={snapshot}{media}",
                    disk.path.display()
                ))
                .arg("-device")
                .arg(disk.bus.device_arg(index, ahci_ports));
            if disk.bus.is_ahci() {
                ahci_ports += 1;
            }
        }
        for (index, network) in self.networks.iter().enumerate() {
            cmd.arg("-netdev").arg(network.netdev_arg(index));
            cmd.arg("-device").arg(format!(
                "virtio-net-pci,netdev=n{index},mac=52:54:00:12:34:5{index},disable-legacy=on,romfile="
            ));
        }
        if self.debug_exit {
            cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        }
        cmd.args(&self.extra_args);
        cmd
    }

    /// Starts QEMU. Panics if it cannot be started (a broken host, not a test failure).
    pub fn spawn(self) -> Vm {
        let name = unique_log_name(self.name.clone().unwrap_or_else(test_name));
        let log_path = log_dir().join(format!("{name}.log"));
        let vars = matches!(self.boot, Some(Boot::Ovmf)).then(|| {
            let copy = std::env::temp_dir()
                .join(format!("vmfw-ovmf-vars-{}-{name}.fd", std::process::id()));
            std::fs::copy(OVMF_VARS, &copy)
                .unwrap_or_else(|e| panic!("copy {OVMF_VARS} -> {}: {e}", copy.display()));
            copy
        });
        let mut cmd = self.command(vars.as_deref());
        let swtpm = self.tpm.map(|(interface, banks)| {
            let swtpm = Swtpm::start_with_banks(banks);
            cmd.args(swtpm.qemu_args(interface));
            swtpm
        });
        let mut log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let _ = writeln!(log, "# {cmd:?}");
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let shared = Arc::new(Shared {
            transcript: Mutex::new(Transcript {
                lines: Vec::new(),
                partial: Vec::new(),
                partial_at: Duration::ZERO,
                open_streams: 2,
                log,
            }),
            changed: Condvar::new(),
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let readers = vec![
            spawn_reader(stdout, Stream::Serial, shared.clone(), started),
            spawn_reader(stderr, Stream::Stderr, shared.clone(), started),
        ];
        Vm {
            stdin: child.stdin.take(),
            child,
            shared,
            readers,
            started,
            cursor: 0,
            log_path,
            vars,
            swtpm,
        }
    }
}

/// The current test's name, from the thread name libtest gives each test.
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("vm")
        .replace("::", "-")
}

/// Appends `-2`, `-3`, ... when one process starts several VMs under the same name, so each
/// keeps its own transcript.
fn unique_log_name(base: String) -> String {
    static USED: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);
    let sanitized: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
    let count = used
        .get_or_insert_with(HashMap::new)
        .entry(sanitized.clone())
        .or_insert(0);
    *count += 1;
    if *count == 1 {
        sanitized
    } else {
        format!("{sanitized}-{count}")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stream {
    Serial,
    Stderr,
}

struct Line {
    stream: Stream,
    elapsed: Duration,
    text: String,
}

struct Transcript {
    lines: Vec<Line>,
    /// Serial bytes after the last newline (a prompt, or a line still being printed).
    partial: Vec<u8>,
    partial_at: Duration,
    open_streams: u32,
    log: File,
}

impl Transcript {
    fn push_line(&mut self, stream: Stream, elapsed: Duration, raw: &[u8]) {
        let text = clean_text(raw);
        let tag = if stream == Stream::Stderr {
            " qemu:"
        } else {
            ""
        };
        let _ = writeln!(self.log, "[{:8.3}]{tag} {text}", elapsed.as_secs_f64());
        self.lines.push(Line {
            stream,
            elapsed,
            text,
        });
    }
}

struct Shared {
    transcript: Mutex<Transcript>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Transcript> {
        // A panicking reader cannot leave the transcript half-updated in a harmful way.
        self.transcript.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn spawn_reader(
    mut source: impl Read + Send + 'static,
    stream: Stream,
    shared: Arc<Shared>,
    started: Instant,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stderr_partial = Vec::new();
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let now = started.elapsed();
            let mut transcript = shared.lock();
            for &byte in &buf[..n] {
                let pending = match stream {
                    Stream::Serial => &mut transcript.partial,
                    Stream::Stderr => &mut stderr_partial,
                };
                if byte == b'\n' {
                    let line = std::mem::take(pending);
                    transcript.push_line(stream, now, &line);
                } else {
                    pending.push(byte);
                }
            }
            if stream == Stream::Serial {
                transcript.partial_at = now;
            }
            drop(transcript);
            shared.changed.notify_all();
        }
        let now = started.elapsed();
        let mut transcript = shared.lock();
        if stream == Stream::Serial && !transcript.partial.is_empty() {
            let line = std::mem::take(&mut transcript.partial);
            transcript.push_line(stream, now, &line);
        }
        if !stderr_partial.is_empty() {
            transcript.push_line(stream, now, &stderr_partial);
        }
        transcript.open_streams -= 1;
        let _ = transcript.log.flush();
        drop(transcript);
        shared.changed.notify_all();
    })
}

/// Console bytes as text: lossy UTF-8 without carriage returns and ANSI escape sequences, which
/// OVMF and GRUB emit for cursor control and colours.
fn clean_text(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in 0x40..=0x7e.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // Other escapes (ECMA-48 §5.3): intermediate bytes 0x20..=0x2f, then one final
                // byte, e.g. `ESC ( B` (charset selection) or `ESC =` (keypad mode).
                Some(mut c) => {
                    while (' '..='/').contains(&c) {
                        match chars.next() {
                            Some(next) => c = next,
                            None => break,
                        }
                    }
                }
                None => {}
            },
            '\r' | '\0' => {}
            c => out.push(c),
        }
    }
    out
}

/// How long an unfinished last line must stay unchanged before `expect` matches it.
const PARTIAL_LINE_QUIET: Duration = Duration::from_millis(200);

/// A serial console line that matched an [`Vm::expect`] pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The whole line (escape sequences and carriage returns removed).
    pub line: String,
    /// When the line arrived, measured from QEMU's start.
    pub elapsed: Duration,
}

/// Why waiting on a VM failed.
#[derive(Clone, PartialEq, Eq)]
pub enum VmError {
    /// Nothing matched within the timeout.
    Timeout {
        patterns: Vec<String>,
        timeout: Duration,
        last_line: String,
    },
    /// QEMU closed its console (exited) before anything matched.
    Exited {
        patterns: Vec<String>,
        last_line: String,
    },
    /// QEMU is still running after `wait_exit`'s timeout.
    StillRunning { timeout: Duration },
    /// Talking to the QEMU process failed.
    Io(String),
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmError::Timeout {
                patterns,
                timeout,
                last_line,
            } => write!(
                f,
                "no console line matched {patterns:?} within {timeout:?}; last line: {last_line:?}"
            ),
            VmError::Exited {
                patterns,
                last_line,
            } => write!(
                f,
                "QEMU exited before a console line matched {patterns:?}; last line: {last_line:?}"
            ),
            VmError::StillRunning { timeout } => {
                write!(f, "QEMU still running after {timeout:?}")
            }
            VmError::Io(message) => write!(f, "QEMU I/O: {message}"),
        }
    }
}

impl fmt::Debug for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for VmError {}

/// A running QEMU. Killed when dropped; if the drop happens during a panic (a failed
/// assertion), the transcript is printed to stderr. Always saved to
/// `<root>/target/vm-logs/<name>.log`.
pub struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
    /// Index of the first serial line not yet consumed by `expect`. May be `lines.len() + 1`
    /// when the partial line matched: that line is consumed once it completes.
    cursor: usize,
    log_path: PathBuf,
    vars: Option<PathBuf>,
    /// Stopped in `Drop`, after QEMU.
    swtpm: Option<Swtpm>,
}

impl Vm {
    pub fn builder() -> VmBuilder {
        VmBuilder {
            boot: None,
            disks: Vec::new(),
            memory_mib: 1024,
            cpus: 1,
            append: None,
            debug_exit: false,
            name: None,
            extra_args: Vec::new(),
            networks: Vec::new(),
            tpm: None,
            machine: "q35",
        }
    }

    /// Time since QEMU was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Path of the saved transcript.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Waits up to `timeout` for a serial line, after the previously matched one, containing
    /// `pattern`. An unfinished last line (e.g. a prompt) matches too once output has paused
    /// for 200 ms.
    pub fn expect(&mut self, pattern: &str, timeout: Duration) -> Result<Match, VmError> {
        self.expect_any(&[pattern], timeout).map(|(_, found)| found)
    }

    /// Like [`Vm::expect`] for several patterns; returns the index of the one that matched.
    pub fn expect_any(
        &mut self,
        patterns: &[&str],
        timeout: Duration,
    ) -> Result<(usize, Match), VmError> {
        let deadline = Instant::now() + timeout;
        let mut transcript = self.shared.lock();
        loop {
            while self.cursor < transcript.lines.len() {
                let line = &transcript.lines[self.cursor];
                self.cursor += 1;
                if line.stream != Stream::Serial {
                    continue;
                }
                if let Some(index) = patterns.iter().position(|p| line.text.contains(p)) {
                    let found = Match {
                        line: line.text.clone(),
                        elapsed: line.elapsed,
                    };
                    return Ok((index, found));
                }
            }
            // An unfinished line counts once output pauses (a prompt); while bytes still flow
            // it is probably the head of a longer line, so wait for the rest.
            let mut wake_for_partial = None;
            if self.cursor == transcript.lines.len() && !transcript.partial.is_empty() {
                let text = clean_text(&transcript.partial);
                if let Some(index) = patterns.iter().position(|p| text.contains(p)) {
                    let quiet_for = self.started.elapsed().saturating_sub(transcript.partial_at);
                    if quiet_for >= PARTIAL_LINE_QUIET || transcript.open_streams == 0 {
                        self.cursor += 1;
                        let found = Match {
                            line: text,
                            elapsed: transcript.partial_at,
                        };
                        return Ok((index, found));
                    }
                    wake_for_partial = Some(PARTIAL_LINE_QUIET - quiet_for);
                }
            }
            let last_line = last_serial_line(&transcript);
            let patterns = || patterns.iter().map(|p| p.to_string()).collect();
            if transcript.open_streams == 0 {
                return Err(VmError::Exited {
                    patterns: patterns(),
                    last_line,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(VmError::Timeout {
                    patterns: patterns(),
                    timeout,
                    last_line,
                });
            }
            let wait = wake_for_partial.map_or(deadline - now, |w| w.min(deadline - now));
            transcript = self
                .shared
                .changed
                .wait_timeout(transcript, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The first serial line so far containing `pattern`, searching the whole transcript
    /// without consuming anything (for checks whose order does not matter).
    pub fn find(&self, pattern: &str) -> Option<Match> {
        let transcript = self.shared.lock();
        transcript
            .lines
            .iter()
            .find(|l| l.stream == Stream::Serial && l.text.contains(pattern))
            .map(|l| Match {
                line: l.text.clone(),
                elapsed: l.elapsed,
            })
    }

    /// Types `bytes` on the serial console.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), VmError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| VmError::Io("serial input closed".into()))?;
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .map_err(|e| VmError::Io(format!("write to serial: {e}")))
    }

    /// Waits up to `timeout` for QEMU to exit (guest poweroff, `-no-reboot` reset, or
    /// isa-debug-exit) and returns its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, VmError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.join_readers();
                    return Ok(status);
                }
                Ok(None) if Instant::now() >= deadline => {
                    return Err(VmError::StillRunning { timeout });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(VmError::Io(format!("wait for QEMU: {e}"))),
            }
        }
    }

    /// All serial lines so far, one per line, without timestamps.
    pub fn transcript(&self) -> String {
        let transcript = self.shared.lock();
        let mut text = String::new();
        for line in transcript
            .lines
            .iter()
            .filter(|l| l.stream == Stream::Serial)
        {
            text.push_str(&line.text);
            text.push('\n');
        }
        text.push_str(&clean_text(&transcript.partial));
        text
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

fn last_serial_line(transcript: &Transcript) -> String {
    if !transcript.partial.is_empty() {
        return clean_text(&transcript.partial);
    }
    transcript
        .lines
        .iter()
        .rev()
        .find(|l| l.stream == Stream::Serial)
        .map(|l| l.text.clone())
        .unwrap_or_default()
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The TPM outlives the QEMU that talks to it.
        drop(self.swtpm.take());
        self.join_readers();
        if let Some(vars) = &self.vars {
            let _ = std::fs::remove_file(vars);
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            eprintln!(
                "===== VM transcript ({}) =====\n{log}===== end of transcript =====",
                self.log_path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_strips_escapes_and_carriage_returns() {
        assert_eq!(
            clean_text(b"\x1b[0m\x1b[30;47mBdsDxe: loading\x1b[25;1H ok\r"),
            "BdsDxe: loading ok"
        );
        assert_eq!(clean_text(b"\x1b(Bplain"), "plain");
    }

    #[test]
    fn unique_log_names_get_suffixes() {
        assert_eq!(unique_log_name("dup test".into()), "dup_test");
        assert_eq!(unique_log_name("dup test".into()), "dup_test-2");
    }

    #[test]
    fn disks_on_other_buses() {
        let args: Vec<String> = Vm::builder()
            .firmware("/fw")
            .disk_on("/n.img", DiskBus::Nvme { block_size: 4096 })
            .disk_on("/s.img", DiskBus::SataDisk)
            .disk_on("/c.iso", DiskBus::SataCdrom)
            .disk_on("/h.img", DiskBus::ScsiDisk { block_size: 512 })
            .disk_on("/v.img", DiskBus::VirtioBlk { block_size: 4096 })
            .command(None)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        for expected in [
            "-device virtio-scsi-pci,id=scsi0,disable-legacy=on",
            "-device nvme,drive=d0,serial=vmfw0,logical_block_size=4096,physical_block_size=4096",
            "-device ide-hd,drive=d1,bus=ide.0",
            "id=d2,file=/c.iso,format=raw,snapshot=on,media=cdrom -device ide-cd,drive=d2,bus=ide.1",
            "-device scsi-hd,drive=d3,bus=scsi0.0,logical_block_size=512,physical_block_size=512",
            "-device virtio-blk-pci,drive=d4,disable-legacy=on,logical_block_size=4096,physical_block_size=4096",
        ] {
            assert!(joined.contains(expected), "{expected} not in {joined}");
        }
    }

    #[test]
    fn disks_are_modern_virtio_and_snapshotted() {
        let args: Vec<String> = Vm::builder()
            .firmware("/fw")
            .disk("/a.img")
            .disk_writable("/b.img")
            .append("x=1")
            .debug_exit(true)
            .command(None)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.starts_with("-machine q35 -accel tcg -m 1024"));
        assert!(joined.contains("-kernel /fw"));
        assert!(joined.contains("-append x=1"));
        assert!(joined.contains(
            "-drive if=none,id=d0,file=/a.img,format=raw,snapshot=on \
             -device virtio-blk-pci,drive=d0,disable-legacy=on"
        ));
        assert!(joined.contains("id=d1,file=/b.img,format=raw,snapshot=off"));
        assert!(joined.contains("isa-debug-exit"));
    }
}
