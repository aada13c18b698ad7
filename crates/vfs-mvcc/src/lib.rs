//! # vfs-mvcc
//!
//! An in-memory SQLite VFS whose readers never wait and never see a
//! half-made transaction, without WAL: every connection reads a private,
//! immutable snapshot of the database while one writer prepares the next
//! version on the side. Whole databases can be snapshotted, restored and
//! forked in constant time, so every test can start from the same fixture
//! for free.
//!
//! Pages live in a persistent (structurally shared) vector of `Arc<[u8]>`
//! chunks: a snapshot is one pointer clone, and a write transaction copies
//! only the pages it changes (plus a few tree nodes on their paths).
//!
//! ## Names
//!
//! * A name starting with `/` (`file:/app.db?vfs=mvcc`) is a **shared**
//!   database: every connection of the process that opens it through the same
//!   [`Mvcc`] sees the same database, which lives until it is deleted
//!   ([`Mvcc::delete`] or SQLite's `xDelete`) or the [`Mvcc`] and every
//!   connection on it are dropped. Only shared names are addressable by
//!   [`Mvcc::snapshot`], [`Mvcc::export`] and the rest of the API.
//! * Any other name is **private**: each open creates a new, empty database
//!   that only that connection sees and that disappears when it closes (as
//!   SQLite's own `memdb` does). Its full path name gets a `#private-N`
//!   suffix so that its journal cannot collide with another connection's.
//! * Temporary files (temp databases, statement and temp journals, sorter
//!   files) are private scratch memory of the connection that opened them.
//!
//! ## Isolation guarantees
//!
//! For each shared database, through the lock calls SQLite makes in
//! rollback-journal mode (any `journal_mode` but `WAL`):
//!
//! 1. **Read snapshot.** When a connection acquires `SHARED` (at the first
//!    read of a transaction: the start of an autocommit statement, or the
//!    first statement after `BEGIN`), it takes the newest published version.
//!    Every read until it releases its lock (at `COMMIT`/`ROLLBACK`, or when
//!    the autocommit statement ends) returns exactly that version: commits
//!    published in the meantime are invisible to it, and so is any
//!    unfinished write.
//! 2. **Readers never wait and never fail.** Acquiring `SHARED` always
//!    succeeds at once (no `SQLITE_BUSY`, whatever the writer is doing), and
//!    the writer's `EXCLUSIVE` lock does not wait for readers either.
//! 3. **One writer.** `RESERVED` (the first write of a transaction) is
//!    granted to one connection at a time; another connection asking for it
//!    gets `SQLITE_BUSY` (its busy handler, if any, retries).
//! 4. **No lost updates.** A connection whose snapshot is no longer the
//!    newest version (another commit was published after it took its
//!    snapshot) gets `SQLITE_BUSY_SNAPSHOT` (extended code 517) when it asks
//!    for `RESERVED`. Waiting cannot help, so it must end its transaction
//!    (`ROLLBACK`) and retry; its next transaction reads the newest version.
//!    An autocommit statement takes its snapshot and `RESERVED` back to back
//!    and is retried by the busy handler in the rare case a commit slips in
//!    between.
//! 5. **Atomic publication.** A writer's changes are private until it drops
//!    its lock from `RESERVED`/`EXCLUSIVE` to `SHARED` or `NONE`, which SQLite
//!    does at the end of `COMMIT`. Then its final image becomes the newest
//!    version in one step: readers see all of the transaction or none of it.
//!    `xSync` plays no part, so `synchronous=OFF` commits are published like
//!    any other.
//! 6. **Rolled-back transactions publish nothing.** SQLite rolls back by
//!    writing the original pages from the journal back, then unlocks; the
//!    database's file change counter (page 1, bytes 24..28), which SQLite
//!    bumps on every commit in rollback mode, tells a commit from a
//!    rollback, and a rolled-back transaction publishes no version (so it
//!    makes no one's snapshot stale). The same holds when SQLite unlocks
//!    after an I/O error with its journal still live (it is dropped, as a
//!    hot-journal rollback would do).
//! 7. **Caches stay coherent.** A new version always carries a new file
//!    change counter, so a connection starting a transaction on a newer
//!    version discards its page cache, as SQLite does after another process
//!    commits. [`Mvcc::restore`] and [`Mvcc::load`] stamp a counter above the
//!    current one for the same reason.
//!
//! Together these make every history **serializable**, like SQLite's WAL
//! mode: read-only transactions are ordered at the version they read, write
//! transactions at their commit, and a writer always wrote on top of the
//! newest version. The guarantees are per database: a transaction spanning
//! several `ATTACH`ed databases publishes each at its own unlock.
//!
//! What it does not do:
//!
//! * Durability beyond the process: everything is in memory.
//! * `journal_mode=WAL`: files have no shared memory (`ShmSupport::None`),
//!   and `PRAGMA journal_mode=WAL` on a main database fails with
//!   `SQLITE_ERROR` and a message naming the modes that work (SQLite would
//!   otherwise ignore it, except in `locking_mode=EXCLUSIVE`, where it would
//!   leave a WAL-format file other connections cannot open). Opening a WAL
//!   file is refused with `SQLITE_CANTOPEN` as a backstop. None is needed:
//!   readers already never block.
//! * A deleted shared database stays readable by the connections that had
//!   it open, but SQLite refuses to write to it
//!   (`SQLITE_READONLY_DBMOVED`), as for an unlinked file: its journal name
//!   now belongs to any database created under the same name.
//! * `locking_mode=EXCLUSIVE` keeps the lock, so such a connection pins its
//!   snapshot and publishes its commits only when it releases the lock
//!   (closing, or going back to `NORMAL`).
//! * Journals are shared by name like real files, but `xAccess` never
//!   reports a `-journal` file as existing, so no connection ever treats
//!   another's journal as hot (and never takes the `EXCLUSIVE` lock a
//!   hot-journal rollback needs, which would break rule 2).
//!
//! ## Example
//!
//! ```
//! use rusqlite::Connection;
//! use vfs_mvcc::Mvcc;
//!
//! let mvcc = Mvcc::new();
//! let _reg = vfs_core::register("mvcc-doc", mvcc.clone(), false).unwrap();
//!
//! let writer = Connection::open("file:/bank.db?vfs=mvcc-doc").unwrap();
//! writer.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);").unwrap();
//!
//! // A reader inside a transaction keeps reading its snapshot...
//! let reader = Connection::open("file:/bank.db?vfs=mvcc-doc").unwrap();
//! reader.execute_batch("BEGIN").unwrap();
//! let count = |c: &Connection| c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap();
//! assert_eq!(count(&reader), 1);
//!
//! // ...while the writer commits, without waiting for it.
//! writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
//! assert_eq!(count(&reader), 1);
//!
//! // A stale snapshot cannot write: SQLITE_BUSY_SNAPSHOT.
//! let err = reader.execute("INSERT INTO t VALUES (3)", []).unwrap_err();
//! assert_eq!(err.sqlite_error().unwrap().extended_code, 517);
//! reader.execute_batch("ROLLBACK").unwrap();
//! assert_eq!(count(&reader), 2); // its next transaction sees the newest data
//!
//! // O(1) snapshots, restores and forks.
//! let snap = mvcc.snapshot("/bank.db").unwrap();
//! writer.execute("DELETE FROM t", []).unwrap();
//! mvcc.fork(&snap, "/copy.db").unwrap();
//! mvcc.restore("/bank.db", &snap).unwrap();
//! assert_eq!(count(&writer), 2);
//! let copy = Connection::open("file:/copy.db?vfs=mvcc-doc").unwrap();
//! assert_eq!(count(&copy), 2);
//! ```
#![forbid(unsafe_code)]

