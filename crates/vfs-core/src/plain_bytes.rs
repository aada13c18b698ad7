//! The bytes of a plain in-memory file: what a backend whose main databases
//! have their own structure (versions, commit objects) keeps for the other
//! files SQLite opens — journals and super-journals shared by name, and
//! private temp files.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::{Error, Result};

/// A growable in-memory byte file, either shared by name between the
/// connections of a backend or private to one open file.
///
/// Reads past the end return fewer bytes (SQLite zero-fills a short read);
/// a write past the end grows the file with zeros in between.
///
/// ```
/// use vfs_core::PlainBytes;
///
/// let mut journal = PlainBytes::private();
/// journal.write_at(b"abc", 4).unwrap();
/// assert_eq!(journal.len(), 7);
/// let mut buf = [9u8; 8];
/// assert_eq!(journal.read_at(&mut buf, 2), 5);
/// assert_eq!(&buf[..5], b"\0\0abc");
/// journal.truncate(0).unwrap();
/// assert_eq!(journal.len(), 0);
/// ```
#[derive(Debug)]
pub enum PlainBytes {
    /// Bytes every open file of one name shares (journals, super-journals).
    Shared(Arc<Mutex<Vec<u8>>>),
    /// Bytes only this open file sees (temp files), gone when it closes.
    Private(Vec<u8>),
}

impl PlainBytes {
    /// A new, empty private file.
    pub fn private() -> PlainBytes {
        PlainBytes::Private(Vec::new())
    }

    /// Copies bytes from `offset` into `buf`; returns how many there were
    /// (fewer than `buf.len()` at the end of the file).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> usize {
        match self {
            PlainBytes::Shared(data) => read(&data.lock(), buf, offset),
            PlainBytes::Private(data) => read(data, buf, offset),
        }
    }

    /// Writes `buf` at `offset`, growing the file as needed.
    ///
    /// Errors: `SQLITE_FULL` when the end would not fit in memory's address
    /// space.
    pub fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        match self {
            PlainBytes::Shared(data) => write(&mut data.lock(), buf, offset),
            PlainBytes::Private(data) => write(data, buf, offset),
        }
    }

    /// Sets the file's size, cutting or zero-extending it.
    ///
    /// Errors: `SQLITE_FULL` for a size beyond memory's address space.
    pub fn truncate(&mut self, size: u64) -> Result<()> {
        let size = usize::try_from(size)
            .map_err(|_| Error::full(format!("cannot size an in-memory file to {size} bytes")))?;
        match self {
            PlainBytes::Shared(data) => data.lock().resize(size, 0),
            PlainBytes::Private(data) => data.resize(size, 0),
        }
        Ok(())
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            PlainBytes::Shared(data) => data.lock().len() as u64,
            PlainBytes::Private(data) => data.len() as u64,
        }
    }

    /// Whether the file holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn read(data: &[u8], buf: &mut [u8], offset: u64) -> usize {
    let Ok(start) = usize::try_from(offset) else {
        return 0;
    };
    let Some(available) = data.get(start..) else {
        return 0;
    };
    let n = buf.len().min(available.len());
    buf[..n].copy_from_slice(&available[..n]);
    n
}

fn write(data: &mut Vec<u8>, buf: &[u8], offset: u64) -> Result<()> {
    let end = offset
        .checked_add(buf.len() as u64)
        .and_then(|e| usize::try_from(e).ok())
        .ok_or_else(|| Error::full(format!("write past the largest in-memory file at {offset}")))?;
    if data.len() < end {
        data.resize(end, 0);
    }
    // `end` fits in usize and `offset <= end`, so the cast is exact.
    data[offset as usize..end].copy_from_slice(buf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_bytes_are_seen_by_every_holder() {
        let data = Arc::new(Mutex::new(Vec::new()));
        let mut a = PlainBytes::Shared(data.clone());
        let b = PlainBytes::Shared(data);
        a.write_at(b"journal", 0).unwrap();
        let mut buf = [0u8; 7];
        assert_eq!(b.read_at(&mut buf, 0), 7);
        assert_eq!(&buf, b"journal");
    }

    #[test]
    fn reads_past_the_end_return_nothing() {
        let mut f = PlainBytes::private();
        f.write_at(b"xy", 0).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(f.read_at(&mut buf, 2), 0);
        assert_eq!(f.read_at(&mut buf, u64::MAX), 0);
    }

    #[test]
    fn a_write_whose_end_overflows_is_full() {
        let mut f = PlainBytes::private();
        let err = f.write_at(b"xy", u64::MAX).unwrap_err();
        assert_eq!(err.code(), Some(crate::codes::SQLITE_FULL));
        assert!(f.is_empty());
    }
}
