//! Reads and writes that are not one page: a shim above cksm that moves
//! whole files in large chunks, as SQLite's crash-test VFS (`test6.c`) and
//! other tools do. Every page must still be verified on the way up and
//! checksummed on the way down, page by page.

mod common;

use std::path::Path;

use common::*;
use rusqlite::Connection;
use vfs_cksm::Cksm;
use vfs_core::shm::{ShmLockOp, ShmRegion};
use vfs_core::{
    DeviceCharacteristics, File, FileControl, FileKind, LockLevel, Native, OpenName, OpenOptions,
    Result, ShmSupport, SyncFlags, Vfs,
};

/// Keeps each main database file in memory, loaded from the base with reads
/// of `chunk` bytes at multiples of `chunk` (on first use), serves SQLite's
/// reads and writes from memory, and at every sync (and unlock) writes the
/// changed span back in `chunk`-byte pieces at multiples of `chunk`. Other
/// files pass through.
struct Spans<B: Vfs> {
    base: B,
    chunk: usize,
}

struct SpansFile<F: File> {
    base: F,
    chunk: usize,
    main: bool,
    /// The file's bytes, once loaded.
    data: Option<Vec<u8>>,
    /// The byte range changed since the last write-back.
    dirty: Option<(usize, usize)>,
}

impl<B: Vfs> Vfs for Spans<B> {
    type File = SpansFile<B::File>;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        Ok(SpansFile {
            base: self.base.open(name, opts)?,
            chunk: self.chunk,
            main: opts.kind == FileKind::MainDb,
            data: None,
            dirty: None,
        })
    }

    vfs_core::forward_vfs!(base);
}

impl<F: File> SpansFile<F> {
    fn data(&mut self) -> Result<&mut Vec<u8>> {
        if self.data.is_none() {
            let size = self.base.size()? as usize;
            let mut data = vec![0u8; size];
            for off in (0..size).step_by(self.chunk) {
                let end = size.min(off + self.chunk);
                let got = self.base.read_at(&mut data[off..end], off as u64)?;
                assert_eq!(got, end - off, "short read from the base at {off}");
            }
            self.data = Some(data);
        }
        Ok(self.data.as_mut().expect("loaded above"))
    }

    fn write_back(&mut self) -> Result<()> {
        let (Some((start, end)), Some(data)) = (self.dirty.take(), self.data.as_ref()) else {
            return Ok(());
        };
        let end = end.min(data.len());
        let first = start - start % self.chunk;
        for off in (first..end).step_by(self.chunk) {
            let stop = data.len().min(off + self.chunk);
            self.base.write_at(&data[off..stop], off as u64)?;
        }
        Ok(())
    }
}

impl<F: File> File for SpansFile<F> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if !self.main {
            return self.base.read_at(buf, offset);
        }
        let data = self.data()?;
        let off = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - off);
        buf[..n].copy_from_slice(&data[off..off + n]);
        Ok(n)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        if !self.main {
            return self.base.write_at(buf, offset);
        }
        let (off, end) = (offset as usize, offset as usize + buf.len());
        let data = self.data()?;
        if data.len() < end {
            data.resize(end, 0);
        }
        data[off..end].copy_from_slice(buf);
        self.dirty = Some(match self.dirty {
            Some((a, b)) => (a.min(off), b.max(end)),
            None => (off, end),
        });
        Ok(())
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        if self.main {
            self.write_back()?;
            self.data()?.truncate(size as usize);
        }
        self.base.truncate(size)
    }

    fn sync(&mut self, flags: SyncFlags) -> Result<()> {
        self.write_back()?;
        self.base.sync(flags)
    }

    fn size(&mut self) -> Result<u64> {
        if !self.main {
            return self.base.size();
        }
        Ok(self.data()?.len() as u64)
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        self.base.lock(level)
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        self.write_back()?;
        if level == LockLevel::None {
            // Another connection may change the file while it is unlocked.
            self.data = None;
        }
        self.base.unlock(level)
    }

    fn check_reserved_lock(&mut self) -> Result<bool> {
        self.base.check_reserved_lock()
    }

    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        self.base.file_control(ctl)
    }

    fn sector_size(&self) -> u32 {
        self.base.sector_size()
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        self.base.device_characteristics()
    }

    fn shm(&self) -> ShmSupport {
        self.base.shm()
    }

    fn shm_map(&mut self, region: u32, size: u32, extend: bool) -> Result<Option<ShmRegion>> {
        self.base.shm_map(region, size, extend)
    }

    fn shm_lock(&mut self, offset: u32, n: u32, op: ShmLockOp) -> Result<()> {
        self.base.shm_lock(offset, n, op)
    }

    fn shm_barrier(&mut self) {
        self.base.shm_barrier()
    }

    fn shm_unmap(&mut self, delete: bool) -> Result<()> {
        self.base.shm_unmap(delete)
    }
}

