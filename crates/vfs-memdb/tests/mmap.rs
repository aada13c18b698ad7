//! Memory-mapped reads (`PRAGMA mmap_size`): SQLite reads memdb's pages in
//! place, the rows are right, and pages stay valid while the database
//! changes: concurrent WAL readers beside a writer and checkpoints, VACUUM
//! and incremental vacuum shrinking the file, a reader holding pages while
//! another connection rewrites the database.
//!
//! A thin shim under SQLite counts the pages memdb lends, so each test also
//! shows the mapped path was taken (or, where it must not be, that it was
//! not).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use vfs_core::alloc_count::{CountingAllocator, count_allocations};
use vfs_core::{File, Mapping, OpenName, OpenOptions, Registration, Result, Vfs};
use vfs_memdb::{MemDb, MemFile};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// MemDb, counting the pages it lends.
struct Counting {
    mem: MemDb,
    lent: Arc<AtomicU64>,
}

struct CountingFile {
    base: MemFile,
    lent: Arc<AtomicU64>,
}

impl Vfs for Counting {
    type File = CountingFile;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<CountingFile> {
        Ok(CountingFile {
            base: self.mem.open(name, opts)?,
            lent: Arc::clone(&self.lent),
        })
    }
    vfs_core::forward_vfs!(mem);
}

