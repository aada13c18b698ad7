//! [`TracingRecorder`]: one `tracing` event per operation.

use vfs_core::{FileKind, LockLevel, Op};

use crate::{Event, Recorder};

/// Logs each operation as one [`tracing`] event with target `vfs_core::io`
/// and the structured fields `op`, `kind`, `file`, `offset`, `bytes`,
/// `micros` (f64) and `code` (plus `level` for lock operations and `error`,
/// the code's name, on failures). It asks for every call to be timed
/// ([`LatencyMode::Every`](crate::LatencyMode::Every)); should it receive an untimed event anyway
/// (from a custom recorder that forwards to it but asks for less), the
/// event simply has no `micros` field.
///
/// Levels: failures at `WARN` (lock contention, which SQLite retries, at
/// `DEBUG`); `open`, `close`, `sync` and `delete` at `DEBUG`; everything
/// else, short reads included, at `TRACE`.
///
/// ```
/// use std::sync::Arc;
/// let reg = vfs_observe::register_observed(
///     "traced-doc",
///     vfs_core::Native::new().unwrap(),
///     Some(Arc::new(vfs_observe::TracingRecorder)),
///     false,
/// ).unwrap();
/// reg.unregister().unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingRecorder;

/// The target of [`TracingRecorder`]'s events (kept from the days the
/// recorders lived in vfs-core, so log filters keep working).
pub const TRACING_TARGET: &str = "vfs_core::io";

macro_rules! io_event {
    ($level:expr, $e:expr) => {{
        let e = $e;
        let kind = e.kind.map_or("-", FileKind::name);
        let micros = e.elapsed.map(|d| d.as_nanos() as f64 / 1000.0);
        match (e.lock, e.is_ok() || e.is_short_read()) {
            (Some(level), true) => tracing::event!(
                target: TRACING_TARGET, $level,
                op = e.op.name(), kind, file = %e.file, offset = e.offset, bytes = e.bytes,
                micros, code = e.code, level = lock_name(level),
            ),
            (None, true) => tracing::event!(
                target: TRACING_TARGET, $level,
                op = e.op.name(), kind, file = %e.file, offset = e.offset, bytes = e.bytes,
                micros, code = e.code,
            ),
            (Some(level), false) => tracing::event!(
                target: TRACING_TARGET, $level,
                op = e.op.name(), kind, file = %e.file, offset = e.offset, bytes = e.bytes,
                micros, code = e.code, level = lock_name(level),
                error = %vfs_core::code_name(e.code),
            ),
            (None, false) => tracing::event!(
                target: TRACING_TARGET, $level,
                op = e.op.name(), kind, file = %e.file, offset = e.offset, bytes = e.bytes,
                micros, code = e.code, error = %vfs_core::code_name(e.code),
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
