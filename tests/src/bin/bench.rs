//! Boot-time benchmark: our firmware against OVMF and QEMU's direct kernel boot.
//!
//! ```text
//! VMFW_FIRMWARE=target/target/release/vmfw \
//!     cargo run --release -p vm-tests --bin bench -- [--runs N] [--out FILE] [--only a,b]
//! ```
//!
//! Boots the same Debian kernel and initramfs N times (default 3) in each configuration,
//! interleaved (one run of each, then the next round) so machine load affects all alike:
//! - `vmfw-shim-grub`: our firmware, the default image (`vm_tests::default_image`), shim ->
//!   GRUB from `\EFI\BOOT\BOOTX64.EFI`;
//! - `vmfw-shim-grub-sb`: the same with Secure Boot on, Microsoft's keys as the key input
//!   (`vm_tests::sb_keys::microsoft_keys`); the table gets its ratio to `vmfw-shim-grub`;
//! - `vmfw-shim-grub-tpm`: the same with a software TPM 2.0 (`swtpm`, QEMU `tpm-crb`) as
//!   `swtpm_setup` and libvirt provision it, a SHA-256 bank only: measured boot on; the table
//!   gets its ratio to `vmfw-shim-grub` (target at most 1.05);
//! - `vmfw-systemd-boot`: our firmware, the systemd-boot image
//!   (`vm_tests::images::systemd_boot_image`: Debian's systemd-boot as
//!   `\EFI\BOOT\BOOTX64.EFI` reading the same kind of BLS entry);
//! - `vmfw-bls`: our firmware's built-in BLS Type #1 boot (`boot=bls`, the default image's
//!   `/loader/entries/debian.conf`, kernel started through its EFI stub);
//! - `vmfw-bzimage`: our firmware's direct kernel boot (`kernel=... linux-boot=protocol`:
//!   the bzImage through the Linux 64-bit boot protocol, no EFI stub);
//! - `ovmf-shim-grub`, `ovmf-systemd-boot`: edk2 OVMF, the same disks and chains;
//! - `qemu-direct`: QEMU's `-kernel/-initrd/-append` with GRUB's kernel command line.
//!
//! Each run records the time from QEMU's start to the kernel's first console line
//! (`Linux version`), to the initramfs's first line (`INIT: cmdline=`, which must carry the
//! chain's own `vmfw.entry=` marker) and to `INIT: done`. For each chain it prints the
//! medians, the quartiles of the kernel times (how noisy this invocation was), the
//! overhead (median time to `Linux version` minus `qemu-direct`'s) and that overhead as a
//! ratio to OVMF's on the same chain (for BLS and bzImage, which OVMF cannot
//! boot itself, OVMF's systemd-boot chain: its nearest way to the same BLS entry), and checks
//! the targets: shim+GRUB and systemd-boot overhead at most a tenth of OVMF's; BLS and
//! bzImage time to the kernel within 10% of QEMU's direct boot.
//!
//! Then, outside the medians: one run of each vmfw chain with `log=debug` to collect the
//! firmware's own phase timings (`timing:` lines, from its TSC) and the runtime memory it
//! keeps after ExitBootServices; one run of the `blkbench` EFI app on each disk controller
//! (virtio-blk, NVMe, SATA, virtio-scsi) comparing BlockIo reads of one 512-byte sector per
//! request against 1 MiB requests (target: at least 4x; each controller's 1 MiB time within
//! 2x of virtio-blk's); one 100 MB file by the firmware's TFTP and HTTP clients against
//! the same file read from virtio-blk through EFI_FILE (`vm_tests::netbench`); and the
//! stripped firmware size (target: under 1 MiB; runtime memory at most 1 MiB).
//!
//! Everything is also written as JSON to `--out` (default `<root>/target/bench.json`).
//! Everything runs under TCG, so absolute times are far above KVM's; compare
//! configurations, not machines. Without `VMFW_FIRMWARE` the firmware is built first.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::time::Duration;

use vm_tests::footprint::{
    FIRMWARE_MEMORY_LINE, FirmwareMemory, parse_firmware_memory, smallest_that_boots,
};
use vm_tests::images::{SYSTEMD_BOOT_CMDLINE, systemd_boot_image};
use vm_tests::{
    BLS_CMDLINE, DefaultImage, DiskBus, EspBuilder, GRUB_CMDLINE, Vm, default_image, efi_app,
    firmware, report_field, workspace_root,
};

/// Per-milestone limit; a run that misses it counts as failed (TCG boots take ~10-60 s).
const MILESTONE_TIMEOUT: Duration = Duration::from_secs(240);
/// How long the guest's `poweroff -f` may take before the VM is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// The blkbench app's whole run (8192 single-sector requests under TCG).
const BLKBENCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Console lines marking each milestone, in boot order, with their JSON/table names.
const MILESTONES: [(&str, &str); 3] = [
    ("kernel", "Linux version"),
    ("init", "INIT: cmdline="),
    ("done", "INIT: done"),
];

/// Targets from the performance issue.
const MAX_OVERHEAD_RATIO: f64 = 0.10;
const MAX_KERNEL_TIME_RATIO: f64 = 1.10;
const MIN_THROUGHPUT_RATIO: f64 = 4.0;
/// The budget issues 18 and 22 state ("under 1 MiB stripped"); the
/// performance issue's 512 KiB predates Secure Boot, the TPM, four disk
/// controllers and the network stack.
const MAX_STRIPPED_BYTES: u64 = 1024 * 1024;
const MAX_RUNTIME_BYTES: u64 = 1024 * 1024;
/// Measured boot's cost (issue 20): the shim+GRUB chain with a TPM within 5% of it without.
const MAX_TPM_RATIO: f64 = 1.05;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Config {
    VmfwShimGrub,
    VmfwShimGrubSecureBoot,
    VmfwShimGrubTpm,
    VmfwSystemdBoot,
    VmfwBls,
    VmfwBzImage,
    OvmfShimGrub,
    OvmfSystemdBoot,
    QemuDirect,
}

const CONFIGS: [Config; 9] = [
    Config::VmfwShimGrub,
    Config::VmfwShimGrubSecureBoot,
    Config::VmfwShimGrubTpm,
    Config::VmfwSystemdBoot,
    Config::VmfwBls,
    Config::VmfwBzImage,
    Config::OvmfShimGrub,
    Config::OvmfSystemdBoot,
    Config::QemuDirect,
];

/// Which disk a configuration boots.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Disk {
    /// [`default_image`]: shim + GRUB, and a BLS entry for the built-in loader.
    Default,
    /// [`systemd_boot_image`]: systemd-boot and its BLS entry.
    SystemdBoot,
}

