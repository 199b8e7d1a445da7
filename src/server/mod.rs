//! Start-up and shutdown of the whole server: checks, catalog, one pinned glommio executor
//! per shard, the channel mesh between them, and signal handling.
//!
//! Start-up order matters: every shard replays the WAL before joining the mesh, and joining
//! the mesh waits for all shards, so no shard accepts a write (or forwards one) before every
//! shard holds its replayed data. Shutdown reverses it: stop accepting, drain connections,
//! close this shard's mesh senders, wait until every peer has closed theirs (so no forwarded
//! write is still in flight), then write and sync what the WAL holds.

pub mod cache_backfill;
mod fault;
pub mod layout;
pub mod limits;
pub mod mesh;
pub mod persist;
pub mod shard;
pub mod turns;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};
use shardline_shards::wal::{DmaStore, Wal, WalConfig};

use std::collections::BTreeMap;

use shardline_shards::persist::{Manifest, PersistError, Storage};

use crate::catalog::Catalog;
use crate::cli::ServeArgs;
use persist::{PersistConfig, PersistState};
use shard::{ShardCtx, ShardMsg, SharedConfig};

/// How long shutdown waits for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a shard drops aged-out cache values (queries skip them in between).
const CACHE_EVICT_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Limits(#[from] limits::LimitError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    #[error("persistence: {0}")]
    Persist(#[from] PersistError),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--shards must be at least 1")]
    NoShards,
    #[error("--max-http-request-size is {got} bytes; at most {max} bytes (1 GiB) are supported, the largest write one WAL record holds")]
    RequestTooLarge { got: usize, max: usize },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting shard {shard} failed: {reason}")]
    Shard { shard: usize, reason: String },
    #[error("--admin-token-file {path}: {reason}")]
    AdminTokenFile { path: PathBuf, reason: String },
    #[error("{0}")]
    Auth(String),
    #[error("cannot write the port file {path}: {source}")]
    PortFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    disable_transparent_huge_pages();
    if std::env::var_os("SHARDLINE_TEST_CLOCK").is_some_and(|v| v == "1") {
        tracing::warn!("SHARDLINE_TEST_CLOCK=1: POST /api/v3/debug/clock can move the clock");
        crate::enable_test_clock();
    }
    let cpus = limits::allowed_cpus();
    let shards = args.shards.unwrap_or(cpus.len().max(1));
    if shards == 0 {
        return Err(ServeError::NoShards);
    }
    // A request's lines become one WAL record (minus the header); replay rejects larger ones.
    let max = shardline_shards::wal::MAX_FRAME_PAYLOAD_BYTES - 64;
    if args.max_http_request_size > max {
        return Err(ServeError::RequestTooLarge {
            got: args.max_http_request_size,
            max,
        });
    }
    limits::check(shards)?;
    let data_dir = args.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| ServeError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let auth = crate::auth::AuthPolicy {
        disabled: args.without_auth,
        ..Default::default()
    }
    .with_open_endpoints(&args.disable_authz)
    .map_err(ServeError::Auth)?;
    let catalog = Catalog::open_with_options(
        &data_dir,
        crate::catalog::CatalogOptions {
            limits: crate::catalog::CatalogLimits {
                databases: args.max_databases,
                tables: args.max_tables,
                columns_per_table: args.max_columns_per_table,
            },
            checkpoint_records: args.catalog_checkpoint_records,
            ..crate::catalog::CatalogOptions::default()
        },
    )?;
    if let Some(path) = &args.admin_token_file {
        install_admin_token(&catalog, path)?;
    }
    if auth.disabled {
        tracing::warn!("--without-auth: every endpoint is open to anyone who can reach the server");
    } else if !catalog.tokens().has_admin {
        tracing::info!("authentication is on and there is no admin token yet: create one with POST /api/v3/configure/token/admin (or `shardline create token --admin`)");
    }
    let storage = match args.object_store {
        crate::cli::ObjectStoreKind::File => Storage::local(data_dir.join("store"))?,
        crate::cli::ObjectStoreKind::Memory => {
            tracing::warn!("--object-store memory: Parquet files and manifests live in memory and are lost at exit; the WAL they cover is deleted once they are written");
            Storage::memory()
        }
    };
    let layout = layout::open(&data_dir, shards, |j| {
        Manifest::load(&storage, j).map(|m| m.wal_covered)
    })?;
    // Every shard directory's manifest: this layout's own, and those of a larger count.
    let mut manifests: BTreeMap<usize, Manifest> = BTreeMap::new();
    let dirs: Vec<usize> = layout::shard_dirs(&data_dir)?
        .into_iter()
        .map(|d| d.0)
        .collect();
    for j in (0..shards).chain(dirs) {
        if let std::collections::btree_map::Entry::Vacant(e) = manifests.entry(j) {
            e.insert(Manifest::load(&storage, j)?);
        }
    }
    if args.object_store == crate::cli::ObjectStoreKind::File {
        sweep_orphans(storage.clone(), manifests.clone());
    }
    let absorption = layout::Absorption::new(shards, layout::old_wal_dirs(&data_dir)?, |s, e| {
        manifests
            .get(&s)
            .is_some_and(|m| m.absorbed_epochs.contains(&e))
    });
    let old_wal = layout::old_wal_dirs(&data_dir)?;
    let buffer_limit = args
        .buffer_mem_limit
        .unwrap_or_else(|| limits::physical_memory() / 2 / shards);
    let persist_config = PersistConfig {
        storage: storage.clone(),
        buffer_limit,
        snapshot_interval: args.snapshot_interval,
        gen1_ns: args.gen1_duration.as_nanos() as i64,
        shard_count: shards,
        epoch: layout.epoch,
        compaction: !args.no_compaction,
        retention_check_interval: args.retention_check_interval,
        delete_grace: args.delete_grace_period,
        file_delete_delay: args.file_delete_delay,
    };

    // With port 0, reserve one port for all shards: a bound, never-listening SO_REUSEPORT
    // socket holds it until every shard's listener is bound to the same port.
    let (bind, placeholder) = reserve_port(args.http_bind).map_err(|source| ServeError::Bind {
        addr: args.http_bind,
        source,
    })?;

    let config = SharedConfig {
        shards,
        max_request_bytes: args.max_http_request_size,
        cache_limit: args
            .cache_mem_limit
            .unwrap_or_else(|| limits::physical_memory() / 8 / shards),
        auth,
    };
    let wal_config = WalConfig {
        flush_interval: args.wal_flush_interval,
        ..WalConfig::default()
    };
    let (shard_handles, mut snapshot_jobs) = crate::query::ShardHandles::new(shards);
    let coordinator = crate::query::Coordinator::start(
        &crate::query::CoordinatorConfig {
            threads: args.query_threads.unwrap_or(shards),
            memory_limit: args.query_memory_limit,
            store: storage.store(),
        },
        catalog.clone(),
        shard_handles,
    )
    .map_err(|e| ServeError::Shard {
        shard: usize::MAX,
        reason: format!("starting the query coordinator failed: {e}"),
    })?;
    let mesh: MeshBuilder<ShardMsg, _> = MeshBuilder::full(shards, mesh::MESH_CHANNEL_CAPACITY);
    let mesh_depths = mesh::MeshDepths::new(shards);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<(usize, Result<(), String>)>();
    let mut stops = Vec::with_capacity(shards);
    let mut handles = Vec::with_capacity(shards);
    let task_slice = args.task_slice;
    for id in 0..shards {
        let (stop_tx, stop_rx) = flume::bounded::<()>(1);
        stops.push(stop_tx);
        let cpu = cpus[id % cpus.len()];
        let pending = absorption.pending_for(id);
        let args = ShardArgs {
            id,
            config: config.clone(),
            catalog: catalog.clone(),
            persist: persist_config.clone(),
            manifest: manifests.get(&id).cloned().unwrap_or_default(),
            adopted: manifests
                .iter()
                .filter(|(j, _)| **j >= shards && **j % shards == id)
                .map(|(j, m)| (*j, Arc::new(m.clone())))
                .collect(),
            old_dirs: old_wal
                .iter()
                .filter(|(e, _)| pending.contains(e))
                .flat_map(|(_, dirs)| dirs.iter().cloned())
                .collect(),
            absorbing: pending,
            absorption: absorption.clone(),
            wal_dir: data_dir.join(format!("shard-{id}")).join("wal"),
            wal_config: wal_config.clone(),
            mesh: mesh.clone(),
            mesh_depths: mesh_depths.clone(),
            bind,
            queries: coordinator.port(),
            snapshot_jobs: snapshot_jobs.remove(0),
            ready: ready_tx.clone(),
            stop: stop_rx,
        };
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("shard-{id}"))
            .io_memory(limits::IO_MEMORY_PER_SHARD_BYTES)
            .preempt_timer(task_slice)
            .spawn(move || shard_main(args))
            .map_err(|e| ServeError::Shard {
                shard: id,
                reason: format!("{e} (is io_uring available, and RLIMIT_MEMLOCK high enough?)"),
            })?;
        handles.push(handle);
    }
    drop(ready_tx);

    let mut failure = None;
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok((_, Ok(()))) => {}
            Ok((shard, Err(reason))) => {
                failure = Some(ServeError::Shard { shard, reason });
                break;
            }
            Err(_) => {
                failure = Some(ServeError::Shard {
                    shard: usize::MAX,
                    reason: "a shard exited during start-up".into(),
                });
                break;
            }
        }
    }
    drop(placeholder);
    if let Some(e) = failure {
        for s in &stops {
            let _ = s.try_send(());
        }
        return Err(e);
    }
    if let Some(path) = &args.port_file {
        write_port_file(path, bind).map_err(|source| ServeError::PortFile {
            path: path.clone(),
            source,
        })?;
    }
    tracing::info!(%bind, shards, data_dir = %data_dir.display(), "Shardline is listening");

    spawn_signal_thread(stops);
    let mut result = Ok(());
    for (id, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => result = Err(ServeError::Shard { shard: id, reason }),
            Err(e) => {
                result = Err(ServeError::Shard {
                    shard: id,
                    reason: e.to_string(),
                })
            }
        }
    }
    drop(coordinator);
    tracing::info!("Shardline stopped");
    result
}

