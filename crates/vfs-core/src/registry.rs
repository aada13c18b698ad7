//! Registration of Rust VFSes with SQLite.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use libsqlite3_sys as ffi;
use parking_lot::{Mutex, RwLock};

use crate::{AccessShortcut, Error, Result, Vfs, codes, dispatch};

/// Everything one registration owns. Leaked on purpose: SQLite may keep a
/// `sqlite3_vfs*` (for example in a connection opened on `:memory:` with
/// this VFS) after we unregister, so the C struct and this slot live for the
/// rest of the process (a few hundred bytes per registration). The backend
/// itself is dropped at unregistration.
pub(crate) struct Slot<V: Vfs> {
    pub(crate) backend: RwLock<Option<Arc<V>>>,
    pub(crate) shared: &'static SlotShared,
}

/// The type-independent part of a slot.
pub(crate) struct SlotShared {
    pub(crate) name: CString,
    /// Files open, or being opened, through this VFS. `xOpen` counts a file
    /// under the slot's backend read lock, before the backend opens it, and
    /// `unregister` checks the count under the write lock: a file can never
    /// open after a successful unregistration.
    pub(crate) open_files: AtomicUsize,
    /// The platform VFS that randomness, sleep, time and `xDl*` go to.
    pub(crate) platform: PlatformVfs,
    /// The backend's [`Vfs::access_shortcut`], kept (like the slot) for the
    /// rest of the process: `xAccess` asks it without the backend's lock.
    pub(crate) access_shortcut: Option<AccessShortcut>,
    vfs: *mut ffi::sqlite3_vfs,
    retire: OnceLock<Box<Retire>>,
}

/// A registered backend, type-erased, handed back by [`Retire`] to be
/// dropped once no lock is held.
type RetiredBackend = Box<dyn Send>;

/// Unregisters a slot (see `register_with`): refuses while files are open,
/// unregisters the C struct and takes the backend out, all under the
/// slot's write lock.
type Retire = dyn Fn(&str) -> Result<RetiredBackend> + Send + Sync;

// SAFETY: `vfs` is a leaked allocation only SQLite writes (pNext, under its
// own mutex); we only read it to pass to sqlite3_vfs_(un)register.
unsafe impl Send for SlotShared {}
// SAFETY: as above.
unsafe impl Sync for SlotShared {}

/// A pointer to SQLite's platform VFS (`unix`), which never goes away.
#[derive(Clone, Copy)]
pub(crate) struct PlatformVfs(pub(crate) *mut ffi::sqlite3_vfs);
// SAFETY: SQLite's built-in VFS objects are static and thread-safe.
unsafe impl Send for PlatformVfs {}
// SAFETY: as above.
unsafe impl Sync for PlatformVfs {}

/// Calls method `$m` of the built-in VFS `$vfs` (a `*mut sqlite3_vfs`)
/// with `$vfs` and the arguments, or answers `$missing` when the slot is
/// empty. The arguments must follow the method's C signature (pointers
/// valid for the call): the caller's part of the bargain.
macro_rules! builtin_vfs_call {
    ($vfs:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let vfs: *mut ::libsqlite3_sys::sqlite3_vfs = $vfs;
        // SAFETY: `vfs` is a built-in VFS of SQLite, static for the process;
        // reading one method slot races with nothing (SQLite only ever
        // writes its pNext).
        let method = unsafe { (*vfs).$m };
        match method {
            // SAFETY: the VFS's own method, given itself and arguments that
            // follow its C signature (see the macro's documentation).
            Some(f) => unsafe { f(vfs $(, $arg)*) },
            None => $missing,
        }
    }};
}
pub(crate) use builtin_vfs_call;

#[cfg(unix)]
pub(crate) const PLATFORM_VFS_NAME: &CStr = c"unix";
#[cfg(windows)]
pub(crate) const PLATFORM_VFS_NAME: &CStr = c"win32";

