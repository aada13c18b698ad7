//! Rollback journals (`pgno ‖ page ‖ checksum` records after a header) and
//! statement sub-journals (`pgno ‖ page` records, no header).

use vfs_core::{Error, File, Result, codes};

use crate::codec_io::{CodecIo, copy_in, read_some, wipe};
use crate::sqlite_format::{be32, is_page_size, pending_byte_pgno};
use crate::{Direction, PageCodec, PageCtx};

/// Bytes of the first journal header the layer reads and hands to the
/// codec: SQLite's 28 (magic, record count, checksum seed, database size,
/// sector size, page size), then 20 bytes SQLite leaves zero (a header is
/// at least 512 bytes: transformed files report sectors of at least 512).
pub(crate) const HEADER: usize = 48;

/// Bytes of the header SQLite reads.
const SQLITE_HEADER: usize = 28;

/// The smallest page size, so the shortest record image.
const MIN_PAGE: usize = 512;

/// The page size of the records of a journal whose first header is `h`,
/// following SQLite's `readJournalHdr`: the page-size field (bytes 24..28)
/// when it is a valid page size; when it is 0 (journals of SQLite before
/// 3.5.8), the pager's, which is the database's; unknown otherwise (SQLite
/// does not play such a journal back).
fn record_page_size(h: &[u8], db_page_size: Option<usize>) -> Option<usize> {
    if h.len() < SQLITE_HEADER {
        return None;
    }
    match be32(&h[24..28]) as usize {
        0 => db_page_size,
        p if is_page_size(p) => Some(p),
        _ => None,
    }
}

/// The stored first header (up to [`HEADER`] bytes) and its length.
type Header = ([u8; HEADER], usize);

/// Main rollback journals.
///
/// SQLite reads and writes a record as three calls: the 4-byte page
/// number, the page image at the next offset, the 4-byte checksum. A read
/// or write of at least [`MIN_PAGE`] bytes right after a 4-byte one is
/// therefore a record's page (or, after the super-journal marker page
/// number, the super-journal's name). Its page size must be the journal's:
/// anything else is an error, never passed through.
#[derive(Debug, Default)]
pub(crate) struct JournalMap {
    /// The stored first header, when current.
    header: Option<Header>,
    /// Whether the codec saw `header` (written or read) since it was
    /// loaded: records need that once, not at every record.
    header_seen: bool,
    /// The end of the records this handle wrote since it wrote the first
    /// header: records before it are its own transaction's; records after
    /// it were written by another handle (a hot journal, played back as
    /// crash recovery).
    own_end: u64,
    /// Last 4-byte write: a record's page number, (offset, value).
    w_pgno: Option<(u64, u32)>,
    /// Where the checksum of the page just written goes, (offset, pgno).
    w_sum: Option<(u64, u32)>,
    /// The same two for reads.
    r_pgno: Option<(u64, u32)>,
    r_sum: Option<(u64, u32)>,
}

