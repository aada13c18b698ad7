//! The C boundary: `sqlite3_vfs` and `sqlite3_io_methods` trampolines,
//! generic over the backend type so a stack compiles to direct calls.
//!
//! Every trampoline catches panics, turns errors into SQLite result codes
//! (remembering the message for `xGetLastError`), and borrows SQLite's
//! buffers instead of copying them.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use libsqlite3_sys as ffi;

use crate::control::Pragma;
use crate::error::panic_message;
use crate::registry::{Slot, SlotShared, builtin_vfs_call};
use crate::shm::{ShmConnection, ShmLockOp};
use crate::sqlite_string::SqliteString;
use crate::{
    AccessCheck, Error, File, FileControl, FileKind, FileName, FileNameBuf, LockLevel, Mapping, Op,
    OpenName, OpenOptions, Result, ShmSupport, SyncFlags, Vfs, codes,
};

/// The `sqlite3_file` SQLite allocates (`szOsFile` bytes) for each open file.
#[repr(C)]
struct Handle<V: Vfs> {
    base: ffi::sqlite3_file,
    state: *mut FileState<V>,
}

impl<V: Vfs> Handle<V> {
    /// No methods, no state: what a failed open or a close leaves.
    fn closed() -> Handle<V> {
        Handle {
            base: ffi::sqlite3_file {
                pMethods: ptr::null(),
            },
            state: ptr::null_mut(),
        }
    }
}

/// Copies `bytes` and a terminating NUL into `out`, a C buffer of `n`
/// bytes; the caller checked that `bytes.len() < n`.
///
/// # Safety
/// `out` is valid for `n` writes, and nothing else refers to them.
unsafe fn write_c_string(out: *mut c_char, n: usize, bytes: &[u8]) {
    // SAFETY: the caller's contract.
    let out = unsafe { std::slice::from_raw_parts_mut(out.cast::<u8>(), n) };
    out[..bytes.len()].copy_from_slice(bytes);
    out[bytes.len()] = 0;
}

struct FileState<V: Vfs> {
    file: V::File,
    shared: &'static SlotShared,
    lock: LockLevel,
    shm: ShmState,
    /// Mappings SQLite holds (`xFetch` answered, no `xUnfetch` yet): what
    /// keeps the pages they point to valid.
    lent: Vec<Mapping>,
    delete_on_close: Option<(Arc<V>, FileNameBuf)>,
    kind: FileKind,
    /// Why the file is unusable: backend code panicked on it, so its state
    /// (a WAL map, a codec's keys, a half-written page) may be half
    /// updated. Every later call but close is refused with this text.
    poisoned: Option<String>,
}

impl<V: Vfs> FileState<V> {
    /// The refusal of `what` on a poisoned file.
    fn refused(&self, what: &str) -> Option<Error> {
        let why = self.poisoned.as_ref()?;
        Some(Error::io(format!(
            "{what} refused: {why}; the file is unusable until it is closed"
        )))
    }

    /// Runs backend code named `what` on the file and its shared memory:
    /// nothing on a poisoned file, and a panic poisons it (never unwinds
    /// into C).
    fn run<R>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut V::File, &mut ShmState) -> Result<R>,
    ) -> Result<R> {
        if let Some(e) = self.refused(what) {
            return Err(e);
        }
        let (file, shm) = (&mut self.file, &mut self.shm);
        match catch_unwind(AssertUnwindSafe(|| f(file, shm))) {
            Ok(r) => r,
            Err(payload) => {
                let why = format!(
                    "the backend panicked during {what}: {}",
                    panic_message(&*payload)
                );
                self.poisoned = Some(why.clone());
                Err(Error::io(format!(
                    "{why}; the file is unusable until it is closed"
                )))
            }
        }
    }

    /// [`run`](Self::run) for methods that cannot fail: `fallback` on a
    /// poisoned file or a panic.
    fn run_value<R>(&mut self, what: &str, f: impl FnOnce(&mut V::File) -> R, fallback: R) -> R {
        self.run(what, |file, _| Ok(f(file))).unwrap_or(fallback)
    }
}

enum ShmState {
    None,
    Group(ShmConnection),
    Forward,
}

/// The error SQLite last received from a vfs-core VFS on this thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastError {
    /// The (extended) result code SQLite received.
    pub code: i32,
    /// The operation that failed.
    pub op: Op,
    /// The backend's message.
    pub message: String,
    /// The operating system's error number behind it, if any
    /// ([`Error::os_error`]).
    pub os_error: Option<i32>,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
    /// The `errno` of the last failure returned to SQLite on this thread (0
    /// when it had none), until `xGetLastError` reports it: SQLite asks
    /// once per failed statement, and a later failure from elsewhere must
    /// not be told this one's number.
    static PENDING_ERRNO: Cell<Option<c_int>> = const { Cell::new(None) };
}

