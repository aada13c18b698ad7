//! Page-group snapshots: a database larger than one group is compacted as
//! group objects (`group/<LSN>/<g>`, one at a time) and a manifest
//! (`snap/<LSN>`); cold readers, time travel, restore and usage read
//! through the manifest; a damaged or missing group is an error naming it;
//! a crash at any request of compaction + GC loses nothing and leaves no
//! orphan once collected; snapshots in the one-object layout stay readable.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use rusqlite::Connection;
use support::{Node, code, count, integrity, objects, opts};
use vfs_core::codes::{SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_IOERR_DATA};
use vfs_object::fault::{FaultStore, RequestKind, Rule};
use vfs_object::{At, ObjectOptions, RestoreTarget};

const HOUR: Duration = Duration::from_secs(3600);
/// Pages per group in these tests.
const GROUP: u32 = 8;
const PAGE: usize = 4096;
/// The largest object a compaction with groups of [`GROUP`] pages may
/// write: header, index and pages of one group.
const GROUP_OBJECT_MAX: usize = 96 + GROUP as usize * (16 + PAGE);

fn grouped(poll: Duration) -> ObjectOptions {
    ObjectOptions {
        snapshot_group_pages: GROUP,
        ..opts(poll)
    }
}

fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

fn lsn(c: &Connection) -> u64 {
    let s: String = c.query_row("PRAGMA object_lsn", [], |r| r.get(0)).unwrap();
    s.parse().unwrap()
}

fn sum(c: &Connection) -> i64 {
    count(c, "SELECT coalesce(sum(x), 0) FROM t")
}

fn keys_under(store: &Arc<dyn ObjectStore>, dir: &str) -> Vec<(String, usize)> {
    objects(store)
        .into_iter()
        .filter(|(k, _)| k.contains(dir))
        .map(|(k, b)| (k, b.len()))
        .collect()
}

fn last_message() -> String {
    vfs_core::last_error()
        .map(|e| e.message)
        .unwrap_or_default()
}

/// A table of about 40 pages (5+ groups of 8) in two commits, then `n`
/// one-row commits: LSN 2 + n.
fn fill(c: &Connection, n: i64) {
    c.execute_batch(
        "CREATE TABLE t(x INTEGER, pad BLOB);
         INSERT INTO t SELECT 0, randomblob(3000) FROM
           (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 40)
            SELECT i FROM s);",
    )
    .unwrap();
    for i in 1..=n {
        c.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
    }
}

fn page_count(c: &Connection) -> i64 {
    count(c, "PRAGMA page_count")
}

/// Group keys by snapshot LSN.
fn group_lsns(store: &Arc<dyn ObjectStore>) -> BTreeSet<u64> {
    keys_under(store, "/group/")
        .iter()
        .map(|(k, _)| {
            let parts: Vec<&str> = k.rsplit('/').collect();
            parts[1].parse().unwrap()
        })
        .collect()
}

