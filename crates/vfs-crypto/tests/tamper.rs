//! Wrong and missing keys, damaged, truncated, swapped and transplanted
//! pages: each gives its documented error, nothing panics, no query returns
//! rows.

mod common;

use common::*;
use rusqlite::Connection;
use vfs_core::codes::{SQLITE_CORRUPT, SQLITE_IOERR_DATA, SQLITE_NOTADB};
use vfs_crypto::Key;

const ROWS: usize = 120;

/// A rollback-mode database of a few pages holding only table `t`, so a
/// full scan of `t` reads every page. Returns its stored bytes.
fn make(env: &Env, db: &str, params: &str) -> Vec<u8> {
    let conn = env.open(db, params);
    fill(&conn, ROWS);
    drop(conn);
    env.raw(db, "").unwrap()
}

/// Opens `db`, reads every page, and returns the extended code of the
/// failure, with the message vfs-core kept. The crypto layer lets the open
/// succeed (the error comes at the first read); over cksm, damage to page 1
/// is reported by cksm when the connection opens (it verifies the header
/// read).
fn first_read(env: &Env, db: &str, params: &str) -> (i32, String) {
    vfs_core::clear_last_error();
    let message = || {
        vfs_core::last_error()
            .map(|e| e.message)
            .unwrap_or_default()
    };
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let conn = match Connection::open_with_flags(env.uri(db, params), flags) {
        Ok(c) => c,
        Err(e) => {
            assert!(
                env.stack.reserve() == 56,
                "{:?}: the open failed: {e}",
                env.stack
            );
            return (extended_code::<()>(Err(e)), message());
        }
    };
    let r = conn.query_row("SELECT count(*), sum(length(v)) FROM t", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    });
    (extended_code(r), message())
}

fn assert_fails(env: &Env, db: &str, params: &str, code: i32, words: &str) {
    let (got, message) = first_read(env, db, params);
    assert_eq!(got, code, "{:?}: {message}", env.stack);
    assert!(
        message.contains(words),
        "{:?}: message {message:?} lacks {words:?}",
        env.stack
    );
}

#[test]
fn wrong_key() {
    for stack in Stack::ALL {
        let env = Env::new("wrong-key", stack);
        let db = env.db("w.db");
        make(&env, &db, &hexkey());
        assert_fails(
            &env,
            &db,
            &format!("&hexkey={HEX2}"),
            SQLITE_NOTADB,
            "wrong key",
        );
        // The right key still reads everything.
        check_rows(&env.open(&db, &hexkey()), ROWS);
    }
}

#[test]
fn wrong_key_leaves_an_uncheckpointed_wal_alone() {
    for stack in [Stack::Native, Stack::CksmMem] {
        let env = Env::new("wrong-key-wal", stack);
        let db = env.db("w.db");
        let writer = env.open(&db, &hexkey());
        writer
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
            .unwrap();
        fill(&writer, ROWS);
        drop(writer); // the last connection checkpoints
        let writer = env.open(&db, &hexkey());
        writer.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
        fill(&writer, ROWS);
        // A second connection with the wrong key, while the WAL holds
        // committed frames.
        let wrong = env.open(&db, &format!("&hexkey={HEX2}"));
        let e =
            extended_code(wrong.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)));
        assert_eq!(e, SQLITE_NOTADB);
        drop(wrong);
        check_rows(&writer, 2 * ROWS);
        drop(writer);
        check_rows(&env.open(&db, &hexkey()), 2 * ROWS);
    }
}

#[test]
fn missing_key() {
    for stack in Stack::ALL {
        let env = Env::new("missing-key", stack);
        let db = env.db("m.db");
        make(&env, &db, &hexkey());
        assert_fails(&env, &db, "", SQLITE_NOTADB, "no encryption key");
        // A new database without a key cannot be written either.
        let conn = env.open(&env.db("new.db"), "");
        let e = extended_code(conn.execute_batch("CREATE TABLE t(x)"));
        assert_eq!(e, SQLITE_NOTADB);
        // A malformed key is reported as such.
        assert_fails(
            &env,
            &db,
            "&hexkey=00ff",
            SQLITE_NOTADB,
            "64 hexadecimal digits",
        );
    }
}

#[test]
fn a_key_of_the_wrong_kind() {
    let env = Env::new("key-kind", Stack::Native);
    let raw_db = env.db("raw.db");
    make(&env, &raw_db, &hexkey());
    assert_fails(
        &env,
        &raw_db,
        "&key=hello",
        SQLITE_NOTADB,
        "raw 256-bit key",
    );
    let pass_db = env.db("pass.db");
    make(&env, &pass_db, "&key=hello");
    assert_fails(&env, &pass_db, &hexkey(), SQLITE_NOTADB, "passphrase");
    assert_fails(&env, &pass_db, "&key=hellO", SQLITE_NOTADB, "wrong key");
    check_rows(&env.open(&pass_db, "&textkey=hello"), ROWS);
    assert_fails(
        &env,
        &pass_db,
        "&key=hello&hexkey=00",
        SQLITE_NOTADB,
        "more than one",
    );
}

