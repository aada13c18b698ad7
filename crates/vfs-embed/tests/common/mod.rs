//! Helpers shared by the integration tests: images built at test time with
//! rusqlite, and error-code extraction.
#![allow(dead_code)]

use std::path::Path;

use rusqlite::Connection;

/// The bytes of a database built by running `sql` on a fresh file (rollback
/// journal mode, 4096-byte pages).
pub fn image(sql: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("build.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    std::fs::read(&path).unwrap()
}

/// The bytes of a database built in WAL mode and checkpointed on close:
/// its header still says WAL (bytes 18 and 19 are 2).
pub fn wal_image(sql: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("build-wal.db");
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(sql).unwrap();
    drop(conn);
    assert!(!dir.path().join("build-wal.db-wal").exists());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!((bytes[18], bytes[19]), (2, 2), "header must say WAL");
    bytes
}

/// A table `t(id INTEGER PRIMARY KEY, label TEXT, n INTEGER)` with `rows`
/// rows: `label = 'row-<id>'`, `n = id * 7 % 1000`.
pub fn numbers_sql(rows: u32) -> String {
    format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, label TEXT NOT NULL, n INTEGER NOT NULL);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows})
         INSERT INTO t SELECT i, 'row-' || i, i * 7 % 1000 FROM c;
         CREATE INDEX t_n ON t(n);"
    )
}

/// `sum(n)` of [`numbers_sql`] with `rows` rows.
pub fn numbers_sum(rows: u32) -> i64 {
    (1..=i64::from(rows)).map(|i| i * 7 % 1000).sum()
}

/// The extended SQLite code of a rusqlite error, if it has one.
pub fn code(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    }
}

/// The extended code of a failed result (panics if it succeeded).
pub fn err_code<T: std::fmt::Debug>(r: rusqlite::Result<T>) -> i32 {
    let e = r.expect_err("expected an error");
    code(&e).unwrap_or_else(|| panic!("no SQLite code in {e:?}"))
}

/// `PRAGMA integrity_check` of the main database.
pub fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Reads a file's bytes.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}
