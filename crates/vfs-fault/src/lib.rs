//! # vfs-fault
//!
//! A fault-injection shim for SQLite VFSes: wrap any base ([`Native`], an
//! in-memory backend, a stack of shims) in [`Fault`], register it, and steer
//! it from a test through its [`FaultController`]:
//!
//! * **fail** the *n*th operation of chosen kinds (`read`, `write`, `sync`,
//!   `truncate`, `file_size`, `lock`, `open`, `delete`, …), optionally only
//!   on one [`FileKind`] or path, with a chosen code (a plain I/O error that
//!   becomes the operation's own `SQLITE_IOERR_*`, or any explicit code such
//!   as `SQLITE_FULL` or `SQLITE_BUSY`), once or persistently
//!   ([`Rule::fail`]);
//! * **tear** a write: only a prefix reaches the base, then the write reports
//!   success or failure ([`Rule::tear`]);
//! * **cut the power** at the *n*th operation or right now: every change not
//!   yet synced is dropped, the machine is off until
//!   [`FaultController::restart`] ([`Rule::power_cut`],
//!   [`FaultController::cut_power_at`], [`FaultController::cut_power_now`]);
//! * **count** operations, so a test can run a workload once, read
//!   [`FaultController::count`], then sweep a fault over every operation.
//!
//! [`MemDisk`] is a small in-memory base for running all of this without a
//! disk, and [`fuzz::run_ops`] drives the layer from arbitrary bytes (for a
//! `cargo fuzz` target).
//!
//! ```
//! use vfs_core::{Native, register};
//! use vfs_fault::{Fault, OpSet};
//!
//! let fault = Fault::new(Native::new().unwrap());
//! let ctl = fault.controller();
//! let reg = register("fault-crate-doc", fault, false).unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let uri = format!("file:{}?vfs=fault-crate-doc", dir.path().join("a.db").display());
//!
//! let conn = rusqlite::Connection::open(&uri).unwrap();
//! conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t(x);").unwrap();
//! conn.execute("INSERT INTO t VALUES (1)", []).unwrap();      // committed and synced
//! let before = ctl.count(OpSet::DURABILITY);
//! conn.execute_batch("BEGIN; INSERT INTO t VALUES (2);").unwrap();
//! ctl.cut_power_now();                                        // before COMMIT
//! assert!(conn.execute_batch("COMMIT").is_err());              // the machine is off
//! drop(conn);
//! ctl.restart().unwrap();
//!
//! let conn = rusqlite::Connection::open(&uri).unwrap();
//! let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
//! assert_eq!(n, 1);
//! # assert!(before > 0);
//! drop(conn);
//! reg.unregister().unwrap();
//! ```
//!
//! ## The power-cut model
//!
//! The layer keeps, per path, what a power cut would leave, and on a cut
//! restores exactly that through the base, so it works over **any** base,
//! including ones that have no durability of their own.
//!
//! *File data.* Before each `write` or `truncate` reaches the base (and when
//! a size-hint file control grows a file), the layer reads and keeps the
//! pre-image: the bytes about to be overwritten or cut off and the file's
//! size. A successful `sync` of any handle on the path forgets them (all
//! handles of a path share one record, as they share one inode). At a cut,
//! the pre-images are written back newest first, which restores each file to
//! its content at its last sync, byte for byte and size for size. Every sync
//! counts as a full `fsync`, whatever its flags (`NORMAL`, `FULL`,
//! `DATAONLY`).
//!
//! *Directory entries.* The directory of a path is everything before its
//! last `/`.
//!
//! * A file created by an `open` (it did not exist before) has no durable
//!   directory entry until its own first successful `sync`, or a directory
//!   sync of its directory. A cut before that deletes it.
//! * A main journal, WAL or super-journal opened with `SQLITE_OPEN_CREATE`
//!   syncs its directory at its first successful `sync` (the unix VFS's
//!   `DIRSYNC` behaviour): every pending creation and deletion in that
//!   directory becomes durable.
//! * `delete(path, sync_dir = true)` is a directory sync after the unlink.
//! * `delete(path, sync_dir = false)` is undone by a cut unless a directory
//!   sync of the same directory came later: the file comes back with its
//!   durable content (its bytes as of its last sync, which the layer keeps in
//!   memory from the moment of the delete).
//! * Tools that replace files get the two directory operations SQLite's VFS
//!   interface lacks: [`Fault::rename`] (over a base implementing
//!   [`Rename`]: [`MemDisk`], [`Native`]) is undone by a cut unless a
//!   directory sync came later, and [`Fault::sync_dir`] is that directory
//!   sync. Both are counted (as a `delete` and a `sync`), so a sweep of
//!   power cuts covers them.
//!
//! *After the cut* the machine is off: every operation fails with an
//! `SQLITE_IOERR` code (the operation's own extended code when it has one)
//! until [`FaultController::restart`]. Releasing operations still reach the
//! base so that a dead connection's locks go away, as a dead process's
//! would: `unlock`, shared-memory unlocks and unmaps, and closing. File
//! handles opened before a cut stay dead after the restart; open the
//! database again.
//!
//! ### What SQLite must survive, and a trap
//!
//! With `synchronous=FULL`, SQLite in `TRUNCATE` and `PERSIST` journal modes
//! and in `WAL` mode keeps every commit it acknowledged through any cut.
//! In `DELETE` mode, SQLite deletes the journal at commit with
//! `sync_dir = false` unless `synchronous=EXTRA`, so a cut right after an
//! acknowledged `COMMIT` can bring the journal back as a hot journal and
//! roll that commit back. That is real unix behaviour, not a bug of this
//! layer: test `DELETE` mode with `synchronous=EXTRA`.
//!
//! ### Limits
//!
//! * **One outcome per cut.** A real disk may persist any subset of the
//!   unsynced writes, in any order, and tear them at sector granularity;
//!   this layer produces the single outcome "nothing unsynced persisted"
//!   (plus the tears you inject explicitly). The other outcomes are not
//!   explored.
//! * **What the layer sees.** Files that already existed when first opened
//!   through the layer are assumed durable. Changes made to the base by
//!   other means are invisible to the model and may be overwritten by a
//!   restoration.
//! * **Untracked files.** Anonymous and delete-on-close files and the
//!   temporary kinds (temp database and journal, transient database,
//!   sub-journal) are not tracked: nothing reads them after a crash. Shared
//!   memory (the WAL index, `-shm`) is not on the medium and not tracked;
//!   SQLite rebuilds it when the first connection opens the database again,
//!   so close every connection of a database before reopening it after a
//!   cut.
//! * **Main databases.** A new main database file becomes durable at its
//!   first sync, although the unix VFS never syncs the directory for it (a
//!   real cut right after creating a database can lose the file on some file
//!   systems).
//! * **Restoration** opens the base's files again by path (with the kind
//!   they were opened with) while the dead connection's handles may still be
//!   open; the base must allow that (the native base and in-memory bases with
//!   shared names do). A base that refuses makes [`FaultController::restart`]
//!   return the error.
//! * **Shrinking size hints** are not recorded (SQLite only grows files with
//!   hints).
//! * **Serialised I/O.** One mutex per [`Fault`] instance is held across each
//!   base call, so a cut is atomic with respect to operations in flight on
//!   other threads. Fine for tests; do not benchmark through this layer.
//! * **Memory.** Pre-images of unsynced data and the bytes of files deleted
//!   without a directory sync are kept in memory
//!   ([`FaultController::undo_bytes`]).
//! * **Device characteristics** pass through without the `ATOMIC*` and
//!   `BATCH_ATOMIC` bits, which tears and cuts would violate.
//!
//! ## Counting
//!
//! Counted operations: `open`, `delete`, `access`, `read`, `write`,
//! `truncate`, `sync`, `file_size`, `lock`, `unlock`,
//! `check_reserved_lock`, and over a base that forwards shared memory,
//! `shm_map` and `shm_lock`. The layer's own reads of pre-images and its
//! restorations are not counted. Operations refused because the power is off
//! are not counted either. A rule counts matching operations from the moment
//! it is added; an operation hit by one rule is not seen by rules added after
//! it.
//!
//! [`Native`]: vfs_core::Native
//! [`FileKind`]: vfs_core::FileKind
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod fault;
pub mod fuzz;
mod memdisk;
mod model;
mod rules;

pub use fault::{EVENT_LOG_CAPACITY, Fault, FaultController, FaultEvent, FaultFile, Rename};
pub use memdisk::{MemDisk, MemDiskFile};
pub use rules::{Action, COUNTED_OPS, Failure, OpSet, Rule, RuleId, TearOutcome};
