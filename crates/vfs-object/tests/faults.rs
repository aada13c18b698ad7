//! Failures between the backend and the store, through the fault layer:
//! lost responses, failed and delayed requests, a store that goes away in
//! the middle of a commit, damaged objects.

mod support;

use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use rusqlite::Connection;
use support::{Node, code, count, faulty_memory, integrity, objects, opts};
use vfs_core::codes::{
    SQLITE_CORRUPT, SQLITE_IOERR_DATA, SQLITE_IOERR_LOCK, SQLITE_IOERR_READ, SQLITE_IOERR_WRITE,
};
use vfs_object::ObjectOptions;
use vfs_object::fault::{FaultStore, RequestKind, Rule};

const HOUR: Duration = Duration::from_secs(3600);

fn last_message() -> String {
    vfs_core::last_error()
        .map(|e| e.message)
        .unwrap_or_default()
}

/// Ten accounts of 100; `transfer` moves money between two of them.
fn bank(c: &Connection) {
    c.execute_batch(
        "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<10)
         INSERT INTO acct SELECT i, 100 FROM n;
         CREATE TABLE pad(b BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<600)
         INSERT INTO pad SELECT randomblob(3000) FROM n;",
    )
    .unwrap();
}

fn transfer(c: &Connection, from: i64, to: i64, amount: i64) -> rusqlite::Result<()> {
    c.execute_batch("BEGIN")?;
    let r = (|| {
        c.execute(
            "UPDATE acct SET bal = bal - ?1 WHERE id = ?2",
            [amount, from],
        )?;
        c.execute("UPDATE acct SET bal = bal + ?1 WHERE id = ?2", [amount, to])?;
        c.execute_batch("COMMIT")
    })();
    if r.is_err() && !c.is_autocommit() {
        let _ = c.execute_batch("ROLLBACK");
    }
    r
}

fn balances(c: &Connection) -> Vec<i64> {
    c.prepare("SELECT bal FROM acct ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_lost_put_response_is_resolved_by_reading_the_object_back() {
    let (store, ctl) = faulty_memory();
    let a = Node::new(store.clone(), opts(HOUR));
    let c = a.open("lost.db");
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    // Applied, response lost; the retry finds the key taken; the read-back
    // finds our transaction id: committed, and reported so (after the
    // check that its parent is still in the log: a second GET).
    ctl.add(Rule::on(&[RequestKind::Put]).lose_response());
    let before = ctl.counts();
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    let d = ctl.counts().since(&before);
    assert_eq!((d.puts, d.gets), (2, 2), "{d:?}");
    // Every attempt loses its response: still resolved by the read-back.
    ctl.add(Rule::on(&[RequestKind::Put]).lose_response().always());
    c.execute("INSERT INTO t VALUES (2)", []).unwrap();
    ctl.clear();
    let b = Node::new(store.clone(), opts(HOUR));
    assert_eq!(count(&b.open("lost.db"), "SELECT count(*) FROM t"), 2);
    assert_eq!(objects(&store).len(), 3, "one object per commit");
}

#[test]
fn failed_and_slow_requests_are_retried_within_bounds() {
    let (store, ctl) = faulty_memory();
    let a = Node::new(
        store.clone(),
        ObjectOptions {
            request_timeout: Duration::from_millis(200),
            ..opts(HOUR)
        },
    );
    let c = a.open("retry.db");
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    ctl.add(Rule::on(&[RequestKind::Put]).times(2));
    ctl.add(Rule::on(&[RequestKind::Put]).delay(Duration::from_secs(5)));
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    let s = a.vfs.request_stats();
    assert_eq!(s.retries, 3, "{s}");
    // More failures than retries: the commit fails, says why, stores
    // nothing, and the next one works.
    ctl.add(Rule::any().times(100));
    let e = c.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_WRITE, "{e}");
    let msg = last_message();
    assert!(
        msg.contains("UNKNOWN") && msg.contains("t/retry.db/log/00000000000000000003"),
        "{msg}"
    );
    ctl.clear();
    c.execute("INSERT INTO t VALUES (3)", []).unwrap();
    let xs: String = c
        .query_row("SELECT group_concat(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(xs, "1,3");
}

#[test]
fn an_unanswered_put_is_fenced_so_failure_is_certain() {
    let (store, ctl) = faulty_memory();
    let a = Node::new(store.clone(), opts(HOUR));
    let c = a.open("fence.db");
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    // Every attempt of the commit's PUT fails unanswered (4 attempts), the
    // read-back finds nothing, the fence (a fifth PUT) lands.
    ctl.add(Rule::on(&[RequestKind::Put]).times(4));
    let e = c.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_WRITE);
    let msg = last_message();
    assert!(
        msg.contains("NOT committed") && msg.contains("fenced"),
        "{msg}"
    );
    // The fence is a void commit at LSN 3: it changes nothing for readers…
    let b = Node::new(store.clone(), opts(HOUR));
    let cb = b.open("fence.db");
    assert_eq!(count(&cb, "SELECT count(*) FROM t"), 1);
    let lsn: String = cb.query_row("PRAGMA object_lsn", [], |r| r.get(0)).unwrap();
    assert_eq!(lsn, "3");
    // …and writers go on after it.
    c.execute("INSERT INTO t VALUES (3)", []).unwrap();
    assert_eq!(
        count(&cb, "SELECT count(*) FROM t"),
        1,
        "snapshot of b: poll is an hour"
    );
    assert_eq!(
        count(&b.open_with("fence.db", "&poll=0"), "SELECT sum(x) FROM t"),
        4
    );
}

