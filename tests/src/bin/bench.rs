//! Boot-time benchmark: our firmware against OVMF and QEMU's direct kernel boot.
//!
//! ```text
//! VMFW_FIRMWARE=target/target/release/vmfw \
//!     cargo run --release -p vm-tests --bin bench -- [--runs N] [--out FILE]
//! ```
//!
//! Boots the default image (`vm_tests::default_image`) N times (default 3) in each of three
//! configurations, interleaved (vmfw, ovmf, direct, vmfw, ...) so machine load affects all alike:
//! - `vmfw`: our firmware, shim -> GRUB from `\EFI\BOOT\BOOTX64.EFI`;
//! - `ovmf`: edk2 OVMF, same disk, same chain;
//! - `direct`: QEMU's `-kernel/-initrd/-append` with GRUB's kernel command line.
//!
//! Each run records the time from QEMU's start to the kernel's first console line
//! (`Linux version`), to the initramfs's first line (`INIT: cmdline=`) and to `INIT: done`.
//! Prints the medians, each firmware's overhead (its median time to `Linux version` minus
//! direct's) and ours as a ratio of OVMF's, and the stripped firmware size; writes the same as
//! JSON to `--out` (default `<root>/target/bench.json`). Everything runs under TCG, so absolute
//! times are far above KVM's; compare configurations, not machines. Without `VMFW_FIRMWARE` the
//! firmware is built first (`cargo firmware`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use vm_tests::{DefaultImage, GRUB_CMDLINE, Vm, default_image, firmware, workspace_root};

/// Per-milestone limit; a run that misses it counts as failed (TCG boots take ~10-60 s).
const MILESTONE_TIMEOUT: Duration = Duration::from_secs(240);
/// How long the guest's `poweroff -f` may take before the VM is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Console lines marking each milestone, in boot order, with their JSON/table names.
const MILESTONES: [(&str, &str); 3] = [
    ("kernel", "Linux version"),
    ("init", "INIT: cmdline="),
    ("done", "INIT: done"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Config {
    Vmfw,
    Ovmf,
    Direct,
}

const CONFIGS: [Config; 3] = [Config::Vmfw, Config::Ovmf, Config::Direct];

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::Vmfw => "vmfw",
            Config::Ovmf => "ovmf",
            Config::Direct => "direct",
        }
    }

    fn spawn(self, image: &DefaultImage, firmware: &Path) -> Vm {
        let builder = match self {
            Config::Vmfw => Vm::builder().firmware(firmware),
            Config::Ovmf => Vm::builder().ovmf(),
            Config::Direct => Vm::builder()
                .direct(&image.kernel.vmlinuz, Some(image.initrd.clone()))
                .append(GRUB_CMDLINE),
        };
        builder
            .disk(&image.disk)
            .name(format!("bench-{}", self.name()))
            .spawn()
    }
}

/// One boot's milestone times from QEMU's start; `None` from the first missed one on.
type RunTimes = [Option<Duration>; 3];

/// Boots once and waits for each milestone in order; a miss is reported and ends the run.
fn run_once(config: Config, image: &DefaultImage, firmware: &Path) -> RunTimes {
    let mut vm = config.spawn(image, firmware);
    let mut times: RunTimes = [None; 3];
    for (slot, (label, pattern)) in times.iter_mut().zip(MILESTONES) {
        match vm.expect(pattern, MILESTONE_TIMEOUT) {
            Ok(found) => *slot = Some(found.elapsed),
            Err(e) => {
                eprintln!(
                    "bench: {} run missed {label}: {e} (transcript {})",
                    config.name(),
                    vm.log_path().display()
                );
                return times;
            }
        }
    }
    // Let the guest power off so the next VM does not compete with this one for the CPU;
    // dropping the VM kills it anyway if it hangs.
    let _ = vm.wait_exit(EXIT_TIMEOUT);
    times
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

    fn failures(&self) -> usize {
        self.runs.iter().filter(|run| run[2].is_none()).count()
    }
}

/// Median time to the kernel's first line minus direct boot's, in seconds (may be negative
/// in principle, so signed).
fn overhead(results: &Results, direct: &Results) -> Option<f64> {
    Some(results.median(0)?.as_secs_f64() - direct.median(0)?.as_secs_f64())
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

struct Report<'a> {
    runs: usize,
    firmware: &'a Path,
    elf_size: Option<u64>,
    stripped_size: Option<u64>,
    results: &'a [Results],
}

