//! WAL files: a 32-byte header, then frames of a 24-byte header and a page.

use vfs_core::{Error, File, Result, codes};

use crate::codec_io::{CodecIo, copy_in, grow, read_some, wipe};
use crate::sqlite_format::{be32, db_header, is_page_size};
use crate::{Direction, PageCodec, PageCtx};

const WAL_HEADER: u64 = 32;
const FRAME_HEADER: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seg {
    WalHeader,
    FrameHeader,
    Page,
}

/// One piece of the WAL's layout: the WAL header, a frame header or the
/// page of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    kind: Seg,
    start: u64,
    len: usize,
}

impl Segment {
    /// The segment holding byte `pos` of a WAL of `p`-byte pages.
    fn at(p: usize, pos: u64) -> Segment {
        if pos < WAL_HEADER {
            return Segment {
                kind: Seg::WalHeader,
                start: 0,
                len: WAL_HEADER as usize,
            };
        }
        let frame = (FRAME_HEADER + p) as u64;
        let start = WAL_HEADER + (pos - WAL_HEADER) / frame * frame;
        if pos < start + FRAME_HEADER as u64 {
            Segment {
                kind: Seg::FrameHeader,
                start,
                len: FRAME_HEADER,
            }
        } else {
            Segment {
                kind: Seg::Page,
                start: start + FRAME_HEADER as u64,
                len: p,
            }
        }
    }

    fn end(self) -> u64 {
        self.start + self.len as u64
    }

    /// Where the frame this segment belongs to starts (its header).
    fn frame_start(self) -> u64 {
        match self.kind {
            Seg::Page => self.start - FRAME_HEADER as u64,
            _ => self.start,
        }
    }
}

fn wal_page_size(header: &[u8]) -> Option<usize> {
    if header.len() < 12 {
        return None;
    }
    let p = be32(&header[8..12]) as usize;
    is_page_size(p).then_some(p)
}

/// A write covering part of a segment, held until the rest arrives.
#[derive(Debug)]
struct Pending {
    seg: Segment,
    filled: usize,
}

/// Bytes 0–15 of a frame header: page number, commit size, salts.
type FrameHead = [u8; 16];

/// The frames this handle wrote in one WAL generation (the salts of their
/// headers): offsets of the first and past the last.
#[derive(Debug, Clone, Copy)]
struct Own {
    salts: [u8; 8],
    start: u64,
    end: u64,
}

#[derive(Debug, Default)]
pub(crate) struct WalMap {
    page_size: Option<usize>,
    /// The last frame header written: (offset, bytes 0–15).
    last_header: Option<(u64, FrameHead)>,
    pending: Option<Pending>,
    pending_buf: Vec<u8>,
    /// Frames this handle wrote: a whole-frame read of one of them is not
    /// recovery (SQLite re-reading its own transaction's frames to
    /// checksum them again), so a frame there that does not authenticate
    /// is an error, never the end of the log.
    own: Option<Own>,
}

impl WalMap {
    pub(crate) fn truncated(&mut self, size: u64) {
        if size < WAL_HEADER {
            self.page_size = None;
        }
        self.last_header = None;
        if self.pending.as_ref().is_some_and(|p| p.seg.start >= size) {
            self.pending = None;
        }
        if let Some(own) = &mut self.own {
            own.end = own.end.min(size);
        }
    }

    /// Clears held bytes before their memory is freed.
    pub(crate) fn wipe(&mut self) {
        wipe(&mut self.pending_buf);
    }

    /// Notes a frame this handle wrote. A header with zero salts is one
    /// SQLite writes after overwriting a frame of the same transaction (it
    /// writes the salts and checksums of all of them again at commit,
    /// walRewriteChecksums): it belongs to the generation being written.
    fn wrote_frame(&mut self, frame_start: u64, frame_end: u64, head: &FrameHead) {
        let salts: [u8; 8] = head[8..16].try_into().unwrap_or_default();
        match &mut self.own {
            Some(own) if own.salts == salts || salts == [0; 8] => {
                own.start = own.start.min(frame_start);
                own.end = own.end.max(frame_end);
            }
            _ => {
                self.own = Some(Own {
                    salts,
                    start: frame_start,
                    end: frame_end,
                })
            }
        }
    }

