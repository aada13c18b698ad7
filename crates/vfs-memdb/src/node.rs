//! One file of the store, and the byte budget database files count
//! against.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;
use vfs_core::{Error, FileKind, LockManager, Result, ShmGroup};

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
    pub(crate) store: RwLock<Store>,
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
            store: RwLock::new(store),
            locks: LockManager::new(),
            shm: (kind == FileKind::MainDb).then(ShmGroup::new),
            open: AtomicUsize::new(0),
            acct,
            kind,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.store.read().len()
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
