//! What a cold point lookup costs: a process with an empty cache opens a
//! database with a 100,000-row table and reads one row. The requests are
//! counted by the fault layer (and by the VFS itself) and printed. These
//! are the figures without read-ahead (`prefetch: false`); with it, see
//! `tests/prefetch.rs`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::memory::InMemory;
use support::{Node, count, opts};
use vfs_object::ObjectOptions;
use vfs_object::fault::FaultStore;

const ROWS: i64 = 100_000;

#[test]
fn a_cold_point_lookup_in_a_100k_row_table_costs_a_handful_of_requests() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let ctl = faults.controller();
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(faults);
    {
        let w = Node::new(store.clone(), opts(Duration::from_secs(3600)));
        let c = w.open("big.db");
        c.execute_batch(
            "CREATE TABLE t1(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);
             CREATE INDEX t1a ON t1(a);",
        )
        .unwrap();
        c.execute_batch(&format!(
            "BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{ROWS})
             INSERT INTO t1 SELECT i, (i * 7919) % {ROWS}, printf('row %d %s', i, hex(randomblob(16))) FROM n;
             COMMIT;"
        ))
        .unwrap();
        assert_eq!(count(&c, "SELECT count(*) FROM t1"), ROWS);
        let pages = count(&c, "PRAGMA page_count");
        eprintln!("database: {ROWS} rows, {pages} pages of 4 KiB, 3 commits");
    }
    // A new process: empty cache. 20 ms per request, as against S3.
    ctl.set_latency(Duration::from_millis(20));
    let r = Node::new(
        store.clone(),
        ObjectOptions {
            prefetch: false,
            ..opts(Duration::from_secs(3600))
        },
    );
    let before = ctl.counts();
    let started = Instant::now();
    let c = r.open("big.db");
    let open = ctl.counts().since(&before);
    let b: String = c
        .query_row("SELECT b FROM t1 WHERE id = 54321", [], |r| r.get(0))
        .unwrap();
    assert!(b.starts_with("row 54321 "));
    let by_rowid = ctl.counts().since(&before);
    let elapsed = started.elapsed();
    let mid = ctl.counts();
    let id: i64 = c
        .query_row("SELECT id FROM t1 WHERE a = 12345", [], |r| r.get(0))
        .unwrap();
    assert_eq!((id * 7919) % ROWS, 12345);
    let by_index = ctl.counts().since(&mid);
    let warm_start = ctl.counts();
    let b2: String = c
        .query_row("SELECT b FROM t1 WHERE id = 54321", [], |r| r.get(0))
        .unwrap();
    assert_eq!(b, b2);
    let warm = ctl.counts().since(&warm_start);
    eprintln!(
        "cold open: {} LIST + {} GET; cold lookup by rowid, open included: {} LIST + {} GET in {:?} \
         (20 ms per request); then a lookup through the index: {} GET; warm lookup: {} requests",
        open.lists,
        open.gets,
        by_rowid.lists,
        by_rowid.gets,
        elapsed,
        by_index.gets,
        warm.total()
    );
    // The open lists the log once, reads the three commits' indexes (the
    // two small commits whole) and page 1 (SQLite reads the header); the
    // lookup reads the b-tree path: root, interior page, leaf.
    assert_eq!(open.lists, 1);
    assert_eq!(open.gets, 3 + 1);
    assert!(by_rowid.gets <= 4 + 3, "{by_rowid:?}");
    assert_eq!(by_rowid.puts + by_rowid.deletes, 0);
    assert!(by_index.gets <= 4, "{by_index:?}");
    assert_eq!(warm.total(), 0);
    assert_eq!(
        r.vfs.request_stats().requests(),
        ctl.counts().since(&before).total()
    );
}

#[test]
fn a_cold_open_of_a_long_log_reads_each_commit_once() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let ctl = faults.controller();
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(faults);
    let w = Node::new(store.clone(), opts(Duration::from_secs(3600)));
    let c = w.open("long.db");
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    for i in 0..300 {
        c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
    }
    let before = ctl.counts();
    let r = Node::new(
        store,
        ObjectOptions {
            prefetch: false,
            ..opts(Duration::from_secs(3600))
        },
    );
    let cr = r.open("long.db");
    assert_eq!(count(&cr, "SELECT sum(x) FROM t"), 299 * 300 / 2);
    let d = ctl.counts().since(&before);
    eprintln!("cold open of 301 commits and a full scan: {d:?}");
    assert_eq!(d.lists, 1);
    // One GET per commit's index, then the pages of the table (a few).
    assert!(d.gets >= 301 && d.gets <= 301 + 10, "{d:?}");
}
