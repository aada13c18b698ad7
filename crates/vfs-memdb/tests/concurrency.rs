//! Many threads, each with its own connections, on one shared database in
//! WAL mode: readers check an invariant on every read while writers move
//! money; checkpoints run throughout; exports taken meanwhile are
//! consistent.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use rusqlite::{Connection, TransactionBehavior};
use vfs_memdb::MemDb;

const ACCOUNTS: i64 = 100;
const START: i64 = 1_000;
const TOTAL: i64 = ACCOUNTS * START;

fn create_bank(c: &Connection) {
    assert_eq!(
        c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "wal"
    );
    c.execute_batch(&format!(
        "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL, pad BLOB);
         CREATE TABLE ledger(id INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, amount INTEGER);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{ACCOUNTS})
         INSERT INTO acct SELECT i, {START}, randomblob(300) FROM n;"
    ))
    .unwrap();
}

/// One transfer in its own write transaction; logged in the ledger.
fn transfer(c: &mut Connection, rng: &mut Rng) {
    let src = 1 + rng.below(ACCOUNTS as u64) as i64;
    let dst = 1 + rng.below(ACCOUNTS as u64) as i64;
    let amount = 1 + rng.below(50) as i64;
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    tx.execute(
        "UPDATE acct SET bal = bal - ?1 WHERE id = ?2",
        (amount, src),
    )
    .unwrap();
    tx.execute(
        "UPDATE acct SET bal = bal + ?1, pad = randomblob(300) WHERE id = ?2",
        (amount, dst),
    )
    .unwrap();
    tx.execute(
        "INSERT INTO ledger(src, dst, amount) VALUES (?1, ?2, ?3)",
        (src, dst, amount),
    )
    .unwrap();
    tx.commit().unwrap();
}

/// A read transaction: the total is constant, nothing is missing, and two
/// reads inside one transaction see the same snapshot.
fn check_invariant(c: &mut Connection) {
    let tx = c.transaction().unwrap();
    let (sum, n): (i64, i64) = tx
        .query_row("SELECT sum(bal), count(*) FROM acct", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (sum, n),
        (TOTAL, ACCOUNTS),
        "a reader saw a partial transaction"
    );
    // The ledger only grows, so its largest id is its size (and cheap).
    let ledger_a: Option<i64> = tx
        .query_row("SELECT max(id) FROM ledger", [], |r| r.get(0))
        .unwrap();
    let sum_again: i64 = tx
        .query_row("SELECT sum(bal) FROM acct", [], |r| r.get(0))
        .unwrap();
    let ledger_b: Option<i64> = tx
        .query_row("SELECT max(id) FROM ledger", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum_again, TOTAL);
    assert_eq!(
        ledger_a, ledger_b,
        "the snapshot moved inside a transaction"
    );
    tx.commit().unwrap();
}

/// `threads` threads, each with its own connection, doing `ops` mixed
/// operations (about 40% transfers); thread 0 also checkpoints.
fn bank_run(test: &str, threads: usize, ops: usize) {
    let fx = Fixture::new(test);
    let setup = fx.open("/bank.db");
    create_bank(&setup);
    setup.execute_batch("PRAGMA wal_autocheckpoint=50").unwrap();
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let uri = fx.uri("/bank.db");
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut c = Connection::open(uri).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(60)).unwrap();
                c.execute_batch("PRAGMA wal_autocheckpoint=50").unwrap();
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1234_5678));
                let mut transfers = 0u64;
                barrier.wait();
                for i in 0..ops {
                    if rng.below(10) < 4 {
                        transfer(&mut c, &mut rng);
                        transfers += 1;
                    } else {
                        check_invariant(&mut c);
                    }
                    if t == 0 && i % 40 == 39 {
                        c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                            .unwrap();
                    }
                }
                check_invariant(&mut c);
                transfers
            })
        })
        .collect();
    let transfers: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    eprintln!("{test}: {transfers} transfers");
    assert!(transfers > 0);
    assert!(
        fx.mem.file_size("/bank.db-wal").unwrap() > 0,
        "ran in WAL mode"
    );
    let mut c = fx.open("/bank.db");
    check_invariant(&mut c);
    assert_eq!(count(&c, "ledger"), transfers as i64, "no lost transaction");
    assert_eq!(integrity(&c), "ok");
    drop((c, setup));
    // The last connection checkpointed and removed the WAL; the database
    // file alone holds everything.
    assert_eq!(fx.mem.file_size("/bank.db-wal"), None);
    let c = fx.open("/bank.db");
    assert_eq!(count(&c, "ledger"), transfers as i64);
}

