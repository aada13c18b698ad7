//! Running inside a host's SQLite: the entry point of a loadable extension.
//!
//! A crate that wants to be loaded by `sqlite3_load_extension` (the `sqlite3`
//! shell's `.load`, Python's `Connection.load_extension`, any SQLite host)
//! builds as a `cdylib`, enables this crate's `loadable_extension` feature
//! and declares its entry point with [`sqlite_extension!`](crate::sqlite_extension):
//!
//! ```no_run
//! #![forbid(unsafe_code)] // the expansion's `unsafe` belongs to vfs-core
//!
//! vfs_core::sqlite_extension!(sqlite3_myext_init, register_all);
//!
//! fn register_all() -> vfs_core::Result<()> {
//!     let _ = vfs_core::register("mine", vfs_core::Native::new()?, false)?;
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! With the feature on, `libsqlite3-sys` runs in its `loadable_extension`
//! mode: every `sqlite3_*` call of this crate goes through the API table the
//! host hands to the entry point, so the VFSes are registered with the
//! host's SQLite and the crates built on `vfs-core` work unchanged. Without
//! the feature (the workspace's normal build, SQLite bundled and linked in)
//! the same entry point can be called directly, for example at start-up of a
//! statically linked program; the API table is then ignored.
//!
//! The entry point:
//!
//! * binds the host's API table once per process (feature on). Hosts older
//!   than the bindings get a table with only the entries their version has;
//!   the rest stay empty, and a host older than [`MIN_HOST_VERSION`] (or one
//!   missing a function vfs-core calls) is refused with a message naming both
//!   versions;
//! * runs the crate's registration function once per process and reports
//!   the same outcome to every later call (each connection of a Python
//!   program that loads the extension calls the entry point again);
//! * never lets a panic reach the host: it becomes an error message;
//! * on failure writes a readable message to `*pzErrMsg` (allocated with the
//!   host's `sqlite3_malloc`, as SQLite frees it) and returns an error code;
//! * on success returns `SQLITE_OK_LOAD_PERMANENTLY` when loaded into a
//!   connection (feature on, `db` not null), so the host never unloads the
//!   library while its VFSes are registered, and `SQLITE_OK` otherwise
//!   (`db` null: a static initialisation without a connection).
//!
//! The registration function should undo its own registrations when it
//! fails: after an error, SQLite unloads the library.

use std::ffi::{c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use libsqlite3_sys as ffi;
use parking_lot::Mutex;

use crate::Result;
use crate::error::panic_message;

#[doc(hidden)]
pub use libsqlite3_sys as __ffi;

/// The oldest host SQLite the entry point accepts, as
/// `sqlite3_libversion_number()` reports it: 3.32.0, the first version whose
/// API table has every function vfs-core calls (`sqlite3_create_filename`,
/// with which the native base gives the platform VFS a name that lives as
/// long as its file, is the newest of them) and whose journal and WAL names
/// carry the URI parameters of their database.
pub const MIN_HOST_VERSION: i32 = 3_032_000;

/// `3045003` as `"3.45.3"`.
#[cfg_attr(not(feature = "loadable_extension"), allow(dead_code))]
fn version_text(v: i32) -> String {
    format!("{}.{}.{}", v / 1_000_000, v / 1_000 % 1_000, v % 1_000)
}

/// Declares the SQLite extension entry point `$entry`, which runs `$init`
/// (a `fn() -> vfs_core::Result<()>`) once per process.
///
/// The expansion is an `extern "C"` function with SQLite's entry-point
/// signature, exported unmangled:
///
/// ```c
/// int $entry(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);
/// ```
///
/// See the [module documentation](crate::extension) for what it does. The
/// name must be what the host looks for: SQLite derives
/// `sqlite3_<letters>_init` from the library's file name (the letters of the
/// name after a leading `lib`, up to the first dot, lowercased), so
/// `libvfs_ext.so` is looked up as `sqlite3_vfsext_init`.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static CALLS: AtomicUsize = AtomicUsize::new(0);
///
/// fn register_demo() -> vfs_core::Result<()> {
///     CALLS.fetch_add(1, Ordering::SeqCst);
///     let _ = vfs_core::register("ext-doc", vfs_core::Native::new()?, false)?;
///     Ok(())
/// }
///
/// vfs_core::sqlite_extension!(sqlite3_extdoc_init, register_demo);
///
/// let mut err = std::ptr::null_mut();
/// // SAFETY: no connection and no API table (SQLite is linked in, so the
/// // table is not needed); `err` is a valid out-pointer.
/// let rc = unsafe { sqlite3_extdoc_init(std::ptr::null_mut(), &mut err, std::ptr::null()) };
/// assert_eq!(rc, 0); // SQLITE_OK
/// assert!(err.is_null());
/// assert!(vfs_core::find("ext-doc"));
///
/// // Later calls report the first outcome without registering again.
/// let rc = unsafe { sqlite3_extdoc_init(std::ptr::null_mut(), &mut err, std::ptr::null()) };
/// assert_eq!((rc, CALLS.load(Ordering::SeqCst)), (0, 1));
/// ```
#[macro_export]
macro_rules! sqlite_extension {
    ($entry:ident, $init:path) => {
        /// SQLite's extension entry point: registers this library's VFSes
        /// with the SQLite that loads it.
        ///
        /// # Safety
        ///
        /// Called by SQLite (`sqlite3_load_extension`) or by a host at
        /// start-up: `db` is a connection or null, `pz_err_msg` a valid
        /// out-pointer or null, `p_api` the host's API table.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $entry(
            db: *mut $crate::extension::__ffi::sqlite3,
            pz_err_msg: *mut *mut ::core::ffi::c_char,
            p_api: *const $crate::extension::__ffi::sqlite3_api_routines,
        ) -> ::core::ffi::c_int {
            let init: fn() -> $crate::Result<()> = $init;
            // SAFETY: the arguments come unchanged from the caller, who
            // guarantees what the entry point's contract states.
            unsafe { $crate::extension::__entry_point(db, pz_err_msg, p_api, init) }
        }
    };
}