/// The last error a vfs-core VFS returned to SQLite on this thread: the code
/// and the backend's message that SQLite's own `sqlite3_errmsg` cannot carry
/// (SQLite reports I/O errors with a fixed text such as "disk I/O error").
///
/// ```no_run
/// # let conn = rusqlite::Connection::open_in_memory().unwrap();
/// if let Err(e) = conn.execute("INSERT INTO t VALUES (1)", []) {
///     if let Some(detail) = vfs_core::last_error() {
///         eprintln!("{e}: {} during {:?}", detail.message, detail.op);
///     }
/// }
/// ```
pub fn last_error() -> Option<LastError> {
    LAST_ERROR.with(|e| e.borrow().clone())
}

/// Forgets this thread's [`last_error`].
pub fn clear_last_error() {
    LAST_ERROR.with(|e| e.borrow_mut().take());
}

/// Writes `message` to SQLite's error log (`sqlite3_log`) with `code`.
pub fn log(code: i32, message: &str) {
    if let Ok(c) = CString::new(message.replace('\0', " ")) {
        // SAFETY: "%s" with a valid NUL-terminated string.
        unsafe { ffi::sqlite3_log(code, c"%s".as_ptr(), c.as_ptr()) };
    }
}

/// Records `e` as the thread's last error and returns its code for `op`.
fn fail(op: Op, e: Error) -> c_int {
    let code = e.code_for(op);
    let quiet = matches!(
        code & 0xff,
        codes::SQLITE_BUSY | codes::SQLITE_LOCKED | codes::SQLITE_NOTFOUND
    );
    if !quiet {
        log(code, &format!("vfs {}: {}", op.name(), e.message()));
    }
    LAST_ERROR.with(|slot| {
        *slot.borrow_mut() = Some(LastError {
            code,
            op,
            message: e.message().to_owned(),
            os_error: e.os_error(),
        });
    });
    PENDING_ERRNO.with(|p| p.set(Some(e.os_error().unwrap_or(0))));
    code
}

/// Runs backend code, turning a panic into an error so it never unwinds
/// into C.
fn guard<R>(op: Op, f: impl FnOnce() -> Result<R>) -> Result<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(Error::io(format!(
            "backend panicked during {}: {}",
            op.name(),
            panic_message(&*payload)
        ))),
    }
}

