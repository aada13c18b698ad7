//! Database files (main, temp, transient): one image per page.

use vfs_core::{Error, File, Result, codes};

use crate::codec_io::{CodecIo, grow, read_some};
use crate::sqlite_format::{db_header, is_page_size};
use crate::{PageCodec, PageCtx};

/// Sub-page reads ending within this many bytes of the file's start are
/// served from one read that starts at offset 0.
const HEADER_READ: usize = 128;

/// What a database file's handle knows about the file's header.
#[derive(Debug, Default)]
pub(crate) struct DbMap {
    page_size: Option<usize>,
    reserve: Option<usize>,
    /// Whether the knowledge above is current (reset by unlock and sync: the
    /// file may since have been changed by another connection).
    fresh: bool,
    /// The shared generation the knowledge above matches.
    generation: u64,
}

fn page_number(offset: u64, page_size: usize) -> Result<u32> {
    u32::try_from(offset / page_size as u64 + 1).map_err(|_| {
        Error::new(
            codes::SQLITE_IOERR_READ,
            format!("offset {offset} is beyond the largest page number"),
        )
    })
}

impl DbMap {
    pub(crate) fn page_size(&self) -> Option<usize> {
        self.page_size
    }

    pub(crate) fn reserve(&self) -> Option<usize> {
        self.reserve
    }

    pub(crate) fn invalidate(&mut self) {
        self.fresh = false;
    }

    fn learn<F: File, C: PageCodec>(&mut self, io: &CodecIo<'_, F, C>, header: &[u8]) {
        if let Some((p, r)) = db_header(header) {
            self.page_size = Some(p);
            self.reserve = Some(r);
            self.fresh = true;
            self.generation = io.geometry.observe(p, r);
        }
    }

