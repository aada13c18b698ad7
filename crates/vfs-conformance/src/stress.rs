//! Concurrency stress: bank transfers between accounts by many writer
//! threads, while reader threads check in every read transaction that no
//! money appeared or vanished and that the balances match the transfer log
//! (no partial transaction is ever visible).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

use crate::Backend;
use crate::check::{assert_integrity, code, rows};

/// How much to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Writer threads, one connection each.
    pub writers: usize,
    /// Reader threads, one connection each.
    pub readers: usize,
    /// Transfers per writer.
    pub transfers: usize,
    /// Accounts.
    pub accounts: i64,
    /// WAL mode (otherwise a rollback journal).
    pub wal: bool,
    /// Seed of the writers' choices.
    pub seed: u64,
}

impl Plan {
    /// The CI size: 4 writers × 150 transfers, 2 readers, 20 accounts.
    pub fn ci(wal: bool) -> Plan {
        Plan {
            writers: 4,
            readers: 2,
            transfers: 150,
            accounts: 20,
            wal,
            seed: 1,
        }
    }

    /// The long size: 8 writers × 5,000 transfers, 4 readers.
    pub fn long(wal: bool) -> Plan {
        Plan {
            writers: 8,
            readers: 4,
            transfers: 5000,
            accounts: 50,
            wal,
            seed: 2,
        }
    }
}

/// What a stress run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The backend's label.
    pub backend: String,
    /// `wal` or `rollback`.
    pub mode: &'static str,
    /// Transfers committed.
    pub transfers: u64,
    /// Read transactions that checked the invariants.
    pub reads: u64,
    /// Transactions retried after `SQLITE_BUSY`.
    pub busy_retries: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stress[{} {}]: {} transfers, {} consistent read transactions, {} busy retries, {:.2?}",
            self.backend, self.mode, self.transfers, self.reads, self.busy_retries, self.elapsed
        )
    }
}

const START: i64 = 1000;

const CONSISTENT: &str = "SELECT count(*) FROM acct a WHERE a.bal != 1000 \
    - (SELECT coalesce(sum(amt), 0) FROM log WHERE src = a.id) \
    + (SELECT coalesce(sum(amt), 0) FROM log WHERE dst = a.id)";

fn is_busy(e: &rusqlite::Error) -> bool {
    let c = code(e) & 0xff;
    c == vfs_core::codes::SQLITE_BUSY || c == vfs_core::codes::SQLITE_LOCKED
}

fn transfer(c: &Connection, src: i64, dst: i64, amt: i64, writer: usize) -> rusqlite::Result<()> {
    c.execute_batch("BEGIN IMMEDIATE")?;
    let r = (|| {
        c.execute("UPDATE acct SET bal = bal - ?1 WHERE id = ?2", [amt, src])?;
        c.execute("UPDATE acct SET bal = bal + ?1 WHERE id = ?2", [amt, dst])?;
        c.execute(
            "INSERT INTO log(src, dst, amt, writer) VALUES (?1, ?2, ?3, ?4)",
            [src, dst, amt, writer as i64],
        )?;
        c.execute_batch("COMMIT")
    })();
    if r.is_err() {
        let _ = c.execute_batch("ROLLBACK");
    }
    r
}

