//! Database files (main, temp, transient): one image per page.
//!
//! Once the page size is known, any read or write is cut into the pages it
//! touches: whole pages are decoded or encoded in place (one base call for
//! a run of them), a page covered only in part is read and decoded whole
//! (and, for a write, merged and encoded whole). SQLite's pager reads and
//! writes one page at a time, but a shim or a tool above the layer may move
//! a file in spans of any size (SQLite's crash-test VFS does).

use std::collections::BTreeMap;

use vfs_core::{Error, File, Result, codes};

use crate::PageCodec;
use crate::codec_io::{CodecIo, copy_in, grow, read_some};
use crate::resize::{Kept, Resize};
use crate::sqlite_format::{db_header, is_page_size};

/// Sub-page reads ending within this many bytes of the file's start are
/// header reads: for a verify-only codec they are served from one read that
/// starts at offset 0, without verifying page 1.
const HEADER_READ: usize = 128;

/// Header bytes that hold the page size (16–17) and the reserve (20).
const HEADER_FIELDS: usize = 24;

/// What a database file's handle knows about the file's header.
#[derive(Debug, Default)]
pub(crate) struct DbMap {
    page_size: Option<usize>,
    reserve: Option<usize>,
    /// `page_size` is only the length of the first whole-page write made
    /// while no page 1 was known (a temporary database, or pages spilled
    /// before page 1), not what a header says.
    guessed: bool,
    /// Whether the knowledge above is current (reset by unlock and sync: the
    /// file may since have been changed by another connection).
    fresh: bool,
    /// The shared generation the knowledge above matches.
    generation: u64,
    /// (Verify-only codecs.) What a page size change needs to know.
    resize: Resize,
    /// The reserve of the stored page 1 when a page size change took its
    /// new header, for the codec's check of the new page 1.
    page_one_reserve: Option<Option<usize>>,
}

fn page_number(offset: u64, page_size: usize) -> Result<u32> {
    u32::try_from(offset / page_size as u64 + 1).map_err(|_| {
        Error::new(
            codes::SQLITE_IOERR,
            format!("offset {offset} is beyond the largest page number"),
        )
    })
}

