//! The name SQLite hands to `xOpen`, with its URI parameters.

use std::ffi::{CStr, CString, c_char};
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

use crate::{FileKind, FileName};

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
}

impl OpenName<'_> {
    /// SQLite's own name pointer, when SQLite built this name.
    pub(crate) fn sqlite_ptr(&self) -> Option<NonNull<c_char>> {
        self.sqlite
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
