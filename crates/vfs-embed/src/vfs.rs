//! The read-only VFS and its files.

use std::sync::Arc;

use vfs_core::{
    AccessCheck, Control, DeviceCharacteristics, Error, File, FileControl, FileKind, FileName,
    OpenName, OpenOptions, Result, SyncFlags, Vfs, codes,
};

use crate::set::{Entry, normalize};
use crate::{FileSet, Source};

/// The read-only VFS over a [`FileSet`].
///
/// Most code never touches it: [`Embed::register`] builds one, registers it
/// under a fresh name and hands back an [`EmbedHandle`](crate::EmbedHandle).
/// Build one yourself to change an option ([`Embed::check_header`]) or to
/// register it under a name of your choice, or below a shim, with
/// [`vfs_core::register`].
///
/// What it serves, per kind of file SQLite opens:
///
/// | file | answer |
/// | --- | --- |
/// | main database named in the set | opened read-only and immutable, whatever the flags asked |
/// | main database not in the set | `SQLITE_CANTOPEN`, the message names the file and lists the set |
/// | rollback journal, WAL, super-journal | `SQLITE_READONLY` when asked to create or write it, `SQLITE_CANTOPEN` (it does not exist) for a read-only open |
/// | temp database, temp journal, transient database, sub-journal | private scratch memory of the connection (so `CREATE TEMP TABLE` and large sorts work); never the embedded files |
///
/// ```
/// use vfs_embed::{Embed, FileSet};
///
/// let vfs = Embed::new(FileSet::new().with("a.db", vec![])).check_header(false);
/// let reg = vfs_core::register("embed-doc-vfs", vfs, false)?;
/// let conn = rusqlite::Connection::open("file:a.db?vfs=embed-doc-vfs").unwrap();
/// // An empty image is an empty database, and it stays empty.
/// let n: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).unwrap();
/// assert_eq!(n, 0);
/// assert!(conn.execute_batch("CREATE TABLE t(x)").is_err());
/// drop(conn);
/// reg.unregister().map_err(|(_, e)| e)?;
/// # Ok::<(), vfs_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Embed {
    files: Arc<FileSet>,
    check_header: bool,
}

impl Embed {
    /// A VFS serving `files` (a [`FileSet`], or a single source, which is
    /// served as [`DEFAULT_NAME`](crate::DEFAULT_NAME)).
    pub fn new(files: impl Into<FileSet>) -> Embed {
        Embed {
            files: Arc::new(files.into()),
            check_header: true,
        }
    }

    /// Whether to check a main database's header when it is opened (on by
    /// default). The check turns a file that is not a database into
    /// `SQLITE_NOTADB` and a truncated one into `SQLITE_CORRUPT` at open
    /// time, with a message naming the file. Turn it off when the bytes are
    /// not plain SQLite pages (an encrypting shim stacked above this VFS
    /// keeps a salt where the magic string would be).
    pub fn check_header(mut self, on: bool) -> Embed {
        self.check_header = on;
        self
    }

    /// The files this VFS serves.
    pub fn files(&self) -> &FileSet {
        &self.files
    }
}

/// Checks that `src` looks like a complete SQLite database image.
///
/// An empty source is accepted (SQLite reads it as an empty database).
pub(crate) fn check_image(src: &Source, name: &str) -> Result<()> {
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let len = src.len();
    if len == 0 {
        return Ok(());
    }
    let mut hdr = [0u8; 100];
    let n = src.read_at(&mut hdr, 0).map_err(|e| {
        Error::cant_open(format!(
            "cannot read the header of embedded file {name:?}: {e}"
        ))
    })?;
    let k = n.min(MAGIC.len());
    if hdr[..k] != MAGIC[..k] {
        return Err(Error::new(
            codes::SQLITE_NOTADB,
            format!(
                "embedded file {name:?} is not an SQLite database (it does not start with \"SQLite format 3\")"
            ),
        ));
    }
    if n < hdr.len() {
        return Err(Error::new(
            codes::SQLITE_CORRUPT,
            format!(
                "embedded file {name:?} is truncated: {len} bytes, shorter than the 100-byte database header"
            ),
        ));
    }
    let raw_page = u16::from_be_bytes([hdr[16], hdr[17]]);
    let page = if raw_page == 1 {
        65_536
    } else {
        u32::from(raw_page)
    };
    if !(512..=65_536).contains(&page) || !page.is_power_of_two() {
        return Err(Error::new(
            codes::SQLITE_NOTADB,
            format!("embedded file {name:?} is not an SQLite database (page size {raw_page})"),
        ));
    }
    if len < u64::from(page) {
        return Err(Error::new(
            codes::SQLITE_CORRUPT,
            format!(
                "embedded file {name:?} is truncated: {len} bytes, less than its first page of {page} bytes"
            ),
        ));
    }
    let be32 = |at: usize| u32::from_be_bytes([hdr[at], hdr[at + 1], hdr[at + 2], hdr[at + 3]]);
    // The in-header page count is trustworthy only when the "version valid
    // for" number matches the change counter (SQLite's own rule).
    let pages = be32(28);
    if pages > 0 && be32(92) == be32(24) {
        let need = u64::from(pages) * u64::from(page);
        if len < need {
            return Err(Error::new(
                codes::SQLITE_CORRUPT,
                format!(
                    "embedded file {name:?} is truncated: its header says {pages} pages of {page} bytes ({need} bytes) but it has {len} bytes"
                ),
            ));
        }
    }
    Ok(())
}

