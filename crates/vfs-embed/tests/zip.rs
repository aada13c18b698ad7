//! A zip archive as the file set (feature `zip`): stored entries in place,
//! deflated entries inflated once, lazily; bad entries give clear errors.

mod common;

use std::io::{self, Cursor, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use rusqlite::Connection;
use rusqlite::ffi::{SQLITE_CANTOPEN, SQLITE_IOERR_READ};
use vfs_embed::{Embed, FileSet, ReadAt, Source};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

const ROWS: u32 = 3_000;

fn zip_of(entries: &[(&str, &[u8], CompressionMethod)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_directory("geo/", SimpleFileOptions::default())
        .unwrap();
    for (name, bytes, method) in entries {
        w.start_file(
            *name,
            SimpleFileOptions::default().compression_method(*method),
        )
        .unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn cities() -> Vec<u8> {
    image(
        "CREATE TABLE city(name TEXT PRIMARY KEY, pop INTEGER);
         INSERT INTO city VALUES ('Lyon', 522000), ('Porto', 232000), ('Graz', 291000);",
    )
}

fn sum_n(conn: &Connection) -> i64 {
    conn.query_row("SELECT sum(n) FROM t", [], |r| r.get(0))
        .unwrap()
}

/// The archive's bytes, counting every byte read from them.
struct Counting {
    bytes: Vec<u8>,
    read: AtomicU64,
}

impl ReadAt for Counting {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = (offset as usize).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }
}

impl Counting {
    fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

#[test]
fn stored_and_deflated_databases_answer_queries() {
    let numbers = image(&numbers_sql(ROWS));
    let archive = zip_of(&[
        ("stored.db", &numbers, CompressionMethod::Stored),
        ("packed.db", &numbers, CompressionMethod::Deflated),
        ("geo/cities.db", &cities(), CompressionMethod::Deflated),
        ("README.txt", b"catalog v1", CompressionMethod::Deflated),
    ]);
    assert!(
        archive.len() < 2 * numbers.len(),
        "deflate really compressed"
    );
    let set = FileSet::from_zip(archive).unwrap();
    assert_eq!(
        set.names().collect::<Vec<_>>(),
        ["README.txt", "geo/cities.db", "packed.db", "stored.db"]
    );
    assert_eq!(set.get("packed.db").unwrap().len(), numbers.len() as u64);
    let handle = Embed::register(set).unwrap();
    for db in ["stored.db", "packed.db"] {
        let conn = Connection::open(handle.uri(db)).unwrap();
        assert_eq!(sum_n(&conn), numbers_sum(ROWS), "{db}");
        assert_eq!(integrity(&conn), "ok");
    }
    // Several databases of the archive in one connection.
    let conn = Connection::open(handle.uri("packed.db")).unwrap();
    conn.execute_batch("ATTACH 'geo/cities.db' AS geo; ATTACH 'stored.db' AS s;")
        .unwrap();
    let (pop, both): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT sum(pop) FROM geo.city),
                    (SELECT count(*) FROM t JOIN s.t AS u USING (id))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((pop, both), (1_045_000, i64::from(ROWS)));
    assert_eq!(
        err_code(conn.execute("DELETE FROM s.t", [])),
        rusqlite::ffi::SQLITE_READONLY
    );
}

#[test]
fn stored_entries_are_served_in_place_and_deflated_ones_inflate_once() {
    let numbers = image(&numbers_sql(ROWS));
    let counting = Arc::new(Counting {
        bytes: zip_of(&[
            ("stored.db", &numbers, CompressionMethod::Stored),
            ("packed.db", &numbers, CompressionMethod::Deflated),
        ]),
        read: AtomicU64::new(0),
    });
    let set = FileSet::from_zip(Source::from_reader(Arc::clone(&counting)).unwrap()).unwrap();
    // Reading the central directory is all from_zip does: nothing inflated.
    let after_index = counting.read();
    assert!(
        after_index < 4096,
        "{after_index} bytes read to index the archive"
    );
    let handle = Embed::register(set).unwrap();

    // A stored database reads straight from the archive, page by page.
    let stored = Connection::open(handle.uri("stored.db")).unwrap();
    assert_eq!(sum_n(&stored), numbers_sum(ROWS));
    assert_eq!(integrity(&stored), "ok"); // visits every page
    let after_stored = counting.read();
    let served = after_stored - after_index;
    assert!(
        served >= numbers.len() as u64 && served < 2 * numbers.len() as u64,
        "{served} bytes read from the archive for a {}-byte database",
        numbers.len()
    );

    // The deflated one is inflated on its first use: its compressed bytes
    // are read once...
    let packed = Connection::open(handle.uri("packed.db")).unwrap();
    assert_eq!(sum_n(&packed), numbers_sum(ROWS));
    let after_inflate = counting.read();
    assert!(after_inflate > after_stored);
    // ...and never again, whatever the connections and queries.
    for _ in 0..3 {
        let again = Connection::open(handle.uri("packed.db")).unwrap();
        assert_eq!(sum_n(&again), numbers_sum(ROWS));
        assert_eq!(integrity(&again), "ok");
    }
    assert_eq!(sum_n(&packed), numbers_sum(ROWS));
    assert_eq!(counting.read(), after_inflate);
}

#[test]
fn a_zip_read_from_a_file_source_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.zip");
    let numbers = image(&numbers_sql(ROWS));
    std::fs::write(
        &path,
        zip_of(&[
            ("a.db", &numbers, CompressionMethod::Stored),
            ("b.db", &numbers, CompressionMethod::Deflated),
        ]),
    )
    .unwrap();
    let before = read(&path);
    let handle = Embed::register(FileSet::from_zip(Source::open(&path).unwrap()).unwrap()).unwrap();
    for db in ["a.db", "b.db"] {
        let conn = Connection::open(handle.uri(db)).unwrap();
        assert_eq!(sum_n(&conn), numbers_sum(ROWS));
    }
    assert_eq!(read(&path), before);
}

/// Finds the compressed bytes of the deflated entry `name` (they follow the
/// local header: 30 bytes, the name, the extra field).
fn deflated_data_range(archive: &[u8], name: &str) -> std::ops::Range<usize> {
    let mut z = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
    let f = z.by_name(name).unwrap();
    let start = f.data_start().unwrap() as usize;
    start..start + f.compressed_size() as usize
}

#[test]
fn a_damaged_deflated_entry_gives_a_clear_error() {
    let numbers = image(&numbers_sql(ROWS));
    let mut archive = zip_of(&[("packed.db", &numbers, CompressionMethod::Deflated)]);
    let range = deflated_data_range(&archive, "packed.db");
    let mid = range.start + range.len() / 2;
    for b in &mut archive[mid..mid + 64] {
        *b ^= 0xA5;
    }
    let set = FileSet::from_zip(archive).unwrap();

    // With the header check, the open fails and says why.
    let handle = Embed::register(set.clone()).unwrap();
    vfs_core::clear_last_error();
    let code = err_code(Connection::open(handle.uri("packed.db")));
    assert_eq!(code, SQLITE_CANTOPEN);
    let msg = vfs_core::last_error().unwrap().message;
    assert!(
        msg.contains("packed.db") && msg.contains("inflate"),
        "{msg}"
    );

    // Without it, SQLite's first read (its own look at the header, made
    // while opening) fails with SQLITE_IOERR_READ.
    let handle = Embed::new(set).check_header(false).install().unwrap();
    vfs_core::clear_last_error();
    let code = err_code(Connection::open(handle.uri("packed.db")).and_then(|conn| {
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
    }));
    assert_eq!(code, SQLITE_IOERR_READ);
    assert!(vfs_core::last_error().unwrap().message.contains("inflate"));
}

#[test]
fn an_entry_with_an_unsupported_method_cannot_be_opened_and_says_why() {
    let numbers = image(&numbers_sql(10));
    let mut archive = zip_of(&[
        ("ok.db", &numbers, CompressionMethod::Stored),
        ("odd.db", &numbers, CompressionMethod::Stored),
    ]);
    // Mark "odd.db" as bzip2 (method 12) in its local and central headers.
    let name = b"odd.db";
    let mut marked = 0;
    for at in 0..archive.len() - 4 {
        let sig = &archive[at..at + 4];
        let (method_at, name_at) = match sig {
            b"PK\x03\x04" => (at + 8, at + 30),
            b"PK\x01\x02" => (at + 10, at + 46),
            _ => continue,
        };
        if archive.get(name_at..name_at + name.len()) == Some(name) {
            archive[method_at..method_at + 2].copy_from_slice(&12u16.to_le_bytes());
            marked += 1;
        }
    }
    assert_eq!(marked, 2);
    let set = FileSet::from_zip(archive).unwrap();
    assert!(set.contains("odd.db") && set.get("odd.db").is_none());
    let handle = Embed::register(set).unwrap();
    let ok = Connection::open(handle.uri("ok.db")).unwrap();
    assert_eq!(sum_n(&ok), numbers_sum(10));
    vfs_core::clear_last_error();
    assert_eq!(
        err_code(Connection::open(handle.uri("odd.db"))),
        SQLITE_CANTOPEN
    );
    let msg = vfs_core::last_error().unwrap().message;
    assert!(
        msg.contains("\"odd.db\"") && msg.contains("compressed with"),
        "{msg}"
    );
}

#[test]
fn bytes_that_are_not_a_zip_archive_are_refused() {
    let err = FileSet::from_zip(b"definitely not a zip archive".to_vec()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let err = FileSet::from_zip(Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}
