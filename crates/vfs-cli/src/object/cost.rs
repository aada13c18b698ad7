//! `object cost DB`: objects and bytes a database holds, by kind.

use clap::Args;
use serde::Serialize;
use vfs_object::ObjectCount;

use super::{StoreArgs, open_store, print_json};
use crate::error::{Context, EXIT_OK, Result};
use crate::ui::out;

/// `object cost`.
#[derive(Args, Debug)]
pub struct CostArgs {
    /// The database's name in the store
    pub db: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Objects and bytes of one kind.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Count {
    /// Objects.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
}

impl From<ObjectCount> for Count {
    fn from(c: ObjectCount) -> Self {
        Count {
            objects: c.objects,
            bytes: c.bytes,
        }
    }
}

/// A database's objects by kind.
#[derive(Debug, Serialize)]
pub struct CostReport {
    /// The database.
    pub db: String,
    /// Commit objects.
    pub log: Count,
    /// Snapshot objects.
    pub snapshots: Count,
    /// Lease objects.
    pub leases: Count,
    /// Other objects of the format.
    pub other: Count,
    /// All of them.
    pub total: Count,
}

/// Counts `a.db`'s objects.
pub fn cost(a: &CostArgs) -> Result<CostReport> {
    let vfs = open_store(&a.store)?;
    let u = vfs
        .storage_usage(&a.db)
        .context(|| format!("listing the objects of {}", a.db))?;
    Ok(CostReport {
        db: a.db.clone(),
        log: u.log.into(),
        snapshots: u.snapshots.into(),
        leases: u.leases.into(),
        other: u.other.into(),
        total: u.total().into(),
    })
}

pub(crate) fn run(a: CostArgs) -> Result<u8> {
    let r = cost(&a)?;
    if a.json {
        print_json(&r)?;
        return Ok(EXIT_OK);
    }
    out(format!("{}:", r.db));
    out(format!("{:<10} {:>10} {:>14}", "kind", "objects", "bytes"));
    for (kind, c) in [
        ("log", &r.log),
        ("snapshots", &r.snapshots),
        ("leases", &r.leases),
        ("other", &r.other),
        ("total", &r.total),
    ] {
        out(format!("{kind:<10} {:>10} {:>14}", c.objects, c.bytes));
    }
    Ok(EXIT_OK)
}
