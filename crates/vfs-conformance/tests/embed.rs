//! The read-only subset of the suite on vfs-embed: the image the harness
//! installs is served from memory by an `Embed` VFS built at install time.

use std::sync::{Arc, Mutex};

use vfs_conformance::{Backend, Capabilities, Location, conformance_suite};
use vfs_core::{AccessCheck, Error, OpenName, OpenOptions, Result, Vfs};
use vfs_embed::{Embed, FileSet, Source};

/// An `Embed` whose file set arrives after registration (the harness
/// registers first, then installs the image).
#[derive(Clone, Default)]
struct LateEmbed(Arc<Mutex<Option<Embed>>>);

impl LateEmbed {
    fn current(&self) -> Result<Embed> {
        self.0
            .lock()
            .map_err(|_| Error::io("poisoned"))?
            .clone()
            .ok_or_else(|| Error::cant_open("nothing installed yet"))
    }
}

impl Vfs for LateEmbed {
    type File = <Embed as Vfs>::File;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.current()?.open(name, opts)
    }
    fn delete(&self, path: &str, sync_dir: bool) -> Result<()> {
        self.current()?.delete(path, sync_dir)
    }
    fn access(&self, path: &str, check: AccessCheck) -> Result<bool> {
        match self.current() {
            Ok(e) => e.access(path, check),
            Err(_) => Ok(false),
        }
    }
}

conformance_suite!(embed, |case: &str| {
    let late = LateEmbed::default();
    let slot = late.clone();
    Backend::register(&format!("embed-{case}"), late, Capabilities::read_only())
        .at(Location::Prefix("/conf".into()))
        .installer(Arc::new(move |path: &str, bytes: &[u8]| {
            let set = FileSet::new().with(path, Source::from_bytes(bytes.to_vec()));
            *slot.0.lock().map_err(|e| e.to_string())? = Some(Embed::new(set));
            Ok(())
        }))
});