/// Like [`guard`] for infallible methods: a panic yields `fallback`.
fn guard_value<R>(f: impl FnOnce() -> R, fallback: R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

fn to_rc(op: Op, r: Result<()>) -> c_int {
    match r {
        Ok(()) => ffi::SQLITE_OK,
        Err(e) => fail(op, e),
    }
}

// ---------------------------------------------------------------------------
// sqlite3_vfs
// ---------------------------------------------------------------------------

/// The `sqlite3_vfs` struct for backend type `V` (name and app data are
/// filled in by the registry).
pub(crate) fn vfs_struct<V: Vfs>(max_pathname: c_int) -> ffi::sqlite3_vfs {
    ffi::sqlite3_vfs {
        // Version 2: xCurrentTimeInt64 is provided; the version-3 system-call
        // hooks are not.
        iVersion: 2,
        szOsFile: std::mem::size_of::<Handle<V>>() as c_int,
        mxPathname: max_pathname,
        pNext: ptr::null_mut(),
        zName: ptr::null(),
        pAppData: ptr::null_mut(),
        xOpen: Some(x_open::<V>),
        xDelete: Some(x_delete::<V>),
        xAccess: Some(x_access::<V>),
        xFullPathname: Some(x_full_pathname::<V>),
        xDlOpen: Some(x_dl_open::<V>),
        xDlError: Some(x_dl_error::<V>),
        xDlSym: Some(x_dl_sym::<V>),
        xDlClose: Some(x_dl_close::<V>),
        xRandomness: Some(x_randomness::<V>),
        xSleep: Some(x_sleep::<V>),
        xCurrentTime: Some(x_current_time::<V>),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: Some(x_current_time_int64::<V>),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    }
}

/// # Safety
/// `p_vfs` is a VFS registered by [`crate::register`] for type `V`.
unsafe fn slot<'a, V: Vfs>(p_vfs: *mut ffi::sqlite3_vfs) -> &'a Slot<V> {
    // SAFETY: p_vfs is a live struct of ours (the caller's contract), whose
    // pAppData nobody writes after registration.
    let app = unsafe { (*p_vfs).pAppData };
    // SAFETY: pAppData was set to a leaked `Slot<V>` at registration, and
    // the trampolines of this struct are instantiated for the same `V`.
    unsafe { &*(app as *const Slot<V>) }
}

fn backend<V: Vfs>(slot: &Slot<V>) -> Result<Arc<V>> {
    slot.backend
        .read()
        .clone()
        .ok_or_else(|| unregistered(slot))
}

/// The backend, with one more file counted open: under the slot's read
/// lock, so `unregister` (which checks the count under the write lock)
/// either sees this file or has already retired the backend. The caller
/// uncounts the file if the open fails.
fn reserve_open<V: Vfs>(slot: &Slot<V>) -> Result<Arc<V>> {
    let backend = slot.backend.read_recursive();
    let backend = backend.as_ref().ok_or_else(|| unregistered(slot))?;
    slot.shared.open_files.fetch_add(1, Ordering::SeqCst);
    Ok(Arc::clone(backend))
}

fn unregistered<V: Vfs>(slot: &Slot<V>) -> Error {
    Error::cant_open(format!(
        "VFS {:?} has been unregistered",
        slot.shared.name.to_string_lossy()
    ))
}

/// Runs `f` on the registered backend under the slot's read lock, without
/// cloning the `Arc` (two contended atomic operations saved on calls
/// SQLite makes per transaction, such as the hot-journal `xAccess`).
/// `unregister` waits for the call to end. The recursive read never waits
/// behind a queued `unregister`, so a backend whose call re-enters this
/// VFS cannot deadlock on it.
fn with_backend<V: Vfs, R>(slot: &Slot<V>, f: impl FnOnce(&V) -> Result<R>) -> Result<R> {
    match slot.backend.read_recursive().as_deref() {
        Some(b) => f(b),
        None => Err(unregistered(slot)),
    }
}

/// The name SQLite passed, as the bytes it is (no encoding assumed).
///
/// # Safety
/// `p` is null or a NUL-terminated string valid for `'a`.
unsafe fn file_name<'a>(p: *const c_char) -> Result<&'a FileName> {
    if p.is_null() {
        return Err(Error::io("null file name"));
    }
    // SAFETY: caller guarantees a valid NUL-terminated string.
    let name = unsafe { CStr::from_ptr(p) };
    Ok(FileName::from_bytes(name.to_bytes()))
}

unsafe extern "C" fn x_open<V: Vfs>(
    p_vfs: *mut ffi::sqlite3_vfs,
    z_name: ffi::sqlite3_filename,
    p_file: *mut ffi::sqlite3_file,
    flags: c_int,
    p_out_flags: *mut c_int,
) -> c_int {
    let handle = p_file as *mut Handle<V>;
    // SAFETY: SQLite allocated szOsFile = size_of::<Handle<V>>() bytes at
    // p_file (suitably aligned, as for any sqlite3_file); pMethods must be
    // null unless the open succeeds.
    unsafe { handle.write(Handle::closed()) };
    // SAFETY: p_vfs is the struct registered for V.
    let slot = unsafe { slot::<V>(p_vfs) };
    let backend = match reserve_open(slot) {
        Ok(backend) => backend,
        Err(e) => return fail(Op::Open, e),
    };
    let opened = guard(Op::Open, || {
        let opts = OpenOptions::from_flags(flags)
            .ok_or_else(|| Error::cant_open(format!("open flags {flags:#x} name no file type")))?;
        // SAFETY: z_name is null or the name SQLite passes to xOpen, valid
        // for the duration of this call (and of the open file).
        let name = unsafe { OpenName::from_sqlite(z_name, opts.kind) };
        let file = backend.open(&name, opts)?;
        let shm = match file.shm() {
            ShmSupport::None => ShmState::None,
            ShmSupport::Group(group) => ShmState::Group(group.connect()),
            ShmSupport::Forward => ShmState::Forward,
        };
        let read_only = file.is_read_only();
        let fetch = file.can_fetch();
        let delete_on_close = match (opts.delete_on_close, name.path()) {
            (true, Some(path)) => Some((backend, path.to_owned())),
            _ => None,
        };
        Ok((file, shm, read_only, fetch, delete_on_close, opts.kind))
    });
    let (file, shm, read_only, fetch, delete_on_close, kind) = match opened {
        Ok(parts) => parts,
        Err(e) => {
            slot.shared.open_files.fetch_sub(1, Ordering::SeqCst);
            return fail(Op::Open, e);
        }
    };
    let methods: &'static ffi::sqlite3_io_methods = match (&shm, fetch) {
        (ShmState::None, false) => &Tables::<V>::V1,
        (_, false) => &Tables::<V>::V2,
        (ShmState::None, true) => &Tables::<V>::V3_NO_SHM,
        (_, true) => &Tables::<V>::V3,
    };
    let state = Box::new(FileState {
        file,
        shared: slot.shared,
        lock: LockLevel::None,
        shm,
        // Room for the pages a few cursors hold at once, so that lending
        // does not allocate per page.
        lent: if fetch {
            Vec::with_capacity(32)
        } else {
            Vec::new()
        },
        delete_on_close,
        kind,
        poisoned: None,
    });
    let open = Handle {
        base: ffi::sqlite3_file { pMethods: methods },
        state: Box::into_raw(state),
    };
    // SAFETY: handle is valid (see above).
    unsafe { handle.write(open) };
    if !p_out_flags.is_null() {
        let out = if read_only {
            (flags & !(ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE))
                | ffi::SQLITE_OPEN_READONLY
        } else {
            flags
        };
        // SAFETY: a non-null p_out_flags is an int SQLite owns.
        unsafe { *p_out_flags = out };
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_delete<V: Vfs>(
    p_vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    // SAFETY: p_vfs is the struct registered for V.
    let slot = unsafe { slot::<V>(p_vfs) };
    to_rc(
        Op::Delete,
        guard(Op::Delete, || {
            // SAFETY: SQLite passes a valid file name.
            let name = unsafe { file_name(z_name) }?;
            with_backend(slot, |b| b.delete(name, sync_dir != 0))
        }),
    )
}

unsafe extern "C" fn x_access<V: Vfs>(
    p_vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    flags: c_int,
    p_res_out: *mut c_int,
) -> c_int {
    // SAFETY: p_vfs is the struct registered for V.
    let slot = unsafe { slot::<V>(p_vfs) };
    // The per-transaction journal and WAL checks, answered from the raw
    // name by a counted shortcut: no `FileName`, no indirect call, and no
    // panic guard, since nothing here can panic or reach backend code.
    if let Some(shortcut) = &slot.shared.access_shortcut
        && !z_name.is_null()
    {
        // SAFETY: SQLite passes a NUL-terminated file name that stays valid
        // for this call (a null one was excluded above); the bytes are only
        // read within it.
        let name = unsafe { CStr::from_ptr(z_name) }.to_bytes();
        if let Some(exists) = shortcut.answer_raw(name) {
            // SAFETY: p_res_out points to an int SQLite owns for this call.
            unsafe { *p_res_out = exists as c_int };
            return ffi::SQLITE_OK;
        }
    }
    let r = guard(Op::Access, || {
        // SAFETY: SQLite passes a valid file name.
        let name = unsafe { file_name(z_name) }?;
        let check = AccessCheck::from_raw(flags);
        // Most calls (the per-transaction journal and WAL checks) end here,
        // without the backend's lock.
        if let Some(answer) = slot
            .shared
            .access_shortcut
            .as_ref()
            .and_then(|s| s.answer(name, check))
        {
            return Ok(answer);
        }
        with_backend(slot, |b| b.access(name, check))
    });
    // SAFETY: p_res_out points to an int SQLite owns.
    unsafe { *p_res_out = matches!(r, Ok(true)) as c_int };
    to_rc(Op::Access, r.map(|_| ()))
}

unsafe extern "C" fn x_full_pathname<V: Vfs>(
    p_vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    n_out: c_int,
    z_out: *mut c_char,
) -> c_int {
    // SAFETY: p_vfs is the struct registered for V.
    let slot = unsafe { slot::<V>(p_vfs) };
    let r = guard(Op::FullPathname, || {
        // SAFETY: SQLite passes a valid file name.
        let name = unsafe { file_name(z_name) }?;
        let resolved = with_backend(slot, |b| b.resolve_pathname(name))?;
        let full = resolved.path.as_bytes();
        if full.contains(&0) {
            return Err(Error::new(
                ffi::SQLITE_CANTOPEN_FULLPATH,
                format!(
                    "full path of {name:?} contains a NUL byte: {:?}",
                    resolved.path
                ),
            ));
        }
        if full.len() + 1 > n_out.max(0) as usize {
            return Err(Error::new(
                ffi::SQLITE_CANTOPEN_FULLPATH,
                format!("full path of {name:?} is longer than {n_out} bytes"),
            ));
        }
        // SAFETY: z_out has n_out bytes for SQLite's answer, and the path
        // with its NUL fits (checked above).
        unsafe { write_c_string(z_out, n_out as usize, full) };
        Ok(resolved.via_symlink)
    });
    match r {
        // An OK code: SQLite refuses the open only under SQLITE_OPEN_NOFOLLOW.
        Ok(true) => ffi::SQLITE_OK_SYMLINK,
        Ok(false) => ffi::SQLITE_OK,
        Err(e) => fail(Op::FullPathname, e),
    }
}

/// # Safety
/// `p_vfs` is registered for `V`.
unsafe fn platform<V: Vfs>(p_vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: as for slot().
    unsafe { slot::<V>(p_vfs) }.shared.platform.0
}

// The xDl* methods delegate to the platform VFS, so `load_extension` works
// on connections opened through a Rust VFS; the arguments are SQLite's,
// passed on unchanged.

unsafe extern "C" fn x_dl_open<V: Vfs>(
    p_vfs: *mut ffi::sqlite3_vfs,
    z_filename: *const c_char,
) -> *mut c_void {
    // SAFETY: SQLite calls this trampoline with the struct registered for V.
    let p = unsafe { platform::<V>(p_vfs) };
    builtin_vfs_call!(p, xDlOpen, ptr::null_mut(), z_filename)
}

unsafe extern "C" fn x_dl_error<V: Vfs>(
    p_vfs: *mut ffi::sqlite3_vfs,
    n_byte: c_int,
    z_err_msg: *mut c_char,
) {
    // SAFETY: as in x_dl_open.
    let p = unsafe { platform::<V>(p_vfs) };
    builtin_vfs_call!(p, xDlError, (), n_byte, z_err_msg)
}

type DlSym = Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)>;

unsafe extern "C" fn x_dl_sym<V: Vfs>(
    p_vfs: *mut ffi::sqlite3_vfs,
    handle: *mut c_void,
    z_symbol: *const c_char,
) -> DlSym {
    // SAFETY: as in x_dl_open.
    let p = unsafe { platform::<V>(p_vfs) };
    builtin_vfs_call!(p, xDlSym, None, handle, z_symbol)
}

unsafe extern "C" fn x_dl_close<V: Vfs>(p_vfs: *mut ffi::sqlite3_vfs, handle: *mut c_void) {
    // SAFETY: as in x_dl_open.
    let p = unsafe { platform::<V>(p_vfs) };
    builtin_vfs_call!(p, xDlClose, (), handle)
}

unsafe extern "C" fn x_randomness<V: Vfs>(
    p_vfs: *mut ffi::sqlite3_vfs,
    n_byte: c_int,
    z_out: *mut c_char,
) -> c_int {
    if z_out.is_null() || n_byte <= 0 {
        // Nothing to fill (SQLite's own callers never ask this, but the
        // contract allows it): neither the backend nor the platform VFS is
        // handed a null buffer.
        return 0;
    }
    // SAFETY: SQLite calls this trampoline with the struct registered for V.
    let slot = unsafe { slot::<V>(p_vfs) };
    if let Ok(b) = backend(slot) {
        // SAFETY: z_out (not null) has n_byte > 0 writable bytes for the
        // call, and the slice is gone before the platform VFS may use them.
        let buf = unsafe { std::slice::from_raw_parts_mut(z_out.cast::<u8>(), n_byte as usize) };
        if let Some(n) = guard_value(|| b.randomness(buf), None) {
            return n as c_int;
        }
    }
    builtin_vfs_call!(slot.shared.platform.0, xRandomness, 0, n_byte, z_out)
}

unsafe extern "C" fn x_sleep<V: Vfs>(p_vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    // SAFETY: SQLite calls this trampoline with the struct registered for V.
    let slot = unsafe { slot::<V>(p_vfs) };
    if let Ok(b) = backend(slot) {
        let d = Duration::from_micros(micros.max(0) as u64);
        if let Some(slept) = guard_value(|| b.sleep(d), None) {
            return slept.as_micros().min(c_int::MAX as u128) as c_int;
        }
    }
    builtin_vfs_call!(slot.shared.platform.0, xSleep, 0, micros)
}

unsafe extern "C" fn x_current_time<V: Vfs>(p_vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let mut ms: i64 = 0;
    // SAFETY: our own xCurrentTimeInt64, with SQLite's p_vfs and a local.
    let rc = unsafe { x_current_time_int64::<V>(p_vfs, &mut ms) };
    // SAFETY: `out` is the double SQLite asks to be filled.
    unsafe { *out = ms as f64 / 86_400_000.0 };
    rc
}

unsafe extern "C" fn x_current_time_int64<V: Vfs>(
    p_vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this trampoline with the struct registered for V.
    let slot = unsafe { slot::<V>(p_vfs) };
    if let Ok(b) = backend(slot)
        && let Some(ms) = guard_value(|| b.current_time_ms(), None)
    {
        // SAFETY: `out` is the integer SQLite asks to be filled.
        unsafe { *out = ms };
        return ffi::SQLITE_OK;
    }
    // The platform VFS implements version 2 of sqlite3_vfs.
    builtin_vfs_call!(
        slot.shared.platform.0,
        xCurrentTimeInt64,
        ffi::SQLITE_ERROR,
        out
    )
}

/// SQLite's `xGetLastError`: the operating system's error number of the
/// last failure this thread returned to SQLite (what
/// `sqlite3_system_errno` then reports; 0 when that failure had none), and
/// its message in `z_buf`. Answered once: until the next failure, a later
/// call answers 0 and an empty message, as the failure SQLite asks about
/// then did not come from here.
unsafe extern "C" fn x_get_last_error(
    _p_vfs: *mut ffi::sqlite3_vfs,
    n_buf: c_int,
    z_buf: *mut c_char,
) -> c_int {
    let Some(errno) = PENDING_ERRNO.with(Cell::take) else {
        if n_buf > 0 && !z_buf.is_null() {
            // SAFETY: z_buf has n_buf > 0 writable bytes.
            unsafe { *z_buf = 0 };
        }
        return 0;
    };
    if n_buf > 0 && !z_buf.is_null() {
        let message = last_error().map(|l| l.message).unwrap_or_default();
        let bytes = message.as_bytes();
        let n = bytes.len().min(n_buf as usize - 1);
        // SAFETY: z_buf has n_buf bytes for SQLite's answer; n < n_buf.
        unsafe { write_c_string(z_buf, n_buf as usize, &bytes[..n]) };
    }
    errno
}

// ---------------------------------------------------------------------------
// sqlite3_io_methods
// ---------------------------------------------------------------------------

struct Tables<V>(PhantomData<V>);

impl<V: Vfs> Tables<V> {
    /// Files without shared memory: no xShm* (SQLite then refuses WAL unless
    /// in exclusive locking mode). No xFetch: memory mapping is not offered.
    const V1: ffi::sqlite3_io_methods = io_methods::<V>(false, false);
    /// Files with shared memory (in-process group or forwarded).
    const V2: ffi::sqlite3_io_methods = io_methods::<V>(true, false);
    /// Files that lend mappings (`File::can_fetch`), with shared memory.
    const V3: ffi::sqlite3_io_methods = io_methods::<V>(true, true);
    /// Files that lend mappings, without shared memory: a version-3 table
    /// whose xShm* are null, which SQLite reads as "no WAL" exactly as for
    /// version 1 (it checks `xShmMap`, not the version).
    const V3_NO_SHM: ffi::sqlite3_io_methods = io_methods::<V>(false, true);
}

/// A method table declaring exactly what is implemented: version 3 only
/// with real `xFetch`/`xUnfetch`, xShm* only with shared memory.
const fn io_methods<V: Vfs>(shm: bool, fetch: bool) -> ffi::sqlite3_io_methods {
    let version = if fetch {
        3
    } else if shm {
        2
    } else {
        1
    };
    ffi::sqlite3_io_methods {
        iVersion: version,
        xClose: Some(x_close::<V>),
        xRead: Some(x_read::<V>),
        xWrite: Some(x_write::<V>),
        xTruncate: Some(x_truncate::<V>),
        xSync: Some(x_sync::<V>),
        xFileSize: Some(x_file_size::<V>),
        xLock: Some(x_lock::<V>),
        xUnlock: Some(x_unlock::<V>),
        xCheckReservedLock: Some(x_check_reserved_lock::<V>),
        xFileControl: Some(x_file_control::<V>),
        xSectorSize: Some(x_sector_size::<V>),
        xDeviceCharacteristics: Some(x_device_characteristics::<V>),
        xShmMap: if shm { Some(x_shm_map::<V>) } else { None },
        xShmLock: if shm { Some(x_shm_lock::<V>) } else { None },
        xShmBarrier: if shm { Some(x_shm_barrier::<V>) } else { None },
        xShmUnmap: if shm { Some(x_shm_unmap::<V>) } else { None },
        xFetch: if fetch { Some(x_fetch::<V>) } else { None },
        xUnfetch: if fetch { Some(x_unfetch::<V>) } else { None },
    }
}

/// # Safety
/// `p_file` was opened by [`x_open::<V>`] and not yet closed; SQLite calls a
/// file from one thread at a time, so the `&mut` is unique.
unsafe fn state<'a, V: Vfs>(p_file: *mut ffi::sqlite3_file) -> &'a mut FileState<V> {
    // SAFETY: p_file is the handle x_open filled (the caller's contract).
    let raw = unsafe { (*(p_file as *mut Handle<V>)).state };
    // SAFETY: x_open stored a live Box<FileState<V>> before setting
    // pMethods, and SQLite only calls methods through a non-null pMethods,
    // one thread at a time (the caller's contract).
    unsafe { &mut *raw }
}

unsafe extern "C" fn x_close<V: Vfs>(p_file: *mut ffi::sqlite3_file) -> c_int {
    let handle = p_file as *mut Handle<V>;
    // SAFETY: p_file is a handle x_open filled, as for state().
    let raw = unsafe { (*handle).state };
    // SAFETY: as above. Cleared so that a stray second close is harmless.
    unsafe { handle.write(Handle::closed()) };
    if raw.is_null() {
        return ffi::SQLITE_OK;
    }
    // SAFETY: the Box x_open leaked, taken back exactly once: the handle no
    // longer points to it.
    let state = unsafe { Box::from_raw(raw) };
    let shared = state.shared;
    let mut state = state;
    let delete = state.delete_on_close.take();
    let rc = to_rc(
        Op::Close,
        guard(Op::Close, move || {
            drop(state);
            Ok(())
        }),
    );
    if let Some((backend, path)) = delete {
        // The backend may already have deleted it (the native base does);
        // a missing file is fine here.
        let _ = guard(Op::Delete, || backend.delete(&path, false));
    }
    shared.open_files.fetch_sub(1, Ordering::SeqCst);
    rc
}

unsafe extern "C" fn x_read<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    p_buf: *mut c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    // SAFETY: p_buf has `amt` writable bytes for this call, SQLite's own
    // buffer that nothing else touches meanwhile.
    let buf = unsafe { std::slice::from_raw_parts_mut(p_buf.cast::<u8>(), amt.max(0) as usize) };
    match st.run("read", |file, _| file.read_at(buf, offset.max(0) as u64)) {
        Ok(n) if n >= buf.len() => ffi::SQLITE_OK,
        Ok(n) => {
            buf[n..].fill(0);
            ffi::SQLITE_IOERR_SHORT_READ
        }
        Err(e) => {
            let code = e.code_for(Op::Read);
            if code == ffi::SQLITE_IOERR_SHORT_READ {
                // The backend gave no count: nothing in the buffer is valid.
                buf.fill(0);
                return code;
            }
            fail(
                Op::Read,
                e.context(format_args!("{} at offset {offset}", st.kind.name())),
            )
        }
    }
}

