//! Writer leases (`docs/object.md`, "Writer leases"): contention becomes waiting,
//! a stalled holder is taken over after its TTL and can never publish
//! (with or without clock skew), and what a lease costs in requests.
//! Time is moved with injected clocks, never slept.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use rusqlite::Connection;
use support::{Node, code, count, faulty_memory, integrity, objects, opts};
use vfs_core::codes::{SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_CANTOPEN, SQLITE_IOERR_LOCK};
use vfs_object::fault::{RequestKind, Rule};
use vfs_object::{Clock, ObjectOptions};

/// Long enough that no heartbeat (every TTL/3 of real time) fires during a
/// test: the injected clocks alone decide expiry.
const TTL: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicU64::new(1_800_000_000_000)))
    }
    fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as u64, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn last_message() -> String {
    vfs_core::last_error()
        .map(|e| e.message)
        .unwrap_or_default()
}

fn lease_opts(clock: Arc<ManualClock>, linger: Duration) -> ObjectOptions {
    ObjectOptions {
        lease: Some(TTL),
        lease_linger: linger,
        clock,
        ..opts(Duration::ZERO)
    }
}

fn waiting(c: Connection) -> Connection {
    c.busy_timeout(Duration::from_secs(30)).unwrap();
    c
}

/// Two "processes", one thread each, add 1 to a counter `per_writer`
/// times; returns how many transactions the application had to roll back
/// and retry (`SQLITE_BUSY_SNAPSHOT`), and the final counter.
fn contend(lease: bool, per_writer: i64) -> (u64, i64, u64) {
    let (store, ctl) = faulty_memory();
    // A little latency per request widens every race window.
    ctl.set_latency(Duration::from_millis(2));
    let options = || ObjectOptions {
        lease: lease.then_some(TTL),
        ..opts(Duration::ZERO)
    };
    let setup = Node::new(store.clone(), options());
    setup
        .open("count.db")
        .execute_batch("CREATE TABLE c(k INTEGER PRIMARY KEY, v); INSERT INTO c VALUES (1, 0);")
        .unwrap();
    drop(setup);
    let rollbacks = Arc::new(AtomicU64::new(0));
    let before = ctl.counts();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (store, rollbacks) = (store.clone(), Arc::clone(&rollbacks));
            let node = Node::new(store, options());
            s.spawn(move || {
                let c = waiting(node.open("count.db"));
                for _ in 0..per_writer {
                    loop {
                        match c.execute_batch(
                            "BEGIN IMMEDIATE; UPDATE c SET v = v + 1 WHERE k = 1; COMMIT;",
                        ) {
                            Ok(()) => break,
                            Err(e) => {
                                let _ = c.execute_batch("ROLLBACK");
                                assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT, "{e}");
                                rollbacks.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                drop(c);
                drop(node);
            });
        }
    });
    let puts = ctl.counts().since(&before).puts;
    let check = Node::new(store, options());
    let c = check.open("count.db");
    integrity(&c);
    (
        rollbacks.load(Ordering::Relaxed),
        count(&c, "SELECT v FROM c WHERE k = 1"),
        puts,
    )
}

#[test]
fn contending_writers_with_leases_wait_instead_of_rolling_back() {
    const N: i64 = 12;
    let (without, total, puts_without) = contend(false, N);
    assert_eq!(total, 2 * N, "lost or doubled update without leases");
    let (with, total, puts_with) = contend(true, N);
    assert_eq!(total, 2 * N, "lost or doubled update with leases");
    eprintln!(
        "rollbacks: {without} without leases ({puts_without} PUTs), {with} with ({puts_with} PUTs)"
    );
    assert!(without > 0, "the race never happened without leases");
    assert_eq!(with, 0, "a lease holder's transaction was wasted");
}

