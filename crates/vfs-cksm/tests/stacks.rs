//! cksm in stacks: under another page layer, over a Rust in-memory backend,
//! and observed by `Wrap`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use vfs_cksm::Cksm;
use vfs_core::{
    AccessCheck, File, FileKind, FileName, FileNameBuf, Native, Op, OpenName, OpenOptions, Result,
    SyncFlags, Vfs, codes,
};
use vfs_observe::{StatsRecorder, Wrap};
use vfs_page::{FileInfo, Mapping, PageCodec, PageCtx, PageVfs};

/// An upper layer that claims 16 reserved bytes, stamps them, and gives
/// zeros back (as the layer contract asks). It finds its slice from the
/// stacking the page layer hands it: just before cksm's trailer here.
struct Upper;

const UPPER: usize = 16;
const STAMP: &[u8; UPPER] = b"upper-layer-tag!";

impl PageCodec for Upper {
    type State = ();
    fn mapping(&self, kind: FileKind) -> Mapping {
        if kind == FileKind::MainDb {
            Mapping::Pages
        } else {
            Mapping::None
        }
    }
    fn name(&self) -> &'static str {
        "upper"
    }
    fn reserve(&self) -> usize {
        UPPER
    }
    fn open(&self, _: &FileInfo<'_>, _: &OpenName<'_>, _: OpenOptions) -> Result<()> {
        Ok(())
    }
    fn encode(&self, _: &mut (), ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        if ctx.reserve == Some(ctx.stacking.total(UPPER)) {
            let slice = ctx.stacking.slice(image.len(), UPPER);
            image[slice].copy_from_slice(STAMP);
        }
        Ok(())
    }
    fn decode(&self, _: &mut (), ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        if ctx.reserve == Some(ctx.stacking.total(UPPER)) {
            let slice = ctx.stacking.slice(image.len(), UPPER);
            if &image[slice.clone()] != STAMP {
                return Err(ctx.error(codes::SQLITE_IOERR_DATA, "upper stamp missing"));
            }
            image[slice].fill(0);
        }
        Ok(())
    }
}

#[test]
fn under_another_layer_the_trailer_is_the_last_8_bytes() {
    let vfs = PageVfs::new(Cksm::new(Native::new().unwrap()), Upper);
    let env = Env::new("stacked", vfs);
    let path = env.path("s.db");
    {
        let conn = env.open(&path);
        conn.execute_batch(
            "CREATE TABLE t(x);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 50)
             INSERT INTO t SELECT randomblob(700) FROM c;",
        )
        .unwrap();
        // The pragmas go through the upper layer to cksm.
        assert_eq!(text(&conn, "PRAGMA checksum_verification"), "1");
        assert_eq!(text(&conn, "PRAGMA checksum_format"), "cksumvfs");
        assert_eq!(int(&conn, "SELECT count(*) FROM t"), 50);
    }
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(raw[20] as usize, UPPER + 8, "the header holds the sum");
    let p = page_size(&raw);
    for (i, page) in raw.chunks(p).enumerate() {
        assert_eq!(&page[p - 8 - UPPER..p - 8], STAMP, "page {}", i + 1);
        // cksm's sums cover everything before them, upper bytes included.
        assert_eq!(page[p - 8..], reference_trailer(&page[..p - 8]));
    }
    // A flipped byte inside the upper layer's bytes is caught by cksm.
    flip(&path, 2 * p - 12);
    let conn = env.open(&path);
    assert_ioerr_data(conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)));
    let detail = vfs_core::last_error().unwrap();
    assert!(
        detail.message.contains("cksumvfs checksum mismatch"),
        "{}",
        detail.message
    );
}

/// A minimal single-connection in-memory backend, to show cksm over a Rust
/// base: files live in a map shared by the VFS.
type Bytes = Arc<Mutex<Vec<u8>>>;

#[derive(Clone, Default)]
struct MemVfs {
    files: Arc<Mutex<HashMap<FileNameBuf, Bytes>>>,
}

struct MemFile(Arc<Mutex<Vec<u8>>>);

