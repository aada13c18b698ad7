//! The VFSes the extension registers, one line each.
//!
//! This file is shared, through `#[path]`, by the extension and by the
//! interop checker (`interop/`), so a database written through the
//! extension in a host and one written by the Rust crates use exactly the
//! same stacks under the same names.

use vfs_cksm::{Cksm, Mode};
use std::sync::Arc;

use vfs_core::{Error, Native, Registration, Result, Vfs, codes};
use vfs_observe::{StatsRecorder, Wrap};
use vfs_crypto::Crypto;
use vfs_memdb::MemDb;
use vfs_mvcc::Mvcc;

/// Registers every VFS of the extension with `reg`.
///
/// Names are documented in `docs/extension.md`; keep the two in step. No
/// name may be one SQLite registers itself (`memdb`, `unix`, `unix-*`), or
/// the registration fails.
pub fn register_all(reg: &mut Registrar) -> Result<()> {
    // The platform VFS through vfs-core: real files, SQLite's own format.
    reg.add("native", Native::new())?;
    // In memory, shared by every connection of the process for names that
    // start with `/`, private otherwise (vfs-memdb).
    reg.add("mem", Ok(MemDb::new()))?;
    // In memory with snapshot-isolation readers (vfs-mvcc).
    reg.add("mvcc", Ok(Mvcc::new()))?;
    // The platform VFS observed by vfs-core's Wrap with a stats recorder
    // (every operation counted; SQLite's test programs run through it).
    reg.add(
        "wrap",
        Native::new().map(|n| Wrap::new(n, Arc::new(StatsRecorder::new()))),
    )?;
    // Page checksums in SQLite's cksumvfs format, on disk and in memory
    // (vfs-cksm; new databases get the reserve from its connection hook).
    reg.add("cksm", Native::new().map(Cksm::new))?;
    reg.add("cksm-mem", Ok(Cksm::new(MemDb::new())))?;
    // Page checksums in the CRC-32 format (12-byte trailer), on disk.
    reg.add(
        "cksm-crc32",
        Native::new().map(|n| Cksm::with_mode(n, Mode::Crc32)),
    )?;
    // Encryption (vfs-crypto), keys from each database's URI (`hexkey=` or
    // `key=`): on disk, over cksm on disk (the documented stack: checksums
    // cover the ciphertext), and in memory.
    reg.add("crypto", Native::new().map(Crypto::keyless))?;
    reg.add(
        "crypto-cksm",
        Native::new().map(|n| Crypto::keyless(Cksm::new(n))),
    )?;
    reg.add("crypto-mem", Ok(Crypto::keyless(MemDb::new())))?;
    Ok(())
}

/// Registers VFSes one by one and takes them all back if the whole set
/// does not complete (an error, a panic, an unknown default name): a host
/// unloads an extension whose initialisation failed, and no VFS may point
/// into unloaded code.
#[derive(Debug)]
pub struct Registrar {
    default: Option<String>,
    registered: Vec<Registration>,
    default_found: bool,
}

impl Registrar {
    /// `default`: the name to make SQLite's default VFS, if any.
    pub fn new(default: Option<String>) -> Registrar {
        Registrar {
            default,
            registered: Vec::new(),
            default_found: false,
        }
    }

    /// Registers `vfs` (or reports the error that building it gave) as
    /// `name`.
    pub fn add<V: Vfs>(&mut self, name: &str, vfs: Result<V>) -> Result<()> {
        let make_default = self.default.as_deref() == Some(name);
        let vfs = vfs.map_err(|e| e.context(format!("building VFS {name:?}")))?;
        let registration = vfs_core::register(name, vfs, make_default)
            .map_err(|e| e.context(format!("registering VFS {name:?}")))?;
        self.registered.push(registration);
        self.default_found |= make_default;
        Ok(())
    }

    /// The names registered so far, in order.
    pub fn names(&self) -> Vec<&str> {
        self.registered.iter().map(Registration::name).collect()
    }

    /// Keeps every registration for the life of the process. Fails (and
    /// takes them back) when the default name matched none of them.
    pub fn finish(mut self) -> Result<Vec<String>> {
        if let Some(default) = &self.default
            && !self.default_found
        {
            return Err(Error::new(
                codes::SQLITE_ERROR,
                format!(
                    "{DEFAULT_ENV}={default:?} names no VFS of this extension; known: {}",
                    self.names().join(", ")
                ),
            ));
        }
        Ok(std::mem::take(&mut self.registered)
            .into_iter()
            .map(|r| r.name().to_owned())
            .collect())
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        // Nothing is open yet on a VFS registered a moment ago, so
        // unregistering cannot be refused; ignore the impossible error.
        for registration in self.registered.drain(..).rev() {
            let _ = registration.unregister();
        }
    }
}

/// The environment variable that names the stack to make the host's
/// default VFS at load time.
pub const DEFAULT_ENV: &str = "VFSEXT_DEFAULT";
