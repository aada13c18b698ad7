//! Every kind of source opens and answers queries; one file set serves
//! several databases; a WAL-mode image reads.

mod common;

use std::io;
use std::sync::Arc;

use common::*;
use rusqlite::{Connection, OpenFlags};
use vfs_embed::{Embed, EmbedHandle, FileSet, ReadAt, Source};

const ROWS: u32 = 2_000;

/// Opens `db` of `handle` and checks the numbers table fully.
fn check_numbers(handle: &EmbedHandle, db: &str) {
    let conn = Connection::open(handle.uri(db)).unwrap();
    assert_numbers(&conn, ROWS);
}

fn assert_numbers(conn: &Connection, rows: u32) {
    let (count, sum): (i64, i64) = conn
        .query_row("SELECT count(*), sum(n) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((count, sum), (i64::from(rows), numbers_sum(rows)));
    let label: String = conn
        .query_row("SELECT label FROM t WHERE id = ?1", [rows / 2], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(label, format!("row-{}", rows / 2));
    // Through the index.
    let hits: i64 = conn
        .query_row("SELECT count(*) FROM t WHERE n = 7", [], |r| r.get(0))
        .unwrap();
    let expected = (1..=rows).filter(|i| i * 7 % 1000 == 7).count() as i64;
    assert_eq!(hits, expected);
    assert_eq!(integrity(conn), "ok");
}

#[test]
fn static_slice_source_answers_queries() {
    // What `include_bytes!` gives: bytes that live for the whole program.
    let image: &'static [u8] = image(&numbers_sql(ROWS)).leak();
    let handle = Embed::register(image).unwrap();
    check_numbers(&handle, "main.db");
    check_numbers(&handle, "/main.db");
}

#[test]
fn owned_byte_sources_answer_queries() {
    let bytes = image(&numbers_sql(ROWS));
    let vec = Embed::register(bytes.clone()).unwrap();
    let boxed = Embed::register(Source::from(bytes.clone().into_boxed_slice())).unwrap();
    let arc = Embed::register(Arc::<[u8]>::from(bytes.clone())).unwrap();
    for h in [&vec, &boxed, &arc] {
        check_numbers(h, "main.db");
    }
    assert_ne!(vec.name(), boxed.name());
    assert_ne!(boxed.name(), arc.name());
}

#[test]
fn file_source_answers_queries_and_the_file_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    std::fs::write(&path, image(&numbers_sql(ROWS))).unwrap();
    let before = read(&path);
    let handle =
        Embed::register(FileSet::new().with("catalog.db", Source::open(&path).unwrap())).unwrap();
    let conn = Connection::open(handle.uri("catalog.db")).unwrap();
    assert_numbers(&conn, ROWS);
    assert_eq!(
        err_code(conn.execute("DELETE FROM t", [])),
        rusqlite::ffi::SQLITE_READONLY
    );
    drop(conn);
    assert_eq!(read(&path), before);
    // No journal, WAL or shm appeared next to it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["catalog.db"]);
}

#[test]
fn missing_file_for_a_file_source_is_an_io_error_naming_it() {
    let err = Source::open("/nonexistent/vfs-embed/x.db").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains("/nonexistent/vfs-embed/x.db"),
        "{err}"
    );
}

/// A reader that holds its bytes privately and answers at most 1000 bytes
/// per call (so every page read takes several calls).
struct Dribble(Vec<u8>);

impl ReadAt for Dribble {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = (offset as usize).min(self.0.len());
        let n = buf.len().min(1000).min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.len() as u64)
    }
}

#[test]
fn custom_positional_reader_answers_queries() {
    let src = Source::from_reader(Dribble(image(&numbers_sql(ROWS)))).unwrap();
    let handle = Embed::register(src).unwrap();
    check_numbers(&handle, "main.db");
}

#[test]
fn database_inside_a_larger_blob_via_slice() {
    let img = image(&numbers_sql(ROWS));
    let mut blob = b"HEADER-OF-SOME-CONTAINER".repeat(10);
    let start = blob.len() as u64;
    blob.extend_from_slice(&img);
    blob.extend_from_slice(b"TRAILER");
    let window = Source::from(blob)
        .slice(start..start + img.len() as u64)
        .unwrap();
    let handle = Embed::register(window).unwrap();
    check_numbers(&handle, "main.db");
}