/// The write buffer grows into fresh memory; with transparent huge pages every 2 MiB of
/// growth is one fault that clears the whole page at once, a multi-millisecond stall of the
/// shard. With 4 KiB pages the same work is spread thin: durable-write p99 went from 7.4 ms
/// to 0.9 ms, throughput unchanged (bench/RESULTS.md).
/// `--admin-token-file`: the file holds the admin token's text (or a JSON object with a
/// `token` field, as `influxdb3 create token --admin --offline` writes); `_admin` gets its
/// hash, replacing any other. The text itself is never stored or logged.
fn install_admin_token(catalog: &Catalog, path: &std::path::Path) -> Result<(), ServeError> {
    let bad = |reason: String| ServeError::AdminTokenFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let text = text.trim();
    let token = if text.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        v.get("token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| bad("the JSON object has no string field 'token'".into()))?
            .to_string()
    } else {
        text.to_string()
    };
    if !token.starts_with(crate::auth::TOKEN_PREFIX)
        || token.len() < crate::auth::TOKEN_PREFIX.len() + 64
        || token.contains(char::is_whitespace)
    {
        return Err(bad(format!(
            "the token must be '{}' followed by at least 64 base64url characters (48 random bytes); make one with `shardline create token --admin --offline`",
            crate::auth::TOKEN_PREFIX
        )));
    }
    let hash = crate::auth::to_hex(&crate::auth::hash_token(&token));
    let change =
        crate::catalog::Change::Token(crate::catalog::tokens::TokenChange::InstallAdmin { hash });
    futures_lite::future::block_on(catalog.change(change))?;
    Ok(())
}

