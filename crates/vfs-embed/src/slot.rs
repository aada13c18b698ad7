//! A registered read-only VFS whose images can be installed or replaced
//! later.

use std::sync::{Arc, RwLock};

use vfs_core::{AccessCheck, Error, FileName, OpenName, OpenOptions, Result, Vfs};

use crate::vfs::{Embed, EmbedFile};

/// An [`Embed`] that can be installed, replaced or removed while the VFS is
/// registered: register the slot once, then [`install`](Self::install) a
/// new file set whenever a new image arrives (a catalog downloaded at
/// startup, a reloaded bundle).
///
/// Connections opened after an install read the new images. A connection
/// that already has a database open keeps reading the images it opened
/// (they are immutable and shared, not copied), so a replacement never
/// changes data under a running query. With nothing installed, opening a
/// database fails with `SQLITE_CANTOPEN` and a message saying so.
///
/// ```
/// # fn image(rows: i64) -> Vec<u8> {
/// #     let dir = tempfile::tempdir().unwrap();
/// #     let p = dir.path().join("c.db");
/// #     let c = rusqlite::Connection::open(&p).unwrap();
/// #     c.execute_batch("CREATE TABLE item(n)").unwrap();
/// #     for n in 0..rows { c.execute("INSERT INTO item VALUES (?1)", [n]).unwrap(); }
/// #     drop(c);
/// #     std::fs::read(&p).unwrap()
/// # }
/// use vfs_embed::{Embed, EmbedSlot, FileSet};
///
/// let slot = EmbedSlot::new();
/// let _registration = vfs_core::register("catalog-slot", slot.clone(), false)?;
/// let uri = "file:catalog.db?vfs=catalog-slot&immutable=1";
/// let count = |conn: &rusqlite::Connection| -> i64 {
///     conn.query_row("SELECT count(*) FROM item", [], |r| r.get(0)).unwrap()
/// };
///
/// // Nothing installed yet: the open fails.
/// assert!(rusqlite::Connection::open(uri).is_err());
///
/// slot.install(Embed::new(FileSet::new().with("catalog.db", image(2))));
/// let old = rusqlite::Connection::open(uri).unwrap();
/// assert_eq!(count(&old), 2);
///
/// // A new image: new connections see it, the open one keeps its own.
/// slot.install(Embed::new(FileSet::new().with("catalog.db", image(5))));
/// let new = rusqlite::Connection::open(uri).unwrap();
/// assert_eq!(count(&new), 5);
/// assert_eq!(count(&old), 2);
/// # Ok::<(), vfs_core::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct EmbedSlot(Arc<RwLock<Option<Embed>>>);

impl std::fmt::Debug for EmbedSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedSlot")
            .field("installed", &self.current().is_some())
            .finish()
    }
}

impl EmbedSlot {
    /// An empty slot.
    pub fn new() -> EmbedSlot {
        EmbedSlot::default()
    }

    /// Serves `embed` to every open from now on; returns what was installed
    /// before.
    pub fn install(&self, embed: Embed) -> Option<Embed> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .replace(embed)
    }

    /// Removes the installed images (later opens fail); returns them.
    pub fn clear(&self) -> Option<Embed> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// The images installed now, if any.
    pub fn current(&self) -> Option<Embed> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn installed(&self, what: &FileName) -> Result<Embed> {
        self.current().ok_or_else(|| {
            Error::cant_open(format!(
                "no embedded images are installed in this slot yet (opening {what:?})"
            ))
        })
    }
}

impl Vfs for EmbedSlot {
    type File = EmbedFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<EmbedFile> {
        self.installed(name.path().unwrap_or(FileName::new("(anonymous)")))?
            .open(name, opts)
    }

    fn delete(&self, path: &FileName, sync_dir: bool) -> Result<()> {
        self.installed(path)?.delete(path, sync_dir)
    }

    fn access(&self, path: &FileName, check: AccessCheck) -> Result<bool> {
        match self.current() {
            Some(embed) => embed.access(path, check),
            None => Ok(false),
        }
    }
}
