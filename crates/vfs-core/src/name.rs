//! The name SQLite hands to `xOpen`, with its URI parameters.

use std::ffi::{CStr, CString, c_char};
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

use crate::{Error, FileKind, FileName, Result};

/// The name of a file being opened, as SQLite passed it to `xOpen`.
///
/// The path is a [`FileName`]: exactly the bytes SQLite gave, UTF-8 or not.
/// For a main database, a rollback journal or a WAL it answers the URI
/// parameters of the database's URI (`file:app.db?vfs=x&key=y`) and, for a
/// journal or WAL, the name of its main database. Temporary files may have
/// no name at all.
///
/// An `OpenName` is valid only for the duration of the `open` call: copy what
/// the file needs to keep.
///
/// ```
/// use vfs_core::{FileKind, OpenName};
///
/// // A shim that opens its base under another name builds its own.
/// let renamed = OpenName::new("/data/app.db.enc", FileKind::MainDb);
/// assert_eq!(renamed.path().unwrap(), "/data/app.db.enc");
/// assert_eq!(renamed.parameter("key"), None); // a Rust-built name has none
/// let journal = OpenName::new("/data/app.db-journal", FileKind::MainJournal);
/// assert_eq!(journal.database_name().unwrap(), "/data/app.db");
/// assert!(OpenName::anonymous(FileKind::TempDb).path().is_none());
/// ```
pub struct OpenName<'a> {
    /// The name SQLite built, when it did: the URI-parameter functions may
    /// walk past its terminator. `None` for names built in Rust.
    sqlite: Option<NonNull<c_char>>,
    path: Option<&'a FileName>,
    kind: FileKind,
}

