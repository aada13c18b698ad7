//! The instance's namespace: which names are shared, which files SQLite
//! derives from a database's name, and the map of files by name.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Inner;
use crate::node::Node;

/// What [`vfs_core::Vfs::full_pathname`] appends to a private name.
pub(crate) const PRIVATE_MARK: &str = "#private-";

/// Whether `name` names a database shared by all connections.
pub(crate) fn is_shared(name: &str) -> bool {
    name.starts_with('/')
}

/// The names of the journal and WAL files SQLite derives from a database.
pub(crate) fn companions(db: &str) -> [String; 2] {
    [format!("{db}-journal"), format!("{db}-wal")]
}

/// The instance's files by name. Insertions and removals go through it so
/// that it can count rollback journals: SQLite asks whether `<db>-journal`
/// exists at the start of every read transaction, and with no journal in
/// the instance [`vfs_core::Vfs::access`] answers without the lock or a hash.
pub(crate) struct Names {
    map: HashMap<String, Arc<Node>>,
    journals: Arc<AtomicUsize>,
}

pub(crate) fn is_journal_name(name: &str) -> bool {
    name.ends_with("-journal")
}

impl Names {
    /// An empty map counting its journals in `journals`.
    pub(crate) fn new(journals: Arc<AtomicUsize>) -> Names {
        Names {
            map: HashMap::new(),
            journals,
        }
    }

    pub(crate) fn insert(&mut self, name: String, node: Arc<Node>) {
        let journal = is_journal_name(&name);
        if self.map.insert(name, node).is_none() && journal {
            self.journals.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<Arc<Node>> {
        let node = self.map.remove(name);
        if node.is_some() && is_journal_name(name) {
            self.journals.fetch_sub(1, Ordering::SeqCst);
        }
        node
    }
}

impl std::ops::Deref for Names {
    type Target = HashMap<String, Arc<Node>>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Inner {
    /// Removes `name` if it still refers to `node`.
    pub(crate) fn forget(&self, name: &str, node: &Arc<Node>) {
        let mut files = self.files.lock();
        if files.get(name).is_some_and(|n| Arc::ptr_eq(n, node)) {
            files.remove(name);
        }
    }

    /// Removes a private database and its journal and WAL.
    pub(crate) fn forget_database(&self, name: &str, node: &Arc<Node>) {
        let mut files = self.files.lock();
        if files.get(name).is_some_and(|n| Arc::ptr_eq(n, node)) {
            files.remove(name);
            for companion in companions(name) {
                files.remove(&companion);
            }
        }
    }
}