#[test]
fn a_stalled_holder_is_taken_over_after_its_ttl_and_its_commit_fails() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let clock_a = ManualClock::new();
    let clock_b = ManualClock::new();
    let a = Node::new(store.clone(), lease_opts(clock_a.clone(), Duration::ZERO));
    let b = Node::new(store.clone(), lease_opts(clock_b.clone(), Duration::ZERO));
    let ca = a.open("stall.db");
    ca.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('base');")
        .unwrap();
    // A takes the lease and stalls inside its transaction.
    ca.execute_batch("BEGIN; INSERT INTO t VALUES ('stale');")
        .unwrap();
    let cb = b.open("stall.db");
    assert_eq!(
        code(&cb.execute("INSERT INTO t VALUES ('b')", []).unwrap_err()),
        SQLITE_BUSY,
        "a live lease must make the other writer wait"
    );
    // Past the TTL by both clocks: B takes over (fencing the log) and
    // commits; its busy handler absorbs the retry the fence causes.
    clock_a.advance(TTL + Duration::from_secs(1));
    clock_b.advance(TTL + Duration::from_secs(1));
    let cb = waiting(cb);
    cb.execute("INSERT INTO t VALUES ('b')", []).unwrap();
    // A's commit checks its lease in the store, finds it taken, and
    // publishes nothing.
    let puts = a.vfs.request_stats().puts;
    let e = ca.execute_batch("COMMIT").unwrap_err();
    assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT, "{e}");
    assert!(
        last_message().contains("lost its lease"),
        "{}",
        last_message()
    );
    assert_eq!(a.vfs.request_stats().puts, puts, "no commit PUT was sent");
    let _ = ca.execute_batch("ROLLBACK");
    let fresh = Node::new(store.clone(), opts(Duration::ZERO));
    let cf = fresh.open("stall.db");
    assert_eq!(count(&cf, "SELECT count(*) FROM t WHERE v = 'stale'"), 0);
    assert_eq!(count(&cf, "SELECT count(*) FROM t"), 2);
    integrity(&cf);
    // A waits for B's lease like anyone else (B released it: A takes it).
    waiting(ca)
        .execute("INSERT INTO t VALUES ('a again')", [])
        .unwrap();
    assert_eq!(count(&cf, "SELECT count(*) FROM t"), 3);
}

#[test]
fn with_clock_skew_the_fence_still_stops_the_old_holder() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    // A's clock stays behind: A believes its lease valid throughout.
    let clock_a = ManualClock::new();
    let clock_b = ManualClock::new();
    let a = Node::new(store.clone(), lease_opts(clock_a, Duration::ZERO));
    // B keeps its lease after committing (a linger), so A must wait.
    let b = Node::new(
        store.clone(),
        lease_opts(clock_b.clone(), Duration::from_secs(3600)),
    );
    let ca = a.open("skew.db");
    ca.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('base');")
        .unwrap();
    let head = a.vfs.head_lsn("skew.db").unwrap();
    ca.execute_batch("BEGIN; INSERT INTO t VALUES ('stale');")
        .unwrap();
    clock_b.advance(TTL + Duration::from_secs(1));
    let cb = waiting(b.open("skew.db"));
    cb.execute("INSERT INTO t VALUES ('b')", []).unwrap();
    // B fenced LSN head+1 with a void commit and committed head+2.
    assert_eq!(b.vfs.head_lsn("skew.db").unwrap(), head + 2);
    // A's local check passes (its clock says the lease is valid), so its
    // PUT goes out, and the conditional create of head+1 refuses it.
    let e = ca.execute_batch("COMMIT").unwrap_err();
    assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT, "{e}");
    let _ = ca.execute_batch("ROLLBACK");
    // A's next write sees commits it did not make, checks the lease in
    // the store, and waits for B's lease (live even by A's slow clock).
    let e = ca.execute("INSERT INTO t VALUES ('a')", []).unwrap_err();
    assert_eq!(code(&e), SQLITE_BUSY, "{e}");
    let fresh = Node::new(store.clone(), opts(Duration::ZERO));
    let cf = fresh.open("skew.db");
    assert_eq!(
        count(&cf, "SELECT count(*) FROM t WHERE v IN ('stale', 'a')"),
        0
    );
    assert_eq!(count(&cf, "SELECT count(*) FROM t"), 2);
    integrity(&cf);
}

/// Requests of `commits` one-row commits after the first (lease taken).
fn requests_per_commit(linger: Duration, commits: u64) -> vfs_object::RequestStats {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = Node::new(store, lease_opts(ManualClock::new(), linger));
    let c = a.open("cost.db");
    c.execute_batch("CREATE TABLE t(v)").unwrap();
    let before = a.vfs.request_stats();
    for i in 0..commits {
        c.execute("INSERT INTO t VALUES (?1)", [i as i64]).unwrap();
    }
    a.vfs.request_stats().since(&before)
}

