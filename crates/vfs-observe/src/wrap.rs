//! [`Wrap`]: observe any VFS without touching it.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vfs_core::shm::ShmRegion;
use vfs_core::{
    AccessCheck, File, FileKind, FileName, FileNameBuf, LockLevel, Mapping, Op, OpenName,
    OpenOptions, Registration, Result, SyncFlags, Vfs, codes, register,
};

use crate::{Event, LatencyMode, Recorder};

/// Decorates a VFS so every open, close, read, write, sync, truncate, size
/// query, lock, unlock, reserved-lock check, delete, access check,
/// memory-mapped read ([`Op::Fetch`], its bytes those lent, 0 when the base
/// lent none) and (for files that forward shared memory, such as
/// [`Native`](vfs_core::Native)) shared-memory map reports its file, kind,
/// offset, bytes, latency and result to a [`Recorder`].
///
/// Everything else is forwarded unchanged: mappings and their return
/// (`unfetch`; SQLite maps pages only when the base lends them), file
/// controls (the same
/// `&mut FileControl`), sector size, device characteristics, read-only
/// status, the shared-memory capability ([`ShmSupport::Group`](vfs_core::ShmSupport::Group) or
/// [`ShmSupport::Forward`](vfs_core::ShmSupport::Forward) passes through as is, so WAL works), shared-memory
/// locks and barriers, path names, randomness, sleep and time. Errors reach
/// SQLite exactly as the base returned them.
///
/// `R` is the recorder type: a concrete recorder compiles to direct calls;
/// the default, `dyn Recorder`, takes any. To observe only sometimes, use
/// [`register_observed`], which registers the base itself, at no cost, when
/// there is no recorder.
///
/// Latency: `Wrap::new` asks the recorder once, through
/// [`Recorder::latency`], which calls to time (reading the clock twice costs
/// more than a read from memory):
///
/// * [`LatencyMode::Every`]: every call (the default of the trait, so of
///   [`TracingRecorder`](crate::TracingRecorder) and custom recorders);
/// * [`LatencyMode::Sampled(n)`](LatencyMode::Sampled): every open, close,
///   sync, truncate, delete and shared-memory map, and about one in `n` of
///   the frequent, cheap calls — read, fetch, write, file size, lock, unlock,
///   reserved-lock check and access — chosen at random intervals (the
///   default of [`StatsRecorder`](crate::StatsRecorder));
/// * [`LatencyMode::Off`]: no call.
///
/// Every call is reported either way, with its exact offset, bytes and
/// result; only [`Event::elapsed`] is `None` for the calls not timed.
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::{Native, Op, register};
/// use vfs_observe::{StatsRecorder, Wrap};
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
    timing: Timing,
}

impl<V: Vfs, R: Recorder + ?Sized> Wrap<V, R> {
    /// `base`, reporting to `recorder`, timing what
    /// [`recorder.latency()`](Recorder::latency) asks for (read once, here).
    pub fn new(base: V, recorder: Arc<R>) -> Self {
        let timing = Timing::of(recorder.latency());
        Wrap {
            base,
            recorder,
            timing,
        }
    }

    /// Which calls are timed: what the recorder asked at [`Wrap::new`]
    /// (`Sampled(0)` and `Sampled(1)` read as `Every`, `Sampled(n)` for `n`
    /// above 2^30 as `Sampled(2^30)`).
    pub fn latency(&self) -> LatencyMode {
        self.timing.mode
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
    fn path_event(&self, op: Op, path: &FileName, start: Option<Instant>, code: i32) {
        self.recorder.record(&Event {
            op,
            file: path,
            kind: None,
            offset: 0,
            bytes: 0,
            elapsed: start.map(|s| s.elapsed()),
            code,
            lock: None,
        });
    }
}

/// The rarest sampling: one call in 2^30 (keeps the gap arithmetic in
/// range).
const MAX_SAMPLING: u32 = 1 << 30;

/// Which calls a wrapper times, fixed at [`Wrap::new`].
#[derive(Clone, Copy, Debug)]
struct Timing {
    mode: LatencyMode,
    /// Time open, close, sync, truncate, delete and shm_map.
    always: bool,
    /// The frequent, cheap calls: 0 never timed, 1 all, n about one in n.
    one_in: u32,
}

impl Timing {
    fn of(mode: LatencyMode) -> Timing {
        let mode = match mode {
            LatencyMode::Sampled(0 | 1) => LatencyMode::Every,
            LatencyMode::Sampled(n) => LatencyMode::Sampled(n.min(MAX_SAMPLING)),
            other => other,
        };
        let (always, one_in) = match mode {
            LatencyMode::Every => (true, 1),
            LatencyMode::Sampled(n) => (true, n),
            LatencyMode::Off => (false, 0),
        };
        Timing {
            mode,
            always,
            one_in,
        }
    }

