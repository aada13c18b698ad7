//! The page-mapping layer shared by page-transforming shims (checksums,
//! encryption): safe Rust on top of any [`Vfs`].
//!
//! [`PageVfs<B, C>`](PageVfs) wraps a base VFS `B` and a [`PageCodec`] `C`.
//! It maps every read and write SQLite makes to whole page images, hands
//! each image to the codec together with a [`PageCtx`] (file kind, page
//! number, page size, reserve, offset), and keeps everything else (locks,
//! shared memory, sizes, syncs, unknown file controls) flowing to the base
//! unchanged. The codec never sees SQLite's buffers: writes are copied into a
//! scratch buffer owned by the file (grown once, reused, so steady-state I/O
//! allocates nothing) and transformed there; reads are transformed in the
//! caller's buffer, which is SQLite's output buffer.
//!
//! # What the codec sees, per file kind
//!
//! The codec chooses, per [`FileKind`], a [`Mapping`]:
//!
//! | kind | `Pages`: images the codec sees | also possible |
//! |---|---|---|
//! | `MainDb`, `TempDb`, `TransientDb` | every page: `pgno = offset / page_size + 1` | `Stream`, `None` |
//! | `Wal` | the page part of every frame, with the page number from its frame header; the 8 checksum bytes of each frame header go to [`PageCodec::wal_frame_checksum`] | `Stream`, `None` |
//! | `MainJournal` | the page of every record (`pgno ‖ page ‖ checksum`); the record checksum goes to [`PageCodec::journal_checksum`] | `Stream`, `None` |
//! | `SubJournal` | the page of every record (`pgno ‖ page`) | `Stream`, `None` |
//! | `TempJournal`, `SuperJournal` | — (refused at open) | `Stream`, `None` |
//!
//! `Stream` hands the codec arbitrary byte ranges with their absolute file
//! offset ([`PageCodec::encode_stream`] / [`PageCodec::decode_stream`]); the
//! transform must be length-preserving and byte-position-local. `None`
//! passes the file through untouched (no state, no cost).
//!
//! `TempJournal` cannot be page-mapped: SQLite opens both the rollback
//! journal of the `temp` schema and the external-sort (sorter) files with
//! that flag, and sorter files contain no pages. Super-journals hold file
//! names, no pages.
//!
//! ## Database files
//!
//! * The page size and the reserve are learned from page 1's header: bytes
//!   16–17 (big-endian; 1 means 65536) and byte 20 (reserved bytes per
//!   page). They are read from SQLite's buffer when page 1 is written, from
//!   the bytes read when a read starts at offset 0, and from the **stored**
//!   page 1 otherwise, so **a codec must store page-1 bytes 16–23
//!   unchanged** (in clear).
//! * Once the page size is known, every read and write is cut into the
//!   pages it touches, whatever its length and offset: SQLite's pager moves
//!   one whole page per call, but a shim or tool above the layer may move
//!   spans of several pages, unaligned (SQLite's crash-test VFS does).
//!   Whole pages are decoded in the caller's buffer or encoded in the
//!   scratch buffer (a run of them with one base call); a page covered only
//!   in part is read and decoded whole ([`PageCtx::partial`] is set) and,
//!   for a write, merged and encoded whole. A stored page that does not
//!   decode is an error, never merged into.
//! * The exception: a [`verify_only`](PageCodec::verify_only) codec's
//!   header reads (reads that end within the first 128 bytes: the 100-byte
//!   header at open, the change counter at offset 24 that starts every
//!   rollback-mode transaction) come from the base directly, as SQLite's
//!   cksumvfs serves them; page 1 is verified when SQLite reads it whole.
//! * Before the page size is known (no page 1, or one whose bytes 16–17
//!   name no valid page size), nothing is mapped by guesswork beyond what
//!   SQLite's pager does: a read or write whose length is a valid page size
//!   at an offset that is a multiple of it is one page of that size (a
//!   temporary database is written before its page 1; a new database may
//!   spill pages before page 1), and that length is the page size until a
//!   header says otherwise; a page 1 naming another size is then refused.
//!   Any other write is refused (`SQLITE_IOERR_WRITE`). Any other read is
//!   passed through for a verify-only codec (a file without a header has
//!   no checksum format) and is an error for a transforming codec
//!   (`SQLITE_NOTADB`) unless the file is empty there: **a transformed
//!   file's bytes never reach SQLite undecoded**.
//! * A page that is only partly present at the end of the file is reported
//!   as absent (a short read) rather than decoded; a verify-only codec
//!   passes its bytes through, as cksumvfs does.
//! * The cached header is re-read from the base after every `unlock` and
//!   `sync`, and whenever another handle of the same database (through the
//!   same `PageVfs`) saw page 1 change, so a page is never encoded or
//!   decoded with stale parameters after a `VACUUM` changed the reserve.
//! * SQLite changes the page size of an existing database (`VACUUM` after
//!   `PRAGMA page_size = N`, a backup into it from a database of another
//!   page size) in one transaction whose pager keeps the old size: the new
//!   pages arrive in pieces of the old size, page 1 (naming the new size)
//!   usually last. A [`verify_only`](PageCodec::verify_only) codec follows
//!   such changes, and changes of the reserve alone, through a rollback or
//!   a crash too (the layer's `resize` module says how). A transforming
//!   codec cannot encode a page from pieces: for it the page size is fixed
//!   once page 1 exists, `PRAGMA page_size = N` is swallowed (answered
//!   without effect, as cksumvfs does) and a page-1 write naming another
//!   page size is refused (`SQLITE_IOERR_WRITE`).
//!
//! ## WAL files
//!
//! The 32-byte WAL header (page size at bytes 8–11, big-endian) passes
//! through; frame `k` starts at `32 + k·(24 + page_size)`: a 24-byte header
//! (page number, commit size, salts, two checksums) then the page image. Any
//! read or write is cut along this layout: page parts are encoded/decoded as
//! whole pages (a read that covers only part of a page reads and decodes the
//! whole page), frame headers pass through except bytes 16–23 (the
//! checksums), handed to [`PageCodec::wal_frame_checksum`]. The page number
//! is read from bytes 0–3 of the frame header (in clear). A write that
//! covers only part of a frame's page or header (SQLite splits a write at
//! its sync point when the base lacks `SQLITE_IOCAP_POWERSAFE_OVERWRITE`) is
//! held back until the rest of that page arrives, then encoded and written
//! whole.
//!
//! ## Rollback journals and sub-journals
//!
//! SQLite writes (and reads back) each record as separate calls: the 4-byte
//! page number, the page image at the next offset, then (main journals only)
//! the 4-byte checksum. The layer recognises that sequence; the page size is
//! the one of the journal header (bytes 24–27 of the header at offset 0,
//! which passes through, like every header and every other write). Pages of
//! the pending-byte page number (the super-journal pointer) are never
//! treated as records. A sub-journal is first written by SQLite as one
//! chunk when its in-memory buffer spills (64 KiB by default): the layer
//! holds that chunk (reads are served from it) until the page size is known
//! from the next record, then encodes every record in it and writes it.
//!
//! # Round trip: the contract of a codec
//!
//! SQLite checksums the exact bytes it hands to `xWrite` for WAL frames
//! (chained checksums in the frame headers) and journal records (sampled
//! checksums), and recovery recomputes them over what `xRead` returns. So:
//!
//! 1. `decode(encode(image))` must equal `image` in every byte outside the
//!    codec's own reserved slice.
//! 2. In its own slice, `decode` must return a **fixed** value (zeros are
//!    recommended). SQLite writes back what it read (or zeros for a fresh
//!    page), so a WAL frame's page then reads back byte-identical and WAL
//!    recovery after a crash keeps every committed frame. A codec whose slice
//!    holds information SQLite must see (a checksum trailer that SQLite
//!    copies around) may instead return the stored bytes, as long as it
//!    does not transform WAL frames (this is what cksm does).
//! 3. Layers that share the reserve each own a fixed slice counted from the
//!    end of the page, the lowest layer last; [`PageCtx::reserve`] is the
//!    database's total reserve so a codec can check the file is in its
//!    format.
//! 4. Page-1 bytes 16–23 stay in clear in the stored image; WAL frame header
//!    bytes 0–15 are never changed by the layer (only bytes 16–23 go to the
//!    hook).
//! 5. Errors: return [`Error::new`] with a precise code
//!    (`SQLITE_IOERR_DATA` for a checksum or authentication failure,
//!    `SQLITE_NOTADB` for a wrong key, …); the layer prefixes the message
//!    with the file, the kind, the page number and the offset
//!    ([`PageCtx::describe`]).
//!
//! # What the layer does for the file
//!
//! * `SQLITE_IOCAP_SUBPAGE_READ` is cleared for transformed files (so SQLite
//!   never reads part of an overflow page directly); every other device
//!   characteristic, notably `POWERSAFE_OVERWRITE`, is the base's.
//! * No memory mapping: vfs-core offers no `xFetch`, and
//!   `SQLITE_FCNTL_MMAP_SIZE` is not forwarded to the base of a transformed
//!   file.
//! * Locks, shared memory (both [`ShmSupport::Group`] and
//!   [`ShmSupport::Forward`]), sector size, sync, truncate and size go to the
//!   base. File controls go first to [`PageCodec::file_control`], then to the
//!   layer, then to the base.
//! * `PRAGMA`s: the layer answers its own (`vfs_page_reserve` below, and
//!   swallows `page_size = N` on an existing database under a transforming
//!   codec), the codec the ones
//!   it [owns](PageCodec::owns_pragma) (after a fresh read of the stored
//!   header); every other pragma goes to the base without any I/O by the
//!   layer, so `journal_mode`, `cache_size` and the like cost and answer
//!   exactly what they would on the base alone, even when its reads fail.
//!
//! # New databases get the reserve automatically
//!
//! The main database file of a page layer answers
//! `PRAGMA vfs_page_reserve` with [`PageCodec::reserve`]. Creating a
//! [`PageVfs`] installs (once per process) a connection hook
//! ([`hooks::on_connection`](crate::hooks::on_connection)) that asks every
//! new connection's main file this pragma and, when a number comes back,
//! requests that many reserved bytes (`SQLITE_FCNTL_RESERVE_BYTES`). A new
//! database is therefore created in the codec's format from its first page;
//! an existing database keeps its format until it is rewritten by `VACUUM`
//! (which then applies the requested reserve: SQLite never shrinks one).
//!
//! # Example: a codec that flips bits
//!
//! ```
//! use vfs_core::page::{Mapping, PageCodec, PageCtx, PageVfs};
//! use vfs_core::{FileKind, Native, OpenName, OpenOptions, Result};
//!
//! /// Inverts every byte of main-database pages except page-1 bytes 16..24.
//! struct Invert;
//!
//! impl PageCodec for Invert {
//!     type State = ();
//!     fn mapping(&self, kind: FileKind) -> Mapping {
//!         if kind == FileKind::MainDb { Mapping::Pages } else { Mapping::None }
//!     }
//!     fn open(&self, _: &vfs_core::page::FileInfo<'_>, _: &OpenName<'_>, _: OpenOptions) -> Result<()> {
//!         Ok(())
//!     }
//!     fn encode(&self, _: &mut (), ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
//!         invert(ctx, image);
//!         Ok(())
//!     }
//!     fn decode(&self, _: &mut (), ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
//!         invert(ctx, image);
//!         Ok(())
//!     }
//! }
//!
//! fn invert(ctx: &PageCtx<'_>, image: &mut [u8]) {
//!     for (i, b) in image.iter_mut().enumerate() {
//!         if !(ctx.pgno == 1 && (16..24).contains(&i)) {
//!             *b = !*b;
//!         }
//!     }
//! }
//!
//! let reg = vfs_core::register("invert-doc", PageVfs::new(Native::new()?, Invert), false)?;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("x.db");
//! let conn = rusqlite::Connection::open(format!("file:{}?vfs=invert-doc", path.display())).unwrap();
//! conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('secret');").unwrap();
//! drop(conn);
//! let raw = std::fs::read(&path).unwrap();
//! assert!(!raw.starts_with(b"SQLite format 3"));
//! reg.unregister().map_err(|(_, e)| e)?;
//! # Ok::<(), vfs_core::Error>(())
//! ```