mod db;
mod file;
mod pages;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use vfs_core::{
    AccessCheck, Error, FileKind, FileName, FileNameBuf, OpenAccess, OpenName, OpenOptions, Result,
    Vfs, codes,
};

use crate::db::{Db, Version};
use crate::pages::Pages;

pub use crate::file::MvccFile;

/// The in-memory snapshot-isolation VFS.
///
/// Cloning is cheap (one `Arc`) and every clone sees the same databases:
/// keep one to call [`snapshot`](Mvcc::snapshot) and friends, and hand
/// another to [`vfs_core::register`].
///
/// Databases are per instance: two `Mvcc::new()` registered under two names
/// have separate `/name` namespaces.
#[derive(Clone, Default)]
pub struct Mvcc {
    shared: Arc<Shared>,
}

/// The state every clone of an [`Mvcc`] and every open file share.
#[derive(Default)]
pub(crate) struct Shared {
    /// Shared databases by name.
    dbs: Mutex<HashMap<FileNameBuf, Arc<Db>>>,
    /// Named plain files: journals and super-journals.
    files: Mutex<HashMap<FileNameBuf, Arc<Mutex<Vec<u8>>>>>,
    /// Numbers private databases' full path names.
    next_private: AtomicU64,
}

impl Shared {
    /// Whether `name` is a journal SQLite would roll back: non-empty with a
    /// non-zero first byte (SQLite's own test). Committed and rolled-back
    /// transactions delete, truncate or zero their journal before unlocking.
    pub(crate) fn journal_is_hot(&self, name: &FileName) -> bool {
        let file = self.files.lock().get(name).cloned();
        file.is_some_and(|f| f.lock().first().is_some_and(|&b| b != 0))
    }

