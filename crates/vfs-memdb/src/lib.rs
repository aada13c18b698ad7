//! # vfs-memdb
//!
//! An in-memory SQLite VFS that many connections and threads of one process
//! share, with real locking and WAL mode, built on the safe traits of
//! [`vfs_core`].
//!
//! * **Store**: every file is a list of 4 KiB pages under one `RwLock`;
//!   reads take the read lock and copy, writes take the write lock. Any
//!   offset and length works (the 100-byte header read, journal records,
//!   WAL frames). Reads and in-place writes do not allocate.
//! * **Names**: a name starting with `/` (`file:/app.db?vfs=mem`) is one
//!   database shared by every connection of the process that opens it
//!   through the same [`MemDb`] instance. Any other name (`file:app.db`) is
//!   private to the connection that opens it and is dropped, with its
//!   journal and WAL, when that connection closes it.
//! * **Lifetime**: a shared database lives until it is deleted, with
//!   [`MemDb::delete`] (or SQLite's `xDelete`), which is refused with
//!   `SQLITE_BUSY` while a connection has it open, or until the last clone
//!   of its [`MemDb`] is dropped. Closing every connection keeps it.
//! * **Locking**: SQLite's five lock levels through
//!   [`vfs_core::LockManager`] (one per file); two writers get
//!   `SQLITE_BUSY`, and a busy timeout resolves it.
//! * **WAL**: each database has one [`vfs_core::ShmGroup`], so readers and a
//!   writer on separate connections (and threads) run concurrently, and
//!   checkpoints work.
//! * **Temporary files** (temp databases, sorter and `VACUUM` scratch,
//!   statement journals), usually nameless and delete-on-close, live in the
//!   handle that opened them.
//! * **Instance API**: [`MemDb::load`] a database image (a WAL-mode image is
//!   switched to rollback mode), [`MemDb::export`] a consistent image
//!   (including transactions still in the WAL), [`MemDb::list`],
//!   [`MemDb::delete`].
//! * **Budget**: [`MemDb::with_budget`] caps the bytes of the database files
//!   of the instance; a write that would pass the cap answers `SQLITE_FULL`
//!   before changing anything, so the transaction rolls back and the
//!   database stays intact. Journals, WAL files and temporary files do not
//!   count (see [`MemDb::with_budget`] for the exact rule).
//!
//! ```
//! use rusqlite::Connection;
//! use vfs_memdb::MemDb;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mem = MemDb::new();
//! let reg = vfs_core::register("memdb-doc-crate", mem.clone(), false)?;
//!
//! // Two connections to the shared database "/app.db", in WAL mode.
//! let writer = Connection::open("file:/app.db?vfs=memdb-doc-crate")?;
//! writer.execute_batch(
//!     "PRAGMA journal_mode=WAL;
//!      CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT);
//!      INSERT INTO kv VALUES ('greeting', 'hello');",
//! )?;
//! let reader = Connection::open("file:/app.db?vfs=memdb-doc-crate")?;
//! let v: String = reader.query_row("SELECT v FROM kv", [], |r| r.get(0))?;
//! assert_eq!(v, "hello");
//!
//! // A private name is the connection's own database.
//! let private = Connection::open("file:scratch.db?vfs=memdb-doc-crate")?;
//! private.execute_batch("CREATE TABLE only_mine(x)")?;
//!
//! // Export a consistent image and load it under another name.
//! let image = mem.export("/app.db")?;
//! mem.load("/copy.db", &image)?;
//! let copy = Connection::open("file:/copy.db?vfs=memdb-doc-crate")?;
//! let v: String = copy.query_row("SELECT v FROM kv", [], |r| r.get(0))?;
//! assert_eq!(v, "hello");
//!
//! drop((writer, reader, private, copy));
//! assert_eq!(mem.list(), ["/app.db", "/copy.db"]); // the private one is gone
//! reg.unregister().map_err(|(_, e)| e)?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod store;
mod wal;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use vfs_core::{
    AccessCheck, DeviceCharacteristics, Error, File, FileKind, FileLock, FileName, FileNameBuf,
    LockLevel, LockManager, OpenAccess, OpenName, OpenOptions, Result, ShmGroup, ShmLockOp,
    ShmSupport, SyncFlags, Vfs, codes,
};

use store::Store;

/// How long [`MemDb::export`] waits for writers before answering
/// `SQLITE_BUSY`.
const EXPORT_WAIT: Duration = Duration::from_secs(5);

