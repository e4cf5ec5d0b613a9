//! Debian packages as test inputs: downloaded with `apt-get download` into
//! `<root>/.cache/debs/<suite>/` and extracted with `dpkg-deb -x`.
//!
//! Debian 12 (the host's release) uses the host's apt configuration. Debian 13 uses a private apt
//! state under `<root>/.cache/apt-trixie/` so the host's package lists stay untouched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::paths::cache_dir;
use crate::util::{publish, remove_any, run, temp_sibling, try_run};

/// Which apt configuration to use.
struct Suite {
    name: &'static str,
    /// `-o` options selecting this suite's apt state (empty for the host's).
    options: Vec<String>,
}

impl Suite {
    fn apt(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        // Downloads land in our cache, which apt's unprivileged `_apt` user may not write.
        cmd.args(["-o", "APT::Sandbox::User=root"]);
        for option in &self.options {
            cmd.args(["-o", option]);
        }
        cmd
    }

    /// `apt-get update`, at most once per process and suite.
    fn update(&self) {
        static UPDATED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
        let mut updated = UPDATED.lock().unwrap_or_else(|e| e.into_inner());
        if updated.contains(&self.name) {
            return;
        }
        // A concurrent `apt-get update` in another test process holds the lists lock; retry.
        let mut last = String::new();
        for _ in 0..10 {
            let (ok, output) = try_run(self.apt("apt-get").args(["-q", "update"]));
            if ok {
                updated.push(self.name);
                return;
            }
            last = output;
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
        panic!("apt-get update for {} failed:\n{last}", self.name);
    }
}

fn bookworm() -> &'static Suite {
    static SUITE: OnceLock<Suite> = OnceLock::new();
    SUITE.get_or_init(|| Suite {
        name: "bookworm",
        options: Vec::new(),
    })
}

fn trixie() -> &'static Suite {
    static SUITE: OnceLock<Suite> = OnceLock::new();
    SUITE.get_or_init(|| {
        let state = cache_dir("apt-trixie");
        let sources = state.join("sources.list");
        let parts = state.join("sources.list.d");
        let lists = state.join("lists");
        let cache = state.join("cache");
        for dir in [
            &parts,
            &lists.join("partial"),
            &cache.join("archives/partial"),
        ] {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        std::fs::write(
            &sources,
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://deb.debian.org/debian trixie main\n",
        )
        .unwrap_or_else(|e| panic!("write {}: {e}", sources.display()));
        let suite = Suite {
            name: "trixie",
            options: vec![
                format!("Dir::Etc::sourcelist={}", sources.display()),
                format!("Dir::Etc::sourceparts={}", parts.display()),
                format!("Dir::State::Lists={}", lists.display()),
                format!("Dir::Cache={}", cache.display()),
            ],
        };
        let has_lists = std::fs::read_dir(&lists)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().contains("Packages"))
            })
            .unwrap_or(false);
        if !has_lists {
            suite.update();
        }
        suite
    })
}

/// Extracted root of a Debian 12 package (downloaded and extracted once, then cached).
/// Kernel metapackages such as `linux-image-amd64` resolve to the concrete
/// `linux-image-<abi>-amd64` package they depend on.
pub fn deb(package: &str) -> PathBuf {
    fetch(bookworm(), package)
}

/// Extracted root of a Debian 13 "trixie" package, through a private apt state.
pub fn deb_trixie(package: &str) -> PathBuf {
    fetch(trixie(), package)
}

fn fetch(suite: &Suite, package: &str) -> PathBuf {
    let package = resolve(suite, package);
    let debs = cache_dir(&format!("debs/{}", suite.name));
    let deb = match find_deb(&debs, &package) {
        Some(deb) => deb,
        None => download(suite, &debs, &package),
    };
    let stem = deb
        .file_stem()
        .expect("a .deb file has a name")
        .to_string_lossy()
        .into_owned();
    let root = debs.join("root").join(stem);
    if !root.is_dir() {
        std::fs::create_dir_all(debs.join("root"))
            .unwrap_or_else(|e| panic!("create {}: {e}", debs.display()));
        let temp = temp_sibling(&root);
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&temp));
        publish(&temp, &root);
    }
    root
}

