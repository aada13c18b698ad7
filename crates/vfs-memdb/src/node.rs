//! One file of the store, and the byte budget database files count
//! against.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use vfs_core::{Error, FileKind, LockManager, Result, ShmGroup};

use crate::header::{self, HeaderCopy};
use crate::store::Store;

/// The byte budget of one instance and what its database files use.
#[derive(Debug)]
pub(crate) struct Accounting {
    pub(crate) budget: Option<u64>,
    pub(crate) used: AtomicU64,
}

impl Accounting {
    /// Counts `grow` more bytes, of which `freed` are about to be released
    /// by the caller, or answers `SQLITE_FULL` and counts nothing.
    pub(crate) fn reserve(&self, grow: u64, freed: u64, what: &dyn fmt::Display) -> Result<()> {
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

    pub(crate) fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One file of the store.
pub(crate) struct Node {
    /// The bytes. Changed only through [`Node::write`], which keeps `len`.
    store: RwLock<Store>,
    /// A copy of the store's length, published by every writer before it
    /// releases the store's lock: `xFileSize` (once per read transaction)
    /// reads it without taking that lock.
    len: AtomicU64,
    /// A main database's bytes 24–39 (the change counter SQLite reads at
    /// every rollback-mode read transaction), published the same way.
    header: Option<HeaderCopy>,
    /// SQLite's file locks, shared by every handle on this file.
    pub(crate) locks: Arc<LockManager>,
    /// The WAL index of a main database, shared by all its connections.
    pub(crate) shm: Option<Arc<ShmGroup>>,
    /// Handles currently open on this file.
    pub(crate) open: AtomicUsize,
    /// Set for files the budget counts (named main databases).
    pub(crate) acct: Option<Arc<Accounting>>,
    pub(crate) kind: FileKind,
}

impl Node {
    /// A file of `kind` holding `store`. With `acct`, the file is counted
    /// against the budget and the caller has already reserved the store's
    /// bytes there (the node releases them when dropped).
    pub(crate) fn new(kind: FileKind, store: Store, acct: Option<Arc<Accounting>>) -> Arc<Node> {
        Arc::new(Node {
            len: AtomicU64::new(store.len()),
            header: (kind == FileKind::MainDb).then(|| HeaderCopy::new(header_of(&store))),
            store: RwLock::new(store),
            locks: LockManager::new(),
            shm: (kind == FileKind::MainDb).then(ShmGroup::new),
            open: AtomicUsize::new(0),
            acct,
            kind,
        })
    }

    /// The file's size in bytes, without the store's lock.
    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// The store, for reading.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read()
    }

    /// Copies the bytes at `offset` into `buf`, answering how many the file
    /// had (see [`Store::read`]); the change counter's read comes from the
    /// published copy, without the store's lock.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> usize {
        if let Some(n) = self.header.as_ref().and_then(|h| h.read(buf, offset)) {
            return n;
        }
        self.store.read().read(buf, offset)
    }

    /// The store's contents, leaving it empty.
    pub(crate) fn take_store(&self) -> Store {
        self.write().take()
    }

    /// The store, for changing: the guard publishes its length when it is
    /// dropped, before the lock goes.
    pub(crate) fn write(&self) -> StoreWriter<'_> {
        StoreWriter {
            store: self.store.write(),
            len: &self.len,
            header: self.header.as_ref(),
            header_changed: false,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
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

/// The store under its write lock; see [`Node::write`]. Its changes go
/// through its own methods (no `DerefMut`), which note whether bytes
/// 24–39 may have changed: only then is the header copy published again
/// (a read of the store and a seqlock write, saved on most page writes).
pub(crate) struct StoreWriter<'a> {
    store: RwLockWriteGuard<'a, Store>,
    len: &'a AtomicU64,
    header: Option<&'a HeaderCopy>,
    header_changed: bool,
}

/// Where the header copy's bytes end.
const HEADER_END: u64 = header::OFFSET + header::LEN as u64;

impl StoreWriter<'_> {
    /// [`Store::write`].
    pub(crate) fn write(&mut self, buf: &[u8], offset: u64) {
        let end = offset.saturating_add(buf.len() as u64);
        // A write over the bytes, or one into a file too short to hold
        // them (it may zero-fill up to where it starts).
        self.header_changed |=
            self.store.len() < HEADER_END || (offset < HEADER_END && end > header::OFFSET);
        self.store.write(buf, offset);
    }

    /// [`Store::truncate`].
    pub(crate) fn truncate(&mut self, size: u64) {
        self.header_changed |= size < HEADER_END || self.store.len() < HEADER_END;
        self.store.truncate(size);
    }

    /// [`Store::make_lendable`]: the file's bytes stay as they are.
    pub(crate) fn make_lendable(&mut self, offset: u64) {
        self.store.make_lendable(offset);
    }

    /// The store's contents, leaving it empty.
    fn take(&mut self) -> Store {
        self.header_changed = true;
        std::mem::take(&mut *self.store)
    }
}

impl std::ops::Deref for StoreWriter<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Drop for StoreWriter<'_> {
    fn drop(&mut self) {
        // Fields drop after this: the length and the header are public
        // before the lock is released.
        self.len.store(self.store.len(), Ordering::Release);
        if let Some(header) = self.header
            && self.header_changed
        {
            header.publish(header_of(&self.store));
        }
    }
}

/// The store's bytes 24–39, or `None` when it is shorter than that.
fn header_of(store: &Store) -> Option<[u8; header::LEN]> {
    let mut bytes = [0; header::LEN];
    (store.read(&mut bytes, header::OFFSET) == header::LEN).then_some(bytes)
}
