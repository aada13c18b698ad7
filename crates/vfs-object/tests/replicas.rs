//! Replicas at scale: one writer process and four reader processes share a
//! database through moto (a real S3-protocol server on loopback).
//!
//! The writer moves money between accounts (each account on its own page,
//! so a commit changes several pages) and records each transfer with the
//! LSN it commits at; it logs when each LSN's commit returned. Readers poll
//! (each with its own `poll`) and check, in every read transaction, that
//! the state is a committed one and never a mix: the money is conserved,
//! the transfer count matches the LSN the reader reads, the LSN never goes
//! back. Each read's **staleness** is computed afterwards: 0 when the
//! reader saw the newest LSN committed (its PUT returned) before the read
//! began, else the time since the first commit it did not see had returned.
//!
//! `replicas_smoke` runs for a few seconds (CI); `replicas_for_a_minute`
//! (ignored) for 60 s and prints the figures of `docs/object.md`.
//! `VFS_OBJECT_REPLICAS_SECS` overrides the duration of either.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::moto::{Moto, store_at};
use support::{Node, count, integrity, is_busy, opts};

const CHILD: &str = "VFS_OBJECT_REPLICA";
const ACCOUNTS: i64 = 8;
const START_BALANCE: i64 = 1000;
/// Poll intervals of the four readers, in milliseconds.
const READER_POLLS: [u64; 4] = [0, 100, 250, 1000];
/// The writer's pause between commits.
const WRITE_EVERY: Duration = Duration::from_millis(20);
/// Histogram buckets of staleness: upper bounds in milliseconds.
const BUCKETS: [u64; 11] = [0, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn spec_get(spec: &str, key: &str) -> String {
    spec.split(';')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing from {spec:?}"))
        .to_owned()
}

fn spawn_child(entry: &str, spec: String) -> Child {
    support::spawn_child(entry, CHILD, spec, Stdio::null())
}

#[test]
fn replicas_smoke() {
    replicas(3, "s3/replicas-smoke.db");
}

#[test]
#[ignore = "one minute; prints the figures of docs/object.md"]
fn replicas_for_a_minute() {
    replicas(60, "s3/replicas-minute.db");
}

fn replicas(default_secs: u64, db: &str) {
    let secs: u64 = std::env::var("VFS_OBJECT_REPLICAS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_secs);
    let moto = Moto::shared();
    let dir = tempfile::tempdir().unwrap();
    let setup = Node::new(moto.store(), opts(Duration::ZERO));
    let c = setup.open(db);
    c.execute_batch(&format!(
        "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL, pad BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{ACCOUNTS})
         INSERT INTO acct SELECT i, {START_BALANCE}, zeroblob(3000) FROM n;
         CREATE TABLE transfer(lsn INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, amount INTEGER);"
    ))
    .unwrap();
    let base: u64 = c
        .query_row("PRAGMA object_lsn", [], |r| r.get::<_, String>(0))
        .unwrap()
        .parse()
        .unwrap();
    drop(c);
    let file = |n: &str| -> PathBuf { dir.path().join(n) };
    let common = |out: &PathBuf| {
        format!(
            "port={};db={db};secs={secs};base={base};out={}",
            moto.port,
            out.display()
        )
    };
    let writer = spawn_child("child_replica_writer", common(&file("writer")));
    let readers: Vec<Child> = READER_POLLS
        .iter()
        .enumerate()
        .map(|(i, poll)| {
            spawn_child(
                "child_replica_reader",
                format!("{};poll={poll}", common(&file(&format!("reader{i}")))),
            )
        })
        .collect();
    for mut ch in std::iter::once(writer).chain(readers) {
        assert!(ch.wait().unwrap().success(), "a child failed");
    }

    // The writer's log: when each LSN's commit returned.
    let committed: BTreeMap<u64, u64> = lines(&file("writer"))
        .iter()
        .filter_map(|l| {
            let (lsn, at) = l.split_once(' ')?;
            Some((lsn.parse().ok()?, at.parse().ok()?))
        })
        .collect();
    let commits = committed.len();
    assert!(commits > 0);
    let check = Node::new(moto.store(), opts(Duration::ZERO));
    let c = check.open(db);
    integrity(&c);
    assert_eq!(
        count(&c, "SELECT sum(bal) FROM acct"),
        ACCOUNTS * START_BALANCE
    );
    assert_eq!(count(&c, "SELECT count(*) FROM transfer"), commits as i64);

    println!(
        "{secs} s, 1 writer ({commits} commits, one every ≥{WRITE_EVERY:?}) and {} readers over moto",
        READER_POLLS.len()
    );
    for (i, poll) in READER_POLLS.iter().enumerate() {
        let reads = lines(&file(&format!("reader{i}")));
        let stats = reads.last().cloned().unwrap_or_default();
        let mut histogram = [0u64; BUCKETS.len() + 1];
        let mut lsn_lag = 0u64;
        let mut n = 0u64;
        let mut worst = 0u64;
        for l in reads.iter().filter(|l| !l.starts_with("stats")) {
            let (at, lsn) = l.split_once(' ').unwrap();
            let (at, lsn): (u64, u64) = (at.parse().unwrap(), lsn.parse().unwrap());
            // The first commit the reader did not see, if it had returned.
            let staleness = match committed.get(&(lsn + 1)) {
                Some(&t) if t <= at => at - t,
                _ => 0,
            };
            let newest = committed.range(..).rev().find(|(_, t)| **t <= at);
            lsn_lag = lsn_lag.max(newest.map_or(0, |(l, _)| l.saturating_sub(lsn)));
            worst = worst.max(staleness);
            let b = BUCKETS.iter().position(|&b| staleness <= b);
            histogram[b.unwrap_or(BUCKETS.len())] += 1;
            n += 1;
        }
        assert!(n > 0, "reader {i} read nothing");
        let cells: Vec<String> = histogram
            .iter()
            .enumerate()
            .map(|(k, h)| match BUCKETS.get(k) {
                Some(b) => format!("≤{b}:{h}"),
                None => format!(">{}:{h}", BUCKETS[BUCKETS.len() - 1]),
            })
            .collect();
        println!(
            "reader {i} poll={poll} ms: {n} reads, staleness ms {}, worst {worst} ms, \
             largest LSN lag {lsn_lag}; {stats}",
            cells.join(" ")
        );
        // A reader with poll p sees every commit within p plus a few
        // requests (generous: a loaded machine).
        assert!(worst <= poll + 3000, "reader {i}: {worst} ms stale");
    }
}

fn lines(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "child process of replicas_*"]
fn child_replica_writer() {
    let spec = std::env::var(CHILD).expect("run by its parent test");
    let port: u16 = spec_get(&spec, "port").parse().unwrap();
    let secs: u64 = spec_get(&spec, "secs").parse().unwrap();
    let node = Node::new(store_at(port), opts(Duration::ZERO));
    let c = node.open(&spec_get(&spec, "db"));
    let mut out = std::fs::File::create(spec_get(&spec, "out")).unwrap();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |m: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m as u64) as i64
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        let src = next(ACCOUNTS) + 1;
        let dst = (src + next(ACCOUNTS - 1)) % ACCOUNTS + 1;
        let amount = next(50) + 1;
        let r = (|| -> rusqlite::Result<u64> {
            c.execute_batch("BEGIN")?;
            let lsn: u64 = c
                .query_row("PRAGMA object_lsn", [], |r| r.get::<_, String>(0))?
                .parse()
                .unwrap();
            let bal: i64 =
                c.query_row("SELECT bal FROM acct WHERE id = ?1", [src], |r| r.get(0))?;
            let amount = amount.min(bal);
            c.execute(
                "UPDATE acct SET bal = bal - ?1 WHERE id = ?2",
                [amount, src],
            )?;
            c.execute(
                "UPDATE acct SET bal = bal + ?1 WHERE id = ?2",
                [amount, dst],
            )?;
            // The LSN this transaction commits at (the only writer).
            c.execute(
                "INSERT INTO transfer VALUES (?1, ?2, ?3, ?4)",
                [lsn as i64 + 1, src, dst, amount],
            )?;
            c.execute_batch("COMMIT")?;
            Ok(lsn + 1)
        })();
        match r {
            Ok(lsn) => writeln!(out, "{lsn} {}", unix_ms()).unwrap(),
            Err(e) if is_busy(&e) => panic!("the only writer lost a race: {e}"),
            Err(e) => panic!("commit: {e}"),
        }
        std::thread::sleep(WRITE_EVERY);
    }
}