impl Vfs for MemVfs {
    type File = MemFile;
    fn open(&self, name: &OpenName<'_>, _: OpenOptions) -> Result<MemFile> {
        let data = match name.path() {
            Some(p) => self
                .files
                .lock()
                .unwrap()
                .entry(p.to_owned())
                .or_default()
                .clone(),
            None => Arc::default(),
        };
        Ok(MemFile(data))
    }
    fn delete(&self, path: &FileName, _: bool) -> Result<()> {
        self.files.lock().unwrap().remove(path);
        Ok(())
    }
    fn access(&self, path: &FileName, _: AccessCheck) -> Result<bool> {
        Ok(self.files.lock().unwrap().contains_key(path))
    }
}

impl File for MemFile {
    vfs_core::no_lock!();
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> Result<usize> {
        let d = self.0.lock().unwrap();
        let start = (off as usize).min(d.len());
        let n = buf.len().min(d.len() - start);
        buf[..n].copy_from_slice(&d[start..start + n]);
        Ok(n)
    }
    fn write_at(&mut self, buf: &[u8], off: u64) -> Result<()> {
        let mut d = self.0.lock().unwrap();
        let end = off as usize + buf.len();
        if d.len() < end {
            d.resize(end, 0);
        }
        d[off as usize..end].copy_from_slice(buf);
        Ok(())
    }
    fn truncate(&mut self, size: u64) -> Result<()> {
        self.0.lock().unwrap().truncate(size as usize);
        Ok(())
    }
    fn sync(&mut self, _: SyncFlags) -> Result<()> {
        Ok(())
    }
    fn size(&mut self) -> Result<u64> {
        Ok(self.0.lock().unwrap().len() as u64)
    }
}

#[test]
fn over_an_in_memory_rust_backend() {
    let mem = MemVfs::default();
    let env = Env::new("memory", Cksm::new(mem.clone()));
    let uri = |p: &str| format!("file:{p}?vfs={}", env.name);
    let conn = rusqlite::Connection::open(uri("/mem.db")).unwrap();
    conn.execute_batch(
        "PRAGMA page_size=512; CREATE TABLE t(v);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300)
         INSERT INTO t SELECT printf('row %d', i) FROM c;",
    )
    .unwrap();
    drop(conn);
    let stored = mem.files.lock().unwrap()[FileName::new("/mem.db")].clone();
    let raw = stored.lock().unwrap().clone();
    assert_eq!(raw[20], 8);
    for page in raw.chunks(512) {
        assert_eq!(page[504..], reference_trailer(&page[..504]));
    }
    // Corrupt page 3 in memory.
    stored.lock().unwrap()[2 * 512 + 300] ^= 0x01;
    let conn = rusqlite::Connection::open(uri("/mem.db")).unwrap();
    assert_ioerr_data(
        conn.query_row("SELECT count(*) FROM t WHERE v > ''", [], |r| {
            r.get::<_, i64>(0)
        }),
    );
}

/// `Wrap` over cksm: every operation is observed, checksums still work, and
/// file controls (the checksum pragmas) pass through the wrapper.
#[test]
fn observed_by_wrap() {
    let stats = Arc::new(StatsRecorder::new());
    let env = Env::new(
        "wrapped",
        Wrap::new(Cksm::new(Native::new().unwrap()), stats.clone()),
    );
    let path = env.path("w.db");
    {
        let conn = env.open(&path);
        conn.execute_batch(
            "CREATE TABLE t(v);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500)
             INSERT INTO t SELECT randomblob(100) FROM c;",
        )
        .unwrap();
        assert_eq!(text(&conn, "PRAGMA checksum_verification"), "1");
    }
    assert_reference_trailers(&path);
    let writes = stats.snapshot().op(Op::Write).count;
    assert!(writes > 0);
    flip(&path, 4096 + 2000);
    let conn = env.open(&path);
    assert_ioerr_data(
        conn.query_row("SELECT count(*) FROM t WHERE v IS NOT NULL", [], |r| {
            r.get::<_, i64>(0)
        }),
    );
    assert!(
        stats.snapshot().op(Op::Read).errors > 0,
        "the failed read was observed"
    );
}
