//! Small helpers shared by the builders: running commands, hashing inputs, atomic publication.

use std::hash::Hasher;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Runs `cmd`, panicking with its full output when it fails. Returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{cmd:?} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `cmd` and returns whether it succeeded plus its combined output, for commands whose
/// failure the caller handles (e.g. a download that needs `apt-get update` first).
pub fn try_run(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(output) => {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            (output.status.success(), text)
        }
        Err(e) => (false, format!("cannot start {cmd:?}: {e}")),
    }
}

/// A content hash for cache keys. Two independently keyed SipHash streams give 128 bits, plenty
/// to make accidental collisions between cache entries irrelevant. The std algorithm may change
/// between toolchains; that only costs a rebuild.
pub struct KeyHasher {
    a: std::hash::DefaultHasher,
    b: std::hash::DefaultHasher,
}

impl KeyHasher {
    pub fn new(domain: &str) -> Self {
        let mut hasher = KeyHasher {
            a: std::hash::DefaultHasher::new(),
            b: std::hash::DefaultHasher::new(),
        };
        hasher.b.write(b"second stream");
        hasher.bytes(domain.as_bytes());
        hasher
    }

    /// Adds a length-prefixed byte string, so concatenations cannot collide.
    pub fn bytes(&mut self, data: &[u8]) -> &mut Self {
        self.a.write_u64(data.len() as u64);
        self.a.write(data);
        self.b.write_u64(data.len() as u64);
        self.b.write(data);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Adds the contents of a host file.
    pub fn file(&mut self, path: &Path) -> &mut Self {
        let mut file =
            std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.a.write_u64(len);
        self.b.write_u64(len);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            if n == 0 {
                break;
            }
            self.a.write(&buf[..n]);
            self.b.write(&buf[..n]);
        }
        self
    }

    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.a.finish(), self.b.finish())
    }
}

/// A path next to `final_path` that no other process or thread uses, for building an artifact
/// before renaming it into place.
pub fn temp_sibling(final_path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".tmp-{}-{n}-{name}", std::process::id()))
}

/// Moves a finished `temp` into `final_path`. If another process published the same artifact
/// first (it is content-addressed, so equal), keeps theirs and discards ours.
pub fn publish(temp: &Path, final_path: &Path) {
    if let Err(e) = std::fs::rename(temp, final_path) {
        if final_path.exists() {
            remove_any(temp);
        } else {
            panic!("rename {} -> {}: {e}", temp.display(), final_path.display());
        }
    }
}

/// Removes a file or a directory tree, ignoring a missing one.
pub fn remove_any(path: &Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// CRC-32 (IEEE 802.3, reflected 0xEDB88320) as GPT (UEFI 2.10 §5.3.2),
/// `vars.bin` and zlib compute it, for tests that build or check such data.
pub fn crc32(data: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(data)
}

/// The `key=value` field `key` of a report line a guest or test app printed
/// (`BLKBENCH: bytes=4194304 sector_us=...`), parsed.
pub fn report_field<T: std::str::FromStr>(line: &str, key: &str) -> Option<T> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))?
        .parse()
        .ok()
}
