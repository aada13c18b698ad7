//! Snapshot isolation, one writer, stale-snapshot detection, publication at
//! unlock, forks and restores, all through rusqlite.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, ErrorCode, OpenFlags, params};
use vfs_core::Registration;
use vfs_mvcc::Mvcc;

const SQLITE_BUSY: i32 = 5;
const SQLITE_BUSY_SNAPSHOT: i32 = 517;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_MISUSE: i32 = 21;

/// Sets its flag when dropped (also when the owning thread panics).
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A fresh instance registered under a name unique to the test.
fn setup(test: &str) -> (Mvcc, Registration) {
    let mvcc = Mvcc::new();
    let reg = vfs_core::register(&format!("mvcc-{test}"), mvcc.clone(), false).unwrap();
    (mvcc, reg)
}

fn open(reg: &Registration, db: &str) -> Connection {
    let conn = Connection::open(format!("file:{db}?vfs={}", reg.name())).unwrap();
    conn.busy_timeout(Duration::ZERO).unwrap();
    conn
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn integrity(conn: &Connection) {
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec!["ok".to_owned()]);
}

fn extended_code(err: &rusqlite::Error) -> i32 {
    match err {
        rusqlite::Error::SqliteFailure(e, _) => e.extended_code,
        other => panic!("expected an SQLite failure, got {other:?}"),
    }
}

/// A table spread over many pages: `rows` rows of ~1 KiB.
fn fill(conn: &Connection, rows: i64) {
    conn.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, pad BLOB NOT NULL);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..rows {
        tx.execute("INSERT INTO t VALUES (?1, ?1, zeroblob(1000))", params![i])
            .unwrap();
    }
    tx.commit().unwrap();
}

