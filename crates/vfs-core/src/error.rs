//! Errors that carry an SQLite result code and a readable message.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::io;

use libsqlite3_sys as ffi;

/// The result type of every backend method.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error a backend returns to SQLite.
///
/// It carries either an explicit SQLite result code (primary or extended:
/// `SQLITE_BUSY`, `SQLITE_FULL`, `SQLITE_IOERR_DATA`, …) or none, in which
/// case the code is the default of the operation that failed (an `xRead`
/// failure becomes `SQLITE_IOERR_READ`, an `xSync` failure
/// `SQLITE_IOERR_FSYNC`, and so on; see [`Op`]). The message is kept for
/// `xGetLastError`, written to `sqlite3_log`, and readable on the same thread
/// through [`last_error`](crate::last_error).
///
/// ```
/// use vfs_core::{Error, codes};
/// let e = Error::new(codes::SQLITE_FULL, "budget of 1 MiB exhausted");
/// assert_eq!(e.code(), Some(codes::SQLITE_FULL));
/// assert_eq!(e.to_string(), "budget of 1 MiB exhausted (SQLITE_FULL)");
///
/// // A plain I/O error takes the operation's default code.
/// let io = Error::from(std::io::Error::other("disk on fire"));
/// assert_eq!(io.code(), None);
/// assert_eq!(io.code_for(vfs_core::Op::Write), codes::SQLITE_IOERR_WRITE);
/// ```
#[derive(Clone)]
pub struct Error {
    code: Option<i32>,
    /// From an `io::Error` of kind `NotFound`: a missing file, which makes
    /// a failed delete `SQLITE_IOERR_DELETE_NOENT` (not to be confused with
    /// `SQLITE_NOTFOUND`, [`Error::not_found`]).
    missing_file: bool,
    /// The operating system's error number (`errno`), when the failure
    /// came from a system call: what `xGetLastError` reports to SQLite
    /// (`sqlite3_system_errno`).
    os_error: Option<i32>,
    message: Cow<'static, str>,
}

/// The operation an error came from; it picks the default result code of an
/// error that carries none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// `xOpen`: default `SQLITE_CANTOPEN`.
    Open,
    /// `xDelete`: default `SQLITE_IOERR_DELETE` (`SQLITE_IOERR_DELETE_NOENT`
    /// when the I/O error kind is `NotFound`).
    Delete,
    /// `xAccess`: default `SQLITE_IOERR_ACCESS`.
    Access,
    /// `xFullPathname`: default `SQLITE_CANTOPEN_FULLPATH`.
    FullPathname,
    /// `xRead`: default `SQLITE_IOERR_READ`.
    Read,
    /// `xWrite`: default `SQLITE_IOERR_WRITE`.
    Write,
    /// `xTruncate`: default `SQLITE_IOERR_TRUNCATE`.
    Truncate,
    /// `xSync`: default `SQLITE_IOERR_FSYNC`.
    Sync,
    /// `xFileSize`: default `SQLITE_IOERR_FSTAT`.
    FileSize,
    /// `xLock`: default `SQLITE_IOERR_LOCK`.
    Lock,
    /// `xUnlock`: default `SQLITE_IOERR_UNLOCK`.
    Unlock,
    /// `xCheckReservedLock`: default `SQLITE_IOERR_CHECKRESERVEDLOCK`.
    CheckReservedLock,
    /// `xFileControl`: default `SQLITE_ERROR`.
    FileControl,
    /// `xShmMap`: default `SQLITE_IOERR_SHMMAP`.
    ShmMap,
    /// `xShmLock`: default `SQLITE_IOERR_SHMLOCK`.
    ShmLock,
    /// `xShmUnmap`: default `SQLITE_IOERR_SHMMAP`.
    ShmUnmap,
    /// `xFetch`: default `SQLITE_IOERR_MMAP`.
    Fetch,
    /// `xUnfetch`: default `SQLITE_IOERR_MMAP`.
    Unfetch,
    /// `xClose`: default `SQLITE_IOERR_CLOSE`.
    Close,
}

