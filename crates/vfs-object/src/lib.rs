//! # vfs-object
//!
//! SQLite on object storage: AWS S3 and any S3-compatible store (R2, MinIO,
//! …) through [`object_store`], or its in-memory and local-file stores.
//! Many processes on many machines may read and write one database at once;
//! a conditional create (`If-None-Match: *`) is all that stands between
//! them, and all correctness needs.
//!
//! * **Format.** Only immutable objects: each committed transaction is one
//!   object at `<prefix>/<database>/log/<LSN>` holding the pages it
//!   changed (sorted, indexed, CRC-checked), the database size and its
//!   parent LSN. Byte layout: `docs/formats.md`.
//! * **Commit.** The pages of a write transaction are gathered in memory;
//!   at SQLite's commit point (`SQLITE_FCNTL_SYNC`, sent at the end of
//!   commit phase one whatever `synchronous` says) one conditional PUT
//!   publishes them. If another writer took that LSN first, the statement
//!   that committed fails with `SQLITE_BUSY_SNAPSHOT`, SQLite rolls the
//!   transaction back, nothing of it is stored, and the retry sees the
//!   winner. A PUT whose answer is lost is resolved by reading the object
//!   back (it carries a transaction id), never guessed.
//! * **Reads.** A read transaction sees one LSN. At its start the
//!   connection looks for newer commits at most every `poll` interval
//!   (URI parameter `poll=<ms>`, 0 = every transaction). Pages come from a
//!   local cache keyed by immutable (page, LSN), misses are range GETs.
//!   With `prefetch` (default on; URI `prefetch=0|1`) a cold open reads
//!   the b-trees' upper levels ahead in batched range GETs, and a scan
//!   reads ahead in growing windows.
//! * **Compaction and GC.** [`ObjectVfs::compact`] (or `PRAGMA
//!   object_compact`, or the [`ObjectOptions::compact_every`] policy)
//!   writes the whole database at its head as a snapshot, `snap/<LSN>`,
//!   where cold opens start (one object, or for a database of more than
//!   [`ObjectOptions::snapshot_group_pages`] pages, page-group objects
//!   and a manifest, unchanged groups shared with the previous snapshot); [`ObjectVfs::gc`] (`PRAGMA
//!   object_gc`) deletes the log and snapshots no state inside
//!   [`ObjectOptions::retention`] needs. Writers and readers check that the
//!   log still holds the commit they read, so a stale writer can never
//!   commit into a collected log.
//! * **Writer leases** (optional, `lease=<ms>` or
//!   [`ObjectOptions::lease`]): a lease object taken with conditional PUTs
//!   at the write lock makes other processes' writers wait
//!   (`SQLITE_BUSY`) instead of losing commit races; a takeover fences the
//!   log, so a writer that lost its lease cannot publish.
//! * **Group commit** (optional, `sync=async&queue=<dir>` or
//!   [`ObjectOptions::sync`]): `COMMIT` returns once the transaction is
//!   durably in a local queue directory; a background uploader publishes
//!   the queue, several transactions per commit object; the process reads
//!   its queued commits at once; `PRAGMA object_flush` waits for the
//!   upload; a restart uploads what the queue holds, exactly once.
//! * **Time travel.** `lsn=<n>` or `asof=<RFC 3339 time>` opens a past
//!   version read-only; [`ObjectVfs::versions`] lists them;
//!   [`ObjectVfs::restore`] writes one as a new database or a plain file.
//! * **Journal modes.** The rollback journal stays local, in memory;
//!   `journal_mode=WAL` and `locking_mode=EXCLUSIVE` are refused with a
//!   message.
//! * **Async inside sync.** The backend owns a small tokio runtime and
//!   never blocks inside the caller's: safe from sqlx workers,
//!   `spawn_blocking` and `#[tokio::main]`.
//!
//! The design, consistency model, failure model and costs per operation
//! are in `docs/object.md`.
//!
//! ```
//! use std::sync::Arc;
//! use object_store::memory::InMemory;
//! use vfs_object::{ObjectOptions, ObjectVfs};
//!
//! let store = Arc::new(InMemory::new());
//! let vfs = ObjectVfs::new(store.clone(), "dbs", ObjectOptions::default()).unwrap();
//! let reg = vfs_core::register("object-doc", vfs.clone(), false).unwrap();
//!
//! let conn = rusqlite::Connection::open("file:/orders.db?vfs=object-doc").unwrap();
//! conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('hi');").unwrap();
//! // Two commits: two objects, one PUT each.
//! assert_eq!(vfs.request_stats().puts, 2);
//!
//! // Another "process" (its own cache and lock manager) on the same store.
//! let other = ObjectVfs::new(store, "dbs", ObjectOptions::default()).unwrap();
//! let reg2 = vfs_core::register("object-doc-2", other, false).unwrap();
//! let c2 = rusqlite::Connection::open("file:/orders.db?vfs=object-doc-2").unwrap();
//! let v: String = c2.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
//! assert_eq!(v, "hi");
//! drop((conn, c2));
//! reg.unregister().unwrap();
//! reg2.unregister().unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod client;
mod compact;
mod db;
pub mod fault;
mod file;
mod format;
mod group;
mod history;
mod keys;
mod lease;
mod page_groups;
mod params;
mod prefetch;
mod publish;
mod queue;
mod restore;
mod retained;
mod runtime;
mod snapshot;
mod txn;
mod usage;
mod version;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::Mutex;
use vfs_core::{
    AccessCheck, Error, FileKind, FileName, FileNameBuf, OpenAccess, OpenName, OpenOptions, Result,
    Vfs, codes,
};

