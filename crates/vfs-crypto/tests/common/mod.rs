//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use vfs_cksm::Cksm;
use vfs_core::{
    AccessCheck, DeviceCharacteristics, File, FileKind, FileName, Native, OpenAccess, OpenName,
    OpenOptions, Registration, Result, Vfs, register,
};
use vfs_crypto::{Crypto, CryptoCodec, CryptoOptions, KdfParams, Key};
use vfs_memdb::MemDb;

/// A raw key as hex, and another.
pub const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const HEX2: &str = "f0e0d0c0b0a09080706050403020100ff0e0d0c0b0a09080706050403020100f";

/// The marker written into rows; it must never reach the base.
pub const MARKER: &[u8] = b"PLAINTEXT-MARKER-7f3a";

/// Every byte written to the base, scanned for [`MARKER`] as it passes,
/// per kind of file (temporary files included: they are deleted on close).
///
/// It can also stand in for the medium of one file: reads, writes, sizes
/// and truncations of a path in `overlay` use those bytes instead of the
/// base's (to damage an in-memory database the way a disk would, or to
/// plant a journal or WAL next to it: an overlaid path exists for
/// `xAccess` and is dropped by `xDelete`).
#[derive(Default)]
pub struct SpyLog {
    hits: Mutex<Vec<(FileKind, String, u64)>>,
    bytes: Mutex<HashMap<FileKind, u64>>,
    overlay: Mutex<HashMap<String, Vec<u8>>>,
    /// Device characteristics added to the base's.
    extra_caps: AtomicI32,
}

impl SpyLog {
    /// Writes that contained the marker: (kind, path, offset).
    pub fn hits(&self) -> Vec<(FileKind, String, u64)> {
        self.hits.lock().clone()
    }

    /// Serves `path` from `bytes` from now on.
    pub fn set_overlay(&self, path: &str, bytes: Vec<u8>) {
        self.overlay.lock().insert(path.to_owned(), bytes);
    }

    pub fn overlay(&self, path: &str) -> Option<Vec<u8>> {
        self.overlay.lock().get(path).cloned()
    }

    /// Bytes written per kind of file.
    pub fn bytes(&self, kind: FileKind) -> u64 {
        self.bytes.lock().get(&kind).copied().unwrap_or(0)
    }

    /// Makes every file of the base report these device characteristics
    /// too (`SQLITE_IOCAP_*` bits).
    pub fn add_caps(&self, caps: i32) {
        self.extra_caps.fetch_or(caps, Ordering::Relaxed);
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A pass-through VFS recording what is written to its base.
pub struct Spy<B> {
    pub base: B,
    pub log: Arc<SpyLog>,
}

impl<B: Vfs> Spy<B> {
    pub fn new(base: B) -> (Spy<B>, Arc<SpyLog>) {
        let log = Arc::new(SpyLog::default());
        (
            Spy {
                base,
                log: log.clone(),
            },
            log,
        )
    }
}

pub struct SpyFile<F> {
    base: F,
    kind: FileKind,
    path: String,
    log: Arc<SpyLog>,
}

impl<B: Vfs> Vfs for Spy<B> {
    type File = SpyFile<B::File>;
    fn open(&self, name: &OpenName<'_>, mut opts: OpenOptions) -> Result<Self::File> {
        let path = name.path().map_or("<temp>".to_owned(), |p| p.to_string());
        if self.log.overlay.lock().contains_key(&path) && opts.access != OpenAccess::Create {
            // A planted file: the base must have one too (memdb opens only
            // files it has without CREATE).
            opts.access = OpenAccess::Create;
            opts.flags |= OpenOptions::new(opts.kind, OpenAccess::Create).flags;
        }
        Ok(SpyFile {
            base: self.base.open(name, opts)?,
            kind: opts.kind,
            path,
            log: self.log.clone(),
        })
    }
    fn delete(&self, path: &FileName, sync_dir: bool) -> Result<()> {
        if self
            .log
            .overlay
            .lock()
            .remove(&*path.to_string_lossy())
            .is_some()
        {
            let _ = self.base.delete(path, sync_dir);
            return Ok(());
        }
        self.base.delete(path, sync_dir)
    }
    fn access(&self, path: &FileName, check: AccessCheck) -> Result<bool> {
        if self
            .log
            .overlay
            .lock()
            .contains_key(&*path.to_string_lossy())
        {
            return Ok(true);
        }
        self.base.access(path, check)
    }
    vfs_core::forward_vfs!(base, except delete, access);
}

impl<F: File> File for SpyFile<F> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if let Some(medium) = self.log.overlay.lock().get(&self.path) {
            let start = (offset as usize).min(medium.len());
            let n = buf.len().min(medium.len() - start);
            buf[..n].copy_from_slice(&medium[start..start + n]);
            return Ok(n);
        }
        self.base.read_at(buf, offset)
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        if let Some(medium) = self.log.overlay.lock().get_mut(&self.path) {
            let end = offset as usize + buf.len();
            if medium.len() < end {
                medium.resize(end, 0);
            }
            medium[offset as usize..end].copy_from_slice(buf);
            return Ok(());
        }
        if contains(buf, MARKER) {
            self.log
                .hits
                .lock()
                .push((self.kind, self.path.clone(), offset));
        }
        *self.log.bytes.lock().entry(self.kind).or_default() += buf.len() as u64;
        self.base.write_at(buf, offset)
    }
    fn truncate(&mut self, size: u64) -> Result<()> {
        if let Some(medium) = self.log.overlay.lock().get_mut(&self.path) {
            medium.truncate(size as usize);
            return Ok(());
        }
        self.base.truncate(size)
    }
    fn size(&mut self) -> Result<u64> {
        if let Some(medium) = self.log.overlay.lock().get(&self.path) {
            return Ok(medium.len() as u64);
        }
        self.base.size()
    }
    fn device_characteristics(&self) -> DeviceCharacteristics {
        self.base
            .device_characteristics()
            .with(self.log.extra_caps.load(Ordering::Relaxed))
    }
    vfs_core::forward_file!(
        base,
        except read_at,
        write_at,
        truncate,
        size,
        device_characteristics
    );
}

