//! SQLite's platform VFS (`unix`) as a [`Vfs`] base, so shims can sit over
//! real files. Locks and shared memory pass straight through, so
//! cross-process WAL keeps working under a shim.

use std::ffi::{CStr, CString, c_int, c_void};
use std::ptr::{self, NonNull};
use std::sync::Arc;

use libsqlite3_sys as ffi;

use crate::name::SqliteFilename;
use crate::registry::{builtin_vfs_call, platform_vfs};
use crate::shm::{ShmLockOp, ShmRegion};
use crate::{
    AccessCheck, DeviceCharacteristics, Error, File, FileControl, FileName, FileNameBuf, LockLevel,
    Mapping, OpenName, OpenOptions, ResolvedPath, Result, ShmSupport, SyncFlags, Vfs, code_name,
    codes,
};

/// The platform VFS as a base for shims.
///
/// ```
/// use vfs_core::{Native, register};
/// let reg = register("native-doc", Native::new().unwrap(), false).unwrap();
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("a.db");
/// let conn = rusqlite::Connection::open(format!("file:{}?vfs=native-doc", path.display())).unwrap();
/// conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (42);").unwrap();
/// drop(conn);
/// reg.unregister().unwrap();
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Native {
    vfs: *mut ffi::sqlite3_vfs,
}

// SAFETY: SQLite's built-in VFS objects are static and thread-safe.
unsafe impl Send for Native {}
// SAFETY: as above.
unsafe impl Sync for Native {}

impl Native {
    /// The platform VFS (`unix` here).
    pub fn new() -> Result<Native> {
        Ok(Native {
            vfs: platform_vfs()?.0,
        })
    }

    /// A specific built-in VFS by name (for example `unix-excl` or
    /// `unix-dotfile`). Refuses VFSes registered through vfs-core, which
    /// would loop back into Rust.
    pub fn named(name: &str) -> Result<Native> {
        let c = CString::new(name).map_err(|_| Error::cant_open("VFS name contains NUL"))?;
        // SAFETY: initialise (idempotent) and look up a valid C string.
        let vfs = unsafe {
            crate::extension::initialize();
            ffi::sqlite3_vfs_find(c.as_ptr())
        };
        if vfs.is_null() {
            return Err(Error::cant_open(format!("no VFS named {name:?}")));
        }
        if crate::registry::open_files(name).is_some() {
            return Err(Error::cant_open(format!(
                "{name:?} is a vfs-core VFS, not a native one"
            )));
        }
        Ok(Native { vfs })
    }

    fn rc(&self, rc: c_int, what: &str, name: &FileName) -> Result<()> {
        if rc == ffi::SQLITE_OK {
            return Ok(());
        }
        let errno = system_errno(self.vfs);
        Err(with_errno(
            Error::new(
                rc,
                format!("native {what} of {name:?} failed: {}", code_name(rc)),
            ),
            errno,
        ))
    }
}

/// The operating system's error number behind the platform VFS's last
/// failure on this thread (`xGetLastError`: `errno` for `unix`). Read right
/// after the failing call, before anything else can change it.
fn system_errno(vfs: *mut ffi::sqlite3_vfs) -> c_int {
    // With no buffer (0, null) xGetLastError only answers the number.
    builtin_vfs_call!(vfs, xGetLastError, 0, 0, ptr::null_mut())
}

/// `e`, carrying `errno` when there is one.
fn with_errno(e: Error, errno: c_int) -> Error {
    if errno == 0 {
        e
    } else {
        e.with_os_error(errno)
    }
}

/// `name` as a C string, or an error naming it (C strings end at a NUL).
fn c_name(name: &FileName) -> Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| Error::cant_open(format!("file name {name:?} contains a NUL byte")))
}