unsafe extern "C" fn x_write<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    p_buf: *const c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    // SAFETY: p_buf has `amt` readable bytes for this call, which SQLite
    // does not change meanwhile.
    let buf = unsafe { std::slice::from_raw_parts(p_buf.cast::<u8>(), amt.max(0) as usize) };
    match st.run("write", |file, _| file.write_at(buf, offset.max(0) as u64)) {
        Ok(()) => ffi::SQLITE_OK,
        Err(e) => fail(Op::Write, e),
    }
}

unsafe extern "C" fn x_truncate<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    to_rc(
        Op::Truncate,
        st.run("truncate", |file, _| file.truncate(size.max(0) as u64)),
    )
}

unsafe extern "C" fn x_sync<V: Vfs>(p_file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    to_rc(
        Op::Sync,
        st.run("sync", |file, _| file.sync(SyncFlags(flags))),
    )
}

unsafe extern "C" fn x_file_size<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    p_size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see state(); p_size is writable.
    let st = unsafe { state::<V>(p_file) };
    match st.run("file_size", |file, _| file.size()) {
        Ok(size) => {
            // SAFETY: p_size points to an i64 SQLite owns.
            unsafe { *p_size = size.min(i64::MAX as u64) as i64 };
            ffi::SQLITE_OK
        }
        Err(e) => fail(Op::FileSize, e),
    }
}