/// The outcome of each registration function run so far, by address.
type Outcome = std::result::Result<(), (c_int, String)>;
static RUNS: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());

/// Runs `init` the first time it is seen; later calls get its outcome.
/// (Keyed by the function's address: two registration functions with
/// identical machine code could share one, so give each extension its own.)
fn run_once(init: fn() -> Result<()>) -> Outcome {
    let key = init as usize;
    let mut runs = RUNS.lock();
    if let Some((_, outcome)) = runs.iter().find(|(k, _)| *k == key) {
        return outcome.clone();
    }
    let outcome = match catch_unwind(init) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err((e.code().unwrap_or(ffi::SQLITE_ERROR), e.to_string())),
        Err(payload) => Err((
            ffi::SQLITE_ERROR,
            format!(
                "the extension's registration panicked: {}",
                panic_message(&*payload)
            ),
        )),
    };
    runs.push((key, outcome.clone()));
    outcome
}

/// The body of the entry point declared by [`sqlite_extension!`](crate::sqlite_extension).
///
/// # Safety
///
/// `pz_err_msg` is null or valid for a write; with the `loadable_extension`
/// feature, `p_api` is null or the API table of the SQLite that calls.
#[doc(hidden)]
pub unsafe fn __entry_point(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *const ffi::sqlite3_api_routines,
    init: fn() -> Result<()>,
) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: p_api is null or the caller's API table (contract above).
        unsafe { host::bind(p_api) }.map_err(|m| (ffi::SQLITE_ERROR, m))?;
        run_once(init)
    }))
    .unwrap_or_else(|payload| {
        Err((
            ffi::SQLITE_ERROR,
            format!(
                "loading the extension panicked: {}",
                panic_message(&*payload)
            ),
        ))
    });
    match outcome {
        Ok(()) if cfg!(feature = "loadable_extension") && !db.is_null() => {
            ffi::SQLITE_OK_LOAD_PERMANENTLY
        }
        Ok(()) => ffi::SQLITE_OK,
        Err((code, message)) => {
            if !pz_err_msg.is_null() {
                // SAFETY: p_api as above; the copy is made with the host's
                // allocator, so SQLite may free it.
                let copy = unsafe { host::alloc_c_string(p_api, &message) };
                // SAFETY: pz_err_msg is non-null and valid for a write.
                unsafe { *pz_err_msg = copy };
            }
            match code & 0xff {
                ffi::SQLITE_OK | ffi::SQLITE_ROW | ffi::SQLITE_DONE => ffi::SQLITE_ERROR,
                _ => code,
            }
        }
    }
}