/// What a configuration's overhead is judged against.
enum Target {
    /// Overhead over QEMU's direct boot at most this fraction of OVMF's.
    OverheadRatio(f64),
    /// Time to the kernel's first line at most this multiple of QEMU's direct boot.
    KernelTimeRatio(f64),
    /// A reference configuration.
    None,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::VmfwShimGrub => "vmfw-shim-grub",
            Config::VmfwShimGrubSecureBoot => "vmfw-shim-grub-sb",
            Config::VmfwShimGrubTpm => "vmfw-shim-grub-tpm",
            Config::VmfwSystemdBoot => "vmfw-systemd-boot",
            Config::VmfwBls => "vmfw-bls",
            Config::VmfwBzImage => "vmfw-bzimage",
            Config::OvmfShimGrub => "ovmf-shim-grub",
            Config::OvmfSystemdBoot => "ovmf-systemd-boot",
            Config::QemuDirect => "qemu-direct",
        }
    }

    fn is_vmfw(self) -> bool {
        matches!(
            self,
            Config::VmfwShimGrub
                | Config::VmfwShimGrubSecureBoot
                | Config::VmfwShimGrubTpm
                | Config::VmfwSystemdBoot
                | Config::VmfwBls
                | Config::VmfwBzImage
        )
    }

    fn target(self) -> Target {
        match self {
            Config::VmfwShimGrub | Config::VmfwSystemdBoot => {
                Target::OverheadRatio(MAX_OVERHEAD_RATIO)
            }
            Config::VmfwBls | Config::VmfwBzImage => Target::KernelTimeRatio(MAX_KERNEL_TIME_RATIO),
            Config::VmfwShimGrubSecureBoot
            | Config::VmfwShimGrubTpm
            | Config::OvmfShimGrub
            | Config::OvmfSystemdBoot
            | Config::QemuDirect => Target::None,
        }
    }

    /// The OVMF configuration whose overhead this one's is divided by: the same chain under
    /// OVMF. OVMF has no built-in BLS or bzImage boot; systemd-boot is its nearest way to
    /// the same BLS entry and kernel.
    fn ovmf_reference(self) -> Option<Config> {
        match self {
            Config::VmfwShimGrub
            | Config::VmfwShimGrubSecureBoot
            | Config::VmfwShimGrubTpm
            | Config::OvmfShimGrub => Some(Config::OvmfShimGrub),
            Config::VmfwSystemdBoot
            | Config::OvmfSystemdBoot
            | Config::VmfwBls
            | Config::VmfwBzImage => Some(Config::OvmfSystemdBoot),
            Config::QemuDirect => None,
        }
    }

    fn disk(self) -> Disk {
        match self {
            Config::VmfwSystemdBoot | Config::OvmfSystemdBoot => Disk::SystemdBoot,
            _ => Disk::Default,
        }
    }

    /// The kernel command line this chain passes: its `vmfw.entry=` marker tells which
    /// loader started the kernel.
    fn kernel_cmdline(self) -> &'static str {
        match self {
            Config::VmfwBls => BLS_CMDLINE,
            Config::VmfwSystemdBoot | Config::OvmfSystemdBoot => SYSTEMD_BOOT_CMDLINE,
            Config::VmfwShimGrub
            | Config::VmfwShimGrubSecureBoot
            | Config::VmfwShimGrubTpm
            | Config::VmfwBzImage
            | Config::OvmfShimGrub
            | Config::QemuDirect => GRUB_CMDLINE,
        }
    }

    /// Our firmware's command line for this chain (QEMU `-append`).
    fn firmware_cmdline(self, image: &DefaultImage) -> Option<String> {
        let version = &image.kernel.version;
        match self {
            Config::VmfwBls => Some("boot=bls".into()),
            Config::VmfwBzImage => Some(format!(
                "kernel=\\vmlinuz-{version} initrd=\\initrd.img-{version} \
                 cmdline=\"{}\" linux-boot=protocol",
                self.kernel_cmdline()
            )),
            _ => None,
        }
    }

    /// Starts one boot; `debug` adds `log=debug` to our firmware's command line.
    fn spawn(self, images: &Images, firmware: &Path, debug: bool) -> Vm {
        self.spawn_in(images, firmware, debug, None)
    }

    /// [`Config::spawn`] in a VM of `memory_mib` (the harness's default when None).
    fn spawn_in(
        self,
        images: &Images,
        firmware: &Path,
        debug: bool,
        memory_mib: Option<u32>,
    ) -> Vm {
        let image = images.get(self.disk());
        let builder = match self {
            Config::OvmfShimGrub | Config::OvmfSystemdBoot => Vm::builder().ovmf(),
            Config::QemuDirect => Vm::builder()
                .direct(&image.kernel.vmlinuz, Some(image.initrd.clone()))
                .append(self.kernel_cmdline()),
            _ => {
                let mut words: Vec<String> = self.firmware_cmdline(image).into_iter().collect();
                if debug {
                    words.push("log=debug".into());
                }
                let mut builder = Vm::builder().firmware(firmware);
                if self == Config::VmfwShimGrubSecureBoot {
                    // Secure Boot on with Microsoft's keys (README "Secure Boot").
                    let keys = vm_tests::sb_keys::microsoft_keys();
                    builder = builder
                        .arg("-initrd")
                        .arg(keys.to_string_lossy().into_owned());
                }
                if self == Config::VmfwShimGrubTpm {
                    builder = builder.tpm_with_banks(vm_tests::swtpm::TpmInterface::Crb, "sha256");
                }
                if words.is_empty() {
                    builder
                } else {
                    builder.append(words.join(" "))
                }
            }
        };
        let suffix = if debug { "-debug" } else { "" };
        let (builder, suffix) = match memory_mib {
            Some(mib) => (builder.memory_mib(mib), format!("{suffix}-{mib}m")),
            None => (builder, suffix.to_string()),
        };
        builder
            .disk(&image.disk)
            .name(format!("bench-{}{suffix}", self.name()))
            .spawn()
    }
}

/// The disks the configurations boot, each built (or taken from the cache) on first use.
struct Images {
    default: OnceLock<DefaultImage>,
    systemd_boot: OnceLock<DefaultImage>,
}

impl Images {
    fn new() -> Self {
        Images {
            default: OnceLock::new(),
            systemd_boot: OnceLock::new(),
        }
    }

    fn get(&self, disk: Disk) -> &DefaultImage {
        match disk {
            Disk::Default => self.default.get_or_init(default_image),
            Disk::SystemdBoot => self.systemd_boot.get_or_init(systemd_boot_image),
        }
    }
}