unsafe extern "C" fn x_lock<V: Vfs>(p_file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    let level = LockLevel::from_raw(level);
    match st.run("lock", |file, _| file.lock(level)) {
        Ok(()) => {
            st.lock = st.lock.max(level);
            ffi::SQLITE_OK
        }
        Err(e) => fail(Op::Lock, e),
    }
}

unsafe extern "C" fn x_unlock<V: Vfs>(p_file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    let level = LockLevel::from_raw(level);
    match st.run("unlock", |file, _| file.unlock(level)) {
        Ok(()) => {
            st.lock = st.lock.min(level);
            ffi::SQLITE_OK
        }
        Err(e) => fail(Op::Unlock, e),
    }
}

unsafe extern "C" fn x_check_reserved_lock<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    p_res_out: *mut c_int,
) -> c_int {
    // SAFETY: see state(); p_res_out is writable.
    let st = unsafe { state::<V>(p_file) };
    let r = st.run("check_reserved_lock", |file, _| file.check_reserved_lock());
    // SAFETY: p_res_out points to an int SQLite owns.
    unsafe { *p_res_out = matches!(r, Ok(true)) as c_int };
    to_rc(Op::CheckReservedLock, r.map(|_| ()))
}

unsafe extern "C" fn x_file_control<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    op: c_int,
    p_arg: *mut c_void,
) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    let outcome = if let Some(e) = st.refused("file_control") {
        Err(e)
    } else if op == ffi::SQLITE_FCNTL_VFSNAME && !p_arg.is_null() {
        let name = SqliteString::new(&st.shared.name.to_string_lossy());
        // SAFETY: for VFSNAME the argument is a `char**` SQLite frees with
        // sqlite3_free, null or set by a layer below the same way.
        unsafe { SqliteString::store(p_arg.cast(), name) };
        return ffi::SQLITE_OK;
    } else {
        // SAFETY: op/arg are what SQLite passed, valid for this call.
        let mut ctl = unsafe { FileControl::from_raw(op, p_arg) };
        st.run("file_control", |file, _| file.file_control(&mut ctl))
    };
    match outcome {
        Ok(()) => ffi::SQLITE_OK,
        Err(e) if e.is_not_found() => {
            if op == ffi::SQLITE_FCNTL_LOCKSTATE && !p_arg.is_null() {
                // SAFETY: for LOCKSTATE the argument is an `int*`.
                unsafe { *p_arg.cast::<c_int>() = st.lock.to_raw() };
                return ffi::SQLITE_OK;
            }
            ffi::SQLITE_NOTFOUND
        }
        Err(e) => {
            // A file control's own default code is SQLITE_ERROR; a poisoned
            // file's refusal is an I/O error like every other.
            let e = match st.poisoned {
                Some(_) => Error::new(codes::SQLITE_IOERR, e.message().to_owned()),
                None => e,
            };
            if op == ffi::SQLITE_FCNTL_PRAGMA && !p_arg.is_null() {
                // SQLite shows azArg[0] as the error message of the PRAGMA.
                // SAFETY: for PRAGMA the argument is the `char*[3]` of this
                // call.
                unsafe { Pragma::set_error_message(p_arg, e.message()) };
            }
            fail(Op::FileControl, e)
        }
    }
}

