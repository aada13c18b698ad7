//! Registration under a fresh name, and the handle that owns it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use vfs_core::{Error, Registration, Result, codes};

use crate::set::normalize;
use crate::{Embed, FileSet};

/// Registrations whose handle was dropped while SQLite still had files
/// open through them. Each later registration, close or drop tries to
/// unregister them again.
static ORPHANS: Mutex<Vec<Registration>> = Mutex::new(Vec::new());

/// Retries the unregistration of orphaned registrations.
fn reap() {
    let mut orphans = ORPHANS.lock().unwrap_or_else(|p| p.into_inner());
    let pending = std::mem::take(&mut *orphans);
    for reg in pending {
        if let Err((reg, _)) = reg.unregister() {
            orphans.push(reg);
        }
    }
}

/// The next candidate name.
fn fresh_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("vfs-embed-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Embed {
    /// Registers a read-only VFS over `files` under a fresh, unique name and
    /// returns the handle that owns it.
    ///
    /// `files` is a [`FileSet`], or a single source (`&'static [u8]`,
    /// `Vec<u8>`, `Arc<[u8]>`, [`Source`](crate::Source)) served as
    /// [`DEFAULT_NAME`](crate::DEFAULT_NAME) (`"main.db"`).
    ///
    /// ```
    /// # let image: Vec<u8> = {
    /// #     let dir = tempfile::tempdir().unwrap();
    /// #     let p = dir.path().join("x.db");
    /// #     let c = rusqlite::Connection::open(&p).unwrap();
    /// #     c.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('hello');").unwrap();
    /// #     drop(c);
    /// #     std::fs::read(&p).unwrap()
    /// # };
    /// use vfs_embed::Embed;
    ///
    /// // In a real program: `static IMAGE: &[u8] = include_bytes!("catalog.db");`
    /// let handle = Embed::register(image)?;
    /// let conn = rusqlite::Connection::open(handle.uri("main.db")).unwrap();
    /// let v: String = conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
    /// assert_eq!(v, "hello");
    /// # Ok::<(), vfs_core::Error>(())
    /// ```
    pub fn register(files: impl Into<FileSet>) -> Result<EmbedHandle> {
        Embed::new(files).install()
    }

    /// Registers this VFS under a fresh, unique name (see
    /// [`Embed::register`]).
    pub fn install(self) -> Result<EmbedHandle> {
        reap();
        let vfs = Arc::new(self);
        let mut last = None;
        // Names are ours alone unless someone copies the pattern; skip any
        // that is taken.
        for _ in 0..1000 {
            let name = fresh_name();
            if vfs_core::find(&name) {
                continue;
            }
            match vfs_core::register(&name, Arc::clone(&vfs), false) {
                Ok(reg) => {
                    return Ok(EmbedHandle {
                        reg: Some(reg),
                        vfs,
                    });
                }
                Err(e) if e.code() == Some(codes::SQLITE_MISUSE) && vfs_core::find(&name) => {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::new(codes::SQLITE_MISUSE, "no free name for an embedded VFS")
        }))
    }
}

/// A registered embedded VFS. It owns the registration:
///
/// * [`EmbedHandle::close`] unregisters it, and refuses (handing the handle
///   back with `SQLITE_BUSY`) while any connection still has a file open
///   through it;
/// * dropping it unregisters it when no file is open; otherwise the VFS
///   stays registered (the open connections keep working) and is
///   unregistered by a later registration, close or drop of any embedded
///   VFS once its files are closed.
///
/// Open databases with [`EmbedHandle::uri`].
#[derive(Debug)]
#[must_use = "dropping the handle unregisters the VFS"]
pub struct EmbedHandle {
    reg: Option<Registration>,
    vfs: Arc<Embed>,
}

/// Percent-encodes `s` for an SQLite URI (keeps unreserved characters and
/// `/`).
fn encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

impl EmbedHandle {
    /// The name SQLite knows the VFS by (`?vfs=<name>`).
    pub fn name(&self) -> &str {
        self.reg.as_ref().map_or("", Registration::name)
    }

    /// A URI that opens the embedded file `db` read-only:
    /// `file:<db>?vfs=<name>&mode=ro&immutable=1` (with `db` percent-encoded).
    ///
    /// The VFS is read-only and immutable by itself; `mode=ro` and
    /// `immutable=1` only say so up front, which also keeps the database
    /// readable if a shim stacked above this VFS hides its immutability.
    /// The connection must allow URIs (rusqlite's default flags do).
    ///
    /// ```
    /// # let handle = vfs_embed::Embed::register(Vec::new()).unwrap();
    /// let uri = handle.uri("data/my db.sqlite");
    /// assert_eq!(
    ///     uri,
    ///     format!("file:data/my%20db.sqlite?vfs={}&mode=ro&immutable=1", handle.name())
    /// );
    /// ```
    pub fn uri(&self, db: &str) -> String {
        let mut uri = String::from("file:");
        encode(&mut uri, normalize(db));
        uri.push_str("?vfs=");
        encode(&mut uri, self.name());
        uri.push_str("&mode=ro&immutable=1");
        uri
    }

    /// The files served.
    pub fn files(&self) -> &FileSet {
        self.vfs.files()
    }

    /// How many files SQLite has open through this VFS.
    pub fn open_files(&self) -> usize {
        self.reg.as_ref().map_or(0, Registration::open_files)
    }

    /// Unregisters the VFS. Refuses with `SQLITE_BUSY`, handing the handle
    /// back, while any file opened through it is still open (close those
    /// connections first).
    pub fn close(mut self) -> std::result::Result<(), (EmbedHandle, Error)> {
        let Some(reg) = self.reg.take() else {
            return Ok(());
        };
        match reg.unregister() {
            Ok(()) => {
                reap();
                Ok(())
            }
            Err((reg, e)) => {
                self.reg = Some(reg);
                Err((self, e))
            }
        }
    }
}

impl Drop for EmbedHandle {
    fn drop(&mut self) {
        if let Some(reg) = self.reg.take()
            && let Err((reg, _)) = reg.unregister()
        {
            ORPHANS.lock().unwrap_or_else(|p| p.into_inner()).push(reg);
        }
        reap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encoding() {
        let mut s = String::new();
        encode(&mut s, "a b?c#d%e&f=g/h.db");
        assert_eq!(s, "a%20b%3Fc%23d%25e%26f%3Dg/h.db");
        let mut s = String::new();
        encode(&mut s, "é");
        assert_eq!(s, "%C3%A9");
    }
}
