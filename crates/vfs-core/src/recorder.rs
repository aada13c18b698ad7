//! Recorders: where [`Wrap`](crate::Wrap) reports every file operation.
//!
//! * [`Recorder`]: the trait, one method taking a borrowed [`Event`].
//! * [`TracingRecorder`]: one `tracing` event per operation.
//! * [`StatsRecorder`]: counters and latency histograms, printed as a table.
//!
//! See `docs/observability.md` for a guide.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::{FileKind, LockLevel, Op, codes};

/// One file operation seen by [`Wrap`](crate::Wrap), lent to a
/// [`Recorder`] for the duration of [`Recorder::record`].
///
/// | `op` | `offset` | `bytes` |
/// |---|---|---|
/// | `Read` | file offset | bytes read (fewer on a short read) |
/// | `Write` | file offset | bytes written |
/// | `Truncate` | the new size | 0 |
/// | `FileSize` | the size answered | 0 |
/// | `ShmMap` | region index × region size | region size |
/// | others | 0 | 0 |
///
/// For a failed read or write, `bytes` is the length asked for.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// The operation.
    pub op: Op,
    /// The file's name as SQLite gave it to `xOpen` (or to `xDelete` /
    /// `xAccess`); empty for an anonymous temporary file.
    pub file: &'a str,
    /// The kind of the open file; `None` for `Delete` and `Access`, which
    /// name a path rather than an open file.
    pub kind: Option<FileKind>,
    /// See the table above.
    pub offset: u64,
    /// See the table above.
    pub bytes: u64,
    /// How long the base took (measured with `std::time::Instant`).
    pub elapsed: Duration,
    /// The result code SQLite receives: `SQLITE_OK`, the error's code for
    /// this operation (`Error::code_for(op)`), or `SQLITE_IOERR_SHORT_READ`
    /// for a read that reached the end of the file.
    pub code: i32,
    /// The level asked for by `Lock` and `Unlock`.
    pub lock: Option<LockLevel>,
}

impl Event<'_> {
    /// Whether SQLite received `SQLITE_OK`.
    pub fn is_ok(&self) -> bool {
        self.code == codes::SQLITE_OK
    }

    /// Whether this is a read that reached the end of the file (a normal
    /// event for SQLite, not a failure).
    pub fn is_short_read(&self) -> bool {
        self.code == codes::SQLITE_IOERR_SHORT_READ
    }

    /// Whether the operation failed: any code other than `SQLITE_OK` and a
    /// short read.
    pub fn is_error(&self) -> bool {
        !self.is_ok() && !self.is_short_read()
    }

    /// Whether the failure is lock contention (`SQLITE_BUSY` or
    /// `SQLITE_LOCKED`, any extended form), which SQLite retries.
    pub fn is_busy(&self) -> bool {
        matches!(self.code & 0xff, codes::SQLITE_BUSY | codes::SQLITE_LOCKED)
    }
}

/// Receives every operation of a [`Wrap`](crate::Wrap)ped VFS.
///
/// Called on SQLite's threads, concurrently, on the I/O path: keep it cheap
/// (no blocking, no allocation per event if you can avoid it). The trait is
/// object safe; `Arc<dyn Recorder>` is what
/// [`register_observed`](crate::register_observed) takes.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use vfs_core::{Event, Op, Recorder};
///
/// /// Counts bytes written, nothing else.
/// #[derive(Default)]
/// struct Written(AtomicU64);
///
/// impl Recorder for Written {
///     fn record(&self, e: &Event<'_>) {
///         if e.op == Op::Write && e.is_ok() {
///             self.0.fetch_add(e.bytes, Ordering::Relaxed);
///         }
///     }
/// }
/// ```
pub trait Recorder: Send + Sync + 'static {
    /// Records one operation.
    fn record(&self, event: &Event<'_>);
}

impl<R: Recorder + ?Sized> Recorder for Arc<R> {
    fn record(&self, event: &Event<'_>) {
        (**self).record(event)
    }
}

impl<R: Recorder + ?Sized> Recorder for Box<R> {
    fn record(&self, event: &Event<'_>) {
        (**self).record(event)
    }
}

/// Both recorders, in order: `(StatsRecorder::new(), TracingRecorder)`.
impl<A: Recorder, B: Recorder> Recorder for (A, B) {
    fn record(&self, event: &Event<'_>) {
        self.0.record(event);
        self.1.record(event);
    }
}

