//! # vfs-core
//!
//! Safe Rust traits for writing SQLite virtual file systems, and the small,
//! audited `unsafe` core that connects them to SQLite's C interface.
//!
//! * [`Vfs`] and [`File`]: what a backend implements, in safe Rust.
//! * [`FileName`] / [`FileNameBuf`]: file names as the bytes SQLite passes
//!   (UTF-8 or not), with `&str` and `Path` views.
//! * [`register`] / [`unregister`]: make a backend available as
//!   `?vfs=<name>`.
//! * [`Native`]: SQLite's platform VFS as a base for shims over real files.
//! * [`LockManager`]: SQLite's five lock levels for files shared in-process.
//! * [`ShmGroup`]: in-process WAL shared memory, one line to opt in.
//! * [`Mapping`]: file bytes lent to SQLite for memory-mapped reads
//!   ([`File::fetch`]).
//! * [`DynVfs`] / [`erase`]: the type-erased form for stacks chosen at run
//!   time.
//! * [`forward_vfs!`], [`forward_file!`], [`lock_via!`], [`no_lock!`]: the
//!   repetitive parts of a shim's or a backend's impls, in one line.
//! * [`PageLayers`] ([`Vfs::page_layers`]): the reserved bytes the page
//!   layers of a stack claim in every page, so layers compose by nesting
//!   and [`register`] refuses a stack that cannot work.
//! * [`db::Database`]: a minimal owned connection for helpers that must
//!   run SQL without depending on a Rust SQLite binding.
//! * [`hooks`]: safe code run on every new connection;
//!   [`extension`]: the entry point of a loadable extension.
//!
//! Built on it, in their own crates: the page-mapping layer of the
//! transforming shims (`vfs-page`) and `Wrap` with its recorders
//! (`vfs-observe`).
//!
//! The only `unsafe` code of the workspace lives in this crate, in these
//! modules: `dispatch` (the trampolines), `registry` (the C struct and
//! calls into SQLite's built-in VFSes), `native`, `mapping` (lent pages), `control` (file-control
//! arguments), `name` (`xOpen`'s name, its URI parameters, and the names
//! the native base owns), `filename` (the `[u8]`-to-`FileName` cast),
//! `shm` (region memory), `hooks`, `db` and `extension` (SQLite's
//! connection, SQL and extension APIs), `sqlite_string` (strings SQLite
//! frees), `simd` (the runtime CPU dispatch of vfs-cksm's kernel) and, with
//! the `test-support` feature only, `alloc_count` (a counting global
//! allocator) and `alloc_scan` (an allocator that holds freed blocks back
//! for tests to search). Everything else is safe code. Two lints hold every block to
//! the audit's rules: `clippy::undocumented_unsafe_blocks` (a `// SAFETY:`
//! comment argues why it is sound) and `clippy::multiple_unsafe_ops_per_block`
//! (one operation per block, so the argument is about that operation). See
//! `docs/architecture.md` and `docs/contract.md`.
//!
//! ```
//! use vfs_core::{AccessCheck, File, FileName, OpenName, OpenOptions, Result, SyncFlags, Vfs};
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
//!     fn delete(&self, _: &FileName, _: bool) -> Result<()> { Ok(()) }
//!     fn access(&self, _: &FileName, _: AccessCheck) -> Result<bool> { Ok(false) }
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

// The audit's rules, checked: every `unsafe` block says why it is sound,
// and says it about one operation.
#![deny(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

#[cfg(feature = "test-support")]
pub mod alloc_count;
#[cfg(all(feature = "test-support", target_os = "linux"))]
pub mod alloc_scan;
mod control;
pub mod db;
mod dispatch;
mod erased;
mod error;
pub mod extension;
mod filename;
mod forward;
pub mod hooks;
mod lock;
mod mapping;
mod name;
mod native;
mod page_layers;
mod plain_bytes;
mod registry;
pub mod shm;
mod shm_slots;
mod shortcut;
// An internal kernel of vfs-cksm, not API: it lives here only because its
// runtime CPU dispatch needs `unsafe` (see docs/architecture.md).
#[doc(hidden)]
pub mod simd;
mod sqlite_string;
mod traits;
mod types;

pub use control::{Control, FileControl, Pragma, fcntl};
pub use dispatch::{LastError, clear_last_error, last_error, log};
pub use erased::{DynVfs, erase};
pub use error::{Error, Op, Result, code_name, codes};
pub use filename::{FileName, FileNameBuf};
pub use lock::{FileLock, LockManager};
pub use mapping::Mapping;
pub use name::OpenName;
pub use native::{Native, NativeFile};
pub use page_layers::{MAX_RESERVE, MIN_USABLE_SIZE, PageLayer, PageLayers};
pub use plain_bytes::PlainBytes;
pub use registry::{
    RegisterOptions, Registration, find, open_files, register, register_with, unregister,
};
pub use shm::{ShmConnection, ShmGroup, ShmLockOp, ShmRegion};
pub use shortcut::AccessShortcut;
pub use traits::{File, ResolvedPath, ShmSupport, Vfs};
pub use types::{
    AccessCheck, DeviceCharacteristics, FileKind, LockLevel, OpenAccess, OpenOptions, SyncFlags,
    parse_bool,
};

/// The README's Rust examples, compiled and run as doctests so they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
