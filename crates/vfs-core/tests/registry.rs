//! Registration under concurrency: an open in progress keeps a VFS
//! registered, and a backend dropped at unregistration may itself use the
//! registry.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use rusqlite::Connection;
use vfs_core::{FileName, OpenName, OpenOptions, Registration, Result, Vfs, codes};

/// A TestVfs whose next main-database open stops between two barriers,
/// inside `Vfs::open`.
struct Gated {
    inner: TestVfs,
    armed: AtomicBool,
    entered: Arc<Barrier>,
    release: Arc<Barrier>,
}

impl Vfs for Gated {
    type File = <TestVfs as Vfs>::File;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        if opts.kind == vfs_core::FileKind::MainDb && self.armed.swap(false, Ordering::SeqCst) {
            self.entered.wait();
            self.release.wait();
        }
        self.inner.open(name, opts)
    }

    vfs_core::forward_vfs!(inner);
}

#[test]
fn a_file_being_opened_keeps_its_vfs_registered() {
    let name = unique_name("gated");
    let entered = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let reg = vfs_core::register(
        &name,
        Gated {
            inner: TestVfs::new(false),
            armed: AtomicBool::new(true),
            entered: Arc::clone(&entered),
            release: Arc::clone(&release),
        },
        false,
    )
    .unwrap();
    let uri = format!("file:g.db?vfs={name}");
    let opener = std::thread::spawn(move || {
        let conn = Connection::open(uri).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        conn
    });
    // The opener is inside the backend's open now.
    entered.wait();
    let during = vfs_core::unregister(&name);
    release.wait();
    let conn = opener.join().unwrap();
    let e = during.expect_err("unregister must refuse while a file is being opened");
    assert_eq!(e.code(), Some(codes::SQLITE_BUSY), "{e}");
    // The VFS is still there and the connection works on it.
    assert!(vfs_core::find(&name));
    let n: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
    assert_eq!(reg.open_files(), 1);
    drop(conn);
    reg.unregister().unwrap();
    assert!(!vfs_core::find(&name));
}

#[test]
fn a_failed_open_is_not_counted() {
    let name = unique_name("failopen");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let e = Connection::open_with_flags(
        format!("file:missing.db?vfs={name}"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap_err();
    assert_eq!(code_of(&e), Some(codes::SQLITE_CANTOPEN));
    assert_eq!(reg.open_files(), 0);
    reg.unregister().unwrap();
}

/// A backend that registered an inner VFS of its own and unregisters it
/// when it is dropped, looking the registry up on the way.
struct Owner {
    inner: TestVfs,
    inner_registration: std::sync::Mutex<Option<Registration>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(r) = self.inner_registration.lock().unwrap().take() {
            assert_eq!(vfs_core::open_files(r.name()), Some(0));
            r.unregister().expect("the inner VFS unregisters");
        }
    }
}

impl Vfs for Owner {
    type File = <TestVfs as Vfs>::File;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.inner.open(name, opts)
    }
    fn delete(&self, name: &FileName, sync_dir: bool) -> Result<()> {
        self.inner.delete(name, sync_dir)
    }
    fn access(&self, name: &FileName, check: vfs_core::AccessCheck) -> Result<bool> {
        self.inner.access(name, check)
    }
}

#[test]
fn a_backend_dropped_at_unregistration_may_use_the_registry() {
    let inner_name = unique_name("inner");
    let inner_reg = vfs_core::register(&inner_name, TestVfs::new(false), false).unwrap();
    let outer_name = unique_name("owner");
    let reg = vfs_core::register(
        &outer_name,
        Owner {
            inner: TestVfs::new(false),
            inner_registration: std::sync::Mutex::new(Some(inner_reg)),
        },
        false,
    )
    .unwrap();
    // On a watched thread, so that a deadlock fails the test instead of
    // hanging it.
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let r = reg.unregister().map_err(|(_, e)| e);
        let _ = done.send(r);
    });
    let outcome = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("unregister deadlocked while the backend's Drop used the registry");
    outcome.unwrap();
    assert!(!vfs_core::find(&inner_name), "the inner VFS went with it");
    assert!(!vfs_core::find(&outer_name));
}
