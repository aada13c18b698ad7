//! The commit protocol and the consistency model over `InMemory`, with two
//! `ObjectVfs` on one store standing for two processes (separate caches,
//! separate lock managers: only the store's conditional create between
//! them).

mod support;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use support::{Node, code, count, integrity, objects, opts};
use vfs_core::codes::{SQLITE_BUSY_SNAPSHOT, SQLITE_CANTOPEN, SQLITE_ERROR};

const HOUR: Duration = Duration::from_secs(3600);

fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

fn log_keys(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    objects(store).into_iter().map(|(k, _)| k).collect()
}

#[test]
fn every_commit_is_one_put_of_one_object_even_for_megabytes() {
    let store = memory();
    let a = Node::new(store.clone(), opts(HOUR));
    let c = a.open("one.db");
    let before = a.vfs.request_stats();
    c.execute_batch("CREATE TABLE t(b BLOB)").unwrap();
    let after_create = a.vfs.request_stats();
    assert_eq!(after_create.since(&before).puts, 1);
    // A ~8 MB transaction.
    c.execute_batch(
        "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<2000)
         INSERT INTO t SELECT randomblob(4000) FROM n; COMMIT;",
    )
    .unwrap();
    let big = a.vfs.request_stats().since(&after_create);
    assert_eq!(big.puts, 1, "{big}");
    assert!(big.put_bytes > 8_000_000, "{big}");
    assert_eq!(
        (big.gets, big.get_bytes, big.lists),
        (1, 96, 0),
        "a writer needs no request besides its PUT and the 96-byte check of its parent: {big}"
    );
    // Twenty small autocommit statements: twenty PUTs.
    let s = a.vfs.request_stats();
    for i in 0..20 {
        c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
    }
    assert_eq!(a.vfs.request_stats().since(&s).puts, 20);
    assert_eq!(
        log_keys(&store),
        (1..=22)
            .map(|l| format!("t/one.db/log/{l:020}"))
            .collect::<Vec<_>>()
    );
    integrity(&c);
}

#[test]
fn a_lost_race_fails_the_committing_statement_and_leaves_no_trace() {
    let store = memory();
    let (a, b) = (
        Node::new(store.clone(), opts(HOUR)),
        Node::new(store.clone(), opts(HOUR)),
    );
    let ca = a.open("race.db");
    ca.execute_batch("CREATE TABLE t(k INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 'a');")
        .unwrap();
    let cb = b.open("race.db");
    assert_eq!(count(&cb, "SELECT count(*) FROM t"), 1);
    // Both start from LSN 2; A commits first.
    cb.execute_batch("BEGIN; UPDATE t SET v = 'b' WHERE k = 1; INSERT INTO t VALUES (2, 'b');")
        .unwrap();
    ca.execute("UPDATE t SET v = 'a2' WHERE k = 1", []).unwrap();
    let keys_before = log_keys(&store);
    let e = cb.execute_batch("COMMIT").unwrap_err();
    assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT, "{e}");
    assert!(cb.is_autocommit(), "SQLite rolled the transaction back");
    assert_eq!(log_keys(&store), keys_before, "nothing of B was stored");
    let msg = vfs_core::last_error().expect("message").message;
    assert!(
        msg.contains("another writer committed LSN 3 first"),
        "{msg}"
    );
    // B catches up: its retry sees A's commit and succeeds on top of it.
    let v: String = cb
        .query_row("SELECT v FROM t WHERE k = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "a2");
    cb.execute_batch(
        "BEGIN; UPDATE t SET v = v || '+b' WHERE k = 1; INSERT INTO t VALUES (2, 'b'); COMMIT;",
    )
    .unwrap();
    // An autocommit statement that loses is rolled back the same way.
    ca.execute("INSERT INTO t VALUES (3, 'stale')", [])
        .map(drop)
        .map_err(|e| assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT))
        .expect_err("A's snapshot is stale");
    ca.execute("INSERT INTO t VALUES (3, 'fresh')", []).unwrap();
    // A connection of B that looks on every transaction sees A's commit.
    let cb = b.open_with("race.db", "&poll=0");
    for c in [&ca, &cb] {
        let rows: Vec<(i64, String)> = c
            .prepare("SELECT k, v FROM t ORDER BY k")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [(1, "a2+b".to_owned()), (2, "b".into()), (3, "fresh".into())]
        );
        integrity(c);
    }
}

