//! What [`Wrap`](crate::Wrap) reports: the [`Event`] of each operation, the
//! [`Recorder`] trait that receives it, and the [`LatencyMode`] a recorder
//! asks for.

use std::sync::Arc;
use std::time::Duration;

use vfs_core::{FileKind, FileName, LockLevel, Op, codes};

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
///
/// Every call produces an event, whatever the recorder's [`LatencyMode`]:
/// only `elapsed` depends on it.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// The operation.
    pub op: Op,
    /// The file's name as SQLite gave it to `xOpen` (or to `xDelete` /
    /// `xAccess`), exactly (it need not be UTF-8); empty for an anonymous
    /// temporary file.
    pub file: &'a FileName,
    /// The kind of the open file; `None` for `Delete` and `Access`, which
    /// name a path rather than an open file.
    pub kind: Option<FileKind>,
    /// See the table above.
    pub offset: u64,
    /// See the table above.
    pub bytes: u64,
    /// How long the base took, measured with `std::time::Instant`; `None`
    /// when this call was not timed: the recorder asked for
    /// [`LatencyMode::Sampled`] and this frequent, cheap call was not among
    /// the sampled ones, or for [`LatencyMode::Off`].
    pub elapsed: Option<Duration>,
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
/// [`latency`](Recorder::latency) says which calls the wrapper should time;
/// the default, [`LatencyMode::Every`], times all of them.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use vfs_core::Op;
/// use vfs_observe::{Event, Recorder};
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

    /// Which calls [`Wrap`](crate::Wrap) should time for this recorder.
    /// Read once, by [`Wrap::new`](crate::Wrap::new): answer a constant.
    ///
    /// The default, [`LatencyMode::Every`], times every call; a recorder
    /// that does not look at [`Event::elapsed`] should answer
    /// [`LatencyMode::Off`] and spare every call two clock reads.
    fn latency(&self) -> LatencyMode {
        LatencyMode::Every
    }
}

/// Which calls [`Wrap`](crate::Wrap) times, as a [`Recorder`] asks.
///
/// Reading the clock twice costs about as much as a read from an in-memory
/// VFS, so timing every call of a fast backend shows in its throughput;
/// counts, bytes and results are reported exactly in every mode.
///
/// A recorder that never looks at [`Event::elapsed`] (a counter of calls,
/// a write budget) answers [`LatencyMode::Off`] from
/// [`Recorder::latency`]; [`StatsRecorder`](crate::StatsRecorder) answers
/// [`LatencyMode::Sampled`] unless told otherwise
/// ([`StatsRecorder::with_latency`](crate::StatsRecorder::with_latency)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LatencyMode {
    /// Time every call: every [`Event::elapsed`] is `Some`.
    #[default]
    Every,
    /// Time every open, close, sync, truncate, delete and shared-memory map,
    /// and about one in `n` of the frequent, cheap calls — read, fetch, write, file
    /// size, lock, unlock, reserved-lock check and access — picked at random
    /// intervals (a per-file countdown restarted at a random value of mean
    /// `n`), so that no regular pattern of calls is always or never timed.
    /// `Sampled(0)` and `Sampled(1)` time every call; `n` above 2^30 counts
    /// as 2^30.
    Sampled(u32),
    /// Time nothing: every [`Event::elapsed`] is `None`.
    Off,
}

impl LatencyMode {
    /// The mode serving both `self` and `other`: the one timing more calls
    /// (`Sampled(32)` with `Off` is `Sampled(32)`, with `Sampled(8)` is
    /// `Sampled(8)`, with `Every` is `Every`).
    pub fn finer(self, other: LatencyMode) -> LatencyMode {
        use LatencyMode::*;
        match (self, other) {
            (Every, _) | (_, Every) | (Sampled(0 | 1), _) | (_, Sampled(0 | 1)) => Every,
            (Sampled(a), Sampled(b)) => Sampled(a.min(b)),
            (Sampled(n), Off) | (Off, Sampled(n)) => Sampled(n),
            (Off, Off) => Off,
        }
    }
}

impl<R: Recorder + ?Sized> Recorder for Arc<R> {
    fn record(&self, event: &Event<'_>) {
        (**self).record(event)
    }
    fn latency(&self) -> LatencyMode {
        (**self).latency()
    }
}

impl<R: Recorder + ?Sized> Recorder for Box<R> {
    fn record(&self, event: &Event<'_>) {
        (**self).record(event)
    }
    fn latency(&self) -> LatencyMode {
        (**self).latency()
    }
}

/// Both recorders, in order: `(StatsRecorder::new(), TracingRecorder)`.
/// The pair times what the more demanding of the two asks for
/// ([`LatencyMode::finer`]).
impl<A: Recorder, B: Recorder> Recorder for (A, B) {
    fn record(&self, event: &Event<'_>) {
        self.0.record(event);
        self.1.record(event);
    }
    fn latency(&self) -> LatencyMode {
        self.0.latency().finer(self.1.latency())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatsRecorder;
    #[cfg(feature = "tracing")]
    use crate::TracingRecorder;

    #[test]
    fn latency_modes_combine_to_the_finer() {
        use LatencyMode::*;
        assert_eq!(Every.finer(Off), Every);
        assert_eq!(Off.finer(Off), Off);
        assert_eq!(Off.finer(Sampled(4)), Sampled(4));
        assert_eq!(Sampled(4).finer(Sampled(16)), Sampled(4));
        assert_eq!(Sampled(1).finer(Off), Every);
        let stats = StatsRecorder::new();
        #[cfg(feature = "tracing")]
        assert_eq!((StatsRecorder::new(), TracingRecorder).latency(), Every);
        assert_eq!(
            Arc::new(stats).latency(),
            Sampled(StatsRecorder::DEFAULT_SAMPLING)
        );
        let boxed: Box<dyn Recorder> = Box::new(StatsRecorder::new().with_latency(Off));
        assert_eq!(boxed.latency(), Off);
    }
}