impl JournalMap {
    pub(crate) fn truncated<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        size: u64,
    ) -> Result<()> {
        self.header = None;
        self.header_seen = false;
        self.own_end = self.own_end.min(size);
        self.w_pgno = None;
        self.w_sum = None;
        self.r_pgno = None;
        self.r_sum = None;
        if size < HEADER as u64 {
            // No header left: the journal describes no transaction.
            io.codec
                .journal_header(io.state, &io.stream_ctx(0), &mut [], Direction::Encode)?;
        }
        Ok(())
    }

    /// The stored first header as read from the base (cached).
    fn stored_header<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
    ) -> Result<Header> {
        if let Some(h) = self.header {
            return Ok(h);
        }
        let mut h = [0u8; HEADER];
        let n = read_some(io.base, &mut h, 0)?;
        self.header = Some((h, n));
        self.header_seen = false;
        Ok((h, n))
    }

    /// The first header as SQLite wrote it, after the codec saw it, and
    /// whether the codec accepts the journal.
    fn decoded_header<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
    ) -> Result<(Header, bool)> {
        let (mut h, n) = self.stored_header(io)?;
        let accepted =
            io.codec
                .journal_header(io.state, &io.stream_ctx(0), &mut h[..n], Direction::Decode)?;
        self.header_seen = true;
        Ok(((h, n), accepted))
    }

    /// The page size of the records.
    fn page_size<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
    ) -> Result<Option<usize>> {
        let (h, n) = self.stored_header(io)?;
        Ok(record_page_size(&h[..n], io.geometry.page_size()))
    }

    fn sum_hook<F: File, C: PageCodec>(
        io: &mut CodecIo<'_, F, C>,
        pgno: u32,
        page_size: usize,
        off: u64,
        sum: &mut [u8; 4],
        dir: Direction,
    ) -> Result<()> {
        let ctx = io.ctx(pgno, page_size, io.geometry.reserve(), off);
        io.codec
            .journal_checksum(io.state, &ctx, sum, dir)
            .map_err(|e| e.context(ctx.describe()))
    }

    fn wrong_size(
        io: &CodecIo<'_, impl File, impl PageCodec>,
        what: &str,
        n: usize,
        pgno: u32,
        off: u64,
        p: Option<usize>,
        code: i32,
    ) -> Error {
        Error::new(
            code,
            format!(
                "{}: refusing to {what} a {n}-byte record image for page {pgno} at offset {off}: \
                 {}",
                io.path,
                match p {
                    Some(p) => format!("the journal's pages are {p} bytes"),
                    None => "the journal's header names no page size this layer can map".into(),
                }
            ),
        )
    }

    pub(crate) fn write<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &[u8],
        off: u64,
    ) -> Result<()> {
        let n = buf.len();
        if off < HEADER as u64 {
            self.w_pgno = None;
            self.w_sum = None;
            if off == 0 && n >= SQLITE_HEADER {
                // A first header: a new transaction's, or SQLite zeroing the
                // header of a finished one.
                let out = copy_in(scratch, buf);
                io.codec
                    .journal_header(io.state, &io.stream_ctx(0), out, Direction::Encode)?;
                let mut h = [0u8; HEADER];
                let k = n.min(HEADER);
                h[..k].copy_from_slice(&out[..k]);
                self.header = Some((h, k));
                self.header_seen = true;
                self.own_end = 0;
                return io.base.write_at(out, 0);
            }
            // Part of it (SQLite writing the magic and record count once
            // the records are synced).
            if let Some((h, len)) = &mut self.header {
                let end = (off as usize + n).min(HEADER);
                h[off as usize..end].copy_from_slice(&buf[..end - off as usize]);
                *len = (*len).max(end);
            }
            return io.base.write_at(buf, off);
        }
        if n == 4 {
            if let Some((at, pgno)) = self.w_sum.take()
                && at == off
            {
                let mut sum = [buf[0], buf[1], buf[2], buf[3]];
                let p = self.page_size(io)?.unwrap_or(0);
                Self::sum_hook(io, pgno, p, off, &mut sum, Direction::Encode)?;
                self.w_pgno = None;
                return io.base.write_at(&sum, off);
            }
            self.w_pgno = Some((off, be32(buf)));
            return io.base.write_at(buf, off);
        }
        self.w_sum = None;
        if let Some((at, pgno)) = self.w_pgno.take()
            && at + 4 == off
            && n >= MIN_PAGE
        {
            let p = self.page_size(io)?;
            if p.is_some_and(|p| pgno == pending_byte_pgno(p)) {
                // The super-journal's name after its marker: no page.
                return io.base.write_at(buf, off);
            }
            if pgno == 0 || p != Some(n) {
                return Err(Self::wrong_size(
                    io,
                    "write",
                    n,
                    pgno,
                    off,
                    p,
                    codes::SQLITE_IOERR_WRITE,
                ));
            }
            let img = copy_in(scratch, buf);
            if let Err(e) = io.encode(pgno, io.geometry.reserve(), off, img) {
                // The buffer keeps only stored bytes (see `PageFile`'s drop).
                wipe(img);
                return Err(e);
            }
            io.base.write_at(img, off)?;
            self.own_end = self.own_end.max(off + n as u64 + 4);
            self.w_sum = Some((off + n as u64, pgno));
            return Ok(());
        }
        io.base.write_at(buf, off)
    }

    pub(crate) fn read<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        buf: &mut [u8],
        off: u64,
    ) -> Result<usize> {
        let n = buf.len();
        let got = read_some(io.base, buf, off)?;
        if off < HEADER as u64 {
            // SQLite reading the first header: the codec's view of it, or
            // no header at all for a journal the codec refuses.
            let ((h, _), accepted) = self.decoded_header(io)?;
            let end = (off as usize + got).min(HEADER);
            let part = &mut buf[..end.saturating_sub(off as usize)];
            if accepted {
                part.copy_from_slice(&h[off as usize..end]);
            } else {
                part.fill(0);
            }
            self.r_sum = None;
            self.r_pgno = (n == 4 && got == 4).then(|| (off, be32(buf)));
            return Ok(got);
        }
        if n == 4 && got == 4 {
            if let Some((at, pgno)) = self.r_sum.take()
                && at == off
            {
                let mut sum = [buf[0], buf[1], buf[2], buf[3]];
                let p = self.page_size(io)?.unwrap_or(0);
                Self::sum_hook(io, pgno, p, off, &mut sum, Direction::Decode)?;
                buf.copy_from_slice(&sum);
                self.r_pgno = None;
                return Ok(4);
            }
            self.r_pgno = Some((off, be32(buf)));
            return Ok(4);
        }
        self.r_sum = None;
        if let Some((at, pgno)) = self.r_pgno.take()
            && at + 4 == off
            && n >= MIN_PAGE
        {
            if pgno == 0 || pgno == pending_byte_pgno(n) {
                // SQLite stops at such a record without using its page:
                // nothing undecoded reaches it.
                buf[..got].fill(0);
                return Ok(got);
            }
            if got < n {
                // The journal ends inside the record: the end of the log.
                buf[..got].fill(0);
                return Ok(0);
            }
            let p = self.page_size(io)?;
            if p != Some(n) {
                buf.fill(0);
                return Err(Self::wrong_size(
                    io,
                    "read",
                    n,
                    pgno,
                    off,
                    p,
                    codes::SQLITE_IOERR_READ,
                ));
            }
            // The codec learns the header (its binding) before any record.
            if !self.header_seen || self.header.is_none() {
                self.decoded_header(io)?;
            }
            let ctx = PageCtx {
                recovery: off >= self.own_end,
                ..io.ctx(pgno, n, io.geometry.reserve(), off)
            };
            if io.decode_with(&ctx, buf)? {
                self.r_sum = Some((off + n as u64, pgno));
                return Ok(n);
            }
            // Torn: a short read, which makes SQLite end the playback here.
            buf.fill(0);
            return Ok(0);
        }
        Ok(got)
    }
}

