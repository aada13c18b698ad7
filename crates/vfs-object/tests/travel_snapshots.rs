//! Time travel after compaction and garbage collection: versions whose
//! log prefix GC deleted open, list and restore from the newest snapshot
//! at or below them; the versions listed are exactly the ones that open;
//! `asof=` finds its version by binary search over commit times.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use rusqlite::Connection;
use support::{Node, code, count, faulty_memory, integrity, objects, opts};
use vfs_core::codes::{SQLITE_CANTOPEN, SQLITE_ERROR};
use vfs_object::{At, RestoreTarget};

const HOUR: Duration = Duration::from_secs(3600);

fn last_message() -> String {
    vfs_core::last_error()
        .map(|e| e.message)
        .unwrap_or_default()
}

fn lsn(c: &Connection) -> u64 {
    let s: String = c.query_row("PRAGMA object_lsn", [], |r| r.get(0)).unwrap();
    s.parse().unwrap()
}

fn sum(c: &Connection) -> i64 {
    count(c, "SELECT coalesce(sum(x), 0) FROM t")
}

fn keys_under(store: &Arc<dyn ObjectStore>, dir: &str) -> Vec<String> {
    objects(store)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains(dir))
        .collect()
}

fn rfc(t: std::time::SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs `sql` (one commit) and records the sum of `t` at the new LSN.
fn commit(c: &Connection, sql: &str, sums: &mut BTreeMap<u64, i64>) {
    c.execute_batch(sql).unwrap();
    sums.insert(lsn(c), sum(c));
}

/// A table with some bulk, then `from..=to` one-row commits.
fn inserts(c: &Connection, from: i64, to: i64, sums: &mut BTreeMap<u64, i64>) {
    for i in from..=to {
        commit(c, &format!("INSERT INTO t(x) VALUES ({i})"), sums);
    }
}

fn cant_open(node: &Node, db: &str, params: &str) -> String {
    let e = Connection::open(node.uri(db, params)).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN, "{params}: {e}");
    last_message()
}

#[test]
fn versions_kept_by_a_snapshot_open_list_and_restore_after_gc() {
    let (store, _ctl) = faulty_memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("g.db");
    let mut sums = BTreeMap::new();
    commit(&c, "CREATE TABLE t(x INTEGER, pad BLOB)", &mut sums);
    commit(
        &c,
        "INSERT INTO t SELECT 0, randomblob(3000) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3)",
        &mut sums,
    );
    inserts(&c, 1, 20, &mut sums); // LSN 22
    assert_eq!(w.vfs.compact("/g.db").unwrap().snapshot_lsn, 22);
    inserts(&c, 21, 25, &mut sums); // LSN 27
    let r = w.vfs.gc_with_retention("/g.db", Duration::ZERO).unwrap();
    assert_eq!((r.base_lsn, r.log_objects_deleted), (22, 20), "{r}");
    // log/1 is a tombstone, 2..20 are gone, 21 (the base's parent) stays.
    assert_eq!(keys_under(&store, "/log/").len(), 1 + 7);

    // A fresh process lists exactly the versions it can open: 22..=27.
    let reader = Node::new(store.clone(), opts(HOUR));
    let versions = reader.vfs.versions("g.db").unwrap();
    let lsns: Vec<u64> = versions.iter().map(|v| v.lsn).collect();
    assert_eq!(lsns, (22..=27).collect::<Vec<_>>());
    assert!(
        versions
            .windows(2)
            .all(|w| w[0].commit_time <= w[1].commit_time)
    );
    for v in &versions {
        let c = reader.open_with("g.db", &format!("&lsn={}", v.lsn));
        assert_eq!(lsn(&c), v.lsn);
        assert_eq!(sum(&c), sums[&v.lsn], "LSN {}", v.lsn);
        integrity(&c);
        // asof= at its commit time: the newest version at or before it.
        let want = versions
            .iter()
            .filter(|w| w.commit_time <= v.commit_time)
            .map(|w| w.lsn)
            .max()
            .unwrap();
        let a = reader.open_with("g.db", &format!("&asof={}", rfc(v.commit_time)));
        assert_eq!(lsn(&a), want);
        assert_eq!(sum(&a), sums[&want]);
    }
    // Below every retained state: refused, naming the version.
    let msg = cant_open(&reader, "g.db", "&lsn=21");
    assert!(
        msg.contains("LSN 21") && msg.contains("commits 1 to 20 were deleted"),
        "{msg}"
    );
    let msg = cant_open(&reader, "g.db", "&lsn=5");
    assert!(
        msg.contains("LSN 5 is no longer retained") && msg.contains("LSN 22"),
        "{msg}"
    );
    let before = versions[0].commit_time - Duration::from_millis(1);
    let msg = cant_open(&reader, "g.db", &format!("&asof={}", rfc(before)));
    assert!(msg.contains("no retained commit is that old"), "{msg}");

    // Restores of the snapshot's LSN and a later one, both ways, from
    // another cold process.
    let dir = tempfile::tempdir().unwrap();
    let other = Node::new(store.clone(), opts(HOUR));
    for at in [22u64, 25] {
        let file = dir.path().join(format!("at-{at}.db"));
        let r = other
            .vfs
            .restore("g.db", At::Lsn(at), &RestoreTarget::File(file.clone()))
            .unwrap();
        assert_eq!(r.lsn, at);
        let plain = Connection::open(&file).unwrap();
        integrity(&plain);
        assert_eq!(sum(&plain), sums[&at]);
        let target = format!("copy-{at}.db");
        other
            .vfs
            .restore(
                "g.db",
                At::Lsn(at),
                &RestoreTarget::Database(target.clone()),
            )
            .unwrap();
        let copy = w.open(&target);
        integrity(&copy);
        assert_eq!(sum(&copy), sums[&at]);
    }
    let e = other
        .vfs
        .restore("g.db", At::Lsn(10), &RestoreTarget::Database("x.db".into()))
        .unwrap_err();
    assert_eq!(e.code(), Some(SQLITE_ERROR));
    assert!(e.message().contains("LSN 10 is no longer retained"), "{e}");
}

