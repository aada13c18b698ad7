//! The size sweep: the same operations on databases of growing size, to
//! show how the cost per operation changes once the database no longer
//! fits SQLite's page cache (2 MB) and then the CPU's caches.
//!
//! Each size is built by the bulk insert (its cost per row is the first
//! curve), then a fixed number of lookups, scans and small transactions
//! runs on it, so every point's cost per operation rests on the same
//! amount of work. Targets are interleaved per step as in the main rounds.

use rusqlite::Connection;

use crate::report::{Report, Sample};
use crate::rounds::{READ_REPEATS, Res, time_of};
use crate::stats::shuffled;
use crate::targets::{Family, Target};
use crate::workloads::{self, Measure, Scale};

/// Database sizes of the full sweep, in rows of `t1`.
pub const FULL_SIZES: [i64; 3] = [10_000, 100_000, 1_000_000];
/// Sizes of the smoke run.
pub const QUICK_SIZES: [i64; 2] = [1_000, 4_000];

type StepFn = fn(&mut Connection, &Scale) -> rusqlite::Result<Measure>;

/// The steps that only read.
const READS: [&str; 3] = ["point_rowid", "point_index", "range_scan"];

/// The steps at each size, in order.
const STEPS: [(&str, StepFn); 5] = [
    ("bulk_insert", workloads::bulk_insert),
    ("point_rowid", |c, s| workloads::point_rowid(c, s)),
    ("point_index", |c, s| workloads::point_index(c, s)),
    ("range_scan", |c, s| workloads::range_scan(c, s)),
    ("small_txns", |c, s| workloads::small_transactions(c, s)),
];

/// The scale of one size: `rows` rows, and the same number of lookups,
/// scans and transactions whatever the size.
pub fn scale(rows: i64, quick: bool) -> Scale {
    let per_step = if quick { 2_000 } else { 20_000 };
    Scale {
        rows,
        small_txns: per_step / 20,
        disk_small_txns: 0,
        lookups: per_step,
        ranges: per_step / 20,
        updates: 0,
        reader_time: Scale::QUICK.reader_time,
    }
}

/// One round of the sweep over `targets` (those marked `sweep`).
pub fn round(
    targets: &[&Target],
    sizes: &[i64],
    quick: bool,
    round: usize,
    report: &mut Report,
) -> Res<()> {
    let targets: Vec<&Target> = targets.iter().copied().filter(|t| t.sweep).collect();
    for &rows in sizes {
        let scale = scale(rows, quick);
        let mut live = Vec::new();
        for &t in &targets {
            let db = t.fresh_db(&format!("sweep-{rows}-{round}"));
            let conn = t.connect(&t.uri(&db))?;
            workloads::schema(&conn).map_err(|e| format!("{}: sweep schema: {e}", t.name))?;
            live.push((t, conn, db));
        }
        for (k, (name, step)) in STEPS.iter().enumerate() {
            // Lookups and scans leave the database as it was: the fastest
            // of a few, as in the main rounds.
            let repeats = if READS.contains(name) {
                READ_REPEATS
            } else {
                1
            };
            let mut best: Vec<Option<Measure>> = vec![None; live.len()];
            for rep in 0..repeats {
                let seed = format!("sweep {rows} round {round} step {k} rep {rep}");
                for i in shuffled(live.len(), &seed) {
                    let (t, conn, _) = &mut live[i];
                    if *name == "small_txns" && t.family == Family::Disk {
                        // Bound by fsync, whatever the size: the main tables
                        // measure it.
                        continue;
                    }
                    let m = step(conn, &scale)
                        .map_err(|e| format!("{}: sweep {name} at {rows} rows: {e}", t.name))?;
                    if best[i].is_none_or(|b| time_of(&m) < time_of(&b)) {
                        best[i] = Some(m);
                    }
                }
            }
            for ((t, _, _), m) in live.iter().zip(best) {
                if let Some(m) = m {
                    report.add(Sample::sized(t, name, rows, round, m));
                }
            }
        }
        for (t, conn, db) in live {
            drop(conn);
            t.discard(&db);
        }
    }
    Ok(())
}