#[test]
fn wal_eight_threads_shared_database_invariant() {
    bank_run("conc-wal8", 8, 5_000);
}

#[test]
#[ignore = "long stress version; run with --ignored"]
fn wal_eight_threads_shared_database_invariant_long() {
    bank_run("conc-wal8-long", 8, 100_000);
}

#[test]
fn exports_during_concurrent_wal_writes_are_consistent() {
    let fx = Fixture::new("conc-export");
    let setup = fx.open("/live.db");
    create_bank(&setup);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let uri = fx.uri("/live.db");
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut c = Connection::open(uri).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(60)).unwrap();
                c.execute_batch("PRAGMA wal_autocheckpoint=20").unwrap();
                let mut rng = Rng(77 + t);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) || n < 50 {
                    transfer(&mut c, &mut rng);
                    n += 1;
                }
                n
            })
        })
        .collect();
    // A separate instance to open each exported image.
    let check = Fixture::with("conc-export-check", MemDb::new());
    let mut ledgers = Vec::new();
    for _ in 0..15 {
        let image = fx.mem.export("/live.db").unwrap();
        let _ = check.mem.delete("/snap.db");
        check.mem.load("/snap.db", &image).unwrap();
        let mut c = check.open("/snap.db");
        check_invariant(&mut c);
        assert_eq!(integrity(&c), "ok");
        ledgers.push(count(&c, "ledger"));
    }
    stop.store(true, Ordering::Relaxed);
    let total: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    // Exports are snapshots in time order.
    assert!(ledgers.windows(2).all(|w| w[0] <= w[1]), "{ledgers:?}");
    let image = fx.mem.export("/live.db").unwrap();
    let _ = check.mem.delete("/snap.db");
    check.mem.load("/snap.db", &image).unwrap();
    assert_eq!(count(&check.open("/snap.db"), "ledger"), total as i64);
}

#[test]
fn wal_index_grows_past_one_region() {
    let fx = Fixture::new("conc-wal-regions");
    let w = fx.open("/big.db");
    w.execute_batch(
        "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
         CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);",
    )
    .unwrap();
    // A reader holding an old snapshot across the whole run.
    let mut old = fx.open("/big.db");
    let snapshot = old.transaction().unwrap();
    assert_eq!(count(&snapshot, "t"), 0);
    // More than 4096 frames: the WAL index needs a second 32 KiB region.
    for batch in 0..10 {
        w.execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<500)
             INSERT INTO t SELECT {batch} * 500 + i, randomblob(900) FROM n;"
        ))
        .unwrap();
    }
    let wal = fx.mem.file_size("/big.db-wal").unwrap();
    assert!(
        wal / (24 + 1024) > 5000,
        "only {} frames",
        wal / (24 + 1024)
    );
    // Other connections (and threads) read through the larger index.
    let uri = fx.uri("/big.db");
    let n: i64 = thread::spawn(move || {
        Connection::open(uri)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(n, 5000);
    assert_eq!(count(&snapshot, "t"), 0, "the old snapshot is unchanged");
    snapshot.commit().unwrap();
    assert_eq!(count(&old, "t"), 5000);
    w.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    assert_eq!(fx.mem.file_size("/big.db-wal"), Some(0));
    assert_eq!(integrity(&w), "ok");
    assert_eq!(count(&old, "t"), 5000);
}
