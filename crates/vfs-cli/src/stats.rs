//! `stats`: runs SQL on a database through its layers, wrapped in
//! `vfs_observe::Wrap` with a `StatsRecorder`, and reports every operation
//! (counts, bytes, errors, latency quantiles) per operation and per file
//! kind.

use std::sync::Arc;

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::types::ValueRef;
use serde::Serialize;
use vfs_crypto::Secret;
use vfs_observe::{Recorder, Stats, StatsRecorder};

use crate::db::{self, READ_ONLY, READ_WRITE};
use crate::detect::detect;
use crate::error::{CliError, Context, Result};
use crate::stack::StackSpec;
use crate::storage::Storage;

/// How to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatsOptions {
    /// Record what reaches the storage (under the encryption and checksum
    /// layers) instead of what SQLite asks for.
    pub at_storage: bool,
    /// Open read-only.
    pub read_only: bool,
}

/// The rows of one statement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatementResult {
    /// The statement's text.
    pub sql: String,
    /// Its column names.
    pub columns: Vec<String>,
    /// Its rows (blobs as `x'…'` hex text).
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// One operation's statistics (latencies in microseconds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpRow {
    /// The operation (`read`, `write`, `sync`, …).
    pub op: String,
    /// Calls.
    pub count: u64,
    /// Calls timed (latency is sampled for the frequent ones).
    pub timed: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Failed calls.
    pub errors: u64,
    /// Calls refused as busy or locked.
    pub busy: u64,
    /// Reads past the end of a file.
    pub short_reads: u64,
    /// Median latency.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest.
    pub max_us: f64,
    /// Time spent in all calls.
    pub total_us: f64,
}

/// One file kind's statistics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KindRow {
    /// `main db`, `wal`, `main journal`, …, or `(path)` for deletes and
    /// existence checks.
    pub kind: String,
    /// Operations.
    pub ops: u64,
    /// Opens.
    pub opens: u64,
    /// Reads.
    pub reads: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Writes.
    pub writes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Syncs.
    pub syncs: u64,
    /// Failed operations.
    pub errors: u64,
    /// Time spent, in microseconds.
    pub time_us: f64,
}

/// What `stats` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsReport {
    /// The database.
    pub file: String,
    /// Its layers.
    pub format: String,
    /// `sqlite` (what SQLite asks of the stack) or `storage` (what reaches
    /// the storage under the layers).
    pub measured_at: String,
    /// The statements' results.
    pub results: Vec<StatementResult>,
    /// Per operation.
    pub ops: Vec<OpRow>,
    /// Per file kind.
    pub kinds: Vec<KindRow>,
    /// The same as a table (not in `--json`).
    #[serde(skip)]
    pub table: String,
}

fn us(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn json_value(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(r) => r.into(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("x'{hex}'").into()
        }
    }
}

/// Runs `sql` (each item may hold several statements) on `path`.
pub fn stats(
    storage: &dyn Storage,
    path: &str,
    key: Option<&Secret>,
    sql: &[String],
    opts: StatsOptions,
) -> Result<StatsReport> {
    let layout = detect(storage, path)?;
    if layout.layers.encrypted {
        let k =
            key.ok_or_else(|| CliError::new(format!("{path}: encrypted, and no key was given")))?;
        db::check_key(&layout, k)?;
    }
    let recorder = Arc::new(StatsRecorder::new());
    let spec = StackSpec {
        recorder: Some(recorder.clone() as Arc<dyn Recorder>),
        recorder_at_base: opts.at_storage,
        ..StackSpec::new(layout.layers)
    };
    let flags = if opts.read_only {
        READ_ONLY
    } else {
        READ_WRITE
    };
    let mut results = Vec::new();
    {
        let db = db::open(storage, &spec, path, key, flags)?;
        for text in sql {
            let mut batch = rusqlite::Batch::new(&db.conn, text);
            loop {
                let next = batch.next().context(|| format!("in {text:?}"))?;
                let Some(mut stmt) = next else { break };
                let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
                let sql = stmt.expanded_sql().unwrap_or_default();
                let mut rows = Vec::new();
                let mut q = stmt.raw_query();
                while let Some(row) = q.next().context(|| format!("running {sql:?}"))? {
                    let values = (0..columns.len())
                        .map(|i| row.get_ref(i).map(json_value))
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .context(|| format!("reading a row of {sql:?}"))?;
                    rows.push(values);
                }
                results.push(StatementResult { sql, columns, rows });
            }
        }
    }
    let snapshot: Stats = recorder.snapshot();
    let ops = snapshot
        .ops
        .iter()
        .map(|s| OpRow {
            op: s.op.name().to_owned(),
            count: s.count,
            timed: s.timed,
            bytes: s.bytes,
            errors: s.errors,
            busy: s.busy,
            short_reads: s.short_reads,
            p50_us: us(s.latency.p50),
            p90_us: us(s.latency.p90),
            p99_us: us(s.latency.p99),
            max_us: us(s.latency.max),
            total_us: us(s.latency.total),
        })
        .collect();
    let kinds = snapshot
        .kinds
        .iter()
        .map(|k| KindRow {
            kind: k.kind.map_or("(path)", vfs_core::FileKind::name).to_owned(),
            ops: k.ops,
            opens: k.opens,
            reads: k.reads,
            read_bytes: k.read_bytes,
            writes: k.writes,
            write_bytes: k.write_bytes,
            syncs: k.syncs,
            errors: k.errors,
            time_us: us(k.time),
        })
        .collect();
    Ok(StatsReport {
        file: path.to_owned(),
        format: layout.layers.to_string(),
        measured_at: if opts.at_storage { "storage" } else { "sqlite" }.into(),
        results,
        ops,
        kinds,
        table: snapshot.to_string(),
    })
}

/// A value as the `sqlite3` shell prints it in list mode.
pub fn plain_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
