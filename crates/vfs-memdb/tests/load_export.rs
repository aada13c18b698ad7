//! Loading images and exporting consistent ones: identical query results,
//! integrity, WAL-mode images, transactions still in the WAL, errors.

mod common;

use common::*;
use rusqlite::Connection;
use vfs_core::codes;
use vfs_memdb::MemDb;

type Row = (i64, String, Vec<u8>, Option<f64>);

fn rows(c: &Connection) -> Vec<Row> {
    c.prepare("SELECT id, name, data, score FROM items ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn aggregates(c: &Connection) -> (i64, i64, String) {
    c.query_row(
        "SELECT count(*), sum(length(data)), group_concat(name, ',') FROM
         (SELECT * FROM items WHERE score > 0.5 ORDER BY name)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn populate(c: &Connection) {
    c.execute_batch(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, data BLOB, score REAL);
         CREATE INDEX items_name ON items(name);
         CREATE VIEW good AS SELECT name FROM items WHERE score > 0.9;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<1500)
         INSERT INTO items SELECT i, 'item-' || (i * 37 % 1500), randomblob(i % 700),
                                  CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 100) / 100.0 END
         FROM n;",
    )
    .unwrap();
}

#[test]
fn export_then_load_gives_identical_results() {
    let fx = Fixture::new("lx-round-trip");
    let src = fx.open("/src.db");
    populate(&src);
    let image = fx.mem.export("/src.db").unwrap();
    assert_eq!(&image[..16], b"SQLite format 3\0");
    assert_eq!(image.len() as u64, fx.mem.file_size("/src.db").unwrap());

    // Into the same instance under another name, and into another instance.
    fx.mem.load("/dst.db", &image).unwrap();
    let other = Fixture::new("lx-round-trip-other");
    other.mem.load("/dst.db", &image).unwrap();
    for dst in [fx.open("/dst.db"), other.open("/dst.db")] {
        assert_eq!(integrity(&dst), "ok");
        assert_eq!(rows(&dst), rows(&src));
        assert_eq!(aggregates(&dst), aggregates(&src));
        let good: i64 = dst
            .query_row("SELECT count(*) FROM good", [], |r| r.get(0))
            .unwrap();
        assert!(good > 0);
        // The copy is an independent, writable database.
        dst.execute("DELETE FROM items WHERE id < 100", []).unwrap();
    }
    assert_eq!(count(&src, "items"), 1500);
    // Byte-identical round trip.
    let fx2 = Fixture::new("lx-round-trip-bytes");
    fx2.mem.load("/again.db", &image).unwrap();
    assert_eq!(fx2.mem.export("/again.db").unwrap(), image);
}

