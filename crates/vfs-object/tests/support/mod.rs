//! Shared helpers of vfs-object's tests: stores, registrations, SQL.
#![allow(dead_code)]

pub mod group;
pub mod moto;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use object_store::ObjectStore;
use rusqlite::{Connection, ErrorCode};
use vfs_core::Registration;
use vfs_object::fault::{FaultController, FaultStore};
use vfs_object::{ObjectOptions, ObjectVfs};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A registered `ObjectVfs` (a "process") and its name; unregistered on
/// drop.
pub struct Node {
    pub vfs: ObjectVfs,
    pub name: String,
    reg: Option<Registration>,
}

impl Node {
    pub fn new(store: Arc<dyn ObjectStore>, options: ObjectOptions) -> Node {
        let vfs = ObjectVfs::new(store, "t", options).expect("object VFS");
        let name = format!("object-test-{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let reg = vfs_core::register(&name, vfs.clone(), false).expect("register");
        Node {
            vfs,
            name,
            reg: Some(reg),
        }
    }

    pub fn uri(&self, db: &str, params: &str) -> String {
        format!("file:/{db}?vfs={}{params}", self.name)
    }

    pub fn open(&self, db: &str) -> Connection {
        self.open_with(db, "")
    }

    pub fn open_with(&self, db: &str, params: &str) -> Connection {
        let c = Connection::open(self.uri(db, params)).expect("open");
        c.busy_timeout(Duration::ZERO).expect("busy timeout");
        c
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(r) = self.reg.take()
            && let Err((_, e)) = r.unregister()
            && !std::thread::panicking()
        {
            panic!("unregister {}: {e}", self.name);
        }
    }
}

/// Options with a fixed poll interval and quick retries.
pub fn opts(poll: Duration) -> ObjectOptions {
    ObjectOptions {
        poll,
        retry_backoff: Duration::from_millis(1),
        ..ObjectOptions::default()
    }
}

/// An in-memory store behind a fault layer.
pub fn faulty_memory() -> (Arc<dyn ObjectStore>, FaultController) {
    let f = FaultStore::new(Arc::new(object_store::memory::InMemory::new()));
    let ctl = f.controller();
    (Arc::new(f), ctl)
}

/// The extended result code of a failed statement.
pub fn code(e: &rusqlite::Error) -> i32 {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
        other => panic!("not an SQLite failure: {other}"),
    }
}

pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::DatabaseBusy)
}

pub fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).expect(sql)
}

pub fn integrity(c: &Connection) {
    let r: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(r, "ok");
}

/// Every object under the store's root with its bytes.
pub fn objects(store: &Arc<dyn ObjectStore>) -> Vec<(String, Vec<u8>)> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
        let mut out = Vec::new();
        for m in metas {
            let b = store.get(&m.location).await.unwrap().bytes().await.unwrap();
            out.push((m.location.to_string(), b.to_vec()));
        }
        out.sort();
        out
    })
}

/// Stores `bytes` at `key` (plain overwrite), as an outside writer of the
/// bucket would.
pub fn put_object(store: &Arc<dyn ObjectStore>, key: &str, bytes: Vec<u8>) {
    use object_store::{ObjectStoreExt, PutPayload};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(store.put(&key.into(), PutPayload::from(bytes)))
        .unwrap();
}

/// Runs the ignored test `entry` of this test binary as a child process
/// (another "machine"), handing it `spec` in the environment variable
/// `var`; its stdout goes to `stdout`, its stderr to ours.
pub fn spawn_child(
    entry: &str,
    var: &str,
    spec: String,
    stdout: std::process::Stdio,
) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            entry,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(var, spec)
        .stdout(stdout)
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn child test process")
}
