//! Byte sources: anything that answers positional reads over a fixed size.

use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// A positional reader with a known size: the one thing a [`Source`] needs.
///
/// `read_at` takes `&self`, so one reader serves every connection and thread
/// at once (for [`std::fs::File`] it is `pread(2)`). Implementations exist for
/// byte slices (`&'static [u8]`, `Vec<u8>`, `Box<[u8]>`, `Arc<[u8]>`),
/// [`std::fs::File`] (Unix), and `Arc<R>` of any reader.
///
/// ```
/// use std::io;
/// use vfs_embed::{ReadAt, Source};
///
/// /// A source that is 4 KiB of the byte 0x2A (a reader need not hold bytes).
/// struct Stars;
///
/// impl ReadAt for Stars {
///     fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
///         let n = buf.len().min(4096u64.saturating_sub(offset) as usize);
///         buf[..n].fill(0x2A);
///         Ok(n)
///     }
///     fn size(&self) -> io::Result<u64> {
///         Ok(4096)
///     }
/// }
///
/// let src = Source::from_reader(Stars)?;
/// assert_eq!(src.len(), 4096);
/// let mut buf = [0u8; 8];
/// assert_eq!(src.read_at(&mut buf, 4092)?, 4);
/// assert_eq!(&buf[..4], b"****");
/// # Ok::<(), io::Error>(())
/// ```
pub trait ReadAt: Send + Sync + 'static {
    /// Reads into `buf` from `offset` and returns how many bytes were read.
    /// Fewer than `buf.len()` is allowed (the caller asks again for the
    /// rest); `0` means `offset` is at or past the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// The size in bytes. A [`Source`] asks once, when it is built, and
    /// never reads past that size afterwards. (Named `size`, not `len`, so
    /// that with the trait in scope `.len()` on a `Vec<u8>` or a
    /// `Box<[u8]>` still means the inherent method.)
    fn size(&self) -> io::Result<u64>;
}

/// Copies from `bytes` at `offset`: the one copy of every read from memory.
fn read_slice(bytes: &[u8], buf: &mut [u8], offset: u64) -> usize {
    let Ok(start) = usize::try_from(offset) else {
        return 0;
    };
    let Some(rest) = bytes.get(start..) else {
        return 0;
    };
    let n = rest.len().min(buf.len());
    buf[..n].copy_from_slice(&rest[..n]);
    n
}

impl ReadAt for &'static [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        Ok(read_slice(self, buf, offset))
    }
    fn size(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        Ok(read_slice(self, buf, offset))
    }
    fn size(&self) -> io::Result<u64> {
        Ok(Vec::len(self) as u64)
    }
}

impl ReadAt for Box<[u8]> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        Ok(read_slice(self, buf, offset))
    }
    fn size(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
}

impl ReadAt for Arc<[u8]> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        Ok(read_slice(self, buf, offset))
    }
    fn size(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
}

impl<R: ReadAt> ReadAt for Arc<R> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }
}

#[cfg(unix)]
impl ReadAt for fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

/// A window `start..start + len` of another source (zip entries stored
/// without compression, a database inside a larger blob).
struct Window {
    base: Source,
    start: u64,
    len: u64,
}

impl ReadAt for Window {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        // `Source::read_at` already clamps to the window's size.
        match self.start.checked_add(offset) {
            Some(at) => self.base.inner.read_at(buf, at),
            None => Ok(0),
        }
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.len)
    }
}

/// An immutable byte source: the content of one embedded file.
///
/// Cheap to clone (an `Arc` and a size). Its size is fixed when it is built;
/// reads never go past it. The bytes must not change while SQLite uses them:
/// the files are declared immutable, so SQLite caches pages freely and takes
/// no locks. For a [`std::fs::File`] that is the caller's promise.
///
/// ```
/// use vfs_embed::Source;
///
/// static IMAGE: &[u8] = b"SQLite format 3\0...";
/// let a = Source::from_static(IMAGE);           // zero-copy, no allocation of the bytes
/// let b = Source::from(vec![1u8, 2, 3]);         // owned bytes
/// let c = Source::from(IMAGE).slice(0..6)?;      // a window of another source
/// assert_eq!((a.len(), b.len(), c.len()), (IMAGE.len() as u64, 3, 6));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Source {
    inner: Arc<dyn ReadAt>,
    len: u64,
}

impl Source {
    /// Bytes that live for the whole program, typically
    /// `include_bytes!("catalog.db")`. Reads copy straight from the slice
    /// into SQLite's page buffer.
    pub fn from_static(bytes: &'static [u8]) -> Source {
        Source {
            len: bytes.len() as u64,
            inner: Arc::new(bytes),
        }
    }