impl<'a> OpenName<'a> {
    /// # Safety
    /// `raw` is null or the `zName` argument SQLite passed to `xOpen` for a
    /// file of `kind`, valid for `'a`.
    pub(crate) unsafe fn from_sqlite(raw: *const c_char, kind: FileKind) -> OpenName<'a> {
        let sqlite = NonNull::new(raw.cast_mut());
        let path = sqlite.map(|p| {
            // SAFETY: SQLite passes a NUL-terminated string that outlives the
            // xOpen call (the caller's contract), so the bytes live for 'a.
            let c = unsafe { CStr::from_ptr(p.as_ptr()) };
            FileName::from_bytes(c.to_bytes())
        });
        OpenName { sqlite, path, kind }
    }

    /// A name built by Rust code: a shim opening its base under another
    /// name, a backend opening a file of its own, a test. It answers no URI
    /// parameters.
    pub fn new<P: AsRef<FileName> + ?Sized>(path: &'a P, kind: FileKind) -> OpenName<'a> {
        OpenName {
            sqlite: None,
            path: Some(path.as_ref()),
            kind,
        }
    }

    /// A name for an anonymous temporary file (no path), built by Rust code.
    pub fn anonymous(kind: FileKind) -> OpenName<'a> {
        OpenName {
            sqlite: None,
            path: None,
            kind,
        }
    }

    /// The path, or `None` for an anonymous temporary file.
    pub fn path(&self) -> Option<&'a FileName> {
        self.path
    }

    /// The kind of file being opened.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// SQLite's own name, when it carries URI data (a main database, its
    /// journal or its WAL, named by SQLite).
    fn uri_name(&self) -> Option<NonNull<c_char>> {
        self.sqlite.filter(|_| {
            matches!(
                self.kind,
                FileKind::MainDb | FileKind::MainJournal | FileKind::Wal
            )
        })
    }

    /// The raw value of URI parameter `key` (`?key=value`, percent-decoded
    /// by SQLite), if present: any bytes.
    ///
    /// Answers for main databases, their journals and WAL files; other kinds
    /// carry no parameters.
    pub fn parameter_bytes(&self, key: &str) -> Option<&'a [u8]> {
        let name = self.uri_name()?;
        let key = CString::new(key).ok()?;
        // SAFETY: `name` is a name SQLite built for a main db, journal or WAL
        // (uri_name checks), which is what sqlite3_uri_parameter accepts;
        // `key` is NUL-terminated.
        let value = unsafe { ffi::sqlite3_uri_parameter(name.as_ptr(), key.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: a non-null result is a NUL-terminated string inside the
        // name's allocation, which lives for 'a.
        Some(unsafe { CStr::from_ptr(value) }.to_bytes())
    }

    /// The value of URI parameter `key` (`?key=value`), if present and
    /// valid UTF-8 (see [`parameter_bytes`](Self::parameter_bytes) for any
    /// bytes).
    ///
    /// Answers for main databases, their journals and WAL files; other kinds
    /// carry no parameters.
    pub fn parameter(&self, key: &str) -> Option<&'a str> {
        self.parameter_bytes(key)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// URI parameter `key` read as a boolean ([`parse_bool`](crate::parse_bool):
    /// `1/yes/true/on` or `0/no/false/off`), or `default` when absent or
    /// unreadable.
    pub fn bool_parameter(&self, key: &str, default: bool) -> bool {
        self.parameter(key)
            .and_then(crate::parse_bool)
            .unwrap_or(default)
    }

    /// Every URI parameter as (key, value), in order, for a name that has
    /// them: what the native base copies into the name it gives `unix`.
    pub(crate) fn parameters(&self) -> Vec<(&'a CStr, &'a CStr)> {
        let mut out = Vec::new();
        let Some(name) = self.uri_name() else {
            return out;
        };
        for n in 0.. {
            // SAFETY: as in parameter_bytes; sqlite3_uri_key answers null
            // past the last parameter.
            let key = unsafe { ffi::sqlite3_uri_key(name.as_ptr(), n) };
            if key.is_null() {
                break;
            }
            // SAFETY: the key is a NUL-terminated string inside the name's
            // allocation, which lives for 'a.
            let key = unsafe { CStr::from_ptr(key) };
            // SAFETY: as in parameter_bytes. SQLite answers the first value
            // of a repeated key, as every lookup through its API does.
            let value = unsafe { ffi::sqlite3_uri_parameter(name.as_ptr(), key.as_ptr()) };
            if value.is_null() {
                continue;
            }
            // SAFETY: as for the key.
            out.push((key, unsafe { CStr::from_ptr(value) }));
        }
        out
    }

    /// The name of the main database this file belongs to: the path itself
    /// for a main database, the database's name for its journal or WAL,
    /// `None` for other kinds.
    pub fn database_name(&self) -> Option<&'a FileName> {
        match self.kind {
            FileKind::MainDb => self.path,
            FileKind::MainJournal | FileKind::Wal if self.sqlite.is_some() => {
                let name = self.uri_name()?;
                // SAFETY: a journal or WAL name built by SQLite, which
                // sqlite3_filename_database accepts; the result points into
                // the same allocation and lives as long as it.
                let db = unsafe { ffi::sqlite3_filename_database(name.as_ptr()) };
                if db.is_null() {
                    return None;
                }
                // SAFETY: a NUL-terminated string owned by SQLite for 'a.
                Some(FileName::from_bytes(
                    unsafe { CStr::from_ptr(db) }.to_bytes(),
                ))
            }
            FileKind::MainJournal => self.path.and_then(|p| p.strip_suffix("-journal")),
            FileKind::Wal => self.path.and_then(|p| p.strip_suffix("-wal")),
            _ => None,
        }
    }

    /// Which SQLite connection's database this file belongs to: one value
    /// shared by the main database file and the rollback journal and WAL
    /// one connection (one pager) opens for it, and different for every
    /// other connection while they are open, even on the same path. `None`
    /// for names built by Rust code and for other kinds of file.
    ///
    /// For state that belongs to one open database rather than to a path:
    /// two connections that opened different files under the same name (a
    /// file renamed over another in between) never share it.
    pub fn database_id(&self) -> Option<usize> {
        let name = self.uri_name()?;
        match self.kind {
            // SQLite opens the main database with the name its pager keeps
            // for the database's whole life.
            FileKind::MainDb => Some(name.as_ptr() as usize),
            _ => {
                // SAFETY: a journal or WAL name SQLite built (uri_name checks
                // the kind), which sqlite3_filename_database accepts; it
                // returns the pager's database name, the pointer the main
                // database was opened with.
                let db = unsafe { ffi::sqlite3_filename_database(name.as_ptr()) };
                (!db.is_null()).then_some(db as usize)
            }
        }
    }
}

impl std::fmt::Debug for OpenName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenName")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .finish()
    }
}

/// A file name in SQLite's own layout, made with `sqlite3_create_filename`
/// and owned: what a native VFS may keep a pointer to for the whole life of
/// its file (`unix` does, and reads URI parameters past the terminator).
/// Freed with `sqlite3_free_filename` on drop, so it must outlive the file
/// it was opened with.
pub(crate) struct SqliteFilename {
    /// The block's database name (what `sqlite3_free_filename` takes).
    database: NonNull<c_char>,
    /// The name to open: the database, journal or WAL name in the block.
    open: NonNull<c_char>,
}

