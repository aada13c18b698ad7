//! What the bench runs on: SQLite's own VFSes and this workspace's backends
//! and stacks, each registered once under a `bench-…` name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::Connection;

use crate::workloads::{self, Measure, Scale};

mod object;
mod object_sweep;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Which SQLite VFS a target is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// In-memory targets: compared with SQLite's `memdb`.
    Memory,
    /// On-disk targets: compared with SQLite's `unix`.
    Disk,
}

impl Family {
    /// The baseline target's name.
    pub fn baseline(self) -> &'static str {
        match self {
            Family::Memory => "sqlite-memdb",
            Family::Disk => "sqlite-unix",
        }
    }
}

type UriFn = Box<dyn Fn(&str) -> String>;
type DiscardFn = Box<dyn Fn(&str)>;
type ExtraFn = Box<dyn Fn(&Scale, usize) -> Res<Vec<(&'static str, Measure)>>>;
type PrefillFn = Box<dyn Fn(&Scale, usize) -> Res<Option<Connection>>>;

/// One thing to benchmark.
pub struct Target {
    /// Display name (`memdb`, `crypto(cksm(native))`, …).
    pub name: String,
    /// What it is compared with.
    pub family: Family,
    /// Whether several connections can share a database in WAL mode.
    pub wal: bool,
    /// Whether the concurrent-reader workloads run.
    pub concurrent: bool,
    /// Read-only target: only the read workloads run, on a prefilled image.
    pub read_only: bool,
    /// Also measure two readers with no writer (to show what a writer costs
    /// them).
    pub readers_without_writer: bool,
    /// Part of the memory-mapped reads comparison (SQLite's VFSes and the
    /// backends that lend pages).
    pub mmap: bool,
    /// Part of the size sweep (the curves).
    pub sweep: bool,
    /// A database's URI from its name.
    uri: UriFn,
    /// Frees a database (and its journal and WAL) whose connections are
    /// closed, given its name; stores that keep closed databases (memdb,
    /// mvcc, files) would otherwise hold every round's data.
    discard: DiscardFn,
    prefilled: Option<PrefillFn>,
    extras: Vec<ExtraFn>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Target {
    fn new(
        name: impl Into<String>,
        family: Family,
        wal: bool,
        uri: UriFn,
        discard: DiscardFn,
    ) -> Target {
        Target {
            name: name.into(),
            family,
            wal,
            concurrent: true,
            read_only: false,
            readers_without_writer: false,
            mmap: false,
            sweep: false,
            uri,
            discard,
            prefilled: None,
            extras: Vec::new(),
        }
    }

    /// A database name no run has used yet.
    pub fn fresh_db(&self, tag: &str) -> String {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        format!("b{n}-{tag}")
    }

    /// The URI of database `db`.
    pub fn uri(&self, db: &str) -> String {
        (self.uri)(db)
    }

    /// Frees database `db` once its connections are closed.
    pub fn discard(&self, db: &str) {
        (self.discard)(db)
    }

    /// Opens `uri` with the bench's connection settings.
    pub fn connect(&self, uri: &str) -> Res<Connection> {
        let conn = Connection::open(uri)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(conn)
    }

    /// For read-only targets: a connection to a prefilled database.
    pub fn open_prefilled(&self, scale: &Scale, rep: usize) -> Res<Option<Connection>> {
        match &self.prefilled {
            Some(f) => f(scale, rep),
            None => Ok(None),
        }
    }

    /// Target-specific measurements (sync modes on disk, snapshot cost …),
    /// repetition `rep`.
    pub fn extra_measures(&self, scale: &Scale, rep: usize) -> Res<Vec<(&'static str, Measure)>> {
        let mut out = Vec::new();
        for f in &self.extras {
            out.extend(f(scale, rep)?);
        }
        Ok(out)
    }
}

/// Many small transactions under `synchronous = NORMAL` and `FULL`.
fn sync_mode_extra(uri: Arc<dyn Fn(&str) -> String>) -> ExtraFn {
    Box::new(move |scale, rep| {
        let mut out = Vec::new();
        for (label, sync) in [
            ("small_txns_sync_normal", "NORMAL"),
            ("small_txns_sync_full", "FULL"),
        ] {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let conn = Connection::open(uri(&format!("b{n}-sync-{rep}")))?;
            conn.execute_batch(&format!("PRAGMA synchronous={sync}"))?;
            workloads::schema(&conn)?;
            out.push((
                label,
                workloads::small_transactions(&conn, &scale.for_disk())?,
            ));
        }
        Ok(out)
    })
}

fn disk_uri(dir: &Path, vfs: Option<&str>) -> Arc<dyn Fn(&str) -> String> {
    let dir: PathBuf = dir.to_owned();
    let vfs = vfs.map(str::to_owned);
    Arc::new(move |tag| match &vfs {
        Some(v) => format!("file:{}/{tag}.db?vfs={v}", dir.display()),
        None => format!("file:{}/{tag}.db", dir.display()),
    })
}

fn disk_target(name: &str, dir: &Path, vfs: Option<&str>) -> Target {
    let uri = disk_uri(dir, vfs);
    let u = uri.clone();
    let dir = dir.to_owned();
    let discard = Box::new(move |db: &str| {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{db}.db{suffix}")));
        }
    });
    let mut t = Target::new(name, Family::Disk, true, Box::new(move |db| u(db)), discard);
    t.extras.push(sync_mode_extra(uri));
    t
}

/// A target on an in-memory VFS: database `db` is the shared name
/// `/db.db`; `discard` frees it (SQLite's own memdb frees a shared
/// database with its last connection, so it needs none).
fn memory_target(name: &str, vfs: &str, wal: bool, discard: Option<DiscardFn>) -> Target {
    let vfs = vfs.to_owned();
    Target::new(
        name,
        Family::Memory,
        wal,
        Box::new(move |db| format!("file:/{db}.db?vfs={vfs}")),
        discard.unwrap_or_else(|| Box::new(|_| {})),
    )
}

/// Frees `/db.db` and its journal and WAL from a memdb instance.
fn memdb_discard(memdb: &vfs_memdb::MemDb) -> Option<DiscardFn> {
    let memdb = memdb.clone();
    Some(Box::new(move |db| {
        let _ = memdb.delete(format!("/{db}.db"));
    }))
}

/// Registers every backend and stack and returns the targets, baselines
/// first. To add a target: register its VFS under a `bench-…` name and
/// push a [`memory_target`] or [`disk_target`] (or build one with
/// [`Target::new`]); the rounds, tables, goals and charts pick it up.
pub fn all(tmp: &Path) -> Res<Vec<Target>> {
    // SQLite's own in-memory VFS: shared `/names`, real locks, no WAL.
    let mut sqlite_memdb = memory_target("sqlite-memdb", "memdb", false, None);
    sqlite_memdb.sweep = true;
    sqlite_memdb.mmap = true;
    let mut sqlite_unix = disk_target("sqlite-unix", tmp, None);
    sqlite_unix.sweep = true;
    sqlite_unix.mmap = true;
    let mut t = vec![sqlite_memdb, sqlite_unix];

    let memdb = vfs_memdb::MemDb::new();
    let _ = vfs_core::register("bench-memdb", memdb.clone(), false)?;
    let mut m = memory_target("memdb", "bench-memdb", true, memdb_discard(&memdb));
    m.sweep = true;
    m.mmap = true;
    t.push(m);
    // No recorder: register_observed registers the base itself.
    let _ = vfs_observe::register_observed("bench-wrap-memdb", memdb.clone(), None, false)?;
    t.push(memory_target(
        "wrap(memdb)",
        "bench-wrap-memdb",
        true,
        memdb_discard(&memdb),
    ));
    let stats = Arc::new(vfs_observe::StatsRecorder::new());
    let _ = vfs_observe::register_observed(
        "bench-wrap-memdb-stats",
        memdb.clone(),
        Some(stats as Arc<dyn vfs_observe::Recorder>),
        false,
    )?;
    t.push(memory_target(
        "wrap(memdb)+stats",
        "bench-wrap-memdb-stats",
        true,
        memdb_discard(&memdb),
    ));

    let _ = vfs_core::register(
        "bench-cksm-memdb",
        vfs_cksm::Cksm::new(memdb.clone()),
        false,
    )?;
    let mut c = memory_target(
        "cksm(memdb)",
        "bench-cksm-memdb",
        true,
        memdb_discard(&memdb),
    );
    c.sweep = true;
    t.push(c);
    let key = vfs_crypto::Key::from_bytes([42; 32]);
    let _ = vfs_core::register(
        "bench-crypto-memdb",
        vfs_crypto::Crypto::new(memdb.clone(), key.clone()),
        false,
    )?;
    let mut c = memory_target(
        "crypto(memdb)",
        "bench-crypto-memdb",
        true,
        memdb_discard(&memdb),
    );
    c.sweep = true;
    t.push(c);
    let _ = vfs_core::register(
        "bench-crypto-ring-memdb",
        vfs_crypto::Crypto::with_options(
            memdb.clone(),
            vfs_crypto::CryptoOptions {
                key: Some(key.clone()),
                cipher: vfs_crypto::PageCipher::Ring,
                ..vfs_crypto::CryptoOptions::default()
            },
        ),
        false,
    )?;
    t.push(memory_target(
        "crypto-ring(memdb)",
        "bench-crypto-ring-memdb",
        true,
        memdb_discard(&memdb),
    ));
    let _ = vfs_core::register(
        "bench-crypto-cksm-memdb",
        vfs_crypto::Crypto::new(vfs_cksm::Cksm::new(memdb.clone()), key.clone()),
        false,
    )?;
    t.push(memory_target(
        "crypto(cksm(memdb))",
        "bench-crypto-cksm-memdb",
        true,
        memdb_discard(&memdb),
    ));

    let _ = vfs_core::register("bench-native", vfs_core::Native::new()?, false)?;
    let mut n = disk_target("native", tmp, Some("bench-native"));
    n.sweep = true;
    n.mmap = true;
    t.push(n);
    let _ = vfs_core::register(
        "bench-cksm-native",
        vfs_cksm::Cksm::new(vfs_core::Native::new()?),
        false,
    )?;
    t.push(disk_target("cksm(native)", tmp, Some("bench-cksm-native")));
    let _ = vfs_core::register(
        "bench-crypto-cksm-native",
        vfs_crypto::Crypto::new(vfs_cksm::Cksm::new(vfs_core::Native::new()?), key),
        false,
    )?;
    t.push(disk_target(
        "crypto(cksm(native))",
        tmp,
        Some("bench-crypto-cksm-native"),
    ));

    let stats = Arc::new(vfs_observe::StatsRecorder::new());
    let _ = vfs_observe::register_observed(
        "bench-wrap-native-stats",
        vfs_core::Native::new()?,
        Some(stats as Arc<dyn vfs_observe::Recorder>),
        false,
    )?;
    t.push(disk_target(
        "wrap(native)+stats",
        tmp,
        Some("bench-wrap-native-stats"),
    ));
    t.push(embed_target(tmp));

    let mvcc = vfs_mvcc::Mvcc::new();
    let _ = vfs_core::register("bench-mvcc", mvcc.clone(), false)?;
    let discard = {
        let mvcc = mvcc.clone();
        Box::new(move |db: &str| {
            let _ = mvcc.delete(format!("/{db}.db"));
        })
    };
    let mut m = memory_target("mvcc", "bench-mvcc", false, Some(discard));
    m.readers_without_writer = true;
    m.sweep = true;
    m.extras.push(mvcc_snapshot_extra(mvcc));
    t.push(m);
    t.extend(object::targets()?);
    Ok(t)
}

/// The read-only workloads on an image served by vfs-embed (compared with
/// the same image in SQLite's memdb, which the read workloads of
/// `sqlite-memdb` also measure).
fn embed_target(tmp: &Path) -> Target {
    let dir = tmp.to_owned();
    let mut t = Target::new(
        "embed",
        Family::Memory,
        false,
        Box::new(|_| String::new()),
        Box::new(|_| {}),
    );
    t.read_only = true;
    t.concurrent = false;
    t.prefilled = Some(Box::new(move |scale, rep| {
        // Build the image once per repetition with plain SQLite, then serve
        // its bytes from memory.
        let path = dir.join(format!("embed-src-{rep}.db"));
        let _ = std::fs::remove_file(&path);
        let mut conn = Connection::open(&path)?;
        workloads::schema(&conn)?;
        workloads::bulk_insert(&mut conn, scale)?;
        drop(conn);
        let bytes = std::fs::read(&path)?;
        let _ = std::fs::remove_file(&path);
        let handle = vfs_embed::Embed::register(vfs_embed::Source::from_bytes(bytes))?;
        let uri = handle.uri(vfs_embed::DEFAULT_NAME);
        // The registration must outlive the connection: keep it for the run.
        std::mem::forget(handle);
        Ok(Some(Connection::open(uri)?))
    }));
    t
}

/// Cost of `Mvcc::snapshot` on a small and a large database: it should not
/// depend on the size.
fn mvcc_snapshot_extra(mvcc: vfs_mvcc::Mvcc) -> ExtraFn {
    Box::new(move |scale, rep| {
        let quick = scale.rows < Scale::FULL.rows;
        let sizes: [(&'static str, i64); 2] = if quick {
            [("mvcc_snapshot_1mb", 1), ("mvcc_snapshot_10mb", 10)]
        } else {
            [("mvcc_snapshot_1mb", 1), ("mvcc_snapshot_100mb", 100)]
        };
        let mut out = Vec::new();
        for (label, mb) in sizes {
            let name = format!("/snap-{mb}mb.db");
            if rep == 0 {
                // Filled once; later rounds snapshot the same database.
                let conn = Connection::open(format!("file:{name}?vfs=bench-mvcc"))?;
                conn.execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS big(b BLOB);
                     DELETE FROM big;
                     WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{})
                     INSERT INTO big SELECT randomblob(4000) FROM c;",
                    mb * 256
                ))?;
            }
            let n = 20_000u64;
            let start = std::time::Instant::now();
            for _ in 0..n {
                let snap = mvcc.snapshot(&name)?;
                std::hint::black_box(&snap);
            }
            out.push((label, Measure::wall(n, start.elapsed())));
        }
        Ok(out)
    })
}
