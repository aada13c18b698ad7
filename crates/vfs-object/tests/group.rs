//! Group commit (`sync=async`): COMMIT returns once the transaction is in
//! the local queue; an uploader publishes the queue in batches; the queue
//! survives a crash at any point, and is uploaded exactly once; damage and
//! conflicts stop it with errors naming it, never dropping a transaction.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use rusqlite::Connection;
use support::group::{async_params, flush, flush_settled, memory, node, node_polling, said};
use support::{Node, code, count, integrity, objects, opts};
use vfs_core::codes::{SQLITE_CANTOPEN, SQLITE_IOERR_WRITE};
use vfs_object::fault::{FaultStore, RequestKind, Rule};

/// The queue files in `dir` (not its lock file).
fn queued(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != "queue.lock")
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn log_objects(store: &Arc<dyn ObjectStore>) -> Vec<(String, Vec<u8>)> {
    objects(store)
        .into_iter()
        .filter(|(k, _)| k.contains("/log/"))
        .collect()
}

fn lsn(c: &Connection) -> u64 {
    let s: String = c.query_row("PRAGMA object_lsn", [], |r| r.get(0)).unwrap();
    s.parse().unwrap()
}

#[test]
fn commit_returns_once_queued_and_flush_publishes() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let (a, actl) = node(&inner);
    let c = a.open_with("g.db", &async_params(dir.path()));
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    assert_eq!(flush(&c).unwrap(), 1);
    // The store refuses every PUT: commits still return.
    actl.add(
        Rule::on(&[RequestKind::Put])
            .keys_containing("/log/")
            .always()
            .fail(),
    );
    for i in 0..3 {
        c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
    }
    assert_eq!(count(&c, "SELECT count(*) FROM t"), 3);
    // Another connection of the process reads the queue at once.
    let c2 = a.open_with("g.db", &async_params(dir.path()));
    assert_eq!(count(&c2, "SELECT count(*) FROM t"), 3);
    assert!(!queued(dir.path()).is_empty(), "nothing queued on disk");
    // Another process sees only what is in the store.
    let (b, _) = node(&inner);
    let other = b.open("g.db");
    assert_eq!(count(&other, "SELECT count(*) FROM t"), 0);
    assert_eq!(log_objects(&inner).len(), 1);
    let e = flush(&c).unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_WRITE, "{e}");
    assert!(said().contains("not in the store yet"), "{}", said());
    actl.clear();
    let reached = flush_settled(&c).unwrap();
    assert!(reached >= 2, "flush answered LSN {reached}");
    assert!(queued(dir.path()).is_empty(), "{:?}", queued(dir.path()));
    assert_eq!(count(&other, "SELECT count(*) FROM t"), 3);
    assert_eq!(lsn(&other), reached);
    integrity(&other);
}

#[test]
fn a_slow_store_batches_many_commits_into_few_puts() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let (a, actl) = node(&inner);
    // Without the writer lease, whose PUTs would be counted too.
    let c = a.open_with("b.db", &format!("{}&lease=0", async_params(dir.path())));
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    flush(&c).unwrap();
    let before = actl.counts();
    actl.add(
        Rule::on(&[RequestKind::Put])
            .always()
            .delay(Duration::from_millis(40)),
    );
    const N: i64 = 30;
    for i in 0..N {
        c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
    }
    let reached = flush(&c).unwrap();
    let puts = actl.counts().since(&before).puts;
    eprintln!("{N} async commits, 40 ms per PUT: {puts} PUTs");
    assert!(puts < N as u64 / 2, "{puts} PUTs for {N} commits");
    assert_eq!(reached, 1 + puts, "one LSN per batch");
    let (b, _) = node(&inner);
    let fresh = b.open("b.db");
    assert_eq!(count(&fresh, "SELECT count(*) FROM t"), N);
    assert_eq!(count(&fresh, "SELECT sum(x) FROM t"), N * (N - 1) / 2);
    integrity(&fresh);
}

