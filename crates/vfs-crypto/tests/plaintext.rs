//! No plaintext reaches the base: every byte written below the crypto layer
//! (temporary files included) and every byte left on the medium is scanned
//! for a marker the rows contain.

mod common;

use common::*;
use rusqlite::Connection;
use vfs_core::FileKind;

/// Writes the marker through every path SQLite has to storage: committed
/// rows (rollback journal), a rolled-back transaction, a large sort and a
/// temporary table (temp_store=FILE), nested savepoints whose sub-journal
/// spills to a file, VACUUM, then an un-checkpointed WAL.
fn workload(conn: &Connection) {
    conn.execute_batch("PRAGMA temp_store=FILE; PRAGMA cache_size=20; PRAGMA temp.cache_size=10;")
        .unwrap();
    fill(conn, 1500);
    // A rolled-back transaction (pages spill to the database, the journal
    // holds the originals).
    conn.execute_batch(
        "BEGIN;
         UPDATE t SET v = v || ' PLAINTEXT-MARKER-7f3a rolled back';
         ROLLBACK;",
    )
    .unwrap();
    // A sort larger than the sorter's memory: spilled to temporary files.
    let mut stmt = conn
        .prepare("SELECT v || printf('%.*c', 1500, 'y') AS w FROM t ORDER BY substr(v, 20) DESC")
        .unwrap();
    let sorted = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .count();
    assert_eq!(sorted, 1500);
    drop(stmt);
    // A temporary table larger than its cache: a temp database file.
    conn.execute_batch("CREATE TEMP TABLE tt AS SELECT * FROM t;")
        .unwrap();
    assert_eq!(
        int(
            conn,
            "SELECT count(*) FROM tt WHERE v LIKE 'PLAINTEXT-MARKER-7f3a%'"
        ),
        1500
    );
    // Nested savepoints: pages already in the main journal go to the
    // statement sub-journal, which spills to a file past 64 KiB.
    conn.execute_batch(
        "BEGIN;
         UPDATE t SET v = v || ' first';
         SAVEPOINT a;
         UPDATE t SET v = v || ' PLAINTEXT-MARKER-7f3a second';
         SAVEPOINT b;
         UPDATE t SET v = v || ' third';
         ROLLBACK TO b;
         RELEASE a;
         COMMIT;",
    )
    .unwrap();
    conn.execute_batch("VACUUM").unwrap();
    // An un-checkpointed WAL.
    assert_eq!(text(conn, "PRAGMA journal_mode=WAL"), "wal");
    conn.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    fill(conn, 500);
    assert_eq!(int(conn, "SELECT count(*) FROM t"), 2000);
    assert_eq!(integrity(conn), "ok");
}

fn scan(stack: Stack) {
    let env = Env::new("plaintext", stack);
    let db = env.db("secret.db");
    let conn = env.open(&db, &hexkey());
    workload(&conn);
    // While the connection is open: the WAL holds un-checkpointed frames.
    if stack.on_disk() {
        let mut files = 0;
        for entry in std::fs::read_dir(env.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let raw = std::fs::read(&path).unwrap();
            assert!(
                !contains(&raw, MARKER),
                "{} holds plaintext",
                path.display()
            );
            files += 1;
        }
        assert!(files >= 3, "database, WAL and shm");
        let wal = env.raw(&db, "-wal").unwrap();
        assert!(wal.len() > 500 * 150, "the WAL holds the last rows");
    } else {
        let mem = env.mem.as_ref().unwrap();
        assert!(mem.file_size(format!("{db}-wal")).unwrap() > 500 * 150);
        for name in mem.list() {
            for file in [name.clone(), name.with_suffix("-wal")] {
                if let Some(bytes) = mem.file_bytes(&file) {
                    assert!(!contains(&bytes, MARKER), "{file} holds plaintext");
                }
            }
        }
    }
    drop(conn);
    let hits = env.log.hits();
    assert!(hits.is_empty(), "plaintext written to the base: {hits:?}");
    // Every kind of file was written (and scanned) on the way.
    for kind in [
        FileKind::MainDb,
        FileKind::MainJournal,
        FileKind::Wal,
        FileKind::TempDb,
        FileKind::TempJournal,
        FileKind::SubJournal,
    ] {
        assert!(
            env.log.bytes(kind) > 0,
            "{stack:?}: nothing written to {kind:?}"
        );
    }
    // And it all reads back.
    let conn = env.open(&db, &hexkey());
    assert_eq!(
        int(
            &conn,
            "SELECT count(*) FROM t WHERE v LIKE '% first PLAINTEXT-MARKER-7f3a second'"
        ),
        1500
    );
    assert_eq!(integrity(&conn), "ok");
}

#[test]
fn no_plaintext_on_memdb() {
    scan(Stack::Mem);
}

#[test]
fn no_plaintext_on_disk() {
    scan(Stack::Native);
}

#[test]
fn no_plaintext_over_cksm_on_memdb() {
    scan(Stack::CksmMem);
}

#[test]
fn no_plaintext_over_cksm_on_disk() {
    scan(Stack::CksmNative);
}

/// The scanner itself: the same workload through the same spy without
/// encryption finds the marker in every kind of file.
#[test]
fn without_encryption_the_spy_sees_the_marker() {
    let (spy, log) = Spy::new(vfs_memdb::MemDb::new());
    let reg = vfs_core::register("crypto-test-spy-control", spy, false).unwrap();
    let conn = Connection::open("file:/control.db?vfs=crypto-test-spy-control").unwrap();
    workload(&conn);
    drop(conn);
    let kinds: std::collections::HashSet<FileKind> = log.hits().iter().map(|h| h.0).collect();
    for kind in [
        FileKind::MainDb,
        FileKind::MainJournal,
        FileKind::Wal,
        FileKind::TempDb,
        FileKind::TempJournal,
        FileKind::SubJournal,
    ] {
        assert!(
            kinds.contains(&kind),
            "no plaintext seen in {kind:?}: {kinds:?}"
        );
    }
    reg.unregister().map_err(|(_, e)| e).unwrap();
}
