//! The compaction URI parameters: `compact_every=<commits>` and
//! `retention=<milliseconds or duration>` set a connection's compaction
//! policy and GC window over the registration's options; a value that
//! does not parse is `SQLITE_CANTOPEN` naming the parameter.

mod support;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use rusqlite::Connection;
use support::{Node, code, count, integrity, objects, opts};
use vfs_core::codes::SQLITE_CANTOPEN;

const HOUR: Duration = Duration::from_secs(3600);

fn keys_under(store: &Arc<dyn ObjectStore>, db: &str, dir: &str) -> Vec<String> {
    objects(store)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(&format!("t/{db}/{dir}/")))
        .collect()
}

/// A table, then `n` one-row commits.
fn commits(c: &Connection, n: i64) {
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    for i in 1..=n {
        c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
    }
}

#[test]
fn compact_every_and_retention_in_the_uri_set_the_policy() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    // The registration has no policy and keeps an hour.
    let node = Node::new(store.clone(), opts(HOUR));
    // Policy from the URI, GC window of zero: the log below the snapshot
    // goes.
    let c = node.open_with("p.db", "&compact_every=5&retention=0");
    commits(&c, 9); // LSN 10
    node.vfs.wait_for_compaction("p.db").unwrap();
    let snaps = keys_under(&store, "p.db", "snap");
    assert!(!snaps.is_empty(), "the policy compacted");
    let logs = keys_under(&store, "p.db", "log");
    assert!(
        !logs.contains(&"t/p.db/log/00000000000000000002".to_owned()),
        "GC with retention=0 ran: {logs:?}"
    );
    assert_eq!(count(&c, "SELECT sum(x) FROM t"), 45);
    // Policy from the URI, the registration's hour: nothing deleted.
    let k = node.open_with("k.db", "&compact_every=5");
    commits(&k, 9);
    node.vfs.wait_for_compaction("k.db").unwrap();
    assert!(!keys_under(&store, "k.db", "snap").is_empty());
    assert_eq!(keys_under(&store, "k.db", "log").len(), 10);
    // No parameter: the registration's options (no policy).
    let n = node.open("n.db");
    commits(&n, 9);
    node.vfs.wait_for_compaction("n.db").unwrap();
    assert!(keys_under(&store, "n.db", "snap").is_empty());
    // A duration with a unit, and PRAGMA object_gc using it.
    let g = node.open_with("k.db", "&retention=1h");
    let kept: String = g.query_row("PRAGMA object_gc", [], |r| r.get(0)).unwrap();
    assert!(kept.contains("nothing deleted"), "{kept}");
    assert_eq!(keys_under(&store, "k.db", "log").len(), 10);
    let g0 = node.open_with("k.db", "&retention=0s");
    let done: String = g0.query_row("PRAGMA object_gc", [], |r| r.get(0)).unwrap();
    assert!(done.contains("log objects"), "{done}");
    assert!(keys_under(&store, "k.db", "log").len() < 10);
    // Everything still reads, from a new process too.
    let fresh = Node::new(store.clone(), opts(HOUR));
    for db in ["p.db", "k.db", "n.db"] {
        let c = fresh.open(db);
        assert_eq!(count(&c, "SELECT sum(x) FROM t"), 45, "{db}");
        integrity(&c);
    }
}

#[test]
fn unparseable_compaction_parameters_are_refused_naming_them() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let node = Node::new(store, opts(HOUR));
    node.open("x.db")
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    for (params, says) in [
        ("&retention=soon", "retention=\"soon\""),
        ("&retention=1.5h", "retention=\"1.5h\""),
        ("&retention=-1", "retention=\"-1\""),
        ("&retention=3w", "retention=\"3w\""),
        ("&compact_every=x", "compact_every=\"x\""),
        ("&compact_every=-2", "compact_every=\"-2\""),
    ] {
        let e = Connection::open(node.uri("x.db", params)).unwrap_err();
        assert_eq!(code(&e), SQLITE_CANTOPEN, "{params}");
        let msg = vfs_core::last_error()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(msg.contains(says), "{params}: {msg}");
    }
    // Zero commits is no policy; durations in ms, s, m, h, d parse.
    for ok in [
        "&compact_every=0",
        "&retention=250",
        "&retention=250ms",
        "&retention=90s",
        "&retention=5m",
        "&retention=2d",
    ] {
        let c = node.open_with("x.db", ok);
        assert_eq!(count(&c, "SELECT count(*) FROM t"), 0, "{ok}");
    }
}