/// Statement sub-journals: records of `pgno (4, big-endian) ‖ page` from
/// offset 0.
#[derive(Debug, Default)]
pub(crate) struct SubJournalMap {
    page_size: Option<usize>,
    /// A spilled chunk (written at offset 0 before the page size is known),
    /// held unwritten; reads are served from it.
    held: Vec<u8>,
    holding: bool,
    /// A 4-byte page number written right after the held chunk.
    held_pgno: Option<(u64, u32)>,
    w_pgno: Option<(u64, u32)>,
    r_pgno: Option<(u64, u32)>,
}

impl SubJournalMap {
    /// Clears the held chunk before its memory is freed.
    pub(crate) fn wipe(&mut self) {
        wipe(&mut self.held);
    }

    pub(crate) fn held_end(&self) -> u64 {
        if !self.holding {
            return 0;
        }
        match self.held_pgno {
            Some((at, _)) => at + 4,
            None => self.held.len() as u64,
        }
    }

    pub(crate) fn truncated(&mut self, size: u64) {
        if self.holding {
            if size == 0 {
                self.holding = false;
                self.held.clear();
                self.held_pgno = None;
            } else {
                self.held.truncate(size as usize);
                if self.held_pgno.is_some_and(|(at, _)| at + 4 > size) {
                    self.held_pgno = None;
                }
            }
        }
        self.w_pgno = None;
        self.r_pgno = None;
    }

    /// Encodes, in place, every record of `chunk` (which starts at offset
    /// 0); the chunk must end at a record boundary or right after a page
    /// number.
    fn encode_records<F: File, C: PageCodec>(
        io: &mut CodecIo<'_, F, C>,
        p: usize,
        chunk: &mut [u8],
    ) -> Result<()> {
        let rec = 4 + p;
        let mut at = 0;
        while at + rec <= chunk.len() {
            let pgno = be32(&chunk[at..at + 4]);
            io.encode(
                pgno,
                io.geometry.reserve(),
                (at + 4) as u64,
                &mut chunk[at + 4..at + rec],
            )?;
            at += rec;
        }
        let rest = chunk.len() - at;
        if rest != 0 && rest != 4 {
            return Err(Error::new(
                codes::SQLITE_IOERR_WRITE,
                format!(
                    "{}: sub-journal chunk of {} bytes is not made of {p}-byte page records",
                    io.path,
                    chunk.len()
                ),
            ));
        }
        Ok(())
    }

