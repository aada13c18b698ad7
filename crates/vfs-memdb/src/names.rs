//! The instance's namespace: which names are shared, which files SQLite
//! derives from a database's name, and the map of files by name.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use vfs_core::{AccessShortcut, FileKind, FileName, FileNameBuf};

use crate::Inner;
use crate::node::Node;
use crate::store::Store;

/// What [`vfs_core::Vfs::full_pathname`] appends to a private name.
pub(crate) const PRIVATE_MARK: &str = "#private-";

/// Whether `name` names a database shared by all connections.
pub(crate) fn is_shared(name: &FileName) -> bool {
    name.starts_with("/")
}

/// The names of the journal and WAL files SQLite derives from a database.
pub(crate) fn companions(db: &FileName) -> [FileNameBuf; 2] {
    [db.with_suffix(JOURNAL_SUFFIX), db.with_suffix(WAL_SUFFIX)]
}

/// How many rollback journals and WAL files an instance holds, kept by
/// [`Names`] under its lock and read without it.
///
/// At the start of every read transaction in rollback-journal mode SQLite
/// asks whether `<db>-journal` and `<db>-wal` exist; with none of that kind
/// anywhere in the instance [`vfs_core::Vfs::access`] answers from these
/// counts, without the map's lock or a hash of the name. (A file of that
/// kind created concurrently is one the check could as well have preceded:
/// SQLite makes both under locks the asking connection's SHARED lock
/// orders it against.)
///
/// The counts are `Arc`s of their own so that the instance's
/// [`AccessShortcut`] can hold them: vfs-core then matches the suffixes on
/// SQLite's raw name, before making a [`FileName`].
#[derive(Debug, Default)]
pub(crate) struct Companions {
    journals: Arc<AtomicUsize>,
    wals: Arc<AtomicUsize>,
}

/// The suffixes SQLite gives a database's journal and WAL.
const JOURNAL_SUFFIX: &str = "-journal";
const WAL_SUFFIX: &str = "-wal";

impl Companions {
    /// The count `name`'s kind is kept in, if it is a journal or a WAL.
    fn of(&self, name: &FileName) -> Option<&AtomicUsize> {
        if name.ends_with(JOURNAL_SUFFIX) {
            Some(&self.journals)
        } else if name.ends_with(WAL_SUFFIX) {
            Some(&self.wals)
        } else {
            None
        }
    }

    /// The same answers as [`surely_absent`](Companions::surely_absent),
    /// as an `xAccess` shortcut.
    pub(crate) fn shortcut(&self) -> AccessShortcut {
        AccessShortcut::absent_while_zero([
            (JOURNAL_SUFFIX, Arc::clone(&self.journals)),
            (WAL_SUFFIX, Arc::clone(&self.wals)),
        ])
    }

    /// Whether `name` is a journal or WAL name and the instance holds no
    /// file of that kind (otherwise the map must be asked).
    pub(crate) fn surely_absent(&self, name: &FileName) -> bool {
        self.of(name)
            .is_some_and(|count| count.load(Ordering::SeqCst) == 0)
    }
}

/// The instance's files by name. Insertions and removals go through it so
/// that it can keep the [`Companions`] counts.
pub(crate) struct Names {
    map: HashMap<FileNameBuf, Arc<Node>>,
    companions: Arc<Companions>,
}

impl Names {
    /// An empty map keeping `companions`.
    pub(crate) fn new(companions: Arc<Companions>) -> Names {
        Names {
            map: HashMap::new(),
            companions,
        }
    }

    pub(crate) fn insert(&mut self, name: FileNameBuf, node: Arc<Node>) {
        let count = self.companions.of(&name);
        if self.map.insert(name, node).is_none()
            && let Some(count) = count
        {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn remove(&mut self, name: &FileName) -> Option<Arc<Node>> {
        let node = self.map.remove(name);
        if node.is_some()
            && let Some(count) = self.companions.of(name)
        {
            count.fetch_sub(1, Ordering::SeqCst);
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

/// Blocks of deleted journals an instance keeps for the next journal
/// (256 KiB): a one-row transaction's journal takes four.
const SPARE_JOURNAL_PAGES: usize = 64;

impl Inner {
    /// In rollback-journal mode SQLite creates, fills and deletes a journal
    /// in every write transaction: the storage of a deleted journal nobody
    /// holds any more is kept (up to [`SPARE_JOURNAL_PAGES`] blocks) for
    /// the next one, which so allocates no page. Called without the map's
    /// lock.
    pub(crate) fn recycle(&self, node: Arc<Node>) {
        if node.kind != FileKind::MainJournal {
            return;
        }
        let Ok(node) = Arc::try_unwrap(node) else {
            return;
        };
        let blocks = node.take_store().into_spare();
        let mut spare = self.spare_journal_pages.lock();
        let room = SPARE_JOURNAL_PAGES.saturating_sub(spare.len());
        spare.extend(blocks.into_iter().take(room));
    }

    /// The store of a new journal: empty, with the spare blocks.
    pub(crate) fn journal_store(&self) -> Store {
        Store::with_spare(std::mem::take(&mut *self.spare_journal_pages.lock()))
    }

    /// Removes `name` if it still refers to `node`.
    pub(crate) fn forget(&self, name: &FileName, node: &Arc<Node>) {
        let mut files = self.files.lock();
        if files.get(name).is_some_and(|n| Arc::ptr_eq(n, node)) {
            files.remove(name);
        }
    }

    /// Removes a private database and its journal and WAL.
    pub(crate) fn forget_database(&self, name: &FileName, node: &Arc<Node>) {
        let mut files = self.files.lock();
        if files.get(name).is_some_and(|n| Arc::ptr_eq(n, node)) {
            files.remove(name);
            for companion in companions(name) {
                files.remove(&companion);
            }
        }
    }
}
