//! The conformance suite and the crash sweeps over the native base
//! (SQLite's `unix` VFS as a Rust base), files in a temporary directory.

use vfs_conformance::vfs_fault::Fault;
use vfs_conformance::{Backend, Capabilities, Location, conformance_suite, crash_suite};
use vfs_core::Native;

conformance_suite!(native, |case: &str| {
    Backend::register(
        &format!("native-{case}"),
        Native::new().expect("native VFS"),
        Capabilities::full(),
    )
});

crash_suite!(
    native_crash,
    "native",
    || {
        let fault = Fault::new(Native::new().expect("native VFS"));
        let ctl = fault.controller();
        (fault, ctl)
    },
    Location::RamTempDir
);
