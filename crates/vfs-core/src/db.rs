//! A minimal owned SQLite connection, independent of any Rust binding.
//!
//! Helpers of the backend crates (turning checksums on, encrypting, copying,
//! rekeying) need to open a database and run a few statements. They use this
//! type instead of `rusqlite`, so that the library crates depend on nothing
//! but `libsqlite3-sys` and resolve next to whatever binding the
//! application uses (rusqlite, sqlx, diesel, or none). It is deliberately
//! small: open a URI, run SQL with text parameters, read the first value of
//! a result, reach the file controls of [`Connection`], close.
//!
//! ```
//! use vfs_core::db::{Database, OpenMode};
//! use vfs_core::hooks::SqlValue;
//!
//! let db = Database::open("file:db-doc?mode=memory", OpenMode::ReadWriteCreate)?;
//! db.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('hello');")?;
//! db.execute("INSERT INTO t VALUES (?1)", &["world"])?;
//! let n = db.query_value("SELECT count(*) FROM t", &[])?;
//! assert_eq!(n, Some(SqlValue::Integer(2)));
//! assert_eq!(db.query_text("SELECT v FROM t WHERE rowid = 2", &[])?.as_deref(), Some("world"));
//! assert_eq!(db.query_value("SELECT v FROM t WHERE 0", &[])?, None);
//! db.close()?;
//! # Ok::<(), vfs_core::Error>(())
//! ```

use std::ffi::{CStr, CString, c_char, c_int};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;

use crate::hooks::{Connection, SqlValue};
use crate::{Error, Result, code_name, codes};

/// How [`Database::open`] opens its database (`SQLITE_OPEN_*` flags; URI
/// file names are always accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenMode {
    /// `SQLITE_OPEN_READONLY`.
    ReadOnly,
    /// `SQLITE_OPEN_READWRITE`: the database must exist.
    ReadWrite,
    /// `SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE`.
    ReadWriteCreate,
}

impl OpenMode {
    fn flags(self) -> c_int {
        let access = match self {
            OpenMode::ReadOnly => ffi::SQLITE_OPEN_READONLY,
            OpenMode::ReadWrite => ffi::SQLITE_OPEN_READWRITE,
            OpenMode::ReadWriteCreate => ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE,
        };
        // NOMUTEX: a `Database` is neither `Send` nor `Sync`, so one thread
        // at a time uses it.
        access | ffi::SQLITE_OPEN_URI | ffi::SQLITE_OPEN_NOMUTEX
    }
}

/// An open SQLite connection owned by Rust: closed when dropped.
///
/// Neither `Send` nor `Sync` (it is opened without SQLite's connection
/// mutex). See the [module documentation](self).
pub struct Database {
    db: NonNull<ffi::sqlite3>,
    // A raw handle is not Send/Sync; the marker states it on purpose.
    _not_send: PhantomData<*mut ffi::sqlite3>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("main", &self.connection().filename("main"))
            .finish()
    }
}

fn c_text(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| {
        Error::new(
            codes::SQLITE_MISUSE,
            format!("{what} contains a NUL byte: {s:?}"),
        )
    })
}

impl Database {
    /// Opens `uri` (a path or a `file:` URI, which may name its VFS with
    /// `?vfs=` and carry parameters such as a key) in `mode`.
    ///
    /// Errors: the code and message `sqlite3_open_v2` reports
    /// (`SQLITE_CANTOPEN`, a connection hook's refusal, …), naming the file;
    /// `SQLITE_MISUSE` for a name with a NUL byte.
    pub fn open(uri: &str, mode: OpenMode) -> Result<Database> {
        let name = c_text("the database name", uri)?;
        let mut raw: *mut ffi::sqlite3 = ptr::null_mut();
        // SAFETY: `name` is a NUL-terminated string that outlives the call,
        // `raw` a valid out-slot; a null VFS name selects the one the URI
        // names, or the default.
        let rc =
            unsafe { ffi::sqlite3_open_v2(name.as_ptr(), &mut raw, mode.flags(), ptr::null()) };
        let Some(db) = NonNull::new(raw) else {
            return Err(Error::new(
                if rc == ffi::SQLITE_OK {
                    codes::SQLITE_NOMEM
                } else {
                    rc
                },
                "sqlite3_open_v2 could not allocate a connection",
            ));
        };
        // From here on `Drop` closes the handle, also on failure (SQLite
        // returns one that must be closed even when the open failed).
        let db = Database {
            db,
            _not_send: PhantomData,
        };
        if rc != ffi::SQLITE_OK {
            return Err(db.error(rc).context(format_args!("opening {uri:?}")));
        }
        Ok(db)
    }

