//! The suite on vfs-mvcc: snapshot-isolation reads, no WAL (its readers
//! never wait for the writer without it).

use vfs_conformance::{Backend, Capabilities, Location, conformance_suite};
use vfs_mvcc::Mvcc;

conformance_suite!(mvcc, |case: &str| {
    Backend::register(
        &format!("mvcc-{case}"),
        Mvcc::new(),
        Capabilities {
            wal: false,
            durable: false,
            snapshot_reads: true,
            ..Capabilities::full()
        },
    )
    .at(Location::Prefix("/conf".into()))
});