#[test]
fn one_file_set_serves_several_databases() {
    let numbers = image(&numbers_sql(ROWS));
    let cities = image(
        "CREATE TABLE city(name TEXT PRIMARY KEY, country TEXT, pop INTEGER);
         INSERT INTO city VALUES ('Lyon','FR',522000), ('Porto','PT',232000),
                                 ('Graz','AT',291000);",
    );
    let words = image("CREATE TABLE w(word); INSERT INTO w VALUES ('alpha'), ('beta');");
    let set = FileSet::new()
        .with("numbers.db", numbers)
        .with("geo/cities.db", cities)
        .with("odd name?.db", words);
    let handle = Embed::register(set).unwrap();
    assert_eq!(
        handle.files().names().collect::<Vec<_>>(),
        ["geo/cities.db", "numbers.db", "odd name?.db"]
    );

    // Side by side, each on its own connection.
    let a = Connection::open(handle.uri("numbers.db")).unwrap();
    let b = Connection::open(handle.uri("geo/cities.db")).unwrap();
    let c = Connection::open(handle.uri("odd name?.db")).unwrap();
    assert_numbers(&a, ROWS);
    let pop: i64 = b
        .query_row("SELECT sum(pop) FROM city", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pop, 522_000 + 232_000 + 291_000);
    let words: String = c
        .query_row("SELECT group_concat(word, ',') FROM w", [], |r| r.get(0))
        .unwrap();
    assert_eq!(words, "alpha,beta");
    assert_eq!(handle.open_files(), 3);

    // ATTACH by plain name: the attached file comes from the same set.
    a.execute_batch("ATTACH 'geo/cities.db' AS geo").unwrap();
    let joined: i64 = a
        .query_row(
            "SELECT count(*) FROM t JOIN geo.city ON t.id = length(city.name)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(joined, 3);
    assert!(a.is_readonly("geo").unwrap());
    assert_eq!(handle.open_files(), 4);
}

#[test]
fn plain_uri_without_mode_or_immutable_is_still_read_only() {
    let bytes = image(&numbers_sql(ROWS));
    let handle = Embed::register(bytes).unwrap();
    // Read-write-create flags and no URI parameters: the VFS alone makes it
    // read-only and immutable.
    let conn = Connection::open(format!("file:main.db?vfs={}", handle.name())).unwrap();
    assert!(conn.is_readonly(rusqlite::MAIN_DB).unwrap());
    assert_numbers(&conn, ROWS);
    assert_eq!(
        err_code(conn.execute("INSERT INTO t VALUES (NULL, 'x', 1)", [])),
        rusqlite::ffi::SQLITE_READONLY
    );
    // Explicit flags work too: read-only, and read-write without create.
    for flags in [
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI,
    ] {
        let conn =
            Connection::open_with_flags(format!("file:main.db?vfs={}", handle.name()), flags)
                .unwrap();
        assert!(conn.is_readonly(rusqlite::MAIN_DB).unwrap());
        assert_numbers(&conn, ROWS);
    }
}

#[test]
fn wal_mode_image_reads_without_changing_a_byte() {
    let bytes = wal_image(&numbers_sql(ROWS));
    let src = Source::from(bytes.clone());
    let handle = Embed::register(src.clone()).unwrap();
    for uri in [
        handle.uri("main.db"),
        format!("file:main.db?vfs={}", handle.name()),
    ] {
        let conn = Connection::open(&uri).unwrap();
        assert_numbers(&conn, ROWS);
        assert_eq!(
            err_code(conn.execute("UPDATE t SET n = 0", [])),
            rusqlite::ffi::SQLITE_READONLY
        );
    }
    // The bytes SQLite is served are the image's own: page 1 still says WAL.
    let mut page1 = vec![0u8; 4096];
    assert_eq!(src.read_at(&mut page1, 0).unwrap(), 4096);
    assert_eq!((page1[18], page1[19]), (2, 2));
    assert_eq!(page1, bytes[..4096]);
}

#[test]
fn empty_source_is_an_empty_read_only_database() {
    let handle = Embed::register(Vec::new()).unwrap();
    let conn = Connection::open(handle.uri("main.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        err_code(conn.execute_batch("CREATE TABLE t(x)")),
        rusqlite::ffi::SQLITE_READONLY
    );
}

#[test]
fn page_sizes_from_512_to_65536_read() {
    for page in [512u32, 8192, 65_536] {
        let sql = format!("PRAGMA page_size={page}; {}", numbers_sql(ROWS));
        let bytes = image(&sql);
        let raw = u16::from_be_bytes([bytes[16], bytes[17]]);
        assert_eq!(if raw == 1 { 65_536 } else { u32::from(raw) }, page);
        let handle = Embed::register(bytes).unwrap();
        check_numbers(&handle, "main.db");
    }
}
