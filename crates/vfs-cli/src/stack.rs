//! Which layers a database file is stored with, and registering the VFS
//! stack that reads and writes it over a base (the disk, or a test's
//! simulated one).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use vfs_cksm::{Cksm, Mode};
use vfs_core::{Registration, Vfs};
use vfs_crypto::{Crypto, CryptoOptions, KdfParams, SLICE};
use vfs_observe::{Recorder, register_observed};

use crate::error::{Context, Result};

/// The page layers of a database file, from the top: encryption (if any),
/// then checksums (if any), then the storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Layers {
    /// Encrypted (`vfs-crypto`).
    pub encrypted: bool,
    /// Checksummed (`vfs-cksm`), and in which format.
    pub checksums: Option<Mode>,
}

impl Layers {
    /// No page layer: a plain SQLite file.
    pub const PLAIN: Layers = Layers {
        encrypted: false,
        checksums: None,
    };

    /// The reserved bytes per page these layers need.
    pub fn reserve(self) -> usize {
        let crypto = if self.encrypted { SLICE } else { 0 };
        crypto + self.checksums.map_or(0, Mode::trailer_len)
    }
}

impl fmt::Display for Layers {
    /// `plain`, `cksumvfs`, `crc32`, `encrypted`, `encrypted over cksumvfs`, …
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.encrypted, self.checksums) {
            (false, None) => f.write_str("plain"),
            (false, Some(m)) => f.write_str(m.name()),
            (true, None) => f.write_str("encrypted"),
            (true, Some(m)) => write!(f, "encrypted over {}", m.name()),
        }
    }
}

/// A checksum choice on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumChoice {
    /// The same as the input.
    Keep,
    /// No checksums.
    None,
    /// SQLite's cksumvfs format (8-byte trailer; stock cksumvfs reads it).
    Cksumvfs,
    /// CRC-32 with the page number (12-byte trailer; also detects misplaced
    /// pages).
    Crc32,
}

impl ChecksumChoice {
    /// The checksum layer to write, given the input's.
    pub fn resolve(self, input: Option<Mode>) -> Option<Mode> {
        match self {
            ChecksumChoice::Keep => input,
            ChecksumChoice::None => None,
            ChecksumChoice::Cksumvfs => Some(Mode::Cksumvfs),
            ChecksumChoice::Crc32 => Some(Mode::Crc32),
        }
    }
}

/// What to register: the layers, the Argon2id cost of new passphrase
/// databases, and an optional recorder on top (statistics, progress).
#[derive(Clone)]
pub struct StackSpec {
    /// The layers.
    pub layers: Layers,
    /// Argon2id cost for a new passphrase database written through it.
    pub kdf: KdfParams,
    /// A recorder over the whole stack (what SQLite asks for) …
    pub recorder: Option<Arc<dyn Recorder>>,
    /// … or directly over the base (what reaches the storage).
    pub recorder_at_base: bool,
}

impl StackSpec {
    /// The layers with default settings and no recorder.
    pub fn new(layers: Layers) -> StackSpec {
        StackSpec {
            layers,
            kdf: KdfParams::DEFAULT,
            recorder: None,
            recorder_at_base: false,
        }
    }

    /// The same with a recorder over the stack.
    pub fn observed(mut self, recorder: Arc<dyn Recorder>) -> StackSpec {
        self.recorder = Some(recorder);
        self
    }
}

/// A fresh VFS name for this process.
pub fn fresh_name(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "sqlite-vfs-{}-{}-{what}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A registered VFS, unregistered when dropped (close its connections
/// first).
pub struct Registered {
    name: String,
    registration: Option<Registration>,
}

impl Registered {
    /// The name to use in `?vfs=`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(r) = self.registration.take() {
            // Still in use (a connection leaked): keep it registered rather
            // than free what SQLite points to.
            if let Err((r, _)) = r.unregister() {
                std::mem::forget(r);
            }
        }
    }
}

/// Registers `spec` over `base` under a fresh name.
pub fn register_over<B: Vfs>(base: B, spec: &StackSpec) -> Result<Registered> {
    let name = fresh_name(&spec.layers.to_string().replace(' ', "-"));
    let (top, bottom) = if spec.recorder_at_base {
        (None, spec.recorder.clone())
    } else {
        (spec.recorder.clone(), None)
    };
    let registration = match bottom {
        Some(r) => layered(&name, vfs_observe::Wrap::new(base, r), spec, top),
        None => layered(&name, base, spec, top),
    }
    .context(|| format!("registering the VFS stack for a {} database", spec.layers))?;
    Ok(Registered {
        name,
        registration: Some(registration),
    })
}

fn layered<B: Vfs>(
    name: &str,
    base: B,
    spec: &StackSpec,
    top: Option<Arc<dyn Recorder>>,
) -> vfs_core::Result<Registration> {
    let crypto = CryptoOptions {
        kdf: spec.kdf,
        ..CryptoOptions::default()
    };
    match (spec.layers.encrypted, spec.layers.checksums) {
        (false, None) => register_observed(name, base, top, false),
        (false, Some(mode)) => register_observed(name, Cksm::with_mode(base, mode), top, false),
        (true, None) => register_observed(name, Crypto::with_options(base, crypto), top, false),
        (true, Some(mode)) => register_observed(
            name,
            Crypto::with_options(Cksm::with_mode(base, mode), crypto),
            top,
            false,
        ),
    }
}
