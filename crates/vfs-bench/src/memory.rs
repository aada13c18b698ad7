//! Process memory per byte of database, for the in-memory stores.
//!
//! Each figure comes from a fresh child process (`vfs-bench --memory-probe
//! STORE ROWS`), so memory the bench itself freed and the allocator kept
//! does not count: the child first builds and deletes a 200-row database
//! (so the code that runs is resident and SQLite's buffers exist), notes
//! its resident memory, builds the database with the bulk insert
//! (SQLite's page cache held to 256 KiB, so the store dominates), closes
//! its connection (the store keeps the database), notes its resident
//! memory again and prints the growth with the database's size. For `mvcc + 10 snapshots` it then runs ten rounds of
//! 100 single-row updates in one transaction each, keeping an
//! [`vfs_mvcc::Mvcc::snapshot`] after every round alive.

use std::process::Command;

use rusqlite::Connection;
use serde_json::json;

use crate::report::{MemoryProbe, Report};
use crate::rounds::Res;
use crate::workloads::{self, Scale};

/// The stores measured, as the child knows them.
pub const STORES: [&str; 3] = ["memdb", "mvcc", "mvcc + 10 snapshots"];

/// Updates between two snapshots of the `mvcc + 10 snapshots` figure.
const UPDATES_PER_SNAPSHOT: i64 = 100;

/// Resident memory of this process, from `/proc/self/status`.
fn resident_bytes() -> Res<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or("no VmRSS line in /proc/self/status")?;
    Ok(kb * 1024)
}

/// Builds database `name` of `rows` rows through the VFS `probe`, with
/// `snapshots` rounds of updates each followed by a kept snapshot; returns
/// the database's size and the snapshots.
fn build(
    mvcc: &vfs_mvcc::Mvcc,
    name: &str,
    rows: i64,
    snapshots: usize,
) -> Res<(u64, Vec<vfs_mvcc::Snapshot>)> {
    let mut conn = Connection::open(format!("file:{name}?vfs=probe"))?;
    conn.execute_batch("PRAGMA cache_size = -256")?;
    workloads::schema(&conn)?;
    let scale = Scale {
        rows,
        ..Scale::FULL
    };
    workloads::bulk_insert(&mut conn, &scale)?;
    let mut kept = Vec::new();
    let mut rng = workloads::Rng::new(77);
    for _ in 0..snapshots {
        let tx = conn.transaction()?;
        {
            let mut s = tx.prepare("UPDATE t1 SET a = a + 1 WHERE id = ?1")?;
            for _ in 0..UPDATES_PER_SNAPSHOT {
                s.execute([rng.below(rows) + 1])?;
            }
        }
        tx.commit()?;
        kept.push(mvcc.snapshot(name)?);
    }
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((pages * page_size) as u64, kept))
}

/// The child's side: builds one database and prints the figure as JSON.
pub fn child(store: &str, rows: i64) -> Res<()> {
    let memdb = vfs_memdb::MemDb::new();
    let mvcc = vfs_mvcc::Mvcc::new();
    let is_mvcc = store.starts_with("mvcc");
    match store {
        "memdb" => drop(vfs_core::register("probe", memdb.clone(), false)?),
        _ if is_mvcc => drop(vfs_core::register("probe", mvcc.clone(), false)?),
        other => return Err(format!("unknown store {other:?}").into()),
    }
    let snapshots = if store.contains("snapshots") { 10 } else { 0 };
    // A small database first, then deleted: the code it runs (SQLite's
    // and ours) is then resident, and its pages would otherwise count.
    let (_, warm) = build(&mvcc, "/warm.db", 200, snapshots.min(2))?;
    drop(warm);
    if is_mvcc {
        mvcc.delete("/warm.db")?;
    } else {
        memdb.delete("/warm.db")?;
    }
    let before = resident_bytes()?;
    let (db_bytes, kept) = build(&mvcc, "/probe.db", rows, snapshots)?;
    let after = resident_bytes()?;
    println!(
        "{}",
        json!({
            "store": store,
            "rows": rows,
            "db_bytes": db_bytes,
            "rss_growth": after.saturating_sub(before),
            "snapshots_alive": kept.len(),
        })
    );
    Ok(())
}

/// Runs a child per store and size and adds the figures to `report`.
pub fn probe_all(sizes: &[i64], report: &mut Report) -> Res<()> {
    if resident_bytes().is_err() {
        report.set_memory_note(
            "not measured: the probes read resident memory from /proc (Linux)".to_owned(),
        );
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    for &rows in sizes {
        for store in STORES {
            let out = Command::new(&exe)
                .args(["--memory-probe", store, &rows.to_string()])
                .output()
                .map_err(|e| format!("cannot start the memory probe {}: {e}", exe.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "memory probe {store} at {rows} rows failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )
                .into());
            }
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("memory probe {store} printed no JSON: {e}"))?;
            let field = |k: &str| {
                doc[k]
                    .as_u64()
                    .ok_or_else(|| format!("memory probe {store}: no {k}"))
            };
            report.add_memory(MemoryProbe {
                store: store.to_owned(),
                rows,
                db_bytes: field("db_bytes")?,
                rss_growth: field("rss_growth")?,
            });
        }
    }
    Ok(())
}
