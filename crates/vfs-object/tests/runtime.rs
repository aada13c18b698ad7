//! SQLite called from threads of the application's own tokio runtime: the
//! backend's requests run on its private runtime, so none of these may
//! panic ("cannot start a runtime from within a runtime") or deadlock
//! (a current-thread runtime blocked by its only thread).

mod support;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use support::{Node, count, opts};
use vfs_object::fault::FaultStore;

/// A cold open (LIST and GETs), a commit (PUT), and a read, on `node`;
/// with some latency so every request really waits.
fn workload(node: &Node, db: &str) -> i64 {
    let c = node.open_with(db, "&poll=0");
    c.execute_batch("CREATE TABLE IF NOT EXISTS t(x)").unwrap();
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    count(&c, "SELECT count(*) FROM t")
}

fn slow_store() -> Arc<dyn ObjectStore> {
    let f = FaultStore::new(Arc::new(InMemory::new()));
    f.controller().set_latency(Duration::from_millis(2));
    Arc::new(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_multi_thread_runtime_like_tokio_main() {
    let store = slow_store();
    let node = Node::new(store.clone(), opts(Duration::ZERO));
    assert_eq!(workload(&node, "main.db"), 1);
    // A second process, cold, on the same worker thread.
    let other = Node::new(store, opts(Duration::ZERO));
    assert_eq!(workload(&other, "main.db"), 2);
    // Dropping the VFS (and its runtime) inside async code is fine too.
    drop((node, other));
}

#[tokio::test(flavor = "current_thread")]
async fn inside_a_current_thread_runtime() {
    let store = slow_store();
    let node = Node::new(store, opts(Duration::ZERO));
    assert_eq!(workload(&node, "current.db"), 1);
    assert_eq!(workload(&node, "current.db"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_spawn_blocking_and_in_spawned_tasks_like_a_driver_worker() {
    let store = slow_store();
    let node = Arc::new(Node::new(store, opts(Duration::ZERO)));
    let n = node.clone();
    let blocking = tokio::task::spawn_blocking(move || workload(&n, "pool.db"));
    assert_eq!(blocking.await.unwrap(), 1);
    // Several tasks at once on the runtime's workers, each with its own
    // connection (as a connection pool's workers would).
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let n = node.clone();
        tasks.push(tokio::spawn(async move {
            let c = n.open_with("pool.db", "&poll=0");
            c.busy_timeout(Duration::from_secs(30)).unwrap();
            for _ in 0..5 {
                c.execute("INSERT INTO t VALUES (2)", []).unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = node.open("pool.db");
    assert_eq!(count(&c, "SELECT count(*) FROM t"), 21);
}

#[test]
fn on_a_plain_thread_that_later_runs_its_own_runtime() {
    let node = Node::new(slow_store(), opts(Duration::ZERO));
    assert_eq!(workload(&node, "plain.db"), 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async { workload(&node, "plain.db") });
    assert_eq!(got, 2);
}
