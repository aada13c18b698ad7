//! Unit tests that look inside: structural sharing of snapshots, and the lock
//! rules and the unfinished-transaction rule at the `File` level.

use std::sync::Arc;

use vfs_core::{File, FileKind, LockLevel, OpenAccess, OpenName, OpenOptions, Vfs, codes};

use crate::{Mvcc, MvccFile, Snapshot};

/// A database of `rows` rows of ~500 bytes built through SQLite.
fn build(test: &str, rows: i64) -> (Mvcc, String) {
    let mvcc = Mvcc::new();
    let vfs = format!("mvcc-unit-{test}");
    // Leaves the VFS registered: its name is unique to the test.
    let _ = vfs_core::register(&vfs, mvcc.clone(), false).unwrap();
    let conn = rusqlite::Connection::open(format!("file:/db?vfs={vfs}")).unwrap();
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v, pad)")
        .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..rows {
        tx.execute(
            "INSERT INTO t VALUES (?1, ?1, zeroblob(500))",
            rusqlite::params![i],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    (mvcc, vfs)
}

/// How many chunks two snapshots share by pointer, and how many they have.
fn shared_chunks(a: &Snapshot, b: &Snapshot) -> (usize, usize) {
    let n = a.pages().len().div_ceil(a.pages().chunk_size() as u64) as usize;
    let shared = (0..n)
        .filter(|&i| match (a.pages().chunk(i), b.pages().chunk(i)) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            _ => false,
        })
        .count();
    (shared, n)
}

#[test]
fn snapshot_is_a_pointer_clone_not_a_page_copy() {
    let (mvcc, vfs) = build("ptr-eq", 400);
    let s1 = mvcc.snapshot("/db").unwrap();
    let s2 = mvcc.snapshot("/db").unwrap();
    // The same version object, hence the very same pages.
    assert!(Arc::ptr_eq(&s1.version, &s2.version));
    let (shared, n) = shared_chunks(&s1, &s2);
    assert!(n > 40, "database spans {n} pages");
    assert_eq!(shared, n);

    // A one-row commit copies only the pages it changed.
    let conn = rusqlite::Connection::open(format!("file:/db?vfs={vfs}")).unwrap();
    conn.execute("UPDATE t SET v = -1 WHERE id = 200", [])
        .unwrap();
    let s3 = mvcc.snapshot("/db").unwrap();
    assert_eq!(s3.version(), s1.version() + 1);
    let (shared, n) = shared_chunks(&s1, &s3);
    assert!(n - shared <= 2, "{} of {n} pages copied", n - shared);
    assert!(!Arc::ptr_eq(
        s1.pages().chunk(0).unwrap(),
        s3.pages().chunk(0).unwrap()
    ));

    // Forking shares every page with the snapshot.
    mvcc.fork(&s1, "/fork").unwrap();
    let f = mvcc.snapshot("/fork").unwrap();
    assert_eq!(shared_chunks(&s1, &f), (n, n));

    // Restoring copies page 1 only (to stamp a new change counter).
    mvcc.restore("/db", &s1).unwrap();
    let r = mvcc.snapshot("/db").unwrap();
    assert_eq!(shared_chunks(&s1, &r), (n - 1, n));
    let mut head = [0u8; 100];
    r.pages().read(&mut head, 0);
    let counter = |h: &[u8]| u32::from_be_bytes([h[24], h[25], h[26], h[27]]);
    assert_eq!(counter(&head), s3.pages().change_counter().unwrap() + 1);
    assert_eq!(&head[92..96], &head[24..28]);
}

fn opts(kind: FileKind) -> OpenOptions {
    OpenOptions::new(kind, OpenAccess::Create)
}

fn open_main(mvcc: &Mvcc, name: &str) -> MvccFile {
    mvcc.open(
        &OpenName::new(name, FileKind::MainDb),
        opts(FileKind::MainDb),
    )
    .unwrap()
}

fn code(r: vfs_core::Result<()>) -> Option<i32> {
    r.err().and_then(|e| e.code())
}

