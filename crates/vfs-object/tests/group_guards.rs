//! Group commit's guards (`docs/object.md`, "Group commit"): `sync=async`
//! takes the writer lease by itself, one process per queue directory,
//! bounded waits when the store is down, and a log collected above the
//! queue is an error naming the LSN instead of endless retries.

mod support;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use support::group::{async_params, fail_log_puts, flush, flush_settled, memory, node, said};
use support::{code, count, integrity};
use vfs_core::codes::{SQLITE_CANTOPEN, SQLITE_IOERR_WRITE};
use vfs_object::fault::Rule;

fn queue_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".txn")
        })
        .count()
}

/// Without `lease=`, an async process holds the lease while its queue is
/// not empty: another process's writer (with a lease) waits instead of
/// committing below the queue, and both commits land.
#[test]
fn async_without_lease_parameter_makes_other_writers_wait() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let (a, actl) = node(&inner);
    let c = a.open_with("w.db", &async_params(dir.path()));
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    flush(&c).unwrap();
    actl.add(fail_log_puts());
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(queue_files(dir.path()), 1);
    let (b, _) = node(&inner);
    let other = b.open_with("w.db", "&lease=30000");
    let e = other.execute("INSERT INTO t VALUES (100)", []).unwrap_err();
    assert!(support::is_busy(&e), "{e}");
    assert!(said().contains("holds the lease"), "{}", said());
    actl.clear();
    flush_settled(&c).unwrap();
    other.execute("INSERT INTO t VALUES (100)", []).unwrap();
    c.execute("INSERT INTO t VALUES (2)", []).unwrap();
    flush(&c).unwrap();
    let (fresh, _) = node(&inner);
    let r = fresh.open("w.db");
    assert_eq!(count(&r, "SELECT count(*) FROM t"), 3);
    assert_eq!(count(&r, "SELECT sum(x) FROM t"), 103);
    integrity(&r);
}

/// `lease=0` turns the implicit lease off: the other writer commits below
/// the queue, which is then a conflict (the documented opt-out).
#[test]
fn lease_zero_turns_the_async_lease_off() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let (a, actl) = node(&inner);
    let c = a.open_with("z.db", &format!("{}&lease=0", async_params(dir.path())));
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    flush(&c).unwrap();
    actl.add(fail_log_puts());
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    let (b, _) = node(&inner);
    let other = b.open_with("z.db", "&lease=30000");
    other.execute("INSERT INTO t VALUES (100)", []).unwrap();
    actl.clear();
    let e = flush_settled(&c).unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_WRITE, "{e}");
    assert!(said().contains("LSN 2"), "{}", said());
}

/// A second opener of a queue directory (here another `ObjectVfs` of this
/// process; another process is refused the same way) gets SQLITE_CANTOPEN
/// naming the directory and its lock; once the first is gone it opens.
#[test]
fn a_queue_directory_has_one_process() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let params = async_params(dir.path());
    let (a, _) = node(&inner);
    let c = a.open_with("o.db", &params);
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    let (b, _) = node(&inner);
    let e = Connection::open(b.uri("o.db", &params)).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN, "{e}");
    let dir_name = dir.path().display().to_string();
    assert!(
        said().contains(&dir_name) && said().contains("queue.lock"),
        "{}",
        said()
    );
    drop(c);
    drop(a);
    let c = b.open_with("o.db", &params);
    assert_eq!(count(&c, "SELECT count(*) FROM t"), 1);
}

/// A connection without `sync=async` waits for the upload of its commit,
/// but not for ever: with every commit PUT failing it gets an error naming
/// the queue, and its transaction stays queued and lands later.
#[test]
fn a_waiting_commit_is_bounded_when_the_store_is_down() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let (a, actl) = node(&inner);
    let queued_conn = a.open_with("d.db", &async_params(dir.path()));
    queued_conn.execute_batch("CREATE TABLE t(x)").unwrap();
    flush(&queued_conn).unwrap();
    let plain = a.open("d.db");
    actl.add(fail_log_puts());
    let e = plain.execute("INSERT INTO t VALUES (7)", []).unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_WRITE, "{e}");
    let dir_name = dir.path().display().to_string();
    assert!(
        said().contains(&dir_name) && said().contains("stays queued"),
        "{}",
        said()
    );
    // Never lost: queued, read by the process, uploaded once the store is
    // back.
    assert_eq!(queue_files(dir.path()), 1);
    assert_eq!(count(&plain, "SELECT count(*) FROM t WHERE x = 7"), 1);
    actl.clear();
    flush_settled(&queued_conn).unwrap();
    let (fresh, _) = node(&inner);
    let r = fresh.open("d.db");
    assert_eq!(count(&r, "SELECT count(*) FROM t WHERE x = 7"), 1);
    integrity(&r);
}