#[test]
fn past_queue_max_commit_waits_for_the_upload() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let (a, actl) = node(&inner);
    let c = a.open_with("m.db", &format!("{}&queue_max=1", async_params(dir.path())));
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    actl.add(
        Rule::on(&[RequestKind::Put])
            .always()
            .delay(Duration::from_millis(20)),
    );
    for i in 0..5 {
        c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        // Each commit waited until the queue was empty before adding.
        assert!(queued(dir.path()).len() <= 1, "{:?}", queued(dir.path()));
    }
    flush(&c).unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM t"), 5);
}

#[test]
fn async_needs_a_queue_and_parameters_are_checked() {
    let inner = memory();
    let (a, _) = node(&inner);
    for params in [
        "&sync=async",
        "&sync=maybe",
        "&sync=async&queue=",
        "&sync=async&queue=/tmp/x&queue_max=lots",
    ] {
        let e = Connection::open(a.uri("p.db", params)).unwrap_err();
        assert_eq!(code(&e), SQLITE_CANTOPEN, "{params}: {e}");
        let name = params
            .rsplit('&')
            .next()
            .unwrap()
            .split('=')
            .next()
            .unwrap();
        let want = if params == "&sync=async" {
            "queue="
        } else {
            name
        };
        assert!(said().contains(want), "{params}: {}", said());
    }
}

/// Queues three transactions in process A (whose store fails from request
/// `k` of the upload on, after applying it when `lose`), drops A, restarts
/// on the same queue: every row exactly once, no batch published twice.
fn crash_case(k: u64, lose: bool, tmp_left: bool) {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let qdir = dir.path().join("q");
    let params = async_params(&qdir);
    {
        // No look for other writers' commits: the store's requests are the
        // upload's.
        let (a, actl) = node_polling(&inner, Duration::from_secs(3600));
        let c = a.open_with("c.db", &params);
        c.execute_batch("CREATE TABLE t(x UNIQUE)").unwrap();
        flush(&c).unwrap();
        // The upload's requests (the writer lease's are not counted).
        if lose {
            actl.add(
                Rule::any()
                    .keys_containing("/log/")
                    .after(k)
                    .times(1)
                    .lose_response(),
            );
        }
        actl.add(
            Rule::any()
                .keys_containing("/log/")
                .after(k)
                .always()
                .fail(),
        );
        for i in 0..3 {
            c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        let _ = flush(&c);
        // The crash: A is gone, its store unreachable for good.
    }
    if tmp_left {
        // A crash between writing a queue file and renaming it.
        std::fs::write(qdir.join("00000000000000000099.tmp"), b"half a file").unwrap();
    }
    let (b, _) = node(&inner);
    let c = b.open_with("c.db", &params);
    assert_eq!(count(&c, "SELECT count(*) FROM t"), 3, "k={k} lose={lose}");
    flush(&c).unwrap();
    c.execute("INSERT INTO t VALUES (3)", []).unwrap();
    flush(&c).unwrap();
    assert!(queued(&qdir).is_empty(), "{:?}", queued(&qdir));
    // No batch was published twice (a batch's id is in its header).
    let mut ids: Vec<Vec<u8>> = log_objects(&inner)
        .iter()
        .map(|(_, b)| b[32..48].to_vec())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "k={k} lose={lose}: a batch landed twice");
    let (fresh, _) = node(&inner);
    let r = fresh.open("c.db");
    assert_eq!(count(&r, "SELECT count(*) FROM t"), 4, "k={k} lose={lose}");
    assert_eq!(count(&r, "SELECT sum(x) FROM t"), 6);
    integrity(&r);
}

#[test]
fn a_crash_at_any_point_of_the_upload_loses_and_doubles_nothing() {
    for k in 0..6 {
        crash_case(k, false, k == 0);
        crash_case(k, true, false);
    }
}

