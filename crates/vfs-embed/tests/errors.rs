//! Bad input gives clear errors, never a panic: truncated images, images
//! that are not databases, missing names, failing readers.

mod common;

use std::io;

use common::*;
use rusqlite::Connection;
use rusqlite::ffi::{SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_IOERR_READ, SQLITE_NOTADB};
use vfs_embed::{Embed, FileSet, ReadAt, Source};

/// Opens `uri`, expecting a failure; returns the code and the VFS's message.
fn open_error(uri: &str) -> (i32, String) {
    vfs_core::clear_last_error();
    let code = err_code(Connection::open(uri));
    let detail = vfs_core::last_error().expect("the VFS recorded why");
    assert_eq!(detail.code, code);
    (code, detail.message)
}

#[test]
fn truncated_images_fail_at_open_with_corrupt() {
    let full = image(&numbers_sql(2_000));
    assert!(full.len() > 3 * 4096);
    let set = FileSet::new()
        .with("half.db", full[..full.len() / 2].to_vec())
        .with("one-page-short.db", full[..full.len() - 4096].to_vec())
        .with("mid-header.db", full[..50].to_vec())
        .with("mid-page-one.db", full[..1000].to_vec());
    let handle = Embed::register(set).unwrap();
    for name in [
        "half.db",
        "one-page-short.db",
        "mid-header.db",
        "mid-page-one.db",
    ] {
        let (code, msg) = open_error(&handle.uri(name));
        assert_eq!(code, SQLITE_CORRUPT, "{name}: {msg}");
        assert!(
            msg.contains(&format!("{name:?}")) && msg.contains("truncated"),
            "{msg}"
        );
    }
}

#[test]
fn images_that_are_not_databases_fail_at_open_with_notadb() {
    let mut bad_page_size = image(&numbers_sql(10));
    bad_page_size[16..18].copy_from_slice(&1000u16.to_be_bytes());
    let set = FileSet::new()
        .with(
            "text.db",
            b"just some text, not a database at all".repeat(200),
        )
        .with("zeros.db", vec![0u8; 8192])
        .with("tiny.db", b"hello".to_vec())
        .with("bad-page-size.db", bad_page_size);
    let handle = Embed::register(set).unwrap();
    for name in ["text.db", "zeros.db", "tiny.db", "bad-page-size.db"] {
        let (code, msg) = open_error(&handle.uri(name));
        assert_eq!(code, SQLITE_NOTADB, "{name}: {msg}");
        assert!(
            msg.contains(&format!("{name:?}")) && msg.contains("not an SQLite database"),
            "{msg}"
        );
    }
}

#[test]
fn a_missing_name_fails_at_open_with_cantopen_naming_it() {
    let handle = Embed::register(
        FileSet::new()
            .with("a.db", image("CREATE TABLE x(y)"))
            .with("b.db", image("CREATE TABLE x(y)")),
    )
    .unwrap();
    for uri in [
        handle.uri("nope.db"),
        format!("file:nope.db?vfs={}&mode=ro", handle.name()),
        format!("file:nope.db?vfs={}&mode=rw", handle.name()),
        format!("file:nope.db?vfs={}", handle.name()),
    ] {
        let (code, msg) = open_error(&uri);
        assert_eq!(code, SQLITE_CANTOPEN, "{uri}");
        assert!(msg.contains("\"nope.db\""), "{msg}");
        assert!(msg.contains("\"a.db\", \"b.db\""), "{msg}");
    }
    // ATTACH of a missing name fails the same way, on a working connection.
    let conn = Connection::open(handle.uri("a.db")).unwrap();
    let code = err_code(conn.execute_batch("ATTACH 'c.db' AS c"));
    assert_eq!(code & 0xff, SQLITE_CANTOPEN);
    assert_eq!(integrity(&conn), "ok");
}

#[test]
fn without_the_header_check_sqlite_reports_bad_images_itself() {
    let full = image(&numbers_sql(2_000));
    let set = FileSet::new()
        .with("half.db", full[..full.len() / 2].to_vec())
        .with("text.db", b"not a database ".repeat(600));
    let handle = Embed::new(set).check_header(false).install().unwrap();
    // Opening succeeds; the first read of the schema fails cleanly.
    let conn = Connection::open(handle.uri("text.db")).unwrap();
    let code = err_code(
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        }),
    );
    assert_eq!(code, SQLITE_NOTADB);
    let conn = Connection::open(handle.uri("half.db")).unwrap();
    let code = err_code(conn.query_row("SELECT sum(n) FROM t", [], |r| r.get::<_, i64>(0)));
    assert_eq!(code & 0xff, SQLITE_CORRUPT);
}

/// A reader whose medium fails past `good` bytes.
struct Failing {
    bytes: Vec<u8>,
    good: u64,
}

impl ReadAt for Failing {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset + buf.len() as u64 > self.good {
            return Err(io::Error::other("medium error (simulated)"));
        }
        let start = offset as usize;
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(buf.len())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }
}

#[test]
fn a_failing_reader_gives_ioerr_read_with_its_message() {
    let bytes = image(&numbers_sql(2_000));
    let src = Source::from_reader(Failing {
        bytes,
        good: 2 * 4096,
    })
    .unwrap();
    let handle = Embed::register(src).unwrap();
    let conn = Connection::open(handle.uri("main.db")).unwrap();
    vfs_core::clear_last_error();
    let code = err_code(conn.query_row("SELECT sum(n) FROM t", [], |r| r.get::<_, i64>(0)));
    assert_eq!(code, SQLITE_IOERR_READ);
    let detail = vfs_core::last_error().unwrap();
    assert!(
        detail.message.contains("medium error (simulated)") && detail.message.contains("main.db"),
        "{}",
        detail.message
    );
    // A reader whose size cannot be known is refused when the source is built.
    struct NoSize;
    impl ReadAt for NoSize {
        fn read_at(&self, _: &mut [u8], _: u64) -> io::Result<usize> {
            Ok(0)
        }
        fn size(&self) -> io::Result<u64> {
            Err(io::Error::other("size unknown"))
        }
    }
    assert!(Source::from_reader(NoSize).is_err());
}
