//! [`StatsRecorder`]: counters and latency histograms per operation and file
//! kind, counted in per-thread shards.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use vfs_core::{FileKind, Op, codes};

use crate::{Event, KindStats, Latency, LatencyMode, OpStats, Recorder, Stats, slots};

/// Operations the statistics know, in table order.
const OPS: [Op; 18] = [
    Op::Open,
    Op::Close,
    Op::Read,
    Op::Fetch,
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

/// The row of `op`; `None` for an operation this table does not know
/// (`Op` may grow), which is not counted.
#[inline]
fn op_index(op: Op) -> Option<usize> {
    Some(match op {
        Op::Open => 0,
        Op::Close => 1,
        Op::Read => 2,
        Op::Fetch => 3,
        Op::Write => 4,
        Op::Sync => 5,
        Op::Truncate => 6,
        Op::FileSize => 7,
        Op::Lock => 8,
        Op::Unlock => 9,
        Op::CheckReservedLock => 10,
        Op::Delete => 11,
        Op::Access => 12,
        Op::ShmMap => 13,
        Op::ShmLock => 14,
        Op::ShmUnmap => 15,
        Op::FileControl => 16,
        Op::FullPathname => 17,
        _ => return None,
    })
}

/// Slot 0 is "no file kind" (delete, access); then `FileKind::ALL`.
const KIND_SLOTS: usize = FileKind::ALL.len() + 1;

#[inline]
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

/// One cell per operation and file kind.
const CELLS: usize = OPS.len() * KIND_SLOTS;

#[inline]
fn cell_index(op: Op, kind: Option<FileKind>) -> Option<usize> {
    Some(op_index(op)? * KIND_SLOTS + kind_index(kind))
}

/// Significant figures of the latency histograms (1 % resolution).
const SIGFIG: u8 = 2;

/// The counters of one cell, in [`Counts`] order.
const COUNT: usize = 0;
const BYTES: usize = 1;
const ERRORS: usize = 2;
const BUSY: usize = 3;
const SHORT_READS: usize = 4;
/// Calls whose latency was measured.
const TIMED: usize = 5;
/// Their summed latency.
const NANOS: usize = 6;
/// Seven counters, padded to a cache line.
const FIELDS: usize = 8;

/// The counters of one operation on one file kind.
type Counts = [u64; FIELDS];

/// One cell's counters on a cache line of their own.
#[repr(align(64))]
struct CellCounters([AtomicU64; FIELDS]);

/// Where one thread (or, for [`StatsRecorder::shared`], any thread) counts.
struct Shard {
    /// Only ever incremented (wrapping), so
    /// [`reset`](StatsRecorder::reset) subtracts a baseline instead of
    /// zeroing them under a writer's feet.
    cells: [CellCounters; CELLS],
    /// Latency histograms (nanoseconds) per operation, created on first
    /// use, auto-resizing; locked only for timed calls and snapshots.
    latency: Mutex<Vec<Option<Histogram<u64>>>>,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            cells: std::array::from_fn(|_| {
                CellCounters(std::array::from_fn(|_| AtomicU64::new(0)))
            }),
            latency: Mutex::new((0..OPS.len()).map(|_| None).collect()),
        }
    }

    /// Adds one event. `EXCLUSIVE`: this thread is the only writer of the
    /// shard, so a plain load and store (no read-modify-write instruction)
    /// suffice; readers see each counter whole (relaxed atomics).
    #[inline]
    fn add<const EXCLUSIVE: bool>(&self, e: &Event<'_>) {
        let Some(cell) = cell_index(e.op, e.kind) else {
            return;
        };
        let c = &self.cells[cell].0;
        let bump = |field: usize, v: u64| {
            if EXCLUSIVE {
                let a = &c[field];
                a.store(a.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
            } else {
                c[field].fetch_add(v, Ordering::Relaxed);
            }
        };
        bump(COUNT, 1);
        if e.code == codes::SQLITE_OK {
            if e.bytes != 0 {
                bump(BYTES, e.bytes);
            }
        } else if e.is_short_read() {
            bump(SHORT_READS, 1);
            // A short read counts the bytes it did read.
            if e.bytes != 0 {
                bump(BYTES, e.bytes);
            }
        } else if e.is_busy() {
            bump(BUSY, 1);
        } else {
            bump(ERRORS, 1);
        }
        if let Some(elapsed) = e.elapsed {
            let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            bump(TIMED, 1);
            bump(NANOS, nanos);
            self.add_latency(cell / KIND_SLOTS, nanos);
        }
    }

    /// Out of line: only timed calls take the histogram's lock.
    #[inline(never)]
    fn add_latency(&self, op_row: usize, nanos: u64) {
        let mut latency = self.latency.lock();
        let slot = &mut latency[op_row];
        if slot.is_none() {
            *slot = Histogram::new(SIGFIG).ok();
        }
        if let Some(h) = slot {
            // Auto-resizing: recording cannot fail.
            let _ = h.record(nanos);
        }
    }

    fn add_counts_to(&self, totals: &mut [Counts]) {
        for (cell, total) in self.cells.iter().zip(totals) {
            for (t, a) in total.iter_mut().zip(&cell.0) {
                *t = t.wrapping_add(a.load(Ordering::Relaxed));
            }
        }
    }
}

