//! The real client programs the compatibility tests drive, installed on first use: a Python
//! virtual environment per pinned requirements file in `tests/clients/`, kept under
//! `~/.cache/shardline-test-clients/` (keyed by the file's contents, so a changed pin makes
//! a new one). A client that cannot be installed fails the test that needs it; none skips.
#![allow(unreachable_pub)]

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::run;

/// How long installing one environment may take (downloads from PyPI included).
const INSTALL_PATIENCE: Duration = Duration::from_secs(900);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The path of a script in `tests/clients/`.
pub fn script(name: &str) -> PathBuf {
    clients_dir().join(name)
}

/// The Python interpreter of the environment `requirements` (a file in `tests/clients/`)
/// pins, installing it first if no test has yet.
pub fn python(requirements: &str) -> PathBuf {
    let file = clients_dir().join(requirements);
    let pins = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let key = format!("{:016x}", fnv1a(&pins));
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let root = home.join(".cache/shardline-test-clients");
    std::fs::create_dir_all(&root).unwrap();
    let stem = requirements.trim_end_matches(".txt");
    let env = root.join(format!("{stem}-{key}"));
    let python = env.join("bin/python");
    // One installer at a time, across test threads and test processes; the lock goes with
    // the process that holds it, so a killed run leaves none behind.
    let lock = std::fs::File::create(root.join(format!("{stem}.lock"))).unwrap();
    // SAFETY: flock(2) on a descriptor this function owns for the duration of the call.
    let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "flock: {}", std::io::Error::last_os_error());
    if !python.exists() {
        let building = root.join(format!("{stem}-{key}.building"));
        let _ = std::fs::remove_dir_all(&building);
        let made = run(
            Command::new("python3").args(["-m", "venv"]).arg(&building),
            INSTALL_PATIENCE,
        );
        assert!(
            made.status.success(),
            "python3 -m venv: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let pip = run(
            Command::new(building.join("bin/pip"))
                .args([
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-q",
                    "-r",
                ])
                .arg(&file),
            INSTALL_PATIENCE,
        );
        assert!(
            pip.status.success(),
            "installing {}: {}{}",
            file.display(),
            String::from_utf8_lossy(&pip.stdout),
            String::from_utf8_lossy(&pip.stderr)
        );
        // Built aside and renamed when complete, so a half-installed environment is never
        // taken for a ready one; its `bin/python` finds the environment by its own path.
        std::fs::rename(&building, &env).unwrap();
    }
    drop(lock);
    python
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}