    /// Re-reads the stored header (bytes 16..24 are in clear by contract).
    pub(crate) fn refresh<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
    ) -> Result<()> {
        let mut h = [0u8; 24];
        let got = read_some(io.base, &mut h, 0)?;
        match db_header(&h[..got]) {
            Some(_) => self.learn(io, &h[..got]),
            None => {
                // No page 1 yet (or not a database): nothing is known, and
                // sub-page I/O passes through until page 1 exists.
                self.page_size = None;
                self.reserve = None;
                self.fresh = true;
                self.generation = io.geometry.generation();
            }
        }
        Ok(())
    }

    fn ensure_fresh<F: File, C: PageCodec>(&mut self, io: &mut CodecIo<'_, F, C>) -> Result<()> {
        if !self.fresh || self.generation != io.geometry.generation() {
            self.refresh(io)?;
        }
        Ok(())
    }

    /// Reads page 1 and has the codec decode it (for
    /// [`PageCodec::locked`]); the decode's result is the codec's business.
    pub(crate) fn check_page1<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        self.refresh(io)?;
        let Some(p) = self.page_size else {
            return Ok(());
        };
        let img = grow(scratch, p);
        if read_some(io.base, img, 0)? == p {
            let _ = io.decode(1, self.reserve, 0, true, img);
        }
        img.fill(0);
        Ok(())
    }

    pub(crate) fn write<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &[u8],
        off: u64,
    ) -> Result<()> {
        let n = buf.len();
        if !(is_page_size(n) && off.is_multiple_of(n as u64)) {
            return self.write_partial(io, scratch, buf, off);
        }
        let pgno = page_number(off, n)?;
        self.ensure_fresh(io)?;
        let stored_reserve = self.reserve;
        if pgno == 1 {
            // SQLite's own header: the parameters this page is written with.
            if let Some((p, _)) = db_header(buf)
                && p != n
            {
                // A backup or VACUUM copying pages of another size: the pager
                // writes the new pages in pieces of the old size, which
                // cannot be transformed page by page.
                return Err(Error::new(
                    codes::SQLITE_IOERR_WRITE,
                    format!(
                        "{}: refusing to write page 1 of a {p}-byte-page database as a {n}-byte \
                         page: the page size of a transformed database cannot change",
                        io.path
                    ),
                ));
            }
            self.learn(io, buf);
        }
        if self.page_size.is_none() {
            // A temporary database whose page 1 is not written yet.
            self.page_size = Some(n);
        }
        let img = grow(scratch, n);
        img.copy_from_slice(buf);
        let ctx = PageCtx {
            stored_reserve,
            ..io.ctx(pgno, n, self.reserve, off)
        };
        io.encode_with(&ctx, img)?;
        io.base.write_at(img, off)
    }

    /// A write that is not one whole page: read-modify-write of each page it
    /// touches (SQLite never does this to database files; kept correct for
    /// other callers). Passes through while no page 1 exists.
    fn write_partial<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &[u8],
        off: u64,
    ) -> Result<()> {
        self.ensure_fresh(io)?;
        let Some(p) = self.page_size else {
            return io.base.write_at(buf, off);
        };
        let end = off + buf.len() as u64;
        let mut pos = off;
        while pos < end {
            let start = pos - pos % p as u64;
            let pgno = page_number(start, p)?;
            let stop = end.min(start + p as u64);
            let img = grow(scratch, p);
            let got = read_some(io.base, img, start)?;
            if got == p {
                io.decode(pgno, self.reserve, start, true, img)?;
            } else {
                img.fill(0);
            }
            let (a, b) = ((pos - start) as usize, (stop - start) as usize);
            img[a..b].copy_from_slice(&buf[(pos - off) as usize..(stop - off) as usize]);
            let stored_reserve = self.reserve;
            if pgno == 1 {
                self.learn(io, img);
            }
            let ctx = PageCtx {
                stored_reserve,
                ..io.ctx(pgno, p, self.reserve, start)
            };
            io.encode_with(&ctx, img)?;
            io.base.write_at(img, start)?;
            pos = stop;
        }
        Ok(())
    }

    pub(crate) fn read<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &mut [u8],
        off: u64,
    ) -> Result<usize> {
        let n = buf.len();
        if is_page_size(n) && off.is_multiple_of(n as u64) {
            let got = read_some(io.base, buf, off)?;
            if got < n {
                // Absent, or only partly present at the end of the file: a
                // torn page is reported as absent (zeros), never decoded. A
                // verifier passes the bytes through, as cksumvfs does.
                return Ok(if io.codec.verify_only() { got } else { 0 });
            }
            let pgno = page_number(off, n)?;
            if pgno == 1 {
                self.learn(io, buf);
            } else {
                self.ensure_fresh(io)?;
            }
            io.decode(pgno, self.reserve, off, false, buf)?;
            return Ok(n);
        }
        if io.codec.verify_only() {
            if off + (n as u64) <= HEADER_READ as u64 {
                // A header read (the 100 bytes at open, the change counter
                // at offset 24 that starts every rollback-mode transaction):
                // read from offset 0 to learn the header on the way.
                let mut h = [0u8; HEADER_READ];
                let end = off as usize + n;
                let got = read_some(io.base, &mut h[..end], 0)?;
                match db_header(&h[..got]) {
                    Some(_) => self.learn(io, &h[..got]),
                    None => self.invalidate(),
                }
                let avail = got.saturating_sub(off as usize);
                buf[..avail].copy_from_slice(&h[off as usize..off as usize + avail]);
                return Ok(avail);
            }
            return read_some(io.base, buf, off);
        }
        if off < 24 {
            self.refresh(io)?;
        } else {
            self.ensure_fresh(io)?;
        }
        let Some(p) = self.page_size else {
            return read_some(io.base, buf, off);
        };
        let end = off + n as u64;
        let mut pos = off;
        while pos < end {
            let start = pos - pos % p as u64;
            let pgno = page_number(start, p)?;
            let stop = end.min(start + p as u64);
            let img = grow(scratch, p);
            let got = read_some(io.base, img, start)?;
            if got < p {
                // The page is absent or torn: a short read up to it.
                return Ok((pos - off) as usize);
            }
            if pgno == 1 {
                self.learn(io, img);
            }
            io.decode(pgno, self.reserve, start, true, img)?;
            let (a, b) = ((pos - start) as usize, (stop - start) as usize);
            buf[(pos - off) as usize..(stop - off) as usize].copy_from_slice(&img[a..b]);
            pos = stop;
        }
        Ok(n)
    }
}
