//! `object compact` and `object gc`.

use serde::Serialize;
use vfs_object::{CompactReport, GcReport, ObjectOptions, ObjectVfs};

use super::{CompactArgs, GcArgs, StoreArgs, open_vfs, retention};
use crate::error::{CliError, EXIT_OK, Result};
use crate::ui::out;

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
    vfs.gc_with_retention(database, retention(seconds))
        .map_err(|e| vfs_error(database, e))
}

fn gc_output(database: &str, r: &GcReport) -> GcOutput {
    GcOutput {
        database: database.to_owned(),
        base_lsn: r.base_lsn,
        log_objects_deleted: r.log_objects_deleted,
        snapshots_deleted: r.snapshots_deleted,
        bytes_deleted: r.bytes_deleted,
        objects_written: r.objects_written,
    }
}

fn print(json: bool, value: &impl Serialize, text: String) -> Result<()> {
    if json {
        let s = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::new(format!("writing JSON: {e}")))?;
        out(s);
    } else {
        out(text);
    }
    Ok(())
}

pub(super) fn compact_cmd(store: &StoreArgs, a: CompactArgs) -> Result<u8> {
    let vfs = open_vfs(store, ObjectOptions::default())?;
    let r = compact(&vfs, &a.database)?;
    let mut text = format!("{}: {r}", a.database);
    let gc_report = if a.gc {
        let g = gc(&vfs, &a.database, a.retention)?;
        text.push_str(&format!("\n{}: {g}", a.database));
        Some(gc_output(&a.database, &g))
    } else {
        None
    };
    let output = CompactOutput {
        database: a.database.clone(),
        snapshot_lsn: r.snapshot_lsn,
        objects_written: r.objects_written,
        bytes_written: r.bytes_written,
        pages_fetched: r.pages_fetched,
        gc: gc_report,
    };
    print(a.json, &output, text)?;
    Ok(EXIT_OK)
}

pub(super) fn gc_cmd(store: &StoreArgs, a: GcArgs) -> Result<u8> {
    let vfs = open_vfs(store, ObjectOptions::default())?;
    let g = gc(&vfs, &a.database, a.retention)?;
    print(
        a.json,
        &gc_output(&a.database, &g),
        format!("{}: {g}", a.database),
    )?;
    Ok(EXIT_OK)
}
