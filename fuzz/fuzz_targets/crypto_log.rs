//! Hostile `-journal` and `-wal` files next to a valid encrypted database
//! (vfs-crypto over an in-memory disk), opened with the key: whatever the
//! log holds, the connection answers an SQLite error or rows the key
//! holder wrote, never a panic and never content written without the key.
//!
//! The input's first byte picks the log and how it is made:
//!
//! * 0, 1: a rollback journal next to the crash copy of a database whose
//!   transaction spilled to the file; 2, 3: a WAL with a committed,
//!   un-checkpointed transaction next to its database.
//! * even: the rest of the input is the log, as is; odd: the genuine log of
//!   that crash, with the rest of the input applied as patches (`u16`
//!   little-endian offset, then a byte XORed there; a patch with offset
//!   `0xffff` cuts the log at the next two bytes' offset instead).
#![no_main]
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use vfs_crypto::{Crypto, Key};
use vfs_fault::MemDisk;

const VFS: &str = "fuzz-crypto-log";
const ROWS: usize = 40;

struct Fixture {
    disk: MemDisk,
    /// The database as the crash left it, and its log.
    journal: (Vec<u8>, Vec<u8>),
    wal: (Vec<u8>, Vec<u8>),
    /// Every value the key holder ever wrote to `t.v`.
    written: HashSet<String>,
    _reg: vfs_core::Registration,
}

fn uri(db: &str) -> String {
    format!(
        "file:{db}?vfs={VFS}&hexkey={}",
        Key::from_bytes([7; 32]).to_hex().as_str()
    )
}

fn fill(conn: &Connection) {
    conn.execute_batch(
        "PRAGMA page_size=1024;
         CREATE TABLE t(i INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 40)
         INSERT INTO t(v) SELECT 'row ' || x || ' ' || printf('%.*c', 100, 'x') FROM n;",
    )
    .expect("fill");
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let disk = MemDisk::new();
        let reg = vfs_core::register(
            VFS,
            Crypto::new(disk.clone(), Key::from_bytes([7; 32])),
            false,
        )
        .expect("register");
        let mut written = HashSet::new();
        for i in 1..=ROWS {
            let v = format!("row {i} {}", "x".repeat(100));
            written.insert(format!("{v} T1"));
            written.insert(v);
        }
        // A rollback-mode transaction that spilled to the database file.
        let conn = Connection::open(uri("/j.db")).expect("open");
        conn.execute_batch("PRAGMA journal_mode=DELETE").expect("mode");
        fill(&conn);
        conn.execute_batch("PRAGMA cache_size=2; BEGIN; UPDATE t SET v = v || ' T1';")
            .expect("spill");
        let journal = (
            disk.contents("/j.db").expect("db"),
            disk.contents("/j.db-journal").expect("journal"),
        );
        conn.execute_batch("ROLLBACK").expect("rollback");
        drop(conn);
        // A WAL holding a committed transaction.
        let conn = Connection::open(uri("/w.db")).expect("open");
        fill(&conn);
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             PRAGMA wal_checkpoint(TRUNCATE); UPDATE t SET v = v || ' T1';",
        )
        .expect("wal");
        let wal = (
            disk.contents("/w.db").expect("db"),
            disk.contents("/w.db-wal").expect("wal"),
        );
        drop(conn);
        Fixture {
            disk,
            journal,
            wal,
            written,
            _reg: reg,
        }
    })
}

/// The genuine log with `patches` applied.
fn patched(genuine: &[u8], patches: &[u8]) -> Vec<u8> {
    let mut log = genuine.to_vec();
    let mut it = patches.chunks_exact(3);
    while let Some(p) = it.next() {
        if log.is_empty() {
            break;
        }
        let at = usize::from(u16::from_le_bytes([p[0], p[1]]));
        if at == 0xffff {
            if let Some(q) = it.next() {
                let cut = usize::from(u16::from_le_bytes([q[0], q[1]])) * 16;
                log.truncate(cut.min(log.len()));
            }
            continue;
        }
        let len = log.len();
        log[at % len] ^= p[2];
    }
    log
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let (db, suffix, (image, genuine)) = if mode % 4 < 2 {
        ("/j.db", "-journal", &f.journal)
    } else {
        ("/w.db", "-wal", &f.wal)
    };
    let log = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        patched(genuine, rest)
    };
    f.disk.clear();
    f.disk.put(db, image);
    f.disk.put(&format!("{db}{suffix}"), &log);
    let Ok(conn) = Connection::open(uri(db)) else {
        return;
    };
    if let Ok(mut stmt) = conn.prepare("SELECT v FROM t") {
        if let Ok(rows) = stmt.query_map([], |r| r.get::<_, String>(0)) {
            for v in rows.flatten() {
                assert!(
                    f.written.contains(&v),
                    "a row the key holder never wrote: {v:?}"
                );
            }
        }
    }
    let _ = conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0));
});
