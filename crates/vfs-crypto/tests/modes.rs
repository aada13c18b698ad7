//! Round trips in every journal mode, on every stack, and WAL with several
//! connections.

mod common;

use std::sync::{Arc, Barrier};

use common::*;

const MODES: [&str; 6] = ["delete", "truncate", "persist", "memory", "wal", "off"];

/// Writes, updates, deletes and rolls back in `mode`, then reopens and
/// checks every row and the integrity of the database.
fn round_trip(env: &Env, mode: &str) {
    let db = env.db(&format!("modes-{mode}.db"));
    {
        let conn = env.open(&db, &hexkey());
        let got = text(&conn, &format!("PRAGMA journal_mode={mode}"));
        assert_eq!(got, mode, "{:?}", env.stack);
        fill(&conn, 300);
        conn.execute_batch(
            "CREATE INDEX t_v ON t(v);
             UPDATE t SET v = v || ' updated' WHERE i % 3 = 0;
             DELETE FROM t WHERE i % 7 = 0;",
        )
        .unwrap();
        if mode != "off" {
            // A rolled-back transaction leaves nothing behind.
            conn.execute_batch("BEGIN; DELETE FROM t; INSERT INTO t(v) VALUES ('gone'); ROLLBACK;")
                .unwrap();
        }
        assert_eq!(integrity(&conn), "ok");
        assert_eq!(
            text(&conn, "PRAGMA crypto_format"),
            "xaes-256-gcm v2, raw 256-bit key"
        );
    }
    let conn = env.open(&db, &hexkey());
    let kept = (1..=300).filter(|i| i % 7 != 0);
    assert_eq!(
        int(&conn, "SELECT count(*) FROM t") as usize,
        kept.clone().count()
    );
    assert_eq!(
        int(&conn, "SELECT count(*) FROM t WHERE v LIKE '% updated'") as usize,
        kept.filter(|i| i % 3 == 0).count()
    );
    assert_eq!(integrity(&conn), "ok");
    let reserve = text(&conn, "PRAGMA vfs_page_reserve");
    assert_eq!(reserve, env.stack.reserve().to_string());
    drop(conn);
    if let Some(raw) = env.raw(&db, "") {
        assert_eq!(raw[20] as usize, env.stack.reserve(), "header reserve");
        assert!(!raw.starts_with(b"SQLite format 3"), "salt in bytes 0..16");
    }
}

#[test]
fn every_journal_mode_on_every_stack() {
    for stack in Stack::ALL {
        let env = Env::new("modes", stack);
        for mode in MODES {
            round_trip(&env, mode);
        }
    }
}

#[test]
fn page_sizes() {
    for stack in [Stack::Mem, Stack::CksmNative] {
        let env = Env::new("page-sizes", stack);
        for p in [1024, 8192, 65536] {
            let db = env.db(&format!("p{p}.db"));
            {
                let conn = env.open(&db, &hexkey());
                conn.execute_batch(&format!("PRAGMA page_size={p}; PRAGMA journal_mode=WAL;"))
                    .unwrap();
                fill(&conn, 200);
                assert_eq!(int(&conn, "PRAGMA page_size") as usize, p);
            }
            let conn = env.open(&db, &hexkey());
            check_rows(&conn, 200);
            assert_eq!(integrity(&conn), "ok");
        }
        // 512-byte pages cannot hold the slice and SQLite's 480 usable
        // bytes: SQLite itself keeps a larger page.
        let db = env.db("p512.db");
        let conn = env.open(&db, &hexkey());
        conn.execute_batch("PRAGMA page_size=512; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        assert!(int(&conn, "PRAGMA page_size") >= 1024);
        assert_eq!(integrity(&conn), "ok");
    }
}

/// One writer thread per connection, each adding rows in transactions,
/// while reader connections check that a total never changes.
fn wal_many_connections(stack: Stack) {
    let env = Arc::new(Env::new("wal-many", stack));
    let db = env.db("many.db");
    {
        let conn = env.open(&db, &hexkey());
        assert_eq!(text(&conn, "PRAGMA journal_mode=WAL"), "wal");
        conn.execute_batch(
            "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER);
             CREATE TABLE log(w INTEGER, n INTEGER, pad TEXT);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100)
             INSERT INTO acct SELECT i, 1000 FROM c;",
        )
        .unwrap();
    }
    const WRITERS: usize = 3;
    const READERS: usize = 2;
    const ROUNDS: usize = 40;
    let barrier = Arc::new(Barrier::new(WRITERS + READERS));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (env, db, barrier) = (env.clone(), db.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || {
            let conn = env.open(&db, &hexkey());
            barrier.wait();
            for n in 0..ROUNDS {
                let tx = conn.unchecked_transaction().unwrap();
                let from = ((w * 31 + n * 7) % 100 + 1) as i64;
                let to = ((w * 17 + n * 13) % 100 + 1) as i64;
                tx.execute("UPDATE acct SET bal = bal - 5 WHERE id = ?1", [from])
                    .unwrap();
                tx.execute("UPDATE acct SET bal = bal + 5 WHERE id = ?1", [to])
                    .unwrap();
                tx.execute(
                    "INSERT INTO log VALUES (?1, ?2, printf('%.*c', 300, 'p'))",
                    [w as i64, n as i64],
                )
                .unwrap();
                tx.commit().unwrap();
            }
        }));
    }
    for _ in 0..READERS {
        let (env, db, barrier) = (env.clone(), db.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || {
            let conn = env.open(&db, &hexkey());
            barrier.wait();
            for _ in 0..ROUNDS {
                assert_eq!(int(&conn, "SELECT sum(bal) FROM acct"), 100_000);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let conn = env.open(&db, &hexkey());
    assert_eq!(int(&conn, "SELECT sum(bal) FROM acct"), 100_000);
    assert_eq!(
        int(&conn, "SELECT count(*) FROM log") as usize,
        WRITERS * ROUNDS
    );
    assert_eq!(integrity(&conn), "ok");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    assert_eq!(integrity(&conn), "ok");
}

#[test]
fn wal_with_several_connections_mem() {
    wal_many_connections(Stack::Mem);
}

#[test]
fn wal_with_several_connections_native() {
    wal_many_connections(Stack::Native);
}

#[test]
fn wal_with_several_connections_cksm_native() {
    wal_many_connections(Stack::CksmNative);
}

/// The WAL index needs a second 32 KiB region past about 4,000 frames.
#[test]
fn a_long_wal_before_checkpoint() {
    let env = Env::new("long-wal", Stack::CksmMem);
    let db = env.db("long.db");
    let conn = env.open(&db, &hexkey());
    conn.execute_batch(
        "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;",
    )
    .unwrap();
    conn.execute_batch("CREATE TABLE b(x BLOB)").unwrap();
    for _ in 0..30 {
        conn.execute_batch(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 150)
             INSERT INTO b SELECT randomblob(900) FROM c;",
        )
        .unwrap();
    }
    let other = env.open(&db, &hexkey());
    assert_eq!(int(&other, "SELECT count(*) FROM b"), 4500);
    assert_eq!(integrity(&other), "ok");
    drop(other);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    assert_eq!(integrity(&conn), "ok");
}