/// One boot's milestone times from QEMU's start; `None` from the first missed one on.
type RunTimes = [Option<Duration>; 3];

/// Boots once and waits for each milestone in order; a miss, or a kernel command line
/// without the chain's marker (another loader booted), is reported and ends the run.
fn run_once(config: Config, images: &Images, firmware: &Path) -> RunTimes {
    let mut vm = config.spawn(images, firmware, false);
    let mut times: RunTimes = [None; 3];
    for (slot, (label, pattern)) in times.iter_mut().zip(MILESTONES) {
        let problem = match vm.expect(pattern, MILESTONE_TIMEOUT) {
            Ok(found) if label == "init" && !found.line.contains(config.kernel_cmdline()) => {
                format!(
                    "the kernel command line is not {:?}: {}",
                    config.kernel_cmdline(),
                    found.line.trim()
                )
            }
            Ok(found) => {
                *slot = Some(found.elapsed);
                continue;
            }
            Err(e) => format!("missed {label}: {e}"),
        };
        eprintln!(
            "bench: {} run {problem} (transcript {})",
            config.name(),
            vm.log_path().display()
        );
        return times;
    }
    // Let the guest power off so the next VM does not compete with this one for the CPU;
    // dropping the VM kills it anyway if it hangs.
    let _ = vm.wait_exit(EXIT_TIMEOUT);
    times
}

/// What a `log=debug` boot of our firmware reports about itself.
#[derive(Default)]
struct FirmwareDiagnostics {
    /// (phase, milliseconds) from `timing: <phase> <ms> ms (at <ms> ms)` lines, in order.
    phases: Vec<(String, f64)>,
    /// From `runtime memory: <bytes> bytes ...` at ExitBootServices.
    runtime_bytes: Option<u64>,
}

/// Parses a firmware `timing:` line (any prefix before `timing:` is ignored).
fn parse_timing(line: &str) -> Option<(String, f64)> {
    let rest = line.split_once("timing: ")?.1;
    let mut words = rest.split_whitespace();
    let phase = words.next()?;
    let ms = words.next()?.parse().ok()?;
    (words.next()? == "ms").then(|| (phase.to_string(), ms))
}

/// Parses the firmware's `runtime memory: <bytes> bytes` line.
fn parse_runtime_memory(line: &str) -> Option<u64> {
    let rest = line.split_once("runtime memory: ")?.1;
    rest.split_whitespace().next()?.parse().ok()
}

/// One `log=debug` boot up to the kernel's first line, collecting the firmware's reports.
fn diagnose(config: Config, images: &Images, firmware: &Path) -> FirmwareDiagnostics {
    let mut vm = config.spawn(images, firmware, true);
    let mut diagnostics = FirmwareDiagnostics::default();
    loop {
        match vm.expect_any(
            &["timing: ", "runtime memory: ", "Linux version"],
            MILESTONE_TIMEOUT,
        ) {
            Ok((0, found)) => diagnostics.phases.extend(parse_timing(&found.line)),
            Ok((1, found)) => diagnostics.runtime_bytes = parse_runtime_memory(&found.line),
            Ok(_) => break,
            Err(e) => {
                eprintln!(
                    "bench: {} debug run: {e} (transcript {})",
                    config.name(),
                    vm.log_path().display()
                );
                break;
            }
        }
    }
    diagnostics
}

/// The configurations whose smallest VM the benchmark finds: our firmware's
/// shim+GRUB and built-in BLS chains, and OVMF's shim+GRUB for comparison.
const MEMORY_CONFIGS: [Config; 3] = [Config::VmfwShimGrub, Config::VmfwBls, Config::OvmfShimGrub];
/// RAM sizes tried, MiB: 64 to 512 in 16 MiB steps.
fn ram_sizes() -> Vec<u32> {
    (4..=32).map(|n| n * 16).collect()
}
const LARGE_VM_MIB: u32 = 4096;
/// A boot that has not reached its initramfs by then failed (a good one
/// takes 10-25 s under TCG); failure lines end it sooner.
const MEMORY_PROBE_TIMEOUT: Duration = Duration::from_secs(120);
const BOOT_FAILURES: [&str; 5] = [
    "out of memory",
    "Kernel panic",
    "*** firmware panic",
    "no bootable device",
    "Out of memory",
];

/// The smallest VM a chain boots in, and the firmware's own memory there and
/// in a 4 GiB VM.
struct MemoryReport {
    config: Config,
    smallest_mib: Option<u32>,
    at_smallest: Option<FirmwareMemory>,
    at_large: Option<FirmwareMemory>,
}

/// Boots `config` in `mib` of RAM up to its initramfs: whether it got there,
/// and the firmware's ExitBootServices report if it made one.
fn boot_in(
    config: Config,
    images: &Images,
    firmware: &Path,
    mib: u32,
) -> (bool, Option<FirmwareMemory>) {
    let mut vm = config.spawn_in(images, firmware, false, Some(mib));
    let mut patterns = vec![FIRMWARE_MEMORY_LINE, "INIT: cmdline="];
    patterns.extend(BOOT_FAILURES);
    let mut memory = None;
    let booted = loop {
        match vm.expect_any(&patterns, MEMORY_PROBE_TIMEOUT) {
            Ok((0, found)) => memory = parse_firmware_memory(&found.line),
            Ok((1, found)) => break found.line.contains(config.kernel_cmdline()),
            Ok(_) | Err(_) => break false,
        }
    };
    eprintln!(
        "bench: {} in {mib} MiB: {}",
        config.name(),
        if booted { "boots" } else { "does not boot" }
    );
    if booted {
        let _ = vm.wait_exit(EXIT_TIMEOUT);
    }
    (booted, memory)
}

fn memory_report(config: Config, images: &Images, firmware: &Path) -> MemoryReport {
    let mut reports = std::collections::HashMap::new();
    let smallest_mib = smallest_that_boots(&ram_sizes(), |mib| {
        let (booted, memory) = boot_in(config, images, firmware, mib);
        reports.insert(mib, memory);
        booted
    });
    let at_smallest = smallest_mib.and_then(|mib| reports.get(&mib).copied().flatten());
    let at_large = if config.is_vmfw() {
        boot_in(config, images, firmware, LARGE_VM_MIB).1
    } else {
        None
    };
    MemoryReport {
        config,
        smallest_mib,
        at_smallest,
        at_large,
    }
}