mod db;
mod journal;
mod resize;
#[cfg(test)]
mod tests;
mod wal;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use libsqlite3_sys as ffi;
use parking_lot::Mutex;

use crate::shm::{ShmLockOp, ShmRegion};
use crate::{
    Control, DeviceCharacteristics, Error, File, FileControl, FileKind, LockLevel, OpenName,
    OpenOptions, Result, ShmSupport, SyncFlags, Vfs, codes,
};

use db::DbMap;
use journal::{JournalMap, SubJournalMap};
use wal::WalMap;

/// The pragma a page layer's main database file answers with
/// [`PageCodec::reserve`] (`PRAGMA vfs_page_reserve`).
pub const RESERVE_PRAGMA: &str = "vfs_page_reserve";

/// How a codec wants a kind of file mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mapping {
    /// Pass the file through untouched.
    None,
    /// Whole page images (see the [module docs](self) for each kind).
    Pages,
    /// Arbitrary byte ranges with their absolute offset, for a
    /// length-preserving, position-local transform.
    Stream,
}

/// Whether a hook encodes (on the way to the base) or decodes (on the way
/// back to SQLite).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// SQLite's bytes → stored bytes.
    Encode,
    /// Stored bytes → SQLite's bytes.
    Decode,
}

/// A file being opened, for [`PageCodec::open`].
#[derive(Clone, Copy, Debug)]
pub struct FileInfo<'a> {
    /// What the file is.
    pub kind: FileKind,
    /// Its path (`"<temp>"` for an anonymous temporary file).
    pub path: &'a str,
}