    #[inline]
    fn start_always(self) -> Option<Instant> {
        self.always.then(Instant::now)
    }
}

/// Picks the frequent calls to time: a countdown whose every restart draws
/// a gap uniformly in `1..=2n-1` (mean `n`). Random gaps keep a periodic
/// pattern of calls (lock, size, read, unlock, …) from always putting the
/// same call under the clock; the countdown keeps the untimed path to a
/// decrement.
#[derive(Clone, Copy)]
struct Sampler {
    left: u32,
    /// xorshift32 state, never zero.
    rng: u32,
}

/// Seeds of the per-file samplers.
static SEED: AtomicU32 = AtomicU32::new(0x2545_f491);

impl Sampler {
    fn new(one_in: u32) -> Sampler {
        let seed = SEED.fetch_add(0x9e37_79b9, Ordering::Relaxed) | 1;
        let mut s = Sampler { left: 0, rng: seed };
        // A random phase: the first call is not always the one timed.
        s.left = s.gap(one_in);
        s
    }

    /// Whether to time this call.
    #[inline]
    fn hit(&mut self, one_in: u32) -> bool {
        if self.left > 1 {
            self.left -= 1;
            false
        } else {
            self.left = self.gap(one_in);
            one_in != 0
        }
    }

    fn gap(&mut self, one_in: u32) -> u32 {
        match one_in {
            0 => u32::MAX,
            1 => 1,
            n => {
                let mut x = self.rng;
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                self.rng = x;
                let span = 2 * u64::from(n) - 1;
                1 + ((u64::from(x) * span) >> 32) as u32
            }
        }
    }
}

thread_local! {
    /// The sampler of `access`, which has no open file to keep one in.
    static PATH_SAMPLER: Cell<Sampler> = const {
        Cell::new(Sampler { left: 1, rng: 0x6c07_8965 })
    };
}

/// Whether to time an `access` call (sampled like the frequent file calls).
#[inline]
fn hit_path(one_in: u32) -> bool {
    match one_in {
        0 => false,
        1 => true,
        n => PATH_SAMPLER
            .try_with(|c| {
                let mut s = c.get();
                let hit = s.hit(n);
                c.set(s);
                hit
            })
            .unwrap_or(false),
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
        let start = self.timing.start_always();
        let opened = self.base.open(name, opts);
        let path = name.path().unwrap_or(FileName::new(""));
        self.recorder.record(&Event {
            op: Op::Open,
            file: path,
            kind: Some(opts.kind),
            offset: 0,
            bytes: 0,
            elapsed: start.map(|s| s.elapsed()),
            code: code_of(&opened, Op::Open),
            lock: None,
        });
        let inner = opened?;
        Ok(WrapFile {
            inner,
            meta: Meta {
                recorder: Arc::clone(&self.recorder),
                name: path.to_owned(),
                kind: opts.kind,
                timing: self.timing,
                sampler: Sampler::new(self.timing.one_in),
                close_started: None,
            },
        })
    }

    fn delete(&self, path: &FileName, sync_dir: bool) -> Result<()> {
        let start = self.timing.start_always();
        let r = self.base.delete(path, sync_dir);
        self.path_event(Op::Delete, path, start, code_of(&r, Op::Delete));
        r
    }

    #[inline]
    fn access(&self, path: &FileName, check: AccessCheck) -> Result<bool> {
        let start = hit_path(self.timing.one_in).then(Instant::now);
        let r = self.base.access(path, check);
        self.path_event(Op::Access, path, start, code_of(&r, Op::Access));
        r
    }

    vfs_core::forward_vfs!(base, except delete, access);
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
    name: FileNameBuf,
    kind: FileKind,
    timing: Timing,
    sampler: Sampler,
    /// Set by `WrapFile::drop` just before the base file closes.
    close_started: Option<Instant>,
}

impl<R: Recorder + ?Sized> Meta<R> {
    /// The start of a frequent, cheap call, if this one is timed.
    #[inline]
    fn start_sampled(&mut self) -> Option<Instant> {
        self.sampler.hit(self.timing.one_in).then(Instant::now)
    }

