//! Connection hooks: safe code that runs on every new SQLite connection.
//!
//! Some settings a VFS needs are not file-level but connection-level: the
//! number of reserved bytes per page (`SQLITE_FCNTL_RESERVE_BYTES`), or SQL
//! functions such as `verify_checksum`. A VFS cannot apply them itself, but a
//! hook registered with [`on_connection`] runs inside `sqlite3_open_v2`
//! (through `sqlite3_auto_extension`), right after the main database file was
//! opened and before any page was read or written, and receives a
//! [`Connection`] with a small safe API.
//!
//! ```
//! use vfs_core::hooks::{self, SqlValue};
//!
//! // Every connection opened from now on gets a `twice(x)` SQL function.
//! let id = hooks::on_connection(|conn| {
//!     conn.create_scalar_function("twice", 1, true, |args| {
//!         Ok(match args[0].as_i64() {
//!             Some(v) => SqlValue::Integer(v * 2),
//!             None => SqlValue::Null,
//!         })
//!     })
//! })
//! .unwrap();
//! let db = rusqlite::Connection::open_in_memory().unwrap();
//! let v: i64 = db.query_row("SELECT twice(21)", [], |r| r.get(0)).unwrap();
//! assert_eq!(v, 42);
//! hooks::remove_hook(id);
//! ```
//!
//! Hooks are process-wide: they run for every connection of the process,
//! whatever its VFS. A hook that concerns one VFS checks
//! [`Connection::vfs_name`] or asks the file through
//! [`Connection::file_control_pragma`] first. Only the `main` database of a
//! connection exists when hooks run; databases attached later do not trigger
//! them.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::{Arc, OnceLock};

use libsqlite3_sys as ffi;
use parking_lot::RwLock;

use crate::db::sqlite_bytes;
use crate::sqlite_string::SqliteString;
use crate::{Error, Result, code_name, codes};

type HookFn = dyn Fn(&Connection<'_>) -> Result<()> + Send + Sync;

struct Registry {
    next: u64,
    hooks: Vec<(u64, Arc<HookFn>)>,
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        RwLock::new(Registry {
            next: 0,
            hooks: Vec::new(),
        })
    })
}

/// Identifies a hook registered with [`on_connection`], for
/// [`remove_hook`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HookId(u64);

/// Runs `hook` on every connection opened from now on, in registration
/// order, inside `sqlite3_open_v2`.
///
/// An error returned by a hook makes the open fail with the error's code
/// (`SQLITE_ERROR` when it carries none) and message; a panic is caught and
/// fails the open the same way. Hooks that only try to improve a connection
/// should therefore swallow their own errors.
pub fn on_connection<F>(hook: F) -> Result<HookId>
where
    F: Fn(&Connection<'_>) -> Result<()> + Send + Sync + 'static,
{
    install()?;
    let mut reg = registry().write();
    reg.next += 1;
    let id = reg.next;
    reg.hooks.push((id, Arc::new(hook)));
    Ok(HookId(id))
}

/// Removes a hook; answers whether it was registered. Connections opened
/// afterwards no longer run it.
pub fn remove_hook(id: HookId) -> bool {
    let mut reg = registry().write();
    let before = reg.hooks.len();
    reg.hooks.retain(|(i, _)| *i != id.0);
    reg.hooks.len() != before
}

fn install() -> Result<()> {
    static INSTALLED: OnceLock<c_int> = OnceLock::new();
    let rc = *INSTALLED.get_or_init(|| {
        // SAFETY: `auto_entry` has exactly the signature SQLite calls auto
        // extensions with, and it is a plain function that lives forever.
        unsafe { crate::extension::auto_extension(auto_entry) }
    });
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(Error::new(
            rc,
            format!("sqlite3_auto_extension failed: {}", code_name(rc)),
        ))
    }
}

/// Sets `*pz_err` to a copy of `msg` that SQLite will free.
///
/// # Safety
/// `pz_err` is null or the error-message slot SQLite passed to an auto
/// extension.
unsafe fn set_open_error(pz_err: *mut *mut c_char, msg: &str) {
    if pz_err.is_null() {
        return;
    }
    // SAFETY: the slot SQLite passes starts null and is freed by SQLite
    // with sqlite3_free.
    unsafe { SqliteString::store(pz_err, SqliteString::new(msg)) };
}

