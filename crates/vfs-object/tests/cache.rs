//! The page cache: its memory budget holds, and its directory serves a
//! later process without GETs, never across two lives of a database name.

mod support;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use support::{Node, count, faulty_memory, integrity, opts};
use vfs_object::ObjectOptions;

const HOUR: Duration = Duration::from_secs(3600);

/// About 4 MB in one commit (too large to be fetched whole: its pages are
/// read one range GET each).
fn fill(n: &Node, db: &str, tag: &str) {
    n.open(db)
        .execute_batch(&format!(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, b TEXT);
             BEGIN;
             WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM k WHERE i<1000)
             INSERT INTO t SELECT i, '{tag}' || printf('%.3000c', 'x') FROM k;
             COMMIT;"
        ))
        .unwrap();
}

#[test]
fn the_memory_budget_holds_and_evicted_pages_come_back() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    fill(&Node::new(store.clone(), opts(HOUR)), "budget.db", "a");
    let budget = 256 << 10;
    let r = Node::new(
        store,
        ObjectOptions {
            cache_bytes: budget,
            ..opts(HOUR)
        },
    );
    let c = r.open("budget.db");
    c.execute_batch("PRAGMA cache_size = 5").unwrap();
    for _ in 0..3 {
        assert_eq!(count(&c, "SELECT sum(length(b)) FROM t"), 1000 * 3001);
        assert!(
            r.vfs.cached_bytes() <= budget + 4096,
            "{} bytes cached",
            r.vfs.cached_bytes()
        );
    }
    let s = r.vfs.request_stats();
    assert!(s.gets > 3 * 750, "evicted pages are fetched again: {s}");
    integrity(&c);
}

#[test]
fn a_cache_directory_serves_the_next_process_without_page_gets() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ctl) = faulty_memory();
    let writer = Node::new(store.clone(), opts(HOUR));
    fill(&writer, "dir.db", "first");
    let with_dir = || ObjectOptions {
        cache_dir: Some(dir.path().to_owned()),
        cache_bytes: 0,
        // Page by page, so the first process's GETs count the pages.
        prefetch: false,
        ..opts(HOUR)
    };
    let sum = |n: &Node| count(&n.open("dir.db"), "SELECT sum(length(b)) FROM t");
    let a = Node::new(store.clone(), with_dir());
    assert_eq!(sum(&a), 1000 * 3005);
    let cold = a.vfs.request_stats();
    let before = ctl.counts();
    let b = Node::new(store.clone(), with_dir());
    assert_eq!(sum(&b), 1000 * 3005);
    let warm = ctl.counts().since(&before);
    // The log and the commits' indexes are read again; no page is.
    assert_eq!(warm.lists, 1);
    assert!(
        warm.gets <= 3 && cold.gets > 700,
        "first process {cold}, second {warm:?}"
    );
    // The name gets a new database: the directory must not serve the old
    // one's pages (the key carries the transaction id).
    writer.vfs.delete_database("dir.db").unwrap();
    drop(writer);
    let writer = Node::new(store.clone(), opts(HOUR));
    fill(&writer, "dir.db", "second");
    let c = Node::new(store, with_dir());
    let conn = c.open("dir.db");
    assert_eq!(count(&conn, "SELECT sum(length(b)) FROM t"), 1000 * 3006);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM t WHERE b LIKE 'first%'"),
        0
    );
    integrity(&conn);
}