/// SQLite's platform VFS, found once.
pub(crate) fn platform_vfs() -> Result<PlatformVfs> {
    static PLATFORM: OnceLock<PlatformVfs> = OnceLock::new();
    if let Some(p) = PLATFORM.get() {
        return Ok(*p);
    }
    // SAFETY: sqlite3_initialize is safe to call any number of times;
    // sqlite3_vfs_find with a valid C string returns a static VFS or null.
    let p = unsafe {
        crate::extension::initialize();
        ffi::sqlite3_vfs_find(PLATFORM_VFS_NAME.as_ptr())
    };
    if p.is_null() {
        return Err(Error::new(
            codes::SQLITE_ERROR,
            "SQLite has no platform VFS",
        ));
    }
    Ok(*PLATFORM.get_or_init(|| PlatformVfs(p)))
}

fn registry() -> &'static Mutex<HashMap<String, &'static SlotShared>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, &'static SlotShared>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A registered VFS. Dropping the handle leaves the VFS registered; call
/// [`Registration::unregister`] (or [`unregister`]) to remove it.
#[derive(Debug)]
#[must_use = "keep the handle to unregister the VFS later, or drop it to leave it registered"]
pub struct Registration {
    name: String,
}

impl Registration {
    /// The name SQLite knows the VFS by (`?vfs=<name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Files currently open through this VFS.
    pub fn open_files(&self) -> usize {
        open_files(&self.name).unwrap_or(0)
    }

    /// Unregisters the VFS. Refuses (giving the handle back) while any file
    /// opened through it is still open.
    pub fn unregister(self) -> std::result::Result<(), (Registration, Error)> {
        match unregister(&self.name) {
            Ok(()) => Ok(()),
            Err(e) => Err((self, e)),
        }
    }
}

/// Options for [`register_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterOptions {
    /// Make this VFS SQLite's default (used when no `vfs=` is given).
    pub make_default: bool,
}

/// Registers `vfs` under `name`, so `file:x.db?vfs=<name>` opens files on it.
///
/// Errors: an empty name, a name containing NUL, or a name already
/// registered (by this crate or anyone else) is refused with `SQLITE_MISUSE`;
/// so is a stack whose page layers cannot work together (more reserved bytes
/// than the header records, or too few usable bytes left per page: see
/// [`PageLayers::check`](crate::PageLayers::check)), with a message naming
/// the layers.
///
/// ```
/// # use vfs_core::{register, Vfs};
/// # fn f<V: Vfs>(my_vfs: V) -> vfs_core::Result<()> {
/// let reg = register("mine", my_vfs, false)?;
/// let conn = rusqlite::Connection::open("file:app.db?vfs=mine")
///     .expect("open through the VFS");
/// drop(conn);
/// reg.unregister().map_err(|(_, e)| e)?;
/// # Ok(()) }
/// ```
pub fn register<V: Vfs>(name: &str, vfs: V, make_default: bool) -> Result<Registration> {
    register_with(name, vfs, RegisterOptions { make_default })
}

