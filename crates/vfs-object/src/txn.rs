//! A write transaction's pages, gathered locally until its commit point.
//!
//! The file is cut into chunks of the base state's chunk size (for a new
//! database: the size of SQLite's first write, its page size). Writes of
//! whole chunks replace them; any other write patches the chunk's current
//! bytes (read from the base when the transaction has not written it yet),
//! so SQLite's occasional sub-page or differently-sized writes (the backup
//! API between page sizes) stay byte-exact.

use std::collections::BTreeMap;
use std::sync::Arc;

use vfs_core::{Error, Result, codes};

use crate::format::{self, FLAG_FULL_IMAGE, Index, NewCommit, valid_chunk_size};
use crate::version::Version;

/// The default chunk size when the first write does not look like a page.
const DEFAULT_CHUNK: u32 = 4096;

/// Reads one chunk of the base state: `None` for a hole or past its end.
pub type BaseReader<'a> = dyn FnMut(u64) -> Result<Option<Arc<[u8]>>> + 'a;

pub struct WriteSet {
    pub base: Arc<Version>,
    chunk_size: u32,
    chunks: BTreeMap<u64, Box<[u8]>>,
    size: u64,
    /// The smallest size the file had during the transaction: base bytes
    /// at or past it were cut off and read as zeros, even if the file grew
    /// again.
    floor: u64,
}

/// Page 1's fields that matter here.
struct HeaderInfo {
    is_sqlite: bool,
    change_counter: u32,
    page_size: u64,
}