#[test]
fn synchronous_off_still_publishes_before_commit_returns() {
    let store = memory();
    let (a, b) = (
        Node::new(store.clone(), opts(HOUR)),
        Node::new(store.clone(), opts(Duration::ZERO)),
    );
    let ca = a.open("off.db");
    ca.execute_batch("PRAGMA synchronous=OFF; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    assert_eq!(a.vfs.request_stats().puts, 2);
    let cb = b.open("off.db");
    assert_eq!(count(&cb, "SELECT count(*) FROM t"), 1);
    // journal_mode=OFF and MEMORY publish the same way.
    for mode in ["OFF", "MEMORY", "PERSIST", "TRUNCATE"] {
        ca.execute_batch(&format!(
            "PRAGMA journal_mode={mode}; INSERT INTO t VALUES (2);"
        ))
        .unwrap();
    }
    assert_eq!(count(&cb, "SELECT count(*) FROM t"), 5);
}

#[test]
fn rollbacks_and_read_only_transactions_publish_nothing() {
    let store = memory();
    let a = Node::new(store.clone(), opts(HOUR));
    let c = a.open("rb.db");
    c.execute_batch("PRAGMA cache_size=10; CREATE TABLE t(b BLOB);")
        .unwrap();
    let puts = a.vfs.request_stats().puts;
    // A rollback after SQLite spilled pages to the file (small cache).
    c.execute_batch(
        "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<200)
         INSERT INTO t SELECT randomblob(3000) FROM n; ROLLBACK;",
    )
    .unwrap();
    c.execute_batch("BEGIN; SELECT count(*) FROM t; COMMIT;")
        .unwrap();
    c.execute_batch("BEGIN IMMEDIATE; COMMIT;").unwrap();
    assert_eq!(a.vfs.request_stats().puts, puts);
    assert_eq!(count(&c, "SELECT count(*) FROM t"), 0);
    integrity(&c);
}

#[test]
fn poll_interval_decides_when_other_processes_commits_become_visible() {
    let store = memory();
    let writer = Node::new(store.clone(), opts(HOUR));
    let w = writer.open("poll.db");
    w.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let reader = Node::new(store.clone(), opts(HOUR));
    let lazy = reader.open("poll.db"); // poll = 1 hour (the registration's)
    let eager = reader.open_with("poll.db", "&poll=0");
    assert_eq!(count(&lazy, "SELECT count(*) FROM t"), 1);
    assert_eq!(count(&eager, "SELECT count(*) FROM t"), 1); // loads its schema
    w.execute("INSERT INTO t VALUES (2)", []).unwrap();
    // poll=0 looks on every read transaction…
    let lists = reader.vfs.request_stats().lists;
    assert_eq!(count(&eager, "SELECT count(*) FROM t"), 2);
    assert_eq!(reader.vfs.request_stats().lists, lists + 1);
    // …and the process's head moved, so the lazy connection sees it too.
    assert_eq!(count(&lazy, "SELECT count(*) FROM t"), 2);
    w.execute("INSERT INTO t VALUES (3)", []).unwrap();
    // Nobody in `reader` looked since: an hour has not passed.
    let lists = reader.vfs.request_stats().lists;
    for _ in 0..10 {
        assert_eq!(count(&lazy, "SELECT count(*) FROM t"), 2);
    }
    assert_eq!(
        reader.vfs.request_stats().lists,
        lists,
        "no request within the poll interval"
    );
    assert_eq!(count(&eager, "SELECT count(*) FROM t"), 3);
    // Commits of the same process are visible at once, whatever the poll.
    let same = writer.open("poll.db");
    w.execute("INSERT INTO t VALUES (4)", []).unwrap();
    assert_eq!(count(&same, "SELECT count(*) FROM t"), 4);
    assert_eq!(
        writer.vfs.request_stats().lists,
        2,
        "only the cold open listed (the log and the snapshots)"
    );
}

#[test]
fn a_read_transaction_keeps_its_snapshot_and_a_stale_writer_is_refused_early() {
    let store = memory();
    let a = Node::new(store.clone(), opts(HOUR));
    let (c1, c2) = (a.open("snap.db"), a.open("snap.db"));
    c1.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    c2.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&c2, "SELECT count(*) FROM t"), 1);
    c1.execute("INSERT INTO t VALUES (2)", []).unwrap(); // never waits for c2
    assert_eq!(count(&c2, "SELECT count(*) FROM t"), 1, "snapshot");
    let puts = a.vfs.request_stats().puts;
    let e = c2.execute("INSERT INTO t VALUES (3)", []).unwrap_err();
    assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT, "{e}");
    assert_eq!(
        a.vfs.request_stats().puts,
        puts,
        "refused before any request"
    );
    c2.execute_batch("ROLLBACK").unwrap();
    assert_eq!(count(&c2, "SELECT count(*) FROM t"), 2);
}

