//! Rollback journals (`pgno ‖ page ‖ checksum` records after a header) and
//! statement sub-journals (`pgno ‖ page` records, no header).

use vfs_core::{Error, File, Result, codes};

use crate::codec_io::{CodecIo, grow, read_some};
use crate::sqlite_format::{be32, is_page_size, pending_byte_pgno};
use crate::{Direction, PageCodec};

/// The 8 bytes that open a valid rollback-journal header.
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

/// The page size recorded in a journal header (bytes 24..28), if `h` looks
/// like one (magic, or the all-zero magic SQLite writes before the first
/// sync).
fn journal_header_page_size(h: &[u8]) -> Option<usize> {
    if h.len() < 28 || (h[..8] != JOURNAL_MAGIC && h[..8] != [0; 8]) {
        return None;
    }
    let p = be32(&h[24..28]) as usize;
    is_page_size(p).then_some(p)
}

/// Main rollback journals.
#[derive(Debug, Default)]
pub(crate) struct JournalMap {
    page_size: Option<usize>,
    /// Whether `page_size` reflects the stored header (else read it).
    known: bool,
    /// Last 4-byte write: a record's page number, (offset, value).
    w_pgno: Option<(u64, u32)>,
    /// Where the checksum of the page just written goes, (offset, pgno).
    w_sum: Option<(u64, u32)>,
    /// The same two for reads.
    r_pgno: Option<(u64, u32)>,
    r_sum: Option<(u64, u32)>,
}

impl JournalMap {
    pub(crate) fn truncated(&mut self) {
        self.known = false;
        self.w_pgno = None;
        self.w_sum = None;
        self.r_pgno = None;
        self.r_sum = None;
    }

    fn page_size<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
    ) -> Result<Option<usize>> {
        if !self.known {
            let mut h = [0u8; 28];
            let got = read_some(io.base, &mut h, 0)?;
            self.page_size = journal_header_page_size(&h[..got]);
            self.known = true;
        }
        Ok(self.page_size)
    }

    fn sum_hook<F: File, C: PageCodec>(
        io: &mut CodecIo<'_, F, C>,
        pgno: u32,
        page_size: usize,
        off: u64,
        sum: &mut [u8; 4],
        dir: Direction,
    ) -> Result<()> {
        let ctx = io.ctx(pgno, page_size, io.geometry.reserve(), off, false);
        io.codec
            .journal_checksum(io.state, &ctx, sum, dir)
            .map_err(|e| e.context(ctx.describe()))
    }

    pub(crate) fn write<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &[u8],
        off: u64,
    ) -> Result<()> {
        let n = buf.len();
        if off == 0 {
            if let Some(p) = journal_header_page_size(buf) {
                self.page_size = Some(p);
                self.known = true;
            } else {
                self.known = false;
            }
            self.w_pgno = None;
            self.w_sum = None;
            return io.base.write_at(buf, off);
        }
        if n == 4 {
            if let Some((at, pgno)) = self.w_sum.take()
                && at == off
            {
                let mut sum = [buf[0], buf[1], buf[2], buf[3]];
                let p = self.page_size.unwrap_or(0);
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
            && pgno != 0
            && self.page_size(io)? == Some(n)
            && pgno != pending_byte_pgno(n)
        {
            let img = grow(scratch, n);
            img.copy_from_slice(buf);
            io.encode(pgno, io.geometry.reserve(), off, img)?;
            io.base.write_at(img, off)?;
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
        if n == 4 && got == 4 {
            if let Some((at, pgno)) = self.r_sum.take()
                && at == off
            {
                let mut sum = [buf[0], buf[1], buf[2], buf[3]];
                let p = self.page_size.unwrap_or(0);
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
            && got == n
            && pgno != 0
            && self.page_size(io)? == Some(n)
            && pgno != pending_byte_pgno(n)
        {
            io.decode(pgno, io.geometry.reserve(), off, false, buf)?;
            self.r_sum = Some((off + n as u64, pgno));
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
            let out = grow(scratch, n);
            out.copy_from_slice(buf);
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
            let img = grow(scratch, n);
            img.copy_from_slice(buf);
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
