//! [`Stats`]: what a [`StatsRecorder`](crate::StatsRecorder) snapshot holds,
//! and the table it prints as.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use vfs_core::{FileKind, Op};

/// Everything a [`StatsRecorder`](crate::StatsRecorder) recorded, from
/// [`snapshot`](crate::StatsRecorder::snapshot): one row per operation and
/// one per file kind. Prints as two tables.
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
    /// Bytes moved by successful calls (see [`Event`](crate::Event) for what counts).
    pub bytes: u64,
    /// Failed calls, lock contention and short reads excluded.
    pub errors: u64,
    /// Calls refused with `SQLITE_BUSY` or `SQLITE_LOCKED` (lock contention,
    /// which SQLite retries).
    pub busy: u64,
    /// Reads that reached the end of the file.
    pub short_reads: u64,
    /// Calls whose latency was measured: the calls in the histogram behind
    /// `latency`. Equal to `count` for calls always timed and under
    /// [`LatencyMode::Every`](crate::LatencyMode::Every); about `count / n` for the sampled calls under
    /// [`LatencyMode::Sampled(n)`](crate::LatencyMode::Sampled); 0 under
    /// [`LatencyMode::Off`](crate::LatencyMode::Off).
    pub timed: u64,
    /// Latency of the timed calls.
    pub latency: Latency,
}

impl OpStats {
    pub(crate) fn empty(op: Op) -> OpStats {
        OpStats {
            op,
            count: 0,
            bytes: 0,
            errors: 0,
            busy: 0,
            short_reads: 0,
            timed: 0,
            latency: Latency::default(),
        }
    }
}

/// Latency quantiles of one operation (1 % resolution), over its timed
/// calls (all of them, or a random sample: see [`OpStats::timed`]).
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
    /// The time spent in all calls: exact when every call was timed;
    /// otherwise estimated, per file kind, as the mean of the timed calls
    /// times the number of calls.
    pub total: Duration,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Latency {
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
    /// Time spent in the base for these operations (estimated from the
    /// timed calls like [`Latency::total`] when latency is sampled).
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

/// Two tables: one row per operation (count, timed calls, bytes, errors,
/// contention, p50/p99/max latency in µs), then one row per file kind;
/// under them, a note when latency was sampled (some `timed` below `count`):
/// quantiles then describe the timed calls and times are estimates.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<20} {:>9} {:>9} {:>11} {:>7} {:>6} {:>9} {:>9} {:>9}",
            "op", "count", "timed", "bytes", "errors", "busy", "p50 µs", "p99 µs", "max µs"
        )?;
        for s in &self.ops {
            let bytes = if s.bytes > 0 {
                Bytes(s.bytes).to_string()
            } else {
                "-".to_owned()
            };
            let quantile = |d: Duration| {
                if s.timed > 0 {
                    Micros(d).to_string()
                } else {
                    "-".to_owned()
                }
            };
            writeln!(
                f,
                "{:<20} {:>9} {:>9} {:>11} {:>7} {:>6} {:>9} {:>9} {:>9}",
                s.op.name(),
                s.count,
                s.timed,
                bytes,
                s.errors,
                s.busy,
                quantile(s.latency.p50),
                quantile(s.latency.p99),
                quantile(s.latency.max),
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
        if self.ops.iter().any(|s| s.timed < s.count) {
            writeln!(
                f,
                "\nlatency sampled: where `timed` < `count`, the quantiles describe the timed calls \
                 (a random sample) and the times are estimates (their mean × the calls)"
            )?;
        }
        Ok(())
    }
}
