//! Read-only for real: every write path answers SQLITE_READONLY and the
//! bytes never change; journals and WALs are refused; temp files are
//! private memory.

mod common;

use std::sync::Arc;

use common::*;
use rusqlite::Connection;
use rusqlite::ffi::{SQLITE_CANTOPEN, SQLITE_READONLY};
use vfs_core::{
    AccessCheck, DeviceCharacteristics, File, FileKind, OpenAccess, OpenName, OpenOptions, Vfs,
};
use vfs_embed::{Embed, EmbedFile, FileSet, Source};

const ROWS: u32 = 500;

/// Statements that would write the main database, each of which must fail
/// with exactly SQLITE_READONLY.
const WRITES: &[&str] = &[
    "INSERT INTO t VALUES (NULL, 'new', 1)",
    "UPDATE t SET n = n + 1",
    "DELETE FROM t WHERE id < 10",
    "CREATE TABLE u(x)",
    "CREATE INDEX t_label ON t(label)",
    "CREATE VIEW v AS SELECT 1",
    "DROP INDEX t_n",
    "DROP TABLE t",
    "ALTER TABLE t ADD COLUMN extra",
    "VACUUM",
    "PRAGMA journal_mode=WAL",
    "PRAGMA main.journal_mode = wal",
    "PRAGMA user_version = 7",
    "PRAGMA application_id = 42",
    "ANALYZE",
    "REINDEX",
];

