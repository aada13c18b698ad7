//! Time travel: connections opened at a past version (`lsn=`, `asof=`),
//! the version listing, point-in-time restore into a new database or a
//! local file, and the failures of each (missing versions, deleted log
//! objects, failed requests, a crash in the middle of a restore).

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use rusqlite::Connection;
use support::{Node, code, count, faulty_memory, integrity, opts};
use vfs_core::codes::{
    SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_ERROR, SQLITE_IOERR_READ, SQLITE_READONLY,
};
use vfs_core::{File, FileKind, LockLevel, OpenName, OpenOptions, Vfs};
use vfs_object::fault::{RequestKind, Rule};
use vfs_object::{At, ObjectOptions, ObjectVfs, RestoreTarget, VersionInfo};

const HOUR: Duration = Duration::from_secs(3600);

fn last_message() -> String {
    vfs_core::last_error()
        .map(|e| e.message)
        .unwrap_or_default()
}

/// The bytes of database `name` at the head, read through the VFS's own
/// read path (not the restore's).
fn head_bytes(vfs: &ObjectVfs, name: &str) -> Vec<u8> {
    let flags = rusqlite::ffi::SQLITE_OPEN_READONLY | rusqlite::ffi::SQLITE_OPEN_MAIN_DB;
    let mut f = vfs
        .open(
            &OpenName::new(name, FileKind::MainDb),
            OpenOptions::from_flags(flags).unwrap(),
        )
        .unwrap();
    f.lock(LockLevel::Shared).unwrap();
    let mut buf = vec![0u8; f.size().unwrap() as usize];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), buf.len());
    f.unlock(LockLevel::None).unwrap();
    buf
}

/// The rows of `t`, by id.
type Rows = Vec<(i64, String)>;

fn rows(c: &Connection) -> Rows {
    let mut s = c.prepare("SELECT id, v FROM t ORDER BY id").unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn object_lsn(c: &Connection) -> u64 {
    let s: String = c.query_row("PRAGMA object_lsn", [], |r| r.get(0)).unwrap();
    s.parse().unwrap()
}

/// Six commits: a table, inserts over several pages, an update, a delete.
/// Returns the rows and the bytes after each LSN (index 0 = LSN 1).
fn history(node: &Node, db: &str) -> (Vec<Rows>, Vec<Vec<u8>>) {
    let c = node.open(db);
    let steps = [
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) \
         INSERT INTO t SELECT i, printf('%0500d', i) FROM n",
        "INSERT INTO t VALUES (100, 'hundred')",
        "UPDATE t SET v = 'changed' WHERE id % 3 = 0",
        "DELETE FROM t WHERE id > 20",
        "CREATE INDEX tv ON t(v)",
    ];
    let mut states = Vec::new();
    let mut bytes = Vec::new();
    for sql in steps {
        c.execute_batch(sql).unwrap();
        states.push(rows(&c));
        bytes.push(head_bytes(&node.vfs, &format!("/{db}")));
    }
    assert_eq!(node.vfs.head_lsn(db).unwrap(), steps.len() as u64);
    (states, bytes)
}

#[test]
fn every_version_opens_read_only_at_its_own_state() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let writer = Node::new(store.clone(), opts(HOUR));
    let (states, _) = history(&writer, "h.db");
    // Another "process" opens each version.
    let reader = Node::new(store.clone(), opts(Duration::ZERO));
    for (i, want) in states.iter().enumerate() {
        let lsn = i as u64 + 1;
        let c = reader.open_with("h.db", &format!("&lsn={lsn}"));
        assert_eq!(&rows(&c), want, "LSN {lsn}");
        assert_eq!(object_lsn(&c), lsn);
        integrity(&c);
        // Writes fail, naming why.
        let e = c
            .execute("INSERT INTO t VALUES (999, 'x')", [])
            .unwrap_err();
        assert_eq!(code(&e) & 0xff, SQLITE_READONLY, "{e}");
        let msg = last_message();
        assert!(
            msg.contains("past version") && msg.contains(&format!("LSN {lsn}")),
            "{msg}"
        );
    }
    // A pinned connection never looks past its version: new commits are
    // invisible to it and its read transactions make no LIST.
    let pinned = reader.open_with("h.db", "&lsn=2");
    let before = reader.vfs.request_stats();
    writer.open("h.db").execute("DELETE FROM t", []).unwrap();
    for _ in 0..3 {
        assert_eq!(rows(&pinned), states[1]);
    }
    assert_eq!(reader.vfs.request_stats().since(&before).lists, 0);
    // The live head moved on.
    let live = reader.open("h.db");
    assert_eq!(count(&live, "SELECT count(*) FROM t"), 0);
    assert_eq!(object_lsn(&live), 7);
    assert_eq!(rows(&pinned), states[1]);
}