/// Sum of `v` and count, scanning every row (and so every page).
fn scan(conn: &Connection) -> (i64, i64) {
    conn.query_row(
        "SELECT sum(v), count(*), sum(length(pad)) FROM t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn reader_transaction_keeps_its_snapshot_while_writer_commits() {
    let (_mvcc, reg) = setup("reader-snapshot");
    let writer = open(&reg, "/r.db");
    fill(&writer, 200);
    let reader = open(&reg, "/r.db");
    // A small cache makes the reader go back to the VFS for most pages.
    reader.execute_batch("PRAGMA cache_size=10").unwrap();

    reader.execute_batch("BEGIN").unwrap();
    let before = scan(&reader);
    assert_eq!(before, ((0..200).sum(), 200));
    for i in 0..60i64 {
        writer
            .execute(
                "UPDATE t SET v = v + 1000 WHERE id = ?1",
                params![(i * 37) % 200],
            )
            .unwrap();
        writer
            .execute("INSERT INTO t VALUES (NULL, 1, zeroblob(1000))", [])
            .unwrap();
        assert_eq!(scan(&reader), before, "reader saw commit {i}");
    }
    reader.execute_batch("COMMIT").unwrap();

    let after = scan(&reader);
    assert_eq!(after, (before.0 + 60 * 1000 + 60, 260));
    assert_eq!(after, scan(&writer));
    integrity(&reader);
    integrity(&writer);
}

#[test]
fn readers_see_new_commits_on_their_next_transaction() {
    let (_mvcc, reg) = setup("next-txn");
    let writer = open(&reg, "/n.db");
    fill(&writer, 50);
    let reader = open(&reg, "/n.db");
    // Same page count before and after: only the change counter can tell
    // the reader's page cache that the pages changed.
    for round in 1..=20i64 {
        let _ = scan(&reader); // fills the reader's cache
        writer
            .execute(
                "UPDATE t SET v = ?1 WHERE id = 7",
                params![round * 1_000_000],
            )
            .unwrap();
        let v: i64 = reader
            .query_row("SELECT v FROM t WHERE id = 7", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, round * 1_000_000);
    }
    integrity(&reader);
}

#[test]
fn writer_and_readers_on_threads_keep_the_invariant_and_readers_never_busy() {
    bank_run("threads", 400, 3);
}

#[test]
#[ignore = "stress: run with --ignored"]
fn stress_writer_and_readers_on_threads() {
    bank_run("threads-stress", 20_000, 4);
}

/// One writer thread moves money between accounts in `txns` transactions
/// (some rolled back, some big enough to spill) while `readers` threads check
/// on every read that the total never changes; readers run with a zero busy
/// timeout, so any SQLITE_BUSY they got would fail the test.
fn bank_run(test: &str, txns: usize, readers: usize) {
    const ACCOUNTS: i64 = 400;
    const START: i64 = 1000;
    let (_mvcc, reg) = setup(test);
    let reg = Arc::new(reg);
    {
        let setup = open(&reg, "/bank.db");
        setup
            .execute_batch(
                "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL, pad BLOB);",
            )
            .unwrap();
        let tx = setup.unchecked_transaction().unwrap();
        for i in 0..ACCOUNTS {
            tx.execute(
                "INSERT INTO acct VALUES (?1, ?2, zeroblob(400))",
                params![i, START],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let total = ACCOUNTS * START;
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(readers + 1));

    let reader_threads: Vec<_> = (0..readers)
        .map(|_| {
            let (reg, done, reads, barrier) =
                (reg.clone(), done.clone(), reads.clone(), barrier.clone());
            thread::spawn(move || {
                // busy_timeout(0): any SQLITE_BUSY would surface as an error.
                let conn = open(&reg, "/bank.db");
                conn.execute_batch("PRAGMA cache_size=10").unwrap();
                barrier.wait();
                let mut n = 0u64;
                loop {
                    let finished = done.load(Ordering::Acquire);
                    conn.execute_batch("BEGIN").unwrap();
                    let (sum, cnt): (i64, i64) = conn
                        .query_row("SELECT sum(bal), count(*) FROM acct", [], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .unwrap();
                    assert_eq!((sum, cnt), (total, ACCOUNTS), "partial transaction seen");
                    // A second look inside the same transaction agrees.
                    let again: i64 = conn
                        .query_row("SELECT sum(bal) FROM acct ORDER BY 1", [], |r| r.get(0))
                        .unwrap();
                    assert_eq!(again, total);
                    conn.execute_batch("COMMIT").unwrap();
                    n += 1;
                    if finished {
                        break;
                    }
                }
                reads.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();

    let writer = {
        let (reg, done, barrier) = (reg.clone(), done.clone(), barrier.clone());
        thread::spawn(move || {
            // Readers stop when `done` is set, even if this thread panics.
            let _stop = SetOnDrop(done);
            let conn = open(&reg, "/bank.db");
            // Small cache: big transactions spill pages mid-transaction.
            conn.execute_batch("PRAGMA cache_size=10").unwrap();
            let mut rng = StdRng::seed_from_u64(0x5eed);
            barrier.wait();
            for txn in 0..txns {
                conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                let transfers = if txn % 10 == 0 { 60 } else { 2 };
                for _ in 0..transfers {
                    let a = rng.gen_range(0..ACCOUNTS);
                    let b = rng.gen_range(0..ACCOUNTS);
                    let x = rng.gen_range(1..50);
                    conn.execute(
                        "UPDATE acct SET bal = bal - ?2 WHERE id = ?1",
                        params![a, x],
                    )
                    .unwrap();
                    conn.execute(
                        "UPDATE acct SET bal = bal + ?2 WHERE id = ?1",
                        params![b, x],
                    )
                    .unwrap();
                }
                if txn % 7 == 3 {
                    conn.execute_batch("ROLLBACK").unwrap();
                } else {
                    conn.execute_batch("COMMIT").unwrap();
                }
            }
        })
    };
    writer.join().unwrap();
    for r in reader_threads {
        r.join().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) >= readers as u64);
    let conn = open(&reg, "/bank.db");
    let sum: i64 = conn
        .query_row("SELECT sum(bal) FROM acct", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, total);
    integrity(&conn);
}

#[test]
fn stale_snapshot_writer_gets_busy_snapshot_and_retry_succeeds() {
    let (_mvcc, reg) = setup("stale");
    let a = open(&reg, "/s.db");
    a.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    let b = open(&reg, "/s.db");

    a.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&a, "t"), 1);
    b.execute("INSERT INTO t VALUES (2)", []).unwrap();

    let err = a.execute("INSERT INTO t VALUES (3)", []).unwrap_err();
    assert_eq!(extended_code(&err), SQLITE_BUSY_SNAPSHOT);
    assert_eq!(err.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
    // Still inside its transaction: still the old snapshot.
    assert_eq!(count(&a, "t"), 1);
    a.execute_batch("ROLLBACK").unwrap();

    // Retry in a new transaction: sees the newest version and may write.
    a.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&a, "t"), 2);
    a.execute("INSERT INTO t VALUES (3)", []).unwrap();
    a.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&b, "t"), 3);
    integrity(&b);
}

#[test]
fn concurrent_read_modify_write_loses_no_update() {
    const THREADS: usize = 3;
    const ROUNDS: i64 = 50;
    let (_mvcc, reg) = setup("rmw");
    open(&reg, "/c.db")
        .execute_batch("CREATE TABLE c(n INTEGER); INSERT INTO c VALUES (0);")
        .unwrap();
    let reg = Arc::new(reg);
    let barrier = Arc::new(Barrier::new(THREADS));
    let wins = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (reg, barrier, wins) = (reg.clone(), barrier.clone(), wins.clone());
            thread::spawn(move || {
                // No panics before the last barrier (that would strand the
                // other threads): problems are collected and checked after.
                let mut problems = Vec::new();
                let conn = open(&reg, "/c.db");
                for _ in 0..ROUNDS {
                    // Every thread reads the same value in a deferred
                    // transaction, then all try to write it back + 1.
                    let read = conn.execute_batch("BEGIN").and_then(|_| {
                        conn.query_row("SELECT n FROM c", [], |r| r.get::<_, i64>(0))
                    });
                    barrier.wait();
                    match read.map(|n| conn.execute("UPDATE c SET n = ?1", params![n + 1])) {
                        Err(e) => problems.push(format!("read: {e}")),
                        Ok(Ok(_)) => match conn.execute_batch("COMMIT") {
                            Ok(()) => {
                                wins.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => problems.push(format!("commit: {e}")),
                        },
                        // Writing while the winner writes: BUSY; after it
                        // committed: the snapshot is stale.
                        Ok(Err(e)) => {
                            let code = extended_code(&e);
                            if code != SQLITE_BUSY && code != SQLITE_BUSY_SNAPSHOT {
                                problems.push(format!("write: {e}"));
                            }
                        }
                    }
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    barrier.wait();
                }
                problems
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Vec::<String>::new());
    }
    let conn = open(&reg, "/c.db");
    let n: i64 = conn.query_row("SELECT n FROM c", [], |r| r.get(0)).unwrap();
    // Exactly one writer per round, and no update lost.
    assert_eq!(wins.load(Ordering::Relaxed), ROUNDS as u64);
    assert_eq!(n, ROUNDS);
    integrity(&conn);
}

#[test]
fn one_writer_at_a_time_and_exclusive_does_not_wait_for_readers() {
    let (_mvcc, reg) = setup("one-writer");
    let a = open(&reg, "/w.db");
    a.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    let b = open(&reg, "/w.db");
    let reader = open(&reg, "/w.db");

    // A reader holds SHARED inside a transaction.
    reader.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&reader, "t"), 1);

    // EXCLUSIVE is granted at once despite the reader (busy_timeout is 0).
    a.execute_batch("BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);")
        .unwrap();
    // A second writer is refused with plain SQLITE_BUSY...
    let err = b.execute_batch("BEGIN IMMEDIATE").unwrap_err();
    assert_eq!(extended_code(&err), SQLITE_BUSY);
    // ...while readers still read, without waiting.
    assert_eq!(count(&b, "t"), 1);
    assert_eq!(count(&reader, "t"), 1);
    a.execute_batch("COMMIT").unwrap();

    assert_eq!(count(&reader, "t"), 1);
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&reader, "t"), 2);
    b.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (3); COMMIT;")
        .unwrap();
    assert_eq!(count(&a, "t"), 3);
    integrity(&a);
}

