//! Shared (`/name`) versus private names, database lifetime, separate
//! instances, and unregistration.

mod common;

use common::*;
use rusqlite::{Connection, OpenFlags};
use vfs_core::codes;
use vfs_memdb::MemDb;

#[test]
fn shared_name_is_one_database_for_every_connection() {
    let fx = Fixture::new("naming-shared");
    let a = fx.open("/x.db");
    let b = fx.open("/x.db");
    a.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('from a');")
        .unwrap();
    b.execute("INSERT INTO t VALUES ('from b')", []).unwrap();
    for c in [&a, &b] {
        let rows: Vec<String> = c
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, ["from a", "from b"]);
    }
    // A third connection from another thread sees the same database.
    let uri = fx.uri("/x.db");
    let n: i64 = std::thread::spawn(move || {
        Connection::open(uri)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(fx.mem.list(), ["/x.db"]);
}

#[test]
fn private_name_is_a_separate_database_per_connection() {
    let fx = Fixture::new("naming-private");
    let a = fx.open("x.db");
    let b = fx.open("x.db");
    a.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    // b does not see a's table, and can create its own under the same name.
    assert_eq!(count(&b, "sqlite_master"), 0);
    b.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (2), (3);")
        .unwrap();
    assert_eq!(count(&a, "t"), 1);
    assert_eq!(count(&b, "t"), 2);
    // Both exist in the store under unique names while open...
    let names = fx.mem.list();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("x.db#private-")));
    assert_ne!(names[0], names[1]);
    // ...and each is dropped when its connection closes it.
    drop(a);
    assert_eq!(fx.mem.list().len(), 1);
    drop(b);
    assert!(fx.mem.list().is_empty());
    assert_eq!(fx.mem.used(), 0);
    // Reopening the private name starts from an empty database.
    let c = fx.open("x.db");
    assert_eq!(count(&c, "sqlite_master"), 0);
}

#[test]
fn private_databases_have_their_own_journals_wal_and_locks() {
    let fx = Fixture::new("naming-private-wal");
    let a = fx.open_no_wait("w.db");
    let b = fx.open_no_wait("w.db");
    for c in [&a, &b] {
        assert_eq!(
            c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
                .unwrap(),
            "wal"
        );
        c.execute_batch("CREATE TABLE t(v)").unwrap();
    }
    // Two write transactions at once, no timeout: no BUSY, because the
    // databases (and their WAL indexes and locks) are separate.
    a.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES ('a');")
        .unwrap();
    b.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES ('b'); INSERT INTO t VALUES ('b');")
        .unwrap();
    a.execute_batch("COMMIT").unwrap();
    b.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&a, "t"), 1);
    assert_eq!(count(&b, "t"), 2);
    // Each private database has its own WAL file in the store.
    let wals: Vec<u64> = fx
        .mem
        .list()
        .iter()
        .map(|db| {
            fx.mem
                .file_size(format!("{db}-wal"))
                .expect("a WAL per database")
        })
        .collect();
    assert_eq!(wals.len(), 2);
    assert!(wals.iter().all(|&n| n > 0));
    // Rollback journals too.
    let c = fx.open_no_wait("j.db");
    let d = fx.open_no_wait("j.db");
    c.execute_batch("CREATE TABLE t(v); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .unwrap();
    d.execute_batch("CREATE TABLE t(v); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .unwrap();
    c.execute_batch("COMMIT").unwrap();
    d.execute_batch("COMMIT").unwrap();
    drop((a, b, c, d));
    assert!(fx.mem.list().is_empty(), "{:?}", fx.mem.list());
}

#[test]
fn shared_database_lives_until_deleted() {
    let fx = Fixture::new("naming-lifetime");
    {
        let c = fx.open("/keep.db");
        c.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (42);")
            .unwrap();
    }
    // Every connection closed: still there, same content.
    assert_eq!(fx.mem.list(), ["/keep.db"]);
    assert!(fx.mem.used() > 0);
    let c = fx.open("/keep.db");
    let v: i64 = c.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(v, 42);
    // Deleting an open database is refused.
    let e = fx.mem.delete("/keep.db").unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_BUSY), "{e}");
    drop(c);
    fx.mem.delete("/keep.db").unwrap();
    assert!(fx.mem.list().is_empty());
    assert_eq!(fx.mem.used(), 0);
    let e = fx.mem.delete("/keep.db").unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_NOTFOUND), "{e}");
    // Opening the name again creates a new, empty database.
    let c = fx.open("/keep.db");
    assert_eq!(count(&c, "sqlite_master"), 0);
}

#[test]
fn opening_a_missing_shared_database_read_only_fails() {
    let fx = Fixture::new("naming-readonly-missing");
    let r = Connection::open_with_flags(
        fx.uri("/missing.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .and_then(|c| {
        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    assert_code(r, codes::SQLITE_CANTOPEN);
    assert!(fx.mem.list().is_empty());
    // Read-only on an existing one works and refuses writes.
    fx.open("/there.db")
        .execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    let ro = Connection::open_with_flags(
        fx.uri("/there.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    assert_eq!(count(&ro, "t"), 1);
    assert_code(
        ro.execute("INSERT INTO t VALUES (2)", []),
        codes::SQLITE_READONLY,
    );
}

#[test]
fn separate_instances_do_not_share_data() {
    let one = Fixture::with("naming-instance-one", MemDb::new());
    let two = Fixture::with("naming-instance-two", MemDb::new());
    let a = one.open("/same.db");
    let b = two.open("/same.db");
    a.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('one');")
        .unwrap();
    assert_eq!(count(&b, "sqlite_master"), 0);
    b.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('two'), ('two');")
        .unwrap();
    assert_eq!(count(&a, "t"), 1);
    assert_eq!(count(&b, "t"), 2);
    drop((a, b));
    // Each instance exports its own content.
    assert_ne!(
        one.mem.export("/same.db").unwrap(),
        two.mem.export("/same.db").unwrap()
    );
    // A clone is the same instance.
    let clone = one.mem.clone();
    clone.delete("/same.db").unwrap();
    assert!(one.mem.list().is_empty());
    assert_eq!(two.mem.list(), ["/same.db"]);
}

#[test]
fn unregister_is_refused_while_open_and_the_data_outlives_it() {
    let mut fx = Fixture::new("naming-unregister");
    let c = fx.open("/kept.db");
    c.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('still here');")
        .unwrap();
    let reg = fx.registration();
    let (reg, e) = reg.unregister().expect_err("a file is open");
    assert_eq!(e.code(), Some(codes::SQLITE_BUSY), "{e}");
    drop(c);
    reg.unregister().unwrap();
    assert!(!vfs_core::find(&fx.vfs));
    // The instance still holds the database; register it again.
    let again =
        vfs_core::register("memdb-test-naming-unregister-2", fx.mem.clone(), false).unwrap();
    let c = Connection::open("file:/kept.db?vfs=memdb-test-naming-unregister-2").unwrap();
    let v: String = c.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(v, "still here");
    drop(c);
    again.unregister().unwrap();
}
