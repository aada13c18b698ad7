//! The persistent page store: a file image cut into fixed-size chunks held in
//! a structurally shared vector, so that cloning an image is O(1) and
//! changing it copies only the chunks (and the tree path to them) it
//! touches.

use std::sync::Arc;

use rpds::VectorSync;
use vfs_core::{Error, Result, codes};

/// The chunk size used when nothing better is known.
pub(crate) const DEFAULT_CHUNK: usize = 4096;

/// The 16 bytes every SQLite database file starts with.
pub(crate) const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Largest file this store accepts (SQLite's own limit is far below).
const MAX_FILE: u64 = 1 << 48;

/// An immutable-by-default image of one file.
///
/// Every chunk but the last is exactly `chunk` bytes; the last one is too,
/// with the bytes past `len` kept at zero. Chunks are `Arc<[u8]>` shared
/// between every image (snapshot, working copy) that has not changed them.
#[derive(Clone)]
pub(crate) struct Pages {
    /// Chunk size; 0 while the image is empty and no size was chosen.
    chunk: usize,
    /// Logical file size in bytes.
    len: u64,
    chunks: VectorSync<Arc<[u8]>>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("chunk", &self.chunk)
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new()
    }
}

/// The page size an SQLite header declares, if `head` is one.
fn header_page_size(head: &[u8]) -> Option<usize> {
    if head.len() < 100 || &head[..16] != SQLITE_MAGIC {
        return None;
    }
    let raw = u16::from_be_bytes([head[16], head[17]]) as usize;
    let size = if raw == 1 { 65536 } else { raw };
    (size.is_power_of_two() && (512..=65536).contains(&size)).then_some(size)
}

impl Pages {
    /// An empty image.
    pub(crate) fn new() -> Pages {
        Pages {
            chunk: 0,
            len: 0,
            chunks: VectorSync::new_sync(),
        }
    }