/// A commit's requests, swept: the store stops answering after request
/// `k` (or applies request `k` and loses its answer, then stops). A fresh
/// process then finds the database at the old or the new state, never
/// between, and a commit the application was told about is there.
#[test]
fn a_cut_between_any_two_requests_leaves_the_old_or_the_new_state() {
    let origin = Arc::new(InMemory::new());
    {
        let setup = Node::new(origin.clone(), opts(HOUR));
        bank(&setup.open("cut.db"));
    }
    let old = vec![100; 10];
    // Count the requests of one cold transfer.
    let probe_store = FaultStore::new(Arc::new(origin.fork()));
    let probe_ctl = probe_store.controller();
    let requests = {
        let n = Node::new(Arc::new(probe_store), opts(HOUR));
        let c = n.open("cut.db");
        transfer(&c, 1, 2, 0).unwrap(); // moves nothing, still commits
        probe_ctl.counts().total()
    };
    assert!(requests >= 4, "a cold transfer makes {requests} requests");
    let mut outcomes = [0usize; 3]; // committed, not committed, unknown
    // Every cut starts from the same stored state (a copy of it): a commit
    // whose outcome was unknown may have landed, and would make the next
    // cold open longer.
    for k in 0..requests + 2 {
        for lose in [false, true] {
            let expected = old.clone();
            let inner: Arc<dyn ObjectStore> = Arc::new(origin.fork());
            let f = FaultStore::new(inner.clone());
            let ctl = f.controller();
            if lose {
                ctl.add(Rule::any().after(k).lose_response());
                ctl.add(Rule::any().after(k + 1).always());
            } else {
                ctl.add(Rule::any().after(k).always());
            }
            let writer = Node::new(Arc::new(f), opts(HOUR));
            let result = Connection::open(writer.uri("cut.db", ""))
                .and_then(|c| transfer(&c, 3, 4, 1).map(|()| c));
            let msg = last_message();
            let checker = Node::new(inner.clone(), opts(HOUR));
            let c = checker.open("cut.db");
            integrity(&c);
            let now = balances(&c);
            let mut moved = expected.clone();
            moved[2] -= 1;
            moved[3] += 1;
            assert!(
                now == expected || now == moved,
                "cut after {k} (lose={lose}): {now:?} is neither {expected:?} nor {moved:?}"
            );
            match &result {
                Ok(_) => {
                    assert_eq!(now, moved, "cut after {k}: reported committed");
                    outcomes[0] += 1;
                }
                Err(e) if msg.contains("UNKNOWN") => {
                    assert_eq!(code(e), SQLITE_IOERR_WRITE);
                    outcomes[2] += 1;
                }
                Err(e) => {
                    assert_eq!(now, expected, "cut after {k}: reported failed ({e}; {msg})");
                    outcomes[1] += 1;
                }
            }
        }
    }
    eprintln!(
        "{requests} requests per cold transfer; {} cuts: {} committed, {} not committed, {} unknown",
        outcomes.iter().sum::<usize>(),
        outcomes[0],
        outcomes[1],
        outcomes[2]
    );
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0 && outcomes[2] > 0,
        "{outcomes:?}"
    );
}