    /// Waits up to `timeout` for locks held by other connections before a
    /// statement answers `SQLITE_BUSY` (`sqlite3_busy_timeout`).
    pub fn set_busy_timeout(&self, timeout: std::time::Duration) -> Result<()> {
        let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: live handle; the built-in busy handler needs no state.
        let rc = unsafe { ffi::sqlite3_busy_timeout(self.db.as_ptr(), ms) };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.error(rc))
        }
    }

    /// The connection's file controls and metadata (the VFS name, reserved
    /// bytes, pragmas sent to the file): the same safe API a connection
    /// hook receives.
    pub fn connection(&self) -> Connection<'_> {
        // SAFETY: the handle is open for as long as `self` is borrowed.
        unsafe { Connection::borrowed(self.db.as_ptr()) }
    }

    /// Runs `sql`, any number of `;`-separated statements without
    /// parameters, discarding their rows (`sqlite3_exec`).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        let sql_c = c_text("the SQL", sql)?;
        // SAFETY: live handle, NUL-terminated SQL; no callback, and a null
        // error slot (the message is read from the handle instead).
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                sql_c.as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.error(rc))
        }
    }

    /// Runs the single statement `sql` with text parameters `?1`, `?2`, …
    /// bound to `params`, to completion, discarding its rows.
    ///
    /// Parameters keep secrets (a URI with a key) out of the SQL text that
    /// SQLite may log or show in error messages.
    pub fn execute(&self, sql: &str, params: &[&str]) -> Result<()> {
        let mut stmt = self.prepare(sql, params)?;
        while stmt.step()? {}
        Ok(())
    }

    /// Runs the single statement `sql` with text parameters and answers the
    /// first column of its first row (`None` when it returns no row); the
    /// statement runs to completion.
    pub fn query_value(&self, sql: &str, params: &[&str]) -> Result<Option<SqlValue>> {
        let mut stmt = self.prepare(sql, params)?;
        let first = if stmt.step()? {
            Some(stmt.column(0))
        } else {
            return Ok(None);
        };
        while stmt.step()? {}
        Ok(first)
    }

    /// [`query_value`](Self::query_value) as text: integers and reals in
    /// SQLite's text form, `NULL` as `None`, a blob as an error.
    pub fn query_text(&self, sql: &str, params: &[&str]) -> Result<Option<String>> {
        match self.query_value(sql, params)? {
            None | Some(SqlValue::Null) => Ok(None),
            Some(SqlValue::Text(s)) => Ok(Some(s)),
            Some(SqlValue::Integer(v)) => Ok(Some(v.to_string())),
            Some(SqlValue::Real(v)) => Ok(Some(v.to_string())),
            Some(SqlValue::Blob(_)) => Err(Error::new(
                ffi::SQLITE_MISMATCH,
                format!("{sql:?} answered a blob where text was expected"),
            )),
        }
    }

    /// [`query_value`](Self::query_value) as an integer: `None` for no row
    /// or `NULL`, an error for any other type.
    pub fn query_i64(&self, sql: &str, params: &[&str]) -> Result<Option<i64>> {
        match self.query_value(sql, params)? {
            None | Some(SqlValue::Null) => Ok(None),
            Some(SqlValue::Integer(v)) => Ok(Some(v)),
            Some(other) => Err(Error::new(
                ffi::SQLITE_MISMATCH,
                format!("{sql:?} answered {other:?} where an integer was expected"),
            )),
        }
    }

    /// Closes the connection, reporting what `sqlite3_close` says (dropping
    /// closes too, silently).
    pub fn close(self) -> Result<()> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the handle is open and, owned by `this`, closed once: the
        // ManuallyDrop keeps Drop from closing it again. Statements borrow
        // the `Database`, so none is left unfinalized, and close cannot
        // answer SQLITE_BUSY and leave the handle open.
        let rc = unsafe { ffi::sqlite3_close(this.db.as_ptr()) };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(Error::new(
                rc,
                format!("closing the connection failed: {}", code_name(rc)),
            ))
        }
    }

    /// The connection's current error, for a call that returned `rc`.
    fn error(&self, rc: c_int) -> Error {
        // SAFETY: a live handle, used by this thread only.
        let code = unsafe { ffi::sqlite3_extended_errcode(self.db.as_ptr()) };
        // SAFETY: as above; the message is owned by the connection.
        let p = unsafe { ffi::sqlite3_errmsg(self.db.as_ptr()) };
        let msg = if p.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated string, copied before any other call
            // on the connection can change it.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        };
        // The extended code refines rc unless it belongs to another call.
        let code = if code & 0xff == rc & 0xff { code } else { rc };
        let msg = if msg.is_empty() {
            code_name(code).into_owned()
        } else {
            msg
        };
        Error::new(code, msg)
    }

    fn prepare(&self, sql: &str, params: &[&str]) -> Result<Statement<'_>> {
        let len = c_int::try_from(sql.len())
            .map_err(|_| Error::new(ffi::SQLITE_TOOBIG, "the SQL text is longer than 2 GiB"))?;
        let mut raw: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let mut tail: *const c_char = ptr::null();
        // SAFETY: live handle; `sql` is valid for `len` bytes (no NUL
        // needed with an explicit length); out-slots are valid.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                &mut raw,
                &mut tail,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error(rc));
        }
        let Some(stmt) = NonNull::new(raw) else {
            return Err(Error::new(
                codes::SQLITE_MISUSE,
                format!("{sql:?} holds no statement"),
            ));
        };
        let stmt = Statement { db: self, stmt };
        // SAFETY: `tail` points into `sql` at or after its start and at or
        // before its end, as sqlite3_prepare_v2 documents.
        let consumed = unsafe { tail.cast::<u8>().offset_from(sql.as_ptr()) };
        let rest = usize::try_from(consumed)
            .ok()
            .and_then(|n| sql.get(n..))
            .unwrap_or("");
        if !rest.trim().trim_matches(';').trim().is_empty() {
            return Err(Error::new(
                codes::SQLITE_MISUSE,
                format!("one statement expected, more follow: {rest:?}"),
            ));
        }
        // SAFETY: live statement.
        let expected = unsafe { ffi::sqlite3_bind_parameter_count(stmt.stmt.as_ptr()) };
        if usize::try_from(expected).ok() != Some(params.len()) {
            return Err(Error::new(
                ffi::SQLITE_RANGE,
                format!(
                    "{sql:?} takes {expected} parameters, {} given",
                    params.len()
                ),
            ));
        }
        for (i, p) in params.iter().enumerate() {
            let n = c_int::try_from(p.len())
                .map_err(|_| Error::new(ffi::SQLITE_TOOBIG, "a parameter is longer than 2 GiB"))?;
            // SAFETY: live statement, index within 1..=count; the text is
            // copied by SQLite (SQLITE_TRANSIENT) before `p` can go away.
            let rc = unsafe {
                ffi::sqlite3_bind_text(
                    stmt.stmt.as_ptr(),
                    (i + 1) as c_int,
                    p.as_ptr().cast(),
                    n,
                    ffi::SQLITE_TRANSIENT(),
                )
            };
            if rc != ffi::SQLITE_OK {
                return Err(self.error(rc));
            }
        }
        Ok(stmt)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: the handle is open and owned, closed exactly once; no
        // statement outlives its borrow of `self` (see `close`).
        unsafe { ffi::sqlite3_close(self.db.as_ptr()) };
    }
}