fn memory_text(memory: Option<FirmwareMemory>) -> String {
    memory.map_or("not reported".into(), |m| {
        format!(
            "heap high-water {} KiB in {} KiB of arenas ({}), boot-services pages {} KiB",
            m.heap_high_water_kib, m.heap_arena_kib, m.heap_arenas, m.boot_services_kib
        )
    })
}

fn memory_json(memory: Option<FirmwareMemory>) -> String {
    memory.map_or("null".into(), |m| {
        format!(
            "{{\"heap_high_water_kib\": {}, \"heap_arena_kib\": {}, \"heap_arenas\": {}, \
             \"boot_services_kib\": {}}}",
            m.heap_high_water_kib, m.heap_arena_kib, m.heap_arenas, m.boot_services_kib
        )
    })
}

/// The blkbench app's report: microseconds for the same span read both ways.
struct Throughput {
    bytes: u64,
    /// One request per sector, last sector first (no read-ahead can merge them).
    sector_us: u64,
    /// One call per sector, in order (the firmware's read-ahead may merge them).
    sequential_sector_us: Option<u64>,
    large_us: u64,
}

impl Throughput {
    /// Large-request throughput over one-sector-per-request throughput.
    fn ratio(&self) -> f64 {
        self.sector_us as f64 / self.large_us.max(1) as f64
    }

    fn mib_per_s(&self, us: u64) -> f64 {
        self.bytes as f64 / f64::from(1 << 20) / (us.max(1) as f64 / 1e6)
    }
}

fn parse_blkbench(line: &str) -> Option<Throughput> {
    Some(Throughput {
        bytes: report_field(line, "bytes")?,
        sector_us: report_field(line, "sector_us")?,
        sequential_sector_us: report_field(line, "sequential_sector_us"),
        large_us: report_field(line, "large_us")?,
    })
}

/// The controllers blkbench runs on (issue 21: one row per controller), virtio-blk first:
/// the others' large-request figures are held against its.
const BLKBENCH_BUSES: [(&str, DiskBus); 4] = [
    ("virtio-blk", DiskBus::VirtioBlk { block_size: 512 }),
    ("NVMe", DiskBus::Nvme { block_size: 512 }),
    ("SATA (AHCI)", DiskBus::SataDisk),
    ("virtio-scsi", DiskBus::ScsiDisk { block_size: 512 }),
];
/// Each controller's 1 MiB-request time within this factor of virtio-blk's.
const MAX_LARGE_REQUEST_VS_VIRTIO_BLK: f64 = 2.0;

/// Boots the `blkbench` app from an ESP of its own on `bus` under our firmware.
fn run_blkbench(firmware: &Path, bus: DiskBus) -> Result<Throughput, String> {
    let disk = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("blkbench"))
        .esp_size_mib(64)
        .build();
    let mut vm = Vm::builder()
        .firmware(firmware)
        .disk_on(&disk, bus)
        .name("bench-blkbench")
        .spawn();
    // Wait for the last line: the report line arrives in several console writes, and
    // only a finished line is whole.
    vm.expect("BLKBENCH: done", BLKBENCH_TIMEOUT)
        .map_err(|e| format!("blkbench: {e}"))?;
    let _ = vm.wait_exit(EXIT_TIMEOUT);
    // The report spans several lines (the console is 80 columns wide).
    let report: Vec<String> = vm
        .transcript()
        .lines()
        .filter(|line| line.contains("BLKBENCH: "))
        .map(str::to_string)
        .collect();
    let report = report.join(" ");
    parse_blkbench(&report).ok_or(format!("blkbench: {}", report.trim()))
}

fn median(values: &[Duration]) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2),
    }
}

/// First and third quartiles: the medians of the lower and upper halves
/// (the middle value, for an odd count, in neither). None below two values.
fn quartiles(values: &[Duration]) -> Option<(Duration, Duration)> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let half = sorted.len() / 2;
    if half == 0 {
        return None;
    }
    Some((
        median(&sorted[..half])?,
        median(&sorted[sorted.len() - half..])?,
    ))
}

/// Size of a stripped copy of the firmware ELF (what a distribution would ship).
fn stripped_size(elf: &Path) -> Result<u64, String> {
    let copy = std::env::temp_dir().join(format!("vmfw-bench-stripped-{}", std::process::id()));
    std::fs::copy(elf, &copy).map_err(|e| format!("copy {}: {e}", elf.display()))?;
    let status = Command::new("strip").arg(&copy).status();
    let size = std::fs::metadata(&copy).map(|m| m.len());
    let _ = std::fs::remove_file(&copy);
    match status {
        Ok(s) if s.success() => size.map_err(|e| format!("stat stripped copy: {e}")),
        Ok(s) => Err(format!("strip failed: {s}")),
        Err(e) => Err(format!("cannot run strip: {e}")),
    }
}

fn secs(value: Option<Duration>) -> String {
    value.map_or("n/a".to_string(), |d| format!("{:.3}", d.as_secs_f64()))
}

fn json_num(value: Option<f64>) -> String {
    value.map_or("null".to_string(), |v| format!("{v:.6}"))
}

/// Escapes a string for a JSON string literal (RFC 8259 §7).
fn json_str(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// All runs of one configuration.
struct Results {
    config: Config,
    runs: Vec<RunTimes>,
}

impl Results {
    /// The successful times of milestone `index`.
    fn samples(&self, index: usize) -> Vec<Duration> {
        self.runs.iter().filter_map(|run| run[index]).collect()
    }

    fn median(&self, index: usize) -> Option<Duration> {
        median(&self.samples(index))
    }

    fn quartiles(&self, index: usize) -> Option<(Duration, Duration)> {
        quartiles(&self.samples(index))
    }

    fn failures(&self) -> usize {
        self.runs.iter().filter(|run| run[2].is_none()).count()
    }
}

/// Whether a measured value meets its target, for the table.
fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "n/a",
    }
}

struct Report<'a> {
    runs: usize,
    firmware: &'a Path,
    elf_size: Option<u64>,
    stripped_size: Option<u64>,
    results: &'a [Results],
    diagnostics: &'a [(Config, FirmwareDiagnostics)],
    /// (controller, its blkbench report), virtio-blk first.
    throughput: &'a [(&'static str, Throughput)],
    /// The 100 MB file by TFTP and HTTP against virtio-blk (issue 22).
    network: Option<vm_tests::netbench::NetThroughput>,
    memory: &'a [MemoryReport],
}