/// Live threads get exclusive shards up to this many; more threads at once
/// share [`StatsRecorder::shared`].
const MAX_SLOTS: usize = 128;

/// Counts, bytes, errors and latency histograms per operation and per file
/// kind.
///
/// Counts, bytes, errors, contention and short reads are exact. Latency is
/// what [`Wrap`](crate::Wrap) measured: by default ([`StatsRecorder::new`])
/// every open, close, sync, truncate, delete and shared-memory map, and
/// about one in [`DEFAULT_SAMPLING`](StatsRecorder::DEFAULT_SAMPLING) of the
/// frequent, cheap calls (read, write, file size, lock, unlock, reserved-lock
/// check, access), so the histograms of those hold a random sample and their
/// total time is estimated ([`OpStats::timed`] says how many calls were
/// measured). [`with_latency`](StatsRecorder::with_latency) chooses another
/// [`LatencyMode`].
///
/// Each thread counts in its own shard with plain stores (no lock, no
/// read-modify-write), so recording costs a few nanoseconds and threads
/// never contend; a histogram is locked only for a timed call.
/// [`snapshot`](StatsRecorder::snapshot) merges the shards.
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::{Native, Op, register};
/// use vfs_observe::{StatsRecorder, Wrap};
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
/// // Syncs are always timed.
/// assert_eq!(s.op(Op::Sync).timed, s.op(Op::Sync).count);
/// println!("{s}"); // a readable table
/// reg.unregister().unwrap();
/// ```
pub struct StatsRecorder {
    latency: LatencyMode,
    /// Exclusive shards, indexed by thread slot, created on first use.
    slots: Box<[OnceLock<Box<Shard>>]>,
    /// For threads beyond `MAX_SLOTS` and threads exiting: atomic adds.
    shared: Shard,
    /// The counters at the last reset.
    baseline: Mutex<Vec<Counts>>,
}

impl Default for StatsRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StatsRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsRecorder")
            .field("latency", &self.latency)
            .field(
                "shards",
                &self.slots.iter().filter(|s| s.get().is_some()).count(),
            )
            .finish()
    }
}

impl StatsRecorder {
    /// The sampling of [`StatsRecorder::new`]: about one frequent, cheap
    /// call in 64 is timed.
    pub const DEFAULT_SAMPLING: u32 = 64;

    /// Empty statistics, timing every rare or slow call and about one in
    /// [`DEFAULT_SAMPLING`](StatsRecorder::DEFAULT_SAMPLING) of the
    /// frequent, cheap ones (`LatencyMode::Sampled(64)`).
    pub fn new() -> StatsRecorder {
        StatsRecorder {
            latency: LatencyMode::Sampled(Self::DEFAULT_SAMPLING),
            slots: (0..MAX_SLOTS).map(|_| OnceLock::new()).collect(),
            shared: Shard::new(),
            baseline: Mutex::new(vec![[0; FIELDS]; CELLS]),
        }
    }

    /// The same, asking wrappers for `latency` instead:
    /// [`LatencyMode::Every`] for exact latency totals and histograms of
    /// every call (at about 40 ns per call), [`LatencyMode::Off`] for counts
    /// only.
    pub fn with_latency(mut self, latency: LatencyMode) -> StatsRecorder {
        self.latency = latency;
        self
    }

    fn raw_counts(&self) -> Vec<Counts> {
        let mut totals = vec![[0; FIELDS]; CELLS];
        self.shared.add_counts_to(&mut totals);
        for shard in self.slots.iter().filter_map(OnceLock::get) {
            shard.add_counts_to(&mut totals);
        }
        totals
    }