/// Chunk sizes: a valid page size larger than the database's pages (so
/// the first read is aligned like one 64 KiB page), an unaligned size of
/// several pages, and one smaller than a page.
const CHUNKS: [usize; 3] = [65536, 3000, 700];

/// A 1 KiB-page checksummed database of about 110 pages, written through
/// plain cksm (registered as `spans-make-<tag>`).
fn make_database(path: &Path, tag: &str) {
    let env = Env::new(
        &format!("spans-make-{tag}"),
        Cksm::new(Native::new().unwrap()),
    );
    let conn = env.open(path);
    conn.execute_batch(
        "PRAGMA page_size = 1024;
         CREATE TABLE doc(id INTEGER PRIMARY KEY, body BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
         INSERT INTO doc SELECT i, randomblob(300) FROM n;",
    )
    .unwrap();
    assert_eq!(text(&conn, "PRAGMA checksum_format"), "cksumvfs");
    drop(conn);
    drop(env);
    assert!(assert_reference_trailers(path) > 100);
}

#[test]
fn chunked_reads_and_writes_keep_every_page_checksummed() {
    for chunk in CHUNKS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.db");
        make_database(&path, &format!("rw-{chunk}"));
        let sums = |conn: &Connection| -> (i64, i64) {
            conn.query_row("SELECT count(*), sum(length(body)) FROM doc", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
        };
        {
            let env = Env::new(
                &format!("spans-rw-{chunk}"),
                Spans {
                    base: Cksm::new(Native::new().unwrap()),
                    chunk,
                },
            );
            let conn = env.open(&path);
            assert_eq!(sums(&conn), (300, 300 * 300), "chunk {chunk}");
            assert_eq!(integrity(&conn), "ok");
            conn.execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 301 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
                 INSERT INTO doc SELECT i, randomblob(200) FROM n;
                 UPDATE doc SET body = randomblob(100) WHERE id % 7 = 0;
                 DELETE FROM doc WHERE id % 11 = 0;",
            )
            .unwrap();
            assert_eq!(integrity(&conn), "ok");
        }
        // Every page on disk carries its own checksum, and plain cksm reads
        // the database the shim wrote.
        assert_eq!(page_size(&std::fs::read(&path).unwrap()), 1024);
        assert!(assert_reference_trailers(&path) > 150, "chunk {chunk}");
        let env = Env::new(
            &format!("spans-check-{chunk}"),
            Cksm::new(Native::new().unwrap()),
        );
        let conn = env.open(&path);
        let expected: i64 = int(
            &conn,
            "SELECT count(*) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 \
             FROM n WHERE i < 500) SELECT i FROM n WHERE i % 11 != 0)",
        );
        assert_eq!(int(&conn, "SELECT count(*) FROM doc"), expected);
        assert_eq!(integrity(&conn), "ok");
    }
}

#[test]
fn chunked_reads_verify_every_page() {
    for chunk in CHUNKS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.db");
        make_database(&path, &format!("verify-{chunk}"));
        // A byte in the middle of page 40: row data, not a trailer.
        flip(&path, 39 * 1024 + 500);
        let env = Env::new(
            &format!("spans-verify-{chunk}"),
            Spans {
                base: Cksm::new(Native::new().unwrap()),
                chunk,
            },
        );
        // The shim loads the file at its first read: the open (whose
        // connection hooks read the database) or the query fails.
        let uri = format!("file:{}?vfs={}", path.display(), env.name);
        assert_ioerr_data(Connection::open(uri).and_then(|conn| {
            conn.query_row("SELECT sum(length(body)) FROM doc", [], |r| {
                r.get::<_, i64>(0)
            })
        }));
    }
}

/// A block of a valid page size smaller than the database's pages, written
/// alone into the middle of the file (a tool patching a file, not SQLite's
/// pager): stored as written, and its page checksummed when the file
/// settles, so it reads back verified.
#[test]
fn a_lone_block_smaller_than_a_page_is_checksummed_when_the_file_settles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lone.db");
    make_database(&path, "lone");
    let vfs = Cksm::new(Native::new().unwrap());
    let name = OpenName::new(path.as_path(), FileKind::MainDb);
    let opts = OpenOptions::new(FileKind::MainDb, vfs_core::OpenAccess::ReadWrite);
    let mut file = vfs.open(&name, opts).unwrap();
    file.lock(LockLevel::Shared).unwrap();
    file.lock(LockLevel::Reserved).unwrap();
    file.lock(LockLevel::Exclusive).unwrap();
    let mut block = [0u8; 512];
    assert_eq!(file.read_at(&mut block, 40 * 1024).unwrap(), 512);
    block[100] ^= 0x5a;
    file.write_at(&block, 40 * 1024).unwrap();
    file.unlock(LockLevel::None).unwrap();
    drop(file);
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(raw[40 * 1024 + 100], block[100], "stored as written");
    assert_reference_trailers(&path);
}
