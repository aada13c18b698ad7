//! What a database file's handle remembers so a verify-only codec can
//! follow SQLite through a page size change.
//!
//! SQLite changes the page size of an existing database (`VACUUM` after
//! `PRAGMA page_size = N`, a backup into it from a database of another page
//! size) in one write transaction, through a pager that keeps the **old**
//! size: it writes the new layout in pieces of the old size, page 1 (whose
//! header names the new size) usually last because the b-tree holds it; a
//! rollback writes the old pages back the same way. A checksum layer must
//! end with a valid trailer at the end of every page of whichever layout
//! the header names. Three things make that work, all forgotten when the
//! file settles (a sync or the end of the transaction):
//!
//! * **Kept bytes.** Before the codec stamps a page, the bytes SQLite had
//!   in the codec's area are kept. When page 1 then names another size,
//!   every page stamped in the old layout during this transaction is laid
//!   out again: its kept bytes put back, then written through the new
//!   layout ([`DbMap::change_page_size`](crate::db::DbMap)).
//! * **Pieces.** A piece smaller than the new page size is stored as
//!   written; the page's checksum is computed over the stored page when its
//!   last piece is written, and again when another piece follows. The layer
//!   so only changes bytes SQLite wrote in this transaction, all of which
//!   its journal holds: a rollback restores every byte. (SQLite writes
//!   every piece of a new page; a page another writer left without its last
//!   piece is checksummed when the file settles.)
//! * **The transaction's layout.** A page-1 header naming the page size and
//!   reserve the transaction started with is a rollback: every page is
//!   about to be written back, nothing is laid out again.
//!
//! The kept bytes serve a change of the reserve alone too (`VACUUM` after
//! `SQLITE_FCNTL_RESERVE_BYTES`, which is how checksums are turned on for an
//! existing database): pages spilled before page 1 brought the new reserve
//! are stamped again in the new format.

use std::collections::BTreeMap;

/// Pages whose bytes are kept per transaction at most; a page size change
/// after more page writes than this is refused (nothing is guessed).
const KEEP_LIMIT: usize = 1 << 18;

/// The bytes SQLite wrote where the codec stamped a page.
#[derive(Debug)]
pub(crate) struct Kept {
    /// The size of the page stamped.
    pub(crate) page_size: usize,
    /// The page's last bytes, as SQLite wrote them.
    pub(crate) bytes: Vec<u8>,
}

#[derive(Debug, Default)]
pub(crate) struct Resize {
    /// The page size and reserve at the first write since the file
    /// settled.
    txn_layout: Option<(Option<usize>, Option<usize>)>,
    /// (offset, page size, start in `arena`, length) for every page
    /// stamped since the file settled, in write order.
    kept: Vec<(u64, usize, usize, usize)>,
    arena: Vec<u8>,
    /// More pages were stamped than [`KEEP_LIMIT`].
    overflowed: bool,
    /// Offset → length of the pieces stored as written since the file
    /// settled.
    pieces: BTreeMap<u64, usize>,
}

impl Resize {
    pub(crate) fn settled(&mut self) {
        self.txn_layout = None;
        self.kept.clear();
        self.arena.clear();
        self.overflowed = false;
        self.pieces.clear();
    }

    /// Called before every write with the page size and reserve then
    /// known.
    pub(crate) fn writing(&mut self, page_size: Option<usize>, reserve: Option<usize>) {
        if self.txn_layout.is_none() {
            self.txn_layout = Some((page_size, reserve));
        }
    }

    /// Whether `page_size` and `reserve` are the layout this transaction
    /// started with (a page 1 naming them after a change is a rollback).
    pub(crate) fn started_with(&self, page_size: usize, reserve: usize) -> bool {
        self.txn_layout == Some((Some(page_size), Some(reserve)))
    }

    /// Keeps `area`, the last bytes of the `page_size`-byte page at
    /// `offset` as SQLite wrote them, where the codec is about to stamp it.
    pub(crate) fn keep(&mut self, offset: u64, page_size: usize, area: &[u8]) {
        if self.kept.len() >= KEEP_LIMIT {
            self.overflowed = true;
            return;
        }
        self.kept
            .push((offset, page_size, self.arena.len(), area.len()));
        self.arena.extend_from_slice(area);
    }

    /// Whether every page stamped in this transaction was kept.
    pub(crate) fn complete(&self) -> bool {
        !self.overflowed
    }

    /// The kept bytes of each page stamped in this transaction (the last
    /// write of each), and forgets them.
    pub(crate) fn take_kept(&mut self) -> BTreeMap<u64, Kept> {
        let mut out = BTreeMap::new();
        for &(offset, page_size, start, len) in &self.kept {
            let bytes = self.arena[start..start + len].to_vec();
            out.insert(offset, Kept { page_size, bytes });
        }
        self.kept.clear();
        self.arena.clear();
        out
    }

    pub(crate) fn add_piece(&mut self, offset: u64, len: usize) {
        self.pieces.insert(offset, len);
    }

    pub(crate) fn has_piece(&self, offset: u64) -> bool {
        self.pieces.contains_key(&offset)
    }

    /// The start of every `page_size`-byte page some of whose pieces were
    /// stored but not its last one (whose checksum is so still missing),
    /// and forgets the pieces.
    pub(crate) fn take_unsealed(&mut self, page_size: usize) -> Vec<u64> {
        let p = page_size as u64;
        let mut out: Vec<u64> = Vec::new();
        for (&off, &len) in &self.pieces {
            let start = off - off % p;
            if !self.pieces.contains_key(&(start + p - len as u64)) && out.last() != Some(&start) {
                out.push(start);
            }
        }
        self.pieces.clear();
        out
    }
}