fn disable_transparent_huge_pages() {
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes plain integers and affects only this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not disable transparent huge pages; write latency may have multi-millisecond tails");
    }
}

struct ShardArgs {
    id: usize,
    config: SharedConfig,
    catalog: Arc<Catalog>,
    persist: PersistConfig,
    manifest: Manifest,
    adopted: Vec<(usize, Arc<Manifest>)>,
    old_dirs: Vec<(usize, PathBuf)>,
    absorbing: Vec<u64>,
    absorption: Arc<layout::Absorption>,
    wal_dir: PathBuf,
    wal_config: WalConfig,
    mesh: MeshBuilder<ShardMsg, glommio::channels::channel_mesh::Full>,
    mesh_depths: Arc<mesh::MeshDepths>,
    bind: SocketAddr,
    queries: crate::query::QueryPort,
    snapshot_jobs: flume::Receiver<crate::query::ShardJob>,
    ready: std::sync::mpsc::Sender<(usize, Result<(), String>)>,
    stop: flume::Receiver<()>,
}

async fn shard_main(a: ShardArgs) -> Result<(), String> {
    let id = a.id;
    let ready = a.ready.clone();
    match shard_start(a).await {
        Ok(run) => run.await,
        Err(e) => {
            let _ = ready.send((id, Err(e.clone())));
            Err(e)
        }
    }
}

