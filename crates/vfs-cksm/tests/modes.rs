//! The CRC-32 mode: its on-disk format, what it detects that cksumvfs
//! cannot, detection from the file, and conversion.

mod common;

use common::*;
use rusqlite::Connection;
use vfs_cksm::{CRC_TAG, Cksm, Mode, enable};
use vfs_core::Native;

/// The CRC-32 trailer, checked here with crc32fast directly: page number,
/// tag, CRC of everything before the CRC field.
fn assert_crc_trailers(raw: &[u8]) -> usize {
    let p = page_size(raw);
    assert_eq!(raw[20], 12, "reserve byte of the CRC format");
    for (i, page) in raw.chunks(p).enumerate() {
        let t = &page[p - 12..];
        assert_eq!(u32::from_le_bytes(t[..4].try_into().unwrap()), i as u32 + 1);
        assert_eq!(&t[4..8], &CRC_TAG);
        assert_eq!(
            u32::from_le_bytes(t[8..].try_into().unwrap()),
            crc32fast::hash(&page[..p - 4]),
            "page {}",
            i + 1
        );
    }
    raw.len() / p
}

fn tables(conn: &Connection, n: usize) {
    conn.execute_batch("PRAGMA page_size=1024").unwrap();
    for t in 0..n {
        conn.execute_batch(&format!(
            "CREATE TABLE t{t}(v); INSERT INTO t{t} VALUES ('table {t}');"
        ))
        .unwrap();
    }
}