/// What the layer knows about an open file, for
/// [`PageCodec::file_control`].
#[derive(Clone, Copy, Debug)]
pub struct FileStatus<'a> {
    /// What the file is.
    pub kind: FileKind,
    /// Its path (`"<temp>"` for an anonymous temporary file).
    pub path: &'a str,
    /// The database page size, if known.
    pub page_size: Option<usize>,
    /// The database's total reserved bytes per page (header byte 20), if
    /// known. For a main database it is re-read from the stored header
    /// before every `PRAGMA` the codec [owns](PageCodec::owns_pragma)
    /// reaches it.
    pub reserve: Option<usize>,
}

/// Where a page image belongs, handed to every encode and decode.
#[derive(Clone, Copy, Debug)]
pub struct PageCtx<'a> {
    /// The kind of file the image lives in.
    pub kind: FileKind,
    /// The file's path (`"<temp>"` for an anonymous temporary file).
    pub path: &'a str,
    /// The database page number the image belongs to (1-based): from the
    /// offset for database files, from the frame header for WAL frames, from
    /// the record for journals.
    pub pgno: u32,
    /// The page size (the image's length).
    pub page_size: usize,
    /// The database's total reserved bytes per page (page-1 header byte 20),
    /// when known: always for a main database once page 1 exists; for WAL
    /// and journal files, what any file of the same database saw last
    /// through this VFS; possibly `None` for temporary files, whose page 1
    /// may be written last.
    pub reserve: Option<usize>,
    /// (Writes of page 1 of a database file.) The reserve recorded in the
    /// page 1 stored before this write, `None` if none is stored yet, so a
    /// codec can refuse a write that would drop its format. Otherwise equal
    /// to [`reserve`](Self::reserve).
    pub stored_reserve: Option<usize>,
    /// The image's offset in the file.
    pub offset: u64,
    /// (Decode only.) The read asked for less than this page; the whole page
    /// was read to serve it (or, for a write covering part of the page, to
    /// merge the new bytes into it).
    pub partial: bool,
    /// (Decode only, [`verify_only`](PageCodec::verify_only) codecs.) The
    /// layer is trying these bytes as one of two page sizes: while SQLite
    /// changes the page size of a database (a `VACUUM` or a backup into it),
    /// its pages are for a while in either layout. A failure is not a fault
    /// yet: do not count or log it. When no layout fits, the layer decodes
    /// once more with `tentative` false and reports that error.
    pub tentative: bool,
}

impl PageCtx<'_> {
    /// `"<path> (<kind>) page <pgno> at offset <offset>"`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}) page {} at offset {}",
            self.path,
            self.kind.name(),
            self.pgno,
            self.offset
        )
    }

    /// An error with `code` whose message names this page.
    pub fn error(&self, code: i32, what: impl fmt::Display) -> Error {
        Error::new(code, format!("{}: {what}", self.describe()))
    }
}

