//! WAL on a Rust backend through the in-process shared-memory capability:
//! many threads and connections, checkpoints of every kind, a WAL index of
//! several regions, and the version-1 fallback.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;
use rusqlite::Connection;

const ACCOUNTS: i64 = 50;
const START_BALANCE: i64 = 1_000;

fn connect(vfs: &str, db: &str) -> Connection {
    let c = Connection::open(format!("file:{db}?vfs={vfs}")).unwrap();
    // Retries inside SQLite (not test synchronisation): WAL readers can meet
    // a checkpointer restarting the log.
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Simple seeded generator (xorshift) so runs are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct StressReport {
    transactions: u64,
    reads: u64,
    checkpoints: u64,
}

/// One writer moving money between accounts and running checkpoints of every
/// mode; `readers` threads checking on every read that the total never
/// changes and no account is missing.
fn wal_stress(page_size: u32, transactions: u64, readers: usize) -> StressReport {
    let name = unique_name(&format!("wal-stress-{page_size}"));
    let vfs = TestVfs::new(true);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let setup = connect(&name, "bank.db");
    setup
        .execute_batch(&format!(
            "PRAGMA page_size={page_size}; PRAGMA journal_mode=WAL;
             CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL, pad BLOB);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{ACCOUNTS})
             INSERT INTO acct SELECT i, {START_BALANCE}, randomblob(200) FROM c;"
        ))
        .unwrap();
    let mode: String = setup
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(readers + 1));
    let mut handles = Vec::new();
    for _ in 0..readers {
        let (name, done, reads, start) = (name.clone(), done.clone(), reads.clone(), start.clone());
        handles.push(thread::spawn(move || {
            let conn = connect(&name, "bank.db");
            start.wait();
            let mut local = 0u64;
            // At least a few reads even if the writer finishes first.
            while !done.load(Ordering::Acquire) || local < 20 {
                let (sum, n): (i64, i64) = conn
                    .query_row("SELECT sum(bal), count(*) FROM acct", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .expect("reader query");
                assert_eq!(n, ACCOUNTS, "an account vanished");
                assert_eq!(sum, ACCOUNTS * START_BALANCE, "torn or partial read");
                local += 1;
            }
            reads.fetch_add(local, Ordering::Relaxed);
        }));
    }
    let writer = {
        let name = name.clone();
        let start = start.clone();
        thread::spawn(move || {
            let mut conn = connect(&name, "bank.db");
            start.wait();
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ page_size as u64);
            let modes = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"];
            let mut checkpoints = 0;
            for t in 0..transactions {
                let from = (rng.next() % ACCOUNTS as u64) as i64 + 1;
                let to = (rng.next() % ACCOUNTS as u64) as i64 + 1;
                let amount = (rng.next() % 50) as i64;
                let tx = conn.transaction().unwrap();
                tx.execute(
                    "UPDATE acct SET bal = bal - ?1 WHERE id = ?2",
                    (amount, from),
                )
                .unwrap();
                tx.execute("UPDATE acct SET bal = bal + ?1 WHERE id = ?2", (amount, to))
                    .unwrap();
                tx.commit().unwrap();
                if t % 97 == 96 {
                    let mode = modes[checkpoints % modes.len()];
                    // FULL/RESTART/TRUNCATE may report busy=1 while readers
                    // hold old snapshots; that is an answer, not an error.
                    let _: (i64, i64, i64) = conn
                        .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                        .unwrap();
                    checkpoints += 1;
                }
            }
            checkpoints as u64
        })
    };
    let checkpoints = writer.join().expect("writer thread");
    done.store(true, Ordering::Release);
    for h in handles {
        h.join().expect("reader thread");
    }
    assert_eq!(integrity(&setup), "ok");
    let sum: i64 = setup
        .query_row("SELECT sum(bal) FROM acct", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, ACCOUNTS * START_BALANCE);
    drop(setup);
    assert_eq!(
        vfs.shm_state("bank.db"),
        Some((0, 0)),
        "every connection unmapped and the index was freed"
    );
    reg.unregister().unwrap();
    StressReport {
        transactions,
        reads: reads.load(Ordering::Relaxed),
        checkpoints,
    }
}

