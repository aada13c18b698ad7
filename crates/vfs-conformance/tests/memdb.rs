//! The suite on vfs-memdb (shared `/names`), and on Wrap with a stats
//! recorder over it.

use std::sync::Arc;

use vfs_conformance::{Backend, Capabilities, Location, conformance_suite};
use vfs_memdb::MemDb;
use vfs_observe::{StatsRecorder, Wrap};

/// In memory: nothing to crash-test (no durability to model).
fn memory_caps() -> Capabilities {
    Capabilities {
        durable: false,
        ..Capabilities::full()
    }
}

conformance_suite!(memdb, |case: &str| {
    Backend::register(&format!("memdb-{case}"), MemDb::new(), memory_caps())
        .at(Location::Prefix("/conf".into()))
});

conformance_suite!(wrap_memdb, |case: &str| {
    let stats = Arc::new(StatsRecorder::new());
    Backend::register(
        &format!("wrap-memdb-{case}"),
        Wrap::new(MemDb::new(), stats),
        memory_caps(),
    )
    .at(Location::Prefix("/conf".into()))
});