/// The four stacks the issue names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    Mem,
    Native,
    CksmMem,
    CksmNative,
    /// cksm over crypto over memdb (the other order of nesting).
    CksmAboveMem,
}

impl Stack {
    pub const ALL: [Stack; 4] = [Stack::Mem, Stack::Native, Stack::CksmMem, Stack::CksmNative];
    /// [`ALL`](Stack::ALL) and checksums above the encryption.
    pub const BOTH_ORDERS: [Stack; 5] = [
        Stack::Mem,
        Stack::Native,
        Stack::CksmMem,
        Stack::CksmNative,
        Stack::CksmAboveMem,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stack::Mem => "mem",
            Stack::Native => "native",
            Stack::CksmMem => "cksm-mem",
            Stack::CksmNative => "cksm-native",
            Stack::CksmAboveMem => "cksm-above-mem",
        }
    }

    pub fn on_disk(self) -> bool {
        matches!(self, Stack::Native | Stack::CksmNative)
    }

    /// The header's reserve of a new database.
    pub fn reserve(self) -> usize {
        match self {
            Stack::Mem | Stack::Native => 48,
            _ => 56,
        }
    }
}

/// A registered stack (unique name per test), spied at its base, with a
/// temporary directory for on-disk stacks.
pub struct Env {
    pub name: String,
    pub stack: Stack,
    pub log: Arc<SpyLog>,
    /// The memdb store (in-memory stacks).
    pub mem: Option<MemDb>,
    pub dir: tempfile::TempDir,
    /// The registered layer's codec (statistics, test hooks).
    pub codec: Arc<CryptoCodec>,
    reg: Option<Registration>,
}

impl Env {
    /// Keys from URIs only.
    pub fn new(test: &str, stack: Stack) -> Env {
        Env::with(test, stack, CryptoOptions::default())
    }

    /// With a registration key.
    pub fn keyed(test: &str, stack: Stack, key: Key) -> Env {
        Env::with(
            test,
            stack,
            CryptoOptions {
                key: Some(key),
                ..CryptoOptions::default()
            },
        )
    }

    pub fn with(test: &str, stack: Stack, mut opts: CryptoOptions) -> Env {
        let name = format!("crypto-test-{test}-{}", stack.name());
        if opts.kdf == KdfParams::DEFAULT {
            opts.kdf = KdfParams::FAST_INSECURE;
        }
        let mem = MemDb::new();
        fn reg<V: Vfs>(
            name: &str,
            vfs: V,
            codec: &Arc<CryptoCodec>,
        ) -> (Result<Registration>, Arc<CryptoCodec>) {
            (register(name, vfs, false), codec.clone())
        }
        let ((reg, codec), log) = match stack {
            Stack::Mem => {
                let (spy, log) = Spy::new(mem.clone());
                let c = Crypto::with_options(spy, opts);
                let codec = c.codec().clone();
                (reg(&name, c, &codec), log)
            }
            Stack::Native => {
                let (spy, log) = Spy::new(Native::new().unwrap());
                let c = Crypto::with_options(spy, opts);
                let codec = c.codec().clone();
                (reg(&name, c, &codec), log)
            }
            Stack::CksmMem => {
                let (spy, log) = Spy::new(mem.clone());
                let c = cksm_stack(spy, opts);
                let codec = c.codec().clone();
                (reg(&name, c, &codec), log)
            }
            Stack::CksmNative => {
                let (spy, log) = Spy::new(Native::new().unwrap());
                let c = cksm_stack(spy, opts);
                let codec = c.codec().clone();
                (reg(&name, c, &codec), log)
            }
            Stack::CksmAboveMem => {
                let (spy, log) = Spy::new(mem.clone());
                let c = Crypto::with_options(spy, opts);
                let codec = c.codec().clone();
                (reg(&name, Cksm::new(c), &codec), log)
            }
        };
        Env {
            name,
            stack,
            log,
            mem: (!stack.on_disk()).then_some(mem),
            dir: tempfile::tempdir().unwrap(),
            codec,
            reg: Some(reg.unwrap()),
        }
    }

