//! `verify` reads the WAL beside a database as SQLite's recovery does:
//! frame checksums and salts, then (encrypted, with the key) each committed
//! frame's page authenticated at its place.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use vfs_cksm::Cksm;
use vfs_cli::storage::Disk;
use vfs_cli::ui::Ui;
use vfs_cli::verify::{Verdict, VerifyOptions, VerifyReport, verify};
use vfs_core::{Native, register};
use vfs_crypto::{Crypto, Key, Secret};

const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const PAGE: usize = 4096;
const FRAME: usize = 24 + PAGE;

fn side(p: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", p.display()))
}

/// Builds `live` through `uri` in WAL mode with committed frames left in
/// the WAL (no checkpoint), and copies the database and its WAL to `copy`
/// while the connection holds them.
fn wal_db(uri: &str, live: &Path, copy: &Path) {
    let conn = Connection::open(uri).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 200)
         INSERT INTO t(v) SELECT printf('%05d-', i) || hex(randomblob(40)) FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);
         UPDATE t SET v = 'one' WHERE id % 3 = 0;
         UPDATE t SET v = 'two' WHERE id % 5 = 0;
         UPDATE t SET v = 'three' WHERE id % 7 = 0;",
    )
    .unwrap();
    std::fs::copy(live, copy).unwrap();
    std::fs::copy(side(live, "-wal"), side(copy, "-wal")).unwrap();
    drop(conn);
}

/// An encrypted WAL-mode database with committed frames in its WAL, built
/// through a crypto VFS registered as `vfs`; returns its directory and the
/// copy's path.
fn encrypted_wal_db(vfs: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let reg = register(vfs, Crypto::keyless(Native::new().unwrap()), false).unwrap();
    let live = dir.path().join("live.db");
    let copy = dir.path().join("copy.db");
    wal_db(
        &format!("file:{}?vfs={vfs}&hexkey={HEX}", live.display()),
        &live,
        &copy,
    );
    reg.unregister().map_err(|(_, e)| e).unwrap();
    (dir, copy)
}

fn run(path: &Path, key: Option<&Secret>) -> VerifyReport {
    verify(
        &Disk,
        path.to_str().unwrap(),
        key,
        VerifyOptions::default(),
        &Ui::new(true, false),
    )
    .unwrap()
}

/// Flips one byte of WAL frame `frame` (1-based) at `at` within its page.
fn flip_frame(db: &Path, frame: usize, at: usize) {
    let wal = side(db, "-wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[32 + (frame - 1) * FRAME + 24 + at] ^= 0x40;
    std::fs::write(&wal, bytes).unwrap();
}

fn frames(db: &Path) -> usize {
    (std::fs::metadata(side(db, "-wal")).unwrap().len() as usize - 32) / FRAME
}

#[test]
fn a_sound_wal_is_checked_frame_by_frame() {
    let dir = tempfile::tempdir().unwrap();
    let reg = register("verify-wal-cksm", Cksm::new(Native::new().unwrap()), false).unwrap();
    let live = dir.path().join("live.db");
    let copy = dir.path().join("copy.db");
    wal_db(
        &format!("file:{}?vfs=verify-wal-cksm", live.display()),
        &live,
        &copy,
    );
    reg.unregister().map_err(|(_, e)| e).unwrap();
    let n = frames(&copy);
    assert!(n >= 3, "{n} frames");
    let r = run(&copy, None);
    assert_eq!(r.verdict, Verdict::Clean, "{r:?}");
    let wal_check = r.checks.iter().find(|c| c.starts_with("WAL")).unwrap();
    assert_eq!(
        wal_check,
        &format!("WAL checksums of {n} frame(s) in 3 transaction(s)")
    );
    assert!(
        r.checks.iter().any(|c| c == "PRAGMA integrity_check"),
        "{r:?}"
    );
}

#[test]
fn a_damaged_frame_before_the_end_loses_transactions_and_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let copy = dir.path().join("copy.db");
    wal_db(&live.display().to_string(), &live, &copy);
    flip_frame(&copy, 1, 1000);
    let r = run(&copy, None);
    assert_eq!(r.verdict, Verdict::Damaged, "{r:?}");
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("WAL frame 1 fails its checksum")),
        "{r:?}"
    );
    // A page the damaged chain never reached is not checked, and
    // integrity_check does not run over a WAL SQLite would cut short.
    assert!(!r.checks.iter().any(|c| c == "PRAGMA integrity_check"));
}

#[test]
fn a_torn_last_frame_is_what_sqlite_ignores_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let copy = dir.path().join("copy.db");
    wal_db(&live.display().to_string(), &live, &copy);
    let n = frames(&copy);
    flip_frame(&copy, n, 2000);
    let r = run(&copy, None);
    assert!(
        r.notes
            .iter()
            .any(|p| p.contains(&format!("the last WAL frame ({n}) fails its checksum"))),
        "{r:?}"
    );
    assert!(r.bad_wal_frames.is_empty(), "{r:?}");
}

#[test]
fn an_encrypted_frame_that_does_not_authenticate_is_named() {
    let (_dir, copy) = encrypted_wal_db("verify-wal-crypto");
    let key = Secret::Key(Key::from_hex(HEX).unwrap());
    let clean = run(&copy, Some(&key));
    assert_eq!(clean.verdict, Verdict::Clean, "{clean:?}");
    assert!(
        clean
            .checks
            .iter()
            .any(|c| c.starts_with("WAL authentication of")),
        "{clean:?}"
    );

    // SQLite's own frame checksums are masked under encryption: only the
    // frame's authentication can see this.
    flip_frame(&copy, 2, 700);
    let r = run(&copy, Some(&key));
    assert_eq!(r.verdict, Verdict::Damaged, "{r:?}");
    assert_eq!(r.bad_wal_frames.len(), 1, "{r:?}");
    let bad = &r.bad_wal_frames[0];
    assert_eq!((bad.frame, bad.offset), (2, (32 + FRAME) as u64));
    assert!(bad.problem.contains("does not authenticate"), "{r:?}");
}

#[test]
fn a_frame_moved_to_another_place_in_the_wal_does_not_authenticate() {
    let (_dir, copy) = encrypted_wal_db("verify-wal-move");
    // Frame 1's page image copied over the last frame's, with the last
    // frame's header made to name frame 1's page: same page, same key,
    // another offset.
    let wal = side(&copy, "-wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    let n = frames(&copy);
    let (first, last) = (32, 32 + (n - 1) * FRAME);
    let image = bytes[first + 24..first + FRAME].to_vec();
    let pgno = bytes[first..first + 4].to_vec();
    bytes[last + 24..last + FRAME].copy_from_slice(&image);
    bytes[last..last + 4].copy_from_slice(&pgno);
    std::fs::write(&wal, bytes).unwrap();
    let key = Secret::Key(Key::from_hex(HEX).unwrap());
    let r = run(&copy, Some(&key));
    assert_eq!(r.verdict, Verdict::Damaged, "{r:?}");
    assert!(
        r.bad_wal_frames.iter().any(|b| b.frame == n as u64),
        "{r:?}"
    );
}