use crate::cache::PageCache;
use crate::client::{Client, RetryPolicy};
use crate::db::{Ctx, Db, store_error};
use crate::keys::DbKeys;
use crate::runtime::Runtime;

pub use crate::client::RequestStats;
pub use crate::compact::{CompactReport, GcReport};
pub use crate::file::ObjectFile;
pub use crate::format::FORMAT_VERSION;
pub use crate::history::{At, VersionInfo};
pub use crate::keys::RESERVED_SEGMENTS;
pub use crate::lease::{Clock, LEASE_LEN, SystemClock};
pub use crate::queue::{QUEUE_HEADER_LEN, QUEUE_MAGIC, QUEUE_VERSION};
pub use crate::restore::{RestoreTarget, Restored};
pub use crate::usage::{ObjectCount, StorageUsage};
/// Re-exported so users name the same `object_store` version as this crate.
pub use object_store;

/// How an [`ObjectVfs`] behaves. Every field has a default
/// ([`ObjectOptions::default`]).
#[derive(Clone, Debug)]
pub struct ObjectOptions {
    /// How often a read transaction looks for commits of other processes,
    /// unless its URI says `poll=<milliseconds>`. Default 1 s; zero looks
    /// at every read transaction.
    pub poll: Duration,
    /// Memory budget of the page cache in bytes (0: no memory cache).
    /// Default 64 MiB.
    pub cache_bytes: u64,
    /// A directory that keeps fetched pages across processes (checked
    /// against their CRC-32 before use; deleting it is always safe). It
    /// grows with the pages read. Default none.
    pub cache_dir: Option<PathBuf>,
    /// Retries of a request after a transient failure (timeout, connection
    /// error, server error). Default 3.
    pub retries: u32,
    /// First backoff between retries, doubling up to 1 s. Default 50 ms.
    pub retry_backoff: Duration,
    /// Longest wait for one request. Default 30 s.
    pub request_timeout: Duration,
    /// Worker threads of the backend's own tokio runtime. Default 2.
    pub runtime_threads: usize,
    /// How long garbage collection keeps every state for: it never
    /// deletes a log object committed within this window, nor the snapshot
    /// the oldest state inside it is read from. Compared with the store's
    /// modification times, so allow for clock skew. Default 1 hour.
    pub retention: Duration,
    /// The compaction policy: after a commit of this process that leaves
    /// at least this many commits above the newest snapshot it knows, a
    /// background thread compacts the database, then collects garbage with
    /// [`ObjectOptions::retention`]. Default `None` (only
    /// [`ObjectVfs::compact`], [`ObjectVfs::gc`] and the PRAGMAs do).
    pub compact_every: Option<u64>,
    /// Take a writer lease with this time to live at every write lock,
    /// unless the URI says `lease=<milliseconds>` (`lease=0`: none).
    /// Writers of other processes then wait (`SQLITE_BUSY`, SQLite's busy
    /// handler) instead of losing commit races; see `docs/object.md`, "Writer leases".
    /// Default none.
    pub lease: Option<Duration>,
    /// How long a lease is kept after a write transaction ends, so the
    /// process's next transaction takes it without a request. Zero
    /// (the default) releases it at once (one PUT) so that other
    /// processes need not wait.
    pub lease_linger: Duration,
    /// The wall clock lease expiry times are written and judged with.
    /// Default [`SystemClock`].
    pub clock: Arc<dyn Clock>,
    /// Read ahead: the interior b-tree pages on a cold open, and larger
    /// ranges when a connection reads pages sequentially (a scan); URI
    /// parameter `prefetch=0|1` per connection. Default on.
    pub prefetch: bool,
    /// When `COMMIT` returns: once the transaction is in the store
    /// ([`SyncMode::Commit`], the default), or once it is durably in a
    /// local queue directory and uploaded in the background, batched
    /// ([`SyncMode::Async`]); URI parameter `sync=commit|async`. See
    /// `docs/object.md`, "Group commit".
    pub sync: SyncMode,
    /// The root of the queue directories of [`SyncMode::Async`]: database
    /// `/a/b.db` queues in `<queue_dir>/a%2Fb.db`. The URI parameter
    /// `queue=<path>` names one database's queue directory instead. Default
    /// none (then `sync=async` needs `queue=`).
    pub queue_dir: Option<PathBuf>,
    /// The most bytes of transactions a queue holds (they are also held in
    /// memory, as part of the process's head); past it `COMMIT` waits for
    /// the upload to make room. URI parameter `queue_max=<bytes>`. Default
    /// 64 MiB.
    pub queue_max: u64,
    /// Pages per group of a snapshot: compaction writes a database of more
    /// pages than this as page-group objects (each at most this many
    /// pages, built and written one at a time) and a small manifest,
    /// instead of one object; see `docs/object.md` §14. Bounds the memory
    /// and the largest PUT of a compaction. Default 4,096 (16 MiB at
    /// 4 KiB pages); 0 is taken as 1. URI parameter `snapshot_group=<pages>`
    /// per connection (its `PRAGMA object_compact` and policy runs).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use vfs_object::{ObjectOptions, ObjectVfs};
    ///
    /// let store = Arc::new(object_store::memory::InMemory::new());
    /// let options = ObjectOptions { snapshot_group_pages: 8, ..ObjectOptions::default() };
    /// let vfs = ObjectVfs::new(store, "", options).unwrap();
    /// let reg = vfs_core::register("object-groups-doc", vfs.clone(), false).unwrap();
    /// let conn = rusqlite::Connection::open("file:/g.db?vfs=object-groups-doc").unwrap();
    /// conn.execute_batch(
    ///     "CREATE TABLE t(v); INSERT INTO t SELECT randomblob(3000) FROM
    ///        (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 30)
    ///         SELECT i FROM s);",
    /// )
    /// .unwrap();
    /// // About 32 pages: 4 groups of 8 and the manifest.
    /// let first = vfs.compact("/g.db").unwrap();
    /// assert_eq!(first.objects_written, 5);
    /// // One more commit changes page 1 and one leaf: the other groups are
    /// // named again, not written.
    /// conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
    /// let second = vfs.compact("/g.db").unwrap();
    /// assert!(second.groups_reused >= 2, "{second}");
    /// drop(conn);
    /// reg.unregister().unwrap();
    /// ```
    pub snapshot_group_pages: u32,
}