#[test]
fn asof_opens_the_newest_commit_at_or_before_the_time() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let node = Node::new(store.clone(), opts(HOUR));
    let (states, _) = history(&node, "t.db");
    let versions = node.vfs.versions("t.db").unwrap();
    // Commit times never decrease along the log.
    assert!(
        versions
            .windows(2)
            .all(|w| w[0].commit_time <= w[1].commit_time)
    );
    let reader = Node::new(store, opts(HOUR));
    let rfc = |t: std::time::SystemTime| {
        let ms = t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    for v in &versions {
        // The newest LSN whose commit time is at most this one's.
        let want = versions
            .iter()
            .filter(|w| w.commit_time <= v.commit_time)
            .map(|w| w.lsn)
            .max()
            .unwrap();
        let c = reader.open_with("t.db", &format!("&asof={}", rfc(v.commit_time)));
        assert_eq!(object_lsn(&c), want);
        assert_eq!(rows(&c), states[want as usize - 1]);
    }
    // A time zone offset names the same instant.
    let c = reader.open_with("t.db", "&asof=2999-01-01T01:00:00%2B01:00");
    assert_eq!(object_lsn(&c), 6);
    // Before the first commit: nothing to open.
    let first = versions[0].commit_time - Duration::from_millis(1);
    let e = Connection::open(reader.uri("t.db", &format!("&asof={}", rfc(first)))).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN);
    let msg = last_message();
    assert!(
        msg.contains("asof=") && msg.contains("no retained commit is that old"),
        "{msg}"
    );
}

#[test]
fn bad_versions_are_refused_at_open_naming_the_parameter() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let node = Node::new(store.clone(), opts(HOUR));
    history(&node, "b.db");
    let reader = Node::new(store, opts(HOUR));
    for (params, says) in [
        ("&lsn=7", "newest commit is LSN 6"),
        ("&lsn=0", "lsn=0"),
        ("&lsn=abc", "lsn=\"abc\""),
        ("&lsn=-1", "lsn=\"-1\""),
        ("&asof=yesterday", "asof=\"yesterday\""),
        ("&asof=2026-12-04", "RFC 3339"),
        ("&lsn=1&asof=2026-12-04T00:00:00Z", "both"),
    ] {
        let e = Connection::open(reader.uri("b.db", params)).unwrap_err();
        assert_eq!(code(&e), SQLITE_CANTOPEN, "{params}");
        let msg = last_message();
        assert!(msg.contains(says), "{params}: {msg}");
    }
    // A database that does not exist has no version either.
    let e = Connection::open(reader.uri("none.db", "&lsn=1")).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN);
    assert!(last_message().contains("no commit"), "{}", last_message());
}