impl Vfs for Native {
    type File = NativeFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<NativeFile> {
        // SAFETY: self.vfs is a live built-in VFS.
        let size = unsafe { (*self.vfs).szOsFile }.max(0) as usize;
        let block = NativeBlock::new(size);
        let file = block.file();
        // The platform VFS keeps the name pointer for the file's life and
        // reads URI parameters past its terminator: it gets a copy in
        // SQLite's layout that the NativeFile owns and frees after closing,
        // whoever built `name` and however long `name` lives.
        let owned_name = SqliteFilename::new(name)?;
        let raw = owned_name.as_ref().map_or(ptr::null(), |n| n.as_ptr());
        let mut out_flags: c_int = 0;
        // xOpen gets a name that lives as long as the NativeFile (or null
        // for an anonymous file), a zeroed block of szOsFile bytes, and our
        // out-flags slot.
        let rc = builtin_vfs_call!(
            self.vfs,
            xOpen,
            ffi::SQLITE_CANTOPEN,
            raw,
            file,
            opts.flags,
            &mut out_flags
        );
        let errno = if rc == ffi::SQLITE_OK {
            0
        } else {
            system_errno(self.vfs)
        };
        // SAFETY: xOpen set pMethods to a valid table or null.
        let methods = unsafe { (*file).pMethods };
        if rc != ffi::SQLITE_OK {
            if !methods.is_null() {
                // A non-null table after a failed open must still be closed
                // (the documented contract of xOpen).
                // SAFETY: the table xOpen set, a static of the platform VFS.
                let close = unsafe { (*methods).xClose };
                if let Some(close) = close {
                    // SAFETY: the block xOpen filled, closed once.
                    unsafe { close(file) };
                }
            }
            return Err(with_errno(
                Error::new(
                    rc,
                    format!(
                        "native open of {:?} ({}) failed: {}",
                        name.path().unwrap_or(FileName::new("<temp>")),
                        opts.kind.name(),
                        code_name(rc)
                    ),
                ),
                errno,
            ));
        }
        if methods.is_null() {
            return Err(Error::cant_open("native xOpen left no methods"));
        }
        Ok(NativeFile {
            handle: Arc::new(NativeHandle {
                block,
                methods,
                _name: owned_name,
            }),
            out_flags,
            vfs: self.vfs,
            path: name.path().unwrap_or(FileName::new("<temp>")).to_owned(),
            lent: 0,
        })
    }

    fn delete(&self, name: &FileName, sync_dir: bool) -> Result<()> {
        let c = c_name(name)?;
        let rc = builtin_vfs_call!(
            self.vfs,
            xDelete,
            ffi::SQLITE_IOERR_DELETE,
            c.as_ptr(),
            sync_dir as c_int
        );
        self.rc(rc, "delete", name)
    }

    fn access(&self, name: &FileName, check: AccessCheck) -> Result<bool> {
        let c = c_name(name)?;
        let mut out: c_int = 0;
        let rc = builtin_vfs_call!(
            self.vfs,
            xAccess,
            ffi::SQLITE_IOERR_ACCESS,
            c.as_ptr(),
            check.to_raw(),
            &mut out
        );
        self.rc(rc, "access", name)?;
        Ok(out != 0)
    }

    fn full_pathname(&self, name: &FileName) -> Result<FileNameBuf> {
        self.resolve_pathname(name).map(|r| r.path)
    }

    fn resolve_pathname(&self, name: &FileName) -> Result<ResolvedPath> {
        let c = c_name(name)?;
        let n = self.max_pathname() + 1;
        let mut buf = vec![0u8; n];
        // buf has the n bytes the call is told of.
        let rc = builtin_vfs_call!(
            self.vfs,
            xFullPathname,
            ffi::SQLITE_CANTOPEN_FULLPATH,
            c.as_ptr(),
            n as c_int,
            buf.as_mut_ptr().cast()
        );
        // The unix VFS answers SQLITE_OK_SYMLINK (an OK code) for links.
        if rc & 0xff != ffi::SQLITE_OK {
            self.rc(rc, "full_pathname", name)?;
        }
        let s = CStr::from_bytes_until_nul(&buf)
            .map_err(|_| Error::new(codes::SQLITE_CANTOPEN_FULLPATH, "unterminated path"))?;
        Ok(ResolvedPath {
            path: FileNameBuf::from(s.to_bytes().to_vec()),
            via_symlink: rc == ffi::SQLITE_OK_SYMLINK,
        })
    }

