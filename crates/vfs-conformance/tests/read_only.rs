//! The suite on a read-only backend: the native base with databases put in
//! place by an installer and opened read-only. Every writing case skips;
//! `read_only_queries` runs. (This is how a read-only backend such as
//! vfs-embed instantiates the suite.)

use std::sync::Arc;

use vfs_conformance::{Backend, Capabilities, conformance_suite};
use vfs_core::Native;

conformance_suite!(read_only_native, |case: &str| {
    Backend::register(
        &format!("ro-native-{case}"),
        Native::new().expect("native VFS"),
        Capabilities::read_only(),
    )
    .installer(Arc::new(|path: &str, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|e| e.to_string())
    }))
});
