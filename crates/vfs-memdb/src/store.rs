//! The bytes of one in-memory file, kept as fixed-size pages.
//!
//! Invariant: `pages` holds exactly `ceil(len / PAGE)` pages, each of
//! [`PAGE`] bytes, or [`LENDABLE`] once it has been lent. The bytes past
//! the end of the file in the last page are zero, except in a page an
//! append made from a spare block ([`Store::with_spare`]), where they are
//! that block's old bytes until the file covers them: they are zeroed
//! before they can be seen, when the file grows over them without writing
//! them ([`Store::write`] past the end, [`Store::truncate`] up) or when the
//! page is made lendable. Appends, which SQLite makes a journal record or
//! a WAL frame at a time, so copy only the bytes written. A page written
//! whole when it is created is made from the written bytes, with no zeroing
//! first (how files grow by aligned pages).
//!
//! Each page is an `Arc<[u8]>` (its reference counts sit right before its
//! bytes, in the same allocation), so that SQLite can read it in place
//! ([`Store::lend`], memory-mapped reads): a lent page is shared, and a
//! write to it (or the cut of a `truncate`) goes to a copy that replaces it
//! here while SQLite keeps reading the bytes it was lent; dropping the page
//! from the store (truncation, deletion) leaves it to its last reader.
//! SQLite's locking means a page is not written while another connection
//! reads it, so the copy is a safety net, not a path taken in practice.

use std::iter::repeat_n;
use std::sync::Arc;

use vfs_core::Mapping;

/// Size of one storage page. SQLite's default page size, so an aligned
/// database page is one `memcpy` from or to one storage page; other page
/// sizes, journal records and WAL frames simply span pages.
pub(crate) const PAGE: usize = 4096;

/// The length of a page once it has been lent: its bytes, then the zeroed
/// room SQLite may overread ([`Mapping::OVERREAD`]).
pub(crate) const LENDABLE: usize = PAGE + Mapping::OVERREAD;

/// One storage page, shared while lent to SQLite.
pub(crate) type Page = Arc<[u8]>;

/// What [`Store::lend`] answers.
pub(crate) enum Lend {
    /// The bytes, lent.
    Lent(Mapping),
    /// The bytes lie in one page, which lacks the room after its bytes a
    /// lent page needs: [`Store::make_lendable`] gives it.
    NeedsRoom,
    /// Not lendable: past the end of the file, or across storage pages.
    Never,
}

/// A growable byte file made of [`PAGE`]-sized heap blocks.
#[derive(Default)]
pub(crate) struct Store {
    pages: Vec<Page>,
    len: u64,
    /// Blocks of [`PAGE`] bytes nobody else holds, taken for new pages
    /// before the allocator is asked (a new journal gets those of the last
    /// one deleted: see [`Store::with_spare`]). Their bytes are stale and
    /// are overwritten or zeroed when they become pages.
    spare: Vec<Page>,
}

/// Splits a byte position into (page index, offset in page).
fn split(pos: usize) -> (usize, usize) {
    (pos / PAGE, pos % PAGE)
}

/// A new page of `n` zeros (one allocation).
fn zeros(n: usize) -> Page {
    repeat_n(0u8, n).collect()
}

/// `page` for writing: the page itself unless it is lent, else a copy put
/// in its place (the lent bytes stay with their readers).
fn writable(page: &mut Page) -> &mut [u8] {
    if Arc::get_mut(page).is_none() {
        *page = Arc::from(&page[..]);
    }
    // Unique now: `make_mut` copies nothing.
    Arc::make_mut(page)
}

