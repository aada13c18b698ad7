//! # vfs-embed
//!
//! A read-only SQLite VFS over bytes you already have: a database inside
//! the binary (`include_bytes!`), any positional reader with a known size
//! (a [`std::fs::File`] you must never modify, a memory buffer), a set of
//! named files serving several databases, or (feature `zip`) a zip archive.
//! Queries go through plain rusqlite; nothing touches the real disk.
//!
//! ```
//! # let catalog: Vec<u8> = {
//! #     let dir = tempfile::tempdir().unwrap();
//! #     let p = dir.path().join("c.db");
//! #     let c = rusqlite::Connection::open(&p).unwrap();
//! #     c.execute_batch("CREATE TABLE item(name); INSERT INTO item VALUES ('kettle'), ('lamp');").unwrap();
//! #     drop(c);
//! #     std::fs::read(&p).unwrap()
//! # };
//! use vfs_embed::{Embed, FileSet};
//!
//! // static CATALOG: &[u8] = include_bytes!("catalog.db");
//! let handle = Embed::register(FileSet::new().with("catalog.db", catalog))?;
//! let conn = rusqlite::Connection::open(handle.uri("catalog.db")).unwrap();
//! let n: i64 = conn.query_row("SELECT count(*) FROM item", [], |r| r.get(0)).unwrap();
//! assert_eq!(n, 2);
//!
//! // Every write answers SQLITE_READONLY.
//! let err = conn.execute("DELETE FROM item", []).unwrap_err();
//! assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::ReadOnly));
//!
//! drop(conn);
//! handle.close().map_err(|(_, e)| e)?;
//! # Ok::<(), vfs_core::Error>(())
//! ```
//!
//! ## Sources
//!
//! A [`Source`] is an immutable run of bytes with a fixed size, built from
//! `&'static [u8]`, `Vec<u8>` / `Box<[u8]>` / `Arc<[u8]>`, a
//! [`std::fs::File`] ([`Source::open`]), or anything implementing
//! [`ReadAt`]. A [`FileSet`] names sources; `FileSet::from_zip` (feature
//! `zip`) reads a zip archive: stored entries are served in place, deflated
//! ones are inflated once, on first use.
//!
//! ## Registration
//!
//! [`Embed::register`] registers the VFS under a fresh unique name
//! (`vfs-embed-<n>`) and returns an [`EmbedHandle`]: [`EmbedHandle::uri`]
//! builds the URI of a file, [`EmbedHandle::close`] unregisters (refusing
//! while connections still have files open), and dropping the handle
//! unregisters as soon as that is possible.
//!
//! To serve images that arrive after registration, or to replace them
//! while the VFS stays registered, register an [`EmbedSlot`] and
//! [`install`](EmbedSlot::install) file sets into it: new connections read
//! the newest set, open ones keep theirs.
//!
//! ## Read-only, for real
//!
//! * Every embedded file reports itself read-only at open
//!   ([`vfs_core::File::is_read_only`]), so SQLite opens the database
//!   read-only whatever flags it was given, and declares
//!   `SQLITE_IOCAP_IMMUTABLE`, so SQLite takes no locks, never looks for a
//!   hot journal or a WAL, and caches pages freely.
//! * `INSERT`, `CREATE`, `VACUUM`, `BEGIN IMMEDIATE`… fail with
//!   `SQLITE_READONLY` in SQLite itself; should a write or truncate still
//!   reach the file it is refused with `SQLITE_READONLY` and a message
//!   naming the database. `PRAGMA journal_mode=WAL`, which SQLite would
//!   silently ignore on an immutable file, is refused with
//!   `SQLITE_READONLY` too.
//! * Opening a rollback journal, a WAL or a super-journal for writing gives
//!   `SQLITE_READONLY`; opening one read-only gives `SQLITE_CANTOPEN` (it
//!   does not exist). A name that is not in the set gives `SQLITE_CANTOPEN`
//!   at open time, with a message naming the file (read it with
//!   [`vfs_core::last_error`] or the `sqlite3_log` line). With the header
//!   check on (the default, see [`Embed::check_header`]), a file that is not
//!   a database gives `SQLITE_NOTADB` and a truncated one `SQLITE_CORRUPT`,
//!   also at open time.
//! * Temporary files (temp tables, sorter spills, a `VACUUM`'s scratch
//!   database) are private memory of their connection, never the embedded
//!   bytes.
//!
//! ## Databases in WAL mode
//!
//! An image whose header says WAL (bytes 18 and 19 equal to 2, as a
//! database last used in WAL mode keeps them) reads as it is, without any
//! byte being changed: because the file is immutable, SQLite's pager treats
//! it like a temporary file, and for such a pager opening the WAL is a
//! no-op that SQLite reports as "already open", so it reads the pages from
//! the database file alone. The image must therefore be checkpointed (close
//! the last connection, or run `PRAGMA wal_checkpoint(TRUNCATE)`, before
//! taking the bytes): frames still in a `-wal` file are not part of the
//! image and are not consulted, even if the set holds a file of that name.
//! [`EmbedHandle::uri`] adds `immutable=1`, which gives the same treatment
//! even when a shim stacked above this VFS does not pass the immutable
//! flag on.
//!
//! ## Copies and locks
//!
//! A read from a static slice or shared bytes is one `memcpy` from the
//! source into SQLite's page buffer, with no allocation. (Serving pages in
//! place through `xFetch` would need vfs-core to offer memory-mapped reads,
//! which it does not today.) Files use [`vfs_core::no_lock!`]: an immutable
//! image that nobody can write has nothing to protect, so accepting every
//! lock is exact (and SQLite does not even ask for locks on an immutable
//! file); scratch files belong to a single connection.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod handle;
mod set;
mod slot;
mod source;
mod vfs;
#[cfg(feature = "zip")]
mod zip;

pub use handle::EmbedHandle;
pub use set::{DEFAULT_NAME, FileSet};
pub use slot::EmbedSlot;
pub use source::{ReadAt, Source};
pub use vfs::{Embed, EmbedFile, Image};
