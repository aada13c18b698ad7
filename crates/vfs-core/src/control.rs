//! Typed file controls (`xFileControl`).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::marker::PhantomData;

use libsqlite3_sys as ffi;

use crate::sqlite_string::SqliteString;

/// SQLite's file-control opcodes (`SQLITE_FCNTL_*`), for comparing with
/// [`FileControl::op`] without depending on `libsqlite3-sys`.
pub mod fcntl {
    pub use libsqlite3_sys::{
        SQLITE_FCNTL_BUSYHANDLER, SQLITE_FCNTL_CHUNK_SIZE, SQLITE_FCNTL_COMMIT_PHASETWO,
        SQLITE_FCNTL_HAS_MOVED, SQLITE_FCNTL_LOCKSTATE, SQLITE_FCNTL_MMAP_SIZE,
        SQLITE_FCNTL_PERSIST_WAL, SQLITE_FCNTL_POWERSAFE_OVERWRITE, SQLITE_FCNTL_PRAGMA,
        SQLITE_FCNTL_RESERVE_BYTES, SQLITE_FCNTL_SIZE_HINT, SQLITE_FCNTL_SYNC,
        SQLITE_FCNTL_VFS_POINTER, SQLITE_FCNTL_VFSNAME,
    };
}

/// One `xFileControl` request.
///
/// Read it through [`FileControl::control`]; a shim that does not handle it
/// passes the same value to its base, so requests nobody in the stack knows
/// still reach the bottom unchanged. Answer "not handled" with
/// [`Error::not_found`](crate::Error::not_found).
pub struct FileControl<'a> {
    op: c_int,
    arg: *mut c_void,
    _borrow: PhantomData<&'a mut c_void>,
}

/// The decoded form of a [`FileControl`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Control<'c> {
    /// `SQLITE_FCNTL_PRAGMA`: `PRAGMA name` or `PRAGMA name = value`.
    Pragma(Pragma<'c>),
    /// `SQLITE_FCNTL_SIZE_HINT`: the file is about to grow to this size.
    SizeHint(i64),
    /// `SQLITE_FCNTL_CHUNK_SIZE`: grow and shrink in multiples of this size.
    ChunkSize(i32),
    /// `SQLITE_FCNTL_PERSIST_WAL`: `-1` asks the current setting; `0`/`1` set
    /// it. Write the setting back.
    PersistWal(&'c mut i32),
    /// `SQLITE_FCNTL_POWERSAFE_OVERWRITE`: same protocol as `PersistWal`.
    PowersafeOverwrite(&'c mut i32),
    /// `SQLITE_FCNTL_LOCKSTATE`: write the current lock level (`SQLITE_LOCK_*`).
    LockState(&'c mut i32),
    /// `SQLITE_FCNTL_HAS_MOVED`: write 1 if the file was renamed or deleted.
    HasMoved(&'c mut i32),
    /// `SQLITE_FCNTL_MMAP_SIZE`: the most bytes of the file SQLite may read
    /// through mappings ([`File::fetch`](crate::File::fetch)); a negative
    /// value only asks. Write the limit in force before the call back.
    MmapSize(&'c mut i64),
    /// `SQLITE_FCNTL_SYNC`: sent before `xSync` when a transaction commits.
    Sync,
    /// `SQLITE_FCNTL_COMMIT_PHASETWO`: the second phase of a commit ended.
    CommitPhaseTwo,
    /// `SQLITE_FCNTL_BUSYHANDLER`, `SQLITE_FCNTL_VFS_POINTER`, … and
    /// anything else: the raw opcode. Shims forward it.
    Other(i32),
}

/// A `PRAGMA` sent to the file before SQLite interprets it.
pub struct Pragma<'c> {
    args: *mut *mut c_char,
    _borrow: PhantomData<&'c mut c_void>,
}

impl<'a> FileControl<'a> {
    /// # Safety
    /// `op` and `arg` are what SQLite passed to `xFileControl`, valid for `'a`.
    pub(crate) unsafe fn from_raw(op: c_int, arg: *mut c_void) -> FileControl<'a> {
        FileControl {
            op,
            arg,
            _borrow: PhantomData,
        }
    }

    /// The raw `SQLITE_FCNTL_*` opcode.
    pub fn op(&self) -> i32 {
        self.op
    }

    pub(crate) fn raw_arg(&self) -> *mut c_void {
        self.arg
    }

    /// The argument as the `int*` of PERSIST_WAL, POWERSAFE_OVERWRITE,
    /// LOCKSTATE or HAS_MOVED (only called for those opcodes, with a
    /// non-null argument).
    fn int_arg(&mut self) -> &mut i32 {
        // SAFETY: for these opcodes SQLite passes an `int*`, valid and
        // unaliased for the call ('a); the borrow of `self` keeps the
        // reference from outliving it or being taken twice.
        unsafe { &mut *self.arg.cast::<i32>() }
    }

    /// The decoded request.
    pub fn control(&mut self) -> Control<'_> {
        // Each branch reinterprets `arg` as the type SQLite documents for
        // that opcode; a null argument falls back to `Other`.
        if self.arg.is_null()
            && !matches!(
                self.op,
                ffi::SQLITE_FCNTL_SYNC | ffi::SQLITE_FCNTL_COMMIT_PHASETWO
            )
        {
            return Control::Other(self.op);
        }
        match self.op {
            ffi::SQLITE_FCNTL_PRAGMA => Control::Pragma(Pragma {
                args: self.arg.cast(),
                _borrow: PhantomData,
            }),
            // SAFETY: for SIZE_HINT the argument is a `sqlite3_int64*`.
            ffi::SQLITE_FCNTL_SIZE_HINT => Control::SizeHint(unsafe { *self.arg.cast::<i64>() }),
            // SAFETY: for CHUNK_SIZE the argument is an `int*`.
            ffi::SQLITE_FCNTL_CHUNK_SIZE => Control::ChunkSize(unsafe { *self.arg.cast::<i32>() }),
            ffi::SQLITE_FCNTL_PERSIST_WAL => Control::PersistWal(self.int_arg()),
            ffi::SQLITE_FCNTL_POWERSAFE_OVERWRITE => Control::PowersafeOverwrite(self.int_arg()),
            ffi::SQLITE_FCNTL_LOCKSTATE => Control::LockState(self.int_arg()),
            ffi::SQLITE_FCNTL_HAS_MOVED => Control::HasMoved(self.int_arg()),
            ffi::SQLITE_FCNTL_MMAP_SIZE => {
                // SAFETY: for MMAP_SIZE the argument is a `sqlite3_int64*`
                // SQLite owns for the duration of the call; the borrow of
                // `self` keeps the reference from outliving it.
                Control::MmapSize(unsafe { &mut *self.arg.cast::<i64>() })
            }
            ffi::SQLITE_FCNTL_SYNC => Control::Sync,
            ffi::SQLITE_FCNTL_COMMIT_PHASETWO => Control::CommitPhaseTwo,
            op => Control::Other(op),
        }
    }
}

impl std::fmt::Debug for FileControl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileControl").field("op", &self.op).finish()
    }
}

