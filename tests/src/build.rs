//! Builds the firmware and the EFI test applications with nested cargo invocations.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::paths::workspace_root;
use crate::util::try_run;

/// A `cargo` command that does not inherit the outer cargo's build settings. `cargo test` exports
/// `CARGO_*` variables (manifest dir, package metadata, target dir, ...) and the user may have set
/// `RUSTFLAGS`; passed down they would redirect the nested build or apply host flags to the
/// firmware target.
fn clean_cargo(dir: &Path, target_dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let inherited_build_setting = (key.starts_with("CARGO") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || matches!(
                key,
                "RUSTFLAGS" | "RUSTDOCFLAGS" | "RUSTUP_TOOLCHAIN" | "__CARGO_FIX_PLZ"
            );
        if inherited_build_setting {
            cmd.env_remove(key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir);
    cmd
}

/// Path of the firmware ELF (`vmfw`), building it once per process with `cargo firmware`.
///
/// `VMFW_FIRMWARE` overrides the build (e.g. to test a prebuilt binary). The nested build uses
/// `<root>/target/fw` so it does not wait on the lock of the outer `cargo test`.
pub fn firmware() -> PathBuf {
    // A failed build is remembered too, so the other tests of the process fail fast with the
    // same message instead of rebuilding.
    static FIRMWARE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FIRMWARE
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("VMFW_FIRMWARE") {
                return Ok(PathBuf::from(path));
            }
            let root = workspace_root();
            let target_dir = root.join("target").join("fw");
            try_run_cargo(clean_cargo(&root, &target_dir).arg("firmware"))?;
            // The custom target spec is `target.json`, so cargo names its output dir `target`.
            let path = target_dir.join("target").join("release").join("vmfw");
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("firmware build produced no {}", path.display()))
            }
        })
        .clone()
        .unwrap_or_else(|message| panic!("{message}"))
}

/// Path of `<name>.efi` from the `tests/efi-apps` workspace, building the whole workspace once
/// per process for `x86_64-unknown-uefi`.
pub fn efi_app(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let out_dir = BUILT
        .get_or_init(|| {
            let apps = workspace_root().join("tests").join("efi-apps");
            if !apps.join("Cargo.toml").is_file() {
                return Err(format!("{} is not a cargo workspace", apps.display()));
            }
            let target_dir = apps.join("target");
            try_run_cargo(clean_cargo(&apps, &target_dir).args([
                "build",
                "--release",
                "--target",
                "x86_64-unknown-uefi",
            ]))?;
            Ok(target_dir.join("x86_64-unknown-uefi").join("release"))
        })
        .clone()
        .unwrap_or_else(|message| panic!("{message}"));
    let path = out_dir.join(format!("{name}.efi"));
    assert!(path.is_file(), "no EFI application {}", path.display());
    path
}

/// Runs a nested cargo build; on failure returns its output as the error.
fn try_run_cargo(cmd: &mut Command) -> Result<(), String> {
    match try_run(cmd) {
        (true, _) => Ok(()),
        (false, output) => Err(format!("{cmd:?} failed:\n{output}")),
    }
}