/// Where a byte range lives, for [`Mapping::Stream`] codecs.
#[derive(Clone, Copy, Debug)]
pub struct StreamCtx<'a> {
    /// The kind of file.
    pub kind: FileKind,
    /// The file's path (`"<temp>"` for an anonymous temporary file).
    pub path: &'a str,
    /// The absolute offset of the range's first byte.
    pub offset: u64,
}

/// A page transform plugged into [`PageVfs`].
///
/// See the [module docs](self) for what the layer guarantees and what a
/// codec must guarantee (above all: decode must give back what SQLite
/// wrote). All methods are called with the file's own per-file state, from
/// one thread at a time per file.
pub trait PageCodec: Send + Sync + 'static {
    /// Per-file state, created by [`open`](Self::open) (keys, salts,
    /// toggles, statistics…).
    type State: Send + 'static;

    /// How files of `kind` are mapped. `Pages` for `TempJournal` or
    /// `SuperJournal` makes the open fail (`SQLITE_CANTOPEN`).
    fn mapping(&self, kind: FileKind) -> Mapping;

    /// The total reserved bytes per page a **new** database needs: this
    /// layer's slice plus the slices of the page layers below it that it
    /// knows of (0: none). Answered to `PRAGMA vfs_page_reserve` and applied
    /// to new connections automatically.
    fn reserve(&self) -> usize {
        0
    }

    /// Whether decoding never changes bytes and encoding changes only the
    /// page's last [`reserve`](Self::reserve) bytes (or its reserved area,
    /// if larger), laying out a page whose database reserve is not known yet
    /// ([`PageCtx::reserve`] `None`: a new database's pages spilled before
    /// page 1) for `reserve()`: a checksum verifier. SQLite's header reads of database
    /// files are then served from the base directly, as its own cksumvfs
    /// does, and the layer follows SQLite through page size changes (whose
    /// pages arrive in pieces it can store as written).
    fn verify_only(&self) -> bool {
        false
    }

    /// Creates the state of a file being opened (only for kinds whose
    /// mapping is not [`Mapping::None`]). `name` answers URI parameters
    /// (`?key=...`) and, for a journal or WAL, the database's name. An error
    /// fails the open.
    fn open(
        &self,
        file: &FileInfo<'_>,
        name: &OpenName<'_>,
        opts: OpenOptions,
    ) -> Result<Self::State>;

    /// Transforms `image` (a copy of what SQLite wrote) into what is stored.
    fn encode(&self, state: &mut Self::State, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()>;

    /// Transforms `image` (what is stored) back into what SQLite wrote, or
    /// fails (`SQLITE_IOERR_DATA`, `SQLITE_NOTADB`, …).
    fn decode(&self, state: &mut Self::State, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()>;

    /// Transforms the two checksum words (bytes 16–23) of a WAL frame header;
    /// `ctx` describes the frame's page (offset: the frame header's). The
    /// default leaves them as they are.
    fn wal_frame_checksum(
        &self,
        _state: &mut Self::State,
        _ctx: &PageCtx<'_>,
        _checksum: &mut [u8; 8],
        _dir: Direction,
    ) -> Result<()> {
        Ok(())
    }

    /// Transforms the 4-byte checksum that ends a rollback-journal record;
    /// `ctx` describes the record's page (offset: the checksum's). The
    /// default leaves it as it is.
    fn journal_checksum(
        &self,
        _state: &mut Self::State,
        _ctx: &PageCtx<'_>,
        _checksum: &mut [u8; 4],
        _dir: Direction,
    ) -> Result<()> {
        Ok(())
    }

    /// [`Mapping::Stream`] only: transforms bytes about to be written at
    /// `ctx.offset`.
    fn encode_stream(
        &self,
        _state: &mut Self::State,
        ctx: &StreamCtx<'_>,
        _data: &mut [u8],
    ) -> Result<()> {
        Err(Error::new(
            codes::SQLITE_IOERR_WRITE,
            format!(
                "{} ({}): this codec maps the file as a stream but implements no encode_stream",
                ctx.path,
                ctx.kind.name()
            ),
        ))
    }

    /// [`Mapping::Stream`] only: transforms bytes just read from
    /// `ctx.offset`.
    fn decode_stream(
        &self,
        _state: &mut Self::State,
        ctx: &StreamCtx<'_>,
        _data: &mut [u8],
    ) -> Result<()> {
        Err(Error::new(
            codes::SQLITE_IOERR_READ,
            format!(
                "{} ({}): this codec maps the file as a stream but implements no decode_stream",
                ctx.path,
                ctx.kind.name()
            ),
        ))
    }

    /// Whether `PRAGMA name` (any case) is one this codec answers in
    /// [`file_control`](Self::file_control). Only those pragmas reach the
    /// codec, after the layer has re-read the stored header (so
    /// [`FileStatus`] is current); every other pragma goes to the base
    /// without any I/O by the layer, as it would on the base alone.
    fn owns_pragma(&self, _name: &str) -> bool {
        false
    }

    /// Sees every file control of a transformed file first, except the
    /// `PRAGMA`s it does not [own](Self::owns_pragma). `None`: not handled,
    /// the layer goes on (and forwards to the base); `Some(result)`:
    /// handled, nothing is forwarded.
    fn file_control(
        &self,
        _state: &mut Self::State,
        _file: &FileStatus<'_>,
        _ctl: &mut FileControl<'_>,
    ) -> Option<Result<()>> {
        None
    }
}

impl<C: PageCodec> PageCodec for Arc<C> {
    type State = C::State;
    fn mapping(&self, kind: FileKind) -> Mapping {
        (**self).mapping(kind)
    }
    fn reserve(&self) -> usize {
        (**self).reserve()
    }
    fn verify_only(&self) -> bool {
        (**self).verify_only()
    }
    fn open(
        &self,
        file: &FileInfo<'_>,
        name: &OpenName<'_>,
        opts: OpenOptions,
    ) -> Result<Self::State> {
        (**self).open(file, name, opts)
    }
    fn encode(&self, state: &mut Self::State, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        (**self).encode(state, ctx, image)
    }
    fn decode(&self, state: &mut Self::State, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        (**self).decode(state, ctx, image)
    }
    fn wal_frame_checksum(
        &self,
        state: &mut Self::State,
        ctx: &PageCtx<'_>,
        checksum: &mut [u8; 8],
        dir: Direction,
    ) -> Result<()> {
        (**self).wal_frame_checksum(state, ctx, checksum, dir)
    }
    fn journal_checksum(
        &self,
        state: &mut Self::State,
        ctx: &PageCtx<'_>,
        checksum: &mut [u8; 4],
        dir: Direction,
    ) -> Result<()> {
        (**self).journal_checksum(state, ctx, checksum, dir)
    }
    fn encode_stream(
        &self,
        state: &mut Self::State,
        ctx: &StreamCtx<'_>,
        data: &mut [u8],
    ) -> Result<()> {
        (**self).encode_stream(state, ctx, data)
    }
    fn decode_stream(
        &self,
        state: &mut Self::State,
        ctx: &StreamCtx<'_>,
        data: &mut [u8],
    ) -> Result<()> {
        (**self).decode_stream(state, ctx, data)
    }
    fn owns_pragma(&self, name: &str) -> bool {
        (**self).owns_pragma(name)
    }
    fn file_control(
        &self,
        state: &mut Self::State,
        file: &FileStatus<'_>,
        ctl: &mut FileControl<'_>,
    ) -> Option<Result<()>> {
        (**self).file_control(state, file, ctl)
    }
}

// ---------------------------------------------------------------------------
// Shared per-database knowledge
// ---------------------------------------------------------------------------

const UNKNOWN: u32 = u32::MAX;

/// Page size and reserve of one database, shared by its main file, journal
/// and WAL handles opened through the same [`PageVfs`].
#[derive(Debug)]
pub(crate) struct Shape {
    page_size: AtomicU32,
    reserve: AtomicU32,
    /// Bumped whenever a handle sees page 1 with a page size or reserve
    /// different from the ones above, so other handles of the database in
    /// this process re-read the header (in WAL mode a reader never unlocks
    /// the database file between transactions).
    generation: AtomicU64,
}

impl Shape {
    fn new() -> Shape {
        Shape {
            page_size: AtomicU32::new(UNKNOWN),
            reserve: AtomicU32::new(UNKNOWN),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records what page 1 says; returns the generation it is current for.
    pub(crate) fn observe(&self, p: usize, r: usize) -> u64 {
        let old_p = self.page_size.swap(p as u32, Ordering::AcqRel);
        let old_r = self.reserve.swap(r as u32, Ordering::AcqRel);
        let changed =
            (old_p != UNKNOWN && old_p != p as u32) || (old_r != UNKNOWN && old_r != r as u32);
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.generation()
        }
    }

    pub(crate) fn set_page_size(&self, p: usize) {
        self.page_size.store(p as u32, Ordering::Relaxed);
    }

    pub(crate) fn set_reserve(&self, r: usize) {
        self.reserve.store(r as u32, Ordering::Relaxed);
    }

    pub(crate) fn page_size(&self) -> Option<usize> {
        match self.page_size.load(Ordering::Relaxed) {
            UNKNOWN => None,
            p => Some(p as usize),
        }
    }

    pub(crate) fn reserve(&self) -> Option<usize> {
        match self.reserve.load(Ordering::Relaxed) {
            UNKNOWN => None,
            r => Some(r as usize),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers shared by the mappers
// ---------------------------------------------------------------------------

/// Whether `n` is a valid SQLite page size.
pub(crate) fn is_page_size(n: usize) -> bool {
    (512..=65536).contains(&n) && n.is_power_of_two()
}

/// `(page_size, reserve)` from the first bytes of a database header.
pub(crate) fn db_header(h: &[u8]) -> Option<(usize, usize)> {
    if h.len() < 21 {
        return None;
    }
    let raw = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let p = if raw == 1 { 65536 } else { raw };
    is_page_size(p).then_some((p, usize::from(h[20])))
}

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// `scratch[..n]`, growing it if needed (only the first time a size is
/// seen).
pub(crate) fn grow(scratch: &mut Vec<u8>, n: usize) -> &mut [u8] {
    if scratch.len() < n {
        scratch.resize(n, 0);
    }
    &mut scratch[..n]
}

/// Reads from the base; a short-read error (a backend that gives no count)
/// becomes 0 bytes read.
pub(crate) fn read_some<F: File>(base: &mut F, buf: &mut [u8], off: u64) -> Result<usize> {
    match base.read_at(buf, off) {
        Ok(n) => Ok(n.min(buf.len())),
        Err(e) if e.code() == Some(codes::SQLITE_IOERR_SHORT_READ) => Ok(0),
        Err(e) => Err(e),
    }
}

/// The page number SQLite reserves for its super-journal pointer (the page
/// holding the pending byte), never a real page image in a journal.
pub(crate) fn pending_byte_pgno(page_size: usize) -> u32 {
    (0x4000_0000 / page_size as u32) + 1
}

/// The codec-facing parts of a file, borrowed for one operation.
pub(crate) struct Io<'a, F: File, C: PageCodec> {
    pub(crate) base: &'a mut F,
    pub(crate) codec: &'a C,
    pub(crate) state: &'a mut C::State,
    pub(crate) kind: FileKind,
    pub(crate) path: &'a str,
    pub(crate) shape: &'a Shape,
}

impl<'a, F: File, C: PageCodec> Io<'a, F, C> {
    pub(crate) fn ctx(
        &self,
        pgno: u32,
        page_size: usize,
        reserve: Option<usize>,
        offset: u64,
        partial: bool,
    ) -> PageCtx<'a> {
        PageCtx {
            kind: self.kind,
            path: self.path,
            pgno,
            page_size,
            reserve,
            stored_reserve: reserve,
            offset,
            partial,
            tentative: false,
        }
    }

    pub(crate) fn encode(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        offset: u64,
        image: &mut [u8],
    ) -> Result<()> {
        self.encode_page(pgno, reserve, reserve, offset, image)
    }

    pub(crate) fn encode_page(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        stored_reserve: Option<usize>,
        offset: u64,
        image: &mut [u8],
    ) -> Result<()> {
        let ctx = PageCtx {
            kind: self.kind,
            path: self.path,
            pgno,
            page_size: image.len(),
            reserve,
            stored_reserve,
            offset,
            partial: false,
            tentative: false,
        };
        self.codec
            .encode(self.state, &ctx, image)
            .map_err(|e| e.context(ctx.describe()))
    }

    pub(crate) fn decode(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        offset: u64,
        partial: bool,
        image: &mut [u8],
    ) -> Result<()> {
        self.decode_as(pgno, reserve, offset, partial, false, image)
    }

    /// [`decode`](Self::decode), with [`PageCtx::tentative`] set as asked.
    pub(crate) fn decode_as(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        offset: u64,
        partial: bool,
        tentative: bool,
        image: &mut [u8],
    ) -> Result<()> {
        let ctx = PageCtx {
            kind: self.kind,
            path: self.path,
            pgno,
            page_size: image.len(),
            reserve,
            stored_reserve: reserve,
            offset,
            partial,
            tentative,
        };
        self.codec
            .decode(self.state, &ctx, image)
            .map_err(|e| e.context(ctx.describe()))
    }
}

// ---------------------------------------------------------------------------
// The VFS
// ---------------------------------------------------------------------------

/// A base VFS whose files are mapped to page images for a [`PageCodec`].
/// See the [module docs](self).
pub struct PageVfs<B: Vfs, C: PageCodec> {
    base: B,
    codec: Arc<C>,
    shapes: Mutex<HashMap<String, Weak<Shape>>>,
}

impl<B: Vfs + fmt::Debug, C: PageCodec> fmt::Debug for PageVfs<B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageVfs")
            .field("base", &self.base)
            .field("reserve", &self.codec.reserve())
            .finish()
    }
}

impl<B: Vfs, C: PageCodec> PageVfs<B, C> {
    /// Wraps `base` with `codec`. The first call in the process also
    /// installs the connection hook that applies [`PageCodec::reserve`] to
    /// new databases.
    pub fn new(base: B, codec: C) -> Self {
        PageVfs::with_shared_codec(base, Arc::new(codec))
    }

    /// Like [`new`](Self::new) with a codec shared with the caller (to read
    /// its statistics or change its settings later).
    pub fn with_shared_codec(base: B, codec: Arc<C>) -> Self {
        install_reserve_hook();
        PageVfs {
            base,
            codec,
            shapes: Mutex::new(HashMap::new()),
        }
    }

    /// The base VFS.
    pub fn base(&self) -> &B {
        &self.base
    }

    /// The codec.
    pub fn codec(&self) -> &Arc<C> {
        &self.codec
    }

    fn shape_for(&self, db: &str) -> Arc<Shape> {
        let mut map = self.shapes.lock();
        if let Some(s) = map.get(db).and_then(Weak::upgrade) {
            return s;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let s = Arc::new(Shape::new());
        map.insert(db.to_owned(), Arc::downgrade(&s));
        s
    }
}

impl<B: Vfs, C: PageCodec> Vfs for PageVfs<B, C> {
    type File = PageFile<B::File, C>;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        let kind = opts.kind;
        let mapping = self.codec.mapping(kind);
        if mapping == Mapping::Pages
            && matches!(kind, FileKind::TempJournal | FileKind::SuperJournal)
        {
            return Err(Error::cant_open(format!(
                "page mapping is not available for {} files (use Stream or None)",
                kind.name()
            )));
        }
        let path = name.path().unwrap_or("<temp>").to_owned();
        let state = match mapping {
            Mapping::None => None,
            _ => Some(
                self.codec
                    .open(&FileInfo { kind, path: &path }, name, opts)?,
            ),
        };
        let base = self.base.open(name, opts)?;
        let shape = match kind {
            FileKind::MainDb | FileKind::MainJournal | FileKind::Wal => {
                name.database_name().map(|db| self.shape_for(db))
            }
            _ => None,
        }
        .unwrap_or_else(|| Arc::new(Shape::new()));
        let map = match (mapping, kind) {
            (Mapping::None, _) => Map::Pass,
            (Mapping::Stream, _) => Map::Stream,
            (Mapping::Pages, FileKind::Wal) => Map::Wal(WalMap::default()),
            (Mapping::Pages, FileKind::MainJournal) => Map::Journal(JournalMap::default()),
            (Mapping::Pages, FileKind::SubJournal) => Map::Sub(SubJournalMap::default()),
            (Mapping::Pages, _) => Map::Db(DbMap::default()),
        };
        Ok(PageFile {
            base,
            codec: self.codec.clone(),
            state,
            kind,
            path,
            map,
            scratch: Vec::new(),
            shape,
        })
    }

    crate::forward_vfs!(base);
}

enum Map {
    Pass,
    Stream,
    Db(DbMap),
    Wal(WalMap),
    Journal(JournalMap),
    Sub(SubJournalMap),
}

/// A file of a [`PageVfs`].
pub struct PageFile<F: File, C: PageCodec> {
    base: F,
    codec: Arc<C>,
    state: Option<C::State>,
    kind: FileKind,
    path: String,
    map: Map,
    scratch: Vec<u8>,
    shape: Arc<Shape>,
}

impl<F: File, C: PageCodec> fmt::Debug for PageFile<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageFile")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("transformed", &self.state.is_some())
            .finish()
    }
}

