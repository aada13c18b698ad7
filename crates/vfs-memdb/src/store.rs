//! The bytes of one in-memory file, kept as fixed-size pages.
//!
//! Invariant: `pages` holds exactly `ceil(len / PAGE)` pages, each of
//! capacity [`PAGE`], and each page's length is the number of the file's
//! bytes in it ([`PAGE`] for all but the last). Bytes past the end are not
//! stored at all, so appending (how journals and WAL files grow) copies
//! into fresh capacity without zeroing it first; only growing over bytes
//! no write supplied (a write past the end, a `truncate` upwards) writes
//! zeros.

/// Size of one storage page. SQLite's default page size, so an aligned
/// database page is one `memcpy` from or to one storage page; other page
/// sizes, journal records and WAL frames simply span pages.
pub(crate) const PAGE: usize = 4096;

/// A growable byte file made of [`PAGE`]-sized heap blocks.
#[derive(Default)]
pub(crate) struct Store {
    pages: Vec<Vec<u8>>,
    len: u64,
}

/// Splits a byte position into (page index, offset in page).
fn split(pos: usize) -> (usize, usize) {
    (pos / PAGE, pos % PAGE)
}

impl Store {
    /// A store holding a copy of `bytes`.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Store {
        let mut store = Store::default();
        store.write(bytes, 0);
        store
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

    /// Writes all of `buf` at `offset`, growing the file (with zeros in any
    /// gap) when it ends past the current size. The caller has checked that
    /// `offset + buf.len()` fits in `usize`. Allocates only new pages.
    pub(crate) fn write(&mut self, buf: &[u8], offset: u64) {
        let start = offset as usize;
        if offset > self.len {
            self.grow_with_zeros(start);
        }
        // Every byte before `start` now exists, so the first page touched
        // holds at least `at` bytes and later ones start at 0.
        let mut done = 0;
        while done < buf.len() {
            let (page, at) = split(start + done);
            let take = (buf.len() - done).min(PAGE - at);
            if page == self.pages.len() {
                self.pages.push(Vec::with_capacity(PAGE));
            }
            let page = &mut self.pages[page];
            let overlap = page.len().saturating_sub(at).min(take);
            page[at..at + overlap].copy_from_slice(&buf[done..done + overlap]);
            page.extend_from_slice(&buf[done + overlap..done + take]);
            done += take;
        }
        let end = (start + buf.len()) as u64;
        if end > self.len {
            self.len = end;
        }
    }

    /// Extends the file with zeros to `size` bytes (`size > len`).
    fn grow_with_zeros(&mut self, size: usize) {
        let mut pos = self.len as usize;
        while pos < size {
            let (page, at) = split(pos);
            let take = (size - pos).min(PAGE - at);
            if page == self.pages.len() {
                self.pages.push(Vec::with_capacity(PAGE));
            }
            self.pages[page].resize(at + take, 0);
            pos += take;
        }
        self.len = size as u64;
    }

    /// Sets the size to `size`: shrinking frees whole pages and drops the
    /// cut bytes of the last one; growing appends zeros. The caller has
    /// checked that `size` fits in `usize`.
    pub(crate) fn truncate(&mut self, size: u64) {
        let size_usize = size as usize;
        if size < self.len {
            self.pages.truncate(size_usize.div_ceil(PAGE));
            let (page, at) = split(size_usize);
            if at != 0 {
                self.pages[page].truncate(at);
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
            out.extend_from_slice(page);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference model: the same operations on a plain vector; and the
    /// layout invariant (every page full but the last, none reallocated).
    fn check(store: &Store, model: &[u8]) {
        assert_eq!(store.len(), model.len() as u64);
        assert_eq!(store.to_vec(), model);
        assert_eq!(store.pages.len(), model.len().div_ceil(PAGE));
        for (i, page) in store.pages.iter().enumerate() {
            let expected = (model.len() - i * PAGE).min(PAGE);
            assert_eq!(page.len(), expected, "page {i}");
            assert_eq!(page.capacity(), PAGE, "page {i}");
        }
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

    /// Seeded random writes (appends, overwrites, writes past the end) and
    /// truncations (down and up) agree with a plain vector after every
    /// step, and keep the page layout.
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
        for step in 0..3_000usize {
            if next(5) == 0 {
                let size = next(6 * PAGE);
                s.truncate(size as u64);
                model.resize(size, 0);
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
        }
    }
}