impl File for CountingFile {
    fn fetch(&mut self, offset: u64, len: usize) -> Result<Option<Mapping>> {
        let r = self.base.fetch(offset, len);
        if let Ok(Some(m)) = &r {
            assert!(m.len() >= len);
            self.lent.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    vfs_core::forward_file!(base, except fetch);
}

struct Fixture {
    mem: MemDb,
    vfs: String,
    lent: Arc<AtomicU64>,
    _reg: Registration,
}

const MMAP: i64 = 256 << 20;

impl Fixture {
    fn new(test: &str) -> Fixture {
        let mem = MemDb::new();
        let lent = Arc::new(AtomicU64::new(0));
        let vfs = format!("memdb-mmap-{test}");
        let reg = vfs_core::register(
            &vfs,
            Counting {
                mem: mem.clone(),
                lent: Arc::clone(&lent),
            },
            false,
        )
        .unwrap();
        Fixture {
            mem,
            vfs,
            lent,
            _reg: reg,
        }
    }

    /// A connection with `PRAGMA mmap_size` at `mmap` bytes.
    fn open(&self, db: &str, mmap: i64) -> Connection {
        let c = Connection::open(format!("file:{db}?vfs={}", self.vfs)).unwrap();
        c.busy_timeout(Duration::from_secs(30)).unwrap();
        let answer: i64 = c
            .query_row(&format!("PRAGMA mmap_size = {mmap}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(answer, mmap, "memdb reports the limit in force");
        c
    }

    fn lent(&self) -> u64 {
        self.lent.load(Ordering::Relaxed)
    }
}

fn integrity(c: &Connection) {
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

fn fill(c: &Connection, rows: i64) {
    c.execute_batch(&format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b BLOB);
         CREATE INDEX ta ON t(a);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{rows})
         INSERT INTO t SELECT i, (i * 7919) % 1000, zeroblob(200 + i % 300) FROM n;"
    ))
    .unwrap();
}

/// What a scan, an index lookup and point lookups answer.
fn answers(c: &Connection) -> (i64, i64, i64, Vec<i64>) {
    let (count, bytes): (i64, i64) = c
        .query_row("SELECT count(*), sum(length(b)) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let indexed: i64 = c
        .query_row(
            "SELECT count(*) FROM t WHERE a BETWEEN 100 AND 199",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut s = c.prepare("SELECT a FROM t WHERE id = ?1").unwrap();
    let points = (1..=40)
        .map(|k| s.query_row([k * 97], |r| r.get::<_, i64>(0)).unwrap_or(-1))
        .collect();
    (count, bytes, indexed, points)
}

#[test]
fn mapped_reads_answer_what_copied_reads_answer() {
    let f = Fixture::new("answers");
    let writer = f.open("/a.db", 0);
    fill(&writer, 5_000);
    let plain = f.open("/a.db", 0);
    let expected = answers(&plain);
    assert_eq!(f.lent(), 0, "mmap_size 0: nothing lent");
    let mapped = f.open("/a.db", MMAP);
    assert_eq!(answers(&mapped), expected);
    let lent = f.lent();
    assert!(
        lent > 100,
        "the mapped connection read in place ({lent} pages)"
    );
    integrity(&mapped);
    // A limit below the file's size maps its first pages only; the rest is
    // read; answers stay the same.
    let partly = f.open("/a.db", 64 * 1024);
    assert_eq!(answers(&partly), expected);
    // Writes through the plain connection are seen by the mapped one.
    writer
        .execute_batch("UPDATE t SET a = a + 1 WHERE id % 97 = 0")
        .unwrap();
    let after = answers(&plain);
    assert_ne!(after, expected);
    assert_eq!(answers(&mapped), after);
    integrity(&mapped);
}

#[test]
fn page_sizes_up_to_4k_are_lent_larger_ones_read() {
    for (page_size, lends) in [(1024, true), (4096, true), (8192, false), (65536, false)] {
        let f = Fixture::new(&format!("pagesize-{page_size}"));
        let c = f.open("/p.db", MMAP);
        c.execute_batch(&format!("PRAGMA page_size = {page_size}"))
            .unwrap();
        fill(&c, 3_000);
        let expected = answers(&f.open("/p.db", 0));
        let before = f.lent();
        let reader = f.open("/p.db", MMAP);
        assert_eq!(answers(&reader), expected, "page size {page_size}");
        assert_eq!(f.lent() > before, lends, "page size {page_size}");
        integrity(&reader);
    }
}

/// VACUUM and incremental vacuum shrink a database whose pages were lent
/// moments before (rollback journal and WAL), with mapped reads before and
/// after: the rows and integrity hold, and the file gets smaller.
#[test]
fn vacuum_and_incremental_vacuum_shrink_a_mapped_database() {
    for mode in ["DELETE", "WAL"] {
        let f = Fixture::new(&format!("vacuum-{mode}"));
        let c = f.open("/v.db", MMAP);
        c.execute_batch(&format!(
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = {mode};"
        ))
        .unwrap();
        fill(&c, 6_000);
        // Pages still in the WAL are read from it; checkpointed ones mapped.
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        let lent = f.lent();
        answers(&c);
        assert!(f.lent() > lent, "{mode}: pages lent");
        let full = f.mem.file_size("/v.db").unwrap();

        c.execute_batch("DELETE FROM t WHERE id % 3 <> 0").unwrap();
        let expected = answers(&f.open("/v.db", 0));
        c.execute_batch("PRAGMA incremental_vacuum(200)").unwrap();
        if mode == "WAL" {
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        }
        let after_incremental = f.mem.file_size("/v.db").unwrap();
        assert!(
            after_incremental < full,
            "{mode}: incremental vacuum shrank it"
        );
        assert_eq!(answers(&c), expected, "{mode}");
        integrity(&c);

        c.execute_batch("DELETE FROM t WHERE id % 2 = 0; VACUUM;")
            .unwrap();
        if mode == "WAL" {
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        }
        assert!(f.mem.file_size("/v.db").unwrap() < after_incremental);
        let expected = answers(&f.open("/v.db", 0));
        let lent = f.lent();
        assert_eq!(answers(&c), expected, "{mode}");
        assert!(f.lent() > lent, "{mode}: the shrunk file is lent too");
        integrity(&c);
    }
}

/// A WAL reader keeps reading mapped pages of its snapshot (a statement
/// half way through a scan) while another connection deletes most rows,
/// VACUUMs and checkpoints: it finishes the scan with its snapshot's rows;
/// once it is done the checkpoint shrinks the file.
#[test]
fn a_reader_holding_mapped_pages_beside_a_vacuum() {
    let f = Fixture::new("reader-vacuum");
    let w = f.open("/r.db", MMAP);
    w.execute_batch("PRAGMA journal_mode = WAL").unwrap();
    fill(&w, 6_000);
    w.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let full = f.mem.file_size("/r.db").unwrap();

    let r = f.open("/r.db", MMAP);
    let mut scan = r
        .prepare("SELECT id, length(b) FROM t ORDER BY id")
        .unwrap();
    let mut rows = scan.query([]).unwrap();
    let mut seen = 0i64;
    let mut bytes = 0i64;
    for _ in 0..1_000 {
        let row = rows.next().unwrap().unwrap();
        seen += 1;
        bytes += row.get::<_, i64>(1).unwrap();
    }
    let lent = f.lent();
    assert!(lent > 0, "the scan reads mapped pages");

    w.execute_batch("DELETE FROM t WHERE id > 10; VACUUM;")
        .unwrap();
    w.execute_batch("PRAGMA wal_checkpoint(PASSIVE)").unwrap();
    while let Some(row) = rows.next().unwrap() {
        seen += 1;
        bytes += row.get::<_, i64>(1).unwrap();
    }
    drop(rows);
    drop(scan);
    assert_eq!(seen, 6_000, "the reader saw its whole snapshot");
    let expected: i64 = (1..=6_000).map(|i| 200 + i % 300).sum();
    assert_eq!(bytes, expected);

    w.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    assert!(f.mem.file_size("/r.db").unwrap() < full / 10);
    let n: i64 = r
        .query_row("SELECT count(*) FROM t", [], |x| x.get(0))
        .unwrap();
    assert_eq!(n, 10);
    integrity(&r);
}

const ACCOUNTS: i64 = 200;
const START: i64 = 1_000;

/// Readers on their own threads check, in every read transaction through
/// mapped pages, that money is conserved and the ledger only grows, while
/// a writer moves money and checkpoints (which writes database pages the
/// readers map) throughout.
#[test]
fn wal_readers_and_a_writer_with_mapped_reads() {
    let f = Arc::new(Fixture::new("wal-readers"));
    let setup = f.open("/bank.db", MMAP);
    setup
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL, pad BLOB);
             CREATE TABLE ledger(id INTEGER PRIMARY KEY, amount INTEGER, note BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{ACCOUNTS})
             INSERT INTO acct SELECT i, {START}, zeroblob(500) FROM n;"
        ))
        .unwrap();
    const READERS: usize = 3;
    const TRANSFERS: u64 = 400;
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(READERS + 1));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (f, done, barrier) = (Arc::clone(&f), Arc::clone(&done), Arc::clone(&barrier));
            thread::spawn(move || {
                let mut c = f.open("/bank.db", MMAP);
                barrier.wait();
                let mut last = 0i64;
                let mut checks = 0u64;
                // At least 50 checks, and on until the writer is done.
                while checks < 50 || !done.load(Ordering::Acquire) {
                    let tx = c.transaction().unwrap();
                    let (sum, n): (i64, i64) = tx
                        .query_row("SELECT sum(bal), count(*) FROM acct", [], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .unwrap();
                    assert_eq!((sum, n), (ACCOUNTS * START, ACCOUNTS));
                    let entries: i64 = tx
                        .query_row("SELECT count(*) FROM ledger", [], |r| r.get(0))
                        .unwrap();
                    assert!(entries >= last, "the ledger went back");
                    last = entries;
                    tx.commit().unwrap();
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    let mut w = f.open("/bank.db", MMAP);
    barrier.wait();
    let mut x: u64 = 0x5eed;
    for i in 0..TRANSFERS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (src, dst, amount) = (
            (x % ACCOUNTS as u64) as i64 + 1,
            ((x >> 20) % ACCOUNTS as u64) as i64 + 1,
            (x >> 40) as i64 % 50,
        );
        let tx = w
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.execute(
            "UPDATE acct SET bal = bal - ?2 WHERE id = ?1",
            [src, amount],
        )
        .unwrap();
        tx.execute(
            "UPDATE acct SET bal = bal + ?2 WHERE id = ?1",
            [dst, amount],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO ledger(amount, note) VALUES (?1, zeroblob(300))",
            [amount],
        )
        .unwrap();
        tx.commit().unwrap();
        if i % 25 == 24 {
            w.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .unwrap();
        }
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().expect("reader panicked") >= 50);
    }
    w.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let entries: i64 = w
        .query_row("SELECT count(*) FROM ledger", [], |r| r.get(0))
        .unwrap();
    assert_eq!(entries, TRANSFERS as i64);
    integrity(&w);
    assert!(f.lent() > 0, "readers read mapped pages");
}

/// Reading in place allocates nothing in Rust once every page has been
/// lent once (a page gets its overread room the first time): point lookups
/// with a 10-page cache, every page they touch lent.
#[test]
fn mapped_reads_do_not_allocate() {
    let f = Fixture::new("no-alloc");
    let c = f.open("/n.db", 0);
    fill(&c, 5_000);
    c.execute_batch("PRAGMA cache_size = 10").unwrap();
    let size: i64 = c
        .query_row(&format!("PRAGMA mmap_size = {MMAP}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(size, MMAP);
    let scan = |c: &Connection| -> i64 {
        c.query_row("SELECT sum(length(b)) FROM t", [], |r| r.get(0))
            .unwrap()
    };
    let bytes = scan(&c);
    let mut lookup = c.prepare("SELECT a FROM t WHERE id = ?1").unwrap();
    let mut x: u64 = 0x5eed;
    let mut run = |n: usize| {
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % 5_000) as i64 + 1;
            let a: i64 = lookup.query_row([id], |r| r.get(0)).unwrap();
            assert_eq!(a, (id * 7919) % 1000);
        }
    };
    run(100);
    let before = f.lent();
    let ((), allocations) = count_allocations(|| run(2_000));
    let lent = f.lent() - before;
    assert!(lent >= 2_000, "every lookup read lent pages ({lent})");
    assert_eq!(allocations, 0, "{lent} pages lent");
    drop(lookup);
    assert_eq!(scan(&c), bytes);
}