// ---------------------------------------------------------------------------
// Tracing

/// Logs each operation as one [`tracing`] event with target `vfs_core::io`
/// and the structured fields `op`, `kind`, `file`, `offset`, `bytes`,
/// `micros` (f64) and `code` (plus `level` for lock operations and `error`,
/// the code's name, on failures).
///
/// Levels: failures at `WARN` (lock contention, which SQLite retries, at
/// `DEBUG`); `open`, `close`, `sync` and `delete` at `DEBUG`; everything
/// else, short reads included, at `TRACE`.
///
/// ```
/// use std::sync::Arc;
/// let reg = vfs_core::register_observed(
///     "traced-doc",
///     vfs_core::Native::new().unwrap(),
///     Some(Arc::new(vfs_core::TracingRecorder)),
///     false,
/// ).unwrap();
/// reg.unregister().unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingRecorder;

/// The target of [`TracingRecorder`]'s events.
pub const TRACING_TARGET: &str = "vfs_core::io";

macro_rules! io_event {
    ($level:expr, $e:expr) => {{
        let e = $e;
        let kind = e.kind.map_or("-", FileKind::name);
        let micros = e.elapsed.as_nanos() as f64 / 1000.0;
        match (e.lock, e.is_ok() || e.is_short_read()) {
            (Some(level), true) => tracing::event!(
                target: TRACING_TARGET, $level,
                op = e.op.name(), kind, file = e.file, offset = e.offset, bytes = e.bytes,
                micros, code = e.code, level = lock_name(level),
            ),
            (None, true) => tracing::event!(
                target: TRACING_TARGET, $level,
                op = e.op.name(), kind, file = e.file, offset = e.offset, bytes = e.bytes,
                micros, code = e.code,
            ),
            (Some(level), false) => tracing::event!(
                target: TRACING_TARGET, $level,
                op = e.op.name(), kind, file = e.file, offset = e.offset, bytes = e.bytes,
                micros, code = e.code, level = lock_name(level),
                error = %crate::code_name(e.code),
            ),
            (None, false) => tracing::event!(
                target: TRACING_TARGET, $level,
                op = e.op.name(), kind, file = e.file, offset = e.offset, bytes = e.bytes,
                micros, code = e.code, error = %crate::code_name(e.code),
            ),
        }
    }};
}

fn lock_name(level: LockLevel) -> &'static str {
    match level {
        LockLevel::None => "none",
        LockLevel::Shared => "shared",
        LockLevel::Reserved => "reserved",
        LockLevel::Pending => "pending",
        LockLevel::Exclusive => "exclusive",
    }
}

impl Recorder for TracingRecorder {
    fn record(&self, e: &Event<'_>) {
        use tracing::Level;
        if e.is_error() {
            if e.is_busy() {
                io_event!(Level::DEBUG, e);
            } else {
                io_event!(Level::WARN, e);
            }
        } else if matches!(e.op, Op::Open | Op::Close | Op::Sync | Op::Delete) {
            io_event!(Level::DEBUG, e);
        } else {
            io_event!(Level::TRACE, e);
        }
    }
}

// ---------------------------------------------------------------------------
// Stats

/// Operations the statistics know, in table order.
const OPS: [Op; 17] = [
    Op::Open,
    Op::Close,
    Op::Read,
    Op::Write,
    Op::Sync,
    Op::Truncate,
    Op::FileSize,
    Op::Lock,
    Op::Unlock,
    Op::CheckReservedLock,
    Op::Delete,
    Op::Access,
    Op::ShmMap,
    Op::ShmLock,
    Op::ShmUnmap,
    Op::FileControl,
    Op::FullPathname,
];

fn op_index(op: Op) -> usize {
    match op {
        Op::Open => 0,
        Op::Close => 1,
        Op::Read => 2,
        Op::Write => 3,
        Op::Sync => 4,
        Op::Truncate => 5,
        Op::FileSize => 6,
        Op::Lock => 7,
        Op::Unlock => 8,
        Op::CheckReservedLock => 9,
        Op::Delete => 10,
        Op::Access => 11,
        Op::ShmMap => 12,
        Op::ShmLock => 13,
        Op::ShmUnmap => 14,
        Op::FileControl => 15,
        Op::FullPathname => 16,
    }
}

