//! Memory-mapped reads through the core: `xFetch`/`xUnfetch` only where a
//! file lends pages (method-table versions), what the trampolines hand
//! SQLite and take back (checked at the C level), the fail-closed rule of
//! `forward_file!`, panics, and the native base lending `unix`'s mapping to
//! real SQL.

mod common;

use std::ffi::{CString, c_void};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{PassThrough, integrity, unique_name};
use libsqlite3_sys as ffi;
use parking_lot::Mutex;
use rusqlite::Connection;
use vfs_core::{
    AccessCheck, File, Mapping, Native, OpenName, OpenOptions, Result, ShmGroup, ShmSupport,
    SyncFlags, Vfs,
};

const SIZE: usize = 64 * 1024;

/// Files of 64 KiB (and the overread room after them), one shared page
/// each, that lend any range of it.
#[derive(Clone, Default)]
struct Lender {
    shm: bool,
    /// The last file opened, for the tests to look at.
    last: Arc<Mutex<Option<Arc<[u8]>>>>,
    /// Lend fewer bytes than asked (a misbehaving shim).
    short: Arc<AtomicBool>,
    /// Panic in fetch.
    panic: Arc<AtomicBool>,
    unmaps: Arc<AtomicU64>,
}

struct LenderFile {
    bytes: Arc<[u8]>,
    shm: Option<Arc<ShmGroup>>,
    vfs: Lender,
}

impl Vfs for Lender {
    type File = LenderFile;
    fn open(&self, _: &OpenName<'_>, _: OpenOptions) -> Result<LenderFile> {
        let bytes: Arc<[u8]> = vec![0; SIZE + Mapping::OVERREAD].into();
        *self.last.lock() = Some(Arc::clone(&bytes));
        Ok(LenderFile {
            bytes,
            shm: self.shm.then(ShmGroup::new),
            vfs: self.clone(),
        })
    }
    fn delete(&self, _: &vfs_core::FileName, _: bool) -> Result<()> {
        Ok(())
    }
    fn access(&self, _: &vfs_core::FileName, _: AccessCheck) -> Result<bool> {
        Ok(false)
    }
}

impl File for LenderFile {
    vfs_core::no_lock!();
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let o = offset as usize;
        buf.copy_from_slice(&self.bytes[o..o + buf.len()]);
        Ok(buf.len())
    }
    fn can_fetch(&self) -> bool {
        true
    }
    fn fetch(&mut self, offset: u64, len: usize) -> Result<Option<Mapping>> {
        assert!(
            !self.vfs.panic.load(Ordering::Relaxed),
            "fetch told to panic"
        );
        let len = if self.vfs.short.load(Ordering::Relaxed) {
            len / 2
        } else {
            len
        };
        Ok(Mapping::lend(&self.bytes, offset as usize, len))
    }
    fn unmap_file(&mut self) -> Result<()> {
        self.vfs.unmaps.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let o = offset as usize;
        // A lent file is shared: this writes a copy, as memdb does.
        Arc::make_mut(&mut self.bytes)[o..o + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn truncate(&mut self, _: u64) -> Result<()> {
        Ok(())
    }
    fn sync(&mut self, _: SyncFlags) -> Result<()> {
        Ok(())
    }
    fn size(&mut self) -> Result<u64> {
        Ok(SIZE as u64)
    }
    fn shm(&self) -> ShmSupport {
        match &self.shm {
            Some(g) => ShmSupport::Group(Arc::clone(g)),
            None => ShmSupport::None,
        }
    }
}

/// A shim that reads its own way (here: it would count reads) and writes
/// nothing about mappings: the macro must not let SQLite bypass it.
struct OwnReads<B>(B);
struct OwnReadsFile<F>(F);

impl<B: Vfs> Vfs for OwnReads<B> {
    type File = OwnReadsFile<B::File>;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.0.open(name, opts).map(OwnReadsFile)
    }
    vfs_core::forward_vfs!(0);
}

impl<F: File> File for OwnReadsFile<F> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.0.read_at(buf, offset)
    }
    vfs_core::forward_file!(0, except read_at);
}

/// An open file at the C level (a block of `szOsFile` bytes).
struct CFile {
    mem: Vec<u64>,
}