impl Pragma<'_> {
    fn arg(&self, i: usize) -> Option<&str> {
        debug_assert!(i < 3);
        // SAFETY: for SQLITE_FCNTL_PRAGMA the argument is a `char*[3]`
        // ([0] result (out), [1] pragma name, [2] value or NULL), and i < 3.
        let slot = unsafe { self.args.add(i) };
        // SAFETY: `slot` is one of the three readable entries.
        let p = unsafe { *slot };
        if p.is_null() {
            return None;
        }
        // SAFETY: SQLite passes NUL-terminated strings valid for the call.
        unsafe { CStr::from_ptr(p) }.to_str().ok()
    }

    /// The pragma's name, as written (`checksum_verification`).
    pub fn name(&self) -> &str {
        self.arg(1).unwrap_or("")
    }

    /// The value after `=`, if any.
    pub fn value(&self) -> Option<&str> {
        self.arg(2)
    }

    /// Sets the single-row result the pragma returns (answer `Ok(())`).
    pub fn set_result(&mut self, text: &str) {
        // SAFETY: `args` is the pragma's `char*[3]`, valid for the call.
        unsafe { set_answer(self.args, text) };
    }

    /// Sets the error message SQLite shows for the pragma.
    ///
    /// # Safety
    /// `args` is the `char*[3]` argument of an `SQLITE_FCNTL_PRAGMA` call in
    /// progress.
    pub(crate) unsafe fn set_error_message(args: *mut c_void, text: &str) {
        // SAFETY: the caller's contract.
        unsafe { set_answer(args.cast(), text) };
    }
}

/// Puts `text` into azArg[0] of a pragma's `char*[3]`.
///
/// # Safety
/// `args` is the `char*[3]` of an `SQLITE_FCNTL_PRAGMA` call in progress.
unsafe fn set_answer(args: *mut *mut c_char, text: &str) {
    // SAFETY: args[0] is SQLite's out-slot for the answer, freed by SQLite
    // with sqlite3_free; null, or set the same way by a layer below.
    unsafe { SqliteString::store(args, SqliteString::new(text)) };
}

impl std::fmt::Debug for Pragma<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pragma")
            .field("name", &self.name())
            .field("value", &self.value())
            .finish()
    }
}
