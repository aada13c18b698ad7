//! Version 1 databases (written before format version 2) are still read
//! and written, in version 1: the files under `tests/data/v1/` were made by
//! the version 1 code (raw key `HEX`, 1 KiB pages, 40 rows from `fill`): a
//! database, the crash copy of a rollback-mode transaction with its hot
//! journal, and the crash copy of a WAL with a committed transaction.

mod common;

use common::*;
use vfs_crypto::rekey_database;

const ROWS: usize = 40;

/// Copies fixture `name` (and its journal or WAL, if any) into the test's
/// directory; returns the database's path there.
fn fixture(env: &Env, name: &str) -> String {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1");
    for suffix in ["", "-journal", "-wal"] {
        let from = data.join(format!("{name}{suffix}"));
        if from.exists() {
            std::fs::copy(&from, format!("{}{suffix}", env.db(name))).unwrap();
        }
    }
    env.db(name)
}

#[test]
fn a_version_1_database_reads_and_writes_in_version_1() {
    let env = Env::new("v1-rw", Stack::Native);
    let db = fixture(&env, "v1.db");
    let conn = env.open(&db, &hexkey());
    check_rows(&conn, ROWS);
    assert_eq!(
        text(&conn, "PRAGMA crypto_format"),
        "xaes-256-gcm v1, raw 256-bit key"
    );
    fill(&conn, 10);
    conn.execute_batch("BEGIN; UPDATE t SET v = v || ' x'; ROLLBACK;")
        .unwrap();
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    // Every page of it, new ones included, is still version 1.
    let raw = std::fs::read(&db).unwrap();
    let p = page_size(&raw);
    for page in raw.chunks(p) {
        assert_eq!(page[p - 48], 1, "format version byte");
    }
    check_rows(&env.open(&db, &hexkey()), ROWS + 10);
}

#[test]
fn a_version_1_hot_journal_is_rolled_back() {
    let env = Env::new("v1-hot", Stack::Native);
    let db = fixture(&env, "v1-hot.db");
    // The crash left changed pages in the database file.
    let bare = env.db("bare.db");
    std::fs::copy(&db, &bare).unwrap();
    let conn = env.open(&bare, &hexkey());
    assert!(int(&conn, "SELECT count(*) FROM t WHERE v LIKE '% crashed'") > 0);
    drop(conn);
    let conn = env.open(&db, &hexkey());
    check_rows(&conn, ROWS);
    assert_eq!(
        int(&conn, "SELECT count(*) FROM t WHERE v LIKE '% crashed'"),
        0
    );
    assert_eq!(integrity(&conn), "ok");
    assert!(!std::path::Path::new(&format!("{db}-journal")).exists());
}

#[test]
fn a_version_1_wal_is_recovered() {
    let env = Env::new("v1-wal", Stack::Native);
    let db = fixture(&env, "v1-wal.db");
    let conn = env.open(&db, &hexkey());
    check_rows(&conn, ROWS);
    assert_eq!(
        int(&conn, "SELECT count(*) FROM t WHERE v LIKE '% walled'"),
        ROWS as i64
    );
    assert_eq!(integrity(&conn), "ok");
}

#[test]
fn a_copy_of_a_version_1_database_is_version_2() {
    let env = Env::new("v1-copy", Stack::Native);
    let db = fixture(&env, "v1.db");
    let copy = env.db("v2.db");
    rekey_database(&env.uri(&db, &hexkey()), &env.uri(&copy, &hexkey())).unwrap();
    let conn = env.open(&copy, &hexkey());
    check_rows(&conn, ROWS);
    assert_eq!(
        text(&conn, "PRAGMA crypto_format"),
        "xaes-256-gcm v2, raw 256-bit key"
    );
}