impl<F: File, C: PageCodec> PageFile<F, C> {
    /// The base file.
    pub fn base(&self) -> &F {
        &self.base
    }

    /// The base file, mutably (bytes written through it bypass the codec).
    pub fn base_mut(&mut self) -> &mut F {
        &mut self.base
    }

    /// The codec's state for this file (`None` for an untransformed kind).
    pub fn state(&self) -> Option<&C::State> {
        self.state.as_ref()
    }

    /// The codec's state for this file, mutably.
    pub fn state_mut(&mut self) -> Option<&mut C::State> {
        self.state.as_mut()
    }

    /// The file's kind.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// The file's path (`"<temp>"` for an anonymous temporary file).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A database file's writes reached a resting point (a sync, the end
    /// of a transaction): pages a writer left in pieces are checksummed,
    /// and what the transaction's writes needed is forgotten.
    fn settle(&mut self) -> Result<()> {
        let Map::Db(m) = &mut self.map else {
            return Ok(());
        };
        let sealed = match self.state.as_mut() {
            Some(state) => {
                let mut io = Io {
                    base: &mut self.base,
                    codec: &*self.codec,
                    state,
                    kind: self.kind,
                    path: &self.path,
                    shape: &self.shape,
                };
                m.seal_pieces(&mut io, &mut self.scratch)
            }
            None => Ok(()),
        };
        m.settled();
        sealed
    }