impl CFile {
    fn open(vfs_name: &str) -> CFile {
        let c = CString::new(vfs_name).unwrap();
        // SAFETY: valid C string; the VFS was registered by the test.
        let vfs = unsafe { ffi::sqlite3_vfs_find(c.as_ptr()) };
        assert!(!vfs.is_null());
        // SAFETY: vfs is live.
        let size = unsafe { (*vfs).szOsFile } as usize;
        let mut f = CFile {
            mem: vec![0; size.div_ceil(8)],
        };
        let name: &[u8] = b"f.db\0\0\0";
        let flags = ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;
        let mut out = 0;
        // SAFETY: xOpen with a SQLite-style name, a block of szOsFile bytes.
        let rc =
            unsafe { (*vfs).xOpen.unwrap()(vfs, name.as_ptr().cast(), f.file(), flags, &mut out) };
        assert_eq!(rc, ffi::SQLITE_OK);
        f
    }

    fn file(&mut self) -> *mut ffi::sqlite3_file {
        self.mem.as_mut_ptr().cast()
    }

    fn methods(&mut self) -> &'static ffi::sqlite3_io_methods {
        // SAFETY: an open file's method table is a static of the core.
        unsafe { &*(*self.file()).pMethods }
    }

    fn fetch(&mut self, offset: i64, amt: i32) -> (i32, *mut c_void) {
        let f = self.file();
        let mut p = ptr::dangling_mut::<c_void>();
        // SAFETY: open file with a version-3 table; p is writable.
        let rc = unsafe { self.methods().xFetch.unwrap()(f, offset, amt, &mut p) };
        (rc, p)
    }

    fn unfetch(&mut self, offset: i64, p: *mut c_void) -> i32 {
        let f = self.file();
        // SAFETY: open file with a version-3 table.
        unsafe { self.methods().xUnfetch.unwrap()(f, offset, p) }
    }

    fn write(&mut self, buf: &[u8], offset: i64) -> i32 {
        let f = self.file();
        // SAFETY: open file; buf is readable.
        unsafe { self.methods().xWrite.unwrap()(f, buf.as_ptr().cast(), buf.len() as i32, offset) }
    }

    fn close(mut self) -> i32 {
        let f = self.file();
        // SAFETY: open file, closed once.
        unsafe { self.methods().xClose.unwrap()(f) }
    }
}

#[test]
fn only_lending_files_get_a_version_3_table() {
    let cases = [
        (false, false, 1),
        (true, false, 2),
        (false, true, 3),
        (true, true, 3),
    ];
    for (shm, fetch, version) in cases {
        let name = unique_name("fetch-version");
        let lender = Lender {
            shm,
            ..Lender::default()
        };
        let reg = if fetch {
            vfs_core::register(&name, lender, false).unwrap()
        } else {
            vfs_core::register(&name, OwnReads(lender), false).unwrap()
        };
        let mut f = CFile::open(&name);
        let m = f.methods();
        assert_eq!(m.iVersion, version, "shm {shm}, fetch {fetch}");
        assert_eq!(m.xFetch.is_some(), fetch);
        assert_eq!(m.xUnfetch.is_some(), fetch);
        assert_eq!(m.xShmMap.is_some(), shm);
        assert_eq!(m.xShmUnmap.is_some(), shm);
        assert_eq!(f.close(), ffi::SQLITE_OK);
        reg.unregister().unwrap();
    }
}

