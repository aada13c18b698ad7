//! Rollback-journal locking through the core lock manager: a second writer
//! gets SQLITE_BUSY, a busy handler or timeout resolves it, and concurrent
//! read-modify-write transactions never lose an update.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;
use rusqlite::Connection;
use vfs_core::codes;

fn setup(fx: &Fixture, db: &str, mode: &str) {
    let c = fx.open(db);
    let got: String = c
        .query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(got, mode.to_lowercase());
    c.execute_batch(
        "CREATE TABLE t(v);
         CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, m INTEGER NOT NULL);
         INSERT INTO counter VALUES (1, 0, 0);",
    )
    .unwrap();
}

#[test]
fn second_writer_gets_busy_without_timeout() {
    let fx = Fixture::new("lock-busy");
    setup(&fx, "/lock.db", "DELETE");
    let a = fx.open_no_wait("/lock.db");
    let b = fx.open_no_wait("/lock.db");
    a.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES ('a');")
        .unwrap();
    assert_code(b.execute_batch("BEGIN IMMEDIATE"), codes::SQLITE_BUSY);
    assert_code(
        b.execute("INSERT INTO t VALUES ('b')", []),
        codes::SQLITE_BUSY,
    );
    // A reader still reads the last committed state beside RESERVED.
    assert_eq!(count(&b, "t"), 0);
    // The journal exists while a's transaction writes.
    a.execute_batch("COMMIT").unwrap();
    b.execute("INSERT INTO t VALUES ('b')", []).unwrap();
    assert_eq!(count(&a, "t"), 2);
    assert_eq!(integrity(&b), "ok");
}

#[test]
fn commit_waits_for_readers_and_pending_blocks_new_readers() {
    let fx = Fixture::new("lock-pending");
    setup(&fx, "/pending.db", "DELETE");
    let reader = fx.open_no_wait("/pending.db");
    let writer = fx.open_no_wait("/pending.db");
    let late = fx.open_no_wait("/pending.db");
    reader.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&reader, "t"), 0); // holds SHARED
    writer
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .unwrap();
    // The commit needs EXCLUSIVE: the reader is still there.
    assert_code(writer.execute_batch("COMMIT"), codes::SQLITE_BUSY);
    // The writer now holds PENDING: no new reader may start.
    assert_code(
        late.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)),
        codes::SQLITE_BUSY,
    );
    // The old reader keeps its snapshot, then leaves; the commit succeeds.
    assert_eq!(count(&reader, "t"), 0);
    reader.execute_batch("COMMIT").unwrap();
    writer.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&late, "t"), 1);
    assert_eq!(count(&reader, "t"), 1);
}

#[test]
fn busy_handler_waits_until_the_writer_commits() {
    let fx = Fixture::new("lock-busy-handler");
    setup(&fx, "/handler.db", "DELETE");
    let a = fx.open_no_wait("/handler.db");
    a.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES ('a');")
        .unwrap();
    let (waiting_tx, waiting_rx) = mpsc::channel::<i32>();
    let uri = fx.uri("/handler.db");
    let b = thread::spawn(move || {
        let mut b = Connection::open(uri).unwrap();
        let mut told = false;
        b.busy_handler(Some(move |n: i32| {
            if !told {
                told = true;
                let _ = waiting_tx.send(n);
            }
            thread::yield_now();
            true // keep retrying
        }))
        .unwrap();
        b.execute("INSERT INTO t VALUES ('b')", [])
    });
    // b met SQLITE_BUSY and is retrying: only now does a commit. Between
    // retries b briefly takes SHARED again, so a's commit (which needs
    // EXCLUSIVE) may wait too; once a holds PENDING, b cannot come back.
    assert_eq!(waiting_rx.recv().unwrap(), 0);
    a.busy_timeout(Duration::from_secs(30)).unwrap();
    a.execute_batch("COMMIT").unwrap();
    assert_eq!(b.join().unwrap().unwrap(), 1);
    assert_eq!(count(&a, "t"), 2);
}

#[test]
fn busy_timeout_resolves_a_held_write_lock() {
    let fx = Fixture::new("lock-busy-timeout");
    setup(&fx, "/timeout.db", "DELETE");
    let a = fx.open_no_wait("/timeout.db");
    a.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES ('a');")
        .unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let uri = fx.uri("/timeout.db");
    let b = thread::spawn(move || {
        let b = Connection::open(uri).unwrap();
        b.busy_timeout(Duration::from_secs(30)).unwrap();
        // Without the timeout this is SQLITE_BUSY (see above).
        ready_tx.send(()).unwrap();
        b.execute("INSERT INTO t VALUES ('b')", [])
    });
    ready_rx.recv().unwrap();
    a.busy_timeout(Duration::from_secs(30)).unwrap(); // see above
    a.execute_batch("COMMIT").unwrap();
    assert_eq!(b.join().unwrap().unwrap(), 1);
    assert_eq!(count(&a, "t"), 2);
}

/// Two threads increment a counter `per_thread` times each: once with a
/// read-modify-write inside `BEGIN IMMEDIATE` (a lost update if locking
/// were broken), once with an atomic `UPDATE`.
fn no_lost_update(test: &str, mode: &str, per_thread: i64) {
    let fx = Fixture::new(test);
    setup(&fx, "/counter.db", mode);
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let uri = fx.uri("/counter.db");
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let c = Connection::open(uri).unwrap();
                c.busy_timeout(Duration::from_secs(30)).unwrap();
                barrier.wait();
                for _ in 0..per_thread {
                    c.execute_batch("BEGIN IMMEDIATE").unwrap();
                    let n: i64 = c
                        .query_row("SELECT n FROM counter WHERE id = 1", [], |r| r.get(0))
                        .unwrap();
                    c.execute("UPDATE counter SET n = ?1 WHERE id = 1", [n + 1])
                        .unwrap();
                    c.execute_batch("COMMIT").unwrap();
                    c.execute("UPDATE counter SET m = m + 1 WHERE id = 1", [])
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let c = fx.open("/counter.db");
    let (n, m): (i64, i64) = c
        .query_row("SELECT n, m FROM counter", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, m), (2 * per_thread, 2 * per_thread));
    assert_eq!(integrity(&c), "ok");
}

#[test]
fn two_writers_lose_no_update_in_rollback_mode() {
    no_lost_update("lock-counter-delete", "DELETE", 300);
}

#[test]
fn two_writers_lose_no_update_in_wal_mode() {
    no_lost_update("lock-counter-wal", "WAL", 300);
}