    /// Who answers `PRAGMA name` (`set`: with a value) on this file.
    fn pragma_owner(&self, name: &str, set: bool) -> PragmaOwner {
        let main = self.kind == FileKind::MainDb;
        if main && name.eq_ignore_ascii_case(RESERVE_PRAGMA) && self.codec.reserve() > 0 {
            PragmaOwner::Reserve
        } else if self.state.is_none() {
            PragmaOwner::Base
        } else if main
            && set
            && matches!(self.map, Map::Db(_))
            && !self.codec.verify_only()
            && name.eq_ignore_ascii_case("page_size")
        {
            PragmaOwner::PageSize
        } else if self.codec.owns_pragma(name) {
            PragmaOwner::Codec
        } else {
            PragmaOwner::Base
        }
    }

    fn status(&mut self, refresh: bool) -> Result<(Option<usize>, Option<usize>)> {
        if let (Map::Db(m), Some(state)) = (&mut self.map, self.state.as_mut()) {
            let mut io = Io {
                base: &mut self.base,
                codec: &*self.codec,
                state,
                kind: self.kind,
                path: &self.path,
                shape: &self.shape,
            };
            if refresh {
                m.refresh(&mut io)?;
            }
            return Ok((m.page_size(), m.reserve()));
        }
        Ok((self.shape.page_size(), self.shape.reserve()))
    }
}