    fn shards(&self) -> impl Iterator<Item = &Shard> {
        let exclusive = self.slots.iter().filter_map(|s| s.get().map(|b| &**b));
        std::iter::once(&self.shared).chain(exclusive)
    }

    /// Everything recorded since creation or the last
    /// [`reset`](StatsRecorder::reset).
    pub fn snapshot(&self) -> Stats {
        let baseline = self.baseline.lock();
        let mut cells = self.raw_counts();
        for (c, b) in cells.iter_mut().zip(baseline.iter()) {
            for (v, b) in c.iter_mut().zip(b) {
                *v = v.wrapping_sub(*b);
            }
        }
        drop(baseline);
        let mut histograms: Vec<Option<Histogram<u64>>> = (0..OPS.len()).map(|_| None).collect();
        for shard in self.shards() {
            let latency = shard.latency.lock();
            for (total, h) in histograms.iter_mut().zip(latency.iter()) {
                let Some(h) = h else { continue };
                match total {
                    // Both auto-resize: adding cannot fail.
                    Some(t) => {
                        let _ = t.add(h);
                    }
                    None => *total = Some(h.clone()),
                }
            }
        }

        // Per operation: sums over the kinds, and the mean of the timed
        // calls, for cells with none timed.
        let mut ops: Vec<OpStats> = Vec::new();
        let mut op_mean = [0f64; OPS.len()];
        let mut op_sums = [[0u64; FIELDS]; OPS.len()];
        for (o, sums) in op_sums.iter_mut().enumerate() {
            for c in &cells[o * KIND_SLOTS..(o + 1) * KIND_SLOTS] {
                for (s, v) in sums.iter_mut().zip(c) {
                    *s = s.wrapping_add(*v);
                }
            }
            if sums[TIMED] > 0 {
                op_mean[o] = sums[NANOS] as f64 / sums[TIMED] as f64;
            }
        }
        let estimate = |o: usize, c: &Counts| -> f64 {
            if c[TIMED] == c[COUNT] {
                c[NANOS] as f64
            } else if c[TIMED] > 0 {
                c[NANOS] as f64 * c[COUNT] as f64 / c[TIMED] as f64
            } else {
                op_mean[o] * c[COUNT] as f64
            }
        };
        for (o, (&op, sums)) in OPS.iter().zip(&op_sums).enumerate() {
            if sums[COUNT] == 0 {
                continue;
            }
            let total: f64 = (0..KIND_SLOTS)
                .map(|k| estimate(o, &cells[o * KIND_SLOTS + k]))
                .sum();
            ops.push(OpStats {
                op,
                count: sums[COUNT],
                bytes: sums[BYTES],
                errors: sums[ERRORS],
                busy: sums[BUSY],
                short_reads: sums[SHORT_READS],
                timed: sums[TIMED],
                latency: Latency {
                    total: Duration::from_nanos(total as u64),
                    ..histograms[o].as_ref().map(Latency::of).unwrap_or_default()
                },
            });
        }

        let mut kinds = Vec::new();
        for k in 0..KIND_SLOTS {
            let column = |o: usize| &cells[o * KIND_SLOTS + k];
            let cell = |op: Op, field: usize| op_index(op).map_or(0, |o| column(o)[field]);
            let ops_count: u64 = (0..OPS.len()).map(|o| column(o)[COUNT]).sum();
            if ops_count == 0 {
                continue;
            }
            let time: f64 = (0..OPS.len()).map(|o| estimate(o, column(o))).sum();
            kinds.push(KindStats {
                kind: kind_of_slot(k),
                ops: ops_count,
                opens: cell(Op::Open, COUNT),
                reads: cell(Op::Read, COUNT),
                read_bytes: cell(Op::Read, BYTES),
                writes: cell(Op::Write, COUNT),
                write_bytes: cell(Op::Write, BYTES),
                syncs: cell(Op::Sync, COUNT),
                errors: (0..OPS.len()).map(|o| column(o)[ERRORS]).sum(),
                busy: (0..OPS.len()).map(|o| column(o)[BUSY]).sum(),
                time: Duration::from_nanos(time as u64),
            });
        }
        Stats { ops, kinds }
    }