impl Report<'_> {
    fn by_config(&self, config: Config) -> Option<&Results> {
        self.results.iter().find(|r| r.config == config)
    }

    fn kernel_median(&self, config: Config) -> Option<f64> {
        Some(self.by_config(config)?.median(0)?.as_secs_f64())
    }

    /// Median time to the kernel's first line minus QEMU direct's, in seconds.
    fn overhead(&self, config: Config) -> Option<f64> {
        Some(self.kernel_median(config)? - self.kernel_median(Config::QemuDirect)?)
    }

    /// Overhead as a fraction of OVMF's on the same chain ([`Config::ovmf_reference`]).
    fn overhead_ratio(&self, config: Config) -> Option<f64> {
        let ovmf = self
            .overhead(config.ovmf_reference()?)
            .filter(|&o| o > 0.0)?;
        Some(self.overhead(config)? / ovmf)
    }

    /// Time to the kernel's first line as a multiple of QEMU direct's.
    fn kernel_time_ratio(&self, config: Config) -> Option<f64> {
        Some(self.kernel_median(config)? / self.kernel_median(Config::QemuDirect)?)
    }

    fn target_met(&self, config: Config) -> Option<bool> {
        match config.target() {
            Target::OverheadRatio(most) => Some(self.overhead_ratio(config)? <= most),
            Target::KernelTimeRatio(most) => Some(self.kernel_time_ratio(config)? <= most),
            Target::None => None,
        }
    }

    fn runtime_bytes(&self) -> Option<u64> {
        self.diagnostics
            .iter()
            .filter_map(|(_, d)| d.runtime_bytes)
            .max()
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "median seconds from QEMU start ({} run(s) each, TCG); kernel-IQR = quartiles of the kernel \
             times (this invocation's noise); overhead = kernel - qemu-direct's; vs-OVMF = overhead / \
             OVMF's on the same chain (vmfw-bls, vmfw-bzimage: ovmf-systemd-boot's)",
            self.runs
        );
        let _ = writeln!(
            out,
            "{:<17} {:>8} {:>13} {:>8} {:>8} {:>9} {:>8} {:>8} {:>22} {:>6}",
            "config",
            "kernel",
            "kernel-IQR",
            "init",
            "done",
            "overhead",
            "vs-OVMF",
            "vs-qemu",
            "target",
            "failed"
        );
        let ratio = |r: Option<f64>| r.map_or("n/a".into(), |r| format!("{r:.3}"));
        for results in self.results {
            let config = results.config;
            let overhead = match config {
                Config::QemuDirect => "-".to_string(),
                _ => self
                    .overhead(config)
                    .map_or("n/a".into(), |o| format!("{o:.3}")),
            };
            let target = match config.target() {
                Target::OverheadRatio(most) => {
                    format!("vs-OVMF<={most:.2} {}", verdict(self.target_met(config)))
                }
                Target::KernelTimeRatio(most) => {
                    format!("vs-qemu<={most:.2} {}", verdict(self.target_met(config)))
                }
                Target::None => "-".into(),
            };
            let iqr = results.quartiles(0).map_or("n/a".into(), |(q1, q3)| {
                format!("{:.2}-{:.2}", q1.as_secs_f64(), q3.as_secs_f64())
            });
            let _ = writeln!(
                out,
                "{:<17} {:>8} {:>13} {:>8} {:>8} {:>9} {:>8} {:>8} {:>22} {:>6}",
                config.name(),
                secs(results.median(0)),
                iqr,
                secs(results.median(1)),
                secs(results.median(2)),
                overhead,
                ratio(self.overhead_ratio(config)),
                ratio(self.kernel_time_ratio(config)),
                target,
                results.failures()
            );
        }
        for (config, diagnostics) in self.diagnostics {
            let phases: Vec<String> = diagnostics
                .phases
                .iter()
                .map(|(phase, ms)| format!("{phase} {ms:.1}"))
                .collect();
            let _ = writeln!(
                out,
                "{} firmware phases (ms, log=debug run): {}",
                config.name(),
                if phases.is_empty() {
                    "none reported".into()
                } else {
                    phases.join(", ")
                }
            );
        }
        let virtio_large_us = self.throughput.first().map(|(_, t)| t.large_us);
        for (controller, t) in self.throughput {
            let vs_virtio = virtio_large_us.map(|v| t.large_us as f64 / v.max(1) as f64);
            let _ = writeln!(
                out,
                "BlockIo read of {} bytes on {controller}: 512-byte requests {:.2} MiB/s ({} in order), \
                 1 MiB requests {:.2} MiB/s, ratio {:.1} (target >= {MIN_THROUGHPUT_RATIO}: {}); \
                 1 MiB time / virtio-blk's {} (target <= {MAX_LARGE_REQUEST_VS_VIRTIO_BLK}: {})",
                t.bytes,
                t.mib_per_s(t.sector_us),
                t.sequential_sector_us
                    .map_or("n/a".into(), |us| format!("{:.2} MiB/s", t.mib_per_s(us))),
                t.mib_per_s(t.large_us),
                t.ratio(),
                verdict(Some(t.ratio() >= MIN_THROUGHPUT_RATIO)),
                vs_virtio.map_or("n/a".into(), |r| format!("{r:.2}")),
                verdict(vs_virtio.map(|r| r <= MAX_LARGE_REQUEST_VS_VIRTIO_BLK))
            );
        }
        if let Some(n) = &self.network {
            let blk = n.virtio_blk.mb_per_s();
            let link = n.linux_http.mb_per_s();
            for (how, rate) in [("TFTP (PXE client)", n.tftp), ("HTTP (HTTP boot)", n.http)] {
                let _ = writeln!(
                    out,
                    "network: {} bytes by {how}: {:.1} MB/s in {} ms, {:.2} of Linux's own \
                     download over the same link ({link:.1} MB/s), {:.2} of virtio-blk's \
                     EFI_FILE read of the same file ({blk:.1} MB/s)",
                    rate.bytes,
                    rate.mb_per_s(),
                    rate.ms,
                    rate.mb_per_s() / link.max(f64::MIN_POSITIVE),
                    rate.mb_per_s() / blk.max(f64::MIN_POSITIVE)
                );
            }
        }
        if let (Some(on), Some(off)) = (
            self.kernel_median(Config::VmfwShimGrubSecureBoot),
            self.kernel_median(Config::VmfwShimGrub),
        ) {
            let _ = writeln!(
                out,
                "Secure Boot: vmfw-shim-grub-sb / vmfw-shim-grub time to the kernel = {:.3} \
                 ({:+.3} s: shim verified by the firmware, GRUB by shim, the kernel by GRUB through shim)",
                on / off,
                on - off
            );
        }
        if let (Some(on), Some(off)) = (
            self.kernel_median(Config::VmfwShimGrubTpm),
            self.kernel_median(Config::VmfwShimGrub),
        ) {
            let _ = writeln!(
                out,
                "TPM: vmfw-shim-grub-tpm / vmfw-shim-grub time to the kernel = {:.3} \
                 ({:+.3} s: every image, GRUB command and file measured; target <= {MAX_TPM_RATIO}: {})",
                on / off,
                on - off,
                verdict(Some(on / off <= MAX_TPM_RATIO))
            );
        }
        let size = |s: Option<u64>| s.map_or("n/a".into(), |s| format!("{s} bytes"));
        let _ = writeln!(
            out,
            "firmware {}: {} ELF, {} stripped (target <= {MAX_STRIPPED_BYTES}: {})",
            self.firmware.display(),
            size(self.elf_size),
            size(self.stripped_size),
            verdict(self.stripped_size.map(|s| s <= MAX_STRIPPED_BYTES))
        );
        let runtime = self.runtime_bytes();
        let _ = writeln!(
            out,
            "runtime services memory kept after ExitBootServices: {} (target <= {MAX_RUNTIME_BYTES}: {})",
            size(runtime),
            verdict(runtime.map(|r| r <= MAX_RUNTIME_BYTES))
        );
        let sizes = ram_sizes();
        for m in self.memory {
            let _ = writeln!(
                out,
                "{} smallest RAM that boots (tried {}-{} MiB in 16 MiB steps): {}",
                m.config.name(),
                sizes[0],
                sizes[sizes.len() - 1],
                m.smallest_mib
                    .map_or("none".into(), |mib| format!("{mib} MiB"))
            );
            if m.config.is_vmfw() {
                let _ = writeln!(
                    out,
                    "  firmware memory at ExitBootServices there: {}; in {LARGE_VM_MIB} MiB: {}",
                    memory_text(m.at_smallest),
                    memory_text(m.at_large)
                );
            }
        }
        out
    }

    fn json(&self) -> String {
        let mut configs = Vec::new();
        for results in self.results {
            let config = results.config;
            let mut fields = Vec::new();
            for (index, (label, _)) in MILESTONES.iter().enumerate() {
                let samples: Vec<String> = results
                    .runs
                    .iter()
                    .map(|run| json_num(run[index].map(|d| d.as_secs_f64())))
                    .collect();
                fields.push(format!(
                    "\"{label}_s\": [{}], \"{label}_median_s\": {}",
                    samples.join(", "),
                    json_num(results.median(index).map(|d| d.as_secs_f64()))
                ));
            }
            let overhead = match config {
                Config::QemuDirect => None,
                _ => self.overhead(config),
            };
            let (q1, q3) = results.quartiles(0).unzip();
            fields.push(format!(
                "\"kernel_quartiles_s\": [{}, {}]",
                json_num(q1.map(|d| d.as_secs_f64())),
                json_num(q3.map(|d| d.as_secs_f64()))
            ));
            fields.push(format!(
                "\"overhead_s\": {}, \"ovmf_reference\": {}, \"overhead_ratio_to_ovmf\": {}, \
                 \"kernel_time_ratio_to_qemu_direct\": {}, \"target_met\": {}",
                json_num(overhead),
                config
                    .ovmf_reference()
                    .map_or("null".into(), |c| json_str(c.name())),
                json_num(self.overhead_ratio(config)),
                json_num(self.kernel_time_ratio(config)),
                self.target_met(config)
                    .map_or("null".into(), |ok| ok.to_string())
            ));
            if let Some((_, d)) = self.diagnostics.iter().find(|(c, _)| *c == config) {
                let phases: Vec<String> = d
                    .phases
                    .iter()
                    .map(|(phase, ms)| format!("{}: {ms:.3}", json_str(phase)))
                    .collect();
                fields.push(format!(
                    "\"firmware_phases_ms\": {{{}}}, \"runtime_bytes\": {}",
                    phases.join(", "),
                    d.runtime_bytes.map_or("null".into(), |b| b.to_string())
                ));
            }
            configs.push(format!(
                "    {}: {{{}, \"failed_runs\": {}}}",
                json_str(config.name()),
                fields.join(", "),
                results.failures()
            ));
        }
        let size = |s: Option<u64>| s.map_or("null".into(), |s| s.to_string());
        let rows: Vec<String> = self
            .throughput
            .iter()
            .map(|(controller, t)| {
                format!(
                    "{}: {{\"bytes\": {}, \"sector_requests_us\": {}, \"sequential_sector_requests_us\": {}, \
                     \"large_requests_us\": {}, \"ratio\": {:.3}}}",
                    json_str(controller),
                    t.bytes,
                    t.sector_us,
                    t.sequential_sector_us
                        .map_or("null".into(), |us| us.to_string()),
                    t.large_us,
                    t.ratio()
                )
            })
            .collect();
        let throughput = format!("{{{}}}", rows.join(", "));
        let rate = |r: vm_tests::netbench::Rate| {
            format!(
                "{{\"bytes\": {}, \"ms\": {}, \"mb_per_s\": {:.2}}}",
                r.bytes,
                r.ms,
                r.mb_per_s()
            )
        };
        let network = self.network.map_or("null".into(), |n| {
            format!(
                "{{\"tftp\": {}, \"http\": {}, \"virtio_blk_file\": {}, \"linux_http\": {}}}",
                rate(n.tftp),
                rate(n.http),
                rate(n.virtio_blk),
                rate(n.linux_http)
            )
        });
        let memory: Vec<String> = self
            .memory
            .iter()
            .map(|m| {
                format!(
                    "    {}: {{\"smallest_mib\": {}, \"firmware_memory_at_smallest\": {}, \
                     \"firmware_memory_at_{LARGE_VM_MIB}_mib\": {}}}",
                    json_str(m.config.name()),
                    m.smallest_mib.map_or("null".into(), |mib| mib.to_string()),
                    memory_json(m.at_smallest),
                    memory_json(m.at_large)
                )
            })
            .collect();
        format!(
            "{{\n  \"runs\": {},\n  \"firmware\": {},\n  \"firmware_elf_bytes\": {},\n  \
             \"firmware_stripped_bytes\": {},\n  \"runtime_bytes\": {},\n  \
             \"blockio_throughput\": {},\n  \"network_throughput\": {},\n  \"memory\": {{\n{}\n  }},\n  \"configs\": {{\n{}\n  }}\n}}\n",
            self.runs,
            json_str(&self.firmware.display().to_string()),
            size(self.elf_size),
            size(self.stripped_size),
            size(self.runtime_bytes()),
            throughput,
            network,
            memory.join(",\n"),
            configs.join(",\n"),
        )
    }
}