impl Op {
    /// The result code SQLite expects when this operation fails for an
    /// unspecified I/O reason.
    pub fn default_code(self) -> i32 {
        match self {
            Op::Open => ffi::SQLITE_CANTOPEN,
            Op::Delete => ffi::SQLITE_IOERR_DELETE,
            Op::Access => ffi::SQLITE_IOERR_ACCESS,
            Op::FullPathname => ffi::SQLITE_CANTOPEN_FULLPATH,
            Op::Read => ffi::SQLITE_IOERR_READ,
            Op::Write => ffi::SQLITE_IOERR_WRITE,
            Op::Truncate => ffi::SQLITE_IOERR_TRUNCATE,
            Op::Sync => ffi::SQLITE_IOERR_FSYNC,
            Op::FileSize => ffi::SQLITE_IOERR_FSTAT,
            Op::Lock => ffi::SQLITE_IOERR_LOCK,
            Op::Unlock => ffi::SQLITE_IOERR_UNLOCK,
            Op::CheckReservedLock => ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
            Op::FileControl => ffi::SQLITE_ERROR,
            Op::ShmMap | Op::ShmUnmap => ffi::SQLITE_IOERR_SHMMAP,
            Op::ShmLock => ffi::SQLITE_IOERR_SHMLOCK,
            Op::Fetch | Op::Unfetch => ffi::SQLITE_IOERR_MMAP,
            Op::Close => ffi::SQLITE_IOERR_CLOSE,
        }
    }

    /// A short lower-case name (`"read"`, `"write"`, …) for logs and tables.
    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Delete => "delete",
            Op::Access => "access",
            Op::FullPathname => "full_pathname",
            Op::Read => "read",
            Op::Write => "write",
            Op::Truncate => "truncate",
            Op::Sync => "sync",
            Op::FileSize => "file_size",
            Op::Lock => "lock",
            Op::Unlock => "unlock",
            Op::CheckReservedLock => "check_reserved_lock",
            Op::FileControl => "file_control",
            Op::ShmMap => "shm_map",
            Op::ShmLock => "shm_lock",
            Op::ShmUnmap => "shm_unmap",
            Op::Fetch => "fetch",
            Op::Unfetch => "unfetch",
            Op::Close => "close",
        }
    }
}