    /// Whether `db` is still the database registered under its name.
    pub(crate) fn is_current(&self, db: &Arc<Db>) -> bool {
        self.dbs
            .lock()
            .get(&db.name)
            .is_some_and(|d| Arc::ptr_eq(d, db))
    }

    pub(crate) fn remove_file(&self, name: &FileName) {
        self.files.lock().remove(name);
    }
}

/// An immutable image of one database at one published version.
///
/// Taking one is O(1) (a pointer clone), whatever the database's size, and
/// it shares every page with the database until the database changes them.
/// It stays valid (and unchanged) after the database moves on, is restored
/// or is deleted. Clones are cheap.
#[derive(Clone)]
pub struct Snapshot {
    version: Arc<Version>,
}

impl Snapshot {
    /// The size of the database file in bytes.
    pub fn len(&self) -> u64 {
        self.version.pages.len()
    }

    /// Whether the database was empty (never written).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The version number the database had when the snapshot was taken:
    /// how many versions (commits, restores, loads) it had published since
    /// it was created. A rolled-back transaction publishes none.
    pub fn version(&self) -> u64 {
        self.version.seq
    }

    /// The database file's bytes (a copy).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.version.pages.to_vec()
    }

    #[cfg(test)]
    pub(crate) fn pages(&self) -> &Pages {
        &self.version.pages
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version.seq)
            .field("len", &self.len())
            .finish()
    }
}

impl fmt::Debug for Mvcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mvcc")
            .field("databases", &self.names())
            .finish()
    }
}

fn check_name(name: &FileName) -> Result<()> {
    if name.len() < 2 || !name.starts_with("/") || name.as_bytes().contains(&0) {
        return Err(Error::new(
            codes::SQLITE_MISUSE,
            format!(
                "{name:?} is not a shared database name: the API addresses names that start \
                 with '/' (other names are private to one connection)"
            ),
        ));
    }
    Ok(())
}

fn no_such_db(name: &FileName) -> Error {
    Error::cant_open(format!("no database named {name:?}"))
}

impl Mvcc {
    /// A new instance with no databases.
    pub fn new() -> Mvcc {
        Mvcc::default()
    }