    /// Forgets everything recorded so far.
    ///
    /// Calls recorded concurrently with the reset land on one side of it or
    /// the other, each counter whole.
    pub fn reset(&self) {
        let mut baseline = self.baseline.lock();
        for shard in self.shards() {
            for h in shard.latency.lock().iter_mut().flatten() {
                h.reset();
            }
        }
        *baseline = self.raw_counts();
    }
}

impl Recorder for StatsRecorder {
    #[inline]
    fn record(&self, e: &Event<'_>) {
        let slot = slots::current();
        match self.slots.get(slot).and_then(OnceLock::get) {
            Some(shard) => shard.add::<true>(e),
            None => self.record_slow(slot, e),
        }
    }

    fn latency(&self) -> LatencyMode {
        self.latency
    }
}

impl StatsRecorder {
    /// A thread's first event, or an event from a thread without an
    /// exclusive shard.
    #[cold]
    #[inline(never)]
    fn record_slow(&self, slot: usize, e: &Event<'_>) {
        match self.slots.get(slot) {
            Some(s) => s.get_or_init(|| Box::new(Shard::new())).add::<true>(e),
            None => self.shared.add::<false>(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn event(
        op: Op,
        kind: Option<FileKind>,
        bytes: u64,
        code: i32,
        micros: Option<u64>,
    ) -> Event<'static> {
        Event {
            op,
            file: vfs_core::FileName::new("t.db"),
            kind,
            offset: 0,
            bytes,
            elapsed: micros.map(Duration::from_micros),
            code,
            lock: None,
        }
    }

    #[test]
    fn every_op_has_its_own_slot() {
        let mut seen = [false; OPS.len()];
        for op in OPS {
            let i = op_index(op).unwrap();
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
        let s = StatsRecorder::new().with_latency(LatencyMode::Every);
        for us in 1..=100 {
            s.record(&event(
                Op::Write,
                Some(FileKind::Wal),
                4096,
                codes::SQLITE_OK,
                Some(us),
            ));
        }
        s.record(&event(
            Op::Write,
            Some(FileKind::Wal),
            4096,
            codes::SQLITE_FULL,
            Some(7),
        ));
        s.record(&event(
            Op::Read,
            Some(FileKind::MainDb),
            10,
            codes::SQLITE_IOERR_SHORT_READ,
            Some(1),
        ));
        s.record(&event(
            Op::Lock,
            Some(FileKind::MainDb),
            0,
            codes::SQLITE_BUSY,
            Some(1),
        ));
        let snap = s.snapshot();
        let w = snap.op(Op::Write);
        assert_eq!(
            (w.count, w.timed, w.bytes, w.errors, w.busy),
            (101, 101, 100 * 4096, 1, 0)
        );
        let p50 = w.latency.p50.as_micros();
        assert!((49..=51).contains(&p50), "p50 {p50}");
        assert!(w.latency.max >= Duration::from_micros(99));
        // Every call timed: the total is the exact sum.
        assert_eq!(w.latency.total, Duration::from_micros(5050 + 7));
        let r = snap.op(Op::Read);
        assert_eq!((r.count, r.bytes, r.errors, r.short_reads), (1, 10, 0, 1));
        let l = snap.op(Op::Lock);
        assert_eq!((l.count, l.errors, l.busy), (1, 0, 1));
        let wal = snap.kind(Some(FileKind::Wal));
        assert_eq!((wal.writes, wal.write_bytes, wal.errors), (101, 409_600, 1));
        assert_eq!(wal.time, Duration::from_micros(5057));
        let db = snap.kind(Some(FileKind::MainDb));
        assert_eq!((db.ops, db.reads, db.read_bytes, db.busy), (2, 1, 10, 1));
        assert_eq!(snap.op(Op::Sync).count, 0);
        let table = snap.to_string();
        assert!(table.contains("write") && table.contains("wal") && table.contains("p99 µs"));
        assert!(!table.contains("latency sampled"), "{table}");
        s.reset();
        assert_eq!(s.snapshot(), Stats::default());
    }

    /// Sampled latency: counts, bytes and errors stay exact, the histogram
    /// holds only the timed calls, totals are the timed mean × the calls.
    #[test]
    fn sampled_latency_keeps_counts_exact_and_estimates_time() {
        let s = StatsRecorder::new();
        assert_eq!(
            s.latency(),
            LatencyMode::Sampled(StatsRecorder::DEFAULT_SAMPLING)
        );
        // 1000 reads of the main database, one in ten timed (3 µs);
        // 50 reads of the WAL, none timed; 7 syncs, all timed (100 µs).
        for i in 0..1000u64 {
            let timed = (i % 10 == 0).then_some(3);
            s.record(&event(
                Op::Read,
                Some(FileKind::MainDb),
                4096,
                codes::SQLITE_OK,
                timed,
            ));
        }
        for _ in 0..50 {
            s.record(&event(
                Op::Read,
                Some(FileKind::Wal),
                100,
                codes::SQLITE_OK,
                None,
            ));
        }
        for _ in 0..7 {
            s.record(&event(
                Op::Sync,
                Some(FileKind::Wal),
                0,
                codes::SQLITE_OK,
                Some(100),
            ));
        }
        let snap = s.snapshot();
        let r = snap.op(Op::Read);
        assert_eq!(
            (r.count, r.timed, r.bytes),
            (1050, 100, 1000 * 4096 + 50 * 100)
        );
        // Within the histogram's 1 % resolution.
        let p50 = r.latency.p50.as_nanos();
        assert!((3000..=3030).contains(&p50), "p50 {p50}");
        // Main db: 100 timed × 3 µs × 1000/100; WAL: the read mean × 50.
        assert_eq!(r.latency.total, Duration::from_micros(3 * 1050));
        let sync = snap.op(Op::Sync);
        assert_eq!((sync.count, sync.timed), (7, 7));
        assert_eq!(sync.latency.total, Duration::from_micros(700));
        let wal = snap.kind(Some(FileKind::Wal));
        assert_eq!(
            (wal.ops, wal.reads, wal.read_bytes, wal.syncs),
            (57, 50, 5000, 7)
        );
        assert_eq!(wal.time, Duration::from_micros(150 + 700));
        assert_eq!(
            snap.kind(Some(FileKind::MainDb)).time,
            Duration::from_micros(3000)
        );
        assert!(snap.to_string().contains("latency sampled"));
    }

    /// Without any timing the counts are whole and the quantiles blank.
    #[test]
    fn no_latency_still_counts() {
        let s = StatsRecorder::new().with_latency(LatencyMode::Off);
        assert_eq!(s.latency(), LatencyMode::Off);
        for _ in 0..10 {
            s.record(&event(
                Op::Write,
                Some(FileKind::MainDb),
                512,
                codes::SQLITE_OK,
                None,
            ));
        }
        let w = s.snapshot().op(Op::Write);
        assert_eq!((w.count, w.timed, w.bytes), (10, 0, 5120));
        assert_eq!(w.latency, Latency::default());
    }

    fn read(s: &StatsRecorder) {
        s.record(&event(
            Op::Read,
            Some(FileKind::MainDb),
            512,
            codes::SQLITE_OK,
            Some(2),
        ));
    }

    #[test]
    fn many_threads_lose_nothing() {
        let s = Arc::new(StatsRecorder::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        read(&s);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let r = s.snapshot().op(Op::Read);
        assert_eq!((r.count, r.timed, r.bytes), (8000, 8000, 8000 * 512));
    }

    /// More live threads than exclusive shards (the rest share one with
    /// atomic adds), then many short-lived threads one after the other
    /// (their slots are reused): nothing lost, nothing counted twice.
    #[test]
    fn more_threads_than_slots_and_reused_slots_lose_nothing() {
        let s = Arc::new(StatsRecorder::new());
        let n = MAX_SLOTS + 16;
        let all_alive = Arc::new(std::sync::Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let s = s.clone();
                let all_alive = all_alive.clone();
                std::thread::spawn(move || {
                    all_alive.wait();
                    for _ in 0..100 {
                        read(&s);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.snapshot().op(Op::Read).count, n as u64 * 100);
        for _ in 0..200 {
            let s = s.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    read(&s);
                }
            })
            .join()
            .unwrap();
        }
        let r = s.snapshot().op(Op::Read);
        assert_eq!(
            (r.count, r.bytes),
            (n as u64 * 100 + 2000, (n as u64 * 100 + 2000) * 512)
        );
        // A reset forgets all of it; counting goes on exactly from zero.
        s.reset();
        assert_eq!(s.snapshot(), Stats::default());
        for _ in 0..3 {
            read(&s);
        }
        let r = s.snapshot().op(Op::Read);
        assert_eq!((r.count, r.timed, r.bytes), (3, 3, 1536));
    }
}
