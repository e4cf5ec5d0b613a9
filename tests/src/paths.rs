//! Well-known locations inside the workspace.

use std::path::{Path, PathBuf};

/// The cargo workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // This crate lives in `<root>/tests`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate has a parent directory")
        .to_path_buf()
}

/// `<root>/.cache/<sub>`, created on demand. Never committed (see `.gitignore`).
pub fn cache_dir(sub: &str) -> PathBuf {
    let dir = workspace_root().join(".cache").join(sub);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// `<root>/target/vm-logs`, where every VM's serial transcript is saved.
pub fn log_dir() -> PathBuf {
    let dir = workspace_root().join("target").join("vm-logs");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}