#[test]
fn versions_list_sizes_pages_and_void_commits_for_two_lists_and_a_get_each() {
    let (store, ctl) = faulty_memory();
    let node = Node::new(store.clone(), opts(HOUR));
    let c = node.open("v.db");
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    // An unanswered commit: its writer fences LSN 3 with a void commit.
    ctl.add(Rule::on(&[RequestKind::Put]).times(4));
    c.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    c.execute("INSERT INTO t VALUES (3)", []).unwrap();
    let reader = Node::new(store.clone(), opts(HOUR));
    let before = ctl.counts();
    let versions: Vec<VersionInfo> = reader.vfs.versions("v.db").unwrap();
    let cost = ctl.counts().since(&before);
    // The log and the snapshots (none here) are listed; one GET per commit.
    assert_eq!((cost.lists, cost.gets, cost.puts), (2, 4, 0));
    assert_eq!(
        versions.iter().map(|v| v.lsn).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let void: Vec<bool> = versions.iter().map(|v| v.void).collect();
    assert_eq!(void, [false, false, true, false]);
    assert_eq!(versions[2].pages_changed, 0);
    assert_eq!(versions[2].db_size, versions[1].db_size);
    assert!(
        versions
            .iter()
            .all(|v| v.db_size % 4096 == 0 && v.db_size > 0)
    );
    // Object sizes are the store's.
    let rt = tokio::runtime::Runtime::new().unwrap();
    for v in &versions {
        let key = Path::from(format!("t/v.db/log/{:020}", v.lsn));
        let meta = rt.block_on(store.head(&key)).unwrap();
        assert_eq!(meta.size, v.object_bytes, "LSN {}", v.lsn);
        assert_eq!(
            v.object_bytes,
            96 + u64::from(v.pages_changed) * (16 + 4096)
        );
    }
    // A void commit is a version with the state of its parent.
    let at3 = reader.open_with("v.db", "&lsn=3");
    let at2 = reader.open_with("v.db", "&lsn=2");
    let xs = |c: &Connection| -> String {
        c.query_row("SELECT group_concat(x) FROM t", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(xs(&at3), "1");
    assert_eq!(xs(&at2), "1");
    assert_eq!(object_lsn(&at3), 3);
}

#[test]
fn restore_into_a_new_database_and_a_file_gives_the_bytes_of_that_version() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let node = Node::new(store.clone(), opts(HOUR));
    let (states, bytes) = history(&node, "src.db");
    let dir = tempfile::tempdir().unwrap();
    // A fresh process (cold cache) restores every version both ways.
    let other = Node::new(store.clone(), opts(HOUR));
    for lsn in [1u64, 2, 4, 6] {
        let want = &bytes[lsn as usize - 1];
        let file = dir.path().join(format!("at-{lsn}.db"));
        let r = other
            .vfs
            .restore("src.db", At::Lsn(lsn), &RestoreTarget::File(file.clone()))
            .unwrap();
        assert_eq!((r.lsn, r.db_size), (lsn, want.len() as u64));
        assert_eq!(&std::fs::read(&file).unwrap(), want, "file at LSN {lsn}");
        let plain = Connection::open(&file).unwrap();
        integrity(&plain);
        assert_eq!(rows(&plain), states[lsn as usize - 1]);

        let target = format!("copy-{lsn}.db");
        other
            .vfs
            .restore(
                "src.db",
                At::Lsn(lsn),
                &RestoreTarget::Database(target.clone()),
            )
            .unwrap();
        let copy_versions = other.vfs.versions(&target).unwrap();
        assert_eq!(copy_versions.len(), 1);
        assert!(copy_versions[0].full_image && copy_versions[0].lsn == 1);
        assert_eq!(&head_bytes(&other.vfs, &format!("/{target}")), want);
        let c = node.open(&target);
        integrity(&c);
        assert_eq!(rows(&c), states[lsn as usize - 1]);
        // The copy is a database of its own: it takes commits.
        c.execute("INSERT INTO t VALUES (5000, 'new')", []).unwrap();
        assert_eq!(node.vfs.head_lsn(&target).unwrap(), 2);
    }
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    // By time: the newest version at or before it.
    let v = other.vfs.versions("src.db").unwrap();
    let out = dir.path().join("asof.db");
    let r = other
        .vfs
        .restore(
            "src.db",
            At::Time(v[2].commit_time),
            &RestoreTarget::File(out),
        )
        .unwrap();
    assert!(
        r.lsn >= 3
            && v.iter()
                .all(|w| w.lsn <= r.lsn || w.commit_time > v[2].commit_time)
    );
}

#[test]
fn restore_refuses_existing_targets_and_missing_versions() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let node = Node::new(store.clone(), opts(HOUR));
    history(&node, "s.db");
    node.open("other.db")
        .execute_batch("CREATE TABLE x(y)")
        .unwrap();
    let to_db = |n: &str| RestoreTarget::Database(n.into());
    let e = node
        .vfs
        .restore("s.db", At::Lsn(2), &to_db("other.db"))
        .unwrap_err();
    assert_eq!(e.code(), Some(SQLITE_CANTOPEN));
    assert!(e.message().contains("exists"), "{e}");
    let e = node
        .vfs
        .restore("s.db", At::Lsn(2), &to_db("/s.db"))
        .unwrap_err();
    assert!(e.message().contains("onto itself"), "{e}");
    let e = node
        .vfs
        .restore("s.db", At::Lsn(9), &to_db("n.db"))
        .unwrap_err();
    assert_eq!(e.code(), Some(SQLITE_ERROR));
    assert!(e.message().contains("LSN 9 does not exist"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("exists.db");
    std::fs::write(&f, b"keep me").unwrap();
    let e = node
        .vfs
        .restore("s.db", At::Lsn(2), &RestoreTarget::File(f.clone()))
        .unwrap_err();
    assert!(e.message().contains("exists"), "{e}");
    assert_eq!(std::fs::read(&f).unwrap(), b"keep me");
    // Nothing was created by the refusals.
    assert_eq!(node.vfs.head_lsn("n.db").unwrap(), 0);
    assert_eq!(node.vfs.head_lsn("other.db").unwrap(), 1);
}

/// Deleting log objects (what garbage collection does without a snapshot)
/// makes the versions that need them errors, never another state.
#[test]
fn a_version_whose_log_objects_are_gone_is_an_error_not_a_wrong_state() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let node = Node::new(store.clone(), opts(HOUR));
    history(&node, "g.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let del = |lsn: u64| {
        rt.block_on(store.delete(&Path::from(format!("t/g.db/log/{lsn:020}"))))
            .unwrap()
    };
    // A hole in the middle of the log.
    del(3);
    let reader = Node::new(store.clone(), opts(HOUR));
    assert_eq!(
        count(
            &reader.open_with("g.db", "&lsn=2"),
            "SELECT count(*) FROM t"
        ),
        40
    );
    let e = Connection::open(reader.uri("g.db", "&lsn=5")).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN);
    let msg = last_message();
    assert!(msg.contains("commit 3") && msg.contains("missing"), "{msg}");
    // The head of the log deleted: older versions are no longer retained.
    del(1);
    del(2);
    let e = Connection::open(reader.uri("g.db", "&lsn=2")).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN);
    assert!(
        last_message().contains("no longer retained"),
        "{}",
        last_message()
    );
    let e = reader
        .vfs
        .restore("g.db", At::Lsn(6), &RestoreTarget::Database("r.db".into()))
        .unwrap_err();
    assert!(e.message().contains("were deleted"), "{e}");
    assert_eq!(reader.vfs.head_lsn("r.db").unwrap(), 0);
}