#[test]
fn synchronous_off_commits_are_visible_to_other_connections() {
    let (mvcc, reg) = setup("sync-off");
    let writer = open(&reg, "/o.db");
    writer
        .execute_batch("PRAGMA synchronous=OFF; CREATE TABLE t(v);")
        .unwrap();
    let reader = open(&reg, "/o.db");
    for i in 0..20 {
        writer
            .execute("INSERT INTO t VALUES (?1)", params![i])
            .unwrap();
        assert_eq!(count(&reader, "t"), i + 1);
    }
    writer
        .execute_batch("BEGIN; INSERT INTO t VALUES (100); INSERT INTO t VALUES (101); COMMIT;")
        .unwrap();
    assert_eq!(count(&reader, "t"), 22);
    // The published image is the committed one.
    mvcc.load("/o-copy.db", &mvcc.export("/o.db").unwrap())
        .unwrap();
    assert_eq!(count(&open(&reg, "/o-copy.db"), "t"), 22);
    integrity(&reader);
}

#[test]
fn every_journal_mode_commits_and_rolls_back() {
    let (mvcc, reg) = setup("journal-modes");
    for mode in ["DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"] {
        let name = format!("/jm-{mode}.db");
        let writer = open(&reg, &name);
        let mode_set: String = writer
            .query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode_set.to_uppercase(), mode);
        writer.execute_batch("PRAGMA cache_size=10").unwrap();
        fill(&writer, 100);
        let reader = open(&reg, &name);
        let before = scan(&reader);
        let version = mvcc.snapshot(&name).unwrap().version();

        // A big transaction that spills to the file, then rolled back.
        writer.execute_batch("BEGIN").unwrap();
        writer
            .execute("UPDATE t SET v = v + 1, pad = zeroblob(1200)", [])
            .unwrap();
        writer
            .execute("INSERT INTO t SELECT NULL, v, pad FROM t", [])
            .unwrap();
        writer.execute_batch("ROLLBACK").unwrap();
        assert_eq!(scan(&writer), before, "{mode}: rollback");
        assert_eq!(scan(&reader), before, "{mode}: reader after rollback");
        assert_eq!(
            mvcc.snapshot(&name).unwrap().version(),
            version,
            "{mode}: a rollback published a version"
        );

        // And the same transaction committed.
        writer.execute_batch("BEGIN").unwrap();
        writer.execute("UPDATE t SET v = v + 1", []).unwrap();
        writer
            .execute("INSERT INTO t SELECT NULL, v, pad FROM t", [])
            .unwrap();
        writer.execute_batch("COMMIT").unwrap();
        assert_eq!(mvcc.snapshot(&name).unwrap().version(), version + 1);
        let after = scan(&reader);
        assert_eq!(after.1, 200, "{mode}");
        assert_eq!(after, scan(&writer), "{mode}");
        integrity(&reader);
        integrity(&writer);
    }
}