unsafe extern "C" fn x_sector_size<V: Vfs>(p_file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    st.run_value("sector_size", |file| file.sector_size(), 4096)
        .min(c_int::MAX as u32) as c_int
}

unsafe extern "C" fn x_device_characteristics<V: Vfs>(p_file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    st.run_value(
        "device_characteristics",
        |file| file.device_characteristics().0,
        0,
    )
}

unsafe extern "C" fn x_shm_map<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    // SAFETY: see state(); pp is writable.
    let st = unsafe { state::<V>(p_file) };
    // SAFETY: pp points to a pointer SQLite owns.
    unsafe { *pp = ptr::null_mut() };
    let (region, size, extend) = (region.max(0) as u32, size.max(0) as u32, extend != 0);
    let r = st.run("shm_map", |file, shm| match shm {
        ShmState::Group(conn) => conn.map(region, size, extend),
        ShmState::Forward => file.shm_map(region, size, extend),
        ShmState::None => Err(Error::io("no shared memory")),
    });
    match r {
        Ok(mapped) => {
            if let Some(m) = mapped {
                // SAFETY: as above.
                unsafe { *pp = m.as_ptr().cast() };
                if m.is_read_only() {
                    // The mapping is valid but SQLite may only read it.
                    return ffi::SQLITE_READONLY;
                }
            }
            ffi::SQLITE_OK
        }
        Err(e) => fail(Op::ShmMap, e),
    }
}

