//! Every journal mode round-trips data through close and reopen, rolls back
//! (large transactions included, so pages spill to the database before the
//! rollback), and leaves its journal file in the documented state.

mod common;

use common::*;
use vfs_memdb::MemDb;

const ROWS: i64 = 300;

fn round_trip(mem_name: &str, mode: &str) {
    let fx = Fixture::new(mem_name);
    let db = format!("/jm-{}.db", mode.to_lowercase());
    let journal = format!("{db}-journal");
    let wal = format!("{db}-wal");
    let c = fx.open(&db);
    assert_eq!(
        c.query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r
            .get::<_, String>(0))
            .unwrap(),
        mode.to_lowercase()
    );
    c.execute_batch(&format!(
        "PRAGMA cache_size=10;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL, b BLOB);
         CREATE INDEX t_v ON t(v);
         BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{ROWS})
         INSERT INTO t SELECT i, 'row ' || i, randomblob(300) FROM n;
         COMMIT;"
    ))
    .unwrap();
    let sum_before: i64 = c
        .query_row("SELECT sum(length(b)) + sum(id) FROM t", [], |r| r.get(0))
        .unwrap();

    if mode != "OFF" {
        // A transaction bigger than the cache (pages spill into the
        // database file before commit), then rolled back.
        c.execute_batch(
            "BEGIN;
             UPDATE t SET b = randomblob(600), v = v || ' changed';
             DELETE FROM t WHERE id % 3 = 0;
             INSERT INTO t(v, b) SELECT 'extra', randomblob(1000) FROM t;",
        )
        .unwrap();
        assert!(count(&c, "t") > ROWS);
        c.execute_batch("ROLLBACK").unwrap();
        assert_eq!(count(&c, "t"), ROWS);
        let sum: i64 = c
            .query_row("SELECT sum(length(b)) + sum(id) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sum, sum_before);
    }

    // The journal file as each mode leaves it after a commit.
    c.execute("UPDATE t SET v = 'last' WHERE id = 1", [])
        .unwrap();
    match mode {
        "DELETE" | "MEMORY" | "OFF" => assert_eq!(fx.mem.file_size(&journal), None),
        "TRUNCATE" => assert_eq!(fx.mem.file_size(&journal), Some(0)),
        "PERSIST" => assert!(fx.mem.file_size(&journal).unwrap() > 0),
        "WAL" => assert!(fx.mem.file_size(&wal).unwrap() > 0),
        _ => unreachable!(),
    }
    assert_eq!(integrity(&c), "ok");
    drop(c);
    if mode == "WAL" {
        // The last connection checkpoints and deletes the WAL.
        assert_eq!(fx.mem.file_size(&wal), None);
    }

    // A new connection sees everything committed.
    let c = fx.open(&db);
    let expected_mode = match mode {
        "WAL" => "wal",
        _ => "delete", // the other modes are per connection
    };
    assert_eq!(journal_mode(&c), expected_mode);
    assert_eq!(count(&c, "t"), ROWS);
    let v: String = c
        .query_row("SELECT v FROM t WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "last");
    assert_eq!(integrity(&c), "ok");
}

#[test]
fn journal_mode_delete() {
    round_trip("jm-delete", "DELETE");
}

#[test]
fn journal_mode_truncate() {
    round_trip("jm-truncate", "TRUNCATE");
}

#[test]
fn journal_mode_persist() {
    round_trip("jm-persist", "PERSIST");
}

#[test]
fn journal_mode_memory() {
    round_trip("jm-memory", "MEMORY");
}

#[test]
fn journal_mode_off() {
    round_trip("jm-off", "OFF");
}

#[test]
fn journal_mode_wal() {
    round_trip("jm-wal", "WAL");
}

#[test]
fn switching_between_wal_and_rollback_keeps_data() {
    let fx = Fixture::new("jm-switch");
    let c = fx.open("/switch.db");
    c.execute_batch(
        "CREATE TABLE t(v); INSERT INTO t VALUES (1);
         PRAGMA journal_mode=WAL; INSERT INTO t VALUES (2);
         PRAGMA journal_mode=DELETE; INSERT INTO t VALUES (3);
         PRAGMA journal_mode=WAL; INSERT INTO t VALUES (4);",
    )
    .unwrap();
    assert_eq!(journal_mode(&c), "wal");
    let other = fx.open("/switch.db");
    assert_eq!(count(&other, "t"), 4);
    drop((c, other));
    assert_eq!(fx.mem.file_size("/switch.db-wal"), None);
    let image = fx.mem.export("/switch.db").unwrap();
    assert_eq!(&image[18..20], &[2, 2], "a WAL-mode database file");
    // Page sizes other than the store's 4 KiB pages work too.
    for page_size in [512, 1024, 8192, 65536] {
        let mem = MemDb::new();
        let fx = Fixture::with(&format!("jm-page-size-{page_size}"), mem);
        let c = fx.open("/p.db");
        c.execute_batch(&format!(
            "PRAGMA page_size={page_size}; PRAGMA journal_mode=WAL;
             CREATE TABLE t(b); INSERT INTO t SELECT randomblob(700) FROM
             (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<200)
              SELECT i FROM n);"
        ))
        .unwrap();
        let got: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        assert_eq!(got, page_size);
        assert_eq!(integrity(&c), "ok");
        let d = fx.open("/p.db");
        assert_eq!(count(&d, "t"), 200);
    }
}

