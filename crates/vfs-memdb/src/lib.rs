//! # vfs-memdb
//!
//! An in-memory SQLite VFS that many connections and threads of one process
//! share, with real locking and WAL mode, built on the safe traits of
//! [`vfs_core`].
//!
//! * **Store**: every file is a list of 4 KiB pages under one `RwLock`;
//!   reads take the read lock and copy, writes take the write lock. Any
//!   offset and length works (the 100-byte header read, journal records,
//!   WAL frames). Reads and in-place writes do not allocate. A file's size
//!   is also kept in an atomic, so `xFileSize` takes no lock; the blocks of
//!   a deleted rollback journal (up to 64) serve the next journal, so a
//!   write transaction does not allocate its journal's pages each time.
//! * **Memory-mapped reads**: with `PRAGMA mmap_size` SQLite reads database
//!   pages in place; a page lent to it is never changed or freed until it
//!   gives it back (a write goes to a copy), so nothing is refused meanwhile.
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

mod file;
mod header;
mod image;
mod names;
mod node;
mod store;
mod vfs;
mod wal;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use vfs_core::{Error, FileKind, FileName, FileNameBuf, Result, codes};

pub use file::MemFile;
use names::{Companions, Names};
use node::{Accounting, Node};

/// The state every clone of a [`MemDb`] shares.
struct Inner {
    files: Mutex<Names>,
    /// Journals and WAL files in `files` (kept by `Names`), read without
    /// the lock.
    companions: Arc<Companions>,
    acct: Arc<Accounting>,
    next_private: AtomicU64,
    /// Storage blocks of deleted rollback journals, for the next journal
    /// created (see [`Inner::recycle`]).
    spare_journal_pages: Mutex<Vec<store::Page>>,
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
    /// partly used 4 KiB page per file, up to 256 KiB of blocks kept from
    /// deleted rollback journals for the next one, plus bookkeeping) comes
    /// on top.
    pub fn with_budget(bytes: u64) -> MemDb {
        MemDb::build(Some(bytes))
    }

    fn build(budget: Option<u64>) -> MemDb {
        let companions = Arc::new(Companions::default());
        MemDb {
            inner: Arc::new(Inner {
                files: Mutex::new(Names::new(Arc::clone(&companions))),
                companions,
                acct: Arc::new(Accounting {
                    budget,
                    used: AtomicU64::new(0),
                }),
                next_private: AtomicU64::new(1),
                spare_journal_pages: Mutex::new(Vec::new()),
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
        Some(node.read().to_vec())
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