unsafe extern "C" fn x_shm_lock<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    let r = st.run("shm_lock", |file, shm| {
        let op = ShmLockOp::from_flags(flags).ok_or_else(|| {
            Error::new(
                ffi::SQLITE_IOERR_SHMLOCK,
                format!("bad shm lock flags {flags:#x}"),
            )
        })?;
        let (offset, n) = (offset.max(0) as u32, n.max(0) as u32);
        match shm {
            ShmState::Group(conn) => conn.lock(offset, n, op),
            ShmState::Forward => file.shm_lock(offset, n, op),
            ShmState::None => Err(Error::io("no shared memory")),
        }
    });
    to_rc(Op::ShmLock, r)
}

unsafe extern "C" fn x_shm_barrier<V: Vfs>(p_file: *mut ffi::sqlite3_file) {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    if matches!(st.shm, ShmState::Forward) {
        st.run_value("shm_barrier", |file| file.shm_barrier(), ());
    }
    // A real full fence (also after the base's own barrier, and on a
    // poisoned file): SQLite's wal-index protocol depends on it on weakly
    // ordered CPUs.
    fence(Ordering::SeqCst);
}

unsafe extern "C" fn x_shm_unmap<V: Vfs>(p_file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    let r = st.run("shm_unmap", |file, shm| match shm {
        ShmState::Group(conn) => {
            conn.unmap(delete != 0);
            Ok(())
        }
        ShmState::Forward => file.shm_unmap(delete != 0),
        ShmState::None => Ok(()),
    });
    to_rc(Op::ShmUnmap, r)
}

