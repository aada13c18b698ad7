//! Crashes: the files copied while a connection has them open are what a
//! power cut leaves behind. Reopened with the key, every committed
//! transaction is there.

mod common;

use std::path::Path;

use common::*;
use vfs_core::codes::SQLITE_NOTADB;

/// Copies `<db>` and its `-wal` / `-journal` (whichever exist) into `dir`,
/// as a crash would leave them (no shm: the WAL index is rebuilt).
fn snapshot(db: &str, dir: &Path) -> String {
    let name = Path::new(db).file_name().unwrap().to_str().unwrap();
    for suffix in ["", "-wal", "-journal"] {
        let from = format!("{db}{suffix}");
        if Path::new(&from).exists() {
            std::fs::copy(&from, dir.join(format!("{name}{suffix}"))).unwrap();
        }
    }
    dir.join(name).display().to_string()
}

#[test]
fn wal_crash_before_checkpoint() {
    for stack in [Stack::Native, Stack::CksmNative] {
        let env = Env::new("wal-crash", stack);
        let db = env.db("c.db");
        let conn = env.open(&db, &hexkey());
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
            .unwrap();
        fill(&conn, 200);
        conn.execute_batch("UPDATE t SET v = v || ' committed' WHERE i <= 50")
            .unwrap();
        // An open transaction whose frames are in the WAL without a commit
        // frame (its pages spill).
        let wal_len = || std::fs::metadata(format!("{db}-wal")).unwrap().len();
        let committed = wal_len();
        let writer = env.open(&db, &hexkey());
        writer
            .execute_batch("PRAGMA cache_size=2; BEGIN; UPDATE t SET v = 'uncommitted';")
            .unwrap();
        assert!(
            wal_len() > committed,
            "the open transaction spilled to the WAL"
        );
        let crashed = tempfile::tempdir().unwrap();
        let copy = snapshot(&db, crashed.path());
        writer.execute_batch("ROLLBACK").unwrap();

        let again = env.open(&copy, &hexkey());
        check_rows(&again, 200);
        assert_eq!(
            int(&again, "SELECT count(*) FROM t WHERE v LIKE '% committed'"),
            50
        );
        assert_eq!(integrity(&again), "ok");
    }
}

#[test]
fn a_torn_last_wal_frame_ends_the_log_there() {
    let env = Env::new("wal-torn", Stack::Native);
    let db = env.db("t.db");
    let conn = env.open(&db, &hexkey());
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
        .unwrap();
    fill(&conn, 200);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    conn.execute_batch("UPDATE t SET v = v || ' first' WHERE i = 1")
        .unwrap();
    conn.execute_batch("UPDATE t SET v = v || ' second' WHERE i = 2")
        .unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let copy = snapshot(&db, crashed.path());
    drop(conn);
    // Tear the last frame's page (as a power cut during its write would).
    let wal_path = format!("{copy}-wal");
    let mut wal = std::fs::read(&wal_path).unwrap();
    let n = wal.len();
    wal[n - 100..].fill(0);
    std::fs::write(&wal_path, &wal).unwrap();

    let again = env.open(&copy, &hexkey());
    assert_eq!(
        int(&again, "SELECT count(*) FROM t WHERE v LIKE '% first'"),
        1
    );
    assert_eq!(
        int(&again, "SELECT count(*) FROM t WHERE v LIKE '% second'"),
        0
    );
    check_rows(&again, 200);
    assert_eq!(integrity(&again), "ok");
}

/// A transaction that wrote to the database file before committing leaves
/// a hot journal; the next connection rolls it back.
fn hot_journal(test: &str, stack: Stack) -> (Env, String) {
    let env = Env::new(test, stack);
    let db = env.db("h.db");
    let conn = env.open(&db, &hexkey());
    conn.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
    fill(&conn, 300);
    conn.execute_batch(
        "PRAGMA cache_size=2;
         BEGIN;
         UPDATE t SET v = 'overwritten';
         DELETE FROM t WHERE i > 100;",
    )
    .unwrap();
    assert!(Path::new(&format!("{db}-journal")).exists());
    let crashed = tempfile::tempdir().unwrap().keep();
    let copy = snapshot(&db, &crashed);
    conn.execute_batch("ROLLBACK").unwrap();
    (env, copy)
}

#[test]
fn a_hot_journal_is_rolled_back() {
    for stack in [Stack::Native, Stack::CksmNative] {
        let (env, copy) = hot_journal("hot-journal", stack);
        // The crashed transaction overwrote pages in the database file.
        let conn = env.open(&copy, &hexkey());
        check_rows(&conn, 300);
        assert_eq!(integrity(&conn), "ok");
        assert!(!Path::new(&format!("{copy}-journal")).exists());
        std::fs::remove_dir_all(Path::new(&copy).parent().unwrap()).unwrap();
    }
}

#[test]
fn a_wrong_key_does_not_roll_back_a_hot_journal() {
    let (env, copy) = hot_journal("hot-journal-wrong-key", Stack::Native);
    let wrong = env.open(&copy, &format!("&hexkey={HEX2}"));
    let e = extended_code(wrong.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)));
    assert_eq!(e, SQLITE_NOTADB);
    drop(wrong);
    assert!(
        Path::new(&format!("{copy}-journal")).exists(),
        "the journal is kept"
    );
    let conn = env.open(&copy, &hexkey());
    check_rows(&conn, 300);
    assert_eq!(integrity(&conn), "ok");
    std::fs::remove_dir_all(Path::new(&copy).parent().unwrap()).unwrap();
}
