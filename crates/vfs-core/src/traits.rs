//! The two traits a backend implements.

use std::sync::Arc;
use std::time::Duration;

use crate::shm::{ShmGroup, ShmLockOp, ShmRegion};
use crate::{
    AccessCheck, AccessShortcut, DeviceCharacteristics, Error, FileControl, FileName, FileNameBuf,
    LockLevel, Mapping, OpenName, OpenOptions, PageLayers, Result, SyncFlags,
};

/// A virtual file system: where SQLite's files live.
///
/// Implement it in safe Rust and [`register`](crate::register) it; SQLite
/// then opens databases on it with `?vfs=<name>`. Randomness, sleeping and
/// the clock come from the platform's VFS unless overridden. A shim forwards
/// what it does not change with [`forward_vfs!`](crate::forward_vfs).
///
/// `Vfs` is object safe: `Box<dyn DynVfs>` (see [`erase`](crate::erase)) is
/// the form for stacks chosen at run time.
pub trait Vfs: Send + Sync + 'static {
    /// The open-file type.
    type File: File;

    /// Opens (or creates, per `opts.access`) the file named `name`.
    ///
    /// A name without a path ([`OpenName::path`] is `None`) is an anonymous
    /// temporary file: keep it private to the returned handle and drop it
    /// when the handle drops. A named file opened with
    /// `opts.delete_on_close` is deleted by the core (through
    /// [`Vfs::delete`]) after it closes; a `NotFound` answer there is fine.
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File>;

    /// Deletes the file `name`. A missing file is an error whose
    /// `io::ErrorKind` is `NotFound` (becomes `SQLITE_IOERR_DELETE_NOENT`).
    ///
    /// Names here and in every other method are [`FileName`]s: the bytes
    /// SQLite passed, which need not be UTF-8.
    fn delete(&self, name: &FileName, sync_dir: bool) -> Result<()>;

    /// Answers whether the file `name` exists (or is readable and writable).
    fn access(&self, name: &FileName, check: AccessCheck) -> Result<bool>;

    /// Answers [`access`](Vfs::access) for some names without this backend
    /// (asked once, at registration; see [`AccessShortcut`]). The default
    /// has none. A layer that forwards `access` unchanged forwards this
    /// too ([`forward_vfs!`](crate::forward_vfs) does); one that answers
    /// `access` itself (to count or fail calls) must not.
    fn access_shortcut(&self) -> Option<AccessShortcut> {
        None
    }

    /// The canonical form of `name`; by default `name` itself.
    fn full_pathname(&self, name: &FileName) -> Result<FileNameBuf> {
        Ok(name.to_owned())
    }

    /// [`full_pathname`](Vfs::full_pathname), also telling whether a
    /// symbolic link was followed on the way (SQLite then refuses to open
    /// the file with `SQLITE_OPEN_NOFOLLOW`). The default follows no link;
    /// shims forward it to their base.
    fn resolve_pathname(&self, name: &FileName) -> Result<ResolvedPath> {
        Ok(ResolvedPath {
            path: self.full_pathname(name)?,
            via_symlink: false,
        })
    }

    /// The longest path this VFS handles (`mxPathname`).
    fn max_pathname(&self) -> usize {
        1024
    }

    /// Fills `buf` with random bytes and returns how many it wrote, or `None`
    /// to use the platform's randomness (the default).
    fn randomness(&self, _buf: &mut [u8]) -> Option<usize> {
        None
    }

    /// Sleeps for `duration` and returns the time slept, or `None` to use the
    /// platform's sleep (the default).
    fn sleep(&self, _duration: Duration) -> Option<Duration> {
        None
    }

    /// The current time as milliseconds since the Julian epoch, or `None`
    /// for the platform's clock (the default).
    fn current_time_ms(&self) -> Option<i64> {
        None
    }

    /// The page layers of this stack, lowest first: the layers that claim
    /// reserved bytes at the end of every database page (checksums,
    /// encryption). A plain backend has none (the default); shims and
    /// wrappers forward the question to their base
    /// ([`forward_vfs!`](crate::forward_vfs) does), and a page layer answers
    /// its base's list with itself on top. So a page layer learns, when it
    /// is built, the bytes the layers beneath it own, and
    /// [`register`](crate::register) refuses a stack whose layers cannot
    /// work together ([`PageLayers::check`]).
    fn page_layers(&self) -> PageLayers {
        PageLayers::default()
    }
}

/// The answer of [`Vfs::resolve_pathname`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPath {
    /// The canonical path.
    pub path: FileNameBuf,
    /// Whether resolving it followed a symbolic link (`SQLITE_OK_SYMLINK`).
    pub via_symlink: bool,
}

