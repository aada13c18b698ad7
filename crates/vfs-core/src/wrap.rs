//! [`Wrap`]: observe any VFS without touching it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shm::{ShmLockOp, ShmRegion};
use crate::{
    AccessCheck, DeviceCharacteristics, Event, File, FileControl, FileKind, LockLevel, Op,
    OpenName, OpenOptions, Recorder, Registration, Result, ShmSupport, SyncFlags, Vfs, codes,
    register,
};

/// Decorates a VFS so every open, close, read, write, sync, truncate, size
/// query, lock, unlock, reserved-lock check, delete, access check and
/// (for files that forward shared memory, such as [`Native`](crate::Native))
/// shared-memory map reports its file, kind, offset, bytes, latency and
/// result to a [`Recorder`].
///
/// Everything else is forwarded unchanged: file controls (the same
/// `&mut FileControl`), sector size, device characteristics, read-only
/// status, the shared-memory capability ([`ShmSupport::Group`] or
/// [`ShmSupport::Forward`] passes through as is, so WAL works), shared-memory
/// locks and barriers, path names, randomness, sleep and time. Errors reach
/// SQLite exactly as the base returned them.
///
/// `R` is the recorder type: a concrete recorder compiles to direct calls;
/// the default, `dyn Recorder`, takes any. To observe only sometimes, use
/// [`register_observed`], which registers the base itself, at no cost, when
/// there is no recorder.
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::{Native, Op, StatsRecorder, Wrap, register};
///
/// let stats = Arc::new(StatsRecorder::new());
/// let reg = register("wrap-doc", Wrap::new(Native::new().unwrap(), stats.clone()), false).unwrap();
/// let dir = tempfile::tempdir().unwrap();
/// let uri = format!("file:{}?vfs=wrap-doc", dir.path().join("a.db").display());
/// let conn = rusqlite::Connection::open(uri).unwrap();
/// conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
/// drop(conn);
/// assert!(stats.snapshot().op(Op::Sync).count > 0);
/// reg.unregister().unwrap();
/// ```
pub struct Wrap<V, R: ?Sized = dyn Recorder> {
    base: V,
    recorder: Arc<R>,
}

impl<V: Vfs, R: Recorder + ?Sized> Wrap<V, R> {
    /// `base`, reporting to `recorder`.
    pub fn new(base: V, recorder: Arc<R>) -> Self {
        Wrap { base, recorder }
    }

    /// The wrapped VFS.
    pub fn base(&self) -> &V {
        &self.base
    }

    /// The recorder.
    pub fn recorder(&self) -> &Arc<R> {
        &self.recorder
    }

    /// Takes the wrapper apart.
    pub fn into_parts(self) -> (V, Arc<R>) {
        (self.base, self.recorder)
    }

    #[inline]
    fn path_event(&self, op: Op, path: &str, start: Instant, code: i32) {
        self.recorder.record(&Event {
            op,
            file: path,
            kind: None,
            offset: 0,
            bytes: 0,
            elapsed: start.elapsed(),
            code,
            lock: None,
        });
    }
}

impl<V: fmt::Debug, R: ?Sized> fmt::Debug for Wrap<V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wrap").field("base", &self.base).finish()
    }
}

/// The result code SQLite receives for `r` from `op`.
#[inline]
fn code_of<T>(r: &Result<T>, op: Op) -> i32 {
    match r {
        Ok(_) => codes::SQLITE_OK,
        Err(e) => e.code_for(op),
    }
}

