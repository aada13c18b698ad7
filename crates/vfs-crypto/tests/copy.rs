//! Encrypting an existing database, rekeying and decrypting: one call each.

mod common;

use common::*;
use rusqlite::Connection;
use vfs_core::codes::{SQLITE_IOERR_WRITE, SQLITE_MISUSE, SQLITE_NOTADB};
use vfs_crypto::{decrypt_database, encrypt_database, rekey_database, vacuum_into_target};

const ROWS: usize = 250;

fn plain_db(path: &str) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL").unwrap();
    fill(&conn, ROWS);
    conn.execute_batch("CREATE INDEX t_v ON t(v)").unwrap();
}

fn no_marker(path: &str) {
    let raw = std::fs::read(path).unwrap();
    assert!(!contains(&raw, MARKER), "{path} holds plaintext");
}

#[test]
fn encrypt_rekey_decrypt_on_disk() {
    for stack in [Stack::Native, Stack::CksmNative] {
        let env = Env::new("copy-disk", stack);
        let plain = env.db("plain.db");
        plain_db(&plain);

        // Encrypt.
        let enc = env.db("enc.db");
        encrypt_database(&format!("file:{plain}"), &env.uri(&enc, &hexkey())).unwrap();
        no_marker(&enc);
        let raw = std::fs::read(&enc).unwrap();
        assert_eq!(raw[20] as usize, stack.reserve());
        let conn = env.open(&enc, &hexkey());
        check_rows(&conn, ROWS);
        assert_eq!(integrity(&conn), "ok");
        drop(conn);

        // Rekey to a passphrase.
        let rekeyed = env.db("rekeyed.db");
        rekey_database(
            &env.uri(&enc, &hexkey()),
            &env.uri(&rekeyed, "&key=correct horse"),
        )
        .unwrap();
        no_marker(&rekeyed);
        let conn = env.open(&rekeyed, "&key=correct horse");
        check_rows(&conn, ROWS);
        assert_eq!(
            text(&conn, "PRAGMA crypto_format"),
            "xaes-256-gcm v2, argon2id m=1024 KiB t=1 p=1"
        );
        drop(conn);
        for wrong in [hexkey(), "&key=battery staple".to_owned()] {
            let conn = env.open(&rekeyed, &wrong);
            let e =
                extended_code(conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)));
            assert_eq!(e, SQLITE_NOTADB);
        }

        // Decrypt, to the platform VFS named explicitly.
        let back = env.db("back.db");
        decrypt_database(
            &env.uri(&rekeyed, "&key=correct horse"),
            &format!("file:{back}?vfs=unix"),
        )
        .unwrap();
        let raw = std::fs::read(&back).unwrap();
        assert!(raw.starts_with(b"SQLite format 3\0"));
        assert_eq!(raw[20], 0, "no reserve left");
        let conn = Connection::open(&back).unwrap();
        check_rows(&conn, ROWS);
        assert_eq!(integrity(&conn), "ok");
    }
}

#[test]
fn encrypt_and_decrypt_in_memory() {
    for stack in [Stack::Mem, Stack::CksmMem] {
        let env = Env::new("copy-mem", stack);
        // A plain VFS over the same in-memory store.
        let plain_vfs = format!("{}-plain", env.name);
        let reg = vfs_core::register(&plain_vfs, env.mem.clone().unwrap(), false).unwrap();
        let plain = Connection::open(format!("file:/plain.db?vfs={plain_vfs}")).unwrap();
        fill(&plain, ROWS);
        drop(plain);

        encrypt_database(
            &format!("file:/plain.db?vfs={plain_vfs}"),
            &env.uri("/enc.db", &hexkey()),
        )
        .unwrap();
        let image = env.mem.as_ref().unwrap().export("/enc.db").unwrap();
        assert!(!contains(&image, MARKER));
        assert_eq!(image[20] as usize, stack.reserve());
        check_rows(&env.open("/enc.db", &hexkey()), ROWS);

        decrypt_database(
            &env.uri("/enc.db", &hexkey()),
            &format!("file:/back.db?vfs={plain_vfs}"),
        )
        .unwrap();
        let conn = Connection::open(format!("file:/back.db?vfs={plain_vfs}")).unwrap();
        check_rows(&conn, ROWS);
        assert_eq!(integrity(&conn), "ok");
        drop(conn);
        reg.unregister().map_err(|(_, e)| e).unwrap();
    }
}