/// A version only an older snapshot holds (its log object deleted) opens
/// from that snapshot alone and is listed as such; the log after a
/// snapshot whose own commit is gone from the log is not trusted (it could
/// hold strays), so the versions needing it are refused.
#[test]
fn an_older_snapshot_alone_and_the_log_after_it() {
    let (store, _ctl) = faulty_memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("o.db");
    let mut sums = BTreeMap::new();
    commit(&c, "CREATE TABLE t(x INTEGER, pad BLOB)", &mut sums);
    inserts(&c, 1, 7, &mut sums); // LSN 8
    w.vfs.compact("/o.db").unwrap(); // snap/8
    inserts(&c, 8, 12, &mut sums); // LSN 13
    w.vfs.compact("/o.db").unwrap(); // snap/13
    inserts(&c, 13, 14, &mut sums); // LSN 15
    // Before any deletion every version opens, from the newest snapshot
    // at or below it (LSN 10 from snap/8, whose log/8 still holds it).
    let reader = Node::new(store.clone(), opts(HOUR));
    assert_eq!(
        reader
            .vfs
            .versions("o.db")
            .unwrap()
            .iter()
            .map(|v| (v.lsn, v.snapshot))
            .collect::<Vec<_>>(),
        (1..=15).map(|l| (l, false)).collect::<Vec<_>>()
    );
    assert_eq!(sum(&reader.open_with("o.db", "&lsn=10")), sums[&10]);
    // log/1..=8 deleted (as GC with base 13 would, but snap/8 kept): 8
    // opens from its snapshot alone; 9..=12 would apply log objects after
    // a snapshot whose commit the log no longer holds: refused.
    let rt = tokio::runtime::Runtime::new().unwrap();
    for l in 1..=8u64 {
        rt.block_on(store.delete(&Path::from(format!("t/o.db/log/{l:020}"))))
            .unwrap();
    }
    let reader = Node::new(store.clone(), opts(HOUR));
    let versions = reader.vfs.versions("o.db").unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.lsn, v.snapshot))
            .collect::<Vec<_>>(),
        [(8, true), (13, false), (14, false), (15, false)]
    );
    assert!(versions[0].full_image && versions[0].pages_changed > 0);
    assert!(versions[0].commit_time <= versions[1].commit_time);
    let at8 = reader.open_with("o.db", "&lsn=8");
    assert_eq!(sum(&at8), sums[&8]);
    integrity(&at8);
    let msg = cant_open(&reader, "o.db", "&lsn=10");
    assert!(
        msg.contains("LSN 10") && msg.contains("after snapshot 8 cannot be trusted"),
        "{msg}"
    );
    for l in 13..=15 {
        assert_eq!(
            sum(&reader.open_with("o.db", &format!("&lsn={l}"))),
            sums[&l]
        );
    }
    // asof= between commit 8 and commit 13 finds 8, from its snapshot.
    let a = reader.open_with("o.db", &format!("&asof={}", rfc(versions[0].commit_time)));
    assert_eq!(lsn(&a), 8);
    assert_eq!(sum(&a), sums[&8]);
}

