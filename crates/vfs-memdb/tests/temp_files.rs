//! Temporary and transient files: sorts and temp tables with
//! `temp_store=FILE`, materialised subqueries, statement journals, VACUUM.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use vfs_core::{AccessCheck, FileKind, FileName, FileNameBuf, OpenName, OpenOptions, Result, Vfs};
use vfs_memdb::{MemDb, MemFile};

/// A MemDb that counts the files SQLite opens, by kind and whether named.
#[derive(Clone)]
struct Counting {
    mem: MemDb,
    opens: Arc<Mutex<HashMap<(FileKind, bool), usize>>>,
}

impl Vfs for Counting {
    type File = MemFile;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<MemFile> {
        *self
            .opens
            .lock()
            .unwrap()
            .entry((opts.kind, name.path().is_some()))
            .or_default() += 1;
        self.mem.open(name, opts)
    }
    fn delete(&self, path: &FileName, sync_dir: bool) -> Result<()> {
        Vfs::delete(&self.mem, path, sync_dir)
    }
    fn access(&self, path: &FileName, check: AccessCheck) -> Result<bool> {
        self.mem.access(path, check)
    }
    fn full_pathname(&self, path: &FileName) -> Result<FileNameBuf> {
        self.mem.full_pathname(path)
    }
}

#[test]
fn temp_store_file_large_sort_temp_tables_subqueries_and_vacuum() {
    let counting = Counting {
        mem: MemDb::new(),
        opens: Arc::default(),
    };
    let reg = vfs_core::register("memdb-test-temp-files", counting.clone(), false).unwrap();
    let c = rusqlite::Connection::open("file:/sort.db?vfs=memdb-test-temp-files").unwrap();
    const N: i64 = 20_000;
    c.execute_batch(&format!(
        "PRAGMA temp_store=FILE;
         PRAGMA cache_size=20;
         CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, pad TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{N})
         INSERT INTO t SELECT i, (i * 7919) % 10007, hex(randomblob(50)) FROM n;"
    ))
    .unwrap();

    // A sort much larger than the cache: the sorter spills to temp files.
    let mut stmt = c.prepare("SELECT k, pad FROM t ORDER BY k, pad").unwrap();
    let keys: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    drop(stmt);
    assert_eq!(keys.len() as i64, N);
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "sorted");

    // DISTINCT / GROUP BY / a materialised subquery.
    let distinct: i64 = c
        .query_row("SELECT count(DISTINCT k) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(distinct, N.min(10_007));
    let distinct_pads: i64 = c
        .query_row("SELECT count(DISTINCT pad) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(distinct_pads, N);
    let groups: i64 = c
        .query_row(
            "SELECT count(*) FROM (SELECT k, count(*) AS c FROM t GROUP BY k HAVING c > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(groups, N - 10_007);
    let top: i64 = c
        .query_row(
            "SELECT sum(k) FROM (SELECT k FROM t ORDER BY k DESC LIMIT 100)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let expected: i64 = {
        let mut ks: Vec<i64> = (1..=N).map(|i| (i * 7919) % 10007).collect();
        ks.sort_unstable_by(|a, b| b.cmp(a));
        ks[..100].iter().sum()
    };
    assert_eq!(top, expected);

    // A temp table (the temp database on a file), an index on it, a join.
    c.execute_batch(
        "CREATE TEMP TABLE tt AS SELECT id, k FROM t WHERE id % 2 = 0;
         CREATE INDEX temp.tt_k ON tt(k);",
    )
    .unwrap();
    assert_eq!(count(&c, "temp.tt"), N / 2);
    let joined: i64 = c
        .query_row(
            "SELECT count(*) FROM t JOIN tt ON t.id = tt.id AND t.k = tt.k",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(joined, N / 2);

    // A statement that fails half way inside a transaction: its statement
    // journal undoes it, the earlier statement stays.
    c.execute_batch("CREATE TABLE u(k INTEGER UNIQUE); BEGIN; INSERT INTO u VALUES (-1);")
        .unwrap();
    let r = c.execute(
        "INSERT INTO u SELECT k FROM t ORDER BY id", // duplicates after 10007 rows
        [],
    );
    assert_code(r, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE);
    c.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&c, "u"), 1);

    // VACUUM goes through a transient database.
    c.execute_batch("DELETE FROM t WHERE id % 2 = 1; VACUUM;")
        .unwrap();
    assert_eq!(count(&c, "t"), N / 2);
    assert_eq!(integrity(&c), "ok");

    let opens = counting.opens.lock().unwrap().clone();
    let nameless = |kind| opens.get(&(kind, false)).copied().unwrap_or(0);
    // The temp schema (and VACUUM's scratch copy), the sorter's spill file,
    // an ephemeral table that outgrew the cache: all nameless.
    assert!(nameless(FileKind::TempDb) >= 1, "temp database: {opens:?}");
    assert!(nameless(FileKind::TempJournal) >= 1, "sorter: {opens:?}");
    assert!(nameless(FileKind::TransientDb) >= 1, "ephemeral: {opens:?}");
    // Nameless files never appear in the store.
    assert_eq!(counting.mem.list(), ["/sort.db"]);
    drop(c);
    reg.unregister().unwrap();
}
