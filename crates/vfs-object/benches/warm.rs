//! Warm reads against memdb, in one process (`cargo bench -p vfs-object`):
//! the same 100,000-row table on vfs-memdb and on vfs-object over
//! `InMemory`, SQLite's page cache kept small so that lookups reach the
//! VFS. After the first pass every page is in vfs-object's cache: no
//! request is made while measuring.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::Connection;
use vfs_object::{ObjectOptions, ObjectVfs};

const ROWS: i64 = 100_000;

fn fill(c: &Connection) {
    c.execute_batch(&format!(
        "CREATE TABLE t1(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);
         CREATE INDEX t1a ON t1(a);
         BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{ROWS})
         INSERT INTO t1 SELECT i, (i * 7919) % {ROWS}, printf('row %d %s', i, hex(randomblob(16))) FROM n;
         COMMIT;
         PRAGMA cache_size = 50;"
    ))
    .unwrap();
}

fn lookups(c: &mut Criterion) {
    let _memdb = vfs_core::register("warm-memdb", vfs_memdb::MemDb::new(), false).unwrap();
    let object = ObjectVfs::new(
        Arc::new(object_store::memory::InMemory::new()),
        "bench",
        ObjectOptions::default(),
    )
    .unwrap();
    let _object = vfs_core::register("warm-object", object.clone(), false).unwrap();
    let mut g = c.benchmark_group("point lookup by rowid, 100k rows, small page cache");
    for vfs in ["warm-memdb", "warm-object"] {
        let conn = Connection::open(format!("file:/warm.db?vfs={vfs}")).unwrap();
        fill(&conn);
        let mut s = conn.prepare("SELECT b FROM t1 WHERE id = ?1").unwrap();
        let mut i = 0i64;
        // Warm every page once.
        for id in 1..=ROWS {
            let _: String = s.query_row([id], |r| r.get(0)).unwrap();
        }
        let before = object.request_stats();
        g.bench_function(vfs.trim_start_matches("warm-"), |b| {
            b.iter(|| {
                i = (i + 7919) % ROWS;
                let v: String = s.query_row([black_box(i + 1)], |r| r.get(0)).unwrap();
                black_box(v)
            })
        });
        assert_eq!(object.request_stats(), before, "warm lookups made requests");
    }
    g.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