#[test]
fn xfetch_lends_the_page_until_xunfetch() {
    let name = unique_name("fetch-c");
    let lender = Lender::default();
    let reg = vfs_core::register(&name, lender.clone(), false).unwrap();
    let mut f = CFile::open(&name);
    *lender.last.lock() = None;
    assert_eq!(f.write(&[0xAB; 4096], 8192), ffi::SQLITE_OK);
    let (rc, p) = f.fetch(8192, 4096);
    assert_eq!(rc, ffi::SQLITE_OK);
    assert!(!p.is_null());
    // SAFETY: the core lent 4096 bytes at p until xUnfetch.
    let lent = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), 4096) };
    assert!(lent.iter().all(|&b| b == 0xAB));
    // Writing the page while it is lent writes a copy: SQLite's bytes stay.
    assert_eq!(f.write(&[0xCD; 4096], 8192), ffi::SQLITE_OK);
    assert!(lent.iter().all(|&b| b == 0xAB), "lent bytes unchanged");
    let (rc, p2) = f.fetch(8192, 4096);
    assert_eq!(rc, ffi::SQLITE_OK);
    assert_ne!(p2, p, "a later fetch lends the new bytes");
    // SAFETY: as above, for p2.
    let lent2 = unsafe { std::slice::from_raw_parts(p2.cast::<u8>(), 4096) };
    assert!(lent2.iter().all(|&b| b == 0xCD));

    // A pointer the file did not lend is refused, and nothing changes.
    let stranger = [0u8; 16];
    assert_eq!(
        f.unfetch(8192, stranger.as_ptr().cast_mut().cast()),
        ffi::SQLITE_IOERR_MMAP
    );
    assert!(
        vfs_core::last_error()
            .unwrap()
            .message
            .contains("did not lend")
    );
    assert_eq!(f.unfetch(8192, p), ffi::SQLITE_OK);
    assert_eq!(f.unfetch(8192, p2), ffi::SQLITE_OK);
    // The same pointer twice: the second is refused.
    assert_eq!(f.unfetch(8192, p2), ffi::SQLITE_IOERR_MMAP);
    // The null pointer: the whole-file hint.
    assert_eq!(f.unfetch(0, ptr::null_mut()), ffi::SQLITE_OK);
    assert_eq!(lender.unmaps.load(Ordering::Relaxed), 1);

    assert_eq!(f.close(), ffi::SQLITE_OK);
    reg.unregister().unwrap();
}

#[test]
fn lent_bytes_are_held_exactly_while_sqlite_holds_them() {
    let name = unique_name("fetch-hold");
    let lender = Lender::default();
    let reg = vfs_core::register(&name, lender.clone(), false).unwrap();
    let mut f = CFile::open(&name);
    let page = lender.last.lock().take().unwrap();
    let holders = || Arc::strong_count(&page) - 2; // the file's and ours
    let mut lent = Vec::new();
    for i in 0..40 {
        let (rc, p) = f.fetch((i % 16) * 4096, 4096);
        assert_eq!(rc, ffi::SQLITE_OK);
        lent.push(((i % 16) * 4096, p));
    }
    assert_eq!(holders(), 40);
    // Given back in another order than lent.
    lent.reverse();
    lent.rotate_left(7);
    for (k, (off, p)) in lent.into_iter().enumerate() {
        assert_eq!(f.unfetch(off, p), ffi::SQLITE_OK);
        assert_eq!(holders(), 39 - k);
    }
    // Closing with pages still lent (SQLite never does) releases them.
    f.fetch(0, 4096);
    assert_eq!(holders(), 1);
    assert_eq!(f.close(), ffi::SQLITE_OK);
    assert_eq!(Arc::strong_count(&page), 1);
    reg.unregister().unwrap();
}

#[test]
fn a_mapping_shorter_than_asked_is_given_back_and_not_used() {
    let name = unique_name("fetch-short");
    let lender = Lender::default();
    let reg = vfs_core::register(&name, lender.clone(), false).unwrap();
    let mut f = CFile::open(&name);
    let page = lender.last.lock().take().unwrap();
    lender.short.store(true, Ordering::Relaxed);
    let (rc, p) = f.fetch(4096, 4096);
    assert_eq!((rc, p), (ffi::SQLITE_OK, ptr::null_mut()), "not mapped");
    assert_eq!(Arc::strong_count(&page), 2, "the short mapping was dropped");
    // A panic in fetch is an error code, and the file keeps working.
    lender.short.store(false, Ordering::Relaxed);
    lender.panic.store(true, Ordering::Relaxed);
    let (rc, p) = f.fetch(4096, 4096);
    assert_eq!((rc, p), (ffi::SQLITE_IOERR_MMAP, ptr::null_mut()));
    assert!(vfs_core::last_error().unwrap().message.contains("panicked"));
    lender.panic.store(false, Ordering::Relaxed);
    let (rc, p) = f.fetch(4096, 4096);
    assert_eq!(rc, ffi::SQLITE_OK);
    assert_eq!(f.unfetch(4096, p), ffi::SQLITE_OK);
    assert_eq!(f.close(), ffi::SQLITE_OK);
    reg.unregister().unwrap();
}

