//! `Vfs::access_shortcut`: the `xAccess` calls it can answer (the hot
//! journal check of every rollback-mode read transaction) never reach the
//! backend; the others do; shims forwarding `access` forward it, shims
//! answering `access` themselves do not.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::*;
use rusqlite::Connection;
use vfs_core::{AccessCheck, AccessShortcut, FileName, OpenName, OpenOptions, Result, Vfs};

/// What the shortcut and the backend were asked.
#[derive(Default)]
struct Asked {
    /// Set: the shortcut declines every name.
    decline: AtomicBool,
    by_shortcut: AtomicUsize,
    /// `access` calls that reached the backend for a `-journal` name.
    journal_by_backend: AtomicUsize,
}

/// A TestVfs whose shortcut answers "absent" for `-journal` names (TestVfs
/// keeps no journal between transactions in this test's workload, so that
/// is what its `access` answers too).
struct Shortcutting {
    base: TestVfs,
    asked: Arc<Asked>,
}

impl Vfs for Shortcutting {
    type File = <TestVfs as Vfs>::File;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.base.open(name, opts)
    }

    fn access(&self, name: &FileName, check: AccessCheck) -> Result<bool> {
        if name.ends_with("-journal") {
            self.asked.journal_by_backend.fetch_add(1, Ordering::SeqCst);
        }
        self.base.access(name, check)
    }

    fn access_shortcut(&self) -> Option<AccessShortcut> {
        let asked = Arc::clone(&self.asked);
        Some(AccessShortcut::new(move |name, _| {
            if asked.decline.load(Ordering::SeqCst) || !name.ends_with("-journal") {
                return None;
            }
            asked.by_shortcut.fetch_add(1, Ordering::SeqCst);
            Some(false)
        }))
    }

    vfs_core::forward_vfs!(base, except access);
}

/// A shim answering `access` itself (as a recorder or a fault injector
/// does): the base's shortcut must not answer for it.
struct OwnAccess {
    base: Shortcutting,
    calls: Arc<AtomicUsize>,
}

impl Vfs for OwnAccess {
    type File = <TestVfs as Vfs>::File;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.base.open(name, opts)
    }

    fn access(&self, name: &FileName, check: AccessCheck) -> Result<bool> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.base.access(name, check)
    }

    vfs_core::forward_vfs!(base, except access);
}

fn shortcutting() -> (Shortcutting, Arc<Asked>) {
    let asked = Arc::new(Asked::default());
    let vfs = Shortcutting {
        base: TestVfs::new(false),
        asked: Arc::clone(&asked),
    };
    (vfs, asked)
}

/// Runs `reads` rollback-mode read transactions on a fresh database of VFS
/// `vfs_name` and checks their rows.
fn read_transactions(vfs_name: &str, reads: usize) {
    let conn = Connection::open(format!("file:/sc.db?vfs={vfs_name}")).unwrap();
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);")
        .unwrap();
    for _ in 0..reads {
        let sum: i64 = conn
            .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sum, 6);
    }
}

#[test]
fn the_hot_journal_check_is_answered_without_the_backend() {
    let (vfs, asked) = shortcutting();
    let name = unique_name("shortcut");
    let reg = vfs_core::register(&name, vfs, false).unwrap();
    read_transactions(&name, 20);
    assert_eq!(asked.journal_by_backend.load(Ordering::SeqCst), 0);
    assert!(asked.by_shortcut.load(Ordering::SeqCst) >= 20);
    reg.unregister().unwrap();
}

#[test]
fn a_declined_name_is_asked_of_the_backend() {
    let (vfs, asked) = shortcutting();
    asked.decline.store(true, Ordering::SeqCst);
    let name = unique_name("shortcut-declined");
    let reg = vfs_core::register(&name, vfs, false).unwrap();
    read_transactions(&name, 20);
    assert_eq!(asked.by_shortcut.load(Ordering::SeqCst), 0);
    assert!(asked.journal_by_backend.load(Ordering::SeqCst) >= 20);
    reg.unregister().unwrap();
}

#[test]
fn a_forwarding_shim_keeps_its_base_shortcut() {
    let (vfs, asked) = shortcutting();
    let name = unique_name("shortcut-shim");
    let reg = vfs_core::register(&name, PassThrough(vfs), false).unwrap();
    read_transactions(&name, 20);
    assert_eq!(asked.journal_by_backend.load(Ordering::SeqCst), 0);
    assert!(asked.by_shortcut.load(Ordering::SeqCst) >= 20);
    reg.unregister().unwrap();
}

#[test]
fn a_shim_answering_access_itself_is_always_asked() {
    let (base, asked) = shortcutting();
    let calls = Arc::new(AtomicUsize::new(0));
    let shim = OwnAccess {
        base,
        calls: Arc::clone(&calls),
    };
    let name = unique_name("shortcut-own");
    let reg = vfs_core::register(&name, shim, false).unwrap();
    read_transactions(&name, 20);
    assert_eq!(asked.by_shortcut.load(Ordering::SeqCst), 0);
    assert!(calls.load(Ordering::SeqCst) >= 20);
    reg.unregister().unwrap();
}

/// A TestVfs whose shortcut is a counted one: `-journal` names are absent
/// while `journals` is zero.
struct Counted {
    base: TestVfs,
    journals: Arc<AtomicUsize>,
    journal_by_backend: Arc<AtomicUsize>,
}

impl Vfs for Counted {
    type File = <TestVfs as Vfs>::File;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.base.open(name, opts)
    }

    fn access(&self, name: &FileName, check: AccessCheck) -> Result<bool> {
        if name.ends_with("-journal") {
            self.journal_by_backend.fetch_add(1, Ordering::SeqCst);
        }
        self.base.access(name, check)
    }

    fn access_shortcut(&self) -> Option<AccessShortcut> {
        Some(AccessShortcut::absent_while_zero([(
            "-journal",
            Arc::clone(&self.journals),
        )]))
    }

    vfs_core::forward_vfs!(base, except access);
}

/// Read transactions on a [`Counted`] VFS whose journal count is
/// `journals`: how many `-journal` checks reached the backend.
fn journal_checks_reaching_the_backend(journals: usize) -> usize {
    let by_backend = Arc::new(AtomicUsize::new(0));
    let vfs = Counted {
        base: TestVfs::new(false),
        journals: Arc::new(AtomicUsize::new(journals)),
        journal_by_backend: Arc::clone(&by_backend),
    };
    let name = unique_name("shortcut-counted");
    let reg = vfs_core::register(&name, vfs, false).unwrap();
    read_transactions(&name, 20);
    reg.unregister().unwrap();
    by_backend.load(Ordering::SeqCst)
}

#[test]
fn a_counted_shortcut_answers_while_its_count_is_zero() {
    assert_eq!(journal_checks_reaching_the_backend(0), 0);
}

#[test]
fn a_counted_shortcut_with_files_of_its_kind_asks_the_backend() {
    assert!(journal_checks_reaching_the_backend(1) >= 20);
}
