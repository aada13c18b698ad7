//! Interoperability with databases written by stock SQLite and its cksumvfs
//! extension (tests/data, see its README).

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use common::*;
use rusqlite::Connection;
use vfs_cksm::{Cksm, Mode};
use vfs_core::{File, FileKind, Native, OpenAccess, OpenName, OpenOptions, Vfs, codes};

struct Golden {
    file: &'static str,
    page_size: i64,
    items: i64,
    total_qty: f64,
    kv: i64,
    kv_len: i64,
    pages: i64,
    freelist: i64,
}

/// The numbers of tests/data/README.md.
const GOLDEN: [Golden; 4] = [
    Golden {
        file: "golden-4096.db",
        page_size: 4096,
        items: 2571,
        total_qty: 1_277_058.0,
        kv: 1500,
        kv_len: 224_255,
        pages: 306,
        freelist: 27,
    },
    Golden {
        file: "golden-512.db",
        page_size: 512,
        items: 686,
        total_qty: 340_551.0,
        kv: 400,
        kv_len: 59_501,
        pages: 484,
        freelist: 6,
    },
    Golden {
        file: "golden-65536.db",
        page_size: 65536,
        items: 257,
        total_qty: 126_467.0,
        kv: 150,
        kv_len: 22_125,
        pages: 22,
        freelist: 3,
    },
    Golden {
        file: "golden-wal-4096.db",
        page_size: 4096,
        items: 1286,
        total_qty: 638_732.0,
        kv: 750,
        kv_len: 111_827,
        pages: 156,
        freelist: 12,
    },
];

fn assert_numbers(conn: &Connection, g: &Golden) {
    assert_eq!(int(conn, "PRAGMA page_size"), g.page_size, "{}", g.file);
    assert_eq!(
        int(conn, "SELECT count(*) FROM item"),
        g.items,
        "{}",
        g.file
    );
    let qty: f64 = conn
        .query_row("SELECT total(qty) FROM item", [], |r| r.get(0))
        .unwrap();
    assert_eq!(qty, g.total_qty, "{}", g.file);
    assert_eq!(int(conn, "SELECT count(*) FROM kv"), g.kv, "{}", g.file);
    assert_eq!(
        int(conn, "SELECT sum(length(v)) FROM kv"),
        g.kv_len,
        "{}",
        g.file
    );
    assert_eq!(int(conn, "PRAGMA page_count"), g.pages, "{}", g.file);
    assert_eq!(int(conn, "PRAGMA freelist_count"), g.freelist, "{}", g.file);
}

/// Reads every live page: the schema, every row with its overflow chain,
/// both indexes. Returns the first error.
fn read_everything(conn: &Connection) -> rusqlite::Result<()> {
    for sql in [
        "SELECT count(*) FROM sqlite_schema",
        "SELECT total(instr(note, x'01')) + total(length(name)) + total(price) FROM item",
        "SELECT count(*) FROM item INDEXED BY item_name WHERE name > ''",
        "SELECT total(length(v)) + total(length(k)) FROM kv",
    ] {
        conn.query_row(sql, [], |r| r.get::<_, f64>(0))?;
    }
    Ok(())
}

fn check_golden(g: &Golden, mode: Mode) {
    let cksm = Cksm::with_mode(Native::new().unwrap(), mode);
    let codec = cksm.codec().clone();
    let env = Env::new(
        &format!("golden-{}-{}", g.file.trim_end_matches(".db"), mode),
        cksm,
    );
    let path = env.golden(g.file);
    let conn = env.open(&path);
    assert_eq!(text(&conn, "PRAGMA checksum_verification"), "1");
    assert_eq!(text(&conn, "PRAGMA checksum_format"), "cksumvfs");
    assert_numbers(&conn, g);
    read_everything(&conn).unwrap();
    assert_eq!(integrity(&conn), "ok");
    assert_eq!(codec.faults(), 0);
    drop(conn);
    // Nothing was rewritten: every trailer is still the reference one.
    assert_eq!(assert_reference_trailers(&path) as i64, g.pages);
}

#[test]
fn golden_files_open_and_verify() {
    for g in &GOLDEN[..3] {
        check_golden(g, Mode::Cksumvfs);
    }
}

/// The format is detected from the file: a CRC-mode VFS still reads and
/// verifies cksumvfs files as cksumvfs files.
#[test]
fn golden_files_open_through_a_crc_mode_vfs() {
    check_golden(&GOLDEN[0], Mode::Crc32);
}

/// WAL mode is recorded in the header: it opens because the native base
/// forwards shared memory through the shim.
#[test]
fn golden_wal_file_opens_and_verifies() {
    let g = &GOLDEN[3];
    let env = Env::new("golden-wal", Cksm::new(Native::new().unwrap()));
    let path = env.golden(g.file);
    let conn = env.open(&path);
    assert_eq!(text(&conn, "PRAGMA journal_mode"), "wal");
    assert_numbers(&conn, g);
    read_everything(&conn).unwrap();
    assert_eq!(integrity(&conn), "ok");
    // A write in WAL mode, checkpointed: trailers stay correct.
    conn.execute("UPDATE item SET qty = qty + 1 WHERE id % 5 = 0", [])
        .unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(conn);
    assert_reference_trailers(&path);
}