struct Args {
    runs: usize,
    out: PathBuf,
    configs: Vec<Config>,
    diagnostics: bool,
    memory: bool,
}

/// Parses the command line after the program name; `--only` also sets the order of the
/// configurations within a round.
fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        runs: 3,
        out: workspace_root().join("target").join("bench.json"),
        configs: CONFIGS.to_vec(),
        diagnostics: true,
        memory: true,
    };
    let mut iter = argv.into_iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--runs" => {
                let value = iter.next().ok_or("--runs needs a number")?;
                args.runs = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--runs: not a positive number: {value:?}"))?;
            }
            "--out" => args.out = iter.next().ok_or("--out needs a file")?.into(),
            "--only" => {
                let list = iter.next().ok_or("--only needs configuration names")?;
                args.configs.clear();
                for name in list.split(',') {
                    let config = CONFIGS
                        .into_iter()
                        .find(|c| c.name() == name)
                        .ok_or(format!("--only: unknown configuration {name:?}"))?;
                    if args.configs.contains(&config) {
                        return Err(format!("--only: {name:?} listed twice"));
                    }
                    args.configs.push(config);
                }
            }
            "--no-diagnostics" => args.diagnostics = false,
            "--no-memory" => args.memory = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn usage() -> String {
    let names: Vec<&str> = CONFIGS.iter().map(|c| c.name()).collect();
    format!(
        "usage: bench [--runs N] [--out FILE] [--only CONFIG,...] [--no-diagnostics] [--no-memory]\n\
         configurations: {}",
        names.join(" ")
    )
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("bench: {message}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let firmware = firmware();
    // Build every disk before the first timed run.
    let images = Images::new();
    for config in &args.configs {
        images.get(config.disk());
    }
    let elf_size = std::fs::metadata(&firmware).map(|m| m.len()).ok();
    let stripped_size = stripped_size(&firmware)
        .map_err(|e| eprintln!("bench: {e}"))
        .ok();

    let mut results: Vec<Results> = args
        .configs
        .iter()
        .map(|&config| Results {
            config,
            runs: Vec::new(),
        })
        .collect();
    for round in 1..=args.runs {
        for results in &mut results {
            let times = run_once(results.config, &images, &firmware);
            eprintln!(
                "bench: round {round}/{} {:<17} kernel {} init {} done {}",
                args.runs,
                results.config.name(),
                secs(times[0]),
                secs(times[1]),
                secs(times[2])
            );
            results.runs.push(times);
        }
    }

    let mut diagnostics = Vec::new();
    let mut throughput = Vec::new();
    let mut network = None;
    if args.diagnostics {
        for &config in args.configs.iter().filter(|c| c.is_vmfw()) {
            diagnostics.push((config, diagnose(config, &images, &firmware)));
        }
        for (controller, bus) in BLKBENCH_BUSES {
            match run_blkbench(&firmware, bus) {
                Ok(t) => throughput.push((controller, t)),
                Err(e) => eprintln!("bench: {controller}: {e}"),
            }
        }
        match vm_tests::netbench::run(&firmware) {
            Ok(n) => network = Some(n),
            Err(e) => eprintln!("bench: network: {e}"),
        }
    }

    let memory: Vec<MemoryReport> = if args.memory {
        MEMORY_CONFIGS
            .into_iter()
            .filter(|c| args.configs.contains(c))
            .map(|config| memory_report(config, &images, &firmware))
            .collect()
    } else {
        Vec::new()
    };

    let report = Report {
        runs: args.runs,
        firmware: &firmware,
        elf_size,
        stripped_size,
        results: &results,
        diagnostics: &diagnostics,
        throughput: &throughput,
        network,
        memory: &memory,
    };
    print!("{}", report.table());
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&args.out, report.json()) {
        eprintln!("bench: write {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", args.out.display());
    let any_failed = results.iter().any(|r| r.failures() > 0);
    if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Duration::from_secs;
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[s(3), s(1), s(2)]), Some(s(2)));
        assert_eq!(
            median(&[s(4), s(1), s(2), s(3)]),
            Some(Duration::from_millis(2500))
        );
    }

    #[test]
    fn quartiles_are_the_medians_of_the_halves() {
        let s = Duration::from_secs;
        assert_eq!(quartiles(&[s(1)]), None);
        assert_eq!(quartiles(&[s(2), s(1)]), Some((s(1), s(2))));
        // 1 2 | 3 | 4 5: the middle value belongs to neither half.
        assert_eq!(
            quartiles(&[s(5), s(3), s(1), s(4), s(2)]),
            Some((Duration::from_millis(1500), Duration::from_millis(4500)))
        );
        assert_eq!(
            quartiles(&[s(4), s(1), s(3), s(2)]),
            Some((Duration::from_millis(1500), Duration::from_millis(3500)))
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn firmware_report_lines_parse() {
        assert_eq!(
            parse_timing("debug: timing: disk-probe 13.092 ms (at 122.872 ms)"),
            Some(("disk-probe".to_string(), 13.092))
        );
        assert_eq!(parse_timing("debug: timing: pci soon"), None);
        assert_eq!(
            parse_runtime_memory("debug: runtime memory: 675840 bytes (code 389120, data 286720)"),
            Some(675840)
        );
        assert_eq!(parse_runtime_memory("runtime memory: lots"), None);
        let t = parse_blkbench(
            "BLKBENCH: bytes=4194304 sector_us=2000000 BLKBENCH: sequential_sector_us=300000 \
             BLKBENCH: large_us=100000 ratio=20000",
        )
        .unwrap();
        assert_eq!(t.sequential_sector_us, Some(300_000));
        assert_eq!(
            (t.bytes, t.sector_us, t.large_us),
            (4194304, 2_000_000, 100_000)
        );
        assert!((t.ratio() - 20.0).abs() < 1e-9);
        assert!((t.mib_per_s(t.large_us) - 40.0).abs() < 1e-9);
        assert!(parse_blkbench("BLKBENCH: error ReadBlocks 0x8000000000000007").is_none());
    }

    fn report_with(kernel: &[(Config, u64)]) -> (Vec<Results>, PathBuf) {
        let results = kernel
            .iter()
            .map(|&(config, ms)| Results {
                config,
                runs: vec![[Some(Duration::from_millis(ms)), None, None]],
            })
            .collect();
        (results, PathBuf::from("vmfw"))
    }

    fn report_of<'a>(results: &'a [Results], firmware: &'a Path) -> Report<'a> {
        Report {
            runs: 1,
            firmware,
            elf_size: None,
            stripped_size: Some(300_000),
            results,
            diagnostics: &[],
            throughput: &[],
            network: None,
            memory: &[],
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn overheads_ratios_and_targets() {
        let (results, firmware) = report_with(&[
            (Config::VmfwShimGrub, 11_000),
            (Config::VmfwSystemdBoot, 10_500),
            (Config::VmfwBls, 10_500),
            (Config::OvmfShimGrub, 30_000),
            (Config::OvmfSystemdBoot, 18_000),
            (Config::QemuDirect, 10_000),
        ]);
        let report = report_of(&results, &firmware);
        assert!(close(report.overhead(Config::VmfwShimGrub), 1.0));
        // Each chain against OVMF on the same chain: 1 s of 20 s, 0.5 s of 8 s.
        assert!(close(report.overhead_ratio(Config::VmfwShimGrub), 0.05));
        assert!(close(
            report.overhead_ratio(Config::VmfwSystemdBoot),
            0.0625
        ));
        assert!(close(report.overhead_ratio(Config::OvmfSystemdBoot), 1.0));
        assert!(close(report.overhead_ratio(Config::VmfwBls), 0.0625));
        assert_eq!(report.overhead_ratio(Config::QemuDirect), None);
        assert_eq!(report.target_met(Config::VmfwShimGrub), Some(true));
        assert_eq!(report.target_met(Config::VmfwSystemdBoot), Some(true));
        assert!(close(report.kernel_time_ratio(Config::VmfwBls), 1.05));
        assert_eq!(report.target_met(Config::VmfwBls), Some(true));
        assert_eq!(report.target_met(Config::VmfwBzImage), None);
        assert_eq!(report.target_met(Config::OvmfSystemdBoot), None);
        assert_eq!(report.target_met(Config::QemuDirect), None);
        let json = report.json();
        assert!(json.contains("\"vmfw-shim-grub\": {"), "{json}");
        assert!(
            json.contains(
                "\"vmfw-systemd-boot\": {\"kernel_s\": [10.500000], \"kernel_median_s\": 10.500000"
            ),
            "{json}"
        );
        assert!(
            json.contains(
                "\"overhead_s\": 0.500000, \"ovmf_reference\": \"ovmf-systemd-boot\", \
                 \"overhead_ratio_to_ovmf\": 0.062500"
            ),
            "{json}"
        );
        assert!(json.contains("\"target_met\": true"), "{json}");
        assert!(!json.contains("\"target_met\": false"), "{json}");
        let table = report.table();
        assert!(!table.contains("MISSED"), "{table}");
        assert!(
            table
                .lines()
                .any(|line| line.starts_with("vmfw-systemd-boot ")
                    && line.contains("0.062")
                    && line.contains("vs-OVMF<=0.10 met")),
            "{table}"
        );
    }

    #[test]
    fn systemd_boot_is_judged_against_ovmf_systemd_boot_only() {
        // Cheap next to OVMF's shim+GRUB, but not next to OVMF's systemd-boot.
        let (results, firmware) = report_with(&[
            (Config::VmfwSystemdBoot, 12_000),
            (Config::OvmfShimGrub, 40_000),
            (Config::OvmfSystemdBoot, 16_000),
            (Config::QemuDirect, 10_000),
        ]);
        let report = report_of(&results, &firmware);
        assert!(close(
            report.overhead_ratio(Config::VmfwSystemdBoot),
            1.0 / 3.0
        ));
        assert_eq!(report.target_met(Config::VmfwSystemdBoot), Some(false));
        assert!(report.table().contains("vs-OVMF<=0.10 MISSED"));
        assert!(report.json().contains("\"target_met\": false"));

        // Without its OVMF reference in the run there is no ratio, and no verdict.
        let (results, firmware) = report_with(&[
            (Config::VmfwSystemdBoot, 12_000),
            (Config::OvmfShimGrub, 40_000),
            (Config::QemuDirect, 10_000),
        ]);
        let report = report_of(&results, &firmware);
        assert_eq!(report.overhead_ratio(Config::VmfwSystemdBoot), None);
        assert_eq!(report.target_met(Config::VmfwSystemdBoot), None);
    }

    #[test]
    fn chains_boot_their_own_disk_and_command_line() {
        for config in CONFIGS {
            let systemd_boot = config.name().contains("systemd-boot");
            assert_eq!(
                config.disk() == Disk::SystemdBoot,
                systemd_boot,
                "{config:?}"
            );
            if systemd_boot {
                assert_eq!(config.kernel_cmdline(), SYSTEMD_BOOT_CMDLINE);
            }
            // Every ratio is taken against an OVMF reference run, never a vmfw one.
            if let Some(reference) = config.ovmf_reference() {
                assert!(reference.name().starts_with("ovmf-"), "{config:?}");
                assert!(matches!(reference.target(), Target::None));
                assert_eq!(reference.ovmf_reference(), Some(reference));
            }
            assert_eq!(config.is_vmfw(), config.name().starts_with("vmfw-"));
        }
        assert_eq!(Config::VmfwBls.kernel_cmdline(), BLS_CMDLINE);
        assert_eq!(Config::QemuDirect.kernel_cmdline(), GRUB_CMDLINE);
        assert_eq!(Config::VmfwShimGrub.kernel_cmdline(), GRUB_CMDLINE);
        assert_eq!(Config::OvmfShimGrub.disk(), Disk::Default);
        assert_eq!(
            Config::VmfwShimGrub.ovmf_reference(),
            Some(Config::OvmfShimGrub)
        );
        assert_eq!(
            Config::VmfwSystemdBoot.ovmf_reference(),
            Some(Config::OvmfSystemdBoot)
        );
    }

    #[test]
    fn only_picks_configurations_in_the_given_order() {
        let parse = |words: &[&str]| parse_args(words.iter().map(|w| w.to_string()));
        let args = parse(&[]).unwrap();
        assert_eq!(args.configs, CONFIGS.to_vec());
        assert_eq!(args.runs, 3);
        let args = parse(&[
            "--runs",
            "1",
            "--only",
            "qemu-direct,vmfw-systemd-boot,ovmf-systemd-boot",
        ])
        .unwrap();
        assert_eq!(args.runs, 1);
        assert_eq!(
            args.configs,
            [
                Config::QemuDirect,
                Config::VmfwSystemdBoot,
                Config::OvmfSystemdBoot
            ]
        );
        assert!(parse(&["--only", "vmfw-sd-boot"]).is_err());
        assert!(parse(&["--only", "qemu-direct,qemu-direct"]).is_err());
        assert!(parse(&["--runs", "0"]).is_err());
        let usage = usage();
        assert!(CONFIGS.iter().all(|c| usage.contains(c.name())), "{usage}");
    }
}
