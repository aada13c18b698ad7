//! Helpers of the group-commit tests (`group.rs`, `group_guards.rs`):
//! nodes behind their own fault layer, the async URI parameters, flushes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use rusqlite::Connection;
use vfs_object::fault::{FaultController, FaultStore, RequestKind, Rule};

use super::{Node, opts};

/// A "process" over `inner` with its own fault layer (`poll=0`).
pub fn node(inner: &Arc<dyn ObjectStore>) -> (Node, FaultController) {
    node_polling(inner, Duration::ZERO)
}

/// A "process" over `inner` with its own fault layer and poll interval.
pub fn node_polling(inner: &Arc<dyn ObjectStore>, poll: Duration) -> (Node, FaultController) {
    let f = FaultStore::new(Arc::clone(inner));
    let ctl = f.controller();
    (Node::new(Arc::new(f), opts(poll)), ctl)
}

/// The message of the VFS's last error on this thread (rusqlite reports
/// SQLite's generic text).
pub fn said() -> String {
    vfs_core::last_error()
        .map(|e| e.message)
        .unwrap_or_default()
}

/// An empty in-memory store.
pub fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

/// The URI parameters of a group-commit connection queueing in `dir`.
pub fn async_params(dir: &Path) -> String {
    format!("&sync=async&queue={}", dir.display())
}

/// `PRAGMA object_flush`: the LSN reached.
pub fn flush(c: &Connection) -> rusqlite::Result<u64> {
    c.query_row("PRAGMA object_flush", [], |r| r.get::<_, String>(0))
        .map(|s| s.parse().unwrap())
}

/// Flushes until the uploader's answer is not a failed round that began
/// before the store was healed.
pub fn flush_settled(c: &Connection) -> rusqlite::Result<u64> {
    let mut last = flush(c);
    for _ in 0..20 {
        match &last {
            Err(_) if said().contains("not in the store yet") => last = flush(c),
            _ => break,
        }
    }
    last
}

/// A fault rule failing every PUT of a commit object (lease PUTs pass).
pub fn fail_log_puts() -> Rule {
    Rule::on(&[RequestKind::Put])
        .keys_containing("/log/")
        .always()
        .fail()
}
