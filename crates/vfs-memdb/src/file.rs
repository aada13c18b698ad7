//! An open file of a [`MemDb`](crate::MemDb): reads and writes on its
//! store, its locks, its shared memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use vfs_core::{
    Control, DeviceCharacteristics, Error, File, FileControl, FileKind, FileLock, FileNameBuf,
    Mapping, OpenOptions, Result, ShmSupport, SyncFlags,
};

use crate::Inner;
use crate::node::Node;
use crate::store::{Lend, Store};
use crate::wal;

/// What happens to a file's name when its handle closes.
pub(crate) enum Cleanup {
    None,
    /// Remove the file (SQLITE_OPEN_DELETEONCLOSE with a name).
    DeleteOnClose(Arc<Inner>, FileNameBuf),
    /// A private database: when its last handle closes, remove it with its
    /// journal and WAL.
    PrivateDatabase(Arc<Inner>, FileNameBuf),
}

/// An open file of a [`MemDb`](crate::MemDb).
pub struct MemFile {
    node: Arc<Node>,
    lock: FileLock,
    kind: FileKind,
    read_only: bool,
    cleanup: Cleanup,
    /// For a WAL file: its database, whose budget frames are checked against.
    wal_db: Option<Arc<Node>>,
    /// How many bytes from the start of the file SQLite may read in place
    /// (`PRAGMA mmap_size`, through `SQLITE_FCNTL_MMAP_SIZE`); 0 until it
    /// says.
    mmap_limit: u64,
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
    pub(crate) fn new(
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
            mmap_limit: 0,
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
        if self.node.read().read(&mut header, 0) < wal::WAL_HEADER {
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
        Ok(self.node.read_at(buf, offset))
    }

    /// Database files lend their pages (SQLite maps only those).
    fn can_fetch(&self) -> bool {
        self.kind == FileKind::MainDb
    }

    /// Lends a page of the store, within `PRAGMA mmap_size` bytes of the
    /// start, when it lies in one 4 KiB storage page (database pages up to
    /// 4 KiB; larger ones are read). The first time a page is lent it is
    /// copied into a block with the zeroed room SQLite may overread (256
    /// bytes) after it, under the write lock; later lending takes the read
    /// lock and allocates nothing. A lent page
    /// is never changed in place: a write to it, a truncation through it,
    /// or deleting the file goes to the store, and the lent bytes live on
    /// until SQLite gives them back, so nothing has to be refused while a
    /// page is lent (SQLite's own memdb refuses to grow then).
    fn fetch(&mut self, offset: u64, len: usize) -> Result<Option<Mapping>> {
        if offset.saturating_add(len as u64) > self.mmap_limit {
            return Ok(None);
        }
        match self.node.read().lend(offset, len) {
            Lend::Lent(m) => return Ok(Some(m)),
            Lend::Never => return Ok(None),
            Lend::NeedsRoom => {}
        }
        let mut store = self.node.write();
        store.make_lendable(offset);
        Ok(match store.lend(offset, len) {
            Lend::Lent(m) => Some(m),
            Lend::NeedsRoom | Lend::Never => None,
        })
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_writable()?;
        if self.kind == FileKind::Wal {
            self.check_wal_frame(buf, offset)?;
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| Error::full("write past the largest possible file"))?;
        let mut store = self.node.write();
        self.reserve_growth(&store, end)?;
        store.write(buf, offset);
        Ok(())
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        self.check_writable()?;
        let mut store = self.node.write();
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

    vfs_core::lock_via!(lock);

    /// `SQLITE_FCNTL_MMAP_SIZE` on a database file: how much of it
    /// [`fetch`](File::fetch) may lend. Anything else: not handled.
    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        match ctl.control() {
            Control::MmapSize(limit) if self.kind == FileKind::MainDb => {
                let before = i64::try_from(self.mmap_limit).unwrap_or(i64::MAX);
                if let Ok(new) = u64::try_from(*limit) {
                    self.mmap_limit = new;
                }
                *limit = before;
                Ok(())
            }
            _ => Err(Error::not_found()),
        }
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
