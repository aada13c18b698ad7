//! The project's performance targets, as figures of a [`Report`] with a
//! bound each: issue #25's table, then the standing targets of earlier
//! rounds. Each verdict comes from the figure's interval
//! ([`Verdict::of`]): a figure whose interval straddles its bound is "not
//! resolved", never "met".

use super::Report;
use crate::stats::{Estimate, Goal, Verdict};

/// How a target's figure is computed.
#[derive(Clone, Copy, Debug)]
pub enum Figure {
    /// Cost of `target` relative to `other` on `workload`.
    Cost {
        workload: &'static str,
        target: &'static str,
        other: &'static str,
    },
    /// `target`'s throughput on `workload` over its throughput on `over`.
    Within {
        target: &'static str,
        workload: &'static str,
        over: &'static str,
    },
    /// Rust allocations per page I/O of `target`.
    Allocations { target: &'static str },
}

/// One target.
#[derive(Clone, Debug)]
pub struct Check {
    /// What it says, for the table.
    pub what: String,
    /// The figure.
    pub figure: Figure,
    /// The bound.
    pub goal: Goal,
}

impl Check {
    fn new(what: impl Into<String>, figure: Figure, goal: Goal) -> Check {
        Check {
            what: what.into(),
            figure,
            goal,
        }
    }

    /// The figure's estimate in `report`, if both sides were measured.
    pub fn estimate(&self, report: &Report) -> Option<Estimate> {
        match self.figure {
            Figure::Cost {
                workload,
                target,
                other,
            } => report.relative(workload, None, target, other),
            Figure::Within {
                target,
                workload,
                over,
            } => report.within(target, workload, over),
            Figure::Allocations { target } => report.allocations_per_page_io(target),
        }
    }