/// Another writer (without a lease) commits above the queue's base and a
/// GC with a zero window collects the log there: the uploader's create
/// lands in a collected key (a stray). It stops with a conflict naming
/// the LSN instead of retrying for ever, and keeps the queue.
#[test]
fn a_log_collected_under_the_uploader_is_a_conflict_naming_the_lsn() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let (a, actl) = node(&inner);
    let c = a.open_with("g.db", &async_params(dir.path()));
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (0)")
        .unwrap();
    let base = flush(&c).unwrap();
    // Every request of A's uploader fails until the GC is done, so that
    // no round sees the other writer's commits before they are collected.
    actl.add(Rule::any().keys_containing("/log/").always().fail());
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    let (b, _) = node(&inner);
    let other = b.open_with("g.db", "&lease=0");
    for i in 0..3 {
        other
            .execute("INSERT INTO t VALUES (?1)", [100 + i])
            .unwrap();
    }
    b.vfs.compact("/g.db").unwrap();
    b.vfs.gc_with_retention("/g.db", Duration::ZERO).unwrap();
    actl.clear();
    let e = flush_settled(&c).unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_WRITE, "{e}");
    // The queue's base itself (LSN `base`) was collected.
    let lsn = format!("LSN {base}");
    // A conflict that stops the queue, not a failed round retried later.
    assert!(
        said().contains("can never be published")
            && said().contains("garbage-collected")
            && said().contains(&lsn),
        "{}",
        said()
    );
    // Stopped, not retrying: the next flush says the same without a
    // request (a retried round would create and delete a stray again).
    let before = actl.counts();
    flush(&c).unwrap_err();
    assert!(said().contains("can never be published"), "{}", said());
    assert_eq!(actl.counts().since(&before).total(), 0);
    assert_eq!(queue_files(dir.path()), 1, "the queue was dropped");
    // No stray of the queue is left in the store for readers, and the
    // stopped queue handed its writer lease back: writers go on.
    let (fresh, _) = node(&inner);
    let r = fresh.open_with("g.db", "&lease=30000");
    assert_eq!(count(&r, "SELECT count(*) FROM t WHERE x = 1"), 0);
    r.execute("INSERT INTO t VALUES (9)", []).unwrap();
    integrity(&r);
}

/// A restart whose queue was made on an LSN whose log above has been
/// collected since cannot tell what landed: SQLITE_CANTOPEN naming the
/// queue, the LSN and the operator's steps; nothing is published.
#[test]
fn a_restart_over_a_collected_log_says_what_to_do() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let params = async_params(dir.path());
    let base = {
        let (a, actl) = node(&inner);
        let c = a.open_with("r.db", &params);
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (0)")
            .unwrap();
        let base = flush(&c).unwrap();
        actl.add(fail_log_puts());
        c.execute("INSERT INTO t VALUES (1)", []).unwrap();
        base
    };
    let (b, _) = node(&inner);
    let other = b.open("r.db");
    for i in 0..3 {
        other
            .execute("INSERT INTO t VALUES (?1)", [100 + i])
            .unwrap();
    }
    b.vfs.compact("/r.db").unwrap();
    b.vfs.gc_with_retention("/r.db", Duration::ZERO).unwrap();
    let head = b.vfs.head_lsn("/r.db").unwrap();
    let (a2, _) = node(&inner);
    let e = Connection::open(a2.uri("r.db", &params)).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN, "{e}");
    let m = said();
    let dir_name = dir.path().display().to_string();
    assert!(
        m.contains(&dir_name) && m.contains("garbage-collected") && m.contains("Operator"),
        "{m}"
    );
    assert!(m.contains(&format!("made on LSN {base}")), "{m}");
    assert_eq!(queue_files(dir.path()), 1);
    assert_eq!(b.vfs.head_lsn("/r.db").unwrap(), head, "published");
}

/// A restart with a queue takes the lease before uploading it, so another
/// process's writer waits for the queue rather than committing below it
/// (which would make the queue a conflict).
#[test]
fn a_restarted_queue_holds_the_lease_until_uploaded() {
    let inner = memory();
    let dir = tempfile::tempdir().unwrap();
    let params = async_params(dir.path());
    {
        let (a, actl) = node(&inner);
        let c = a.open_with("h.db", &params);
        c.execute_batch("CREATE TABLE t(x)").unwrap();
        flush(&c).unwrap();
        actl.add(fail_log_puts());
        c.execute("INSERT INTO t VALUES (1)", []).unwrap();
        // Dropped: the lease is handed back, the queue stays on disk.
    }
    let (a2, a2ctl) = node(&inner);
    a2ctl.add(fail_log_puts());
    let c = a2.open_with("h.db", &params);
    // A failed round: the uploader took the lease before its PUT.
    flush(&c).unwrap_err();
    assert!(said().contains("not in the store yet"), "{}", said());
    let (b, _) = node(&inner);
    let other = b.open_with("h.db", "&lease=30000");
    let e = other.execute("INSERT INTO t VALUES (100)", []).unwrap_err();
    assert!(support::is_busy(&e), "{e}");
    assert!(said().contains("holds the lease"), "{}", said());
    a2ctl.clear();
    flush_settled(&c).unwrap();
    other.execute("INSERT INTO t VALUES (100)", []).unwrap();
    assert_eq!(count(&other, "SELECT sum(x) FROM t"), 101);
    integrity(&other);
}