/// When `COMMIT` returns (see [`ObjectOptions::sync`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// After the commit's conditional PUT (URI `sync=commit`).
    #[default]
    Commit,
    /// After the transaction is durably in the local queue directory; a
    /// background uploader publishes the queue, several transactions per
    /// object (URI `sync=async`). `PRAGMA object_flush` waits for it.
    Async,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        ObjectOptions {
            poll: Duration::from_secs(1),
            cache_bytes: 64 << 20,
            cache_dir: None,
            retries: 3,
            retry_backoff: Duration::from_millis(50),
            request_timeout: Duration::from_secs(30),
            runtime_threads: 2,
            retention: Duration::from_secs(3600),
            compact_every: None,
            lease: None,
            lease_linger: Duration::ZERO,
            clock: Arc::new(SystemClock),
            prefetch: true,
            snapshot_group_pages: page_groups::DEFAULT_GROUP_PAGES,
            sync: SyncMode::Commit,
            queue_dir: None,
            queue_max: 64 << 20,
        }
    }
}

/// The object-store VFS: register it with [`vfs_core::register`] and open
/// databases as `file:/<name>?vfs=<registered name>`.
///
/// Clones share everything (databases, cache, runtime). Two `ObjectVfs`
/// built separately over the same store behave like two processes: their
/// only coordination is the store's conditional create.
#[derive(Clone)]
pub struct ObjectVfs {
    shared: Arc<Shared>,
}

