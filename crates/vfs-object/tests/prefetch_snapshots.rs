//! Read-ahead over a compacted database, whose pages live in one snapshot
//! object: the cold open's b-tree walk and a scan's windows coalesce
//! ranges of the snapshot as they do of commit objects (counted in GETs),
//! a damaged snapshot page inside a read-ahead range is an error, and
//! pages read ahead land in the cache directory under the snapshot's name.

mod support;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use support::{Node, count, integrity, opts};
use vfs_object::ObjectOptions;
use vfs_object::fault::{Counts, FaultController, FaultStore};

const ROWS: i64 = 100_000;
const DB: &str = "snap.db";
const HOUR: Duration = Duration::from_secs(3600);

/// A 100,000-row table with an index, in 3 commits, compacted: a new
/// process reads every page from `snap/3`.
fn compacted_store() -> (Arc<dyn ObjectStore>, FaultController) {
    let faults = FaultStore::new(Arc::new(object_store::memory::InMemory::new()));
    let ctl = faults.controller();
    let store: Arc<dyn ObjectStore> = Arc::new(faults);
    let w = Node::new(store.clone(), opts(HOUR));
    w.open(DB)
        .execute_batch(&format!(
            "CREATE TABLE t1(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);
             CREATE INDEX t1a ON t1(a);
             BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{ROWS})
             INSERT INTO t1 SELECT i, (i * 7919) % {ROWS}, printf('row %d %s', i, hex(randomblob(16))) FROM n;
             COMMIT;"
        ))
        .unwrap();
    assert_eq!(w.vfs.compact(DB).unwrap().snapshot_lsn, 3);
    (store, ctl)
}

fn process(
    store: &Arc<dyn ObjectStore>,
    prefetch: bool,
    cache_dir: Option<&std::path::Path>,
) -> Node {
    Node::new(
        store.clone(),
        ObjectOptions {
            prefetch,
            cache_dir: cache_dir.map(Into::into),
            ..opts(HOUR)
        },
    )
}

/// A cold open and a full scan of `t1` in a new process: the requests.
fn cold_scan(store: &Arc<dyn ObjectStore>, ctl: &FaultController, p: &Node) -> Counts {
    let _ = store;
    let before = ctl.counts();
    let c = p.open(DB);
    assert!(count(&c, "SELECT sum(length(b)) FROM t1") > ROWS * 40);
    let cost = ctl.counts().since(&before);
    integrity(&c);
    cost
}

#[test]
fn a_scan_of_a_compacted_table_reads_the_snapshot_ahead() {
    let (store, ctl) = compacted_store();
    let off = cold_scan(&store, &ctl, &process(&store, false, None));
    let on = cold_scan(&store, &ctl, &process(&store, true, None));
    eprintln!(
        "RESULT cold full scan of a compacted 100,000-row table, open included: \
         prefetch=0 {} LIST + {} GET; prefetch=1 {} LIST + {} GET",
        off.lists, off.gets, on.lists, on.gets
    );
    assert!(off.gets > 1000, "{off:?}");
    assert!(on.gets * 20 < off.gets, "{on:?} vs {off:?}");
    // A point lookup after the cold open's walk needs its leaf only.
    let p = process(&store, true, None);
    let c = p.open(DB);
    let before = ctl.counts();
    let b: String = c
        .query_row("SELECT b FROM t1 WHERE id = 54321", [], |r| r.get(0))
        .unwrap();
    assert!(b.starts_with("row 54321 "));
    assert_eq!(ctl.counts().since(&before).gets, 1);
}

#[test]
fn snapshot_pages_read_ahead_fill_the_cache_directory() {
    let (store, ctl) = compacted_store();
    let dir = tempfile::tempdir().unwrap();
    cold_scan(&store, &ctl, &process(&store, true, Some(dir.path())));
    // The next process finds every page in the directory: the open lists
    // and reads the snapshot's index, and no page is fetched.
    let again = cold_scan(&store, &ctl, &process(&store, true, Some(dir.path())));
    assert!(again.gets <= 2, "{again:?}");
}

#[test]
fn a_damaged_snapshot_page_in_a_read_ahead_range_is_an_error_never_data() {
    let (store, _ctl) = compacted_store();
    let (key, mut bytes) = support::objects(&store)
        .into_iter()
        .find(|(k, _)| k.contains("/snap/"))
        .unwrap();
    // Every fifth page of the second half, in the middle of the page.
    let mut at = bytes.len() / 2;
    while at < bytes.len() - 4096 {
        bytes[at] ^= 0x40;
        at += 5 * 4096;
    }
    support::put_object(&store, &key, bytes);
    for prefetch in [false, true] {
        let p = process(&store, prefetch, None);
        let c = p.open(DB);
        let e = c
            .query_row("SELECT sum(length(b)) FROM t1", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert_eq!(
            support::code(&e),
            vfs_core::codes::SQLITE_IOERR_DATA,
            "prefetch={prefetch}: {e}"
        );
        let msg = vfs_core::last_error()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(msg.contains("/snap/"), "{msg}");
    }
}