/// [`register`] with [`RegisterOptions`].
pub fn register_with<V: Vfs>(name: &str, vfs: V, opts: RegisterOptions) -> Result<Registration> {
    if name.is_empty() {
        return Err(Error::new(
            codes::SQLITE_MISUSE,
            "a VFS name must not be empty",
        ));
    }
    vfs.page_layers()
        .check()
        .map_err(|e| e.context(format_args!("VFS {name:?}")))?;
    let cname = CString::new(name).map_err(|_| {
        Error::new(
            codes::SQLITE_MISUSE,
            format!("VFS name {name:?} contains a NUL byte"),
        )
    })?;
    let platform = platform_vfs()?;
    let mut reg = registry().lock();
    // SAFETY: valid C string; returns a registered VFS or null.
    let existing = unsafe { ffi::sqlite3_vfs_find(cname.as_ptr()) };
    if reg.contains_key(name) || !existing.is_null() {
        return Err(Error::new(
            codes::SQLITE_MISUSE,
            format!("a VFS named {name:?} is already registered"),
        ));
    }
    let backend = Arc::new(vfs);
    let max_pathname = backend.max_pathname().clamp(64, 65_536) as i32;

    // pAppData points to the slot; the slot's shared part knows the C struct
    // (to unregister it). Build both, then tie them before SQLite sees them.
    let vfs_struct: *mut ffi::sqlite3_vfs =
        Box::into_raw(Box::new(dispatch::vfs_struct::<V>(max_pathname)));
    let shared: &'static SlotShared = Box::leak(Box::new(SlotShared {
        name: cname,
        open_files: AtomicUsize::new(0),
        platform,
        access_shortcut: backend.access_shortcut(),
        vfs: vfs_struct,
        retire: OnceLock::new(),
    }));
    let slot: &'static Slot<V> = Box::leak(Box::new(Slot {
        backend: RwLock::new(Some(backend)),
        shared,
    }));
    let _ = shared.retire.set(Box::new(move |name: &str| {
        let mut backend = slot.backend.write();
        if backend.is_none() {
            return Err(Error::new(
                codes::SQLITE_NOTFOUND,
                format!("VFS {name:?} is already unregistered"),
            ));
        }
        let open = slot.shared.open_files.load(Ordering::SeqCst);
        if open > 0 {
            return Err(Error::busy(format!(
                "VFS {name:?} still has {open} open file(s); close every connection using it first"
            )));
        }
        // SAFETY: the struct was registered by us and stays allocated
        // forever.
        let rc = unsafe { ffi::sqlite3_vfs_unregister(slot.shared.vfs) };
        if rc != ffi::SQLITE_OK {
            return Err(Error::new(
                rc,
                format!("sqlite3_vfs_unregister({name:?}) failed"),
            ));
        }
        let retired = backend.take().map(|b| Box::new(b) as RetiredBackend);
        Ok(retired.unwrap_or_else(|| Box::new(())))
    }));
    // SAFETY: vfs_struct is our own fresh allocation, not yet shared.
    let c_struct = unsafe { &mut *vfs_struct };
    c_struct.zName = shared.name.as_ptr();
    c_struct.pAppData = slot as *const Slot<V> as *mut std::ffi::c_void;
    // SAFETY: vfs_struct is a fully initialised sqlite3_vfs that lives
    // forever (leaked).
    let rc = unsafe { ffi::sqlite3_vfs_register(vfs_struct, opts.make_default as i32) };
    if rc != ffi::SQLITE_OK {
        let backend = slot.backend.write().take();
        // Dropped after the registry's lock: its Drop may use the registry.
        drop(reg);
        drop(backend);
        return Err(Error::new(
            rc,
            format!("sqlite3_vfs_register({name:?}) failed"),
        ));
    }
    reg.insert(name.to_owned(), slot.shared);
    Ok(Registration {
        name: name.to_owned(),
    })
}

/// Unregisters the VFS `name`. Refuses with `SQLITE_BUSY` while any file
/// opened through it is open (or being opened), and with
/// `SQLITE_NOTFOUND` for a name this crate did not register.
///
/// The backend is dropped before this returns, once no lock of the
/// registry is held: its `Drop` may unregister another VFS (an inner one it
/// registered) or look one up.
pub fn unregister(name: &str) -> Result<()> {
    let shared = registry().lock().get(name).copied();
    let Some(shared) = shared else {
        return Err(Error::new(
            codes::SQLITE_NOTFOUND,
            format!("no VFS named {name:?} was registered through vfs-core"),
        ));
    };
    let retire = shared
        .retire
        .get()
        .ok_or_else(|| Error::new(codes::SQLITE_INTERNAL, "a VFS slot without retire"))?;
    let backend = retire(name)?;
    {
        let mut reg = registry().lock();
        if reg.get(name).is_some_and(|s| std::ptr::eq(*s, shared)) {
            reg.remove(name);
        }
    }
    drop(backend);
    Ok(())
}

/// Whether a VFS named `name` is registered with SQLite (by anyone).
pub fn find(name: &str) -> bool {
    let Ok(c) = CString::new(name) else {
        return false;
    };
    // SAFETY: initialise (idempotent) then look up a valid C string.
    unsafe {
        crate::extension::initialize();
        !ffi::sqlite3_vfs_find(c.as_ptr()).is_null()
    }
}

/// Files open through the vfs-core VFS `name`, or `None` if no such VFS.
pub fn open_files(name: &str) -> Option<usize> {
    registry()
        .lock()
        .get(name)
        .map(|s| s.open_files.load(Ordering::SeqCst))
}
