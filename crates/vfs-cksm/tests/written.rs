//! Databases written through the shim: exact trailers, per-page detection,
//! WAL crash recovery, enabling, and the guards that keep the format on.

mod common;

use std::path::Path;

use common::*;
use rusqlite::Connection;
use vfs_cksm::{Cksm, enable};
use vfs_core::{Native, codes};

fn populate(conn: &Connection, rows: i64) {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS doc(id INTEGER PRIMARY KEY, title TEXT, body BLOB);
         CREATE INDEX IF NOT EXISTS doc_title ON doc(title);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut st = tx
            .prepare(
                "INSERT INTO doc(title, body) VALUES (printf('title %06d', ?1), \
                 zeroblob(CASE WHEN ?1 % 40 = 0 THEN 9000 ELSE 300 END))",
            )
            .unwrap();
        for i in 0..rows {
            st.execute([i]).unwrap();
        }
    }
    tx.commit().unwrap();
}

#[test]
fn written_databases_carry_the_reference_trailers() {
    let env = Env::new("written-trailers", Cksm::new(Native::new().unwrap()));
    for size in [512, 4096, 65536] {
        let path = env.path(&format!("w{size}.db"));
        let conn = env.open(&path);
        conn.execute_batch(&format!("PRAGMA page_size={size}"))
            .unwrap();
        populate(&conn, 400);
        conn.execute("DELETE FROM doc WHERE id % 3 = 0", [])
            .unwrap();
        assert!(int(&conn, "PRAGMA freelist_count") > 0, "free pages too");
        assert_eq!(text(&conn, "PRAGMA checksum_format"), "cksumvfs");
        drop(conn);
        let pages = assert_reference_trailers(&path);
        assert!(pages > 5);
        assert_eq!(page_size(&std::fs::read(&path).unwrap()), size);

        // It is an ordinary SQLite database for stock SQLite.
        let plain = Connection::open(&path).unwrap();
        assert_eq!(int(&plain, "SELECT count(*) FROM doc"), 267);
        assert_eq!(integrity(&plain), "ok");
    }
}

/// One table per page: flipping a byte of page k makes every read of page k
/// fail with `SQLITE_IOERR_DATA`, while the other pages still read.
#[test]
fn a_flipped_byte_fails_every_read_of_that_page_only() {
    let env = Env::new("per-page", Cksm::new(Native::new().unwrap()));
    let intact = env.path("pages.db");
    let tables = 24;
    {
        let conn = env.open(&intact);
        conn.execute_batch("PRAGMA page_size=1024").unwrap();
        for t in 0..tables {
            conn.execute_batch(&format!(
                "CREATE TABLE t{t}(v); INSERT INTO t{t} VALUES ('table {t}');"
            ))
            .unwrap();
        }
    }
    // Which page holds which table (read through the shim, intact).
    let owners: Vec<(String, i64)> = {
        let conn = env.open(&intact);
        let mut st = conn
            .prepare("SELECT name, pageno FROM dbstat ORDER BY pageno")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let pages = assert_reference_trailers(&intact);
    assert_eq!(owners.len(), pages, "every page is a live page");
    let raw = std::fs::read(&intact).unwrap();
    let read = |conn: &Connection, table: &str| -> rusqlite::Result<String> {
        conn.query_row(&format!("SELECT v FROM {table}"), [], |r| r.get(0))
    };
    for (owner, pgno) in &owners {
        let work = env.path("work.db");
        let mut bytes = raw.clone();
        bytes[(*pgno as usize - 1) * 1024 + 700] ^= 0x08;
        std::fs::write(&work, &bytes).unwrap();
        let conn = env.open(&work);
        if owner == "sqlite_schema" {
            // Page 1: nothing can be read without the schema.
            assert_ioerr_data(read(&conn, "t0"));
            assert_ioerr_data(read(&conn, "t5"));
        } else {
            assert_ioerr_data(read(&conn, owner));
            // Every read of it fails, not just the first.
            assert_ioerr_data(read(&conn, owner));
            for other in ["t0", "t11", "t23"] {
                if other != owner {
                    let want = format!("table {}", &other[1..]);
                    assert_eq!(read(&conn, other).unwrap(), want);
                }
            }
            // Verification off: the page reads (the flipped byte is in
            // unused space), and back on it fails again.
            assert_eq!(text(&conn, "PRAGMA checksum_verification=off"), "0");
            assert_eq!(
                read(&conn, owner).unwrap(),
                format!("table {}", &owner[1..])
            );
            assert_eq!(text(&conn, "PRAGMA checksum_verification=on"), "1");
            // (The page now sits in the cache: drop it to read it again.)
            drop(conn);
            let conn = env.open(&work);
            assert_ioerr_data(read(&conn, owner));
        }
        std::fs::remove_file(&work).unwrap();
    }
}

fn crash_copy(db: &Path, dst: &Path) {
    std::fs::copy(db, dst).unwrap();
    std::fs::copy(
        format!("{}-wal", db.display()),
        format!("{}-wal", dst.display()),
    )
    .unwrap();
}

/// A commit that lives only in the WAL survives a crash: the copy taken
/// while the connection is open (as a power cut would leave the files)
/// recovers with every commit and verifies.
#[test]
fn wal_commits_survive_a_crash_before_checkpoint() {
    let env = Env::new("wal-crash", Cksm::new(Native::new().unwrap()));
    let path = env.path("wal.db");
    let conn = env.open(&path);
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; PRAGMA synchronous=FULL;",
    )
    .unwrap();
    populate(&conn, 300);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    populate(&conn, 200);
    conn.execute("UPDATE doc SET title = 'committed' WHERE id = 42", [])
        .unwrap();
    assert!(
        std::fs::metadata(format!("{}-wal", path.display()))
            .unwrap()
            .len()
            > 0
    );
    let copy = env.path("copy.db");
    crash_copy(&path, &copy);
    drop(conn);

    let again = env.open(&copy);
    assert_eq!(int(&again, "SELECT count(*) FROM doc"), 500);
    assert_eq!(
        text(&again, "SELECT title FROM doc WHERE id = 42"),
        "committed"
    );
    assert_eq!(integrity(&again), "ok");
    assert_eq!(text(&again, "PRAGMA checksum_verification"), "1");
    again
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(again);
    assert_reference_trailers(&copy);
}