#[test]
fn forwarders_lend_only_when_reads_are_forwarded_too() {
    let pass = unique_name("fetch-pass");
    let reg = vfs_core::register(&pass, PassThrough(Lender::default()), false).unwrap();
    let mut f = CFile::open(&pass);
    assert_eq!(
        f.methods().iVersion,
        3,
        "a pure forwarder lends its base's pages"
    );
    let (rc, p) = f.fetch(0, 4096);
    assert_eq!(rc, ffi::SQLITE_OK);
    assert!(!p.is_null());
    assert_eq!(f.unfetch(0, p), ffi::SQLITE_OK);
    assert_eq!(f.close(), ffi::SQLITE_OK);
    reg.unregister().unwrap();

    // Its own read_at: no version 3, and a direct call lends nothing.
    let name = unique_name("fetch-own");
    let reg = vfs_core::register(&name, OwnReads(Lender::default()), false).unwrap();
    let mut f = CFile::open(&name);
    assert!(f.methods().xFetch.is_none());
    assert_eq!(f.close(), ffi::SQLITE_OK);
    reg.unregister().unwrap();
    let mut file = OwnReads(Lender::default())
        .open(
            &OpenName::new("x.db", vfs_core::FileKind::MainDb),
            OpenOptions::new(vfs_core::FileKind::MainDb, vfs_core::OpenAccess::Create),
        )
        .unwrap();
    assert!(!file.can_fetch());
    assert!(file.fetch(0, 4096).unwrap().is_none());
}

/// Counts the pages its base lends.
struct CountLent<B> {
    base: B,
    lent: Arc<AtomicU64>,
}
struct CountLentFile<F> {
    base: F,
    lent: Arc<AtomicU64>,
}

impl<B: Vfs> Vfs for CountLent<B> {
    type File = CountLentFile<B::File>;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        Ok(CountLentFile {
            base: self.base.open(name, opts)?,
            lent: Arc::clone(&self.lent),
        })
    }
    vfs_core::forward_vfs!(base);
}

impl<F: File> File for CountLentFile<F> {
    fn fetch(&mut self, offset: u64, len: usize) -> Result<Option<Mapping>> {
        let r = self.base.fetch(offset, len);
        if let Ok(Some(m)) = &r {
            assert!(m.len() >= len);
            assert!(m.shared_bytes().is_none(), "unix's pages are not shared");
            self.lent.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    vfs_core::forward_file!(base, except fetch);
}

fn answers(c: &Connection) -> (i64, i64, i64) {
    c.query_row(
        "SELECT count(*), sum(length(b)), sum(a) FROM t WHERE a % 3 <> 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

/// The native base lends `unix`'s own mapping: `PRAGMA mmap_size` answers
/// what it set, pages are read in place, VACUUM shrinks a mapped file, and
/// another connection (plain SQLite, `unix` itself) sees the same rows.
#[test]
fn native_lends_unix_mapping_to_sql() {
    let lent = Arc::new(AtomicU64::new(0));
    let name = unique_name("fetch-native");
    let reg = vfs_core::register(
        &name,
        CountLent {
            base: Native::new().unwrap(),
            lent: Arc::clone(&lent),
        },
        false,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let c = Connection::open(format!("file:{}?vfs={name}", path.display())).unwrap();
    let size: i64 = c
        .query_row("PRAGMA mmap_size = 67108864", [], |r| r.get(0))
        .unwrap();
    assert_eq!(size, 67_108_864);
    c.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<8000)
         INSERT INTO t SELECT i, i * 31 % 1000, zeroblob(100 + i % 400) FROM n;",
    )
    .unwrap();
    let plain = Connection::open(&path).unwrap();
    let expected = answers(&plain);
    assert_eq!(answers(&c), expected);
    let before = lent.load(Ordering::Relaxed);
    assert!(before > 50, "pages read in place ({before})");
    c.execute_batch("DELETE FROM t WHERE id % 4 <> 0; VACUUM;")
        .unwrap();
    let expected = answers(&plain);
    assert_eq!(answers(&c), expected);
    assert!(lent.load(Ordering::Relaxed) > before);
    assert_eq!(integrity(&c), "ok");
    drop((c, plain));
    reg.unregister().unwrap();
}