impl Store {
    /// A store holding a copy of `bytes`.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Store {
        let mut store = Store::default();
        store.write(bytes, 0);
        store
    }

    /// An empty store that takes its first pages from `spare` (blocks of
    /// [`PAGE`] bytes from [`Store::into_spare`]).
    pub(crate) fn with_spare(spare: Vec<Page>) -> Store {
        Store {
            spare,
            ..Store::default()
        }
    }

    /// The store's blocks that can serve another store (those of [`PAGE`]
    /// bytes that no reader was lent), for [`Store::with_spare`].
    pub(crate) fn into_spare(self) -> Vec<Page> {
        let mut spare = self.spare;
        spare.extend(
            self.pages
                .into_iter()
                .filter(|p| p.len() == PAGE && Arc::strong_count(p) == 1),
        );
        spare
    }

    /// A new last page holding `bytes` (at most [`PAGE`]), which end the
    /// file: a spare block if there is one, its bytes after `bytes` left as
    /// they were (past the end of the file: see the module's invariant);
    /// else a new allocation, zeros after `bytes`.
    fn appended_page(&mut self, bytes: &[u8]) -> Page {
        if let Some(mut page) = self.spare.pop()
            && let Some(block) = Arc::get_mut(&mut page)
        {
            block[..bytes.len()].copy_from_slice(bytes);
            return page;
        }
        if bytes.len() == PAGE {
            return Arc::from(bytes);
        }
        let mut page = zeros(PAGE);
        writable(&mut page)[..bytes.len()].copy_from_slice(bytes);
        page
    }

    /// A new page of zeros: a spare block zeroed, or a new allocation.
    fn zeroed_page(&mut self) -> Page {
        if let Some(mut page) = self.spare.pop()
            && let Some(block) = Arc::get_mut(&mut page)
        {
            block.fill(0);
            return page;
        }
        zeros(PAGE)
    }

    /// How many bytes of page `index` belong to the file.
    fn held(&self, index: usize) -> usize {
        (self.len as usize).saturating_sub(index * PAGE).min(PAGE)
    }

    /// The file's size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Copies bytes from `offset` into `buf`; returns how many were copied
    /// (fewer than `buf.len()` at the end of the file). Never allocates.
    pub(crate) fn read(&self, buf: &mut [u8], offset: u64) -> usize {
        if offset >= self.len {
            return 0;
        }
        // offset < len, and len always fits in usize (see `write`).
        let start = offset as usize;
        let n = buf.len().min(self.len as usize - start);
        let mut done = 0;
        while done < n {
            let (page, at) = split(start + done);
            let take = (n - done).min(PAGE - at);
            buf[done..done + take].copy_from_slice(&self.pages[page][at..at + take]);
            done += take;
        }
        n
    }

    /// Lends the `len` bytes at `offset` for SQLite to read in place. Never
    /// allocates.
    pub(crate) fn lend(&self, offset: u64, len: usize) -> Lend {
        let end = offset.saturating_add(len as u64);
        if len == 0 || end > self.len {
            return Lend::Never;
        }
        // offset < len, which fits in usize.
        let (page, at) = split(offset as usize);
        if at + len > PAGE {
            // Across storage pages (database pages larger than 4 KiB):
            // SQLite reads those.
            return Lend::Never;
        }
        match Mapping::lend(&self.pages[page], at, len) {
            Some(m) => Lend::Lent(m),
            None => Lend::NeedsRoom,
        }
    }

    /// Makes the page holding `offset` [`LENDABLE`] bytes long (a copy of
    /// the file's bytes in it with zeros after them), once: what
    /// [`Store::lend`] needs besides the bytes. Pages never lent keep their
    /// plain size.
    pub(crate) fn make_lendable(&mut self, offset: u64) {
        let Some(index) = usize::try_from(offset).ok().map(|o| split(o).0) else {
            return;
        };
        let held = self.held(index);
        let Some(page) = self.pages.get_mut(index) else {
            return;
        };
        if page.len() < LENDABLE {
            *page = page[..held]
                .iter()
                .copied()
                .chain(repeat_n(0, LENDABLE - held))
                .collect();
        }
    }

    /// Writes all of `buf` at `offset`, growing the file (with zeros in any
    /// gap) when it ends past the current size. The caller has checked that
    /// `offset + buf.len()` fits in `usize`. Allocates only new pages, and
    /// a copy of a page lent to SQLite.
    pub(crate) fn write(&mut self, buf: &[u8], offset: u64) {
        let start = offset as usize;
        if offset > self.len {
            self.grow_with_zeros(start);
        }
        let mut done = 0;
        while done < buf.len() {
            let (page, at) = split(start + done);
            let take = (buf.len() - done).min(PAGE - at);
            let bytes = &buf[done..done + take];
            if page == self.pages.len() && at == 0 {
                // The last piece of the write if it is short: what follows
                // it in the page is past the end of the file.
                let fresh = self.appended_page(bytes);
                self.pages.push(fresh);
                done += take;
                continue;
            }
            if page == self.pages.len() {
                let fresh = self.zeroed_page();
                self.pages.push(fresh);
            }
            writable(&mut self.pages[page])[at..at + take].copy_from_slice(bytes);
            done += take;
        }
        let end = (start + buf.len()) as u64;
        if end > self.len {
            self.len = end;
        }
    }

    /// Extends the file with zeros to `size` bytes (`size > len`): the
    /// bytes past the end of the last page are zeroed (they may be a spare
    /// block's), whole new pages are added.
    fn grow_with_zeros(&mut self, size: usize) {
        let (last, at) = split(self.len as usize);
        if at != 0 {
            let end = (size - last * PAGE).min(PAGE);
            writable(&mut self.pages[last])[at..end].fill(0);
        }
        while self.pages.len() < size.div_ceil(PAGE) {
            let fresh = self.zeroed_page();
            self.pages.push(fresh);
        }
        self.len = size as u64;
    }

    /// Sets the size to `size`: shrinking frees whole pages (a lent one
    /// lives on with its readers) and zeroes the cut bytes of the last one;
    /// growing appends zeros. The caller has checked that `size` fits in
    /// `usize`.
    pub(crate) fn truncate(&mut self, size: u64) {
        let size_usize = size as usize;
        if size < self.len {
            self.pages.truncate(size_usize.div_ceil(PAGE));
            let (page, at) = split(size_usize);
            let cut_end = (self.len as usize - page * PAGE).min(PAGE);
            if at != 0 && at < cut_end {
                writable(&mut self.pages[page])[at..cut_end].fill(0);
            }
            self.len = size;
        } else if size > self.len {
            self.grow_with_zeros(size_usize);
        }
    }

    /// The whole file as one vector.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len as usize);
        for page in &self.pages {
            let n = (self.len as usize - out.len()).min(PAGE);
            out.extend_from_slice(&page[..n]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference model: the same operations on a plain vector; and the
    /// layout invariant (pages of PAGE or LENDABLE bytes; past the end of
    /// the file zeros, except a spare block's old bytes in a PAGE-sized
    /// last page, which `spare_tail` allows).
    fn check_tails(store: &Store, model: &[u8], spare_tail: bool) {
        assert_eq!(store.len(), model.len() as u64);
        assert_eq!(store.to_vec(), model);
        assert_eq!(store.pages.len(), model.len().div_ceil(PAGE));
        for (i, page) in store.pages.iter().enumerate() {
            assert!(page.len() == PAGE || page.len() == LENDABLE, "page {i}");
            let held = (model.len() - i * PAGE).min(PAGE);
            if spare_tail && page.len() == PAGE {
                continue;
            }
            assert!(page[held..].iter().all(|&b| b == 0), "page {i} tail");
        }
    }

    fn check(store: &Store, model: &[u8]) {
        check_tails(store, model, false);
    }

    #[test]
    fn unaligned_writes_and_reads_across_pages() {
        let mut s = Store::default();
        let mut model = Vec::new();
        // (offset, len) pairs: header-sized, journal-record-sized, a WAL
        // frame header plus page straddling page boundaries, a gap.
        let ops: &[(usize, usize)] = &[
            (0, 100),
            (100, 4000),
            (4090, 12),
            (32, 24),
            (56, 4096),
            (10_000, 3),
            (8191, 2),
        ];
        for (i, &(off, len)) in ops.iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|k| (k * 7 + i * 13 + 1) as u8).collect();
            s.write(&data, off as u64);
            if model.len() < off + len {
                model.resize(off + len, 0);
            }
            model[off..off + len].copy_from_slice(&data);
            check(&s, &model);
        }
        // Partial reads anywhere, including past the end.
        for &(off, len) in &[(0, 100), (4095, 2), (4000, 5000), (10_001, 10), (20_000, 4)] {
            let mut buf = vec![0xAAu8; len];
            let n = s.read(&mut buf, off as u64);
            let expect_n = len.min(model.len().saturating_sub(off));
            assert_eq!(n, expect_n, "read {len} at {off}");
            assert_eq!(&buf[..n], &model[off.min(model.len())..][..n]);
            assert!(
                buf[n..].iter().all(|&b| b == 0xAA),
                "nothing written past n"
            );
        }
    }

    /// A journal built on the blocks of a deleted one: whatever the
    /// writes, the old bytes never show (past the end, in gaps, in grown
    /// space), and lent blocks are never handed on.
    #[test]
    fn a_store_on_spare_blocks_shows_none_of_their_old_bytes() {
        let mut old = Store::from_bytes(&[0xEE; 4 * PAGE]);
        old.make_lendable(0);
        let Lend::Lent(lent) = old.lend(0, 16) else {
            panic!("page 0 is lendable");
        };
        let spare = old.into_spare();
        assert_eq!(spare.len(), 3, "the lent block stays with its reader");
        drop(lent);
        let mut s = Store::with_spare(spare);
        let mut model = Vec::new();
        // A journal header, records as SQLite writes them (page number,
        // page, checksum), a write past a gap, a whole aligned page.
        let ops: &[(usize, usize)] = &[
            (0, 28),
            (PAGE, 4),
            (PAGE + 4, PAGE),
            (2 * PAGE + 4, 4),
            (5 * PAGE + 7, 9),
            (6 * PAGE, PAGE),
        ];
        for (i, &(off, len)) in ops.iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|k| (k * 5 + i + 1) as u8 | 1).collect();
            s.write(&data, off as u64);
            if model.len() < off + len {
                model.resize(off + len, 0);
            }
            model[off..off + len].copy_from_slice(&data);
            check_tails(&s, &model, true);
        }
        s.truncate(PAGE as u64 + 100);
        model.truncate(PAGE + 100);
        check_tails(&s, &model, true);
        s.truncate(9 * PAGE as u64);
        model.resize(9 * PAGE, 0);
        check_tails(&s, &model, true);
    }

    /// An append into a spare block copies only what is written; the
    /// block's old bytes after it are never seen: not through a write past
    /// the end in the same page, not through a truncation up, not in a lent
    /// page (its bytes past the end of the file and its overread room are
    /// zero).
    #[test]
    fn an_appended_spare_block_shows_zeros_past_what_was_written() {
        let stale = || Store::from_bytes(&[0xEE; 3 * PAGE]).into_spare();
        // A journal record's page number opens a block: the rest is stale.
        let mut s = Store::with_spare(stale());
        s.write(&[1, 2, 3, 4], 0);
        assert_eq!(s.pages[0][4..], [0xEE; PAGE - 4], "nothing zeroed");
        // A write further in the same page: the gap reads as zeros.
        s.write(&[5], 100);
        let mut model = vec![0u8; 101];
        model[..4].copy_from_slice(&[1, 2, 3, 4]);
        model[100] = 5;
        check_tails(&s, &model, true);
        // Grown by truncation, into the next page too.
        s.truncate(PAGE as u64 + 10);
        model.resize(PAGE + 10, 0);
        check(&s, &model);
        // Lent: the bytes past the end and the overread room are zero.
        let mut s = Store::with_spare(stale());
        s.write(&[7; 600], 0);
        s.make_lendable(0);
        assert!(s.pages[0][600..].iter().all(|&b| b == 0));
        let Lend::Lent(lent) = s.lend(0, 512) else {
            panic!("the first 512 bytes are in the file")
        };
        assert_eq!(lent.shared_bytes(), Some(&[7; 512][..]));
        check(&s, &[7; 600]);
    }

    #[test]
    fn truncate_zeroes_the_cut_and_regrows_with_zeros() {
        let mut s = Store::from_bytes(&[0xFF; 3 * PAGE]);
        s.truncate(PAGE as u64 + 10);
        let mut model = vec![0xFF; PAGE + 10];
        check(&s, &model);
        // Growing again by a write past the end shows zeros in the gap,
        // not the bytes that were cut.
        s.write(&[1, 2, 3], 2 * PAGE as u64 + 5);
        model.resize(2 * PAGE + 8, 0);
        model[2 * PAGE + 5..].copy_from_slice(&[1, 2, 3]);
        check(&s, &model);
        // Growing by truncate appends zeros.
        s.truncate(4 * PAGE as u64);
        model.resize(4 * PAGE, 0);
        check(&s, &model);
        s.truncate(0);
        check(&s, &[]);
    }

    /// A lent page is SQLite's to read until it gives it back: writes over
    /// it, the cut of a truncation through it, truncating it away and
    /// dropping the store all leave its bytes as lent, while the store
    /// itself shows the changes; the room after a lent page is zeroed.
    #[test]
    fn a_lent_page_keeps_its_bytes_while_the_store_changes() {
        let mut s = Store::from_bytes(&[0x11; 3 * PAGE]);
        assert!(
            matches!(s.lend(PAGE as u64, PAGE), Lend::NeedsRoom),
            "no room after the page yet"
        );
        let Lend::Lent(quarter) = s.lend(PAGE as u64 + 1024, 1024) else {
            panic!("a 1 KiB database page with its page's bytes after it")
        };
        s.make_lendable(PAGE as u64);
        let Lend::Lent(whole) = s.lend(PAGE as u64, PAGE) else {
            panic!("page 1 lendable")
        };
        assert!(matches!(s.lend(PAGE as u64 + 2048, 4096), Lend::Never));
        assert!(matches!(s.lend(3 * PAGE as u64, 512), Lend::Never));
        assert_eq!(whole.shared_bytes(), Some(&[0x11; PAGE][..]));
        // Overwrite, then truncate through, then drop the lent page.
        s.write(&[0x22; 100], PAGE as u64 + 1024);
        let mut buf = [0u8; 100];
        s.read(&mut buf, PAGE as u64 + 1024);
        assert_eq!(buf, [0x22; 100], "the store has the new bytes");
        s.truncate(PAGE as u64 + 10);
        check(&s, &[&[0x11; PAGE][..], &[0x11; 10][..]].concat());
        s.truncate(0);
        s.write(&[0x33; 2 * PAGE], 0);
        drop(s);
        assert_eq!(whole.shared_bytes(), Some(&[0x11; PAGE][..]), "as lent");
        assert_eq!(quarter.shared_bytes(), Some(&[0x11; 1024][..]));
        // A partly filled last page gets zeros for the rest of its 4 KiB
        // and the overread, and lends what it holds.
        let mut s = Store::from_bytes(&[0x44; PAGE + 1024]);
        s.make_lendable(PAGE as u64);
        assert_eq!(s.pages[1].len(), LENDABLE);
        assert!(s.pages[1][1024..].iter().all(|&b| b == 0));
        let Lend::Lent(tail) = s.lend(PAGE as u64, 1024) else {
            panic!("the last page's bytes")
        };
        assert_eq!(tail.shared_bytes(), Some(&[0x44; 1024][..]));
        assert!(matches!(s.lend(PAGE as u64, 2048), Lend::Never));
    }

    /// Seeded random writes (appends, overwrites, writes past the end),
    /// truncations (down and up) and pages lent along the way agree with a
    /// plain vector after every step, keep the page layout, and every page
    /// still lent keeps the bytes it was lent with.
    #[test]
    fn random_operations_match_a_vector() {
        let mut x: u64 = 0x5eed;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut s = Store::default();
        let mut model: Vec<u8> = Vec::new();
        // Pages lent along the way, with the bytes they held when lent.
        let mut lent: Vec<(Mapping, Vec<u8>)> = Vec::new();
        for step in 0..3_000usize {
            let op = next(7);
            if op == 0 {
                let size = next(6 * PAGE);
                s.truncate(size as u64);
                model.resize(size, 0);
            } else if op == 1 && model.len() >= 512 {
                // Lend a 512-byte database page, keep it a while.
                let off = next(model.len() / 512) * 512;
                s.make_lendable(off as u64);
                let Lend::Lent(m) = s.lend(off as u64, 512) else {
                    panic!("a lendable page at {off}")
                };
                lent.push((m, model[off..off + 512].to_vec()));
                if lent.len() > 20 {
                    lent.swap_remove(next(lent.len()));
                }
            } else {
                let off = match next(3) {
                    0 => model.len(),                  // append
                    1 => next(model.len().max(1)),     // inside
                    _ => model.len() + next(2 * PAGE), // past the end
                };
                let len = next(PAGE + 200);
                let data: Vec<u8> = (0..len).map(|k| (k + step) as u8 | 1).collect();
                s.write(&data, off as u64);
                if model.len() < off + len {
                    model.resize(off + len, 0);
                }
                model[off..off + len].copy_from_slice(&data);
            }
            check(&s, &model);
            for (m, was) in &lent {
                assert_eq!(m.shared_bytes(), Some(&was[..]), "step {step}");
            }
        }
    }
}