    /// The verdict in `report`.
    pub fn verdict(&self, report: &Report) -> Verdict {
        Verdict::of(self.estimate(report).as_ref(), self.goal)
    }
}

/// The single-connection workloads memdb must run at SQLite's memdb speed.
const MEMDB_WORKLOADS: [&str; 10] = [
    "bulk_insert",
    "small_txns",
    "point_rowid",
    "point_index",
    "range_scan",
    "update",
    "order_by_spill",
    "join",
    "delete",
    "mixed",
];

/// Stacks whose page I/O must not allocate (`, mmap`: with memory-mapped
/// reads, pages lent counting as page I/O).
pub const NO_ALLOC_STACKS: [&str; 6] = [
    "memdb",
    "cksm(memdb)",
    "crypto(memdb)",
    "native",
    "memdb, mmap",
    "native, mmap",
];

/// Issue #25's table: per-workload parity for memdb, the layers' overhead,
/// reader scaling, allocations.
pub fn issue_25() -> Vec<Check> {
    let mut v = Vec::new();
    for w in MEMDB_WORKLOADS {
        v.push(Check::new(
            format!("memdb vs sqlite-memdb, {w}"),
            Figure::Cost {
                workload: w,
                target: "memdb",
                other: "sqlite-memdb",
            },
            Goal::AtMost(1.05),
        ));
    }
    v.push(Check::new(
        "cksm(memdb) vs memdb, mixed",
        Figure::Cost {
            workload: "mixed",
            target: "cksm(memdb)",
            other: "memdb",
        },
        Goal::AtMost(1.05),
    ));
    v.push(Check::new(
        "cksm(memdb) vs memdb, small_txns",
        Figure::Cost {
            workload: "small_txns",
            target: "cksm(memdb)",
            other: "memdb",
        },
        Goal::AtMost(1.10),
    ));
    v.push(Check::new(
        "crypto(memdb), default cipher, vs memdb, mixed",
        Figure::Cost {
            workload: "mixed",
            target: "crypto(memdb)",
            other: "memdb",
        },
        Goal::AtMost(1.40),
    ));
    v.push(Check::new(
        "crypto(memdb) vs memdb, small_txns",
        Figure::Cost {
            workload: "small_txns",
            target: "crypto(memdb)",
            other: "memdb",
        },
        Goal::AtMost(2.5),
    ));
    // Memory-mapped reads: the backends that lend pages against SQLite's
    // own VFSes with the same mmap_size (SQLite's memdb lends none: its
    // resizable databases are never mapped).
    v.push(Check::new(
        "memdb vs sqlite-memdb, read_mix_mmap",
        Figure::Cost {
            workload: "read_mix_mmap",
            target: "memdb",
            other: "sqlite-memdb",
        },
        Goal::AtMost(1.05),
    ));
    v.push(Check::new(
        "memdb vs sqlite-memdb, read_mix_small_cache_mmap",
        Figure::Cost {
            workload: "read_mix_small_cache_mmap",
            target: "memdb",
            other: "sqlite-memdb",
        },
        Goal::AtMost(1.05),
    ));
    v.push(Check::new(
        "native vs sqlite-unix, read_mix_mmap",
        Figure::Cost {
            workload: "read_mix_mmap",
            target: "native",
            other: "sqlite-unix",
        },
        Goal::AtMost(1.10),
    ));
    v.push(Check::new(
        "WAL readers on memdb, 2 vs 1 (with a writer)",
        Figure::Within {
            target: "memdb",
            workload: "readers_2_with_writer",
            over: "readers_1_with_writer",
        },
        Goal::AtLeast(1.85),
    ));
    for t in NO_ALLOC_STACKS {
        v.push(Check::new(
            format!("Rust allocations per page I/O, {t}"),
            Figure::Allocations { target: t },
            Goal::AtMost(0.0),
        ));
    }
    v
}

/// Targets of earlier rounds that still hold.
pub fn standing(quick: bool) -> Vec<Check> {
    let cost = |what: &str, workload, target, other, limit| {
        Check::new(
            what,
            Figure::Cost {
                workload,
                target,
                other,
            },
            Goal::AtMost(limit),
        )
    };
    vec![
        cost(
            "wrap(memdb)+stats vs memdb, mixed",
            "mixed",
            "wrap(memdb)+stats",
            "memdb",
            1.05,
        ),
        cost(
            "wrap(native)+stats vs native, mixed",
            "mixed",
            "wrap(native)+stats",
            "native",
            1.05,
        ),
        cost(
            "native vs sqlite-unix, mixed",
            "mixed",
            "native",
            "sqlite-unix",
            1.10,
        ),
        cost(
            "crypto-ring(memdb) vs memdb, mixed",
            "mixed",
            "crypto-ring(memdb)",
            "memdb",
            1.40,
        ),
        cost(
            "crypto(memdb) vs sqlcipher(memdb), mixed",
            "mixed",
            "crypto(memdb)",
            "sqlcipher(memdb)",
            1.0,
        ),
        cost(
            "crypto-ring(memdb) vs sqlcipher(memdb), mixed",
            "mixed",
            "crypto-ring(memdb)",
            "sqlcipher(memdb)",
            1.0,
        ),
        cost(
            "crypto(cksm(native)) vs sqlcipher(unix), mixed",
            "mixed",
            "crypto(cksm(native))",
            "sqlcipher(unix)",
            1.0,
        ),
        Check::new(
            "mvcc readers with a writer vs without (2 readers)",
            Figure::Within {
                target: "mvcc",
                workload: "readers_2_with_writer",
                over: "readers_2_no_writer",
            },
            Goal::AtLeast(0.90),
        ),
        Check::new(
            if quick {
                "mvcc snapshot cost, 10 MB vs 1 MB"
            } else {
                "mvcc snapshot cost, 100 MB vs 1 MB"
            },
            Figure::Within {
                target: "mvcc",
                workload: "mvcc_snapshot_1mb",
                over: if quick {
                    "mvcc_snapshot_10mb"
                } else {
                    "mvcc_snapshot_100mb"
                },
            },
            Goal::AtMost(2.0),
        ),
    ]
}

/// The bench's own noise: `wrap(memdb)` without a recorder registers memdb
/// itself, so its cost relative to memdb is 1 and its interval should
/// contain 1.
pub fn calibration() -> Check {
    Check::new(
        "wrap(memdb) vs memdb, mixed (same code: the interval should contain 1.00)",
        Figure::Cost {
            workload: "mixed",
            target: "wrap(memdb)",
            other: "memdb",
        },
        Goal::AtMost(f64::INFINITY),
    )
}
