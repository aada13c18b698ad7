//! Compaction and garbage collection: snapshots are where cold opens and
//! readers far behind start; GC deletes only what no retained state needs;
//! a stale writer can never commit into a collected log; a crash at any
//! request of either loses nothing.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use rusqlite::Connection;
use support::{Node, code, count, faulty_memory, integrity, objects, opts};
use vfs_core::codes::SQLITE_BUSY_SNAPSHOT;
use vfs_object::ObjectOptions;
use vfs_object::fault::{FaultStore, RequestKind, Rule};

const HOUR: Duration = Duration::from_secs(3600);

fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

fn keys_under(store: &Arc<dyn ObjectStore>, dir: &str) -> Vec<String> {
    objects(store)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains(dir))
        .collect()
}

fn lsn(c: &Connection) -> u64 {
    let s: String = c.query_row("PRAGMA object_lsn", [], |r| r.get(0)).unwrap();
    s.parse().unwrap()
}

fn sum(c: &Connection) -> i64 {
    count(c, "SELECT coalesce(sum(x), 0) FROM t")
}

/// `n` one-row commits after a table with some bulk (so a snapshot has
/// several pages).
fn fill(c: &Connection, n: i64) {
    c.execute_batch(
        "CREATE TABLE t(x INTEGER, pad BLOB);
         INSERT INTO t SELECT 0, randomblob(2000) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3);",
    )
    .unwrap();
    for i in 1..=n {
        c.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
    }
}

#[test]
fn a_cold_open_starts_from_the_snapshot() {
    // 1,000 commits (plus the table's two): a cold open reads every
    // commit's index before compaction, one snapshot index after it.
    let store = memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("cold.db");
    fill(&c, 1000);
    let before = {
        let r = Node::new(store.clone(), opts(HOUR));
        let c = r.open("cold.db");
        assert_eq!(sum(&c), 500_500);
        r.vfs.request_stats()
    };
    let done = w.vfs.compact("/cold.db").unwrap();
    assert_eq!(done.snapshot_lsn, 1002);
    assert_eq!(done.objects_written, 1);
    assert_eq!(done.pages_fetched, 0, "the writer's cache held every page");
    let after = {
        let r = Node::new(store.clone(), opts(HOUR));
        let c = r.open("cold.db");
        assert_eq!(sum(&c), 500_500);
        integrity(&c);
        let open = r.vfs.request_stats();
        assert_eq!(lsn(&c), 1002);
        open
    };
    println!("RESULT cold open of 1,002 commits: before {before}; after compaction {after}");
    assert_eq!(before.lists, 2, "{before}");
    assert!(before.gets >= 1002, "{before}");
    assert_eq!(after.lists, 2, "log and snapshots: {after}");
    assert!(after.gets < 20, "{after}");
    // The log is still whole (nothing collected yet), and a commit on top
    // of the snapshot's state works from the fresh process.
    let r = Node::new(store.clone(), opts(HOUR));
    let c2 = r.open("cold.db");
    c2.execute("INSERT INTO t(x) VALUES (1)", []).unwrap();
    assert_eq!(sum(&c2), 500_501);
    // Compacting again at the same head writes nothing.
    let again = r.vfs.compact("/cold.db").unwrap();
    assert_eq!((again.snapshot_lsn, again.objects_written), (1003, 1));
    assert_eq!(r.vfs.compact("/cold.db").unwrap().objects_written, 0);
}