#[test]
fn export_includes_committed_wal_transactions_only() {
    let fx = Fixture::new("lx-wal");
    let a = fx.open("/wal.db");
    a.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
        .unwrap();
    populate(&a);
    a.execute("UPDATE items SET name = 'renamed' WHERE id <= 10", [])
        .unwrap();
    a.execute("DELETE FROM items WHERE id > 1400", []).unwrap();
    // Nothing checkpointed yet: the database file holds only page 1 (written
    // when switching to WAL), the WAL holds everything else.
    assert_eq!(fx.mem.file_size("/wal.db"), Some(4096));
    assert!(fx.mem.file_size("/wal.db-wal").unwrap() > 100_000);
    // A transaction in progress on another connection is not exported.
    let b = fx.open("/wal.db");
    b.execute_batch("BEGIN; INSERT INTO items(name) VALUES ('uncommitted');")
        .unwrap();

    let image = fx.mem.export("/wal.db").unwrap();
    assert_eq!(
        &image[18..20],
        &[2, 2],
        "the image keeps its WAL-mode header"
    );
    b.execute_batch("COMMIT").unwrap();

    fx.mem.load("/copy.db", &image).unwrap();
    let copy_image = fx.mem.export("/copy.db").unwrap();
    assert_eq!(
        &copy_image[18..20],
        &[1, 1],
        "load switched it to rollback mode"
    );
    let copy = fx.open("/copy.db");
    assert_eq!(journal_mode(&copy), "delete");
    assert_eq!(integrity(&copy), "ok");
    assert_eq!(count(&copy, "items"), 1400);
    let renamed: i64 = copy
        .query_row(
            "SELECT count(*) FROM items WHERE name = 'renamed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(renamed, 10);
    // Same rows as the source minus the transaction committed after export.
    a.execute("DELETE FROM items WHERE name = 'uncommitted'", [])
        .unwrap();
    assert_eq!(rows(&copy), rows(&a));
    // The loaded copy can go back to WAL mode.
    assert_eq!(
        copy.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "wal"
    );
    copy.execute("INSERT INTO items(name) VALUES ('new')", [])
        .unwrap();
    assert_eq!(count(&fx.open("/copy.db"), "items"), 1401);
}

#[test]
fn wal_mode_image_is_loaded_in_rollback_mode() {
    // A WAL-mode database image, fully checkpointed.
    let src = Fixture::new("lx-wal-image-src");
    let c = src.open("/w.db");
    c.execute_batch("PRAGMA journal_mode=WAL;").unwrap();
    populate(&c);
    let expected = rows(&c);
    drop(c);
    let image = src.mem.export("/w.db").unwrap();
    assert_eq!(&image[18..20], &[2, 2]);

    let dst = Fixture::new("lx-wal-image-dst");
    dst.mem.load("/w.db", &image).unwrap();
    let loaded = dst.mem.export("/w.db").unwrap();
    assert_eq!(&loaded[18..20], &[1, 1]);
    assert_eq!(&loaded[..18], &image[..18]);
    assert_eq!(&loaded[20..], &image[20..]);
    let a = dst.open("/w.db");
    let b = dst.open("/w.db");
    assert_eq!(journal_mode(&a), "delete");
    assert_eq!(rows(&a), expected);
    a.execute("DELETE FROM items WHERE id % 2 = 0", []).unwrap();
    assert_eq!(count(&b, "items"), 750);
    assert_eq!(integrity(&b), "ok");
    assert_eq!(dst.mem.file_size("/w.db-wal"), None);
}

#[test]
fn load_replaces_a_closed_database_and_drops_its_journal() {
    let fx = Fixture::new("lx-replace");
    let c = fx.open("/r.db");
    c.execute_batch(
        "PRAGMA journal_mode=PERSIST; CREATE TABLE old(v); INSERT INTO old VALUES (1);",
    )
    .unwrap();
    assert!(fx.mem.file_size("/r.db-journal").is_some());
    let new = MemDb::new();
    let nf = Fixture::with("lx-replace-new", new.clone());
    populate(&nf.open("/n.db"));
    let image = new.export("/n.db").unwrap();
    // Refused while open.
    let e = fx.mem.load("/r.db", &image).unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_BUSY), "{e}");
    drop(c);
    fx.mem.load("/r.db", &image).unwrap();
    assert_eq!(fx.mem.file_size("/r.db-journal"), None);
    let c = fx.open("/r.db");
    assert_eq!(count(&c, "items"), 1500);
    let old: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'old'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0);
}

#[test]
fn load_and_export_errors() {
    let fx = Fixture::new("lx-errors");
    // Not a database.
    let e = fx
        .mem
        .load(
            "/bad.db",
            b"definitely not a database, just some text ......",
        )
        .unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_NOTADB), "{e}");
    let mut header_only = vec![0u8; 200];
    header_only[..16].copy_from_slice(b"SQLite format 3\0");
    header_only[16..18].copy_from_slice(&[0, 100]); // page size 100: invalid
    let e = fx.mem.load("/bad.db", &header_only).unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_NOTADB), "{e}");
    // A private name cannot be loaded.
    let e = fx.mem.load("private.db", &[]).unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_MISUSE), "{e}");
    assert!(fx.mem.list().is_empty());
    // Exporting or deleting what is not there.
    let e = fx.mem.export("/missing.db").unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_NOTFOUND), "{e}");
    // An empty image is an empty database.
    fx.mem.load("/empty.db", &[]).unwrap();
    assert_eq!(fx.mem.list(), ["/empty.db"]);
    let c = fx.open("/empty.db");
    c.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    assert_eq!(integrity(&c), "ok");
    drop(c);
    assert!(fx.mem.export("/empty.db").unwrap().len() >= 4096);
}

#[test]
fn images_of_every_page_size_load() {
    // 65536 is stored in the header as 1; a loader that misreads it would
    // refuse the largest page size.
    for page_size in [512u32, 4096, 65536] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("src.db");
        let src = Connection::open(&path).unwrap();
        src.execute_batch(&format!(
            "PRAGMA page_size={page_size}; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);"
        ))
        .unwrap();
        drop(src);
        let bytes = std::fs::read(&path).unwrap();
        let mem = MemDb::new();
        mem.load("/ps.db", &bytes).unwrap();
        let name = format!("memdb-ps-{page_size}");
        let reg = vfs_core::register(&name, mem.clone(), false).unwrap();
        let c = Connection::open(format!("file:/ps.db?vfs={name}")).unwrap();
        let (ps, sum): (u32, i64) = c
            .query_row(
                "SELECT (SELECT page_size FROM pragma_page_size), sum(x) FROM t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((ps, sum), (page_size, 6));
        drop(c);
        reg.unregister().unwrap();
    }
}