#[test]
fn rollback_publishes_nothing_so_other_snapshots_stay_fresh() {
    let (mvcc, reg) = setup("rollback-fresh");
    let writer = open(&reg, "/rb.db");
    writer.execute_batch("PRAGMA cache_size=10").unwrap();
    fill(&writer, 150);
    // Free pages that the next transaction reuses without journaling them.
    writer.execute("DELETE FROM t WHERE id < 100", []).unwrap();
    let reader = open(&reg, "/rb.db");
    reader.execute_batch("BEGIN").unwrap();
    let seen = scan(&reader);
    let version = mvcc.snapshot("/rb.db").unwrap().version();

    writer.execute_batch("BEGIN").unwrap();
    writer
        .execute("INSERT INTO t SELECT NULL, v, zeroblob(1000) FROM t", [])
        .unwrap();
    writer.execute("UPDATE t SET v = -v", []).unwrap();
    writer.execute_batch("ROLLBACK").unwrap();

    assert_eq!(mvcc.snapshot("/rb.db").unwrap().version(), version);
    // The reader's snapshot is still the newest: it may write.
    reader
        .execute("INSERT INTO t VALUES (NULL, 0, x'')", [])
        .unwrap();
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(scan(&writer), (seen.0, seen.1 + 1));
    integrity(&writer);
}

#[test]
fn fork_diverges_without_affecting_the_original() {
    let (mvcc, reg) = setup("fork");
    let orig = open(&reg, "/orig.db");
    fill(&orig, 100);
    let snap = mvcc.snapshot("/orig.db").unwrap();
    mvcc.fork(&snap, "/fork.db").unwrap();

    let fork = open(&reg, "/fork.db");
    assert_eq!(scan(&fork), scan(&orig));
    fork.execute("DELETE FROM t WHERE id < 50", []).unwrap();
    fork.execute("CREATE TABLE extra(x)", []).unwrap();
    orig.execute("UPDATE t SET v = 0 WHERE id >= 50", [])
        .unwrap();

    assert_eq!(scan(&orig), ((0..50).sum(), 100));
    assert_eq!(scan(&fork), ((50..100).sum(), 50));
    let tables: i64 = orig
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name='extra'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    // The snapshot itself never changed.
    mvcc.fork(&snap, "/fork2.db").unwrap();
    assert_eq!(scan(&open(&reg, "/fork2.db")), ((0..100).sum(), 100));
    let err = mvcc.fork(&snap, "/fork.db").unwrap_err();
    assert_eq!(err.code(), Some(SQLITE_CANTOPEN));
    integrity(&orig);
    integrity(&fork);
}