/// `buf[a..b]` for offsets of the file, `buf` starting at `off`.
fn span(off: u64, a: u64, b: u64) -> std::ops::Range<usize> {
    (a - off) as usize..(b - off) as usize
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

    /// Before the file settles: checksums the pages whose pieces were stored
    /// without their last one by a writer other than SQLite's pager (which
    /// writes every piece of a page). Not while the layout differs from the
    /// one the transaction started with: that is SQLite's pager interrupted
    /// in a page size change, whose journal will put every piece back.
    pub(crate) fn seal_pieces<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        let (Some(p), Some(r)) = (self.page_size, self.reserve) else {
            return Ok(());
        };
        let unsealed = self.resize.take_unsealed(p);
        if !self.resize.started_with(p, r) {
            return Ok(());
        }
        for start in unsealed {
            let img = grow(scratch, p);
            if read_some(io.base, img, start)? < p {
                // The end of the file: a torn page, read as it is.
                continue;
            }
            self.encode(io, start, img)?;
            io.base.write_at(img, start)?;
        }
        Ok(())
    }

    /// SQLite's writes reached a resting point: the file was synced (a
    /// commit, or the end of a rollback) or the handle's transaction ended
    /// (unlock to SHARED or NONE). What was written since is settled.
    pub(crate) fn settled(&mut self) {
        self.fresh = false;
        self.resize.settled();
        self.page_one_reserve = None;
    }

    /// Takes what the first bytes of page 1 say (or that they name no valid
    /// page size: nothing is known then).
    fn observe<F: File, C: PageCodec>(&mut self, io: &CodecIo<'_, F, C>, header: &[u8]) {
        match db_header(header) {
            Some((p, r)) => {
                self.page_size = Some(p);
                self.reserve = Some(r);
                self.generation = io.geometry.observe(p, r);
            }
            None => {
                self.page_size = None;
                self.reserve = None;
                self.generation = io.geometry.generation();
            }
        }
        self.guessed = false;
        self.fresh = true;
    }

    /// Re-reads the stored header (bytes 16..24 are in clear by contract).
    pub(crate) fn refresh<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
    ) -> Result<()> {
        let mut h = [0u8; HEADER_FIELDS];
        let got = read_some(io.base, &mut h, 0)?;
        self.observe(io, &h[..got]);
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
        self.ensure_fresh(io)?;
        self.resize.writing(self.page_size, self.reserve);
        let mut relayout = BTreeMap::new();
        // A verifier lays out pages of an unknown reserve (a new database's
        // pages spilled before page 1) for the reserve new databases get
        // (the whole stack's).
        let laid_out = self.reserve.or(Some(io.stacking.total(io.codec.reserve())));
        if off == 0
            && let Some((h, r)) = db_header(buf)
            && (self.page_size != Some(h) || (io.codec.verify_only() && laid_out != Some(r)))
        {
            relayout = self.change_layout(io, h, r, buf)?;
        }
        self.write_mapped(io, scratch, buf, off)?;
        // After page 1, so a page that shares its new page sees its header.
        for (at, kept) in relayout {
            let mut page = vec![0u8; kept.page_size];
            if read_some(io.base, &mut page, at)? < kept.page_size {
                // Truncated since: nothing to lay out.
                continue;
            }
            let len = kept.bytes.len();
            page[kept.page_size - len..].copy_from_slice(&kept.bytes);
            self.write_mapped(io, scratch, &page, at)?;
        }
        Ok(())
    }

    /// `write` once page 1's header in `buf`, if any, is taken into account.
    fn write_mapped<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &[u8],
        off: u64,
    ) -> Result<()> {
        let n = buf.len();
        let p = match self.page_size {
            Some(p) => p,
            None if is_page_size(n) && off.is_multiple_of(n as u64) => {
                // No page 1 yet: SQLite's pager writes whole pages, so this
                // is one (a temporary database, or a page spilled before
                // page 1). Page 1 must agree when it comes.
                self.page_size = Some(n);
                self.guessed = true;
                n
            }
            None => {
                return Err(Error::new(
                    codes::SQLITE_IOERR_WRITE,
                    format!(
                        "{}: refusing a {n}-byte write at offset {off}: the database has no page \
                         1 yet, so its page size is unknown and the bytes cannot be mapped to \
                         pages",
                        io.path
                    ),
                ));
            }
        };
        if n < p && is_page_size(n) && off.is_multiple_of(n as u64) && io.codec.verify_only() {
            return self.write_piece(io, scratch, buf, off, p);
        }
        let end = off + n as u64;
        let mut pos = off;
        while pos < end {
            let start = pos - pos % p as u64;
            if pos == start && end - start >= p as u64 {
                // A run of whole pages: encoded in the scratch buffer,
                // written with one call.
                let run_end = start + (end - start) / p as u64 * p as u64;
                let img = copy_in(scratch, &buf[span(off, start, run_end)]);
                for (i, page) in img.chunks_exact_mut(p).enumerate() {
                    self.encode(io, start + (i * p) as u64, page)?;
                }
                io.base.write_at(img, start)?;
                pos = run_end;
                continue;
            }
            // Part of a page: read-modify-write of the whole page. A stored
            // page that does not decode is an error, never merged into.
            let stop = end.min(start + p as u64);
            let img = grow(scratch, p);
            let got = read_some(io.base, img, start)?;
            if got == p {
                io.decode(page_number(start, p)?, self.reserve, start, true, img)?;
            } else if io.codec.verify_only() {
                // The end of the file: the bytes present are kept.
                img[got..].fill(0);
            } else {
                // A torn page reads as absent.
                img.fill(0);
            }
            img[span(start, pos, stop)].copy_from_slice(&buf[span(off, pos, stop)]);
            self.encode(io, start, img)?;
            io.base.write_at(img, start)?;
            pos = stop;
        }
        Ok(())
    }

    /// Page 1 is written naming page size `h` and reserve `r`, not the ones
    /// the file is mapped with: SQLite is changing the page size or the
    /// reserve of an existing database, or rolling such a change back (see
    /// [`crate::resize`]). A verifier follows; the pages it stamped in the
    /// old layout during this transaction (other than page 1, being
    /// written) are returned, to be laid out again in the new one. A
    /// transforming codec cannot follow a page size change (a page written
    /// in pieces would need each piece encoded alone): refused, as is a
    /// change from a page size only guessed.
    fn change_layout<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        h: usize,
        r: usize,
        header: &[u8],
    ) -> Result<BTreeMap<u64, Kept>> {
        // The codec's check of the new page 1 compares with what is stored.
        let stored_reserve = self.reserve;
        let Some(p) = self.page_size else {
            self.page_one_reserve = Some(stored_reserve);
            self.observe(io, header);
            return Ok(BTreeMap::new());
        };
        let refuse = |why: &str| {
            Err(Error::new(
                codes::SQLITE_IOERR_WRITE,
                format!(
                    "{}: refusing to write a page 1 that names a page size of {h} bytes: {why} \
                     {p} bytes",
                    io.path
                ),
            ))
        };
        if h != p && self.guessed {
            return refuse("pages of this new database were already written with");
        }
        if h != p && !io.codec.verify_only() {
            return refuse("the page size of a transformed database cannot change from");
        }
        if self.resize.started_with(h, r) {
            // Every page the transaction wrote is about to be written back.
            self.resize.take_kept();
            self.page_one_reserve = Some(stored_reserve);
            self.observe(io, header);
            return Ok(BTreeMap::new());
        }
        if !self.resize.complete() {
            return refuse(
                "this transaction wrote more pages than the layer keeps to lay out again, in",
            );
        }
        let mut kept = self.resize.take_kept();
        if let Some(first) = kept.remove(&0)
            && header.len() < first.page_size
        {
            return refuse(
                "page 1, written whole in this transaction, is now rewritten in part, with",
            );
        }
        self.page_one_reserve = Some(stored_reserve);
        self.observe(io, header);
        Ok(kept)
    }

    /// (Verify-only codecs.) A write of `n` bytes at a multiple of `n`, a
    /// valid page size smaller than the file's page size `p`: SQLite's pager
    /// writing a page size change in pieces of its old size (or rolling one
    /// back). The bytes are stored as written; the page's checksum is
    /// computed over the stored page when its last piece is written in this
    /// transaction, and again whenever another piece follows it. So the
    /// layer changes only bytes SQLite wrote in this transaction (which its
    /// journal holds), and a rollback restores every byte. Until its last
    /// piece arrives the page does not verify; reads of the pieces this
    /// handle wrote are then served as written.
    fn write_piece<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &[u8],
        off: u64,
        p: usize,
    ) -> Result<()> {
        let n = buf.len() as u64;
        let start = off - off % p as u64;
        let last = start + p as u64 - n;
        self.resize.add_piece(off, buf.len());
        if off != last && !self.resize.has_piece(last) {
            return io.base.write_at(buf, off);
        }
        let img = grow(scratch, p);
        let got = read_some(io.base, img, start)?;
        img[got..].fill(0);
        img[span(start, off, off + n)].copy_from_slice(buf);
        self.encode(io, start, img)?;
        io.base.write_at(img, start)
    }

    /// Encodes the page image at `offset` (its length is the page size).
    fn encode<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        offset: u64,
        img: &mut [u8],
    ) -> Result<()> {
        let pgno = page_number(offset, img.len())?;
        let stored_reserve = match self.page_one_reserve {
            Some(r) if pgno == 1 => {
                self.page_one_reserve = None;
                r
            }
            _ => self.reserve,
        };
        if pgno == 1
            && let Some((h, _)) = db_header(img)
        {
            // SQLite's own header: the parameters this page is written with
            // (a write into the middle of page 1 could change them too).
            if Some(h) != self.page_size {
                return Err(Error::new(
                    codes::SQLITE_IOERR_WRITE,
                    format!(
                        "{}: refusing a write into page 1 that changes its page size to {h} \
                         bytes",
                        io.path
                    ),
                ));
            }
            self.observe(io, img);
        }
        if io.codec.verify_only() {
            // What SQLite wrote where the codec stamps: kept in case page 1
            // changes the page size later in this transaction.
            let area = self
                .reserve
                .unwrap_or(0)
                .max(io.stacking.total(io.codec.reserve()));
            let n = img.len();
            self.resize.keep(offset, n, &img[n - area.min(n)..]);
        }
        io.encode_page(pgno, self.reserve, stored_reserve, offset, img)
    }

    pub(crate) fn read<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &mut [u8],
        off: u64,
    ) -> Result<usize> {
        let n = buf.len();
        let verify_only = io.codec.verify_only();
        if verify_only && off + (n as u64) <= HEADER_READ as u64 {
            return self.read_header(io, buf, off);
        }
        // The page size: a read from offset 0 reads the header on the way
        // (as many base calls as a plain file); otherwise what is known.
        let mut got_ahead = None;
        if off == 0 && n >= HEADER_FIELDS {
            let got = read_some(io.base, buf, 0)?;
            self.observe(io, &buf[..got]);
            got_ahead = Some(got);
        } else if off < HEADER_FIELDS as u64 {
            self.refresh(io)?;
        } else {
            self.ensure_fresh(io)?;
        }
        let Some(p) = self.page_size else {
            return self.read_unmapped(io, buf, off, got_ahead);
        };
        let other_layout = verify_only && n != p && is_page_size(n) && off.is_multiple_of(n as u64);
        if !other_layout {
            return self
                .read_pages(io, scratch, buf, off, p, got_ahead, false)
                .map(|got| got.unwrap_or(0));
        }
        // SQLite's pager reads pages of another size than the header's: a
        // page size change in progress (or being rolled back), whose pages
        // are in either layout for a while.
        if let Some(got) = self.read_pages(io, scratch, buf, off, p, got_ahead, true)? {
            return Ok(got);
        }
        let got = read_some(io.base, buf, off)?;
        if got < n {
            return Ok(got);
        }
        if io
            .decode_as(page_number(off, n)?, self.reserve, off, false, true, buf)
            .is_ok()
            || (n < p && self.resize.has_piece(off))
        {
            // The old layout, or a piece this handle wrote whose page's
            // checksum comes with its last piece.
            return Ok(n);
        }
        // No layout fits: the error of the header's page size, reported.
        self.read_pages(io, scratch, buf, off, p, None, false)
            .map(|got| got.unwrap_or(0))
    }

    /// `read` once the page size `p` is known: each page the read touches,
    /// decoded. With `tentative`, a page that does not decode answers
    /// `Ok(None)` (I/O errors are still errors).
    #[allow(clippy::too_many_arguments)]
    fn read_pages<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &mut [u8],
        off: u64,
        p: usize,
        got_ahead: Option<usize>,
        tentative: bool,
    ) -> Result<Option<usize>> {
        let verify_only = io.codec.verify_only();
        let end = off + buf.len() as u64;
        let mut pos = off;
        while pos < end {
            let start = pos - pos % p as u64;
            let stop = end.min(start + p as u64);
            let pgno = page_number(start, p)?;
            let decoded = if pos == start && stop == start + p as u64 {
                let page = &mut buf[span(off, start, stop)];
                let got = match got_ahead {
                    Some(g) => g.saturating_sub((start - off) as usize).min(p),
                    None => read_some(io.base, page, start)?,
                };
                if got < p {
                    // Absent, or only partly present at the end of the
                    // file: a torn page is reported as absent (a short
                    // read), never decoded. A verifier passes the bytes
                    // through, as cksumvfs does.
                    return Ok(Some(
                        (pos - off) as usize + if verify_only { got } else { 0 },
                    ));
                }
                io.decode_as(pgno, self.reserve, start, false, tentative, page)
            } else {
                let img = grow(scratch, p);
                let got = read_some(io.base, img, start)?;
                let (a, b) = ((pos - start) as usize, (stop - start) as usize);
                if got < p {
                    if !verify_only {
                        return Ok(Some((pos - off) as usize));
                    }
                    let avail = got.clamp(a, b);
                    buf[span(off, pos, start + avail as u64)].copy_from_slice(&img[a..avail]);
                    return Ok(Some((pos - off) as usize + (avail - a)));
                }
                io.decode_part(
                    pgno,
                    self.reserve,
                    start,
                    tentative,
                    img,
                    a..b,
                    &mut buf[span(off, pos, stop)],
                )
            };
            match decoded {
                Ok(()) => {}
                Err(_) if tentative => return Ok(None),
                Err(e) => return Err(e),
            }
            pos = stop;
        }
        Ok(Some(buf.len()))
    }

    /// A header read of a verify-only codec (the 100 bytes at open, the
    /// change counter at offset 24 that starts every rollback-mode
    /// transaction): one read from offset 0 that learns the header on the
    /// way. Page 1 is verified when SQLite reads it whole.
    fn read_header<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        buf: &mut [u8],
        off: u64,
    ) -> Result<usize> {
        let mut h = [0u8; HEADER_READ];
        let (off, end) = (off as usize, off as usize + buf.len());
        let got = read_some(io.base, &mut h[..end], 0)?;
        self.observe(io, &h[..got]);
        let avail = got.saturating_sub(off);
        buf[..avail].copy_from_slice(&h[off..off + avail]);
        Ok(avail)
    }

    /// A read while no page size is known (no page 1, or one whose header
    /// names no valid page size). `got_ahead`: the bytes already read into
    /// `buf`, if any.
    fn read_unmapped<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        buf: &mut [u8],
        off: u64,
        got_ahead: Option<usize>,
    ) -> Result<usize> {
        let n = buf.len();
        let got = match got_ahead {
            Some(g) => g,
            None => read_some(io.base, buf, off)?,
        };
        if is_page_size(n) && off.is_multiple_of(n as u64) {
            // One page of that size, as SQLite's pager reads them (a
            // temporary database before its page 1 is written); the codec
            // decides what a page without a known format is.
            if got < n {
                return Ok(if io.codec.verify_only() { got } else { 0 });
            }
            io.decode(page_number(off, n)?, None, off, false, buf)?;
            return Ok(n);
        }
        if io.codec.verify_only() || got == 0 {
            // Without a header naming the format there is nothing to verify.
            return Ok(got);
        }
        // Fail closed: bytes of a transformed file are never handed to
        // SQLite undecoded.
        buf.fill(0);
        Err(Error::new(
            codes::SQLITE_NOTADB,
            format!(
                "{}: {n} bytes at offset {off} cannot be decoded: page 1 names no valid page size \
                 (header bytes 16-17)",
                io.path
            ),
        ))
    }
}
