//! The conformance suite on vfs-object over `object_store`'s `InMemory`:
//! snapshot-isolation reads, WAL refused (as vfs-mvcc), persistent for as
//! long as the store lives; Wrap over it, and vfs-crypto over it.

use std::sync::Arc;

use object_store::memory::InMemory;
use vfs_conformance::{Backend, Capabilities, Location, conformance_suite};
use vfs_object::{ObjectOptions, ObjectVfs};

fn caps() -> Capabilities {
    Capabilities {
        wal: false,
        durable: false,
        snapshot_reads: true,
        // Object keys are UTF-8 text.
        byte_names: false,
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
        vfs_observe::Wrap::new(object(), Arc::new(vfs_observe::StatsRecorder::new())),
        caps(),
    )
    .at(Location::Prefix("/conf".into()))
});

conformance_suite!(crypto_object_memory, |case: &str| {
    Backend::register(
        &format!("crypto-object-{case}"),
        vfs_crypto::Crypto::new(object(), vfs_crypto::Key::generate()),
        Capabilities {
            page_size_change: false,
            reserve: Some(vfs_crypto::RESERVE as u8),
            page_sizes: vec![1024, 2048, 4096, 8192, 16384, 32768, 65536],
            ..caps()
        },
    )
    .at(Location::Prefix("/conf".into()))
});

/// Group commit: every commit goes through a local queue and is uploaded
/// in the background; the suite reads through the process's head.
fn object_async(case: &str) -> ObjectVfs {
    let queue = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("conformance-queue-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&queue);
    ObjectVfs::new(
        Arc::new(InMemory::new()),
        "conf",
        ObjectOptions {
            sync: vfs_object::SyncMode::Async,
            queue_dir: Some(queue),
            ..ObjectOptions::default()
        },
    )
    .expect("object VFS")
}

conformance_suite!(object_memory_async, |case: &str| {
    Backend::register(&format!("object-async-{case}"), object_async(case), caps())
        .at(Location::Prefix("/conf".into()))
});
