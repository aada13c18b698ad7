//! A zip archive as a file set (feature `zip`).

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::OnceLock;

use zip::{CompressionMethod, ZipArchive};

use crate::{FileSet, ReadAt, Source};

/// `Read + Seek` over a [`Source`], for the zip crate.
#[derive(Clone)]
struct Cursor {
    src: Source,
    pos: u64,
}

impl Read for Cursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Cursor {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.src.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// A deflated entry, inflated on its first read and kept in memory from
/// then on (shared by every connection). A failure is kept too, so a broken
/// entry is not inflated again on every read.
struct Inflated {
    archive: ZipArchive<Cursor>,
    index: usize,
    name: String,
    size: u64,
    bytes: OnceLock<Result<Vec<u8>, String>>,
}

impl Inflated {
    fn inflate(&self) -> Result<Vec<u8>, String> {
        let fail =
            |e: &dyn std::fmt::Display| format!("cannot inflate zip entry {:?}: {e}", self.name);
        let mut archive = self.archive.clone();
        let entry = archive.by_index(self.index).map_err(|e| fail(&e))?;
        // The declared size bounds the allocation and the read (a lying
        // header cannot make us allocate or read more).
        let cap = usize::try_from(self.size.min(64 << 20)).unwrap_or(0);
        let mut out = Vec::with_capacity(cap);
        entry
            .take(self.size.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| fail(&e))?;
        if out.len() as u64 != self.size {
            return Err(fail(&format_args!(
                "it inflates to {} bytes, the archive says {}",
                out.len(),
                self.size
            )));
        }
        Ok(out)
    }
}

impl ReadAt for Inflated {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self.bytes.get_or_init(|| self.inflate()) {
            Ok(bytes) => {
                let Some(rest) = usize::try_from(offset).ok().and_then(|o| bytes.get(o..)) else {
                    return Ok(0);
                };
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                Ok(n)
            }
            Err(msg) => Err(io::Error::new(io::ErrorKind::InvalidData, msg.clone())),
        }
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

impl FileSet {
    /// The files of the zip archive `archive` (feature `zip`).
    ///
    /// * Stored (uncompressed) entries are served in place: reads go
    ///   straight to the archive's bytes, nothing is copied up front.
    /// * Deflated entries are inflated once, on their first read, and kept
    ///   in memory for every connection (their CRC-32 is checked then; a bad
    ///   entry gives `SQLITE_IOERR_READ` with the reason).
    /// * Directories are skipped. Entries that are encrypted or use another
    ///   compression method stay in the set but cannot be opened: SQLite
    ///   gets `SQLITE_CANTOPEN` with a message saying why.
    ///
    /// Errors: the archive cannot be read as a zip file.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Write;
    /// use vfs_embed::FileSet;
    ///
    /// // Build a small archive (in real code: include_bytes!("data.zip")).
    /// let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    /// let opts = zip::write::SimpleFileOptions::default()
    ///     .compression_method(zip::CompressionMethod::Stored);
    /// w.start_file("readme.txt", opts)?;
    /// w.write_all(b"hello")?;
    /// let bytes = w.finish()?.into_inner();
    ///
    /// let set = FileSet::from_zip(bytes)?;
    /// assert_eq!(set.names().collect::<Vec<_>>(), ["readme.txt"]);
    /// assert_eq!(set.get("readme.txt").unwrap().len(), 5);
    /// # Ok(()) }
    /// ```
    pub fn from_zip(archive: impl Into<Source>) -> io::Result<FileSet> {
        let src: Source = archive.into();
        let bad = |e: zip::result::ZipError| io::Error::new(io::ErrorKind::InvalidData, e);
        let mut zip = ZipArchive::new(Cursor {
            src: src.clone(),
            pos: 0,
        })
        .map_err(bad)?;
        let mut set = FileSet::new();
        for index in 0..zip.len() {
            let entry = zip.by_index_raw(index).map_err(bad)?;
            if entry.is_dir() {
                continue;
            }
            let name = entry.name().map_err(bad)?.into_owned();
            let (method, size, stored_size) =
                (entry.compression(), entry.size(), entry.compressed_size());
            let (encrypted, start) = (entry.encrypted(), entry.data_start());
            drop(entry);
            if encrypted {
                set.insert_unavailable(&name, "the zip entry is encrypted".to_owned());
                continue;
            }
            match method {
                CompressionMethod::Stored => {
                    let window = start
                        .filter(|_| size == stored_size)
                        .and_then(|s| Some(s..s.checked_add(size)?))
                        .map(|range| src.slice(range));
                    match window {
                        Some(Ok(window)) => {
                            set.insert(&name, window);
                        }
                        Some(Err(e)) => {
                            set.insert_unavailable(&name, format!("the zip entry is damaged: {e}"));
                        }
                        None => set.insert_unavailable(
                            &name,
                            "the zip entry's data could not be located".to_owned(),
                        ),
                    }
                }
                CompressionMethod::Deflated => {
                    let lazy = Inflated {
                        archive: zip.clone(),
                        index,
                        name: name.clone(),
                        size,
                        bytes: OnceLock::new(),
                    };
                    set.insert(&name, Source::from_reader_with_len(lazy, size));
                }
                other => set.insert_unavailable(
                    &name,
                    format!(
                        "the zip entry is compressed with {other}; only stored and deflated entries can be served"
                    ),
                ),
            }
        }
        Ok(set)
    }
}
