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
use vfs_core::{FileName, FileNameBuf, Native, OpenName, OpenOptions, Vfs};

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

/// A shim that stores SQLite's files under other names, as a shim that
/// renames files does: `<dir>/view/x` is kept as `<dir>/store/x`, and the
/// nameless temporary files get names of their own (`<dir>/store/tmp-N`,
/// still delete-on-close). The renamed name lives in a buffer that is
/// overwritten and freed as soon as the base has opened the file.
struct Rename {
    base: Native,
    view: Vec<u8>,
    store: Vec<u8>,
    temps: std::sync::atomic::AtomicUsize,
}

impl Rename {
    fn map(&self, name: &FileName) -> FileNameBuf {
        let bytes = name.as_bytes();
        match bytes.windows(self.view.len()).position(|w| w == self.view) {
            Some(at) => {
                let mut out = bytes[..at].to_vec();
                out.extend_from_slice(&self.store);
                out.extend_from_slice(&bytes[at + self.view.len()..]);
                out.into()
            }
            None => name.to_owned(),
        }
    }
}

impl Vfs for Rename {
    type File = <Native as Vfs>::File;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> vfs_core::Result<Self::File> {
        let renamed = match name.path() {
            Some(path) => self.map(path),
            None => {
                let n = self
                    .temps
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut dir = self.store.clone();
                dir.extend_from_slice(format!("/tmp-{n}").as_bytes());
                dir.into()
            }
        };
        let mut bytes = renamed.into_bytes();
        let file = self
            .base
            .open(&OpenName::new(&bytes[..], name.kind()), opts);
        // The name's memory is reused before the file is: a base that kept
        // a pointer to it would now read another name.
        bytes.fill(b'#');
        drop(bytes);
        file
    }

    fn delete(&self, name: &FileName, sync_dir: bool) -> vfs_core::Result<()> {
        self.base.delete(&self.map(name), sync_dir)
    }

    fn access(&self, name: &FileName, check: vfs_core::AccessCheck) -> vfs_core::Result<bool> {
        self.base.access(&self.map(name), check)
    }

    vfs_core::forward_vfs!(base, except delete, access);
}

/// `SQLITE_FCNTL_HAS_MOVED` on the main database: `unix` stats the name it
/// kept at open and compares the inode.
fn has_moved(conn: &Connection) -> i32 {
    let mut moved: std::ffi::c_int = -1;
    // SAFETY: a live connection; for HAS_MOVED the argument is an `int*`.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            libsqlite3_sys::SQLITE_FCNTL_HAS_MOVED,
            (&mut moved as *mut std::ffi::c_int).cast(),
        )
    };
    assert_eq!(rc, 0, "HAS_MOVED answered");
    moved
}

#[test]
fn a_renamed_file_keeps_its_name_after_the_callers_copy_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("view")).unwrap();
    std::fs::create_dir(dir.path().join("store")).unwrap();
    let root = dir.path().as_os_str().as_bytes();
    let shim = Rename {
        base: Native::new().unwrap(),
        view: [root, b"/view"].concat(),
        store: [root, b"/store"].concat(),
        temps: Default::default(),
    };
    let name = unique_name("rename");
    let reg = vfs_core::register(&name, shim, false).unwrap();
    let conn = Connection::open(format!(
        "file:{}/view/t.db?vfs={name}&psow=1",
        dir.path().display()
    ))
    .unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    assert_eq!(has_moved(&conn), 0, "unix lost the name of the open file");
    // Delete-on-close temporary files under names the shim made, used long
    // after those names were overwritten.
    conn.execute_batch(
        "PRAGMA temp_store=FILE; PRAGMA cache_size=2;
         CREATE TEMP TABLE s AS
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
           SELECT i, randomblob(200) AS b FROM n;",
    )
    .unwrap();
    let (count, sum): (i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(i) FROM (SELECT i FROM s ORDER BY b)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((count, sum), (3000, 3000 * 3001 / 2));
    assert_eq!(has_moved(&conn), 0);
    // unix derived the -shm name from the name it kept: it sits next to the
    // renamed database, nowhere else.
    let stored: BTreeSet<OsString> = listing(&dir.path().join("store"));
    let expected: BTreeSet<OsString> = ["t.db", "t.db-wal", "t.db-shm"]
        .into_iter()
        .map(OsString::from)
        .collect();
    assert_eq!(stored, expected, "temporary files are gone, nothing stray");
    assert!(listing(&dir.path().join("view")).is_empty());
    drop(conn);
    reg.unregister().unwrap();
}
