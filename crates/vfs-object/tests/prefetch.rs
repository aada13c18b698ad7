//! Read-ahead (`ObjectOptions::prefetch`, URI `prefetch=0|1`): what a cold
//! point lookup and a cold full scan of a 100,000-row table cost in
//! requests with and without it (counted by the fault layer), and that a
//! failing read-ahead never fails a read.

mod support;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use support::{Node, count, integrity, opts};
use vfs_object::ObjectOptions;
use vfs_object::fault::{Counts, FaultController, FaultStore, RequestKind, Rule};

const ROWS: i64 = 100_000;
const DB: &str = "big.db";

/// A store holding `DB`: a 100,000-row table with an index, in 3 commits.
fn big_store() -> (Arc<dyn ObjectStore>, FaultController) {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let ctl = faults.controller();
    let store: Arc<dyn ObjectStore> = Arc::new(faults);
    let w = Node::new(store.clone(), opts(Duration::from_secs(3600)));
    let c = w.open(DB);
    c.execute_batch(&format!(
        "CREATE TABLE t1(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);
         CREATE INDEX t1a ON t1(a);
         BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{ROWS})
         INSERT INTO t1 SELECT i, (i * 7919) % {ROWS}, printf('row %d %s', i, hex(randomblob(16))) FROM n;
         COMMIT;"
    ))
    .unwrap();
    (store, ctl)
}

/// A new "process" over `store`, with or without prefetch.
fn process(store: &Arc<dyn ObjectStore>, prefetch: bool) -> Node {
    Node::new(
        store.clone(),
        ObjectOptions {
            prefetch,
            ..opts(Duration::from_secs(3600))
        },
    )
}

/// Runs `f` and returns the requests it made.
fn requests<T>(ctl: &FaultController, f: impl FnOnce() -> T) -> (T, Counts) {
    let before = ctl.counts();
    let t = f();
    (t, ctl.counts().since(&before))
}

fn lookup(c: &rusqlite::Connection, id: i64) {
    let b: String = c
        .query_row("SELECT b FROM t1 WHERE id = ?1", [id], |r| r.get(0))
        .unwrap();
    assert!(b.starts_with(&format!("row {id} ")), "{b}");
}

#[test]
fn cold_point_lookups_and_a_cold_scan_with_and_without_prefetch() {
    let (store, ctl) = big_store();
    let mut gets = Vec::new();
    for prefetch in [false, true] {
        let p = process(&store, prefetch);
        let (c, open) = requests(&ctl, || p.open(DB));
        let (_, first) = requests(&ctl, || lookup(&c, 54_321));
        let (_, next) = requests(&ctl, || {
            for id in [7, 33_333, 99_999] {
                lookup(&c, id);
            }
        });
        let (_, by_index) = requests(&ctl, || {
            let id: i64 = c
                .query_row("SELECT id FROM t1 WHERE a = 12345", [], |r| r.get(0))
                .unwrap();
            assert_eq!((id * 7919) % ROWS, 12345);
        });
        eprintln!(
            "prefetch={}: open {} LIST + {} GET; first lookup {} GET; 3 more lookups {} GET; \
             one through the index {} GET",
            u8::from(prefetch),
            open.lists,
            open.gets,
            first.gets,
            next.gets,
            by_index.gets
        );
        assert_eq!(open.lists, 2, "the log and the snapshots");
        assert_eq!(open.puts + first.puts, 0);
        gets.push((open.gets + first.gets, next.gets, by_index.gets));

        // A cold full scan, in another new process.
        let s = process(&store, prefetch);
        let (cs, scan) = requests(&ctl, || s.open(DB));
        let (total, read) = requests(&ctl, || count(&cs, "SELECT sum(length(b)) FROM t1"));
        let scan = Counts {
            gets: scan.gets + read.gets,
            lists: scan.lists + read.lists,
            ..read
        };
        assert!(total > ROWS * 40);
        eprintln!(
            "prefetch={}: cold full scan, open included: {} LIST + {} GET ({} bytes)",
            u8::from(prefetch),
            scan.lists,
            scan.gets,
            s.vfs.request_stats().get_bytes
        );
        gets.push((scan.gets, 0, 0));
        integrity(&cs);
    }
    let [
        (cold_off, next_off, index_off),
        (scan_off, ..),
        (cold_on, next_on, index_on),
        (scan_on, ..),
    ] = gets[..]
    else {
        unreachable!()
    };
    // The b-tree's upper levels come in batches, so later lookups need
    // their leaf only: one GET each.
    assert_eq!(next_on, 3, "{gets:?}");
    assert!(next_off > next_on, "{gets:?}");
    assert!(index_on < index_off, "{gets:?}");
    // The first lookup, open included, pays for the batches: a few more
    // GETs, in as many round trips (the levels replace the descent).
    assert!(cold_on <= cold_off + 3, "{gets:?}");
    // A scan reads ahead in growing windows.
    assert!(scan_on * 10 < scan_off, "{gets:?}");
}

