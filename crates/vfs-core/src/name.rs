//! The name SQLite hands to `xOpen`, with its URI parameters.

use std::ffi::{CStr, CString, c_char};

use libsqlite3_sys as ffi;

use crate::{Error, FileKind, Result};

/// The name of a file being opened, as SQLite passed it to `xOpen`.
///
/// For a main database, a rollback journal or a WAL it answers the URI
/// parameters of the database's URI (`file:app.db?vfs=x&key=y`) and, for a
/// journal or WAL, the name of its main database. Temporary files may have
/// no name at all.
///
/// An `OpenName` is valid only for the duration of the `open` call: copy what
/// the file needs to keep.
pub struct OpenName<'a> {
    raw: *const c_char,
    path: Option<&'a str>,
    kind: FileKind,
    /// Whether `raw` is a name SQLite built (so the URI-parameter functions
    /// may walk past its terminator).
    from_sqlite: bool,
    _owned: Option<CString>,
}

impl<'a> OpenName<'a> {
    /// # Safety
    /// `raw` is null or the `zName` argument SQLite passed to `xOpen` for a
    /// file of `kind`, valid for `'a`.
    pub(crate) unsafe fn from_sqlite(raw: *const c_char, kind: FileKind) -> Result<OpenName<'a>> {
        let path = if raw.is_null() {
            None
        } else {
            // SAFETY: SQLite passes a NUL-terminated string that outlives the
            // xOpen call (the caller's contract).
            let c = unsafe { CStr::from_ptr(raw) };
            Some(c.to_str().map_err(|_| {
                Error::cant_open(format!(
                    "file name is not valid UTF-8: {}",
                    c.to_string_lossy()
                ))
            })?)
        };
        Ok(OpenName {
            raw,
            path,
            kind,
            from_sqlite: true,
            _owned: None,
        })
    }

    /// A name built by Rust code (for tests, or a backend opening a file of
    /// its own). It answers no URI parameters.
    pub fn new(path: Option<&'a str>, kind: FileKind) -> OpenName<'a> {
        let owned = path.and_then(|p| CString::new(p).ok());
        OpenName {
            raw: owned.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            path,
            kind,
            from_sqlite: false,
            _owned: owned,
        }
    }

    /// The path, or `None` for an anonymous temporary file.
    pub fn path(&self) -> Option<&'a str> {
        self.path
    }

    /// The kind of file being opened.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    fn has_uri_data(&self) -> bool {
        self.from_sqlite
            && !self.raw.is_null()
            && matches!(
                self.kind,
                FileKind::MainDb | FileKind::MainJournal | FileKind::Wal
            )
    }

    /// The value of URI parameter `key` (`?key=value`), if present.
    ///
    /// Answers for main databases, their journals and WAL files; other kinds
    /// carry no parameters.
    pub fn parameter(&self, key: &str) -> Option<&'a str> {
        if !self.has_uri_data() {
            return None;
        }
        let key = CString::new(key).ok()?;
        // SAFETY: `raw` is a name SQLite built for a main db, journal or WAL
        // (checked by has_uri_data), which is what sqlite3_uri_parameter
        // accepts; the returned pointer lives as long as the name ('a).
        let value = unsafe { ffi::sqlite3_uri_parameter(self.raw, key.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: non-null result is a NUL-terminated string inside the name.
        unsafe { CStr::from_ptr(value) }.to_str().ok()
    }

    /// URI parameter `key` read as a boolean ([`parse_bool`](crate::parse_bool):
    /// `1/yes/true/on` or `0/no/false/off`), or `default` when absent or
    /// unreadable.
    pub fn bool_parameter(&self, key: &str, default: bool) -> bool {
        self.parameter(key)
            .and_then(crate::parse_bool)
            .unwrap_or(default)
    }

    /// The name of the main database this file belongs to: the path itself
    /// for a main database, the database's name for its journal or WAL,
    /// `None` for other kinds.
    pub fn database_name(&self) -> Option<&'a str> {
        match self.kind {
            FileKind::MainDb => self.path,
            FileKind::MainJournal | FileKind::Wal if self.has_uri_data() => {
                // SAFETY: raw is a journal or WAL name built by SQLite, which
                // sqlite3_filename_database accepts; the result points into
                // the same allocation and lives as long as it.
                let db = unsafe { ffi::sqlite3_filename_database(self.raw) };
                if db.is_null() {
                    return None;
                }
                // SAFETY: NUL-terminated string owned by SQLite for 'a.
                unsafe { CStr::from_ptr(db) }.to_str().ok()
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
        if !self.has_uri_data() {
            return None;
        }
        match self.kind {
            // SQLite opens the main database with the name its pager keeps
            // for the database's whole life.
            FileKind::MainDb => Some(self.raw as usize),
            _ => {
                // SAFETY: raw is a journal or WAL name SQLite built (checked
                // by has_uri_data and the kind), which sqlite3_filename_database
                // accepts; it returns the pager's database name, the pointer
                // the main database was opened with.
                let db = unsafe { ffi::sqlite3_filename_database(self.raw) };
                (!db.is_null()).then_some(db as usize)
            }
        }
    }

    /// The raw pointer, for passing the name unchanged to a native VFS.
    pub(crate) fn raw(&self) -> *const c_char {
        self.raw
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