#[test]
fn restore_brings_old_contents_back_and_caches_follow() {
    let (mvcc, reg) = setup("restore");
    let w = open(&reg, "/x.db");
    fill(&w, 80);
    let r = open(&reg, "/x.db");
    let snap = mvcc.snapshot("/x.db").unwrap();
    let original = scan(&r);

    // Move on, and let the reader cache the newer version.
    w.execute("UPDATE t SET v = v * 2", []).unwrap();
    let doubled = scan(&r);
    assert_ne!(doubled, original);

    mvcc.restore("/x.db", &snap).unwrap();
    // A different commit on top of the restored image, before `r` looks
    // again: `r` still caches the doubled version, whose change counter the
    // new commit would repeat if restore did not stamp a higher one.
    w.execute("UPDATE t SET v = v + 1 WHERE id = 3", [])
        .unwrap();
    assert_eq!(scan(&r), (original.0 + 1, 80));
    assert_eq!(scan(&w), (original.0 + 1, 80));
    integrity(&r);

    // Restore is refused while a write transaction is open.
    w.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = mvcc.restore("/x.db", &snap).unwrap_err();
    assert_eq!(err.code(), Some(SQLITE_BUSY));
    w.execute_batch("COMMIT").unwrap();
    mvcc.restore("/x.db", &snap).unwrap();
    assert_eq!(scan(&w), original);
    integrity(&w);
}

#[test]
fn load_and_export_round_trip_with_a_file_from_disk() {
    let (mvcc, reg) = setup("load-export");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.db");
    {
        let disk = Connection::open(&path).unwrap();
        disk.execute_batch("PRAGMA page_size=1024; PRAGMA journal_mode=WAL;")
            .unwrap();
        fill(&disk, 30);
    } // closing checkpoints the WAL; the header stays in WAL format
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[18], 2, "the file is in WAL format");

    mvcc.load("/loaded.db", &bytes).unwrap();
    let conn = open(&reg, "/loaded.db");
    assert_eq!(scan(&conn), ((0..30).sum(), 30));
    conn.execute("INSERT INTO t VALUES (NULL, 5, x'')", [])
        .unwrap();
    integrity(&conn);

    let out = mvcc.export("/loaded.db").unwrap();
    assert_eq!(&out[..16], b"SQLite format 3\0");
    assert_eq!(out.len() % 1024, 0);
    assert_eq!(out, mvcc.snapshot("/loaded.db").unwrap().to_bytes());
    let copy = dir.path().join("copy.db");
    std::fs::write(&copy, &out).unwrap();
    let disk = Connection::open(&copy).unwrap();
    assert_eq!(scan(&disk), ((0..30).sum::<i64>() + 5, 31));
    integrity(&disk);
}

#[test]
fn private_names_are_per_connection() {
    let (mvcc, reg) = setup("private");
    let a = open(&reg, "p.db");
    let b = open(&reg, "p.db");
    a.execute_batch("CREATE TABLE t(v); BEGIN; INSERT INTO t VALUES (1);")
        .unwrap();
    // b has its own empty database and its own journal: no BUSY.
    b.execute_batch(
        "CREATE TABLE t(v); BEGIN; INSERT INTO t VALUES (2); INSERT INTO t VALUES (3);",
    )
    .unwrap();
    a.execute_batch("ROLLBACK").unwrap();
    b.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&a, "t"), 0);
    assert_eq!(count(&b, "t"), 2);
    assert!(mvcc.names().is_empty());
    let err = mvcc.snapshot("p.db").unwrap_err();
    assert_eq!(err.code(), Some(SQLITE_MISUSE));
    integrity(&a);
    integrity(&b);
}