/// `asof=` reads O(log n) commit headers to find its version, not every
/// retained one.
#[test]
fn asof_finds_its_version_by_binary_search() {
    let (store, ctl) = faulty_memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("a.db");
    let mut sums = BTreeMap::new();
    commit(&c, "CREATE TABLE t(x INTEGER, pad BLOB)", &mut sums);
    inserts(&c, 1, 289, &mut sums); // LSN 290
    w.vfs.compact("/a.db").unwrap();
    inserts(&c, 290, 299, &mut sums); // LSN 300
    let versions = w.vfs.versions("a.db").unwrap();
    assert_eq!(versions.len(), 300);
    let t = versions[294].commit_time; // LSN 295
    let want = versions
        .iter()
        .filter(|v| v.commit_time <= t)
        .map(|v| v.lsn)
        .max()
        .unwrap();
    let reader = Node::new(store.clone(), opts(HOUR));
    let before = ctl.counts();
    let a = reader.open_with("a.db", &format!("&asof={}", rfc(t)));
    let cost = ctl.counts().since(&before);
    assert_eq!(lsn(&a), want);
    assert_eq!(sum(&a), sums[&want]);
    integrity(&a);
    eprintln!(
        "RESULT asof= over 300 versions (snapshot at 290): {} LIST + {} GET",
        cost.lists, cost.gets
    );
    // 2 LIST (log, snapshots); ⌈log₂ 300⌉ + 1 = 10 headers for the search,
    // the snapshot's index and the few log objects after it (page 1 too).
    assert_eq!(cost.lists, 2, "{cost:?}");
    assert!(cost.gets <= 25, "{cost:?}");
    // The same question without a snapshot near it still searches in
    // O(log n) headers (the state then needs the log up to it).
    let t = versions[9].commit_time; // LSN 10
    let before = ctl.counts();
    let a = reader.open_with("a.db", &format!("&asof={}", rfc(t)));
    let cost = ctl.counts().since(&before);
    let want = versions
        .iter()
        .filter(|v| v.commit_time <= t)
        .map(|v| v.lsn)
        .max()
        .unwrap();
    assert_eq!(lsn(&a), want);
    assert!(cost.gets <= want + 12, "{cost:?}");
}

/// A failed request or a damaged snapshot while opening, listing or
/// restoring a version kept by a snapshot is an error naming it.
#[test]
fn failed_requests_and_a_damaged_snapshot_are_errors() {
    let (store, ctl) = faulty_memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("f.db");
    let mut sums = BTreeMap::new();
    commit(&c, "CREATE TABLE t(x INTEGER, pad BLOB)", &mut sums);
    inserts(&c, 1, 5, &mut sums); // LSN 6
    w.vfs.compact("/f.db").unwrap();
    inserts(&c, 6, 7, &mut sums); // LSN 8
    w.vfs.gc_with_retention("/f.db", Duration::ZERO).unwrap();
    let reader = Node::new(
        store.clone(),
        vfs_object::ObjectOptions {
            retries: 0,
            ..opts(HOUR)
        },
    );
    // Every GET fails after the listings: the snapshot's index cannot be
    // read.
    ctl.add(vfs_object::fault::Rule::on(&[vfs_object::fault::RequestKind::Get]).always());
    let msg = cant_open(&reader, "f.db", "&lsn=6");
    assert!(
        msg.contains("GET") && msg.contains("opening lsn=6"),
        "{msg}"
    );
    let e = reader.vfs.versions("f.db").unwrap_err();
    assert_eq!(e.code(), Some(vfs_core::codes::SQLITE_IOERR_READ), "{e}");
    ctl.clear();
    assert_eq!(sum(&reader.open_with("f.db", "&lsn=6")), sums[&6]);
    // A damaged snapshot index: SQLITE_CORRUPT naming the snapshot, for
    // the listing, an open and a restore alike.
    let (key, mut bytes) = objects(&store)
        .into_iter()
        .find(|(k, _)| k.contains("/snap/"))
        .unwrap();
    bytes[100] ^= 1;
    support::put_object(&store, &key, bytes);
    let fresh = Node::new(store.clone(), opts(HOUR));
    let e = fresh.vfs.versions("f.db").unwrap_err();
    assert_eq!(e.code(), Some(vfs_core::codes::SQLITE_CORRUPT), "{e}");
    assert!(e.message().contains(&key), "{e}");
    let msg = cant_open(&fresh, "f.db", "&lsn=7");
    assert!(msg.contains(&key), "{msg}");
    let e = fresh
        .vfs
        .restore("f.db", At::Lsn(6), &RestoreTarget::Database("r.db".into()))
        .unwrap_err();
    assert_eq!(e.code(), Some(vfs_core::codes::SQLITE_CORRUPT), "{e}");
    assert_eq!(fresh.vfs.head_lsn("r.db").unwrap(), 0);
}

