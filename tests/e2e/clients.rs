//! The real client programs the compatibility tests drive, installed on first use under
//! `~/.cache/shardline-test-clients/`: a Python virtual environment per pinned requirements
//! file in `tests/clients/` (keyed by the file's contents, so a changed pin makes a new one),
//! and the InfluxDB 1.6 `influx` shell from Debian's pinned `influxdb-client` package,
//! unpacked rather than installed (no root needed, nothing else on the machine changes). A
//! client that cannot be installed fails the test that needs it; none skips.
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
    let root = cache_root();
    let stem = requirements.trim_end_matches(".txt");
    let env = root.join(format!("{stem}-{key}"));
    let python = env.join("bin/python");
    // One installer at a time, across test threads and test processes.
    let lock = install_lock(stem);
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

/// The Debian package of the 1.x shell, pinned: the version the golden files were made with.
const INFLUX_SHELL_PACKAGE: &str = "influxdb-client=1.6.7~rc0-1+b13";

fn cache_root() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/shardline-test-clients")
}

/// Holds an exclusive lock on `name` under the cache root until dropped (the lock goes with
/// the process that holds it, so a killed run leaves none behind).
fn install_lock(name: &str) -> std::fs::File {
    let root = cache_root();
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::File::create(root.join(format!("{name}.lock"))).unwrap();
    // SAFETY: flock(2) on a descriptor this function owns and returns.
    let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "flock: {}", std::io::Error::last_os_error());
    lock
}

/// The `influx` shell of InfluxDB 1.6, fetched with `apt-get download` (after `apt-get update`
/// if the package lists lack it) and unpacked with `dpkg-deb -x` on first use.
pub fn influx_shell() -> PathBuf {
    let (name, version) = INFLUX_SHELL_PACKAGE.split_once('=').unwrap();
    let dir = cache_root().join(format!("{name}-{}", version.replace(['~', '+'], "_")));
    let binary = dir.join("usr/bin/influx");
    let lock = install_lock(name);
    if !binary.exists() {
        let building = dir.with_extension("building");
        let _ = std::fs::remove_dir_all(&building);
        std::fs::create_dir_all(&building).unwrap();
        let download = || {
            run(
                Command::new("apt-get")
                    .args(["download", "-q", INFLUX_SHELL_PACKAGE])
                    .current_dir(&building),
                INSTALL_PATIENCE,
            )
        };
        let mut got = download();
        if !got.status.success() {
            let update = run(
                Command::new("apt-get").args(["update", "-q"]),
                INSTALL_PATIENCE,
            );
            assert!(
                update.status.success(),
                "apt-get update (to find {INFLUX_SHELL_PACKAGE}): {}",
                String::from_utf8_lossy(&update.stderr)
            );
            got = download();
        }
        assert!(
            got.status.success(),
            "apt-get download {INFLUX_SHELL_PACKAGE}: {}",
            String::from_utf8_lossy(&got.stderr)
        );
        let deb = std::fs::read_dir(&building)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .expect("apt-get download wrote a .deb");
        let unpacked = run(
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&building),
            INSTALL_PATIENCE,
        );
        assert!(
            unpacked.status.success(),
            "dpkg-deb -x: {}",
            String::from_utf8_lossy(&unpacked.stderr)
        );
        std::fs::remove_file(&deb).unwrap();
        // Renamed when complete, so a half-unpacked shell is never taken for a ready one.
        std::fs::rename(&building, &dir).unwrap();
    }
    drop(lock);
    binary
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}