#[test]
fn a_damaged_or_truncated_queue_file_is_an_error_naming_it() {
    for damage in ["flip", "truncate"] {
        let inner = memory();
        let dir = tempfile::tempdir().unwrap();
        let params = async_params(dir.path());
        {
            let (a, actl) = node(&inner);
            let c = a.open_with("d.db", &params);
            c.execute_batch("CREATE TABLE t(x)").unwrap();
            flush(&c).unwrap();
            actl.add(
                Rule::on(&[RequestKind::Put])
                    .keys_containing("/log/")
                    .always()
                    .fail(),
            );
            c.execute("INSERT INTO t VALUES (1)", []).unwrap();
            c.execute("INSERT INTO t VALUES (2)", []).unwrap();
        }
        let files = queued(dir.path());
        assert_eq!(files.len(), 2, "{files:?}");
        let victim = dir.path().join(&files[1]);
        let mut bytes = std::fs::read(&victim).unwrap();
        if damage == "flip" {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 1;
        } else {
            bytes.truncate(bytes.len() - 7);
        }
        std::fs::write(&victim, bytes).unwrap();
        let (b, _) = node(&inner);
        let e = Connection::open(b.uri("d.db", &params)).unwrap_err();
        assert_eq!(code(&e), SQLITE_CANTOPEN, "{e}");
        assert!(said().contains(&files[1]), "{damage}: {}", said());
        assert_eq!(log_objects(&inner).len(), 1, "published from a bad queue");
        assert_eq!(queued(dir.path()), files, "the queue was changed");
    }
}

#[test]
fn a_restart_serves_the_queue_at_once_and_uploads_it() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let params = async_params(dir.path());
    {
        let (a, actl) = node(&inner);
        let c = a.open_with("r.db", &params);
        c.execute_batch("CREATE TABLE t(x)").unwrap();
        flush(&c).unwrap();
        actl.add(
            Rule::on(&[RequestKind::Put])
                .keys_containing("/log/")
                .always()
                .fail(),
        );
        for i in 0..4 {
            c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
    }
    let (b, bctl) = node(&inner);
    bctl.add(
        Rule::on(&[RequestKind::Put])
            .keys_containing("/log/")
            .always()
            .fail(),
    );
    let c = b.open_with("r.db", &params);
    // Nothing uploaded yet, every row readable from the queue.
    assert_eq!(count(&c, "SELECT count(*) FROM t"), 4);
    assert_eq!(log_objects(&inner).len(), 1);
    c.execute("INSERT INTO t VALUES (4)", []).unwrap();
    bctl.clear();
    flush_settled(&c).unwrap();
    let (fresh, _) = node(&inner);
    let r = fresh.open("r.db");
    assert_eq!(count(&r, "SELECT count(*) FROM t"), 5);
    integrity(&r);
}

#[test]
fn another_writer_publishing_stops_the_queue_and_keeps_it() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let params = async_params(dir.path());
    let (a, actl) = node(&inner);
    let c = a.open_with("x.db", &params);
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    flush(&c).unwrap();
    actl.add(
        Rule::on(&[RequestKind::Put])
            .keys_containing("/log/")
            .always()
            .fail(),
    );
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    // Another process commits on LSN 1 meanwhile: it takes LSN 2.
    let (b, _) = node(&inner);
    let other = b.open("x.db");
    other.execute("INSERT INTO t VALUES (100)", []).unwrap();
    actl.clear();
    let e = flush_settled(&c).unwrap_err();
    let dir_name = dir.path().display().to_string();
    assert_eq!(code(&e), SQLITE_IOERR_WRITE, "{e}");
    assert!(
        said().contains(&dir_name) && said().contains("LSN 2"),
        "{}",
        said()
    );
    c.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert!(said().contains(&dir_name), "{}", said());
    flush(&c).unwrap_err();
    assert!(said().contains(&dir_name), "{}", said());
    assert_eq!(queued(dir.path()).len(), 1, "the queue was dropped");
    // The acknowledged row is still what this process reads.
    assert_eq!(count(&c, "SELECT count(*) FROM t WHERE x = 1"), 1);
    // A restart on the same queue meets the same conflict.
    drop(c);
    drop(a);
    let (a2, _) = node(&inner);
    let c = a2.open_with("x.db", &params);
    c.execute("INSERT INTO t VALUES (3)", []).unwrap_err();
    assert!(said().contains("LSN 2"), "{}", said());
    // It reads the store's state then: the queue stays in its files.
    assert_eq!(count(&c, "SELECT count(*) FROM t WHERE x = 100"), 1);
    integrity(&c);
    assert_eq!(queued(dir.path()).len(), 1);
}

