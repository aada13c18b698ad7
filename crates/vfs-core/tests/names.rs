//! File names are bytes: what SQLite's own `unix` VFS opens, the native base
//! and shims over it open too, under exactly the same names on disk.
#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::*;
use rusqlite::{Connection, OpenFlags};
use vfs_core::{FileName, Native, Vfs};

/// How a test names its database.
#[derive(Clone, Copy, Debug)]
enum Name {
    /// A path given as raw bytes (rusqlite passes a `Path`'s bytes).
    Path(&'static [u8]),
    /// A `file:` URI relative to the directory, percent-encoded.
    Uri(&'static str),
}

const NAMES: [Name; 4] = [
    Name::Path(b"\xff.db"),
    Name::Path(b"latin1-\xe9t\xe9.db"),
    Name::Uri("%ff%fe-uri.db"),
    Name::Uri("caf%C3%A9%20%ff.db"),
];

fn open(dir: &Path, name: Name, vfs: &str) -> Connection {
    let flags = OpenFlags::default();
    let conn = match name {
        Name::Path(bytes) => {
            let path = dir.join(OsStr::from_bytes(bytes));
            Connection::open_with_flags_and_vfs(path, flags, vfs)
        }
        Name::Uri(rel) => {
            Connection::open_with_flags(format!("file:{}/{rel}?vfs={vfs}", dir.display()), flags)
        }
    };
    conn.unwrap_or_else(|e| panic!("{vfs}: opening {name:?}: {e}"))
}

/// Creates, journals, shares (WAL, two connections) and reopens `name`.
fn exercise(dir: &Path, name: Name, vfs: &str) {
    let a = open(dir, name, vfs);
    a.execute_batch(
        "CREATE TABLE t(v); INSERT INTO t VALUES (1);
         BEGIN; INSERT INTO t VALUES (2); COMMIT;",
    )
    .unwrap();
    let mode: String = a
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "{vfs}: {name:?}");
    a.execute("INSERT INTO t VALUES (3)", []).unwrap();
    let b = open(dir, name, vfs);
    let n: i64 = b
        .query_row("SELECT sum(v) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        n, 6,
        "{vfs}: {name:?}: the second connection sees every row"
    );
    drop((a, b));
    let c = open(dir, name, vfs);
    assert_eq!(integrity(&c), "ok");
    c.execute_batch("PRAGMA journal_mode=DELETE; INSERT INTO t VALUES (4);")
        .unwrap();
}

fn listing(dir: &Path) -> BTreeSet<OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

#[test]
fn shims_over_native_open_every_name_unix_opens() {
    let native = unique_name("names-native");
    let shim = unique_name("names-shim");
    let r1 = vfs_core::register(&native, Native::new().unwrap(), false).unwrap();
    let r2 = vfs_core::register(&shim, PassThrough(Native::new().unwrap()), false).unwrap();
    let reference = tempfile::tempdir().unwrap();
    for name in NAMES {
        exercise(reference.path(), name, "unix");
    }
    let expected = listing(reference.path());
    assert_eq!(expected.len(), NAMES.len(), "{expected:?}");
    for vfs in [&native, &shim] {
        let dir = tempfile::tempdir().unwrap();
        for name in NAMES {
            exercise(dir.path(), name, vfs);
        }
        // The same files, byte for byte in their names, as unix made.
        assert_eq!(listing(dir.path()), expected, "{vfs}");
    }
    r1.unregister().unwrap();
    r2.unregister().unwrap();
}

#[test]
fn native_delete_access_and_full_pathname_take_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let native = Native::new().unwrap();
    let mut bytes = dir.path().as_os_str().as_bytes().to_vec();
    bytes.extend_from_slice(b"/\xfe\xff-file");
    let name = FileName::from_bytes(&bytes);
    std::fs::write(name.as_path(), b"x").unwrap();
    assert!(native.access(name, vfs_core::AccessCheck::Exists).unwrap());
    let full = native.full_pathname(name).unwrap();
    assert_eq!(full.as_bytes(), name.as_bytes());
    native.delete(name, false).unwrap();
    assert!(!name.as_path().exists());
    assert!(!native.access(name, vfs_core::AccessCheck::Exists).unwrap());
    // A name with a NUL byte cannot be a C string: an error, not a cut.
    let e = native
        .access(
            FileName::from_bytes(b"/tmp/a\0b"),
            vfs_core::AccessCheck::Exists,
        )
        .unwrap_err();
    assert!(e.message().contains("NUL"), "{e}");
}