#[test]
#[ignore = "child process of replicas_*"]
fn child_replica_reader() {
    let spec = std::env::var(CHILD).expect("run by its parent test");
    let port: u16 = spec_get(&spec, "port").parse().unwrap();
    let secs: u64 = spec_get(&spec, "secs").parse().unwrap();
    let base: i64 = spec_get(&spec, "base").parse().unwrap();
    let poll: u64 = spec_get(&spec, "poll").parse().unwrap();
    let node = Node::new(store_at(port), opts(Duration::from_millis(poll)));
    let c = node.open(&spec_get(&spec, "db"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(spec_get(&spec, "out")).unwrap());
    let started = Instant::now();
    let mut last = 0i64;
    while started.elapsed() < Duration::from_secs(secs) + Duration::from_millis(500) {
        c.execute_batch("BEGIN").unwrap();
        let at = unix_ms();
        let (lsn, sum, transfers, top): (i64, i64, i64, i64) = c
            .query_row(
                "SELECT (SELECT sum(bal) FROM acct), (SELECT count(*) FROM transfer),
                        (SELECT coalesce(max(lsn), 0) FROM transfer)",
                [],
                |r| Ok((0, r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map(|(_, s, t, m)| {
                let lsn: String = c.query_row("PRAGMA object_lsn", [], |r| r.get(0)).unwrap();
                (lsn.parse().unwrap(), s, t, m)
            })
            .unwrap();
        c.execute_batch("COMMIT").unwrap();
        // A committed state, whole: money conserved, exactly the transfers
        // up to the LSN read, and never back in time.
        assert_eq!(sum, ACCOUNTS * START_BALANCE, "at LSN {lsn}");
        assert_eq!(transfers, lsn - base, "at LSN {lsn}");
        assert!(
            top == lsn || transfers == 0,
            "at LSN {lsn}: newest transfer {top}"
        );
        assert!(lsn >= last, "went back from {last} to {lsn}");
        last = lsn;
        writeln!(out, "{at} {lsn}").unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    writeln!(out, "stats: {}", node.vfs.request_stats()).unwrap();
}