/// What every clone and every open file share.
pub(crate) struct Shared {
    pub(crate) ctx: Ctx,
    prefix: Path,
    poll: Duration,
    pub(crate) retention: Duration,
    pub(crate) compact_every: Option<u64>,
    /// Pages per snapshot group ([`ObjectOptions::snapshot_group_pages`]).
    pub(crate) snapshot_group_pages: u32,
    /// The default writer lease TTL (`None`: no lease).
    lease: Option<Duration>,
    lease_linger: Duration,
    clock: Arc<dyn Clock>,
    /// This process's id in lease objects.
    holder: [u8; 16],
    prefetch: bool,
    sync: SyncMode,
    queue_dir: Option<PathBuf>,
    queue_max: u64,
    /// Databases by normalised name (`/orders.db`).
    dbs: Mutex<HashMap<String, Arc<Db>>>,
    /// Journals and super-journals, by name.
    files: Mutex<HashMap<String, Arc<Mutex<Vec<u8>>>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The uploaders hold the databases, not the VFS: tell them to end.
        for db in self.dbs.get_mut().values() {
            if let Some(g) = db.group.get() {
                g.stop();
            }
        }
        // The last clone of the VFS and its last open file are gone: hand
        // back the writer leases still held (lingering), while the runtime
        // that can send the request is still alive.
        let dbs: Vec<Arc<Db>> = self.dbs.get_mut().values().cloned().collect();
        for db in dbs {
            lease::release_at_exit(&db, self);
        }
    }
}

impl std::fmt::Debug for ObjectVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectVfs")
            .field("store", &self.shared.ctx.client.store_name())
            .field("prefix", &self.shared.prefix.as_ref())
            .finish()
    }
}