// SAFETY: the block is plain memory from SQLite's allocator, owned by this
// value alone; SQLite's functions on it only read, from any thread.
unsafe impl Send for SqliteFilename {}

impl SqliteFilename {
    /// A copy of `name` (`None` for an anonymous file) with the URI
    /// parameters it carries, laid out as SQLite lays out the names it
    /// builds: the database name, its parameters, the journal and WAL names.
    pub(crate) fn new(name: &OpenName<'_>) -> Result<Option<SqliteFilename>> {
        let Some(path) = name.path() else {
            return Ok(None);
        };
        let c = |n: &FileName| {
            CString::new(n.as_bytes())
                .map_err(|_| Error::cant_open(format!("file name {n:?} contains a NUL byte")))
        };
        let (database, journal, wal) = match (name.kind(), name.database_name()) {
            (FileKind::MainJournal, Some(db)) => (c(db)?, c(path)?, c(&db.with_suffix("-wal"))?),
            (FileKind::Wal, Some(db)) => (c(db)?, c(&db.with_suffix("-journal"))?, c(path)?),
            _ => (
                c(path)?,
                c(&path.with_suffix("-journal"))?,
                c(&path.with_suffix("-wal"))?,
            ),
        };
        let params = name.parameters();
        let mut flat: Vec<*const c_char> = params
            .iter()
            .flat_map(|(k, v)| [k.as_ptr(), v.as_ptr()])
            .collect();
        let n =
            i32::try_from(params.len()).map_err(|_| Error::cant_open("too many URI parameters"))?;
        // SAFETY: three NUL-terminated strings and 2 * n more in `flat`, all
        // alive for the call; SQLite copies them into one fresh allocation.
        let block = unsafe {
            ffi::sqlite3_create_filename(
                database.as_ptr(),
                journal.as_ptr(),
                wal.as_ptr(),
                n,
                flat.as_mut_ptr(),
            )
        };
        let Some(database) = NonNull::new(block.cast_mut()) else {
            return Err(Error::new(
                ffi::SQLITE_NOMEM,
                format!("out of memory copying the file name {path:?}"),
            ));
        };
        let open = match name.kind() {
            // SAFETY: `block` came from sqlite3_create_filename, which
            // sqlite3_filename_journal accepts; the result points into it.
            FileKind::MainJournal => unsafe { ffi::sqlite3_filename_journal(block) },
            // SAFETY: as above, for the WAL name.
            FileKind::Wal => unsafe { ffi::sqlite3_filename_wal(block) },
            _ => block,
        };
        // Owned from here: an error below frees the block.
        let mut owned = SqliteFilename {
            database,
            open: database,
        };
        owned.open = NonNull::new(open.cast_mut()).ok_or_else(|| {
            Error::cant_open(format!(
                "SQLite has no {} name in the block for {path:?}",
                name.kind().name()
            ))
        })?;
        Ok(Some(owned))
    }

    /// The name to hand to the native `xOpen`: valid until `self` drops.
    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.open.as_ptr()
    }
}

impl Drop for SqliteFilename {
    fn drop(&mut self) {
        // SAFETY: the block came from sqlite3_create_filename, is owned by
        // this value alone and is freed exactly once, here.
        unsafe { ffi::sqlite3_free_filename(self.database.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_filenames_keep_the_kind_and_answer_their_database() {
        for (path, kind, expected_db) in [
            ("/d/a.db", FileKind::MainDb, "/d/a.db"),
            ("/d/a.db-journal", FileKind::MainJournal, "/d/a.db"),
            ("/d/a.db-wal", FileKind::Wal, "/d/a.db"),
            ("/d/x", FileKind::SuperJournal, "/d/x"),
        ] {
            let name = OpenName::new(path, kind);
            let owned = SqliteFilename::new(&name).unwrap().unwrap();
            // SAFETY: the owned block is alive and holds NUL-terminated names.
            let open = unsafe { CStr::from_ptr(owned.as_ptr()) };
            // SAFETY: a name made by sqlite3_create_filename.
            let db = unsafe { ffi::sqlite3_filename_database(owned.as_ptr()) };
            // SAFETY: a NUL-terminated string inside the block.
            let database = unsafe { CStr::from_ptr(db) };
            assert_eq!(open.to_bytes(), path.as_bytes());
            assert_eq!(database.to_bytes(), expected_db.as_bytes());
        }
        assert!(
            SqliteFilename::new(&OpenName::anonymous(FileKind::TempDb))
                .unwrap()
                .is_none()
        );
        let nul = OpenName::new(&b"a\0b"[..], FileKind::MainDb);
        assert!(SqliteFilename::new(&nul).is_err());
    }
}
