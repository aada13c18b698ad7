//! Rust heap allocations on the page I/O path of whole stacks under real
//! SQL: the bench's global allocator counts (per thread, only inside
//! [`count_allocations`]), a [`Wrap`](vfs_observe::Wrap) with a counting
//! recorder counts page-sized reads and writes, and the workload is one
//! that allocates nothing in Rust by itself (integer parameters and
//! results): point lookups with a 10-page cache, so most of them read
//! pages, then single-row updates, each a transaction, in WAL mode, once
//! every file has reached its size (a file that grows in memory allocates
//! its new pages; in rollback-journal mode every write transaction also
//! opens, and deletes, its journal file: both allocate per file or per
//! transaction, not per page I/O).
//! SQLite's own memory (its page cache, its journal buffers) is C heap and
//! not counted.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use vfs_core::alloc_count::count_allocations;
use vfs_core::{Op, Vfs};
use vfs_observe::{Event, LatencyMode, Recorder};

use crate::report::{AllocProbe, Report};
use crate::rounds::Res;
use crate::workloads::{self, Scale};

/// Counts page-sized reads, writes and pages lent (memory-mapped reads).
#[derive(Default)]
struct PageIos(AtomicU64);

impl Recorder for PageIos {
    fn record(&self, e: &Event<'_>) {
        if matches!(e.op, Op::Read | Op::Write | Op::Fetch) && e.bytes >= 512 {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn latency(&self) -> LatencyMode {
        LatencyMode::Off
    }
}

const LOOKUPS: i64 = 2_000;
const UPDATES: i64 = 200;

/// Measures one stack, registered (wrapped) under `vfs`, on database `uri`,
/// its reads memory-mapped when `name` ends in `, mmap`.
fn probe<V: Vfs>(name: &str, vfs: V, uri_of: impl Fn(&str) -> String) -> Res<AllocProbe> {
    let ios = Arc::new(PageIos::default());
    let registered = format!("bench-alloc-{}", name.replace(['(', ')', ',', ' '], "-"));
    let reg = vfs_core::register(
        &registered,
        vfs_observe::Wrap::new(vfs, Arc::clone(&ios)),
        false,
    )?;
    let mut conn = Connection::open(uri_of(&registered))?;
    let scale = Scale {
        rows: 5_000,
        ..Scale::QUICK
    };
    // mvcc has no WAL (its readers never block in rollback mode): there
    // every write transaction also opens and deletes its journal.
    let wal = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .is_ok_and(|mode| mode == "wal");
    workloads::schema(&conn)?;
    workloads::bulk_insert(&mut conn, &scale)?;
    // A checkpoint every 100 WAL pages, so that after the warm-up the WAL
    // is rewritten from its start instead of growing (a growing in-memory
    // file must allocate its new pages: that is storage, not I/O cost).
    conn.execute_batch("PRAGMA cache_size = 10; PRAGMA wal_autocheckpoint = 100;")?;
    if name.ends_with(", mmap") {
        conn.execute_batch(&format!("PRAGMA mmap_size = {}", workloads::MMAP_SIZE))?;
    }
    let mut lookup = conn.prepare("SELECT a FROM t1 WHERE id = ?1")?;
    let mut update = conn.prepare("UPDATE t1 SET a = a + 1 WHERE id = ?1")?;
    let mut rng = workloads::Rng::new(5);
    let mut run = |lookups: i64, updates: i64| -> rusqlite::Result<()> {
        for _ in 0..lookups {
            let _: i64 = lookup.query_row([rng.below(scale.rows) + 1], |r| r.get(0))?;
        }
        for _ in 0..updates {
            update.execute([rng.below(scale.rows) + 1])?;
        }
        Ok(())
    };
    // Warm up: statements, buffers, scratch space and the WAL reach their
    // size; with mapped reads every page of t1 is lent once, from the
    // database file (a memdb page gets its overread room the first time it
    // is lent: a one-time reallocation per page, like a new page's
    // allocation).
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let _: i64 = conn.query_row("SELECT sum(length(b)) FROM t1", [], |r| r.get(0))?;
    run(200, 300)?;
    let before = ios.0.load(Ordering::Relaxed);
    let (result, allocations) = count_allocations(|| run(LOOKUPS, UPDATES));
    result?;
    let page_ios = ios.0.load(Ordering::Relaxed) - before;
    drop((lookup, update));
    drop(conn);
    reg.unregister().map_err(|(_, e)| e)?;
    Ok(AllocProbe {
        target: if wal {
            name.to_owned()
        } else {
            format!("{name} (rollback journal)")
        },
        allocations,
        page_ios,
    })
}

/// Measures the stacks of [`crate::report::goals::NO_ALLOC_STACKS`] and
/// mvcc.
pub fn probe_all(tmp: &Path, report: &mut Report) -> Res<()> {
    let memory = |vfs: &str| format!("file:/alloc.db?vfs={vfs}");
    let dir = tmp.to_owned();
    let disk = move |vfs: &str| format!("file:{}/alloc-{vfs}.db?vfs={vfs}", dir.display());
    let key = vfs_crypto::Key::from_bytes([7; 32]);
    let probes = [
        probe("memdb", vfs_memdb::MemDb::new(), memory)?,
        probe(
            "cksm(memdb)",
            vfs_cksm::Cksm::new(vfs_memdb::MemDb::new()),
            memory,
        )?,
        probe(
            "crypto(memdb)",
            vfs_crypto::Crypto::new(vfs_memdb::MemDb::new(), key),
            memory,
        )?,
        probe("native", vfs_core::Native::new()?, disk.clone())?,
        probe("memdb, mmap", vfs_memdb::MemDb::new(), memory)?,
        probe("native, mmap", vfs_core::Native::new()?, disk)?,
        probe("mvcc", vfs_mvcc::Mvcc::new(), memory)?,
    ];
    for p in probes {
        report.add_allocations(p);
    }
    Ok(())
}
