//! `MemDb::export` of a WAL database while connections open, write,
//! checkpoint and close around it: every image is a whole, consistent
//! database (export holds the WAL-index checkpoint lock without mapping the
//! index, and that lock must survive the last mapping connection leaving).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use vfs_memdb::MemDb;

const ACCOUNTS: i64 = 16;
const TOTAL: i64 = ACCOUNTS * 1000;

/// A small xorshift generator: the workload is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Opens, transfers, sometimes checkpoints, closes: `rounds` times. Each
/// close of the last connection unmaps the WAL index (the group is reset).
fn churn(fx: Arc<Fixture>, seed: u64, rounds: usize) {
    let mut rng = Rng(seed);
    for _ in 0..rounds {
        let c = fx.open("/bank.db");
        for _ in 0..=rng.below(3) {
            let (from, to, amount) = (rng.below(16), rng.below(16), rng.below(50) as i64);
            c.execute_batch(&format!(
                "BEGIN IMMEDIATE;
                 UPDATE accounts SET balance = balance - {amount} WHERE id = {from};
                 UPDATE accounts SET balance = balance + {amount} WHERE id = {to};
                 INSERT INTO log(pad) VALUES (randomblob(300));
                 UPDATE meta SET n = n + 1;
                 COMMIT;"
            ))
            .unwrap();
        }
        let checkpoint = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"][rng.below(5).min(3) as usize];
        if rng.below(2) == 0 {
            c.query_row(&format!("PRAGMA wal_checkpoint({checkpoint})"), [], |_| {
                Ok(())
            })
            .unwrap();
        }
        drop(c);
    }
}

#[test]
fn export_while_wal_connections_come_and_go() {
    let fx = Arc::new(Fixture::new("export-wal-churn"));
    {
        let c = fx.open("/bank.db");
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
             CREATE TABLE log(seq INTEGER PRIMARY KEY, pad BLOB);
             CREATE TABLE meta(n INTEGER NOT NULL);
             INSERT INTO meta VALUES (0);",
        )
        .unwrap();
        for id in 0..ACCOUNTS {
            c.execute("INSERT INTO accounts VALUES (?1, 1000)", [id])
                .unwrap();
        }
    }
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [0x9e37_79b9_7f4a_7c15u64, 0x2545_f491_4f6c_dd1d]
        .into_iter()
        .map(|seed| {
            let fx = Arc::clone(&fx);
            std::thread::spawn(move || churn(fx, seed, 200))
        })
        .collect();
    let stopper = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for w in writers {
                w.join().unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // Images are checked in a separate instance.
    let check = Fixture::with("export-wal-check", MemDb::new());
    let mut exports = 0;
    loop {
        let last = done.load(Ordering::SeqCst);
        let image = fx.mem.export("/bank.db").expect("export");
        check.mem.load("/image.db", &image).unwrap();
        let c = check.open("/image.db");
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "export #{exports} is not a whole database");
        let (n, sum): (i64, i64) = c
            .query_row("SELECT count(*), sum(balance) FROM accounts", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            (n, sum),
            (ACCOUNTS, TOTAL),
            "export #{exports} mixes transactions"
        );
        // Every committed transaction logged one row and counted it: a
        // lost or half-applied one shows as a difference.
        let (logged, counted): (i64, i64) = c
            .query_row("SELECT (SELECT count(*) FROM log), n FROM meta", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(logged, counted, "export #{exports} lost a transaction");
        drop(c);
        check.mem.delete("/image.db").unwrap();
        exports += 1;
        if last {
            break;
        }
    }
    stopper.join().unwrap();
    println!("{exports} exports");
    assert!(exports > 1, "{exports} exports");
}