#[test]
fn gc_deletes_only_what_no_retained_state_needs() {
    let store = memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("gc.db");
    fill(&c, 20); // LSN 22
    // A reader process that stays at LSN 22 (poll of an hour).
    let old = Node::new(store.clone(), opts(HOUR));
    let oc = old.open("gc.db");
    assert_eq!(sum(&oc), 210);
    // No snapshot: nothing can go, whatever the retention.
    let none = w.vfs.gc_with_retention("/gc.db", Duration::ZERO).unwrap();
    assert_eq!(none.objects_deleted(), 0);
    w.vfs.compact("/gc.db").unwrap(); // snap/22
    for i in 21..=25 {
        c.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
    } // LSN 27
    // Everything is inside the default hour: nothing goes.
    let kept = w.vfs.gc("/gc.db").unwrap();
    assert_eq!(kept.objects_deleted(), 0, "{kept}");
    assert_eq!(keys_under(&store, "/log/").len(), 27);
    // A window of zero: the log below snapshot 22's parent goes (log/1
    // becomes a tombstone); log/21, the parent a writer whose commit became
    // the base checks after its PUT, and the log above it stay.
    let gone = w.vfs.gc_with_retention("/gc.db", Duration::ZERO).unwrap();
    assert_eq!(gone.base_lsn, 22, "{gone}");
    assert_eq!(gone.log_objects_deleted, 20, "{gone}");
    assert_eq!(gone.objects_written, 1, "the tombstone");
    let logs = keys_under(&store, "/log/");
    assert_eq!(logs.len(), 1 + 7, "{logs:?}");
    // Another snapshot, another run: snapshot 22 and the log below 27 go.
    c.execute("INSERT INTO t(x) VALUES (26)", []).unwrap(); // LSN 28
    w.vfs.compact("/gc.db").unwrap();
    let second = w.vfs.gc_with_retention("/gc.db", Duration::ZERO).unwrap();
    assert_eq!(
        (
            second.base_lsn,
            second.snapshots_deleted,
            second.objects_written
        ),
        (28, 1, 0),
        "{second}"
    );
    assert_eq!(
        keys_under(&store, "/snap/"),
        ["t/gc.db/snap/00000000000000000028"]
    );
    assert_eq!(
        keys_under(&store, "/log/").len(),
        3,
        "the tombstone, 27 and 28"
    );
    // Every process still reads the truth: a fresh one, the one that was
    // left at LSN 22 (its log is gone: it starts from the snapshot), and
    // the writer.
    let fresh = Node::new(store.clone(), opts(HOUR));
    let fc = fresh.open("gc.db");
    assert_eq!(sum(&fc), 351);
    integrity(&fc);
    let behind = old.open_with("gc.db", "&poll=0");
    assert_eq!(sum(&behind), 351);
    assert_eq!(lsn(&behind), 28);
    integrity(&behind);
    c.execute("INSERT INTO t(x) VALUES (1)", []).unwrap();
    assert_eq!(sum(&fc), 351, "poll of an hour");
    assert_eq!(sum(&behind), 352);
}