impl Vfs for Embed {
    type File = EmbedFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<EmbedFile> {
        match (opts.kind, name.path()) {
            (FileKind::MainDb, Some(name)) => {
                // The set's names are text: a name that is not UTF-8 is in
                // no set (never looked up lossily, which could alias).
                let Some(path) = name.to_str() else {
                    return Err(Error::cant_open(format!(
                        "no embedded file named {name:?} ({})",
                        self.files.describe()
                    )));
                };
                let src = match self.files.entry(path) {
                    Some(Entry::Ready(src)) => src.clone(),
                    Some(Entry::Unavailable(why)) => {
                        return Err(Error::cant_open(format!(
                            "embedded file {path:?} cannot be served: {why}"
                        )));
                    }
                    None => {
                        return Err(Error::cant_open(format!(
                            "no embedded file named {path:?} ({})",
                            self.files.describe()
                        )));
                    }
                };
                if self.check_header {
                    check_image(&src, path)?;
                }
                Ok(EmbedFile::Image(Image {
                    src,
                    name: normalize(path).into(),
                }))
            }
            // An anonymous main database (`file:?vfs=...`) is a private,
            // temporary one; so are SQLite's own scratch files.
            (FileKind::MainDb, None)
            | (
                FileKind::TempDb
                | FileKind::TempJournal
                | FileKind::TransientDb
                | FileKind::SubJournal,
                _,
            ) => Ok(EmbedFile::Scratch(Vec::new())),
            (kind @ (FileKind::MainJournal | FileKind::Wal | FileKind::SuperJournal), path) => {
                let path = path.unwrap_or(FileName::new("(anonymous)"));
                if opts.access.writable() {
                    Err(Error::readonly(format!(
                        "embedded databases are read-only: refusing to open the {} {path:?} for writing",
                        kind.name()
                    )))
                } else {
                    Err(Error::cant_open(format!(
                        "embedded databases have no {}: {path:?} does not exist",
                        kind.name()
                    )))
                }
            }
        }
    }

    fn delete(&self, path: &FileName, _sync_dir: bool) -> Result<()> {
        if path.to_str().is_some_and(|p| self.files.contains(p)) {
            Err(Error::readonly(format!(
                "embedded file {path:?} is read-only and cannot be deleted"
            )))
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no embedded file named {path:?}"),
            )
            .into())
        }
    }

    fn access(&self, path: &FileName, check: AccessCheck) -> Result<bool> {
        Ok(match check {
            AccessCheck::Exists | AccessCheck::Read => {
                path.to_str().is_some_and(|p| self.files.contains(p))
            }
            AccessCheck::ReadWrite => false,
        })
    }
}

/// An embedded database image opened by one connection.
#[derive(Debug)]
pub struct Image {
    src: Source,
    name: Box<str>,
}

/// A file opened through [`Embed`]: an embedded database image (read-only,
/// immutable) or a connection's private scratch file (temp tables, sorts).
#[derive(Debug)]
pub enum EmbedFile {
    /// One of the embedded files.
    Image(Image),
    /// A temporary file of one connection, in memory.
    Scratch(Vec<u8>),
}

impl Image {
    /// The name of the embedded file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bytes served.
    pub fn source(&self) -> &Source {
        &self.src
    }

    fn refuse(&self, what: std::fmt::Arguments<'_>) -> Error {
        Error::readonly(format!(
            "embedded database {:?} is read-only: {what} refused",
            self.name
        ))
    }
}

fn scratch_range(offset: u64, len: usize) -> Result<(usize, usize)> {
    let start = usize::try_from(offset)
        .map_err(|_| Error::new(codes::SQLITE_FULL, "temporary file offset too large"))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| Error::new(codes::SQLITE_FULL, "temporary file too large"))?;
    Ok((start, end))
}