#[test]
fn enable_converts_an_existing_database() {
    let env = Env::new("enable", Cksm::new(Native::new().unwrap()));
    for wal in [false, true] {
        let path = env.path(&format!("plain-{wal}.db"));
        {
            let plain = Connection::open(&path).unwrap();
            if wal {
                plain.execute_batch("PRAGMA journal_mode=WAL").unwrap();
            }
            populate(&plain, 300);
        }
        assert_eq!(std::fs::read(&path).unwrap()[20], 0, "no reserve yet");
        let conn = env.open(&path);
        assert_eq!(text(&conn, "PRAGMA checksum_format"), "none");
        assert_eq!(text(&conn, "PRAGMA checksum_verification"), "0");
        // Another connection is open (idle) meanwhile and follows the change.
        enable(&env.uri(&path)).unwrap();
        assert_eq!(text(&conn, "PRAGMA checksum_format"), "cksumvfs");
        assert_eq!(text(&conn, "PRAGMA checksum_verification"), "1");
        enable(&env.uri(&path)).unwrap(); // idempotent
        assert_eq!(int(&conn, "SELECT count(*) FROM doc"), 300);
        if wal {
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        assert_eq!(integrity(&conn), "ok");
        drop(conn);
        assert_reference_trailers(&path);
    }

    // A database not opened through a cksm VFS is refused, and left as it
    // was; a missing one is not created.
    let other = env.path("x.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let err = enable(&format!("file:{}", other.display())).unwrap_err();
    assert_eq!(err.code(), Some(codes::SQLITE_MISUSE));
    assert!(err.message().contains("cksm"), "{err}");
    assert_eq!(std::fs::read(&other).unwrap()[20], 0, "still no reserve");
    let err = enable(&env.uri(&env.path("missing.db"))).unwrap_err();
    assert_eq!(err.code(), Some(codes::SQLITE_CANTOPEN), "{err}");
    assert!(!env.path("missing.db").exists());
}

/// Once on, the format stays on: `VACUUM` to another page size keeps it
/// (every page of the new size checksummed), and a backup that would write
/// page 1 without the reserve is refused, leaving the database intact.
#[test]
fn the_format_cannot_be_dropped() {
    let env = Env::new("guards", Cksm::new(Native::new().unwrap()));
    let path = env.path("g.db");
    let mut conn = env.open(&path);
    populate(&conn, 100);
    conn.execute_batch("PRAGMA page_size=8192; VACUUM;")
        .unwrap();
    assert_eq!(int(&conn, "PRAGMA page_size"), 8192);
    assert_eq!(text(&conn, "PRAGMA checksum_format"), "cksumvfs");
    assert_reference_trailers(&path);

    let plain = Connection::open_in_memory().unwrap();
    plain
        .execute_batch("CREATE TABLE other(x); INSERT INTO other VALUES (1);")
        .unwrap();
    let err = {
        let backup = rusqlite::backup::Backup::new(&plain, &mut conn).unwrap();
        backup.step(-1).map(|_| ()).unwrap_err()
    };
    assert_eq!(extended_code::<()>(Err(err)), codes::SQLITE_IOERR_WRITE);
    drop(conn);
    let conn = env.open(&path);
    assert_eq!(int(&conn, "SELECT count(*) FROM doc"), 100);
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    assert_reference_trailers(&path);
}

/// A page-1 write that drops the format is refused with a clear message.
#[test]
fn refusal_names_the_format() {
    let env = Env::new("guard-message", Cksm::new(Native::new().unwrap()));
    let path = env.path("m.db");
    let mut conn = env.open(&path);
    populate(&conn, 10);
    let plain = Connection::open_in_memory().unwrap();
    plain.execute_batch("CREATE TABLE z(x)").unwrap();
    let backup = rusqlite::backup::Backup::new(&plain, &mut conn).unwrap();
    assert!(backup.step(-1).is_err());
    let detail = vfs_core::last_error().unwrap();
    assert!(
        detail.message.contains("drop the cksumvfs checksums"),
        "{}",
        detail.message
    );
}

/// A crash in a rollback-mode transaction that already spilled pages to the
/// file: the copy recovers from its hot journal with every page verified
/// and its trailer rewritten.
#[test]
fn hot_journal_rollback_after_a_crash() {
    let env = Env::new("hot-journal", Cksm::new(Native::new().unwrap()));
    let path = env.path("h.db");
    let conn = env.open(&path);
    populate(&conn, 400);
    conn.execute_batch(
        "PRAGMA cache_size = 10;
         BEGIN;
         UPDATE doc SET title = title || '-lost', body = zeroblob(length(body) + 10);",
    )
    .unwrap();
    let copy = env.path("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::copy(
        format!("{}-journal", path.display()),
        format!("{}-journal", copy.display()),
    )
    .unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert_ne!(std::fs::read(&copy).unwrap(), std::fs::read(&path).unwrap());

    let again = env.open(&copy);
    assert_eq!(
        int(&again, "SELECT count(*) FROM doc WHERE title LIKE '%-lost'"),
        0
    );
    assert_eq!(int(&again, "SELECT count(*) FROM doc"), 400);
    assert_eq!(integrity(&again), "ok");
    drop(again);
    assert_reference_trailers(&copy);
}

/// A new database whose first transaction outgrows SQLite's page cache
/// spills pages to the file before page 1 (with the reserve byte) exists.
/// Those pages must carry trailers too (found by SQLite's speedtest1 run on
/// the cksm stacks: "unable to get the page. error code=8202").
#[test]
fn pages_spilled_before_page_one_are_checksummed() {
    for journal in ["DELETE", "TRUNCATE", "PERSIST"] {
        let env = Env::new(
            &format!("spill-{journal}"),
            Cksm::new(Native::new().unwrap()),
        );
        let path = env.path("spill.db");
        let conn = env.open(&path);
        conn.execute_batch(&format!(
            "PRAGMA journal_mode={journal}; PRAGMA cache_size=10;
             BEGIN;
             CREATE TABLE doc(id INTEGER PRIMARY KEY, title TEXT, body BLOB);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<3000)
             INSERT INTO doc(title, body) SELECT printf('title %06d', i), zeroblob(300) FROM c;
             COMMIT;"
        ))
        .unwrap();
        assert_eq!(integrity(&conn), "ok", "{journal}");
        drop(conn);
        let pages = assert_reference_trailers(&path);
        assert!(pages > 50, "{journal}: {pages} pages");
        let conn = env.open(&path);
        assert_eq!(int(&conn, "SELECT count(*) FROM doc"), 3000, "{journal}");
        assert_eq!(integrity(&conn), "ok", "{journal}");
    }
}

/// If page 1 then arrives without the reserve the early pages assumed, the
/// early pages are laid out again in page 1's format (here: none) from the
/// bytes SQLite wrote: the database is what SQLite wrote, as on `unix`.
/// (The same happens when a hot journal restores a page 1 that a crash
/// trashed: SQLite's crash tests do that.)
#[test]
fn page_one_disagreeing_with_spilled_pages_lays_them_out_again() {
    let env = Env::new("spill-mismatch", Cksm::new(Native::new().unwrap()));
    let path = env.path("mismatch.db");
    // ATTACH does not run the connection hook: the attached database gets
    // SQLite's default reserve of 0.
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "ATTACH 'file:{}?vfs={}' AS a; PRAGMA a.cache_size=10;",
        path.display(),
        env.name
    ))
    .unwrap();
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE a.doc(id INTEGER PRIMARY KEY, body BLOB);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000)
         INSERT INTO a.doc(body) SELECT zeroblob(500) FROM c;
         COMMIT;",
    )
    .unwrap();
    assert_eq!(text(&conn, "PRAGMA a.checksum_format"), "none");
    assert_eq!(text(&conn, "PRAGMA a.integrity_check"), "ok");
    drop(conn);
    // Plain SQLite sees every byte SQLite wrote: no trailer in its data.
    let plain = Connection::open(&path).unwrap();
    assert!(int(&plain, "PRAGMA page_count") > 50);
    assert_eq!(
        int(
            &plain,
            "SELECT count(*) FROM doc WHERE body = zeroblob(500) AND id BETWEEN 1 AND 2000"
        ),
        2000
    );
    assert_eq!(integrity(&plain), "ok");
}
