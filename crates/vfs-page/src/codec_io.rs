//! The base file and the codec, borrowed for one operation of a mapper.

use vfs_core::{Error, File, FileKind, FileName, Result, codes};

use crate::codec::TORN;
use crate::geometry::PageGeometry;
use crate::{PageCodec, PageCtx, Stacking, StreamCtx};

/// Overwrites `buf` with zeros, in a way the compiler keeps although the
/// buffer is about to be freed.
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(&buf);
}

/// `scratch[..n]`, growing it if needed (only the first time a size is
/// seen).
pub(crate) fn grow(scratch: &mut Vec<u8>, n: usize) -> &mut [u8] {
    if scratch.len() < n {
        // Growing may move the buffer: what it held must not stay behind.
        wipe(scratch);
        scratch.resize(n, 0);
    }
    &mut scratch[..n]
}

/// `scratch[..src.len()]` holding a copy of `src`: [`grow`] then a copy,
/// without zeroing the new room first when the buffer grows (a journal's
/// handle, opened per write transaction, grows its buffer at its first
/// write).
pub(crate) fn copy_in<'s>(scratch: &'s mut Vec<u8>, src: &[u8]) -> &'s mut [u8] {
    let n = src.len();
    if scratch.len() < n {
        // The old buffer is freed: what it held must not stay behind.
        wipe(scratch);
        let mut fresh = Vec::with_capacity(n);
        fresh.extend_from_slice(src);
        *scratch = fresh;
        return &mut scratch[..];
    }
    let out = &mut scratch[..n];
    out.copy_from_slice(src);
    out
}

/// Reads from the base; a short-read error (a backend that gives no count)
/// becomes 0 bytes read.
pub(crate) fn read_some<F: File>(base: &mut F, buf: &mut [u8], off: u64) -> Result<usize> {
    match base.read_at(buf, off) {
        Ok(n) => Ok(n.min(buf.len())),
        Err(e) if e.code() == Some(codes::SQLITE_IOERR_SHORT_READ) => Ok(0),
        Err(e) => Err(e),
    }
}

/// How the layer takes a decode's result: `Ok(true)` decoded, `Ok(false)`
/// torn (recovery only), `Err` anything else (a torn answer outside
/// recovery becomes `SQLITE_IOERR_DATA`).
fn decoded(r: Result<()>, recovery: bool) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some(TORN) => {
            if recovery {
                Ok(false)
            } else {
                Err(Error::new(codes::SQLITE_IOERR_DATA, e.message().to_owned()))
            }
        }
        Err(e) => Err(e),
    }
}

/// What a mapper works with for one operation of a file: its base file, the
/// codec with the file's state, what the file is, and its database's
/// geometry. `encode`/`decode` build the [`PageCtx`] the codec sees.
pub(crate) struct CodecIo<'a, F: File, C: PageCodec> {
    pub(crate) base: &'a mut F,
    pub(crate) codec: &'a C,
    pub(crate) state: &'a mut C::State,
    pub(crate) kind: FileKind,
    pub(crate) path: &'a FileName,
    pub(crate) geometry: &'a PageGeometry,
    pub(crate) stacking: Stacking,
}

impl<'a, F: File, C: PageCodec> CodecIo<'a, F, C> {
    /// The context of an image of `page_size` bytes for page `pgno` at
    /// `offset` (no flag set, no frame header).
    pub(crate) fn ctx(
        &self,
        pgno: u32,
        page_size: usize,
        reserve: Option<usize>,
        offset: u64,
    ) -> PageCtx<'a> {
        PageCtx {
            kind: self.kind,
            path: self.path,
            pgno,
            page_size,
            reserve,
            stored_reserve: reserve,
            offset,
            partial: false,
            tentative: false,
            recovery: false,
            frame_header: None,
            stacking: self.stacking,
        }
    }

    /// The context of the journal header (and of every stream range).
    pub(crate) fn stream_ctx(&self, offset: u64) -> StreamCtx<'a> {
        StreamCtx {
            kind: self.kind,
            path: self.path,
            offset,
        }
    }

    pub(crate) fn encode(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        offset: u64,
        image: &mut [u8],
    ) -> Result<()> {
        let ctx = self.ctx(pgno, image.len(), reserve, offset);
        self.encode_with(&ctx, image)
    }

    /// [`encode`](Self::encode) of a page 1 whose stored reserve is
    /// `stored_reserve` (the codec compares the new header with it).
    pub(crate) fn encode_page(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        stored_reserve: Option<usize>,
        offset: u64,
        image: &mut [u8],
    ) -> Result<()> {
        let ctx = PageCtx {
            stored_reserve,
            ..self.ctx(pgno, image.len(), reserve, offset)
        };
        self.encode_with(&ctx, image)
    }

    pub(crate) fn encode_with(&mut self, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        self.codec
            .encode(self.state, ctx, image)
            .map_err(|e| e.context(ctx.describe()))
    }

    pub(crate) fn decode(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        offset: u64,
        partial: bool,
        image: &mut [u8],
    ) -> Result<()> {
        let ctx = PageCtx {
            partial,
            ..self.ctx(pgno, image.len(), reserve, offset)
        };
        self.decode_with(&ctx, image).map(|_| ())
    }

    /// [`decode`](Self::decode), with [`PageCtx::tentative`] set as asked.
    pub(crate) fn decode_as(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        offset: u64,
        partial: bool,
        tentative: bool,
        image: &mut [u8],
    ) -> Result<()> {
        let ctx = PageCtx {
            partial,
            tentative,
            ..self.ctx(pgno, image.len(), reserve, offset)
        };
        self.decode_with(&ctx, image).map(|_| ())
    }

    /// Decodes the bytes `range` of the stored page `image` into `out`
    /// ([`PageCodec::decode_part`]), with [`PageCtx::partial`] set and
    /// [`PageCtx::tentative`] as asked.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decode_part(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        offset: u64,
        tentative: bool,
        image: &mut [u8],
        range: std::ops::Range<usize>,
        out: &mut [u8],
    ) -> Result<()> {
        let ctx = PageCtx {
            partial: true,
            tentative,
            ..self.ctx(pgno, image.len(), reserve, offset)
        };
        decoded(
            self.codec.decode_part(self.state, &ctx, image, range, out),
            ctx.recovery,
        )
        .map(|_| ())
        .map_err(|e| e.context(ctx.describe()))
    }

    /// Decodes `image`; `Ok(false)`: torn (only when `ctx.recovery`).
    pub(crate) fn decode_with(&mut self, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<bool> {
        decoded(self.codec.decode(self.state, ctx, image), ctx.recovery)
            .map_err(|e| e.context(ctx.describe()))
    }
}
