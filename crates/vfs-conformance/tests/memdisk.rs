//! The conformance suite and the crash sweeps over the fault crate's
//! in-memory disk: the harness itself on an in-memory backend (names under
//! a `/` prefix), and the power-cut model over a base with no durability
//! of its own.

use vfs_conformance::vfs_fault::{Fault, MemDisk};
use vfs_conformance::{Backend, Capabilities, Location, conformance_suite, crash_suite, unique};

conformance_suite!(memdisk, |case: &str| {
    Backend::register(
        &format!("memdisk-{case}"),
        MemDisk::new(),
        Capabilities::full(),
    )
    .at(Location::Prefix(format!("/{}", unique("memdisk"))))
});

crash_suite!(
    memdisk_crash,
    "memdisk",
    || {
        let fault = Fault::new(MemDisk::new());
        let ctl = fault.controller();
        (fault, ctl)
    },
    Location::Prefix("/crash".into())
);
