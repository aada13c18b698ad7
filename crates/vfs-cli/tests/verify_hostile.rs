//! `verify` on hostile files: pages whose checksums are valid but whose
//! b-tree content is random (so the walk that names damaged pages parses
//! garbage), plus one damaged page so the walk runs. It must report, never
//! panic or loop.

use rusqlite::Connection;
use vfs_cli::storage::Disk;
use vfs_cli::ui::Ui;
use vfs_cli::verify::{Verdict, VerifyOptions, verify};

/// A small deterministic generator (seeded; no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_btree_content_with_valid_checksums_is_reported_not_followed_blindly() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.db");
    let conn = Connection::open(&plain).unwrap();
    conn.execute_batch(
        "PRAGMA page_size=1024;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
         CREATE INDEX tv ON t(v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 200)
         INSERT INTO t(v) SELECT randomblob(50 + (i % 5) * 700) FROM n;
         DELETE FROM t WHERE id % 9 = 0;",
    )
    .unwrap();
    drop(conn);
    let out = dir.path().join("ck.db");
    let ck = out.to_str().unwrap();
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_sqlite-vfs"))
        .args(["checksum", plain.to_str().unwrap(), ck])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(r.status.success());
    let original = std::fs::read(&out).unwrap();
    let n = 1024;
    let pages = original.len() / n;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut damaged_total = 0;
    for _ in 0..150 {
        let mut bytes = original.clone();
        // Garbage in a few pages (page 1 included sometimes), with their
        // checksums recomputed so they pass the page check.
        for _ in 0..1 + rng.below(4) {
            let p = rng.below(pages);
            let start = p * n + if p == 0 { 100 } else { 0 };
            for _ in 0..1 + rng.below(40) {
                let at = start + rng.below(n - 8 - (start - p * n));
                bytes[at] = rng.next() as u8;
            }
            let sum = vfs_cksm::cksumvfs_checksum(&bytes[p * n..p * n + n - 8]);
            bytes[p * n + n - 8..p * n + n].copy_from_slice(&sum);
        }
        // And one page damaged for real, so the walk runs.
        let bad = 1 + rng.below(pages - 1);
        bytes[bad * n + 10] ^= 0xff;
        std::fs::write(&out, &bytes).unwrap();
        let report = verify(
            &Disk,
            ck,
            None,
            VerifyOptions {
                integrity_check: false,
            },
            &Ui::silent(),
        )
        .unwrap();
        assert_eq!(report.verdict, Verdict::Damaged);
        assert!(report.bad_pages.iter().any(|b| b.page == bad as u64 + 1));
        damaged_total += report.bad_pages.len();
    }
    assert!(damaged_total >= 150);
}