#[test]
fn wal_exclusive_locking_and_missing_databases_are_refused_with_messages() {
    let a = Node::new(memory(), opts(HOUR));
    let c = a.open("modes.db");
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    let e = c
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
        .unwrap_err();
    assert_eq!(code(&e), SQLITE_ERROR);
    assert!(
        e.to_string().contains("journal_mode=WAL is not available"),
        "{e}"
    );
    let e = c
        .execute_batch("PRAGMA locking_mode=EXCLUSIVE")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("locking_mode=EXCLUSIVE is not available"),
        "{e}"
    );
    let lsn: String = c.query_row("PRAGMA object_lsn", [], |r| r.get(0)).unwrap();
    assert_eq!(lsn, "1");
    let e = rusqlite::Connection::open_with_flags(
        a.uri("missing.db", ""),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN);
    // Read-only connections read and never write.
    let ro = rusqlite::Connection::open_with_flags(
        a.uri("modes.db", ""),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    assert_eq!(count(&ro, "SELECT count(*) FROM t"), 0);
    assert!(ro.execute("INSERT INTO t VALUES (1)", []).is_err());
    // A bad poll value names itself.
    let e = rusqlite::Connection::open(a.uri("modes.db", "&poll=soon")).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN);
}

#[test]
fn page_size_change_by_vacuum_rewrites_the_database_as_a_full_image() {
    let store = memory();
    let a = Node::new(store.clone(), opts(HOUR));
    let c = a.open("vac.db");
    c.execute_batch(
        "PRAGMA page_size=1024; CREATE TABLE t(x, y);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<3000)
         INSERT INTO t SELECT i, hex(randomblob(50)) FROM n;",
    )
    .unwrap();
    let sum = count(&c, "SELECT sum(x) FROM t");
    for size in [8192, 512, 65536] {
        c.execute_batch(&format!("PRAGMA page_size={size}; VACUUM;"))
            .unwrap();
        assert_eq!(count(&c, "PRAGMA page_size"), size);
        // Another process reads it from scratch.
        let b = Node::new(store.clone(), opts(HOUR));
        let cb = b.open("vac.db");
        assert_eq!(count(&cb, "PRAGMA page_size"), size);
        assert_eq!(count(&cb, "SELECT sum(x) FROM t"), sum);
        integrity(&cb);
    }
}

