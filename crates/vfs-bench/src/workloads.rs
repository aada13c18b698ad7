//! The benchmark workloads, in the spirit of SQLite's speedtest1 (our own
//! code). Plain rusqlite only, so a peer build (SQLCipher) can include this
//! file unchanged.

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

/// How big the workloads are.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Rows inserted by the bulk load.
    pub rows: i64,
    /// Small transactions.
    pub small_txns: i64,
    /// Small transactions on disk targets, fewer: each waits for two or
    /// three `fsync`s, which take milliseconds on a busy shared disk.
    pub disk_small_txns: i64,
    /// Point lookups.
    pub lookups: i64,
    /// Range scans of 100 rows.
    pub ranges: i64,
    /// Rows updated and deleted.
    pub updates: i64,
    /// Seconds each concurrent-reader measurement runs.
    pub reader_time: Duration,
}

impl Scale {
    /// A smoke run (CI).
    pub const QUICK: Scale = Scale {
        rows: 5_000,
        small_txns: 200,
        disk_small_txns: 50,
        lookups: 5_000,
        ranges: 200,
        updates: 1_000,
        reader_time: Duration::from_millis(150),
    };
    /// The full run.
    pub const FULL: Scale = Scale {
        rows: 100_000,
        small_txns: 2_000,
        disk_small_txns: 300,
        lookups: 50_000,
        ranges: 2_000,
        updates: 10_000,
        reader_time: Duration::from_millis(1_000),
    };
}

/// One measured step: how many operations in how long.
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    /// Operations done (rows, lookups, transactions, queries).
    pub ops: u64,
    /// Wall-clock time taken.
    pub elapsed: Duration,
    /// CPU time the measuring thread used meanwhile, where the platform
    /// tells it (`CLOCK_THREAD_CPUTIME_ID`): unlike wall time it leaves out
    /// the time other processes took the CPU away, the bulk of the noise
    /// on a shared machine. `None` for multi-threaded measurements.
    pub cpu: Option<Duration>,
}

impl Measure {
    /// A measure by wall-clock time only.
    pub fn wall(ops: u64, elapsed: Duration) -> Measure {
        Measure {
            ops,
            elapsed,
            cpu: None,
        }
    }
}

/// Whether [`thread_cpu_time`] reads the clock (the instruction-count
/// mode turns it off: under valgrind rustix's direct vDSO call faults, and
/// the count needs no clock).
pub static CPU_CLOCK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// The CPU time the calling thread has used.
#[cfg(unix)]
pub fn thread_cpu_time() -> Option<Duration> {
    if !CPU_CLOCK.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Some(Duration::new(
        u64::try_from(t.tv_sec).ok()?,
        u32::try_from(t.tv_nsec).ok()?,
    ))
}

/// The CPU time the calling thread has used (not known here).
#[cfg(not(unix))]
pub fn thread_cpu_time() -> Option<Duration> {
    None
}

fn timed(ops: u64, f: impl FnOnce() -> rusqlite::Result<()>) -> rusqlite::Result<Measure> {
    let cpu = thread_cpu_time();
    let start = Instant::now();
    f()?;
    let elapsed = start.elapsed();
    Ok(Measure {
        ops,
        elapsed,
        cpu: cpu.and_then(|before| Some(thread_cpu_time()?.saturating_sub(before))),
    })
}

/// A tiny deterministic generator so every target sees the same data.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A value in `0..n`.
    pub fn below(&mut self, n: i64) -> i64 {
        (self.next() % n.max(1) as u64) as i64
    }
}

/// Words used to build text columns (speedtest1 spells numbers out; we use a
/// fixed vocabulary).
const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa",
];

fn text_for(n: u64) -> String {
    let mut s = String::with_capacity(48);
    let mut v = n;
    for _ in 0..5 {
        s.push_str(WORDS[(v % 16) as usize]);
        s.push(' ');
        v /= 16;
    }
    s
}

/// Creates the schema.
pub fn schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE t1(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c BLOB);
         CREATE INDEX t1a ON t1(a);
         CREATE TABLE t2(id INTEGER PRIMARY KEY, t1id INTEGER, d TEXT);
         CREATE INDEX t2t1 ON t2(t1id);",
    )
}

