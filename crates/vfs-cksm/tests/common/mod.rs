//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use vfs_core::{Registration, Vfs, codes, register};

/// A file of the crate's test data (copied from the shared golden set).
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A registered VFS (unique name per test) and a temporary directory.
pub struct Env {
    pub name: String,
    reg: Option<Registration>,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new<V: Vfs>(test: &str, vfs: V) -> Env {
        let name = format!("cksm-test-{test}");
        let reg = register(&name, vfs, false).unwrap();
        Env {
            name,
            reg: Some(reg),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Copies a golden file into the temporary directory.
    pub fn golden(&self, name: &str) -> PathBuf {
        let dst = self.path(name);
        std::fs::copy(data(name), &dst).unwrap();
        let mut perm = std::fs::metadata(&dst).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&dst, perm).unwrap();
        dst
    }

    /// The URI of `path` on this VFS.
    #[allow(dead_code)]
    pub fn uri(&self, path: &Path) -> String {
        format!("file:{}?vfs={}", path.display(), self.name)
    }

    pub fn open(&self, path: &Path) -> Connection {
        let conn = Connection::open(format!("file:{}?vfs={}", path.display(), self.name)).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(reg) = self.reg.take() {
            let _ = reg.unregister();
        }
    }
}

/// The cksumvfs trailer, computed here independently of the crate: two
/// wrapping u32 sums over little-endian word pairs.
pub fn reference_trailer(body: &[u8]) -> [u8; 8] {
    assert_eq!(body.len() % 8, 0);
    let mut s1: u32 = 0;
    let mut s2: u32 = 0;
    let mut i = 0;
    while i < body.len() {
        let w0 = u32::from_le_bytes(body[i..i + 4].try_into().unwrap());
        let w1 = u32::from_le_bytes(body[i + 4..i + 8].try_into().unwrap());
        s1 = s1.wrapping_add(w0.wrapping_add(s2));
        s2 = s2.wrapping_add(w1.wrapping_add(s1));
        i += 8;
    }
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&s1.to_le_bytes());
    out[4..].copy_from_slice(&s2.to_le_bytes());
    out
}

/// Page size from a database header.
pub fn page_size(raw: &[u8]) -> usize {
    match u16::from_be_bytes([raw[16], raw[17]]) {
        1 => 65536,
        p => usize::from(p),
    }
}

/// Asserts every page of the file at `path` ends with the reference
/// cksumvfs trailer, and returns the page count.
pub fn assert_reference_trailers(path: &Path) -> usize {
    let raw = std::fs::read(path).unwrap();
    let p = page_size(&raw);
    assert_eq!(raw[20], 8, "reserve byte");
    assert_eq!(raw.len() % p, 0);
    for (i, page) in raw.chunks(p).enumerate() {
        assert_eq!(
            page[p - 8..],
            reference_trailer(&page[..p - 8]),
            "trailer of page {}",
            i + 1
        );
    }
    raw.len() / p
}

/// Flips every bit of the byte at `offset` of the file.
pub fn flip(path: &Path, offset: usize) {
    let mut raw = std::fs::read(path).unwrap();
    raw[offset] ^= 0xff;
    std::fs::write(path, raw).unwrap();
}

/// The extended code of a failed SQLite call.
pub fn extended_code<T: std::fmt::Debug>(r: rusqlite::Result<T>) -> i32 {
    match r {
        Err(rusqlite::Error::SqliteFailure(e, _)) => e.extended_code,
        other => panic!("expected an SQLite failure, got {other:?}"),
    }
}

/// Asserts `r` failed with `SQLITE_IOERR_DATA`.
pub fn assert_ioerr_data<T: std::fmt::Debug>(r: rusqlite::Result<T>) {
    assert_eq!(extended_code(r), codes::SQLITE_IOERR_DATA);
}

pub fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

pub fn text(conn: &Connection, sql: &str) -> String {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

pub fn int(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}
