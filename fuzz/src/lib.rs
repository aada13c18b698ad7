//! Shared pieces of the fuzz targets.
#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex, OnceLock};

use vfs_core::{AccessCheck, Error, OpenName, OpenOptions, Result, Vfs};
use vfs_embed::{Embed, Source};

/// A read-only VFS whose image is replaced for every fuzz input, so the
/// targets register once (a registration keeps a few hundred bytes for the
/// life of the process by design, which LeakSanitizer would report per
/// input).
#[derive(Clone, Default)]
pub struct Swappable(Arc<Mutex<Option<Embed>>>);

impl Swappable {
    /// Serves `bytes` as `main.db` from now on.
    pub fn serve(&self, bytes: &[u8]) {
        let embed = Embed::new(Source::from_bytes(bytes.to_vec())).check_header(false);
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(embed);
        }
    }

    fn current(&self) -> Result<Embed> {
        self.0
            .lock()
            .map_err(|_| Error::io("poisoned"))?
            .clone()
            .ok_or_else(|| Error::cant_open("no image yet"))
    }
}

impl Vfs for Swappable {
    type File = <Embed as Vfs>::File;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.current()?.open(name, opts)
    }
    fn delete(&self, path: &str, sync_dir: bool) -> Result<()> {
        self.current()?.delete(path, sync_dir)
    }
    fn access(&self, path: &str, check: AccessCheck) -> Result<bool> {
        self.current().map_or(Ok(false), |e| e.access(path, check))
    }
}

/// Registers `make(base)` once under `name` and returns the swappable base.
pub fn registered<V: Vfs>(name: &str, make: impl FnOnce(Swappable) -> V) -> &'static Swappable {
    // Kept (not leaked) for the life of the fuzzing process.
    static BASE: OnceLock<(Swappable, vfs_core::Registration)> = OnceLock::new();
    &BASE
        .get_or_init(|| {
            let base = Swappable::default();
            let reg =
                vfs_core::register(name, make(base.clone()), false).expect("register the fuzz VFS");
            (base, reg)
        })
        .0
}