/// Replays, joins the mesh and binds; returns the future that serves until shutdown.
async fn shard_start(
    a: ShardArgs,
) -> Result<impl std::future::Future<Output = Result<(), String>>, String> {
    let id = a.id;
    let plan = shard::ReplayPlan {
        id,
        shards: a.config.shards,
        own_dir: &a.wal_dir,
        covered: a.manifest.wal_covered,
        old_dirs: &a.old_dirs,
    };
    let (buffer, next_segment) = shard::replay(&plan, &a.catalog).map_err(|e| e.to_string())?;
    let persist = PersistState::new(
        a.persist,
        a.wal_dir.clone(),
        a.manifest,
        a.adopted,
        a.absorbing,
        a.absorption,
        !buffer.is_empty(),
    );
    let (senders, mut receivers) = a
        .mesh
        .join()
        .await
        .map_err(|_| "joining the shard mesh failed".to_string())?;
    let store = DmaStore::new(a.wal_dir.clone())
        .map_err(|e| format!("creating {}: {e}", a.wal_dir.display()))?;
    let wal = Wal::new(store, a.wal_config, next_segment);
    let committer = glommio::spawn_local(wal.clone().run_committer());
    let ctx = Rc::new(ShardCtx::new(shard::ShardParts {
        id,
        config: a.config,
        catalog: a.catalog,
        wal: wal.clone(),
        buffer,
        persist,
        senders,
        mesh_depths: a.mesh_depths.clone(),
        queries: a.queries,
        jobs: a.snapshot_jobs,
    }));
    {
        let ctx = ctx.clone();
        glommio::spawn_local(async move { persist::snapshot_loop(ctx.persist_host()).await })
            .detach();
    }
    glommio::spawn_local(cache_backfill::run(ctx.clone())).detach();
    {
        let ctx = ctx.clone();
        glommio::spawn_local(async move { ctx.evict_caches(CACHE_EVICT_INTERVAL).await }).detach();
    }
    {
        let ctx = ctx.clone();
        glommio::spawn_local(async move { ctx.serve_snapshots().await }).detach();
    }

    // Each peer's messages with bounded concurrency, so that a full channel holds the peer
    // back (see `mesh` for the bound and why it cannot deadlock).
    let mut mesh_tasks = Vec::new();
    for (_peer, rx) in receivers.streams() {
        let ctx = ctx.clone();
        let depths = a.mesh_depths.clone();
        mesh_tasks.push(glommio::spawn_local(async move {
            mesh::serve_peer(rx, depths, id, |msg| {
                let ctx = ctx.clone();
                async move { ctx.handle(msg).await }
            })
            .await
        }));
    }

    let listener = listen(a.bind).map_err(|e| format!("cannot listen on {}: {e}", a.bind))?;
    let stop = a.stop;
    {
        let ctx = ctx.clone();
        glommio::spawn_local(async move {
            let _ = stop.recv_async().await;
            ctx.stopping.set(true);
            ctx.stop_event.notify(usize::MAX);
        })
        .detach();
    }
    let _ = a.ready.send((id, Ok(())));

    Ok(async move {
        crate::http::accept_loop(ctx.clone(), listener).await;
        // Drain: let open connections finish their requests.
        let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
        while ctx.connections.get() > 0 && std::time::Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        if ctx.connections.get() > 0 {
            tracing::warn!(
                shard = id,
                open = ctx.connections.get(),
                "connections still open after the drain timeout; closing"
            );
        }
        ctx.senders.close();
        for t in mesh_tasks {
            t.await;
        }
        wal.close();
        committer.await;
        tracing::info!(shard = id, "shard stopped; WAL synced");
        Ok(())
    })
}

