//! [`MemDisk`]: a small in-memory disk to inject faults into without
//! touching the real one.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use vfs_core::{
    AccessCheck, Error, File, FileKind, FileLock, FileName, FileNameBuf, LockManager, OpenAccess,
    OpenName, OpenOptions, Result, ShmGroup, ShmSupport, SyncFlags, Vfs,
};

/// A minimal in-memory file system with POSIX-like semantics, shared by
/// every connection of the process: files by path, real locking through the
/// core [`LockManager`], WAL through one [`ShmGroup`] per database, unlink
/// semantics (a deleted file stays readable by handles already open), and
/// private anonymous temporary files.
///
/// It exists as a base for [`Fault`](crate::Fault) in tests and fuzzing:
/// it has no durability of its own (everything is "synced" at once), so the
/// power-cut model of the fault layer is the whole story. It is not a
/// product backend (see `vfs-memdb` for that): no budget, no page store,
/// one mutex per file.
///
/// Clones share the same files.
///
/// ```
/// use vfs_fault::MemDisk;
/// let disk = MemDisk::new();
/// let reg = vfs_core::register("memdisk-doc", disk.clone(), false).unwrap();
/// let conn = rusqlite::Connection::open("file:/d/a.db?vfs=memdisk-doc").unwrap();
/// conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);").unwrap();
/// drop(conn);
/// assert!(disk.contents("/d/a.db").is_some());
/// reg.unregister().unwrap();
/// ```
#[derive(Clone, Default, Debug)]
pub struct MemDisk {
    files: Arc<Mutex<HashMap<FileNameBuf, Arc<Inode>>>>,
}

#[derive(Debug, Default)]
struct Inode {
    data: Mutex<Vec<u8>>,
    locks: Arc<LockManager>,
    shm: Arc<ShmGroup>,
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    /// The paths of every file, sorted.
    pub fn paths(&self) -> Vec<FileNameBuf> {
        let mut v: Vec<FileNameBuf> = self.files.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// A copy of the file at `path`, if it exists.
    pub fn contents(&self, path: impl AsRef<FileName>) -> Option<Vec<u8>> {
        let inode = self.files.lock().get(path.as_ref()).cloned()?;
        let data = inode.data.lock().clone();
        Some(data)
    }

    /// Creates or replaces the file at `path` with `bytes`.
    pub fn put(&self, path: impl AsRef<FileName>, bytes: &[u8]) {
        let inode = self
            .files
            .lock()
            .entry(path.as_ref().to_owned())
            .or_default()
            .clone();
        *inode.data.lock() = bytes.to_vec();
    }

    /// Removes every file (handles already open keep their data).
    pub fn clear(&self) {
        self.files.lock().clear();
    }
}

/// Moves the file (handles already open keep it, as on POSIX).
impl crate::Rename for MemDisk {
    fn rename(&self, from: &FileName, to: &FileName) -> Result<()> {
        let mut files = self.files.lock();
        match files.remove(from) {
            Some(inode) => {
                files.insert(to.to_owned(), inode);
                Ok(())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("rename: no file {from:?}"),
            )
            .into()),
        }
    }
}

impl Vfs for MemDisk {
    type File = MemDiskFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<MemDiskFile> {
        let inode = match name.path() {
            None => Arc::new(Inode::default()),
            Some(path) => {
                let mut files = self.files.lock();
                match files.get(path) {
                    Some(_) if opts.exclusive => {
                        return Err(Error::cant_open(format!("{path:?} already exists")));
                    }
                    Some(inode) => inode.clone(),
                    None if opts.access == OpenAccess::Create => {
                        files.entry(path.to_owned()).or_default().clone()
                    }
                    None => {
                        return Err(Error::cant_open(format!("no file {path:?}")));
                    }
                }
            }
        };
        Ok(MemDiskFile {
            lock: inode.locks.connect(),
            inode,
            kind: opts.kind,
            read_only: !opts.access.writable(),
        })
    }

    fn delete(&self, path: &FileName, _sync_dir: bool) -> Result<()> {
        match self.files.lock().remove(path) {
            Some(_) => Ok(()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no file {path:?}"),
            )
            .into()),
        }
    }

    fn access(&self, path: &FileName, _check: AccessCheck) -> Result<bool> {
        Ok(self.files.lock().contains_key(path))
    }
}

/// A file of a [`MemDisk`].
#[derive(Debug)]
pub struct MemDiskFile {
    inode: Arc<Inode>,
    lock: FileLock,
    kind: FileKind,
    read_only: bool,
}

impl File for MemDiskFile {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let data = self.inode.data.lock();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        if self.read_only {
            return Err(Error::readonly("memdisk file opened read-only"));
        }
        let mut data = self.inode.data.lock();
        let end = offset as usize + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        self.inode.data.lock().resize(size as usize, 0);
        Ok(())
    }

    fn sync(&mut self, _flags: SyncFlags) -> Result<()> {
        Ok(())
    }

    fn size(&mut self) -> Result<u64> {
        Ok(self.inode.data.lock().len() as u64)
    }

    vfs_core::lock_via!(lock);

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn shm(&self) -> ShmSupport {
        if self.kind == FileKind::MainDb {
            ShmSupport::Group(self.inode.shm.clone())
        } else {
            ShmSupport::None
        }
    }
}