unsafe extern "C" fn auto_entry(
    db: *mut ffi::sqlite3,
    pz_err: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    if db.is_null() {
        return ffi::SQLITE_OK;
    }
    let hooks: Vec<Arc<HookFn>> = registry()
        .read()
        .hooks
        .iter()
        .map(|(_, h)| h.clone())
        .collect();
    let conn = Connection {
        db,
        _borrow: PhantomData,
    };
    for hook in hooks {
        let outcome = catch_unwind(AssertUnwindSafe(|| hook(&conn)));
        let err = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(_) => Error::new(codes::SQLITE_ERROR, "a connection hook panicked"),
        };
        let code = err.code().unwrap_or(codes::SQLITE_ERROR);
        crate::log(code, &format!("connection hook failed: {}", err.message()));
        // SAFETY: pz_err is the slot SQLite handed to this auto extension.
        unsafe { set_open_error(pz_err, err.message()) };
        return code;
    }
    ffi::SQLITE_OK
}

/// A connection being opened, as seen by a hook: valid only for the duration
/// of the hook call.
pub struct Connection<'a> {
    db: *mut ffi::sqlite3,
    _borrow: PhantomData<&'a mut ffi::sqlite3>,
}

impl std::fmt::Debug for Connection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("main", &self.filename("main"))
            .finish()
    }
}

fn c_string(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| {
        Error::new(
            codes::SQLITE_MISUSE,
            format!("{what} {s:?} contains a NUL byte"),
        )
    })
}