impl<V: Vfs, R: Recorder + ?Sized> Vfs for Wrap<V, R> {
    type File = WrapFile<V::File, R>;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        let start = Instant::now();
        let opened = self.base.open(name, opts);
        let path = name.path().unwrap_or("");
        self.recorder.record(&Event {
            op: Op::Open,
            file: path,
            kind: Some(opts.kind),
            offset: 0,
            bytes: 0,
            elapsed: start.elapsed(),
            code: code_of(&opened, Op::Open),
            lock: None,
        });
        let inner = opened?;
        Ok(WrapFile {
            inner,
            meta: Meta {
                recorder: Arc::clone(&self.recorder),
                name: path.into(),
                kind: opts.kind,
                close_started: None,
            },
        })
    }

    fn delete(&self, path: &str, sync_dir: bool) -> Result<()> {
        let start = Instant::now();
        let r = self.base.delete(path, sync_dir);
        self.path_event(Op::Delete, path, start, code_of(&r, Op::Delete));
        r
    }

    fn access(&self, path: &str, check: AccessCheck) -> Result<bool> {
        let start = Instant::now();
        let r = self.base.access(path, check);
        self.path_event(Op::Access, path, start, code_of(&r, Op::Access));
        r
    }

    fn full_pathname(&self, path: &str) -> Result<String> {
        self.base.full_pathname(path)
    }

    fn max_pathname(&self) -> usize {
        self.base.max_pathname()
    }

    fn randomness(&self, buf: &mut [u8]) -> Option<usize> {
        self.base.randomness(buf)
    }

    fn sleep(&self, duration: Duration) -> Option<Duration> {
        self.base.sleep(duration)
    }

    fn current_time_ms(&self) -> Option<i64> {
        self.base.current_time_ms()
    }
}

/// A file opened through [`Wrap`]: the base's file plus what its events
/// need (the recorder, its name and kind, kept from `open` so no event
/// allocates).
pub struct WrapFile<F, R: Recorder + ?Sized = dyn Recorder> {
    // Field order matters: `inner` is closed (dropped) before `meta`, whose
    // drop records the close with its latency.
    inner: F,
    meta: Meta<R>,
}

struct Meta<R: Recorder + ?Sized> {
    recorder: Arc<R>,
    name: Box<str>,
    kind: FileKind,
    /// Set by `WrapFile::drop` just before the base file closes.
    close_started: Option<Instant>,
}

impl<R: Recorder + ?Sized> Meta<R> {
    #[inline]
    fn record(&self, op: Op, offset: u64, bytes: u64, start: Instant, code: i32) {
        self.record_at(op, offset, bytes, start.elapsed(), code, None);
    }

    #[inline]
    fn record_at(
        &self,
        op: Op,
        offset: u64,
        bytes: u64,
        elapsed: Duration,
        code: i32,
        lock: Option<LockLevel>,
    ) {
        self.recorder.record(&Event {
            op,
            file: &self.name,
            kind: Some(self.kind),
            offset,
            bytes,
            elapsed,
            code,
            lock,
        });
    }
}

impl<R: Recorder + ?Sized> Drop for Meta<R> {
    fn drop(&mut self) {
        let elapsed = self.close_started.map_or(Duration::ZERO, |t| t.elapsed());
        self.record_at(Op::Close, 0, 0, elapsed, codes::SQLITE_OK, None);
    }
}

impl<F, R: Recorder + ?Sized> Drop for WrapFile<F, R> {
    fn drop(&mut self) {
        // The fields drop after this: first the base file, then `meta`,
        // which records the close.
        self.meta.close_started = Some(Instant::now());
    }
}

impl<F: fmt::Debug, R: Recorder + ?Sized> fmt::Debug for WrapFile<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrapFile")
            .field("inner", &self.inner)
            .field("name", &self.meta.name)
            .field("kind", &self.meta.kind)
            .finish()
    }
}

impl<F, R: Recorder + ?Sized> WrapFile<F, R> {
    /// The base's file.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    /// The base's file, mutably.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.inner
    }

    /// The name the file was opened with (empty for an anonymous temporary
    /// file).
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// The kind the file was opened as.
    pub fn kind(&self) -> FileKind {
        self.meta.kind
    }
}