/// The hazard: GC freed `log/<k+1>`; a writer whose snapshot is `k`
/// creates it again. It must not believe it committed.
#[test]
fn a_stale_writer_cannot_commit_into_a_collected_log() {
    let (store, ctl) = faulty_memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("stale.db");
    fill(&c, 3); // LSN 5
    // The stale writer: its own process, reading LSN 5, never polling.
    let stale = Node::new(store.clone(), opts(HOUR));
    let sc = stale.open("stale.db");
    assert_eq!(sum(&sc), 6);
    // Meanwhile: more commits, a compaction and a collection.
    for i in 4..=6 {
        c.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
    } // LSN 8
    w.vfs.compact("/stale.db").unwrap();
    let r = w
        .vfs
        .gc_with_retention("/stale.db", Duration::ZERO)
        .unwrap();
    assert_eq!(r.log_objects_deleted, 6);
    // Its removal of the stray fails: the stray stays, and no reader may
    // apply it either.
    ctl.add(Rule::on(&[RequestKind::Delete]).always());
    let e = sc
        .execute("INSERT INTO t(x) VALUES (1000)", [])
        .unwrap_err();
    assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT, "{e}");
    let msg = vfs_core::last_error()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(msg.contains("garbage-collected"), "{msg}");
    ctl.clear();
    assert!(
        keys_under(&store, "/log/").contains(&"t/stale.db/log/00000000000000000006".to_owned()),
        "the stray is there"
    );
    // Nobody sees it: a fresh process, and the writer.
    let fresh = Node::new(store.clone(), opts(HOUR));
    assert_eq!(sum(&fresh.open("stale.db")), 21);
    assert_eq!(sum(&c), 21);
    // The stale writer's retry reads the truth and commits after it.
    sc.execute("INSERT INTO t(x) VALUES (1000)", []).unwrap();
    assert_eq!(sum(&sc), 1021);
    assert_eq!(lsn(&sc), 9);
    let again = Node::new(store.clone(), opts(HOUR));
    let ac = again.open("stale.db");
    assert_eq!(sum(&ac), 1021);
    integrity(&ac);
    // This time the stray is removed.
    let w2 = Node::new(store.clone(), opts(HOUR));
    let c2 = w2.open("stale.db");
    assert_eq!(sum(&c2), 1021);
    // Three more commits by another process, then compaction (snap/12)
    // and GC free log/10 (the base's parent, log/11, stays), which the
    // writer at LSN 9 goes for.
    for _ in 0..3 {
        ac.execute("INSERT INTO t(x) VALUES (1)", []).unwrap();
    }
    w.vfs.compact("/stale.db").unwrap();
    w.vfs
        .gc_with_retention("/stale.db", Duration::ZERO)
        .unwrap();
    let e = c2.execute("INSERT INTO t(x) VALUES (1)", []).unwrap_err();
    assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT, "{e}");
    let logs = keys_under(&store, "/log/");
    assert!(
        !logs.contains(&"t/stale.db/log/00000000000000000010".to_owned()),
        "{logs:?}"
    );
    assert_eq!(sum(&c2), 1024);
    integrity(&c2);
}

/// A writer that saw the database empty (LSN 0) and wakes after `log/1`
/// was collected: `log/1` is a tombstone, never free again.
#[test]
fn a_writer_that_saw_no_commit_cannot_recreate_log_1() {
    let store = memory();
    let stale = Node::new(store.clone(), opts(HOUR));
    let sc = stale.open("first.db");
    assert_eq!(count(&sc, "SELECT count(*) FROM sqlite_master"), 0);
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("first.db");
    fill(&c, 2);
    w.vfs.compact("/first.db").unwrap();
    w.vfs
        .gc_with_retention("/first.db", Duration::ZERO)
        .unwrap();
    let e = sc.execute_batch("CREATE TABLE t(x, pad)").unwrap_err();
    assert_eq!(code(&e), SQLITE_BUSY_SNAPSHOT, "{e}");
    assert_eq!(sum(&sc), 3);
    let fresh = Node::new(store.clone(), opts(HOUR));
    assert_eq!(sum(&fresh.open("first.db")), 3);
}

/// The rows the sweep database holds.
fn sweep_db(store: &Arc<dyn ObjectStore>) {
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("sweep.db");
    fill(&c, 6); // LSN 8
    w.vfs.compact("/sweep.db").unwrap();
    for i in 7..=9 {
        c.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
    } // LSN 11
}

fn check(store: &Arc<dyn ObjectStore>, want: i64) {
    let n = Node::new(store.clone(), opts(HOUR));
    let c = n.open("sweep.db");
    assert_eq!(sum(&c), want);
    integrity(&c);
}