unsafe extern "C" fn x_fetch<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amt: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    // SAFETY: see state(); pp is writable.
    let st = unsafe { state::<V>(p_file) };
    // SAFETY: pp points to a pointer SQLite owns; null means "not mapped".
    unsafe { *pp = ptr::null_mut() };
    let (Ok(offset), Ok(amt)) = (u64::try_from(offset), usize::try_from(amt)) else {
        return ffi::SQLITE_OK;
    };
    match guard(Op::Fetch, || st.file.fetch(offset, amt)) {
        // A mapping shorter than the request (a shim passing on its base's
        // answer to another question) would let SQLite read past it.
        Ok(Some(m)) if m.len() >= amt => {
            let p = m.as_ptr();
            st.lent.push(m);
            // SAFETY: as above. The pointer stays valid for `amt` bytes, and
            // `Mapping::OVERREAD` more, until SQLite's xUnfetch for it: the
            // mapping that keeps its page alive and unchanged (a shared
            // page's `Arc`, or the platform VFS's own mapping, which it
            // keeps while lent) is held in `st.lent` until then, or until
            // the file closes, after SQLite released every page.
            unsafe { *pp = p };
            ffi::SQLITE_OK
        }
        Ok(Some(short)) => {
            // Give it back (the platform VFS counts what it lends) and let
            // SQLite read the page with xRead instead.
            let len = short.len();
            let back = guard(Op::Unfetch, || st.file.unfetch(offset, short));
            log(
                ffi::SQLITE_IOERR_MMAP,
                &format!(
                    "vfs fetch: {} bytes lent for {amt} asked at offset {offset} of a {} \
                     (given back: {:?}); reading it instead",
                    len,
                    st.kind.name(),
                    back.err().map(|e| e.message().to_owned())
                ),
            );
            ffi::SQLITE_OK
        }
        Ok(None) => ffi::SQLITE_OK,
        Err(e) => fail(
            Op::Fetch,
            e.context(format_args!("{} at offset {offset}", st.kind.name())),
        ),
    }
}

unsafe extern "C" fn x_unfetch<V: Vfs>(
    p_file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    p: *mut c_void,
) -> c_int {
    // SAFETY: see state().
    let st = unsafe { state::<V>(p_file) };
    let offset = offset.max(0) as u64;
    if p.is_null() {
        return to_rc(Op::Unfetch, guard(Op::Unfetch, || st.file.unmap_file()));
    }
    // SQLite usually gives back the page it fetched last.
    let Some(i) = st.lent.iter().rposition(|m| m.as_ptr() == p) else {
        return fail(
            Op::Unfetch,
            Error::io(format!(
                "xUnfetch of a pointer this {} did not lend",
                st.kind.name()
            )),
        );
    };
    let m = st.lent.swap_remove(i);
    to_rc(
        Op::Unfetch,
        guard(Op::Unfetch, || st.file.unfetch(offset, m)),
    )
}