fn snap_lsns(store: &Arc<dyn ObjectStore>) -> BTreeSet<u64> {
    keys_under(store, "/snap/")
        .iter()
        .map(|(k, _)| k.rsplit('/').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_large_database_compacts_as_groups_and_reads_cold_through_the_manifest() {
    let store = memory();
    let w = Node::new(store.clone(), grouped(HOUR));
    let c = w.open("big.db");
    fill(&c, 10); // LSN 12
    let pages = page_count(&c);
    assert!(pages > 4 * i64::from(GROUP), "{pages} pages");
    let groups = (pages as u64).div_ceil(u64::from(GROUP));
    let done = w.vfs.compact("/big.db").unwrap();
    assert_eq!(done.snapshot_lsn, 12);
    assert_eq!(done.objects_written, groups + 1, "{done}");
    let written = keys_under(&store, "/group/");
    assert_eq!(written.len() as u64, groups);
    // No object of the snapshot is larger than one group: the largest PUT
    // of the compaction is bounded by the group size, not the database.
    let snap = keys_under(&store, "/snap/");
    assert_eq!(snap.len(), 1);
    assert!(snap[0].1 < 200, "a manifest: {} bytes", snap[0].1);
    let largest = written.iter().map(|(_, n)| *n).max().unwrap();
    assert!(largest <= GROUP_OBJECT_MAX, "{largest}");
    assert!(pages as usize * PAGE > 4 * GROUP_OBJECT_MAX);
    let usage = w.vfs.storage_usage("big.db").unwrap();
    assert_eq!(usage.snapshots.objects, groups + 1);

    // Collect the log below the snapshot: a cold reader must read every
    // page from the groups.
    c.execute("INSERT INTO t(x) VALUES (11)", []).unwrap(); // LSN 13
    let r = w.vfs.gc_with_retention("/big.db", Duration::ZERO).unwrap();
    assert_eq!((r.base_lsn, r.groups_deleted), (12, 0), "{r}");
    let reader = Node::new(store.clone(), opts(HOUR));
    let rc = reader.open("big.db");
    assert_eq!(sum(&rc), 66);
    assert_eq!(lsn(&rc), 13);
    integrity(&rc);
    let stats = reader.vfs.request_stats();
    assert!(stats.gets >= groups, "{stats:?}");

    // Time travel to the snapshot's LSN, versions, restore.
    let at = reader.open_with("big.db", "&lsn=12");
    assert_eq!((lsn(&at), sum(&at)), (12, 55));
    integrity(&at);
    let versions = reader.vfs.versions("big.db").unwrap();
    let lsns: Vec<u64> = versions.iter().map(|v| v.lsn).collect();
    assert_eq!(lsns, [12, 13]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("restored.db");
    let other = Node::new(store.clone(), opts(HOUR));
    let restored = other
        .vfs
        .restore("big.db", At::Lsn(12), &RestoreTarget::File(file.clone()))
        .unwrap();
    assert_eq!(restored.lsn, 12);
    let plain = Connection::open(&file).unwrap();
    integrity(&plain);
    assert_eq!(sum(&plain), 55);

    // A second compaction after one commit: only the groups holding a
    // changed page (page 1, the row's leaf) are written again; the others
    // are the first snapshot's, named by the new manifest, and GC keeps
    // them when it deletes that snapshot.
    c.execute("INSERT INTO t(x) VALUES (12)", []).unwrap(); // LSN 14
    let again = w.vfs.compact("/big.db").unwrap();
    assert!(again.groups_reused >= groups - 2, "{again}");
    println!(
        "RESULT {pages} pages, {groups} groups, {} reused after one commit",
        again.groups_reused
    );
    assert_eq!(again.objects_written, groups - again.groups_reused + 1);
    c.execute("INSERT INTO t(x) VALUES (13)", []).unwrap(); // LSN 15
    let r = w.vfs.gc_with_retention("/big.db", Duration::ZERO).unwrap();
    assert_eq!((r.base_lsn, r.snapshots_deleted), (14, 1), "{r}");
    assert_eq!(r.groups_deleted, groups - again.groups_reused, "{r}");
    assert_eq!(group_lsns(&store), BTreeSet::from([12, 14]));
    assert_eq!(keys_under(&store, "/group/").len() as u64, groups);
    let cold = Node::new(store.clone(), opts(HOUR));
    let cc = cold.open("big.db");
    assert_eq!((lsn(&cc), sum(&cc)), (15, 66 + 12 + 13));
    integrity(&cc);
}

#[test]
fn a_database_of_one_group_keeps_the_one_object_layout_and_old_snapshots_stay_readable() {
    let store = memory();
    // Default options: 4,096 pages per group, so this database is one
    // object (the layout written before groups existed).
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("old.db");
    fill(&c, 3); // LSN 5
    let done = w.vfs.compact("/old.db").unwrap();
    assert_eq!(done.objects_written, 1);
    assert!(keys_under(&store, "/group/").is_empty());
    let snap = keys_under(&store, "/snap/");
    assert!(snap[0].1 > 40 * 3000, "the whole image: {}", snap[0].1);
    c.execute("INSERT INTO t(x) VALUES (4)", []).unwrap();
    w.vfs.gc_with_retention("/old.db", Duration::ZERO).unwrap();
    // A process configured for small groups reads it, and its own next
    // compaction writes groups over it.
    let g = Node::new(store.clone(), grouped(HOUR));
    let gc = g.open("old.db");
    assert_eq!((lsn(&gc), sum(&gc)), (6, 10));
    integrity(&gc);
    gc.execute("INSERT INTO t(x) VALUES (5)", []).unwrap(); // LSN 7
    assert!(g.vfs.compact("/old.db").unwrap().objects_written > 2);
    gc.execute("INSERT INTO t(x) VALUES (6)", []).unwrap(); // LSN 8
    let r = g.vfs.gc_with_retention("/old.db", Duration::ZERO).unwrap();
    assert_eq!((r.base_lsn, r.snapshots_deleted), (7, 1), "{r}");
    let cold = Node::new(store.clone(), opts(HOUR));
    let cc = cold.open("old.db");
    assert_eq!((lsn(&cc), sum(&cc)), (8, 21));
    integrity(&cc);
}

/// Overwrites `key` with `f` applied to its bytes.
fn tamper(store: &Arc<dyn ObjectStore>, key: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let path = Path::from(key);
        let mut b = store
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        f(&mut b);
        if b.is_empty() {
            store.delete(&path).await.unwrap();
        } else {
            store.put(&path, PutPayload::from(b)).await.unwrap();
        }
    });
}

/// A database whose only full state is a grouped snapshot at LSN 12 (the
/// log below it collected); the key of its group 1.
fn collected_db(store: &Arc<dyn ObjectStore>) -> String {
    let w = Node::new(store.clone(), grouped(HOUR));
    let c = w.open("d.db");
    fill(&c, 10);
    w.vfs.compact("/d.db").unwrap();
    c.execute("INSERT INTO t(x) VALUES (11)", []).unwrap();
    w.vfs.gc_with_retention("/d.db", Duration::ZERO).unwrap();
    keys_under(store, "/group/")
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.ends_with("/0000000001"))
        .unwrap()
}

