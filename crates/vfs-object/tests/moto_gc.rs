//! Compaction and garbage collection over the S3 protocol (moto on
//! 127.0.0.1, installed by `cargo xtask moto-install`): the objects
//! before and after, rows from a new process, a version kept by the
//! snapshot, and a stale writer whose conditional create lands in a key
//! GC freed, refused.

mod support;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use rusqlite::Connection;
use support::moto::Moto;
use support::{Node, code, count, integrity, objects, opts};
use vfs_core::codes::SQLITE_BUSY_SNAPSHOT;

const HOUR: Duration = Duration::from_secs(3600);

/// The keys of database `db` under `dir` (`log` or `snap`), by LSN.
fn keys(store: &Arc<dyn ObjectStore>, db: &str, dir: &str) -> Vec<u64> {
    let prefix = format!("t/{db}/{dir}/");
    objects(store)
        .into_iter()
        .filter_map(|(k, _)| k.strip_prefix(&prefix).and_then(|l| l.parse().ok()))
        .collect()
}

fn sum(c: &Connection) -> i64 {
    count(c, "SELECT coalesce(sum(x), 0) FROM t")
}

#[test]
fn compaction_and_gc_over_s3_refuse_a_stale_writer() {
    let store = Moto::shared().store();
    let db = "s3gc/g.db";
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open(db);
    c.execute_batch(
        "CREATE TABLE t(x INTEGER, pad BLOB);
         INSERT INTO t SELECT 0, randomblob(3000) FROM (SELECT 1 UNION ALL SELECT 2);",
    )
    .unwrap();
    for i in 1..=10 {
        c.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
    } // LSN 12
    // A writer process that read LSN 12 and will not look again.
    let stale = Node::new(store.clone(), opts(HOUR));
    let sc = stale.open(db);
    assert_eq!(sum(&sc), 55);
    for i in 11..=13 {
        c.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
    } // LSN 15
    assert_eq!(keys(&store, db, "log"), (1..=15).collect::<Vec<_>>());
    assert!(keys(&store, db, "snap").is_empty());

    let done = w.vfs.compact(db).unwrap();
    assert_eq!((done.snapshot_lsn, done.objects_written), (15, 1));
    let r = w.vfs.gc_with_retention(db, Duration::ZERO).unwrap();
    assert_eq!((r.base_lsn, r.log_objects_deleted), (15, 13), "{r}");
    // log/1 is a tombstone; the base's parent (14) and the base stay.
    assert_eq!(keys(&store, db, "log"), [1, 14, 15]);
    assert_eq!(keys(&store, db, "snap"), [15]);

    // A new process reads the rows from the snapshot; LSN 15 opens as a
    // version, 13 is no longer retained.
    let fresh = Node::new(store.clone(), opts(HOUR));
    let fc = fresh.open(db);
    assert_eq!(sum(&fc), 91);
    integrity(&fc);
    let at15 = fresh.open_with(db, "&lsn=15");
    assert_eq!(sum(&at15), 91);
    assert!(Connection::open(fresh.uri(db, "&lsn=13")).is_err());

    // The stale writer creates log/13 (GC freed the key, so S3's
    // If-None-Match lets it), then finds log/12 gone: refused, and its
    // stray removed.
    let e = sc
        .execute("INSERT INTO t(x) VALUES (1000)", [])
        .unwrap_err();
    assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT, "{e}");
    assert_eq!(keys(&store, db, "log"), [1, 14, 15]);
    // Its retry reads the truth and commits after it.
    sc.execute("INSERT INTO t(x) VALUES (1000)", []).unwrap();
    let again = Node::new(store.clone(), opts(HOUR));
    let ac = again.open(db);
    assert_eq!(sum(&ac), 1091);
    integrity(&ac);
    assert_eq!(keys(&store, db, "log"), [1, 14, 15, 16]);
}
