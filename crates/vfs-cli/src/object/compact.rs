//! `object compact DB` and `object gc DB`: snapshots and garbage
//! collection (`docs/object.md`, compaction and garbage collection).

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use vfs_object::{CompactReport, GcReport, ObjectVfs};

use super::{StoreArgs, open_store, print_json};
use crate::error::{CliError, EXIT_OK, Result};
use crate::ui::out;

/// `object compact`.
#[derive(Args, Debug)]
pub struct CompactArgs {
    /// The database's name in the store (as SQLite opened it: `orders.db`)
    pub db: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Then collect garbage too, with --retention
    #[arg(long)]
    pub gc: bool,
    /// Retention window in seconds for --gc
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub retention: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `object gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// The database's name in the store
    pub db: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep every state committed within this many seconds
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub retention: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// What `object compact` did, as printed.
#[derive(Debug, Serialize)]
pub struct CompactOutput {
    /// The database.
    pub database: String,
    /// The LSN the snapshot covers (0: no commit).
    pub snapshot_lsn: u64,
    /// Objects written.
    pub objects_written: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Pages read from the store.
    pub pages_fetched: u64,
    /// The collection that followed (`--gc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gc: Option<GcOutput>,
}

/// What `object gc` did, as printed.
#[derive(Debug, Serialize)]
pub struct GcOutput {
    /// The database.
    pub database: String,
    /// The snapshot the oldest retained state is read from (0: none).
    pub base_lsn: u64,
    /// Log objects deleted (`log/1`: replaced by a tombstone).
    pub log_objects_deleted: u64,
    /// Snapshots deleted.
    pub snapshots_deleted: u64,
    /// Page-group objects of large snapshots deleted.
    pub groups_deleted: u64,
    /// Bytes deleted.
    pub bytes_deleted: u64,
    /// Objects written (the tombstone).
    pub objects_written: u64,
}

fn vfs_error(db: &str, e: vfs_core::Error) -> CliError {
    CliError::new(format!("{db}: {}", e.message()))
}

/// Compacts `database` (see [`ObjectVfs::compact`]).
pub fn compact(vfs: &ObjectVfs, database: &str) -> Result<CompactReport> {
    vfs.compact(database).map_err(|e| vfs_error(database, e))
}

/// Collects `database`'s garbage (see [`ObjectVfs::gc_with_retention`]).
pub fn gc(vfs: &ObjectVfs, database: &str, seconds: u64) -> Result<GcReport> {
    vfs.gc_with_retention(database, Duration::from_secs(seconds))
        .map_err(|e| vfs_error(database, e))
}

fn gc_output(database: &str, r: &GcReport) -> GcOutput {
    GcOutput {
        database: database.to_owned(),
        base_lsn: r.base_lsn,
        log_objects_deleted: r.log_objects_deleted,
        snapshots_deleted: r.snapshots_deleted,
        groups_deleted: r.groups_deleted,
        bytes_deleted: r.bytes_deleted,
        objects_written: r.objects_written,
    }
}

/// Runs `object compact`.
pub fn run_compact(a: CompactArgs) -> Result<u8> {
    let vfs = open_store(&a.store)?;
    let r = compact(&vfs, &a.db)?;
    let mut text = format!("{}: {r}", a.db);
    let gc_report = if a.gc {
        let g = gc(&vfs, &a.db, a.retention)?;
        text.push_str(&format!("\n{}: {g}", a.db));
        Some(gc_output(&a.db, &g))
    } else {
        None
    };
    let output = CompactOutput {
        database: a.db.clone(),
        snapshot_lsn: r.snapshot_lsn,
        objects_written: r.objects_written,
        bytes_written: r.bytes_written,
        pages_fetched: r.pages_fetched,
        gc: gc_report,
    };
    if a.json {
        print_json(&output)?;
    } else {
        out(text);
    }
    Ok(EXIT_OK)
}

/// Runs `object gc`.
pub fn run_gc(a: GcArgs) -> Result<u8> {
    let vfs = open_store(&a.store)?;
    let g = gc(&vfs, &a.db, a.retention)?;
    if a.json {
        print_json(&gc_output(&a.db, &g))?;
    } else {
        out(format!("{}: {g}", a.db));
    }
    Ok(EXIT_OK)
}
