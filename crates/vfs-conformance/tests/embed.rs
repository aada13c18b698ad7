//! The read-only subset of the suite on vfs-embed: the image the harness
//! installs is served from memory by an `Embed` VFS built at install time.

use std::sync::Arc;

use vfs_conformance::{Backend, Capabilities, Location, conformance_suite};
use vfs_embed::{Embed, EmbedSlot, FileSet, Source};

conformance_suite!(embed, |case: &str| {
    // The harness registers first and installs the image afterwards.
    let slot = EmbedSlot::new();
    let installer = slot.clone();
    Backend::register(&format!("embed-{case}"), slot, Capabilities::read_only())
        .at(Location::Prefix("/conf".into()))
        .installer(Arc::new(move |path: &str, bytes: &[u8]| {
            let set = FileSet::new().with(path, Source::from_bytes(bytes.to_vec()));
            installer.install(Embed::new(set));
            Ok(())
        }))
});