/// Stop compaction + GC at request `k` (every request from then on fails,
/// or is applied and its answer lost), reopen with a fresh process, check;
/// finish both, check again.
#[test]
fn a_crash_at_any_request_of_compaction_or_gc_loses_nothing() {
    let mut cases = 0;
    for lose in [false, true] {
        for k in 0.. {
            let inner = memory();
            sweep_db(&inner);
            let faulty = FaultStore::new(inner.clone());
            let ctl = faulty.controller();
            let node = Node::new(Arc::new(faulty), opts(HOUR));
            let rule = Rule::any().after(k).always();
            ctl.add(if lose { rule.lose_response() } else { rule });
            let compacted = node.vfs.compact("/sweep.db");
            let collected = compacted
                .is_ok()
                .then(|| node.vfs.gc_with_retention("/sweep.db", Duration::ZERO));
            let finished = matches!(collected, Some(Ok(_)));
            drop(node);
            check(&inner, 45);
            // Finish with another process.
            let n = Node::new(inner.clone(), opts(HOUR));
            n.vfs.compact("/sweep.db").unwrap();
            let r = n
                .vfs
                .gc_with_retention("/sweep.db", Duration::ZERO)
                .unwrap();
            assert!(finished || r.base_lsn == 11, "k={k}: {r}");
            check(&inner, 45);
            assert_eq!(keys_under(&inner, "/log/").len(), 3, "k={k}");
            cases += 1;
            if finished && ctl.counts().total() <= k {
                break;
            }
        }
    }
    println!("RESULT crash sweep: {cases} cases");
    assert!(cases > 10, "{cases}");
}

#[test]
fn writers_keep_committing_while_compaction_and_gc_run() {
    let store = memory();
    let w = Node::new(store.clone(), opts(HOUR));
    fill(&w.open("busy.db"), 1);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = store.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            // Another process: its commits race the compactor's.
            let n = Node::new(store, opts(HOUR));
            let c = n.open_with("busy.db", "&poll=0");
            for i in 2..=150 {
                c.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let reader = Node::new(store.clone(), opts(HOUR));
    let rc = reader.open_with("busy.db", "&poll=0");
    let mut last = 0;
    let mut rounds = 0;
    // Until the writer is done, or has failed (its panic is re-raised by
    // the join below instead of leaving this loop running forever).
    while !done.load(Ordering::Relaxed) && !writer.is_finished() {
        w.vfs.compact("/busy.db").unwrap();
        w.vfs.gc_with_retention("/busy.db", Duration::ZERO).unwrap();
        let s = sum(&rc);
        assert!(s >= last, "a reader went back in time: {s} < {last}");
        last = s;
        rounds += 1;
    }
    writer.join().unwrap();
    println!("RESULT {rounds} compaction+GC rounds during 149 commits");
    let fresh = Node::new(store.clone(), opts(HOUR));
    let c = fresh.open("busy.db");
    assert_eq!(sum(&c), 150 * 151 / 2);
    integrity(&c);
    assert_eq!(sum(&rc), 150 * 151 / 2);
}

#[test]
fn pragmas_and_the_policy() {
    let store = memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("p.db");
    fill(&c, 3);
    let r: String = c
        .query_row("PRAGMA object_compact", [], |r| r.get(0))
        .unwrap();
    assert!(r.starts_with("snapshot at LSN 5: 1 object"), "{r}");
    let r: String = c.query_row("PRAGMA object_gc", [], |r| r.get(0)).unwrap();
    assert!(r.contains("nothing deleted"), "{r}");
    // The policy: every 10 commits, compact then collect (no retention).
    let auto = Node::new(
        store.clone(),
        ObjectOptions {
            compact_every: Some(10),
            retention: Duration::ZERO,
            ..opts(HOUR)
        },
    );
    let ac = auto.open("p.db");
    for i in 0..12 {
        ac.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
    }
    auto.vfs.wait_for_compaction("/p.db").unwrap();
    // Triggered by commit 15; it snapshots the head it finds (15 to 17).
    let snaps = keys_under(&store, "/snap/");
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert!(
        snaps[0].as_str() >= "t/p.db/snap/00000000000000000015",
        "{snaps:?}"
    );
    // The tombstone at log/1, the snapshot's parent (GC keeps it) and the
    // log from the snapshot on (15..=17): at most 1 + 1 + 3.
    let logs = keys_under(&store, "/log/");
    assert!(logs.len() <= 5, "{logs:?}");
    let fresh = Node::new(store.clone(), opts(HOUR));
    let fc = fresh.open("p.db");
    assert_eq!(sum(&fc), 6 + 66);
    integrity(&fc);
}
