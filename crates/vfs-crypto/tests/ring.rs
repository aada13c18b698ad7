//! The page ciphers write the format the others read: the same database
//! is opened in turn through `ring`'s (feature `ring`), RustCrypto's and
//! AWS-LC's (the default), in rollback and WAL mode.
#![cfg(feature = "ring")]

mod common;

use common::*;
use rusqlite::Connection;
use vfs_crypto::{Crypto, CryptoOptions, Key, PageCipher};

fn register(name: &str, memdb: &vfs_memdb::MemDb, cipher: PageCipher) -> vfs_core::Registration {
    let opts = CryptoOptions {
        key: Some(Key::from_bytes([9; 32])),
        cipher,
        ..CryptoOptions::default()
    };
    vfs_core::register(name, Crypto::with_options(memdb.clone(), opts), false).unwrap()
}

#[test]
fn databases_written_by_either_cipher_read_through_the_other() {
    let memdb = vfs_memdb::MemDb::new();
    let _a = register("ring-x-rust", &memdb, PageCipher::RustCrypto);
    let _b = register("ring-x-ring", &memdb, PageCipher::Ring);
    let _c = register("ring-x-aws", &memdb, PageCipher::AwsLc);
    for (mode, db) in [("DELETE", "/x-delete.db"), ("WAL", "/x-wal.db")] {
        let mut rows = 0;
        // The previous round's connection stays open, so in WAL mode the
        // next one reads frames the other cipher wrote (no checkpoint at
        // close in between).
        let mut previous: Option<Connection> = None;
        for round in 0..6 {
            let vfs = ["ring-x-ring", "ring-x-rust", "ring-x-aws"][round % 3];
            let conn = Connection::open(format!("file:{db}?vfs={vfs}")).unwrap();
            conn.execute_batch(&format!("PRAGMA journal_mode={mode}"))
                .unwrap();
            if round > 0 {
                check_rows(&conn, rows);
            }
            fill(&conn, 100);
            rows += 100;
            check_rows(&conn, rows);
            assert_eq!(integrity(&conn), "ok", "{mode} round {round}");
            if let Some(p) = previous.replace(conn) {
                check_rows(&p, rows);
            }
        }
        if mode == "WAL" {
            assert!(memdb.file_size(format!("{db}-wal")).unwrap() > 0);
        }
        drop(previous);
        let image = memdb.file_bytes(db).unwrap();
        assert!(!contains(&image, MARKER), "{mode}: plaintext in the file");
    }
}