    /// Shared bytes (an `Arc<[u8]>` is shared as it is; other types are
    /// converted). `Vec<u8>` and `Box<[u8]>` sources are better built with
    /// `Source::from`, which keeps them without copying.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Source {
        let bytes: Arc<[u8]> = bytes.into();
        Source {
            len: <[u8]>::len(&bytes) as u64,
            inner: Arc::new(bytes),
        }
    }

    /// Any positional reader; its size is asked once, now.
    pub fn from_reader<R: ReadAt>(reader: R) -> io::Result<Source> {
        let len = reader.size()?;
        Ok(Source {
            inner: Arc::new(reader),
            len,
        })
    }

    /// A reader whose size the caller already knows (it is not asked).
    pub fn from_reader_with_len<R: ReadAt>(reader: R, len: u64) -> Source {
        Source {
            inner: Arc::new(reader),
            len,
        }
    }

    /// The file at `path`, opened read-only (never written, never locked).
    #[cfg(unix)]
    pub fn open(path: impl AsRef<Path>) -> io::Result<Source> {
        let path = path.as_ref();
        let file = fs::File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Source::from_reader(file)
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the source holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads into `buf` from `offset`, as many bytes as the source has (up
    /// to `buf.len()`), asking the reader again after partial reads. Returns
    /// the count; less than `buf.len()` only at the end of the source.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let avail = self.len.saturating_sub(offset);
        let want = buf.len().min(usize::try_from(avail).unwrap_or(usize::MAX));
        let mut done = 0;
        while done < want {
            match self
                .inner
                .read_at(&mut buf[done..want], offset + done as u64)
            {
                Ok(0) => break,
                Ok(n) => done += n.min(want - done),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// The bytes `range` of this source as a source of its own (no copy).
    /// Errors when the range is not inside the source.
    pub fn slice(&self, range: Range<u64>) -> io::Result<Source> {
        if range.start > range.end || range.end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "range {}..{} is outside a source of {} bytes",
                    range.start, range.end, self.len
                ),
            ));
        }
        Ok(Source {
            len: range.end - range.start,
            inner: Arc::new(Window {
                base: self.clone(),
                start: range.start,
                len: range.end - range.start,
            }),
        })
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source").field("len", &self.len).finish()
    }
}

impl From<&'static [u8]> for Source {
    fn from(bytes: &'static [u8]) -> Source {
        Source::from_static(bytes)
    }
}

impl<const N: usize> From<&'static [u8; N]> for Source {
    fn from(bytes: &'static [u8; N]) -> Source {
        Source::from_static(bytes)
    }
}

impl From<Vec<u8>> for Source {
    /// Keeps the vector as it is (no copy).
    fn from(bytes: Vec<u8>) -> Source {
        let len = bytes.len() as u64;
        Source::from_reader_with_len(bytes, len)
    }
}

impl From<Box<[u8]>> for Source {
    /// Keeps the box as it is (no copy).
    fn from(bytes: Box<[u8]>) -> Source {
        let len = <[u8]>::len(&bytes) as u64;
        Source::from_reader_with_len(bytes, len)
    }
}

impl From<Arc<[u8]>> for Source {
    fn from(bytes: Arc<[u8]>) -> Source {
        Source::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that answers at most 3 bytes per call.
    struct Dribble(Vec<u8>);
    impl ReadAt for Dribble {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let n = buf.len().min(3);
            Ok(read_slice(&self.0, &mut buf[..n], offset))
        }
        fn size(&self) -> io::Result<u64> {
            Ok(self.0.len() as u64)
        }
    }

    #[test]
    fn partial_reads_are_completed_and_the_end_is_respected() {
        let src = Source::from_reader(Dribble((0..20).collect())).unwrap();
        let mut buf = [0u8; 10];
        assert_eq!(src.read_at(&mut buf, 5).unwrap(), 10);
        assert_eq!(buf, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(src.read_at(&mut buf, 15).unwrap(), 5);
        assert_eq!(src.read_at(&mut buf, 20).unwrap(), 0);
        assert_eq!(src.read_at(&mut buf, u64::MAX).unwrap(), 0);
    }

    #[test]
    fn slices_are_windows_and_reject_bad_ranges() {
        let src = Source::from((0u8..100).collect::<Vec<_>>());
        let w = src.slice(10..20).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(w.read_at(&mut buf, 8).unwrap(), 2);
        assert_eq!(&buf[..2], &[18, 19]);
        assert!(src.slice(90..101).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let bad = src.slice(20..10);
        assert!(bad.is_err());
        // A window of a window.
        let ww = w.slice(5..10).unwrap();
        assert_eq!(ww.read_at(&mut buf, 0).unwrap(), 5);
        assert_eq!(&buf[..5], &[15, 16, 17, 18, 19]);
    }
}
