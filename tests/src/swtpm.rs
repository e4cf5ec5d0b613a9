//! A software TPM 2.0 for a VM: Debian's `swtpm socket --tpm2` with a fresh state directory
//! (a new, never-provisioned TPM every time), reached by QEMU through its control socket
//! (`-tpmdev emulator`). Killed, and its state removed, when dropped. Without `swtpm`
//! installed (`tests/scripts/setup.sh`), starting one panics: the test fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::paths::workspace_root;

/// How the TPM appears to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpmInterface {
    /// `tpm-crb`: the Command Response Buffer interface at 0xFED40000.
    Crb,
    /// `tpm-tis`: the FIFO (TIS) interface at 0xFED40000.
    Tis,
}

impl TpmInterface {
    /// The QEMU device model.
    pub fn device(self) -> &'static str {
        match self {
            TpmInterface::Crb => "tpm-crb",
            TpmInterface::Tis => "tpm-tis",
        }
    }
}

/// A running swtpm.
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
    dir: PathBuf,
    ctrl: PathBuf,
}

/// How long swtpm may take to create its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

impl Swtpm {
    /// Starts a new TPM. The state lives in `target/swtpm/<pid>-<n>/` (short, because a unix
    /// socket path is limited to 107 bytes).
    pub fn start() -> Swtpm {
        Swtpm::start_with_banks(None)
    }

    /// [`start`](Self::start), the state first made by `swtpm_setup --pcr-banks banks`
    /// when `banks` is given.
    pub fn start_with_banks(banks: Option<&str>) -> Swtpm {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = workspace_root()
            .join("target")
            .join("swtpm")
            .join(format!("{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        if let Some(banks) = banks {
            let status = Command::new("swtpm_setup")
                .args(["--tpm2", "--pcr-banks", banks, "--tpmstate"])
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap_or_else(|e| {
                    panic!("cannot run swtpm_setup ({e}); run tests/scripts/setup.sh (swtpm-tools)")
                });
            assert!(status.success(), "swtpm_setup --pcr-banks {banks} failed");
        }
        let ctrl = dir.join("ctrl.sock");
        let mut cmd = Command::new("swtpm");
        cmd.args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", dir.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", ctrl.display()))
            .arg("--log")
            .arg(format!("file={},level=1", dir.join("swtpm.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start swtpm ({e}); run tests/scripts/setup.sh to install it")
        });
        let mut swtpm = Swtpm { child, dir, ctrl };
        let started = Instant::now();
        while !swtpm.ctrl.exists() {
            if let Ok(Some(status)) = swtpm.child.try_wait() {
                panic!("swtpm exited with {status}: {}", swtpm.log());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "swtpm made no control socket within {START_TIMEOUT:?}: {}",
                swtpm.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        swtpm
    }

    /// QEMU arguments attaching this TPM as `interface`.
    pub fn qemu_args(&self, interface: TpmInterface) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("socket,id=chrtpm,path={}", self.ctrl.display()),
            "-tpmdev".into(),
            "emulator,id=tpm0,chardev=chrtpm".into(),
            "-device".into(),
            format!("{},tpmdev=tpm0", interface.device()),
        ]
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("swtpm.log")).unwrap_or_default()
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
