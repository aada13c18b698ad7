//! Open files: main databases (snapshot reads, local write sets published
//! at the commit point), journals (named, in memory) and private scratch
//! files.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use vfs_core::{
    Control, DeviceCharacteristics, Error, File, FileControl, LockLevel, PlainBytes, Pragma,
    Result, SyncFlags, codes,
};

use crate::Shared;
use crate::db::{Db, WriteRefused};
use crate::lease;
use crate::params::Compaction;
use crate::prefetch::{self, ReadAhead};
use crate::publish::Published;
use crate::txn::WriteSet;
use crate::version::Version;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// A file opened through [`ObjectVfs`](crate::ObjectVfs).
pub struct ObjectFile {
    inner: Inner,
}

enum Inner {
    Main(Box<MainFile>),
    /// Journals, super-journals (shared by name) and temp files.
    Plain(PlainBytes),
}

/// A write transaction: its pages, and what became of it.
struct Txn {
    writes: WriteSet,
    state: TxnState,
}

enum TxnState {
    /// Gathering pages.
    Open,
    /// Published as this version; later writes (there should be none) would
    /// start on top of it.
    Published(Arc<Version>),
    /// Lost its race or failed: it publishes nothing, whatever SQLite does
    /// next (it rolls back).
    Over,
}

/// One connection's handle on a main database.
struct MainFile {
    db: Arc<Db>,
    fs: Arc<Shared>,
    id: u64,
    level: LockLevel,
    /// The state read since SHARED was taken.
    snapshot: Option<Arc<Version>>,
    txn: Option<Txn>,
    read_only: bool,
    poll: Duration,
    /// The writer lease's TTL, if this connection takes one.
    lease: Option<Duration>,
    /// Scan detection, when read-ahead is on.
    read_ahead: Option<ReadAhead>,
    /// Opened at a past version (`lsn=`/`asof=`): every read transaction
    /// reads it, and it never looks for newer commits.
    pinned: Option<Arc<Version>>,
    /// Opened with `sync=async`: COMMIT returns once the transaction is
    /// queued (other connections of a database with a queue queue too, and
    /// wait for the upload).
    async_commit: bool,
    /// The compaction policy and GC window of this connection (URI
    /// `compact_every=`, `retention=`).
    compaction: Compaction,
}

impl ObjectFile {
    pub(crate) fn main(
        db: Arc<Db>,
        fs: Arc<Shared>,
        read_only: bool,
        poll: Duration,
        lease: Option<Duration>,
        prefetch: bool,
        async_commit: bool,
    ) -> ObjectFile {
        ObjectFile {
            inner: Inner::Main(Box::new(MainFile {
                db,
                id: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
                level: LockLevel::None,
                snapshot: None,
                txn: None,
                read_only,
                poll,
                lease,
                read_ahead: prefetch.then(ReadAhead::default),
                pinned: None,
                async_commit,
                compaction: Compaction {
                    retention: fs.retention,
                    every: fs.compact_every,
                    group_pages: fs.snapshot_group_pages,
                },
                fs,
            })),
        }
    }

    /// This connection with its own compaction policy and GC window.
    pub(crate) fn with_compaction(mut self, compaction: Compaction) -> ObjectFile {
        if let Inner::Main(m) = &mut self.inner {
            m.compaction = compaction;
        }
        self
    }

    /// A read-only connection to `version`, a past version of `db`.
    pub(crate) fn pinned(db: Arc<Db>, fs: Arc<Shared>, version: Arc<Version>) -> ObjectFile {
        let prefetch = fs.prefetch;
        let mut f = ObjectFile::main(db, fs, true, Duration::ZERO, None, prefetch, false);
        if let Inner::Main(m) = &mut f.inner {
            m.pinned = Some(version);
        }
        f
    }

    pub(crate) fn named(data: Arc<Mutex<Vec<u8>>>) -> ObjectFile {
        ObjectFile {
            inner: Inner::Plain(PlainBytes::Shared(data)),
        }
    }