/// The error of a cold open of `d.db` and a count of its rows (the open
/// itself reads the database, so either may fail).
fn open_and_count(store: &Arc<dyn ObjectStore>) -> rusqlite::Error {
    let r = Node::new(store.clone(), opts(HOUR));
    match Connection::open(r.uri("d.db", "")) {
        Err(e) => e,
        Ok(c) => c
            .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap_err(),
    }
}

#[test]
fn a_damaged_or_missing_group_is_an_error_naming_it() {
    // A page of group 1 flipped: its reads fail SQLITE_IOERR_DATA naming
    // the group object.
    let store = memory();
    let key = collected_db(&store);
    tamper(&store, &key, |b| {
        let last = b.len() - 100;
        b[last] ^= 0xff;
    });
    let r = Node::new(store.clone(), opts(HOUR));
    let c = r.open("d.db");
    let e = c
        .query_row("SELECT sum(length(pad)) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_DATA, "{e}");
    assert!(last_message().contains(&key), "{}", last_message());

    // Its index damaged: the open fails closed, naming it.
    let store = memory();
    let key = collected_db(&store);
    tamper(&store, &key, |b| b[100] ^= 1);
    let e = open_and_count(&store);
    assert_eq!(code(&e), SQLITE_CORRUPT, "{e}");
    assert!(last_message().contains(&key), "{}", last_message());

    // Gone: a read error naming it.
    let store = memory();
    let key = collected_db(&store);
    tamper(&store, &key, Vec::clear);
    // (The cold open reads the snapshot, so the open fails.)
    let e = open_and_count(&store);
    assert_eq!(code(&e), SQLITE_CANTOPEN, "{e}");
    let msg = last_message();
    assert!(msg.contains(&key) && msg.contains("GET"), "{msg}");
}

#[test]
fn groups_of_a_compaction_that_never_published_are_never_read_and_collected_later() {
    let store = memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("o.db");
    fill(&c, 5); // LSN 7
    drop(c);
    drop(w);
    // The manifest PUT fails: the groups are orphans.
    let faulty = FaultStore::new(store.clone());
    let ctl = faulty.controller();
    let n = Node::new(Arc::new(faulty), grouped(HOUR));
    let groups = {
        let probe = n.open("o.db");
        (page_count(&probe) as u64).div_ceil(u64::from(GROUP))
    };
    // Every group PUT goes through, the manifest's fails.
    ctl.add(Rule::on(&[RequestKind::Put]).after(groups).always().fail());
    assert!(n.vfs.compact("/o.db").is_err());
    assert_eq!(keys_under(&store, "/group/").len() as u64, groups);
    assert!(snap_lsns(&store).is_empty());
    ctl.clear();
    // A cold reader never looks at them.
    let r = Node::new(store.clone(), opts(HOUR));
    let rc = r.open("o.db");
    assert_eq!(sum(&rc), 15);
    integrity(&rc);
    // Inside the retention window they stay; after it they go.
    let kept = n.vfs.gc_with_retention("/o.db", HOUR).unwrap();
    assert_eq!(kept.groups_deleted, 0, "{kept}");
    let gone = n.vfs.gc_with_retention("/o.db", Duration::ZERO).unwrap();
    assert_eq!(gone.groups_deleted, groups, "{gone}");
    assert!(keys_under(&store, "/group/").is_empty());
    let rc = Node::new(store.clone(), opts(HOUR));
    assert_eq!(sum(&rc.open("o.db")), 15);
}

fn sweep_db(store: &Arc<dyn ObjectStore>) {
    let w = Node::new(store.clone(), grouped(HOUR));
    let c = w.open("sweep.db");
    fill(&c, 4); // LSN 6
    w.vfs.compact("/sweep.db").unwrap();
    for i in 5..=7 {
        c.execute("INSERT INTO t(x) VALUES (?1)", [i]).unwrap();
    } // LSN 9
}

/// Checks the rows from a cold process; returns the page count.
fn check(store: &Arc<dyn ObjectStore>, k: u64) -> u64 {
    let n = Node::new(store.clone(), opts(HOUR));
    let c = n.open("sweep.db");
    assert_eq!(sum(&c), 28, "k={k}");
    integrity(&c);
    page_count(&c) as u64
}

/// Stop a multi-group compaction + GC at request `k` (every request from
/// then on fails, or is applied and its answer lost), reopen with a fresh
/// process, check; finish both, check again: nothing lost, and no group
/// object left that no snapshot names.
#[test]
fn a_crash_at_any_request_of_a_grouped_compaction_or_gc_loses_nothing() {
    let mut cases = 0;
    for lose in [false, true] {
        for k in 0.. {
            let inner = memory();
            sweep_db(&inner);
            let faulty = FaultStore::new(inner.clone());
            let ctl = faulty.controller();
            let node = Node::new(Arc::new(faulty), grouped(HOUR));
            let rule = Rule::any().after(k).always();
            ctl.add(if lose { rule.lose_response() } else { rule });
            let compacted = node.vfs.compact("/sweep.db");
            let collected = compacted
                .is_ok()
                .then(|| node.vfs.gc_with_retention("/sweep.db", Duration::ZERO));
            let finished = matches!(collected, Some(Ok(_)));
            drop(node);
            check(&inner, k);
            let n = Node::new(inner.clone(), grouped(HOUR));
            n.vfs.compact("/sweep.db").unwrap();
            let r = n
                .vfs
                .gc_with_retention("/sweep.db", Duration::ZERO)
                .unwrap();
            assert!(finished || r.base_lsn == 9, "k={k}: {r}");
            let pages = check(&inner, k);
            // One snapshot left, and exactly its groups (some reused from
            // the snapshot at LSN 6): no orphan.
            assert_eq!(snap_lsns(&inner), BTreeSet::from([9]), "k={k}");
            let groups = keys_under(&inner, "/group/").len() as u64;
            assert_eq!(groups, pages.div_ceil(u64::from(GROUP)), "k={k}");
            cases += 1;
            if finished && ctl.counts().total() <= k {
                break;
            }
        }
    }
    println!("RESULT grouped crash sweep: {cases} cases");
    assert!(cases > 20, "{cases}");
}

/// The first bytes of every row's blob, in row order.
fn heads(c: &Connection) -> String {
    c.query_row(
        "SELECT coalesce(group_concat(hex(substr(pad, 1, 8)), ','), '') FROM t ORDER BY rowid",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Seeded random commits (growth, deletes with VACUUM shrinking the file,
/// rewrites of a few rows) with a compaction and GC after each: a cold
/// reader sees exactly the writer's rows every time, whichever groups
/// were reused.
#[test]
fn reused_groups_follow_growth_shrinking_and_rewrites() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(24);
    let store = memory();
    let w = Node::new(store.clone(), grouped(HOUR));
    let c = w.open("r.db");
    fill(&c, 0);
    let mut reused = 0;
    for round in 0..12 {
        match rng.gen_range(0..4) {
            0 => c
                .execute_batch(&format!(
                    "INSERT INTO t SELECT {round}, randomblob(3000) FROM
                       (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {})
                        SELECT i FROM s);",
                    rng.gen_range(1..20)
                ))
                .unwrap(),
            1 => c
                .execute_batch(&format!(
                    "DELETE FROM t WHERE rowid % {} = 0; VACUUM;",
                    rng.gen_range(2..5)
                ))
                .unwrap(),
            2 => c
                .execute(
                    "UPDATE t SET x = x + 1 WHERE rowid = (SELECT max(rowid) FROM t)",
                    [],
                )
                .map(|_| ())
                .unwrap(),
            _ => c
                .execute("INSERT INTO t(x) VALUES (?1)", [round])
                .map(|_| ())
                .unwrap(),
        }
        let done = w.vfs.compact("/r.db").unwrap();
        reused += done.groups_reused;
        w.vfs.gc_with_retention("/r.db", Duration::ZERO).unwrap();
        let want = (
            sum(&c),
            count(&c, "SELECT count(*) FROM t"),
            count(&c, "SELECT coalesce(sum(length(pad)), 0) FROM t"),
            heads(&c),
        );
        let r = Node::new(store.clone(), opts(HOUR));
        let rc = r.open("r.db");
        let got = (
            sum(&rc),
            count(&rc, "SELECT count(*) FROM t"),
            count(&rc, "SELECT coalesce(sum(length(pad)), 0) FROM t"),
            heads(&rc),
        );
        assert_eq!(got, want, "round {round}");
        integrity(&rc);
        assert_eq!(
            count(&rc, "PRAGMA page_count"),
            page_count(&c),
            "round {round}"
        );
    }
    assert!(reused > 0, "no group was ever reused");
}

/// `snapshot_group=<pages>` sets the group size of a connection's
/// `PRAGMA object_compact`; a bad value is refused naming it.
#[test]
fn the_uri_sets_the_group_size_of_a_connections_compactions() {
    let store = memory();
    let n = Node::new(store.clone(), opts(HOUR));
    let c = n.open_with("u.db", "&snapshot_group=16");
    fill(&c, 1);
    let pages = page_count(&c) as u64;
    let said: String = c
        .query_row("PRAGMA object_compact", [], |r| r.get(0))
        .unwrap();
    assert!(said.contains("snapshot at LSN 3"), "{said}");
    assert_eq!(
        keys_under(&store, "/group/").len() as u64,
        pages.div_ceil(16)
    );
    let e = Connection::open(n.uri("u.db", "&snapshot_group=0")).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN);
    assert!(
        last_message().contains("snapshot_group="),
        "{}",
        last_message()
    );
}

/// Garbage collection never takes as its base a snapshot whose manifest
/// names a group that is not stored: deleting the log below it would lose
/// the only copy of that state.
#[test]
fn gc_refuses_a_base_snapshot_with_a_missing_group() {
    let store = memory();
    let w = Node::new(store.clone(), grouped(HOUR));
    let c = w.open("m.db");
    fill(&c, 10); // LSN 12
    w.vfs.compact("/m.db").unwrap();
    c.execute("INSERT INTO t(x) VALUES (11)", []).unwrap();
    let group = keys_under(&store, "/group/")
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.ends_with("/0000000002"))
        .unwrap();
    tamper(&store, &group, Vec::clear);
    let logs = keys_under(&store, "/log/").len();
    let e = w
        .vfs
        .gc_with_retention("/m.db", Duration::ZERO)
        .unwrap_err();
    assert!(e.message().contains(&group), "{e}");
    assert_eq!(keys_under(&store, "/log/").len(), logs, "nothing deleted");
    // The log still rebuilds every state.
    let r = Node::new(store.clone(), opts(HOUR));
    let rc = r.open_with("m.db", "&lsn=11");
    assert_eq!(sum(&rc), 55 - 10);
    integrity(&rc);
}