impl Connection<'_> {
    /// Borrows the open connection `db`.
    ///
    /// # Safety
    /// `db` is an open connection that stays open, and is used by this
    /// thread only, for the lifetime the caller gives the result.
    pub(crate) unsafe fn borrowed<'a>(db: *mut ffi::sqlite3) -> Connection<'a> {
        Connection {
            db,
            _borrow: PhantomData,
        }
    }

    /// The name of the VFS the database `schema` (`"main"`, `"temp"`, or an
    /// attached name) is opened with: the top of its stack. `None` when the
    /// schema does not exist.
    pub fn vfs_name(&self, schema: &str) -> Option<String> {
        let schema = CString::new(schema).ok()?;
        let mut vfs: *mut ffi::sqlite3_vfs = ptr::null_mut();
        // SAFETY: db is a live connection (valid during the hook); for
        // VFS_POINTER the argument is a `sqlite3_vfs**`, answered by SQLite
        // itself.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                self.db,
                schema.as_ptr(),
                ffi::SQLITE_FCNTL_VFS_POINTER,
                (&mut vfs as *mut *mut ffi::sqlite3_vfs).cast::<c_void>(),
            )
        };
        if rc != ffi::SQLITE_OK || vfs.is_null() {
            return None;
        }
        // SAFETY: a registered VFS has a NUL-terminated name that lives as
        // long as the registration, which outlives this call.
        let name = unsafe { (*vfs).zName };
        if name.is_null() {
            return None;
        }
        // SAFETY: as above.
        Some(
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// The file name of database `schema`; `None` for a missing schema, and
    /// `Some("")` for an in-memory or temporary database.
    pub fn filename(&self, schema: &str) -> Option<String> {
        let schema = CString::new(schema).ok()?;
        // SAFETY: live connection and valid C string; the result is null or
        // a NUL-terminated string owned by the connection.
        let p = unsafe { ffi::sqlite3_db_filename(self.db, schema.as_ptr()) };
        if p.is_null() {
            return None;
        }
        // SAFETY: as above; copied before returning.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    /// Sends `PRAGMA name` (or `PRAGMA name = value`) to the file of
    /// database `schema` as `SQLITE_FCNTL_PRAGMA`, without running SQL.
    ///
    /// `Ok(Some(text))` when the VFS handled it (the text it answered, empty
    /// if none), `Ok(None)` when no layer of the file's VFS knows the pragma
    /// (`SQLITE_NOTFOUND`), `Err` when the VFS refused it.
    pub fn file_control_pragma(
        &self,
        schema: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<Option<String>> {
        let schema_c = c_string("schema", schema)?;
        let name_c = c_string("pragma", name)?;
        let value_c = value.map(|v| c_string("pragma value", v)).transpose()?;
        let mut args: [*mut c_char; 3] = [
            ptr::null_mut(),
            name_c.as_ptr().cast_mut(),
            value_c
                .as_ref()
                .map_or(ptr::null_mut(), |v| v.as_ptr().cast_mut()),
        ];
        // SAFETY: for SQLITE_FCNTL_PRAGMA the argument is a `char*[3]`:
        // [0] a null out-slot the VFS may fill with memory from SQLite's
        // allocator (vfs-core's files do, through SqliteString; any VFS
        // must, as SQLite frees it), [1] and [2] NUL-terminated strings that
        // outlive the call (the VFS only reads them).
        let rc = unsafe {
            ffi::sqlite3_file_control(
                self.db,
                schema_c.as_ptr(),
                ffi::SQLITE_FCNTL_PRAGMA,
                args.as_mut_ptr().cast::<c_void>(),
            )
        };
        // SAFETY: a non-null [0] is a NUL-terminated string the VFS
        // allocated with SQLite's allocator for us to free.
        let answer = unsafe { SqliteString::from_raw(args[0]) }.map(|s| s.to_string_lossy());
        match rc {
            ffi::SQLITE_OK => Ok(Some(answer.unwrap_or_default())),
            ffi::SQLITE_NOTFOUND => Ok(None),
            rc => Err(Error::new(
                rc,
                answer.unwrap_or_else(|| format!("PRAGMA {name} failed: {}", code_name(rc))),
            )),
        }
    }

    fn reserve_control(&self, schema: &str, value: c_int) -> Result<u8> {
        let schema_c = c_string("schema", schema)?;
        let mut n: c_int = value;
        // SAFETY: for SQLITE_FCNTL_RESERVE_BYTES the argument is an `int*`
        // that SQLite reads (new value, or -1 to only query) and overwrites
        // with the previous requested reserve.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                self.db,
                schema_c.as_ptr(),
                ffi::SQLITE_FCNTL_RESERVE_BYTES,
                (&mut n as *mut c_int).cast::<c_void>(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(Error::new(
                rc,
                format!(
                    "reserve-bytes control on {schema:?} failed: {}",
                    code_name(rc)
                ),
            ));
        }
        Ok(n.clamp(0, 255) as u8)
    }

    /// The reserved bytes per page requested for database `schema` (the
    /// larger of the file's current reserve and the last request).
    pub fn reserve_bytes(&self, schema: &str) -> Result<u8> {
        self.reserve_control(schema, -1)
    }

    /// Requests `n` reserved bytes per page for database `schema`
    /// (`SQLITE_FCNTL_RESERVE_BYTES`); returns the previous request.
    ///
    /// It applies to a database created by this connection (nothing written
    /// yet) and to the next `VACUUM` of an existing one; SQLite never
    /// shrinks a reserve.
    pub fn set_reserve_bytes(&self, schema: &str, n: u8) -> Result<u8> {
        self.reserve_control(schema, c_int::from(n))
    }

    /// Creates (or replaces) the SQL scalar function `name` taking `n_args`
    /// arguments (-1: any number) on this connection. `deterministic` marks
    /// it `SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS` (same result for the same
    /// arguments, no side effects).
    ///
    /// An `Err` from `f` becomes the SQL error (its code, or `SQLITE_ERROR`);
    /// a panic is caught and reported as an error.
    pub fn create_scalar_function<F>(
        &self,
        name: &str,
        n_args: i32,
        deterministic: bool,
        f: F,
    ) -> Result<()>
    where
        F: Fn(&[ArgValue<'_>]) -> Result<SqlValue> + Send + 'static,
    {
        let name_c = c_string("function name", name)?;
        let mut flags = ffi::SQLITE_UTF8;
        if deterministic {
            flags |= ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS;
        }
        let app = Box::into_raw(Box::new(f)).cast::<c_void>();
        // SAFETY: live connection; `app` is a leaked Box<F> that SQLite
        // hands back to `call_scalar::<F>` and frees with `drop_boxed::<F>`
        // (also when this call fails, as sqlite3_create_function_v2
        // documents).
        let rc = unsafe {
            ffi::sqlite3_create_function_v2(
                self.db,
                name_c.as_ptr(),
                n_args,
                flags,
                app,
                Some(call_scalar::<F>),
                None,
                None,
                Some(drop_boxed::<F>),
            )
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(Error::new(
                rc,
                format!("creating SQL function {name:?} failed: {}", code_name(rc)),
            ))
        }
    }
}

/// One argument of a SQL function created with
/// [`Connection::create_scalar_function`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArgValue<'a> {
    /// `NULL`.
    Null,
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text, as SQLite stores it (UTF-8, not checked).
    Text(&'a [u8]),
    /// A blob.
    Blob(&'a [u8]),
}

impl<'a> ArgValue<'a> {
    /// The blob's bytes, or `None` for any other type.
    pub fn as_blob(&self) -> Option<&'a [u8]> {
        match *self {
            ArgValue::Blob(b) => Some(b),
            _ => None,
        }
    }

    /// The integer value, or `None` for any other type.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ArgValue::Integer(v) => Some(v),
            _ => None,
        }
    }
}

/// The result of a SQL function created with
/// [`Connection::create_scalar_function`].
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    /// `NULL`.
    Null,
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// A blob.
    Blob(Vec<u8>),
}

/// Reads argument `v`.
///
/// # Safety
/// `v` is a protected `sqlite3_value` valid for `'a` (a function argument
/// during the call).
unsafe fn arg_value<'a>(v: *mut ffi::sqlite3_value) -> ArgValue<'a> {
    // Every call below reads the valid value the caller guarantees.
    // SAFETY: as just said.
    match unsafe { ffi::sqlite3_value_type(v) } {
        // SAFETY: as above.
        ffi::SQLITE_INTEGER => ArgValue::Integer(unsafe { ffi::sqlite3_value_int64(v) }),
        // SAFETY: as above.
        ffi::SQLITE_FLOAT => ArgValue::Real(unsafe { ffi::sqlite3_value_double(v) }),
        ffi::SQLITE_TEXT => {
            // SAFETY: as above; `_bytes` after `_text`, as SQLite asks.
            let p = unsafe { ffi::sqlite3_value_text(v) };
            // SAFETY: as above.
            let n = unsafe { ffi::sqlite3_value_bytes(v) };
            // SAFETY: the text's n bytes stay valid until the value changes,
            // which nobody does during the function call ('a).
            ArgValue::Text(unsafe { sqlite_bytes(p, n) })
        }
        ffi::SQLITE_BLOB => {
            // SAFETY: as above; `_bytes` after `_blob`.
            let p = unsafe { ffi::sqlite3_value_blob(v) }.cast::<u8>();
            // SAFETY: as above.
            let n = unsafe { ffi::sqlite3_value_bytes(v) };
            // SAFETY: as for text.
            ArgValue::Blob(unsafe { sqlite_bytes(p, n) })
        }
        _ => ArgValue::Null,
    }
}

unsafe extern "C" fn call_scalar<F>(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) where
    F: Fn(&[ArgValue<'_>]) -> Result<SqlValue> + Send + 'static,
{
    // SAFETY: `ctx` is the live function context of this call.
    let data = unsafe { ffi::sqlite3_user_data(ctx) };
    // SAFETY: the user data is the Box<F> leaked in create_scalar_function;
    // it lives until drop_boxed runs, which SQLite never does during a call.
    let f = unsafe { &*data.cast::<F>() };
    let n = argc.max(0) as usize;
    let args: Vec<ArgValue<'_>> = (0..n)
        .map(|i| {
            // SAFETY: argv holds argc entries and i < argc.
            let slot = unsafe { argv.add(i) };
            // SAFETY: `slot` is one of the argc readable entries.
            let value = unsafe { *slot };
            // SAFETY: each entry is a protected value, valid for the call.
            unsafe { arg_value(value) }
        })
        .collect();
    let outcome = catch_unwind(AssertUnwindSafe(|| f(&args)));
    let result = match outcome {
        Ok(r) => r,
        Err(_) => Err(Error::new(codes::SQLITE_ERROR, "SQL function panicked")),
    };
    // Every call below: `ctx` is the live function context; text, blob and
    // message results are copied by SQLite (SQLITE_TRANSIENT, and
    // sqlite3_result_error always copies) before the Rust values drop.
    match result {
        // SAFETY: as just said.
        Ok(SqlValue::Null) => unsafe { ffi::sqlite3_result_null(ctx) },
        // SAFETY: as above.
        Ok(SqlValue::Integer(v)) => unsafe { ffi::sqlite3_result_int64(ctx, v) },
        // SAFETY: as above.
        Ok(SqlValue::Real(v)) => unsafe { ffi::sqlite3_result_double(ctx, v) },
        // SAFETY: as above; `s` has s.len() bytes of UTF-8.
        Ok(SqlValue::Text(s)) => unsafe {
            ffi::sqlite3_result_text64(
                ctx,
                s.as_ptr().cast::<c_char>(),
                s.len() as u64,
                ffi::SQLITE_TRANSIENT(),
                ffi::SQLITE_UTF8 as u8,
            )
        },
        // SAFETY: as above; `b` has b.len() bytes.
        Ok(SqlValue::Blob(b)) => unsafe {
            ffi::sqlite3_result_blob64(
                ctx,
                b.as_ptr().cast::<c_void>(),
                b.len() as u64,
                ffi::SQLITE_TRANSIENT(),
            )
        },
        Err(e) => {
            let msg = e.message();
            // SAFETY: as above; the message's bytes, its length capped.
            unsafe {
                ffi::sqlite3_result_error(
                    ctx,
                    msg.as_ptr().cast::<c_char>(),
                    msg.len().min(c_int::MAX as usize) as c_int,
                )
            };
            if let Some(code) = e.code() {
                // SAFETY: as above.
                unsafe { ffi::sqlite3_result_error_code(ctx, code) };
            }
        }
    }
}

unsafe extern "C" fn drop_boxed<F>(p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: p is the Box<F> leaked in create_scalar_function; SQLite
        // calls the destructor exactly once.
        drop(unsafe { Box::from_raw(p.cast::<F>()) });
    }
}