/// Slot 0 is "no file kind" (delete, access); then `FileKind::ALL`.
const KIND_SLOTS: usize = FileKind::ALL.len() + 1;

fn kind_index(kind: Option<FileKind>) -> usize {
    match kind {
        None => 0,
        Some(FileKind::MainDb) => 1,
        Some(FileKind::MainJournal) => 2,
        Some(FileKind::TempDb) => 3,
        Some(FileKind::TempJournal) => 4,
        Some(FileKind::TransientDb) => 5,
        Some(FileKind::SubJournal) => 6,
        Some(FileKind::SuperJournal) => 7,
        Some(FileKind::Wal) => 8,
    }
}

fn kind_of_slot(i: usize) -> Option<FileKind> {
    i.checked_sub(1).map(|k| FileKind::ALL[k])
}

/// Significant figures of the latency histograms (1 % resolution).
const SIGFIG: u8 = 2;

#[derive(Default)]
struct OpCell {
    count: u64,
    bytes: u64,
    errors: u64,
    short_reads: u64,
    busy: u64,
    nanos: u64,
    /// Nanoseconds; created on first use, auto-resizing.
    latency: Option<Histogram<u64>>,
}

#[derive(Default, Clone, Copy)]
struct KindCell {
    ops: u64,
    opens: u64,
    reads: u64,
    read_bytes: u64,
    writes: u64,
    write_bytes: u64,
    syncs: u64,
    errors: u64,
    busy: u64,
    nanos: u64,
}

#[derive(Default)]
struct Shard {
    ops: [OpCell; OPS.len()],
    kinds: [KindCell; KIND_SLOTS],
}

/// One shard per cache line pair, so threads on different shards never
/// share a line.
#[repr(align(128))]
#[derive(Default)]
struct Padded(Mutex<Shard>);

/// Counts, bytes, errors and latency histograms per operation and per file
/// kind.
///
/// Threads record into separate shards (each under its own uncontended
/// mutex), so recording from many threads costs about the same as from one;
/// [`snapshot`](StatsRecorder::snapshot) merges the shards.
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::{Native, Op, StatsRecorder, Wrap, register};
///
/// let stats = Arc::new(StatsRecorder::new());
/// let reg = register("stats-doc", Wrap::new(Native::new().unwrap(), stats.clone()), false).unwrap();
/// let dir = tempfile::tempdir().unwrap();
/// let uri = format!("file:{}?vfs=stats-doc", dir.path().join("a.db").display());
/// let conn = rusqlite::Connection::open(uri).unwrap();
/// conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
/// drop(conn);
///
/// let s = stats.snapshot();
/// assert!(s.op(Op::Write).count > 0);
/// println!("{s}"); // a readable table
/// reg.unregister().unwrap();
/// ```
pub struct StatsRecorder {
    shards: Box<[Padded]>,
}

static NEXT_THREAD_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SLOT: usize = NEXT_THREAD_SLOT.fetch_add(1, Ordering::Relaxed);
}