impl Report<'_> {
    fn by_config(&self, config: Config) -> &Results {
        self.results
            .iter()
            .find(|r| r.config == config)
            .expect("every configuration has results")
    }

    fn overheads(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let direct = self.by_config(Config::Direct);
        let ours = overhead(self.by_config(Config::Vmfw), direct);
        let ovmf = overhead(self.by_config(Config::Ovmf), direct);
        let ratio = match (ours, ovmf) {
            (Some(ours), Some(ovmf)) if ovmf > 0.0 => Some(ours / ovmf),
            _ => None,
        };
        (ours, ovmf, ratio)
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "median seconds from QEMU start ({} run(s) each, TCG)",
            self.runs
        );
        let _ = writeln!(
            out,
            "{:<8} {:>10} {:>10} {:>10} {:>10} {:>6}",
            "config", "kernel", "init", "done", "overhead", "failed"
        );
        let direct = self.by_config(Config::Direct);
        for results in self.results {
            let overhead = match results.config {
                Config::Direct => "-".to_string(),
                _ => overhead(results, direct).map_or("n/a".into(), |o| format!("{o:.3}")),
            };
            let _ = writeln!(
                out,
                "{:<8} {:>10} {:>10} {:>10} {:>10} {:>6}",
                results.config.name(),
                secs(results.median(0)),
                secs(results.median(1)),
                secs(results.median(2)),
                overhead,
                results.failures()
            );
        }
        let (_, _, ratio) = self.overheads();
        let _ = writeln!(
            out,
            "vmfw overhead / OVMF overhead: {}",
            ratio.map_or("n/a".into(), |r| format!("{r:.3}"))
        );
        let size = |s: Option<u64>| s.map_or("n/a".into(), |s| format!("{s} bytes"));
        let _ = writeln!(
            out,
            "firmware {}: {} ELF, {} stripped",
            self.firmware.display(),
            size(self.elf_size),
            size(self.stripped_size)
        );
        out
    }

    fn json(&self) -> String {
        let mut configs = Vec::new();
        for results in self.results {
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
            configs.push(format!(
                "    \"{}\": {{{}, \"failed_runs\": {}}}",
                results.config.name(),
                fields.join(", "),
                results.failures()
            ));
        }
        let (ours, ovmf, ratio) = self.overheads();
        let size = |s: Option<u64>| s.map_or("null".into(), |s| s.to_string());
        format!(
            "{{\n  \"runs\": {},\n  \"firmware\": {},\n  \"firmware_elf_bytes\": {},\n  \
             \"firmware_stripped_bytes\": {},\n  \"configs\": {{\n{}\n  }},\n  \
             \"overhead_s\": {{\"vmfw\": {}, \"ovmf\": {}}},\n  \
             \"overhead_ratio_vmfw_to_ovmf\": {}\n}}\n",
            self.runs,
            json_str(&self.firmware.display().to_string()),
            size(self.elf_size),
            size(self.stripped_size),
            configs.join(",\n"),
            json_num(ours),
            json_num(ovmf),
            json_num(ratio)
        )
    }
}

struct Args {
    runs: usize,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        runs: 3,
        out: workspace_root().join("target").join("bench.json"),
    };
    let mut iter = std::env::args().skip(1);
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
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("bench: {message}\nusage: bench [--runs N] [--out FILE]");
            return ExitCode::from(2);
        }
    };
    let firmware = firmware();
    let image = default_image();
    let elf_size = std::fs::metadata(&firmware).map(|m| m.len()).ok();
    let stripped_size = stripped_size(&firmware)
        .map_err(|e| eprintln!("bench: {e}"))
        .ok();

    let mut results: Vec<Results> = CONFIGS
        .iter()
        .map(|&config| Results {
            config,
            runs: Vec::new(),
        })
        .collect();
    for round in 1..=args.runs {
        for results in &mut results {
            let times = run_once(results.config, &image, &firmware);
            eprintln!(
                "bench: round {round}/{} {:<6} kernel {} init {} done {}",
                args.runs,
                results.config.name(),
                secs(times[0]),
                secs(times[1]),
                secs(times[2])
            );
            results.runs.push(times);
        }
    }

    let report = Report {
        runs: args.runs,
        firmware: &firmware,
        elf_size,
        stripped_size,
        results: &results,
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
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