#[test]
fn a_failing_read_ahead_never_fails_a_read() {
    let (store, ctl) = big_store();
    let p = Node::new(
        store.clone(),
        ObjectOptions {
            retries: 0,
            ..opts(Duration::from_secs(3600))
        },
    );
    // Load the log first: from now on every GET of more than one page (the
    // read-ahead's coalesced ranges) fails; single pages still come.
    assert_eq!(p.vfs.head_lsn(DB).unwrap(), 3);
    ctl.add(
        Rule::on(&[RequestKind::Get])
            .ranges_longer_than(4096)
            .always()
            .fail(),
    );
    let c = p.open(DB);
    let (total, scan) = requests(&ctl, || count(&c, "SELECT sum(length(b)) FROM t1"));
    assert!(total > ROWS * 40);
    lookup(&c, 54_321);
    integrity(&c);
    // The failures cost requests (each page then came alone), not reads.
    assert!(scan.gets > 500, "{scan:?}");
    ctl.clear();

    // The same through a lost response, and with a cache too small for the
    // windows: still every row.
    let q = Node::new(
        store,
        ObjectOptions {
            retries: 0,
            cache_bytes: 64 << 10,
            ..opts(Duration::from_secs(3600))
        },
    );
    assert_eq!(q.vfs.head_lsn(DB).unwrap(), 3);
    ctl.add(
        Rule::on(&[RequestKind::Get])
            .ranges_longer_than(4096)
            .after(3)
            .times(5)
            .lose_response(),
    );
    let cq = q.open(DB);
    assert_eq!(count(&cq, "SELECT sum(length(b)) FROM t1"), total);
    assert_eq!(count(&cq, "SELECT count(*) FROM t1"), ROWS);
}

#[test]
fn prefetch_is_a_uri_parameter_and_a_bad_value_is_refused() {
    let (store, ctl) = big_store();
    let p = process(&store, true);
    let (c, off) = requests(&ctl, || p.open_with(DB, "&prefetch=0"));
    let (_, scan_off) = requests(&ctl, || count(&c, "SELECT sum(length(b)) FROM t1"));
    // Without prefetch the open reads the log (3 commits) and page 1.
    assert_eq!(off.gets, 3 + 1, "{off:?}");
    assert!(scan_off.gets > 1000, "{scan_off:?}");
    let q = process(&store, false);
    let cq = q.open_with(DB, "&prefetch=1");
    let (_, scan_on) = requests(&ctl, || count(&cq, "SELECT sum(length(b)) FROM t1"));
    assert!(scan_on.gets * 10 < scan_off.gets, "{scan_on:?}");
    let e = rusqlite::Connection::open(q.uri(DB, "&prefetch=yes")).unwrap_err();
    assert_eq!(support::code(&e), vfs_core::codes::SQLITE_CANTOPEN, "{e}");
}

#[test]
fn a_damaged_page_in_a_read_ahead_range_is_an_error_never_data() {
    let (store, _ctl) = big_store();
    // Damage pages of the largest commit object (the table's leaves).
    let (key, mut bytes) = support::objects(&store)
        .into_iter()
        .max_by_key(|(_, b)| b.len())
        .unwrap();
    // Every fifth page of the second half, in the middle of the page
    // (cell content, where nothing but the CRC could notice).
    let mut at = bytes.len() / 2;
    while at < bytes.len() - 4096 {
        bytes[at] ^= 0x40;
        at += 5 * 4096;
    }
    support::put_object(&store, &key, bytes);
    for prefetch in [false, true] {
        let p = process(&store, prefetch);
        let c = p.open(DB);
        // A table scan (read ahead when prefetch is on) meets a damaged
        // page: the read fails with SQLITE_IOERR_DATA, never returns it.
        let e = c
            .query_row("SELECT sum(length(b)) FROM t1", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert_eq!(
            support::code(&e),
            vfs_core::codes::SQLITE_IOERR_DATA,
            "prefetch={prefetch}: {e}"
        );
    }
}