#[test]
fn one_writer_four_readers_with_checkpoints_4096() {
    let r = wal_stress(4096, 3_000, 4);
    assert_eq!(r.transactions, 3_000);
    assert!(r.checkpoints >= 30);
}

#[test]
fn one_writer_four_readers_page_size_512() {
    wal_stress(512, 1_500, 4);
}

#[test]
fn one_writer_four_readers_page_size_65536() {
    wal_stress(65536, 600, 4);
}

#[test]
#[ignore = "long stress: cargo test -p vfs-core --test wal -- --ignored"]
fn long_wal_stress() {
    for ps in [512, 4096, 65536] {
        let r = wal_stress(ps, 50_000, 4);
        eprintln!(
            "page size {ps}: {} transactions, {} reads, {} checkpoints",
            r.transactions, r.reads, r.checkpoints
        );
    }
}

#[test]
fn wal_index_grows_past_one_region() {
    let name = unique_name("wal-regions");
    let vfs = TestVfs::new(true);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let w = connect(&name, "big.db");
    let r = connect(&name, "big.db");
    w.execute_batch(
        "PRAGMA page_size=512; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER);
         INSERT INTO t VALUES (1, 0);",
    )
    .unwrap();
    // Every commit appends at least one frame; 5,000 commits exceed the
    // ~4,000 frames one 32 KiB region indexes.
    for i in 1..=5_000 {
        w.execute("UPDATE t SET v = ?1 WHERE id = 1", [i]).unwrap();
    }
    let (conns, regions) = vfs.shm_state("big.db").unwrap();
    assert_eq!(conns, 1, "only the writer has mapped so far");
    assert!(regions >= 2, "WAL index has {regions} region(s)");
    let v: i64 = r
        .query_row("SELECT v FROM t", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        v, 5_000,
        "a second connection reads through a multi-region index"
    );
    let wal_len = vfs.bytes("big.db-wal").unwrap().len();
    assert!(wal_len > 5_000 * 512, "wal has {wal_len} bytes");
    let (busy, log, ckpt): (i64, i64, i64) = w
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap();
    assert_eq!((busy, log, ckpt), (0, 0, 0), "TRUNCATE left an empty log");
    assert_eq!(vfs.bytes("big.db-wal").unwrap().len(), 0);
    assert_eq!(integrity(&r), "ok");
    drop((w, r));
    assert_eq!(vfs.shm_state("big.db"), Some((0, 0)));
    reg.unregister().unwrap();
}

#[test]
fn without_shared_memory_wal_needs_exclusive_locking() {
    let name = unique_name("no-shm");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let c = connect(&name, "plain.db");
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        mode, "delete",
        "no xShmMap: SQLite keeps the rollback journal"
    );
    drop(c);
    let c = connect(&name, "excl.db");
    c.execute_batch("PRAGMA locking_mode=EXCLUSIVE").unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        mode, "wal",
        "exclusive locking keeps the index in heap memory"
    );
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(integrity(&c), "ok");
    drop(c);
    reg.unregister().unwrap();
}

#[test]
fn reopen_after_last_close_rebuilds_the_index_from_the_wal() {
    let name = unique_name("wal-reopen");
    let vfs = TestVfs::new(true);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let c = connect(&name, "r.db");
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
         CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);",
    )
    .unwrap();
    // Keep the WAL file on close so the next open must recover from it.
    c.execute_batch("PRAGMA journal_size_limit=-1").unwrap();
    let wal_before = vfs.bytes("r.db-wal").unwrap();
    assert!(!wal_before.is_empty());
    // Simulate a crash: copy the files, then open the copies fresh.
    let db_copy = vfs.bytes("r.db").unwrap();
    drop(c);
    assert_eq!(vfs.shm_state("r.db"), Some((0, 0)));
    let name2 = unique_name("wal-reopen-copy");
    let vfs2 = TestVfs::new(true);
    let reg2 = vfs_core::register(&name2, vfs2.clone(), false).unwrap();
    vfs2.put("copy.db", db_copy);
    vfs2.put("copy.db-wal", wal_before);
    let c2 = connect(&name2, "copy.db");
    let n: i64 = c2
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        n, 3,
        "committed rows recovered from the un-checkpointed WAL"
    );
    assert_eq!(integrity(&c2), "ok");
    drop(c2);
    reg.unregister().unwrap();
    reg2.unregister().unwrap();
}
