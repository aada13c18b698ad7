//! The conformance suite on vfs-object over `object_store`'s `InMemory`:
//! snapshot-isolation reads, WAL refused (as vfs-mvcc), persistent for as
//! long as the store lives; and Wrap over it.

use std::sync::Arc;

use object_store::memory::InMemory;
use vfs_conformance::{Backend, Capabilities, Location, conformance_suite};
use vfs_object::{ObjectOptions, ObjectVfs};

fn caps() -> Capabilities {
    Capabilities {
        wal: false,
        durable: false,
        snapshot_reads: true,
        ..Capabilities::full()
    }
}

fn object() -> ObjectVfs {
    ObjectVfs::new(Arc::new(InMemory::new()), "conf", ObjectOptions::default()).expect("object VFS")
}

conformance_suite!(object_memory, |case: &str| {
    Backend::register(&format!("object-{case}"), object(), caps())
        .at(Location::Prefix("/conf".into()))
});

conformance_suite!(wrap_object_memory, |case: &str| {
    Backend::register(
        &format!("wrap-object-{case}"),
        vfs_core::Wrap::new(object(), Arc::new(vfs_core::StatsRecorder::new())),
        caps(),
    )
    .at(Location::Prefix("/conf".into()))
});
