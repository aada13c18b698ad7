//! Secrets do not outlive their use (issue #17, finding 8): the plaintext
//! of page 1 a handle keeps, and the buffers the page layer decrypts into,
//! are zeroized before their memory goes back to the allocator; a wrong
//! passphrase's key derivation is not kept.

mod common;

use common::*;
use vfs_core::alloc_scan::{ScanningAllocator, scan_freed};
use vfs_core::codes::SQLITE_NOTADB;

#[global_allocator]
static ALLOC: ScanningAllocator = ScanningAllocator;

/// In page 1's plaintext only (a column default in the schema), never in
/// any SQL the test sends while scanning.
const PAGE1_SECRET: &[u8] = b"PAGE1-SECRET-4e1b";

#[test]
fn decrypted_pages_are_zeroized_before_their_memory_is_freed() {
    for stack in Stack::ALL {
        let env = Env::new("zeroize", stack);
        let db = env.db("z.db");
        let conn = env.open(&db, &hexkey());
        conn.execute_batch(
            "CREATE TABLE s(x, y DEFAULT 'PAGE1-SECRET-4e1b');
             INSERT INTO s(x) VALUES (1), (2);",
        )
        .unwrap();
        drop(conn);
        let uri = env.uri(&db, &hexkey());
        let ((), found) = scan_freed(&[PAGE1_SECRET], || {
            let conn = rusqlite::Connection::open(&uri).unwrap();
            let n: i64 = conn
                .query_row("SELECT count(*) FROM s", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 2);
            // A write transaction: page 1 is re-read, re-encrypted and kept.
            conn.execute_batch("INSERT INTO s(x) VALUES (3)").unwrap();
            drop(conn);
        })
        .unwrap();
        assert_eq!(
            found,
            [0],
            "{stack:?}: freed memory still held page 1's plaintext"
        );
    }
}

/// The scanner itself finds what is not zeroized.
#[test]
fn the_scanner_finds_a_secret_left_in_freed_memory() {
    let ((), found) = scan_freed(&[PAGE1_SECRET], || {
        let mut v = vec![0u8; 4096];
        v[100..100 + PAGE1_SECRET.len()].copy_from_slice(PAGE1_SECRET);
        drop(std::hint::black_box(v));
    })
    .unwrap();
    assert_eq!(found, [1]);
}

#[test]
fn a_wrong_passphrase_derivation_is_not_kept() {
    let env = Env::new("wrong-pass", Stack::Mem);
    let db = env.db("p.db");
    let right = env.open(&db, "&key=right one");
    fill(&right, 10);
    let cached = env.codec.stats().kdf_cached;
    assert!(cached >= 1, "the right derivation is kept while in use");
    for attempt in 1..=2u64 {
        let runs = env.codec.stats().kdf_runs;
        let wrong = env.open(&db, "&key=wrong one");
        let e =
            extended_code(wrong.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)));
        assert_eq!(e, SQLITE_NOTADB);
        drop(wrong);
        let stats = env.codec.stats();
        assert_eq!(stats.kdf_runs, runs + 1, "attempt {attempt} derived again");
        assert_eq!(
            stats.kdf_cached, cached,
            "attempt {attempt} left nothing behind"
        );
    }
    // The right passphrase is served from the cache while it is in use.
    let runs = env.codec.stats().kdf_runs;
    check_rows(&env.open(&db, "&key=right one"), 10);
    assert_eq!(env.codec.stats().kdf_runs, runs);
    drop(right);
}
