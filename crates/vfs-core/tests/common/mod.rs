//! A small shared in-memory backend for vfs-core's own tests, with fault
//! injection. Real backends live in their own crates; this one exists so the
//! core can be tested without depending on them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use vfs_core::{
    AccessCheck, DeviceCharacteristics, Error, File, FileKind, FileLock, FileName, FileNameBuf,
    LockLevel, LockManager, Op, OpenAccess, OpenName, OpenOptions, Result, ShmGroup, ShmSupport,
    SyncFlags, Vfs, codes,
};

/// What an injected fault does.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Return this SQLite code.
    Code(i32),
    /// Return a plain `io::Error` (the operation's default code).
    Io,
    /// Return the `io::Error` of operating-system error `errno`.
    Os(i32),
    /// Panic inside the backend.
    Panic,
}

/// What one open saw: kind, path, database name, URI parameter `flavour`.
pub type SeenOpen = (FileKind, Option<String>, Option<String>, Option<String>);

#[derive(Default)]
pub struct Counters {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub syncs: AtomicU64,
    pub opens: AtomicU64,
}

struct FileData {
    bytes: RwLock<Vec<u8>>,
    lock: Arc<LockManager>,
    shm: Arc<ShmGroup>,
}

#[derive(Default)]
struct Inner {
    files: Mutex<HashMap<FileNameBuf, Arc<FileData>>>,
    faults: Mutex<HashMap<Op, Fault>>,
    /// Every (kind, path, parameter value) an open saw, for URI tests.
    seen: Mutex<Vec<SeenOpen>>,
    anon: AtomicUsize,
    counters: Counters,
}

/// A process-shared in-memory VFS: files by name, real locks, optional WAL
/// shared memory, and fault injection on main-database files.
#[derive(Clone)]
pub struct TestVfs {
    inner: Arc<Inner>,
    shm: bool,
}

impl TestVfs {
    pub fn new(shm: bool) -> TestVfs {
        TestVfs {
            inner: Arc::default(),
            shm,
        }
    }

    /// Makes `op` fail on main-database files (and at open) until cleared.
    pub fn inject(&self, op: Op, fault: Fault) {
        self.inner.faults.lock().insert(op, fault);
    }

    pub fn clear_faults(&self) {
        self.inner.faults.lock().clear();
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// (kind, path, database name, value of URI parameter `flavour`) of every
    /// open so far.
    pub fn seen(&self) -> Vec<SeenOpen> {
        self.inner.seen.lock().clone()
    }

    /// Names of files currently stored (as text, lossily).
    pub fn file_names(&self) -> Vec<String> {
        let mut v: Vec<_> = self
            .inner
            .files
            .lock()
            .keys()
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// Names of files currently stored, exactly.
    pub fn raw_file_names(&self) -> Vec<FileNameBuf> {
        let mut v: Vec<_> = self.inner.files.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// A copy of a stored file's bytes.
    pub fn bytes(&self, name: impl AsRef<FileName>) -> Option<Vec<u8>> {
        self.inner
            .files
            .lock()
            .get(name.as_ref())
            .map(|f| f.bytes.read().clone())
    }

    /// Stores `bytes` as file `name` (replacing any).
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        self.inner.files.lock().insert(
            name.into(),
            Arc::new(FileData {
                bytes: RwLock::new(bytes),
                lock: LockManager::new(),
                shm: ShmGroup::new(),
            }),
        );
    }

    /// Removes file `name`.
    pub fn delete_file(&self, name: &str) {
        self.inner.files.lock().remove(FileName::new(name));
    }

    /// (connections mapping, regions allocated) of the WAL index of `name`.
    pub fn shm_state(&self, name: &str) -> Option<(usize, usize)> {
        self.inner
            .files
            .lock()
            .get(FileName::new(name))
            .map(|f| (f.shm.connections(), f.shm.regions()))
    }

    fn fault(&self, op: Op, kind: FileKind) -> Result<()> {
        if kind != FileKind::MainDb && op != Op::Open {
            return Ok(());
        }
        match self.inner.faults.lock().get(&op).cloned() {
            None => Ok(()),
            Some(Fault::Code(code)) => Err(Error::new(code, format!("injected {op:?} failure"))),
            Some(Fault::Io) => {
                Err(std::io::Error::other(format!("injected {op:?} I/O error")).into())
            }
            Some(Fault::Os(errno)) => Err(std::io::Error::from_raw_os_error(errno).into()),
            Some(Fault::Panic) => panic!("injected panic in {op:?}"),
        }
    }
}

pub struct TestFile {
    vfs: TestVfs,
    data: Arc<FileData>,
    lock: FileLock,
    kind: FileKind,
    shm: bool,
}

impl Vfs for TestVfs {
    type File = TestFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<TestFile> {
        self.inner.seen.lock().push((
            opts.kind,
            name.path().map(|p| p.to_string()),
            name.database_name().map(|p| p.to_string()),
            name.parameter("flavour").map(str::to_owned),
        ));
        if opts.kind == FileKind::MainDb {
            self.fault(Op::Open, opts.kind)?;
        }
        self.inner.counters.opens.fetch_add(1, Ordering::Relaxed);
        let Some(path) = name.path().map(FileName::to_owned) else {
            // An anonymous temp file: private to this handle, gone on close.
            self.inner.anon.fetch_add(1, Ordering::Relaxed);
            let data = Arc::new(FileData {
                bytes: RwLock::new(Vec::new()),
                lock: LockManager::new(),
                shm: ShmGroup::new(),
            });
            let lock = data.lock.connect();
            return Ok(TestFile {
                vfs: self.clone(),
                data,
                lock,
                kind: opts.kind,
                shm: false,
            });
        };
        let mut files = self.inner.files.lock();
        let data = match files.get(&path) {
            Some(d) if opts.exclusive => {
                let _ = d;
                return Err(Error::cant_open(format!("{path:?} exists")));
            }
            Some(d) => Arc::clone(d),
            None if opts.access == OpenAccess::Create => {
                let d = Arc::new(FileData {
                    bytes: RwLock::new(Vec::new()),
                    lock: LockManager::new(),
                    shm: ShmGroup::new(),
                });
                files.insert(path.clone(), Arc::clone(&d));
                d
            }
            None => return Err(Error::cant_open(format!("no such file: {path:?}"))),
        };
        let lock = data.lock.connect();
        Ok(TestFile {
            vfs: self.clone(),
            data,
            lock,
            kind: opts.kind,
            shm: self.shm && opts.kind == FileKind::MainDb,
        })
    }

    fn delete(&self, name: &FileName, _sync_dir: bool) -> Result<()> {
        match self.inner.files.lock().remove(name) {
            Some(_) => Ok(()),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotFound).into()),
        }
    }