/// `/name` for `name` and `/name`.
fn normalise(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

impl ObjectVfs {
    /// A VFS keeping its databases in `store` under `prefix` (`""` for the
    /// root). Starts the backend's runtime.
    ///
    /// Errors: `SQLITE_MISUSE` for a prefix that is not a valid object
    /// path; an I/O error if the runtime or the cache directory cannot be
    /// created.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        options: ObjectOptions,
    ) -> Result<ObjectVfs> {
        let prefix = keys::parse_prefix(prefix)?;
        let policy = RetryPolicy {
            retries: options.retries,
            backoff: options.retry_backoff,
            timeout: options.request_timeout,
        };
        let cache =
            PageCache::new(options.cache_bytes, options.cache_dir.clone()).map_err(|e| {
                Error::io(format!(
                    "vfs-object: cannot create the cache directory {:?}: {e}",
                    options.cache_dir
                ))
            })?;
        Ok(ObjectVfs {
            shared: Arc::new(Shared {
                ctx: Ctx {
                    client: Client::new(store, policy),
                    runtime: Runtime::new(options.runtime_threads)?,
                    cache: Arc::new(cache),
                },
                prefix,
                poll: options.poll,
                retention: options.retention,
                compact_every: options.compact_every,
                snapshot_group_pages: options.snapshot_group_pages.max(1),
                lease: options.lease.filter(|d| !d.is_zero()),
                lease_linger: options.lease_linger,
                clock: options.clock,
                holder: rand::random(),
                prefetch: options.prefetch,
                sync: options.sync,
                queue_dir: options.queue_dir,
                queue_max: options.queue_max,
                dbs: Mutex::new(HashMap::new()),
                files: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The store requests made so far (every attempt counts).
    pub fn request_stats(&self) -> RequestStats {
        self.shared.ctx.client.stats()
    }

    /// Bytes of pages held by the memory cache.
    pub fn cached_bytes(&self) -> u64 {
        self.shared.ctx.cache.mem_bytes()
    }

    /// The newest LSN of database `name` in the store (looks now, whatever
    /// the poll interval); 0 for a database with no commit.
    pub fn head_lsn(&self, name: &str) -> Result<u64> {
        let db = self.db(name)?;
        Ok(db
            .read_state(&self.shared.ctx, Duration::ZERO, codes::SQLITE_IOERR_READ)?
            .lsn)
    }

    /// Compacts database `name`: writes a snapshot, `snap/<LSN>`, holding
    /// every page of its newest state, so that cold opens and readers far
    /// behind start there instead of reading the whole log. Commits of
    /// other writers go on meanwhile.
    ///
    /// A database of at most [`ObjectOptions::snapshot_group_pages`] pages
    /// is one object: one LIST (looking for new commits), one GET per page
    /// not in the cache, and one PUT. A larger one is written one page
    /// group at a time (memory and the largest PUT bounded by one group):
    /// one PUT per group that changed since the newest snapshot (the others
    /// are named again, not read or written), then the manifest (one PUT);
    /// besides the LIST of the log, one LIST of the snapshots and up to two
    /// GETs (the previous manifest), and one LIST of the page groups before
    /// the manifest is created (`docs/object.md` §14). Errors:
    /// `SQLITE_IOERR_READ` / `SQLITE_IOERR_DATA` reading pages,
    /// `SQLITE_IOERR_WRITE` writing the snapshot; the snapshot exists only
    /// once complete (its one object, or its manifest, is created last).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use vfs_object::{ObjectOptions, ObjectVfs};
    ///
    /// let store = Arc::new(object_store::memory::InMemory::new());
    /// let vfs = ObjectVfs::new(store, "dbs", ObjectOptions::default()).unwrap();
    /// let reg = vfs_core::register("object-compact-doc", vfs.clone(), false).unwrap();
    /// let conn = rusqlite::Connection::open("file:/a.db?vfs=object-compact-doc").unwrap();
    /// conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);").unwrap();
    /// let done = vfs.compact("/a.db").unwrap();
    /// assert_eq!((done.snapshot_lsn, done.objects_written), (2, 1));
    /// // Both commits are inside the default one-hour retention window.
    /// assert_eq!(vfs.gc("/a.db").unwrap().objects_deleted(), 0);
    /// drop(conn);
    /// reg.unregister().unwrap();
    /// ```
    pub fn compact(&self, name: &str) -> Result<CompactReport> {
        let db = self.db(name)?;
        compact::compact(&self.shared, &db, self.shared.snapshot_group_pages)
    }

    /// Collects the garbage of database `name` with the registration's
    /// [`ObjectOptions::retention`]: see [`ObjectVfs::gc_with_retention`].
    pub fn gc(&self, name: &str) -> Result<GcReport> {
        self.gc_with_retention(name, self.shared.retention)
    }

    /// Deletes the objects of database `name` that no state committed
    /// within `retention` needs: log objects below the newest snapshot that
    /// is at or below the oldest such state, and snapshots below that one
    /// (`log/1` is replaced by a small tombstone instead, so that key is
    /// never free again). Nothing is deleted before a snapshot exists.
    ///
    /// Safe while other processes read and write: readers and writers
    /// detect a collected log and start from a snapshot, and a stale
    /// writer can never commit into it (`docs/object.md`, §14). A failure
    /// stops the run where it is (`SQLITE_IOERR_DELETE`, saying what was
    /// done); running it again finishes it.
    ///
    /// Costs three LISTs (log, snapshots, page groups), one GET of the
    /// base snapshot's header (two when it is a manifest) and, when page
    /// groups exist, of every snapshot kept, one DELETE per object, and
    /// once one PUT (plus one GET on later runs) for the tombstone.
    pub fn gc_with_retention(&self, name: &str, retention: Duration) -> Result<GcReport> {
        let db = self.db(name)?;
        compact::gc(&self.shared, &db, retention)
    }

    /// Waits until the compaction policy's background run for database
    /// `name` (if one is going) has finished ([`ObjectOptions::compact_every`]).
    pub fn wait_for_compaction(&self, name: &str) -> Result<()> {
        let db = self.db(name)?;
        let handle = db.background.lock().take();
        if let Some(h) = handle {
            // The run catches its own errors; a panic in it is not ours to
            // propagate into SQLite's caller.
            let _ = h.join();
        }
        Ok(())
    }

    /// Deletes every object of database `name`. Only safe when no process
    /// uses the database: a reader would fail, a writer could recreate it.
    pub fn delete_database(&self, name: &str) -> Result<()> {
        let name = normalise(name);
        let keys = DbKeys::new(&self.shared.prefix, &name)?;
        let client = self.shared.ctx.client.clone();
        let lease = keys.lease().clone();
        let r = self.shared.ctx.runtime.run(async move {
            // Snapshots first: a reader meanwhile falls back to the log.
            let dirs = [
                (keys.snap_dir().clone(), keys.snapshot(0)),
                (keys.group_dir().clone(), keys.group_dir().clone()),
                (keys.log_dir().clone(), keys.commit(0)),
            ];
            for (dir, first) in dirs {
                for m in client.list_after(&dir, &first).await? {
                    client.delete(&m.location).await?;
                }
            }
            // The writer lease, if any database user took one.
            client.delete(&lease).await?;
            Ok::<_, client::StoreError>(())
        })?;
        if let Some(db) = self.shared.dbs.lock().remove(&name)
            && let Some(g) = db.group.get()
        {
            g.stop();
        }
        r.map_err(|e| store_error(codes::SQLITE_IOERR_DELETE, &name, &e))
    }

    fn db(&self, name: &str) -> Result<Arc<Db>> {
        let name = normalise(name);
        if let Some(db) = self.shared.dbs.lock().get(&name) {
            return Ok(Arc::clone(db));
        }
        let keys = DbKeys::new(&self.shared.prefix, &name)?;
        Ok(Arc::clone(
            self.shared
                .dbs
                .lock()
                .entry(name.clone())
                .or_insert_with(|| Db::new(&name, keys)),
        ))
    }

    fn open_main(&self, path: &str, name: &OpenName<'_>, opts: OpenOptions) -> Result<ObjectFile> {
        let poll = match name.parameter("poll") {
            None => self.shared.poll,
            Some(ms) => Duration::from_millis(ms.trim().parse().map_err(|_| {
                Error::cant_open(format!(
                    "vfs-object: poll={ms:?} is not a number of milliseconds"
                ))
            })?),
        };
        let lease = match name.parameter("lease") {
            None => self.shared.lease,
            Some(ms) => {
                let ms: u64 = ms.trim().parse().map_err(|_| {
                    Error::cant_open(format!(
                        "vfs-object: lease={ms:?} is not a number of milliseconds"
                    ))
                })?;
                (ms > 0).then(|| Duration::from_millis(ms))
            }
        };
        let prefetch = match name.parameter("prefetch").map(str::trim) {
            None => self.shared.prefetch,
            Some("1") => true,
            Some("0") => false,
            Some(v) => {
                return Err(Error::cant_open(format!(
                    "vfs-object: prefetch={v:?} is neither 0 nor 1"
                )));
            }
        };
        let sync = match name.parameter("sync").map(str::trim) {
            None => self.shared.sync,
            Some("commit") => SyncMode::Commit,
            Some("async") => SyncMode::Async,
            Some(v) => {
                return Err(Error::cant_open(format!(
                    "vfs-object: sync={v:?} is neither commit nor async"
                )));
            }
        };
        let queue_max = match name.parameter("queue_max") {
            None => self.shared.queue_max,
            Some(b) => b.trim().parse().map_err(|_| {
                Error::cant_open(format!(
                    "vfs-object: queue_max={b:?} is not a number of bytes"
                ))
            })?,
        };
        let queue_dir = match name.parameter("queue") {
            Some("") => {
                return Err(Error::cant_open(
                    "vfs-object: queue= names no directory".to_owned(),
                ));
            }
            Some(q) => Some(PathBuf::from(q)),
            None => self
                .shared
                .queue_dir
                .as_deref()
                .map(|root| group::dir_under(root, &normalise(path))),
        };
        let compaction = params::Compaction::from_uri(
            params::Compaction {
                retention: self.shared.retention,
                every: self.shared.compact_every,
                group_pages: self.shared.snapshot_group_pages,
            },
            name.parameter("retention"),
            name.parameter("compact_every"),
        )?
        .with_group_pages(name.parameter("snapshot_group"))?;
        let db = self.db(path)?;
        if let Some((_, version)) = history::pinned_version(
            &self.shared.ctx,
            &db,
            name.parameter("lsn"),
            name.parameter("asof"),
        )? {
            return Ok(ObjectFile::pinned(db, Arc::clone(&self.shared), version));
        }
        // A database not seen yet (or not existing when last looked at:
        // another process may have created it since) is looked up now.
        if !db.loaded() || db.head().lsn == 0 {
            db.read_state(&self.shared.ctx, Duration::ZERO, codes::SQLITE_CANTOPEN)?;
        }
        if sync == SyncMode::Async {
            let Some(dir) = queue_dir else {
                return Err(Error::cant_open(format!(
                    "vfs-object: sync=async for {path:?} needs a queue directory: the URI \
                     parameter queue=<path> or ObjectOptions::queue_dir"
                )));
            };
            group::attach(&self.shared, &db, dir, queue_max, compaction)?;
        }
        if prefetch && db.first_open() {
            prefetch::btree_interiors(&db, &self.shared.ctx, &db.head());
        }
        if db.head().lsn == 0 && opts.access != OpenAccess::Create && !db.opened_for_create() {
            return Err(Error::cant_open(format!(
                "vfs-object: no database {path:?} under {:?} (open it with SQLITE_OPEN_CREATE to create it)",
                self.shared.prefix.as_ref()
            )));
        }
        if opts.access == OpenAccess::Create {
            db.mark_opened_for_create();
        }
        Ok(ObjectFile::main(
            db,
            Arc::clone(&self.shared),
            !opts.access.writable(),
            poll,
            lease,
            prefetch,
            sync == SyncMode::Async,
        )
        .with_compaction(compaction))
    }

    fn open_named(&self, path: &str, opts: OpenOptions) -> Result<ObjectFile> {
        let mut files = self.shared.files.lock();
        let f = match files.get(path) {
            Some(_) if opts.exclusive => {
                return Err(Error::cant_open(format!("{path:?} already exists")));
            }
            Some(f) => Arc::clone(f),
            None if opts.access == OpenAccess::Create => {
                let f = Arc::new(Mutex::new(Vec::new()));
                files.insert(path.to_owned(), Arc::clone(&f));
                f
            }
            None => return Err(Error::cant_open(format!("no file named {path:?}"))),
        };
        Ok(ObjectFile::named(f))
    }
}

/// `name` as an object key: object stores name objects with UTF-8 text, so
/// a name that is not UTF-8 cannot be one (and is never converted lossily,
/// which could make two names one object).
fn object_key(name: &FileName) -> Result<&str> {
    name.to_str().ok_or_else(|| {
        Error::cant_open(format!(
            "vfs-object: {name:?} is not UTF-8, and object keys are UTF-8 text"
        ))
    })
}

impl Vfs for ObjectVfs {
    type File = ObjectFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<ObjectFile> {
        let path = name.path().map(object_key).transpose()?;
        match (opts.kind, path) {
            (FileKind::MainDb, Some(path)) => self.open_main(path, name, opts),
            (FileKind::Wal, _) => Err(Error::cant_open(
                "vfs-object has no WAL: the object log is the write-ahead log and readers never \
                 block; keep journal_mode=DELETE/TRUNCATE/PERSIST/MEMORY",
            )),
            (FileKind::MainJournal | FileKind::SuperJournal, Some(path)) => {
                self.open_named(path, opts)
            }
            _ => Ok(ObjectFile::scratch()),
        }
    }

    fn delete(&self, name: &FileName, _sync_dir: bool) -> Result<()> {
        let Some(path) = name.to_str() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no file named {name:?} (object keys are UTF-8)"),
            )
            .into());
        };
        if self.shared.files.lock().remove(path).is_some() {
            return Ok(());
        }
        if path.ends_with("-journal") || path.ends_with("-wal") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no file named {path:?}"),
            )
            .into());
        }
        self.delete_database(path)
    }

    fn access(&self, name: &FileName, _check: AccessCheck) -> Result<bool> {
        // A name that is not UTF-8 can name no object.
        let Some(path) = name.to_str() else {
            return Ok(false);
        };
        // SQLite asks about the journal at the start of every read
        // transaction: a journal here only ever serves its own
        // connection's rollback, so none is ever hot for another.
        if path.ends_with("-journal") || path.ends_with("-wal") {
            return Ok(false);
        }
        if self.shared.files.lock().contains_key(path) {
            return Ok(true);
        }
        let db = self.db(path)?;
        if !db.loaded() {
            db.read_state(&self.shared.ctx, Duration::ZERO, codes::SQLITE_IOERR_ACCESS)?;
        }
        Ok(db.head().lsn > 0 || db.opened_for_create())
    }

    fn full_pathname(&self, name: &FileName) -> Result<FileNameBuf> {
        Ok(normalise(object_key(name)?).into())
    }
}
