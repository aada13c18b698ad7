//! The suite on vfs-cksm over memdb and over the native base, and the crash
//! sweeps on cksm over the native base (the fault layer at the bottom).

use vfs_cksm::Cksm;
use vfs_conformance::vfs_fault::Fault;
use vfs_conformance::{Backend, Capabilities, Location, conformance_suite, crash_suite};
use vfs_core::Native;
use vfs_memdb::MemDb;

/// Everything: cksm follows `VACUUM` to another page size.
fn cksm_caps(durable: bool) -> Capabilities {
    Capabilities {
        durable,
        ..Capabilities::full()
    }
}

conformance_suite!(cksm_memdb, |case: &str| {
    Backend::register(
        &format!("cksm-memdb-{case}"),
        Cksm::new(MemDb::new()),
        cksm_caps(false),
    )
    .at(Location::Prefix("/conf".into()))
});

conformance_suite!(cksm_native, |case: &str| {
    Backend::register(
        &format!("cksm-native-{case}"),
        Cksm::new(Native::new().expect("native VFS")),
        cksm_caps(true),
    )
});

crash_suite!(
    cksm_native_crash,
    "cksm(native)",
    || {
        let fault = Fault::new(Native::new().expect("native VFS"));
        let ctl = fault.controller();
        (Cksm::new(fault), ctl)
    },
    Location::RamTempDir
);