#[test]
fn queued_pages_are_read_from_memory_whatever_the_cache_budget() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let f = FaultStore::new(Arc::clone(&inner));
    let ctl = f.controller();
    let a = Node::new(
        Arc::new(f),
        vfs_object::ObjectOptions {
            cache_bytes: 0,
            ..opts(Duration::ZERO)
        },
    );
    let c = a.open_with("e.db", &async_params(dir.path()));
    c.execute_batch("CREATE TABLE t(x, pad)").unwrap();
    flush(&c).unwrap();
    // No object will hold these pages for now.
    ctl.add(
        Rule::on(&[RequestKind::Put])
            .keys_containing("/log/")
            .always()
            .fail(),
    );
    for i in 0..20 {
        c.execute(
            "WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 100) \
             INSERT INTO t SELECT ?1 * 100 + v, randomblob(300) FROM n",
            [i],
        )
        .unwrap();
    }
    let before = ctl.counts();
    // A new connection (an empty SQLite cache) reads every page.
    let r = a.open_with("e.db", &async_params(dir.path()));
    r.execute_batch("PRAGMA cache_size = 2").unwrap();
    assert_eq!(count(&r, "SELECT count(*) FROM t"), 2000);
    integrity(&r);
    assert_eq!(ctl.counts().since(&before).gets, 0, "queued pages fetched");
}

#[test]
fn a_lease_is_held_while_the_queue_holds_transactions() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let params = format!("{}&lease=30000", async_params(dir.path()));
    let (a, actl) = node(&inner);
    let c = a.open_with("l.db", &params);
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    flush(&c).unwrap();
    // Every upload fails; the lease's requests pass.
    actl.add(
        Rule::on(&[RequestKind::Put])
            .keys_containing("/log/")
            .always()
            .fail(),
    );
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(queued(dir.path()).len(), 1);
    // Another process's writer waits for the lease instead of committing
    // below the queue.
    let (b, _) = node(&inner);
    let other = b.open_with("l.db", "&lease=30000");
    let e = other.execute("INSERT INTO t VALUES (100)", []).unwrap_err();
    assert!(support::is_busy(&e), "{e}");
    assert!(said().contains("holds the lease"), "{}", said());
    // Once uploaded, the lease is released and the other writer goes on.
    actl.clear();
    flush_settled(&c).unwrap();
    other.execute("INSERT INTO t VALUES (100)", []).unwrap();
    assert_eq!(count(&other, "SELECT count(*) FROM t"), 2);
    c.execute("INSERT INTO t VALUES (2)", []).unwrap();
    flush(&c).unwrap();
    assert_eq!(count(&other, "SELECT count(*) FROM t"), 3);
}

#[test]
fn a_connection_without_async_waits_for_the_upload_of_its_commit() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let (a, actl) = node(&inner);
    let queued_conn = a.open_with("s.db", &async_params(dir.path()));
    queued_conn.execute_batch("CREATE TABLE t(x)").unwrap();
    flush(&queued_conn).unwrap();
    let plain = a.open("s.db");
    actl.add(
        Rule::on(&[RequestKind::Put])
            .always()
            .delay(Duration::from_millis(100)),
    );
    // It goes through the queue (nothing may be published below it) and
    // returns once it is in the store.
    plain.execute("INSERT INTO t VALUES (1)", []).unwrap();
    let (b, _) = node(&inner);
    let other = b.open("s.db");
    assert_eq!(count(&other, "SELECT count(*) FROM t"), 1);
}