/// Bulk insert of `scale.rows` rows (and rows/4 in t2) in one transaction.
pub fn bulk_insert(conn: &mut Connection, scale: &Scale) -> rusqlite::Result<Measure> {
    let mut rng = Rng::new(1);
    timed(scale.rows as u64, || {
        let tx = conn.transaction()?;
        {
            let mut s = tx.prepare("INSERT INTO t1(id, a, b, c) VALUES (?1, ?2, ?3, ?4)")?;
            let blob = [0x5Au8; 100];
            for i in 1..=scale.rows {
                let a = rng.below(scale.rows * 4);
                s.execute(params![
                    i,
                    a,
                    text_for(a as u64),
                    &blob[..(a % 100) as usize]
                ])?;
            }
            let mut s2 = tx.prepare("INSERT INTO t2(t1id, d) VALUES (?1, ?2)")?;
            for i in 0..scale.rows / 4 {
                let t1id = rng.below(scale.rows) + 1;
                s2.execute(params![t1id, text_for(i as u64)])?;
            }
        }
        tx.commit()
    })
}

impl Scale {
    /// The scale for a disk target: fewer small transactions.
    pub fn for_disk(&self) -> Scale {
        Scale {
            small_txns: self.disk_small_txns,
            ..*self
        }
    }
}

/// Many small transactions: one insert each.
pub fn small_transactions(conn: &Connection, scale: &Scale) -> rusqlite::Result<Measure> {
    let mut rng = Rng::new(2);
    timed(scale.small_txns as u64, || {
        let mut s = conn.prepare("INSERT INTO t2(t1id, d) VALUES (?1, ?2)")?;
        for i in 0..scale.small_txns {
            s.execute(params![rng.below(scale.rows) + 1, text_for(i as u64)])?;
        }
        Ok(())
    })
}

/// Point lookups by rowid.
pub fn point_rowid(conn: &Connection, scale: &Scale) -> rusqlite::Result<Measure> {
    let mut rng = Rng::new(3);
    timed(scale.lookups as u64, || {
        let mut s = conn.prepare("SELECT b FROM t1 WHERE id = ?1")?;
        for _ in 0..scale.lookups {
            let _: Option<String> = s.query_row([rng.below(scale.rows) + 1], |r| r.get(0)).ok();
        }
        Ok(())
    })
}

/// Point lookups through an index.
pub fn point_index(conn: &Connection, scale: &Scale) -> rusqlite::Result<Measure> {
    let mut rng = Rng::new(4);
    timed(scale.lookups as u64, || {
        let mut s = conn.prepare("SELECT count(*) FROM t1 WHERE a = ?1")?;
        for _ in 0..scale.lookups {
            let _: i64 = s.query_row([rng.below(scale.rows * 4)], |r| r.get(0))?;
        }
        Ok(())
    })
}

/// Range scans of about 100 rows by rowid.
pub fn range_scan(conn: &Connection, scale: &Scale) -> rusqlite::Result<Measure> {
    let mut rng = Rng::new(5);
    timed(scale.ranges as u64, || {
        let mut s =
            conn.prepare("SELECT sum(length(b)) FROM t1 WHERE id BETWEEN ?1 AND ?1 + 99")?;
        for _ in 0..scale.ranges {
            let _: Option<i64> = s.query_row([rng.below(scale.rows)], |r| r.get(0))?;
        }
        Ok(())
    })
}

/// Updates by rowid in one transaction.
pub fn updates(conn: &mut Connection, scale: &Scale) -> rusqlite::Result<Measure> {
    let mut rng = Rng::new(6);
    timed(scale.updates as u64, || {
        let tx = conn.transaction()?;
        {
            let mut s = tx.prepare("UPDATE t1 SET a = a + 1, b = ?2 WHERE id = ?1")?;
            for i in 0..scale.updates {
                s.execute(params![rng.below(scale.rows) + 1, text_for(i as u64 * 7)])?;
            }
        }
        tx.commit()
    })
}

/// Deletes by rowid in one transaction.
pub fn deletes(conn: &mut Connection, scale: &Scale) -> rusqlite::Result<Measure> {
    let mut rng = Rng::new(7);
    timed(scale.updates as u64, || {
        let tx = conn.transaction()?;
        {
            let mut s = tx.prepare("DELETE FROM t1 WHERE id = ?1")?;
            for _ in 0..scale.updates {
                s.execute([rng.below(scale.rows) + 1])?;
            }
        }
        tx.commit()
    })
}