#[test]
fn registration_key_and_uri_key() {
    let env = Env::keyed("reg-key", Stack::Mem, Key::from_hex(HEX2).unwrap());
    let db = env.db("r.db");
    make(&env, &db, "");
    check_rows(&env.open(&db, &format!("&hexkey={HEX2}")), ROWS);
    // A URI key overrides the registration key.
    assert_fails(&env, &db, &hexkey(), SQLITE_NOTADB, "wrong key");
}

/// A key parameter that is present but not UTF-8 is an unusable key: the
/// open fails, it never falls back to the registration key.
#[test]
fn a_key_parameter_that_is_not_utf8_is_refused() {
    let env = Env::keyed("non-utf8-key", Stack::Mem, Key::from_hex(HEX2).unwrap());
    let db = env.db("r.db");
    make(&env, &db, "");
    for param in ["hexkey", "key", "textkey"] {
        assert_fails(
            &env,
            &db,
            &format!("&{param}=%FFkey"),
            SQLITE_NOTADB,
            &format!("the {param} URI parameter is not UTF-8"),
        );
    }
    check_rows(&env.open(&db, ""), ROWS);
}

#[test]
fn a_plaintext_database_is_not_read_as_encrypted() {
    let env = Env::new("plain", Stack::Native);
    let db = env.db("plain.db");
    let conn = Connection::open(&db).unwrap();
    fill(&conn, 10);
    drop(conn);
    assert_fails(
        &env,
        &db,
        &hexkey(),
        SQLITE_NOTADB,
        "plaintext SQLite database",
    );
}

#[test]
fn flipped_byte_in_each_page() {
    for stack in Stack::ALL {
        let env = Env::new("flip", stack);
        let db = env.db("f.db");
        let good = make(&env, &db, &hexkey());
        let p = page_size(&good);
        let pages = good.len() / p;
        assert!(pages >= 4, "{pages} pages");
        for page in 0..pages {
            let mut bad = good.clone();
            bad[page * p + p / 2] ^= 0x01;
            env.store(&db, &bad);
            let (code, message) = first_read(&env, &db, &hexkey());
            assert_eq!(
                code,
                SQLITE_IOERR_DATA,
                "{stack:?} page {}: {message}",
                page + 1
            );
        }
        // Page 2's descriptor, nonce and tag, page 1's clear header: damage
        // is damage.
        let s = 2 * p - stack.reserve();
        for at in [s + 1, s + 10, s + 40, 21] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            env.store(&db, &bad);
            let (code, message) = first_read(&env, &db, &hexkey());
            assert_eq!(code, SQLITE_IOERR_DATA, "{stack:?} byte {at}: {message}");
        }
        // Page 1's salt, format version, key check value: indistinguishable
        // from a wrong key or a foreign file (cksm, below, sees damage).
        let s1 = p - stack.reserve();
        for at in [3, s1, s1 + 6] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            env.store(&db, &bad);
            let expect = if stack.reserve() == 56 {
                SQLITE_IOERR_DATA
            } else {
                SQLITE_NOTADB
            };
            let (code, message) = first_read(&env, &db, &hexkey());
            assert_eq!(code, expect, "{stack:?} byte {at}: {message}");
        }
        env.store(&db, &good);
        check_rows(&env.open(&db, &hexkey()), ROWS);
    }
}

#[test]
fn two_pages_swapped() {
    for stack in Stack::ALL {
        let env = Env::new("swap", stack);
        let db = env.db("s.db");
        let good = make(&env, &db, &hexkey());
        let p = page_size(&good);
        let mut bad = good.clone();
        let (a, b) = bad.split_at_mut(3 * p);
        a[2 * p..3 * p].swap_with_slice(&mut b[..p]);
        env.store(&db, &bad);
        assert_fails(&env, &db, &hexkey(), SQLITE_IOERR_DATA, "");
    }
}

#[test]
fn a_page_from_another_database_with_the_same_key() {
    for stack in Stack::ALL {
        let env = Env::new("transplant", stack);
        let (one, two) = (env.db("one.db"), env.db("two.db"));
        let good = make(&env, &one, &hexkey());
        let other = make(&env, &two, &hexkey());
        let p = page_size(&good);
        let mut bad = good.clone();
        bad[2 * p..3 * p].copy_from_slice(&other[2 * p..3 * p]);
        env.store(&one, &bad);
        let (code, message) = first_read(&env, &one, &hexkey());
        assert_eq!(code, SQLITE_IOERR_DATA, "{stack:?}: {message}");
        if stack.reserve() == 48 {
            assert!(message.contains("not this database's"), "{message}");
        }
    }
}