    fn max_pathname(&self) -> usize {
        // SAFETY: valid VFS.
        unsafe { (*self.vfs).mxPathname.max(1) as usize }
    }
}

/// The `szOsFile` bytes the platform VFS keeps an open file's state in:
/// 8-byte aligned, at an address that never changes, and reached only
/// through raw pointers. The platform VFS writes into it during calls Rust
/// makes through `&self` (`xSectorSize`, `xDeviceCharacteristics`), so no
/// Rust reference may ever cover these bytes: they are owned through the
/// pointer `Box::into_raw` gave, not through a `Box`.
struct NativeBlock {
    words: NonNull<[u64]>,
}

impl NativeBlock {
    fn new(bytes: usize) -> NativeBlock {
        let boxed = vec![0u64; bytes.div_ceil(8).max(1)].into_boxed_slice();
        // Box::into_raw never answers null.
        let words = NonNull::new(Box::into_raw(boxed)).expect("Box::into_raw is never null");
        NativeBlock { words }
    }

    /// The block as the platform VFS's `sqlite3_file`.
    fn file(&self) -> *mut ffi::sqlite3_file {
        self.words.as_ptr().cast()
    }
}

impl Drop for NativeBlock {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::into_raw in `new` and is
        // turned back into its Box exactly once, here, after the file that
        // used it was closed (NativeHandle closes it before its fields drop).
        drop(unsafe { Box::from_raw(self.words.as_ptr()) });
    }
}

/// The platform VFS's open file: its block, its method table and the name
/// it keeps a pointer to. Closed (`xClose`) when the last holder lets go:
/// the [`NativeFile`], or a [`Mapping`] it lent, since closing unmaps the
/// file and a lent page must stay readable until SQLite is done with it.
/// The block and the name are freed after the close (fields drop after
/// `Drop::drop`).
pub(crate) struct NativeHandle {
    block: NativeBlock,
    methods: *const ffi::sqlite3_io_methods,
    _name: Option<SqliteFilename>,
}

// SAFETY: the platform VFS's files may be used from any thread, one call at
// a time. Every call goes through the one `NativeFile` that owns the handle
// (`&mut self`, or `&self` on the one thread that has it: `NativeFile` is
// not `Sync`); the other holders, lent `Mapping`s, never call anything: the
// last holder's drop closes the file, after the `NativeFile` is gone.
unsafe impl Send for NativeHandle {}
// SAFETY: as above: a shared `&NativeHandle` is only used to read the
// pointers, never to call the platform VFS concurrently.
unsafe impl Sync for NativeHandle {}

impl NativeHandle {
    fn file(&self) -> *mut ffi::sqlite3_file {
        self.block.file()
    }
}

impl Drop for NativeHandle {
    fn drop(&mut self) {
        // SAFETY: `methods` is the table xOpen returned, a static of the
        // platform VFS.
        let close = unsafe { (*self.methods).xClose };
        if let Some(close) = close {
            // SAFETY: the block holds an open file and nobody holds it any
            // more (this is the last Arc): closed once, here.
            unsafe { close(self.file()) };
        }
    }
}

/// A native file's hold on itself inside a [`Mapping`] it lent.
pub(crate) struct NativeMapped(Arc<NativeHandle>);

/// A file opened by the platform VFS.
pub struct NativeFile {
    handle: Arc<NativeHandle>,
    out_flags: c_int,
    /// The platform VFS that opened the file (for its `xGetLastError`).
    vfs: *mut ffi::sqlite3_vfs,
    path: FileNameBuf,
    /// Mappings this file lent ([`File::fetch`]) and has not had back: the
    /// platform VFS's own count (`nFetchOut`), which must be zero before
    /// it may unmap the file.
    lent: usize,
}

// SAFETY: SQLite's native files may be used from any thread, one at a time.
// A NativeFile is not Sync (its raw pointer is not), so even its `&self`
// methods, which let the platform VFS write into the block, never run on two
// threads at once.
unsafe impl Send for NativeFile {}

impl NativeFile {
    fn file(&self) -> *mut ffi::sqlite3_file {
        self.handle.file()
    }

