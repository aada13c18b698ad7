//! Open files: main databases (snapshot isolation), named plain files
//! (journals, super-journals) and private scratch files (temp files).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use vfs_core::{
    Control, DeviceCharacteristics, Error, File, FileControl, LockLevel, PlainBytes, Pragma,
    Result, SyncFlags, codes,
};

use crate::Shared;
use crate::db::{Db, Version, refused_error};
use crate::pages::Pages;

/// `SQLITE_NOTICE_RECOVER_ROLLBACK` (`SQLITE_NOTICE | 2 << 8`), the code
/// SQLite logs a hot-journal rollback with.
const SQLITE_NOTICE_RECOVER_ROLLBACK: i32 = 27 | (2 << 8);

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// A file opened through [`Mvcc`](crate::Mvcc).
///
/// Main databases read the snapshot their connection took at its `SHARED`
/// lock; see the crate documentation for the exact rules.
pub struct MvccFile {
    inner: Inner,
}

enum Inner {
    Main(Box<MainFile>),
    /// Journals, super-journals (shared by name) and temp files.
    Plain(PlainBytes),
}

/// The in-progress write transaction of the writer.
struct WriteTxn {
    /// The version the transaction started from (the newest at the time).
    base: Arc<Version>,
    /// The private working image.
    pages: Pages,
    /// Chunks written since `base` (may repeat).
    dirty: Vec<usize>,
}

/// One connection's handle on a database.
struct MainFile {
    db: Arc<Db>,
    fs: Arc<Shared>,
    id: u64,
    level: LockLevel,
    /// The version read since `SHARED` was taken.
    snapshot: Option<Arc<Version>>,
    txn: Option<WriteTxn>,
    read_only: bool,
    /// A private database (one connection, gone when closed).
    private: bool,
}

impl MvccFile {
    pub(crate) fn main(db: Arc<Db>, fs: Arc<Shared>, read_only: bool, private: bool) -> MvccFile {
        MvccFile {
            inner: Inner::Main(Box::new(MainFile {
                db,
                fs,
                id: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
                level: LockLevel::None,
                snapshot: None,
                txn: None,
                read_only,
                private,
            })),
        }
    }

    pub(crate) fn named(data: Arc<Mutex<Vec<u8>>>) -> MvccFile {
        MvccFile {
            inner: Inner::Plain(PlainBytes::Shared(data)),
        }
    }

    pub(crate) fn scratch() -> MvccFile {
        MvccFile {
            inner: Inner::Plain(PlainBytes::private()),
        }
    }
}

impl MainFile {
    /// Runs `f` on the image this connection reads now: its working copy
    /// when writing, its snapshot when reading, the newest version when it
    /// holds no lock (SQLite reads the header before locking).
    fn with_view<R>(&self, f: impl FnOnce(&Pages) -> R) -> R {
        if let Some(txn) = &self.txn {
            f(&txn.pages)
        } else if let Some(snap) = &self.snapshot {
            f(&snap.pages)
        } else {
            f(&self.db.committed().pages)
        }
    }

    fn txn_mut(&mut self, what: &str) -> Result<&mut WriteTxn> {
        if self.read_only {
            return Err(Error::readonly(format!(
                "database {:?} was opened read-only",
                self.db.name
            )));
        }
        let name = &self.db.name;
        self.txn.as_mut().ok_or_else(|| {
            Error::io(format!(
                "{what} of database {name:?} without a RESERVED lock (nolock=1 is not supported)"
            ))
        })
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        if level <= self.level {
            return Ok(());
        }
        if level == LockLevel::Shared {
            self.snapshot = Some(self.db.committed());
            self.level = LockLevel::Shared;
            return Ok(());
        }
        // RESERVED, PENDING or EXCLUSIVE: become the writer. EXCLUSIVE never
        // waits for readers: they keep reading their snapshots.
        let Some(snapshot) = self.snapshot.clone() else {
            return Err(Error::new(
                codes::SQLITE_IOERR_LOCK,
                format!("{level:?} requested without SHARED"),
            ));
        };
        if self.txn.is_none() {
            if self.read_only {
                return Err(Error::readonly(format!(
                    "database {:?} was opened read-only",
                    self.db.name
                )));
            }
            self.db
                .begin_write(self.id, snapshot.seq)
                .map_err(|why| refused_error(&self.db.name, why))?;
            self.txn = Some(WriteTxn {
                pages: snapshot.pages.clone(),
                base: snapshot,
                dirty: Vec::new(),
            });
        }
        self.level = level;
        Ok(())
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        if level >= self.level {
            return Ok(());
        }
        if let Some(txn) = self.txn.take()
            && let Some(published) = self.finish_write(txn)
        {
            self.snapshot = Some(published);
        }
        if level == LockLevel::None {
            self.snapshot = None;
        }
        self.level = level.min(LockLevel::Shared);
        Ok(())
    }

