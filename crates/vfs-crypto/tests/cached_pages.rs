//! What a handle keeps between transactions to spare work: the plaintext
//! of the page 1 it last authenticated or wrote, and the encryption
//! session its rollback journals continue. Neither may let a byte through
//! that would not authenticate, serve a page another connection replaced,
//! or carry a session beyond the connection's own files.

mod common;

use common::*;
use vfs_core::codes::{SQLITE_IOERR_DATA, SQLITE_NOTADB};

const ROWS: usize = 120;

/// The crypto layer's slice (descriptor, nonce, tag) is the last 48 bytes
/// of each page in these stacks.
const CRYPTO_ALONE: [Stack; 2] = [Stack::Mem, Stack::Native];

const SLICE: usize = 48;

/// The error a damaged byte of page 1 gives (docs/formats.md, "Errors"):
/// the salt and the descriptor name the keys (a damaged one reads as a
/// wrong key or another format), any other byte fails authentication.
fn expected(at: usize, slice: usize) -> i32 {
    if at < 16 || (slice..slice + 8).contains(&at) {
        SQLITE_NOTADB
    } else {
        SQLITE_IOERR_DATA
    }
}

/// A connection keeps page 1's plaintext for the stored bytes it last
/// authenticated or wrote. Each single damaged byte, from the salt to the
/// last byte of the tag, must still be found at that connection's next
/// transaction: a comparison of only part of the stored page (the content
/// without the slice, or a prefix) would serve the cached plaintext.
#[test]
fn every_stored_byte_of_a_cached_page_one_is_compared() {
    for stack in CRYPTO_ALONE {
        let env = Env::new("p1every", stack);
        let db = env.db("p.db");
        let conn = env.open(&db, &hexkey());
        fill(&conn, ROWS);
        check_rows(&conn, ROWS);
        let good = env.raw(&db, "").unwrap();
        let n = page_size(&good);
        let s = n - SLICE;
        let places = [
            0,
            15,
            22,
            24,
            n / 2,
            s - 1,
            s,
            s + 7,
            s + 8,
            s + 19,
            s + 20,
            s + 31,
            s + 32,
            n - 1,
        ];
        for at in places {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            env.store(&db, &bad);
            let r = conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0));
            assert_eq!(extended_code(r), expected(at, s), "{stack:?} byte {at}");
            env.store(&db, &good);
            check_rows(&conn, ROWS);
        }
    }
}

/// A page 1 another connection rewrote is decrypted anew, and the rows
/// read are the new ones; until then, the reader's transactions decrypt
/// nothing (the cache serves SQLite's change-counter reads).
#[test]
fn a_page_one_another_connection_rewrote_is_decrypted_again() {
    for stack in Stack::ALL {
        let env = Env::new("p1other", stack);
        let db = env.db("p.db");
        let reader = env.open(&db, &hexkey());
        fill(&reader, ROWS);
        check_rows(&reader, ROWS);
        let before = env.codec.stats().pages_decrypted;
        for _ in 0..20 {
            check_rows(&reader, ROWS);
        }
        assert_eq!(
            env.codec.stats().pages_decrypted,
            before,
            "{stack:?}: unchanged pages were decrypted again"
        );
        let writer = env.open(&db, &hexkey());
        fill(&writer, 5);
        drop(writer);
        let before = env.codec.stats().pages_decrypted;
        check_rows(&reader, ROWS + 5);
        assert_eq!(integrity(&reader), "ok");
        assert!(
            env.codec.stats().pages_decrypted > before,
            "{stack:?}: the rewritten pages were not decrypted"
        );
    }
}

/// The 12-byte prefix of the XAES-256-GCM nonce (its session) of the
/// first journal record after the header: found by the database's
/// descriptor, which opens the slice of every image.
fn journal_session(journal: &[u8], descriptor: &[u8]) -> [u8; 12] {
    let at = (48..journal.len() - SLICE)
        .find(|&i| &journal[i..i + 8] == descriptor)
        .expect("no journal record with the database's descriptor");
    journal[at + 8..at + 20].try_into().unwrap()
}

/// A connection's rollback journals continue one encryption session (the
/// journal is opened per write transaction; setting up a cipher each time
/// cost about a tenth of a page's encryption); another connection's
/// journal has its own.
#[test]
fn a_connections_journals_continue_one_session() {
    for stack in CRYPTO_ALONE {
        let env = Env::new("jsession", stack);
        let db = env.db("j.db");
        let conn = env.open(&db, &hexkey());
        conn.execute_batch("PRAGMA journal_mode=PERSIST").unwrap();
        fill(&conn, ROWS);
        let raw = env.raw(&db, "").unwrap();
        let n = page_size(&raw);
        let descriptor = raw[n - SLICE..n - SLICE + 8].to_vec();
        fill(&conn, 1);
        let first = journal_session(&env.raw(&db, "-journal").unwrap(), &descriptor);
        fill(&conn, 1);
        let second = journal_session(&env.raw(&db, "-journal").unwrap(), &descriptor);
        assert_eq!(
            first, second,
            "{stack:?}: the next journal drew a new session"
        );
        check_rows(&conn, ROWS + 2);
        let other = env.open(&db, &hexkey());
        other.execute_batch("PRAGMA journal_mode=PERSIST").unwrap();
        fill(&other, 1);
        let theirs = journal_session(&env.raw(&db, "-journal").unwrap(), &descriptor);
        assert_ne!(theirs, first, "{stack:?}: a session crossed connections");
        check_rows(&other, ROWS + 3);
        check_rows(&conn, ROWS + 3);
        assert_eq!(integrity(&conn), "ok");
    }
}
