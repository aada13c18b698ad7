//! The page-mapping layer shared by page-transforming shims (checksums,
//! encryption): safe Rust on top of any [`Vfs`](vfs_core::Vfs).
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
//! The codec chooses, per [`FileKind`](vfs_core::FileKind), a [`Mapping`]:
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
//!   for a write, merged and encoded whole. A read of part of a page goes
//!   through [`PageCodec::decode_part`], which a codec may serve from a
//!   decoded copy of the stored page it keeps. A stored page that does not
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
//! checksums), handed to [`PageCodec::wal_frame_checksum`]. The codec sees
//! bytes 0–15 of the frame's header ([`PageCtx::frame_header`]: page
//! number, commit size, salts). A write that covers only part of a frame's
//! page or header (SQLite splits a write at its sync point when the base
//! lacks `SQLITE_IOCAP_POWERSAFE_OVERWRITE`) is held back until the rest of
//! that page arrives, then encoded and written whole. While the WAL header
//! names no valid page size, nothing past the header is read or written
//! (`SQLITE_IOERR_READ` / `SQLITE_IOERR_WRITE`): nothing passes unmapped.
//!
//! A read of a whole frame (header and page in one read) is how SQLite
//! recovers a WAL: for a frame this handle did not write in the current
//! WAL generation it is decoded with [`PageCtx::recovery`] set, and a frame
//! the codec finds [torn](PageCtx::torn) is returned as zeros with its
//! salts inverted, so SQLite ends the log there whatever its checksum
//! says. SQLite also reads whole frames to checksum again the frames of the
//! transaction it is committing (`walRewriteChecksums`): those are this
//! handle's own, and a failure there is an error.
//!
//! ## Rollback journals and sub-journals
//!
//! SQLite writes (and reads back) each record as separate calls: the 4-byte
//! page number, the page image at the next offset, then (main journals only)
//! the 4-byte checksum. A read or write of at least 512 bytes right after a
//! 4-byte one at the previous offset is therefore a record's page: it is
//! decoded or encoded when its length is the journal's page size, and
//! refused otherwise (`SQLITE_IOERR_READ` / `SQLITE_IOERR_WRITE`), never
//! passed through. The page size is the one of the first journal header
//! (bytes 24–27 at offset 0), following SQLite's `readJournalHdr`: 0 means
//! the database's page size (SQLite's "the pager's page size"), anything
//! that is not a page size leaves records unmappable (SQLite does not play
//! such a journal back). Records with page number 0 and the super-journal
//! marker (the pending-byte page number), which SQLite reads and discards,
//! read as zeros; the super-journal's name written after its marker passes
//! through. Headers pass through, except that the first header goes to
//! [`PageCodec::journal_header`] both ways (the codec may keep 20 bytes of
//! its own in bytes 28–47, and refuse a journal: SQLite then sees no valid
//! header and ignores it). Transformed files report a sector size of at
//! least 512 bytes, so that first header is never shorter.
//!
//! Records this handle wrote since it wrote the first header are its own
//! transaction's; any other record (a hot journal being played back) is
//! decoded with [`PageCtx::recovery`] set, and one the codec finds
//! [torn](PageCtx::torn) ends as a short read, which makes SQLite stop the
//! playback there, exactly as for a journal cut short by a crash.
//!
//! A sub-journal is first written by SQLite as one chunk when its in-memory
//! buffer spills (64 KiB by default): the layer holds that chunk (reads are
//! served from it) until the page size is known from the next record, then
//! encodes every record in it and writes it.
//!
//! ## Main databases and locks
//!
//! The codec hears of every lock change of a main database file
//! ([`PageCodec::locked`]) and may ask the layer to read and decode page 1
//! right then, to know the stored page 1 as it is under the lock.
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
//!    end of the page, the lowest layer last. A codec claims its slice with
//!    [`PageCodec::reserve`] and finds it at [`Stacking::slice`]
//!    ([`PageCtx::stacking`]): the layer learns the bytes the layers below
//!    claim from its base when it is built
//!    ([`Vfs::page_layers`](vfs_core::Vfs::page_layers)), and those the
//!    layers above claim from the open
//!    ([`OpenOptions::page_reserve_above`](vfs_core::OpenOptions::page_reserve_above)).
//!    [`PageCtx::reserve`] is the database's total reserve, so a codec can
//!    check the file is in its stack's format ([`Stacking::total`]).
//! 4. Page-1 bytes 16–23 stay in clear in the stored image; WAL frame header
//!    bytes 0–15 are never changed by the layer (only bytes 16–23 go to the
//!    hook).
//! 5. Errors: return [`Error::new`](vfs_core::Error::new) with a precise code
//!    (`SQLITE_IOERR_DATA` for a checksum or authentication failure,
//!    `SQLITE_NOTADB` for a wrong key, …); the layer prefixes the message
//!    with the file, the kind, the page number and the offset
//!    ([`PageCtx::describe`]).
//! 6. Fail closed: answer [`PageCtx::torn`] only during
//!    [`recovery`](PageCtx::recovery), and only when the image cannot be
//!    what the key holder wrote in a write that completed (a wrong key is
//!    an error, never torn). Outside recovery the layer reports a torn
//!    answer as `SQLITE_IOERR_DATA`.
//!
//! # What the layer does for the file
//!
//! * `SQLITE_IOCAP_SUBPAGE_READ` is cleared for transformed files (so SQLite
//!   never reads part of an overflow page directly), and so are
//!   `SQLITE_IOCAP_ATOMIC*` and `SQLITE_IOCAP_BATCH_ATOMIC` (with them,
//!   SQLite keeps rollback journals in memory and spills them in chunks that
//!   are not records, which would bypass the mapping); every other device
//!   characteristic, notably `POWERSAFE_OVERWRITE`, is the base's.
//! * The sector size is the base's, but at least 512 bytes for transformed
//!   files (SQLite sizes rollback-journal headers by it, which leaves a
//!   codec room in the first header).
//! * No memory mapping: the layer writes its own `read_at`, so
//!   `forward_file!` gives its files no `xFetch` (a page SQLite read in
//!   place would bypass the transform), and `SQLITE_FCNTL_MMAP_SIZE` is not
//!   forwarded to the base of a transformed file.
//! * Locks, shared memory (both [`ShmSupport::Group`](vfs_core::ShmSupport::Group) and
//!   [`ShmSupport::Forward`](vfs_core::ShmSupport::Forward)), sync, truncate and size go to the
//!   base (the codec of a main database hears of lock changes,
//!   [`PageCodec::locked`]). File controls go first to [`PageCodec::file_control`], then to the
//!   layer, then to the base.
//! * `PRAGMA`s: the layer answers its own (`vfs_page_reserve` below, and
//!   swallows `page_size = N` on an existing database under a transforming
//!   codec), the codec the ones it [owns](PageCodec::owns_pragma) (after a
//!   fresh read of the stored header); every other pragma goes to the base
//!   without any I/O by the layer, so `journal_mode`, `cache_size` and the
//!   like cost and answer exactly what they would on the base alone, even
//!   when its reads fail.
//!
//! # Stacking
//!
//! Page layers compose by plain nesting: `PageVfs::new(PageVfs::new(base,
//! lower), upper)`, with [`Wrap`](https://docs.rs/vfs-observe) or any shim
//! that forwards [`Vfs::page_layers`](vfs_core::Vfs::page_layers) (the
//! [`forward_vfs!`](vfs_core::forward_vfs) macro does) at any level. A
//! [`PageVfs`] answers `page_layers` with its base's layers and its own on
//! top, so [`register`](vfs_core::register) sees the whole stack and refuses
//! one that cannot work ([`PageLayers::check`](vfs_core::PageLayers::check):
//! more than 255 reserved bytes, or too few usable bytes at the smallest
//! page size every layer accepts, [`PageCodec::min_page_size`]).
//!
//! # New databases get the reserve automatically
//!
//! The main database file of a page layer answers
//! `PRAGMA vfs_page_reserve` with the whole stack's reserve (the topmost
//! page layer answers: the slices of the layers above it, its own, those
//! below it). Creating a
//! [`PageVfs`] installs (once per process) a connection hook
//! ([`hooks::on_connection`](vfs_core::hooks::on_connection)) that asks every
//! new connection's main file this pragma and, when a number comes back,
//! requests that many reserved bytes (`SQLITE_FCNTL_RESERVE_BYTES`). A new
//! database is therefore created in the codec's format from its first page;
//! an existing database keeps its format until it is rewritten by `VACUUM`
//! (which then applies the requested reserve: SQLite never shrinks one).
//!
//! # Example: a codec that flips bits
//!
//! ```
//! use vfs_page::{Mapping, PageCodec, PageCtx, PageVfs};
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
//!     fn open(&self, _: &vfs_page::FileInfo<'_>, _: &OpenName<'_>, _: OpenOptions) -> Result<()> {
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

#![forbid(unsafe_code)]

mod codec;
mod codec_io;
mod db;
mod geometry;
mod journal;
mod reserve;
mod resize;
mod sqlite_format;
#[cfg(test)]
mod tests;
mod vfs;
mod wal;

pub use codec::{
    Direction, FileInfo, FileStatus, Mapping, PageCodec, PageCtx, Stacking, StreamCtx,
};
pub use reserve::{RESERVE_PRAGMA, install_reserve_hook};
pub use vfs::{PageFile, PageVfs};