impl File for EmbedFile {
    // Locking: an image is immutable and nobody can write it, so there is
    // nothing a lock could protect (SQLite itself skips locking for files
    // that declare SQLITE_IOCAP_IMMUTABLE). A scratch file belongs to one
    // connection. Accepting every lock is therefore exact here.
    vfs_core::no_lock!();

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        match self {
            EmbedFile::Image(img) => img
                .src
                .read_at(buf, offset)
                .map_err(|e| Error::from(e).context(format_args!("embedded file {:?}", img.name))),
            EmbedFile::Scratch(bytes) => {
                let Ok(start) = usize::try_from(offset) else {
                    return Ok(0);
                };
                let rest = bytes.get(start..).unwrap_or(&[]);
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                Ok(n)
            }
        }
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        match self {
            EmbedFile::Image(img) => Err(img.refuse(format_args!(
                "write of {} bytes at offset {offset}",
                buf.len()
            ))),
            EmbedFile::Scratch(bytes) => {
                let (start, end) = scratch_range(offset, buf.len())?;
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[start..end].copy_from_slice(buf);
                Ok(())
            }
        }
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        match self {
            EmbedFile::Image(img) => Err(img.refuse(format_args!("truncation to {size} bytes"))),
            EmbedFile::Scratch(bytes) => {
                let (size, _) = scratch_range(size, 0)?;
                bytes.resize(size, 0);
                Ok(())
            }
        }
    }

    fn sync(&mut self, _flags: SyncFlags) -> Result<()> {
        // Nothing is ever pending: images never change, scratch files are
        // not durable by design.
        Ok(())
    }

    fn size(&mut self) -> Result<u64> {
        Ok(match self {
            EmbedFile::Image(img) => img.src.len(),
            EmbedFile::Scratch(bytes) => bytes.len() as u64,
        })
    }

    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        let EmbedFile::Image(img) = self else {
            return Err(Error::not_found());
        };
        if let Control::Pragma(p) = ctl.control()
            && p.name().eq_ignore_ascii_case("journal_mode")
            && p.value().is_some_and(|v| v.eq_ignore_ascii_case("wal"))
        {
            // SQLite would otherwise ignore the request silently (WAL is not
            // possible on an immutable file) and answer the old mode; say
            // why instead, as the write it implies (header bytes 18/19).
            return Err(img.refuse(format_args!("switching to WAL mode")));
        }
        Err(Error::not_found())
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        match self {
            EmbedFile::Image(_) => {
                DeviceCharacteristics::NONE.with(DeviceCharacteristics::IMMUTABLE)
            }
            EmbedFile::Scratch(_) => DeviceCharacteristics::NONE,
        }
    }

    fn is_read_only(&self) -> bool {
        matches!(self, EmbedFile::Image(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(page: u16, pages: u32, counter: u32, valid_for: u32) -> Vec<u8> {
        let mut h = vec![0u8; 100];
        h[..16].copy_from_slice(b"SQLite format 3\0");
        h[16..18].copy_from_slice(&page.to_be_bytes());
        h[24..28].copy_from_slice(&counter.to_be_bytes());
        h[28..32].copy_from_slice(&pages.to_be_bytes());
        h[92..96].copy_from_slice(&valid_for.to_be_bytes());
        h
    }

    fn code(r: Result<()>) -> Option<i32> {
        r.err().and_then(|e| e.code())
    }

    #[test]
    fn header_checks() {
        let ok = |mut h: Vec<u8>, len: usize| {
            h.resize(len, 0);
            check_image(&Source::from(h), "x")
        };
        assert!(check_image(&Source::from(Vec::new()), "x").is_ok());
        assert_eq!(code(ok(header(4096, 2, 7, 7), 8192)), None);
        // Too short for the header count: truncated.
        assert_eq!(
            code(ok(header(4096, 3, 7, 7), 8192)),
            Some(codes::SQLITE_CORRUPT)
        );
        // A stale header count is ignored, as SQLite does.
        assert_eq!(code(ok(header(4096, 3, 7, 6), 8192)), None);
        // Page size 1 means 65536.
        assert_eq!(code(ok(header(1, 1, 1, 1), 65_536)), None);
        assert_eq!(
            code(ok(header(1000, 1, 1, 1), 4096)),
            Some(codes::SQLITE_NOTADB)
        );
        assert_eq!(
            code(ok(header(4096, 1, 1, 1), 2000)),
            Some(codes::SQLITE_CORRUPT)
        );
        assert_eq!(
            code(check_image(&Source::from(b"SQLite for".to_vec()), "x")),
            Some(codes::SQLITE_CORRUPT)
        );
        assert_eq!(
            code(check_image(&Source::from(b"hello world".to_vec()), "x")),
            Some(codes::SQLITE_NOTADB)
        );
    }
}