    fn check(&self, rc: c_int, what: &str) -> Result<()> {
        if rc == ffi::SQLITE_OK {
            return Ok(());
        }
        let errno = system_errno(self.vfs);
        Err(with_errno(
            Error::new(
                rc,
                format!("native {what} on {:?} failed: {}", self.path, code_name(rc)),
            ),
            errno,
        ))
    }

    /// The path the platform VFS opened (`"<temp>"` for anonymous files).
    pub fn path(&self) -> &FileName {
        &self.path
    }
}

/// Calls method `$m` of the native table, or answers `$missing`.
macro_rules! call {
    ($self:ident, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        // SAFETY: `methods` is the table xOpen returned for this file, a
        // static of the platform VFS.
        let method = unsafe { (*$self.handle.methods).$m };
        match method {
            // SAFETY: the file is open (it closes only when the handle drops), and
            // `file()` is its block, reached only through raw pointers (see
            // NativeBlock), so the platform VFS writing into it aliases no
            // Rust reference, even when `$self` is `&self`; the arguments
            // follow the method's C signature.
            Some(m) => unsafe { m($self.file() $(, $arg)*) },
            None => $missing,
        }
    }};
}

impl File for NativeFile {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let rc = call!(
            self,
            xRead,
            ffi::SQLITE_IOERR_READ,
            buf.as_mut_ptr().cast::<c_void>(),
            buf.len() as c_int,
            offset as i64
        );
        if rc == ffi::SQLITE_IOERR_SHORT_READ {
            // The native VFS zero-filled the tail; report how much is real.
            let size = self.size()?;
            return Ok(size.saturating_sub(offset).min(buf.len() as u64) as usize);
        }
        self.check(rc, "read")?;
        Ok(buf.len())
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let rc = call!(
            self,
            xWrite,
            ffi::SQLITE_IOERR_WRITE,
            buf.as_ptr().cast::<c_void>(),
            buf.len() as c_int,
            offset as i64
        );
        self.check(rc, "write")
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        let rc = call!(self, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size as i64);
        self.check(rc, "truncate")
    }

    fn sync(&mut self, flags: SyncFlags) -> Result<()> {
        let rc = call!(self, xSync, ffi::SQLITE_IOERR_FSYNC, flags.0);
        self.check(rc, "sync")
    }

    fn size(&mut self) -> Result<u64> {
        let mut size: i64 = 0;
        let rc = call!(self, xFileSize, ffi::SQLITE_IOERR_FSTAT, &mut size);
        self.check(rc, "file size")?;
        Ok(size.max(0) as u64)
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        let rc = call!(self, xLock, ffi::SQLITE_IOERR_LOCK, level.to_raw());
        self.check(rc, "lock")
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        let rc = call!(self, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level.to_raw());
        self.check(rc, "unlock")
    }

    fn check_reserved_lock(&mut self) -> Result<bool> {
        let mut out: c_int = 0;
        let rc = call!(
            self,
            xCheckReservedLock,
            ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
            &mut out
        );
        self.check(rc, "check reserved lock")?;
        Ok(out != 0)
    }

    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        let rc = call!(
            self,
            xFileControl,
            ffi::SQLITE_NOTFOUND,
            ctl.op(),
            ctl.raw_arg()
        );
        match rc {
            ffi::SQLITE_OK => Ok(()),
            ffi::SQLITE_NOTFOUND => Err(Error::not_found()),
            rc => self.check(rc, "file control"),
        }
    }

    fn sector_size(&self) -> u32 {
        // `unix` writes into its file struct here (it caches the sector
        // size): through the block's raw pointer, never a reference.
        let size = call!(self, xSectorSize, 4096);
        size.max(0) as u32
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        DeviceCharacteristics(call!(self, xDeviceCharacteristics, 0))
    }

    fn is_read_only(&self) -> bool {
        self.out_flags & ffi::SQLITE_OPEN_READONLY != 0
    }

    fn shm(&self) -> ShmSupport {
        // SAFETY: valid table.
        let m = unsafe { &*self.handle.methods };
        if m.iVersion >= 2 && m.xShmMap.is_some() {
            ShmSupport::Forward
        } else {
            ShmSupport::None
        }
    }

    fn shm_map(&mut self, region: u32, size: u32, extend: bool) -> Result<Option<ShmRegion>> {
        let mut p: *mut c_void = ptr::null_mut();
        let rc = call!(
            self,
            xShmMap,
            ffi::SQLITE_IOERR_SHMMAP,
            region as c_int,
            size as c_int,
            extend as c_int,
            &mut p
        );
        // SQLITE_READONLY with a pointer: a read-only `-shm` file mapped
        // read-only; SQLite must get both the pointer and the code.
        if rc == ffi::SQLITE_READONLY && !p.is_null() {
            return Ok(ShmRegion::from_ptr(p.cast()).map(ShmRegion::read_only));
        }
        self.check(rc, "shm map")?;
        Ok(ShmRegion::from_ptr(p.cast()))
    }

    fn shm_lock(&mut self, offset: u32, n: u32, op: ShmLockOp) -> Result<()> {
        let rc = call!(
            self,
            xShmLock,
            ffi::SQLITE_IOERR_SHMLOCK,
            offset as c_int,
            n as c_int,
            op.to_flags()
        );
        self.check(rc, "shm lock")
    }

    fn shm_barrier(&mut self) {
        call!(self, xShmBarrier, ());
    }

    fn shm_unmap(&mut self, delete: bool) -> Result<()> {
        let rc = call!(self, xShmUnmap, ffi::SQLITE_OK, delete as c_int);
        self.check(rc, "shm unmap")
    }

    fn can_fetch(&self) -> bool {
        // SAFETY: valid table, a static of the platform VFS.
        let m = unsafe { &*self.handle.methods };
        m.iVersion >= 3 && m.xFetch.is_some() && m.xUnfetch.is_some()
    }

    fn fetch(&mut self, offset: u64, len: usize) -> Result<Option<Mapping>> {
        if !self.can_fetch() {
            return Ok(None);
        }
        let (Ok(off), Ok(amt)) = (i64::try_from(offset), c_int::try_from(len)) else {
            return Ok(None);
        };
        let mut p: *mut c_void = ptr::null_mut();
        let rc = call!(self, xFetch, ffi::SQLITE_IOERR_MMAP, off, amt, &mut p);
        self.check(rc, "fetch")?;
        let Some(ptr) = NonNull::new(p.cast::<u8>()) else {
            return Ok(None);
        };
        self.lent += 1;
        // The platform VFS keeps `len` bytes, and 256 more, mapped at `ptr`
        // until this file gets the pointer back (`unfetch`), and the hold
        // keeps the file open until then.
        Ok(Some(Mapping::native(
            ptr,
            len,
            NativeMapped(Arc::clone(&self.handle)),
        )))
    }

    fn unfetch(&mut self, offset: u64, mapping: Mapping) -> Result<()> {
        let ours = mapping
            .native_keep()
            .is_some_and(|NativeMapped(h)| Arc::ptr_eq(h, &self.handle));
        if !ours {
            // Releasing a page this file did not lend would corrupt the
            // platform VFS's count, and with it the rule that it never
            // unmaps a page still lent.
            return Err(Error::new(
                ffi::SQLITE_IOERR_MMAP,
                format!(
                    "unfetch on {:?}: the mapping was not lent by this file",
                    self.path
                ),
            ));
        }
        let rc = call!(
            self,
            xUnfetch,
            ffi::SQLITE_IOERR_MMAP,
            offset as i64,
            mapping.as_ptr()
        );
        self.lent -= 1;
        self.check(rc, "unfetch")
    }

    fn unmap_file(&mut self) -> Result<()> {
        if self.lent > 0 || !self.can_fetch() {
            // The platform VFS would unmap pages still lent (its check is
            // only a debug assertion); SQLite asks this only when it holds
            // none, so a lent page here is a shim's, and its mapping stays.
            return Ok(());
        }
        let rc = call!(
            self,
            xUnfetch,
            ffi::SQLITE_IOERR_MMAP,
            0i64,
            ptr::null_mut::<c_void>()
        );
        self.check(rc, "unmap")
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::{CString, c_char};

    use super::*;
    use crate::{FileKind, OpenAccess, fcntl};

    /// A database file with 16 pages of `0x5A`, opened natively under a
    /// name SQLite built (the platform VFS keeps the pointer), with
    /// `mmap_size` at 1 MiB; the name is freed by the caller.
    fn open_mapped(dir: &std::path::Path, file: &str) -> (NativeFile, *mut c_char) {
        let path = dir.join(file);
        std::fs::write(&path, vec![0x5Au8; 16 * 4096]).unwrap();
        let c = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: valid C strings; no parameters. The result is freed with
        // sqlite3_free_filename by the caller, after the file closed.
        let z = unsafe {
            ffi::sqlite3_create_filename(c.as_ptr(), c"".as_ptr(), c"".as_ptr(), 0, ptr::null_mut())
        };
        // SAFETY: a name built by sqlite3_create_filename, alive until freed.
        let name = unsafe { OpenName::from_sqlite(z, FileKind::MainDb) };
        let mut f = Native::new()
            .unwrap()
            .open(
                &name,
                OpenOptions::new(FileKind::MainDb, OpenAccess::ReadWrite),
            )
            .unwrap();
        let mut limit: i64 = 1 << 20;
        // SAFETY: MMAP_SIZE takes a `sqlite3_int64*`, valid for the call.
        let mut ctl = unsafe {
            FileControl::from_raw(fcntl::SQLITE_FCNTL_MMAP_SIZE, (&raw mut limit).cast())
        };
        f.file_control(&mut ctl).unwrap();
        assert!(f.can_fetch());
        (f, z.cast_mut())
    }

    fn free_name(z: *mut c_char) {
        // SAFETY: built by sqlite3_create_filename, freed once, after the
        // file that used it closed.
        unsafe { ffi::sqlite3_free_filename(z) }
    }

    /// Reads the first byte of a native mapping.
    fn first_byte(m: &Mapping) -> u8 {
        // SAFETY: the platform VFS keeps `m.len()` bytes mapped at the
        // pointer until the mapping is given back to its file.
        unsafe { *m.as_ptr().cast::<u8>() }
    }

    #[test]
    fn a_mapping_goes_back_only_to_the_file_that_lent_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, za) = open_mapped(dir.path(), "a.db");
        let (mut b, zb) = open_mapped(dir.path(), "b.db");
        let from_a = a.fetch(4096, 4096).unwrap().expect("unix maps the page");
        assert_eq!(first_byte(&from_a), 0x5A);
        let err = b.unfetch(4096, from_a).unwrap_err();
        assert_eq!(err.code(), Some(ffi::SQLITE_IOERR_MMAP));
        assert!(err.message().contains("not lent by this file"));
        // (The mapping was consumed by the refused call: a's count stays
        // raised, so a never unmaps; what matters is that b's did not drop.)
        let from_b = b.fetch(0, 4096).unwrap().unwrap();
        b.unfetch(0, from_b).unwrap();
        drop((a, b));
        free_name(za);
        free_name(zb);
    }

    #[test]
    fn a_lent_page_outlives_unmap_hints_and_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, za) = open_mapped(dir.path(), "c.db");
        let m = a.fetch(8192, 4096).unwrap().unwrap();
        // SQLite's whole-file unmap hint while a page is lent is ignored
        // (unix would unmap it: its check is a debug assertion).
        a.unmap_file().unwrap();
        assert_eq!(first_byte(&m), 0x5A);
        // Closing the file with the page still lent keeps it mapped (and
        // the file open) until the mapping goes.
        let hold = m.native_keep().map(|NativeMapped(h)| Arc::strong_count(h));
        assert_eq!(hold, Some(2));
        drop(a);
        assert_eq!(first_byte(&m), 0x5A);
        drop(m);
        free_name(za);
        // Given back in order, the hint goes through.
        let (mut a, za) = open_mapped(dir.path(), "d.db");
        let m = a.fetch(0, 4096).unwrap().unwrap();
        a.unfetch(0, m).unwrap();
        assert_eq!(a.lent, 0);
        a.unmap_file().unwrap();
        let m = a.fetch(0, 4096).unwrap().expect("mapped again");
        a.unfetch(0, m).unwrap();
        drop(a);
        free_name(za);
    }
}
