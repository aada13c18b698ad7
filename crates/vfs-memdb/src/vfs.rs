//! SQLite's VFS methods on a [`MemDb`]: open, delete, access, full path.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use vfs_core::{
    AccessCheck, AccessShortcut, Error, FileKind, FileName, FileNameBuf, OpenAccess, OpenName,
    OpenOptions, Result, Vfs,
};

use crate::MemDb;
use crate::file::{Cleanup, MemFile};
use crate::names::{PRIVATE_MARK, is_shared};
use crate::node::Node;
use crate::store::Store;

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
                let store = match kind {
                    FileKind::MainJournal => self.inner.journal_store(),
                    _ => Store::default(),
                };
                let node = Node::new(kind, store, acct);
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
                let removed = files.remove(path);
                drop(files);
                if let Some(node) = removed {
                    self.inner.recycle(node);
                }
                Ok(())
            }
        }
    }

    fn access(&self, path: &FileName, _check: AccessCheck) -> Result<bool> {
        // The hot-journal and WAL checks of every read transaction, usually
        // with no such file anywhere: answered without the lock or a hash.
        if self.inner.companions.surely_absent(path) {
            return Ok(false);
        }
        Ok(self.inner.files.lock().contains_key(path))
    }

    /// The same counts, asked by the `xAccess` trampoline on SQLite's raw
    /// name, without the registry's lock on this instance. They belong to
    /// the instance's namespace: once the instance is gone, no file of it
    /// remains, and "absent" stays true.
    fn access_shortcut(&self) -> Option<AccessShortcut> {
        Some(self.inner.companions.shortcut())
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