impl WriteSet {
    pub fn new(base: Arc<Version>) -> WriteSet {
        let chunk_size = if base.size > 0 { base.chunk_size } else { 0 };
        WriteSet {
            chunk_size,
            chunks: BTreeMap::new(),
            size: base.size,
            floor: base.size,
            base,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn chunk_len(&self) -> u64 {
        u64::from(self.chunk_size)
    }

    /// The base's bytes of `chunk`, when they still show through.
    fn base_bytes(&self, chunk: u64, base: &mut BaseReader<'_>) -> Result<Option<Arc<[u8]>>> {
        if self.base.chunk_size != self.chunk_size || chunk * self.chunk_len() >= self.floor {
            return Ok(None);
        }
        base(chunk)
    }

    /// The current bytes of `chunk` (the transaction's or the base's), or
    /// zeros.
    fn load(&self, chunk: u64, base: &mut BaseReader<'_>) -> Result<Box<[u8]>> {
        if let Some(c) = self.chunks.get(&chunk) {
            return Ok(c.clone());
        }
        let mut buf = vec![0u8; self.chunk_size as usize].into_boxed_slice();
        if let Some(b) = self.base_bytes(chunk, base)? {
            buf.copy_from_slice(&b);
        }
        Ok(buf)
    }

    pub fn write(&mut self, buf: &[u8], offset: u64, base: &mut BaseReader<'_>) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.chunk_size == 0 {
            let len = buf.len() as u64;
            self.chunk_size = if valid_chunk_size(len) && offset.is_multiple_of(len) {
                len as u32
            } else {
                DEFAULT_CHUNK
            };
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| Error::full(format!("write past the largest file at {offset}")))?;
        let c = self.chunk_len();
        if end.div_ceil(c) > u64::from(u32::MAX) {
            return Err(Error::full(format!(
                "vfs-object: a database of {end} bytes has more than 2^32 chunks of {c}"
            )));
        }
        let mut pos = offset;
        while pos < end {
            let chunk = pos / c;
            let within = (pos % c) as usize;
            let n = ((c - within as u64).min(end - pos)) as usize;
            let src = &buf[(pos - offset) as usize..(pos - offset) as usize + n];
            if within == 0 && n as u64 == c {
                self.chunks.insert(chunk, src.into());
            } else {
                let mut page = self.load(chunk, base)?;
                page[within..within + n].copy_from_slice(src);
                self.chunks.insert(chunk, page);
            }
            pos += n as u64;
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// Reads like a file; returns the bytes read (short at the end).
    pub fn read(&self, buf: &mut [u8], offset: u64, base: &mut BaseReader<'_>) -> Result<usize> {
        let avail = self.size.saturating_sub(offset);
        let n = (buf.len() as u64).min(avail) as usize;
        if n == 0 {
            return Ok(0);
        }
        let c = self.chunk_len();
        if c == 0 {
            // Grown by truncate only, never written: zeros.
            buf[..n].fill(0);
            return Ok(n);
        }
        let mut pos = offset;
        let end = offset + n as u64;
        while pos < end {
            let chunk = pos / c;
            let within = (pos % c) as usize;
            let len = ((c - within as u64).min(end - pos)) as usize;
            let dst = &mut buf[(pos - offset) as usize..(pos - offset) as usize + len];
            match self.chunks.get(&chunk) {
                Some(page) => dst.copy_from_slice(&page[within..within + len]),
                None => match self.base_bytes(chunk, base)? {
                    Some(page) => dst.copy_from_slice(&page[within..within + len]),
                    None => dst.fill(0),
                },
            }
            pos += len as u64;
        }
        Ok(n)
    }

    pub fn truncate(&mut self, size: u64, base: &mut BaseReader<'_>) -> Result<()> {
        if self.chunk_size != 0 {
            let c = self.chunk_len();
            let keep = size.div_ceil(c);
            self.chunks.retain(|&k, _| k < keep);
            let tail = (size % c) as usize;
            if tail != 0 && size < self.size {
                let chunk = size / c;
                let mut page = self.load(chunk, base)?;
                page[tail..].fill(0);
                self.chunks.insert(chunk, page);
            }
        }
        self.size = size;
        self.floor = self.floor.min(size);
        Ok(())
    }

    fn header(&self, base: &mut BaseReader<'_>) -> Result<Option<HeaderInfo>> {
        let mut h = [0u8; 100];
        if self.read(&mut h, 0, base)? < 100 {
            return Ok(None);
        }
        Ok(Some(parse_header(&h)))
    }

    /// Whether the writes make a commit: SQLite bumps the file change
    /// counter (page 1, bytes 24–27) on every commit in rollback-journal
    /// mode and a rollback restores it; without an SQLite header on both
    /// sides, whether any byte differs from the base.
    pub fn is_commit(&self, base: &mut BaseReader<'_>) -> Result<bool> {
        if self.chunks.is_empty() && self.size == self.base.size {
            return Ok(false);
        }
        let before = base_header(&self.base, base)?;
        let after = self.header(base)?;
        if let (Some(b), Some(a)) = (&before, &after)
            && b.is_sqlite
            && a.is_sqlite
        {
            return Ok(b.change_counter != a.change_counter);
        }
        if self.size != self.base.size || self.chunk_size != self.base.chunk_size {
            return Ok(true);
        }
        for (&chunk, page) in &self.chunks {
            let old = base(chunk)?;
            let same = match &old {
                Some(o) => o[..] == page[..],
                None => page.iter().all(|&b| b == 0),
            };
            if !same {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Encodes the commit at `lsn`: every chunk written, cut again at
    /// SQLite's page size when that changed and the transaction rewrote
    /// the whole file (a `VACUUM` after `PRAGMA page_size`).
    pub fn encode(
        &self,
        lsn: u64,
        txid: [u8; 16],
        time_ms: u64,
        base: &mut BaseReader<'_>,
    ) -> Result<(Index, Vec<u8>)> {
        let mut chunk_size = if self.chunk_size == 0 {
            DEFAULT_CHUNK
        } else {
            self.chunk_size
        };
        let count = self.size.div_ceil(u64::from(chunk_size));
        let written = self.chunks.range(..count).count() as u64;
        let rechunked;
        let mut pages: Vec<(u32, &[u8])> = self
            .chunks
            .range(..count)
            .map(|(&k, v)| (k as u32, &v[..]))
            .collect();
        let page_size = self
            .header(base)?
            .filter(|h| h.is_sqlite)
            .map(|h| h.page_size);
        if let Some(p) = page_size
            && p != u64::from(chunk_size)
            && valid_chunk_size(p)
            && written == count
            && self.size.is_multiple_of(p)
        {
            let mut image = vec![0u8; self.size as usize];
            self.read(&mut image, 0, base)?;
            rechunked = image;
            chunk_size = p as u32;
            pages = rechunked
                .chunks(p as usize)
                .enumerate()
                .map(|(i, c)| (i as u32, c))
                .collect();
        }
        let changes_chunk = self.base.size > 0 && chunk_size != self.base.chunk_size;
        if changes_chunk && pages.len() as u64 != self.size.div_ceil(u64::from(chunk_size)) {
            return Err(Error::new(
                codes::SQLITE_IOERR_WRITE,
                format!(
                    "vfs-object: the transaction changes the chunk size from {} to {chunk_size} \
                     without rewriting every page",
                    self.base.chunk_size
                ),
            ));
        }
        let body = format::encode(&NewCommit {
            lsn,
            txid,
            db_size: self.size,
            chunk_size,
            time_ms,
            flags: if changes_chunk { FLAG_FULL_IMAGE } else { 0 },
            pages: &pages,
        });
        let idx = format::decode_index(&body, Some(body.len() as u64)).map_err(|e| {
            Error::new(
                codes::SQLITE_IOERR_WRITE,
                format!("vfs-object: cannot encode commit {lsn}: {e}"),
            )
        })?;
        Ok((idx, body))
    }
}

fn parse_header(h: &[u8; 100]) -> HeaderInfo {
    let raw = u16::from_be_bytes([h[16], h[17]]);
    HeaderInfo {
        is_sqlite: &h[..16] == b"SQLite format 3\0",
        change_counter: u32::from_be_bytes([h[24], h[25], h[26], h[27]]),
        page_size: if raw == 1 { 65536 } else { u64::from(raw) },
    }
}

fn base_header(v: &Version, base: &mut BaseReader<'_>) -> Result<Option<HeaderInfo>> {
    if v.size < 100 {
        return Ok(None);
    }
    let Some(page) = base(0)? else {
        return Ok(None);
    };
    if page.len() < 100 {
        return Ok(None);
    }
    let h: [u8; 100] = page[..100].try_into().expect("100 bytes");
    Ok(Some(parse_header(&h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_base(_: u64) -> Result<Option<Arc<[u8]>>> {
        Ok(None)
    }

    #[test]
    fn partial_writes_reads_and_truncate() {
        let mut w = WriteSet::new(Arc::new(Version::empty()));
        let mut base = no_base;
        w.write(&[1u8; 1024], 0, &mut base).unwrap();
        w.write(&[2u8; 10], 1020, &mut base).unwrap();
        w.write(&[3u8; 1024], 3072, &mut base).unwrap();
        assert_eq!(w.size(), 4096);
        let mut all = vec![9u8; 5000];
        assert_eq!(w.read(&mut all, 0, &mut base).unwrap(), 4096);
        assert_eq!(&all[..1020], &[1u8; 1020][..]);
        assert_eq!(&all[1020..1030], &[2u8; 10][..]);
        assert_eq!(&all[1030..2048], &[0u8; 1018][..]);
        assert_eq!(&all[2048..3072], &[0u8; 1024][..]);
        assert_eq!(&all[3072..4096], &[3u8; 1024][..]);
        w.truncate(1500, &mut base).unwrap();
        let mut b = vec![9u8; 2048];
        assert_eq!(w.read(&mut b, 0, &mut base).unwrap(), 1500);
        w.truncate(2048, &mut base).unwrap();
        assert_eq!(w.read(&mut b, 0, &mut base).unwrap(), 2048);
        assert_eq!(
            &b[1500..2048],
            &[0u8; 548][..],
            "truncated bytes do not come back"
        );
        // Cut-off base chunks do not come back either.
        let mut w1 = WriteSet::new(Arc::new(Version::empty()));
        w1.write(&[1u8; 1024], 0, &mut base).unwrap();
        w1.write(&[7u8; 1024], 1024, &mut base).unwrap();
        let (idx1, body1) = w1.encode(1, [1; 16], 0, &mut base).unwrap();
        let cache = crate::cache::PageCache::new(0, None).unwrap();
        let v1 = Arc::new(
            Version::empty()
                .apply(&idx1, |i, e| {
                    cache.page(
                        &Arc::new(crate::version::CommitInfo::of(&idx1)),
                        i as u32,
                        e.crc,
                    )
                })
                .unwrap(),
        );
        let mut base1 = |c: u64| -> Result<Option<Arc<[u8]>>> {
            let at = idx1.page_offset(c as usize) as usize;
            Ok(Some(body1[at..at + 1024].into()))
        };
        let mut w2 = WriteSet::new(v1);
        w2.truncate(1024, &mut base1).unwrap();
        w2.truncate(2048, &mut base1).unwrap();
        let mut c = vec![9u8; 2048];
        assert_eq!(w2.read(&mut c, 0, &mut base1).unwrap(), 2048);
        assert!(c[..1024].iter().all(|&b| b == 1));
        assert!(c[1024..].iter().all(|&b| b == 0), "cut-off chunk came back");
        let (idx, body) = w.encode(1, [1; 16], 0, &mut base).unwrap();
        assert_eq!(idx.header.chunk_size, 1024);
        assert_eq!(idx.header.db_size, 2048);
        assert_eq!(idx.entries.len(), 2);
        assert_eq!(body.len() as u64, idx.header.object_len());
    }
}
