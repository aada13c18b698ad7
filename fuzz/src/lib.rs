//! Shared pieces of the fuzz targets.
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use vfs_core::Vfs;
use vfs_embed::{Embed, EmbedSlot, Source};

/// A read-only base whose image is replaced for every fuzz input, so the
/// targets register once (a registration keeps a few hundred bytes for the
/// life of the process by design, which LeakSanitizer would report per
/// input).
pub struct Swappable(EmbedSlot);

impl Swappable {
    /// Serves `bytes` as `main.db` from now on, without the header check
    /// (the layers above must cope with any bytes).
    pub fn serve(&self, bytes: &[u8]) {
        self.0
            .install(Embed::new(Source::from_bytes(bytes.to_vec())).check_header(false));
    }
}

/// Registers `make(slot)` once under `name` and returns the swappable base.
pub fn registered<V: Vfs>(name: &str, make: impl FnOnce(EmbedSlot) -> V) -> &'static Swappable {
    // Kept (not leaked) for the life of the fuzzing process.
    static BASE: OnceLock<(Swappable, vfs_core::Registration)> = OnceLock::new();
    &BASE
        .get_or_init(|| {
            let slot = EmbedSlot::new();
            let reg =
                vfs_core::register(name, make(slot.clone()), false).expect("register the fuzz VFS");
            (Swappable(slot), reg)
        })
        .0
}
