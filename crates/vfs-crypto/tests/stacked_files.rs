//! Files written before stacks composed by nesting (see `data/README.md`)
//! open, verify, decrypt and take writes through the stacks as written
//! today: the layout of encryption over checksums is unchanged.

use rusqlite::Connection;
use vfs_cksm::{Cksm, Mode};
use vfs_core::{Native, register};
use vfs_crypto::{Crypto, EncryptionHeader, Key, Secret};

const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const PAGE: usize = 1024;

fn row(i: i64) -> String {
    format!("row {i:03} {}", "0123456789".repeat(8))
}

fn check(file: &str, mode: Mode, reserve: usize) {
    let key = Key::from_hex(HEX).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    let original =
        std::fs::read(format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    std::fs::write(&path, &original).unwrap();
    let name = format!("stacked-files-{}", mode.name());
    let reg = register(
        &name,
        Crypto::new(Cksm::with_mode(Native::new().unwrap(), mode), key.clone()),
        false,
    )
    .unwrap();
    let conn = Connection::open(format!("file:{}?vfs={name}", path.display())).unwrap();
    let text = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap();
    assert_eq!(text("PRAGMA integrity_check"), "ok", "{file}");
    assert_eq!(text("PRAGMA checksum_format"), mode.name(), "{file}");
    assert!(
        text("PRAGMA crypto_format").starts_with("xaes-256-gcm v1, raw"),
        "{file}"
    );
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT id, v FROM t ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        (0..40).map(|i| (i, row(i))).collect::<Vec<_>>(),
        "{file}"
    );
    // Today's code writes into the file in the same layout.
    conn.execute("INSERT INTO t(id, v) VALUES (40, ?1)", [row(40)])
        .unwrap();
    drop(conn);
    reg.unregister().unwrap();

    let stored = std::fs::read(&path).unwrap();
    assert_eq!(usize::from(stored[20]), reserve, "{file}");
    let header = EncryptionHeader::parse(&stored).unwrap();
    assert_eq!(header.slice_offset(), PAGE - reserve, "{file}");
    let mut opener = header.unlock(&Secret::Key(key)).unwrap();
    let trailer = mode.trailer_len();
    for (i, page) in stored.chunks(PAGE).enumerate() {
        let pgno = i as u32 + 1;
        let body = &page[..PAGE - trailer];
        let valid = match mode {
            Mode::Cksumvfs => page[PAGE - trailer..] == vfs_cksm::cksumvfs_checksum(body),
            Mode::Crc32 => page[PAGE - trailer..] == vfs_cksm::crc_trailer(body, pgno),
        };
        assert!(
            valid,
            "{file}: page {pgno}'s trailer is not the last {trailer} bytes"
        );
        opener.open_page(pgno, page).unwrap();
    }
    // Pages the new code did not touch are byte for byte the old ones.
    let unchanged = original
        .chunks(PAGE)
        .zip(stored.chunks(PAGE))
        .filter(|(a, b)| a == b)
        .count();
    assert!(unchanged >= 2, "{file}: {unchanged} pages unchanged");
}

#[test]
fn crypto_over_cksumvfs_written_with_over_cksm() {
    check("crypto-cksumvfs.db", Mode::Cksumvfs, 56);
}

#[test]
fn crypto_over_crc32_written_with_hand_matched_reserves() {
    check("crypto-crc32.db", Mode::Crc32, 60);
}
