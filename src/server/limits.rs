//! Start-up checks of the kernel resources the shards need, with messages that say what to raise.
//!
//! Each shard's io_uring rings and registered buffers are locked memory and count against
//! RLIMIT_MEMLOCK (on kernels before 5.12 the rings count too). We size the need per shard,
//! try to raise the soft limit to the hard one, and refuse to start when that is not enough,
//! rather than letting glommio fail later with an opaque error or silently degrade.

/// Registered I/O memory given to each shard's executor: the WAL's DMA chunks in flight, plus
/// a quarter for glommio's own reads.
pub const IO_MEMORY_PER_SHARD_BYTES: usize = shardline_shards::wal::DMA_MEMORY_BYTES + (256 << 10);
/// Locked memory one shard needs: its registered buffers plus its three rings
/// (main, latency, poll) at glommio's default depth, rounded up generously.
pub const MEMLOCK_PER_SHARD_BYTES: u64 = IO_MEMORY_PER_SHARD_BYTES as u64 + 3 * (64 << 10);

const _: () = assert!(
    IO_MEMORY_PER_SHARD_BYTES <= 1 << 20,
    "DESIGN: io_memory is at most 1 MiB per executor"
);

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error(
        "RLIMIT_MEMLOCK is {have_kib} KiB but {shards} shard(s) need at least {need_kib} KiB of locked memory for io_uring \
         ({per_shard_kib} KiB each); raise it (e.g. `ulimit -l {need_kib}`, or LimitMEMLOCK={need_bytes} in a systemd unit, \
         or memlock in /etc/security/limits.conf), or start fewer shards with --shards"
    )]
    Memlock {
        have_kib: u64,
        need_kib: u64,
        need_bytes: u64,
        per_shard_kib: u64,
        shards: usize,
    },
    #[error("io_uring is disabled on this system (sysctl kernel.io_uring_disabled = {0}); set it to 0 to run Shardline")]
    IoUringDisabled(String),
}

/// Checks RLIMIT_MEMLOCK and the io_uring sysctl for `shards` shards.
pub fn check(shards: usize) -> Result<(), LimitError> {
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        let v = v.trim();
        if v != "0" {
            return Err(LimitError::IoUringDisabled(v.to_string()));
        }
    }
    let need = MEMLOCK_PER_SHARD_BYTES * shards as u64;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Ok(()); // cannot tell; glommio will report if it fails
    }
    if lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur >= need {
        return Ok(());
    }
    if lim.rlim_max == libc::RLIM_INFINITY || lim.rlim_max >= need {
        let raised = libc::rlimit {
            rlim_cur: need.max(lim.rlim_cur),
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } == 0 {
            return Ok(());
        }
    }
    Err(LimitError::Memlock {
        have_kib: lim.rlim_cur / 1024,
        need_kib: need.div_ceil(1024),
        need_bytes: need,
        per_shard_kib: MEMLOCK_PER_SHARD_BYTES / 1024,
        shards,
    })
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: i is below CPU_SETSIZE, the size of the set.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Physical memory of the machine, in bytes (1 GiB if it cannot be read).
pub fn physical_memory() -> usize {
    // SAFETY: sysconf takes an integer name and returns a number; no memory is passed.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages > 0 && page > 0 {
        (pages as usize).saturating_mul(page as usize)
    } else {
        1 << 30
    }
}
