//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use rusqlite::Connection;
use vfs_core::Registration;
use vfs_memdb::MemDb;

/// A `MemDb` registered under a name unique to one test.
pub struct Fixture {
    pub mem: MemDb,
    pub vfs: String,
    reg: Option<Registration>,
}

impl Fixture {
    pub fn new(test: &str) -> Fixture {
        Fixture::with(test, MemDb::new())
    }

    pub fn with(test: &str, mem: MemDb) -> Fixture {
        let vfs = format!("memdb-test-{test}");
        let reg = vfs_core::register(&vfs, mem.clone(), false).expect("register");
        Fixture {
            mem,
            vfs,
            reg: Some(reg),
        }
    }

    pub fn uri(&self, db: &str) -> String {
        format!("file:{db}?vfs={}", self.vfs)
    }

    /// A connection with a generous busy timeout (retries inside SQLite).
    pub fn open(&self, db: &str) -> Connection {
        let c = Connection::open(self.uri(db)).expect("open");
        c.busy_timeout(Duration::from_secs(30)).unwrap();
        c
    }

    /// A connection that answers SQLITE_BUSY at once (rusqlite's default
    /// is a 5 s busy timeout).
    pub fn open_no_wait(&self, db: &str) -> Connection {
        let c = Connection::open(self.uri(db)).expect("open");
        c.busy_timeout(Duration::ZERO).unwrap();
        c
    }

    pub fn registration(&mut self) -> Registration {
        self.reg.take().expect("registration already taken")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(reg) = self.reg.take() {
            let _ = reg.unregister();
        }
    }
}

/// The extended result code of a failed SQLite call.
pub fn code(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    }
}

/// Asserts `r` failed with extended code `expected`.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(r: rusqlite::Result<T>, expected: i32) {
    match r {
        Err(e) => assert_eq!(code(&e), Some(expected), "unexpected error {e}"),
        Ok(v) => panic!("expected error code {expected}, got Ok({v:?})"),
    }
}

pub fn integrity(c: &Connection) -> String {
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

pub fn count(c: &Connection, table: &str) -> i64 {
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

pub fn journal_mode(c: &Connection) -> String {
    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

/// A seeded xorshift generator, so runs are reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