#[test]
fn vacuum_into_from_an_open_wal_connection() {
    let env = Env::new("vacuum-into", Stack::Native);
    let db = env.db("src.db");
    let conn = env.open(&db, &hexkey());
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
        .unwrap();
    fill(&conn, ROWS);
    let copy = env.db("copy.db");
    let into = vacuum_into_target(&env.uri(&copy, &format!("&hexkey={HEX2}"))).unwrap();
    assert!(
        into.ends_with("&reserve=48"),
        "crypto over the disk: {}",
        *into
    );
    conn.execute("VACUUM INTO ?1", [into.as_str()]).unwrap();
    check_rows(&env.open(&copy, &format!("&hexkey={HEX2}")), ROWS);

    // Misuse, and VACUUM INTO's own refusal of a non-empty target.
    let e = vacuum_into_target(&copy).unwrap_err();
    assert_eq!(e.code(), Some(SQLITE_MISUSE));
    let e = vacuum_into_target(&format!("{}&reserve=48", env.uri(&copy, ""))).unwrap_err();
    assert_eq!(e.code(), Some(SQLITE_MISUSE));
    let into = vacuum_into_target(&env.uri(&copy, &format!("&hexkey={HEX2}"))).unwrap();
    let e = conn.execute("VACUUM INTO ?1", [into.as_str()]).unwrap_err();
    assert_eq!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::Unknown),
        "{e}"
    );
    assert!(e.to_string().contains("already exists"), "{e}");
}

/// The SQL form works from any host; without `reserve=` the target cannot
/// be encrypted and the copy fails with a message saying what to add.
#[test]
fn vacuum_into_in_sql() {
    let env = Env::new("vacuum-sql", Stack::CksmNative);
    let plain = env.db("plain.db");
    plain_db(&plain);
    let conn = Connection::open(&plain).unwrap();
    let target = env.db("sql.db");
    conn.execute(
        "VACUUM INTO ?1",
        [format!("{}&reserve=56", env.uri(&target, &hexkey()))],
    )
    .unwrap();
    no_marker(&target);
    check_rows(&env.open(&target, &hexkey()), ROWS);

    vfs_core::clear_last_error();
    let bad = env.db("no-reserve.db");
    let e = extended_code(conn.execute("VACUUM INTO ?1", [env.uri(&bad, &hexkey())]));
    assert_eq!(e, SQLITE_IOERR_WRITE);
    let message = vfs_core::last_error().unwrap().message;
    assert!(message.contains("&reserve=56"), "{message}");
}

/// An encrypted database kept in memdb leaves it and comes back as bytes:
/// memdb's `export` refuses while the encrypted WAL holds transactions it
/// cannot read (instead of returning the older checkpointed state), works
/// after a checkpoint, and `load_raw` takes the encrypted image that
/// `load` refuses.
#[test]
fn memdb_export_and_load_raw_of_an_encrypted_database() {
    let memdb = vfs_memdb::MemDb::new();
    let key = vfs_crypto::Key::from_bytes([3; 32]);
    let _src = vfs_core::register(
        "crypto-export-src",
        vfs_crypto::Crypto::new(memdb.clone(), key.clone()),
        false,
    )
    .unwrap();
    let conn = Connection::open("file:/e.db?vfs=crypto-export-src").unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
        .unwrap();
    fill(&conn, ROWS);
    assert!(memdb.file_size("/e.db-wal").unwrap() > 0);

    let err = memdb.export("/e.db").unwrap_err();
    assert_eq!(err.code(), Some(SQLITE_MISUSE));
    assert!(
        err.message().contains("checkpoint it first"),
        "{}",
        err.message()
    );

    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let image = memdb.export("/e.db").unwrap();
    assert!(
        !contains(&image, MARKER),
        "the exported image holds plaintext"
    );
    assert_ne!(&image[..16], b"SQLite format 3\0");

    let other = vfs_memdb::MemDb::new();
    assert_eq!(
        other.load("/copy.db", &image).unwrap_err().code(),
        Some(SQLITE_NOTADB)
    );
    other.load_raw("/copy.db", &image).unwrap();
    let _dst = vfs_core::register(
        "crypto-export-dst",
        vfs_crypto::Crypto::new(other.clone(), key),
        false,
    )
    .unwrap();
    let copy = Connection::open("file:/copy.db?vfs=crypto-export-dst").unwrap();
    check_rows(&copy, ROWS);
    assert_eq!(integrity(&copy), "ok");
    drop(copy);

    // The same bytes under another key are not a database.
    let _wrong = vfs_core::register(
        "crypto-export-wrong",
        vfs_crypto::Crypto::new(other, vfs_crypto::Key::from_bytes([4; 32])),
        false,
    )
    .unwrap();
    let wrong = Connection::open("file:/copy.db?vfs=crypto-export-wrong").unwrap();
    assert_eq!(
        extended_code(wrong.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))),
        SQLITE_NOTADB
    );
}