fn root_page(conn: &Connection, table: &str) -> usize {
    conn.query_row(
        "SELECT rootpage FROM sqlite_schema WHERE name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

/// Two pages swapped on the medium (a misdirected write, or a page restored
/// from the wrong place): each still carries a valid cksumvfs trailer, so
/// the cksumvfs format returns the wrong table's row without noticing; the
/// CRC-32 format binds the page number and fails with SQLITE_IOERR_DATA.
#[test]
fn crc_mode_detects_swapped_pages_which_cksumvfs_cannot() {
    for mode in [Mode::Cksumvfs, Mode::Crc32] {
        let env = Env::new(
            &format!("swap-{mode}"),
            Cksm::with_mode(Native::new().unwrap(), mode),
        );
        let path = env.path("swap.db");
        let (a, b) = {
            let conn = env.open(&path);
            tables(&conn, 4);
            assert_eq!(text(&conn, "PRAGMA checksum_format"), mode.name());
            (root_page(&conn, "t1"), root_page(&conn, "t2"))
        };
        let mut raw = std::fs::read(&path).unwrap();
        match mode {
            Mode::Cksumvfs => {
                assert_reference_trailers(&path);
            }
            Mode::Crc32 => {
                assert_crc_trailers(&raw);
            }
        }
        let p = 1024;
        let page_a = raw[(a - 1) * p..a * p].to_vec();
        let page_b = raw[(b - 1) * p..b * p].to_vec();
        raw[(a - 1) * p..a * p].copy_from_slice(&page_b);
        raw[(b - 1) * p..b * p].copy_from_slice(&page_a);
        std::fs::write(&path, &raw).unwrap();

        let conn = env.open(&path);
        let read = conn.query_row("SELECT v FROM t1", [], |r| r.get::<_, String>(0));
        match mode {
            Mode::Cksumvfs => {
                assert_eq!(read.unwrap(), "table 2", "undetected: t1 shows t2's row");
            }
            Mode::Crc32 => {
                assert_ioerr_data(read);
                let detail = vfs_core::last_error().unwrap();
                assert!(
                    detail.message.contains(&format!("belongs to page {b}")),
                    "{}",
                    detail.message
                );
            }
        }
        // Untouched tables read in both modes.
        assert_eq!(text(&conn, "SELECT v FROM t3"), "table 3");
    }
}

/// The format comes from the file: a CRC database opened through a
/// cksumvfs-mode VFS is still verified as CRC.
#[test]
fn the_format_is_detected_from_the_file() {
    let writer = Env::new(
        "detect-writer",
        Cksm::with_mode(Native::new().unwrap(), Mode::Crc32),
    );
    let path = writer.path("crc.db");
    {
        let conn = writer.open(&path);
        tables(&conn, 3);
    }
    let reader = Env::new("detect-reader", Cksm::new(Native::new().unwrap()));
    let conn = reader.open(&path);
    assert_eq!(text(&conn, "PRAGMA checksum_format"), "crc32");
    assert_eq!(text(&conn, "SELECT v FROM t2"), "table 2");
    conn.execute("INSERT INTO t2 VALUES ('more')", []).unwrap();
    drop(conn);
    let raw = std::fs::read(&path).unwrap();
    assert_crc_trailers(&raw);

    // Tampering is caught through the cksumvfs-mode VFS too.
    let root = {
        let conn = reader.open(&path);
        root_page(&conn, "t1")
    };
    flip(&path, (root - 1) * 1024 + 600);
    let conn = reader.open(&path);
    assert_ioerr_data(conn.query_row("SELECT v FROM t1", [], |r| r.get::<_, String>(0)));
}

/// `verify_checksum(page, pgno)` checks the CRC format, page number
/// included.
#[test]
fn verify_checksum_with_a_page_number() {
    let env = Env::new(
        "verify-crc",
        Cksm::with_mode(Native::new().unwrap(), Mode::Crc32),
    );
    let path = env.path("v.db");
    {
        let conn = env.open(&path);
        tables(&conn, 3);
    }
    let raw = std::fs::read(&path).unwrap();
    let conn = Connection::open_in_memory().unwrap();
    let verify = |page: &[u8], pgno: i64| -> Option<i64> {
        conn.query_row(
            "SELECT verify_checksum(?1, ?2)",
            rusqlite::params![page, pgno],
            |r| r.get(0),
        )
        .unwrap()
    };
    for (i, page) in raw.chunks(1024).enumerate() {
        let pgno = i as i64 + 1;
        assert_eq!(verify(page, pgno), Some(1));
        assert_eq!(verify(page, pgno + 1), Some(0), "wrong place");
        // A CRC page is not a cksumvfs page.
        let v: Option<i64> = conn
            .query_row("SELECT verify_checksum(?1)", [page], |r| r.get(0))
            .unwrap();
        assert_eq!(v, Some(0));
    }
    assert_eq!(verify(&raw[..10], 1), None);
}

/// A cksumvfs database converted to CRC by `enable` through a CRC-mode VFS
/// (the reserve grows from 8 to 12), in WAL mode, while another connection
/// keeps reading: that connection follows the format change.
#[test]
fn conversion_to_crc_in_wal_mode_is_seen_by_other_connections() {
    let env = Env::new(
        "convert-wal",
        Cksm::with_mode(Native::new().unwrap(), Mode::Crc32),
    );
    let path = env.golden("golden-wal-4096.db");
    let reader = env.open(&path);
    assert_eq!(int(&reader, "SELECT count(*) FROM item"), 1286);
    assert_eq!(text(&reader, "PRAGMA checksum_format"), "cksumvfs");

    let writer = env.open(&path);
    enable(&env.uri(&path)).unwrap();
    assert_eq!(
        text(&writer, "PRAGMA checksum_format"),
        "cksumvfs",
        "already on: kept"
    );

    // Force the conversion: the reserve must grow to the CRC format's.
    let mut n: std::ffi::c_int = 12;
    writer
        .file_control(Some("main"), rusqlite::FileControl::ReserveBytes(&mut n))
        .unwrap();
    writer.execute_batch("VACUUM").unwrap();
    writer
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    assert_eq!(text(&writer, "PRAGMA checksum_format"), "crc32");
    // Page 1 changes again and stays in the WAL: the reader reads page 1
    // from the WAL and every other page from the converted file.
    writer.execute_batch("CREATE TABLE z(x)").unwrap();

    assert_eq!(int(&reader, "SELECT count(*) FROM item"), 1286);
    assert_eq!(int(&reader, "SELECT sum(length(v)) FROM kv"), 111_827);
    assert_eq!(integrity(&reader), "ok");
    drop((reader, writer));
    let raw = std::fs::read(&path).unwrap();
    assert_crc_trailers(&raw);
}