    pub(crate) fn scratch() -> ObjectFile {
        ObjectFile {
            inner: Inner::Plain(PlainBytes::private()),
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MainFile {
    /// The state this connection reads now: its snapshot, or the newest
    /// known state when it holds no lock (SQLite reads the header before
    /// locking).
    fn view(&self) -> Arc<Version> {
        match &self.snapshot {
            Some(s) => Arc::clone(s),
            None => self.unlocked_view(),
        }
    }

    /// What it reads without a lock: its pinned version, or the head.
    fn unlocked_view(&self) -> Arc<Version> {
        match &self.pinned {
            Some(p) => Arc::clone(p),
            None => self.db.head(),
        }
    }

    /// The refusal of a write to a read-only connection, with its reason.
    fn read_only_error(&self) -> Error {
        match &self.pinned {
            Some(v) => Error::readonly(format!(
                "vfs-object: database {:?} is open at LSN {} (lsn= or asof=), a past version, \
                 which is read-only",
                self.db.name, v.lsn
            )),
            None => Error::readonly(format!(
                "vfs-object: database {:?} was opened read-only",
                self.db.name
            )),
        }
    }

    /// Reads chunks of `version` through the cache.
    fn base_reader<'a>(
        db: &'a Db,
        fs: &'a Shared,
        version: &'a Version,
    ) -> impl FnMut(u64) -> Result<Option<Arc<[u8]>>> + 'a {
        move |chunk| {
            if chunk.saturating_mul(u64::from(version.chunk_size)) >= version.size {
                return Ok(None);
            }
            match version.page(chunk) {
                None => Ok(None),
                Some(page) => db.read_chunk(&fs.ctx, chunk, page).map(Some),
            }
        }
    }

    fn read(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if let Some(txn) = &self.txn {
            let base = Arc::clone(&txn.writes.base);
            let mut reader = Self::base_reader(&self.db, &self.fs, &base);
            return txn.writes.read(buf, offset, &mut reader);
        }
        // Borrowed field by field: no reference count moves on a warm read.
        let unlocked;
        let version: &Version = match &self.snapshot {
            Some(v) => v,
            None => {
                unlocked = self.unlocked_view();
                &unlocked
            }
        };
        read_version(
            &self.db,
            &self.fs,
            version,
            buf,
            offset,
            self.read_ahead.as_mut(),
        )
    }

    fn txn_mut(&mut self, what: &str) -> Result<&mut Txn> {
        if self.read_only {
            return Err(self.read_only_error());
        }
        let name = &self.db.name;
        let txn = self.txn.as_mut().ok_or_else(|| {
            Error::io(format!(
                "vfs-object: {what} of database {name:?} without a RESERVED lock"
            ))
        })?;
        if let TxnState::Published(v) = &txn.state {
            // Writes after the commit point (SQLite makes none): they start a
            // new write set on top of what was published.
            txn.writes = WriteSet::new(Arc::clone(v));
            txn.state = TxnState::Open;
        }
        Ok(txn)
    }

    fn write(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let (db, fs) = (Arc::clone(&self.db), Arc::clone(&self.fs));
        let txn = self.txn_mut("write")?;
        let base = Arc::clone(&txn.writes.base);
        let mut reader = Self::base_reader(&db, &fs, &base);
        txn.writes.write(buf, offset, &mut reader)
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        let (db, fs) = (Arc::clone(&self.db), Arc::clone(&self.fs));
        let txn = self.txn_mut("truncate")?;
        let base = Arc::clone(&txn.writes.base);
        let mut reader = Self::base_reader(&db, &fs, &base);
        txn.writes.truncate(size, &mut reader)
    }

    fn size(&self) -> u64 {
        match (&self.txn, &self.snapshot) {
            (Some(t), _) => t.writes.size(),
            (None, Some(s)) => s.size,
            (None, None) => self.unlocked_view().size,
        }
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        if level <= self.level {
            return Ok(());
        }
        if level == LockLevel::Shared {
            let v = match &self.pinned {
                Some(p) => Arc::clone(p),
                None => self
                    .db
                    .read_state(&self.fs.ctx, self.poll, codes::SQLITE_IOERR_LOCK)?,
            };
            self.snapshot = Some(v);
            self.level = LockLevel::Shared;
            return Ok(());
        }
        // RESERVED or stronger: become the process's writer. EXCLUSIVE never
        // waits for readers: they keep reading their snapshots.
        let Some(snapshot) = self.snapshot.clone() else {
            return Err(Error::new(
                codes::SQLITE_IOERR_LOCK,
                format!("{level:?} requested without SHARED"),
            ));
        };
        if self.txn.is_none() {
            if self.read_only {
                return Err(self.read_only_error());
            }
            if let Some(e) = self.db.group.get().and_then(|g| g.conflict()) {
                return Err(e);
            }
            self.db
                .begin_write(self.id, &snapshot)
                .map_err(|why| refused(&self.db.name, snapshot.lsn, why))?;
            if let Some(ttl) = self.lease
                && let Err(e) = lease::take(&self.db, &self.fs, ttl, snapshot.lsn)
            {
                self.db.end_write(self.id);
                return Err(e);
            }
            self.txn = Some(Txn {
                writes: WriteSet::new(snapshot),
                state: TxnState::Open,
            });
        }
        self.level = level;
        Ok(())
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        if level >= self.level {
            return Ok(());
        }
        if let Some(txn) = self.txn.take() {
            // Published: read it from now on. Anything else (a rollback, a
            // lost race, an I/O error, an unfinished commit) is dropped.
            if let TxnState::Published(v) = txn.state {
                self.snapshot = Some(v);
            }
            if self.lease.is_some() {
                end_lease_use(&self.db, &self.fs);
            }
            self.db.end_write(self.id);
        }
        if level == LockLevel::None {
            self.snapshot = None;
        }
        self.level = level.min(LockLevel::Shared);
        Ok(())
    }

    /// The commit point (`SQLITE_FCNTL_SYNC`).
    fn commit(&mut self) -> Result<()> {
        let (db, fs) = (Arc::clone(&self.db), Arc::clone(&self.fs));
        let Some(txn) = self.txn.as_mut() else {
            return Ok(());
        };
        if !matches!(txn.state, TxnState::Open) {
            // Published already, or over: this is the sync that ends
            // SQLite's rollback of a failed commit.
            return Ok(());
        }
        let base = Arc::clone(&txn.writes.base);
        let mut reader = Self::base_reader(&db, &fs, &base);
        if !txn.writes.is_commit(&mut reader)? {
            return Ok(());
        }
        if self.lease.is_some()
            && let Err(e) = lease::check_before_commit(&db, &fs, base.lsn)
        {
            txn.state = TxnState::Over;
            return Err(e);
        }
        if let Some(group) = db.group.get() {
            let time_ms = now_ms().max(base.time_ms);
            let queued = txn
                .writes
                .encode(base.lsn + 1, rand::random(), time_ms, &mut reader)
                .and_then(|(idx, body)| {
                    group.enqueue(&db, &fs.ctx, &base, idx, body, !self.async_commit)
                });
            return match queued {
                Ok(v) => {
                    txn.state = TxnState::Published(v);
                    Ok(())
                }
                Err(e) => {
                    txn.state = TxnState::Over;
                    Err(e)
                }
            };
        }
        let lsn = base.lsn + 1;
        // Never earlier than the parent's: commit times grow with the LSN
        // whatever the writers' clocks, so `asof=` has one answer.
        let time_ms = now_ms().max(base.time_ms);
        let encoded = txn.writes.encode(lsn, rand::random(), time_ms, &mut reader);
        let (idx, body) = match encoded {
            Ok(x) => x,
            Err(e) => {
                txn.state = TxnState::Over;
                return Err(e);
            }
        };
        match db.publish(&fs.ctx, &base, idx, body) {
            Published::Committed(v) => {
                crate::compact::maybe_compact(&fs, &db, v.lsn, self.compaction);
                if self.lease.is_some() {
                    lease::committed(&db, &fs, v.lsn);
                }
                txn.state = TxnState::Published(v);
                Ok(())
            }
            Published::Failed(e) => {
                txn.state = TxnState::Over;
                Err(e)
            }
        }
    }
}

/// Reads `buf.len()` bytes at `offset` of `v` (short at its end); with
/// `read_ahead`, a miss that continues a scan reads ahead first.
fn read_version(
    db: &Db,
    fs: &Shared,
    v: &Version,
    buf: &mut [u8],
    offset: u64,
    mut read_ahead: Option<&mut ReadAhead>,
) -> Result<usize> {
    let avail = v.size.saturating_sub(offset);
    let n = (buf.len() as u64).min(avail) as usize;
    if n == 0 {
        return Ok(0);
    }
    let c = u64::from(v.chunk_size);
    let mut pos = offset;
    let end = offset + n as u64;
    while pos < end {
        let chunk = pos / c;
        let within = (pos % c) as usize;
        let len = ((c - within as u64).min(end - pos)) as usize;
        let dst = &mut buf[(pos - offset) as usize..(pos - offset) as usize + len];
        match v.page(chunk) {
            Some(page) if page.copy_to(dst, within) => {}
            Some(page) => {
                if let Some(ra) = read_ahead.as_deref_mut()
                    && prefetch::can_keep(&fs.ctx)
                    && let Some(window) = ra.on_miss(chunk, v.size.div_ceil(c))
                {
                    let chunks: Vec<u64> = window.collect();
                    prefetch::fetch_batch(db, &fs.ctx, v, &chunks);
                }
                db.copy_chunk(&fs.ctx, chunk, page, dst, within)?
            }
            None => dst.fill(0),
        }
        pos += len as u64;
    }
    Ok(n)
}

/// The end of a write transaction's use of the writer lease: released
/// (`lease.rs`), or held on while the group commit queue holds
/// transactions, so that no other writer publishes below them.
fn end_lease_use(db: &Db, fs: &Shared) {
    match db.group.get() {
        Some(g) => lease::end_transaction_queued(db, fs, || g.holds_transactions()),
        None => lease::end_transaction(db, fs),
    }
}

fn refused(db: &str, snapshot: u64, why: WriteRefused) -> Error {
    match why {
        WriteRefused::Busy => Error::busy(format!(
            "vfs-object: database {db:?}: another connection of this process is writing"
        )),
        WriteRefused::Stale { head } => Error::new(
            codes::SQLITE_BUSY_SNAPSHOT,
            format!(
                "vfs-object: database {db:?}: this transaction reads LSN {snapshot} but LSN {head} \
                 is committed; end the transaction and retry"
            ),
        ),
    }
}

/// `PRAGMA`s sent to a main database before SQLite runs them.
fn pragma(m: &MainFile, p: &mut Pragma<'_>) -> Result<()> {
    let name = p.name().to_ascii_lowercase();
    let value = p.value().map(|v| v.trim().to_ascii_lowercase());
    match (name.as_str(), value.as_deref()) {
        ("journal_mode", Some("wal")) => Err(Error::new(
            codes::SQLITE_ERROR,
            format!(
                "vfs-object: journal_mode=WAL is not available for {:?}: the object log is the \
                 write-ahead log and readers never block; keep DELETE, TRUNCATE, PERSIST, MEMORY or OFF",
                m.db.name
            ),
        )),
        ("locking_mode", Some("exclusive")) => Err(Error::new(
            codes::SQLITE_ERROR,
            format!(
                "vfs-object: locking_mode=EXCLUSIVE is not available for {:?}: SQLite would keep \
                 its page cache across commits of other processes",
                m.db.name
            ),
        )),
        ("object_lsn", None) => {
            p.set_result(&m.view().lsn.to_string());
            Ok(())
        }
        ("object_compact", None) => {
            let report = crate::compact::compact(&m.fs, &m.db, m.compaction.group_pages)?;
            p.set_result(&report.to_string());
            Ok(())
        }
        ("object_flush", None) => {
            let lsn = match m.db.group.get() {
                Some(g) => g.flush()?,
                None => m.view().lsn,
            };
            p.set_result(&lsn.to_string());
            Ok(())
        }
        ("object_gc", None) => {
            let report = crate::compact::gc(&m.fs, &m.db, m.compaction.retention)?;
            p.set_result(&report.to_string());
            Ok(())
        }
        _ => Err(Error::not_found()),
    }
}

impl File for ObjectFile {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        match &mut self.inner {
            Inner::Main(m) => m.read(buf, offset),
            Inner::Plain(bytes) => Ok(bytes.read_at(buf, offset)),
        }
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        match &mut self.inner {
            Inner::Main(m) => m.write(buf, offset),
            Inner::Plain(bytes) => bytes.write_at(buf, offset),
        }
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        match &mut self.inner {
            Inner::Main(m) => m.truncate(size),
            Inner::Plain(bytes) => bytes.truncate(size),
        }
    }