/// `sqlite3_initialize()`, which a host has already run before it loads an
/// extension (its API table has no entry for it).
pub(crate) fn initialize() {
    #[cfg(not(feature = "loadable_extension"))]
    // SAFETY: sqlite3_initialize may be called any number of times.
    unsafe {
        ffi::sqlite3_initialize();
    }
}

/// The bytes of the bindings' API table a host of `version` has: its
/// entries up to that version. For the extension's tests.
#[cfg(feature = "loadable_extension")]
#[doc(hidden)]
pub fn __host_table_len(version: i32) -> usize {
    host::host_table_len(version)
}

/// The signature of an extension entry point, as SQLite calls it.
pub(crate) type EntryPoint = unsafe extern "C" fn(
    *mut ffi::sqlite3,
    *mut *mut c_char,
    *const ffi::sqlite3_api_routines,
) -> c_int;

/// `sqlite3_auto_extension(entry)`. The API table declares the argument as
/// `void (*)(void)` (SQLite casts it back before calling), the linked
/// library with the entry point's real signature.
///
/// # Safety
///
/// SQLite is usable (linked in, or the host's table is bound).
pub(crate) unsafe fn auto_extension(entry: EntryPoint) -> c_int {
    #[cfg(not(feature = "loadable_extension"))]
    // SAFETY: entry has the signature SQLite calls auto extensions with.
    let rc = unsafe { ffi::sqlite3_auto_extension(Some(entry)) };
    #[cfg(feature = "loadable_extension")]
    // SAFETY: the cast only matches the table's declared type (function
    // pointers share one representation); SQLite casts it back to the
    // entry-point signature, which is entry's, before calling it.
    let erased = unsafe { std::mem::transmute::<EntryPoint, unsafe extern "C" fn()>(entry) };
    #[cfg(feature = "loadable_extension")]
    // SAFETY: SQLite stores the pointer and calls it as an auto extension.
    let rc = unsafe { ffi::sqlite3_auto_extension(Some(erased)) };
    rc
}

/// Copies `message` (its first MiB) into memory from `malloc`, a
/// `sqlite3_malloc`: the host's own when the bindings may not be bound yet,
/// which is why this is not a `SqliteString`.
///
/// # Safety
///
/// `malloc` allocates like `sqlite3_malloc`.
unsafe fn copy_with(
    malloc: unsafe extern "C" fn(c_int) -> *mut std::ffi::c_void,
    message: &str,
) -> *mut c_char {
    let bytes = &message.as_bytes()[..message.len().min(1 << 20)];
    // SAFETY: `malloc` is a sqlite3_malloc (contract); n is at most 1 MiB
    // + 1, which fits in a c_int.
    let alloc = |n: usize| unsafe { malloc(n as c_int) };
    // SAFETY: `alloc(n)` returns null or n writable bytes.
    unsafe { crate::sqlite_string::copy_with(alloc, bytes) }
}

#[cfg(not(feature = "loadable_extension"))]
mod host {
    use super::*;

    /// SQLite is linked in: there is nothing to bind.
    pub(super) unsafe fn bind(
        _p_api: *const ffi::sqlite3_api_routines,
    ) -> std::result::Result<(), String> {
        Ok(())
    }

    pub(super) unsafe fn alloc_c_string(
        _p_api: *const ffi::sqlite3_api_routines,
        message: &str,
    ) -> *mut c_char {
        // SAFETY: sqlite3_malloc is the linked SQLite's allocator.
        unsafe { copy_with(ffi::sqlite3_malloc, message) }
    }
}

#[cfg(feature = "loadable_extension")]
mod host {
    use std::mem::{offset_of, size_of};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    use super::*;

    type Api = ffi::sqlite3_api_routines;