#[test]
fn failed_requests_and_damage_during_time_travel_are_errors() {
    let (store, ctl) = faulty_memory();
    let node = Node::new(
        store.clone(),
        ObjectOptions {
            retries: 1,
            ..opts(HOUR)
        },
    );
    history(&node, "f.db");
    // Listing fails (after its retry): open fails with CANTOPEN naming it.
    ctl.add(Rule::on(&[RequestKind::List]).times(2));
    let reader = Node::new(
        store.clone(),
        ObjectOptions {
            retries: 1,
            ..opts(HOUR)
        },
    );
    let e = Connection::open(reader.uri("f.db", "&lsn=2")).unwrap_err();
    assert_eq!(code(&e), SQLITE_CANTOPEN);
    assert!(last_message().contains("LIST"), "{}", last_message());
    // A page GET of the restore fails: an error, and no file is left.
    ctl.clear();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.db");
    let fresh = Node::new(
        store.clone(),
        ObjectOptions {
            retries: 0,
            ..opts(HOUR)
        },
    );
    // Listing + 4 index GETs succeed, then page reads fail.
    ctl.add(Rule::on(&[RequestKind::Get]).after(4).always());
    let e = fresh
        .vfs
        .restore("f.db", At::Lsn(4), &RestoreTarget::File(out.clone()))
        .unwrap_err();
    assert_eq!(e.code(), Some(SQLITE_IOERR_READ), "{e}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    ctl.clear();
    // A damaged commit object: SQLITE_CORRUPT naming it, for versions,
    // pinned opens and restores alike.
    let key = Path::from("t/f.db/log/00000000000000000002");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut obj = rt
        .block_on(async { store.get(&key).await.unwrap().bytes().await })
        .unwrap()
        .to_vec();
    obj[70] ^= 1;
    rt.block_on(store.put(&key, obj.into())).unwrap();
    let e = fresh.vfs.versions("f.db").unwrap_err();
    assert_eq!(e.code(), Some(SQLITE_CORRUPT));
    assert!(e.message().contains("00000000000000000002"), "{e}");
    let e = fresh
        .vfs
        .restore("f.db", At::Lsn(3), &RestoreTarget::Database("x.db".into()))
        .unwrap_err();
    assert_eq!(e.code(), Some(SQLITE_CORRUPT));
}

/// A restore into a new database cut at each of its requests (the store
/// stops answering after request `k`, or applies request `k` and loses its
/// answer), then a fresh process looks: the target is absent or complete,
/// never partial, what the caller was told is true, and restoring again
/// finishes the job.
#[test]
fn a_restore_cut_at_any_request_leaves_no_target_or_a_complete_one() {
    let (store, ctl) = faulty_memory();
    let node = Node::new(store.clone(), opts(HOUR));
    let (states, bytes) = history(&node, "c.db");
    let quick = || ObjectOptions {
        retries: 0,
        ..opts(HOUR)
    };
    let before = ctl.counts();
    Node::new(store.clone(), quick())
        .vfs
        .restore(
            "c.db",
            At::Lsn(5),
            &RestoreTarget::Database("probe.db".into()),
        )
        .unwrap();
    let total = ctl.counts().since(&before).total();
    assert!(
        total >= 8,
        "LIST, 5 index GETs, page GETs, LIST, PUT: {total}"
    );
    let (mut complete, mut absent) = (0, 0);
    for k in 0..total {
        for lose in [false, true] {
            let target = format!("cut-{k}-{lose}.db");
            let rule = Rule::any().after(k);
            ctl.add(if lose {
                rule.lose_response()
            } else {
                rule.always()
            });
            let told = Node::new(store.clone(), quick()).vfs.restore(
                "c.db",
                At::Lsn(5),
                &RestoreTarget::Database(target.clone()),
            );
            ctl.clear();
            let fresh = Node::new(store.clone(), opts(HOUR));
            match fresh.vfs.head_lsn(&target).unwrap() {
                0 => {
                    assert!(told.is_err(), "k={k} lose={lose}: told it was restored");
                    absent += 1;
                    fresh
                        .vfs
                        .restore("c.db", At::Lsn(5), &RestoreTarget::Database(target.clone()))
                        .unwrap();
                }
                1 => complete += 1,
                other => panic!("k={k}: target at LSN {other}"),
            }
            assert_eq!(head_bytes(&fresh.vfs, &format!("/{target}")), bytes[4]);
            let c = fresh.open(&target);
            integrity(&c);
            assert_eq!(rows(&c), states[4]);
        }
    }
    assert!(
        complete > 0 && absent > 0,
        "{complete} complete, {absent} absent"
    );
}
