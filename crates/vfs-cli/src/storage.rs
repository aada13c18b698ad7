//! The storage the commands work on: what they do to files besides what
//! SQLite does through a VFS (read raw bytes, sync a file, rename, sync a
//! directory, remove).
//!
//! Every step of a crash-safe replacement (`rekey`, an output written with
//! `--force`) goes through this trait, so the same code runs on the real
//! file system ([`Disk`]) and, in the tests, on the fault layer's power-cut
//! model (`vfs_fault::Fault` over its in-memory disk), where a power cut
//! is injected before every one of its durability operations.
//!
//! Paths are absolute, `/`-separated and UTF-8 (SQLite hands names to Rust
//! VFSes as UTF-8).

use std::fs;
use std::io::{Read, Seek, SeekFrom};

use vfs_core::Native;

use crate::error::{CliError, Context, Result};
use crate::stack::{Registered, StackSpec, register_over};

/// File operations outside SQLite, and the VFS stacks SQLite uses, over one
/// storage.
pub trait Storage {
    /// Registers a VFS for `spec` over this storage's base.
    fn register(&self, spec: &StackSpec) -> Result<Registered>;
    /// The size of the file at `path`, or `None` if there is none.
    fn size(&self, path: &str) -> Result<Option<u64>>;
    /// Up to `len` bytes of `path` from `offset` (fewer at the end).
    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>>;
    /// Removes `path` if it exists (the directory entry's removal is
    /// durable after [`sync_dir`](Storage::sync_dir)).
    fn remove(&self, path: &str) -> Result<()>;
    /// Makes the data of `path` durable (`fsync`).
    fn sync_file(&self, path: &str) -> Result<()>;
    /// Renames `from` to `to`, replacing `to` atomically (durable after
    /// [`sync_dir`](Storage::sync_dir)).
    fn rename(&self, from: &str, to: &str) -> Result<()>;
    /// Makes the entries of directory `dir` durable (`fsync` of the
    /// directory).
    fn sync_dir(&self, dir: &str) -> Result<()>;
}

/// The directory of an absolute path (`""` for a file in `/`).
pub fn dir_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The real file system, with SQLite's own `unix` VFS as the base.
#[derive(Debug, Default, Clone, Copy)]
pub struct Disk;

impl Storage for Disk {
    fn register(&self, spec: &StackSpec) -> Result<Registered> {
        let native = Native::new().context(|| "SQLite's native VFS".into())?;
        register_over(native, spec)
    }

    fn size(&self, path: &str) -> Result<Option<u64>> {
        match fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Err(CliError::new(format!("{path}: not a regular file"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context(|| path.into()),
        }
    }

    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut f = fs::File::open(path).context(|| format!("opening {path}"))?;
        f.seek(SeekFrom::Start(offset))
            .context(|| format!("reading {path}"))?;
        let mut buf = Vec::with_capacity(len);
        f.take(len as u64)
            .read_to_end(&mut buf)
            .context(|| format!("reading {path}"))?;
        Ok(buf)
    }

    fn remove(&self, path: &str) -> Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context(|| format!("removing {path}"))
            }
            _ => Ok(()),
        }
    }

    fn sync_file(&self, path: &str) -> Result<()> {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .and_then(|f| f.sync_all())
            .context(|| format!("syncing {path}"))
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        fs::rename(from, to).context(|| format!("renaming {from} to {to}"))
    }

    fn sync_dir(&self, dir: &str) -> Result<()> {
        let dir = if dir.is_empty() { "/" } else { dir };
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .context(|| format!("syncing directory {dir}"))
    }
}

/// The absolute, symlink-free, UTF-8 form of a command-line path: the file
/// itself when it exists (so a replacement lands on the real file, not on
/// a symbolic link to it), its canonical directory otherwise.
pub fn resolve(path: &std::path::Path) -> Result<String> {
    let resolved = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(_) => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => std::path::Path::new("."),
            };
            let name = path
                .file_name()
                .ok_or_else(|| CliError::new(format!("{}: not a file name", path.display())))?;
            fs::canonicalize(parent)
                .context(|| format!("{}: its directory", path.display()))?
                .join(name)
        }
    };
    resolved.into_os_string().into_string().map_err(|p| {
        CliError::new(format!(
            "{}: the path is not valid UTF-8, which SQLite's Rust VFSes cannot open",
            p.to_string_lossy()
        ))
    })
}