/// Who answers a `PRAGMA` on a [`PageFile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PragmaOwner {
    /// `PRAGMA vfs_page_reserve` on a main database.
    Reserve,
    /// `PRAGMA page_size = N` on a database file under a transforming codec.
    PageSize,
    /// One of [`PageCodec::owns_pragma`].
    Codec,
    /// Anything else: passed to the base untouched.
    Base,
}

/// Splits a `PageFile` into its mapper, scratch buffer and codec-facing
/// parts, or runs `$pass` for an untransformed file.
macro_rules! with_io {
    ($self:ident, $pass:expr, |$map:ident, $io:ident, $scratch:ident| $body:expr) => {{
        let Some(state) = $self.state.as_mut() else {
            return $pass;
        };
        let mut $io = Io {
            base: &mut $self.base,
            codec: &*$self.codec,
            state,
            kind: $self.kind,
            path: &$self.path,
            shape: &$self.shape,
        };
        let $scratch = &mut $self.scratch;
        let $map = &mut $self.map;
        $body
    }};
}

impl<F: File, C: PageCodec> File for PageFile<F, C> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        with_io!(self, self.base.read_at(buf, offset), |map, io, scratch| {
            match map {
                Map::Pass => io.base.read_at(buf, offset),
                Map::Stream => {
                    let got = read_some(io.base, buf, offset)?;
                    let ctx = StreamCtx {
                        kind: io.kind,
                        path: io.path,
                        offset,
                    };
                    io.codec.decode_stream(io.state, &ctx, &mut buf[..got])?;
                    Ok(got)
                }
                Map::Db(m) => m.read(&mut io, scratch, buf, offset),
                Map::Wal(m) => m.read(&mut io, scratch, buf, offset),
                Map::Journal(m) => m.read(&mut io, buf, offset),
                Map::Sub(m) => m.read(&mut io, buf, offset),
            }
        })
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        with_io!(self, self.base.write_at(buf, offset), |map, io, scratch| {
            match map {
                Map::Pass => io.base.write_at(buf, offset),
                Map::Stream => {
                    let out = grow(scratch, buf.len());
                    out.copy_from_slice(buf);
                    let ctx = StreamCtx {
                        kind: io.kind,
                        path: io.path,
                        offset,
                    };
                    io.codec.encode_stream(io.state, &ctx, out)?;
                    io.base.write_at(out, offset)
                }
                Map::Db(m) => m.write(&mut io, scratch, buf, offset),
                Map::Wal(m) => m.write(&mut io, scratch, buf, offset),
                Map::Journal(m) => m.write(&mut io, scratch, buf, offset),
                Map::Sub(m) => m.write(&mut io, scratch, buf, offset),
            }
        })
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        match &mut self.map {
            Map::Db(m) => m.invalidate(),
            Map::Wal(m) => m.truncated(size),
            Map::Journal(m) => m.truncated(),
            Map::Sub(m) => m.truncated(size),
            Map::Pass | Map::Stream => {}
        }
        self.base.truncate(size)
    }

    fn sync(&mut self, flags: SyncFlags) -> Result<()> {
        self.settle()?;
        self.base.sync(flags)
    }

    fn size(&mut self) -> Result<u64> {
        let size = self.base.size()?;
        Ok(match &self.map {
            Map::Sub(m) => size.max(m.held_end()),
            _ => size,
        })
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        self.base.lock(level)
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        if level > LockLevel::Shared {
            if let Map::Db(m) = &mut self.map {
                m.invalidate();
            }
            return self.base.unlock(level);
        }
        // The lock goes in any case.
        let settled = self.settle();
        self.base.unlock(level).and(settled)
    }

    fn check_reserved_lock(&mut self) -> Result<bool> {
        self.base.check_reserved_lock()
    }

    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        let pragma = match ctl.control() {
            Control::Pragma(mut p) => {
                let owner = self.pragma_owner(p.name(), p.value().is_some());
                if owner == PragmaOwner::Reserve {
                    if p.value().is_some() {
                        return Err(Error::new(
                            codes::SQLITE_ERROR,
                            format!("PRAGMA {RESERVE_PRAGMA} is read-only"),
                        ));
                    }
                    p.set_result(&self.codec.reserve().to_string());
                    return Ok(());
                }
                Some(owner)
            }
            _ => None,
        };
        match pragma {
            // Not the layer's: SQLite's own pragmas (journal_mode,
            // cache_size, …) reach the base without any I/O here.
            Some(PragmaOwner::Base) | Some(PragmaOwner::Reserve) => {}
            Some(PragmaOwner::PageSize) => {
                // Page 1 exists: a new page size would only take effect
                // through VACUUM, which writes the new pages in pieces of
                // the old size. Swallowed, as cksumvfs does. (Reading the
                // header is this pragma's own I/O.)
                if self.status(true)?.0.is_some() {
                    return Ok(());
                }
            }
            Some(PragmaOwner::Codec) | None => {
                // The codec's own pragmas see the stored header as it is
                // now; other file controls see what the layer knows.
                let (page_size, reserve) = self.status(pragma.is_some())?;
                let status = FileStatus {
                    kind: self.kind,
                    path: &self.path,
                    page_size,
                    reserve,
                };
                if let Some(state) = self.state.as_mut()
                    && let Some(r) = self.codec.file_control(state, &status, ctl)
                {
                    return r;
                }
                if self.state.is_some() && ctl.op() == ffi::SQLITE_FCNTL_MMAP_SIZE {
                    // No memory mapping under a transform: answer "not
                    // handled" instead of letting the base map the file.
                    return Err(Error::not_found());
                }
            }
        }
        self.base.file_control(ctl)
    }

    fn sector_size(&self) -> u32 {
        self.base.sector_size()
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        let caps = self.base.device_characteristics();
        if self.state.is_some() {
            caps.without(DeviceCharacteristics::SUBPAGE_READ)
        } else {
            caps
        }
    }

    fn is_read_only(&self) -> bool {
        self.base.is_read_only()
    }

    fn shm(&self) -> ShmSupport {
        self.base.shm()
    }

    fn shm_map(&mut self, region: u32, size: u32, extend: bool) -> Result<Option<ShmRegion>> {
        self.base.shm_map(region, size, extend)
    }

    fn shm_lock(&mut self, offset: u32, n: u32, op: ShmLockOp) -> Result<()> {
        self.base.shm_lock(offset, n, op)
    }

    fn shm_barrier(&mut self) {
        self.base.shm_barrier()
    }

    fn shm_unmap(&mut self, delete: bool) -> Result<()> {
        self.base.shm_unmap(delete)
    }
}

/// Installs (once per process) the hook that requests
/// [`PageCodec::reserve`] reserved bytes on every new connection whose main
/// file answers `PRAGMA vfs_page_reserve`.
pub fn install_reserve_hook() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let hooked = crate::hooks::on_connection(|conn| {
            // Best effort: a connection whose VFS has no page layer answers
            // "not found"; errors never fail the open.
            if let Ok(Some(answer)) = conn.file_control_pragma("main", RESERVE_PRAGMA, None)
                && let Ok(n) = answer.trim().parse::<u8>()
                && n > 0
                && let Err(e) = conn.set_reserve_bytes("main", n)
            {
                crate::log(
                    e.code().unwrap_or(codes::SQLITE_ERROR),
                    &format!("page layer: could not request {n} reserved bytes: {e}"),
                );
            }
            Ok(())
        });
        if let Err(e) = hooked {
            crate::log(
                e.code().unwrap_or(codes::SQLITE_ERROR),
                &format!("page layer: connection hook unavailable: {e}"),
            );
        }
    });
}