#[test]
fn what_a_lease_costs_per_commit_with_and_without_linger() {
    // Released at once: take (one PUT, If-Match on our own last write,
    // which also proves no other holder committed since: no LIST), commit
    // (one PUT), release (one PUT); the read transaction's LIST (poll=0).
    // And one 96-byte GET per commit: the check that its parent is still
    // in the log (object.md §14).
    let released = requests_per_commit(Duration::ZERO, 10);
    assert_eq!(
        (released.puts, released.lists, released.gets),
        (30, 10, 10),
        "{released}"
    );
    // Kept for a linger: the commit's PUT and the read transaction's LIST
    // (poll=0) and the parent check's GET, nothing for the lease.
    let kept = requests_per_commit(Duration::from_secs(3600), 10);
    assert_eq!((kept.puts, kept.lists, kept.gets), (10, 10, 10), "{kept}");
}

#[test]
fn deleting_a_database_deletes_its_lease() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = Node::new(
        store.clone(),
        lease_opts(ManualClock::new(), Duration::ZERO),
    );
    a.open("gone.db")
        .execute_batch("CREATE TABLE t(v)")
        .unwrap();
    assert!(objects(&store).iter().any(|(k, _)| k == "t/gone.db/lease"));
    a.vfs.delete_database("gone.db").unwrap();
    assert_eq!(objects(&store), vec![]);
}

#[test]
fn lease_faults_are_resolved_or_reported_and_never_publish() {
    // A lost response of the lease's PUT: read back, it is ours.
    let (store, ctl) = faulty_memory();
    let a = Node::new(
        store.clone(),
        lease_opts(ManualClock::new(), Duration::ZERO),
    );
    let c = a.open("f.db");
    c.execute_batch("CREATE TABLE t(v)").unwrap();
    ctl.add(Rule::on(&[RequestKind::Put]).lose_response());
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM t"), 1);
    // The store unreachable when taking the lease: SQLITE_IOERR_LOCK naming
    // the lease, nothing published.
    let lsn = a.vfs.head_lsn("f.db").unwrap();
    ctl.add(Rule::on(&[RequestKind::Put]).always().fail());
    let e = c.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    ctl.clear();
    assert_eq!(code(&e), SQLITE_IOERR_LOCK, "{e}");
    assert!(
        last_message().contains("t/f.db/lease"),
        "{}",
        last_message()
    );
    assert_eq!(a.vfs.head_lsn("f.db").unwrap(), lsn);
    c.execute("INSERT INTO t VALUES (3)", []).unwrap();
    assert_eq!(count(&c, "SELECT count(*) FROM t"), 2);
    // A damaged lease object fails closed.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use object_store::ObjectStoreExt;
        store
            .put(&"t/f.db/lease".into(), vec![0u8; 48].into())
            .await
            .unwrap();
    });
    let lsn = a.vfs.head_lsn("f.db").unwrap();
    let b = Node::new(
        store.clone(),
        lease_opts(ManualClock::new(), Duration::ZERO),
    );
    let e = b
        .open("f.db")
        .execute("INSERT INTO t VALUES (4)", [])
        .unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_LOCK, "{e}");
    assert!(last_message().contains("damaged"), "{}", last_message());
    assert_eq!(b.vfs.head_lsn("f.db").unwrap(), lsn, "nothing published");
}

#[test]
fn a_bad_lease_parameter_is_refused() {
    let a_store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = Node::new(
        a_store.clone(),
        ObjectOptions {
            lease: Some(TTL),
            ..opts(Duration::ZERO)
        },
    );
    let e = Connection::open(a.uri("p.db", "&lease=soon")).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN, "{e}");
    // lease=0 is no lease: no lease object is ever written.
    let c = a.open_with("p.db", "&lease=0");
    c.execute_batch("CREATE TABLE t(v)").unwrap();
    assert!(
        objects(&a_store)
            .iter()
            .all(|(k, _)| !k.ends_with("/lease"))
    );
}