    /// Where the API table grew: the first field each version added, from
    /// the oldest accepted host on. A host of version `v` has every field
    /// before the first entry newer than `v`.
    const TABLE_GROWTH: &[(i32, usize)] = &[
        (3_032_000, offset_of!(Api, create_filename)),
        (3_034_000, offset_of!(Api, txn_state)),
        (3_036_001, offset_of!(Api, changes64)),
        (3_037_000, offset_of!(Api, autovacuum_pages)),
        (3_038_000, offset_of!(Api, error_offset)),
        (3_039_000, offset_of!(Api, deserialize)),
        (3_040_000, offset_of!(Api, value_encoding)),
        (3_041_000, offset_of!(Api, is_interrupted)),
        (3_043_000, offset_of!(Api, stmt_explain)),
        (3_044_000, offset_of!(Api, get_clientdata)),
        (3_050_000, offset_of!(Api, setlk_timeout)),
        (3_051_000, offset_of!(Api, set_errmsg)),
        (3_052_000, offset_of!(Api, str_truncate)),
        (3_054_000, offset_of!(Api, incomplete)),
    ];

    // The bindings' table must end where TABLE_GROWTH knows it does: newer
    // bindings (a libsqlite3-sys upgrade) need their versions added above.
    const _: () = assert!(
        size_of::<Api>() == offset_of!(Api, result_str) + size_of::<usize>(),
        "sqlite3_api_routines grew: add the new versions to TABLE_GROWTH"
    );

    /// The bytes of the bindings' table a host of `version` has.
    pub(super) fn host_table_len(version: i32) -> usize {
        TABLE_GROWTH
            .iter()
            .find(|(v, _)| version < *v)
            .map_or(size_of::<Api>(), |(_, offset)| *offset)
    }

    /// The binding made by the first call: the table's address, or why it
    /// was refused.
    static BOUND: OnceLock<std::result::Result<usize, String>> = OnceLock::new();
    /// The host's `sqlite3_libversion_number()`.
    static HOST_VERSION: AtomicI32 = AtomicI32::new(0);
    /// Set while libsqlite3-sys checks the version of a copied table.
    static BINDING: AtomicBool = AtomicBool::new(false);

    /// Stands in for `sqlite3_libversion_number` in the copy of an older
    /// host's table: libsqlite3-sys refuses tables older than its bindings,
    /// which a copy with the missing entries left empty is not.
    unsafe extern "C" fn libversion_number() -> c_int {
        if BINDING.load(Ordering::SeqCst) {
            ffi::SQLITE_VERSION_NUMBER
        } else {
            HOST_VERSION.load(Ordering::SeqCst)
        }
    }

    /// Routes every `sqlite3_*` call of this library through `p_api`.
    pub(super) unsafe fn bind(p_api: *const Api) -> std::result::Result<(), String> {
        let addr = p_api as usize;
        // SAFETY: p_api is null or the caller's table (contract of bind).
        let bound = BOUND.get_or_init(|| unsafe { bind_first(p_api) }.map(|()| addr));
        match bound {
            Ok(a) if *a == addr => Ok(()),
            Ok(_) => Err(
                "this library is already bound to another SQLite library of this process \
                 (a different API table); load it into one SQLite only"
                    .to_owned(),
            ),
            Err(e) => Err(e.clone()),
        }
    }