    #[inline]
    fn record(&self, op: Op, offset: u64, bytes: u64, start: Option<Instant>, code: i32) {
        self.record_at(op, offset, bytes, start.map(|s| s.elapsed()), code, None);
    }

    #[inline]
    fn record_at(
        &self,
        op: Op,
        offset: u64,
        bytes: u64,
        elapsed: Option<Duration>,
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
        let elapsed = self.close_started.map(|t| t.elapsed());
        self.record_at(Op::Close, 0, 0, elapsed, codes::SQLITE_OK, None);
    }
}

impl<F, R: Recorder + ?Sized> Drop for WrapFile<F, R> {
    fn drop(&mut self) {
        // The fields drop after this: first the base file, then `meta`,
        // which records the close.
        self.meta.close_started = self.meta.timing.start_always();
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
    pub fn name(&self) -> &FileName {
        &self.meta.name
    }

    /// The kind the file was opened as.
    pub fn kind(&self) -> FileKind {
        self.meta.kind
    }
}

impl<F: File, R: Recorder + ?Sized> File for WrapFile<F, R> {
    #[inline]
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let start = self.meta.start_sampled();
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

    /// Written out (not forwarded by the macro, which refuses mappings to a
    /// file with its own `read_at`): a mapped read is still a read of the
    /// base, and [`fetch`](File::fetch) reports it.
    fn can_fetch(&self) -> bool {
        self.inner.can_fetch()
    }

    #[inline]
    fn fetch(&mut self, offset: u64, len: usize) -> Result<Option<Mapping>> {
        let start = self.meta.start_sampled();
        let r = self.inner.fetch(offset, len);
        let lent = match &r {
            Ok(Some(m)) => m.len() as u64,
            _ => 0,
        };
        self.meta
            .record(Op::Fetch, offset, lent, start, code_of(&r, Op::Fetch));
        r
    }

    #[inline]
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let start = self.meta.start_sampled();
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
        let start = self.meta.timing.start_always();
        let r = self.inner.truncate(size);
        self.meta
            .record(Op::Truncate, size, 0, start, code_of(&r, Op::Truncate));
        r
    }

    fn sync(&mut self, flags: SyncFlags) -> Result<()> {
        let start = self.meta.timing.start_always();
        let r = self.inner.sync(flags);
        self.meta
            .record(Op::Sync, 0, 0, start, code_of(&r, Op::Sync));
        r
    }

    #[inline]
    fn size(&mut self) -> Result<u64> {
        let start = self.meta.start_sampled();
        let r = self.inner.size();
        let size = r.as_ref().map_or(0, |s| *s);
        self.meta
            .record(Op::FileSize, size, 0, start, code_of(&r, Op::FileSize));
        r
    }

    #[inline]
    fn lock(&mut self, level: LockLevel) -> Result<()> {
        let start = self.meta.start_sampled();
        let r = self.inner.lock(level);
        self.meta.record_at(
            Op::Lock,
            0,
            0,
            start.map(|s| s.elapsed()),
            code_of(&r, Op::Lock),
            Some(level),
        );
        r
    }

    #[inline]
    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        let start = self.meta.start_sampled();
        let r = self.inner.unlock(level);
        self.meta.record_at(
            Op::Unlock,
            0,
            0,
            start.map(|s| s.elapsed()),
            code_of(&r, Op::Unlock),
            Some(level),
        );
        r
    }