    fn db(&self, name: &FileName) -> Result<Arc<Db>> {
        check_name(name)?;
        self.shared
            .dbs
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| no_such_db(name))
    }

    /// Replaces (or creates) `name` with `pages` as its next version.
    fn replace(&self, name: &FileName, pages: Pages) -> Result<()> {
        check_name(name)?;
        let existing = {
            let mut dbs = self.shared.dbs.lock();
            match dbs.get(name) {
                Some(db) => Arc::clone(db),
                None => {
                    dbs.insert(name.to_owned(), Db::new(name.to_owned(), pages));
                    return Ok(());
                }
            }
        };
        existing.replace(pages).map(|_| ())
    }

    /// The newest published version of the shared database `name`, in O(1).
    ///
    /// A write transaction in progress is not part of it.
    /// Errors: `SQLITE_MISUSE` for a name not starting with `/`,
    /// `SQLITE_CANTOPEN` when no such database exists.
    pub fn snapshot(&self, name: impl AsRef<FileName>) -> Result<Snapshot> {
        let name = name.as_ref();
        Ok(Snapshot {
            version: self.db(name)?.committed(),
        })
    }

    /// Publishes `snapshot`'s contents as the next version of `name`
    /// (creating it if needed), in O(1).
    ///
    /// Connections see it from their next transaction; readers inside a
    /// transaction keep their snapshot (and get `SQLITE_BUSY_SNAPSHOT` if
    /// they then try to write). The restored image gets a file change
    /// counter above the database's current one (bytes 24..28 and, when it
    /// matched them, 92..96 of page 1), so every connection's page cache
    /// notices the change; nothing else differs from the snapshot.
    ///
    /// Errors: `SQLITE_BUSY` while a connection holds a write transaction on
    /// `name`; `SQLITE_MISUSE` for a non-shared name.
    pub fn restore(&self, name: impl AsRef<FileName>, snapshot: &Snapshot) -> Result<()> {
        let name = name.as_ref();
        self.replace(name, snapshot.version.pages.clone())
    }

    /// Creates the shared database `new_name` with `snapshot`'s contents, in
    /// O(1). The two databases then diverge independently.
    ///
    /// Errors: `SQLITE_CANTOPEN` when `new_name` exists (use
    /// [`restore`](Mvcc::restore) to replace a database); `SQLITE_MISUSE`
    /// for a non-shared name.
    pub fn fork(&self, snapshot: &Snapshot, new_name: impl AsRef<FileName>) -> Result<()> {
        let new_name = new_name.as_ref();
        check_name(new_name)?;
        let mut dbs = self.shared.dbs.lock();
        if dbs.contains_key(new_name) {
            return Err(Error::cant_open(format!(
                "database {new_name:?} already exists"
            )));
        }
        dbs.insert(
            new_name.to_owned(),
            Db::new(new_name.to_owned(), snapshot.version.pages.clone()),
        );
        Ok(())
    }

    /// Creates `name` from a database file's bytes, or publishes them as its
    /// next version when it exists (as [`restore`](Mvcc::restore) does).
    ///
    /// An image in WAL format (header bytes 18–19 = 2) is switched to
    /// rollback-journal format, as `PRAGMA journal_mode=DELETE` would; it
    /// must be complete (checkpointed). The bytes are not otherwise checked:
    /// SQLite reports a bad image (`SQLITE_NOTADB`, `SQLITE_CORRUPT`) when a
    /// connection reads it.
    pub fn load(&self, name: impl AsRef<FileName>, bytes: &[u8]) -> Result<()> {
        let name = name.as_ref();
        let mut pages = Pages::from_bytes(bytes)?;
        pages.set_rollback_format()?;
        self.replace(name, pages)
    }

    /// The bytes of the newest published version of `name`: a database file
    /// any SQLite can open.
    pub fn export(&self, name: impl AsRef<FileName>) -> Result<Vec<u8>> {
        Ok(self.snapshot(name)?.to_bytes())
    }

    /// Deletes the shared database `name` and its journal. As with an
    /// unlinked file, open connections keep reading the database they opened,
    /// but SQLite refuses to start a write transaction on it
    /// (`SQLITE_READONLY_DBMOVED`, except with `journal_mode=MEMORY` or
    /// `OFF`, which need no journal file); a later open of `name` creates a
    /// new database.
    pub fn delete(&self, name: impl AsRef<FileName>) -> Result<()> {
        let name = name.as_ref();
        check_name(name)?;
        if self.shared.dbs.lock().remove(name).is_none() {
            return Err(no_such_db(name));
        }
        self.shared.remove_file(&name.with_suffix("-journal"));
        Ok(())
    }

    /// Whether the shared database `name` exists.
    pub fn exists(&self, name: impl AsRef<FileName>) -> bool {
        self.shared.dbs.lock().contains_key(name.as_ref())
    }

    /// The names of the shared databases, sorted.
    pub fn names(&self) -> Vec<FileNameBuf> {
        let mut names: Vec<FileNameBuf> = self.shared.dbs.lock().keys().cloned().collect();
        names.sort();
        names
    }

    fn open_shared_db(&self, path: &FileName, access: OpenAccess) -> Result<Arc<Db>> {
        let mut dbs = self.shared.dbs.lock();
        if let Some(db) = dbs.get(path) {
            return Ok(Arc::clone(db));
        }
        if access != OpenAccess::Create {
            return Err(no_such_db(path));
        }
        let db = Db::new(path.to_owned(), Pages::new());
        dbs.insert(path.to_owned(), Arc::clone(&db));
        Ok(db)
    }

    fn open_named(&self, path: &FileName, opts: OpenOptions) -> Result<Arc<Mutex<Vec<u8>>>> {
        let mut files = self.shared.files.lock();
        match files.get(path) {
            Some(_) if opts.exclusive => Err(Error::cant_open(format!("{path:?} already exists"))),
            Some(f) => Ok(Arc::clone(f)),
            None if opts.access == OpenAccess::Create => {
                let f = Arc::new(Mutex::new(Vec::new()));
                files.insert(path.to_owned(), Arc::clone(&f));
                Ok(f)
            }
            None => Err(Error::cant_open(format!("no file named {path:?}"))),
        }
    }
}

