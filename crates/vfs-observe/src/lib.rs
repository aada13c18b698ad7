//! # vfs-observe
//!
//! Observe any SQLite VFS built on vfs-core — a Rust backend, a stack of
//! shims, or the native disk VFS — without touching it.
//!
//! * [`Wrap`]: decorates a VFS and reports every file operation to a
//!   [`Recorder`] as an [`Event`].
//! * [`register_observed`]: registers a base observed by a recorder, or the
//!   base itself (at no cost) when there is none.
//! * [`StatsRecorder`]: counters and latency histograms per operation and
//!   file kind, snapshotted as [`Stats`] and printed as a table.
//! * [`TracingRecorder`] (feature `tracing`, on by default): one `tracing`
//!   event per operation.
//!
//! See `docs/observability.md` for a guide.
//!
//! ```
//! use std::sync::Arc;
//! use vfs_core::{Native, Op};
//! use vfs_observe::{Recorder, StatsRecorder, register_observed};
//!
//! let stats = Arc::new(StatsRecorder::new());
//! let recorder: Arc<dyn Recorder> = stats.clone();
//! let reg = register_observed("observe-doc", Native::new()?, Some(recorder), false)?;
//! let dir = tempfile::tempdir().unwrap();
//! let uri = format!("file:{}?vfs=observe-doc", dir.path().join("a.db").display());
//! let conn = rusqlite::Connection::open(uri).unwrap();
//! conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
//! drop(conn);
//! assert!(stats.snapshot().op(Op::Write).count > 0);
//! reg.unregister().map_err(|(_, e)| e)?;
//! # Ok::<(), vfs_core::Error>(())
//! ```

#![forbid(unsafe_code)]

mod event;
mod report;
mod slots;
mod stats;
#[cfg(feature = "tracing")]
mod trace;
mod wrap;

pub use event::{Event, LatencyMode, Recorder};
pub use report::{KindStats, Latency, OpStats, Stats};
pub use stats::StatsRecorder;
#[cfg(feature = "tracing")]
pub use trace::{TRACING_TARGET, TracingRecorder};
pub use wrap::{Wrap, WrapFile, register_observed};