#[test]
fn lock_rules_at_the_file_level() {
    let mvcc = Mvcc::new();
    let mut w = open_main(&mvcc, "/locks");
    let mut r = open_main(&mvcc, "/locks");
    let mut other = open_main(&mvcc, "/locks");

    // Writes need the writer's lock.
    assert!(w.write_at(&[1; 512], 0).is_err());
    assert_eq!(
        code(w.lock(LockLevel::Reserved)),
        Some(codes::SQLITE_IOERR_LOCK)
    );

    r.lock(LockLevel::Shared).unwrap();
    w.lock(LockLevel::Shared).unwrap();
    other.lock(LockLevel::Shared).unwrap();
    w.lock(LockLevel::Reserved).unwrap();
    assert_eq!(
        code(other.lock(LockLevel::Reserved)),
        Some(codes::SQLITE_BUSY)
    );
    // EXCLUSIVE does not wait for the two readers.
    w.lock(LockLevel::Exclusive).unwrap();
    assert!(r.check_reserved_lock().unwrap());
    w.write_at(&[7; 512], 0).unwrap();
    // Readers still see the empty snapshot, and new readers too.
    assert_eq!(r.size().unwrap(), 0);
    let mut late = open_main(&mvcc, "/locks");
    late.lock(LockLevel::Shared).unwrap();
    assert_eq!(late.size().unwrap(), 0);

    // Publication at unlock (not an SQLite image: compared byte-wise).
    w.unlock(LockLevel::Shared).unwrap();
    assert_eq!(w.size().unwrap(), 512);
    assert_eq!(r.size().unwrap(), 0);
    assert!(!r.check_reserved_lock().unwrap());
    assert_eq!(mvcc.export("/locks").unwrap(), vec![7; 512]);

    // r's snapshot is stale now.
    assert_eq!(
        code(r.lock(LockLevel::Reserved)),
        Some(codes::SQLITE_BUSY_SNAPSHOT)
    );
    r.unlock(LockLevel::None).unwrap();
    r.lock(LockLevel::Shared).unwrap();
    assert_eq!(r.size().unwrap(), 512);
    r.lock(LockLevel::Reserved).unwrap();
    r.unlock(LockLevel::None).unwrap();

    // A writer that closes mid-transaction publishes nothing.
    w.lock(LockLevel::Reserved).unwrap();
    w.write_at(&[9; 512], 0).unwrap();
    drop(w);
    assert_eq!(mvcc.export("/locks").unwrap(), vec![7; 512]);
    other.unlock(LockLevel::None).unwrap();
    other.lock(LockLevel::Shared).unwrap();
    other.lock(LockLevel::Exclusive).unwrap();
    other.unlock(LockLevel::None).unwrap();
}

#[test]
fn unlocking_with_a_hot_journal_discards_the_transaction() {
    let mvcc = Mvcc::new();
    let mut w = open_main(&mvcc, "/hot");
    w.lock(LockLevel::Shared).unwrap();
    w.lock(LockLevel::Exclusive).unwrap();
    w.write_at(&[1; 1024], 0).unwrap();
    w.unlock(LockLevel::None).unwrap();
    assert_eq!(mvcc.snapshot("/hot").unwrap().version(), 1);

    // As SQLite does after an I/O error mid-commit: a live journal header
    // (non-zero first byte), the file half-written, then the lock dropped.
    let jname = OpenName::new("/hot-journal", FileKind::MainJournal);
    let mut journal = mvcc.open(&jname, opts(FileKind::MainJournal)).unwrap();
    w.lock(LockLevel::Shared).unwrap();
    w.lock(LockLevel::Exclusive).unwrap();
    journal.write_at(&[0xd9, 0xd5, 0x05, 0xf9], 0).unwrap();
    w.write_at(&[2; 1024], 0).unwrap();
    drop(journal);
    w.unlock(LockLevel::None).unwrap();

    assert_eq!(mvcc.snapshot("/hot").unwrap().version(), 1);
    assert_eq!(mvcc.export("/hot").unwrap(), vec![1; 1024]);
    // The journal is gone, and was never reported as existing.
    assert!(
        !mvcc
            .shared
            .files
            .lock()
            .contains_key(vfs_core::FileName::new("/hot-journal"))
    );
    assert!(
        !mvcc
            .access(
                vfs_core::FileName::new("/hot-journal"),
                vfs_core::AccessCheck::Exists
            )
            .unwrap()
    );

    // A zeroed header (PERSIST mode's commit) is not hot.
    let mut journal = mvcc.open(&jname, opts(FileKind::MainJournal)).unwrap();
    w.lock(LockLevel::Shared).unwrap();
    w.lock(LockLevel::Exclusive).unwrap();
    journal.write_at(&[0; 28], 0).unwrap();
    w.write_at(&[3; 1024], 0).unwrap();
    w.unlock(LockLevel::None).unwrap();
    assert_eq!(mvcc.export("/hot").unwrap(), vec![3; 1024]);
}

#[test]
fn private_databases_get_unique_full_names() {
    let mvcc = Mvcc::new();
    let a = mvcc.full_pathname(vfs_core::FileName::new("x.db")).unwrap();
    let b = mvcc.full_pathname(vfs_core::FileName::new("x.db")).unwrap();
    assert_ne!(a, b);
    assert!(a.starts_with("x.db#private-"));
    assert_eq!(
        mvcc.full_pathname(vfs_core::FileName::new("/x.db"))
            .unwrap(),
        "/x.db"
    );
}