/// A prepared statement, finalized when dropped (before the borrow of its
/// connection ends).
struct Statement<'db> {
    db: &'db Database,
    stmt: NonNull<ffi::sqlite3_stmt>,
}

impl Statement<'_> {
    /// Steps once: `true` with a row, `false` when done.
    fn step(&mut self) -> Result<bool> {
        // SAFETY: live statement on a live connection.
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(self.db.error(rc)),
        }
    }

    /// Column `i` of the current row, copied out.
    fn column(&self, i: c_int) -> SqlValue {
        let s = self.stmt.as_ptr();
        // Every call below: a live statement that step just moved to a row,
        // and a column index SQLite checks (an out-of-range one reads NULL).
        // SAFETY: as just said.
        match unsafe { ffi::sqlite3_column_type(s, i) } {
            // SAFETY: as above.
            ffi::SQLITE_INTEGER => SqlValue::Integer(unsafe { ffi::sqlite3_column_int64(s, i) }),
            // SAFETY: as above.
            ffi::SQLITE_FLOAT => SqlValue::Real(unsafe { ffi::sqlite3_column_double(s, i) }),
            ffi::SQLITE_TEXT => {
                // SAFETY: as above; `_bytes` after `_text`, as SQLite asks.
                let p = unsafe { ffi::sqlite3_column_text(s, i) };
                // SAFETY: as above.
                let n = unsafe { ffi::sqlite3_column_bytes(s, i) };
                // SAFETY: the text's n bytes, valid until the next step or
                // finalize, which cannot happen while `self` is borrowed.
                let bytes = unsafe { sqlite_bytes(p, n) };
                SqlValue::Text(String::from_utf8_lossy(bytes).into_owned())
            }
            ffi::SQLITE_BLOB => {
                // SAFETY: as above; `_bytes` after `_blob`.
                let p = unsafe { ffi::sqlite3_column_blob(s, i) }.cast::<u8>();
                // SAFETY: as above.
                let n = unsafe { ffi::sqlite3_column_bytes(s, i) };
                // SAFETY: as for text.
                SqlValue::Blob(unsafe { sqlite_bytes(p, n) }.to_vec())
            }
            _ => SqlValue::Null,
        }
    }
}