#[test]
fn temp_files_and_attached_databases_work() {
    let (mvcc, reg) = setup("temp-attach");
    let conn = open(&reg, "/main.db");
    conn.execute_batch(&format!(
        "PRAGMA temp_store=FILE; PRAGMA cache_size=10;
         ATTACH 'file:/other.db?vfs={}' AS other;
         CREATE TABLE main.a(x); CREATE TABLE other.b(x);
         CREATE TEMP TABLE scratch(x);",
        reg.name()
    ))
    .unwrap();
    // A transaction over both files (a super-journal), a temp table, a big
    // sort and a statement journal.
    conn.execute_batch(
        "BEGIN;
         WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 3000)
         INSERT INTO scratch SELECT v FROM s;
         INSERT INTO a SELECT x FROM scratch ORDER BY random();
         INSERT INTO b SELECT x * 2 FROM scratch;
         COMMIT;",
    )
    .unwrap();
    let other = open(&reg, "/other.db");
    let sum: i64 = other
        .query_row("SELECT sum(x) FROM b", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, 3000 * 3001);
    assert_eq!(count(&open(&reg, "/main.db"), "a"), 3000);

    // A multi-file transaction rolled back publishes nothing in either file.
    let (va, vb) = (
        mvcc.snapshot("/main.db").unwrap().version(),
        mvcc.snapshot("/other.db").unwrap().version(),
    );
    conn.execute_batch("BEGIN; DELETE FROM a; DELETE FROM b; ROLLBACK;")
        .unwrap();
    assert_eq!(mvcc.snapshot("/main.db").unwrap().version(), va);
    assert_eq!(mvcc.snapshot("/other.db").unwrap().version(), vb);
    assert_eq!(count(&other, "b"), 3000);
    integrity(&conn);
    integrity(&other);
}

#[test]
fn opening_missing_shared_database_without_create_fails() {
    let (_mvcc, reg) = setup("no-create");
    let err = Connection::open_with_flags(
        format!("file:/missing.db?vfs={}", reg.name()),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap_err();
    assert_eq!(err.sqlite_error_code(), Some(ErrorCode::CannotOpen));
}

#[test]
fn wal_mode_is_refused_with_a_clear_error() {
    let (_mvcc, reg) = setup("no-wal");
    let conn = open(&reg, "/wal.db");
    conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    for setup in ["", "PRAGMA locking_mode=EXCLUSIVE;"] {
        conn.execute_batch(setup).unwrap();
        let err = conn
            .query_row("PRAGMA journal_mode = wal", [], |r| r.get::<_, String>(0))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("journal_mode=WAL is not available"),
            "{err}"
        );
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
    }
    drop(conn);
    let after = open(&reg, "/wal.db");
    assert_eq!(count(&after, "t"), 3);
    integrity(&after);
}

#[test]
fn api_rejects_bad_names_and_missing_databases() {
    let (mvcc, _reg) = setup("api-errors");
    assert_eq!(
        mvcc.snapshot("x.db").unwrap_err().code(),
        Some(SQLITE_MISUSE)
    );
    assert_eq!(mvcc.export("/").unwrap_err().code(), Some(SQLITE_MISUSE));
    assert_eq!(
        mvcc.snapshot("/missing.db").unwrap_err().code(),
        Some(SQLITE_CANTOPEN)
    );
    assert_eq!(
        mvcc.delete("/missing.db").unwrap_err().code(),
        Some(SQLITE_CANTOPEN)
    );
    mvcc.load("/empty.db", &[]).unwrap();
    assert!(mvcc.exists("/empty.db"));
    assert!(mvcc.snapshot("/empty.db").unwrap().is_empty());
    mvcc.delete("/empty.db").unwrap();
    assert!(!mvcc.exists("/empty.db"));
}

#[test]
fn deleted_database_lives_on_for_reading() {
    const SQLITE_READONLY_DBMOVED: i32 = 8 | (4 << 8);
    let (mvcc, reg) = setup("delete");
    let conn = open(&reg, "/d.db");
    conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    mvcc.delete("/d.db").unwrap();
    assert!(!mvcc.exists("/d.db"));
    assert_eq!(count(&conn, "t"), 1);
    // Its journal name now belongs to whatever is created as /d.db.
    let err = conn.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert_eq!(extended_code(&err), SQLITE_READONLY_DBMOVED);
    let fresh = open(&reg, "/d.db");
    let tables: i64 = fresh
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0);
    fresh
        .execute_batch("CREATE TABLE u(x); INSERT INTO u VALUES (1);")
        .unwrap();
    assert_eq!(count(&conn, "t"), 1);
    integrity(&conn);
}