/// An ORDER BY on an unindexed expression with a small cache and
/// temp_store=FILE, so the sorter spills to temp files.
pub fn order_by_spill(conn: &Connection, scale: &Scale) -> rusqlite::Result<Measure> {
    timed(scale.rows as u64, || {
        conn.execute_batch("PRAGMA temp_store=FILE; PRAGMA cache_size=50;")?;
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM (SELECT b, c FROM t1 ORDER BY b || id DESC)",
            [],
            |r| r.get(0),
        )?;
        conn.execute_batch("PRAGMA cache_size=-2000;")?;
        debug_assert!(n > 0);
        Ok(())
    })
}

/// A join of t2 to t1 through the index.
pub fn join(conn: &Connection, scale: &Scale) -> rusqlite::Result<Measure> {
    timed((scale.rows / 4) as u64, || {
        let _: Option<i64> = conn.query_row(
            "SELECT sum(length(t1.b) + length(t2.d)) FROM t2 JOIN t1 ON t1.id = t2.t1id",
            [],
            |r| r.get(0),
        )?;
        Ok(())
    })
}

/// The size `PRAGMA mmap_size` is set to for the mapped reads: more than
/// any database of the bench, so every page may be mapped.
pub const MMAP_SIZE: i64 = 1 << 30;

/// The read-heavy mix of the memory-mapping comparison: point lookups by
/// rowid and through the index, then range scans, on a filled database;
/// with `mmap_size` bytes mapped (`PRAGMA mmap_size`, 0 for none) and
/// SQLite's page cache at `cache_size` (`PRAGMA cache_size`: pages, or KiB
/// when negative; SQLite's default is -2000).
pub fn read_mix(
    conn: &Connection,
    scale: &Scale,
    mmap_size: i64,
    cache_size: i64,
) -> rusqlite::Result<Measure> {
    conn.execute_batch(&format!(
        "PRAGMA mmap_size = {mmap_size}; PRAGMA cache_size = {cache_size};"
    ))?;
    let parts = [
        point_rowid(conn, scale)?,
        point_index(conn, scale)?,
        range_scan(conn, scale)?,
    ];
    Ok(Measure {
        ops: parts.iter().map(|m| m.ops).sum(),
        elapsed: parts.iter().map(|m| m.elapsed).sum(),
        cpu: parts
            .iter()
            .map(|m| m.cpu)
            .try_fold(Duration::ZERO, |acc, c| Some(acc + c?)),
    })
}

/// One step of the single-connection sequence: a named workload on a
/// connection whose database the earlier steps filled.
pub struct Step {
    /// The workload's name in reports (`point_rowid`, …).
    pub name: &'static str,
    /// Whether it only reads (read-only targets run these on a prefilled
    /// image).
    pub read_only: bool,
    /// Runs it once.
    pub run: fn(&mut Connection, &Scale) -> rusqlite::Result<Measure>,
}

/// The single-connection sequence, in order (after [`schema`]). The bench
/// runs step `k` on every target before step `k + 1`, so a target and its
/// baseline are measured back to back.
pub const STEPS: [Step; 9] = [
    Step {
        name: "bulk_insert",
        read_only: false,
        run: bulk_insert,
    },
    Step {
        name: "small_txns",
        read_only: false,
        run: |c, s| small_transactions(c, s),
    },
    Step {
        name: "point_rowid",
        read_only: true,
        run: |c, s| point_rowid(c, s),
    },
    Step {
        name: "point_index",
        read_only: true,
        run: |c, s| point_index(c, s),
    },
    Step {
        name: "range_scan",
        read_only: true,
        run: |c, s| range_scan(c, s),
    },
    Step {
        name: "update",
        read_only: false,
        run: updates,
    },
    Step {
        name: "order_by_spill",
        read_only: false,
        run: |c, s| order_by_spill(c, s),
    },
    Step {
        name: "join",
        read_only: true,
        run: |c, s| join(c, s),
    },
    Step {
        name: "delete",
        read_only: false,
        run: deletes,
    },
];

/// Fills a database and runs the single-connection workloads in order,
/// returning each step's measure (how `bench-peers` runs them; vfs-bench
/// interleaves the steps across targets instead).
#[allow(dead_code)]
pub fn single_connection(
    conn: &mut Connection,
    scale: &Scale,
) -> rusqlite::Result<Vec<(&'static str, Measure)>> {
    schema(conn)?;
    let mut out = Vec::new();
    for step in &STEPS {
        out.push((step.name, (step.run)(conn, scale)?));
    }
    Ok(out)
}