    /// An image holding a copy of `bytes`, cut at the page size its SQLite
    /// header declares (4096 when it has none).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Pages> {
        let mut pages = Pages::new();
        pages.chunk = header_page_size(bytes).unwrap_or(DEFAULT_CHUNK);
        pages.write(bytes, 0, &mut Vec::new())?;
        Ok(pages)
    }

    /// The file's size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The chunk size (0 for an empty image that never chose one).
    #[cfg(test)]
    pub(crate) fn chunk_size(&self) -> usize {
        self.chunk
    }

    /// Chunk `index`, if it exists.
    #[cfg(test)]
    pub(crate) fn chunk(&self, index: usize) -> Option<&Arc<[u8]>> {
        self.chunks.get(index)
    }

    /// Copies bytes from `offset` into `buf`; returns how many were
    /// available (fewer than `buf.len()` at the end of the file).
    pub(crate) fn read(&self, buf: &mut [u8], offset: u64) -> usize {
        if offset >= self.len || buf.is_empty() {
            return 0;
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        let chunk = self.chunk;
        let mut pos = offset as usize;
        let mut done = 0;
        while done < n {
            let index = pos / chunk;
            let within = pos % chunk;
            let take = (chunk - within).min(n - done);
            match self.chunks.get(index) {
                Some(c) => buf[done..done + take].copy_from_slice(&c[within..within + take]),
                None => buf[done..done + take].fill(0),
            }
            done += take;
            pos += take;
        }
        n
    }

    /// Appends zero chunks until there are `count`.
    fn grow_chunks(&mut self, count: usize) {
        if self.chunks.len() >= count {
            return;
        }
        let zero: Arc<[u8]> = vec![0u8; self.chunk].into();
        while self.chunks.len() < count {
            self.chunks.push_back_mut(Arc::clone(&zero));
        }
    }

    /// Writes `buf` at `offset`, growing the file as needed. The index of
    /// every chunk whose bytes may have changed is pushed to `dirty`.
    pub(crate) fn write(&mut self, buf: &[u8], offset: u64, dirty: &mut Vec<usize>) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= MAX_FILE)
            .ok_or_else(|| {
                Error::new(
                    codes::SQLITE_FULL,
                    format!("write of {} bytes at offset {offset} is past the largest file this VFS holds", buf.len()),
                )
            })?;
        if self.chunk == 0 {
            // First write into an empty file: SQLite writes page 1 whole,
            // so its length is the database's page size.
            let n = buf.len();
            self.chunk = if offset == 0 && n.is_power_of_two() && (512..=65536).contains(&n) {
                n
            } else {
                DEFAULT_CHUNK
            };
        }
        let chunk = self.chunk;
        self.grow_chunks((end as usize).div_ceil(chunk));
        self.len = self.len.max(end);

        let mut pos = offset as usize;
        let mut src = buf;
        while !src.is_empty() {
            let index = pos / chunk;
            let within = pos % chunk;
            let take = (chunk - within).min(src.len());
            let slot = self
                .chunks
                .get_mut(index)
                .expect("grow_chunks made the chunk exist");
            if let Some(page) = Arc::get_mut(slot) {
                // Only this image holds the chunk: change it in place.
                page[within..within + take].copy_from_slice(&src[..take]);
            } else if take == chunk {
                *slot = Arc::from(&src[..take]);
            } else {
                let mut copy = slot.to_vec();
                copy[within..within + take].copy_from_slice(&src[..take]);
                *slot = copy.into();
            }
            dirty.push(index);
            pos += take;
            src = &src[take..];
        }
        Ok(())
    }

    /// Sets the file's size to `size`, dropping or zero-filling chunks.
    pub(crate) fn truncate(&mut self, size: u64, dirty: &mut Vec<usize>) -> Result<()> {
        if size > MAX_FILE {
            return Err(Error::new(
                codes::SQLITE_FULL,
                format!("cannot grow a file to {size} bytes"),
            ));
        }
        if size == 0 {
            *self = Pages::new();
            return Ok(());
        }
        if self.chunk == 0 {
            self.chunk = DEFAULT_CHUNK;
        }
        let chunk = self.chunk;
        let keep = (size as usize).div_ceil(chunk);
        if keep > self.chunks.len() {
            self.grow_chunks(keep);
        }
        while self.chunks.len() > keep {
            self.chunks.drop_last_mut();
        }
        // Keep the bytes past the end of the last chunk at zero, so a later
        // extension reads zeros as a real file would.
        let tail = size as usize % chunk;
        if tail != 0 && size < self.len {
            let last = keep - 1;
            let slot = self.chunks.get_mut(last).expect("chunk exists");
            if slot[tail..].iter().any(|&b| b != 0) {
                match Arc::get_mut(slot) {
                    Some(page) => page[tail..].fill(0),
                    None => {
                        let mut copy = slot.to_vec();
                        copy[tail..].fill(0);
                        *slot = copy.into();
                    }
                }
                dirty.push(last);
            }
        }
        self.len = size;
        Ok(())
    }

    /// The whole file as one vector.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len as usize];
        let n = self.read(&mut out, 0);
        debug_assert_eq!(n, out.len());
        out
    }

    /// Bytes 24..28 of an SQLite database header (the file change counter),
    /// or `None` when the image is not an SQLite database in rollback-journal
    /// format (too short, wrong magic, or WAL format).
    pub(crate) fn change_counter(&self) -> Option<u32> {
        let mut head = [0u8; 100];
        if self.read(&mut head, 0) < 100 || &head[..16] != SQLITE_MAGIC {
            return None;
        }
        // Bytes 18 and 19 are the write and read format versions: 2 is WAL,
        // where SQLite does not bump the change counter on commit.
        if head[18] != 1 || head[19] != 1 {
            return None;
        }
        Some(u32::from_be_bytes([head[24], head[25], head[26], head[27]]))
    }

    /// Whether chunk `index` holds the same bytes here and in `other`.
    fn same_chunk(&self, other: &Pages, index: usize) -> bool {
        match (self.chunks.get(index), other.chunks.get(index)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a[..] == b[..],
            (None, None) => true,
            _ => false,
        }
    }

    /// Whether this image differs from `base`, looking only at the chunks
    /// listed in `dirty` (every chunk not listed is shared with `base`).
    pub(crate) fn differs_from(&self, base: &Pages, dirty: &mut Vec<usize>) -> bool {
        if self.len != base.len {
            return true;
        }
        if self.chunk != base.chunk && self.len > 0 {
            return self.to_vec() != base.to_vec();
        }
        dirty.sort_unstable();
        dirty.dedup();
        let live = (self.len as usize).div_ceil(self.chunk.max(1));
        dirty
            .iter()
            .filter(|&&i| i < live)
            .any(|&i| !self.same_chunk(base, i))
    }

    /// Stamps `counter` as the file change counter (bytes 24..28), and in
    /// bytes 92..96 too when those held the old counter (SQLite's
    /// "version-valid-for" number, which tells it to trust the header's page
    /// count).
    pub(crate) fn stamp_change_counter(&mut self, counter: u32) -> Result<()> {
        let mut head = [0u8; 100];
        if self.read(&mut head, 0) < 100 {
            return Ok(());
        }
        let old = [head[24], head[25], head[26], head[27]];
        let new = counter.to_be_bytes();
        let mut dirty = Vec::new();
        if head[92..96] == old {
            self.write(&new, 92, &mut dirty)?;
        }
        self.write(&new, 24, &mut dirty)
    }

    /// Switches a WAL-format header (bytes 18/19 = 2) to rollback-journal
    /// format (1), as `PRAGMA journal_mode=DELETE` would.
    pub(crate) fn set_rollback_format(&mut self) -> Result<()> {
        let mut head = [0u8; 100];
        if self.read(&mut head, 0) < 100 || &head[..16] != SQLITE_MAGIC {
            return Ok(());
        }
        if head[18] == 2 || head[19] == 2 {
            self.write(&[1, 1], 18, &mut Vec::new())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn write_read_round_trip_across_chunks() {
        let mut p = Pages::new();
        let data = sample(10_000);
        p.write(&data[..4096], 0, &mut Vec::new()).unwrap();
        assert_eq!(p.chunk_size(), 4096);
        p.write(&data[4096..], 4096, &mut Vec::new()).unwrap();
        assert_eq!(p.len(), 10_000);
        assert_eq!(p.to_vec(), data);
        let mut buf = vec![0u8; 5000];
        assert_eq!(p.read(&mut buf, 3000), 5000);
        assert_eq!(buf, data[3000..8000]);
        assert_eq!(p.read(&mut buf, 9000), 1000);
        assert_eq!(p.read(&mut buf, 20_000), 0);
    }

    #[test]
    fn holes_read_as_zero_and_truncate_zeroes_the_tail() {
        let mut p = Pages::new();
        p.write(&[1; 512], 0, &mut Vec::new()).unwrap();
        assert_eq!(p.chunk_size(), 512);
        p.write(&[2; 10], 2000, &mut Vec::new()).unwrap();
        let v = p.to_vec();
        assert_eq!(v.len(), 2010);
        assert!(v[512..2000].iter().all(|&b| b == 0));
        p.truncate(100, &mut Vec::new()).unwrap();
        p.truncate(700, &mut Vec::new()).unwrap();
        let v = p.to_vec();
        assert_eq!(&v[..100], &[1; 100][..]);
        assert!(v[100..].iter().all(|&b| b == 0));
    }

    #[test]
    fn clones_share_chunks_until_written() {
        let mut a = Pages::from_bytes(&sample(64 * 1024)).unwrap();
        let b = a.clone();
        for i in 0..16 {
            assert!(Arc::ptr_eq(a.chunk(i).unwrap(), b.chunk(i).unwrap()));
        }
        let mut dirty = Vec::new();
        a.write(&[9; 10], 4096 * 3 + 5, &mut dirty).unwrap();
        assert_eq!(dirty, vec![3]);
        for i in 0..16 {
            assert_eq!(
                Arc::ptr_eq(a.chunk(i).unwrap(), b.chunk(i).unwrap()),
                i != 3
            );
        }
        assert_eq!(b.to_vec(), sample(64 * 1024));
        assert!(a.differs_from(&b, &mut dirty));
        // Writing the original bytes back is "no difference".
        let orig = sample(64 * 1024);
        let mut dirty = Vec::new();
        a.write(&orig[4096 * 3..4096 * 4], 4096 * 3, &mut dirty)
            .unwrap();
        assert!(!a.differs_from(&b, &mut dirty));
    }

    #[test]
    fn oversized_write_is_sqlite_full() {
        let mut p = Pages::new();
        let e = p.write(&[1], MAX_FILE, &mut Vec::new()).unwrap_err();
        assert_eq!(e.code(), Some(codes::SQLITE_FULL));
    }
}