/// Maps a kernel metapackage to the versioned package it pulls in; other names pass through.
fn resolve(suite: &Suite, package: &str) -> String {
    let is_kernel_metapackage = package
        .strip_prefix("linux-image-")
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()));
    if !is_kernel_metapackage {
        return package.to_string();
    }
    let mut output = try_run(suite.apt("apt-cache").args(["depends", package]));
    if !output.0 {
        suite.update();
        output = try_run(suite.apt("apt-cache").args(["depends", package]));
    }
    output
        .1
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends: "))
        .find(|dep| {
            dep.strip_prefix("linux-image-")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(str::to_string)
        .unwrap_or_else(|| panic!("cannot resolve {package}:\n{}", output.1))
}

/// The newest cached `<package>_<version>_<arch>.deb`, if any.
fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&prefix) && n.ends_with(".deb")
            })
        })
        .collect();
    found.sort();
    found.pop()
}

fn download(suite: &Suite, debs: &Path, package: &str) -> PathBuf {
    let temp = temp_sibling(&debs.join(package));
    std::fs::create_dir_all(&temp).unwrap_or_else(|e| panic!("create {}: {e}", temp.display()));
    let attempt = || {
        try_run(
            suite
                .apt("apt-get")
                .current_dir(&temp)
                .args(["-q", "download", package]),
        )
    };
    let (mut ok, mut output) = attempt();
    if !ok {
        // Usually stale or missing package lists ("Unable to locate package", 404).
        suite.update();
        (ok, output) = attempt();
    }
    if !ok {
        remove_any(&temp);
        panic!(
            "apt-get download {package} ({}) failed:\n{output}",
            suite.name
        );
    }
    let downloaded = find_deb(&temp, package)
        .unwrap_or_else(|| panic!("apt-get download left no {package} .deb"));
    let target = debs.join(downloaded.file_name().expect("has a name"));
    publish(&downloaded, &target);
    remove_any(&temp);
    target
}

/// A Debian kernel package's files.
#[derive(Clone, Debug)]
pub struct DebianKernel {
    /// Extracted package root.
    pub root: PathBuf,
    /// Kernel release, e.g. `6.1.0-57-amd64`.
    pub version: String,
    /// `<root>/boot/vmlinuz-<version>` (an EFI-stub bzImage).
    pub vmlinuz: PathBuf,
    /// `<root>/boot/config-<version>`.
    pub config: PathBuf,
    /// `<root>/lib/modules/<version>` (or `<root>/usr/lib/modules/<version>`).
    pub modules: PathBuf,
}

impl DebianKernel {
    /// Describes the kernel in an extracted `linux-image-*` package.
    pub fn from_root(root: PathBuf) -> DebianKernel {
        let boot = root.join("boot");
        let version = std::fs::read_dir(&boot)
            .unwrap_or_else(|e| panic!("read {}: {e}", boot.display()))
            .flatten()
            .find_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_prefix("vmlinuz-")
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no vmlinuz in {}", boot.display()));
        DebianKernel {
            vmlinuz: boot.join(format!("vmlinuz-{version}")),
            config: boot.join(format!("config-{version}")),
            // Merged-/usr packages (Debian 13) keep modules under /usr/lib.
            modules: ["lib/modules", "usr/lib/modules"]
                .iter()
                .map(|dir| root.join(dir).join(&version))
                .find(|dir| dir.is_dir())
                .unwrap_or_else(|| root.join("lib/modules").join(&version)),
            root,
            version,
        }
    }

    /// Whether the kernel config has `CONFIG_<option>=y` (built in, not a module).
    pub fn builtin(&self, option: &str) -> bool {
        let config = std::fs::read_to_string(&self.config)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.config.display()));
        let wanted = format!("CONFIG_{option}=y");
        config.lines().any(|l| l == wanted)
    }
}

/// Debian 12's current kernel (`linux-image-amd64`).
pub fn debian_kernel() -> DebianKernel {
    DebianKernel::from_root(deb("linux-image-amd64"))
}

/// Debian 13's current kernel (`linux-image-amd64` from trixie; its modules are `.ko.xz`).
pub fn debian13_kernel() -> DebianKernel {
    DebianKernel::from_root(deb_trixie("linux-image-amd64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_deb_matches_whole_package_names() {
        let dir = std::env::temp_dir().join(format!("vm-tests-find-deb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "busybox-static_1%3a1.35_amd64.deb",
            "busybox_1.35_amd64.deb",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let found = find_deb(&dir, "busybox").unwrap();
        assert_eq!(found.file_name().unwrap(), "busybox_1.35_amd64.deb");
        assert!(find_deb(&dir, "grub").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