/// The `n` bytes at `p`, as SQLite answers a text or blob (`p` may be null
/// for an empty one).
///
/// # Safety
/// `p` is null or points to `n` readable bytes that stay unchanged for `'a`.
pub(crate) unsafe fn sqlite_bytes<'a>(p: *const u8, n: c_int) -> &'a [u8] {
    if p.is_null() || n <= 0 {
        return &[];
    }
    // SAFETY: the caller's contract, with p non-null and n > 0.
    unsafe { std::slice::from_raw_parts(p, n as usize) }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live and finalized exactly once, here.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(name: &str) -> Database {
        Database::open(
            &format!("file:{name}?mode=memory"),
            OpenMode::ReadWriteCreate,
        )
        .unwrap()
    }

    #[test]
    fn values_of_every_type_come_back() {
        let db = memory("db-types");
        assert_eq!(
            db.query_value("SELECT 42", &[]).unwrap(),
            Some(SqlValue::Integer(42))
        );
        assert_eq!(
            db.query_value("SELECT 1.5", &[]).unwrap(),
            Some(SqlValue::Real(1.5))
        );
        assert_eq!(
            db.query_value("SELECT x'00ff'", &[]).unwrap(),
            Some(SqlValue::Blob(vec![0, 0xff]))
        );
        assert_eq!(
            db.query_value("SELECT NULL", &[]).unwrap(),
            Some(SqlValue::Null)
        );
        assert_eq!(
            db.query_text("SELECT ?1 || ?2", &["a", "b"]).unwrap(),
            Some("ab".to_owned())
        );
        assert_eq!(db.query_i64("SELECT 7", &[]).unwrap(), Some(7));
        assert_eq!(
            db.query_i64("SELECT 'x'", &[]).unwrap_err().code(),
            Some(ffi::SQLITE_MISMATCH)
        );
    }

    #[test]
    fn errors_carry_sqlite_codes_and_messages() {
        let db = memory("db-errors");
        let e = db.execute_batch("SELEC 1").unwrap_err();
        assert_eq!(e.code(), Some(codes::SQLITE_ERROR));
        assert!(e.message().contains("syntax error"), "{e}");

        db.execute_batch("CREATE TABLE t(x PRIMARY KEY); INSERT INTO t VALUES (1);")
            .unwrap();
        let e = db.execute("INSERT INTO t VALUES (1)", &[]).unwrap_err();
        assert_eq!(e.code(), Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY));
        assert!(e.message().contains("UNIQUE"), "{e}");

        let e = db.execute("SELECT ?1", &[]).unwrap_err();
        assert_eq!(e.code(), Some(ffi::SQLITE_RANGE));
        let e = db.execute("SELECT 1; SELECT 2", &[]).unwrap_err();
        assert_eq!(e.code(), Some(codes::SQLITE_MISUSE));
        let e = db.execute("  ", &[]).unwrap_err();
        assert_eq!(e.code(), Some(codes::SQLITE_MISUSE));
        db.execute("SELECT 1;", &[]).unwrap();
        db.close().unwrap();
    }

    #[test]
    fn a_missing_file_is_refused_with_cantopen() {
        let dir = std::env::temp_dir().join("vfs-core-db-test-no-such-dir");
        let e = Database::open(&dir.join("x.db").display().to_string(), OpenMode::ReadWrite)
            .unwrap_err();
        assert_eq!(e.code(), Some(codes::SQLITE_CANTOPEN));
        assert!(e.message().contains("x.db"), "{e}");
    }
}