#[test]
fn a_wal_frame_moved_into_the_database() {
    for stack in [Stack::Native, Stack::CksmNative] {
        let env = Env::new("wal-move", stack);
        let db = env.db("m.db");
        let conn = env.open(&db, &hexkey());
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
            .unwrap();
        fill(&conn, ROWS);
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        conn.execute_batch("UPDATE t SET v = v || '!' WHERE i = 1")
            .unwrap();
        let wal = env.raw(&db, "-wal").unwrap();
        let good = env.raw(&db, "").unwrap();
        drop(conn);
        let p = page_size(&good);
        // The first frame: its header names the page, then the page image.
        let pgno = u32::from_be_bytes(wal[32..36].try_into().unwrap()) as usize;
        let frame = &wal[32 + 24..32 + 24 + p];
        let mut bad = good.clone();
        bad[(pgno - 1) * p..pgno * p].copy_from_slice(frame);
        std::fs::remove_file(format!("{db}-wal")).ok();
        env.store(&db, &bad);
        let (code, message) = first_read(&env, &db, &hexkey());
        assert_eq!(code, SQLITE_IOERR_DATA, "{stack:?} page {pgno}: {message}");
        if stack == Stack::Native {
            assert!(
                message.contains("database page does not authenticate"),
                "{message}"
            );
        }
    }
}

#[test]
fn truncated_files() {
    for stack in Stack::ALL {
        let env = Env::new("truncate", stack);
        let db = env.db("t.db");
        let good = make(&env, &db, &hexkey());
        let p = page_size(&good);
        // A torn last page reads as absent, a missing page as zeros: SQLite
        // finds its b-tree damaged. Less than page 1: not a database.
        for (len, expect) in [
            (good.len() - p / 2, SQLITE_CORRUPT),
            (good.len() - p, SQLITE_CORRUPT),
            (p + 100, SQLITE_CORRUPT),
            (100, SQLITE_NOTADB),
        ] {
            env.store(&db, &good[..len]);
            let (code, message) = first_read(&env, &db, &hexkey());
            assert_eq!(code, expect, "{stack:?} cut to {len} bytes: {message}");
        }
    }
}

/// A record of the connection's own rollback journal damaged during its
/// transaction is refused, not played back.
#[test]
fn a_damaged_record_of_the_own_journal() {
    use std::io::{Seek, SeekFrom, Write};
    let env = Env::new("own-journal", Stack::Native);
    let db = env.db("j.db");
    let conn = env.open(&db, &hexkey());
    fill(&conn, ROWS);
    conn.execute_batch("BEGIN; UPDATE t SET v = 'changed';")
        .unwrap();
    let journal = format!("{db}-journal");
    let len = std::fs::metadata(&journal).unwrap().len();
    assert!(len > 4096);
    // The middle of the first record's page (header: 512 bytes, then
    // the 4-byte page number).
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap();
    f.seek(SeekFrom::Start(512 + 4 + 1000)).unwrap();
    f.write_all(b"tampered").unwrap();
    drop(f);
    vfs_core::clear_last_error();
    // SQLite does not report rollback failures to the statement; the
    // pager drops its cache and the record was never applied.
    conn.execute_batch("ROLLBACK").unwrap();
    let e = vfs_core::last_error().unwrap();
    assert_eq!(e.code, SQLITE_IOERR_DATA);
    assert!(
        e.message.contains("journal page does not authenticate"),
        "{}",
        e.message
    );
    check_rows(&conn, ROWS);
    assert_eq!(integrity(&conn), "ok");
}

/// A damaged frame in a WAL that a connection reads normally (not during
/// recovery) is an error, never zeros.
#[test]
fn a_damaged_wal_frame_read_normally() {
    use std::io::{Seek, SeekFrom, Write};
    let env = Env::new("wal-damage", Stack::Native);
    let db = env.db("w.db");
    let conn = env.open(&db, &hexkey());
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
        .unwrap();
    fill(&conn, ROWS);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    conn.execute_batch("UPDATE t SET v = v || '!'").unwrap();
    // Damage the page of the WAL's first frame; `conn` keeps the WAL index.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("{db}-wal"))
        .unwrap();
    f.seek(SeekFrom::Start(32 + 24 + 100)).unwrap();
    f.write_all(b"damage").unwrap();
    drop(f);
    let reader = env.open(&db, &hexkey());
    let e = extended_code(
        reader.query_row("SELECT count(*), sum(length(v)) FROM t", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        }),
    );
    assert_eq!(e, SQLITE_IOERR_DATA);
    let message = vfs_core::last_error().unwrap().message;
    assert!(
        message.contains("WAL page does not authenticate"),
        "{message}"
    );
}

/// The handle that last wrote page 1 keeps its plaintext (SQLite rereads the
/// change counter at every transaction); damage to any stored byte of page
/// 1, its body included, must still reach that handle's next transaction,
/// and the restored page reads again.
#[test]
fn damage_to_page_one_under_an_open_connection_reaches_its_next_transaction() {
    for stack in Stack::ALL {
        let env = Env::new("p1live", stack);
        let db = env.db("p.db");
        let conn = env.open(&db, &hexkey());
        fill(&conn, ROWS);
        let good = env.raw(&db, "").unwrap();
        for at in [200, page_size(&good) / 2] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            env.store(&db, &bad);
            let r = conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0));
            assert_eq!(extended_code(r), SQLITE_IOERR_DATA, "{stack:?} byte {at}");
            env.store(&db, &good);
            check_rows(&conn, ROWS);
        }
    }
}