/// The hazard the trust rule closes: a stale writer's commit lands in a
/// log key that was freed (`log/6`), is refused, and its removal fails,
/// so the stray stays right after an older snapshot (`snap/5`) whose own
/// commit is gone from the log. Time travel must never apply it.
#[test]
fn a_stray_after_an_older_snapshot_is_never_a_version() {
    let (store, ctl) = faulty_memory();
    let w = Node::new(store.clone(), opts(HOUR));
    let c = w.open("s.db");
    let mut sums = BTreeMap::new();
    commit(&c, "CREATE TABLE t(x INTEGER, pad BLOB)", &mut sums);
    inserts(&c, 1, 4, &mut sums); // LSN 5
    w.vfs.compact("/s.db").unwrap(); // snap/5
    // The stale writer: reads LSN 5, never looks again.
    let stale = Node::new(store.clone(), opts(HOUR));
    let sc = stale.open("s.db");
    assert_eq!(sum(&sc), sums[&5]);
    inserts(&c, 5, 7, &mut sums); // LSN 8
    w.vfs.compact("/s.db").unwrap(); // snap/8
    // The log up to 6 freed while snap/5 stays (as GC does when snap/5 is
    // still inside its window but the base is snap/8).
    let rt = tokio::runtime::Runtime::new().unwrap();
    for l in 1..=6u64 {
        rt.block_on(store.delete(&Path::from(format!("t/s.db/log/{l:020}"))))
            .unwrap();
    }
    // The stale writer creates log/6, finds log/5 gone, is refused; its
    // stray's removal fails.
    ctl.add(vfs_object::fault::Rule::on(&[vfs_object::fault::RequestKind::Delete]).always());
    sc.execute("INSERT INTO t(x) VALUES (1000)", [])
        .unwrap_err();
    ctl.clear();
    assert!(
        keys_under(&store, "/log/").contains(&"t/s.db/log/00000000000000000006".to_owned()),
        "the stray is there"
    );
    // Time travel: 5 from its snapshot, 8 from the newest; the stray and
    // what would follow it are no version.
    let reader = Node::new(store.clone(), opts(HOUR));
    let versions = reader.vfs.versions("s.db").unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.lsn, v.snapshot))
            .collect::<Vec<_>>(),
        [(5, true), (8, false)]
    );
    assert_eq!(sum(&reader.open_with("s.db", "&lsn=5")), sums[&5]);
    assert_eq!(sum(&reader.open_with("s.db", "&lsn=8")), sums[&8]);
    for l in [6, 7] {
        let msg = cant_open(&reader, "s.db", &format!("&lsn={l}"));
        assert!(msg.contains("after snapshot 5 cannot be trusted"), "{msg}");
    }
    let e = reader
        .vfs
        .restore("s.db", At::Lsn(6), &RestoreTarget::Database("r.db".into()))
        .unwrap_err();
    assert_eq!(e.code(), Some(SQLITE_ERROR), "{e}");
}