fn assert_all_writes_refused(conn: &Connection) {
    for sql in WRITES {
        let code = err_code(conn.execute_batch(sql));
        assert_eq!(code, SQLITE_READONLY, "{sql} answered {code}");
    }
    // Nothing happened.
    let (count, sum): (i64, i64) = conn
        .query_row("SELECT count(*), sum(n) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((count, sum), (i64::from(ROWS), numbers_sum(ROWS)));
    let uv: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(uv, 0);
    assert_eq!(integrity(conn), "ok");
}

#[test]
fn every_write_statement_fails_with_readonly_and_bytes_are_unchanged() {
    let original = image(&numbers_sql(ROWS));
    let shared: Arc<[u8]> = Arc::from(original.clone());
    let handle = Embed::register(Arc::clone(&shared)).unwrap();
    for uri in [
        handle.uri("main.db"),
        format!("file:main.db?vfs={}", handle.name()),
    ] {
        let conn = Connection::open(&uri).unwrap();
        assert_all_writes_refused(&conn);
    }
    assert_eq!(&shared[..], &original[..]);
}

#[test]
fn every_write_statement_fails_on_a_file_source_and_the_file_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    std::fs::write(&path, image(&numbers_sql(ROWS))).unwrap();
    let before = read(&path);
    let handle =
        Embed::register(FileSet::new().with("ro.db", Source::open(&path).unwrap())).unwrap();
    let conn = Connection::open(handle.uri("ro.db")).unwrap();
    assert_all_writes_refused(&conn);
    drop(conn);
    assert_eq!(read(&path), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn journal_mode_wal_is_refused_with_a_message_naming_the_database() {
    let handle = Embed::register(FileSet::new().with("cat.db", image(&numbers_sql(10)))).unwrap();
    let conn = Connection::open(handle.uri("cat.db")).unwrap();
    let err = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
        .unwrap_err();
    assert_eq!(code(&err), Some(SQLITE_READONLY));
    let msg = err.to_string();
    assert!(
        msg.contains("\"cat.db\"") && msg.contains("read-only") && msg.contains("WAL"),
        "{msg}"
    );
    // Asking is fine; harmless modes are accepted as no-ops.
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_ne!(mode, "wal");
    let mode: String = conn
        .query_row("PRAGMA journal_mode=OFF", [], |r| r.get(0))
        .unwrap();
    assert_ne!(mode, "wal");
}

/// SQLite itself turns `BEGIN IMMEDIATE` / `BEGIN EXCLUSIVE` on a read-only
/// database into a read transaction (sqlite3BeginTransaction checks
/// sqlite3BtreeIsReadonly before any VFS call), so the BEGIN is accepted;
/// the first write inside it is what fails with SQLITE_READONLY.
#[test]
fn begin_immediate_is_a_read_transaction_whose_first_write_fails() {
    let original = image(&numbers_sql(ROWS));
    let shared: Arc<[u8]> = Arc::from(original.clone());
    let handle = Embed::register(Arc::clone(&shared)).unwrap();
    let conn = Connection::open(handle.uri("main.db")).unwrap();
    for begin in ["BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"] {
        conn.execute_batch(begin).unwrap();
        assert!(!conn.is_autocommit());
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, i64::from(ROWS));
        assert_eq!(
            err_code(conn.execute("INSERT INTO t VALUES (NULL, 'x', 1)", [])),
            SQLITE_READONLY
        );
        assert_eq!(
            err_code(conn.execute_batch("CREATE TABLE u(x)")),
            SQLITE_READONLY
        );
        conn.execute_batch("COMMIT").unwrap();
    }
    assert_eq!(&shared[..], &original[..]);
}

#[test]
fn temp_tables_and_spilling_sorts_use_private_memory() {
    let original = image(&numbers_sql(30_000));
    let shared: Arc<[u8]> = Arc::from(original.clone());
    let handle = Embed::register(Arc::clone(&shared)).unwrap();
    let conn = Connection::open(handle.uri("main.db")).unwrap();
    // Force temp files (not memory) and a tiny cache so the sorter spills
    // to temporary files: those are opened through this VFS.
    conn.execute_batch(
        "PRAGMA temp_store = FILE; PRAGMA cache_size = 2; PRAGMA temp.cache_size = 2;",
    )
    .unwrap();
    conn.execute_batch(
        "CREATE TEMP TABLE scratch AS SELECT id, label || '-' || n AS tag FROM t;
         CREATE INDEX temp.scratch_tag ON scratch(tag);",
    )
    .unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM temp.scratch", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 30_000);
    // The temp database spilled to a file of this VFS (beside main.db).
    assert!(
        handle.open_files() >= 2,
        "{} files open",
        handle.open_files()
    );
    let mut stmt = conn
        .prepare("SELECT id FROM t ORDER BY label DESC, n")
        .unwrap();
    let mut rows = stmt.query_map([], |r| r.get(0)).unwrap();
    let first: i64 = rows.next().unwrap().unwrap();
    // The sorter's spill files are open now, also through this VFS.
    let during_sort = handle.open_files();
    let mut ids = vec![first];
    ids.extend(rows.map(Result::unwrap));
    assert!(during_sort > 2, "{during_sort} files open while sorting");
    let mut expected: Vec<i64> = (1..=30_000).collect();
    expected.sort_by_key(|i| std::cmp::Reverse(format!("row-{i}")));
    assert_eq!(ids, expected);
    drop(stmt);
    // A second connection does not see the first one's temp table.
    let other = Connection::open(handle.uri("main.db")).unwrap();
    assert!(
        other
            .query_row("SELECT count(*) FROM temp.scratch", [], |r| r
                .get::<_, i64>(0))
            .is_err()
    );
    assert_eq!(&shared[..], &original[..]);
}

#[test]
fn vacuum_into_another_name_is_refused_cleanly() {
    let handle = Embed::register(image(&numbers_sql(10))).unwrap();
    let conn = Connection::open(handle.uri("main.db")).unwrap();
    vfs_core::clear_last_error();
    let code = err_code(conn.execute_batch("VACUUM INTO 'copy.db'"));
    assert_eq!(code & 0xff, SQLITE_CANTOPEN);
    let detail = vfs_core::last_error().expect("the VFS said why");
    assert!(detail.message.contains("\"copy.db\""), "{}", detail.message);
}

fn opts(kind: FileKind, access: OpenAccess) -> OpenOptions {
    OpenOptions::new(kind, access)
}

#[test]
fn journals_and_wals_are_refused_at_open() {
    let vfs = Embed::new(FileSet::new().with("a.db", image(&numbers_sql(10))));
    for (kind, path) in [
        (FileKind::MainJournal, "a.db-journal"),
        (FileKind::Wal, "a.db-wal"),
        (FileKind::SuperJournal, "a.db-mj01"),
    ] {
        for access in [OpenAccess::Create, OpenAccess::ReadWrite] {
            let e = vfs
                .open(&OpenName::new(path, kind), opts(kind, access))
                .unwrap_err();
            assert_eq!(e.code(), Some(SQLITE_READONLY), "{kind:?} {access:?}");
            assert!(e.message().contains(path), "{}", e.message());
        }
        let e = vfs
            .open(&OpenName::new(path, kind), opts(kind, OpenAccess::ReadOnly))
            .unwrap_err();
        assert_eq!(e.code(), Some(SQLITE_CANTOPEN), "{kind:?} read-only");
    }
    assert!(
        !vfs.access(vfs_core::FileName::new("a.db-journal"), AccessCheck::Exists)
            .unwrap()
    );
    assert!(
        !vfs.access(vfs_core::FileName::new("a.db-wal"), AccessCheck::Exists)
            .unwrap()
    );
}

#[test]
fn image_files_are_read_only_immutable_and_refuse_writes() {
    let bytes = image(&numbers_sql(10));
    let vfs = Embed::new(FileSet::new().with("a.db", bytes.clone()));
    // Whatever access SQLite asks for, the file is read-only.
    for access in [
        OpenAccess::Create,
        OpenAccess::ReadWrite,
        OpenAccess::ReadOnly,
    ] {
        let mut f = vfs
            .open(
                &OpenName::new("a.db", FileKind::MainDb),
                opts(FileKind::MainDb, access),
            )
            .unwrap();
        assert!(matches!(f, EmbedFile::Image(_)));
        assert!(f.is_read_only());
        assert!(
            f.device_characteristics()
                .has(DeviceCharacteristics::IMMUTABLE)
        );
        let e = f.write_at(&[1, 2, 3], 0).unwrap_err();
        assert_eq!(e.code(), Some(SQLITE_READONLY));
        assert!(e.message().contains("\"a.db\"") && e.message().contains("write"));
        let e = f.truncate(0).unwrap_err();
        assert_eq!(e.code(), Some(SQLITE_READONLY));
        assert!(e.message().contains("truncat"), "{}", e.message());
        assert_eq!(f.size().unwrap(), bytes.len() as u64);
        let mut page = vec![0u8; 4096];
        assert_eq!(f.read_at(&mut page, 0).unwrap(), 4096);
        assert_eq!(page, bytes[..4096]);
    }
    assert!(
        vfs.access(vfs_core::FileName::new("a.db"), AccessCheck::Exists)
            .unwrap()
    );
    assert!(
        !vfs.access(vfs_core::FileName::new("a.db"), AccessCheck::ReadWrite)
            .unwrap()
    );
    assert_eq!(
        vfs.delete(vfs_core::FileName::new("a.db"), false)
            .unwrap_err()
            .code(),
        Some(SQLITE_READONLY)
    );
}

#[test]
fn temporary_kinds_are_private_writable_scratch() {
    let vfs = Embed::new(FileSet::new());
    for kind in [
        FileKind::TempDb,
        FileKind::TempJournal,
        FileKind::TransientDb,
        FileKind::SubJournal,
    ] {
        let mut f = vfs
            .open(&OpenName::anonymous(kind), opts(kind, OpenAccess::Create))
            .unwrap();
        assert!(matches!(f, EmbedFile::Scratch(_)));
        assert!(!f.is_read_only());
        f.write_at(b"abc", 10).unwrap();
        assert_eq!(f.size().unwrap(), 13);
        let mut buf = [9u8; 16];
        assert_eq!(f.read_at(&mut buf, 8).unwrap(), 5);
        assert_eq!(&buf[..5], b"\0\0abc");
        f.truncate(4).unwrap();
        assert_eq!(f.size().unwrap(), 4);
    }
}
