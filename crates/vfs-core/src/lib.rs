//! # vfs-core
//!
//! Safe Rust traits for writing SQLite virtual file systems, and the small,
//! audited `unsafe` core that connects them to SQLite's C interface.
//!
//! * [`Vfs`] and [`File`]: what a backend implements, in safe Rust.
//! * [`register`] / [`unregister`]: make a backend available as
//!   `?vfs=<name>`.
//! * [`Native`]: SQLite's platform VFS as a base for shims over real files.
//! * [`LockManager`]: SQLite's five lock levels for files shared in-process.
//! * [`ShmGroup`]: in-process WAL shared memory, one line to opt in.
//! * [`DynVfs`]: the type-erased form for stacks chosen at run time.
//! * [`db::Database`]: a minimal owned connection for helpers that must
//!   run SQL without depending on a Rust SQLite binding.
//! * [`Wrap`] and [`Recorder`]: observe every operation of any VFS
//!   ([`StatsRecorder`], [`TracingRecorder`]); see `docs/observability.md`.
//!
//! The only `unsafe` code of the workspace lives in this crate (`dispatch`,
//! `registry`, `native`, `control`, `name`, `shm`, `hooks`, `db`, `extension`), each block with a
//! `// SAFETY:` comment. See `docs/architecture.md` and `docs/contract.md`.
//!
//! ```
//! use vfs_core::{AccessCheck, File, OpenName, OpenOptions, Result, SyncFlags, Vfs};
//!
//! /// A VFS whose every file is a private in-memory vector.
//! struct Scratch;
//! struct ScratchFile(Vec<u8>);
//!
//! impl Vfs for Scratch {
//!     type File = ScratchFile;
//!     fn open(&self, _: &OpenName<'_>, _: OpenOptions) -> Result<ScratchFile> {
//!         Ok(ScratchFile(Vec::new()))
//!     }
//!     fn delete(&self, _: &str, _: bool) -> Result<()> { Ok(()) }
//!     fn access(&self, _: &str, _: AccessCheck) -> Result<bool> { Ok(false) }
//! }
//!
//! impl File for ScratchFile {
//!     vfs_core::no_lock!(); // one explicit line: single-connection use only
//!     fn read_at(&mut self, buf: &mut [u8], off: u64) -> Result<usize> {
//!         let start = (off as usize).min(self.0.len());
//!         let n = buf.len().min(self.0.len() - start);
//!         buf[..n].copy_from_slice(&self.0[start..start + n]);
//!         Ok(n)
//!     }
//!     fn write_at(&mut self, buf: &[u8], off: u64) -> Result<()> {
//!         let end = off as usize + buf.len();
//!         if self.0.len() < end { self.0.resize(end, 0) }
//!         self.0[off as usize..end].copy_from_slice(buf);
//!         Ok(())
//!     }
//!     fn truncate(&mut self, n: u64) -> Result<()> { self.0.truncate(n as usize); Ok(()) }
//!     fn sync(&mut self, _: SyncFlags) -> Result<()> { Ok(()) }
//!     fn size(&mut self) -> Result<u64> { Ok(self.0.len() as u64) }
//! }
//!
//! let reg = vfs_core::register("scratch-doc", Scratch, false).unwrap();
//! let conn = rusqlite::Connection::open("file:x.db?vfs=scratch-doc").unwrap();
//! conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('hi');").unwrap();
//! let v: String = conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
//! assert_eq!(v, "hi");
//! drop(conn);
//! reg.unregister().unwrap();
//! ```

pub mod alloc_count;
mod control;
pub mod db;
mod dispatch;
mod erased;
mod error;
pub mod extension;
pub mod hooks;
mod lock;
mod name;
mod native;
pub mod page;
mod recorder;
mod registry;
pub mod shm;
pub mod simd;
mod traits;
mod types;
mod wrap;

pub use control::{Control, FileControl, Pragma};
pub use dispatch::{LastError, clear_last_error, last_error, log};
pub use erased::DynVfs;
pub use error::{Error, Op, Result, code_name, codes};
pub use lock::{FileLock, LockManager};
pub use name::OpenName;
pub use native::{Native, NativeFile};
pub use recorder::{
    Event, KindStats, Latency, LatencyMode, OpStats, Recorder, Stats, StatsRecorder,
    TRACING_TARGET, TracingRecorder,
};
pub use registry::{
    RegisterOptions, Registration, find, open_files, register, register_with, unregister,
};
pub use shm::{ShmConnection, ShmGroup, ShmLockOp, ShmRegion};
pub use traits::{File, ResolvedPath, ShmSupport, Vfs};
pub use types::{
    AccessCheck, DeviceCharacteristics, FileKind, LockLevel, OpenAccess, OpenOptions, SyncFlags,
};
pub use wrap::{Wrap, WrapFile, register_observed};

/// The README's Rust examples, compiled and run as doctests so they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