#[test]
fn a_database_growing_in_many_steps_keeps_every_page() {
    // Grows in steps of about 100 pages across several blocks of the page
    // map; every state is read back by this process and a cold one.
    let store = memory();
    let a = Node::new(store.clone(), opts(HOUR));
    let c = a.open("grow.db");
    c.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
        .unwrap();
    for step in 1..=8 {
        c.execute_batch(
            "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<100)
             INSERT INTO t(b) SELECT randomblob(3500) FROM n; COMMIT;",
        )
        .unwrap();
        integrity(&c);
        let cold = Node::new(store.clone(), opts(HOUR));
        let cc = cold.open("grow.db");
        assert_eq!(count(&cc, "SELECT count(*) FROM t"), step * 100);
        integrity(&cc);
    }
    // …and shrinks back.
    c.execute_batch("DELETE FROM t WHERE id > 150; VACUUM;")
        .unwrap();
    let cold = Node::new(store, opts(HOUR));
    let cc = cold.open("grow.db");
    assert_eq!(count(&cc, "SELECT count(*) FROM t"), 150);
    integrity(&cc);
}

/// Two "processes" (two `ObjectVfs` on one store), each with two writer
/// threads moving money and a reader checking, in every read transaction,
/// that the total is conserved and every balance matches the transfer log.
#[test]
fn two_processes_with_threads_keep_every_invariant() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let store = memory();
    let nodes = [
        Arc::new(Node::new(store.clone(), opts(Duration::from_millis(2)))),
        Arc::new(Node::new(store.clone(), opts(Duration::ZERO))),
    ];
    nodes[0]
        .open("stress.db")
        .execute_batch(
            "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<20)
             INSERT INTO acct SELECT i, 1000 FROM n;
             CREATE TABLE log(id INTEGER PRIMARY KEY, src, dst, amount, pad BLOB);",
        )
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for (w, node) in nodes
        .iter()
        .flat_map(|n| [n.clone(), n.clone()])
        .enumerate()
    {
        writers.push(std::thread::spawn(move || {
            let c = node.open("stress.db");
            c.busy_timeout(Duration::from_secs(30)).unwrap();
            let mut seed = 0x2545_F491_4F6C_DD1Du64 + w as u64;
            let mut rnd = |m: u64| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % m) as i64
            };
            let mut conflicts = 0;
            for _ in 0..60 {
                let (src, dst, amount) = (rnd(20) + 1, rnd(20) + 1, rnd(30));
                loop {
                    let r = c.execute_batch(&format!(
                        "BEGIN;
                         UPDATE acct SET bal = bal - {amount} WHERE id = {src};
                         UPDATE acct SET bal = bal + {amount} WHERE id = {dst};
                         INSERT INTO log(src, dst, amount, pad) VALUES ({src}, {dst}, {amount}, randomblob(2000));
                         COMMIT;"
                    ));
                    match r {
                        Ok(()) => break,
                        Err(e) if support::is_busy(&e) => {
                            if !c.is_autocommit() {
                                c.execute_batch("ROLLBACK").unwrap();
                            }
                            conflicts += 1;
                        }
                        Err(e) => panic!("writer {w}: {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    let readers: Vec<_> = nodes
        .iter()
        .map(|node| {
            let (node, stop, checks) = (node.clone(), stop.clone(), checks.clone());
            std::thread::spawn(move || {
                let c = node.open("stress.db");
                while !stop.load(Ordering::Relaxed) {
                    c.execute_batch("BEGIN").unwrap();
                    assert_eq!(count(&c, "SELECT sum(bal) FROM acct"), 20_000);
                    let off = count(
                        &c,
                        "SELECT count(*) FROM acct a WHERE bal != 1000
                           - (SELECT coalesce(sum(amount), 0) FROM log WHERE src = a.id)
                           + (SELECT coalesce(sum(amount), 0) FROM log WHERE dst = a.id)",
                    );
                    assert_eq!(off, 0, "a reader saw part of a transfer");
                    c.execute_batch("COMMIT").unwrap();
                    checks.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let conflicts: i32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let checker = Node::new(store, opts(HOUR));
    let c = checker.open("stress.db");
    assert_eq!(count(&c, "SELECT count(*) FROM log"), 4 * 60);
    assert_eq!(count(&c, "SELECT sum(bal) FROM acct"), 20_000);
    integrity(&c);
    eprintln!(
        "4 writers × 60 transfers in 2 processes: {conflicts} conflicts retried, {} reader checks",
        checks.load(Ordering::Relaxed)
    );
}