    /// The functions vfs-core and the entry point call, by table field.
    fn missing_functions(p_api: *const Api) -> Vec<&'static str> {
        macro_rules! check {
            ($($field:ident),*) => {{
                let mut missing = Vec::new();
                $(
                    // SAFETY: p_api is a host table of at least
                    // MIN_HOST_VERSION, which has all these fields.
                    let field = unsafe { &raw const (*p_api).$field };
                    // SAFETY: reading one field through the raw pointer
                    // touches no other.
                    if unsafe { field.read() }.is_none() {
                        missing.push(concat!("sqlite3_", stringify!($field)));
                    }
                )*
                missing
            }};
        }
        check!(
            vfs_find,
            vfs_register,
            vfs_unregister,
            malloc,
            malloc64,
            free,
            log,
            uri_parameter,
            uri_key,
            filename_database,
            filename_journal,
            filename_wal,
            create_filename,
            free_filename,
            auto_extension,
            file_control,
            create_function_v2
        )
    }

    unsafe fn bind_first(p_api: *const Api) -> std::result::Result<(), String> {
        if p_api.is_null() {
            return Err(
                "no SQLite API table was given (pApi is NULL): load the extension \
                 with sqlite3_load_extension, or pass the host's table"
                    .to_owned(),
            );
        }
        // SAFETY: libversion_number is among the first fields of every
        // version's table.
        let field = unsafe { &raw const (*p_api).libversion_number };
        // SAFETY: reading the field touches nothing else.
        let Some(version_fn) = (unsafe { field.read() }) else {
            return Err("the host's API table has no sqlite3_libversion_number".to_owned());
        };
        // SAFETY: the host's own function, callable at any time.
        let version = unsafe { version_fn() };
        if version < MIN_HOST_VERSION {
            return Err(format!(
                "this extension needs SQLite {} or later; the host runs SQLite {}",
                version_text(MIN_HOST_VERSION),
                version_text(version)
            ));
        }
        let missing = missing_functions(p_api);
        if !missing.is_empty() {
            return Err(format!(
                "the host's SQLite {} lacks functions this extension needs \
                 (built without them?): {}",
                version_text(version),
                missing.join(", ")
            ));
        }
        HOST_VERSION.store(version, Ordering::SeqCst);
        let bound = if version >= ffi::SQLITE_VERSION_NUMBER {
            // SAFETY: a table at least as new as the bindings has every
            // field they read; libsqlite3-sys only reads it.
            unsafe { ffi::rusqlite_extension_init2(p_api.cast_mut()) }
        } else {
            // SAFETY: Api is a struct of nullable function pointers, for
            // which all-zero bytes are `None`.
            let mut table: Api = unsafe { std::mem::zeroed() };
            let len = host_table_len(version);
            // SAFETY: the host's table has at least `len` bytes (the fields
            // of its version, see TABLE_GROWTH), `table` has
            // size_of::<Api>() >= len, and the two do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    p_api.cast::<u8>(),
                    (&raw mut table).cast::<u8>(),
                    len,
                );
            }
            table.libversion_number = Some(libversion_number);
            BINDING.store(true, Ordering::SeqCst);
            // SAFETY: a complete table (entries the host lacks are None,
            // and calling one of them panics in libsqlite3-sys, which the
            // dispatcher turns into an error); it is only read.
            let r = unsafe { ffi::rusqlite_extension_init2(&raw mut table) };
            BINDING.store(false, Ordering::SeqCst);
            r
        };
        bound.map_err(|e| format!("binding the host's SQLite API failed: {e}"))
    }

    pub(super) unsafe fn alloc_c_string(p_api: *const Api, message: &str) -> *mut c_char {
        if p_api.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: malloc is among the first fields of every version's table.
        let field = unsafe { &raw const (*p_api).malloc };
        // SAFETY: reading the field touches nothing else.
        match unsafe { field.read() } {
            // SAFETY: the host's sqlite3_malloc.
            Some(malloc) => unsafe { copy_with(malloc, message) },
            None => std::ptr::null_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;
    use crate::{Error, codes};

    fn fails() -> Result<()> {
        Err(Error::new(codes::SQLITE_MISUSE, "no such stack"))
    }

    fn panics() -> Result<()> {
        panic!("boom")
    }

    fn call(init: fn() -> Result<()>) -> (c_int, Option<String>) {
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out-pointer; bundled build, no table needed.
        let rc = unsafe { __entry_point(std::ptr::null_mut(), &mut err, std::ptr::null(), init) };
        if err.is_null() {
            return (rc, None);
        }
        // SAFETY: a NUL-terminated string from sqlite3_malloc, ours to free.
        let text = unsafe { CStr::from_ptr(err) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: allocated by sqlite3_malloc.
        unsafe { ffi::sqlite3_free(err.cast()) };
        (rc, Some(text))
    }

    #[test]
    fn failure_is_reported_with_its_code_every_time() {
        let expected = (
            codes::SQLITE_MISUSE,
            Some("no such stack (SQLITE_MISUSE)".to_owned()),
        );
        assert_eq!(call(fails), expected);
        assert_eq!(call(fails), expected);
    }

    #[test]
    fn panic_becomes_an_error_message() {
        assert_eq!(
            call(panics),
            (
                codes::SQLITE_ERROR,
                Some("the extension's registration panicked: boom".to_owned())
            )
        );
    }

    #[test]
    fn version_text_splits_the_number() {
        assert_eq!(version_text(3_040_001), "3.40.1");
        assert_eq!(version_text(MIN_HOST_VERSION), "3.32.0");
    }
}