impl Vfs for Mvcc {
    type File = MvccFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<MvccFile> {
        match (opts.kind, name.path()) {
            (FileKind::MainDb, Some(path)) if path.starts_with("/") => {
                let db = self.open_shared_db(path, opts.access)?;
                Ok(MvccFile::main(
                    db,
                    Arc::clone(&self.shared),
                    !opts.access.writable(),
                    false,
                ))
            }
            (FileKind::MainDb, Some(path)) => Ok(MvccFile::main(
                Db::new(path.to_owned(), Pages::new()),
                Arc::clone(&self.shared),
                !opts.access.writable(),
                true,
            )),
            (FileKind::Wal, _) => Err(Error::cant_open(
                "vfs-mvcc has no WAL (no shared memory): readers never block in its \
                 rollback-journal mode, keep journal_mode=DELETE/TRUNCATE/PERSIST/MEMORY",
            )),
            (FileKind::MainJournal | FileKind::SuperJournal, Some(path)) => {
                Ok(MvccFile::named(self.open_named(path, opts)?))
            }
            _ => Ok(MvccFile::scratch()),
        }
    }

    fn delete(&self, path: &FileName, _sync_dir: bool) -> Result<()> {
        if self.shared.dbs.lock().remove(path).is_some()
            || self.shared.files.lock().remove(path).is_some()
        {
            return Ok(());
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no file named {path:?}"),
        )
        .into())
    }

    fn access(&self, path: &FileName, _check: AccessCheck) -> Result<bool> {
        // SQLite asks about the journal and the WAL at the start of every
        // read transaction: answer those without taking any lock.
        if path.ends_with("-journal") {
            // Never hot: see "What it does not do" in the crate docs.
            return Ok(false);
        }
        if path.ends_with("-wal") {
            // WAL files are never created (see `open`).
            return Ok(false);
        }
        Ok(
            self.shared.dbs.lock().contains_key(path)
                || self.shared.files.lock().contains_key(path),
        )
    }

    fn full_pathname(&self, path: &FileName) -> Result<FileNameBuf> {
        if path.starts_with("/") {
            return Ok(path.to_owned());
        }
        let n = self.shared.next_private.fetch_add(1, Ordering::Relaxed);
        Ok(path.with_suffix(format!("#private-{n}")))
    }
}

#[cfg(test)]
mod tests;
