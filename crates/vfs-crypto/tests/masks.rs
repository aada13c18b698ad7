//! The masks over the checksums SQLite computes from plaintext (WAL frame
//! headers, journal records) are never reused across WAL generations or
//! journals (issue #17, finding 5): one frame or record whose checksum an
//! attacker knows must not reveal the checksums of later ones at the same
//! place.

mod common;

use common::*;
use vfs_core::{File, FileKind, Native, OpenAccess, OpenName, OpenOptions, Vfs};
use vfs_crypto::{Crypto, Key};

/// Opens `db` (a copy) and `companion` through a crypto layer of its own,
/// reads `len` bytes of `companion` at each offset of `reads` in turn, and
/// returns the last read's bytes as SQLite would see them.
fn decoded(db: &str, companion: &str, kind: FileKind, reads: &[(u64, usize)]) -> Vec<u8> {
    let vfs = Crypto::new(Native::new().unwrap(), Key::from_hex(HEX).unwrap());
    let ro = |kind| OpenOptions::new(kind, OpenAccess::ReadWrite);
    let mut main = vfs
        .open(&OpenName::new(db, FileKind::MainDb), ro(FileKind::MainDb))
        .unwrap();
    let mut page1 = vec![0u8; 4096];
    assert_eq!(main.read_at(&mut page1, 0).unwrap(), 4096);
    main.lock(vfs_core::LockLevel::Shared).unwrap();
    let mut file = vfs.open(&OpenName::new(companion, kind), ro(kind)).unwrap();
    let mut out = Vec::new();
    for &(at, len) in reads {
        out = vec![0u8; len];
        assert_eq!(file.read_at(&mut out, at).unwrap(), len, "read at {at}");
    }
    main.unlock(vfs_core::LockLevel::None).unwrap();
    out
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Writes `db_bytes` and `companion` under new names in `dir`; returns the
/// database's path.
fn copy(
    dir: &std::path::Path,
    tag: &str,
    db_bytes: &[u8],
    suffix: &str,
    companion: &[u8],
) -> String {
    let db = dir.join(format!("{tag}.db")).display().to_string();
    std::fs::write(&db, db_bytes).unwrap();
    std::fs::write(format!("{db}{suffix}"), companion).unwrap();
    db
}

#[test]
fn wal_checksum_masks_differ_between_wal_generations() {
    let env = Env::new("mask-wal", Stack::Native);
    let db = env.db("m.db");
    let conn = env.open(&db, &hexkey());
    assert_eq!(text(&conn, "PRAGMA journal_mode=WAL"), "wal");
    conn.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    fill(&conn, 100);
    let mut pads = Vec::new();
    for round in 0..2 {
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        // The same change: the first frame of each WAL generation holds the
        // same page at the same offset.
        conn.execute_batch(&format!("UPDATE t SET v = v || '{round}' WHERE i = 1"))
            .unwrap();
        let wal = std::fs::read(format!("{db}-wal")).unwrap();
        let image = std::fs::read(&db).unwrap();
        let copy = copy(env.dir.path(), &format!("w{round}"), &image, "-wal", &wal);
        let frame = decoded(
            &copy,
            &format!("{copy}-wal"),
            FileKind::Wal,
            &[(0, 32), (32, 24 + 4096)],
        );
        pads.push((
            wal[32..36].to_vec(),
            xor(&wal[32 + 16..32 + 24], &frame[16..24]),
        ));
    }
    assert_eq!(pads[0].0, pads[1].0, "same page in the first frame");
    assert_ne!(
        pads[0].1, pads[1].1,
        "the first frame of two WAL generations uses one mask"
    );
}

#[test]
fn journal_checksum_masks_differ_between_journals() {
    let env = Env::new("mask-journal", Stack::Native);
    let db = env.db("j.db");
    let conn = env.open(&db, &hexkey());
    conn.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
    fill(&conn, 100);
    let mut pads = Vec::new();
    for round in 0..2 {
        conn.execute_batch(&format!(
            "BEGIN; UPDATE t SET v = v || '{round}' WHERE i = 1;"
        ))
        .unwrap();
        let journal = std::fs::read(format!("{db}-journal")).unwrap();
        let image = std::fs::read(&db).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        // The first record: after the header (one sector).
        let sector = u32::from_be_bytes(journal[20..24].try_into().unwrap()) as u64;
        let p = 4096u64;
        let sum_at = sector + 4 + p;
        let copy = copy(
            env.dir.path(),
            &format!("j{round}"),
            &image,
            "-journal",
            &journal,
        );
        let sum = decoded(
            &copy,
            &format!("{copy}-journal"),
            FileKind::MainJournal,
            &[(sector, 4), (sector + 4, p as usize), (sum_at, 4)],
        );
        let s = sum_at as usize;
        pads.push((
            journal[sector as usize..sector as usize + 4].to_vec(),
            xor(&journal[s..s + 4], &sum),
        ));
    }
    assert_eq!(pads[0].0, pads[1].0, "same page in the first record");
    assert_ne!(
        pads[0].1, pads[1].1,
        "the first record of two journals uses one mask"
    );
}