impl Error {
    /// An error with an explicit SQLite result code (primary or extended).
    pub fn new(code: i32, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            code: Some(code),
            missing_file: false,
            os_error: None,
            message: message.into(),
        }
    }

    /// An error whose code is the failing operation's default.
    pub fn io(message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            code: None,
            missing_file: false,
            os_error: None,
            message: message.into(),
        }
    }

    /// `SQLITE_NOTFOUND`: the answer of a file control nobody handles.
    pub fn not_found() -> Self {
        Error::new(ffi::SQLITE_NOTFOUND, "not handled")
    }

    /// `SQLITE_BUSY`.
    pub fn busy(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ffi::SQLITE_BUSY, message)
    }

    /// `SQLITE_READONLY`.
    pub fn readonly(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ffi::SQLITE_READONLY, message)
    }

    /// `SQLITE_FULL`.
    pub fn full(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ffi::SQLITE_FULL, message)
    }

    /// `SQLITE_CANTOPEN`.
    pub fn cant_open(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ffi::SQLITE_CANTOPEN, message)
    }

    /// The same error, caused by operating-system error `errno` (SQLite
    /// reports it through `sqlite3_system_errno`). An error made from an
    /// `io::Error` carries its `raw_os_error` already.
    ///
    /// ```
    /// use vfs_core::{Error, codes};
    /// let e = Error::new(codes::SQLITE_FULL, "disk full").with_os_error(28);
    /// assert_eq!(e.os_error(), Some(28));
    /// let io = Error::from(std::io::Error::from_raw_os_error(2));
    /// assert_eq!(io.os_error(), Some(2));
    /// ```
    pub fn with_os_error(mut self, errno: i32) -> Self {
        self.os_error = Some(errno);
        self
    }

    /// The operating system's error number behind this error, if any.
    pub fn os_error(&self) -> Option<i32> {
        self.os_error
    }

    /// The explicit code, if any.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// The code SQLite receives when this error comes from `op`.
    pub fn code_for(&self, op: Op) -> i32 {
        match self.code {
            Some(code) => code,
            None if op == Op::Delete && self.missing_file => ffi::SQLITE_IOERR_DELETE_NOENT,
            None => op.default_code(),
        }
    }

    /// Whether this is the `SQLITE_NOTFOUND` answer of an unhandled control.
    pub fn is_not_found(&self) -> bool {
        self.code == Some(ffi::SQLITE_NOTFOUND)
    }

    /// The readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with a message prefixed by `context` (for example the
    /// file name and offset).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = Cow::Owned(format!("{context}: {}", self.message));
        self
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error {
            code: None,
            missing_file: e.kind() == io::ErrorKind::NotFound,
            os_error: e.raw_os_error(),
            message: Cow::Owned(e.to_string()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} ({})", self.message, code_name(code)),
            None => f.write_str(&self.message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.code.map(code_name))
            .field("os_error", &self.os_error)
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for Error {}

/// The text of a caught panic (`catch_unwind`'s payload).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

/// The symbolic name of a primary or extended SQLite result code
/// (`"SQLITE_IOERR_READ"`), or `"SQLITE_UNKNOWN(<n>)"`-style text for codes
/// this table does not know.
pub fn code_name(code: i32) -> Cow<'static, str> {
    use ffi::*;
    let name = match code {
        SQLITE_OK => "SQLITE_OK",
        SQLITE_ERROR => "SQLITE_ERROR",
        SQLITE_INTERNAL => "SQLITE_INTERNAL",
        SQLITE_PERM => "SQLITE_PERM",
        SQLITE_ABORT => "SQLITE_ABORT",
        SQLITE_BUSY => "SQLITE_BUSY",
        SQLITE_BUSY_SNAPSHOT => "SQLITE_BUSY_SNAPSHOT",
        SQLITE_BUSY_RECOVERY => "SQLITE_BUSY_RECOVERY",
        SQLITE_LOCKED => "SQLITE_LOCKED",
        SQLITE_NOMEM => "SQLITE_NOMEM",
        SQLITE_READONLY => "SQLITE_READONLY",
        SQLITE_INTERRUPT => "SQLITE_INTERRUPT",
        SQLITE_IOERR => "SQLITE_IOERR",
        SQLITE_IOERR_READ => "SQLITE_IOERR_READ",
        SQLITE_IOERR_SHORT_READ => "SQLITE_IOERR_SHORT_READ",
        SQLITE_IOERR_WRITE => "SQLITE_IOERR_WRITE",
        SQLITE_IOERR_FSYNC => "SQLITE_IOERR_FSYNC",
        SQLITE_IOERR_TRUNCATE => "SQLITE_IOERR_TRUNCATE",
        SQLITE_IOERR_FSTAT => "SQLITE_IOERR_FSTAT",
        SQLITE_IOERR_LOCK => "SQLITE_IOERR_LOCK",
        SQLITE_IOERR_UNLOCK => "SQLITE_IOERR_UNLOCK",
        SQLITE_IOERR_DELETE => "SQLITE_IOERR_DELETE",
        SQLITE_IOERR_DELETE_NOENT => "SQLITE_IOERR_DELETE_NOENT",
        SQLITE_IOERR_ACCESS => "SQLITE_IOERR_ACCESS",
        SQLITE_IOERR_CHECKRESERVEDLOCK => "SQLITE_IOERR_CHECKRESERVEDLOCK",
        SQLITE_IOERR_CLOSE => "SQLITE_IOERR_CLOSE",
        SQLITE_IOERR_SHMMAP => "SQLITE_IOERR_SHMMAP",
        SQLITE_IOERR_SHMLOCK => "SQLITE_IOERR_SHMLOCK",
        SQLITE_IOERR_SHMSIZE => "SQLITE_IOERR_SHMSIZE",
        SQLITE_IOERR_DATA => "SQLITE_IOERR_DATA",
        SQLITE_IOERR_NOMEM => "SQLITE_IOERR_NOMEM",
        SQLITE_IOERR_MMAP => "SQLITE_IOERR_MMAP",
        SQLITE_CORRUPT => "SQLITE_CORRUPT",
        SQLITE_NOTFOUND => "SQLITE_NOTFOUND",
        SQLITE_FULL => "SQLITE_FULL",
        SQLITE_CANTOPEN => "SQLITE_CANTOPEN",
        SQLITE_CANTOPEN_FULLPATH => "SQLITE_CANTOPEN_FULLPATH",
        SQLITE_PROTOCOL => "SQLITE_PROTOCOL",
        SQLITE_SCHEMA => "SQLITE_SCHEMA",
        SQLITE_TOOBIG => "SQLITE_TOOBIG",
        SQLITE_CONSTRAINT => "SQLITE_CONSTRAINT",
        SQLITE_MISMATCH => "SQLITE_MISMATCH",
        SQLITE_MISUSE => "SQLITE_MISUSE",
        SQLITE_NOLFS => "SQLITE_NOLFS",
        SQLITE_AUTH => "SQLITE_AUTH",
        SQLITE_RANGE => "SQLITE_RANGE",
        SQLITE_NOTADB => "SQLITE_NOTADB",
        SQLITE_READONLY_RECOVERY => "SQLITE_READONLY_RECOVERY",
        SQLITE_READONLY_CANTINIT => "SQLITE_READONLY_CANTINIT",
        _ => return Cow::Owned(format!("SQLite result code {code}")),
    };
    Cow::Borrowed(name)
}