/// `access` answers for journals from a count it keeps (the hot-journal
/// check of every read transaction skips the lock when no journal exists):
/// the count must follow journals created, persisted, deleted with their
/// database and replaced by `load`, and a hot journal must still be found.
#[test]
fn journal_existence_follows_every_way_a_journal_comes_and_goes() {
    use vfs_core::{AccessCheck, Vfs};
    let fx = Fixture::new("journal-count");
    let mem = fx.mem.clone();
    let exists =
        |p: &str| Vfs::access(&mem, vfs_core::FileName::new(p), AccessCheck::Exists).unwrap();
    let (a, b) = ("/jc-a.db", "/jc-b.db");
    let (ja, jb) = (format!("{a}-journal"), format!("{b}-journal"));

    let ca = fx.open(a);
    ca.execute_batch("CREATE TABLE t(x); BEGIN; INSERT INTO t VALUES (1);")
        .unwrap();
    assert!(exists(&ja), "a write transaction's journal");
    assert!(!exists(&jb));
    ca.execute_batch("COMMIT").unwrap();
    assert!(!exists(&ja), "DELETE mode removes it at commit");

    // PERSIST keeps the file; another database's journal does not make
    // this one exist.
    let cb = fx.open(b);
    cb.execute_batch("PRAGMA journal_mode=PERSIST; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    assert!(exists(&jb) && !exists(&ja));
    drop(cb);
    mem.delete(b).unwrap();
    assert!(!exists(&jb), "deleting the database deletes its journal");

    // A hot journal, as a crashed writer leaves it: the database with a
    // spilled, uncommitted transaction and its journal of before-images,
    // put back by hand. The next reader must find it and roll back.
    ca.execute_batch(
        "PRAGMA journal_mode=DELETE; PRAGMA cache_size=5; BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<200)
         INSERT INTO t SELECT randomblob(500) FROM n;",
    )
    .unwrap();
    let (db_mid, journal_mid) = (mem.file_bytes(a).unwrap(), mem.file_bytes(&ja).unwrap());
    assert!(
        db_mid.len() > 10 * 4096,
        "the transaction spilled into the database"
    );
    ca.execute_batch("ROLLBACK").unwrap();
    drop(ca);
    mem.load_raw(a, &db_mid).unwrap();
    assert!(!exists(&ja), "load drops the journal");
    {
        use vfs_core::{File, FileKind, OpenAccess, OpenName, OpenOptions};
        let opts = OpenOptions::new(FileKind::MainJournal, OpenAccess::Create);
        let mut j = Vfs::open(&mem, &OpenName::new(&ja, FileKind::MainJournal), opts).unwrap();
        j.write_at(&journal_mid, 0).unwrap();
    }
    assert!(exists(&ja), "the hot journal is there");
    let c = fx.open(a);
    assert_eq!(count(&c, "t"), 1, "rolled back from the hot journal");
    assert_eq!(integrity(&c), "ok");
    assert!(!exists(&ja), "and removed after the rollback");
}

/// The same count for WAL files (SQLite asks whether `<db>-wal` exists at
/// the start of every rollback-mode read transaction): a connection opening
/// a database whose WAL holds committed frames must find it, whatever
/// other databases come and go; and the count follows WAL files created,
/// removed by a journal-mode change, by `load` and by `delete`.
#[test]
fn wal_existence_follows_every_way_a_wal_comes_and_goes() {
    use vfs_core::{AccessCheck, Vfs};
    let fx = Fixture::new("wal-count");
    let mem = fx.mem.clone();
    let exists =
        |p: &str| Vfs::access(&mem, vfs_core::FileName::new(p), AccessCheck::Exists).unwrap();
    let (a, b) = ("/wc-a.db", "/wc-b.db");
    let (wa, wb) = (format!("{a}-wal"), format!("{b}-wal"));

    let ca = fx.open(a);
    ca.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    assert!(!exists(&wa), "rollback mode has no WAL");
    ca.execute_batch("PRAGMA journal_mode=WAL; INSERT INTO t VALUES (2);")
        .unwrap();
    assert!(exists(&wa) && !exists(&wb));
    // Committed frames live only in the WAL while `ca` stays open: a new
    // connection sees them only if it finds the WAL.
    let reader = fx.open(a);
    assert_eq!(count(&reader, "t"), 2, "the new connection found the WAL");
    drop(reader);

    let cb = fx.open(b);
    cb.execute_batch("CREATE TABLE t(x); PRAGMA journal_mode=WAL; INSERT INTO t VALUES (1);")
        .unwrap();
    cb.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
    assert!(!exists(&wb), "leaving WAL mode removes it");
    assert!(exists(&wa), "the other database's WAL stays");
    drop(cb);
    mem.delete(b).unwrap();

    ca.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
    assert!(!exists(&wa));
    // Now no WAL anywhere: a WAL made afterwards must be seen again.
    ca.execute_batch("PRAGMA journal_mode=WAL; INSERT INTO t VALUES (3);")
        .unwrap();
    let reader = fx.open(a);
    assert_eq!(count(&reader, "t"), 3, "a WAL made after none existed");
    drop(reader);
    drop(ca);
    assert!(
        !exists(&wa),
        "the last connection checkpoints and removes it"
    );

    // `load` and `delete` drop a database's WAL with it (SQLite removes a
    // WAL when its last connection closes, so make them by hand).
    let keep = fx.open(a);
    keep.execute_batch("INSERT INTO t VALUES (4);").unwrap();
    assert!(exists(&wa), "WAL mode persists in the header");
    let image = mem.export(a).unwrap();
    drop(keep);
    let make_wal = |name: &str| {
        use vfs_core::{File, FileKind, OpenAccess, OpenName, OpenOptions};
        let opts = OpenOptions::new(FileKind::Wal, OpenAccess::Create);
        let mut w = Vfs::open(&mem, &OpenName::new(name, FileKind::Wal), opts).unwrap();
        w.write_at(&[0; 32], 0).unwrap();
    };
    mem.load(b, &image).unwrap();
    make_wal(&wb);
    assert!(exists(&wb));
    mem.load(b, &image).unwrap();
    assert!(!exists(&wb), "load drops the WAL");
    make_wal(&wb);
    mem.delete(b).unwrap();
    assert!(!exists(&wb), "delete drops the WAL");
    let c = fx.open(a);
    assert_eq!(count(&c, "t"), 4);
    assert_eq!(integrity(&c), "ok");
}