    /// A database path: a shared memdb name, or a file in the directory.
    pub fn db(&self, file: &str) -> String {
        if self.stack.on_disk() {
            self.dir.path().join(file).display().to_string()
        } else {
            format!("/{file}")
        }
    }

    /// The URI of `db` on this VFS, with extra parameters (`&hexkey=...`).
    pub fn uri(&self, db: &str, params: &str) -> String {
        format!("file:{db}?vfs={}{params}", self.name)
    }

    pub fn open(&self, db: &str, params: &str) -> Connection {
        let conn = Connection::open_with_flags(
            self.uri(db, params),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    /// The stored bytes of a file of this stack (`""`, `"-wal"`,
    /// `"-journal"` after the database name), if it exists. In memory: the
    /// overlay, else the database as exported (a rollback-mode database),
    /// or a journal or WAL as stored.
    pub fn raw(&self, db: &str, suffix: &str) -> Option<Vec<u8>> {
        let name = format!("{db}{suffix}");
        if self.stack.on_disk() {
            std::fs::read(&name).ok()
        } else if let Some(bytes) = self.log.overlay(&name) {
            Some(bytes)
        } else {
            let mem = self.mem.as_ref().unwrap();
            mem.file_size(&name)?;
            if suffix.is_empty() {
                mem.export(&name).ok()
            } else {
                mem.file_bytes(&name)
            }
        }
    }

    /// Puts `bytes` at `path` as if written there by someone without the
    /// key: on disk, the file; in memory, an overlay of the spy (which
    /// then exists for SQLite's hot-journal and WAL checks).
    pub fn plant(&self, path: &str, bytes: &[u8]) {
        if self.stack.on_disk() {
            std::fs::write(path, bytes).unwrap();
        } else {
            self.log.set_overlay(path, bytes.to_vec());
        }
    }

    /// Whether a file exists at `path` (on disk, or as a planted or
    /// stored in-memory file).
    pub fn exists(&self, path: &str) -> bool {
        if self.stack.on_disk() {
            Path::new(path).exists()
        } else {
            self.log.overlay(path).is_some() || self.mem.as_ref().unwrap().file_size(path).is_some()
        }
    }

    /// Replaces the stored database file (closed) with `bytes`: on disk,
    /// the file; in memory, an overlay of the spy (memdb refuses to load
    /// an image without SQLite's header string).
    pub fn store(&self, db: &str, bytes: &[u8]) {
        if self.stack.on_disk() {
            std::fs::write(db, bytes).unwrap();
        } else {
            self.log.set_overlay(db, bytes.to_vec());
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(reg) = self.reg.take() {
            let _ = reg.unregister();
        }
    }
}

fn cksm_stack<B: Vfs>(base: B, opts: CryptoOptions) -> Crypto<Cksm<B>> {
    Crypto::with_options(Cksm::new(base), opts)
}

pub fn hexkey() -> String {
    format!("&hexkey={HEX}")
}

/// The extended code of a failed SQLite call.
pub fn extended_code<T: std::fmt::Debug>(r: rusqlite::Result<T>) -> i32 {
    match r {
        Err(rusqlite::Error::SqliteFailure(e, _)) => e.extended_code,
        other => panic!("expected an SQLite failure, got {other:?}"),
    }
}

pub fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

pub fn text(conn: &Connection, sql: &str) -> String {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

pub fn int(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Page size from a stored header (bytes 16..18, in clear).
pub fn page_size(raw: &[u8]) -> usize {
    match u16::from_be_bytes([raw[16], raw[17]]) {
        1 => 65536,
        p => usize::from(p),
    }
}

/// `n` rows of `(i, '<MARKER> <i> <padding>')` in table `t`.
pub fn fill(conn: &Connection, n: usize) {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t(i INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut ins = tx
            .prepare("INSERT INTO t(v) VALUES (?1 || ' ' || ?2 || ' ' || printf('%.*c', 150, 'x'))")
            .unwrap();
        for i in 0..n {
            ins.execute(rusqlite::params![
                std::str::from_utf8(MARKER).unwrap(),
                i as i64
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Asserts `t` holds exactly the rows [`fill`] wrote (count and content).
pub fn check_rows(conn: &Connection, n: usize) {
    assert_eq!(int(conn, "SELECT count(*) FROM t") as usize, n);
    let bad = int(
        conn,
        "SELECT count(*) FROM t WHERE v NOT LIKE 'PLAINTEXT-MARKER-7f3a %' OR length(v) < 170",
    );
    assert_eq!(bad, 0);
}

pub fn path(p: &str) -> PathBuf {
    Path::new(p).to_path_buf()
}