    fn access(&self, name: &FileName, _check: AccessCheck) -> Result<bool> {
        Ok(self
            .inner
            .files
            .lock()
            .get(name)
            .is_some_and(|f| !f.bytes.read().is_empty()))
    }
}

impl File for TestFile {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.vfs.fault(Op::Read, self.kind)?;
        self.vfs
            .inner
            .counters
            .reads
            .fetch_add(1, Ordering::Relaxed);
        let data = self.data.bytes.read();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        self.vfs.fault(Op::Write, self.kind)?;
        self.vfs
            .inner
            .counters
            .writes
            .fetch_add(1, Ordering::Relaxed);
        let mut data = self.data.bytes.write();
        let end = offset as usize + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        self.vfs.fault(Op::Truncate, self.kind)?;
        self.data.bytes.write().truncate(size as usize);
        Ok(())
    }

    fn sync(&mut self, _flags: SyncFlags) -> Result<()> {
        self.vfs.fault(Op::Sync, self.kind)?;
        self.vfs
            .inner
            .counters
            .syncs
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn size(&mut self) -> Result<u64> {
        Ok(self.data.bytes.read().len() as u64)
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        self.vfs.fault(Op::Lock, self.kind)?;
        self.lock.lock(level)
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        self.lock.unlock(level)
    }

    fn check_reserved_lock(&mut self) -> Result<bool> {
        Ok(self.lock.check_reserved())
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        DeviceCharacteristics::NONE.with(DeviceCharacteristics::POWERSAFE_OVERWRITE)
    }

    fn file_control(&mut self, ctl: &mut vfs_core::FileControl<'_>) -> Result<()> {
        match ctl.control() {
            vfs_core::Control::Pragma(mut p) if p.name() == "vfs_test_echo" => {
                let answer = p.value().unwrap_or("(none)").to_owned();
                p.set_result(&answer);
                Ok(())
            }
            vfs_core::Control::Pragma(p) if p.name() == "vfs_test_fail" => Err(Error::new(
                codes::SQLITE_ERROR,
                "the test backend was told to fail",
            )),
            _ => Err(Error::not_found()),
        }
    }

    fn shm(&self) -> ShmSupport {
        if self.shm {
            ShmSupport::Group(Arc::clone(&self.data.shm))
        } else {
            ShmSupport::None
        }
    }
}

/// A VFS name unique to this test process and call site.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The extended SQLite code of a rusqlite error.
pub fn code_of(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    }
}

pub fn integrity(conn: &rusqlite::Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check runs")
}

pub const SQLITE_IOERR_SHORT_READ: i32 = codes::SQLITE_IOERR_SHORT_READ;

/// A do-nothing shim: forwards every call to its base. Proves a shim can sit
/// over any base (the native one included) with locks and shared memory
/// passing straight through.
pub struct PassThrough<B>(pub B);

pub struct PassFile<F>(F);

impl<B: Vfs> Vfs for PassThrough<B> {
    type File = PassFile<B::File>;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.0.open(name, opts).map(PassFile)
    }
    vfs_core::forward_vfs!(0);
}

impl<F: File> File for PassFile<F> {
    vfs_core::forward_file!(0);
}