/// One open file.
///
/// SQLite calls a file from one thread at a time, hence `&mut self`. Locking
/// methods have no default: a backend either implements them (usually with
/// a [`LockManager`](crate::LockManager) handle and the one line
/// [`lock_via!`](crate::lock_via)) or opts out with the explicit
/// [`no_lock!`](crate::no_lock) line. A shim forwards what it does not
/// change with [`forward_file!`](crate::forward_file).
pub trait File: Send + 'static {
    /// Reads into `buf` from `offset`; returns the bytes read. Fewer than
    /// `buf.len()` means the file ended: the core zero-fills the rest and
    /// answers `SQLITE_IOERR_SHORT_READ`, as SQLite requires.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize>;

    /// Whether [`fetch`](File::fetch) may ever lend a mapping. Asked once,
    /// at open: with `true` SQLite gets `xFetch`/`xUnfetch` (a version-3
    /// method table) and uses them once `PRAGMA mmap_size` is above zero.
    /// The default is `false`: every read goes through
    /// [`read_at`](File::read_at). A shim that writes its own `read_at`
    /// (it transforms, checks or counts what is read) gets `false` from
    /// [`forward_file!`](crate::forward_file) unless it writes `can_fetch`
    /// and `fetch` too, since mapped reads would bypass it.
    fn can_fetch(&self) -> bool {
        false
    }

    /// Memory-mapped read (`xFetch`): lends SQLite the `len` bytes at
    /// `offset` (one database page) to read in place until it gives them
    /// back through [`unfetch`](File::unfetch), possibly after many other
    /// calls. `Ok(None)` means "not mapped": SQLite reads the page with
    /// `read_at` instead; the default always answers so. See [`Mapping`]
    /// for how a backend lends bytes it keeps.
    ///
    /// The lent bytes must be the file's bytes at `offset` when lent; while
    /// lent they do not change (a write to them goes to a copy, which later
    /// reads and fetches see). SQLite's locking makes sure no other
    /// connection writes a page a reader has mapped, as with `read_at`.
    fn fetch(&mut self, _offset: u64, _len: usize) -> Result<Option<Mapping>> {
        Ok(None)
    }

    /// SQLite gives back a mapping [`fetch`](File::fetch) lent for
    /// `offset`. The default drops it.
    fn unfetch(&mut self, _offset: u64, mapping: Mapping) -> Result<()> {
        drop(mapping);
        Ok(())
    }

    /// SQLite's hint that any mapping of the whole file the file keeps may
    /// be stale (the file may have changed while this connection held no
    /// lock) and should be dropped (`xUnfetch` with a null pointer); it
    /// sends it only while no mapping is lent. The default does nothing.
    fn unmap_file(&mut self) -> Result<()> {
        Ok(())
    }

    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()>;

    /// Sets the file's size.
    fn truncate(&mut self, size: u64) -> Result<()>;

    /// Makes prior writes durable.
    fn sync(&mut self, flags: SyncFlags) -> Result<()>;

    /// The file's size in bytes.
    fn size(&mut self) -> Result<u64>;

    /// Raises the lock to `level` (never `Pending`: SQLite asks for
    /// `Exclusive` and the lock passes through `Pending`). `SQLITE_BUSY` when
    /// another connection holds a conflicting lock.
    fn lock(&mut self, level: LockLevel) -> Result<()>;

    /// Lowers the lock to `level` (`Shared` or `None`).
    fn unlock(&mut self, level: LockLevel) -> Result<()>;

    /// Whether any connection holds a `Reserved` or stronger lock.
    fn check_reserved_lock(&mut self) -> Result<bool>;

    /// Answers a file control; the default says "not handled"
    /// ([`Error::not_found`]). Shims forward what they do not handle.
    fn file_control(&mut self, _ctl: &mut FileControl<'_>) -> Result<()> {
        Err(Error::not_found())
    }

    /// The sector size; 4096 by default.
    fn sector_size(&self) -> u32 {
        4096
    }

    /// `SQLITE_IOCAP_*` properties; none by default (never `ATOMIC`).
    fn device_characteristics(&self) -> DeviceCharacteristics {
        DeviceCharacteristics::NONE
    }

    /// Whether the file was opened read-only although SQLite asked for
    /// read-write (reported through `xOpen`'s output flags).
    fn is_read_only(&self) -> bool {
        false
    }

    /// Shared-memory (WAL index) support. The default, `None`, gives the file
    /// a version-1 method table: no WAL unless `locking_mode=EXCLUSIVE`.
    fn shm(&self) -> ShmSupport {
        ShmSupport::None
    }

    /// With [`ShmSupport::Forward`] only: maps region `region` of `size`
    /// bytes; `extend == false` answers `None` for a region that does not
    /// exist yet.
    fn shm_map(&mut self, _region: u32, _size: u32, _extend: bool) -> Result<Option<ShmRegion>> {
        Err(Error::io("shared memory is not supported by this file"))
    }

    /// With [`ShmSupport::Forward`] only: takes or releases WAL-index locks.
    fn shm_lock(&mut self, _offset: u32, _n: u32, _op: ShmLockOp) -> Result<()> {
        Err(Error::io("shared memory is not supported by this file"))
    }

    /// With [`ShmSupport::Forward`] only: a full memory barrier.
    fn shm_barrier(&mut self) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }

    /// With [`ShmSupport::Forward`] only: unmaps this connection's view,
    /// deleting the index when `delete` is set and nobody else uses it.
    fn shm_unmap(&mut self, _delete: bool) -> Result<()> {
        Ok(())
    }
}

/// How a file provides SQLite's WAL index.
#[derive(Clone, Debug, Default)]
pub enum ShmSupport {
    /// No shared memory: WAL only in exclusive locking mode.
    #[default]
    None,
    /// In-process shared memory managed by vfs-core: every connection whose
    /// file returns the same group shares one WAL index and lock table.
    Group(Arc<ShmGroup>),
    /// The file implements the `shm_*` methods itself (the native base, and
    /// shims forwarding to it).
    Forward,
}

impl ShmSupport {
    /// Whether any shared memory is available.
    pub fn is_some(&self) -> bool {
        !matches!(self, ShmSupport::None)
    }
}

impl<V: Vfs> Vfs for Arc<V> {
    type File = V::File;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        (**self).open(name, opts)
    }
    crate::forward_vfs!(**self);
}
