//! `object restore DB --lsn N|--asof T --to DB2|--out FILE`.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use vfs_object::{At, RestoreTarget};

use super::{StoreArgs, open_store, print_json};
use crate::error::{Context, EXIT_OK, Result};
use crate::ui::Ui;

/// `object restore`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("version").required(true).args(["lsn", "asof"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "out"])))]
pub struct RestoreArgs {
    /// The database's name in the store
    pub db: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The version: its LSN (see `object versions`)
    #[arg(long)]
    pub lsn: Option<u64>,
    /// The version: the newest commit at or before this RFC 3339 time
    /// (commit times, the committers' clocks)
    #[arg(long, value_name = "TIME")]
    pub asof: Option<String>,
    /// Write it as this new database in the same store (refused if it
    /// exists)
    #[arg(long, value_name = "DB")]
    pub to: Option<String>,
    /// Write it as this plain SQLite file (refused if it exists)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// What was restored.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    /// The source database.
    pub db: String,
    /// The LSN restored.
    pub lsn: u64,
    /// Where it went (a database name or a file path).
    pub target: String,
    /// Database size in bytes.
    pub db_size: u64,
    /// Pages written.
    pub pages: u64,
}

/// Restores as `a` says.
pub fn restore(a: &RestoreArgs) -> Result<RestoreReport> {
    let at = match (a.lsn, &a.asof) {
        (Some(n), _) => At::Lsn(n),
        (None, Some(t)) => At::parse_time(t).context(|| "--asof".to_owned())?,
        (None, None) => unreachable!("clap requires --lsn or --asof"),
    };
    let (target, shown) = match (&a.to, &a.out) {
        (Some(db), _) => (RestoreTarget::Database(db.clone()), db.clone()),
        (None, Some(f)) => (RestoreTarget::File(f.clone()), f.display().to_string()),
        (None, None) => unreachable!("clap requires --to or --out"),
    };
    let vfs = open_store(&a.store)?;
    let r = vfs
        .restore(&a.db, at, &target)
        .context(|| format!("restoring {} to {shown}", a.db))?;
    Ok(RestoreReport {
        db: a.db.clone(),
        lsn: r.lsn,
        target: shown,
        db_size: r.db_size,
        pages: r.pages,
    })
}

pub(crate) fn run(a: RestoreArgs, ui: &Ui) -> Result<u8> {
    let r = restore(&a)?;
    if a.json {
        print_json(&r)?;
    } else {
        ui.say(format!(
            "restored {} at LSN {} to {} ({} bytes, {} pages)",
            r.db, r.lsn, r.target, r.db_size, r.pages
        ));
    }
    Ok(EXIT_OK)
}