fn write_byte(path: &Path, offset: u64, byte: u8) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[byte]).unwrap();
}

/// Every page of every golden file, one flipped byte at a time, read
/// through the shim's file API: that page answers `SQLITE_IOERR_DATA`, its
/// neighbour still reads. Free pages included, which SQLite itself never
/// reads.
#[test]
fn a_flipped_byte_in_any_golden_page_is_ioerr_data() {
    let vfs = Cksm::new(Native::new().unwrap());
    let dir = tempfile::tempdir().unwrap();
    for g in &GOLDEN {
        let path = dir.path().join(g.file);
        std::fs::copy(data(g.file), &path).unwrap();
        let raw = std::fs::read(&path).unwrap();
        let p = g.page_size as usize;
        let n = raw.len() / p;
        let path_str = path.to_str().unwrap();
        let name = OpenName::new(path_str, FileKind::MainDb);
        let mut file = vfs
            .open(
                &name,
                OpenOptions::new(FileKind::MainDb, OpenAccess::ReadWrite),
            )
            .unwrap();
        let mut page = vec![0u8; p];
        for k in 0..n {
            assert_eq!(file.read_at(&mut page, (k * p) as u64).unwrap(), p);
        }
        for k in 0..n {
            // A byte in the middle of the page (past the header on page 1).
            let at = (k * p + p / 2 + k % 97) as u64;
            write_byte(&path, at, raw[at as usize] ^ 0x10);
            let err = file.read_at(&mut page, (k * p) as u64).unwrap_err();
            assert_eq!(
                err.code(),
                Some(codes::SQLITE_IOERR_DATA),
                "{} page {}",
                g.file,
                k + 1
            );
            assert!(
                err.message().contains(&format!("offset {}", k * p)),
                "{err}"
            );
            let other = (k + 1) % n;
            assert_eq!(file.read_at(&mut page, (other * p) as u64).unwrap(), p);
            // Its trailer, too.
            let at_trailer = ((k + 1) * p - 3) as u64;
            write_byte(&path, at, raw[at as usize]);
            write_byte(&path, at_trailer, raw[at_trailer as usize] ^ 0x01);
            let err = file.read_at(&mut page, (k * p) as u64).unwrap_err();
            assert_eq!(err.code(), Some(codes::SQLITE_IOERR_DATA));
            write_byte(&path, at_trailer, raw[at_trailer as usize]);
        }
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), raw);
    }
}

/// The same through SQL: a flipped byte in any live page of a golden file
/// makes the query that reads it fail with `SQLITE_IOERR_DATA`, and the
/// failure repeats on every later read.
#[test]
fn sql_reads_of_a_tampered_golden_page_fail_with_ioerr_data() {
    let g = &GOLDEN[0];
    let env = Env::new("golden-sql-tamper", Cksm::new(Native::new().unwrap()));
    let intact = env.golden(g.file);
    let live: Vec<(String, i64)> = {
        let conn = env.open(&intact);
        let mut st = conn
            .prepare("SELECT name, pageno FROM dbstat ORDER BY pageno")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert!(live.len() > 250, "most of the file is live");
    let raw = std::fs::read(&intact).unwrap();
    let p = g.page_size as usize;
    // Every 9th live page, the first and the last.
    let mut picked: Vec<&(String, i64)> = live.iter().step_by(9).collect();
    picked.push(live.last().unwrap());
    for (owner, pgno) in picked {
        let work = env.path("work.db");
        let mut bytes = raw.clone();
        bytes[(*pgno as usize - 1) * p + 1000] ^= 0x40;
        std::fs::write(&work, &bytes).unwrap();
        let conn = env.open(&work);
        let first = read_everything(&conn);
        assert_eq!(
            extended_code(first),
            codes::SQLITE_IOERR_DATA,
            "page {pgno} of {owner}"
        );
        assert_ioerr_data(read_everything(&conn));
        drop(conn);
        std::fs::remove_file(&work).unwrap();
    }
}

/// `verify_checksum(blob)` over golden pages: 1 for a page, 0 once a byte
/// changes, NULL for anything that is not a page.
#[test]
fn verify_checksum_sql_function() {
    let _vfs = Cksm::new(Native::new().unwrap()); // installs the function
    let conn = Connection::open_in_memory().unwrap();
    let raw = std::fs::read(data("golden-512.db")).unwrap();
    let verify = |blob: &[u8]| -> Option<i64> {
        conn.query_row("SELECT verify_checksum(?1)", [blob], |r| r.get(0))
            .unwrap()
    };
    for page in raw.chunks(512).take(50) {
        assert_eq!(verify(page), Some(1));
        let mut bad = page.to_vec();
        bad[100] ^= 1;
        assert_eq!(verify(&bad), Some(0));
    }
    assert_eq!(verify(&raw[..100]), None, "not a page size");
    let t: Option<i64> = conn
        .query_row("SELECT verify_checksum('text')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(t, None);
}