impl Default for StatsRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StatsRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsRecorder")
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl StatsRecorder {
    /// Empty statistics, with one shard per available CPU (at most 16).
    pub fn new() -> StatsRecorder {
        let n = std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(1, 16);
        StatsRecorder::with_shards(n)
    }

    /// Empty statistics with `shards` shards (at least one).
    pub fn with_shards(shards: usize) -> StatsRecorder {
        StatsRecorder {
            shards: (0..shards.max(1)).map(|_| Padded::default()).collect(),
        }
    }

    fn shard(&self) -> &Mutex<Shard> {
        let i = THREAD_SLOT.try_with(|s| *s).unwrap_or(0) % self.shards.len();
        &self.shards[i].0
    }

    /// Everything recorded since creation or the last
    /// [`reset`](StatsRecorder::reset).
    pub fn snapshot(&self) -> Stats {
        let mut ops: Vec<OpCell> = OPS.iter().map(|_| OpCell::default()).collect();
        let mut kinds = [KindCell::default(); KIND_SLOTS];
        for shard in self.shards.iter() {
            let s = shard.0.lock();
            for (total, cell) in ops.iter_mut().zip(&s.ops) {
                total.count += cell.count;
                total.bytes += cell.bytes;
                total.errors += cell.errors;
                total.short_reads += cell.short_reads;
                total.busy += cell.busy;
                total.nanos = total.nanos.saturating_add(cell.nanos);
                if let Some(h) = &cell.latency {
                    match &mut total.latency {
                        Some(t) => {
                            // Both auto-resize: adding cannot fail.
                            let _ = t.add(h);
                        }
                        None => total.latency = Some(h.clone()),
                    }
                }
            }
            for (total, cell) in kinds.iter_mut().zip(&s.kinds) {
                total.ops += cell.ops;
                total.opens += cell.opens;
                total.reads += cell.reads;
                total.read_bytes += cell.read_bytes;
                total.writes += cell.writes;
                total.write_bytes += cell.write_bytes;
                total.syncs += cell.syncs;
                total.errors += cell.errors;
                total.busy += cell.busy;
                total.nanos = total.nanos.saturating_add(cell.nanos);
            }
        }
        let ops = OPS
            .iter()
            .zip(ops)
            .filter(|(_, c)| c.count > 0)
            .map(|(&op, c)| OpStats {
                op,
                count: c.count,
                bytes: c.bytes,
                errors: c.errors,
                short_reads: c.short_reads,
                busy: c.busy,
                latency: Latency {
                    total: Duration::from_nanos(c.nanos),
                    ..c.latency.as_ref().map(Latency::of).unwrap_or_default()
                },
            })
            .collect();
        let kinds = kinds
            .iter()
            .enumerate()
            .filter(|(_, c)| c.ops > 0)
            .map(|(i, c)| KindStats {
                kind: kind_of_slot(i),
                ops: c.ops,
                opens: c.opens,
                reads: c.reads,
                read_bytes: c.read_bytes,
                writes: c.writes,
                write_bytes: c.write_bytes,
                syncs: c.syncs,
                errors: c.errors,
                busy: c.busy,
                time: Duration::from_nanos(c.nanos),
            })
            .collect();
        Stats { ops, kinds }
    }

    /// Forgets everything recorded so far.
    pub fn reset(&self) {
        for shard in self.shards.iter() {
            let mut s = shard.0.lock();
            for cell in s.ops.iter_mut() {
                cell.count = 0;
                cell.bytes = 0;
                cell.errors = 0;
                cell.short_reads = 0;
                cell.busy = 0;
                cell.nanos = 0;
                if let Some(h) = &mut cell.latency {
                    h.reset();
                }
            }
            s.kinds = [KindCell::default(); KIND_SLOTS];
        }
    }
}

impl Recorder for StatsRecorder {
    fn record(&self, e: &Event<'_>) {
        let nanos = u64::try_from(e.elapsed.as_nanos()).unwrap_or(u64::MAX);
        let busy = e.is_error() && e.is_busy();
        let error = e.is_error() && !busy;
        let moved = if e.is_error() { 0 } else { e.bytes };
        let mut s = self.shard().lock();
        let cell = &mut s.ops[op_index(e.op)];
        cell.count += 1;
        cell.bytes += moved;
        cell.errors += error as u64;
        cell.short_reads += e.is_short_read() as u64;
        cell.busy += busy as u64;
        cell.nanos = cell.nanos.saturating_add(nanos);
        match &mut cell.latency {
            Some(h) => {
                // Auto-resizing: recording cannot fail.
                let _ = h.record(nanos);
            }
            None => {
                // Created once per shard and operation, on first use.
                if let Ok(mut h) = Histogram::new(SIGFIG) {
                    let _ = h.record(nanos);
                    cell.latency = Some(h);
                }
            }
        }
        let k = &mut s.kinds[kind_index(e.kind)];
        k.ops += 1;
        k.errors += error as u64;
        k.busy += busy as u64;
        k.nanos = k.nanos.saturating_add(nanos);
        match e.op {
            Op::Open => k.opens += 1,
            Op::Read => {
                k.reads += 1;
                k.read_bytes += moved;
            }
            Op::Write => {
                k.writes += 1;
                k.write_bytes += moved;
            }
            Op::Sync => k.syncs += 1,
            _ => {}
        }
    }
}

/// A snapshot of a [`StatsRecorder`]: plain data, printable as a table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// One row per operation seen at least once, in a stable order (open,
    /// close, read, write, sync, truncate, file size, locks, delete, access,
    /// shared memory).
    pub ops: Vec<OpStats>,
    /// One row per file kind seen at least once; `kind: None` gathers
    /// `delete` and `access`, which concern a path rather than an open file.
    pub kinds: Vec<KindStats>,
}

