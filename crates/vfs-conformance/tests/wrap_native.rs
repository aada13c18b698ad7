//! The conformance suite over `Wrap` (the observing shim) over the native
//! base, and the crash sweeps over `Wrap` over the fault layer over the
//! native base.

use std::sync::Arc;

use vfs_conformance::vfs_fault::Fault;
use vfs_conformance::{Backend, Capabilities, Location, conformance_suite, crash_suite};
use vfs_core::Native;
use vfs_observe::{StatsRecorder, Wrap};

conformance_suite!(wrap_native, |case: &str| {
    let stats = Arc::new(StatsRecorder::new());
    Backend::register(
        &format!("wrap-native-{case}"),
        Wrap::new(Native::new().expect("native VFS"), stats.clone()),
        Capabilities::full(),
    )
    .keep(stats)
});

crash_suite!(
    wrap_native_crash,
    "wrap(native)",
    || {
        let fault = Fault::new(Native::new().expect("native VFS"));
        let ctl = fault.controller();
        (Wrap::new(fault, Arc::new(StatsRecorder::new())), ctl)
    },
    Location::RamTempDir
);