    /// Whether the frame at `frame_start` with header `head` is one this
    /// handle wrote.
    fn is_own(&self, frame_start: u64, head: &FrameHead) -> bool {
        self.own.is_some_and(|own| {
            (own.salts[..] == head[8..16] || head[8..16] == [0; 8])
                && (own.start..own.end).contains(&frame_start)
        })
    }

    /// Refuses I/O past the WAL header while no page size is known:
    /// nothing of a transformed WAL passes through unmapped.
    fn unmapped(
        &self,
        io: &CodecIo<'_, impl File, impl PageCodec>,
        what: &str,
        off: u64,
        n: usize,
    ) -> Error {
        Error::new(
            if what == "read" {
                codes::SQLITE_IOERR_READ
            } else {
                codes::SQLITE_IOERR_WRITE
            },
            format!(
                "{}: refusing to {what} {n} bytes at offset {off} of a WAL whose header names \
                 no page size",
                io.path
            ),
        )
    }

    fn learn_from_base<F: File, C: PageCodec>(&mut self, io: &mut CodecIo<'_, F, C>) -> Result<()> {
        let mut h = [0u8; WAL_HEADER as usize];
        let got = read_some(io.base, &mut h, 0)?;
        self.page_size = wal_page_size(&h[..got]);
        if let Some(p) = self.page_size {
            io.geometry.set_page_size(p);
        }
        if got < WAL_HEADER as usize || self.own.is_some_and(|own| own.salts[..] != h[16..24]) {
            // Another generation: the frames this handle wrote are gone.
            self.own = None;
        }
        Ok(())
    }