/// The statistics of one operation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpStats {
    /// The operation.
    pub op: Op,
    /// Calls, failed ones included.
    pub count: u64,
    /// Bytes moved by successful calls (see [`Event`] for what counts).
    pub bytes: u64,
    /// Failed calls, lock contention and short reads excluded.
    pub errors: u64,
    /// Calls refused with `SQLITE_BUSY` or `SQLITE_LOCKED` (lock contention,
    /// which SQLite retries).
    pub busy: u64,
    /// Reads that reached the end of the file.
    pub short_reads: u64,
    /// Latency of all calls.
    pub latency: Latency,
}

impl OpStats {
    fn empty(op: Op) -> OpStats {
        OpStats {
            op,
            count: 0,
            bytes: 0,
            errors: 0,
            busy: 0,
            short_reads: 0,
            latency: Latency::default(),
        }
    }
}

/// Latency quantiles of one operation (1 % resolution).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// The fastest call.
    pub min: Duration,
    /// The median.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest call.
    pub max: Duration,
    /// The mean.
    pub mean: Duration,
    /// The sum of all calls' latency (exact).
    pub total: Duration,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let d = Duration::from_nanos;
        Latency {
            min: d(h.min()),
            p50: d(h.value_at_quantile(0.50)),
            p90: d(h.value_at_quantile(0.90)),
            p99: d(h.value_at_quantile(0.99)),
            max: d(h.max()),
            mean: d(h.mean() as u64),
            total: Duration::ZERO,
        }
    }
}

/// The statistics of one file kind.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct KindStats {
    /// The kind; `None` for `delete` and `access`.
    pub kind: Option<FileKind>,
    /// Every recorded operation on files of this kind.
    pub ops: u64,
    /// Opens.
    pub opens: u64,
    /// Reads.
    pub reads: u64,
    /// Bytes read successfully.
    pub read_bytes: u64,
    /// Writes.
    pub writes: u64,
    /// Bytes written successfully.
    pub write_bytes: u64,
    /// Syncs.
    pub syncs: u64,
    /// Failed operations, lock contention and short reads excluded.
    pub errors: u64,
    /// Operations refused with `SQLITE_BUSY` or `SQLITE_LOCKED`.
    pub busy: u64,
    /// Time spent in the base for these operations.
    pub time: Duration,
}

impl Stats {
    /// The row of `op` (all zero if it never happened).
    pub fn op(&self, op: Op) -> OpStats {
        self.ops
            .iter()
            .find(|s| s.op == op)
            .cloned()
            .unwrap_or_else(|| OpStats::empty(op))
    }

    /// The row of `kind` (all zero if no such file was used); `None` for
    /// `delete` and `access`.
    pub fn kind(&self, kind: Option<FileKind>) -> KindStats {
        self.kinds
            .iter()
            .find(|s| s.kind == kind)
            .cloned()
            .unwrap_or(KindStats {
                kind,
                ..KindStats::default()
            })
    }

    /// Calls of every operation together.
    pub fn total_ops(&self) -> u64 {
        self.ops.iter().map(|s| s.count).sum()
    }

    /// Failed calls of every operation together.
    pub fn total_errors(&self) -> u64 {
        self.ops.iter().map(|s| s.errors).sum()
    }
}

/// Microseconds with one decimal (sub-microsecond calls are common in
/// memory).
struct Micros(Duration);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.as_secs_f64() * 1e6;
        let text = if us < 1000.0 {
            format!("{us:.1}")
        } else {
            format!("{us:.0}")
        };
        f.pad(&text)
    }
}

/// A byte count in human units (`512 B`, `4.0 KiB`, `1.5 MiB`).
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        let text = if self.0 < 1024 {
            format!("{} B", self.0)
        } else if b < 1024.0 * 1024.0 {
            format!("{:.1} KiB", b / 1024.0)
        } else if b < 1024.0 * 1024.0 * 1024.0 {
            format!("{:.1} MiB", b / (1024.0 * 1024.0))
        } else {
            format!("{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0))
        };
        f.pad(&text)
    }
}

