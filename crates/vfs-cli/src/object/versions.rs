//! `object versions DB`: the retained versions of a database.

use clap::Args;
use serde::Serialize;

use super::{StoreArgs, open_store, print_json, rfc3339};
use crate::error::{Context, EXIT_OK, Result};
use crate::ui::out;

/// `object versions`.
#[derive(Args, Debug)]
pub struct VersionsArgs {
    /// The database's name in the store (as the application opens it)
    pub db: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// One version, as printed.
#[derive(Debug, Serialize)]
pub struct VersionRow {
    /// Its LSN.
    pub lsn: u64,
    /// Commit time (the committer's clock), RFC 3339 UTC.
    pub commit_time: String,
    /// The store's last-modified time of its object, RFC 3339 UTC.
    pub stored_at: String,
    /// Database size in bytes.
    pub db_size: u64,
    /// Bytes of its commit object.
    pub object_bytes: u64,
    /// Pages it stored.
    pub pages_changed: u32,
    /// A void commit (no change).
    pub void: bool,
    /// A full image.
    pub full_image: bool,
    /// Held by a snapshot whose log object garbage collection deleted (it
    /// opens from the snapshot alone; sizes and times are the snapshot's).
    pub snapshot: bool,
}

/// The versions of `a.db`.
pub fn versions(a: &VersionsArgs) -> Result<Vec<VersionRow>> {
    let vfs = open_store(&a.store)?;
    let list = vfs
        .versions(&a.db)
        .context(|| format!("listing the versions of {}", a.db))?;
    Ok(list
        .into_iter()
        .map(|v| VersionRow {
            lsn: v.lsn,
            commit_time: rfc3339(v.commit_time),
            stored_at: rfc3339(v.stored_at),
            db_size: v.db_size,
            object_bytes: v.object_bytes,
            pages_changed: v.pages_changed,
            void: v.void,
            full_image: v.full_image,
            snapshot: v.snapshot,
        })
        .collect())
}

pub(crate) fn run(a: VersionsArgs) -> Result<u8> {
    let rows = versions(&a)?;
    if a.json {
        print_json(&rows)?;
        return Ok(EXIT_OK);
    }
    if rows.is_empty() {
        out(format!("{}: no versions (no commit in this store)", a.db));
        return Ok(EXIT_OK);
    }
    out(format!(
        "{:>8}  {:<24}  {:>12}  {:>12}  {:>7}  note",
        "LSN", "commit time (UTC)", "db bytes", "object B", "pages"
    ));
    for r in &rows {
        let note = match (r.void, r.snapshot, r.full_image) {
            (true, ..) => "void (no change)",
            (false, true, _) => "snapshot (its log object collected)",
            (false, false, true) => "full image",
            _ => "",
        };
        out(format!(
            "{:>8}  {:<24}  {:>12}  {:>12}  {:>7}  {note}",
            r.lsn, r.commit_time, r.db_size, r.object_bytes, r.pages_changed
        ));
    }
    Ok(EXIT_OK)
}