    fn checksum_hook<F: File, C: PageCodec>(
        io: &mut CodecIo<'_, F, C>,
        p: usize,
        frame_start: u64,
        header: &mut [u8],
        dir: Direction,
    ) -> Result<()> {
        let pgno = be32(&header[..4]);
        let ctx = PageCtx {
            frame_header: header[..16].try_into().ok(),
            ..io.ctx(pgno, p, io.geometry.reserve(), frame_start)
        };
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&header[16..24]);
        io.codec
            .wal_frame_checksum(io.state, &ctx, &mut sum, dir)
            .map_err(|e| e.context(ctx.describe()))?;
        header[16..24].copy_from_slice(&sum);
        Ok(())
    }

    /// Bytes 0–15 of the header of the frame at `frame_start`, from `out`
    /// (the bytes of the current write, starting at `off`) when it holds
    /// them, else from what was written before.
    fn frame_head<F: File>(
        &self,
        base: &mut F,
        out: &[u8],
        off: u64,
        frame_start: u64,
    ) -> Result<FrameHead> {
        if frame_start >= off && frame_start + 16 <= off + out.len() as u64 {
            let a = (frame_start - off) as usize;
            return Ok(out[a..a + 16].try_into().unwrap_or_default());
        }
        if let Some((s, head)) = self.last_header
            && s == frame_start
        {
            return Ok(head);
        }
        if let Some(p) = &self.pending
            && p.seg.kind == Seg::FrameHeader
            && p.seg.start == frame_start
            && p.filled >= 16
        {
            return Ok(self.pending_buf[..16].try_into().unwrap_or_default());
        }
        let mut h = [0u8; 16];
        if read_some(base, &mut h, frame_start)? < 16 {
            return Err(Error::new(
                codes::SQLITE_IOERR_WRITE,
                format!(
                    "WAL page written at offset {} before its frame header",
                    frame_start + 24
                ),
            ));
        }
        Ok(h)
    }

    /// Encodes one complete segment, `bytes`, in place; `head` is the
    /// frame header of a page segment.
    fn encode_segment<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        p: usize,
        seg: Segment,
        bytes: &mut [u8],
        head: FrameHead,
    ) -> Result<()> {
        let start = seg.start;
        match seg.kind {
            Seg::WalHeader => Ok(()),
            Seg::FrameHeader => {
                self.last_header = Some((start, bytes[..16].try_into().unwrap_or_default()));
                Self::checksum_hook(io, p, start, bytes, Direction::Encode)
            }
            Seg::Page => {
                let pgno = be32(&head[..4]);
                if pgno == 1
                    && let Some((_, r)) = db_header(bytes)
                {
                    io.geometry.set_reserve(r);
                }
                let ctx = PageCtx {
                    frame_header: Some(head),
                    ..io.ctx(pgno, p, io.geometry.reserve(), start)
                };
                io.encode_with(&ctx, bytes)?;
                self.wrote_frame(seg.frame_start(), seg.end(), &head);
                Ok(())
            }
        }
    }

    pub(crate) fn write<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &[u8],
        off: u64,
    ) -> Result<()> {
        if off == 0
            && let Some(p) = wal_page_size(buf)
        {
            self.page_size = Some(p);
            io.geometry.set_page_size(p);
            self.pending = None;
            self.last_header = None;
            // A new WAL generation: its frames are written from here on.
            self.own = None;
        }
        if self.page_size.is_none() {
            self.learn_from_base(io)?;
        }
        let Some(p) = self.page_size else {
            if off + buf.len() as u64 > WAL_HEADER {
                return Err(self.unmapped(io, "write", off, buf.len()));
            }
            return io.base.write_at(buf, off);
        };
        let end = off + buf.len() as u64;
        let out = copy_in(scratch, buf);
        let mut run = off;
        let mut pos = off;
        while pos < end {
            let seg = Segment::at(p, pos);
            let stop = end.min(seg.end());
            if seg.kind == Seg::WalHeader {
                // Passes through, whole or in part.
            } else if pos == seg.start && stop == seg.end() {
                let head = match seg.kind {
                    Seg::Page => self.frame_head(io.base, out, off, seg.frame_start())?,
                    _ => [0; 16],
                };
                let (a, b) = ((seg.start - off) as usize, (seg.end() - off) as usize);
                self.encode_segment(io, p, seg, &mut out[a..b], head)?;
            } else {
                if pos > run {
                    io.base
                        .write_at(&out[(run - off) as usize..(pos - off) as usize], run)?;
                }
                let piece = &buf[(pos - off) as usize..(stop - off) as usize];
                self.feed_pending(io, p, seg, pos, piece)?;
                run = stop;
            }
            pos = stop;
        }
        if end > run {
            io.base.write_at(&out[(run - off) as usize..], run)?;
        }
        Ok(())
    }

    /// Accumulates `piece`, the bytes of segment `seg` from `pos` on;
    /// writes the segment, encoded, once complete.
    fn feed_pending<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        p: usize,
        seg: Segment,
        pos: u64,
        piece: &[u8],
    ) -> Result<()> {
        let (start, len) = (seg.start, seg.len);
        let rel = (pos - start) as usize;
        let continues =
            matches!(&self.pending, Some(pd) if pd.seg.start == start && pd.filled == rel);
        if !continues {
            if rel != 0 {
                return Err(Error::new(
                    codes::SQLITE_IOERR_WRITE,
                    format!(
                        "{}: WAL write at offset {pos} continues a frame part that was never \
                         written",
                        io.path
                    ),
                ));
            }
            self.pending = Some(Pending { seg, filled: 0 });
        }
        grow(&mut self.pending_buf, len);
        let Some(pd) = self.pending.as_mut() else {
            return Ok(());
        };
        self.pending_buf[rel..rel + piece.len()].copy_from_slice(piece);
        pd.filled = rel + piece.len();
        if pd.filled < pd.seg.len {
            return Ok(());
        }
        self.pending = None;
        let mut image = std::mem::take(&mut self.pending_buf);
        let head = match seg.kind {
            Seg::Page => self.frame_head(io.base, &[], 0, seg.frame_start())?,
            _ => [0; 16],
        };
        let r = self
            .encode_segment(io, p, seg, &mut image[..len], head)
            .and_then(|()| io.base.write_at(&image[..len], start));
        self.pending_buf = image;
        r
    }

    pub(crate) fn read<F: File, C: PageCodec>(
        &mut self,
        io: &mut CodecIo<'_, F, C>,
        scratch: &mut Vec<u8>,
        buf: &mut [u8],
        off: u64,
    ) -> Result<usize> {
        if off == 0 || self.page_size.is_none() {
            // The WAL header: learn the page size again (another handle may
            // have restarted the WAL), and whether our frames are still
            // this generation's.
            self.learn_from_base(io)?;
        }
        let Some(p) = self.page_size else {
            if off + buf.len() as u64 > WAL_HEADER {
                return Err(self.unmapped(io, "read", off, buf.len()));
            }
            return read_some(io.base, buf, off);
        };
        let got = read_some(io.base, buf, off)?;
        let req_end = off + buf.len() as u64;
        let got_end = off + got as u64;
        let mut pos = off;
        while pos < req_end && pos < got_end {
            let seg = Segment::at(p, pos);
            let (start, len, seg_end) = (seg.start, seg.len, seg.end());
            let stop = req_end.min(seg_end);
            if seg.kind == Seg::WalHeader {
                pos = stop;
                continue;
            }
            if stop > got_end {
                // The segment is cut by the end of the file: incomplete, so
                // report the read as ending before it.
                return Ok((pos - off) as usize);
            }
            let frame_start = seg.frame_start();
            if pos == start && stop == seg_end {
                let (a, b) = ((start - off) as usize, (seg_end - off) as usize);
                match seg.kind {
                    Seg::FrameHeader => {
                        Self::checksum_hook(io, p, start, &mut buf[a..b], Direction::Decode)?
                    }
                    _ => {
                        let head = self.read_head(io.base, buf, off, frame_start)?;
                        // A frame read with its header is recovery (or SQLite
                        // re-reading frames it wrote, to checksum them again).
                        let whole_frame = frame_start >= off;
                        let ctx = PageCtx {
                            recovery: whole_frame && !self.is_own(frame_start, &head),
                            frame_header: Some(head),
                            ..io.ctx(be32(&head[..4]), p, io.geometry.reserve(), start)
                        };
                        if !io.decode_with(&ctx, &mut buf[a..b])? {
                            // Torn: no page, and a header whose salts no
                            // longer match the WAL's, so SQLite ends the log
                            // at this frame whatever its checksum says.
                            buf[a..b].fill(0);
                            let h = (frame_start - off) as usize;
                            for x in &mut buf[h + 8..h + 16] {
                                *x = !*x;
                            }
                        } else if ctx.pgno == 1
                            && let Some((_, r)) = db_header(&buf[a..b])
                        {
                            io.geometry.set_reserve(r);
                        }
                    }
                }
            } else {
                // Part of a segment: decode the whole segment, copy the part.
                let img = grow(scratch, len);
                if read_some(io.base, img, start)? < len {
                    return Ok((pos - off) as usize);
                }
                match seg.kind {
                    Seg::FrameHeader => {
                        Self::checksum_hook(io, p, start, img, Direction::Decode)?;
                    }
                    _ => {
                        let head = self.read_head(io.base, &[], 0, frame_start)?;
                        let ctx = PageCtx {
                            partial: true,
                            frame_header: Some(head),
                            ..io.ctx(be32(&head[..4]), p, io.geometry.reserve(), start)
                        };
                        io.decode_with(&ctx, img)?;
                    }
                }
                let (a, b) = ((pos - start) as usize, (stop - start) as usize);
                buf[(pos - off) as usize..(stop - off) as usize].copy_from_slice(&img[a..b]);
            }
            pos = stop;
        }
        Ok(got)
    }

    /// Bytes 0–15 of the header of the frame at `frame_start`, from `buf`
    /// (read from `off`) when it holds them, else from the base.
    fn read_head<F: File>(
        &self,
        base: &mut F,
        buf: &[u8],
        off: u64,
        frame_start: u64,
    ) -> Result<FrameHead> {
        if frame_start >= off && frame_start + 16 <= off + buf.len() as u64 {
            let a = (frame_start - off) as usize;
            return Ok(buf[a..a + 16].try_into().unwrap_or_default());
        }
        let mut h = [0u8; 16];
        if read_some(base, &mut h, frame_start)? < 16 {
            return Err(Error::new(
                codes::SQLITE_IOERR_READ,
                format!("WAL frame header at offset {frame_start} is missing"),
            ));
        }
        Ok(h)
    }
}