/// Two tables: one row per operation (count, bytes, errors, p50/p99/max
/// latency in µs), then one row per file kind.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<20} {:>9} {:>11} {:>7} {:>6} {:>9} {:>9} {:>9}",
            "op", "count", "bytes", "errors", "busy", "p50 µs", "p99 µs", "max µs"
        )?;
        for s in &self.ops {
            let bytes = if s.bytes > 0 {
                Bytes(s.bytes).to_string()
            } else {
                "-".to_owned()
            };
            writeln!(
                f,
                "{:<20} {:>9} {:>11} {:>7} {:>6} {:>9} {:>9} {:>9}",
                s.op.name(),
                s.count,
                bytes,
                s.errors,
                s.busy,
                Micros(s.latency.p50),
                Micros(s.latency.p99),
                Micros(s.latency.max),
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<14} {:>7} {:>7} {:>8} {:>11} {:>8} {:>11} {:>7} {:>7} {:>6} {:>10}",
            "file kind",
            "ops",
            "opens",
            "reads",
            "read",
            "writes",
            "written",
            "syncs",
            "errors",
            "busy",
            "time µs"
        )?;
        for k in &self.kinds {
            writeln!(
                f,
                "{:<14} {:>7} {:>7} {:>8} {:>11} {:>8} {:>11} {:>7} {:>7} {:>6} {:>10}",
                k.kind.map_or("(path)", FileKind::name),
                k.ops,
                k.opens,
                k.reads,
                Bytes(k.read_bytes),
                k.writes,
                Bytes(k.write_bytes),
                k.syncs,
                k.errors,
                k.busy,
                Micros(k.time),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(op: Op, kind: Option<FileKind>, bytes: u64, code: i32, micros: u64) -> Event<'static> {
        Event {
            op,
            file: "t.db",
            kind,
            offset: 0,
            bytes,
            elapsed: Duration::from_micros(micros),
            code,
            lock: None,
        }
    }

    #[test]
    fn every_op_has_its_own_slot() {
        let mut seen = [false; OPS.len()];
        for op in OPS {
            let i = op_index(op);
            assert!(!seen[i], "{op:?} shares a slot");
            seen[i] = true;
            assert_eq!(OPS[i], op);
        }
        for (i, kind) in FileKind::ALL.iter().enumerate() {
            assert_eq!(kind_index(Some(*kind)), i + 1);
            assert_eq!(kind_of_slot(i + 1), Some(*kind));
        }
        assert_eq!(kind_of_slot(kind_index(None)), None);
    }

    #[test]
    fn counts_bytes_errors_and_quantiles() {
        let s = StatsRecorder::with_shards(3);
        for us in 1..=100 {
            s.record(&event(
                Op::Write,
                Some(FileKind::Wal),
                4096,
                codes::SQLITE_OK,
                us,
            ));
        }
        s.record(&event(
            Op::Write,
            Some(FileKind::Wal),
            4096,
            codes::SQLITE_FULL,
            7,
        ));
        s.record(&event(
            Op::Read,
            Some(FileKind::MainDb),
            10,
            codes::SQLITE_IOERR_SHORT_READ,
            1,
        ));
        let snap = s.snapshot();
        let w = snap.op(Op::Write);
        assert_eq!((w.count, w.bytes, w.errors), (101, 100 * 4096, 1));
        let p50 = w.latency.p50.as_micros();
        assert!((49..=51).contains(&p50), "p50 {p50}");
        assert!(w.latency.max >= Duration::from_micros(99));
        let r = snap.op(Op::Read);
        assert_eq!((r.count, r.bytes, r.errors, r.short_reads), (1, 10, 0, 1));
        let wal = snap.kind(Some(FileKind::Wal));
        assert_eq!((wal.writes, wal.write_bytes, wal.errors), (101, 409_600, 1));
        assert_eq!(snap.op(Op::Sync).count, 0);
        let table = snap.to_string();
        assert!(table.contains("write") && table.contains("wal") && table.contains("p99 µs"));
        s.reset();
        assert_eq!(s.snapshot(), Stats::default());
    }

    #[test]
    fn many_threads_lose_nothing() {
        let s = Arc::new(StatsRecorder::with_shards(4));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        s.record(&event(
                            Op::Read,
                            Some(FileKind::MainDb),
                            512,
                            codes::SQLITE_OK,
                            2,
                        ));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let r = s.snapshot().op(Op::Read);
        assert_eq!((r.count, r.bytes), (8000, 8000 * 512));
    }
}