    /// Ends the write transaction: publishes its final image when it
    /// committed, drops it when it rolled back. Returns the newly published
    /// version, if any.
    fn finish_write(&mut self, mut txn: WriteTxn) -> Option<Arc<Version>> {
        let journal = self.db.name.with_suffix("-journal");
        // A deleted database cannot have opened a journal (SQLite checks
        // HAS_MOVED first): a file by that name belongs to its successor.
        let owns_journal = self.private || self.fs.is_current(&self.db);
        if owns_journal && self.fs.journal_is_hot(&journal) {
            // SQLite dropped its lock with a live journal (an I/O error in
            // mid-commit): the transaction did not finish. Rolling a hot
            // journal back would restore `base`, which is still the newest
            // version, so drop the working image and the journal.
            self.fs.remove_file(&journal);
            vfs_core::log(
                SQLITE_NOTICE_RECOVER_ROLLBACK,
                &format!(
                    "vfs-mvcc: {:?}: unfinished transaction discarded",
                    self.db.name
                ),
            );
            self.db.end_write(self.id, None);
            return None;
        }
        let publish = match (txn.base.pages.change_counter(), txn.pages.change_counter()) {
            // Rollback-journal mode bumps the change counter on every commit
            // and a rollback restores page 1: the counter tells them apart
            // (a rollback may leave reused free pages with other bytes).
            (Some(before), Some(after)) => before != after,
            // Not (or not yet) an SQLite database: compare what was written.
            _ => txn.pages.differs_from(&txn.base.pages, &mut txn.dirty),
        };
        self.db.end_write(self.id, publish.then_some(txn.pages))
    }
}

impl Drop for MainFile {
    fn drop(&mut self) {
        if self.txn.take().is_some() {
            // Closed in the middle of a write: nothing is published.
            self.db.end_write(self.id, None);
        }
        if self.private {
            self.fs.remove_file(&self.db.name.with_suffix("-journal"));
        }
    }
}

/// `PRAGMA`s sent to a main database before SQLite runs them.
fn pragma(m: &MainFile, p: &Pragma<'_>) -> Result<()> {
    let wal = p.name().eq_ignore_ascii_case("journal_mode")
        && p.value()
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("wal"));
    if wal {
        // Without shared memory SQLite would ignore the request, except in
        // locking_mode=EXCLUSIVE, where it would turn the file into a WAL
        // database other connections cannot open. Say no clearly.
        return Err(Error::new(
            codes::SQLITE_ERROR,
            format!(
                "vfs-mvcc: journal_mode=WAL is not available for {:?} (no shared memory); \
                 readers never block in rollback-journal mode, keep DELETE, TRUNCATE, \
                 PERSIST, MEMORY or OFF",
                m.db.name
            ),
        ));
    }
    Err(Error::not_found())
}

impl File for MvccFile {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        Ok(match &mut self.inner {
            Inner::Main(m) => m.with_view(|p| p.read(buf, offset)),
            Inner::Plain(bytes) => bytes.read_at(buf, offset),
        })
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        match &mut self.inner {
            Inner::Main(m) => {
                let txn = m.txn_mut("write")?;
                txn.pages.write(buf, offset, &mut txn.dirty)
            }
            Inner::Plain(bytes) => bytes.write_at(buf, offset),
        }
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        match &mut self.inner {
            Inner::Main(m) => {
                let txn = m.txn_mut("truncate")?;
                txn.pages.truncate(size, &mut txn.dirty)
            }
            Inner::Plain(bytes) => bytes.truncate(size),
        }
    }

    fn sync(&mut self, _flags: SyncFlags) -> Result<()> {
        // Memory is as durable as it gets; commits publish at unlock, not
        // here (synchronous=OFF never calls xSync).
        Ok(())
    }

    fn size(&mut self) -> Result<u64> {
        Ok(match &mut self.inner {
            Inner::Main(m) => m.with_view(Pages::len),
            Inner::Plain(bytes) => bytes.len(),
        })
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        match &mut self.inner {
            Inner::Main(m) => m.lock(level),
            // Journals and temp files are never locked by SQLite; accept.
            _ => Ok(()),
        }
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        match &mut self.inner {
            Inner::Main(m) => m.unlock(level),
            _ => Ok(()),
        }
    }

    fn check_reserved_lock(&mut self) -> Result<bool> {
        Ok(match &self.inner {
            Inner::Main(m) => m.db.has_writer(),
            _ => false,
        })
    }

    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        let Inner::Main(m) = &self.inner else {
            return Err(Error::not_found());
        };
        match ctl.control() {
            Control::HasMoved(moved) => {
                // A deleted shared database lives on for its connections,
                // but SQLite then refuses to open a journal for it
                // (SQLITE_READONLY_DBMOVED): its journal name now belongs to
                // the database that may be created under the same name.
                *moved = i32::from(!m.private && !m.fs.is_current(&m.db));
                Ok(())
            }
            Control::Pragma(p) => pragma(m, &p),
            _ => Err(Error::not_found()),
        }
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        // Writes to memory cannot tear. Never ATOMIC (see DESIGN.md), and
        // not UNDELETABLE_WHEN_OPEN: SQLite must close the journal before
        // it unlocks, which the hot-journal check in `finish_write` relies on.
        DeviceCharacteristics::NONE.with(DeviceCharacteristics::POWERSAFE_OVERWRITE)
    }

    fn is_read_only(&self) -> bool {
        false
    }
}
