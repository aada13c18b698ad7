//! A writer lease kept for a linger is handed back when its `ObjectVfs`
//! goes away, so another process takes it at once instead of waiting out
//! the linger or the TTL. Time is moved with injected clocks, never slept.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use support::{Node, code, count, faulty_memory, opts};
use vfs_core::codes::SQLITE_BUSY;
use vfs_object::fault::{RequestKind, Rule};
use vfs_object::{Clock, ObjectOptions};

/// Long enough that no heartbeat (every TTL/3 of real time) fires.
const TTL: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn lease_opts(clock: Arc<ManualClock>) -> ObjectOptions {
    ObjectOptions {
        lease: Some(TTL),
        // Kept an hour after each transaction.
        lease_linger: Duration::from_secs(3600),
        clock,
        ..opts(Duration::ZERO)
    }
}

#[test]
fn a_lingering_lease_is_released_when_the_vfs_goes_away() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let clock = Arc::new(ManualClock(AtomicU64::new(1_800_000_000_000)));
    let a = Node::new(store.clone(), lease_opts(clock.clone()));
    let ca = a.open("exit.db");
    ca.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('a');")
        .unwrap();
    let b = Node::new(store.clone(), lease_opts(clock.clone()));
    let cb = b.open("exit.db");
    // While A lives its lease lingers: B's write waits (SQLITE_BUSY with
    // no busy handler).
    let e = cb.execute("INSERT INTO t VALUES ('b')", []).unwrap_err();
    assert_eq!(code(&e) & 0xff, SQLITE_BUSY, "{e}");
    // A goes away (its connection, then the VFS): the lease is released,
    // and B writes at once, by the same clock.
    drop(ca);
    drop(a);
    cb.execute("INSERT INTO t VALUES ('b')", []).unwrap();
    assert_eq!(count(&cb, "SELECT count(*) FROM t"), 2);
}

#[test]
fn a_failed_release_at_exit_leaves_the_lease_to_expire() {
    let (store, ctl) = faulty_memory();
    let clock = Arc::new(ManualClock(AtomicU64::new(1_800_000_000_000)));
    let a = Node::new(
        store.clone(),
        ObjectOptions {
            retries: 0,
            ..lease_opts(clock.clone())
        },
    );
    let ca = a.open("fail.db");
    ca.execute_batch("CREATE TABLE t(v)").unwrap();
    drop(ca);
    // The release's PUT fails: dropping the VFS neither panics nor hangs.
    ctl.add(Rule::on(&[RequestKind::Put]).always());
    drop(a);
    ctl.clear();
    let b = Node::new(store.clone(), lease_opts(clock.clone()));
    let cb = b.open("fail.db");
    let e = cb.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
    assert_eq!(code(&e) & 0xff, SQLITE_BUSY, "{e}");
    // Past the TTL it is taken over (the takeover fences the log, so the
    // statement retries once on the new snapshot: SQLite's busy handler).
    clock
        .0
        .fetch_add(TTL.as_millis() as u64 + 1, Ordering::Relaxed);
    cb.busy_timeout(Duration::from_secs(30)).unwrap();
    cb.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(count(&cb, "SELECT count(*) FROM t"), 1);
}