/// SQLite's result codes, re-exported so backends need not depend on
/// `libsqlite3-sys` directly.
pub mod codes {
    pub use libsqlite3_sys::{
        SQLITE_ABORT, SQLITE_AUTH, SQLITE_BUSY, SQLITE_BUSY_RECOVERY, SQLITE_BUSY_SNAPSHOT,
        SQLITE_CANTOPEN, SQLITE_CANTOPEN_FULLPATH, SQLITE_CORRUPT, SQLITE_ERROR, SQLITE_FULL,
        SQLITE_INTERNAL, SQLITE_IOERR, SQLITE_IOERR_ACCESS, SQLITE_IOERR_CHECKRESERVEDLOCK,
        SQLITE_IOERR_CLOSE, SQLITE_IOERR_DATA, SQLITE_IOERR_DELETE, SQLITE_IOERR_DELETE_NOENT,
        SQLITE_IOERR_FSTAT, SQLITE_IOERR_FSYNC, SQLITE_IOERR_LOCK, SQLITE_IOERR_MMAP,
        SQLITE_IOERR_NOMEM, SQLITE_IOERR_READ, SQLITE_IOERR_SHMLOCK, SQLITE_IOERR_SHMMAP,
        SQLITE_IOERR_SHMSIZE, SQLITE_IOERR_SHORT_READ, SQLITE_IOERR_TRUNCATE, SQLITE_IOERR_UNLOCK,
        SQLITE_IOERR_WRITE, SQLITE_LOCKED, SQLITE_MISUSE, SQLITE_NOMEM, SQLITE_NOTADB,
        SQLITE_NOTFOUND, SQLITE_OK, SQLITE_PERM, SQLITE_PROTOCOL, SQLITE_READONLY,
        SQLITE_READONLY_CANTINIT, SQLITE_READONLY_RECOVERY,
    };
}
