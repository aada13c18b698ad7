//! The base file and the codec, borrowed for one operation of a mapper.

use vfs_core::{File, FileKind, FileName, Result, codes};

use crate::geometry::PageGeometry;
use crate::{PageCodec, PageCtx, Stacking};

/// `scratch[..n]`, growing it if needed (only the first time a size is
/// seen).
pub(crate) fn grow(scratch: &mut Vec<u8>, n: usize) -> &mut [u8] {
    if scratch.len() < n {
        scratch.resize(n, 0);
    }
    &mut scratch[..n]
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
    pub(crate) fn ctx(
        &self,
        pgno: u32,
        page_size: usize,
        reserve: Option<usize>,
        offset: u64,
        partial: bool,
    ) -> PageCtx<'a> {
        PageCtx {
            kind: self.kind,
            path: self.path,
            pgno,
            page_size,
            reserve,
            stored_reserve: reserve,
            offset,
            partial,
            tentative: false,
            stacking: self.stacking,
        }
    }

    pub(crate) fn encode(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        offset: u64,
        image: &mut [u8],
    ) -> Result<()> {
        self.encode_page(pgno, reserve, reserve, offset, image)
    }

    pub(crate) fn encode_page(
        &mut self,
        pgno: u32,
        reserve: Option<usize>,
        stored_reserve: Option<usize>,
        offset: u64,
        image: &mut [u8],
    ) -> Result<()> {
        let ctx = PageCtx {
            kind: self.kind,
            path: self.path,
            pgno,
            page_size: image.len(),
            reserve,
            stored_reserve,
            offset,
            partial: false,
            tentative: false,
            stacking: self.stacking,
        };
        self.codec
            .encode(self.state, &ctx, image)
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
        self.decode_as(pgno, reserve, offset, partial, false, image)
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
            kind: self.kind,
            path: self.path,
            pgno,
            page_size: image.len(),
            reserve,
            stored_reserve: reserve,
            offset,
            partial,
            tentative,
            stacking: self.stacking,
        };
        self.codec
            .decode(self.state, &ctx, image)
            .map_err(|e| e.context(ctx.describe()))
    }
}
