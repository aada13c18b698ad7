//! The read-only inspection API: the clear header of every stack and key
//! derivation, the key check, and page authentication outside SQLite that
//! gives back exactly what the crypto layer gives SQLite.

use rusqlite::Connection;
use vfs_cksm::Cksm;
use vfs_core::codes::{SQLITE_IOERR_DATA, SQLITE_NOTADB};
use vfs_core::{File, FileKind, Native, OpenAccess, OpenName, OpenOptions, Vfs, register};
use vfs_crypto::{Crypto, CryptoOptions, EncryptionHeader, KdfParams, Key, KeyDerivation, Secret};

const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Writes a database of several pages (a table and an index, overflow
/// payloads) through `vfs` with URI parameters `params`; returns its bytes.
fn make(vfs: &str, path: &std::path::Path, params: &str) -> Vec<u8> {
    let uri = format!("file:{}?vfs={vfs}{params}", path.display());
    let conn = Connection::open(&uri).unwrap();
    conn.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         CREATE INDEX tv ON t(v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 60)
         INSERT INTO t(v) SELECT printf('%d-%s', i, randomblob(300)) FROM n;",
    )
    .unwrap();
    drop(conn);
    std::fs::read(path).unwrap()
}

fn code(e: &vfs_core::Error) -> i32 {
    e.code().unwrap_or(0)
}

#[test]
fn raw_key_pages_decrypt_to_what_the_vfs_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.db");
    let key = Key::from_hex(HEX).unwrap();
    let reg = register(
        "inspect-raw",
        Crypto::new(Native::new().unwrap(), key.clone()),
        false,
    )
    .unwrap();
    let raw = make("inspect-raw", &path, "");

    let header = EncryptionHeader::parse(&raw).unwrap();
    assert_eq!(header.page_size, 4096);
    assert_eq!(header.reserve, 48);
    assert_eq!((header.reserve_below, header.reserve_above), (0, 0));
    assert_eq!(header.format_version, vfs_crypto::FORMAT_VERSION);
    assert_eq!(header.key_derivation, KeyDerivation::RawKey);
    assert_eq!(header.key_derivation.to_string(), "raw 256-bit key");
    assert_eq!(header.salt[..], raw[..16]);
    let pages = raw.len() / 4096;
    assert!(pages > 5, "{pages} pages");

    // The same pages read through the crypto VFS by Rust code.
    let vfs = Crypto::new(Native::new().unwrap(), key.clone());
    let p = path.to_str().unwrap();
    let mut file = vfs
        .open(
            &OpenName::new(p, FileKind::MainDb),
            OpenOptions::new(FileKind::MainDb, OpenAccess::ReadOnly),
        )
        .unwrap();
    let mut opener = header.unlock(&Secret::Key(key)).unwrap();
    for pgno in 1..=pages {
        let stored = &raw[(pgno - 1) * 4096..pgno * 4096];
        let plain = opener.open_page(pgno as u32, stored).unwrap();
        let mut through_vfs = vec![0u8; 4096];
        file.read_at(&mut through_vfs, ((pgno - 1) * 4096) as u64)
            .unwrap();
        assert_eq!(plain, through_vfs, "page {pgno}");
    }
    drop(file);
    reg.unregister().map_err(|(_, e)| e).unwrap();
}

#[test]
fn wrong_keys_and_wrong_kinds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pass.db");
    let reg = register(
        "inspect-pass",
        Crypto::with_options(
            Native::new().unwrap(),
            CryptoOptions {
                kdf: KdfParams::FAST_INSECURE,
                ..CryptoOptions::default()
            },
        ),
        false,
    )
    .unwrap();
    let raw = make("inspect-pass", &path, "&key=correct%20horse");
    let header = EncryptionHeader::parse(&raw).unwrap();
    assert_eq!(
        header.key_derivation,
        KeyDerivation::Argon2id(KdfParams::FAST_INSECURE)
    );
    assert_eq!(
        header.key_derivation.to_string(),
        "argon2id m=1024 KiB t=1 p=1"
    );

    let mut opener = header.unlock(&Secret::passphrase("correct horse")).unwrap();
    opener.open_page(2, &raw[4096..8192]).unwrap();

    let wrong = header
        .unlock(&Secret::passphrase("battery staple"))
        .unwrap_err();
    assert_eq!(code(&wrong), SQLITE_NOTADB);
    assert!(wrong.to_string().contains("wrong key"), "{wrong}");
    let kind = header
        .unlock(&Secret::Key(Key::from_hex(HEX).unwrap()))
        .unwrap_err();
    assert_eq!(code(&kind), SQLITE_NOTADB);
    assert!(kind.to_string().contains("passphrase"), "{kind}");
    reg.unregister().map_err(|(_, e)| e).unwrap();
}