    #[inline]
    fn check_reserved_lock(&mut self) -> Result<bool> {
        let start = self.meta.start_sampled();
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

    fn shm_map(&mut self, region: u32, size: u32, extend: bool) -> Result<Option<ShmRegion>> {
        let start = self.meta.timing.start_always();
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

    vfs_core::forward_file!(
        inner,
        except read_at,
        can_fetch,
        fetch,
        write_at,
        truncate,
        sync,
        size,
        lock,
        unlock,
        check_reserved_lock,
        shm_map
    );
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
/// use vfs_core::Native;
/// use vfs_observe::{Recorder, StatsRecorder, register_observed};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatsRecorder;
    use std::sync::Mutex;

    /// Over many calls the countdown times about one in `n`, and a strict
    /// cycle of four kinds of call sharing it (lock, size, read, unlock)
    /// gets each of them timed about equally.
    #[test]
    fn sampler_rate_and_no_aliasing() {
        for n in [2u32, 7, 32, 64] {
            let mut s = Sampler {
                left: 1,
                rng: 0x1234_5678,
            };
            let calls = 400_000u32;
            let mut per_kind = [0u32; 4];
            for i in 0..calls {
                if s.hit(n) {
                    per_kind[(i % 4) as usize] += 1;
                }
            }
            let total: u32 = per_kind.iter().sum();
            let expected = calls / n;
            assert!(
                total.abs_diff(expected) < expected / 20,
                "n={n}: {total} timed, {expected} expected"
            );
            for k in per_kind {
                assert!(
                    k.abs_diff(expected / 4) < expected / 10,
                    "n={n}: {per_kind:?}"
                );
            }
        }
        // The rarest sampling stays in range (no overflow in the gap).
        let mut s = Sampler { left: 1, rng: 7 };
        for _ in 0..1000 {
            s.left = 1;
            s.hit(MAX_SAMPLING);
            assert!((1..2 * MAX_SAMPLING).contains(&s.left));
        }
        assert_eq!(Timing::of(LatencyMode::Sampled(1)).mode, LatencyMode::Every);
        assert_eq!(Timing::of(LatencyMode::Sampled(0)).mode, LatencyMode::Every);
        assert_eq!(
            Timing::of(LatencyMode::Sampled(u32::MAX)).mode,
            LatencyMode::Sampled(MAX_SAMPLING)
        );
        let mut s = Sampler { left: 1, rng: 1 };
        assert!((0..1000).all(|_| s.hit(1)));
        assert!((0..1000).all(|_| !s.hit(0)));
        assert!((0..1000).all(|_| hit_path(1)) && (0..1000).all(|_| !hit_path(0)));
    }

    /// What each event carried: (op, timed).
    #[derive(Default)]
    struct Log(Mutex<Vec<(Op, bool)>>, LatencyMode);

    impl Recorder for Log {
        fn record(&self, e: &Event<'_>) {
            self.0.lock().unwrap().push((e.op, e.elapsed.is_some()));
        }
        fn latency(&self) -> LatencyMode {
            self.1
        }
    }

    /// Opens a file on disk through `Wrap`, makes 200 reads and writes and
    /// two syncs, closes it: what did the recorder get?
    fn run(mode: LatencyMode) -> Vec<(Op, bool)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let log = Arc::new(Log(Mutex::default(), mode));
        let wrap = Wrap::new(vfs_core::Native::new().unwrap(), log.clone());
        assert_eq!(wrap.latency(), mode.finer(LatencyMode::Off));
        let opts = OpenOptions::new(FileKind::MainDb, vfs_core::OpenAccess::Create);
        let name = path.to_str().unwrap();
        let mut f = wrap
            .open(&OpenName::new(name, FileKind::MainDb), opts)
            .unwrap();
        let mut buf = [0u8; 100];
        for i in 0..100 {
            f.write_at(&[1; 100], i * 100).unwrap();
            f.read_at(&mut buf, i * 100).unwrap();
        }
        f.sync(SyncFlags(2)).unwrap();
        f.sync(SyncFlags(2)).unwrap();
        drop(f);
        let events = log.0.lock().unwrap().clone();
        assert_eq!(events.len(), 1 + 200 + 2 + 1, "every call reported");
        events
    }

    #[test]
    fn latency_modes_decide_which_calls_are_timed() {
        assert!(run(LatencyMode::Every).iter().all(|e| e.1));
        assert!(run(LatencyMode::Sampled(1)).iter().all(|e| e.1));
        assert!(run(LatencyMode::Off).iter().all(|e| !e.1));
        let sampled = run(LatencyMode::Sampled(16));
        for (op, timed) in &sampled {
            if matches!(op, Op::Open | Op::Sync | Op::Close) {
                assert!(timed, "{op:?} is always timed");
            }
        }
        let frequent = sampled
            .iter()
            .filter(|(op, _)| matches!(op, Op::Read | Op::Write));
        let timed = frequent.filter(|e| e.1).count();
        assert!((4..=30).contains(&timed), "{timed} of 200 timed");
        // The stats recorder samples by default.
        assert_eq!(
            StatsRecorder::new().latency(),
            LatencyMode::Sampled(StatsRecorder::DEFAULT_SAMPLING)
        );
    }
}