    /// Encodes and writes the held chunk now that the page size is known.
    fn flush_held<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        p: usize,
    ) -> Result<()> {
        let mut held = std::mem::take(&mut self.held);
        let r = Self::encode_records(io, p, &mut held).and_then(|()| {
            if held.is_empty() {
                Ok(())
            } else {
                io.base.write_at(&held, 0)
            }
        });
        held.clear();
        self.held = held;
        r?;
        self.holding = false;
        if let Some((at, v)) = self.held_pgno.take() {
            io.base.write_at(&v.to_be_bytes(), at)?;
        }
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
        if self.holding {
            let held_len = self.held.len() as u64;
            if self.held_pgno.is_none() && off == held_len && n == 4 {
                self.held_pgno = Some((off, be32(buf)));
                return Ok(());
            }
            let (record_start, pgno) = match self.held_pgno {
                Some((at, v)) if off == at + 4 => (at, v),
                None if off == held_len && held_len >= 4 => {
                    (held_len - 4, be32(&self.held[self.held.len() - 4..]))
                }
                _ => {
                    return Err(Error::new(
                        codes::SQLITE_IOERR_WRITE,
                        format!(
                            "{}: unexpected sub-journal write of {n} bytes at offset {off} after \
                             a {held_len}-byte spill",
                            io.path
                        ),
                    ));
                }
            };
            if !is_page_size(n) || !record_start.is_multiple_of(4 + n as u64) {
                return Err(Error::new(
                    codes::SQLITE_IOERR_WRITE,
                    format!(
                        "{}: sub-journal write of {n} bytes at offset {off} does not fit the \
                         records of its spilled chunk",
                        io.path
                    ),
                ));
            }
            self.page_size = Some(n);
            self.flush_held(io, n)?;
            self.w_pgno = Some((record_start, pgno));
        } else if off == 0 && n > 4 {
            // SQLite's in-memory sub-journal spilling to the file in one
            // chunk of whole records.
            let Some(p) = self.page_size else {
                self.held.clear();
                self.held.extend_from_slice(buf);
                self.holding = true;
                self.held_pgno = None;
                return Ok(());
            };
            let out = copy_in(scratch, buf);
            Self::encode_records(io, p, out)?;
            self.w_pgno = None;
            return io.base.write_at(out, 0);
        }
        if n == 4 {
            self.w_pgno = Some((off, be32(buf)));
            return io.base.write_at(buf, off);
        }
        if let Some((at, pgno)) = self.w_pgno.take()
            && at + 4 == off
            && pgno != 0
            && match self.page_size {
                Some(p) => p == n,
                None => is_page_size(n) && at.is_multiple_of(4 + n as u64),
            }
        {
            self.page_size = Some(n);
            let img = copy_in(scratch, buf);
            io.encode(pgno, io.geometry.reserve(), off, img)?;
            return io.base.write_at(img, off);
        }
        io.base.write_at(buf, off)
    }

    pub(crate) fn read<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        buf: &mut [u8],
        off: u64,
    ) -> Result<usize> {
        let n = buf.len();
        if self.holding {
            // Nothing is on the base yet; the held bytes are SQLite's own.
            let end = off as usize + n;
            if end > self.held.len() {
                return Err(Error::new(
                    codes::SQLITE_IOERR_READ,
                    format!(
                        "{}: read of {n} bytes at offset {off} while a sub-journal spill of {} \
                         bytes is pending",
                        io.path,
                        self.held.len()
                    ),
                ));
            }
            buf.copy_from_slice(&self.held[off as usize..end]);
            return Ok(n);
        }
        let got = read_some(io.base, buf, off)?;
        if n == 4 && got == 4 {
            self.r_pgno = Some((off, be32(buf)));
            return Ok(4);
        }
        if let Some((at, pgno)) = self.r_pgno.take()
            && at + 4 == off
            && got == n
            && pgno != 0
            && self.page_size == Some(n)
        {
            io.decode(pgno, io.geometry.reserve(), off, false, buf)?;
        }
        Ok(got)
    }
}