/// One read transaction checking both invariants; `Ok(false)` when busy.
fn check_once(c: &Connection, total: i64) -> rusqlite::Result<bool> {
    match c.execute_batch("BEGIN") {
        Ok(()) => {}
        Err(e) if is_busy(&e) => return Ok(false),
        Err(e) => return Err(e),
    }
    let r = (|| {
        let s1: i64 = c.query_row("SELECT sum(bal) FROM acct", [], |r| r.get(0))?;
        let bad: i64 = c.query_row(CONSISTENT, [], |r| r.get(0))?;
        let s2: i64 = c.query_row("SELECT sum(bal) FROM acct", [], |r| r.get(0))?;
        Ok((s1, bad, s2))
    })();
    let _ = c.execute_batch("COMMIT");
    match r {
        Ok((s1, bad, s2)) => {
            assert_eq!(s1, total, "a reader saw money appear or vanish");
            assert_eq!(
                s2, total,
                "a reader's snapshot moved inside its transaction"
            );
            assert_eq!(
                bad, 0,
                "a reader saw balances disagree with the log (a partial transaction)"
            );
            Ok(true)
        }
        Err(e) if is_busy(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs the bank stress on `b`; panics if an invariant breaks.
pub fn bank(b: &Backend, plan: &Plan) -> Report {
    let mode = if plan.wal { "wal" } else { "rollback" };
    let file = format!("bank-{mode}.db");
    let setup = b
        .open(&file)
        .unwrap_or_else(|e| panic!("stress on {}: open: {e}", b.name()));
    let jm = if plan.wal { "WAL" } else { "DELETE" };
    setup
        .query_row(&format!("PRAGMA journal_mode={jm}"), [], |_| Ok(()))
        .expect("journal mode");
    setup
        .execute_batch(&format!(
            "PRAGMA synchronous=OFF; \
             CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INT NOT NULL); \
             CREATE TABLE log(seq INTEGER PRIMARY KEY, src INT, dst INT, amt INT, writer INT); \
             CREATE INDEX log_src ON log(src); CREATE INDEX log_dst ON log(dst); \
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
             INSERT INTO acct SELECT i, {START} FROM s;",
            n = plan.accounts
        ))
        .expect("stress schema");
    let total = START * plan.accounts;
    let start = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let retries = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        let mut writers = Vec::new();
        for w in 0..plan.writers {
            let retries = retries.clone();
            let file = &file;
            writers.push(s.spawn(move || {
                let c = b.open(file).expect("writer connection");
                c.busy_timeout(Duration::from_secs(30)).expect("timeout");
                c.execute_batch("PRAGMA synchronous=OFF").expect("sync off");
                let mut rng = StdRng::seed_from_u64(plan.seed * 1000 + w as u64);
                for _ in 0..plan.transfers {
                    let src = rng.gen_range(1..=plan.accounts);
                    let dst = 1 + (src + rng.gen_range(0..plan.accounts - 1)) % plan.accounts;
                    let amt = rng.gen_range(1..50);
                    loop {
                        match transfer(&c, src, dst, amt, w) {
                            Ok(()) => break,
                            Err(e) if is_busy(&e) => {
                                retries.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                }
            }));
        }
        for r in 0..plan.readers {
            let done = done.clone();
            let reads = reads.clone();
            let retries = retries.clone();
            let file = &file;
            s.spawn(move || {
                let c = b.open(file).expect("reader connection");
                c.busy_timeout(Duration::from_secs(30)).expect("timeout");
                let mut mine = 0u64;
                // At least one check each, then until the writers finish.
                while mine == 0 || !done.load(Ordering::Acquire) {
                    match check_once(&c, total) {
                        Ok(true) => mine += 1,
                        Ok(false) => {
                            retries.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("reader {r}: {e}"),
                    }
                }
                reads.fetch_add(mine, Ordering::Relaxed);
            });
        }
        for w in writers {
            if let Err(p) = w.join() {
                done.store(true, Ordering::Release);
                std::panic::resume_unwind(p);
            }
        }
        done.store(true, Ordering::Release);
    });
    let ctx = format!("stress {mode} on {}", b.name());
    let n: i64 = setup
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .expect("log count");
    assert_eq!(
        n as usize,
        plan.writers * plan.transfers,
        "{ctx}: transfers logged"
    );
    assert!(check_once(&setup, total).expect("final check"), "{ctx}");
    // Exact rows: balances recomputed from the log.
    let mut bal = vec![START; plan.accounts as usize + 1];
    let mut stmt = setup.prepare("SELECT src, dst, amt FROM log").expect("log");
    let log: Vec<(i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|it| it.collect())
        .expect("log rows");
    for (src, dst, amt) in log {
        bal[src as usize] -= amt;
        bal[dst as usize] += amt;
    }
    let want: Vec<String> = (1..=plan.accounts)
        .map(|i| format!("{i}|{}", bal[i as usize]))
        .collect();
    assert_eq!(
        rows(&setup, "SELECT id, bal FROM acct ORDER BY id").expect("balances"),
        want,
        "{ctx}: balances"
    );
    assert_integrity(&setup, "main", &ctx);
    Report {
        backend: b.name().to_owned(),
        mode,
        transfers: n as u64,
        reads: reads.load(Ordering::Relaxed),
        busy_retries: retries.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}