    fn sync(&mut self, _flags: SyncFlags) -> Result<()> {
        // Commits publish at SQLITE_FCNTL_SYNC, which SQLite sends just
        // before this (and instead of it under synchronous=OFF); journals
        // and scratch files live in memory.
        Ok(())
    }

    fn size(&mut self) -> Result<u64> {
        Ok(match &mut self.inner {
            Inner::Main(m) => m.size(),
            Inner::Plain(bytes) => bytes.len(),
        })
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        match &mut self.inner {
            Inner::Main(m) => m.lock(level),
            // SQLite never locks journals or temporary files.
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
        let Inner::Main(m) = &mut self.inner else {
            return Err(Error::not_found());
        };
        match ctl.control() {
            Control::Sync => m.commit(),
            Control::Pragma(mut p) => pragma(m, &mut p),
            Control::HasMoved(moved) => {
                *moved = 0;
                Ok(())
            }
            _ => Err(Error::not_found()),
        }
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        // A write set is published whole or not at all, so a write can never
        // tear what is stored. Never ATOMIC or BATCH_ATOMIC (the commit point
        // must stay SQLITE_FCNTL_SYNC).
        DeviceCharacteristics::NONE.with(DeviceCharacteristics::POWERSAFE_OVERWRITE)
    }
}

impl Drop for MainFile {
    fn drop(&mut self) {
        if self.txn.take().is_some() {
            if self.lease.is_some() {
                end_lease_use(&self.db, &self.fs);
            }
            self.db.end_write(self.id);
        }
    }
}