/// What [`Vfs::full_pathname`] appends to a private name.
const PRIVATE_MARK: &str = "#private-";

/// The WAL-index lock slot a checkpointer holds (`WAL_CKPT_LOCK`).
const SHM_CHECKPOINT_SLOT: u32 = 1;

/// Whether `name` names a database shared by all connections.
fn is_shared(name: &FileName) -> bool {
    name.starts_with("/")
}

/// The names of the journal and WAL files SQLite derives from a database.
fn companions(db: &FileName) -> [FileNameBuf; 2] {
    [db.with_suffix("-journal"), db.with_suffix("-wal")]
}

/// The byte budget of one instance and what its database files use.
#[derive(Debug)]
struct Accounting {
    budget: Option<u64>,
    used: AtomicU64,
}

impl Accounting {
    /// Counts `grow` more bytes, of which `freed` are about to be released
    /// by the caller, or answers `SQLITE_FULL` and counts nothing.
    fn reserve(&self, grow: u64, freed: u64, what: &dyn fmt::Display) -> Result<()> {
        let mut current = self.used.load(Ordering::Acquire);
        loop {
            let after = current.saturating_sub(freed).saturating_add(grow);
            if let Some(budget) = self.budget
                && after > budget
            {
                return Err(Error::full(format!(
                    "memdb budget of {budget} bytes exhausted: {current} bytes in use, \
                     {what} needs {grow} more"
                )));
            }
            let Some(new) = current.checked_add(grow) else {
                return Err(Error::full("memdb size counter overflow"));
            };
            match self
                .used
                .compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One file of the store.
struct Node {
    store: RwLock<Store>,
    /// SQLite's file locks, shared by every handle on this file.
    locks: Arc<LockManager>,
    /// The WAL index of a main database, shared by all its connections.
    shm: Option<Arc<ShmGroup>>,
    /// Handles currently open on this file.
    open: AtomicUsize,
    /// Set for files the budget counts (named main databases).
    acct: Option<Arc<Accounting>>,
    kind: FileKind,
}

impl Node {
    /// A file of `kind` holding `store`. With `acct`, the file is counted
    /// against the budget and the caller has already reserved the store's
    /// bytes there (the node releases them when dropped).
    fn new(kind: FileKind, store: Store, acct: Option<Arc<Accounting>>) -> Arc<Node> {
        Arc::new(Node {
            store: RwLock::new(store),
            locks: LockManager::new(),
            shm: (kind == FileKind::MainDb).then(ShmGroup::new),
            open: AtomicUsize::new(0),
            acct,
            kind,
        })
    }

    fn len(&self) -> u64 {
        self.store.read().len()
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst) > 0
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(acct) = &self.acct {
            acct.release(self.store.get_mut().len());
        }
    }
}

/// The instance's files by name. Insertions and removals go through it so
/// that it can count rollback journals: SQLite asks whether `<db>-journal`
/// exists at the start of every read transaction, and with no journal in
/// the instance [`Vfs::access`] answers without the lock or a hash.
struct Names {
    map: HashMap<FileNameBuf, Arc<Node>>,
    journals: Arc<AtomicUsize>,
}

fn is_journal_name(name: &FileName) -> bool {
    name.ends_with("-journal")
}

impl Names {
    fn insert(&mut self, name: FileNameBuf, node: Arc<Node>) {
        let journal = is_journal_name(&name);
        if self.map.insert(name, node).is_none() && journal {
            self.journals.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn remove(&mut self, name: &FileName) -> Option<Arc<Node>> {
        let node = self.map.remove(name);
        if node.is_some() && is_journal_name(name) {
            self.journals.fetch_sub(1, Ordering::SeqCst);
        }
        node
    }
}

impl std::ops::Deref for Names {
    type Target = HashMap<FileNameBuf, Arc<Node>>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

struct Inner {
    files: Mutex<Names>,
    /// Journals in `files` (the same count `Names` keeps), read without
    /// the lock.
    journals: Arc<AtomicUsize>,
    acct: Arc<Accounting>,
    next_private: AtomicU64,
}

impl Inner {
    /// Removes `name` if it still refers to `node`.
    fn forget(&self, name: &FileName, node: &Arc<Node>) {
        let mut files = self.files.lock();
        if files.get(name).is_some_and(|n| Arc::ptr_eq(n, node)) {
            files.remove(name);
        }
    }

    /// Removes a private database and its journal and WAL.
    fn forget_database(&self, name: &FileName, node: &Arc<Node>) {
        let mut files = self.files.lock();
        if files.get(name).is_some_and(|n| Arc::ptr_eq(n, node)) {
            files.remove(name);
            for companion in companions(name) {
                files.remove(&companion);
            }
        }
    }
}

/// An in-memory VFS instance: a set of named files, optionally under a byte
/// budget.
///
/// Cloning is cheap (an `Arc`) and every clone is the same store, so keep
/// one clone for [`load`](MemDb::load) / [`export`](MemDb::export) and
/// register another with [`vfs_core::register`]. Separate instances (from
/// separate [`MemDb::new`] calls) share nothing, even under the same file
/// names. The store lives until its last clone, including the one inside a
/// registration, is dropped and every file opened through it is closed.
///
/// See the [crate documentation](crate) for naming and lifetime rules.
///
/// ```
/// use rusqlite::{Connection, ErrorCode};
/// use vfs_memdb::MemDb;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A database that may not grow past 256 KiB.
/// let mem = MemDb::with_budget(256 * 1024);
/// let reg = vfs_core::register("memdb-doc-budget", mem.clone(), false)?;
/// let conn = Connection::open("file:/small.db?vfs=memdb-doc-budget")?;
/// conn.execute_batch("CREATE TABLE t(b BLOB)")?;
/// let err = loop {
///     if let Err(e) = conn.execute("INSERT INTO t VALUES (zeroblob(10000))", []) {
///         break e;
///     }
/// };
/// assert_eq!(err.sqlite_error_code(), Some(ErrorCode::DiskFull));
/// assert!(mem.used() <= 256 * 1024);
/// // Everything committed before the failure is still there.
/// let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
/// assert_eq!(ok, "ok");
/// // Free space and write again.
/// conn.execute_batch("DELETE FROM t; VACUUM;")?;
/// conn.execute("INSERT INTO t VALUES (zeroblob(10000))", [])?;
/// drop(conn);
/// reg.unregister().map_err(|(_, e)| e)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemDb {
    inner: Arc<Inner>,
}

impl Default for MemDb {
    fn default() -> Self {
        MemDb::new()
    }
}

impl fmt::Debug for MemDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemDb")
            .field("files", &self.inner.files.lock().len())
            .field("used", &self.used())
            .field("budget", &self.budget())
            .finish()
    }
}

impl MemDb {
    /// A new, empty store without a budget.
    pub fn new() -> MemDb {
        MemDb::build(None)
    }

    /// A new, empty store whose database files may hold at most `bytes`
    /// bytes in total.
    ///
    /// What counts: the size of every named main database file of this
    /// instance (shared or private, open or not), that is what
    /// [`export`](MemDb::export) would return for each. A write or
    /// [`load`](MemDb::load) that would take the total past `bytes`
    /// answers `SQLITE_FULL` before changing anything; SQLite then rolls
    /// the transaction back and the database stays as it was. Deleting rows
    /// and running `VACUUM` shrinks the file and makes room again.
    ///
    /// What does not count: rollback journals (at most the size of the
    /// pages a transaction changes, deleted or reset at commit), temporary
    /// files (private to a connection, freed when it is done with them) and
    /// WAL files. In WAL mode the database file grows only at checkpoints,
    /// so each WAL frame is checked instead: a frame that would make its
    /// database larger than the budget allows is refused with
    /// `SQLITE_FULL`. A WAL itself is bounded by SQLite's checkpointing
    /// (`wal_autocheckpoint`, 1000 pages by default) unless long-lived
    /// readers hold checkpoints back. Leaving these files out means a full
    /// budget never prevents the `DELETE` and `VACUUM` that free space.
    ///
    /// The budget counts file sizes; the store's own overhead (at most one
    /// partly used 4 KiB page per file, plus bookkeeping) comes on top.
    pub fn with_budget(bytes: u64) -> MemDb {
        MemDb::build(Some(bytes))
    }

    fn build(budget: Option<u64>) -> MemDb {
        let journals = Arc::new(AtomicUsize::new(0));
        MemDb {
            inner: Arc::new(Inner {
                files: Mutex::new(Names {
                    map: HashMap::new(),
                    journals: Arc::clone(&journals),
                }),
                journals,
                acct: Arc::new(Accounting {
                    budget,
                    used: AtomicU64::new(0),
                }),
                next_private: AtomicU64::new(1),
            }),
        }
    }

    /// The budget given to [`with_budget`](MemDb::with_budget), if any.
    pub fn budget(&self) -> Option<u64> {
        self.inner.acct.budget
    }

    /// Bytes the budget currently counts (the sizes of the database files).
    pub fn used(&self) -> u64 {
        self.inner.acct.used.load(Ordering::Acquire)
    }

    /// The names of the databases in the store, sorted. Shared databases
    /// appear under their own name (`/app.db`); a private database appears
    /// only while its connection has it open, under its unique name
    /// (`app.db#private-7`).
    pub fn list(&self) -> Vec<FileNameBuf> {
        let mut names: Vec<FileNameBuf> = self
            .inner
            .files
            .lock()
            .iter()
            .filter(|(_, node)| node.kind == FileKind::MainDb)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// The size of any file in the store (a database, `<db>-journal`,
    /// `<db>-wal`), or `None` if there is no such file.
    pub fn file_size(&self, name: impl AsRef<FileName>) -> Option<u64> {
        let node = self.inner.files.lock().get(name.as_ref()).cloned()?;
        Some(node.len())
    }

    /// A copy of any file's stored bytes (a database, `<db>-journal`,
    /// `<db>-wal`) as they are at this instant, taken without any lock and
    /// with nothing applied: for inspecting what a layer above memdb
    /// stored. For a consistent database image use
    /// [`export`](MemDb::export). `None` if there is no such file.
    ///
    /// ```
    /// let mem = vfs_memdb::MemDb::new();
    /// mem.load_raw("/x.db", b"anything")?;
    /// assert_eq!(mem.file_bytes("/x.db").as_deref(), Some(&b"anything"[..]));
    /// assert_eq!(mem.file_bytes("/x.db-wal"), None);
    /// # Ok::<(), vfs_core::Error>(())
    /// ```
    pub fn file_bytes(&self, name: impl AsRef<FileName>) -> Option<Vec<u8>> {
        let node = self.inner.files.lock().get(name.as_ref()).cloned()?;
        Some(node.store.read().to_vec())
    }

    /// Stores a database image under the shared name `name` (it must start
    /// with `/`), replacing any database of that name and dropping its
    /// journal and WAL.
    ///
    /// An image in WAL mode (header bytes 18 and 19 equal to 2) is stored in
    /// rollback mode (they become 1), since it comes without its WAL; the
    /// first connection may switch it back with `PRAGMA journal_mode=WAL`.
    /// An empty image is an empty database.
    ///
    /// Errors: `SQLITE_MISUSE` for a private name, `SQLITE_NOTADB` for
    /// bytes that are not an SQLite database, `SQLITE_BUSY` while a
    /// connection has the database open, `SQLITE_FULL` when the image does
    /// not fit in the budget (nothing changes then).
    pub fn load(&self, name: impl AsRef<FileName>, image: &[u8]) -> Result<()> {
        let name = name.as_ref();
        shared_name_only("load", name)?;
        check_image(name, image)?;
        let mut store = Store::from_bytes(image);
        for at in [18u64, 19] {
            if image.get(at as usize) == Some(&2) {
                store.write(&[1], at);
            }
        }
        self.install("load", name, store, image.len() as u64)
    }

    /// Stores `image` under the shared name `name` exactly as given: no
    /// check that it looks like an SQLite database, no header byte
    /// changed. For images whose first page a layer above memdb transforms,
    /// such as a vfs-crypto database (its first 16 bytes are its salt, and
    /// its header bytes are authenticated, so a WAL-mode image must keep
    /// bytes 18 and 19). The image must be complete without a WAL: export
    /// it after a checkpoint. Errors as [`load`](MemDb::load), except that
    /// no content is refused.
    ///
    /// ```
    /// let memdb = vfs_memdb::MemDb::new();
    /// memdb.load_raw("/opaque.db", &[0x5a; 4096])?;
    /// assert_eq!(memdb.export("/opaque.db")?, vec![0x5a; 4096]);
    /// # Ok::<(), vfs_core::Error>(())
    /// ```
    pub fn load_raw(&self, name: impl AsRef<FileName>, image: &[u8]) -> Result<()> {
        let name = name.as_ref();
        shared_name_only("load_raw", name)?;
        self.install(
            "load_raw",
            name,
            Store::from_bytes(image),
            image.len() as u64,
        )
    }

    /// Puts `store` in place of database `name`, dropping its journal and
    /// WAL, unless the database is open or the budget refuses.
    /// `op` names the caller in error messages.
    fn install(&self, op: &str, name: &FileName, store: Store, len: u64) -> Result<()> {
        let mut files = self.inner.files.lock();
        let journal_and_wal = companions(name);
        let old = files.get(name);
        let mut freed = 0;
        if let Some(old) = old {
            if old.kind != FileKind::MainDb {
                return Err(Error::new(
                    codes::SQLITE_MISUSE,
                    format!("{op}({name:?}): that name is not a database"),
                ));
            }
            freed = old.len();
        }
        let busy = old.into_iter().chain(
            journal_and_wal
                .iter()
                .filter_map(|companion| files.get(companion.as_file_name())),
        );
        for node in busy {
            if node.is_open() {
                return Err(Error::busy(format!(
                    "{op}({name:?}): the database is open; close its connections first"
                )));
            }
        }
        let acct = &self.inner.acct;
        acct.reserve(len, freed, &format_args!("{op}({name:?})"))?;
        let node = Node::new(FileKind::MainDb, store, Some(Arc::clone(acct)));
        files.insert(name.to_owned(), node);
        for companion in &journal_and_wal {
            files.remove(companion);
        }
        Ok(())
    }

    /// A consistent image of database `name`: what a connection starting a
    /// read transaction now would see, including transactions committed to
    /// the WAL but not yet checkpointed. The image is byte-for-byte the
    /// database file (a WAL-mode database keeps its WAL-mode header; pass it
    /// to [`load`](MemDb::load) or write it to disk as it is).
    ///
    /// How: it holds a shared lock on the database while copying, so in
    /// rollback mode no commit can change the file meanwhile. In WAL mode it
    /// also holds the WAL-index checkpoint lock, so nothing copies frames
    /// into the database or restarts the WAL; it copies the database, then
    /// the WAL, and applies the WAL's committed transactions (checking salts
    /// and checksums as SQLite's recovery does). WAL writers keep writing
    /// meanwhile; their uncommitted frames are not included.
    ///
    /// While a rollback-mode writer commits (or waits to commit), or a
    /// checkpoint runs, it retries for up to 5 seconds, then answers
    /// `SQLITE_BUSY`: do not call it from a thread whose own connection is
    /// committing on `name`, or with a connection in
    /// `locking_mode=EXCLUSIVE` on it.
    ///
    /// `SQLITE_NOTFOUND` when there is no database of that name;
    /// `SQLITE_MISUSE` when its WAL holds committed frames memdb cannot
    /// verify, as when a layer above memdb transforms the WAL (vfs-crypto
    /// masks its checksums): checkpoint it first (`PRAGMA
    /// wal_checkpoint(TRUNCATE)` through that layer) rather than get an
    /// image without those transactions.
    pub fn export(&self, name: impl AsRef<FileName>) -> Result<Vec<u8>> {
        let name = name.as_ref();
        let db = self.database(name)?;
        let mut lock = db.locks.connect();
        retry_busy(name, || lock.lock(LockLevel::Shared))?;
        // Under SHARED nobody can switch journal modes or delete the WAL;
        // look for it only now.
        let wal = self
            .inner
            .files
            .lock()
            .get(name.with_suffix("-wal").as_file_name())
            .cloned();
        let wal = wal.filter(|w| w.len() > 0);
        let mut shm = db.shm.as_ref().map(|g| g.connect());
        if let (Some(_), Some(shm)) = (&wal, &mut shm) {
            // While we hold it no checkpoint writes the database file, and
            // the WAL cannot restart (that needs a complete checkpoint
            // first): the database copied below plus the WAL's committed
            // frames copied after it is one consistent state. Writers only
            // append, and committed frames are never rewritten in place.
            retry_busy(name, || {
                shm.lock(SHM_CHECKPOINT_SLOT, 1, ShmLockOp::LockExclusive)
            })?;
        }
        let mut image = db.store.read().to_vec();
        if let Some(wal) = &wal {
            wal::apply(&mut image, &wal.store.read()).map_err(|why| {
                Error::new(codes::SQLITE_MISUSE, format!("export({name:?}): {why}"))
            })?;
        }
        drop(shm);
        lock.unlock(LockLevel::None)?;
        Ok(image)
    }

    /// Deletes database `name` with its journal and WAL. Refused with
    /// `SQLITE_BUSY` while a connection has it open; `SQLITE_NOTFOUND` when
    /// there is no such database.
    pub fn delete(&self, name: impl AsRef<FileName>) -> Result<()> {
        let name = name.as_ref();
        let mut files = self.inner.files.lock();
        let Some(node) = files.get(name) else {
            return Err(not_found(name));
        };
        if node.kind != FileKind::MainDb {
            return Err(Error::new(
                codes::SQLITE_MISUSE,
                format!("delete({name:?}): not a database (SQLite manages its own journals)"),
            ));
        }
        let journal_and_wal = companions(name);
        let open = std::iter::once(node)
            .chain(
                journal_and_wal
                    .iter()
                    .filter_map(|c| files.get(c.as_file_name())),
            )
            .any(|n| n.is_open());
        if open {
            return Err(Error::busy(format!(
                "delete({name:?}): the database is open; close its connections first"
            )));
        }
        files.remove(name);
        for companion in &journal_and_wal {
            files.remove(companion);
        }
        Ok(())
    }

    fn database(&self, name: &FileName) -> Result<Arc<Node>> {
        match self.inner.files.lock().get(name) {
            Some(node) if node.kind == FileKind::MainDb => Ok(Arc::clone(node)),
            _ => Err(not_found(name)),
        }
    }
}

fn not_found(name: &FileName) -> Error {
    Error::new(
        codes::SQLITE_NOTFOUND,
        format!("no database named {name:?} in this memdb"),
    )
}

/// Refuses a private name for `op` (a load): a private database belongs
/// to the one connection that opens it.
fn shared_name_only(op: &str, name: &FileName) -> Result<()> {
    if is_shared(name) {
        return Ok(());
    }
    Err(Error::new(
        codes::SQLITE_MISUSE,
        format!(
            "{op}({name:?}): only a shared name (starting with '/') can be loaded; \
             a private name belongs to the one connection that opens it"
        ),
    ))
}

/// Accepts an empty image or one that starts like an SQLite database.
fn check_image(name: &FileName, image: &[u8]) -> Result<()> {
    if image.is_empty() {
        return Ok(());
    }
    let page_size = match image.get(16..18) {
        Some(&[0, 1]) => 65_536, // the header stores 65536 as 1 (big-endian)
        Some(&[hi, lo]) => u32::from(u16::from_be_bytes([hi, lo])),
        _ => 0,
    };
    if image.len() < 100 || &image[..16] != b"SQLite format 3\0" || !wal::valid_page_size(page_size)
    {
        return Err(Error::new(
            codes::SQLITE_NOTADB,
            format!(
                "load({name:?}): the {} bytes given are not an SQLite database image",
                image.len()
            ),
        ));
    }
    Ok(())
}

/// Runs `f` until it stops answering `SQLITE_BUSY` or [`EXPORT_WAIT`]
/// passes.
fn retry_busy(name: &FileName, mut f: impl FnMut() -> Result<()>) -> Result<()> {
    let deadline = Instant::now() + EXPORT_WAIT;
    let mut pause = Duration::from_micros(20);
    loop {
        match f() {
            Err(e) if e.code() == Some(codes::SQLITE_BUSY) => {
                if Instant::now() >= deadline {
                    return Err(Error::busy(format!(
                        "export({name:?}): a writer or checkpoint kept the database locked \
                         for {} s",
                        EXPORT_WAIT.as_secs()
                    )));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

impl Vfs for MemDb {
    type File = MemFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<MemFile> {
        let kind = opts.kind;
        let Some(path) = name.path() else {
            // A nameless temporary file: it lives in its handle only.
            let node = Node::new(kind, Store::default(), None);
            node.open.fetch_add(1, Ordering::SeqCst);
            return Ok(MemFile::new(node, opts, Cleanup::None, None));
        };
        let mut files = self.inner.files.lock();
        let node = match files.get(path) {
            Some(_) if opts.exclusive && opts.access == OpenAccess::Create => {
                return Err(Error::cant_open(format!(
                    "{path:?} already exists (exclusive create)"
                )));
            }
            Some(node) => Arc::clone(node),
            None if opts.access == OpenAccess::Create => {
                let acct = (kind == FileKind::MainDb).then(|| Arc::clone(&self.inner.acct));
                let node = Node::new(kind, Store::default(), acct);
                files.insert(path.to_owned(), Arc::clone(&node));
                node
            }
            None => {
                return Err(Error::cant_open(format!(
                    "no file named {path:?} in this memdb"
                )));
            }
        };
        // Counted under the map lock, so delete/load see it.
        node.open.fetch_add(1, Ordering::SeqCst);
        let wal_db = match kind {
            FileKind::Wal => name
                .database_name()
                .and_then(|db| files.get(db))
                .filter(|db| db.kind == FileKind::MainDb)
                .cloned(),
            _ => None,
        };
        drop(files);
        let owner = Arc::clone(&self.inner);
        let cleanup = if opts.delete_on_close {
            Cleanup::DeleteOnClose(owner, path.to_owned())
        } else if kind == FileKind::MainDb && !is_shared(path) {
            Cleanup::PrivateDatabase(owner, path.to_owned())
        } else {
            Cleanup::None
        };
        Ok(MemFile::new(node, opts, cleanup, wal_db))
    }

    fn delete(&self, path: &FileName, _sync_dir: bool) -> Result<()> {
        let mut files = self.inner.files.lock();
        match files.get(path) {
            None => Err(Error::from(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file named {path:?} in this memdb"),
            ))),
            Some(node) if node.kind == FileKind::MainDb && node.is_open() => Err(Error::busy(
                format!("database {path:?} is open; it cannot be deleted"),
            )),
            Some(_) => {
                files.remove(path);
                Ok(())
            }
        }
    }

    fn access(&self, path: &FileName, _check: AccessCheck) -> Result<bool> {
        // The hot-journal check of every read transaction, usually with no
        // journal anywhere: answered without the lock. (A journal created
        // concurrently is one this check could as well have preceded.)
        if is_journal_name(path) && self.inner.journals.load(Ordering::SeqCst) == 0 {
            return Ok(false);
        }
        Ok(self.inner.files.lock().contains_key(path))
    }

    /// Shared names (starting with `/`) stay as they are. Any other name
    /// gets a unique suffix (`app.db` → `app.db#private-7`): SQLite calls
    /// this once per database it opens and derives the journal and WAL
    /// names from the result, so each connection gets its own database,
    /// journal and WAL.
    fn full_pathname(&self, path: &FileName) -> Result<FileNameBuf> {
        if is_shared(path) {
            return Ok(path.to_owned());
        }
        let n = self.inner.next_private.fetch_add(1, Ordering::Relaxed);
        Ok(path.with_suffix(format!("{PRIVATE_MARK}{n}")))
    }
}

/// What happens to a file's name when its handle closes.
enum Cleanup {
    None,
    /// Remove the file (SQLITE_OPEN_DELETEONCLOSE with a name).
    DeleteOnClose(Arc<Inner>, FileNameBuf),
    /// A private database: when its last handle closes, remove it with its
    /// journal and WAL.
    PrivateDatabase(Arc<Inner>, FileNameBuf),
}

/// An open file of a [`MemDb`].
pub struct MemFile {
    node: Arc<Node>,
    lock: FileLock,
    kind: FileKind,
    read_only: bool,
    cleanup: Cleanup,
    /// For a WAL file: its database, whose budget frames are checked against.
    wal_db: Option<Arc<Node>>,
}

impl fmt::Debug for MemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemFile")
            .field("kind", &self.kind)
            .field("size", &self.node.len())
            .field("lock", &self.lock.level())
            .finish()
    }
}

impl MemFile {
    /// A handle on `node`, whose open count the caller has raised.
    fn new(
        node: Arc<Node>,
        opts: OpenOptions,
        cleanup: Cleanup,
        wal_db: Option<Arc<Node>>,
    ) -> MemFile {
        let lock = node.locks.connect();
        MemFile {
            node,
            lock,
            kind: opts.kind,
            read_only: !opts.access.writable(),
            cleanup,
            wal_db,
        }
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::readonly(format!(
                "{} was opened read-only",
                self.kind.name()
            )));
        }
        Ok(())
    }

    /// Growth of this file to `end` bytes, counted against the budget when
    /// this is a database file. Called with the store's write lock held.
    fn reserve_growth(&self, store: &Store, end: u64) -> Result<()> {
        if end <= store.len() {
            return Ok(());
        }
        if usize::try_from(end).is_err() {
            return Err(Error::full(format!(
                "{} of {end} bytes does not fit in memory",
                self.kind.name()
            )));
        }
        match &self.node.acct {
            Some(acct) => acct.reserve(end - store.len(), 0, &self.kind.name()),
            None => Ok(()),
        }
    }

    /// In WAL mode a database grows inside its WAL first: refuse the frame
    /// header of a page that would take the database past the budget.
    fn check_wal_frame(&self, buf: &[u8], offset: u64) -> Result<()> {
        let Some(db) = &self.wal_db else {
            return Ok(());
        };
        let Some(acct) = &db.acct else {
            return Ok(());
        };
        let Some(budget) = acct.budget else {
            return Ok(());
        };
        if buf.len() != wal::FRAME_HEADER || offset < wal::WAL_HEADER as u64 {
            return Ok(());
        }
        let mut header = [0u8; wal::WAL_HEADER];
        if self.node.store.read().read(&mut header, 0) < wal::WAL_HEADER {
            return Ok(());
        }
        let Some(page_size) = wal::header_page_size(&header) else {
            return Ok(());
        };
        let page_size = u64::from(page_size);
        if !(offset - wal::WAL_HEADER as u64).is_multiple_of(wal::FRAME_HEADER as u64 + page_size) {
            return Ok(());
        }
        let page_no = u64::from(wal::be32(buf));
        let needed = page_no * page_size;
        let current = db.len();
        if needed <= current {
            return Ok(());
        }
        let used = acct.used.load(Ordering::Acquire);
        let after = used.saturating_sub(current).saturating_add(needed);
        if after > budget {
            return Err(Error::full(format!(
                "memdb budget of {budget} bytes exhausted: {used} bytes in use, page \
                 {page_no} would make the database {needed} bytes"
            )));
        }
        Ok(())
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        let left = self
            .node
            .open
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        match &self.cleanup {
            Cleanup::None => {}
            Cleanup::DeleteOnClose(owner, name) => owner.forget(name, &self.node),
            Cleanup::PrivateDatabase(owner, name) => {
                if left == 0 {
                    owner.forget_database(name, &self.node);
                }
            }
        }
    }
}

impl File for MemFile {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        Ok(self.node.store.read().read(buf, offset))
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_writable()?;
        if self.kind == FileKind::Wal {
            self.check_wal_frame(buf, offset)?;
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| Error::full("write past the largest possible file"))?;
        let mut store = self.node.store.write();
        self.reserve_growth(&store, end)?;
        store.write(buf, offset);
        Ok(())
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        self.check_writable()?;
        let mut store = self.node.store.write();
        let len = store.len();
        if size > len {
            self.reserve_growth(&store, size)?;
        } else if let Some(acct) = &self.node.acct {
            acct.release(len - size);
        }
        store.truncate(size);
        Ok(())
    }

    fn sync(&mut self, _flags: SyncFlags) -> Result<()> {
        // Memory: a write is visible to every connection as soon as it
        // returns, and there is no later medium to flush to.
        Ok(())
    }

    fn size(&mut self) -> Result<u64> {
        Ok(self.node.len())
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        self.lock.lock(level)
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        self.lock.unlock(level)
    }

    fn check_reserved_lock(&mut self) -> Result<bool> {
        Ok(self.lock.check_reserved())
    }

    fn sector_size(&self) -> u32 {
        4096
    }

    /// `POWERSAFE_OVERWRITE | SAFE_APPEND`, never `ATOMIC`.
    ///
    /// * `POWERSAFE_OVERWRITE`: a write changes exactly the bytes it names
    ///   (memory has no sectors to tear and loses no power), so SQLite need
    ///   not pad WAL frames or journal headers to sector boundaries.
    /// * `SAFE_APPEND`: a file's size grows only together with the bytes
    ///   written (under the same lock), so a grown file never shows garbage
    ///   and SQLite may skip a sync of the journal header.
    /// * Not `ATOMIC`: each write is atomic for concurrent readers, but
    ///   claiming `SQLITE_IOCAP_ATOMIC` changes SQLite's journaling and
    ///   broke peers built with `SQLITE_ENABLE_ATOMIC_WRITE`; the gain in
    ///   memory is nil.
    fn device_characteristics(&self) -> DeviceCharacteristics {
        DeviceCharacteristics::NONE
            .with(DeviceCharacteristics::POWERSAFE_OVERWRITE)
            .with(DeviceCharacteristics::SAFE_APPEND)
    }

    fn shm(&self) -> ShmSupport {
        match (&self.node.shm, self.kind) {
            (Some(group), FileKind::MainDb) => ShmSupport::Group(Arc::clone(group)),
            _ => ShmSupport::None,
        }
    }
}