#[test]
fn store_failures_become_io_errors_naming_the_object() {
    let (store, ctl) = faulty_memory();
    let a = Node::new(store.clone(), opts(Duration::ZERO));
    let c = a.open("io.db");
    bank(&c);
    // A cold process whose page reads fail.
    let b = Node::new(
        store.clone(),
        ObjectOptions {
            retries: 0,
            ..opts(HOUR)
        },
    );
    let cb = b.open("io.db");
    ctl.add(Rule::on(&[RequestKind::Get]).always());
    let e = cb
        .query_row("SELECT count(*) FROM pad", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_READ, "{e}");
    let msg = last_message();
    assert!(
        msg.contains("GET t/io.db/log/0000000000000000000") && msg.contains(" bytes "),
        "{msg}"
    );
    ctl.clear();
    // Looking for new commits fails: the read transaction cannot start.
    ctl.add(Rule::on(&[RequestKind::List]).always());
    let e = c
        .query_row("SELECT 1 FROM acct", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_LOCK, "{e}");
    assert!(
        last_message().contains("LIST t/io.db/log/"),
        "{}",
        last_message()
    );
    assert_eq!(count(&cb, "SELECT count(*) FROM pad"), 600);
}

#[test]
fn damaged_objects_are_errors_never_data() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = Node::new(store.clone(), opts(HOUR));
    bank(&a.open("bad.db"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // The largest commit (the pad table's), read page by page by a cold
    // process.
    let (key, mut bytes) = objects(&store)
        .into_iter()
        .max_by_key(|(_, b)| b.len())
        .expect("a commit");
    let put = |b: Vec<u8>| {
        rt.block_on(store.put(&Path::from(key.as_str()), PutPayload::from(b)))
            .unwrap();
    };
    // A flipped bit in a page (the last byte of the object).
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    put(bytes.clone());
    let b = Node::new(
        store.clone(),
        ObjectOptions {
            retries: 0,
            ..opts(HOUR)
        },
    );
    let cb = b.open("bad.db");
    let e = cb
        .query_row("SELECT count(*) FROM pad WHERE length(b) > 0", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_err();
    assert_eq!(code(&e), SQLITE_IOERR_DATA, "{e}");
    assert!(last_message().contains("fails its CRC-32") && last_message().contains(&key));
    // A flipped bit in the index: the commit is refused as a whole.
    bytes[last] ^= 1;
    bytes[100] ^= 1;
    put(bytes);
    let c = Node::new(store.clone(), opts(HOUR));
    let e = Connection::open(c.uri("bad.db", ""))
        .and_then(|x| x.query_row("SELECT count(*) FROM acct", [], |r| r.get::<_, i64>(0)))
        .unwrap_err();
    assert_eq!(code(&e) & 0xff, SQLITE_CORRUPT & 0xff, "{e}");
    let msg = last_message();
    assert!(msg.contains(&key) && msg.contains("checksum"), "{msg}");
}