/// A shard's listening socket: SO_REUSEPORT so every shard listens on the one port, and
/// SO_REUSEADDR so a restart binds at once even while the previous process's connections sit in
/// TIME_WAIT (glommio's own `bind` sets only the first, and a server restarted after `kill -9`
/// under load could not listen for a minute).
fn listen(addr: SocketAddr) -> std::io::Result<glommio::net::TcpListener> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    sock.set_reuse_port(true)?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    // SAFETY: the descriptor is a bound, listening TCP socket whose ownership moves to the
    // listener here (into_raw_fd gives it up), as glommio's from_raw_fd requires; this runs on
    // the shard's executor thread, which from_raw_fd needs for its reactor.
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(sock.into_raw_fd()) })
}

fn reserve_port(addr: SocketAddr) -> std::io::Result<(SocketAddr, Option<socket2::Socket>)> {
    if addr.port() != 0 {
        return Ok((addr, None));
    }
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_port(true)?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    let bound = sock
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("bound socket has no IP address"))?;
    Ok((bound, Some(sock)))
}

fn write_port_file(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, addr.to_string())?;
    std::fs::rename(&tmp, path)
}

fn spawn_signal_thread(stops: Vec<flume::Sender<()>>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot install signal handlers; stop the server with SIGKILL");
            return;
        }
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen == 1 {
                    tracing::info!(
                        signal = sig,
                        "shutting down: no new connections, finishing requests, syncing WALs"
                    );
                    for s in &stops {
                        let _ = s.try_send(());
                    }
                } else {
                    tracing::warn!("second signal: exiting at once");
                    std::process::exit(130);
                }
            }
        })
        .ok();
}

/// Deletes, in the background, the Parquet files a crash left unlisted (see
/// `persist::sweep`). Files written from now on are newer than the cut-off, so shards may
/// start at once.
fn sweep_orphans(storage: Storage, manifests: BTreeMap<usize, Manifest>) {
    let started = std::time::SystemTime::now();
    let spawned = std::thread::Builder::new()
        .name("orphan-sweep".into())
        .spawn(move || {
            match shardline_shards::persist::sweep::sweep(&storage, &manifests, started) {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "deleted Parquet files a crash left unlisted"),
                Err(e) => tracing::warn!(error = %e, "looking for Parquet files a crash left unlisted failed; they only take space"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the orphan-file sweep");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    /// The modules of `src/server` that each one refers to (`super::m`, `crate::server::m`)
    /// outside comments.
    fn references() -> BTreeMap<String, BTreeSet<String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server");
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).expect("src/server") {
            let path = entry.expect("entry").path();
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string);
            if let Some(name) = name.filter(|n| n != "mod") {
                files.insert(name, std::fs::read_to_string(&path).expect("readable"));
            }
        }
        let is_ident = |c: char| c.is_alphanumeric() || c == '_';
        let mut refs = BTreeMap::new();
        for (name, text) in &files {
            let mut to = BTreeSet::new();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for prefix in ["super::", "crate::server::"] {
                    for (at, _) in line.match_indices(prefix) {
                        let rest = &line[at + prefix.len()..];
                        // `super::m`, or each name of `super::{a, b::c}`.
                        let names: Vec<&str> = match rest.strip_prefix('{') {
                            Some(list) => list
                                .split('}')
                                .next()
                                .unwrap_or("")
                                .split(',')
                                .map(|n| n.trim())
                                .collect(),
                            None => vec![rest],
                        };
                        for n in names {
                            let end = n.find(|c: char| !is_ident(c)).unwrap_or(n.len());
                            let m = &n[..end];
                            if m != name && files.contains_key(m) {
                                to.insert(m.to_string());
                            }
                        }
                    }
                }
            }
            refs.insert(name.clone(), to);
        }
        refs
    }

    #[test]
    fn the_server_modules_refer_to_one_another_without_a_cycle() {
        let refs = references();
        assert!(
            refs.get("shard").is_some_and(|r| r.contains("persist")),
            "the scan finds references: {refs:?}"
        );
        // Depth-first search; a module met again while still on the path closes a cycle.
        fn visit<'a>(
            m: &'a str,
            refs: &'a BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) {
            if done.contains(m) {
                return;
            }
            if let Some(i) = path.iter().position(|p| *p == m) {
                panic!("import cycle: {} -> {m}", path[i..].join(" -> "));
            }
            path.push(m);
            for next in refs.get(m).into_iter().flatten() {
                visit(next, refs, path, done);
            }
            path.pop();
            done.insert(m);
        }
        let mut done = BTreeSet::new();
        for m in refs.keys() {
            visit(m, &refs, &mut Vec::new(), &mut done);
        }
    }
}