impl<F: File, R: Recorder + ?Sized> File for WrapFile<F, R> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let start = Instant::now();
        let r = self.inner.read_at(buf, offset);
        let (bytes, code) = match &r {
            Ok(n) if *n >= buf.len() => (buf.len(), codes::SQLITE_OK),
            Ok(n) => (*n, codes::SQLITE_IOERR_SHORT_READ),
            Err(e) => match e.code_for(Op::Read) {
                // The core zero-fills the whole buffer: nothing was read.
                codes::SQLITE_IOERR_SHORT_READ => (0, codes::SQLITE_IOERR_SHORT_READ),
                code => (buf.len(), code),
            },
        };
        self.meta
            .record(Op::Read, offset, bytes as u64, start, code);
        r
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.write_at(buf, offset);
        self.meta.record(
            Op::Write,
            offset,
            buf.len() as u64,
            start,
            code_of(&r, Op::Write),
        );
        r
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.truncate(size);
        self.meta
            .record(Op::Truncate, size, 0, start, code_of(&r, Op::Truncate));
        r
    }

    fn sync(&mut self, flags: SyncFlags) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.sync(flags);
        self.meta
            .record(Op::Sync, 0, 0, start, code_of(&r, Op::Sync));
        r
    }

    fn size(&mut self) -> Result<u64> {
        let start = Instant::now();
        let r = self.inner.size();
        let size = r.as_ref().map_or(0, |s| *s);
        self.meta
            .record(Op::FileSize, size, 0, start, code_of(&r, Op::FileSize));
        r
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.lock(level);
        self.meta.record_at(
            Op::Lock,
            0,
            0,
            start.elapsed(),
            code_of(&r, Op::Lock),
            Some(level),
        );
        r
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.unlock(level);
        self.meta.record_at(
            Op::Unlock,
            0,
            0,
            start.elapsed(),
            code_of(&r, Op::Unlock),
            Some(level),
        );
        r
    }

    fn check_reserved_lock(&mut self) -> Result<bool> {
        let start = Instant::now();
        let r = self.inner.check_reserved_lock();
        self.meta.record(
            Op::CheckReservedLock,
            0,
            0,
            start,
            code_of(&r, Op::CheckReservedLock),
        );
        r
    }

    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        self.inner.file_control(ctl)
    }

    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        self.inner.device_characteristics()
    }

    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    fn shm(&self) -> ShmSupport {
        self.inner.shm()
    }

    fn shm_map(&mut self, region: u32, size: u32, extend: bool) -> Result<Option<ShmRegion>> {
        let start = Instant::now();
        let r = self.inner.shm_map(region, size, extend);
        let mapped = matches!(r, Ok(Some(_)));
        self.meta.record(
            Op::ShmMap,
            u64::from(region) * u64::from(size),
            if mapped { u64::from(size) } else { 0 },
            start,
            code_of(&r, Op::ShmMap),
        );
        r
    }

    fn shm_lock(&mut self, offset: u32, n: u32, op: ShmLockOp) -> Result<()> {
        self.inner.shm_lock(offset, n, op)
    }

    fn shm_barrier(&mut self) {
        self.inner.shm_barrier()
    }

    fn shm_unmap(&mut self, delete: bool) -> Result<()> {
        self.inner.shm_unmap(delete)
    }
}

/// Registers `base` under `name`, observed by `recorder` when there is one.
///
/// With `None` the base itself is registered, not a [`Wrap`] with an empty
/// recorder: SQLite calls the base's methods directly and observation costs
/// nothing at all. With `Some(recorder)` it registers
/// `Wrap::new(base, recorder)`.
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::{Native, Recorder, StatsRecorder, register_observed};
///
/// let observe = std::env::var_os("MYAPP_IO_STATS").is_some();
/// let stats = Arc::new(StatsRecorder::new());
/// let recorder: Option<Arc<dyn Recorder>> = observe.then(|| stats.clone() as Arc<dyn Recorder>);
/// let reg = register_observed("observed-doc", Native::new().unwrap(), recorder, false).unwrap();
/// // … open databases with ?vfs=observed-doc …
/// if observe {
///     println!("{}", stats.snapshot());
/// }
/// reg.unregister().unwrap();
/// ```
pub fn register_observed<V: Vfs>(
    name: &str,
    base: V,
    recorder: Option<Arc<dyn Recorder>>,
    make_default: bool,
) -> Result<Registration> {
    match recorder {
        None => register(name, base, make_default),
        Some(recorder) => register(name, Wrap::new(base, recorder), make_default),
    }
}