#[test]
fn damaged_and_moved_pages_do_not_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cksm.db");
    let reg = register(
        "inspect-cksm",
        Crypto::keyless(Cksm::new(Native::new().unwrap())),
        false,
    )
    .unwrap();
    let raw = make("inspect-cksm", &path, &format!("&hexkey={HEX}"));
    let header = EncryptionHeader::parse(&raw).unwrap();
    assert_eq!((header.reserve, header.reserve_below), (56, 8));
    assert_eq!(header.slice_offset(), 4096 - 56);
    let mut opener = header
        .unlock(&Secret::Key(Key::from_hex(HEX).unwrap()))
        .unwrap();

    let page = |n: usize| raw[(n - 1) * 4096..n * 4096].to_vec();
    let mut damaged = page(3);
    damaged[100] ^= 1;
    let e = opener.open_page(3, &damaged).unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_DATA);
    assert!(e.to_string().contains("page 3"), "{e}");
    // Page 2's image offered as page 3: bound to its place.
    assert_eq!(
        code(&opener.open_page(3, &page(2)).unwrap_err()),
        SQLITE_IOERR_DATA
    );
    // A damaged descriptor.
    let mut desc = page(4);
    desc[4096 - 56 + 6] ^= 0x80;
    assert_eq!(
        code(&opener.open_page(4, &desc).unwrap_err()),
        SQLITE_IOERR_DATA
    );
    // The undamaged pages still open, and the layer below is left alone.
    let plain = opener.open_page(3, &page(3)).unwrap();
    assert_eq!(plain[4096 - 8..], page(3)[4096 - 8..]);
    assert!(plain[4096 - 56..4096 - 8].iter().all(|b| *b == 0));

    // A page 1 with a valid descriptor both after the content and at the
    // end of the page (where crypto under cksm keeps it) is ambiguous.
    let mut twice = raw.clone();
    twice.copy_within(4096 - 56..4096 - 48, 4096 - 48);
    let e = EncryptionHeader::parse(&twice).unwrap_err();
    assert_eq!(code(&e), SQLITE_NOTADB);
    assert!(e.to_string().contains("ambiguous"), "{e}");
    reg.unregister().map_err(|(_, e)| e).unwrap();
}

#[test]
fn the_slice_is_found_at_the_end_under_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("under.db");
    let reg = register(
        "inspect-under-cksm",
        Cksm::new(Crypto::keyless(Native::new().unwrap())),
        false,
    )
    .unwrap();
    let raw = make("inspect-under-cksm", &path, &format!("&hexkey={HEX}"));
    let header = EncryptionHeader::parse(&raw).unwrap();
    assert_eq!(
        (header.reserve, header.reserve_below, header.reserve_above),
        (56, 0, 8)
    );
    assert_eq!(header.slice_offset(), 4096 - 48);
    let mut opener = header
        .unlock(&Secret::Key(Key::from_hex(HEX).unwrap()))
        .unwrap();
    // The plaintext ends with cksm's trailer over it, then the zeroed slice.
    let plain = opener.open_page(2, &raw[4096..8192]).unwrap();
    assert_eq!(
        plain[4096 - 56..4096 - 48],
        vfs_cksm::cksumvfs_checksum(&plain[..4096 - 56])
    );
    assert!(plain[4096 - 48..].iter().all(|b| *b == 0));
    reg.unregister().map_err(|(_, e)| e).unwrap();
}

#[test]
fn plaintext_and_foreign_files_are_not_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let raw = std::fs::read(&path).unwrap();
    let e = EncryptionHeader::parse(&raw).unwrap_err();
    assert_eq!(code(&e), SQLITE_NOTADB);
    assert!(e.to_string().contains("plaintext"), "{e}");

    assert!(EncryptionHeader::parse(&[0u8; 50]).is_err());
    let mut noise = vec![0x5au8; 4096];
    noise[16] = 0x10; // page size 4096
    noise[17] = 0;
    noise[20] = 48;
    let e = EncryptionHeader::parse(&noise).unwrap_err();
    assert!(e.to_string().contains("version"), "{e}");
}
